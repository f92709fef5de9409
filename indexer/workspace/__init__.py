"""The workspace index: a repository's functions, classes and methods (name, qualified name, signature,
documentation's first line, span) and its code chunks for similarity search, built from the working tree
with the indexer's tree-sitter extraction and path filters, kept current file by file.

`walk` finds the files, `symbols` turns one file into definitions and chunks, `bm25` ranks chunks,
`imports` resolves a file's imports to indexed files, `index` holds it all (`WorkspaceIndex`: from a working
tree, or from (path, text) pairs such as a git tree at a commit). `near_names` reads the names at a cursor and
`repo_context` chooses what of the repository goes before the file in a completion prompt: the language server,
`copilot complete` and the indexer's FIM pairs (the context the server would have sent at that cursor) all use it.
"""
