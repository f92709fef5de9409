#!/usr/bin/env bash
# The test suite, exactly as CI runs it: installs what is missing into .venv (no demo), then runs
# every test — the real embedded model included. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --no-demo
export OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# One converted copy of the embedded model shared by every test that needs it.
export COPILOT_TEST_HOME="${COPILOT_TEST_HOME:-$PWD/.copilot-home}"
mkdir -p "$COPILOT_TEST_HOME"
if [ -x editors/test.sh ]; then
  editors/test.sh
fi
# The VS Code extension inside a real VS Code (code-server + headless Chromium); COPILOT_EDITORS_REAL_VSCODE=0 skips it.
if [ "${COPILOT_EDITORS_REAL_VSCODE:-1}" != 0 ]; then
  scripts/test-editors-real.sh
fi
exec .venv/bin/python -m pytest -q -ra "$@"
