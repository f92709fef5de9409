import { test } from "node:test";
import * as assert from "node:assert/strict";
import { explainParams, feedbackParams, inlineCompletionParams, parseExplainArgs, servedId } from "../../src/logic/request";

test("inline completion params follow LSP 3.18", () => {
  assert.deepEqual(inlineCompletionParams("file:///a.py", { line: 3, character: 4 }, true), {
    textDocument: { uri: "file:///a.py" },
    position: { line: 3, character: 4 },
    context: { triggerKind: 2 },
  });
  const sel = { range: { start: { line: 1, character: 0 }, end: { line: 1, character: 2 } }, text: "fo" };
  const p = inlineCompletionParams("file:///a.py", { line: 1, character: 2 }, false, sel);
  assert.deepEqual(p.context, { triggerKind: 1, selectedCompletionInfo: sel });
});

test("explain: whole file, selection, streaming", () => {
  assert.deepEqual(explainParams("file:///a.py"), { command: "copilot.explain", arguments: [{ uri: "file:///a.py" }] });
  const empty = { start: { line: 2, character: 1 }, end: { line: 2, character: 1 } };
  assert.deepEqual(explainParams("file:///a.py", empty).arguments, [{ uri: "file:///a.py" }]);
  assert.deepEqual(explainParams("file:///a.py", empty, undefined, false).arguments, [{ uri: "file:///a.py", range: empty }]);
  const sel = { start: { line: 0, character: 0 }, end: { line: 4, character: 0 } };
  const s = explainParams("file:///a.py", sel, "tok-1");
  assert.equal(s.command, "copilot.explainStream");
  assert.deepEqual(s.arguments, [{ uri: "file:///a.py", range: sel, token: "tok-1" }]);
});

test("served id comes only from the copilot.accepted command", () => {
  assert.equal(servedId({ command: "copilot.accepted", arguments: ["c7"] }), "c7");
  assert.equal(servedId({ command: "other", arguments: ["c7"] }), undefined);
  assert.equal(servedId({ command: "copilot.accepted", arguments: [7] }), undefined);
  assert.equal(servedId(undefined), undefined);
  assert.deepEqual(feedbackParams("c1"), { id: "c1" });
  assert.deepEqual(feedbackParams("c1", "x"), { id: "c1", text: "x" });
});

test("explain command arguments from a code action: positional or object", () => {
  const r = { start: { line: 0, character: 0 }, end: { line: 3, character: 1 } };
  assert.deepEqual(parseExplainArgs(["file:///a.py", r]), { uri: "file:///a.py", range: r });
  assert.deepEqual(parseExplainArgs([{ uri: "file:///a.py", range: r }]), { uri: "file:///a.py", range: r });
  assert.deepEqual(parseExplainArgs(["file:///a.py"]), { uri: "file:///a.py" });
  assert.deepEqual(parseExplainArgs(["file:///a.py", { start: 1 }]), { uri: "file:///a.py" }, "a malformed range is dropped");
  assert.equal(parseExplainArgs([]), undefined);
  assert.equal(parseExplainArgs([42]), undefined);
});
