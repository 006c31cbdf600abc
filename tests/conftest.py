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


def ratio_se(num, den) -> float:
    """Delta-method standard error of sum(num) / sum(den) over independent users.

    Used for every session-level rate: users, not sessions, are the independent units.
    """
    import numpy as np

    num, den = np.asarray(num, float), np.asarray(den, float)
    n, mx, my = len(num), num.mean(), den.mean()
    r = mx / my
    var = np.var(num, ddof=1) - 2 * r * np.cov(num, den)[0, 1] + r**2 * np.var(den, ddof=1)
    return float(np.sqrt(var / n) / my)


def total_se(per_user) -> float:
    """Standard error of a total over independent users: sqrt(N var(x))."""
    import numpy as np

    x = np.asarray(per_user, float)
    return float(np.sqrt(len(x) * np.var(x, ddof=1)))
