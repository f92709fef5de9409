import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as path from "path";
import { DEFAULTS, languageEnabled, readSettings, resolveServerPath, serverOptions } from "../../src/logic/settings";

const getter = (o: Record<string, unknown>) => (k: string) => o[k];

test("defaults when nothing is set", () => {
  const { settings, problems } = readSettings(getter({}));
  assert.deepEqual(settings, DEFAULTS);
  assert.deepEqual(problems, []);
});

test("valid values are read and trimmed", () => {
  const { settings, problems } = readSettings(getter({ serverPath: " /x/copilot-lsp ", adapter: "team@3", enable: false, debounceMs: 120.4, maxTokens: 64, languages: { python: true, "*": false } }));
  assert.deepEqual(problems, []);
  assert.equal(settings.serverPath, "/x/copilot-lsp");
  assert.equal(settings.adapter, "team@3");
  assert.equal(settings.enable, false);
  assert.equal(settings.debounceMs, 120);
  assert.equal(settings.maxTokens, 64);
  assert.deepEqual(settings.languages, { python: true, "*": false });
});

test("bad values fall back to defaults with one problem each", () => {
  const { settings, problems } = readSettings(getter({ debounceMs: -5, maxTokens: 99999, enable: "yes", languages: { python: "on" }, adapter: 3 }));
  assert.equal(settings.debounceMs, DEFAULTS.debounceMs);
  assert.equal(settings.maxTokens, DEFAULTS.maxTokens);
  assert.equal(settings.enable, true);
  assert.deepEqual(settings.languages, DEFAULTS.languages);
  assert.equal(settings.adapter, null);
  assert.equal(problems.length, 5);
  assert.ok(problems.some((p) => p.includes("copilot.debounceMs")));
});

test("per-language enable: explicit entry beats '*', global enable beats both", () => {
  const s = { ...DEFAULTS, languages: { python: true, markdown: false, "*": false } };
  assert.equal(languageEnabled(s, "python"), true);
  assert.equal(languageEnabled(s, "markdown"), false);
  assert.equal(languageEnabled(s, "go"), false);
  assert.equal(languageEnabled({ ...s, languages: { markdown: false } }, "go"), true);
  assert.equal(languageEnabled({ ...s, enable: false }, "python"), false);
});

test("server options carry only what is set", () => {
  assert.deepEqual(serverOptions(DEFAULTS), { enable: true, languages: DEFAULTS.languages, debounceMs: 75 });
  const o = serverOptions({ ...DEFAULTS, model: "/m", adapter: "", maxTokens: 32 });
  assert.equal(o.model, "/m");
  assert.equal(o.adapter, ""); // "" = base model, must reach the server
  assert.equal(o.maxTokens, 32);
});

test("server path: setting, then workspace .venv, then PATH", () => {
  const exists = new Set(["/ws/b/.venv/bin/copilot-lsp", "/usr/local/bin/copilot-lsp", "/ws/a/tools/copilot-lsp"]);
  const isExe = (p: string) => exists.has(p);
  const envPath = ["/usr/bin", "/usr/local/bin"].join(path.delimiter);
  assert.equal(resolveServerPath("", ["/ws/a", "/ws/b"], envPath, isExe, "linux"), "/ws/b/.venv/bin/copilot-lsp");
  assert.equal(resolveServerPath("", ["/ws/a"], envPath, isExe, "linux"), "/usr/local/bin/copilot-lsp");
  assert.equal(resolveServerPath("tools/copilot-lsp", ["/ws/a"], envPath, isExe, "linux"), "/ws/a/tools/copilot-lsp");
  assert.equal(resolveServerPath("/nope/copilot-lsp", ["/ws/b"], envPath, isExe, "linux"), undefined, "an explicit bad setting is not silently replaced");
  assert.equal(resolveServerPath("", [], "/usr/bin", isExe, "linux"), undefined);
});
