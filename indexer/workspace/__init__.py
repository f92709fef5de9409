"""The workspace index: a repository's functions, classes and methods (name, qualified name, signature,
documentation's first line, span) and its code chunks for similarity search, built from the working tree
with the indexer's tree-sitter extraction and path filters, kept current file by file.

`walk` finds the files, `symbols` turns one file into definitions and chunks, `bm25` ranks chunks,
`imports` resolves a file's imports to indexed files, `index` holds it all (`WorkspaceIndex`).
Completions read it through `copilot.prompts.context`.
"""
