"""Helpers for the nightly tests: a growing git repo, a nightly.toml on the tiny model, registry checks."""

from __future__ import annotations

from pathlib import Path

from helpers.indexer_fixtures import commit, init_repo

WORDS = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta", "zeta", "lambda"]


def module_text(i: int) -> str:
    w = WORDS[i % len(WORDS)]
    return (f'"""Helpers for {w} records (module {i})."""\n\n\n'
            f"def load_{w}_{i}(path, limit={i + 2}):\n"
            f'    """Read up to limit {w} rows from path."""\n'
            f"    rows = []\n"
            f"    with open(path) as fh:\n"
            f"        for n, line in enumerate(fh):\n"
            f"            if n >= limit:\n"
            f"                break\n"
            f"            rows.append(line.strip().split(','))\n"
            f"    return rows\n\n\n"
            f"def total_{w}_{i}(rows):\n"
            f'    """Sum the second column of {w} rows."""\n'
            f"    return sum(int(r[1]) for r in rows if len(r) > 1)\n\n\n"
            f"class {w.title()}Store{i}:\n"
            f'    """Keeps {w} rows in memory."""\n\n'
            f"    def __init__(self):\n"
            f"        self.items = {{}}\n\n"
            f"    def put(self, key, value):\n"
            f"        self.items[key] = value * {i + 1}\n"
            f"        return value\n")


def add_commits(repo: Path, start: int, n: int, day: int) -> list[str]:
    shas = []
    for i in range(start, start + n):
        shas.append(commit(repo, {f"pkg/mod{i}.py": module_text(i)}, f"2026-01-{day:02d}T{10 + (i % 10):02d}:00:00",
                           f"add module {i}").strip())
    return shas


def make_repo(root: Path, n: int = 4) -> Path:
    repo = init_repo(root)
    add_commits(repo, 0, n, 1)
    return repo


def write_config(path: Path, model: Path, repos: list[str], *, margin: float = -1000.0, keep: int = 3,
                 max_steps: int = 4, checkpoint_every: int = 2, extra: str = "") -> Path:
    reps = ", ".join(f'"{r}"' for r in repos)
    path.write_text(f"""
[defaults]
base = "{model}"
device = "cpu"
max_steps = {max_steps}
max_minutes = 0
checkpoint_every = {checkpoint_every}
replay_share = 0.5
metric = "fim.edit_sim"
margin = {margin}
keep = {keep}
eval_examples = 4
eval_max_new_tokens = 3
test_commits = 1
{extra}

[defaults.train]
r = 4
alpha = 8
max_seq_len = 256
batch_tokens = 512
target_modules = ["q_proj", "v_proj"]

[adapters.acme]
repos = [{reps}]
""")
    return path


def assert_registry_consistent(name: str = "acme") -> None:
    """Every visible version verifies (config, safetensors sha256); the pointer names existing versions."""
    from copilot.adapters.registry import Registry

    reg = Registry()
    versions = reg.versions(name)
    for v in versions:
        reg.verify_dir(reg.version_dir(name, v))
        assert reg.manifest(name, v).version == v
    ptr = reg.pointer(name)
    assert ptr["active"] is None or ptr["active"] in versions, ptr
    assert ptr["previous"] is None or ptr["previous"] in versions, ptr
    for d in (reg.root / name).iterdir() if (reg.root / name).is_dir() else []:
        assert not (d.is_dir() and d.name.isdigit() and int(d.name) not in versions), f"half-published {d}"
