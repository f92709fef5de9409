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
# Shows "compiling [N/M]" in place as a build's step lines arrive (a shell loop: mawk, Debian's awk,
# buffers a pipe and would show nothing until the end).
progress() { local step; while IFS= read -r step; do printf '\r    compiling %s ' "$step"; done; echo; }
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
        | tee "$WHEELS/build.log" | grep --line-buffered -oE '^ *\[[0-9]+/[0-9]+\]' | progress
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
# The team service (`copilot serve`) runs llama.cpp's own HTTP server, which no pip package ships: build
# `llama-server` once from the llama.cpp sources vendored in the same pinned sdist (about 11 minutes on
# 2 cores; server only, static, no curl, no web UI), keep the binary in the per-CPU cache beside the
# wheel and install it as .venv/bin/llama-server. COPILOT_NO_LLAMA_SERVER=1 skips it.
if [ "${COPILOT_NO_LLAMA_SERVER:-0}" != 1 ] && [ ! -x .venv/bin/llama-server ]; then
  CPU_KEY=$( (uname -m; grep -m1 '^flags' /proc/cpuinfo 2>/dev/null) | sha256sum | cut -c1-12)
  WHEELS="${XDG_CACHE_HOME:-$HOME/.cache}/copilot/wheels/$CPU_KEY"
  mkdir -p "$WHEELS"
  SERVER_BIN="$WHEELS/llama-server-$LLAMA_VERSION"
  if [ ! -x "$SERVER_BIN" ]; then
    if command -v cmake >/dev/null && command -v g++ >/dev/null; then
      echo "==> building llama-server (llama.cpp from llama-cpp-python $LLAMA_VERSION) for the team service;"
      echo "    about 11 minutes on 2 cores, once (log: $WHEELS/server-build.log)"
      SRC=$(mktemp -d)
      GEN=()
      command -v ninja >/dev/null && GEN=(-G Ninja)
      set +e
      (
        set -e
        .venv/bin/pip download --no-deps --no-binary :all: -d "$SRC" "llama-cpp-python==$LLAMA_VERSION"
        tar -xzf "$SRC/llama_cpp_python-$LLAMA_VERSION.tar.gz" -C "$SRC"
        cmake -S "$SRC/llama_cpp_python-$LLAMA_VERSION/vendor/llama.cpp" -B "$SRC/build" "${GEN[@]}" \
          -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
          -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
          -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF
        cmake --build "$SRC/build" --config Release --target llama-server -j "$(nproc 2>/dev/null || echo 2)"
        "$SRC/build/bin/llama-server" --version
        install -m 755 "$SRC/build/bin/llama-server" "$SERVER_BIN"
      ) 2>&1 \
        | tee "$WHEELS/server-build.log" | grep --line-buffered -oE '^ *\[ *[0-9]+(/[0-9]+|%)\]' | progress
      status=${PIPESTATUS[0]}
      set -e
      rm -rf "$SRC"
      [ "$status" = 0 ] || echo "    llama-server build failed (see $WHEELS/server-build.log); \`copilot serve\` will not run."
    else
      echo "==> cmake/g++ not found: skipping llama-server (apt-get install cmake g++ to enable it)"
    fi
  fi
  if [ -x "$SERVER_BIN" ]; then
    install -m 755 "$SERVER_BIN" .venv/bin/llama-server \
      || echo "    could not install llama-server; \`copilot serve\` will not run."
  fi
fi
if [ "${1:-}" != "--no-demo" ]; then
  echo "==> running the main job on the embedded default model"
  export OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
  .venv/bin/copilot demo
fi
