// The extension's protocol path against the REAL language server (`copilot-lsp --model <tiny model>`),
// driven from Node with vscode-languageserver-protocol, with params built by the extension's own code.
// Needs COPILOT_LSP (the server executable) and COPILOT_TINY_MODEL (a model folder); editors/test.sh sets both.
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as cp from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  CodeActionRequest,
  createProtocolConnection,
  DidChangeConfigurationNotification,
  DidOpenTextDocumentNotification,
  ExecuteCommandRequest,
  ExitNotification,
  InitializedNotification,
  InitializeRequest,
  InlineCompletionRequest,
  ProtocolConnection,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  WorkDoneProgress,
  WorkDoneProgressBegin,
  WorkDoneProgressEnd,
  WorkDoneProgressReport,
  type InlineCompletionList,
  type InlineCompletionParams,
} from "vscode-languageserver-protocol/node";
import { ACCEPTED, REJECTED, explainParams, feedbackParams, inlineCompletionParams, servedId } from "../../src/logic/request";
import { readSettings, serverOptions } from "../../src/logic/settings";

const serverExe = process.env.COPILOT_LSP;
const model = process.env.COPILOT_TINY_MODEL;
let proc: cp.ChildProcess;
let conn: ProtocolConnection;
let home: string;
let stderr = "";
const exited = new Promise<number | null>((resolve) => {
  before(() => {
    assert.ok(serverExe && fs.existsSync(serverExe), `COPILOT_LSP must name the copilot-lsp executable (got ${serverExe})`);
    assert.ok(model && fs.existsSync(path.join(model, "config.json")), `COPILOT_TINY_MODEL must name a model folder (got ${model})`);
    home = fs.mkdtempSync(path.join(os.tmpdir(), "copilot-vscode-test-"));
    proc = cp.spawn(serverExe, ["--model", model], {
      env: { ...process.env, COPILOT_HOME: home, OMP_WAIT_POLICY: "PASSIVE", HF_HUB_OFFLINE: "1", TRANSFORMERS_OFFLINE: "1", HF_DATASETS_OFFLINE: "1" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    proc.on("exit", (code) => resolve(code));
    conn = createProtocolConnection(new StreamMessageReader(proc.stdout!), new StreamMessageWriter(proc.stdin!));
    conn.listen();
  });
});

after(() => {
  if (proc && proc.exitCode === null) proc.kill();
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

const uri = "file:///tmp/copilot-vscode-test/mathy.py";
const text = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    ";
const cursor = { line: 5, character: 4 };

async function command<T>(p: { command: string; arguments: unknown[] }): Promise<T> {
  return (await conn.sendRequest(ExecuteCommandRequest.type, p)) as T;
}

async function inline(): Promise<InlineCompletionList> {
  const params = inlineCompletionParams(uri, cursor, true) as unknown as InlineCompletionParams;
  const r = await conn.sendRequest(InlineCompletionRequest.type, params);
  assert.ok(r && !Array.isArray(r), "the server answers an InlineCompletionList");
  return r;
}

test("initialize advertises inline completion and the copilot commands", async () => {
  const { settings } = readSettings((k) => ({ debounceMs: 10, languages: { "*": true } })[k]);
  const res = await conn.sendRequest(InitializeRequest.type, {
    processId: process.pid,
    rootUri: null,
    capabilities: { window: { workDoneProgress: true }, textDocument: { inlineCompletion: { dynamicRegistration: false } } },
    initializationOptions: serverOptions(settings),
  });
  assert.ok(res.capabilities.inlineCompletionProvider, "inlineCompletionProvider");
  const cmds = res.capabilities.executeCommandProvider?.commands ?? [];
  for (const c of ["copilot.explain", "copilot.explainStream", "copilot.status"]) assert.ok(cmds.includes(c), `command ${c}`);
  await conn.sendNotification(InitializedNotification.type, {});
  let state = "";
  for (let i = 0; i < 300 && state !== "ready"; i++) {
    const st = await command<{ state: string; error: string | null }>({ command: "copilot.status", arguments: [] });
    state = st.state;
    assert.notEqual(state, "failed", `model failed to load: ${st.error}`);
    if (state !== "ready") await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(state, "ready");
  await conn.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: "python", version: 1, text } });
});

let shownId = "";

test("inlineCompletion returns ghost text with an accept command", async () => {
  const list = await inline();
  assert.equal(list.items.length, 1);
  const item = list.items[0];
  assert.equal(typeof item.insertText, "string");
  assert.ok((item.insertText as string).length > 0, "non-empty suggestion");
  assert.deepEqual(item.range?.start, cursor);
  const id = servedId(item.command);
  assert.ok(id, "item carries copilot.accepted with the served id");
  shownId = id;
});

test("accepted feedback reaches the server's feedback log", async () => {
  await conn.sendNotification(ACCEPTED, feedbackParams(shownId));
  const file = path.join(home, "feedback", "lsp-feedback.jsonl");
  type Row = { event: string; id: string; completion?: string };
  let all: Row[] = [];
  const feedback = () => all.filter((r) => r.event !== "shown");
  for (let i = 0; i < 50 && feedback().length === 0; i++) {
    if (fs.existsSync(file)) all = fs.readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Row);
    if (feedback().length === 0) await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(feedback().map((r) => [r.event, r.id]), [["accepted", shownId]]);
  const shown = all.filter((r) => r.event === "shown");
  assert.ok(shown.some((r) => r.id === shownId), "the suggestion was logged as shown");
  assert.ok(shown.every((r) => r.completion === undefined), "shown lines carry no code");
});

test("copilot.stats counts the shown and the accepted suggestion", async () => {
  type Row = { version: string; shown: number; accepted: number };
  const res = (await conn.sendRequest(ExecuteCommandRequest.type, { command: "copilot.stats", arguments: [] })) as
    { by_version: Row[] };
  const all = res.by_version.find((r) => r.version === "all");
  assert.ok(all && all.shown >= 1 && all.accepted === 1, JSON.stringify(res));
});

test("rejected feedback is logged too", async () => {
  const list = await inline();
  const id = servedId(list.items[0].command);
  assert.ok(id);
  await conn.sendNotification(REJECTED, feedbackParams(id));
  const file = path.join(home, "feedback", "lsp-feedback.jsonl");
  let last: { event: string; id: string } | undefined;
  for (let i = 0; i < 50 && last?.id !== id; i++) {
    const lines = fs.readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { event: string; id: string });
    last = lines.filter((r) => r.event !== "shown").pop();
    if (last?.id !== id) await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual([last?.event, last?.id], ["rejected", id]);
});

test("the Explain code action carries copilot.explain(uri, range) as the extension's middleware expects", async () => {
  const actions = (await conn.sendRequest(CodeActionRequest.type, {
    textDocument: { uri },
    range: { start: { line: 1, character: 4 }, end: { line: 1, character: 4 } },
    context: { diagnostics: [] },
  })) as { title: string; command?: { command: string; arguments?: unknown[] } }[];
  const explain = actions.find((a) => a.command?.command === "copilot.explain");
  assert.ok(explain, JSON.stringify(actions));
  assert.match(explain.title, /Explain this function \(add\)/);
  const [u, r] = explain.command!.arguments as [string, { start: { line: number }; end: { line: number } }];
  assert.equal(u, uri);
  assert.equal(r.start.line, 0);
  assert.ok(r.end.line >= 1);
});

test("per-language disable via didChangeConfiguration silences completions", async () => {
  const off = readSettings((k) => ({ languages: { python: false, "*": true } })[k]).settings;
  await conn.sendNotification(DidChangeConfigurationNotification.type, { settings: serverOptions(off) });
  assert.equal((await inline()).items.length, 0);
  const on = readSettings(() => undefined).settings;
  await conn.sendNotification(DidChangeConfigurationNotification.type, { settings: serverOptions(on) });
  assert.equal((await inline()).items.length, 1);
});

test("copilot.explain returns markdown sections", async () => {
  const res = await command<{ markdown: string; sections: number }>(explainParams(uri));
  assert.equal(typeof res.markdown, "string");
  assert.match(res.markdown, /### `add`/);
  assert.match(res.markdown, /### `mul`/);
  assert.ok(res.sections >= 2);
});

test("copilot.explainStream reports $/progress begin..end on the client's token", async () => {
  const token = "vscode-test-token";
  const seen: string[] = [];
  const sub = conn.onProgress(WorkDoneProgress.type, token, (v: WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd) => {
    seen.push(v.kind);
  });
  const sel = { start: { line: 0, character: 0 }, end: { line: 1, character: 16 } };
  const res = await command<{ markdown: string }>(explainParams(uri, sel, token));
  await new Promise((r) => setTimeout(r, 50));
  sub.dispose();
  assert.equal(typeof res.markdown, "string");
  assert.ok(res.markdown.startsWith("### "), res.markdown);
  assert.equal(seen[0], "begin");
  assert.equal(seen[seen.length - 1], "end");
});

test("copilot.status reports the model and the last latency", async () => {
  const st = await command<{ model: string; last_latency_ms: number; state: string }>({ command: "copilot.status", arguments: [] });
  assert.equal(st.state, "ready");
  assert.equal(st.model, model);
  assert.equal(typeof st.last_latency_ms, "number");
});

test("shutdown and exit end the server with code 0", async () => {
  await conn.sendRequest(ShutdownRequest.type);
  await conn.sendNotification(ExitNotification.type);
  const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r("timeout"), 10000))]);
  assert.equal(code, 0, `server exit (stderr tail: ${stderr.slice(-500)})`);
  conn.dispose();
});
