"""SMART targets: verdicts as DESIGN.md defines them, probability, achievability, bad input."""

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from experiments.stats.comparisons import Comparison
from experiments.stats.targets import SmartTarget, evaluate_target, target_rows
from sim.errors import ConfigError


def comparison(abs_lift, se, control=0.05):
    """A Comparison with a normal abs interval and a log-scale relative interval (95%)."""
    q = stats.norm.ppf(0.975)
    treatment = control + abs_lift
    rel_se = se / treatment  # enough for these tests: only the log-scale se is used
    log_ratio = math.log(treatment / control)
    return Comparison(
        *map(np.float64, (control, treatment, abs_lift, abs_lift - q * se, abs_lift + q * se,
                          treatment / control - 1, math.expm1(log_ratio - q * rel_se),
                          math.expm1(log_ratio + q * rel_se), 0.5, se, rel_se))
    )  # fmt: skip


@pytest.mark.parametrize(
    "lift, se, verdict",
    [(0.010, 0.001, "met"), (0.002, 0.001, "not met"), (0.006, 0.002, "inconclusive")],
)
def test_absolute_increase_verdicts(lift, se, verdict):
    target = SmartTarget("conversion", 0.005, lift_kind="absolute")
    result = evaluate_target(target, "B", comparison(lift, se), alpha=0.05)
    assert result.verdict == verdict
    # Flat prior, normal posterior: P(lift >= 0.005) = Phi((estimate - 0.005) / se).
    posterior = stats.norm.cdf((lift - 0.005) / se)
    assert result.posterior_p_beyond_target == pytest.approx(posterior)
    # The chance of a "met" verdict at the (plug-in) lift: Phi((lift - target) / se - z)
    z = stats.norm.isf(0.025)
    assert result.p_met == pytest.approx(stats.norm.cdf((lift - 0.005) / se - z))
    assert result.min_lift_to_meet == pytest.approx(0.005 + (z + stats.norm.ppf(0.8)) * se)
    assert result.achievable == (result.p_met >= 0.8) == (lift >= result.min_lift_to_meet)


def test_met_means_whole_interval_at_or_above_the_target():
    target = SmartTarget("conversion", 0.005, lift_kind="absolute")
    q = stats.norm.ppf(0.975)
    exactly = evaluate_target(target, "B", comparison(0.005 + q * 0.001, 0.001), 0.05)
    assert exactly.ci_low == pytest.approx(0.005) and exactly.verdict in ("met", "inconclusive")
    above = evaluate_target(target, "B", comparison(0.0051 + q * 0.001, 0.001), 0.05)
    assert above.verdict == "met"


@pytest.mark.parametrize(
    "lift, verdict", [(-0.02, "met"), (-0.001, "not met"), (-0.01, "inconclusive")]
)
def test_decrease_mirrors_increase(lift, verdict):
    target = SmartTarget("cart_abandonment_rate", 0.01, direction="decrease", lift_kind="absolute")
    result = evaluate_target(target, "B", comparison(lift, 0.003, control=0.7), 0.05)
    assert result.verdict == verdict and result.target_lift == -0.01
    posterior = stats.norm.cdf((-0.01 - lift) / 0.003)
    assert result.posterior_p_beyond_target == pytest.approx(posterior)
    z = stats.norm.isf(0.025)
    assert result.p_met == pytest.approx(stats.norm.cdf((-0.01 - lift) / 0.003 - z))


def test_relative_target_uses_the_log_ratio_posterior():
    target = SmartTarget("conversion", 0.15)  # +15% relative
    c = comparison(0.0075, 0.002)  # +15% exactly
    result = evaluate_target(target, "B", c, 0.05)
    assert result.estimate == pytest.approx(0.15)
    assert result.posterior_p_beyond_target == pytest.approx(0.5)
    assert result.verdict == "inconclusive"
    step = (stats.norm.isf(0.025) + stats.norm.ppf(0.8)) * float(c.rel_se)
    assert result.min_lift_to_meet == pytest.approx(math.expm1(math.log1p(0.15) + step))
    assert result.p_met == pytest.approx(0.025) and not result.achievable  # at exactly +15%


def test_achievable_follows_the_met_rule_not_power_against_zero():
    """Today "achievable" is MDE-against-zero <= target: a lift of exactly the target passed.

    Under the "met" rule a true lift equal to the target is declared met only 2.5% of the time.
    """
    target = SmartTarget("conversion", 0.005, lift_kind="absolute")
    result = evaluate_target(target, "B", comparison(0.005, 0.001), 0.05, true_lift=0.005)
    assert result.assumed_from == "truth" and result.p_met == pytest.approx(0.025)
    assert not result.achievable  # old rule: MDE 0.0028 <= 0.005 -> achievable


def test_met_share_in_simulated_tests_matches_p_met():
    """R simulated two-proportion tests at a true lift: share of "met" vs the formula.

    5% vs 6% conversion, 20,000 users per arm, target +0.6 points absolute: p_met is about 0.6.
    Monte Carlo SE of the share: sqrt(p (1 - p) / R) = 0.011 at R = 2,000; tolerance 3.5 SE.
    """
    from experiments.stats.comparisons import compare_proportions
    from experiments.stats.targets import p_met

    rng, R, n = np.random.default_rng(9), 2000, 20000
    c, t = rng.binomial(n, 0.05, R), rng.binomial(n, 0.06, R)
    target = SmartTarget("vcr", 0.006, lift_kind="absolute")
    comps = compare_proportions(c, n, t, n)
    verdicts = [
        evaluate_target(target, "B", Comparison(*(np.asarray(f)[i] for f in comps)), 0.05).verdict
        for i in range(R)
    ]
    share = np.mean([v == "met" for v in verdicts])
    predicted = p_met(0.01, 0.006, float(np.mean(comps.se)), 0.05, "increase", "absolute")
    assert 0.4 < predicted < 0.8  # a case where the two rules differ a lot
    assert abs(share - predicted) < 3.5 * np.sqrt(predicted * (1 - predicted) / R), (
        share,
        predicted,
    )


def test_a_relative_decrease_of_100_percent_or_more_is_a_clear_error():
    with pytest.raises(ConfigError, match="target.lift: must be < 1 for a relative decrease"):
        SmartTarget("aov", 1.0, direction="decrease")


def frame():
    return pd.DataFrame(
        {"segment": ["a", "b", "a", "b"], "first_exposure_day": [0, 10, 40, 89], "x": 1}
    )


def test_rows_by_segment_and_deadline():
    target = SmartTarget("x", 0.1, segment="a", deadline=dt.date(2026, 2, 1))
    keep = target_rows(frame(), target, "2026-01-01", "first_exposure_day", "segment")
    assert keep.tolist() == [True, False, False, False]  # day 31 is the deadline


def test_deadline_past_the_horizon_is_an_error():
    target = SmartTarget("x", 0.1, deadline=dt.date(2026, 6, 30))
    with pytest.raises(ConfigError, match=r"target.deadline: must be a date within the data, "
                       r"2026-01-01 to 2026-03-31"):  # fmt: skip
        target_rows(frame(), target, "2026-01-01", "first_exposure_day", "segment")


def test_a_known_end_of_the_data_stands_for_the_last_first_exposure():
    """A table cut at a day in which nobody came for the first time still covers that day."""
    target = SmartTarget("x", 0.1, deadline=dt.date(2026, 3, 31))  # day 89
    cut = frame().iloc[:3]  # the last first exposure is day 40
    with pytest.raises(ConfigError, match="target.deadline"):
        target_rows(cut, target, "2026-01-01", "first_exposure_day", "segment")
    keep = target_rows(cut, target, "2026-01-01", "first_exposure_day", "segment",
                       data_end=dt.date(2026, 3, 31))  # fmt: skip
    assert keep.tolist() == [True, True, True]
    with pytest.raises(ConfigError, match="2026-01-01 to 2026-03-30"):  # one day short: an error
        target_rows(cut, target, "2026-01-01", "first_exposure_day", "segment",
                    data_end=dt.date(2026, 3, 30))  # fmt: skip


def test_unknown_segment_and_missing_start_date_are_errors():
    with pytest.raises(ConfigError, match="target.segment: must be a segment in the data: a, b"):
        target_rows(frame(), SmartTarget("x", 0.1, segment="z"), None, "d", "segment")
    with pytest.raises(ConfigError, match="start_date: must be a date"):
        target_rows(frame(), SmartTarget("x", 0.1, deadline=dt.date(2026, 1, 5)), None,
                    "first_exposure_day", "segment")  # fmt: skip


@pytest.mark.parametrize(
    "kwargs, key",
    [({"lift": 0}, "target.lift"), ({"direction": "up"}, "target.direction"),
     ({"lift_kind": "pct"}, "target.lift_kind")],
)  # fmt: skip
def test_bad_target_fields_are_errors(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        SmartTarget(**({"metric": "x", "lift": 0.1} | kwargs))


def test_an_undefined_lift_gives_no_chance_and_no_achievable():
    target = SmartTarget("conversion", 0.15)
    c = comparison(0.01, 0.002)._replace(rel_lift=np.float64(np.nan), rel_se=np.float64(np.nan))
    result = evaluate_target(target, "B", c, 0.05)
    assert np.isnan(result.p_met) and result.achievable is None
    assert np.isnan(result.posterior_p_beyond_target) and result.verdict == "inconclusive"


def test_a_target_on_a_one_sided_metric_is_judged_on_the_two_sided_interval():
    """A guardrail (one-sided, margin) that is also a target: "not met" must stay possible."""
    from types import SimpleNamespace

    from experiments.analyze import judge_target
    from experiments.stats.analysis import Analysis
    from experiments.stats.metrics import Mean

    rng = np.random.default_rng(4)
    frame = pd.DataFrame(
        {
            "arm": np.repeat(["A", "B"], 5000),
            "exposed": True,
            "revenue": rng.exponential(10, 10000) * np.repeat([1.0, 1.05], 5000),
        }
    )
    metric = Mean(name="rpv", column="revenue", ni_margin=1.0)
    analysis = Analysis((metric,), control="A")
    ns = SimpleNamespace(start_date=None, day_col="d", segment_col="s")
    far = judge_target(ns, analysis, SmartTarget("rpv", 0.5, lift_kind="relative"), frame)
    (r,) = far["results"]
    assert np.isfinite(r["ci_low"]) and np.isfinite(r["ci_high"])
    assert r["verdict"] == "not met"  # +5% is far short of +50%; one-sided it read inconclusive
