"""Trainer on a tiny model: loss masking, packing, loss goes down, resume, lock, bad input."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from helpers.train_fixtures import explain_pair, fim_pair, home, tiny_model, write_dataset  # noqa: F401

from copilot.core.settings import Settings, TrainSettings
from copilot.adapters.registry import Registry
from copilot.core.types import CopilotError, UserInputError


def _tok(model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir))


def _fmt(tok):
    from copilot.prompts.formats import fim_format_for

    return fim_format_for(tok)


def _settings(model_dir) -> Settings:
    s = Settings()
    s.model = str(model_dir)
    s.device = "cpu"
    return s


def _recipe(**kw):
    from copilot.train.recipe import TrainRecipe

    ts = TrainSettings(r=8, alpha=16, dropout=0.1, learning_rate=5e-3, max_seq_len=256, batch_tokens=512)
    return TrainRecipe(train=ts, **kw)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("pairs") / "ds"
    return write_dataset(d, [fim_pair(i) for i in range(24)] + [explain_pair(i) for i in range(4)],
                         [fim_pair(i, "test") for i in range(3)])


def test_loss_mask_covers_exactly_the_middle_and_end_of_text(tiny_model):  # noqa: F811
    from copilot.train.data import IGNORE, encode_rows

    tok, row = _tok(tiny_model), fim_pair(0).to_row()
    for share, first in ((0.0, "<|fim_prefix|>"), (1.0, "<|fim_suffix|>")):
        [ex], stats = encode_rows([row], tok, _fmt(tok), max_seq_len=256, spm_share=share)
        order = "spm" if share else "psm"
        prompt_ids = tok(_fmt(tok).build(row["prefix"], row["suffix"], order), add_special_tokens=False)["input_ids"]
        middle_ids = tok(row["middle"] + "<|endoftext|>", add_special_tokens=False)["input_ids"]
        assert ex.input_ids == prompt_ids + middle_ids
        assert ex.labels == [IGNORE] * len(prompt_ids) + middle_ids
        assert tok.decode(ex.input_ids[:1]) == first
        assert tok.decode([t for t in ex.labels if t != IGNORE]) == "return a + b\n<|endoftext|>"
        assert stats.spm == int(share)

    [ex], _ = encode_rows([explain_pair(1).to_row()], tok, _fmt(tok), max_seq_len=512)
    answer = tok.decode([t for t in ex.labels if t != IGNORE])
    assert answer == "Computes sub of a, b.<|im_end|>\n"
    assert tok.decode(ex.input_ids).endswith("<|im_start|>assistant\n" + answer)
    prompt = tok.decode([t for t, lab in zip(ex.input_ids, ex.labels) if lab == IGNORE])
    # asked for as a docstring (its answer is one), the code fenced once, the folders left out
    assert "Write the docstring of `sub` in `e1.py`." in prompt and prompt.count("```") == 2 and "pkg/" not in prompt


def test_typing_points_are_encoded_like_every_fim_pair(tiny_model):  # noqa: F811
    from copilot.train.data import IGNORE, encode_rows

    tok = _tok(tiny_model)
    rows = [fim_pair(i).to_row() for i in range(4)]
    typing = [{**r, "kind": "fim_typing"} for r in rows]
    got, stats = encode_rows(typing, tok, _fmt(tok), max_seq_len=256, spm_share=0.5)
    want, _ = encode_rows(rows, tok, _fmt(tok), max_seq_len=256, spm_share=0.5)
    assert stats.encoded == 4 and not stats.dropped and got == want
    assert tok.decode([t for t in got[0].labels if t != IGNORE]) == "return a + b\n<|endoftext|>"

def test_fim_order_share_and_context_trim(tiny_model):  # noqa: F811
    from copilot.train.data import encode_rows, fit_context

    tok = _tok(tiny_model)
    rows = [fim_pair(i).to_row() for i in range(200)]
    _, stats = encode_rows(rows, tok, _fmt(tok), max_seq_len=256, spm_share=0.5)
    assert 70 < stats.spm < 130
    prefix, suffix = "x = 1\n" * 200, "y = 2\n" * 200
    p, s = fit_context(tok, prefix, suffix, 40, suffix_share=0.25)
    assert prefix.endswith(p) and suffix.startswith(s)
    n = len(tok(p, add_special_tokens=False)["input_ids"]) + len(tok(s, add_special_tokens=False)["input_ids"])
    assert 30 <= n <= 42 and len(s) < len(p)


def test_packed_rows_do_not_attend_across_examples(tiny_model):  # noqa: F811
    import torch
    from transformers import AutoModelForCausalLM

    from copilot.train.data import collate, encode_rows, pack

    tok = _tok(tiny_model)
    exs, _ = encode_rows([fim_pair(i).to_row() for i in range(3)], tok, _fmt(tok), max_seq_len=512)
    rows = pack(exs, 512)
    assert len(rows) == 1 and rows[0].position_ids.count(0) == 3
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=torch.float32).eval()

    def token_losses(ids, labels, pos=None):
        ids, labels = torch.tensor([ids]), torch.tensor([labels])
        kw = {"position_ids": torch.tensor([pos])} if pos is not None else {}
        with torch.no_grad():  # use_cache=False: with a cache transformers ignores the packed position ids
            logits = model(input_ids=ids, use_cache=False, **kw).logits
        return torch.nn.functional.cross_entropy(logits[0, :-1], labels[0, 1:], ignore_index=-100, reduction="none")

    b = collate(rows, pad_id=0)
    packed = token_losses(b["input_ids"][0], b["labels"][0], b["position_ids"][0])
    order = sorted(range(3), key=lambda i: (-len(exs[i].input_ids), i))  # first-fit-decreasing order
    separate = torch.cat([torch.cat([token_losses(exs[i].input_ids, exs[i].labels), torch.zeros(1)]) for i in order])
    assert torch.allclose(packed, separate[:-1], atol=1e-4)
    assert (packed > 0).sum() == sum(sum(1 for t in e.labels if t != -100) for e in exs)

    # The trainer's loss (logits only at completion positions) equals the loss over full logits.
    from copilot.train.model import completion_loss

    t = {k: torch.tensor(v) for k, v in collate(pack(exs, 120)[:2], pad_id=0).items()}
    with torch.no_grad():
        full = model(input_ids=t["input_ids"], position_ids=t["position_ids"], use_cache=False).logits
        want = torch.nn.functional.cross_entropy(full[:, :-1].reshape(-1, full.shape[-1]), t["labels"][:, 1:].reshape(-1),
                                                 ignore_index=-100, reduction="sum")
        got = completion_loss(model, t["input_ids"], t["labels"], t["position_ids"])
    assert torch.isclose(got, want, rtol=1e-5)


def test_training_lowers_loss_and_registers_candidate(home, tiny_model, dataset):  # noqa: F811
    from copilot.train.loop import train

    res = train(dataset, "demo", settings=_settings(tiny_model), recipe=_recipe(max_steps=14), progress=False)
    first, last = sum(res.losses[:3]) / 3, sum(res.losses[-3:]) / 3
    assert last < first - 0.2, res.losses
    m = res.manifest
    assert (m.name, m.version, m.status) == ("demo", 1, "candidate")
    from copilot.models.device import cpu_has_bf16

    assert m.training["mode"] == ("lora-bf16" if cpu_has_bf16() else "lora-fp32")
    assert "CPU" in m.training["mode_reason"] and "not 4-bit" in m.training["mode_reason"]
    assert m.training["spm_examples"] > 0 and m.training["fim_orders"] == ["psm", "spm"]
    assert m.dataset_fingerprint == "fp-test" and m.prompt_format == "qwen"
    assert Registry().resolve("demo") == home / "adapters" / "demo" / "1"
    assert not (home / "work" / "train" / "demo").exists()  # work dir cleaned after publishing


def test_resume_continues_from_checkpoint_step(home, tiny_model, dataset):  # noqa: F811
    import torch
    from safetensors.torch import load_file

    from copilot.train.checkpoint import latest_checkpoint, work_dir_for
    from copilot.train.loop import train
    from copilot.train.recipe import TrainingStopped

    s = _settings(tiny_model)
    straight = train(dataset, "straight", settings=s, recipe=_recipe(max_steps=6, checkpoint_every=2), progress=False)

    stop = threading.Event()
    with pytest.raises(TrainingStopped, match=r"stopped at step 3/6.*--resume"):
        train(dataset, "resumed", settings=s, recipe=_recipe(max_steps=6, checkpoint_every=2), progress=False,
              stop=stop, on_step=lambda step, loss: step == 3 and stop.set())
    ck = latest_checkpoint(work_dir_for("resumed"))
    assert ck is not None and ck.name == "ckpt-0000003"
    assert Registry().versions("resumed") == []  # nothing published by the stopped run

    res = train(dataset, "resumed", settings=s, recipe=_recipe(max_steps=6, checkpoint_every=2), progress=False,
                resume=True)
    assert res.start_step == 3 and res.steps == 6
    assert res.losses[:3] == straight.losses[:3]
    a = load_file(str(straight.manifest and Registry().resolve("straight") / "adapter_model.safetensors"))
    b = load_file(str(Registry().resolve("resumed") / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_second_training_of_same_name_is_refused(home, tiny_model, dataset):  # noqa: F811
    from copilot.train.loop import train

    with Registry().training_lock("demo"):
        with pytest.raises(CopilotError, match="another training of adapter 'demo' is running"):
            train(dataset, "demo", settings=_settings(tiny_model), recipe=_recipe(max_steps=1), progress=False)
    assert Registry().versions("demo") == []


def test_bad_datasets_are_clear_errors(home, tiny_model, tmp_path):  # noqa: F811
    from copilot.train.loop import train

    s = _settings(tiny_model)
    empty = write_dataset(tmp_path / "empty", [], [fim_pair(0, "test")])
    with pytest.raises(UserInputError, match="empty train split"):
        train(empty, "x", settings=s, recipe=_recipe(max_steps=1), progress=False)
    foreign = write_dataset(tmp_path / "foreign", [fim_pair(0)], [fim_pair(1, "test")],
                            extra={"extra": {"tokenizer_sha256": "0" * 64}})
    with pytest.raises(UserInputError, match="another tokenizer"):
        train(foreign, "x", settings=s, recipe=_recipe(max_steps=1), progress=False)
    with pytest.raises(UserInputError, match="dataset not found"):
        train(tmp_path / "missing", "x", settings=s, progress=False)
    (tmp_path / "junk").mkdir()
    with pytest.raises(UserInputError, match="not a pairs dataset"):
        train(tmp_path / "junk", "x", settings=s, progress=False)


def test_model_too_large_for_memory_is_refused_before_loading(tiny_model):  # noqa: F811
    from copilot.train.model import check_memory, count_params

    n = count_params(tiny_model)
    assert 10_000 < n < 1_000_000
    with pytest.raises(CopilotError, match=r"needs ~.* GiB .* only 0\.0 GiB .*--quantize 4bit"):
        check_memory(tiny_model, "lora-fp32", "cpu", 512, available=1024)
    assert check_memory(tiny_model, "lora-fp32", "cpu", 512, available=64 * 2**30) > n * 4


def test_cpu_mode_choice():
    from copilot.train.model import choose_mode

    assert choose_mode("cpu", "auto", "fp32")[0] == "lora-fp32"
    assert choose_mode("cpu", "none", "bf16")[0] == "lora-bf16"
    assert choose_mode("cpu", "4bit")[0] == "qlora-nf4"
    mode, why = choose_mode("cuda", "auto")
    assert mode == "qlora-nf4" and "paged AdamW" in why


def test_recipe_toml(tmp_path):
    from copilot.train.recipe import load_recipe

    p = tmp_path / "r.toml"
    p.write_text("spm_share = 0.25\nmax_steps = 7\n[train]\nr = 4\ntarget_modules = ['q_proj']\n")
    r = load_recipe(p, max_steps=9)
    assert (r.spm_share, r.max_steps, r.train.r, r.train.target_modules) == (0.25, 9, 4, ["q_proj"])
    p.write_text("bogus = 1\n")
    with pytest.raises(UserInputError, match="unknown setting 'bogus'"):
        load_recipe(p)
    with pytest.raises(UserInputError, match="spm_share"):
        load_recipe(None, spm_share=2.0)


def test_forced_4bit_trains_on_cpu(home, tiny_model, dataset):  # noqa: F811
    pytest.importorskip("bitsandbytes")
    from copilot.train.loop import train

    rec = _recipe(max_steps=2)
    rec.train.quantize = "4bit"
    rec.train.target_modules = ["q_proj", "v_proj"]
    res = train(dataset, "q4", settings=_settings(tiny_model), recipe=rec, progress=False)
    assert res.mode == "qlora-nf4" and "only saves memory" in res.reason
    assert all(x == x and x < 20 for x in res.losses)  # finite
    assert Registry().versions("q4") == [1]


@pytest.mark.gpu
def test_qlora_on_gpu(home, tiny_model, dataset):  # noqa: F811
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from copilot.train.loop import train

    s = _settings(tiny_model)
    s.device = "cuda"
    res = train(dataset, "gpu", settings=s, recipe=_recipe(max_steps=10), progress=False)
    assert res.mode == "qlora-nf4" and "paged AdamW" in res.reason
    assert sum(res.losses[-3:]) < sum(res.losses[:3])


def test_ctrl_c_stops_cleanly_and_keeps_checkpoint(home, tiny_model, dataset):  # noqa: F811
    import os
    import signal

    from copilot.train.checkpoint import latest_checkpoint, work_dir_for
    from copilot.train.loop import train
    from copilot.train.recipe import TrainingStopped

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingStopped, match="stopped at step 2/5"):
        train(dataset, "ctrlc", settings=_settings(tiny_model), recipe=_recipe(max_steps=5), progress=False,
              on_step=lambda step, loss: step == 2 and os.kill(os.getpid(), signal.SIGINT))
    assert signal.getsignal(signal.SIGINT) is before
    assert latest_checkpoint(work_dir_for("ctrlc")).name == "ckpt-0000002"
    assert Registry().versions("ctrlc") == []


def test_cli_train_registers_candidate(home, tiny_model, dataset):  # noqa: F811
    from click.testing import CliRunner

    from copilot.cli.train import train_cmd

    r = CliRunner().invoke(train_cmd, ["--data", str(dataset), "--name", "cli", "--base", str(tiny_model),
                                       "--max-steps", "2", "--quiet"], env={"COPILOT_DEVICE": "cpu"})
    assert r.exit_code == 0, r.output
    assert "Trained cli@1" in r.output and "CPU: " in r.output
    assert Registry().versions("cli") == [1]
    bad = CliRunner().invoke(train_cmd, ["--data", str(dataset.parent / "nope"), "--name", "cli", "--quiet"])
    assert bad.exit_code == 2 and "dataset not found" in bad.output and "Traceback" not in bad.output


def test_warm_start_continues_from_an_existing_adapter(home, tiny_model, dataset, tmp_path):  # noqa: F811
    """init_adapter: the candidate starts from the given adapter's weights, rank and targets (nightly warm start)."""
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from copilot.train.loop import train

    seed = get_peft_model(AutoModelForCausalLM.from_pretrained(str(tiny_model)),
                          LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    seed.save_pretrained(tmp_path / "seed")
    res = train(dataset, "warm", settings=_settings(tiny_model), recipe=_recipe(max_steps=2), progress=False,
                init_adapter=tmp_path / "seed")
    m = res.manifest
    assert m.lora["r"] == 4 and m.lora["target_modules"] == ["q_proj", "v_proj"]  # not the recipe's r=8 / targets
    assert m.training["init_adapter"] == str(tmp_path / "seed")
    before = load_file(tmp_path / "seed" / "adapter_model.safetensors")
    after = load_file(Registry().resolve("warm") / "adapter_model.safetensors")
    key = next(k for k in before if "lora_B" in k)
    delta = (after[key] - before[key]).abs().max().item()
    assert 0 < delta < 1.0  # trained a little, starting from the seed's weights (not from zeros)


def test_memory_check_counts_every_process_of_the_machine(tiny_model):  # noqa: F811
    from copilot.train.model import check_memory

    one = check_memory(tiny_model, "lora-fp32", "cpu", 512, available=64 * 2**30)
    assert check_memory(tiny_model, "lora-fp32", "cpu", 512, available=64 * 2**30, share=2) == 2 * one
    with pytest.raises(CopilotError, match=r"with 2 processes, but only"):
        check_memory(tiny_model, "lora-fp32", "cpu", 512, available=int(1.5 * one), share=2)


def test_a_run_logged_to_a_file_prints_plain_progress_lines(capsys):
    """Where stderr is not a terminal (nohup, cron, CI) a bar cannot redraw: plain lines at the first step,
    every interval and the last step instead."""
    from copilot.train.progress import Progress

    bar = Progress(True, 5, 0, "lora-bf16", every_s=3600)
    for step in range(1, 6):
        bar.update(step, 2.0 - step / 10, 120.0)
    bar.close()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("train step")]
    assert [line.split()[2] for line in lines] == ["1/5", "5/5"], lines
    assert "loss 1.5000" in lines[-1] and "120 tok/s" in lines[-1] and "done by" in lines[-1]
    every = Progress(True, 3, 0, "lora-bf16", every_s=0)
    for step in range(1, 4):
        every.update(step, 1.0, 1.0)
    assert sum(line.startswith("train step") for line in capsys.readouterr().err.splitlines()) == 3
    quiet = Progress(False, 3, 0, "lora-bf16")
    quiet.update(1, 1.0, 1.0)
    assert capsys.readouterr().err == ""
