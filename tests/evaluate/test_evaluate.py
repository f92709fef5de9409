"""Metrics (pure) and the evaluation pipeline through the real Engine on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.train_fixtures import explain_pair, fim_pair, home, save_tiny_adapter, tiny_model, write_dataset  # noqa: F401

from copilot.evaluate import metrics as M
from copilot.core.types import UserInputError


def test_exact_match_ignores_trailing_whitespace_only():
    assert M.exact_match("return a + b  \n\n", "return a + b\n") == 100.0
    assert M.exact_match("\nx = 1\ny = 2\n", "x = 1\ny = 2") == 100.0
    assert M.exact_match("return a+b", "return a + b") == 0.0
    assert M.exact_match("    x", "x") == 0.0  # indentation matters in code


def test_edit_similarity_values():
    assert M.edit_similarity("abc", "abc") == 100.0
    assert M.edit_similarity("abc", "abd") == pytest.approx(100 * 2 / 3)
    assert M.edit_similarity("", "abcd") == 0.0
    assert M.edit_similarity("", "") == 100.0


def test_lexical_scores():
    ref = "Returns the sum of a and b."
    assert M.rouge_l(ref, ref) == pytest.approx(100.0)
    # LCS of [returns, sum, .] vs 8 ref tokens: P=3/4, R=3/8 -> F1=0.5
    assert M.rouge_l("returns sum foo .", ref) == pytest.approx(50.0)
    assert M.token_f1("sum a b", "the sum of a and b") == pytest.approx(100 * 2 * 1 * 0.5 / 1.5)
    assert M.rouge_l("", ref) == 0.0 and M.token_f1("xyz", ref) == 0.0


def test_aggregate_groups():
    rows = [{"exact_match": 100.0, "edit_sim": 100.0, "multiline": False, "language": "python"},
            {"exact_match": 0.0, "edit_sim": 50.0, "multiline": True, "language": "python"},
            {"exact_match": 0.0, "edit_sim": 20.0, "multiline": False, "language": "go"}]
    agg = M.aggregate(rows, ["exact_match", "edit_sim"], by=("multiline", "language"))
    assert agg["all"] == {"n": 3, "exact_match": pytest.approx(100 / 3), "edit_sim": pytest.approx(170 / 3)}
    assert agg["multiline=False"]["edit_sim"] == 60.0 and agg["multiline=True"]["n"] == 1
    assert agg["language=go"] == {"n": 1, "exact_match": 0.0, "edit_sim": 20.0}


def test_minilm_cosine_ranks_paraphrase_above_unrelated():
    from copilot.evaluate.embedder import Embedder

    e = Embedder()
    ref = "Return the sum of two numbers."
    assert e.cosine(ref, ref) == pytest.approx(100.0, abs=1e-3)
    assert e.cosine("Adds two numbers and returns the result.", ref) > e.cosine("Opens a network socket.", ref) + 20


def test_evaluate_base_vs_adapter_records_metrics_and_report(home, tiny_model, tmp_path):  # noqa: F811
    from copilot.core.settings import Settings
    from copilot.serve.hf import Engine
    from copilot.evaluate.report import markdown, write_report
    from copilot.evaluate.run import evaluate
    from copilot.adapters.registry import Registry
    from copilot.core.types import AdapterManifest

    data = write_dataset(tmp_path / "ds", [fim_pair(0)],
                         [fim_pair(i, "test", language="python" if i % 2 else "go") for i in range(4)]
                         + [explain_pair(0, "test")])
    reg = Registry()
    from copilot.models.packaged import model_sha256

    reg.publish("team", save_tiny_adapter(tiny_model, tmp_path / "ad"), AdapterManifest(
        name="team", version=0, base_model=str(tiny_model), base_model_sha256=model_sha256(tiny_model),
        dataset_fingerprint="fp-test", lora={}, training={}, prompt_format="qwen", weights_sha256="", created=""))
    s = Settings()
    s.model = str(tiny_model)
    s.device = "cpu"
    eng = Engine.load(str(tiny_model), settings=s, device="cpu")
    res = evaluate(data, "team", base_too=True, engine=eng, max_new_tokens=6, explain_tokens=6)

    assert res["n"] == 5 and res["adapter_spec"] == "team@1"
    for side in ("base", "adapter"):
        recs = res["examples"][side]
        fim = [r for r in recs if r["kind"] == "fim_file"]
        assert len(fim) == 4 and all(r["exact_match"] == M.exact_match(r["pred"], r["ref"]) for r in fim)
        assert res[side]["fim"]["edit_sim"] == pytest.approx(sum(r["edit_sim"] for r in fim) / 4)
        assert res[side]["fim_by"]["language=go"]["n"] == 2
        assert {"n", "cosine", "rouge_l", "token_f1", "truncated"} <= set(res[side]["explain"])
        from copilot.evaluate.explain_checks import truncated
        exp = [r for r in recs if r["kind"] == "explain"]
        assert exp and all(r["truncated"] == 100.0 * truncated(r["pred"]) for r in exp)  # scored on the same text
        assert res[side]["explain"]["truncated"] == pytest.approx(sum(r["truncated"] for r in exp) / len(exp))
    # Completions are what the engine returns for the same inputs (post-processed).
    row = fim_pair(1, "test", language="python")
    again = eng.complete(row.prefix, row.suffix, language="python", adapter="team", path=row.path,
                         multiline=False, max_new_tokens=6)
    assert res["examples"]["adapter"][1]["pred"] == again.text

    stored = reg.manifest("team", 1).metrics["eval"]
    assert stored["test_fingerprint"] == res["test_fingerprint"] and "examples" not in stored
    assert stored["adapter"]["fim"]["n"] == 4

    md = write_report(res, tmp_path / "out" / "report.md")
    text = md.read_text()
    assert "| all FIM | edit_sim | 4 |" in text and "![base vs adapter](report.png)" in text
    assert (tmp_path / "out" / "report.png").read_bytes()[:4] == b"\x89PNG"
    assert markdown(res) in text
    assert json.loads(json.dumps({k: v for k, v in res.items() if k != "examples"}))["n"] == 5

    from copilot.evaluate.report import write_predictions

    lines = [json.loads(x) for x in write_predictions(res, tmp_path / "pred.jsonl").read_text().splitlines()]
    assert [x["side"] for x in lines] == ["base"] * 5 + ["adapter"] * 5
    assert lines[6]["pred"] == again.text and lines[6]["ref"] == row.middle and lines[6]["path"] == row.path

    with pytest.raises(UserInputError, match="unknown adapter 'nope'"):
        evaluate(data, "nope", engine=eng)
    empty_test = write_dataset(tmp_path / "empty", [fim_pair(0)], [])
    with pytest.raises(UserInputError, match="empty test split"):
        evaluate(empty_test, None, engine=eng)


def test_cli_adapters_commands(home, tiny_model, tmp_path):  # noqa: F811
    from click.testing import CliRunner

    from copilot.cli.adapters import adapters_group
    from copilot.adapters.registry import Registry
    from copilot.core.types import AdapterManifest

    reg = Registry()
    ad = save_tiny_adapter(tiny_model, tmp_path / "ad")
    for _ in range(2):
        reg.publish("cli", ad, AdapterManifest(name="cli", version=0, base_model="tiny", base_model_sha256="s",
                                               dataset_fingerprint="f", lora={}, training={}, prompt_format="qwen",
                                               weights_sha256="", created=""))
    run = CliRunner().invoke
    assert run(adapters_group, ["promote", "cli@1"]).output.strip() == "cli@1 is now active"
    assert run(adapters_group, ["promote", "cli@2"]).exit_code == 0
    r = run(adapters_group, ["rollback", "cli"])
    assert r.exit_code == 0 and "cli@1 is active again" in r.output
    rows = json.loads(run(adapters_group, ["list", "--json"]).output)
    assert [(x["version"], x["status"]) for x in rows] == [(1, "active"), (2, "retired")]
    shown = json.loads(run(adapters_group, ["show", "cli"]).output)
    assert shown["version"] == 1 and shown["path"].endswith("cli/1")
    bad = run(adapters_group, ["show", "zzz"])
    assert bad.exit_code == 2 and "unknown adapter 'zzz'" in bad.output and "Traceback" not in bad.output
    assert run(adapters_group, ["remove", "cli@2"]).output.strip() == "removed cli@2"
    assert Path(home / "adapters" / "cli" / "2").exists() is False


def _typing_pair(i: int, split: str = "test"):
    """fim_pair(i) as a typing point: the cursor after the "re" of its `return`, the middle the rest."""
    from dataclasses import replace

    p = fim_pair(i, split)
    return replace(p, kind="fim_typing", prefix=p.prefix + "re", middle=p.middle[2:], completion=p.middle[2:])


def test_summary_and_report_show_the_typing_points_as_their_own_group():
    from copilot.evaluate.report import markdown, table_rows
    from copilot.evaluate.run import TYPING_GROUP, summarize

    def rec(kind, em, es, multiline=False):
        return {"kind": kind, "language": "python", "path": "p.py", "multiline": multiline,
                "exact_match": em, "edit_sim": es}

    base = [rec("fim_file", 100.0, 100.0), rec("fim_history", 0.0, 40.0, True),
            rec("fim_typing", 0.0, 50.0), rec("fim_typing", 0.0, 70.0)]
    adapter = [rec("fim_file", 100.0, 100.0), rec("fim_history", 0.0, 60.0, True),
               rec("fim_typing", 100.0, 100.0), rec("fim_typing", 0.0, 80.0)]
    s = summarize(base)
    assert TYPING_GROUP == "kind=fim_typing"
    assert s["fim_by"][TYPING_GROUP] == {"n": 2, "exact_match": 0.0, "edit_sim": 60.0}
    assert s["fim_by"]["kind=fim_file"]["n"] == 1 and s["fim"]["n"] == 4  # typing points count in all FIM too
    result = {"dataset": "d", "model": "m", "order": "psm", "n": 4, "test_fingerprint": "fp", "adapter_spec": "a@1",
              "base": s, "adapter": summarize(adapter)}
    rows = table_rows(result)
    assert rows[2:4] == [("typing points", "exact_match", 2, 0.0, 50.0), ("typing points", "edit_sim", 2, 60.0, 90.0)]
    md = markdown(result)
    assert "| typing points | exact_match | 2 | 0.0 | 50.0 | +50.0 |" in md
    assert "| typing points | edit_sim | 2 | 60.0 | 90.0 | +30.0 |" in md
    assert "| kind=fim_history | edit_sim | 1 | 40.0 | 60.0 | +20.0 |" in md
    assert not any(r[0] == "typing points" for r in table_rows({"base": summarize(base[:2])}))


def test_eval_of_the_typing_points_only(tiny_model, tmp_path):  # noqa: F811
    from copilot.core.settings import Settings
    from copilot.evaluate.run import evaluate, load_test_split
    from copilot.serve.hf import Engine

    data = write_dataset(tmp_path / "ds", [fim_pair(0)], [fim_pair(1, "test"), _typing_pair(2), _typing_pair(3)])
    test, _, _ = load_test_split(data, ("fim_typing",))
    assert [r["kind"] for r in test] == ["fim_typing", "fim_typing"]
    with pytest.raises(UserInputError, match="use fim_file, fim_history, fim_typing, explain"):
        load_test_split(data, ("fim_typo",))
    s = Settings()
    s.model, s.device = str(tiny_model), "cpu"
    eng = Engine.load(str(tiny_model), settings=s, device="cpu")
    res = evaluate(data, None, engine=eng, kinds=("fim_typing",), max_new_tokens=4, record=False)
    assert res["n"] == 2 and res["base"]["fim"]["n"] == 2
    assert res["base"]["fim_by"]["kind=fim_typing"]["n"] == 2 and "kind=fim_file" not in res["base"]["fim_by"]
    assert [(r["kind"], r["ref"]) for r in res["examples"]["base"]] == [("fim_typing", "turn a * b\n"),
                                                                         ("fim_typing", "turn -x\n")]


def test_an_eval_logged_to_a_file_says_how_far_it_is_in_plain_lines(capsys):
    from copilot.evaluate.run import _progress_bar

    bar = _progress_bar()  # stderr is captured: not a terminal
    task = bar.add_task("adapter", total=4)
    for _ in range(4):
        bar.advance(task)
    bar.stop()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("eval adapter")]
    assert [line.split()[2] for line in lines] == ["1/4", "4/4"], lines
    assert "s/pair  done by" in lines[-1]
