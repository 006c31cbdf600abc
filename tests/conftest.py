"""Shared fixtures (helpers are in sim_helpers.py)."""

from __future__ import annotations

import pytest
from sim_helpers import run_world

# The modules that take longest (seconds of one worker, `pytest --durations=0`, 2026-12-03),
# scheduled first: with `--dist loadscope --no-loadscope-reorder` (Makefile) a module is one unit
# of work, and the longest first lets the two workers finish together instead of one waiting on
# a long module handed out last (sum of all durations 858 s, wall 450 s before, 429 s ideal).
SLOW_FIRST = (
    "tests/test_readme.py",  # 145 s
    "tests/experiments/test_experiments.py",  # 115 s
    "tests/experiments/test_looks.py",  # 72 s
    "tests/experiments/test_run_cli.py",  # 56 s
    "tests/experiments/test_analyze_cli.py",  # 42 s
    "tests/experiments/test_calibrate.py",  # 33 s
    "tests/experiments/test_incrementality.py",  # 32 s
    "tests/strategies/test_strategy_social_proof.py",  # 28 s
    "tests/experiments/test_power_cli.py",  # 26 s
    "tests/experiments/test_transactions.py",  # 22 s
    "notebooks/02_retention_clv.ipynb",  # 21 s
)


def pytest_collection_modifyitems(config, items):
    """Longest modules first (a stable sort: everything else keeps its collection order)."""
    rank = {path: i for i, path in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.fixture(scope="session")
def small_run():
    """20k agents, 90 days after a 90-day warm-up, with the event log."""
    return run_world("scenario.population.size=20000")
