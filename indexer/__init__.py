"""Mine company git repositories into filtered, AST-aligned training pairs.

repos.py (git walking, blobs without checkout) -> filters.py (ignore/vendored/generated/minified/binary,
secrets, dedup) -> extract.py + languages.py (tree-sitter units) -> pairs.py (FIM and explain pairs)
-> pipeline.py (one run, incremental, time split) -> dataset.py (atomic write). CLI: ``indexer.cli:index``.
"""
