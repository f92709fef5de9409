// A side panel (webview) that shows an explanation's markdown, re-rendered as it streams in.
import * as vscode from "vscode";
import { renderHtml } from "./logic/markdown";

export class ExplainPanel {
  private panel: vscode.WebviewPanel | undefined;

  show(title: string): void {
    if (!this.panel) {
      this.panel = vscode.window.createWebviewPanel("copilot.explain", "Copilot: Explain", { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, { enableScripts: false });
      this.panel.onDidDispose(() => (this.panel = undefined));
    } else {
      this.panel.reveal(vscode.ViewColumn.Beside, true);
    }
    this.panel.title = `Explain: ${title}`;
    this.update(title, "", false);
  }

  update(title: string, markdown: string, done: boolean): void {
    if (this.panel) this.panel.webview.html = renderHtml(title, markdown, done);
  }

  dispose(): void {
    this.panel?.dispose();
  }
}
