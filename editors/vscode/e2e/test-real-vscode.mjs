// End-to-end test of the packaged extension (dist/company-copilot.vsix) inside a real VS Code: code-server
// (npm, VS Code 1.100) driven by headless Chromium through playwright-core, with the real copilot-lsp and
// the real embedded model. Run by scripts/test-editors-real.sh, which installs what this needs; by hand:
//   COPILOT_LSP=.venv/bin/copilot-lsp COPILOT_MODELS_FROM=.copilot-home CHROMIUM=/usr/bin/chromium \
//     node --test --test-reporter=spec editors/vscode/e2e/test-real-vscode.mjs
//
// Environment:
//   COPILOT_LSP          the server (default <repo>/.venv/bin/copilot-lsp)
//   COPILOT_MODELS_FROM  a data root whose models/ holds the converted embedded model (default $COPILOT_TEST_HOME
//                        or <repo>/.copilot-home); symlinked into a fresh COPILOT_HOME, the rest is fresh
//   COPILOT_VSIX         the packaged extension (default editors/vscode/dist/company-copilot.vsix)
//   CHROMIUM             the browser (default: chromium on PATH)
//   COPILOT_SCREENSHOTS  where the screenshots go (default <repo>/docs/screenshots)
//   COPILOT_E2E_KEEP=1   keep the temporary folder (logs, user data) for a post-mortem
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "../../..");
const LSP = path.resolve(process.env.COPILOT_LSP || path.join(ROOT, ".venv/bin/copilot-lsp"));
const MODELS_FROM = path.resolve(process.env.COPILOT_MODELS_FROM || process.env.COPILOT_TEST_HOME || path.join(ROOT, ".copilot-home"));
const VSIX = path.resolve(process.env.COPILOT_VSIX || path.join(ROOT, "editors/vscode/dist/company-copilot.vsix"));
const SHOTS = path.resolve(process.env.COPILOT_SCREENSHOTS || path.join(ROOT, "docs/screenshots"));
const CODE_SERVER = path.join(HERE, "node_modules/.bin/code-server");
const MODEL = "qwen2.5-coder-0.5b"; // the server's default model (copilot/core/settings.py)
const BROKEN = "/nonexistent/bin/copilot-lsp";

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "copilot-vscode-e2e-"));
const T = {
  home: path.join(TMP, "home"), // HOME for code-server, the extension host and copilot-lsp: no user config leaks in
  userData: path.join(TMP, "user-data"),
  extensions: path.join(TMP, "extensions"),
  copilotHome: path.join(TMP, "copilot-home"),
  ws: path.join(TMP, "workspace"),
  wsBroken: path.join(TMP, "workspace-broken-server"),
  wsCrash: path.join(TMP, "workspace-crashing-server"),
  log: path.join(TMP, "code-server.log"),
};

function which(cmd) {
  for (const dir of (process.env.PATH || "").split(path.delimiter)) {
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}
const CHROMIUM = process.env.CHROMIUM || which("chromium") || which("chromium-browser");

function log(msg) {
  process.stderr.write(`  [e2e ${((Date.now() - T0) / 1000).toFixed(1)}s] ${msg}\n`);
}
const T0 = Date.now();

/** Polls fn until it returns something truthy; an error thrown with .fatal set ends the wait at once. */
async function waitFor(fn, timeoutMs, what, everyMs = 250) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      if (e?.fatal) throw e; // no use waiting
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Every process this test starts (code-server and what it forks: extension hosts, copilot-lsp) runs with this
// environment, in its own process group; the marker lets cleanup find a straggler that left the group.
const ENV = {
  ...process.env,
  HOME: T.home,
  XDG_CONFIG_HOME: path.join(T.home, ".config"),
  XDG_DATA_HOME: path.join(T.home, ".local/share"),
  XDG_CACHE_HOME: path.join(T.home, ".cache"),
  COPILOT_HOME: T.copilotHome,
  COPILOT_E2E_MARKER: process.env.COPILOT_E2E_ID || TMP,
  OMP_WAIT_POLICY: "PASSIVE",
  HF_HUB_OFFLINE: "1",
  HF_DATASETS_OFFLINE: "1",
  TRANSFORMERS_OFFLINE: "1",
  TOKENIZERS_PARALLELISM: "false",
  // explanations: a few sentences per section is enough to see them (the default, 200 tokens a section, takes
  // a minute per section on a 2-core CPU)
  COPILOT_EXPLAIN_MAX_NEW_TOKENS: process.env.COPILOT_EXPLAIN_MAX_NEW_TOKENS || "48",
};
delete ENV.COPILOT_CONFIG;
delete ENV.VSCODE_IPC_HOOK_CLI;

const CODE_SERVER_FLAGS = [
  "--config", path.join(TMP, "code-server.yaml"),
  "--user-data-dir", T.userData,
  "--extensions-dir", T.extensions,
  "--disable-telemetry",
  "--disable-update-check",
  "--disable-workspace-trust",
  "--disable-getting-started-override",
];

let server; // the code-server child process
let browser;
let base; // http://127.0.0.1:PORT

function killTree() {
  if (server && server.exitCode === null && server.signalCode === null) {
    try {
      process.kill(-server.pid, "SIGTERM");
    } catch {
      /* gone */
    }
  }
  // stragglers (a process that changed its group): found by the marker in their environment, killed by pid
  const stragglers = [];
  for (const pid of fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    if (Number(pid) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${pid}/environ`, "latin1").includes(`COPILOT_E2E_MARKER=${ENV.COPILOT_E2E_MARKER}\0`)) stragglers.push(Number(pid));
    } catch {
      /* gone or not ours */
    }
  }
  return stragglers;
}

async function cleanup() {
  if (browser) await browser.close().catch(() => undefined);
  browser = undefined;
  let left = killTree();
  const end = Date.now() + 5000;
  while (left.length && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 200));
    left = killTree();
  }
  for (const pid of left) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  if (server) {
    try {
      process.kill(-server.pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  if (process.env.COPILOT_E2E_KEEP === "1") log(`kept ${TMP}`);
  else fs.rmSync(TMP, { recursive: true, force: true });
}
// also on Ctrl-C / a kill from the wrapper script: no code-server or copilot-lsp is left behind
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.once(sig, () => {
    void cleanup().finally(() => process.exit(130));
  });
}

function tail(file, n = 40) {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(-n).join("\n");
  } catch {
    return "(no log)";
  }
}

function writeJson(p, obj) {
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, JSON.stringify(obj, null, 2));
}

const SOURCE = ["def add(a, b):", "    return a + b", "", "", ""].join("\n");

before(async () => {
  for (const [what, p] of [["copilot-lsp", LSP], ["code-server", CODE_SERVER], ["the .vsix", VSIX], ["chromium", CHROMIUM ?? "chromium"]]) {
    assert.ok(p && fs.existsSync(p), `${what} not found at ${p} (run scripts/test-editors-real.sh, which installs what is missing)`);
  }
  // converted model files are shared (the first run converts the embedded model there: a minute or two more)
  fs.mkdirSync(path.join(MODELS_FROM, "models"), { recursive: true });
  for (const d of [T.home, T.userData, T.extensions, T.copilotHome, T.ws, T.wsBroken, T.wsCrash]) fs.mkdirSync(d, { recursive: true });
  fs.symlinkSync(path.join(MODELS_FROM, "models"), path.join(T.copilotHome, "models"));
  fs.writeFileSync(path.join(TMP, "code-server.yaml"), "auth: none\ncert: false\n");
  fs.writeFileSync(path.join(T.ws, "mathy.py"), SOURCE);
  // VS Code settings of the test machine, none of them the extension's except the server path
  writeJson(path.join(T.userData, "User/settings.json"), {
    "copilot.serverPath": LSP,
    "telemetry.telemetryLevel": "off",
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": false,
    "workbench.enableExperiments": false,
    "workbench.welcomePage.walkthroughs.openOnInstall": false,
    "extensions.ignoreRecommendations": true,
    "extensions.autoCheckUpdates": false,
    "extensions.autoUpdate": false,
    "update.mode": "none",
    "security.workspace.trust.enabled": false,
    "chat.commandCenter.enabled": false,
    "window.commandCenter": false,
    // no word-based suggest widget over the ghost text, no auto-closed brackets: typing is what it types
    "editor.quickSuggestions": { other: "off", comments: "off", strings: "off" },
    "editor.suggestOnTriggerCharacters": false,
    "editor.wordBasedSuggestions": "off",
    "editor.autoClosingBrackets": "never",
    "editor.autoClosingQuotes": "never",
    "editor.minimap.enabled": false,
    "editor.inlineSuggest.enabled": true,
  });
  // a second workspace whose folder settings point the extension at a server that does not exist
  writeJson(path.join(T.wsBroken, ".vscode/settings.json"), { "copilot.serverPath": BROKEN });
  fs.writeFileSync(path.join(T.wsBroken, "broken.py"), "x = 1\n");
  // a third whose server exists but dies at once (a broken install: the venv's python is gone)
  const crash = path.join(T.wsCrash, "crashing-copilot-lsp");
  fs.writeFileSync(crash, "#!/bin/sh\necho 'copilot-lsp: cannot import copilot (a broken install)' >&2\nexit 3\n", { mode: 0o755 });
  writeJson(path.join(T.wsCrash, ".vscode/settings.json"), { "copilot.serverPath": crash });
  fs.writeFileSync(path.join(T.wsCrash, "crash.py"), "x = 1\n");

  // install the packaged extension into the private extensions dir
  const inst = spawnSync(CODE_SERVER, [...CODE_SERVER_FLAGS, "--install-extension", VSIX], { env: ENV, encoding: "utf8", timeout: 120_000 });
  assert.equal(inst.status, 0, `code-server --install-extension failed:\n${inst.stdout}\n${inst.stderr}`);
  const installed = fs.readdirSync(T.extensions).filter((d) => d.startsWith("company-copilot.company-copilot-"));
  assert.equal(installed.length, 1, `the extension is not in ${T.extensions}: ${fs.readdirSync(T.extensions).join(", ")}`);
  log(`installed ${installed[0]}`);

  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const out = fs.openSync(T.log, "a");
  server = spawn(CODE_SERVER, [...CODE_SERVER_FLAGS, "--bind-addr", `127.0.0.1:${port}`, "--auth", "none", "--ignore-last-opened", T.ws], {
    env: ENV, stdio: ["ignore", out, out], detached: true, // own process group: killed as one
  });
  server.on("exit", (code, sig) => log(`code-server exited (${code ?? sig})`));
  await waitFor(async () => {
    if (server.exitCode !== null) throw Object.assign(new Error(`code-server exited early:\n${tail(T.log)}`), { fatal: true });
    const r = await fetch(`${base}/healthz`).catch(() => undefined);
    return r?.ok;
  }, 60_000, `code-server on ${base} (log: ${T.log})`, 300);
  log(`code-server up on ${base}`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions"],
    env: { ...ENV },
  });
});

after(async () => {
  await cleanup();
});

/** A new browser tab on code-server with FOLDER open, once the workbench is up. */
async function openWorkbench(folder) {
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 860 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(30_000);
  await page.goto(`${base}/?folder=${encodeURIComponent(folder)}`, { waitUntil: "domcontentloaded", timeout: 60_000 });
  await page.locator(".monaco-workbench .part.statusbar").waitFor({ state: "visible", timeout: 90_000 });
  return page;
}

async function runCommand(page, title) {
  await page.keyboard.press("F1");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor({ state: "visible" });
  await input.fill(`>${title}`);
  const row = page.locator(".quick-input-list .monaco-list-row", { hasText: title }).first();
  await row.waitFor({ state: "visible" });
  await row.click();
}

async function openFile(page, name) {
  await page.keyboard.press("Control+P");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor({ state: "visible" });
  await input.fill(name);
  const row = page.locator(".quick-input-list .monaco-list-row", { hasText: name }).first();
  await row.waitFor({ state: "visible" });
  await input.press("Enter");
  await page.locator(`.tab.active[aria-label*="${name}"], .tab.active:has-text("${name}")`).first().waitFor({ state: "visible" });
  const editor = page.locator(".editor-instance .monaco-editor").first();
  await editor.waitFor({ state: "visible" });
  return editor;
}

/** Our status bar item's text (codicons dropped), or undefined. */
async function copilotStatus(page) {
  const texts = await page.locator(".part.statusbar .statusbar-item").allInnerTexts();
  return texts.map((t) => t.replace(/\s+/g, " ").trim()).find((t) => /^Copilot(:|$)/.test(t));
}

const nbsp = (s) => s.replace(/\u00a0/g, " ");

let page; // the main workbench (mathy.py)
let shown; // the ghost text as the editor displayed it

test("the packaged extension activates in code-server and the status bar shows the loaded model and adapter", { timeout: 420_000 }, async () => {
  page = await openWorkbench(T.ws);
  log("workbench up");
  await openFile(page, "mathy.py");
  log("mathy.py open");
  const status = await waitFor(async () => {
    const s = await copilotStatus(page);
    // ("server stopped" shows for a moment while the extension activates)
    if (s && /model failed/.test(s)) throw Object.assign(new Error(`status bar: ${s}`), { fatal: true });
    return s && s.includes(MODEL) && !s.includes("loading") ? s : undefined;
  }, 300_000, "the status bar item to show the loaded model");
  log(`status bar: ${status}`);
  assert.match(status, new RegExp(`Copilot: ${MODEL.replace(/\./g, "\\.")} · base`));
});

test("typing in a Python file shows ghost text; Tab accepts it into the file", { timeout: 180_000 }, async () => {
  assert.ok(page, "the workbench did not open");
  const editor = page.locator(".editor-instance .monaco-editor").first();
  await editor.locator(".view-lines").click();
  await page.keyboard.press("Control+End");
  await page.keyboard.type("def mul(a, b):", { delay: 30 });
  await page.keyboard.press("Enter"); // python's indentation rules: the cursor lands at 4 spaces
  const ghost = editor.locator(".ghost-text-decoration, .ghost-text");
  // a suggestion can be replaced by a newer one while it is read: wait for one that stays for a moment
  shown = await waitFor(async () => {
    if ((await ghost.count()) === 0) return undefined;
    const first = nbsp((await editor.locator(".ghost-text-decoration").allInnerTexts()).join(""));
    const more = nbsp((await editor.locator(".ghost-text .view-line").allInnerTexts()).join("\n"));
    const text = [first, more].filter(Boolean).join("\n");
    return text.trim() ? text : undefined;
  }, 90_000, "ghost text in the editor DOM", 200);
  log(`ghost text: ${JSON.stringify(shown)}`);
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, "vscode-ghost-text.png") });

  await page.keyboard.press("Tab");
  await waitFor(async () => (await ghost.count()) === 0, 10_000, "the ghost text to be gone after Tab");
  await page.keyboard.press("Control+S");
  const firstLine = shown.split("\n")[0].trim();
  const saved = await waitFor(() => {
    const t = fs.readFileSync(path.join(T.ws, "mathy.py"), "utf8");
    return t.includes("def mul(a, b):") && t.includes(firstLine) ? t : undefined;
  }, 15_000, `mathy.py on disk to contain the accepted ${JSON.stringify(firstLine)}`);
  log(`saved mathy.py:\n${saved}`);
  const mulLine = saved.split("\n").findIndex((l) => l.startsWith("def mul"));
  assert.ok(saved.split("\n").slice(mulLine + 1).join("\n").includes(firstLine), "the suggestion was inserted after def mul");
  // the accept went through the real VS Code command path: the server logged it as accepted
  const fb = path.join(T.copilotHome, "feedback/lsp-feedback.jsonl");
  const events = await waitFor(() => {
    if (!fs.existsSync(fb)) return undefined;
    const ev = fs.readFileSync(fb, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l).event);
    return ev.includes("accepted") ? ev : undefined;
  }, 10_000, `an "accepted" event in ${fb}`);
  log(`feedback events: ${events.join(", ")}`);
  // and the status bar now also shows the last completion's latency
  const status = await waitFor(async () => {
    const s = await copilotStatus(page);
    return s && / ms$/.test(s) ? s : undefined;
  }, 10_000, "the latency in the status bar");
  log(`status bar: ${status}`);
  assert.match(status, new RegExp(`Copilot: ${MODEL.replace(/\./g, "\\.")} · base · \\d+ ms`));
});

test("Copilot: Explain shows the explanation of the file in a side panel (webview)", { timeout: 240_000 }, async () => {
  assert.ok(page, "the workbench did not open");
  await runCommand(page, "Copilot: Explain");
  log("explain started");
  await page.locator(".editor-group-container .tab", { hasText: "Explain: mathy.py" }).first().waitFor({ state: "visible" });
  // the panel's HTML lives in the webview's inner iframe; VS Code swaps that frame on each update
  const body = await waitFor(async () => {
    for (const f of page.frames()) {
      if (f === page.mainFrame() || !f.url().includes("webview")) continue;
      const t = await f.evaluate(() => (document.querySelector("body > h2") ? document.body.innerText : "")).catch(() => "");
      if (t.includes("mathy.py")) return t.includes("streaming…") || t.includes("Explaining…") ? undefined : t;
    }
    return undefined;
  }, 200_000, "the finished explanation in the webview", 500);
  log(`explain panel:\n${body}`);
  assert.ok(body.replace("mathy.py", "").trim().length > 20, "the explanation is not empty");
  assert.ok(!body.includes("**Error:**") && !body.includes("Error:"), `the explanation failed: ${body}`);
  // the whole file is explained: an overview, then each top-level function by name
  assert.match(body, /Overview/);
  assert.match(body, /\badd\b/);
  assert.match(body, /\bmul\b/);
  await page.screenshot({ path: path.join(SHOTS, "vscode-explain.png") });
});

test("a wrong copilot.serverPath shows an error notification and a stopped status, not nothing", { timeout: 120_000 }, async () => {
  const broken = await openWorkbench(T.wsBroken);
  log("second workbench up (copilot.serverPath broken)");
  const toast = await waitFor(async () => {
    const texts = await broken.locator(".notifications-toasts .notification-toast").allInnerTexts();
    return texts.map((t) => t.replace(/\s+/g, " ")).find((t) => t.includes("Copilot"));
  }, 60_000, "a Copilot error notification");
  log(`notification: ${toast}`);
  assert.match(toast, /copilot-lsp not found/);
  assert.ok(toast.includes(BROKEN), "the notification names the configured path");
  const icon = broken.locator(".notifications-toasts .notification-toast", { hasText: "copilot-lsp not found" }).locator(".codicon-error");
  assert.ok((await icon.count()) > 0, "the notification is an error");
  const status = await waitFor(() => copilotStatus(broken), 10_000, "the Copilot status bar item");
  assert.equal(status, "Copilot: server stopped");
  await broken.close();
});

test("a server that dies at start shows one error notification with its cause, and a stopped status", { timeout: 120_000 }, async () => {
  const p = await openWorkbench(T.wsCrash);
  log("third workbench up (copilot.serverPath: a server that exits at once)");
  // every toast seen (VS Code shows three at a time and hides them after a while): collected from the start
  const seen = new Set();
  const collect = async () => {
    for (const t of await p.locator(".notifications-toasts .notification-toast").allInnerTexts()) seen.add(t.replace(/\s+/g, " ").trim());
    return [...seen];
  };
  const toast = await waitFor(async () => (await collect()).find((t) => t.includes("Copilot: the language server")), 60_000, "the Copilot error notification");
  log(`notification: ${toast}`);
  assert.match(toast, /crashing-copilot-lsp did not start: copilot-lsp: cannot import copilot \(a broken install\)/);
  for (let i = 0; i < 12; i++) {
    await collect();
    await new Promise((r) => setTimeout(r, 250));
  }
  const copilotToasts = [...seen].filter((t) => /Copilot|EPIPE|connection to server/i.test(t));
  assert.deepEqual(copilotToasts, [toast], `one notification, not the client's transport errors: ${JSON.stringify([...seen])}`);
  assert.equal(await copilotStatus(p), "Copilot: server stopped");
  await p.close();
});
