import { test } from "node:test";
import * as assert from "node:assert/strict";
import { Debouncer, Timers } from "../../src/logic/debounce";

/** A manual clock: nothing fires until advance(). */
class FakeTimers implements Timers {
  now = 0;
  private seq = 0;
  private due = new Map<number, { at: number; fn: () => void }>();
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.due.set(id, { at: this.now + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.due.delete(h as number);
  }
  advance(ms: number): void {
    this.now += ms;
    for (const [id, t] of [...this.due].sort((a, b) => a[1].at - b[1].at)) {
      if (t.at <= this.now) {
        this.due.delete(id);
        t.fn();
      }
    }
  }
}

function token() {
  const listeners: (() => void)[] = [];
  return {
    isCancellationRequested: false,
    onCancellationRequested(l: () => void) {
      listeners.push(l);
      return { dispose: () => listeners.splice(listeners.indexOf(l), 1) };
    },
    cancel() {
      this.isCancellationRequested = true;
      for (const l of [...listeners]) l();
    },
  };
}

test("fires after the quiet period, not before", async () => {
  const t = new FakeTimers();
  const d = new Debouncer(t);
  let settled: boolean | undefined;
  const p = d.wait("a", 100).then((v) => (settled = v));
  t.advance(99);
  await Promise.resolve();
  assert.equal(settled, undefined);
  t.advance(1);
  await p;
  assert.equal(settled, true);
  assert.equal(d.size, 0);
});

test("a newer keystroke on the same document supersedes the older wait; other documents are independent", async () => {
  const t = new FakeTimers();
  const d = new Debouncer(t);
  const first = d.wait("a", 100);
  const other = d.wait("b", 100);
  t.advance(50);
  const second = d.wait("a", 100);
  assert.equal(await first, false);
  t.advance(60);
  assert.equal(await other, true);
  t.advance(40);
  assert.equal(await second, true);
});

test("cancellation ends the wait with false", async () => {
  const t = new FakeTimers();
  const d = new Debouncer(t);
  const tok = token();
  const p = d.wait("a", 100, tok);
  tok.cancel();
  assert.equal(await p, false);
  assert.equal(d.size, 0);
  assert.equal(await d.wait("a", 100, tok), false, "an already-cancelled token never waits");
});

test("zero debounce resolves at once; dispose settles everything", async () => {
  const t = new FakeTimers();
  const d = new Debouncer(t);
  assert.equal(await d.wait("a", 0), true);
  const p = d.wait("b", 100);
  d.dispose();
  assert.equal(await p, false);
});
