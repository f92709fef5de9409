"""The `copilot` command as a user runs it (a real subprocess): output, JSON, and one-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path


COPILOT = [sys.executable, "-m", "copilot.cli"]


def run(args, env_home: Path, **kw):
    env = dict(os.environ, COPILOT_HOME=str(env_home), COPILOT_CONFIG=str(env_home / "none.toml"))
    return subprocess.run(COPILOT + args, capture_output=True, text=True, env=env, timeout=300, **kw)


def assert_one_line_error(res, *needles):
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_help_lists_every_command(tmp_path):
    res = run(["--help"], tmp_path)
    assert res.returncode == 0
    for cmd in ("explain", "complete", "models", "config", "demo", "index", "train", "eval", "adapters"):
        assert f"  {cmd} " in res.stdout, cmd
    from copilot.cli.main import LAZY_COMMANDS

    for cmd in ("explain", "complete", "models", *LAZY_COMMANDS):  # every registered command really loads
        res = run([cmd, "--help"], tmp_path)
        assert res.returncode == 0 and "Usage: copilot " + cmd in res.stdout, (cmd, res.stderr)


def test_bad_inputs_get_one_line_errors(tmp_path, tiny_model_dir):
    (tmp_path / "bin.py").write_bytes(b"abc\x00def")
    (tmp_path / "empty.py").write_text("")
    (tmp_path / "ok.py").write_text("x = 1\ny = 2\n")
    m = ["--model", str(tiny_model_dir)]
    assert_one_line_error(run(["explain", str(tmp_path / "missing.py")], tmp_path), "no such file")
    assert_one_line_error(run(["explain", str(tmp_path)], tmp_path), "is a directory")
    assert_one_line_error(run(["explain", str(tmp_path / "bin.py")], tmp_path), "binary file")
    assert_one_line_error(run(["explain", str(tmp_path / "empty.py")], tmp_path), "empty")
    assert_one_line_error(run(["complete", str(tmp_path / "ok.py"), "--line", "40", "--col", "1"], tmp_path), "line 40 is outside")
    assert_one_line_error(run(["complete", str(tmp_path / "ok.py"), "--line", "1", "--col", "30"], tmp_path), "column 30")
    assert_one_line_error(run(["complete", str(tmp_path / "ok.py"), "--line", "1", "--col", "3", "--adapter", "nope", *m], tmp_path),
                          "unknown adapter")
    assert_one_line_error(run(["explain", str(tmp_path / "ok.py"), "--symbol", "zz"], tmp_path), "no function or class named 'zz'")
    assert_one_line_error(run(["complete", str(tmp_path / "ok.py"), "--line", "1", "--col", "3", "--model", "acme/not-cached"],
                              tmp_path), "not available offline")


def test_complete_json_on_tiny_model(tmp_path, tiny_model_dir):
    f = tmp_path / "a.py"
    f.write_text("def add(a, b):\n    return \n")
    res = run(["complete", str(f), "--line", "2", "--col", "12", "--model", str(tiny_model_dir), "--json"], tmp_path)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["line"] == 2 and data["col"] == 12 and data["model"] == str(tiny_model_dir)
    assert data["prompt_tokens"] > 0 and "\n" not in data["text"]  # end of a `return` line: a single line


def test_explain_invalid_utf8_and_huge_file(tmp_path, tiny_model_dir):
    bad = tmp_path / "latin1.py"
    bad.write_bytes("def greet():\n    return 'café'\n".encode("latin-1"))
    res = run(["explain", str(bad), "--model", str(tiny_model_dir), "--max-tokens", "3", "--json"], tmp_path)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert "not valid UTF-8" in data["notes"][0]
    assert [s["symbol"] for s in data["sections"]] == [None]  # one function: the overview covers it (no repeat)

    huge = tmp_path / "huge.py"
    line = "def f{0}(x):\n    return x + {0}\n\n"
    with open(huge, "w") as fh:
        i = 0
        while fh.tell() < 50 * 1024 * 1024:
            fh.write("".join(line.format(i + k) for k in range(1000)))
            i += 1000
    res = run(["explain", str(huge), "--model", str(tiny_model_dir), "--max-tokens", "2", "--json"], tmp_path)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert "MB: only its first" in data["notes"][0]
    assert data["sections"][0]["truncated"] is True


def test_models_lists_the_embedded_default(tmp_path):
    res = run(["models", "--json"], tmp_path)
    data = json.loads(res.stdout)
    default = [m for m in data["models"] if m["default"]]
    assert default[0]["name"] == "qwen2.5-coder-0.5b" and default[0]["installed"] is True
    assert data["home"] == str(tmp_path)


def test_explain_model_setting(tmp_path, tiny_model_dir):
    """`explain.adapter` decides whether the configured adapter explains; `explain.model` is the base `copilot
    explain` loads (without the completion adapter, which is trained for another base); --model on the command
    line wins; a model that is not there is a one-line error."""
    from helpers.tiny import make_tiny_model

    other = make_tiny_model(tmp_path / "other", seed=3)
    f = tmp_path / "m.py"
    f.write_text("def add(a, b):\n    return a + b\n")
    cfg = tmp_path / "proj"
    cfg.mkdir()
    # explain.adapter = false (the default): the configured adapter (which does not exist here) is not loaded
    (cfg / ".copilot.toml").write_text(f'model = "{tiny_model_dir}"\nadapter = "team"\n')
    res = run(["explain", str(f), "--max-tokens", "3", "--json"], tmp_path, cwd=cfg)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["adapter"] is None
    (cfg / ".copilot.toml").write_text(f'model = "{tiny_model_dir}"\nadapter = "team"\n[explain]\nadapter = true\n')
    assert_one_line_error(run(["explain", str(f), "--max-tokens", "3"], tmp_path, cwd=cfg), "unknown adapter")
    (cfg / ".copilot.toml").write_text(f'model = "{tiny_model_dir}"\nadapter = "team"\n'
                                       f'[explain]\nadapter = true\nmodel = "{other}"\n')
    res = run(["explain", str(f), "--max-tokens", "3", "--json"], tmp_path, cwd=cfg)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["model"] == str(other) and json.loads(res.stdout)["adapter"] is None
    assert "explaining without the adapter team" in res.stderr
    res = run(["explain", str(f), "--max-tokens", "3", "--json", "--model", str(tiny_model_dir), "--adapter", ""],
              tmp_path, cwd=cfg)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["model"] == str(tiny_model_dir)
    (cfg / ".copilot.toml").write_text(f'model = "{tiny_model_dir}"\n[explain]\nmodel = "no-such-model"\n')
    assert_one_line_error(run(["explain", str(f), "--max-tokens", "3"], tmp_path, cwd=cfg), "no-such-model")
