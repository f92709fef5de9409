import { test } from "node:test";
import * as assert from "node:assert/strict";
import { adapterLabel, shortModel, statsLines, statusText, statusTooltip } from "../../src/logic/status";
import { renderHtml } from "../../src/logic/markdown";

test("status text shows model, adapter@version, latency and state", () => {
  const s = { state: "ready", model: "/home/u/.local/share/copilot/models/qwen2.5-coder-0.5b/", adapter: "team", adapter_version: 3, last_latency_ms: 123.6 };
  assert.equal(statusText(s, true, true), "$(sparkle) Copilot: qwen2.5-coder-0.5b · team@3 · 124 ms");
  assert.equal(statusText({ ...s, adapter: null }, true, true), "$(sparkle) Copilot: qwen2.5-coder-0.5b · base · 124 ms");
  assert.equal(statusText(s, false, true), "$(circle-slash) Copilot: off");
  assert.equal(statusText(s, true, false), "$(error) Copilot: server stopped");
  assert.match(statusText({ state: "loading", model: "m" }, true, true), /loading m/);
  assert.match(statusText({ state: "failed", error: "boom" }, true, true), /failed/);
  assert.match(statusTooltip({ state: "failed", error: "boom" }, true), /Error: boom/);
  assert.match(statusTooltip(s, false), /Completions: off/);
  assert.equal(adapterLabel({ adapter: "x", adapter_version: null }), "x");
  assert.equal(shortModel("C:\\m\\qwen"), "qwen");
});

test("explanation panel renders markdown and escapes raw HTML", () => {
  const html = renderHtml("a<b>.py", "### `add`\n\nAdds <script>alert(1)</script> numbers.", false);
  assert.match(html, /<h3><code>add<\/code><\/h3>/);
  assert.ok(!html.includes("<script>"), "raw HTML must not pass through");
  assert.match(html, /a&lt;b&gt;\.py/);
  assert.match(html, /streaming/);
  assert.ok(!renderHtml("t", "x", true).includes("streaming"));
});

test("acceptance lines show shown, accepted, rate and latency per adapter version", () => {
  const lines = statsLines({ by_version: [
    { version: "acme@1", shown: 3, accepted: 1, rate: 1 / 3, accepted_chars: 8, latency_p50_ms: 200.4, latency_p95_ms: 300 },
    { version: "all", shown: 3, accepted: 1, rate: 1 / 3, accepted_chars: 8, latency_p50_ms: 200.4, latency_p95_ms: 300 },
  ] });
  assert.equal(lines.length, 3);
  assert.equal(lines[1], "  acme@1: shown 3, accepted 1 (33.3%), 8 chars accepted, latency p50 200 ms");
  assert.deepEqual(statsLines({ by_version: [] }), ["Copilot acceptance: no suggestions shown yet"]);
});
