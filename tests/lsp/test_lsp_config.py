"""lsp.features.configuration: client options -> server config; bad values are reported and ignored."""

from lsp.features.configuration import apply
from lsp.server import CopilotServer


def server():
    s = CopilotServer()
    s.shown = []
    s.notify_user = lambda text, kind=None: s.shown.append(text)
    return s


def test_camel_and_snake_case_and_nested_copilot_key():
    s = server()
    changed = apply(s, {"copilot": {"model": "/m", "adapter": "acme@3", "maxTokens": 16, "debounce_ms": 120,
                                    "languages": {"markdown": False, "*": True}}})
    assert set(changed) >= {"model", "adapter", "max_tokens", "debounce_ms", "languages"}
    c = s.config
    assert (c.model, c.adapter, c.max_tokens, c.debounce_ms) == ("/m", "acme@3", 16, 120)
    assert c.language_enabled("python") and not c.language_enabled("markdown")
    assert s.model_spec() == "/m" and s.adapter_spec() == "acme@3"


def test_enable_map_and_global_switch():
    s = server()
    apply(s, {"enable": {"python": False}})
    assert not s.config.language_enabled("python") and s.config.language_enabled("go")
    apply(s, {"enable": False})
    assert not s.config.language_enabled("go")


def test_bad_values_are_ignored_with_one_line_each():
    s = server()
    changed = apply(s, {"maxTokens": "lots", "debounceMs": -1, "model": 3, "languages": {"py": "yes"}})
    assert changed == []
    assert len(s.shown) == 4 and all("\n" not in m for m in s.shown)
    assert s.config.max_tokens is None
    assert apply(s, None) == [] and apply(s, [1, 2]) == []


def test_workspace_mapping_by_path(tmp_path):
    s = server()
    s.settings.workspaces = {str(tmp_path): "team-a", "git@host:other.git": "team-b"}
    s.root_path = (tmp_path / "sub").resolve()
    assert s.adapter_spec() == "team-a"
    s.root_path, s.remote_url = None, "git@host:other.git"
    assert s.adapter_spec() == "team-b"
    apply(s, {"adapter": ""})
    assert s.adapter_spec() == ""  # the client asked for the base model
