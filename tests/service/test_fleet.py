"""The fleet's bookkeeping with a minimal in-process engine (the real engines: test_engine_*.py and
tests/e2e/test_team_service.py): what is served, blue/green on a promotion with in-flight requests drained,
a dead replica restarted, runtime loading for engines that can, routing."""

from __future__ import annotations

import pytest
from helpers.service_fixtures import publish_version


class Recorder:
    """Follows the Engine protocol of copilot.service.engines, recording calls instead of running a process."""

    made: list[Recorder] = []

    def __init__(self, loras):
        self.adapters = {k: i for i, k in enumerate(loras)}
        self.running = False
        self.calls: list[str] = []
        self.base_url = f"http://engine-{len(Recorder.made)}"
        Recorder.made.append(self)

    def start(self):
        self.running = True
        self.calls.append("start")

    def stop(self):
        self.running = False
        self.calls.append("stop")

    def alive(self):
        return self.running

    def upstream_body(self, body, adapter):
        return {**body, "adapter": adapter}

    def load(self, key, folder):
        self.adapters[key] = len(self.adapters)
        self.calls.append(f"load {key}")

    def unload(self, key):
        self.adapters.pop(key)
        self.calls.append(f"unload {key}")


@pytest.fixture()
def setup(tmp_path):
    from copilot.adapters.registry import Registry
    from copilot.service.keys import KeyStore

    Recorder.made = []
    reg = Registry(tmp_path / "adapters")
    reg.root.mkdir()
    keys = KeyStore(tmp_path / "keys.json")
    publish_version(reg, "alpha", seed=1)
    publish_version(reg, "bravo", seed=2)
    publish_version(reg, "unused", seed=3)
    keys.add("team-a", ["alpha"])
    keys.add("team-b", ["bravo", "not-trained-yet"])
    return reg, keys


def test_serves_the_active_version_of_every_keyed_adapter(setup):
    from copilot.service.fleet import Fleet, UnknownAdapter

    reg, keys = setup
    fleet = Fleet(reg, keys, Recorder, replicas=2, poll_s=3600)
    fleet.start()
    assert fleet.served() == {"alpha": 1, "bravo": 1}  # no key names `unused`; `not-trained-yet` has no version
    assert len(Recorder.made) == 2 and set(Recorder.made[0].adapters) == {"alpha@1", "bravo@1"}
    with fleet.lease("alpha") as (engine, key):
        assert key == "alpha@1" and engine.upstream_body({}, key)["adapter"] == "alpha@1"
    with pytest.raises(UnknownAdapter), fleet.lease("not-trained-yet"):
        pass
    fleet.stop()
    assert all(not e.running for e in Recorder.made)


def test_a_promotion_starts_a_new_generation_and_drains_the_old_one(setup):
    from copilot.service.fleet import Fleet

    reg, keys = setup
    fleet = Fleet(reg, keys, Recorder, poll_s=3600)
    fleet.start()
    old = Recorder.made[0]
    with fleet.lease("alpha") as (engine, _key):
        assert engine is old
        publish_version(reg, "alpha", seed=9)  # alpha@2, promoted
        fleet.tick()
        assert fleet.served()["alpha"] == 2
        new = Recorder.made[-1]
        assert new is not old and "alpha@2" in new.adapters
        with fleet.lease("alpha") as (engine2, key2):
            assert engine2 is new and key2 == "alpha@2"  # new requests go to the new generation
        assert old.running  # the request in flight on the old one is not cut
    fleet.tick()
    assert not old.running and fleet.state()["draining"] == []
    fleet.stop()


def test_a_dead_replica_is_restarted_and_skipped_meanwhile(setup):
    from copilot.service.fleet import EngineDown, Fleet

    reg, keys = setup
    fleet = Fleet(reg, keys, Recorder, poll_s=3600)
    fleet.start()
    eng = Recorder.made[0]
    eng.running = False  # killed
    fleet._gen.replicas[0].down_since = 1.0
    with pytest.raises(EngineDown, match="restarting"), fleet.lease("alpha"):
        pass
    fleet.tick()
    assert eng.running and eng.calls.count("start") == 2 and fleet.state()["replicas"][0]["restarts"] == 1
    with fleet.lease("alpha") as (engine, _):
        assert engine is eng
    fleet.stop()


def test_runtime_loading_engines_load_the_new_version_then_unload_the_old(setup):
    from copilot.service.fleet import Fleet

    reg, keys = setup
    fleet = Fleet(reg, keys, Recorder, runtime_loading=True, poll_s=3600)
    fleet.start()
    eng = Recorder.made[0]
    publish_version(reg, "bravo", seed=7)
    with fleet.lease("alpha"):
        fleet.tick()
        assert eng.calls[-1] == "load bravo@2" and "bravo@1" in eng.adapters  # still there while busy
    fleet.tick()
    assert eng.calls[-1] == "unload bravo@1" and len(Recorder.made) == 1  # no new process
    with fleet.lease("bravo") as (_, key):
        assert key == "bravo@2"
    fleet.stop()


def test_requests_prefer_the_replica_that_served_the_adapter_last(setup):
    from copilot.service.fleet import Fleet

    reg, keys = setup
    fleet = Fleet(reg, keys, Recorder, replicas=3, poll_s=3600)
    fleet.start()
    with fleet.lease("alpha") as (a1, _), fleet.lease("bravo") as (b1, _):
        assert b1 is not a1  # the idlest replica
    # Both idle again: each adapter goes back where it ran (its KV and LoRA are warm there), not to replica 0.
    with fleet.lease("bravo") as (b2, _):
        assert b2 is b1
    with fleet.lease("alpha") as (a2, _):
        assert a2 is a1
    fleet.stop()
