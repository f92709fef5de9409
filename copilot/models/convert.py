"""The one-time GGUF -> transformers conversion of a packaged model: dequantize the GGUF into a plain fp32
transformers model and its tokenizer (copilot.models.packaged writes them into the model cache).

The only module of copilot.models that imports torch/transformers (inside the function).
"""

from __future__ import annotations

from pathlib import Path


def dequantize_gguf(gguf: Path, name_or_path: str):
    """-> (model, tokenizer) loaded from GGUF file `gguf` as fp32 transformers objects, with the
    quantization bookkeeping removed so that `save_pretrained` writes a plain model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = name_or_path
    return model, tok
