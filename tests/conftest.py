"""Shared fixtures (helpers are in sim_helpers.py)."""

from __future__ import annotations

import pytest
from sim_helpers import run_world


@pytest.fixture(scope="session")
def small_run():
    """20k agents, 90 days after a 90-day warm-up, with the event log."""
    return run_world("scenario.population.size=20000")
