"""A shopper's own readiness to buy: ``population.cart_propensity_shape``.

0 (the default) keeps each agent's cart propensity at its segment's value; k > 0 multiplies it
by the agent's own Gamma(k, 1/k) draw (mean 1, variance 1/k), drawn after every other trait, so
the other traits do not move.
"""

import numpy as np
from sim_helpers import run_world, scenario

from experiments.calibration.persistence import reduction
from sim.population import build_population

N = 200_000


def test_no_spread_keeps_the_segment_value_and_a_spread_moves_only_that_trait():
    plain = build_population(
        scenario(f"scenario.population.size={N}", "scenario.population.cart_propensity_shape=0"), 5
    )
    spread = build_population(
        scenario(f"scenario.population.size={N}", "scenario.population.cart_propensity_shape=1"), 5
    )
    segments = scenario().population.segments
    value = np.array([segments[s].cart_propensity for s in plain.segment_names], np.float32)
    assert (plain.cart_propensity == value[plain.segment]).all()
    for trait in ("segment", "visit_rate", "price_sensitivity", "email_engagement", "affinity",
                  "responsiveness", "aware", "email_ok", "device"):  # fmt: skip
        assert np.array_equal(getattr(plain, trait), getattr(spread, trait)), trait
    ratio = spread.cart_propensity.astype(float) / value[spread.segment]
    for s in range(len(value)):
        r = ratio[spread.segment == s]
        # Gamma(1, 1): mean 1 with SE 1/sqrt(n); variance 1 with SE sqrt(8/n) (excess kurtosis
        # 6); n >= 20,000 per segment: 4 SE is at most 0.028 and 0.08
        assert abs(r.mean() - 1) < 4 / np.sqrt(len(r)), (s, r.mean())
        assert abs(r.var() - 1) < 4 * np.sqrt(8 / len(r)), (s, r.var())


def _cuped_share(users) -> float:
    """Share of revenue per visitor's variance the 90-day pre-period revenue removes."""
    seen = users["sessions"].to_numpy() > 0
    return reduction(users["revenue"].to_numpy()[seen], users["pre_revenue"].to_numpy()[seen])


def test_a_spread_of_readiness_to_buy_makes_revenue_persist():
    """Shoppers who buy readily keep doing so: the pre-period then predicts the window better.

    The default store (spread of shape 0.3) against the same store without the spread, 100,000
    agents, seed 7: 3.0% against 16.5% (seed 42: 2.5% against 12.8%).
    """
    low = _cuped_share(run_world("scenario.population.size=100000",
                                 "scenario.population.cart_propensity_shape=0",
                                 events=False).users)  # fmt: skip
    high = _cuped_share(run_world("scenario.population.size=100000", events=False).users)
    assert high > low, (low, high)


def test_newcomers_enter_later_uniformly_and_nobody_else_moves():
    """``population.newcomers``: that share of agents enters the market at a uniform time.

    The span runs from the start of the drawn past to ENTRY_DAYS_AFTER days after day 0. The
    share is binomial (SE sqrt(0.2 x 0.8 / 200,000) = 0.09 points: 4 SE is 0.36 points); the
    times' mean and their spread's quartiles are those of a uniform within 4 SE (SE of the mean
    span / sqrt(12 n) ~ 0.3 days; of a quartile's share 0.2 points). Newcomers start unaware;
    every trait of the others is as without newcomers.
    """
    from sim.population import ENTRY_DAYS_AFTER

    plain = build_population(
        scenario(f"scenario.population.size={N}", "scenario.population.newcomers=0"), 5
    )
    sc = scenario(f"scenario.population.size={N}", "scenario.population.newcomers=0.2")
    pop = build_population(sc, 5)
    assert np.isneginf(plain.enter_at).all()
    new = np.isfinite(pop.enter_at)
    assert abs(new.mean() - 0.2) < 4 * np.sqrt(0.2 * 0.8 / N)
    start = -float(sc.warmup_days + sc.history.days)
    t = pop.enter_at[new]
    span = ENTRY_DAYS_AFTER - start
    assert t.min() >= start and t.max() <= ENTRY_DAYS_AFTER
    assert abs(t.mean() - (start + span / 2)) < 4 * span / np.sqrt(12 * new.sum())
    share_first_quarter = np.mean(t < start + span / 4)
    assert abs(share_first_quarter - 0.25) < 4 * np.sqrt(0.25 * 0.75 / new.sum())
    assert not pop.aware[new].any()
    assert np.array_equal(pop.aware[~new], plain.aware[~new])
    for trait in ("segment", "visit_rate", "price_sensitivity", "cart_propensity", "churn"):
        assert np.array_equal(getattr(plain, trait), getattr(pop, trait)), trait


def test_newcomers_enter_as_many_a_day_whatever_the_warm_up_and_past():
    """``population.newcomers`` is the share over the default span; over another (a longer
    warm-up, a shorter past) as many enter a day: the share scales with the span.

    Binomial counts: the newcomers a day over each span are within 4 SE of the default's (SE of
    a rate k / span: sqrt(k) / span). Keyed draws: a longer span's newcomers include the
    default's (the same uniform under a higher share).
    """
    from sim.population import ENTRY_DAYS_AFTER, REFERENCE_SPAN, newcomer_share

    base = scenario(f"scenario.population.size={N}", "scenario.population.newcomers=0.2")
    assert newcomer_share(base) == 0.2  # the default span is the reference: the share as given
    assert ENTRY_DAYS_AFTER + base.warmup_days + base.history.days == REFERENCE_SPAN
    default = np.isfinite(build_population(base, 5).enter_at)
    rate = default.sum() / REFERENCE_SPAN
    for overrides in (("scenario.warmup_days=365",), ("scenario.warmup_days=30",),
                      ("scenario.history.days=365",)):  # fmt: skip
        sc = scenario(f"scenario.population.size={N}", "scenario.population.newcomers=0.2",
                      *overrides)  # fmt: skip
        span = ENTRY_DAYS_AFTER + sc.warmup_days + sc.history.days
        new = np.isfinite(build_population(sc, 5).enter_at)
        k = new.sum()
        assert abs(k / span - rate) < 4 * np.sqrt(k) / span, overrides
        p = 0.2 * span / REFERENCE_SPAN
        assert abs(new.mean() - p) < 4 * np.sqrt(p * (1 - p) / N), overrides
        wider = span > REFERENCE_SPAN
        assert new[default].all() if wider else default[new].all(), overrides
