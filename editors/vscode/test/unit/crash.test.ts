import { test } from "node:test";
import * as assert from "node:assert/strict";
import { RestartPolicy, StderrTail, stoppedMessage } from "../../src/logic/crash";

test("stderr tail keeps the last non-empty lines", () => {
  const t = new StderrTail(3);
  assert.equal(t.last(), undefined);
  for (const l of ["Traceback (most recent call last):", "  File x", "", "ModuleNotFoundError: No module named 'copilot'", "   "]) t.push(l);
  assert.equal(t.last(), "ModuleNotFoundError: No module named 'copilot'");
  t.clear();
  assert.equal(t.last(), undefined);
});

test("restart policy: at most 4 crashes within 3 minutes are restarted", () => {
  let now = 0;
  const p = new RestartPolicy(4, 180_000, () => now);
  for (let i = 0; i < 4; i++) {
    assert.equal(p.crashed(), true);
    now += 1000;
  }
  assert.equal(p.crashed(), false, "the fifth crash within 3 minutes gives up");
  now += 200_000;
  assert.equal(p.crashed(), true, "older crashes no longer count");
});

test("the stopped message names the server and the cause, not only the client's transport error", () => {
  const m = stoppedMessage("/x/copilot-lsp", false, "ModuleNotFoundError: No module named 'copilot'", new Error("write EPIPE"));
  assert.match(m, /^Copilot: the language server \/x\/copilot-lsp did not start: ModuleNotFoundError: No module named 'copilot'\./);
  assert.doesNotMatch(m, /EPIPE/);
  assert.match(stoppedMessage("s", false, undefined, new Error("write EPIPE")), /did not start: write EPIPE\./);
  assert.match(stoppedMessage("s", true, undefined), /^Copilot: the language server s stopped and was not restarted\. See/);
  assert.ok(stoppedMessage("s", true, "x".repeat(1000)).length < 450, "a long line is clipped");
});
