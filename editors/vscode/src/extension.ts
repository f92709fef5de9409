// VS Code extension: starts `copilot-lsp`, shows its inline completions (the language client's
// built-in inlineCompletion feature, wrapped by middleware for enable/per-language/debounce and
// accept/reject feedback), "Copilot: Explain" in a streaming side panel, and a status-bar item.
import * as fs from "fs";
import * as path from "path";
import * as readline from "readline";
import * as vscode from "vscode";
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
  TransportKind,
  WorkDoneProgress,
} from "vscode-languageclient/node";
import { RestartPolicy, StderrTail, stoppedMessage } from "./logic/crash";
import { CURSOR_MOVED, CursorWatcher, cursorMovedParams } from "./logic/cursor";
import { Debouncer } from "./logic/debounce";
import { FeedbackTracker } from "./logic/feedback";
import { ACCEPTED, REJECTED, explainParams, feedbackParams, parseExplainArgs, servedId } from "./logic/request";
import { CopilotSettings, languageEnabled, readSettings, resolveServerPath, serverOptions } from "./logic/settings";
import { ServerStatus, StatsRow, statsLines, statusText, statusTooltip } from "./logic/status";
import { ExplainPanel } from "./explainPanel";

let client: LanguageClient | undefined;
let settings: CopilotSettings;
let lastStatus: ServerStatus | undefined;
let statusItem: vscode.StatusBarItem;
let output: vscode.LogOutputChannel;
const debouncer = new Debouncer();
const cursor = new CursorWatcher((uri, pos) => {
  if (client?.state === State.Running) void client.sendNotification(CURSOR_MOVED, cursorMovedParams(uri, pos));
});
const panel = new ExplainPanel();
let tracker: FeedbackTracker;
let statusTimer: ReturnType<typeof setTimeout> | undefined;
let explainSeq = 0;

/**
 * The language client without its own error pop-ups: for a server that dies at start they are three toasts
 * saying "write EPIPE" / "connection to server is erroring" (VS Code shows three at a time), which hide the
 * cause. Everything is still logged to the Copilot output; the extension shows one message of its own when
 * the server stops unasked (startClient's onDidChangeState listener).
 */
class CopilotClient extends LanguageClient {
  override error(message: string, data?: unknown, _showNotification?: boolean | "force"): void {
    super.error(message, data, false);
  }
}

function loadSettings(): CopilotSettings {
  const cfg = vscode.workspace.getConfiguration("copilot");
  const { settings: s, problems } = readSettings((k) => cfg.get(k));
  for (const p of problems) void vscode.window.showWarningMessage(`Copilot: setting ignored: ${p}`);
  return s;
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function prefixAt(doc: vscode.TextDocument, pos: vscode.Position): string {
  return doc.getText(new vscode.Range(new vscode.Position(Math.max(0, pos.line - 20), 0), pos));
}

function renderStatus(): void {
  const running = client?.state === State.Running;
  statusItem.text = statusText(lastStatus, settings.enable, running);
  statusItem.tooltip = statusTooltip(lastStatus, settings.enable);
  statusItem.show();
}

async function refreshStatus(): Promise<void> {
  if (client?.state !== State.Running) return renderStatus();
  try {
    lastStatus = (await client.sendRequest(ExecuteCommandRequest.type, { command: "copilot.status", arguments: [] })) as ServerStatus;
  } catch {
    lastStatus = undefined;
  }
  renderStatus();
  // Poll while the model loads; afterwards completions trigger refreshes.
  if (lastStatus?.state === "loading") scheduleStatus(1000);
}

function scheduleStatus(ms: number): void {
  if (statusTimer) return;
  statusTimer = setTimeout(() => {
    statusTimer = undefined;
    void refreshStatus();
  }, ms);
}

async function runExplain(uri: vscode.Uri, selection: vscode.Range | undefined): Promise<void> {
  if (!client || client.state !== State.Running) {
    void vscode.window.showErrorMessage("Copilot: the language server is not running.");
    return;
  }
  const c = client;
  const title = path.basename(uri.fsPath) + (selection && !selection.isEmpty ? ` (lines ${selection.start.line + 1}-${selection.end.line + 1})` : "");
  const token = `copilot-explain-${process.pid}-${++explainSeq}`;
  const rng = selection ? { start: { line: selection.start.line, character: selection.start.character }, end: { line: selection.end.line, character: selection.end.character } } : undefined;
  panel.show(title);
  const sub = c.onProgress(WorkDoneProgress.type, token, (value) => {
    if (value.kind === "report" && typeof value.message === "string") panel.update(title, value.message, false);
  });
  try {
    const result = (await c.sendRequest(ExecuteCommandRequest.type, explainParams(uri.toString(), rng, token))) as { markdown?: string } | null;
    panel.update(title, result?.markdown ?? "", true);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    panel.update(title, `**Error:** ${msg}`, true);
  } finally {
    sub.dispose();
  }
}

function startClient(context: vscode.ExtensionContext): void {
  const folders = (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
  const command = resolveServerPath(settings.serverPath, folders, process.env.PATH, isExecutable);
  if (!command) {
    const where = settings.serverPath ? `copilot.serverPath (${settings.serverPath})` : "<workspace>/.venv/bin or PATH";
    void vscode.window.showErrorMessage(`Copilot: copilot-lsp not found in ${where}. Install the project (scripts/install.sh) or set copilot.serverPath.`);
    renderStatus();
    return;
  }
  const server: ServerOptions = { command, args: [], transport: TransportKind.stdio };
  const stderr = new StderrTail();
  const restarts = new RestartPolicy();
  let restarting = false; // the error handler chose to restart a crashed server
  const lines = (input: NodeJS.ReadableStream, sink: (line: string) => void): void => {
    readline.createInterface({ input, crlfDelay: Infinity, terminal: false, historySize: 0 }).on("line", sink);
  };
  const options: LanguageClientOptions = {
    documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
    initializationOptions: serverOptions(settings),
    outputChannel: output,
    // the server's stderr goes to the output, as by default, and its last line into the stopped message
    stdioOptions: {
      stdout: (input, channel) => lines(input, (l) => channel.info(l)),
      stderr: (input, channel) =>
        lines(input, (l) => {
          channel.error(l);
          stderr.push(l);
        }),
    },
    // a server that crashed while running is restarted (at most 4 times in 3 minutes); one that never ran is
    // not; either way without the client's pop-ups (the onDidChangeState listener below reports it once)
    errorHandler: {
      error: (_error, _message, count) => ({ action: count !== undefined && count <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown, handled: true }),
      closed: () => {
        restarting = c.state === State.Running && restarts.crashed(); // (c: this client, made below)
        return { action: restarting ? CloseAction.Restart : CloseAction.DoNotRestart, handled: true };
      },
    },
    initializationFailedHandler: () => false,
    middleware: {
      provideInlineCompletionItems: async (document, position, ctx, token, next) => {
        const uri = document.uri.toString();
        if (!languageEnabled(settings, document.languageId)) return [];
        if (!(await debouncer.wait(uri, settings.debounceMs, token))) return [];
        const result = await next(document, position, ctx, token);
        const items = Array.isArray(result) ? result : (result?.items ?? []);
        const first = items[0];
        const id = first ? servedId(first.command) : undefined;
        const text = first && typeof first.insertText === "string" ? first.insertText : undefined;
        if (id && text !== undefined) tracker.show(uri, id, text, prefixAt(document, position));
        else if (!token.isCancellationRequested) tracker.dismiss(uri, prefixAt(document, position));
        scheduleStatus(300);
        return result;
      },
      executeCommand: async (cmd, args, next) => {
        if (cmd === "copilot.accepted") {
          const id = typeof args[0] === "string" ? args[0] : undefined;
          if (id) tracker.accept(id);
          return true;
        }
        const ex = cmd === "copilot.explain" ? parseExplainArgs(args) : undefined;
        if (ex) {
          // the server's "Explain this function" code action: stream it into the panel instead
          const r = ex.range;
          await runExplain(vscode.Uri.parse(ex.uri), r ? new vscode.Range(r.start.line, r.start.character, r.end.line, r.end.character) : undefined);
          return null;
        }
        return next(cmd, args) as unknown;
      },
    },
  };
  const c = new CopilotClient("copilot", "Copilot", server, options);
  client = c;
  let everRan = false;
  let reported = false;
  let startError: unknown;
  // One error message when the server stops unasked: it never started, or it crashed and is not restarted.
  // (A stop the extension asks for first sets `client` to another client or undefined.)
  context.subscriptions.push(
    c.onDidChangeState((e) => {
      renderStatus();
      if (e.newState === State.Running) {
        everRan = true;
        reported = false;
        restarting = false;
        return;
      }
      if (e.newState === State.StartFailed) restarting = false; // a restart that failed is reported too
      if (e.newState !== State.Stopped && e.newState !== State.StartFailed) return;
      // let the rest of stderr arrive and a restart begin
      setTimeout(() => {
        if (reported || client !== c || restarting || (c.state !== State.Stopped && c.state !== State.StartFailed)) return;
        reported = true;
        const msg = stoppedMessage(command, everRan, stderr.last(), startError);
        void vscode.window.showErrorMessage(msg, "Show Output", "Restart").then((pick) => {
          if (pick === "Show Output") output.show(true);
          if (pick === "Restart") void vscode.commands.executeCommand("copilot.ui.restart");
        });
      }, 300);
    }),
  );
  c.start().then(
    () => void refreshStatus(),
    (err: unknown) => {
      startError = err;
      output.error(`could not start ${command}: ${err instanceof Error ? err.message : String(err)}`);
      renderStatus();
    },
  );
}

export function activate(context: vscode.ExtensionContext): void {
  output = vscode.window.createOutputChannel("Copilot", { log: true });
  settings = loadSettings();
  tracker = new FeedbackTracker((event, id) => {
    if (client?.state === State.Running) void client.sendNotification(event === "accepted" ? ACCEPTED : REJECTED, feedbackParams(id));
  });
  statusItem = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  statusItem.command = "copilot.ui.toggle";
  context.subscriptions.push(statusItem, output, { dispose: () => debouncer.dispose() }, { dispose: () => panel.dispose() });
  // Where the cursor comes to rest, the server reads the prompt ahead of the first keystroke (copilot/cursorMoved).
  context.subscriptions.push(
    { dispose: () => cursor.dispose() },
    vscode.workspace.onDidChangeTextDocument((e) => cursor.edited(e.document.uri.toString())),
    vscode.window.onDidChangeTextEditorSelection((e) => {
      const doc = e.textEditor.document;
      if (!settings.enable || !languageEnabled(settings, doc.languageId) || e.selections.length !== 1) return;
      const sel = e.selections[0];
      cursor.moved(doc.uri.toString(), { line: sel.active.line, character: sel.active.character }, sel.isEmpty);
    }),
  );

  context.subscriptions.push(
    vscode.commands.registerCommand("copilot.ui.explain", async () => {
      const ed = vscode.window.activeTextEditor;
      if (!ed) return void vscode.window.showInformationMessage("Copilot: open a file to explain.");
      await runExplain(ed.document.uri, ed.selection.isEmpty ? undefined : ed.selection);
    }),
    vscode.commands.registerCommand("copilot.ui.toggle", async () => {
      await vscode.workspace.getConfiguration("copilot").update("enable", !settings.enable, vscode.ConfigurationTarget.Global);
    }),
    vscode.commands.registerCommand("copilot.ui.status", async () => {
      await refreshStatus();
      output.appendLine(JSON.stringify(lastStatus ?? { state: "not running" }, null, 2));
      output.show(true);
    }),
    vscode.commands.registerCommand("copilot.ui.stats", async () => {
      if (!client) return void vscode.window.showWarningMessage("Copilot: the server is not running");
      try {
        const res = (await client.sendRequest(ExecuteCommandRequest.type, { command: "copilot.stats", arguments: [] })) as
          { by_version?: StatsRow[] } | undefined;
        for (const line of statsLines(res)) output.appendLine(line);
        output.show(true);
      } catch (e) {
        void vscode.window.showErrorMessage(`Copilot: stats failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }),
    vscode.commands.registerCommand("copilot.ui.restart", async () => {
      const old = client;
      client = undefined; // first: its stop is not reported as a crash
      if (old) await old.stop().catch(() => undefined);
      startClient(context);
    }),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (!e.affectsConfiguration("copilot")) return;
      const before = settings;
      settings = loadSettings();
      if (e.affectsConfiguration("copilot.serverPath") && before.serverPath !== settings.serverPath) {
        await vscode.commands.executeCommand("copilot.ui.restart");
        return;
      }
      if (client?.state === State.Running) {
        await client.sendNotification(DidChangeConfigurationNotification.type, { settings: serverOptions(settings) });
      }
      renderStatus();
    }),
    vscode.workspace.onDidCloseTextDocument((d) => tracker.dismiss(d.uri.toString())),
  );
  renderStatus();
  startClient(context);
}

export async function deactivate(): Promise<void> {
  if (statusTimer) clearTimeout(statusTimer);
  const c = client;
  client = undefined;
  // (a client whose server never started throws here; it has nothing left to stop)
  if (c) await c.stop().catch(() => undefined);
}
