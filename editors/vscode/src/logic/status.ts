// The status-bar item's text and tooltip from the server's copilot.status answer.

export interface ServerStatus {
  state?: string;
  model?: string | null;
  device?: string | null;
  error?: string | null;
  adapter?: string | null;
  adapter_version?: number | null;
  adapter_error?: string | null;
  last_latency_ms?: number | null;
  service?: { url?: string; problem?: string | null } | null;
}

export function shortModel(model: string | null | undefined): string {
  if (!model) return "?";
  const parts = model.replace(/[\\/]+$/, "").split(/[\\/]/);
  return parts[parts.length - 1] || model;
}

export function adapterLabel(s: ServerStatus): string {
  if (!s.adapter) return "base";
  return s.adapter_version !== null && s.adapter_version !== undefined ? `${s.adapter}@${s.adapter_version}` : s.adapter;
}

export function statusText(s: ServerStatus | undefined, enabled: boolean, running: boolean): string {
  if (!running) return "$(error) Copilot: server stopped";
  if (!enabled) return "$(circle-slash) Copilot: off";
  if (!s) return "$(loading~spin) Copilot";
  if (s.state === "loading") return `$(loading~spin) Copilot: loading ${shortModel(s.model)}`;
  if (s.state === "failed") return "$(error) Copilot: model failed";
  if (s.service?.problem) return "$(warning) Copilot: team service unreachable";
  const lat = typeof s.last_latency_ms === "number" ? ` · ${Math.round(s.last_latency_ms)} ms` : "";
  return `$(sparkle) Copilot: ${shortModel(s.model)} · ${adapterLabel(s)}${lat}`;
}

export function statusTooltip(s: ServerStatus | undefined, enabled: boolean): string {
  const lines = [`Completions: ${enabled ? "on" : "off"} (click to toggle)`];
  if (s) {
    lines.push(`Model: ${s.model ?? "?"} (${s.state ?? "?"}${s.device ? ` on ${s.device}` : ""})`);
    lines.push(`Adapter: ${adapterLabel(s)}`);
    if (typeof s.last_latency_ms === "number") lines.push(`Last completion: ${Math.round(s.last_latency_ms)} ms`);
    if (s.error) lines.push(`Error: ${s.error}`);
    if (s.service) lines.push(`Team service: ${s.service.url ?? "?"}${s.service.problem ? ` — ${s.service.problem}` : " (answering)"}`);
    if (s.adapter_error) lines.push(`Adapter not used: ${s.adapter_error}`);
  }
  return lines.join("\n");
}

// The acceptance figures of the server's copilot.stats answer, as lines for the output channel.
export interface StatsRow {
  version?: string;
  shown: number;
  accepted: number;
  rate: number | null;
  accepted_chars: number;
  latency_p50_ms: number | null;
  latency_p95_ms: number | null;
}

export function statsLines(res: { by_version?: StatsRow[] } | undefined): string[] {
  const rows = res?.by_version ?? [];
  if (rows.length === 0) return ["Copilot acceptance: no suggestions shown yet"];
  const out = ["Copilot acceptance by adapter version (shown = generated and displayed; accepted once per suggestion)"];
  for (const r of rows) {
    const rate = typeof r.rate === "number" ? `${(100 * r.rate).toFixed(1)}%` : "-";
    const p50 = typeof r.latency_p50_ms === "number" ? `${Math.round(r.latency_p50_ms)} ms` : "-";
    out.push(`  ${r.version ?? "?"}: shown ${r.shown}, accepted ${r.accepted} (${rate}), ${r.accepted_chars} chars accepted, latency p50 ${p50}`);
  }
  return out;
}
