"""The front door without an engine: keys, refusals, limits, adapter downloads and `copilot adapters pull`.
(With real engines: tests/e2e/test_team_service.py.)"""

from __future__ import annotations

import json

import pytest
from helpers.service_fixtures import publish_version, request


@pytest.fixture()
def parts(tmp_path):
    from copilot.adapters.registry import Registry
    from copilot.service.fleet import Fleet
    from copilot.service.front import FrontDoor, Limits
    from copilot.service.keys import KeyStore

    reg = Registry(tmp_path / "service-home" / "adapters")
    reg.root.mkdir(parents=True)
    keys = KeyStore(tmp_path / "keys.json")
    fleet = Fleet(reg, keys, factory=lambda loras: None)  # never started: every completion meets "engine down"
    front = FrontDoor(fleet, keys, reg, {"name": "qwen2.5-coder-0.5b", "sha256": "b" * 64},
                      limits=Limits(requests_per_minute=60, max_body_kb=4, max_tokens=64))
    return reg, keys, front


def test_keys_are_stored_hashed_and_revocable(tmp_path):
    from copilot.service.keys import KeyStore

    ks = KeyStore(tmp_path / "keys.json")
    key, token = ks.add("payments", ["pay-adapter"])
    assert token.startswith("cpk_") and len(token) > 40
    stored = (tmp_path / "keys.json").read_text()
    assert token not in stored and key.sha256 in stored
    assert ks.check(token).team == "payments"
    assert ks.check(token).allows("pay-adapter") and ks.check(token).allows(None)
    assert not ks.check(token).allows("search")
    assert ks.check(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert ks.check("not-a-key") is None and ks.check(None) is None
    assert ks.teams() == {"payments": {"pay-adapter"}}
    ks.revoke("payments")
    assert ks.check(token) is None
    assert ks.teams() == {}
    with pytest.raises(Exception, match="no live key"):
        ks.revoke("payments")


def test_requests_are_refused_with_clear_errors(parts, running_front):
    reg, keys, front = parts
    publish_version(reg, "alpha")
    publish_version(reg, "bravo")
    _, a_token = keys.add("team-a", ["alpha"])
    srv = running_front(front)
    url = srv.url + "/v1/completions"

    status, body, _ = request(url, body={"model": "alpha", "prompt": "x"})
    assert status == 401 and "API key" in body["error"]["message"]
    status, body, _ = request(url, key="cpk_wrong", body={"model": "alpha", "prompt": "x"})
    assert status == 401
    status, body, _ = request(url, key=a_token, body={"model": "bravo", "prompt": "x"})
    assert status == 403 and "bravo" in body["error"]["message"]
    status, body, _ = request(url, key=a_token, body={"model": "bravo@1", "prompt": "x"})
    assert status == 403
    status, body, _ = request(url, key=a_token, raw=b"{not json")
    assert status == 400 and "not JSON" in body["error"]["message"]
    status, body, _ = request(url, key=a_token, body={"model": "alpha"})
    assert status == 400 and "prompt" in body["error"]["message"]
    status, body, _ = request(url, key=a_token, body={"model": "alpha", "prompt": "x", "max_tokens": 65})
    assert status == 400 and "max_tokens" in body["error"]["message"]
    status, body, _ = request(url, key=a_token, body={"model": "alpha", "prompt": "x" * 5000})
    assert status == 413
    # A key that may use alpha meets no engine here: a clear 503 at once, not a hang.
    status, body, headers = request(url, key=a_token, body={"model": "alpha", "prompt": "x"}, timeout=5)
    assert status == 503 and headers.get("Retry-After")
    # The service stays up after all of that.
    status, body, _ = request(srv.url + "/health")
    assert status == 503 and body["status"] == "engine_down"


def test_rate_limit_per_key(parts, running_front):
    _reg, keys, front = parts
    _, a_token = keys.add("team-a", ["alpha"], limits={"requests_per_minute": 6})
    _, b_token = keys.add("team-b", ["bravo"])
    srv = running_front(front)
    codes = [request(srv.url + "/v1/models", key=a_token)[0] for _ in range(5)]
    assert codes[:2] == [200, 200] and 429 in codes  # a burst of rpm/6 + 1 = 2, then refused
    assert request(srv.url + "/v1/models", key=b_token)[0] == 200  # other keys are not affected


def test_a_revoked_key_stops_working_without_a_restart(parts, running_front):
    _reg, keys, front = parts
    _, token = keys.add("team-a", ["alpha"])
    srv = running_front(front)
    assert request(srv.url + "/v1/models", key=token)[0] == 200
    from copilot.service.keys import KeyStore

    KeyStore(keys.path).revoke("team-a")  # another process (`copilot serve keys revoke`) writes the store
    assert request(srv.url + "/v1/models", key=token)[0] == 401


def test_pull_installs_the_teams_active_version_atomically(parts, running_front, tmp_path):
    from copilot.adapters.pull import pull
    from copilot.adapters.registry import Registry

    reg, keys, front = parts
    publish_version(reg, "alpha", seed=1)
    publish_version(reg, "alpha", seed=2)  # alpha@2 active
    publish_version(reg, "bravo", seed=3)
    _, token = keys.add("team-a", ["alpha"])
    srv = running_front(front)

    laptop = Registry(tmp_path / "laptop" / "adapters")
    done = pull(srv.url, token, base_sha256="b" * 64, registry=laptop)
    assert done == [("alpha", 2, "pulled, activated")]
    assert laptop.versions("alpha") == [2] and laptop.active("alpha") == 2
    assert laptop.versions("bravo") == []  # another team's adapter never arrives
    assert laptop.manifest("alpha", 2).weights_sha256 == reg.manifest("alpha", 2).weights_sha256
    assert (laptop.version_dir("alpha", 2) / "adapter_model.safetensors").read_bytes() == \
        (reg.version_dir("alpha", 2) / "adapter_model.safetensors").read_bytes()
    assert pull(srv.url, token, base_sha256="b" * 64, registry=laptop) == [("alpha", 2, "up to date")]
    assert [v for _, v, _ in pull(srv.url, token, all_versions=True, registry=laptop)] == [1, 2]
    assert not [p for p in laptop.root.joinpath("alpha").iterdir() if p.name.startswith(".tmp")]

    with pytest.raises(Exception, match="trained for base model"):
        pull(srv.url, token, base_sha256="c" * 64, registry=Registry(tmp_path / "other" / "adapters"))
    with pytest.raises(Exception, match="offers this key no adapter named bravo"):
        pull(srv.url, token, names=["bravo"], registry=Registry(tmp_path / "other" / "adapters"))
    status, _body, _ = request(srv.url + "/v1/adapters/bravo/1/archive", key=token)
    assert status == 403


def test_a_corrupted_download_installs_nothing(parts, running_front, tmp_path, monkeypatch):
    from copilot.adapters import pull as pull_mod
    from copilot.adapters.registry import Registry

    reg, keys, front = parts
    publish_version(reg, "alpha")
    _, token = keys.add("team-a", ["alpha"])
    srv = running_front(front)
    real = pull_mod.listing

    def lying(url, key, timeout=30.0):
        data = real(url, key, timeout)
        for a in data["adapters"]:
            a["archive_sha256"] = "0" * 64
        return data
    monkeypatch.setattr(pull_mod, "listing", lying)
    laptop = Registry(tmp_path / "laptop" / "adapters")
    with pytest.raises(Exception, match="sha256"):
        pull_mod.pull(srv.url, token, registry=laptop)
    assert laptop.versions("alpha") == []
    assert not list((laptop.root / "alpha").iterdir()) or all(p.name.startswith(".") and p.suffix == ".lock"
                                                               for p in (laptop.root / "alpha").iterdir())


def test_the_keys_cli(tmp_path):
    from click.testing import CliRunner

    from copilot.cli.main import cli

    store = str(tmp_path / "k.json")
    r = CliRunner().invoke(cli, ["serve", "keys", "add", "payments", "--adapter", "pay", "--keys", store])
    assert r.exit_code == 0, r.output
    token = r.output.strip().splitlines()[-1]
    assert token.startswith("cpk_")
    r = CliRunner().invoke(cli, ["serve", "keys", "list", "--json", "--keys", store])
    rows = json.loads(r.output)
    assert rows[0]["team"] == "payments" and rows[0]["adapters"] == ["pay"] and token not in r.output
    r = CliRunner().invoke(cli, ["serve", "keys", "revoke", "payments", "--keys", store])
    assert r.exit_code == 0 and "revoked" in r.output
    r = CliRunner().invoke(cli, ["serve", "keys", "add", "bad name!", "--keys", store])
    assert r.exit_code != 0 and "bad adapter name" in r.output
