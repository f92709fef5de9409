"""One indexing run: config -> per repo (history, then HEAD files; ``run`` holds the shared state) -> time split
-> dataset (``index``)."""
