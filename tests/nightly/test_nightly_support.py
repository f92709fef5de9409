"""The cycle lock (stale detection), retention and the scheduler files."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
from helpers.train_fixtures import save_tiny_adapter, tiny_model  # noqa: F401

from copilot.core.locks import CycleLock, LockBusy


def _write_lock(path, **info):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": socket.gethostname(), "time": time.time(), **info}))


def test_lock_is_exclusive_and_released(tmp_path):
    p = tmp_path / "l"
    with CycleLock(p):
        with pytest.raises(LockBusy, match="another nightly cycle is running"):
            CycleLock(p).acquire()
    assert not p.exists()
    CycleLock(p).acquire().release()


def test_lock_of_a_dead_process_is_broken(tmp_path):
    p = tmp_path / "l"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _write_lock(p, pid=dead.pid)
    lock = CycleLock(p).acquire()
    assert lock.broke and "is gone" in lock.broke["reason"]
    assert json.loads(p.read_text())["pid"] == os.getpid()
    lock.release()


def test_lock_of_a_live_process_holds_until_too_old(tmp_path):
    p = tmp_path / "l"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        import psutil

        _write_lock(p, pid=live.pid, start=psutil.Process(live.pid).create_time())
        with pytest.raises(LockBusy):
            CycleLock(p).acquire()
        _write_lock(p, pid=live.pid, start=psutil.Process(live.pid).create_time(), time=time.time() - 7200)
        lock = CycleLock(p, max_age_s=3600).acquire()  # another host's crashed run looks like this
        assert "older than" in lock.broke["reason"]
        lock.release()
        _write_lock(p, pid=live.pid, start=1.0)  # pid reused by another process
        lock = CycleLock(p).acquire()
        assert "another process" in lock.broke["reason"]
        lock.release()
    finally:
        live.kill()
        live.wait()


def test_retention_keeps_newest_active_and_previous(tmp_path, tiny_model):  # noqa: F811
    from copilot.adapters import retention
    from copilot.adapters.registry import Registry
    from copilot.core.types import AdapterManifest

    reg = Registry()
    src = save_tiny_adapter(tiny_model, tmp_path / "ad")
    for _ in range(6):
        reg.publish("team", src, AdapterManifest(name="team", version=0, base_model="tiny", base_model_sha256="",
                                                 dataset_fingerprint="", lora={}, training={}, prompt_format="qwen",
                                                 weights_sha256="", created=""))
    reg.promote("team@1", force=True)
    reg.promote("team@2", force=True)  # active 2, previous 1
    assert retention.plan(reg, "team", 3) == [3]
    assert retention.apply(reg, "team", 3) == ["team@3"]
    assert reg.versions("team") == [1, 2, 4, 5, 6] and reg.active("team") == 2
    assert retention.plan(reg, "team", 2, protect=(4,)) == []  # 1, 2 protected, 4 protected, 5, 6 newest
    with pytest.raises(Exception, match="at least 1"):
        retention.plan(reg, "team", 0)


def test_schedule_systemd_units_install_status_remove(tmp_path, monkeypatch):
    from copilot.nightly import schedule

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("COPILOT_SCHEDULER", "systemd")
    monkeypatch.setenv("COPILOT_NO_SYSTEMCTL", "1")  # never touch the developer's real systemd
    conf = tmp_path / "nightly.toml"
    conf.write_text("[adapters.x]\nrepos = ['/r']\n")
    r = schedule.install("03:30", conf)
    assert r["backend"] == "systemd" and not r["enabled"] and "systemctl --user enable" in r["note"]
    timer = (tmp_path / "cfg/systemd/user/copilot-nightly.timer").read_text()
    service = (tmp_path / "cfg/systemd/user/copilot-nightly.service").read_text()
    assert "OnCalendar=*-*-* 03:30:00" in timer and "Persistent=true" in timer
    assert "retrain --config" in service and str(conf) in service and "COPILOT_HOME=" in service
    st = schedule.status()
    assert st["installed"] and st["at"] == "03:30" and st["backend"] == "systemd"
    assert schedule.remove()["removed"] and not schedule.status()["installed"]
    with pytest.raises(Exception, match="HH:MM"):
        schedule.install("25:00")


def test_schedule_cron_line():
    from copilot.nightly import schedule

    line = schedule.cron_line("02:05", None)
    assert line.startswith("5 2 * * * ") and line.endswith(schedule.MARK) and " retrain" in line


def test_second_retrain_while_one_runs_is_refused(tmp_path):
    from click.testing import CliRunner

    from copilot.cli.nightly import retrain_cmd

    cfg = tmp_path / "n.toml"
    cfg.write_text(f"[adapters.x]\nrepos = ['{tmp_path}']\n")
    with CycleLock():  # the running cycle (same data root)
        r = CliRunner().invoke(retrain_cmd, ["--config", str(cfg)])
    assert r.exit_code == 75 and "another nightly cycle is running" in r.output
