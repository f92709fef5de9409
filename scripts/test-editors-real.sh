#!/usr/bin/env bash
# The VS Code extension in a REAL VS Code: the packaged editors/vscode/dist/company-copilot.vsix installed into
# code-server (npm, VS Code 1.100, node 20) with a private user-data and extensions dir, driven by headless
# Chromium (Debian's `chromium`) through npm playwright-core, against the real copilot-lsp and the real
# embedded model: ghost text appears and Tab accepts it into the file, "Copilot: Explain" fills its panel, the
# status bar shows model · adapter, and a wrong copilot.serverPath or a server that dies at start shows one
# error notification. Screenshots go to docs/screenshots/vscode-ghost-text.png and docs/screenshots/vscode-explain.png.
#
# Installs what it needs, idempotently, and says so when it cannot:
#   - editors/vscode/e2e/node_modules (npm ci of its package-lock.json; code-server's own dependencies are
#     installed here without its postinstall download of ripgrep, which needs github.com: Debian's `rg` is used)
#   - apt (root only, when missing): chromium, ripgrep, and build tools + libkrb5-dev for code-server's native
#     modules
#   - the .vsix: built (npm ci, tsc, vsce package) when missing or older than the extension's sources
# Run by scripts/test.sh after editors/test.sh (about a minute, plus ~3 minutes to install the first time; needs
# apt packages); COPILOT_EDITORS_REAL_VSCODE=0 skips it there.
# Environment:
#   COPILOT_TEST_HOME  data root whose models/ holds the converted embedded model (default .copilot-home)
#   COPILOT_E2E_KEEP=1 keep the run's temporary folder (code-server log, user data)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export COPILOT_TEST_HOME=${COPILOT_TEST_HOME:-$ROOT/.copilot-home}
E2E=$ROOT/editors/vscode/e2e
step() { printf '\n== test-editors-real: %s\n' "$*"; }
die() { printf 'test-editors-real.sh: %s\n' "$*" >&2; exit 1; }

LSP=$ROOT/.venv/bin/copilot-lsp
[ -x "$LSP" ] || die "$LSP not found: run scripts/install.sh first"
command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are needed (node 20)"
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]')
[ "$NODE_MAJOR" = 20 ] || die "code-server 4.100 needs node 20; this is node $(node --version)"

APT_UPDATED=0
apt_install() {  # PACKAGE...: installs with apt-get when root, else explains and fails
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    die "missing: $*; install them (apt-get install -y $*) or run this script as root"
  fi
  if [ "$APT_UPDATED" = 0 ]; then
    apt-get update -qq >/dev/null || die "apt-get update failed"
    APT_UPDATED=1
  fi
  echo "apt-get install -y $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
    || die "apt-get install $* failed"
}

step "system packages"
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$CHROMIUM" ]; then
  apt_install chromium
  CHROMIUM=$(command -v chromium) || die "chromium is still not on PATH after apt-get install chromium"
fi
"$CHROMIUM" --version 2>/dev/null || die "$CHROMIUM does not run"
command -v rg >/dev/null || apt_install ripgrep
RG=$(command -v rg) || die "ripgrep (rg) is needed by code-server"

step "npm packages (editors/vscode/e2e: code-server, playwright-core)"
# code-server's postinstall would `npm install` VS Code's dependencies, building native modules (node-pty,
# kerberos, spdlog, @parcel/watcher, native-watchdog) and downloading ripgrep from github.com, which fails
# here. So: everything with --ignore-scripts, Debian's rg where @vscode/ripgrep wants its download, then
# `npm rebuild` for the native modules (node-pty runs `npx node-gyp`: npm_config_yes lets it fetch it), then
# the rest of code-server's postinstall.sh by hand.
LOCK_SUM="install-v1 $(sha256sum "$E2E/package-lock.json" | cut -d" " -f1)"
MARK=$E2E/node_modules/.copilot-e2e-sum
if [ ! -f "$MARK" ] || [ "$(cat "$MARK")" != "$LOCK_SUM" ]; then
  if ! { command -v make && command -v g++ && command -v python3; } >/dev/null || [ ! -f /usr/include/gssapi/gssapi.h ]; then
    apt_install build-essential python3 pkg-config libkrb5-dev
  fi
  NPM="npm --no-audit --no-fund --loglevel=error"
  CS=$E2E/node_modules/code-server
  VS=$CS/lib/vscode
  rm -f "$MARK"
  (cd "$E2E" && $NPM ci --ignore-scripts) || die "npm ci in editors/vscode/e2e failed"
  echo "-- code-server's native module argon2 (its prebuilt download fails here: built)"
  (cd "$E2E" && nice -n 5 $NPM rebuild argon2 >/dev/null) || die "building argon2 failed (needs build-essential, python3)"
  echo "-- VS Code's dependencies (code-server/lib/vscode; native modules: a few minutes the first time)"
  (cd "$VS" && $NPM install --omit=dev --ignore-scripts) || die "npm install in $VS failed"
  mkdir -p "$VS/node_modules/@vscode/ripgrep/bin" && ln -sf "$RG" "$VS/node_modules/@vscode/ripgrep/bin/rg"
  (cd "$VS" && npm_config_yes=true nice -n 5 $NPM rebuild >/dev/null) \
    || die "building VS Code's native modules failed (needs build-essential, python3, libkrb5-dev)"
  rm -rf "$VS/node_modules.asar" && ln -s node_modules "$VS/node_modules.asar"
  ln -sf code-linux.sh "$VS/bin/remote-cli/code-server"
  ln -sf browser-linux.sh "$VS/bin/helpers/browser.sh"
  echo "-- built-in extensions' dependencies (code-server/lib/vscode/extensions)"
  (cd "$VS/extensions" && $NPM install --omit=dev >/dev/null) || die "npm install in $VS/extensions failed"
  echo "$LOCK_SUM" > "$MARK"
fi
echo "code-server $(node -p 'require(process.argv[1]).version' "$E2E/node_modules/code-server/package.json"), playwright-core $(node -p 'require(process.argv[1]).version' "$E2E/node_modules/playwright-core/package.json")"

step "the .vsix"
VSIX=$ROOT/editors/vscode/dist/company-copilot.vsix
cd "$ROOT/editors/vscode"
if [ ! -f "$VSIX" ] || [ -n "$(find src package.json package-lock.json -newer "$VSIX" -print -quit)" ]; then
  echo "building $VSIX"
  LOCK_SUM=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ ! -f node_modules/.copilot-lock-sum ] || [ "$(cat node_modules/.copilot-lock-sum)" != "$LOCK_SUM" ]; then
    npm ci --no-audit --no-fund --loglevel=error
    echo "$LOCK_SUM" > node_modules/.copilot-lock-sum
  fi
  rm -rf out && npx --no-install tsc -p .
  mkdir -p dist && npx --no-install vsce package --out "$VSIX" >/dev/null
fi
ls -l "$VSIX" | awk '{print $5 " bytes: " $NF}'
cd "$ROOT"

step "VS Code (code-server) + headless Chromium + copilot-lsp + the embedded model"
# Everything the test starts carries this id in its environment: whatever is left after it (even after a
# kill -9 of the test) is found by it and ended by pid.
export COPILOT_E2E_ID="copilot-e2e-$$-$(date +%s%N)"
sweep() {
  local d pid
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    if grep -qzxF "COPILOT_E2E_MARKER=$COPILOT_E2E_ID" "$d/environ" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null && echo "test-editors-real.sh: killed leftover process $pid" >&2
    fi
  done
  return 0
}
TESTPID=
on_signal() {  # the test first (it ends code-server and the browser itself), then whatever is left
  if [ -n "$TESTPID" ]; then kill -TERM "$TESTPID" 2>/dev/null; wait "$TESTPID" 2>/dev/null; fi
  exit 130
}
trap sweep EXIT
trap on_signal INT TERM HUP
start=$(date +%s)
CHROMIUM=$CHROMIUM COPILOT_LSP=$LSP COPILOT_MODELS_FROM=$COPILOT_TEST_HOME COPILOT_VSIX=$VSIX \
  timeout -k 20 900 nice -n 5 node --test-reporter=spec "$E2E/test-real-vscode.mjs" &
TESTPID=$!
set +e
wait "$TESTPID"
rc=$?
set -e
TESTPID=
echo "wall time: $(( $(date +%s) - start )) s"
[ "$rc" -eq 0 ] || die "the real VS Code test failed (exit $rc)"
ls -l docs/screenshots/vscode-ghost-text.png docs/screenshots/vscode-explain.png
step "passed"
