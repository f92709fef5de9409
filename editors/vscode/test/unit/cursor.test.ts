import { test } from "node:test";
import * as assert from "node:assert/strict";
import { Timers } from "../../src/logic/debounce";
import { CURSOR_MOVED, CursorWatcher, cursorMovedParams } from "../../src/logic/cursor";

class Clock implements Timers {
  now = 1000;
  private due: { at: number; fn: () => void; id: number }[] = [];
  private seq = 0;
  setTimeout(fn: () => void, ms: number): unknown {
    this.due.push({ at: this.now + ms, fn, id: ++this.seq });
    return this.seq;
  }
  clearTimeout(h: unknown): void {
    this.due = this.due.filter((d) => d.id !== h);
  }
  advance(ms: number): void {
    this.now += ms;
    const ready = this.due.filter((d) => d.at <= this.now);
    this.due = this.due.filter((d) => d.at > this.now);
    for (const d of ready) d.fn();
  }
}

function setup() {
  const clock = new Clock();
  const sent: string[] = [];
  const w = new CursorWatcher((uri, p) => sent.push(`${uri}:${p.line}:${p.character}`), 250, 100, clock, () => clock.now);
  return { clock, sent, w };
}

test("a move that rests is sent once, with the LSP params shape", () => {
  const { clock, sent, w } = setup();
  w.moved("file:///a.py", { line: 3, character: 7 }, true);
  clock.advance(249);
  assert.deepEqual(sent, []);
  clock.advance(1);
  assert.deepEqual(sent, ["file:///a.py:3:7"]);
  w.moved("file:///a.py", { line: 3, character: 7 }, true);
  clock.advance(300);
  assert.equal(sent.length, 1); // the same place again: nothing new to read
  assert.equal(CURSOR_MOVED, "copilot/cursorMoved");
  assert.deepEqual(cursorMovedParams("u", { line: 1, character: 2 }), { textDocument: { uri: "u" }, position: { line: 1, character: 2 } });
});

test("typing moves the cursor but sends nothing; a later click does", () => {
  const { clock, sent, w } = setup();
  w.edited("file:///a.py");
  w.moved("file:///a.py", { line: 0, character: 1 }, true); // the selection change of the keystroke
  clock.advance(500);
  assert.deepEqual(sent, []);
  w.moved("file:///a.py", { line: 9, character: 0 }, true);
  clock.advance(100);
  w.edited("file:///a.py"); // typing started before the rest time: the completion request reads the prompt
  clock.advance(500);
  assert.deepEqual(sent, []);
  w.moved("file:///a.py", { line: 20, character: 4 }, true);
  clock.advance(250);
  assert.deepEqual(sent, ["file:///a.py:20:4"]);
});

test("a selection, or a newer move, is not sent", () => {
  const { clock, sent, w } = setup();
  w.moved("file:///a.py", { line: 1, character: 0 }, false);
  clock.advance(300);
  w.moved("file:///a.py", { line: 2, character: 0 }, true);
  clock.advance(100);
  w.moved("file:///b.py", { line: 5, character: 0 }, true);
  clock.advance(300);
  assert.deepEqual(sent, ["file:///b.py:5:0"]);
});
