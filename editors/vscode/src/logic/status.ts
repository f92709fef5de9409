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
    if (s.adapter_error) lines.push(`Adapter not used: ${s.adapter_error}`);
  }
  return lines.join("\n");
}
