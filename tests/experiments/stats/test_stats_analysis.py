"""The analysis: metrics composed over arms, SRM check, Holm / BH, and bad input."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from experiments.stats.analysis import RESULT_COLUMNS, Analysis, srm_check, user_table
from experiments.stats.comparisons import MeanStats, compare_means, compare_proportions
from experiments.stats.metrics import Mean, Proportion, RatioOfMeans
from sim.errors import ConfigError

TOL = dict(rel=1e-6, abs=1e-9)


def users(n=6000, arms=("A", "B"), seed=0, lift=0.0):
    """A small per-user table with DESIGN.md's columns that the metrics read."""
    rng = np.random.default_rng(seed)
    arm = rng.choice(arms, n)
    converted = rng.random(n) < np.where(arm == arms[0], 0.05, 0.05 * (1 + lift))
    orders = converted * (1 + rng.poisson(0.3, n))
    revenue = orders * rng.lognormal(4, 1, n)
    return pd.DataFrame(
        {
            "user_id": np.arange(n),
            "arm": arm,
            "segment": rng.choice(["loyal", "browser"], n),
            "exposed": rng.random(n) < 0.9,
            "first_exposure_day": rng.integers(0, 90, n),
            "sessions": 1 + rng.poisson(1.5, n),
            "orders": orders,
            "converted": converted,
            "revenue": revenue,
            "margin": 0.3 * revenue - 4 * converted,
            "pre_revenue": 0.5 * revenue + rng.lognormal(2, 1, n),
        }
    )


METRICS = (
    Proportion(name="visitor_conversion_rate", column="converted"),
    RatioOfMeans(name="aov", numer="revenue", denom="orders"),
    RatioOfMeans(name="conversion_rate", numer="orders", denom="sessions"),
    Mean(name="revenue_per_visitor", column="revenue"),
    Mean(name="revenue_cuped", column="revenue", covariate="pre_revenue"),
    Mean(name="margin_per_visitor", column="margin", nonnegative=False),
)


def test_result_table_has_the_contract_columns_and_matches_direct_tests():
    frame = users(arms=("A", "B", "C"))
    result = Analysis(METRICS, control="A").run(frame)
    assert tuple(result.table.columns) == RESULT_COLUMNS
    assert len(result.table) == len(METRICS) * 2 * 2 and result.arms == ("A", "B", "C")
    # exposed rows (the decision) first, then the same rows for all assigned users (ITT)
    assert list(result.table.population) == ["exposed"] * 12 + ["itt"] * 12
    exposed = frame[frame.exposed]
    a, b = (exposed[exposed.arm == k] for k in ("A", "B"))
    row = result.table.query("metric == 'visitor_conversion_rate' and arm == 'B'").iloc[0]
    direct = compare_proportions(a.converted.sum(), len(a), b.converted.sum(), len(b))
    assert row.p_value == pytest.approx(direct.p_value, **TOL)
    assert row.abs_ci_low == pytest.approx(direct.abs_ci_low, **TOL)
    row = result.table.query("metric == 'revenue_per_visitor' and arm == 'B'").iloc[0]
    direct = stats.ttest_ind(b.revenue, a.revenue, equal_var=False)
    assert row.p_value == pytest.approx(direct.pvalue, **TOL)


@pytest.mark.parametrize("correction, method", [("holm", "holm"), ("bh", "fdr_bh")])
def test_p_values_adjusted_across_the_primary_metrics_only(correction, method):
    roles = {
        "visitor_conversion_rate": "primary",
        "aov": "primary",
        "revenue_per_visitor": "primary",
    }
    analysis = Analysis(METRICS, control="A", correction=correction, roles=roles)
    table = analysis.run(users(lift=0.3)).table.query("population == 'exposed'")
    family = table[table.role == "primary"]
    expected = multipletests(family.p_value, method=method)[1]
    assert family.p_adjusted.to_numpy() == pytest.approx(expected, **TOL)
    others = table[(table.role != "primary") & table.cuped_p_value.isna()]
    assert (others.p_adjusted == others.p_value).all()  # secondary: not corrected
    assert (table.significant == (table.p_adjusted < 0.05)).all()


def test_srm_check_is_scipy_chisquare_and_flags_below_0_001():
    check = srm_check([5000, 5400], ("A", "B"))  # chi2 = 2 * 200^2 / 5200 = 15.4, p = 9e-5
    assert check.p_value == pytest.approx(stats.chisquare([5000, 5400]).pvalue, **TOL)
    assert check.statistic == pytest.approx(2 * 200**2 / 5200, **TOL) and check.flag
    assert not srm_check([5000, 5300], ("A", "B")).flag  # chi2 = 8.7, p = 0.003: not flagged


def test_srm_with_planned_unequal_split():
    check = srm_check([2000, 8000], ("A", "B"), shares=(0.2, 0.8))
    assert check.statistic == pytest.approx(0.0) and not check.flag
    assert srm_check([2000, 8000], ("A", "B")).flag


def test_analysis_flags_a_broken_split():
    frame = users(n=20000)
    drop = (frame.arm == "B") & (np.arange(len(frame)) % 10 == 0)
    result = Analysis(METRICS[:1], control="A", population="all").run(frame[~drop])
    assert result.srm.flag and result.srm.p_value < 0.001


def test_population_all_is_intention_to_treat():
    frame = users()
    exposed = Analysis(METRICS[:1], control="A").run(frame).srm.counts
    everyone = Analysis(METRICS[:1], control="A", population="all").run(frame).srm.counts
    assert sum(everyone.values()) == len(frame) > sum(exposed.values())


def test_non_inferiority_margin_makes_a_one_sided_test():
    frame = users(n=20000)
    metric = Mean(name="rpv", column="revenue", ni_margin=1.0)
    row = Analysis((metric,), control="A").run(frame).table.iloc[0]
    assert np.isinf(row.abs_ci_high)
    exposed = frame[frame.exposed]
    a, b = (exposed[exposed.arm == k].revenue.to_numpy() for k in ("A", "B"))
    direct = compare_means(
        MeanStats(len(a), a.mean(), a.var(ddof=1)),
        MeanStats(len(b), b.mean(), b.var(ddof=1)),
        alternative="larger",
        null=-1.0,
    )
    assert row.p_value == pytest.approx(direct.p_value, **TOL)


def test_mann_whitney_and_bootstrap_options():
    frame = users(n=4000, lift=0.5)
    metrics = (
        Mean(name="welch", column="revenue"),
        Mean(name="mw", column="revenue", test="mannwhitney"),
        Mean(name="boot", column="revenue", test="bootstrap", n_resamples=500),
    )
    table = Analysis(metrics, control="A", correction="none").run(frame).table
    table = table[table.population == "exposed"].set_index("metric")
    exposed = frame[frame.exposed]
    a, b = (exposed[exposed.arm == k].revenue for k in ("A", "B"))
    assert table.loc["mw", "p_value"] == pytest.approx(stats.mannwhitneyu(b, a).pvalue, **TOL)
    assert table.loc["boot", "p_value"] == table.loc["welch", "p_value"]
    # Percentile bootstrap and Welch intervals agree roughly at this size (not exactly).
    width = table.loc["welch", "abs_ci_high"] - table.loc["welch", "abs_ci_low"]
    assert table.loc["boot", "abs_ci_low"] == pytest.approx(table.loc["welch", "abs_ci_low"],
                                                            abs=0.2 * width)  # fmt: skip


# --- bad input: a clear ConfigError, or a defined result with its reason stated ---------------


def test_missing_column_is_an_error_naming_it():
    with pytest.raises(ConfigError, match=r"column 'revenue' \(metric aov\).*columns? of the"):
        Analysis(METRICS, control="A").run(users().drop(columns="revenue"))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_revenue_is_an_error(bad):
    frame = users()
    frame.loc[3, "revenue"] = bad
    with pytest.raises(ConfigError, match="column 'revenue': must be a finite number"):
        Analysis(METRICS, control="A").run(frame)


def test_negative_revenue_is_an_error_but_negative_margin_is_allowed():
    frame = users()
    frame.loc[3, "revenue"] = -1.0
    with pytest.raises(ConfigError, match=r"column 'revenue': must be non-negative"):
        Analysis(METRICS[3:4], control="A").run(frame)
    assert (users().margin < 0).any()
    Analysis(METRICS[5:], control="A").run(users())  # margin may be negative


def test_single_arm_is_an_error():
    frame = users(arms=("A",))
    with pytest.raises(ConfigError, match="arm_col: must be a column with two or more arms"):
        Analysis(METRICS, control="A").run(frame)


def test_empty_arm_is_an_error():
    frame = users()
    frame.loc[frame.arm == "B", "exposed"] = False  # B has users, but none exposed
    with pytest.raises(ConfigError, match=r"arm 'B': must be an arm with at least 2 users"):
        Analysis(METRICS, control="A").run(frame)


def test_unknown_control_or_arm_is_an_error():
    with pytest.raises(ConfigError, match="control: must be an arm in the data: A, B"):
        Analysis(METRICS, control="Z").run(users())
    with pytest.raises(ConfigError, match="arms: must be an arm in the data"):
        Analysis(METRICS, control="A", arms=("B", "Q")).run(users())


def test_all_users_converting_gives_a_defined_result_with_reason():
    frame = users()
    frame["converted"] = True
    result = Analysis(METRICS[:1], control="A").run(frame)
    row = result.table.iloc[0]
    assert row.p_value == 1.0 and row.abs_lift == 0.0 and not row.significant
    assert any("zero variance" in note for note in result.notes)


def test_ratio_without_denominator_is_undefined_with_reason():
    frame = users()
    frame.loc[frame.arm == "B", ["orders", "revenue"]] = 0
    result = Analysis(METRICS[1:2], control="A").run(frame)
    assert np.isnan(result.table.iloc[0].treatment)
    assert any("denominator sums to 0" in note for note in result.notes)


def test_non_binary_proportion_column_is_an_error():
    frame = users()
    with pytest.raises(ConfigError, match="column 'orders': must be 0/1"):
        Analysis((Proportion(name="x", column="orders"),), control="A").run(frame)


def test_unequal_lengths_are_an_error():
    with pytest.raises(ConfigError, match="columns: must be arrays of one length"):
        user_table(arm=["A", "B", "A"], revenue=[1.0, 2.0])
    table = user_table(arm=["A", "B"], revenue=[1.0, 2.0])
    assert list(table.columns) == ["arm", "revenue"]


@pytest.mark.parametrize("alpha", [0, 1, -0.1, 1.5])
def test_alpha_outside_0_1_is_an_error(alpha):
    with pytest.raises(ConfigError, match="alpha: must be a number > 0 and < 1"):
        Analysis(METRICS, control="A", alpha=alpha)


def test_bad_metric_options_are_errors():
    with pytest.raises(ConfigError, match="metrics.x.test: must be one of welch"):
        Mean(name="x", column="revenue", test="t")
    with pytest.raises(ConfigError, match="metrics.x.ni_margin: must be a number > 0"):
        Proportion(name="x", column="converted", ni_margin=0)
    with pytest.raises(ConfigError, match="unique names"):
        Analysis(METRICS + METRICS[:1], control="A")


def test_holm_written_out_equals_statsmodels():
    from experiments.stats.multiplicity import adjust_p_values

    rng = np.random.default_rng(3)
    for p in (rng.uniform(size=12), np.array([0.01, 0.01, 0.04, 0.2, 0.2, 0.9]), rng.uniform(
            0, 0.02, 5)):  # fmt: skip
        expected = multipletests(p, method="holm")[1]
        assert adjust_p_values(p, "holm") == pytest.approx(expected, abs=1e-15)


def _reference_groups(column: pd.Series, control: str, keep: np.ndarray) -> np.ndarray:
    """The arm codes by pandas' factorize (sorted as factorize sorts), written out plainly."""
    codes, uniques = pd.factorize(column, sort=True)
    present = [str(u) for u in uniques]
    names = [control] + [a for a in present if a != control]
    lookup = np.array([names.index(a) for a in present] + [0])
    out = np.where(codes >= 0, lookup[codes], len(names))
    return np.where(keep, out, len(names))


@pytest.mark.parametrize("ordered", [False, True])
def test_arm_codes_from_a_categorical_equal_factorizes(ordered):
    from experiments.stats.analysis import arm_groups

    rng = np.random.default_rng(8)
    codes = rng.integers(-1, 4, 5_000)  # -1: a blank cell; category "q" (3) unused below
    codes[codes == 3] = 2
    column = pd.Series(pd.Categorical.from_codes(codes, ["z", "a", "m", "q"], ordered=ordered))
    keep = rng.random(len(codes)) < 0.9
    for control in ("a", "m", "z"):
        groups = arm_groups(column.to_frame("arm"), "arm", control, None, keep)
        assert np.array_equal(groups.codes, _reference_groups(column, control, keep))
        assert groups.names[0] == control and set(groups.names) == {"z", "a", "m"}
        plain = arm_groups(column.astype(str).to_frame("arm"), "arm", control, None,
                           keep & (codes >= 0))  # fmt: skip
        assert np.array_equal(plain.codes, _reference_groups(column.astype(str), control,
                                                             keep & (codes >= 0)))  # fmt: skip
