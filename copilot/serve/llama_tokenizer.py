"""The tokenizer of the llama.cpp engine: the few methods copilot.prompts and the engines use, over
llama.cpp's own vocabulary (no transformers tokenizer is loaded)."""

from __future__ import annotations


class LlamaTokenizer:
    """The few tokenizer methods copilot.prompts and the engine use, over llama.cpp's vocabulary."""

    def __init__(self, llm) -> None:
        self._llm = llm
        model = llm._model
        self._vocab = {model.token_get_text(i): i for i in range(model.n_vocab())}
        self.eos_token_id = model.token_eos()
        self.eos_token = model.token_get_text(self.eos_token_id)
        self.unk_token_id = None
        self.all_special_tokens: list[str] = []
        self.chat_template = llm.metadata.get("tokenizer.chat_template")
        self._chat = None

    def get_vocab(self) -> dict[str, int]:
        return self._vocab

    def convert_tokens_to_ids(self, token: str) -> int:
        return self._vocab.get(token, -1)

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        if not text:
            return []
        return self._llm.tokenize(text.encode("utf-8"), add_bos=add_special_tokens, special=True)

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return self._llm.detokenize(list(ids), special=not skip_special_tokens).decode("utf-8", errors="replace")

    def apply_chat_template(self, messages, tokenize: bool = False, add_generation_prompt: bool = True) -> str:
        if self._chat is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            self._chat = Jinja2ChatFormatter(self.chat_template, eos_token=self.eos_token, bos_token="",
                                             add_generation_prompt=add_generation_prompt)
        return self._chat(messages=messages).prompt
