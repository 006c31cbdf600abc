"""A strategy that is off, or on an arm without agents, changes nothing: bit-identical results.

Keyed draws make this exact: a strategy draws only from its own stream, books nothing and
changes nothing when its hooks are never called, so the per-user table and every KPI equal the
plain store's at the same seed, to the last bit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from strategy_helpers import SEED, make_scenario

from sim.aggregate import facts_of, kpi_table
from sim.world import World
from strategies import STRATEGIES, build_strategies

SIZE = 20_000
ALL = [{"name": name} for name in sorted(STRATEGIES)]


def _run(specs, arm_names=("control",), events=True, **overrides):
    scenario = make_scenario(SIZE, **overrides)
    strategies = build_strategies(specs, list(arm_names))
    return World(scenario, SEED, strategies, arm_names=arm_names, events=events).run()


@pytest.fixture(scope="module")
def plain():
    return _run([])


def _assert_identical(results, plain_results):
    users, plain_users = results.users.copy(), plain_results.users.copy()
    for frame in (users, plain_users):  # arm labels differ when a world names more arms
        frame["arm"] = frame["arm"].astype(str)
    pd.testing.assert_frame_equal(users, plain_users, check_exact=True)
    kpis = kpi_table(facts_of(results), []).iloc[0]
    plain_kpis = kpi_table(facts_of(plain_results), []).iloc[0]
    pd.testing.assert_series_equal(kpis, plain_kpis, check_exact=True)
    pd.testing.assert_frame_equal(results.costs.astype({"arm": str}),
                                  plain_results.costs.astype({"arm": str}))  # fmt: skip
    assert results.events.num_rows == plain_results.events.num_rows


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_strategy_on_no_arm_is_the_plain_store(plain, name):
    """Switched off: applied to no arm at all (``arms: []``)."""
    _assert_identical(_run([{"name": name, "arms": []}]), plain)


def test_all_on_an_empty_arm_are_the_plain_store(plain):
    """All strategies stacked on a "treatment" arm that has no agents (everyone is in control)."""
    specs = [{**s, "arms": ["treatment"]} for s in ALL]
    _assert_identical(_run(specs, arm_names=("control", "treatment")), plain)


def test_launch_after_the_horizon_is_the_plain_store(plain):
    """All strategies launched after the last day: the hooks run but every one waits."""
    specs = [{**s, "start_day": 1000} for s in ALL]
    _assert_identical(_run(specs), plain)


def test_stacked_strategies_are_reproducible():
    """Same seed, same strategies: bit-identical per-user table."""
    first, second = _run(ALL, events=False), _run(ALL, events=False)
    pd.testing.assert_frame_equal(first.users, second.users, check_exact=True)


def test_stacked_strategies_leave_a_separate_control_arm_alone():
    """All strategies on the treatment half, per-arm reviews: the control half is bit-identical."""
    arms = ("control", "treatment")
    scenario = make_scenario(SIZE, **{"catalog.shared_reviews": False})
    arm = (np.arange(SIZE) % 2).astype(np.int8)
    runs = [
        World(scenario, SEED, build_strategies(specs, list(arms)), arm=arm, arm_names=arms,
              events=False).run()
        for specs in ([], ALL)
    ]  # fmt: skip
    control = arm == 0
    plain, treated = runs[0].users, runs[1].users
    pd.testing.assert_frame_equal(plain[control], treated[control], check_exact=True)
    assert treated.loc[~control, "revenue"].sum() != plain.loc[~control, "revenue"].sum()
