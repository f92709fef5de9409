#!/usr/bin/env python
"""Build a realistic "company repo" with real history from successive releases of real PyPI projects.

For each project version (oldest first, across projects by release date) the sdist is downloaded with
``pip download --no-deps --no-binary :all: NAME==VER``, unpacked into ``<name>/`` (replacing the previous
version's files) and committed with the release's date as author and committer date. The release date is
taken from the sdist itself (the newest file time in the archive), so no other registry call is needed.

    python scripts/make_company_repo.py --out /tmp/company-repo
    python scripts/make_company_repo.py --out DIR --project click==8.1.0,8.1.3,8.1.7 --project itsdangerous==2.0.1,2.1.2

Downloads are cached (default ~/.cache/copilot/sdists) so a rebuild works offline.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path

DEFAULT_PROJECTS = [
    "click==8.0.0,8.0.1,8.0.3,8.0.4,8.1.0,8.1.2,8.1.3,8.1.6,8.1.7",
    "itsdangerous==2.0.0,2.0.1,2.1.0,2.1.2",
]


def parse_project(spec: str) -> tuple[str, list[str]]:
    if "==" not in spec:
        raise SystemExit(f"--project {spec!r}: expected NAME==VER1,VER2,...")
    name, versions = spec.split("==", 1)
    vers = [v.strip() for v in versions.split(",") if v.strip()]
    if not name.strip() or not vers:
        raise SystemExit(f"--project {spec!r}: expected NAME==VER1,VER2,...")
    return name.strip(), vers


def download_sdist(name: str, version: str, cache: Path) -> Path:
    """The sdist archive of NAME==VERSION, downloaded with pip once and cached."""
    target = cache / f"{name}-{version}"
    target.mkdir(parents=True, exist_ok=True)
    found = _archives(target)
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--quiet",
               "--dest", str(target), f"{name}=={version}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["pip download failed"])[-1]
            raise SystemExit(f"cannot download {name}=={version}: {last}")
        found = _archives(target)
    if not found:
        raise SystemExit(f"pip downloaded no sdist for {name}=={version}")
    return found[0]


def _archives(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith((".tar.gz", ".tgz", ".zip", ".tar.bz2")))


def release_time(archive: Path) -> int:
    """The newest member mtime in the archive: when the release was built."""
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            return max(int(datetime(*zi.date_time, tzinfo=timezone.utc).timestamp()) for zi in zf.infolist())
    with tarfile.open(archive) as tf:
        return max(int(m.mtime) for m in tf.getmembers())


def unpack(archive: Path, dest: Path) -> None:
    """Unpack without the archive's top folder (``click-8.1.0/``) into ``dest`` (emptied first)."""
    if dest.exists():
        shutil.rmtree(dest)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp_path)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(tmp_path, filter="data")
        entries = list(tmp_path.iterdir())
        top = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp_path
        shutil.copytree(top, dest, symlinks=True)


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    full = dict(os.environ, GIT_AUTHOR_NAME="Release Bot", GIT_AUTHOR_EMAIL="release@company.invalid",
                GIT_COMMITTER_NAME="Release Bot", GIT_COMMITTER_EMAIL="release@company.invalid")
    full.update(env or {})
    proc = subprocess.run(["git", *args], cwd=str(repo), capture_output=True, text=True, env=full)
    if proc.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def build(out: Path, projects: list[tuple[str, list[str]]], cache: Path, force: bool = False) -> list[dict]:
    if out.exists() and any(out.iterdir()):
        if not force:
            raise SystemExit(f"{out} exists and is not empty (use --force to rebuild it)")
        shutil.rmtree(out)
    releases = []
    for name, versions in projects:
        for version in versions:
            archive = download_sdist(name, version, cache)
            releases.append({"name": name, "version": version, "archive": archive, "time": release_time(archive)})
            print(f"downloaded {name}=={version} ({archive.stat().st_size // 1024} KB)", file=sys.stderr)
    releases.sort(key=lambda r: r["time"])
    tmp = out.parent / f".{out.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    git(tmp, "init", "-q", "-b", "main")
    for rel in releases:
        unpack(rel["archive"], tmp / rel["name"])
        git(tmp, "add", "-A", "--force", rel["name"])
        date = datetime.fromtimestamp(rel["time"], timezone.utc).isoformat()
        git(tmp, "commit", "-q", "--allow-empty", "-m", f"Release {rel['name']} {rel['version']}",
            env={"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date})
        git(tmp, "tag", f"{rel['name']}-{rel['version']}")
        print(f"committed {rel['name']} {rel['version']} at {date}", file=sys.stderr)
    os.replace(tmp, out)
    return releases


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="Where to create the git repository.")
    ap.add_argument("--project", action="append", default=None,
                    help="NAME==VER1,VER2,... (repeatable; default: click and itsdangerous releases)")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "copilot" / "sdists")
    ap.add_argument("--force", action="store_true", help="Replace --out if it exists.")
    args = ap.parse_args(argv)
    projects = [parse_project(p) for p in (args.project or DEFAULT_PROJECTS)]
    releases = build(args.out.expanduser().resolve(), projects, args.cache.expanduser(), force=args.force)
    print(f"{args.out}: {len(releases)} releases committed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
