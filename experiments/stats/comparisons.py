"""Two-sample comparisons from sufficient statistics, vectorised over arms or datasets.

Every function here takes per-arm summaries (counts, means, variances) as numbers or numpy
arrays of the same shape and returns a :class:`Comparison` of arrays, so one call analyses one
A/B test or thousands of simulated ones at once. statsmodels and scipy test one sample at a time;
the formulas are written out here only so they broadcast, and the tests pin each against
statsmodels / scipy on the same data to 1e-6.

Conventions:
    - ``alternative`` is statsmodels' ``"two-sided"``, ``"larger"`` (treatment > control) or
      ``"smaller"``; a one-sided test gets a one-sided interval (the other end infinite).
    - ``null`` is the value of ``treatment - control`` under the null hypothesis; 0 except for
      non-inferiority tests, where it is minus the margin.
    - Relative lift is ``treatment / control - 1``. Its interval is the delta method on the log
      ratio: ``log(t / c) +- q * sqrt(se_t**2 / t**2 + se_c**2 / c**2)``, exponentiated, minus 1
      (Katz's log interval for proportions). It stays inside (-1, inf) and is undefined (NaN)
      when either mean is not positive.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from statsmodels.stats.proportion import proportion_confint

from experiments.stats import distributions as dist

ALTERNATIVES = ("two-sided", "larger", "smaller")


class Comparison(NamedTuple):
    """Treatment versus control for one metric: values are floats or arrays of one shape.

    Attributes:
        control: The metric in the control arm.
        treatment: The metric in the treatment arm.
        abs_lift: ``treatment - control``.
        abs_ci_low: Lower end of the interval for ``abs_lift`` (-inf for ``"smaller"``).
        abs_ci_high: Upper end (+inf for ``"larger"``).
        rel_lift: ``treatment / control - 1``.
        rel_ci_low: Lower end of the relative-lift interval (delta method on the log ratio).
        rel_ci_high: Upper end of the relative-lift interval.
        p_value: P-value of the test of ``abs_lift == null`` against ``alternative``.
        se: Standard error of ``abs_lift`` (unpooled).
        rel_se: Standard error of ``log(treatment / control)`` (delta method).
    """

    control: np.ndarray
    treatment: np.ndarray
    abs_lift: np.ndarray
    abs_ci_low: np.ndarray
    abs_ci_high: np.ndarray
    rel_lift: np.ndarray
    rel_ci_low: np.ndarray
    rel_ci_high: np.ndarray
    p_value: np.ndarray
    se: np.ndarray
    rel_se: np.ndarray


class MeanStats(NamedTuple):
    """Per-arm size, mean and variance (ddof=1) of a per-user value."""

    n: np.ndarray
    mean: np.ndarray
    var: np.ndarray


class RatioStats(NamedTuple):
    """Per-arm moments of a numerator and a denominator per user (variances with ddof=1)."""

    n: np.ndarray
    mean_num: np.ndarray
    mean_den: np.ndarray
    var_num: np.ndarray
    var_den: np.ndarray
    cov: np.ndarray


def _quantile(alpha: float, alternative: str, df: np.ndarray | None = None) -> np.ndarray:
    """Critical value of the interval: ``1 - alpha/2`` two-sided, ``1 - alpha`` one-sided."""
    level = 1 - alpha / 2 if alternative == "two-sided" else 1 - alpha
    return dist.norm_ppf(level) if df is None else dist.t_ppf(level, df)


def _interval(est, se, q, alternative: str) -> tuple[np.ndarray, np.ndarray]:
    """``est -+ q * se``, with the untested side infinite for a one-sided alternative."""
    return _interval_sides(est - q * se, est + q * se, alternative)


def p_value_from_stat(stat, alternative: str, df: np.ndarray | None = None) -> np.ndarray:
    """P-value of a z (``df=None``) or t statistic against ``alternative``."""
    # scipy.stats' kernels without its per-call checks (experiments.stats.distributions)
    if df is None:
        sf, cdf = dist.norm_sf, dist.norm_cdf
    else:
        sf, cdf = (lambda x: dist.t_sf(x, df)), (lambda x: dist.t_cdf(x, df))
    if alternative == "two-sided":
        return 2 * sf(np.abs(stat))
    return sf(stat) if alternative == "larger" else cdf(stat)


def _safe_stat(diff, se) -> np.ndarray:
    """``diff / se``; with zero variance (se == 0) a zero difference gives 0, else +-inf.

    So a comparison of two arms in which every user has the same value gets p = 1 (no evidence of
    a difference) rather than NaN; the analysis states this reason beside the result. An
    undefined comparison (a ratio whose denominator sums to 0 in an arm: NaN difference or se)
    stays NaN, so it is never read as significant.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.asarray(diff / se, dtype=float)
    out = np.where(se > 0, stat, np.where(diff == 0, 0.0, np.copysign(np.inf, diff)))
    return np.where(np.isfinite(diff) & np.isfinite(se), out, np.nan)


def relative_lift(control, treatment, se_control, se_treatment, alpha, alternative, df=None):
    """Relative lift ``t / c - 1`` and its interval by the delta method on the log ratio.

    Returns:
        ``(rel_lift, rel_ci_low, rel_ci_high, rel_se)``; NaN where a mean is not positive.
    """
    control, treatment = np.asarray(control, float), np.asarray(treatment, float)
    ok = (control > 0) & (treatment > 0)
    c, t = np.where(ok, control, 1.0), np.where(ok, treatment, 1.0)
    rel_se = np.where(ok, np.sqrt((se_treatment / t) ** 2 + (se_control / c) ** 2), np.nan)
    low, high = _interval(np.log(t / c), rel_se, _quantile(alpha, alternative, df), alternative)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rel = np.where(control != 0, treatment / np.where(control != 0, control, 1.0) - 1, np.nan)
        low, high = np.expm1(low), np.expm1(high)  # a mean near 0 may give an infinite end
    return rel, np.where(ok, low, np.nan), np.where(ok, high, np.nan), rel_se


def _comparison(c, t, diff, se, p, ci, rel) -> Comparison:
    """Assemble a Comparison, as float arrays, from its parts."""
    rel_lift, rel_low, rel_high, rel_se = rel
    parts = (c, t, diff, ci[0], ci[1], rel_lift, rel_low, rel_high, p, se, rel_se)
    return Comparison(*(np.asarray(x, dtype=float) for x in parts))


def compare_proportions(
    count_c, n_c, count_t, n_t, *, alpha=0.05, alternative="two-sided", null=0.0
) -> Comparison:
    """Two-proportion test: pooled z-test, Newcombe interval, Katz log interval for the ratio.

    With ``null == 0`` the p-value is the classic pooled two-proportion z-test (as
    ``statsmodels.stats.proportion.proportions_ztest``). With a non-zero ``null`` (a
    non-inferiority margin) pooling is wrong, so the unpooled Wald z ``(diff - null) / se`` is used.
    The interval for the difference is Newcombe's hybrid score interval built from the two Wilson
    intervals (statsmodels ``proportion_confint(method="wilson")``), as
    ``confint_proportions_2indep(method="newcomb")``.
    """
    p_c, p_t = count_c / n_c, count_t / n_t
    diff = p_t - p_c
    se = np.sqrt(p_c * (1 - p_c) / n_c + p_t * (1 - p_t) / n_t)
    pooled = (count_c + count_t) / (n_c + n_t)
    se_pooled = np.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    se_test = se_pooled if np.all(np.asarray(null) == 0) else se
    p = p_value_from_stat(_safe_stat(diff - null, se_test), alternative)
    ci = _newcombe(count_c, n_c, count_t, n_t, alpha, alternative)
    rel = relative_lift(p_c, p_t, np.sqrt(p_c * (1 - p_c) / n_c), np.sqrt(p_t * (1 - p_t) / n_t),
                        alpha, alternative)  # fmt: skip
    return _comparison(p_c, p_t, diff, se, p, ci, rel)


def _newcombe(count_c, n_c, count_t, n_t, alpha, alternative):
    """Newcombe's hybrid score interval for ``p_t - p_c`` (one-sided: Wilson at level 1-2a)."""
    level = alpha if alternative == "two-sided" else 2 * alpha
    low_c, high_c = proportion_confint(count_c, n_c, alpha=level, method="wilson")
    low_t, high_t = proportion_confint(count_t, n_t, alpha=level, method="wilson")
    p_c, p_t = count_c / n_c, count_t / n_t
    diff = p_t - p_c
    low = diff - np.sqrt((p_t - low_t) ** 2 + (high_c - p_c) ** 2)
    high = diff + np.sqrt((high_t - p_t) ** 2 + (p_c - low_c) ** 2)
    return _interval_sides(low, high, alternative)


def _interval_sides(low, high, alternative):
    """Replace the untested end of an interval by infinity."""
    low = np.where(alternative == "smaller", -np.inf, low)
    high = np.where(alternative == "larger", np.inf, high)
    return low, high


def welch_df(var_c, n_c, var_t, n_t) -> np.ndarray:
    """Welch-Satterthwaite degrees of freedom (n - 1 per arm where both variances are 0)."""
    v_c, v_t = np.asarray(var_c, float) / n_c, np.asarray(var_t, float) / n_t
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (v_c + v_t) ** 2 / (v_c**2 / (n_c - 1) + v_t**2 / (n_t - 1))
    return np.where(v_c + v_t > 0, df, n_c + n_t - 2)


def compare_means(
    c: MeanStats, t: MeanStats, *, alpha=0.05, alternative="two-sided", null=0.0
) -> Comparison:
    """Welch's t-test and interval for ``mean_t - mean_c`` (as ``scipy.stats.ttest_ind``).

    The relative-lift interval uses the same t quantile (Welch degrees of freedom) on the log
    ratio of means.
    """
    diff = t.mean - c.mean
    se = np.sqrt(c.var / c.n + t.var / t.n)
    df = welch_df(c.var, c.n, t.var, t.n)
    p = p_value_from_stat(_safe_stat(diff - null, se), alternative, df)
    ci = _interval(diff, se, _quantile(alpha, alternative, df), alternative)
    se_c, se_t = np.sqrt(c.var / c.n), np.sqrt(t.var / t.n)
    rel = relative_lift(c.mean, t.mean, se_c, se_t, alpha, alternative, df)
    return _comparison(c.mean, t.mean, diff, se, p, ci, rel)


def ratio_se(s: RatioStats) -> np.ndarray:
    """Delta-method standard error of ``mean_num / mean_den`` under randomisation by user.

    ``var(R) = (var_num - 2 R cov + R**2 var_den) / (n * mean_den**2)`` with ``R`` the ratio:
    users, not sessions or orders, are the independent units.
    """
    ratio = s.mean_num / s.mean_den
    var = (s.var_num - 2 * ratio * s.cov + ratio**2 * s.var_den) / (s.n * s.mean_den**2)
    return np.sqrt(np.maximum(var, 0.0))


def compare_ratios(
    c: RatioStats, t: RatioStats, *, alpha=0.05, alternative="two-sided", null=0.0
) -> Comparison:
    """Z-test and interval for a difference of two ratios of means (delta method)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r_c, r_t = c.mean_num / c.mean_den, t.mean_num / t.mean_den
        se_c, se_t = ratio_se(c), ratio_se(t)
    diff = r_t - r_c
    se = np.sqrt(se_c**2 + se_t**2)
    p = p_value_from_stat(_safe_stat(diff - null, se), alternative)
    ci = _interval(diff, se, _quantile(alpha, alternative), alternative)
    rel = relative_lift(r_c, r_t, se_c, se_t, alpha, alternative)
    return _comparison(r_c, r_t, diff, se, p, ci, rel)
