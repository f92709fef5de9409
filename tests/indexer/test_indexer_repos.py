"""Reading repositories: bare, URL, shallow, empty, missing objects, submodules, symlinks, huge files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from copilot.core.types import UserInputError
from indexer.git.history import commit_changes, list_commits, parse_since
from indexer.git.repo import head_files, open_repo
from indexer.mine.config import IndexConfig
from indexer.mine.index import index_repos
from helpers.indexer_fixtures import UTILS_PY_V1, UTILS_PY_V2, UTILS_PY_V3, commit, git, init_repo


@pytest.fixture
def small_repo(tmp_path) -> tuple[Path, list[str]]:
    repo = init_repo(tmp_path / "small")
    shas = [
        commit(repo, {"utils.py": UTILS_PY_V1}, "2024-01-01T00:00:00+00:00"),
        commit(repo, {"utils.py": UTILS_PY_V2}, "2024-02-01T00:00:00+00:00"),
        commit(repo, {"utils.py": UTILS_PY_V3, "b.py": "def b():\n    return 2\n"}, "2024-03-01T00:00:00+00:00"),
    ]
    return repo, shas


def test_history_added_ranges(small_repo):
    path, shas = small_repo
    with open_repo(str(path)) as repo:
        commits = list_commits(repo)
        assert [c.sha for c in commits] == shas
        assert commits[0].parents == () and commits[1].parents == (shas[0],)
        changes = {info.sha: chs for info, chs in commit_changes(repo, commits)}
        assert set(changes) == set(shas[1:])  # the root commit has no diff to mine
        (ch,) = changes[shas[1]]
        n1 = len(UTILS_PY_V1.splitlines())
        assert ch.path == "utils.py" and ch.added == [(n1, len(UTILS_PY_V2.splitlines()) - 1)]
        assert repo.blobs().read(ch.blob).decode() == UTILS_PY_V2
        assert sorted(c.path for c in changes[shas[2]]) == ["b.py", "utils.py"]


def test_paths_with_spaces_quotes_and_non_ascii(tmp_path):
    repo = init_repo(tmp_path / "r")
    names = ["my file.py", "ü/naïve.py", 'we"ird.py']
    commit(repo, {n: "x = 1\n" for n in names}, "2024-01-01T00:00:00+00:00")
    commit(repo, {n: "x = 1\ny = 2\n" for n in names}, "2024-02-01T00:00:00+00:00")
    commit(repo, {}, "2024-03-01T00:00:00+00:00", renames={"my file.py": "moved file.py"})
    with open_repo(str(repo)) as r:
        assert sorted(e.path for e in head_files(r)) == sorted(["moved file.py", "ü/naïve.py", 'we"ird.py'])
        changes = [chs for _, chs in commit_changes(r, list_commits(r))]
        assert sorted((c.path, tuple(c.added)) for c in changes[0]) == sorted((n, ((1, 1),)) for n in names)
        (rename,) = changes[1]
        assert (rename.old_path, rename.path, rename.added) == ("my file.py", "moved file.py", [])


def test_since_revision_and_date(small_repo):
    path, shas = small_repo
    with open_repo(str(path)) as repo:
        assert [c.sha for c in list_commits(repo, since_rev=shas[1])] == [shas[2]]
        rev, t = parse_since("2024-01-15")
        assert rev is None
        assert [c.sha for c in list_commits(repo, since_time=t)] == shas[1:]
        with pytest.raises(UserInputError, match="unknown revision"):
            list_commits(repo, since_rev="no-such-branch")
    assert parse_since("v1.2") == ("v1.2", None)


def test_bare_repo_and_url_give_the_same_pairs(small_repo, tmp_path):
    path, _ = small_repo
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(path), str(bare))
    a = index_repos([str(path)], tmp_path / "o1")
    b = index_repos([str(bare)], tmp_path / "o2")
    url = f"file://{path}"
    c = index_repos([url], tmp_path / "o3")
    assert a.manifest["counts"]["by_kind"] == b.manifest["counts"]["by_kind"] == c.manifest["counts"]["by_kind"]
    assert b.manifest["repos"][str(bare.resolve())]["bare"] is True
    assert url in c.manifest["repos"]
    assert a.manifest["counts"]["total"] > 0


def test_not_a_repo_empty_repo_and_subdirectory(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(UserInputError, match="not a git repository"):
        open_repo(str(plain))
    with pytest.raises(UserInputError, match="no such directory"):
        open_repo(str(tmp_path / "missing"))
    with pytest.raises(UserInputError, match="cannot clone"):
        open_repo(f"file://{tmp_path}/missing.git")
    empty = init_repo(tmp_path / "empty")
    result = index_repos([str(empty)], tmp_path / "out")
    assert result.manifest["counts"]["total"] == 0
    assert any("empty repository" in n for n in result.manifest["repos"][str(empty.resolve())]["notes"])
    repo = init_repo(tmp_path / "r")
    commit(repo, {"pkg/a.py": "x = 1\n"}, "2024-01-01T00:00:00+00:00")
    with pytest.raises(UserInputError, match="not the top of a git repository"):
        open_repo(str(repo / "pkg"))


def test_url_credentials_are_never_shown():
    from copilot.core.git import redact_url

    assert redact_url("https://bob:ghp_tok@github.com/a/b.git") == "https://github.com/a/b.git"
    assert redact_url("git@github.com:a/b.git") == "git@github.com:a/b.git"
    with pytest.raises(UserInputError) as err:
        open_repo("https://bob:sekrit-token@127.0.0.1:9/none.git")
    assert "sekrit-token" not in str(err.value) and "cannot clone https://127.0.0.1:9/none.git" in str(err.value)


def test_shallow_clone_is_mined_as_far_as_it_goes(small_repo, tmp_path):
    path, shas = small_repo
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "2", f"file://{path}", str(shallow))
    with open_repo(str(shallow)) as repo:
        assert repo.shallow and any("shallow" in n for n in repo.notes)
        commits = list_commits(repo)
        assert [c.sha for c in commits] == shas[1:]
        assert commits[0].parents == ()  # the boundary looks like a root
        assert [info.sha for info, _ in commit_changes(repo, commits)] == [shas[2]]
    result = index_repos([str(shallow)], tmp_path / "out")
    assert result.manifest["repos"][str(shallow.resolve())]["shallow"] is True
    assert result.manifest["counts"]["by_kind"].get("fim_history", 0) >= 1


def test_missing_object_is_skipped_and_the_walk_goes_on(tmp_path):
    repo = init_repo(tmp_path / "r")
    commit(repo, {"a.py": UTILS_PY_V1}, "2024-01-01T00:00:00+00:00")
    commit(repo, {"lost.py": "def lost():\n    return 'gone'\n"}, "2024-02-01T00:00:00+00:00")
    last = commit(repo, {"a.py": UTILS_PY_V2}, "2024-03-01T00:00:00+00:00")
    blob = git(repo, "rev-parse", "HEAD:lost.py").strip()
    os.remove(repo / ".git" / "objects" / blob[:2] / blob[2:])
    result = index_repos([str(repo)], tmp_path / "out")
    notes = result.manifest["repos"][str(repo.resolve())]["notes"]
    assert any("lost.py" in n and "missing" in n for n in notes)
    assert any(n.startswith("commit ") and "skipped" in n for n in notes)
    import pyarrow.parquet as pq

    rows = pq.read_table(tmp_path / "out" / "pool.parquet").to_pylist()
    assert not any(r["path"] == "lost.py" for r in rows)
    # The commit after the broken one was still mined.
    assert any(r["kind"] == "fim_history" and r["commit"] == last and r["path"] == "a.py" for r in rows)


def test_submodules_symlinks_and_huge_files_are_skipped(tmp_path):
    repo = init_repo(tmp_path / "r")
    commit(repo, {"a.py": UTILS_PY_V1}, "2024-01-01T00:00:00+00:00")
    other = init_repo(tmp_path / "other")
    sub_sha = commit(other, {"x.py": "x = 1\n"}, "2024-01-01T00:00:00+00:00")
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{sub_sha},libs/sub")
    os.symlink("/etc/passwd", repo / "passwd.py")
    os.symlink(str(tmp_path / "other" / "x.py"), repo / "outside.py")
    git(repo, "add", "passwd.py", "outside.py")
    (repo / "huge.py").write_bytes(b"x = 1\n" * (100 * 1024 * 1024 // 6))
    git(repo, "add", "huge.py")
    commit(repo, {}, "2024-02-01T00:00:00+00:00")
    with open_repo(str(repo)) as r:
        modes = {e.path: (e.mode, e.type) for e in head_files(r)}
    assert modes["libs/sub"] == ("160000", "commit") and modes["passwd.py"][0] == "120000"
    result = index_repos([str(repo)], tmp_path / "out")
    m = result.manifest
    assert m["filters"]["submodule"] == 1 and m["filters"]["symlink"] == 2 and m["filters"]["oversized"] == 1
    assert any("submodule libs/sub skipped" in n for n in m["repos"][str(repo.resolve())]["notes"])
    assert m["repos"][str(repo.resolve())]["bytes_mined"] < 10_000  # the 100 MB file was never read
    out_bytes = b"".join(p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert b"root:" not in out_bytes and b"passwd.py" not in out_bytes and b"outside.py" not in out_bytes


def test_broken_syntax_keeps_the_rest_of_the_file(tmp_path):
    repo = init_repo(tmp_path / "r")
    source = ('def good():\n    """Return the answer to everything."""\n    value = 42\n    return value\n\n\n'
              'def broken(:\n    """This one does not parse at all."""\n    return\n')
    commit(repo, {"m.py": source}, "2024-01-01T00:00:00+00:00")
    index_repos([str(repo)], tmp_path / "out", IndexConfig(test_fraction=0.0))
    import pyarrow.parquet as pq

    rows = pq.read_table(tmp_path / "out" / "pool.parquet").to_pylist()
    explains = [r["completion"] for r in rows if r["kind"] == "explain"]
    assert explains == ["Return the answer to everything."]


def _walk_owners(repo):
    from indexer.languages import language_for_path
    from indexer.git.blame import LineOwners

    commits = list_commits(repo)
    root = LineOwners.applicable(repo, commits)
    assert root == commits[0].sha
    owners = LineOwners(repo, root, paths=lambda p: language_for_path(p) is not None)
    for info, changes in commit_changes(repo, commits):
        for ch in changes:
            owners.change(info.sha, ch)
    return owners


def test_line_owners_from_the_walk_match_git_blame(tmp_path):
    """Lines dated from the walk's diff hunks (new files, root-commit files changed later, renames, edits in
    the middle, deletions) are what git blame says; a binary version is left to blame."""
    from indexer.languages import language_for_path
    from indexer.git.blame import blame_lines
    from helpers.indexer_fixtures import build_company_repo

    shas = build_company_repo(tmp_path / "repo")
    repo_path = tmp_path / "repo"
    edited = UTILS_PY_V3.replace("    if value > high:\n", "    if value >= high:  # inclusive\n")
    shas["c7"] = commit(repo_path, {"src/utils.py": edited.replace('"""Small helpers."""\n', ""),
                                    "svc/health.go": None}, "2024-07-01T10:00:00+00:00", "edit")
    with open_repo(str(repo_path)) as repo:
        owners = _walk_owners(repo)
        checked = 0
        for e in head_files(repo):
            if e.type != "blob" or language_for_path(e.path) is None:
                continue
            mine = owners.lines(e.path, e.sha)
            if e.path == "src/nul.py":  # binary: no hunks to follow
                assert mine is None
                continue
            assert mine == blame_lines(repo, e.path), e.path
            checked += 1
        assert checked >= 5
        utils = owners.lines("src/utils.py", next(e.sha for e in head_files(repo) if e.path == "src/utils.py"))
        assert {shas["c1"], shas["c2"], shas["c6"], shas["c7"]} == set(utils)
        assert owners.lines("src/utils.py", "0" * 40) is None  # another version than the one tracked


def test_line_owners_only_for_a_linear_history_from_the_root(small_repo, tmp_path):
    from indexer.git.blame import LineOwners

    path, shas = small_repo
    with open_repo(str(path)) as repo:
        assert LineOwners.applicable(repo, list_commits(repo)) == shas[0]
        assert LineOwners.applicable(repo, list_commits(repo, shas[0])) is None  # mined from a revision on
    git(path, "checkout", "-q", "-b", "side", shas[1])
    commit(path, {"c.py": "def c():\n    return 3\n"}, "2024-03-02T00:00:00+00:00")
    git(path, "checkout", "-q", "main")
    git(path, "merge", "-q", "--no-edit", "side")
    with open_repo(str(path)) as repo:
        assert LineOwners.applicable(repo, list_commits(repo)) is None  # a merge: git blame dates the lines
