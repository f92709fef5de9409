"""Mine company git repositories into filtered, AST-aligned training pairs.

The flow, package by package:

git/       (repo: open, HEAD tree -> history: commits and added lines -> blobs: cat-file -> blame: line dating)
-> filters/ (paths: ignore/vendored/lockfile/env/generated/oversized; content: binary/utf8/generated/minified;
             secrets: secrets and emails; dedup: hashes and MinHash near-duplicates)
-> extract.py + languages.py (tree-sitter units) -> pairs.py (FIM and explain pairs), typing_points.py (FIM
   pairs with the cursor where a typing developer's is)
-> mine/    (config -> run state -> per repo: history, then HEAD files -> split -> index: one incremental run)
-> dataset.py (atomic write). CLI: ``copilot index``.
"""
