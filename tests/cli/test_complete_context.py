"""`copilot complete` in a repository: the prompt opens with the same repository context as the server's."""

import json
import os
import subprocess
import sys
from pathlib import Path

COPILOT = [sys.executable, "-m", "copilot.cli"]


def run(args, home: Path, cwd: Path, **env):
    full = dict(os.environ, COPILOT_HOME=str(home), COPILOT_CONFIG=str(home / "none.toml"), **env)
    return subprocess.run(COPILOT + args, capture_output=True, text=True, env=full, cwd=cwd, timeout=300)


def test_complete_indexes_the_files_repository(tmp_path, tiny_model_dir):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)  # the repository root is the nearest folder holding .git
    (repo / "pkg").mkdir()
    (repo / "pkg" / "billing.py").write_text(
        'def invoice_total(lines: list) -> float:\n    """Sum of the lines."""\n    return sum(lines)\n')
    app = repo / "pkg" / "app.py"
    app.write_text("from pkg.billing import invoice_total\n\nx = invoice_total(\n")
    args = ["complete", "pkg/app.py", "--line", "3", "--col", "19", "--model", str(tiny_model_dir), "--json"]
    res = run(args, tmp_path / "home", repo)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    first = data["context"][0]
    assert (first["path"], first["source"]) == ("pkg/billing.py", "definition") and first["chars"] > 40
    assert all(c["path"] != "pkg/app.py" for c in data["context"])
    assert data["repo_index"]["root"] == str(repo) and data["repo_index"]["files"] == 2
    off = run(args, tmp_path / "home", repo, COPILOT_CONTEXT_REPO="false")
    assert off.returncode == 0, off.stderr
    assert json.loads(off.stdout)["context"] == [] and json.loads(off.stdout)["prompt_tokens"] < data["prompt_tokens"]


def test_complete_shows_the_regions_of_other_files_changed_since_the_last_commit(tmp_path, tiny_model_dir):
    from helpers.indexer_fixtures import commit, init_repo

    repo = init_repo(tmp_path / "repo")
    settings = '"""Settings."""\n\n' + "".join(f"SHADE_{i} = {i}\n" for i in range(45))
    app = "import settings\n\n\ndef retries():\n    return \n"
    commit(repo, {"settings.py": settings, "app.py": app}, "2024-01-02T10:00:00+00:00", "start")
    args = ["complete", "app.py", "--line", "5", "--col", "12", "--model", str(tiny_model_dir), "--json"]
    clean = run(args, tmp_path / "home", repo)
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["context"] == []  # nothing like `return` anywhere, nothing edited
    (repo / "settings.py").write_text(settings + "RETRY_LIMIT = 5  # attempts before giving up\n")
    edited = run(args, tmp_path / "home", repo)
    assert edited.returncode == 0, edited.stderr
    assert [(c["path"], c["source"]) for c in json.loads(edited.stdout)["context"]] == [("settings.py", "recent_edit")]
    off = run(args, tmp_path / "home", repo, COPILOT_CONTEXT_RECENT_EDITS="false")
    assert off.returncode == 0 and json.loads(off.stdout)["context"] == [], off.stderr


def test_a_new_file_git_does_not_track_yet_is_a_recent_edit_shown_by_its_last_lines(tmp_path, tiny_model_dir):
    from helpers.indexer_fixtures import commit, init_repo

    from copilot.cli.complete import uncommitted_edits
    from indexer.workspace.recent_edits import Edit

    repo = init_repo(tmp_path / "repo")
    app = "import settings\n\n\ndef retries():\n    return \n"
    commit(repo, {"settings.py": "LIMIT = 1\n", "app.py": app, ".gitignore": "build/\n",
                  "old.py": "KEEP = 1\nDROP = 2\n"}, "2024-01-02T10:00:00+00:00", "start")
    (repo / "old.py").write_text("KEEP = 1\n")  # a change that only removes lines adds no region
    (repo / "build").mkdir()
    (repo / "build" / "gen.py").write_text("GENERATED_RETRY_LIMIT = 1  # ignored: never context\n" * 3)
    new = "".join(f"BACKOFF_STEP_{i} = {i}  # seconds between attempts\n" for i in range(30))
    (repo / "backoff.py").write_text(new)
    (repo / "settings.py").write_text("LIMIT = 1\nRETRY_LIMIT = 5\n")
    os.utime(repo / "settings.py", (1, 1))  # the new file is the newest change
    edits = uncommitted_edits(repo, "app.py")
    assert edits == [Edit("backoff.py", 0, 29, 29), Edit("settings.py", 1, 1)]
    assert edits[0].window(30) == (18, 29)  # a new file is shown by the lines written last
    args = ["complete", "app.py", "--line", "5", "--col", "12", "--model", str(tiny_model_dir), "--json"]
    res = run(args, tmp_path / "home", repo)
    assert res.returncode == 0, res.stderr
    assert [(c["path"], c["source"]) for c in json.loads(res.stdout)["context"]][:1] == [("backoff.py", "recent_edit")]
    assert uncommitted_edits(repo, "backoff.py") == [Edit("settings.py", 1, 1)]  # never the file being completed
