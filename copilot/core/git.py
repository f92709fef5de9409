"""Running git: one runner with a quiet, non-interactive environment (no prompts, C locale, no system config)."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from copilot.core.types import UserInputError


class GitError(UserInputError):
    pass


def git_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C", "GIT_CONFIG_NOSYSTEM": "1"})
    return env


def redact_url(text: str) -> str:
    """Drop credentials from URLs (``https://user:token@host`` -> ``https://host``): never written or shown."""
    return re.sub(r"(?<=://)[^/@\s]+@", "", text)


def last_line(err: str | bytes) -> str:
    if isinstance(err, bytes):
        err = err.decode("utf-8", "replace")
    lines = [line for line in (err or "").strip().splitlines() if line.strip()]
    return redact_url(lines[-1] if lines else "git failed")


def run_git(cwd: str | Path | None, *args: str, input: str | bytes | None = None,
            timeout: float | None = None) -> subprocess.CompletedProcess:
    """`git -c core.quotepath=off ARGS` in `cwd`; output as bytes; never raises on a git error."""
    if isinstance(input, str):
        input = input.encode()
    return subprocess.run(["git", "-c", "core.quotepath=off", *args], cwd=str(cwd) if cwd else None,
                          capture_output=True, input=input, env=git_env(), timeout=timeout)


def git(cwd: str | Path | None, *args: str, check: bool = True, input: str | bytes | None = None,
        timeout: float | None = None) -> str:
    """Run git and return its stdout as text; a failure (with `check`) is a GitError with git's last line."""
    proc = run_git(cwd, *args, input=input, timeout=timeout)
    if check and proc.returncode != 0:
        raise GitError(last_line(proc.stderr) if proc.stderr.strip() else f"git {args[0]} failed")
    return proc.stdout.decode("utf-8", "surrogateescape")
