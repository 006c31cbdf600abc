"""Helpers of the tests: cached default-scenario runs and Monte Carlo standard errors.

A module of its own (not conftest.py): two conftest modules would share one name.
"""

from __future__ import annotations

import functools

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


def assert_log_matches_engine(results, keys) -> None:
    """KPIs rebuilt from the event log alone equal the engine's, to 1e-9, in one scope."""
    import numpy as np

    from sim.aggregate import facts_of, kpi_table
    from sim.replay import facts_from_events

    engine = kpi_table(facts_of(results), keys)
    replay = kpi_table(facts_from_events(results.events.to_pandas(), results), keys)
    engine, replay = engine.align(replay)
    np.testing.assert_allclose(replay.to_numpy(), engine.to_numpy(), rtol=1e-9, equal_nan=True)
