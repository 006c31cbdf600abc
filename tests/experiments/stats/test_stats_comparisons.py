"""Every p-value and interval equals an independent statsmodels / scipy calculation (1e-6)."""

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats import proportion as smp
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from experiments.stats.comparisons import (
    MeanStats,
    RatioStats,
    compare_means,
    compare_proportions,
    compare_ratios,
)
from experiments.stats.metrics import Groups, cuped

TOL = dict(rel=1e-6, abs=1e-9)


def mean_stats(x):
    return MeanStats(len(x), x.mean(), x.var(ddof=1))


def ratio_stats(num, den):
    cov = np.cov(num, den, ddof=1)
    return RatioStats(len(num), num.mean(), den.mean(), cov[0, 0], cov[1, 1], cov[0, 1])


def orders_revenue(rng, n, p=0.05, value_scale=1.0):
    """Users converting with probability p, 1 + Poisson(0.3) orders, lognormal(4, 1) values."""
    orders = (rng.random(n) < p) * (1 + rng.poisson(0.3, n))
    revenue = np.array([rng.lognormal(4, 1, k).sum() for k in orders]) * value_scale
    return orders.astype(float), revenue


@pytest.mark.parametrize("alternative", ["two-sided", "larger", "smaller"])
def test_proportion_z_test_and_intervals_match_statsmodels(alternative):
    count_c, n_c, count_t, n_t = 480, 5000, 540, 5100
    r = compare_proportions(count_c, n_c, count_t, n_t, alternative=alternative)
    _, p = proportions_ztest([count_t, count_c], [n_t, n_c], alternative=alternative)
    assert r.p_value == pytest.approx(p, **TOL)
    if alternative == "two-sided":
        # Newcombe hybrid score (statsmodels "newcomb") and Katz log interval for the ratio.
        low, high = confint_proportions_2indep(count_t, n_t, count_c, n_c, method="newcomb")
        assert (r.abs_ci_low, r.abs_ci_high) == pytest.approx((low, high), **TOL)
        low, high = confint_proportions_2indep(
            count_t, n_t, count_c, n_c, method="log", compare="ratio"
        )
        assert (r.rel_ci_low, r.rel_ci_high) == pytest.approx((low - 1, high - 1), **TOL)
    else:
        # One-sided 95% bound = the relevant end of the two-sided 90% interval.
        low, high = confint_proportions_2indep(
            count_t, n_t, count_c, n_c, method="newcomb", alpha=0.1
        )
        bound = r.abs_ci_low if alternative == "larger" else r.abs_ci_high
        assert bound == pytest.approx(low if alternative == "larger" else high, **TOL)
        assert np.isinf(r.abs_ci_high if alternative == "larger" else r.abs_ci_low)


def test_proportion_non_inferiority_is_the_unpooled_wald_test():
    r = compare_proportions(500, 5000, 480, 5000, alternative="larger", null=-0.01)
    ref = smp.test_proportions_2indep(
        480, 5000, 500, 5000, value=-0.01, method="wald", compare="diff", alternative="larger"
    )
    assert r.p_value == pytest.approx(ref.pvalue, **TOL)


@pytest.mark.parametrize("alternative", ["two-sided", "larger", "smaller"])
def test_welch_matches_scipy_and_statsmodels(alternative):
    rng = np.random.default_rng(1)
    c, t = rng.lognormal(0, 1, 300), 1.2 * rng.lognormal(0, 1, 400)
    r = compare_means(mean_stats(c), mean_stats(t), alternative=alternative)
    scipy_alt = {"two-sided": "two-sided", "larger": "greater", "smaller": "less"}[alternative]
    ref = stats.ttest_ind(t, c, equal_var=False, alternative=scipy_alt)
    ci = ref.confidence_interval(0.95)
    assert r.p_value == pytest.approx(ref.pvalue, **TOL)
    assert (r.abs_ci_low, r.abs_ci_high) == pytest.approx((ci.low, ci.high), **TOL)
    cm = CompareMeans(DescrStatsW(t), DescrStatsW(c))
    assert r.p_value == pytest.approx(
        cm.ttest_ind(usevar="unequal", alternative=alternative)[1], **TOL
    )


def test_welch_with_margin_shifts_the_null():
    rng = np.random.default_rng(2)
    c, t = rng.normal(10, 3, 500), rng.normal(9.8, 3, 500)
    r = compare_means(mean_stats(c), mean_stats(t), alternative="larger", null=-0.5)
    cm = CompareMeans(DescrStatsW(t), DescrStatsW(c))
    assert r.p_value == pytest.approx(
        cm.ttest_ind(usevar="unequal", alternative="larger", value=-0.5)[1], **TOL
    )


def test_relative_interval_for_means_is_delta_method_on_log_ratio():
    rng = np.random.default_rng(3)
    c, t = rng.gamma(2, 5, 800), rng.gamma(2, 5.5, 700)
    r = compare_means(mean_stats(c), mean_stats(t))
    # Hand calculation: log(mt / mc) +- t_{0.975, Welch df} * sqrt(se_t^2/mt^2 + se_c^2/mc^2).
    se_c2, se_t2 = c.var(ddof=1) / len(c), t.var(ddof=1) / len(t)
    df = (se_c2 + se_t2) ** 2 / (se_c2**2 / (len(c) - 1) + se_t2**2 / (len(t) - 1))
    half = stats.t.ppf(0.975, df) * np.sqrt(se_t2 / t.mean() ** 2 + se_c2 / c.mean() ** 2)
    log_ratio = np.log(t.mean() / c.mean())
    expected = (np.expm1(log_ratio - half), np.expm1(log_ratio + half))
    assert (r.rel_ci_low, r.rel_ci_high) == pytest.approx(expected, **TOL)


def delta_method_by_wls(num, den):
    """Ratio and its delta-method se from statsmodels: WLS of num/den on 1, weights den, HC0.

    The HC0 sandwich of that regression is sum((num - R den)^2) / sum(den)^2, the delta method
    with ddof=0; times n / (n - 1) it is the ddof=1 delta method used by the metric.
    Users with den = 0 have num = 0 and add nothing to either.
    """
    keep = den > 0
    fit = sm.WLS(num[keep] / den[keep], np.ones(keep.sum()), weights=den[keep]).fit(cov_type="HC0")
    n = len(num)
    return fit.params[0], fit.bse[0] * np.sqrt(n / (n - 1))


def test_delta_method_ratio_matches_statsmodels_wls_sandwich():
    rng = np.random.default_rng(4)
    orders_c, revenue_c = orders_revenue(rng, 4000)
    orders_t, revenue_t = orders_revenue(rng, 4200, value_scale=1.1)
    r = compare_ratios(ratio_stats(revenue_c, orders_c), ratio_stats(revenue_t, orders_t))
    ratio_c, se_c = delta_method_by_wls(revenue_c, orders_c)
    ratio_t, se_t = delta_method_by_wls(revenue_t, orders_t)
    se = np.hypot(se_c, se_t)
    z = (ratio_t - ratio_c) / se
    assert (r.control, r.treatment) == pytest.approx((ratio_c, ratio_t), **TOL)
    assert r.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), **TOL)
    q = stats.norm.ppf(0.975)
    expected = (ratio_t - ratio_c - q * se, ratio_t - ratio_c + q * se)
    assert (r.abs_ci_low, r.abs_ci_high) == pytest.approx(expected, **TOL)
    half = q * np.sqrt((se_t / ratio_t) ** 2 + (se_c / ratio_c) ** 2)
    log_ratio = np.log(ratio_t / ratio_c)
    expected = (np.expm1(log_ratio - half), np.expm1(log_ratio + half))
    assert (r.rel_ci_low, r.rel_ci_high) == pytest.approx(expected, **TOL)


def test_cuped_lift_equals_ols_arm_coefficient_and_welch_on_adjusted_values():
    rng = np.random.default_rng(5)
    n = 3000
    arm = (rng.random(n) < 0.5).astype(int)
    x = rng.gamma(2, 10, n)
    y = 5 + 0.6 * x + 2.0 * arm + rng.normal(0, 8, n)
    stats_adj, theta, x_bar = cuped(Groups.build(arm, ("A", "B")), y, x)
    adjusted = y - theta * (x - x_bar)
    r = compare_means(MeanStats(*(v[0] for v in stats_adj)), MeanStats(*(v[1] for v in stats_adj)))
    design = np.column_stack([np.ones(n), arm, x - x.mean()])
    ols = sm.OLS(y, design).fit()
    assert r.abs_lift == pytest.approx(ols.params[1], **TOL)
    assert theta == pytest.approx(ols.params[2], **TOL)
    # Welch t-test (statsmodels) on y - theta (x - mean x), theta from the OLS fit.
    y_adj = y - ols.params[2] * (x - x.mean())
    assert adjusted == pytest.approx(y_adj, **TOL)
    cm = CompareMeans(DescrStatsW(y_adj[arm == 1]), DescrStatsW(y_adj[arm == 0]))
    assert r.p_value == pytest.approx(cm.ttest_ind(usevar="unequal")[1], **TOL)
    assert (r.abs_ci_low, r.abs_ci_high) == pytest.approx(cm.tconfint_diff(usevar="unequal"), **TOL)
    plain = compare_means(mean_stats(y[arm == 0]), mean_stats(y[arm == 1]))
    assert r.se < 0.8 * plain.se  # the covariate explains much of y's variance


def test_comparisons_broadcast_over_datasets():
    counts_c, counts_t = np.array([100, 120, 90]), np.array([110, 100, 130])
    r = compare_proportions(counts_c, 2000, counts_t, 2000)
    for k in range(3):
        one = compare_proportions(counts_c[k], 2000, counts_t[k], 2000)
        assert r.p_value[k] == pytest.approx(one.p_value, **TOL)
        assert r.rel_ci_high[k] == pytest.approx(one.rel_ci_high, **TOL)


def test_zero_variance_gives_a_defined_result():
    # Every user converts in both arms: no variance; defined as p = 1 (no evidence of a change).
    r = compare_proportions(500, 500, 400, 400)
    assert r.p_value == 1.0 and r.abs_lift == 0.0
    assert r.rel_lift == 0.0 and r.rel_ci_low == 0.0 and r.rel_ci_high == 0.0
    assert r.abs_ci_low < 0 < r.abs_ci_high  # Newcombe's score interval is still informative
    r = compare_means(MeanStats(10, 3.0, 0.0), MeanStats(10, 4.0, 0.0))
    assert r.p_value == 0.0 and r.abs_ci_low == r.abs_ci_high == 1.0


@pytest.mark.parametrize("with_x", [False, True])
def test_moments_compiled_pass_is_bincounts_bit_for_bit(with_x):
    """Groups.moments' one compiled pass adds rows in order as np.bincount does: the same sums
    to the last bit (heavy-tailed values, three arms and left-out rows)."""
    rng = np.random.default_rng(11)
    n = 20_001
    groups = Groups.build(rng.integers(0, 6, n), ("A", "B", "C"))  # codes 3-5: left out
    y = rng.lognormal(3.0, 1.5, n) * (rng.random(n) < 0.05)
    x = rng.poisson(2.0, n).astype(float) if with_x else None
    got = groups.moments(y, x)
    d_y = y - y.mean()
    s_y = groups.sums(d_y)
    assert np.array_equal(got.mean_y, groups.sums(y) / groups.n)
    assert np.array_equal(got.syy, np.maximum(groups.sums(d_y * d_y) - s_y**2 / groups.n, 0.0))
    if with_x:
        d_x = x - x.mean()
        s_x = groups.sums(d_x)
        assert np.array_equal(got.mean_x, groups.sums(x) / groups.n)
        assert np.array_equal(got.sxx, groups.sums(d_x * d_x) - s_x**2 / groups.n)
        assert np.array_equal(got.sxy, groups.sums(d_x * d_y) - s_x * s_y / groups.n)
    else:
        assert np.isnan(got.sxx).all() and np.isnan(got.sxy).all()
