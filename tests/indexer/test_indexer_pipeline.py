"""End to end on a repo built here: which pairs appear, no secret in any output byte, time split,
incremental runs, refusing to mix datasets, atomic writes, and the `index` click command."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from copilot.core.types import UserInputError
from indexer import dataset as ds
from copilot.cli.index import index as index_command
from indexer.mine.config import IndexConfig
from indexer.mine.index import index_repos
from indexer.mine.split import choose_test_commits, split_rows
from helpers.indexer_fixtures import SECRETS, SERVER_GO, SHAPES_TS, build_company_repo, commit

EXPECTED = {
    ("fim_history", "src/utils.py", "c2"),  # mean() added
    ("fim_history", "svc/server.go", "c2"),  # the Go file, before its rename
    ("fim_history", "src/settings.py", "c3"),  # secrets redacted
    ("fim_history", "lib/parser.rs", "c6"),
    ("fim_history", "src/utils.py", "c6"),  # median_of_sorted() added
    ("fim_file", "src/utils.py", "c2"),  # utils.py last changed in c6, but this middle is mean(), from c2
    ("fim_file", "src/settings.py", "c3"),
    ("fim_file", "svc/health.go", "c2"),  # renamed in c5: content still dated c2
    ("fim_file", "web/shapes.ts", "c1"),  # from the root commit
    ("fim_typing", "src/utils.py", "c2"),  # typing points: current files, dated like fim_file (line by line)
    ("fim_typing", "src/settings.py", "c3"),
    ("fim_typing", "svc/health.go", "c2"),
    ("fim_typing", "web/shapes.ts", "c1"),
    ("fim_typing", "lib/parser.rs", "c6"),
    ("explain", "src/utils.py", "c1"),  # clamp: dated line by line (git blame), not by the file's last change
    ("explain", "src/utils.py", "c2"),  # mean
    ("explain", "src/utils.py", "c6"),  # median_of_sorted
    ("explain", "src/settings.py", "c3"),
    ("explain", "svc/health.go", "c2"),
    ("explain", "web/shapes.ts", "c1"),
    ("explain", "lib/parser.rs", "c6"),
}


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    root = tmp_path_factory.mktemp("company")
    shas = build_company_repo(root / "repo")
    out = root / "dataset"
    result = index_repos([str(root / "repo")], out)
    return root, shas, out, result


def _rows(out: Path, name: str = "pool") -> list[dict]:
    path = out / ds.POOL if name == "pool" else out / ds.PARQUET_DIR / f"{name}.parquet"
    return pq.read_table(path).to_pylist()


def test_which_pairs_appear(company):
    root, shas, out, result = company
    names = {v: k for k, v in shas.items()}
    got = {(r["kind"], r["path"], names[r["commit"]]) for r in _rows(out)}
    assert got == EXPECTED
    for path in ("vendor/leftpad.js", "node_modules/pad/index.js", "gen/models.py", "src/pb_gen.py",
                 "static/app.min.js", "secret_stuff/notes.py", "build/out.py", "web/shapes_copy.ts",
                 "src/latin1.py", "src/nul.py", "package-lock.json", ".env"):
        assert path not in {p for _, p, _ in got}
    m = result.manifest
    assert m["filters"] == {"binary": 1, "env_file": 1, "generated": 4, "ignored": 2, "invalid_utf8": 1,
                            "near_duplicate": 1, "test_leak": 0, "vendored": 2}
    # explain pairs: the exact docstrings
    explains = {r["completion"] for r in _rows(out) if r["kind"] == "explain"}
    assert explains == {
        "Limit a value to the range [low, high].", "Arithmetic mean of a non-empty list of numbers.",
        "Middle element of an already sorted list of numbers.", "Open a connection to the billing database.",
        "Health reports whether the service is alive and ready to serve traffic.",
        "Euclidean distance between two points.", "Parses a comma-separated list of integers, skipping blanks.",
    }
    history_utils_c2 = [r for r in _rows(out) if r["kind"] == "fim_history" and r["commit"] == shas["c2"]
                        and r["path"] == "src/utils.py"]
    assert [r["middle"] for r in history_utils_c2] == [
        'def mean(values):\n    """Arithmetic mean of a non-empty list of numbers."""\n    total = sum(values)\n'
        '    count = len(values)\n    return total / count']
    r = history_utils_c2[0]
    assert r["prompt"] == f"<|fim_prefix|>{r['prefix']}<|fim_suffix|>{r['suffix']}<|fim_middle|>"
    assert r["completion"] == r["middle"] and r["language"] == "python" and r["multiline"]
    assert r["prefix"].endswith("return value\n\n\n") and r["commit_time"] == 1706781600


def test_no_planted_secret_anywhere_in_the_output(company):
    root, shas, out, result = company
    raw = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    cells = []
    for name in ("pool", "train", "test"):
        for row in _rows(out, name):
            cells.extend(str(v) for v in row.values())
    text = "\n".join(cells)
    for name, value in SECRETS.items():
        assert value.encode() not in raw, name
        assert value not in text, name
    assert "<SECRET>" in text and "<EMAIL>" in text
    m = result.manifest
    assert m["secrets"] == {"assigned_secret": 2, "aws_access_key": 1, "aws_secret_key": 1, "azure_storage_key": 1,
                            "gcp_api_key": 1, "github_token": 1, "gitlab_token": 1, "high_entropy_string": 1,
                            "jwt": 1, "private_key": 1, "slack_token": 1}
    assert m["extra"]["secrets_action"] == "redact" and m["extra"]["emails_masked"] >= 1


def test_test_split_is_the_newest_commits(company):
    root, shas, out, result = company
    train, test = _rows(out, "train"), _rows(out, "test")
    assert {r["commit"] for r in test} == {shas["c6"]}  # 10% of 6 commits, rounded up: the newest
    assert max(r["commit_time"] for r in train) < min(r["commit_time"] for r in test)
    assert all(r["split"] == "test" for r in test) and all(r["split"] == "train" for r in train)
    test_middles = {r["middle"] or r["completion"] for r in test}
    assert not test_middles & {r["middle"] or r["completion"] for r in train}
    m = result.manifest
    assert m["counts"]["by_split"] == {"train": len(train), "test": len(test)}
    assert m["extra"]["split"]["test_commits"] == 1 and m["extra"]["split"]["total_commits"] == 6


def test_saved_dataset_and_manifest(company):
    root, shas, out, result = company
    dd = ds.load_pairs(out)
    assert set(dd) == {"train", "test"}
    assert dd["train"].column_names == ds.COLUMNS
    assert len(dd["train"]) == len(_rows(out, "train"))
    manifest = json.loads((out / ds.MANIFEST).read_text())
    assert (out / "dataset_dict.json").is_file() and (out / "parquet" / "train.parquet").is_file()
    assert set(manifest) == {"fingerprint", "config_hash", "repos", "counts", "filters", "secrets", "created",
                             "tool_version", "extra"}
    repo_key = str((root / "repo").resolve())
    assert manifest["repos"][repo_key]["head"] == shas["c6"]
    assert manifest["repos"][repo_key]["commits_mined"] == 6
    assert not list(out.parent.glob(".dataset.tmp-*"))
    # The trainer's loader reads the same directory.
    from indexer.dataset import load_with_manifest as load_pairs

    loaded, loaded_manifest = load_pairs(out)
    assert len(loaded["test"]) == len(dd["test"]) and loaded_manifest["fingerprint"] == manifest["fingerprint"]


def test_incremental_run_mines_only_what_changed(tmp_path):
    shas = build_company_repo(tmp_path / "repo")
    out = tmp_path / "ds"
    first = index_repos([str(tmp_path / "repo")], out)
    before = _rows(out)
    added = SHAPES_TS + ("\n/** Scale a point by a factor. */\nexport function scale(p: Point, k: number): Point {\n"
                         "  return { x: p.x * k, y: p.y * k };\n}\n")
    c7 = commit(tmp_path / "repo", {"web/shapes.ts": added}, "2024-07-01T10:00:00+00:00", "scale")
    second = index_repos([str(tmp_path / "repo")], out)
    assert second.incremental and not first.incremental
    assert second.commits_mined == 1
    assert second.files_mined == 2  # shapes.ts at c7 (history) and at HEAD; nothing else re-read
    after = _rows(out)

    def key(r):
        return (r["kind"], r["path"], r["commit"], r["middle"], r["completion"])

    old_keys = {key(r) for r in before}
    new = [r for r in after if key(r) not in old_keys]
    assert {(r["kind"], r["path"]) for r in new} == {("fim_history", "web/shapes.ts"), ("fim_file", "web/shapes.ts"),
                                                     ("fim_typing", "web/shapes.ts"), ("explain", "web/shapes.ts")}
    # The old version's typing points went with its other current-file pairs (the small file is the whole window).
    typing = [r for r in after if r["kind"] == "fim_typing" and r["path"] == "web/shapes.ts"]
    assert typing and all(r["prefix"] + r["middle"] + r["suffix"] == added for r in typing)
    assert [r["middle"][:22] for r in new if r["kind"] == "fim_history"] == ["export function scale("]
    assert [(r["completion"], r["commit"]) for r in new if r["kind"] == "explain"] == [
        ("Scale a point by a factor.", c7)]
    # Old pairs of the unchanged files are all kept; shapes.ts' current-file pairs were mined again
    # (the old function's explain pair, dated c1 by blame, comes back identical).
    old_kept = {key(r) for r in before if not (r["path"] == "web/shapes.ts" and r["kind"] != "fim_history")}
    after_keys = [key(r) for r in after]
    assert old_kept <= set(after_keys) and len(after_keys) == len(set(after_keys))
    assert all(k in old_kept or k[1] == "web/shapes.ts" for k in after_keys)
    assert ("explain", "web/shapes.ts", shas["c1"], "", "Euclidean distance between two points.") in after_keys
    # The split moved: c7 is now the newest commit.
    assert {r["commit"] for r in _rows(out, "test")} == {c7}
    m = second.manifest
    assert m["repos"][str((tmp_path / "repo").resolve())]["since"] == shas["c6"]
    assert len(m["extra"]["runs"]) == 2 and m["extra"]["runs"][1]["commits_mined"] == 1
    # A third run with nothing new adds nothing.
    third = index_repos([str(tmp_path / "repo")], out)
    assert third.commits_mined == 0 and third.new_pairs == 0 and len(_rows(out)) == len(after)


def test_refuses_another_dataset_unless_forced(tmp_path, company):
    root, shas, out, result = company
    other = tmp_path / "other"
    commit_repo = other
    from helpers.indexer_fixtures import init_repo

    init_repo(commit_repo)
    commit(commit_repo, {"x.py": "def x():\n    return 1\n"}, "2024-01-01T00:00:00+00:00")
    target = tmp_path / "ds"
    index_repos([str(root / "repo")], target)
    manifest_before = (target / ds.MANIFEST).read_text()
    with pytest.raises(UserInputError, match="other repositories"):
        index_repos([str(other)], target)
    with pytest.raises(UserInputError, match="other settings"):
        index_repos([str(root / "repo")], target, IndexConfig(test_fraction=0.5))
    assert (target / ds.MANIFEST).read_text() == manifest_before
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file.txt").write_text("not a dataset")
    with pytest.raises(UserInputError, match="holds no pairs dataset"):
        index_repos([str(other)], tmp_path / "junk")
    forced = index_repos([str(other)], target, force=True)
    assert list(forced.manifest["repos"]) == [str(other.resolve())]
    assert not any("company" in r["repo"] for r in _rows(target))


def test_interrupted_write_leaves_the_previous_dataset(tmp_path, company, monkeypatch):
    root, shas, out, result = company
    target = tmp_path / "ds"
    index_repos([str(root / "repo")], target)
    before = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}

    def boom(tmp, out):
        raise KeyboardInterrupt

    monkeypatch.setattr(ds, "_swap", boom)
    commit(root / "repo", {}, "2024-08-01T00:00:00+00:00", "empty commit")
    with pytest.raises(KeyboardInterrupt):
        index_repos([str(root / "repo")], target)
    after = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert after == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ds.")]


def test_split_rules_and_leak_removal():
    commits = [(f"c{i}", 1000 + i * 86400) for i in range(20)]
    assert choose_test_commits(commits, IndexConfig()) == {"c18", "c19"}
    assert choose_test_commits(commits, IndexConfig(test_commits=3)) == {"c17", "c18", "c19"}
    assert choose_test_commits(commits, IndexConfig(test_days=4.5)) == {"c15", "c16", "c17", "c18", "c19"}
    assert choose_test_commits(commits[:1], IndexConfig()) == set()
    assert choose_test_commits(commits[:3], IndexConfig(test_days=100)) == {"c1", "c2"}  # one stays in train
    body = "\n".join(f"    total = total + values[{i}] * weights[{i}]" for i in range(12))
    rows = [
        {"kind": "fim_history", "commit": "c19", "middle": body, "completion": body},
        {"kind": "fim_file", "commit": "c1", "middle": body.replace("    ", "\t"), "completion": ""},  # exact
        {"kind": "fim_file", "commit": "c2", "middle": body.replace("[11]", "[12]"), "completion": ""},  # near
        {"kind": "fim_file", "commit": "c3", "middle": "return None", "completion": ""},
        {"kind": "explain", "commit": "c4", "middle": "", "completion": "Sum of weighted values."},
        {"kind": "explain", "commit": "c19", "middle": "", "completion": "Sum of weighted values."},
    ]
    splits, removed = split_rows(rows, {"c19"})
    assert removed == 3
    assert [r["commit"] for r in splits["train"]] == ["c3"]
    assert [r["commit"] for r in splits["test"]] == ["c19", "c19"]


def test_cli_index_json_and_errors(tmp_path, company):
    root, shas, out, result = company
    runner = CliRunner()
    res = runner.invoke(index_command, [str(root / "repo"), "--out", str(tmp_path / "cli"), "--json",
                                        "--languages", "py,go"])
    assert res.exit_code == 0, res.output
    manifest = json.loads(res.stdout)
    assert set(manifest["counts"]["by_language"]) == {"python", "go"}
    assert manifest["extra"]["config"]["languages"] == ["python", "go"]
    res = runner.invoke(index_command, [str(tmp_path / "nope"), "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "no such directory" in res.output and "Traceback" not in res.output
    res = runner.invoke(index_command, [str(root / "repo"), "--out", str(tmp_path / "x"), "--languages", "cobol"])
    assert res.exit_code == 2 and "unknown language" in res.output
    res = runner.invoke(index_command, [str(root / "repo"), "--out", str(tmp_path / "cli")])
    assert res.exit_code == 2 and "other settings" in res.output
    res = runner.invoke(index_command, [str(root / "repo"), "--out", str(tmp_path / "cli2"), "--test-commits", "2"])
    assert res.exit_code == 0, res.output
    assert "fim_history" in res.output and "secrets:" in res.output
    res = runner.invoke(index_command, [str(root / "repo"), "--out", str(tmp_path / "cli3"), "--json",
                                        "--since", shas["c5"]])
    assert res.exit_code == 0, res.output
    manifest = json.loads(res.stdout)
    (rep,) = manifest["repos"].values()
    assert rep["since"] == shas["c5"] and rep["commits_mined"] >= 1
    assert {r for r in manifest["counts"]["by_kind"]} >= {"fim_history"}
    res = runner.invoke(index_command, [str(root / "repo"), "--out", str(tmp_path / "cli4"), "--since", "nope"])
    assert res.exit_code == 2 and "unknown revision" in res.output


def test_secret_drop_policy_drops_the_file_versions(tmp_path, company):
    root, shas, out, result = company
    dropped = index_repos([str(root / "repo")], tmp_path / "drop", IndexConfig(secrets="drop"))
    rows = _rows(tmp_path / "drop")
    assert rows and not any(r["path"] == "src/settings.py" for r in rows)
    assert dropped.manifest["filters"]["secret_dropped"] == 1  # the HEAD version
    assert dropped.manifest["extra"]["history_filters"]["secret_dropped"] == 1  # and its history version
    assert dropped.manifest["extra"]["secrets_action"] == "drop"
    with pytest.raises(UserInputError, match="redact"):
        index_repos([str(root / "repo")], tmp_path / "bad", IndexConfig(secrets="keep"))


def test_rewritten_history_is_mined_again(tmp_path):
    from helpers.indexer_fixtures import UTILS_PY_V1, UTILS_PY_V2, git, init_repo

    repo = init_repo(tmp_path / "r")
    commit(repo, {"u.py": UTILS_PY_V1}, "2024-01-01T00:00:00+00:00")
    gone = commit(repo, {"u.py": UTILS_PY_V2}, "2024-02-01T00:00:00+00:00")
    out = tmp_path / "ds"
    index_repos([str(repo)], out)
    assert any(r["commit"] == gone for r in _rows(out))
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    new = commit(repo, {"u.py": UTILS_PY_V2.replace("Arithmetic mean", "Average")}, "2024-03-01T00:00:00+00:00")
    second = index_repos([str(repo)], out)
    rows = _rows(out)
    assert not any(r["commit"] == gone for r in rows)  # the rewritten-away commit's pairs are gone
    assert any(r["commit"] == new and r["kind"] == "fim_history" for r in rows)
    assert {r["completion"] for r in rows if r["kind"] == "explain"} >= {"Average of a non-empty list of numbers."}
    assert "exact_duplicate" not in second.manifest["filters"]
    assert any("history rewritten" in n for n in second.manifest["repos"][str(repo.resolve())]["notes"])


def test_near_duplicates_are_found_across_incremental_runs(tmp_path):
    from helpers.indexer_fixtures import near_duplicate_of

    shas = build_company_repo(tmp_path / "repo")
    out = tmp_path / "ds"
    index_repos([str(tmp_path / "repo")], out)
    # A new copy of a file mined in the first run: the second run sees only the new file, yet knows it.
    copy = commit(tmp_path / "repo", {"web/shapes_again.ts": near_duplicate_of(SHAPES_TS).replace("preview", "view")},
                  "2024-07-01T00:00:00+00:00")
    second = index_repos([str(tmp_path / "repo")], out)
    assert second.files_mined == 1  # only its history version was read: HEAD copy skipped before parsing
    assert second.manifest["filters"].get("near_duplicate") == 1
    assert not any(r["path"] == "web/shapes_again.ts" for r in _rows(out))
    # A changed file is not a near-duplicate of its own previous version.
    shapes2 = SHAPES_TS.replace("Midpoint of the segment", "Middle of the segment")
    commit(tmp_path / "repo", {"web/shapes.ts": shapes2}, "2024-08-01T00:00:00+00:00")
    third = index_repos([str(tmp_path / "repo")], out)
    assert third.manifest["filters"].get("near_duplicate", 0) == 0
    assert any(r["path"] == "web/shapes.ts" and r["kind"] == "fim_file" for r in _rows(out))
    assert copy and shas


def test_each_repo_gets_its_newest_commits_as_test(tmp_path):
    from helpers.indexer_fixtures import UTILS_PY_V1, UTILS_PY_V2, init_repo

    old, new = init_repo(tmp_path / "old"), init_repo(tmp_path / "new")
    commit(old, {"a.py": UTILS_PY_V1}, "2019-01-01T00:00:00+00:00")
    old_last = commit(old, {"a.py": UTILS_PY_V2}, "2019-02-01T00:00:00+00:00")
    commit(new, {"b.go": SERVER_GO}, "2024-01-01T00:00:00+00:00")
    new_last = commit(new, {"b.go": SERVER_GO.replace("ok", "ready")}, "2024-02-01T00:00:00+00:00")
    result = index_repos([str(old), str(new)], tmp_path / "ds")
    assert {r["commit"] for r in _rows(tmp_path / "ds", "test")} == {old_last, new_last}
    assert result.manifest["extra"]["split"]["test_commits"] == 2
