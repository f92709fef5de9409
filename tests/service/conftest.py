"""Fixtures of the team-service tests (helpers: tests/helpers/service_fixtures.py)."""

from __future__ import annotations

import pytest
from helpers.service_fixtures import RunningFront


@pytest.fixture()
def running_front():
    made = []

    def start(front):
        r = RunningFront(front)
        made.append(r)
        return r
    yield start
    for r in made:
        r.close()
