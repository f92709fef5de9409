"""Run `copilot retrain` every night: a systemd user timer + service, or a crontab line without systemd.

systemd (preferred when `systemctl --user` answers): writes
    ~/.config/systemd/user/copilot-nightly.service   (Type=oneshot, runs retrain with --config)
    ~/.config/systemd/user/copilot-nightly.timer     (OnCalendar=*-*-* HH:MM:00, Persistent=true)
then `systemctl --user daemon-reload` and `enable --now` the timer. Persistent=true runs a missed night
at the next boot. Without systemd it adds one line marked `# copilot-nightly` to the user's crontab
(replacing an older one). `status` shows which is installed and the last/next run; `remove` undoes it.

COPILOT_SCHEDULER=systemd|cron forces a backend (tests use it with a temporary XDG_CONFIG_HOME).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from copilot.core import paths
from copilot.core.files import write_text_atomic
from copilot.core.types import CopilotError, UserInputError

UNIT = "copilot-nightly"
MARK = "# copilot-nightly"


def parse_at(at: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", at.strip())
    if not m or int(m[1]) > 23 or int(m[2]) > 59:
        raise UserInputError(f"--at must be HH:MM (24 h), got {at!r}")
    return int(m[1]), int(m[2])


def unit_dir() -> Path:
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else Path.home() / ".config") / "systemd" / "user"


def retrain_command(config: str | Path | None) -> list[str]:
    exe = shutil.which("copilot")
    cmd = [exe] if exe else [sys.executable, "-m", "copilot.cli"]
    cmd.append("retrain")
    if config:
        cmd += ["--config", str(Path(config).expanduser().resolve())]
    return cmd


def backend() -> str:
    forced = os.environ.get("COPILOT_SCHEDULER")
    if forced:
        if forced not in ("systemd", "cron"):
            raise UserInputError("COPILOT_SCHEDULER must be systemd or cron")
        return forced
    if shutil.which("systemctl"):
        try:
            ok = subprocess.run(["systemctl", "--user", "show-environment"], capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok:
            return "systemd"
    if shutil.which("crontab"):
        return "cron"
    return "systemd"  # unit files are still written; systemctl is reported as unavailable


def _systemctl(*args: str) -> tuple[bool, str]:
    if not shutil.which("systemctl") or os.environ.get("COPILOT_SCHEDULER") == "systemd" and os.environ.get("COPILOT_NO_SYSTEMCTL"):
        return False, "systemctl not available"
    try:
        p = subprocess.run(["systemctl", "--user", *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return p.returncode == 0, (p.stdout + p.stderr).strip()


def service_text(config: str | Path | None) -> str:
    env = f"Environment=COPILOT_HOME={paths.home()}\n"
    return (f"[Unit]\nDescription=copilot nightly adapter retraining\n\n[Service]\nType=oneshot\n{env}"
            f"Environment=OMP_WAIT_POLICY=PASSIVE\nNice=10\nExecStart={shlex.join(retrain_command(config))}\n")


def timer_text(at: str) -> str:
    h, m = parse_at(at)
    return (f"[Unit]\nDescription=copilot nightly retraining at {h:02d}:{m:02d}\n\n[Timer]\n"
            f"OnCalendar=*-*-* {h:02d}:{m:02d}:00\nPersistent=true\nRandomizedDelaySec=300\n\n"
            f"[Install]\nWantedBy=timers.target\n")


def cron_line(at: str, config: str | Path | None) -> str:
    h, m = parse_at(at)
    cmd = f"COPILOT_HOME={shlex.quote(str(paths.home()))} nice -n 10 {shlex.join(retrain_command(config))}"
    return f"{m} {h} * * * {cmd} >/dev/null 2>&1 {MARK}"


def _crontab_read() -> list[str]:
    p = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    return p.stdout.splitlines() if p.returncode == 0 else []


def _crontab_write(lines: list[str]) -> None:
    p = subprocess.run(["crontab", "-"], input="\n".join(lines) + "\n", capture_output=True, text=True)
    if p.returncode != 0:
        raise CopilotError(f"crontab refused the new table: {p.stderr.strip()}")


def install(at: str = "02:00", config: str | Path | None = None) -> dict[str, Any]:
    parse_at(at)
    if config and not Path(config).expanduser().is_file():
        raise UserInputError(f"nightly config not found: {config}")
    kind = backend()
    if kind == "cron":
        lines = [ln for ln in _crontab_read() if MARK not in ln] + [cron_line(at, config)]
        _crontab_write(lines)
        return {"backend": "cron", "line": lines[-1], "at": at}
    d = unit_dir()
    write_text_atomic(d / f"{UNIT}.service", service_text(config))
    write_text_atomic(d / f"{UNIT}.timer", timer_text(at))
    ok1, msg1 = _systemctl("daemon-reload")
    ok2, msg2 = _systemctl("enable", "--now", f"{UNIT}.timer") if ok1 else (False, msg1)
    return {"backend": "systemd", "units": [str(d / f"{UNIT}.service"), str(d / f"{UNIT}.timer")], "at": at,
            "enabled": ok2, "note": "" if ok2 else f"unit files written; enable them with "
            f"`systemctl --user enable --now {UNIT}.timer` ({msg2.splitlines()[-1] if msg2 else 'systemctl failed'})"}


def status() -> dict[str, Any]:
    d = unit_dir()
    timer = d / f"{UNIT}.timer"
    out: dict[str, Any] = {"installed": False}
    if timer.is_file():
        m = re.search(r"OnCalendar=\*-\*-\* (\d\d:\d\d)", timer.read_text())
        out.update(installed=True, backend="systemd", at=m[1] if m else None, units=[str(d / f"{UNIT}.service"), str(timer)])
        ok, msg = _systemctl("list-timers", f"{UNIT}.timer", "--no-pager")
        out["systemctl"] = msg if ok else f"unavailable: {msg}"
    elif shutil.which("crontab"):
        lines = [ln for ln in _crontab_read() if MARK in ln]
        if lines:
            f = lines[0].split()
            out.update(installed=True, backend="cron", at=f"{int(f[1]):02d}:{int(f[0]):02d}", line=lines[0])
    from copilot.nightly.state import history

    hist = history(1)
    out["last_cycle"] = hist[0] if hist else None
    return out


def remove() -> dict[str, Any]:
    removed = []
    d = unit_dir()
    if (d / f"{UNIT}.timer").is_file() or (d / f"{UNIT}.service").is_file():
        _systemctl("disable", "--now", f"{UNIT}.timer")
        for suffix in ("timer", "service"):
            p = d / f"{UNIT}.{suffix}"
            if p.is_file():
                p.unlink()
                removed.append(str(p))
        _systemctl("daemon-reload")
    if os.environ.get("COPILOT_SCHEDULER") != "systemd" and shutil.which("crontab"):
        lines = _crontab_read()
        keep = [ln for ln in lines if MARK not in ln]
        if len(keep) != len(lines):
            _crontab_write(keep)
            removed.append("crontab line")
    return {"removed": removed}
