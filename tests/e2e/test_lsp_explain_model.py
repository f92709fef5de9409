"""`explain.model`: explanations from a second base model, loaded on first use by the real `copilot-lsp`, while
completions stay on the first; a model that fails to load fails explanations only, with the reason."""

from __future__ import annotations

import asyncio

import pytest
from helpers.lsp_harness import Session
from pygls.exceptions import JsonRpcException

pytestmark = pytest.mark.timeout(300)

TEXT = "def add(a, b):\n    return a + b\n\n\ndef neg(x):\n    return \n"


def _session(model, root, home, explain_model: str | None) -> Session:
    root.mkdir(parents=True, exist_ok=True)
    if explain_model is not None:
        (root / ".copilot.toml").write_text(f'[explain]\nmodel = "{explain_model}"\nmax_new_tokens = 24\n')
    else:
        (root / ".copilot.toml").write_text("[explain]\nmax_new_tokens = 24\n")
    return Session(model, root=root, home=home)


async def _explain(model, root, home, explain_model):
    s = _session(model, root, home, explain_model)
    await s.start()
    try:
        await s.wait_ready()
        uri = (root / "m.py").as_uri()
        s.open(uri, TEXT)
        try:
            out = await s.command("copilot.explain", uri)
        except JsonRpcException as exc:
            out = exc
        completion = await s.inline(uri, 5, 11)
        return out, await s.status(), completion, list(s.logs), list(s.shown)
    finally:
        await s.stop()


def test_explanations_come_from_explain_model(tiny_model_dir, tmp_path):
    from helpers.tiny import make_tiny_model

    other = make_tiny_model(tmp_path / "other-tiny", seed=7)
    same, st0, _, _, _ = asyncio.run(_explain(tiny_model_dir, tmp_path / "a", tmp_path / "home", None))
    assert st0["explain_model"] is None
    moved, st, completion, logs, _ = asyncio.run(_explain(tiny_model_dir, tmp_path / "b", tmp_path / "home", str(other)))
    assert st["explain_model"] == {"model": str(other), "state": "ready", "error": None}, st
    assert st["model"] == str(tiny_model_dir)  # completions still on the first model
    assert any("loading explanation model" in m for m in logs)
    assert same["model"] == str(tiny_model_dir) and moved["model"] == str(other)  # the second model wrote it
    assert completion.items  # completions kept being served


def test_explain_model_that_fails_to_load(tiny_model_dir, tmp_path):
    err, st, completion, _, shown = asyncio.run(_explain(tiny_model_dir, tmp_path / "c", tmp_path / "home",
                                                          "no-such-model"))
    assert isinstance(err, JsonRpcException)
    assert "failed to load" in str(err) and "no-such-model" in (st["explain_model"]["error"] or "") + str(err)
    assert st["explain_model"]["state"] == "failed"
    assert any("Explanations are disabled" in m for m in shown)
    assert completion.items and st["state"] == "ready"
