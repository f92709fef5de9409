"""Reading git repositories without checkout, in flow order: repo (open, HEAD tree) -> history (commits and the
lines each added) -> blobs (``cat-file --batch``) -> blame (each line's commit)."""
