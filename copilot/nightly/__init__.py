"""Nightly retraining: one gated, crash-safe cycle per configured adapter.

The modules, in the order a cycle uses them:
  config     nightly.toml -> one AdapterPlan per adapter (defaults, validation)
  run        run(Options): the cycle lock, resume or start a cycle, every adapter through the phases
  phases     one function per phase, in order (STEPS):
    fetch    URL repos are mirrored under the data root, local repos read as they are (fetch.py); a repo that
             is gone, fails to fetch or whose history was rewritten (force-push) is skipped with a report entry.
    index    each repo is mined incrementally into its own dataset (index.py): only commits after the previous head.
    dataset  train = pairs of commits never trained on (new) + a replay sample of older train pairs;
             test = the newest-commit test split of every repo (dataset.py).
    train    a candidate, warm-started from the active adapter, checkpointed; a killed cycle resumes training
             from its last checkpoint (candidate.py).
    eval     candidate and active (or the base model when none is active) on that test split (candidate.py).
    decide   promote only when candidate >= active + margin on the configured metric (gate.py).
    promote  the registry's atomic pointer switch (the language server picks it up between requests).
    retain   keep the newest K versions, never the active one or its predecessor.
  state      what is kept on disk: the cycle's state.json, per-adapter memory, history, fault injection
  report     report.json / report.md and the terminal summary
  schedule   a systemd user timer (or crontab line) running `copilot retrain` every night

A cycle where no repo moved since the last one ends after the fetch, in seconds ("nothing new").
Commits whose pairs went into a candidate count as trained even when it is not promoted (they stay in
the replay pool); pairs of the held-out newest commits are trained on once newer commits push them
into the train split.

Crash safety: every phase transition rewrites ``runs_dir()/<cycle-id>/state.json`` atomically. The
registry only changes through its own atomic operations (publish = rename, promote = pointer replace),
so a kill -9 anywhere leaves the active adapter loadable. The next ``retrain`` finds the unfinished
cycle and resumes it from its phase (a candidate already published for the cycle's dataset is adopted
instead of trained again).
"""
