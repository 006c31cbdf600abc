"""Customers leave the market (retention.leave_per_year) and ad clicks follow activity.

A customer leaves at the first exit after its first order of a keyed Poisson process of exits
(rate ``leave_per_year``): an exponential wait from the first order, the same time in the past
and in the engine, and after it the agent makes no visit and no order. Ad clicks fall on a
channel's audience in proportion to ``visit_rate ** ad_click_activity``.
"""

import numpy as np
import pytest
from sim_helpers import scenario

from sim import rng
from sim.history import leave_times
from sim.world import World

N = 30_000
HAZARD = 0.3 / 365.0


@pytest.fixture(scope="module")
def world():
    w = World(scenario(f"scenario.population.size={N}"), 7, events=False)
    return w, w.run()


def test_a_customer_who_left_makes_no_visit_and_no_order_after(world):
    w, r = world
    gone = w.pop.gone_at
    orders, sessions = r.orders, r.sessions
    assert (orders["time"].to_numpy() < gone[orders["user_id"].to_numpy()]).all()
    assert (sessions["time"].to_numpy() < gone[sessions["user_id"].to_numpy()]).all()
    # the premise: customers left in the past and in the window, and only customers leave
    first = w.u["first_order"]
    assert np.isfinite(gone).sum() == np.isfinite(first).sum()
    assert (gone < -w.scenario.warmup_days).sum() > 500
    assert ((gone >= 0) & (gone < w.scenario.days)).sum() > 50


def test_the_past_and_the_engine_agree_on_when_a_customer_leaves(world):
    """Every customer's leaving time is the first point after its first order of its keyed
    Poisson process of exits from the start of the past, recomputed here in numpy from
    :func:`sim.rng.uniform` (equal up to the last bits of log1p), whether the first order came in
    the past (the kernel stops there) or in the engine."""
    w, r = world
    sc = w.scenario
    customers = np.flatnonzero(np.isfinite(w.u["first_order"]))
    first = w.u["first_order"][customers]
    t = np.full(len(customers), -float(sc.warmup_days + sc.history.days))
    k, todo = 0, np.arange(len(customers))
    while len(todo):
        t[todo] -= np.log1p(-rng.uniform(w.keyed("leave"), customers[todo], k)) / HAZARD
        todo = todo[t[todo] <= first[todo]]
        k += 1
    np.testing.assert_allclose(w.pop.gone_at[customers], t, rtol=1e-12)
    assert (first < 0).sum() > 1000 and (first >= 0).sum() > 100  # both paths are checked


def test_leaving_times_are_an_exponential_wait_from_the_first_order():
    """Mean wait 1 / hazard (365 / 0.3 = 1,217 days) within 3 SE (the SD of an exponential is
    its mean: SE = mean / sqrt(n)); and a first order one day later moves about 1 - exp(-h)
    = 0.08% of the leaving times (binomial SE ~0.009 points at n = 100,000)."""
    n = 100_000
    agent = np.arange(n, dtype=np.int64)
    first = np.linspace(-1000.0, 0.0, n)
    t = leave_times(np.uint64(12345), agent, -1200.0, first, HAZARD)
    wait = t - first
    assert wait.min() > 0
    assert abs(wait.mean() - 1 / HAZARD) < 3 * (1 / HAZARD) / np.sqrt(n)
    later = leave_times(np.uint64(12345), agent, -1200.0, first + 1.0, HAZARD)
    moved = (later != t).mean()
    assert abs(moved - -np.expm1(-HAZARD)) < 3 * np.sqrt(HAZARD / n)


def test_no_one_leaves_at_zero():
    w = World(scenario("scenario.population.size=5000",
                       "scenario.retention.leave_per_year=0"), 7, events=False)  # fmt: skip
    w.run()
    assert np.isinf(w.pop.gone_at).all()


@pytest.mark.parametrize("paid", ["paid_social", "display"])
def test_ad_clicks_follow_activity(world, paid):
    """Clickers drawn in proportion to the visit rate: their mean visit rate is the audience's
    size-biased mean E[v^2] / E[v] (about 2x the plain mean here: gamma shape 1.5 times the
    segments' factors); at random (activity 0) it is the plain mean. Tolerances: 10% of the
    expected value, over ~1,000 clicks whose visit rates have a CV ~1 (SE ~3%)."""
    w, r = world
    s = r.sessions[(r.sessions["channel"].astype(str) == paid) & (r.sessions["time"] >= 0)]
    v = w.pop.visit_rate
    audience = w.audience(paid)
    # clicks on customers who have left are lost, not redrawn: those still in at day 0 (the
    # few who leave during the window click until they do)
    alive = w.pop.gone_at >= 0
    weight = v[audience & alive]
    biased = (weight**2).sum() / weight.sum()
    assert len(s) > 800
    assert v[s["user_id"].to_numpy()].mean() == pytest.approx(biased, rel=0.10)
    flat = World(scenario(f"scenario.population.size={N}",
                          "scenario.population.ad_click_activity=0"), 7, events=False)  # fmt: skip
    rf = flat.run().sessions
    rf = rf[(rf["channel"].astype(str) == paid) & (rf["time"] >= 0)]
    plain = flat.pop.visit_rate[flat.audience(paid) & (flat.pop.gone_at >= 0)].mean()
    assert flat.pop.visit_rate[rf["user_id"].to_numpy()].mean() == pytest.approx(plain, rel=0.10)
    assert biased > 1.5 * plain
