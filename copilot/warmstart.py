"""Warm start for the trainer: continue training an existing adapter instead of a fresh LoRA.

`copilot.train.train` always wraps the base with a new LoRA (`wrap_lora`). The nightly cycle wants the
candidate to start from the active adapter's weights (same rank/targets as it was trained with), so
while `warm_start(folder)` is active, `copilot.train.wrap_lora` loads that folder trainable instead.
Resuming from a checkpoint still works: the trainer loads the checkpoint's weights over these.

(The clean version of this hook is an ``init_adapter=`` argument to ``copilot.train.train``; this
context manager keeps the nightly code independent of when that lands.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_guard = threading.Lock()


@contextmanager
def warm_start(adapter_dir: str | Path | None) -> Iterator[None]:
    if adapter_dir is None:
        yield
        return
    from copilot import train as T

    original = T.wrap_lora
    folder = str(adapter_dir)

    def wrap_from_adapter(model, ts, mode, grad_ckpt):
        from peft import PeftModel, prepare_model_for_kbit_training

        if mode == "qlora-nf4":
            model = prepare_model_for_kbit_training(
                model, use_gradient_checkpointing=grad_ckpt, gradient_checkpointing_kwargs={"use_reentrant": False})
        elif grad_ckpt:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.enable_input_require_grads()
        model = PeftModel.from_pretrained(model, folder, is_trainable=True)
        model.config.use_cache = False
        return model

    with _guard:
        T.wrap_lora = wrap_from_adapter
        try:
            yield
        finally:
            T.wrap_lora = original
