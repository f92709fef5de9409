"""The nightly config: one AdapterPlan per ``[adapters.NAME]`` of ``nightly.toml``, defaults applied, validated.

nightly.toml::

    [defaults]                      # every key may be overridden per adapter
    base = "qwen2.5-coder-0.5b"     # base model (packaged name, folder, cached hub id)
    device = "auto"
    max_steps = 200                 # training budget: steps ...
    max_minutes = 30                # ... and/or wall minutes (0 = none)
    checkpoint_every = 20
    replay_share = 0.5              # share of the training set that is replayed older pairs
    metric = "fim.edit_sim"         # or fim.exact_match, explain.rouge_l ... (from the eval summary)
    margin = 0.5                    # promote when candidate > active + margin (metric units, 0-100); ties never
                                    # promote at margin >= 0; a negative margin tolerates that much regression
    keep = 5                        # retention: versions kept per adapter
    eval_examples = 60              # test rows evaluated (stable sample)
    eval_max_new_tokens = 48
    test_fraction = 0.1             # newest share of each repo's commits held out (or test_commits = N)
    on_rewrite = "skip"             # force-pushed repo: "skip" (report it) or "reindex" (mine from scratch)
    min_new_pairs = 1               # fewer new training pairs than this: no training tonight
    seed = 0                        # replay sample / eval sample / training order
    processes = 1                   # data-parallel training processes (one per GPU, or per CPU core)

    [defaults.train]                # any TrainSettings key (r, alpha, learning_rate, max_seq_len, ...)
    r = 16

    [adapters.acme]
    repos = ["/srv/git/backend", "https://git.example.com/acme/web.git"]
    margin = 0.0
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from copilot.adapters.registry import check_name
from copilot.core import paths
from copilot.core.files import sha256_json
from copilot.core.types import UserInputError


@dataclass
class AdapterPlan:
    name: str
    repos: list[str] = field(default_factory=list)
    base: str = "qwen2.5-coder-0.5b"
    device: str = "auto"
    max_steps: int = 200
    max_minutes: float = 30.0
    checkpoint_every: int = 20
    replay_share: float = 0.5
    metric: str = "fim.edit_sim"
    margin: float = 0.5
    keep: int = 5
    eval_examples: int = 60
    eval_max_new_tokens: int = 48
    test_fraction: float = 0.1
    test_commits: int = 0
    on_rewrite: str = "skip"
    min_new_pairs: int = 1
    seed: int = 0
    processes: int = 1
    train: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def config_hash(self) -> str:
        # Persisted in every cycle's state (plan_hash) and compared on resume: the same digest as ever
        # (keys added later count only when set away from their default).
        d = self.to_dict()
        if d["processes"] == 1:
            del d["processes"]
        return sha256_json(d, 16)


_KEYS = {f.name for f in fields(AdapterPlan)} - {"name"}


def default_config_path() -> Path:
    return paths.user_config_file().parent / "nightly.toml"


def load_config(path: str | Path | None = None) -> list[AdapterPlan]:
    p = Path(path).expanduser() if path else default_config_path()
    data = _read_toml(p)
    unknown = set(data) - {"defaults", "adapters"}
    if unknown:
        raise UserInputError(f"{p}: unknown section(s) {sorted(unknown)}; use [defaults] and [adapters.NAME]")
    defaults = data.get("defaults", {})
    adapters = data.get("adapters", {})
    if not isinstance(adapters, dict) or not adapters:
        raise UserInputError(f"{p}: no [adapters.NAME] section")
    return [_plan(p, name, table, defaults) for name, table in adapters.items()]


def _read_toml(p: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise UserInputError(f"nightly config not found: {p} (see `copilot retrain --help` for its format)") from None
    except OSError as exc:
        raise UserInputError(f"{p}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserInputError(f"{p}: invalid TOML: {exc}") from None


def _plan(p: Path, name: str, table: Any, defaults: dict[str, Any]) -> AdapterPlan:
    """One adapter's plan: defaults, then its own table; relative repo paths are relative to the config."""
    from indexer.git.repo import is_url

    if not isinstance(table, dict):
        raise UserInputError(f"{p}: [adapters.{name}] must be a table")
    plan = AdapterPlan(name=name)
    _apply(plan, defaults, f"{p} [defaults]")
    _apply(plan, table, f"{p} [adapters.{name}]")
    plan.repos = [r if is_url(r) or Path(r).expanduser().is_absolute() else str((p.parent / r).resolve())
                  for r in plan.repos]
    _check(plan, str(p))
    return plan


def _apply(plan: AdapterPlan, data: dict[str, Any], where: str) -> AdapterPlan:
    for k, v in data.items():
        key = k.replace("-", "_")
        if key not in _KEYS:
            raise UserInputError(f"{where}: unknown key {k!r} (known: {', '.join(sorted(_KEYS))})")
        if key == "train":
            if not isinstance(v, dict):
                raise UserInputError(f"{where}: 'train' must be a table")
            plan.train = {**plan.train, **v}
        elif key == "repos":
            plan.repos = _repo_list(v, where)
        else:
            setattr(plan, key, _scalar(getattr(plan, key), k, v, where))
    return plan


def _repo_list(v: Any, where: str) -> list[str]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        raise UserInputError(f"{where}: 'repos' must be a list of paths or URLs")
    return list(v)


def _scalar(cur: Any, k: str, v: Any, where: str) -> Any:
    """`v` for a key whose default is `cur`: of the same kind (an int is accepted for a float)."""
    if isinstance(cur, bool) or not isinstance(v, (int, float, str)) or (
            isinstance(cur, (int, float)) and not isinstance(v, (int, float))) or (
            isinstance(cur, str) and not isinstance(v, str)):
        raise UserInputError(f"{where}: bad value for {k!r}: {v!r}")
    return type(cur)(v) if isinstance(cur, float) else v


def _check(plan: AdapterPlan, where: str) -> None:
    check_name(plan.name)
    if not plan.repos:
        raise UserInputError(f"{where}: adapter {plan.name!r} lists no repos")
    if not 0.0 <= plan.replay_share < 1.0:
        raise UserInputError(f"{where}: replay_share must be in [0, 1), got {plan.replay_share}")
    if plan.keep < 2:
        raise UserInputError(f"{where}: keep must be at least 2 (the active version and its predecessor)")
    if plan.on_rewrite not in ("skip", "reindex"):
        raise UserInputError(f"{where}: on_rewrite must be 'skip' or 'reindex'")
    if plan.processes < 1:
        raise UserInputError(f"{where}: processes must be at least 1, got {plan.processes}")
    if plan.max_steps <= 0 and plan.max_minutes <= 0:
        raise UserInputError(f"{where}: give a training budget (max_steps and/or max_minutes)")
    if "." not in plan.metric:
        raise UserInputError(f"{where}: metric must look like 'fim.edit_sim' or 'fim.exact_match'")
    from copilot.core.settings import TrainSettings

    known = {f.name for f in fields(TrainSettings)}
    bad = [k for k in plan.train if k.replace("-", "_") not in known]
    if bad:
        raise UserInputError(f"{where}: unknown train setting(s) {bad}; known: {', '.join(sorted(known))}")


def settings_for(plan: AdapterPlan):
    """The user's settings with this plan's base model, device and [train] overrides (no adapter)."""
    from copilot.core.settings import TrainSettings, _merge, load_settings

    s = load_settings()
    s.model = plan.base
    s.device = plan.device
    s.adapter = ""
    ts = TrainSettings(**{k: v for k, v in asdict(s.train).items()})
    _merge(ts, {k.replace("-", "_"): v for k, v in plan.train.items()}, "nightly config [train]")
    s.train = ts
    return s
