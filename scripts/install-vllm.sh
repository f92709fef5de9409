#!/usr/bin/env bash
# vLLM for the team service on CUDA GPUs (`copilot serve --engine vllm`), in a venv of its own: .venv-vllm.
# vllm 0.33.0 pins torch 2.14 (CUDA) and transformers < 5.21, which cannot live beside this project's pins
# (torch 2.13 CPU, transformers 5.23); the service runs vLLM as a separate process, so it need not.
# Several GB of CUDA wheels; needs an NVIDIA driver. copilot finds .venv-vllm/bin/vllm by itself
# (or set COPILOT_VLLM to another `vllm` command).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -e /proc/driver/nvidia/version ]; then
  echo "install-vllm.sh: no NVIDIA driver here (/proc/driver/nvidia/version); vLLM needs a CUDA GPU" >&2
  exit 1
fi
PY=${PYTHON:-python3}
[ -x .venv-vllm/bin/python ] || "$PY" -m venv .venv-vllm
.venv-vllm/bin/pip install --progress-bar on "vllm==0.33.0"
.venv-vllm/bin/vllm --version
echo "vLLM installed in .venv-vllm: copilot serve --engine vllm"
