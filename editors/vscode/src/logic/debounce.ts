// Per-key debounce: a newer wait for the same key ends the older one with `false`.

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface Cancellation {
  isCancellationRequested: boolean;
  onCancellationRequested(listener: () => void): { dispose(): void };
}

export class Debouncer {
  private pending = new Map<string, { handle: unknown; resolve: (ok: boolean) => void }>();

  constructor(private readonly timers: Timers = realTimers) {}

  /** Resolves true after `ms` with no newer wait on `key`; false if superseded or cancelled. */
  wait(key: string, ms: number, token?: Cancellation): Promise<boolean> {
    this.settle(key, false);
    if (token?.isCancellationRequested) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const sub = token?.onCancellationRequested(() => this.settle(key, false));
      const done = (ok: boolean): void => {
        sub?.dispose();
        resolve(ok);
      };
      if (ms <= 0) {
        done(true);
        return;
      }
      const handle = this.timers.setTimeout(() => this.settle(key, true), ms);
      this.pending.set(key, { handle, resolve: done });
    });
  }

  private settle(key: string, ok: boolean): void {
    const p = this.pending.get(key);
    if (!p) return;
    this.pending.delete(key);
    this.timers.clearTimeout(p.handle);
    p.resolve(ok);
  }

  get size(): number {
    return this.pending.size;
  }

  dispose(): void {
    for (const key of [...this.pending.keys()]) this.settle(key, false);
  }
}
