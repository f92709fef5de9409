"""`copilot eval --context none|repo`: each pair's stored repository context goes to Engine.complete as the server
passes its own (or nothing), the default follows the dataset, and the two modes are recorded apart."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import pytest
from helpers.train_fixtures import (  # noqa: F401
    fim_pair,
    home,
    save_tiny_adapter,
    tiny_model,
    write_dataset,
)

from copilot.core.types import UserInputError

SNIPPETS = [{"path": "pkg/money.py", "text": "def helper(amount, rate):\n    \"\"\"Apply a tax rate to an amount.\"\"\"",
             "source": "definition"}]


def _ctx_pair(i: int, split: str = "test"):
    return dataclasses.replace(fim_pair(i, split), context=json.dumps(SNIPPETS))


class RecordingEngine:
    """Records what `evaluate` hands to `complete`."""

    backend = "transformers"
    model_name = "recording"

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def load_adapter(self, spec):
        return spec

    def complete(self, prefix, suffix, language=None, adapter=None, *, path=None, context=(), **kw):
        self.calls.append({"path": path, "context": tuple(context), **kw})
        return SimpleNamespace(text="return a + b\n", prompt_tokens=10 + 100 * len(tuple(context)))


def test_repo_passes_each_pairs_stored_context_and_none_passes_nothing(tmp_path):
    from copilot.evaluate.run import evaluate

    data = write_dataset(tmp_path / "ds", [fim_pair(0)], [_ctx_pair(1), fim_pair(2, "test")])
    eng = RecordingEngine()
    res = evaluate(data, None, engine=eng, record=False)  # default: the dataset's pairs carry context -> repo
    assert res["context"] == "repo"
    by_path = {c["path"]: c["context"] for c in eng.calls}
    assert by_path == {"pkg/m1.py": (("pkg/money.py", SNIPPETS[0]["text"]),), "pkg/m2.py": ()}
    assert [r["context_files"] for r in res["examples"]["base"]] == [1, 0]
    eng.calls.clear()
    none = evaluate(data, None, engine=eng, record=False, context="none")
    assert none["context"] == "none" and all(c["context"] == () for c in eng.calls)
    assert none["test_fingerprint"] != res["test_fingerprint"]
    with pytest.raises(UserInputError, match="context must be"):
        evaluate(data, None, engine=eng, record=False, context="open")


def test_a_dataset_without_the_column_defaults_to_none(tmp_path):
    from datasets import Dataset, DatasetDict

    from copilot.evaluate.run import evaluate, test_fingerprint

    cols = [c for c in fim_pair(0).to_row() if c != "context"]  # a dataset mined before the column existed
    rows = [fim_pair(i, "test").to_row() for i in range(2)]
    out = tmp_path / "old"
    DatasetDict({s: Dataset.from_dict({c: [r[c] for r in rows] for c in cols}) for s in ("train", "test")}
                ).save_to_disk(str(out))
    (out / "manifest.json").write_text(json.dumps({"fingerprint": "fp-old"}))
    eng = RecordingEngine()
    res = evaluate(out, None, engine=eng, record=False)
    assert res["context"] == "none" and all(c["context"] == () for c in eng.calls)
    # the fingerprint of a no-context evaluation is the one recorded before context existed
    import hashlib

    assert res["test_fingerprint"] == hashlib.sha256(b"fp-old|test|2|psm").hexdigest()[:16]
    assert test_fingerprint({"fingerprint": "fp-old"}, None, 2, "psm", "none") == res["test_fingerprint"]
    with pytest.raises(UserInputError, match="carry no repository context"):
        evaluate(out, None, engine=eng, record=False, context="repo")


def test_both_modes_on_the_tiny_model_differ_and_are_recorded_apart(home, tiny_model, tmp_path):  # noqa: F811
    from copilot.adapters.registry import Registry
    from copilot.core.settings import Settings
    from copilot.core.types import AdapterManifest
    from copilot.evaluate.report import markdown
    from copilot.evaluate.run import eval_slot, evaluate
    from copilot.models.packaged import model_sha256
    from copilot.serve.hf import Engine

    data = write_dataset(tmp_path / "ds", [_ctx_pair(0, "train")], [_ctx_pair(i) for i in range(1, 4)])
    reg = Registry()
    reg.publish("team", save_tiny_adapter(tiny_model, tmp_path / "ad"), AdapterManifest(
        name="team", version=0, base_model=str(tiny_model), base_model_sha256=model_sha256(tiny_model),
        dataset_fingerprint="fp-test", lora={}, training={}, prompt_format="qwen", weights_sha256="", created=""))
    s = Settings()
    s.model, s.device = str(tiny_model), "cpu"
    eng = Engine.load(str(tiny_model), settings=s, device="cpu")
    repo = evaluate(data, "team", engine=eng, max_new_tokens=4, registry=reg)
    none = evaluate(data, "team", engine=eng, max_new_tokens=4, registry=reg, context="none")
    with_ctx = [r["prompt_tokens"] for r in repo["examples"]["adapter"]]
    without = [r["prompt_tokens"] for r in none["examples"]["adapter"]]
    assert all(a > b for a, b in zip(with_ctx, without)), (with_ctx, without)

    metrics = reg.manifest("team", 1).metrics
    assert eval_slot("transformers", "psm", None, "none") == "eval_transformers_psm_context-none"
    assert metrics["eval"]["context"] == "repo" and metrics["eval"]["test_fingerprint"] == repo["test_fingerprint"]
    stored_none = metrics["eval_transformers_psm_context-none"]
    assert stored_none["context"] == "none" and stored_none["test_fingerprint"] == none["test_fingerprint"]
    assert "repository context: repo" in markdown(repo) and "repository context: none" in markdown(none)


def test_cli_offers_the_option():
    from click.testing import CliRunner

    from copilot.cli.eval import eval_cmd

    out = CliRunner().invoke(eval_cmd, ["--help"]).output
    assert "--context [none|repo]" in out


def test_pairs_only_context_can_help_are_their_own_group_in_both_modes(tmp_path):
    """A middle calling `helper`, which only the stored context defines, counts in "context_gives=True" whether
    the context is passed or not (the same pairs both ways); a middle the code around already names does not."""
    from copilot.evaluate import metrics as M
    from copilot.evaluate.report import table_rows
    from copilot.evaluate.run import CONTEXT_GROUP, evaluate

    needs = dataclasses.replace(_ctx_pair(1), middle="return helper(a, 0.2)\n", completion="return helper(a, 0.2)\n")
    data = write_dataset(tmp_path / "ds", [fim_pair(0)], [needs, _ctx_pair(2), fim_pair(3, "test")])
    for mode in ("repo", "none"):
        res = evaluate(data, None, engine=RecordingEngine(), record=False, context=mode)
        groups = res["base"]["fim_by"]
        assert groups[CONTEXT_GROUP]["n"] == 1 and groups["context_gives=False"]["n"] == 1, groups
        assert [r.get("context_gives") for r in res["examples"]["base"]] == [True, False, None]
        assert ("needs a name only the context holds", "exact_match", 1, 0.0, None) in table_rows(res)
    ctx = (("pkg/money.py", "def helper(amount, rate):"),)
    assert M.context_gives("x = 1\n", "helper(x)", "\n", ctx)
    assert not M.context_gives("from money import helper\n", "helper(x)", "\n", ctx)  # the code around names it
    assert not M.context_gives("x = 1\n", "print(x)", "\n", ctx) and not M.context_gives("", "helper()", "", ())
