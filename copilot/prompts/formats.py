"""Prompt formats: fill-in-the-middle per model family (chosen from the tokenizer's special tokens)
and the chat prompts used for explanations.

Orders:
  psm — prefix, suffix, middle (what every FIM model was trained on)
  spm — suffix, prefix, middle: typing only appends to the prefix, so a KV cache of the previous
        keystroke's prompt stays valid (our adapters are trained on both orders)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from copilot.core.types import UserInputError


@dataclass(frozen=True)
class FimFormat:
    family: str
    prefix_tok: str
    suffix_tok: str
    middle_tok: str
    stop_tokens: tuple[str, ...]
    file_sep: str | None = None  # token that introduces another file, with its path
    repo_name: str | None = None
    # CodeLlama puts spaces around its sentinels.
    spaced: bool = False
    orders: tuple[str, ...] = field(default=("psm", "spm"))

    def build(self, prefix: str, suffix: str, order: str = "psm", *, path: str | None = None,
              context: tuple[tuple[str, str], ...] | list[tuple[str, str]] = (), spm_header: bool = False) -> str:
        """The FIM prompt text. `context` = (path, snippet) from other files, placed first, then the file's path.

        Suffix-first prompts get that header only with `spm_header`: for adapters that learned the order with
        it (manifest `training.spm_header`). An adapter that learned suffix-first without the header, shown
        one, writes a file's first line (`from __future__ import annotations`) wherever the cursor is
        (company@1 at 10 typing points in real files: 10 of 10). The header comes before the suffix, so
        typing (which appends to the prefix, last) keeps it and the KV cache behind it valid."""
        head = ""
        if self.file_sep and (context or path) and (order != "spm" or spm_header):
            for cpath, snippet in context:
                head += f"{self.file_sep}{cpath}\n{snippet.rstrip()}\n"
            if path:
                head += f"{self.file_sep}{path}\n"
        if self.spaced:
            if order == "spm":
                return f"{head}{self.prefix_tok} {self.suffix_tok}{suffix} {self.middle_tok}{prefix}"
            return f"{head}{self.prefix_tok} {prefix} {self.suffix_tok}{suffix} {self.middle_tok}"
        if order == "spm":
            return f"{head}{self.suffix_tok}{suffix}{self.prefix_tok}{prefix}{self.middle_tok}"
        if order != "psm":
            raise ValueError(f"unknown FIM order {order!r}")
        return f"{head}{self.prefix_tok}{prefix}{self.suffix_tok}{suffix}{self.middle_tok}"


FAMILIES: tuple[FimFormat, ...] = (
    FimFormat(
        family="qwen", prefix_tok="<|fim_prefix|>", suffix_tok="<|fim_suffix|>", middle_tok="<|fim_middle|>",
        stop_tokens=("<|endoftext|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|fim_pad|>",
                     "<|file_sep|>", "<|repo_name|>", "<|im_end|>", "<|im_start|>"),
        file_sep="<|file_sep|>", repo_name="<|repo_name|>",
    ),
    FimFormat(
        family="starcoder", prefix_tok="<fim_prefix>", suffix_tok="<fim_suffix>", middle_tok="<fim_middle>",
        stop_tokens=("<|endoftext|>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<fim_pad>", "<file_sep>", "<repo_name>"),
        file_sep="<file_sep>", repo_name="<repo_name>",
    ),
    FimFormat(
        family="deepseek", prefix_tok="<｜fim▁begin｜>", suffix_tok="<｜fim▁hole｜>", middle_tok="<｜fim▁end｜>",
        stop_tokens=("<｜end▁of▁sentence｜>", "<|EOT|>", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),
    ),
    FimFormat(
        family="codellama", prefix_tok="<PRE>", suffix_tok="<SUF>", middle_tok="<MID>",
        stop_tokens=("<EOT>", "</s>"), spaced=True,
    ),
)


def _vocab(tokenizer) -> set[str]:
    toks: set[str] = set()
    try:
        toks.update(tokenizer.get_vocab().keys())
    except Exception:
        pass
    try:
        toks.update(str(t) for t in tokenizer.all_special_tokens)
        toks.update(str(t) for t in getattr(tokenizer, "added_tokens_encoder", {}).keys())
    except Exception:
        pass
    return toks


def detect_fim(tokenizer) -> FimFormat | None:
    """The FIM format whose three sentinels all exist in the tokenizer, or None."""
    vocab = _vocab(tokenizer)
    for fmt in FAMILIES:
        if {fmt.prefix_tok, fmt.suffix_tok, fmt.middle_tok} <= vocab:
            return fmt
        # SentencePiece vocabularies (CodeLlama) may store the sentinels with a leading '▁'.
        if fmt.spaced and {"▁" + fmt.prefix_tok, "▁" + fmt.suffix_tok, "▁" + fmt.middle_tok} <= vocab:
            return fmt
    return None


def fim_format_for(tokenizer, model_name: str = "this model") -> FimFormat:
    fmt = detect_fim(tokenizer)
    if fmt is None:
        raise UserInputError(
            f"{model_name} has no fill-in-the-middle tokens (none of the Qwen, StarCoder, DeepSeek or CodeLlama "
            "formats); completions need a FIM-trained code model such as Qwen2.5-Coder"
        )
    return fmt


def stop_token_ids(tokenizer, fmt: FimFormat | None) -> list[int]:
    """Ids of every end/FIM/chat token the tokenizer knows (generation stops on any of them)."""
    names = set(fmt.stop_tokens if fmt else ())
    names.update({"<|endoftext|>", "<|im_end|>", "<|EOT|>", "<EOT>", "</s>", "<｜end▁of▁sentence｜>"})
    ids: set[int] = set()
    vocab = _vocab(tokenizer)
    for n in names:
        if n in vocab:
            i = tokenizer.convert_tokens_to_ids(n)
            if isinstance(i, int) and i >= 0 and i != getattr(tokenizer, "unk_token_id", None):
                ids.add(i)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return sorted(ids)


LANGUAGE_NAMES = {
    "python": "Python", "javascript": "JavaScript", "typescript": "TypeScript", "tsx": "TypeScript (TSX)",
    "go": "Go", "java": "Java", "rust": "Rust", "c": "C", "cpp": "C++",
}

EXPLAIN_SYSTEM = (
    "You are a senior software engineer. You explain code to a colleague who is new to the codebase: "
    "what it does, its inputs and outputs, and anything surprising. Be concise and concrete; use Markdown."
)


def _names(items: list[str], most: int = 6) -> str:
    shown = [f"`{i}`" for i in items[:most]] + (["…"] if len(items) > most else [])
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def explain_points(code: str, language: str | None) -> str:
    """What the explanation must cover, read from the code by tree-sitter (a class's public methods, parameters,
    raised exceptions, the return value, assigned attributes): a small model left to itself mentions about a third of them. Empty for
    code without such facts (and for languages whose facts are not read)."""
    from indexer.code_facts import code_facts

    try:
        f = code_facts(code, language)
    except Exception:  # a parser failure costs the hint, never the explanation
        return ""
    asks = []
    public = [m for m in f.methods if not m.startswith("_")]
    if public:
        asks.append(f"what {'its methods' if len(public) > 1 else 'its method'} {_names(public, 8)} "
                    f"{'do' if len(public) > 1 else 'does'}")
    if f.params:
        asks.append(f"what the parameter{'s' if len(f.params) > 1 else ''} {_names(sorted(f.params))} "
                    f"{'are' if len(f.params) > 1 else 'is'} for")
    if f.raises:
        asks.append(f"when it raises {_names(sorted(f.raises))}")
    if f.returns:
        asks.append("what it returns")
    if f.attributes:
        asks.append(f"which attributes it sets ({_names(sorted(f.attributes))})")
    if not asks:
        return ""
    return " Say " + (asks[0] if len(asks) == 1 else ", ".join(asks[:-1]) + " and " + asks[-1]) + "."


def explain_messages(code: str, path: str, language: str | None, symbol: str | None, truncated: bool = False,
                     others: tuple[str, ...] = ()) -> list[dict]:
    """`others`: for a file's overview, the symbols explained one by one after it (not to be repeated there)."""
    path = _file_name(path)
    lang = LANGUAGE_NAMES.get(language or "", language or "")
    note = " (the file is long; this is only its beginning)" if truncated else ""
    if symbol:
        ask = f"Explain what `{symbol}` in `{path}` does, in 2-4 sentences.{explain_points(code, language)}"
    elif others:
        parts = ", ".join(f"`{o}`" for o in others[:8]) + (", …" if len(others) > 8 else "")
        ask = (f"Give a short overview (2-4 sentences) of what the {lang} file `{path}` is for as a whole{note}. "
               f"Its parts ({parts}) are explained one by one after this overview: do not describe them one by one.")
    else:
        ask = f"Give a short overview (3-5 sentences) of what the {lang} file `{path}` does{note}.{explain_points(code, language)}"
    return _messages(ask, code, language)


def docstring_messages(code: str, path: str, language: str | None, symbol: str | None) -> list[dict]:
    """The training prompt of an explain pair, whose answer is the unit's own docstring (usually one line): it
    asks for the docstring, so an adapter learns the company's words for its code without learning to answer an
    explanation request in one line (an adapter trained on docstrings under the explanation prompt did:
    benchmarks/bench_explain.py)."""
    path = _file_name(path)
    ask = f"Write the docstring of `{symbol}` in `{path}`." if symbol else f"Write the docstring of this code in `{path}`."
    return _messages(ask, code, language)


def _file_name(path: str) -> str:
    """Only the file's name: folders are not content (a model explains "for a bar" from a folder named bar), and
    an editor's absolute path would leak into the text."""
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or path


def _messages(ask: str, code: str, language: str | None) -> list[dict]:
    fence = (language or "").replace("tsx", "typescript")
    return [
        {"role": "system", "content": EXPLAIN_SYSTEM},
        {"role": "user", "content": f"{ask}\n\n```{fence}\n{code}\n```"},
    ]


def explain_prompt(tokenizer, code: str, path: str, language: str | None, symbol: str | None,
                   truncated: bool = False, others: tuple[str, ...] = ()) -> str:
    msgs = explain_messages(code, path, language, symbol, truncated, others)
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    # Base models without a chat template: a plain instruction layout.
    return f"{msgs[0]['content']}\n\n{msgs[1]['content']}\n\nExplanation:\n"
