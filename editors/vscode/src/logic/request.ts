// The requests the extension sends, built from plain values (shared by the extension and the protocol test).

export interface Pos {
  line: number;
  character: number;
}
export interface Rng {
  start: Pos;
  end: Pos;
}

/** LSP InlineCompletionTriggerKind: 1 = Invoked, 2 = Automatic. */
export function inlineCompletionParams(
  uri: string,
  position: Pos,
  automatic: boolean,
  selected?: { range: Rng; text: string },
): Record<string, unknown> {
  const context: Record<string, unknown> = { triggerKind: automatic ? 2 : 1 };
  if (selected) context.selectedCompletionInfo = { range: selected.range, text: selected.text };
  return { textDocument: { uri }, position: { line: position.line, character: position.character }, context };
}

/**
 * workspace/executeCommand params for copilot.explain / copilot.explainStream. No selection
 * (or an empty one with `wholeFileIfEmpty`) explains the whole file; an empty range explains
 * the function around the cursor.
 */
export function explainParams(uri: string, selection?: Rng, token?: string, wholeFileIfEmpty = true): {
  command: string;
  arguments: unknown[];
} {
  const arg: Record<string, unknown> = { uri };
  const empty = selection !== undefined && selection.start.line === selection.end.line && selection.start.character === selection.end.character;
  if (selection && !(empty && wholeFileIfEmpty)) arg.range = selection;
  if (token !== undefined) arg.token = token;
  return { command: token !== undefined ? "copilot.explainStream" : "copilot.explain", arguments: [arg] };
}

/** Feedback notifications (lsp/features/feedback.py). */
export const ACCEPTED = "copilot/accepted";
export const REJECTED = "copilot/rejected";
export function feedbackParams(id: string, text?: string): Record<string, unknown> {
  return text === undefined ? { id } : { id, text };
}

/** The served-completion id carried by an item's `copilot.accepted` command, if any. */
export function servedId(command: { command: string; arguments?: unknown[] } | undefined): string | undefined {
  if (!command || command.command !== "copilot.accepted") return undefined;
  const a = command.arguments?.[0];
  return typeof a === "string" ? a : undefined;
}

/** The (uri, range) of a copilot.explain command from the server's code action: positional
 * `[uri, range?]` or one object `{uri, range?}`; undefined when there is no uri. */
export function parseExplainArgs(args: unknown[]): { uri: string; range?: Rng } | undefined {
  const a = args[0];
  let uri: unknown;
  let range: unknown;
  if (typeof a === "string") [uri, range] = [a, args[1]];
  else if (a && typeof a === "object") ({ uri, range } = a as { uri?: unknown; range?: unknown });
  if (typeof uri !== "string" || !uri) return undefined;
  const isPos = (p: unknown): p is Pos =>
    !!p && typeof (p as Pos).line === "number" && typeof (p as Pos).character === "number";
  const r = range as Rng | undefined;
  return r && isPos(r.start) && isPos(r.end) ? { uri, range: { start: r.start, end: r.end } } : { uri };
}
