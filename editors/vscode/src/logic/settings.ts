// The extension's settings, read through a getter so this module needs no `vscode` import.
import * as path from "path";

export interface CopilotSettings {
  serverPath: string; // "" = find it
  model: string; // "" = server default
  adapter: string | null; // null = workspace mapping; "" = base model
  enable: boolean;
  languages: Record<string, boolean>; // languageId -> enabled, "*" = default
  debounceMs: number;
  maxTokens: number; // 0 = server default
}

export const DEFAULTS: CopilotSettings = {
  serverPath: "",
  model: "",
  adapter: null,
  enable: true,
  languages: { "*": true, plaintext: false, markdown: false, scminput: false },
  debounceMs: 75,
  maxTokens: 0,
};

/** Read and validate settings; bad values fall back to defaults and are listed in `problems`. */
export function readSettings(get: (key: string) => unknown): { settings: CopilotSettings; problems: string[] } {
  const problems: string[] = [];
  const s: CopilotSettings = { ...DEFAULTS, languages: { ...DEFAULTS.languages } };
  const str = (key: keyof CopilotSettings): string | undefined => {
    const v = get(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string") {
      problems.push(`copilot.${key} must be a string`);
      return undefined;
    }
    return v.trim();
  };
  s.serverPath = str("serverPath") ?? "";
  s.model = str("model") ?? "";
  const adapter = get("adapter");
  if (adapter === null || adapter === undefined) s.adapter = null;
  else if (typeof adapter === "string") s.adapter = adapter.trim();
  else problems.push("copilot.adapter must be a string");
  const enable = get("enable");
  if (typeof enable === "boolean") s.enable = enable;
  else if (enable !== undefined) problems.push("copilot.enable must be true or false");
  const langs = get("languages");
  if (langs !== undefined && langs !== null) {
    if (typeof langs === "object" && !Array.isArray(langs) && Object.values(langs).every((v) => typeof v === "boolean")) {
      s.languages = { ...(langs as Record<string, boolean>) };
    } else problems.push("copilot.languages must map language ids to true/false");
  }
  const num = (key: "debounceMs" | "maxTokens", lo: number, hi: number): void => {
    const v = get(key);
    if (v === undefined || v === null) return;
    if (typeof v === "number" && Number.isFinite(v) && v >= lo && v <= hi) s[key] = Math.round(v);
    else problems.push(`copilot.${key} must be a number from ${lo} to ${hi}`);
  };
  num("debounceMs", 0, 5000);
  num("maxTokens", 0, 1024);
  return { settings: s, problems };
}

/** Completions on for this language? Explicit language entry > "*" > true. */
export function languageEnabled(s: CopilotSettings, languageId: string): boolean {
  if (!s.enable) return false;
  if (Object.prototype.hasOwnProperty.call(s.languages, languageId)) return s.languages[languageId];
  return s.languages["*"] ?? true;
}

/** The server's initializationOptions / didChangeConfiguration settings (lsp/features/configuration.py). */
export function serverOptions(s: CopilotSettings): Record<string, unknown> {
  const out: Record<string, unknown> = {
    enable: s.enable,
    languages: s.languages,
    debounceMs: s.debounceMs,
  };
  if (s.model) out.model = s.model;
  if (s.adapter !== null) out.adapter = s.adapter;
  if (s.maxTokens > 0) out.maxTokens = s.maxTokens;
  return out;
}

/**
 * Where `copilot-lsp` is: the setting (relative paths against the first workspace folder),
 * else <folder>/.venv/bin/copilot-lsp for each workspace folder, else the first match on PATH.
 * Returns undefined when nothing is found.
 */
export function resolveServerPath(
  setting: string,
  folders: readonly string[],
  envPath: string | undefined,
  isExecutable: (p: string) => boolean,
  platform: NodeJS.Platform = process.platform,
): string | undefined {
  const exe = platform === "win32" ? "copilot-lsp.exe" : "copilot-lsp";
  const venvBin = platform === "win32" ? path.join(".venv", "Scripts") : path.join(".venv", "bin");
  if (setting) {
    const expanded = setting.startsWith("~") ? path.join(process.env.HOME ?? "", setting.slice(1)) : setting;
    const p = path.isAbsolute(expanded) || folders.length === 0 ? expanded : path.join(folders[0], expanded);
    return isExecutable(p) ? p : undefined;
  }
  for (const f of folders) {
    const p = path.join(f, venvBin, exe);
    if (isExecutable(p)) return p;
  }
  for (const dir of (envPath ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, exe);
    if (isExecutable(p)) return p;
  }
  return undefined;
}
