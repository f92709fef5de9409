"""Fault injection: SIGKILL a real `retrain` subprocess at several points of one cycle, check the registry
after each kill, then let the next run resume and finish the cycle."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers.nightly_fixtures import add_commits, assert_registry_consistent, make_repo, write_config

from copilot.core import paths
from copilot.nightly.run import Options, run
from copilot.nightly.state import Cycle, unfinished_cycles
from copilot.adapters.registry import Registry

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNNER = "import sys; from copilot.cli.nightly import retrain_cmd; retrain_cmd(sys.argv[1:])"


def _kill_at(point: str, cfg: Path, tmp: Path) -> None:
    marker = tmp / f"fault-{point}"
    env = {**os.environ, "COPILOT_FAULT_AT": point, "COPILOT_FAULT_FILE": str(marker),
           "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, "--config", str(cfg)], cwd=str(tmp), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            if proc.poll() is not None:
                raise AssertionError(f"cycle ended before reaching {point}: {proc.stdout.read().decode()[-2000:]}")
            assert time.monotonic() < deadline, f"never reached {point}"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _active_loads(engine) -> int:
    reg = Registry()
    v = reg.active("acme")
    key = engine.load_adapter(f"acme@{v}")
    assert key in engine.adapters
    engine.complete("def f(x):\n    return ", "\n", adapter=key, max_new_tokens=2)
    return v


def test_sigkill_at_each_phase_then_resume(tmp_path, tiny_model_dir):
    from copilot.core.settings import Settings
    from copilot.serve.hf import Engine

    repo = make_repo(tmp_path / "repo", 4)
    cfg = write_config(tmp_path / "n.toml", tiny_model_dir, [str(repo)], max_steps=5, checkpoint_every=2)
    first = run(Options(config=str(cfg)))
    assert first["adapters"]["acme"]["decision"]["promote"] and Registry().active("acme") == 1
    add_commits(repo, 4, 2, 2)

    settings = Settings()
    settings.model, settings.device = str(tiny_model_dir), "cpu"
    engine = Engine.load(str(tiny_model_dir), settings=settings, device="cpu")
    work = paths.home() / "work" / "train" / "acme"

    seen_phases = []
    for point in ("fetch", "index", "train_step", "eval", "promoted"):
        _kill_at(point, cfg, tmp_path)
        assert_registry_consistent()
        v = _active_loads(engine)
        assert v == (2 if point == "promoted" else 1), point
        cid = unfinished_cycles()
        assert len(cid) == 1, cid  # one unfinished cycle, resumed by every later run
        seen_phases.append(Cycle.load(cid[0]).ad("acme")["phase"])
        if point == "train_step":
            ckpts = sorted(p.name for p in work.glob("ckpt-*"))
            assert ckpts == ["ckpt-0000002"], ckpts  # step 3 was running: the step-2 checkpoint is kept
        if point == "eval":
            assert Registry().versions("acme") == [1, 2]  # the candidate was published once
    assert seen_phases == ["fetch", "index", "train", "eval", "promote"]

    final = run(Options(config=str(cfg)))
    a = final["adapters"]["acme"]
    assert final["status"] == "done" and final["resumed"] == 5
    assert a["train"]["resumed_from_step"] == 2 and a["train"]["steps"] == 5
    assert a["mined"][str(repo)]["commits_mined"] == 2
    assert a["decision"]["promote"] and a["decision"]["promoted"] == "acme@2"
    assert Registry().versions("acme") == [1, 2] and Registry().active("acme") == 2
    assert not (paths.runs_dir() / ".nightly.lock").exists()
    assert_registry_consistent()
    assert unfinished_cycles() == []
    # and the night after, nothing new
    assert run(Options(config=str(cfg)))["adapters"]["acme"]["decision"].get("nothing_new")
