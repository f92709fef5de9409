// When copilot-lsp does not start or keeps exiting: what the user is told (one message naming the cause,
// instead of the language client's own pop-ups, which say only "write EPIPE" / "connection to server is
// erroring"), and whether the server is restarted after a crash.

/** The server's last lines on stderr: a failed start's cause is usually the last one (a traceback's error). */
export class StderrTail {
  private lines: string[] = [];
  constructor(private readonly max = 20) {}

  push(line: string): void {
    const t = line.trim();
    if (!t) return;
    this.lines.push(t);
    if (this.lines.length > this.max) this.lines.shift();
  }

  /** The last line written, if any. */
  last(): string | undefined {
    return this.lines[this.lines.length - 1];
  }

  clear(): void {
    this.lines = [];
  }
}

/** Restarts a server that crashed while running, unless it crashed more than `max` times within `windowMs`. */
export class RestartPolicy {
  private times: number[] = [];
  constructor(
    private readonly max = 4,
    private readonly windowMs = 3 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Record a crash now; true: restart, false: give up. */
  crashed(): boolean {
    const t = this.now();
    this.times = this.times.filter((x) => t - x <= this.windowMs);
    this.times.push(t);
    return this.times.length <= this.max;
  }
}

function clip(s: string, n = 300): string {
  const one = s.replace(/\s+/g, " ").trim();
  return one.length > n ? `${one.slice(0, n - 1)}…` : one;
}

/**
 * The error shown when the server stopped without being asked to: `everRan` false = it never started.
 * `stderr` is its last stderr line (the cause, usually); `err` what the client saw (often only "write EPIPE").
 */
export function stoppedMessage(command: string, everRan: boolean, stderr: string | undefined, err?: unknown): string {
  const what = everRan ? "stopped and was not restarted" : "did not start";
  const errText = err instanceof Error ? err.message : typeof err === "string" ? err : "";
  const why = stderr ?? errText;
  return `Copilot: the language server ${command} ${what}${why ? `: ${clip(why)}` : ""}. See the Copilot output; check the install (scripts/install.sh) or copilot.serverPath.`;
}
