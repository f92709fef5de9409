"""workspace/didChangeConfiguration (and the initializationOptions of initialize, see lifecycle.py).

Options (top level or under a "copilot" key; camelCase or snake_case):
  model        base model (packaged name, folder); changing it reloads the engine in the background
  adapter      adapter NAME[@VERSION] or folder; "" = base model; absent = workspace mapping/config
  backend      auto | llama.cpp | transformers (copilot.backends); changing it reloads the engine
  maxTokens    most tokens per inline completion
  debounceMs   the debounce the client should use (a hint, echoed by copilot.status)
  enable       false turns completions off; languages: {"python": true, "markdown": false, "*": true}
  otherFiles   use snippets from other open documents (default true)
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from lsp.features.util import plain


def _get(d: dict[str, Any], *names: str) -> Any:
    for n in names:
        if n in d:
            return d[n]
    return None


def apply(ls: Any, options: Any) -> list[str]:
    """Apply client options; returns the names of the settings that changed. Bad values are
    reported to the user (one line each) and ignored."""
    data = plain(options)
    if not isinstance(data, dict):
        return []
    if isinstance(data.get("copilot"), dict):
        data = data["copilot"]
    cfg = ls.config
    changed: list[str] = []
    problems: list[str] = []

    model = _get(data, "model")
    if model is not None:
        if isinstance(model, str) and model.strip():
            if model != cfg.model:
                cfg.model = model
                changed.append("model")
        else:
            problems.append("model must be a non-empty string")
    if "adapter" in data:
        adapter = data["adapter"]
        if adapter is None or isinstance(adapter, str):
            if adapter != cfg.adapter:
                cfg.adapter = adapter
                changed.append("adapter")
        else:
            problems.append("adapter must be a string")
    backend = _get(data, "backend")
    if backend is not None:
        from copilot.serve.backends import BACKENDS

        if backend in BACKENDS:
            if backend != ls.settings.backend:
                ls.settings.backend = backend
                changed.append("backend")
        else:
            problems.append(f"backend must be one of {', '.join(BACKENDS)}")
    mt = _get(data, "maxTokens", "max_tokens", "maxNewTokens")
    if mt is not None:
        if isinstance(mt, int) and not isinstance(mt, bool) and 1 <= mt <= 1024:
            if mt != cfg.max_tokens:
                cfg.max_tokens = mt
                changed.append("max_tokens")
        else:
            problems.append("maxTokens must be an integer from 1 to 1024")
    db = _get(data, "debounceMs", "debounce_ms", "debounce")
    if db is not None:
        if isinstance(db, (int, float)) and not isinstance(db, bool) and 0 <= db <= 5000:
            cfg.debounce_ms = int(db)
            changed.append("debounce_ms")
        else:
            problems.append("debounceMs must be a number from 0 to 5000")
    en = _get(data, "enable", "enabled")
    if en is not None:
        if isinstance(en, bool):
            cfg.enabled = en
            changed.append("enabled")
        elif isinstance(en, dict):
            data = {**data, "languages": {**en, **(data.get("languages") or {})}}
        else:
            problems.append("enable must be true/false or a map of language -> true/false")
    langs = _get(data, "languages")
    if langs is not None:
        if isinstance(langs, dict) and all(isinstance(v, bool) for v in langs.values()):
            cfg.languages = {str(k): v for k, v in langs.items()}
            changed.append("languages")
        else:
            problems.append("languages must map language ids to true/false")
    of = _get(data, "otherFiles", "other_files")
    if isinstance(of, bool):
        cfg.other_files = of
        changed.append("other_files")
    for p in problems:
        ls.notify_user(f"copilot: setting ignored: {p}", types.MessageType.Warning)
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
