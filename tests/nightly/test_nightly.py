"""Nightly cycles over a git repo that gains commits (tiny model, real indexer/trainer/eval/registry)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.indexer_fixtures import git
from helpers.nightly_fixtures import add_commits, assert_registry_consistent, make_repo, write_config

from copilot.core import paths
from copilot.nightly.config import load_config
from copilot.nightly.gate import decide
from copilot.nightly.report import summary_lines
from copilot.nightly.run import Options, run
from copilot.nightly.state import adapter_dir, history
from copilot.adapters.registry import Registry
from copilot.core.types import UserInputError


def _editors_used(name: str, version: int, shown: int, accepted: int) -> None:
    """Feedback lines as the language server writes them, after the promotion."""
    import time

    from copilot.evaluate.acceptance import feedback_file

    f = feedback_file()
    f.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"event": "shown", "id": f"s{i}", "adapter": name, "adapter_version": version, "language": "python",
             "chars": 5, "latency_ms": 100.0 + i, "from_cache": False, "time": time.time()} for i in range(shown)]
    rows += [{"event": "accepted", "id": f"s{i}", "completion": "x + 1", "adapter": name, "adapter_version": version,
              "language": "python", "time": time.time()} for i in range(accepted)]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _run(cfg: Path, **kw) -> dict:
    return run(Options(config=str(cfg), **kw))


def test_cycles_mine_only_new_commits_gate_promotion_and_hot_swap(tmp_path, tiny_model_dir):
    from copilot.core.settings import Settings
    from copilot.serve.hf import Engine
    from lsp.adapters import AdapterSlot

    repo = make_repo(tmp_path / "repo", 4)
    cfg = tmp_path / "nightly.toml"
    reg = Registry()

    # 1st night: no active adapter yet -> candidate vs base model; margin -1000 lets it through.
    write_config(cfg, tiny_model_dir, [str(repo)], margin=-1000)
    s1 = _run(cfg)
    a1 = s1["adapters"]["acme"]
    assert s1["status"] == "done" and a1["decision"]["promote"] is True, a1["decision"]
    assert a1["mined"][str(repo)]["commits_mined"] == 4
    assert a1["eval"]["active_label"] == "base model" and a1["warm_start"] is None
    assert reg.active("acme") == 1 and a1["data"]["replay"] == 0

    # The language server's adapter slot (checked between requests) serves acme@1.
    settings = Settings()
    settings.model, settings.device = str(tiny_model_dir), "cpu"
    engine = Engine.load(str(tiny_model_dir), settings=settings, device="cpu")
    slot = AdapterSlot()
    switches: list[str] = []
    slot.ensure(engine, "acme", on_switch=switches.append, on_problem=lambda *a: None)
    assert slot.version == 1

    # 2nd night, nothing changed: finishes after the fetch, nothing trained.
    s2 = _run(cfg)
    d2 = s2["adapters"]["acme"]["decision"]
    assert d2.get("nothing_new") and "nothing new" in d2["why"]
    assert "mined" not in s2["adapters"]["acme"] and reg.versions("acme") == [1]

    # 3rd night: two new commits; a candidate that does not beat active by the margin is kept out.
    add_commits(repo, 4, 2, 2)
    write_config(cfg, tiny_model_dir, [str(repo), str(tmp_path / "gone")], margin=1000)
    _editors_used("acme", 1, shown=4, accepted=1)
    s3 = _run(cfg)
    a3 = s3["adapters"]["acme"]
    acc = a3["eval"]["active_acceptance"]
    assert (acc["shown"], acc["accepted"]) == (4, 1), acc
    assert a3["mined"][str(repo)]["commits_mined"] == 2  # only the new ones
    assert a3["warm_start"] == "acme@1" and a3["data"]["new_train"] > 0 and a3["data"]["replay"] > 0
    assert a3["decision"]["promote"] is False and "kept active" in a3["decision"]["why"]
    assert a3["eval"]["active_label"] == "acme@1"
    gone = [r for r in a3["repos"] if r["spec"].endswith("gone")][0]
    assert gone["status"] == "skipped" and "gone" in gone["note"]
    assert reg.active("acme") == 1 and reg.versions("acme") == [1, 2]
    cand = reg.manifest("acme", 2)
    assert cand.status == "candidate" and cand.training["warm_start"] == "acme@1"
    assert cand.metrics["eval"]["test_fingerprint"] == a3["eval"]["test_fingerprint"]

    # The warm start is real: the candidate's weights started from acme@1, not from a fresh LoRA (B=0).
    from safetensors.numpy import load_file
    w2 = load_file(str(reg.version_dir("acme", 2) / "adapter_model.safetensors"))
    assert any(abs(v).sum() > 0 for k, v in w2.items() if "lora_B" in k)

    # 4th night: one more commit, candidate good enough -> promoted; the slot picks it up between requests.
    add_commits(repo, 6, 1, 3)
    write_config(cfg, tiny_model_dir, [str(repo)], margin=-1000)
    s4 = _run(cfg)
    a4 = s4["adapters"]["acme"]
    assert a4["mined"][str(repo)]["commits_mined"] == 1
    assert a4["decision"]["promote"] is True and reg.active("acme") == 3
    assert reg.pointer("acme")["previous"] == 1
    slot.ensure(engine, "acme", on_switch=switches.append, on_problem=lambda *a: None)
    assert slot.version == 3 and switches[-1] == "acme@3"
    assert_registry_consistent()

    # Reports and history.
    for st in (s1, s3, s4):
        d = Path(paths.runs_dir()) / st["id"]
        assert json.loads((d / "report.json").read_text())["id"] == st["id"]
        assert "## acme" in (d / "report.md").read_text()
    md = (Path(paths.runs_dir()) / s3["id"] / "report.md").read_text()
    assert "kept active" in md and "| fim.edit_sim |" in md and "skipped" in md
    assert "| editors: accepted / shown since promotion | – | 25.0% (1/4" in md
    hist = history()
    assert [h["id"] for h in hist] == [s4["id"], s3["id"], s2["id"], s1["id"]]


def test_force_pushed_repo_is_skipped_and_other_repos_go_on(tmp_path, tiny_model_dir):
    a = make_repo(tmp_path / "a", 3)
    b = make_repo(tmp_path / "b", 3)
    cfg = write_config(tmp_path / "n.toml", tiny_model_dir, [str(a), str(b)], max_steps=2)
    _run(cfg)
    # a: history rewritten; b: a normal new commit
    git(a, "reset", "-q", "--hard", "HEAD~2")
    add_commits(a, 10, 1, 5)
    add_commits(b, 10, 1, 5)
    st = _run(cfg)
    ad = st["adapters"]["acme"]
    by = {r["spec"]: r for r in ad["repos"]}
    assert by[str(a)]["status"] == "skipped" and "history rewritten" in by[str(a)]["note"]
    assert by[str(b)]["status"] == "ok" and ad["mined"][str(b)]["commits_mined"] == 1
    assert str(a) not in ad["mined"] and ad["phase"] == "done" and not ad.get("error")
    assert "history rewritten" in "\n".join(summary_lines(st))


def test_dry_run_changes_nothing(tmp_path, tiny_model_dir):
    repo = make_repo(tmp_path / "r", 2)
    cfg = write_config(tmp_path / "n.toml", tiny_model_dir, [str(repo)])
    st = _run(cfg, dry_run=True)
    assert "dry run" in st["adapters"]["acme"]["decision"]["why"]
    assert Registry().versions("acme") == [] and not (adapter_dir("acme") / "repos").exists()


def test_decide_uses_metric_and_margin():
    ev = {"candidate": {"fim": {"edit_sim": 60.0, "exact_match": 10.0}},
          "active": {"fim": {"edit_sim": 59.0, "exact_match": 20.0}}, "active_label": "x@1"}
    assert decide(ev, "fim.edit_sim", 0.5)["promote"] is True
    assert decide(ev, "fim.edit_sim", 2.0)["promote"] is False
    assert decide(ev, "fim.exact_match", 0.0)["promote"] is False
    assert decide(ev, "explain.cosine", 0.0)["promote"] is False  # no such metric: never promote
    tie = {"candidate": {"fim": {"edit_sim": 50.0}}, "active": {"fim": {"edit_sim": 50.0}}}
    assert decide(tie, "fim.edit_sim", 0.0)["promote"] is False  # equal is not better
    assert decide(tie, "fim.edit_sim", -1.0)["promote"] is True  # tolerated regression



def test_typing_points_are_shown_by_the_gate_and_the_report_without_gating():
    from copilot.nightly.report import markdown

    typing_c = {"n": 7, "exact_match": 30.0, "edit_sim": 40.0}
    typing_a = {"n": 7, "exact_match": 50.0, "edit_sim": 70.0}
    ev = {"n": 20, "candidate_label": "acme@2", "active_label": "acme@1",
          "candidate": {"fim": {"n": 20, "edit_sim": 60.0, "exact_match": 25.0},
                        "fim_by": {"kind=fim_typing": typing_c}},
          "active": {"fim": {"n": 20, "edit_sim": 59.0, "exact_match": 20.0}, "fim_by": {"kind=fim_typing": typing_a}}}
    d = decide(ev, "fim.edit_sim", 0.5)
    assert d["promote"] is True  # worse typing points do not block: shown only
    assert d["typing"] == {"n": 7, "exact_match": {"candidate": 30.0, "active": 50.0},
                           "edit_sim": {"candidate": 40.0, "active": 70.0}}
    assert decide(ev, "fim_by.kind=fim_typing.edit_sim", 0.0)["promote"] is False  # unless the metric names them
    assert "typing" not in decide({"candidate": ev["active"] | {"fim_by": {}}, "active": {}}, "fim.edit_sim", 0.0)
    st = {"id": "c1", "status": "done", "started": "t0", "finished": "t1", "seconds": 3.0,
          "adapters": {"acme": {"phase": "done", "decision": d, "repos": [], "eval": ev}}}
    md = markdown(st)
    assert "| fim.edit_sim | 60.00 | 59.00 |" in md
    assert "| fim_by.kind=fim_typing.exact_match (typing points, n=7) | 30.00 | 50.00 |" in md
    assert "| fim_by.kind=fim_typing.edit_sim (typing points, n=7) | 40.00 | 70.00 |" in md
    assert md.index("fim.edit_sim") < md.index("typing points")
    assert any("typing points (7): exact match 30.00 vs 50.00, edit sim 40.00 vs 70.00" in ln
               for ln in summary_lines(st))

@pytest.mark.parametrize("body, msg", [
    ("[adapters.x]\nrepos = []\n", "lists no repos"),
    ("[adapters.x]\nrepos = ['/r']\nmargn = 1\n", "unknown key 'margn'"),
    ("[adapters.x]\nrepos = ['/r']\nkeep = 1\n", "keep must be at least 2"),
    ("[adapters.x]\nrepos = ['/r']\n[adapters.x.train]\nrank = 3\n", "unknown train setting"),
    ("[defaults]\n", "no [adapters.NAME]"),
    ("[adapters.x\n", "invalid TOML"),
])
def test_bad_config_is_one_clear_error(tmp_path, body, msg):
    p = tmp_path / "n.toml"
    p.write_text(body)
    with pytest.raises(UserInputError, match=msg.replace("[", r"\[")):
        load_config(p)


def test_cli_retrain_history_and_json(tmp_path, tiny_model_dir):
    from click.testing import CliRunner

    from copilot.cli.nightly import retrain_cmd

    repo = make_repo(tmp_path / "r", 2)
    cfg = write_config(tmp_path / "n.toml", tiny_model_dir, [str(repo)])
    r = CliRunner().invoke(retrain_cmd, ["--config", str(cfg), "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["dry_run"] is True
    r = CliRunner().invoke(retrain_cmd, ["--history"])
    assert r.exit_code == 0 and "dry run" in r.output
    r = CliRunner().invoke(retrain_cmd, ["--config", str(tmp_path / "missing.toml")])
    assert r.exit_code != 0 and "nightly config not found" in r.output and "Traceback" not in r.output


def test_url_repos_are_mirrored_and_fetched_and_failing_ones_skipped(tmp_path, tiny_model_dir):
    origin = make_repo(tmp_path / "origin", 3)
    url = f"file://{origin}"
    bad = f"file://{tmp_path}/nowhere.git"
    cfg = write_config(tmp_path / "n.toml", tiny_model_dir, [url, bad], max_steps=2)
    s1 = _run(cfg)
    by = {r["spec"]: r for r in s1["adapters"]["acme"]["repos"]}
    assert by[url]["note"] == "cloned" and s1["adapters"]["acme"]["mined"][url]["commits_mined"] == 3
    assert by[bad]["status"] == "skipped" and by[bad]["note"].startswith("clone failed")
    add_commits(origin, 3, 1, 4)  # the remote moves on
    s2 = _run(cfg)
    a2 = s2["adapters"]["acme"]
    assert {r["spec"]: r for r in a2["repos"]}[url]["note"] == "fetched"
    assert a2["mined"][url]["commits_mined"] == 1 and a2["phase"] == "done"


def test_two_training_processes_per_adapter(tmp_path, tiny_model_dir):
    """`processes = 2`: the candidate is trained by 2 data-parallel processes (gloo), warm-started on the
    second night, published once per night."""
    repo = make_repo(tmp_path / "repo", 4)
    cfg = write_config(tmp_path / "nightly.toml", tiny_model_dir, [str(repo)], extra="processes = 2")
    assert load_config(cfg)[0].processes == 2
    reg = Registry()
    a1 = _run(cfg)["adapters"]["acme"]
    assert a1["decision"]["promote"] is True and a1["train"]["processes"] == 2, a1
    m1 = reg.manifest("acme", 1).training
    assert m1["processes"] == 2 and m1["steps"] == 4 and m1["nightly_cycle"]
    add_commits(repo, 4, 2, 2)
    a2 = _run(cfg)["adapters"]["acme"]
    assert a2["warm_start"] == "acme@1" and a2["candidate"] == 2
    assert reg.manifest("acme", 2).training["init_adapter"].endswith("/acme/1")
    assert reg.versions("acme") == [1, 2]
    assert_registry_consistent("acme")


def test_plan_hash_unchanged_by_the_processes_key():
    """Cycles started before `processes` existed resume: with the default it is not part of the hash."""
    from copilot.nightly.config import AdapterPlan

    plan = AdapterPlan(name="acme", repos=["/r"])
    d = plan.to_dict()
    del d["processes"]
    from copilot.core.files import sha256_json

    assert plan.config_hash() == sha256_json(d, 16)
    plan.processes = 2
    assert plan.config_hash() != sha256_json(d, 16)
