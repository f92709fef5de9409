"""Settings precedence: defaults < user TOML < per-repo .copilot.toml < env < flags."""

import pytest

from copilot.core.settings import describe_defaults, load_settings
from copilot.core.types import UserInputError


def test_precedence(tmp_path):
    user = tmp_path / "user.toml"
    user.write_text('model = "user-model"\nadapter = "team-a"\n[completion]\nmax_new_tokens = 10\nmax_lines = 3\n')
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / ".copilot.toml").write_text('adapter = "repo-adapter"\n[completion]\nmax_new_tokens = 20\n[workspaces]\n"/x" = "y"\n')
    env = {"COPILOT_COMPLETION_MAX_NEW_TOKENS": "30", "COPILOT_DEVICE": "cpu"}
    s = load_settings(cwd=repo / "src", env=env, user_file=user)
    assert s.model == "user-model"  # only the user file sets it
    assert s.adapter == "repo-adapter"  # repo file beats user file
    assert s.completion.max_lines == 3
    assert s.completion.max_new_tokens == 30  # env beats files
    assert s.device == "cpu"
    assert s.workspaces == {"/x": "y"}
    s2 = load_settings({"completion": {"max_new_tokens": 40}, "model": None}, cwd=repo, env=env, user_file=user)
    assert s2.completion.max_new_tokens == 40 and s2.model == "user-model"  # flags win; None flags are ignored


def test_defaults_without_files(tmp_path):
    s = load_settings(cwd=tmp_path, env={}, user_file=tmp_path / "absent.toml")
    assert s.model == "qwen2.5-coder-0.5b" and s.adapter == "" and s.completion.max_new_tokens == 48


def test_bad_files_and_values_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("model = \n")
    with pytest.raises(UserInputError, match="invalid TOML"):
        load_settings(cwd=tmp_path, env={}, user_file=bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("modle = 'x'\n")
    with pytest.raises(UserInputError, match="unknown setting 'modle'"):
        load_settings(cwd=tmp_path, env={}, user_file=unknown)
    with pytest.raises(UserInputError, match="bad value for 'max_new_tokens'"):
        load_settings(cwd=tmp_path, env={"COPILOT_COMPLETION_MAX_NEW_TOKENS": "lots"}, user_file=unknown.with_name("none"))


def test_every_setting_is_documented():
    rows = describe_defaults()
    assert {"model", "adapter", "completion.max_new_tokens", "train.r", "explain.max_input_chars"} <= {r[0] for r in rows}
    assert all(help_ for key, _, help_ in rows if key != "workspaces") and all(r[2] for r in rows)


def test_usable_cores_follows_the_affinity_mask(monkeypatch):
    import os

    from copilot.core.paths import usable_cores

    assert 1 <= usable_cores() <= (os.cpu_count() or 1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert usable_cores() == 1
