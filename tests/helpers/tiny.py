"""Tiny random models built from a config, for tests and dry runs. No download, seconds to build.

`make_tiny_model(dir)` writes a complete transformers folder (config, weights, tokenizer) of a
2-layer Qwen2 with a byte-level BPE tokenizer trained on a small code sample, carrying the FIM
special tokens of the chosen family, so every code path (prompt building, FIM, generation,
adapters, training) runs for real on it.
"""

from __future__ import annotations

import json
from pathlib import Path

FAMILY_SPECIALS: dict[str, list[str]] = {
    "qwen": [
        "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|fim_prefix|>", "<|fim_middle|>",
        "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
    ],
    "starcoder": ["<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>", "<file_sep>", "<repo_name>"],
    "deepseek": ["<|endoftext|>", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", "<|EOT|>"],
    "codellama": ["<|endoftext|>", "<PRE>", "<SUF>", "<MID>", "<EOT>"],
    "none": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
}

_CORPUS = '''
def add(a, b):
    """Return the sum of a and b."""
    return a + b

def is_palindrome(s):
    return s == s[::-1]

class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)

    def pop(self):
        return self.items.pop()

function greet(name) { return "Hello, " + name; }
const xs = [1, 2, 3].map((x) => x * 2);
func main() { fmt.Println("hi") }
public static int max(int a, int b) { return a > b ? a : b; }
fn area(w: f64, h: f64) -> f64 { w * h }
int main(void) { printf("%d\\n", 42); return 0; }
for i in range(10):
    if i % 2 == 0:
        print(i)
'''


def make_tiny_model(out_dir: str | Path, family: str = "qwen", seed: int = 0, vocab_size: int = 600,
                    hidden_size: int = 64, layers: int = 2) -> Path:
    """Build (or reuse) a tiny random causal LM with a real tokenizer in `out_dir`."""
    out = Path(out_dir)
    if (out / "config.json").is_file() and (out / "tokenizer.json").is_file() and (out / ".complete").is_file():
        return out
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    specials = FAMILY_SPECIALS[family]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=[t for t in specials if t != "<|endoftext|>"],
    )
    if family in ("qwen", "none"):
        fast.chat_template = (
            "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
        )
    torch.manual_seed(seed)
    n_vocab = len(fast)
    cfg = Qwen2Config(
        vocab_size=n_vocab, hidden_size=hidden_size, intermediate_size=hidden_size * 2,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=2048, tie_word_embeddings=True,
        bos_token_id=None, eos_token_id=fast.convert_tokens_to_ids("<|endoftext|>"),
        pad_token_id=fast.convert_tokens_to_ids("<|endoftext|>"),
    )
    model = Qwen2ForCausalLM(cfg)
    # Zero the special tokens' (tied) embedding rows: their logits are then 0 while ordinary tokens
    # get random +/- logits, so greedy generation produces text instead of stopping at once.
    with torch.no_grad():
        for t in specials:
            model.get_input_embeddings().weight[fast.convert_tokens_to_ids(t)] = 0.0
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    fast.save_pretrained(out)
    (out / "tiny.json").write_text(json.dumps({"family": family, "seed": seed}))
    (out / ".complete").write_text("ok")
    return out
