"""`copilot train`: train a LoRA adapter on a pairs dataset and register it as a candidate.

With `--processes N` it starts N data-parallel processes on this machine (copilot.train.launch), each
running this module; under any launcher (torchrun, `accelerate launch -m copilot.cli.train ...`) this
module is one process of the run.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from copilot.cli.common import console, errors


@click.command("train")
@click.option("--data", "data", required=True, type=click.Path(path_type=Path), help="Pairs dataset folder (from `copilot index`).")
@click.option("--name", required=True, help="Adapter name in the registry (e.g. team or repo).")
@click.option("--base", default=None, help="Base model (packaged name, folder or cached hub id); default: settings.model.")
@click.option("--config", "recipe", default=None, type=click.Path(path_type=Path), help="Recipe TOML (keys of [train] and run options).")
@click.option("--max-steps", type=int, default=None, help="Stop after N optimizer steps (overrides --epochs).")
@click.option("--epochs", type=float, default=None, help="Passes over the train split (default 1).")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint of this NAME.")
@click.option("--quantize", type=click.Choice(["auto", "4bit", "none"]), default=None,
              help="auto: NF4 QLoRA on GPU, fp32 LoRA on CPU; 4bit: force bitsandbytes NF4.")
@click.option("--spm-share", type=float, default=None, help="Share of FIM pairs in suffix-first order (default 0.5).")
@click.option("--processes", type=int, default=1, show_default=True,
              help="Data-parallel training processes on this machine (one per GPU, or per CPU core).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--init-adapter", type=click.Path(path_type=Path), default=None,
              help="Warm start from this adapter folder (e.g. a registry version, to train it longer; the nightly "
                   "job's candidates start from the promoted one).")
@errors
def train_cmd(data, name, base, recipe, max_steps, epochs, resume, quantize, spm_share, processes, quiet,
              init_adapter):
    """Train a LoRA adapter on DATA's train split and register it as a candidate version of NAME."""
    from copilot.core.settings import load_settings
    from copilot.train.distributed import launched

    settings = load_settings({"model": base, "train": {"quantize": quantize}})
    con = console()
    if processes != 1 and not launched():
        _launch(con, settings, processes, data, name, base, recipe, max_steps, epochs, resume, quantize, spm_share,
                quiet, init_adapter)
        return
    from copilot.train import launch
    from copilot.train.loop import train
    from copilot.train.recipe import load_recipe

    rec = load_recipe(recipe, settings.train, max_steps=max_steps, epochs=epochs, spm_share=spm_share)
    res = train(data, name, settings=settings, recipe=rec, base=base, resume=resume, progress=not quiet,
                log=lambda s: con.print(s, highlight=False), init_adapter=init_adapter)
    if res.manifest is not None and not os.environ.get(launch.PARENT_ENV):  # the launching process reports
        _trained(con, res.manifest, data, f"{res.tokens_per_s:,.0f} tok/s")


def _launch(con, settings, processes, data, name, base, recipe, max_steps, epochs, resume, quantize, spm_share,
            quiet, init_adapter) -> None:
    from copilot.adapters.registry import Registry
    from copilot.models.device import pick_device
    from copilot.train import launch

    device = pick_device(settings.device)
    args = ["--data", str(data), "--name", name]
    for flag, value in (("--base", base), ("--config", recipe), ("--max-steps", max_steps), ("--epochs", epochs),
                        ("--quantize", quantize), ("--spm-share", spm_share), ("--init-adapter", init_adapter)):
        if value is not None:
            args += [flag, str(value)]
    args += ["--resume"] * bool(resume) + ["--quiet"] * bool(quiet)
    reg = Registry()
    version = launch.train_processes(processes, device, args, name, reg, log=lambda s: con.print(s, highlight=False))
    _trained(con, reg.manifest(name, version), data, f"{processes} processes")


def _trained(con, m, data, speed: str) -> None:
    con.print(f"[green]Trained {m.name}@{m.version}[/] ({m.training['mode']}, {m.training['steps']} steps, "
              f"loss {m.training['loss_first']:.3f} → {m.training['loss_last']:.3f}, {speed}). "
              f"Evaluate: copilot eval --data {data} --adapter {m.name}@{m.version} --base-too")


if __name__ == "__main__":  # one process of a launched run: `python -m copilot.cli.train ...`
    from copilot.core.paths import set_offline_env

    set_offline_env()
    train_cmd(prog_name="copilot train")
