"""Calibration at fixed seeds: false positives, interval coverage, simulated vs analytic power.

2,000 A/A (or A/B) datasets of 5,000 users per arm: 5% of users convert, each converter places
1 + Poisson(0.3) orders of lognormal(4, 1) value, so revenue per user is zero-inflated and
heavy-tailed. Every dataset is reduced to per-arm sufficient statistics at once (numpy, no loop
over datasets) and the layer's comparison functions test all 2,000 in one call.

Monte Carlo tolerances: a rate r estimated from R = 2,000 datasets has sd sqrt(r (1 - r) / R);
for r = 0.05 that is sqrt(.05 * .95 / 2000) = 0.0049, and the band is +-3 sd = [0.0353, 0.0647].
For coverage r = 0.95 the band is 93% - 97% (+-3 sd = +-0.0146, rounded to the stated band).
"""

import numpy as np
import pytest

from experiments.stats.comparisons import (
    MeanStats,
    RatioStats,
    compare_means,
    compare_proportions,
    compare_ratios,
)
from experiments.stats.power import (
    BinomialExperiment,
    Design,
    ProportionZTest,
    achieved_power,
    n_control,
    simulated_power,
)

pytestmark = pytest.mark.slow

R, N, P, MU, SIGMA, EXTRA_ORDERS = 2000, 5000, 0.05, 4.0, 1.0, 0.3
SD_05 = np.sqrt(0.05 * 0.95 / R)  # 0.0049
MEAN_VALUE = np.exp(MU + SIGMA**2 / 2)  # E[order value] = AOV


def simulate(rng, p_t=P, value_scale_t=1.0):
    """Sufficient statistics of R datasets x 2 arms (axis 1: control, treatment)."""
    converters = rng.binomial(N, [P, p_t], size=(R, 2))
    group = np.repeat(np.arange(2 * R), converters.ravel())
    orders = 1 + rng.poisson(EXTRA_ORDERS, group.size)
    owner = np.repeat(np.arange(group.size), orders)
    values = rng.lognormal(MU, SIGMA, owner.size)
    scale = np.where(group % 2 == 1, value_scale_t, 1.0)
    revenue = np.bincount(owner, weights=values, minlength=group.size) * scale

    def per_arm(w):
        return np.bincount(group, weights=w, minlength=2 * R).reshape(R, 2)

    return {
        "converters": converters.astype(float),
        "rev": per_arm(revenue),
        "rev2": per_arm(revenue**2),
        "orders": per_arm(orders.astype(float)),
        "orders2": per_arm(orders.astype(float) ** 2),
        "rev_orders": per_arm(revenue * orders),
    }


def moments(s, k):
    """MeanStats of revenue and RatioStats of revenue / orders for arm k (zeros included)."""
    n = float(N)

    def var(s1, s2):
        return (s2 - s1**2 / n) / (n - 1)

    rev, orders = s["rev"][:, k], s["orders"][:, k]
    revenue = MeanStats(n, rev / n, var(rev, s["rev2"][:, k]))
    cov = (s["rev_orders"][:, k] - rev * orders / n) / (n - 1)
    ratio = RatioStats(n, rev / n, orders / n, revenue.var, var(orders, s["orders2"][:, k]), cov)
    return revenue, ratio


def three_metrics(s):
    conversion = compare_proportions(s["converters"][:, 0], N, s["converters"][:, 1], N)
    (rev_c, ratio_c), (rev_t, ratio_t) = moments(s, 0), moments(s, 1)
    return {
        "conversion": conversion,
        "revenue_per_user": compare_means(rev_c, rev_t),
        "aov": compare_ratios(ratio_c, ratio_t),
    }


@pytest.fixture(scope="module")
def aa():
    return three_metrics(simulate(np.random.default_rng(2026)))


@pytest.fixture(scope="module")
def ab():
    """True lifts: conversion +10% (0.05 -> 0.055), order value +10%, so revenue/user +21%."""
    return three_metrics(simulate(np.random.default_rng(2027), p_t=0.055, value_scale_t=1.1))


@pytest.mark.parametrize("metric", ["conversion", "aov", "revenue_per_user"])
def test_false_positive_rate_within_monte_carlo_band(aa, metric):
    rate = float(np.mean(aa[metric].p_value < 0.05))
    print(f"A/A false-positive rate {metric}: {rate:.4f}")
    assert abs(rate - 0.05) <= 3 * SD_05  # [0.0353, 0.0647]


TRUE_LIFTS = {
    # metric: (true absolute lift, true relative lift)
    "conversion": (0.005, 0.10),
    "aov": (0.1 * MEAN_VALUE, 0.10),
    "revenue_per_user": (
        (0.055 * 1.1 - 0.05) * (1 + EXTRA_ORDERS) * MEAN_VALUE,
        0.055 * 1.1 / 0.05 - 1,
    ),
}


@pytest.mark.parametrize("metric", ["conversion", "aov", "revenue_per_user"])
@pytest.mark.parametrize("kind", ["abs", "rel"])
def test_95_percent_intervals_cover_the_true_lift(ab, metric, kind):
    truth = TRUE_LIFTS[metric][0 if kind == "abs" else 1]
    c = ab[metric]
    low, high = getattr(c, f"{kind}_ci_low"), getattr(c, f"{kind}_ci_high")
    coverage = float(np.mean((low <= truth) & (truth <= high)))
    print(f"coverage {metric} {kind}: {coverage:.4f}")
    assert 0.93 <= coverage <= 0.97


def test_simulated_power_of_a_proportion_matches_analytic():
    """Analytic (Cohen's h) power 0.8 at its n; simulation with the pooled z-test agrees.

    MC sd at 0.8 with R = 2000: sqrt(.8 * .2 / 2000) = 0.0089; tolerance 3 sd = 0.027 (the
    arcsine formula and the z-test differ by far less at these counts).
    """
    design = Design("proportion", 0.05)
    n = int(np.ceil(n_control(design, 0.01, 0.8)))
    analytic = achieved_power(design, 0.01, n)
    sim = simulated_power(BinomialExperiment(0.05, 0.06, n, n), ProportionZTest(), R, seed=7)
    print(f"proportion power: analytic {analytic:.4f}, simulated {sim.power:.4f}")
    assert abs(sim.power - analytic) <= 3 * np.sqrt(analytic * (1 - analytic) / R)
    assert sim.ci_low <= analytic <= sim.ci_high


def test_simulated_power_of_a_mean_matches_analytic():
    """TTestIndPower's n for d = 0.5 (64 per arm) gives power 0.8 with Welch's test."""
    design = Design("mean", 0.0, sd=1.0)
    n = int(np.ceil(n_control(design, 0.5, 0.8)))
    analytic = achieved_power(design, 0.5, n)
    rng = np.random.default_rng(8)
    c, t = rng.normal(0, 1, (R, n)), rng.normal(0.5, 1, (R, n))
    result = compare_means(
        MeanStats(n, c.mean(1), c.var(1, ddof=1)), MeanStats(n, t.mean(1), t.var(1, ddof=1))
    )
    rate = float(np.mean(result.p_value < 0.05))
    print(f"mean power: analytic {analytic:.4f}, simulated {rate:.4f}")
    assert abs(rate - analytic) <= 3 * np.sqrt(analytic * (1 - analytic) / R)


def test_simulated_power_of_aov_matches_delta_method_power(ab):
    """AOV +10%: analytic power from the delta-method sd (large pilot) vs the A/B rejections."""
    # Pilot: the control arms of 50 A/A datasets pooled (250,000 users) give the per-user sd of
    # the linearised ratio, sqrt(var_rev - 2 AOV cov + AOV^2 var_orders) / mean_orders.
    pilot = simulate(np.random.default_rng(9))
    n_pilot = N * 50
    sums = {k: v[:50, 0].sum() for k, v in pilot.items()}
    mean_rev, mean_orders = sums["rev"] / n_pilot, sums["orders"] / n_pilot
    aov = mean_rev / mean_orders
    var_rev = sums["rev2"] / n_pilot - mean_rev**2
    var_orders = sums["orders2"] / n_pilot - mean_orders**2
    cov = sums["rev_orders"] / n_pilot - mean_rev * mean_orders
    sd_lin = np.sqrt(var_rev - 2 * aov * cov + aov**2 * var_orders) / mean_orders
    analytic = achieved_power(Design("ratio", aov, sd=sd_lin), 0.1 * aov, N)
    rate = float(np.mean(ab["aov"].p_value < 0.05))
    print(f"aov power: analytic {analytic:.4f}, simulated {rate:.4f}")
    mc_sd = np.sqrt(analytic * (1 - analytic) / R)
    assert abs(rate - analytic) <= 3 * mc_sd + 0.02  # + pilot error in sd and the 1.1x AOV se
