"""`copilot train`: train a LoRA adapter on a pairs dataset and register it as a candidate."""

from __future__ import annotations

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
@click.option("--quiet", is_flag=True, help="No progress bar.")
@errors
def train_cmd(data, name, base, recipe, max_steps, epochs, resume, quantize, spm_share, quiet):
    """Train a LoRA adapter on DATA's train split and register it as a candidate version of NAME."""
    from copilot.core.settings import load_settings
    from copilot.train.loop import train
    from copilot.train.recipe import load_recipe

    settings = load_settings({"model": base, "train": {"quantize": quantize}})
    rec = load_recipe(recipe, settings.train, max_steps=max_steps, epochs=epochs, spm_share=spm_share)
    con = console()
    res = train(data, name, settings=settings, recipe=rec, base=base, resume=resume, progress=not quiet,
                log=lambda s: con.print(s, highlight=False))
    m = res.manifest
    con.print(f"[green]Trained {m.name}@{m.version}[/] ({res.mode}, {res.steps} steps, "
              f"loss {m.training['loss_first']:.3f} → {m.training['loss_last']:.3f}, {res.tokens_per_s:,.0f} tok/s). "
              f"Evaluate: copilot eval --data {data} --adapter {m.name}@{m.version} --base-too")
