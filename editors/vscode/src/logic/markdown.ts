// The explanation panel's HTML: markdown rendered with markdown-it, raw HTML in the markdown escaped.
import MarkdownIt from "markdown-it";

const md = new MarkdownIt({ html: false, linkify: false, breaks: false });

export function renderHtml(title: string, markdown: string, done: boolean): string {
  const body = md.render(markdown || (done ? "_(no explanation)_" : "_Explaining…_"));
  const esc = title.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c] ?? c);
  return `<!DOCTYPE html><html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline';">
<style>body{font-family:var(--vscode-font-family);font-size:var(--vscode-font-size);padding:0 1em}
pre,code{font-family:var(--vscode-editor-font-family)} pre{background:var(--vscode-textCodeBlock-background);padding:.5em;overflow:auto}
.st{opacity:.7;font-style:italic}</style></head>
<body><h2>${esc}</h2>${body}${done ? "" : '<p class="st">streaming…</p>'}</body></html>`;
}
