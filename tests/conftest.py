"""Shared fixtures: small default-scenario runs, computed once per test session (per worker)."""

from __future__ import annotations

import functools

import pytest

from experiments.config import load_scenario
from sim.world import World


@functools.cache
def scenario(*overrides: str):
    """The default scenario with Hydra-style overrides (cached; treat as read-only)."""
    return load_scenario(list(overrides))


@functools.cache
def run_world(*overrides: str, seed: int = 7, events: bool = True):
    """Results of the plain store for these overrides and seed (cached)."""
    return World(scenario(*overrides), seed, events=events).run()


@pytest.fixture(scope="session")
def small_run():
    """20k agents, 90 days after a 90-day warm-up, with the event log."""
    return run_world("scenario.population.size=20000")
