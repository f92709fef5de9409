"""Path rules (no file content needed): ignore files (.gitignore/.copilotignore), vendored folders, lockfiles,
.env files, generated paths (suffixes and ``linguist-generated``), oversized files."""

from __future__ import annotations

from pathlib import PurePosixPath

import pathspec

VENDORED_DIRS = frozenset({
    "vendor", "vendors", "vendored", "node_modules", "third_party", "third-party", "thirdparty", "3rdparty",
    "bower_components", "site-packages", ".venv", "venv", "Pods", "Carthage", ".yarn", "jspm_packages",
    "external", "extern", "_vendor",
})

LOCKFILES = frozenset({
    "package-lock.json", "yarn.lock", "pnpm-lock.yaml", "npm-shrinkwrap.json", "Cargo.lock", "poetry.lock",
    "Pipfile.lock", "go.sum", "composer.lock", "Gemfile.lock", "uv.lock", "pdm.lock", "bun.lockb",
    "packages.lock.json", "flake.lock", "mix.lock", "pubspec.lock", "Podfile.lock",
})

GENERATED_SUFFIXES = ("_pb2.py", "_pb2_grpc.py", ".pb.go", ".pb.cc", ".pb.h", ".g.dart", ".designer.cs",
                      ".min.js", ".min.css", "-min.js", ".bundle.js")


class IgnoreRules:
    """Gitignore-syntax rules from every .gitignore / .copilotignore in the tree, each scoped to its folder."""

    def __init__(self, files: dict[str, str] | None = None):
        self._specs: list[tuple[str, pathspec.PathSpec]] = []
        for path, text in sorted((files or {}).items()):
            folder = str(PurePosixPath(path).parent)
            folder = "" if folder == "." else folder + "/"
            spec = pathspec.GitIgnoreSpec.from_lines(text.splitlines())
            self._specs.append((folder, spec))

    def __bool__(self) -> bool:
        return bool(self._specs)

    def matches(self, path: str) -> bool:
        for folder, spec in self._specs:
            if folder and not path.startswith(folder):
                continue
            if spec.match_file(path[len(folder):]):
                return True
        return False


def is_ignore_file(path: str) -> bool:
    return PurePosixPath(path).name in (".gitignore", ".copilotignore")


def is_ignored(path: str, rules: IgnoreRules) -> bool:
    """True when .gitignore/.copilotignore rules match the path (tracked files can still match)."""
    return bool(rules) and rules.matches(path)


def is_vendored(path: str) -> bool:
    parts = PurePosixPath(path).parts[:-1]
    return any(p in VENDORED_DIRS for p in parts)


def is_lockfile(path: str) -> bool:
    return PurePosixPath(path).name in LOCKFILES


def is_env_file(path: str) -> bool:
    name = PurePosixPath(path).name
    return name == ".env" or name.startswith(".env.") or name.endswith(".env")


def generated_patterns(gitattributes: str) -> pathspec.PathSpec | None:
    """Patterns marked ``linguist-generated`` (or ``=true``) in a .gitattributes text."""
    pats = []
    for line in gitattributes.splitlines():
        fields = line.split()
        if len(fields) < 2 or fields[0].startswith("#"):
            continue
        if any(a in ("linguist-generated", "linguist-generated=true") for a in fields[1:]):
            pats.append(fields[0])
    return pathspec.GitIgnoreSpec.from_lines(pats) if pats else None


def is_generated_path(path: str, linguist: pathspec.PathSpec | None = None) -> bool:
    if path.endswith(GENERATED_SUFFIXES):
        return True
    return linguist is not None and linguist.match_file(path)


def is_oversized(size: int, max_bytes: int) -> bool:
    return size > max_bytes

