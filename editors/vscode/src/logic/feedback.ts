// Accept/reject bookkeeping: the suggestion shown last per document is "rejected" when the user
// moves on without it (a new suggestion that is not the same one typed ahead, or an explicit
// dismissal); "accepted" when VS Code runs the item's copilot.accepted command.

export interface Shown {
  id: string;
  text: string;
  prefix: string; // the document text just before the cursor when it was shown (tail)
}

export type Send = (event: "accepted" | "rejected", id: string) => void;

const PREFIX_TAIL = 400;

export class FeedbackTracker {
  private shown = new Map<string, Shown>();

  constructor(private readonly send: Send) {}

  /** A suggestion is displayed for `uri` at a cursor whose preceding text is `prefix`. */
  show(uri: string, id: string, text: string, prefix: string): void {
    const tail = prefix.slice(-PREFIX_TAIL);
    const prev = this.shown.get(uri);
    if (prev && prev.id !== id && !this.isTypedAhead(prev, tail, text)) this.send("rejected", prev.id);
    this.shown.set(uri, { id, text, prefix: tail });
  }

  /** The item's accept command ran. */
  accept(id: string): void {
    for (const [uri, s] of this.shown) {
      if (s.id === id) this.shown.delete(uri);
    }
    this.send("accepted", id);
  }

  /** Nothing is shown any more for `uri` (empty answer, closed document, toggled off). */
  dismiss(uri: string, prefix?: string): void {
    const prev = this.shown.get(uri);
    if (!prev) return;
    // Typing the suggestion character by character is neither accept nor reject yet.
    if (prefix !== undefined && this.isTypedAhead(prev, prefix.slice(-PREFIX_TAIL), "")) return;
    this.shown.delete(uri);
    this.send("rejected", prev.id);
  }

  current(uri: string): Shown | undefined {
    return this.shown.get(uri);
  }

  /** The cursor moved forward through the old suggestion (the user typed its first n characters,
   * n >= 0) and the new text, if any, is consistent with what is left of it. */
  private isTypedAhead(prev: Shown, prefix: string, newText: string): boolean {
    for (let n = 0; n <= prev.text.length; n++) {
      if ((prev.prefix + prev.text.slice(0, n)).slice(-PREFIX_TAIL) === prefix) {
        const rest = prev.text.slice(n);
        return newText === "" || rest.startsWith(newText) || newText.startsWith(rest);
      }
    }
    return false;
  }
}
