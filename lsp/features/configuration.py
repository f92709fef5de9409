"""workspace/didChangeConfiguration (and the initializationOptions of initialize, see lifecycle.py).

Options (top level or under a "copilot" key; camelCase or snake_case):
  model        base model (packaged name, folder); changing it reloads the engine in the background
  adapter      adapter NAME[@VERSION] or folder; "" = base model; absent = workspace mapping/config
  backend      auto | llama.cpp | transformers (copilot.backends); changing it reloads the engine
  maxTokens    most tokens per inline completion
  debounceMs   the debounce the client should use (a hint, echoed by copilot.status)
  enable       false turns completions off; languages: {"python": true, "markdown": false, "*": true}
  otherFiles   use snippets from other open documents (default true)
  feedback     record shown/accepted suggestions for `copilot stats` (default true; never the document)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lsprotocol import types

from lsp.features.util import plain


@dataclass(frozen=True)
class _Option:
    """One client setting: its spellings, what a valid value is, and where it lands."""

    name: str                      # attribute of ls.config (or ls.settings), reported as changed
    keys: tuple[str, ...]          # the client's spellings, first present wins
    valid: Callable[[Any], bool]
    problem: str | None            # shown to the user for an invalid value (None: ignored silently)
    convert: Callable[[Any], Any] = lambda v: v
    always: bool = False           # reported as changed even when the value is the same
    on_settings: bool = False      # a server setting (ls.settings) rather than a client option
    none_is_value: bool = False    # an explicit null is a value (adapter: back to the workspace mapping)

    def lookup(self, data: dict[str, Any]) -> tuple[bool, Any]:
        for k in self.keys:
            if k in data and (data[k] is not None or self.none_is_value):
                return True, data[k]
        return False, None


def _number(lo: float, hi: float, integer: bool) -> Callable[[Any], bool]:
    kinds = (int,) if integer else (int, float)
    return lambda v: isinstance(v, kinds) and not isinstance(v, bool) and lo <= v <= hi


def _is_backend(v: Any) -> bool:
    from copilot.serve.backends import BACKENDS

    return v in BACKENDS


OPTIONS = (
    _Option("model", ("model",), lambda v: isinstance(v, str) and bool(v.strip()), "model must be a non-empty string"),
    _Option("adapter", ("adapter",), lambda v: v is None or isinstance(v, str), "adapter must be a string",
            none_is_value=True),
    _Option("backend", ("backend",), _is_backend, "backend must be one of auto, llama.cpp, transformers",
            on_settings=True),
    _Option("max_tokens", ("maxTokens", "max_tokens", "maxNewTokens"), _number(1, 1024, True),
            "maxTokens must be an integer from 1 to 1024"),
    _Option("debounce_ms", ("debounceMs", "debounce_ms", "debounce"), _number(0, 5000, False),
            "debounceMs must be a number from 0 to 5000", convert=int, always=True),
    _Option("enabled", ("enable", "enabled"), lambda v: isinstance(v, bool),
            "enable must be true/false or a map of language -> true/false", always=True),
    _Option("languages", ("languages",), lambda v: isinstance(v, dict) and all(isinstance(x, bool) for x in v.values()),
            "languages must map language ids to true/false", convert=lambda v: {str(k): x for k, x in v.items()},
            always=True),
    _Option("other_files", ("otherFiles", "other_files"), lambda v: isinstance(v, bool), None, always=True),
    _Option("feedback", ("feedback",), lambda v: isinstance(v, bool), "feedback must be true or false", always=True),
)


def _client_options(options: Any) -> dict[str, Any] | None:
    """The client's options as a dict (under a "copilot" key or not); `enable` given as a map of languages
    is folded into `languages`."""
    data = plain(options)
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("copilot"), dict):
        data = data["copilot"]
    enable = next((k for k in ("enable", "enabled") if data.get(k) is not None), None)
    if enable is not None and isinstance(data[enable], dict):
        langs = {**data[enable], **(data.get("languages") or {})}
        data = {k: v for k, v in data.items() if k not in ("enable", "enabled")}
        data["languages"] = langs
    return data


def apply(ls: Any, options: Any) -> list[str]:
    """Apply client options; returns the names of the settings that changed. Bad values are
    reported to the user (one line each) and ignored."""
    data = _client_options(options)
    if data is None:
        return []
    changed: list[str] = []
    for opt in OPTIONS:
        present, value = opt.lookup(data)
        if not present:
            continue
        if not opt.valid(value):
            if opt.problem:
                ls.notify_user(f"copilot: setting ignored: {opt.problem}", types.MessageType.Warning)
            continue
        value = opt.convert(value)
        target = ls.settings if opt.on_settings else ls.config
        if opt.always or getattr(target, opt.name) != value:
            setattr(target, opt.name, value)
            changed.append(opt.name)
    return changed


def register(server: Any) -> None:
    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def on_change(ls: Any, params: types.DidChangeConfigurationParams) -> None:
        changed = apply(ls, params.settings)
        if ("model" in changed or "backend" in changed) and ls.engine.state != "idle":
            ls.scheduler.cancel_all()
            ls.cache = type(ls.cache)()
            ls.adapters.reset()
            ls.start_engine()
        if "adapter" in changed:
            ls.cache = type(ls.cache)()
        if changed:
            ls.log_message(f"copilot: configuration changed: {', '.join(changed)}")
