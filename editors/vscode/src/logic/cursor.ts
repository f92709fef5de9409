// copilot/cursorMoved: tell the server where the cursor came to rest after a move that was not an edit, so it
// reads the prompt there before the first keystroke (lsp/features/cursor.py).
import { Timers, realTimers } from "./debounce";
import { Pos } from "./request";

export const CURSOR_MOVED = "copilot/cursorMoved";

export function cursorMovedParams(uri: string, position: Pos): Record<string, unknown> {
  return { textDocument: { uri }, position: { line: position.line, character: position.character } };
}

/**
 * Sends `send(uri, pos)` once the cursor has rested `restMs` at a new place. A move caused by typing
 * (an edit of the same document within `editGraceMs` before or after it) sends nothing: the completion
 * request that typing triggers reads the prompt itself. The same place twice in a row is sent once.
 */
export class CursorWatcher {
  private timer: unknown;
  private lastEdit = new Map<string, number>();
  private lastSent = "";

  constructor(
    private readonly send: (uri: string, pos: Pos) => void,
    private readonly restMs = 250,
    private readonly editGraceMs = 100,
    private readonly timers: Timers = realTimers,
    private readonly now: () => number = Date.now,
  ) {}

  edited(uri: string): void {
    this.lastEdit.set(uri, this.now());
    this.cancel();
  }

  moved(uri: string, pos: Pos, emptySelection: boolean): void {
    this.cancel();
    if (!emptySelection || this.now() - (this.lastEdit.get(uri) ?? -Infinity) < this.editGraceMs) return;
    const movedAt = this.now();
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      if ((this.lastEdit.get(uri) ?? -Infinity) >= movedAt) return;
      const key = `${uri}:${pos.line}:${pos.character}`;
      if (key === this.lastSent) return;
      this.lastSent = key;
      this.send(uri, pos);
    }, this.restMs);
  }

  cancel(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }

  dispose(): void {
    this.cancel();
  }
}
