"""Metric roles and the corrected family, CUPED as variance reduction, missing values, small
samples and ITT rows (issue 9, items 5, 6, 7 and 9)."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.multitest import multipletests

from experiments.stats.analysis import Analysis
from experiments.stats.checks import ConfigError
from experiments.stats.metrics import Mean, Proportion, RatioOfMeans

TOL = dict(rel=1e-6, abs=1e-9)


def users(n=8000, arms=("A", "B"), seed=1, lift=0.2):
    rng = np.random.default_rng(seed)
    arm = rng.choice(arms, n)
    boost = np.where(arm == arms[0], 1.0, 1 + lift)
    pre = rng.lognormal(3, 1, n)
    sessions = 1 + rng.poisson(1.5, n)
    orders = rng.binomial(sessions, 0.05 * boost)
    revenue = orders * 40 + 0.6 * pre * rng.random(n)
    return pd.DataFrame({
        "arm": arm, "exposed": rng.random(n) < 0.8, "sessions": sessions, "orders": orders,
        "converted": orders > 0, "revenue": revenue, "pre_revenue": pre,
    })  # fmt: skip


METRICS = (
    Proportion(name="visitor_conversion_rate", column="converted"),
    RatioOfMeans(name="conversion_rate", numer="orders", denom="sessions"),
    RatioOfMeans(name="aov", numer="revenue", denom="orders"),
    Mean(name="revenue_per_visitor", column="revenue", covariate="pre_revenue"),
    Mean(name="guard", column="revenue", ni_margin=5.0),
)


def test_default_roles_primary_conversion_rate_guardrails_from_margins():
    analysis = Analysis(METRICS, control="A")
    assert analysis.role == {"visitor_conversion_rate": "secondary",
                             "conversion_rate": "primary", "aov": "secondary",
                             "revenue_per_visitor": "secondary", "guard": "guardrail"}  # fmt: skip
    # the family is the one primary metric x one arm: nothing to adjust (today: Holm over all)
    row = analysis.run(users()).table.query("metric == 'conversion_rate'").iloc[0]
    assert row.p_adjusted == pytest.approx(row.p_value, **TOL)
    with pytest.raises(ConfigError, match="role: must be one of primary, secondary, guardrail"):
        Analysis(METRICS, control="A", roles={"aov": "main"})


def test_significant_never_contradicts_its_adjusted_interval():
    roles = {m.name: "primary" for m in METRICS[:4]}
    for seed in range(6):
        table = Analysis(METRICS, control="A", roles=roles).run(users(seed=seed, lift=0.1)).table
        null = np.where(table.metric == "guard", -5.0, 0.0)
        excludes = (table.adj_ci_low > null) | (table.adj_ci_high < null)
        assert (table.significant == excludes).all(), table[["metric", "p_adjusted"]]
        primary = table[(table.role == "primary") & (table.population == "exposed")]
        p_decision = primary.cuped_p_value.fillna(primary.p_value)
        assert primary.p_adjusted.to_numpy() == pytest.approx(
            multipletests(p_decision, method="holm")[1], **TOL)  # fmt: skip


def test_cuped_is_a_variance_reduction_of_its_metric_not_another_test():
    frame = users(n=20000)
    table = Analysis(METRICS[3:4], control="A").run(frame).table
    assert len(table) == 2  # one row per population, no CUPED twin
    row = table.iloc[0]
    exposed = frame[frame.exposed]
    a, b = (exposed[exposed.arm == k].revenue for k in ("A", "B"))
    assert row.p_value == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue, **TOL)
    # the adjusted lift is the arm coefficient of revenue ~ arm + pre_revenue (OLS, HC2 se)
    fit = smf.ols("revenue ~ C(arm) + pre_revenue", data=exposed).fit(cov_type="HC2")
    assert row.cuped_lift == pytest.approx(fit.params["C(arm)[T.B]"], rel=1e-9)
    se_plain = np.sqrt(a.var() / len(a) + b.var() / len(b))
    se_cuped = (row.cuped_ci_high - row.cuped_lift) / stats.t.isf(0.025, len(exposed) - 2)
    assert row.variance_reduction == pytest.approx(1 - se_cuped**2 / se_plain**2, rel=1e-3)
    assert row.variance_reduction > 0.3  # pre_revenue explains much of revenue here
    assert row.p_adjusted == pytest.approx(row.cuped_p_value, **TOL)  # the decision is CUPED's


def test_three_arms_dunnett_for_means_and_holm_for_the_rest():
    frame = users(arms=("A", "B", "C"), n=12000)
    metrics = (Proportion(name="vcr", column="converted"), Mean(name="rpv", column="revenue"))
    both = Analysis(metrics, control="A", roles={"vcr": "primary", "rpv": "primary"})
    table = both.run(frame).table.query("population == 'exposed'").set_index(["metric", "arm"])
    exposed = frame[frame.exposed]
    samples = [exposed[exposed.arm == k].revenue.to_numpy() for k in ("A", "B", "C")]
    dunnett = stats.dunnett(*samples[1:], control=samples[0], rng=np.random.default_rng(0))
    holm = multipletests(table.loc["vcr"].p_value, method="holm")[1]
    # two primary metrics: each metric's many-to-one adjustment, then Bonferroni x 2
    expected_rpv = np.minimum(2 * dunnett.pvalue, 1)
    assert table.loc["rpv"].p_adjusted.to_numpy() == pytest.approx(expected_rpv, rel=1e-3)
    assert table.loc["vcr"].p_adjusted.to_numpy() == pytest.approx(np.minimum(2 * holm, 1), **TOL)


def test_itt_rows_follow_the_exposed_ones_and_equal_an_all_users_analysis():
    frame = users()
    table = Analysis(METRICS, control="A").run(frame).table
    assert list(table.population) == ["exposed"] * 5 + ["itt"] * 5
    itt = Analysis(METRICS, control="A", population="all").run(frame).table
    assert list(itt.population) == ["itt"] * 5
    assert table[table.population == "itt"].p_value.to_numpy() == pytest.approx(
        itt.p_value.to_numpy(), **TOL)  # fmt: skip


@pytest.mark.parametrize("column", ["exposed", "arm"])
def test_blank_cells_stop_or_are_dropped_and_counted(column):
    frame = users().astype({"exposed": object, "arm": object})
    frame.loc[[3, 10, 11], column] = np.nan  # today a blank exposure reads as exposed
    with pytest.raises(ConfigError, match=f"column '{column}': 3 rows are blank"):
        Analysis(METRICS, control="A").run(frame)
    result = Analysis(METRICS, control="A", drop_missing=True).run(frame)
    assert any(f"dropped 3 rows with a blank '{column}'" in note for note in result.notes)
    clean = Analysis(METRICS, control="A").run(frame.drop(index=[3, 10, 11]))
    assert result.table.p_value.to_numpy() == pytest.approx(clean.table.p_value.to_numpy(), **TOL)


def test_small_counts_use_fisher_exact_and_say_so():
    frame = pd.DataFrame({"arm": ["A"] * 60 + ["B"] * 60, "exposed": True,
                          "converted": [1] * 1 + [0] * 59 + [1] * 6 + [0] * 54})  # fmt: skip
    result = Analysis((Proportion(name="vcr", column="converted"),), control="A").run(frame)
    row = result.table.iloc[0]
    fisher = stats.fisher_exact([[6, 54], [1, 59]])
    assert row.p_value == pytest.approx(fisher.pvalue, **TOL) and row.method == "fisher exact"
    assert any("Fisher's exact test" in note for note in result.notes)


def test_relative_lift_against_a_zero_control_is_undefined_with_its_reason():
    frame = pd.DataFrame({"arm": ["A"] * 60 + ["B"] * 60, "exposed": True,
                          "converted": [0] * 60 + [1] * 6 + [0] * 54})  # fmt: skip
    result = Analysis((Proportion(name="vcr", column="converted"),), control="A").run(frame)
    assert np.isnan(result.table.iloc[0].rel_lift)
    assert any("relative lift undefined (the control's value is 0)" in n for n in result.notes)


def test_an_undefined_ratio_is_never_significant():
    """No orders in treatment: AOV is 0/0 there; its p-value stays NaN (review finding)."""
    frame = users()
    frame.loc[frame.arm == "B", ["orders", "revenue"]] = 0
    table = Analysis(METRICS[2:3], control="A", roles={"aov": "primary"}).run(frame).table
    assert table.p_value.isna().all() and table.p_adjusted.isna().all()
    assert not table.significant.any()


def test_arms_of_equal_values_have_exactly_zero_variance():
    """Every user 3.7 in A, 4.1 in B: the one-pass sums must not leave a rounding variance."""
    frame = users()
    frame["revenue"] = np.where(frame.arm == "A", 3.7, 4.1)
    result = Analysis((Mean(name="rpv", column="revenue"),), control="A").run(frame)
    row = result.table.iloc[0]
    assert row.se == 0.0 and row.p_value == 0.0
    assert any("rpv (B, exposed): zero variance" in n for n in result.notes)


def test_dunnett_tests_the_metrics_own_null_under_a_margin():
    frame = users(arms=("A", "B", "C"), n=12000)
    metric = Mean(name="rpv", column="revenue", ni_margin=0.5)
    table = Analysis((metric,), control="A", roles={"rpv": "primary"}).run(frame).table
    table = table.query("population == 'exposed'").set_index("arm")
    exposed = frame[frame.exposed]
    a, b, c = (exposed[exposed.arm == k].revenue.to_numpy() for k in ("A", "B", "C"))
    shifted = stats.dunnett(b + 0.5, c + 0.5, control=a, alternative="greater",
                            rng=np.random.default_rng(0))  # fmt: skip
    assert table.p_adjusted.to_numpy() == pytest.approx(shifted.pvalue, rel=1e-3)
    assert (table.p_adjusted >= table.p_value * 0.999).all()  # adjusting never lowers p much


def test_a_ratio_with_few_events_says_its_approximation_is_unreliable():
    frame = users(n=600)
    frame.loc[(frame.arm == "B") & (frame.orders > 0), "orders"] = 0
    frame.loc[frame.arm == "B", "orders"] = np.where(np.arange((frame.arm == "B").sum()) < 3, 1, 0)
    result = Analysis(METRICS[1:2], control="A").run(frame)
    assert result.table.method.iloc[0] == "delta, few events"
    assert any("fewer than 5 events in an arm" in note for note in result.notes)


def test_sequential_looks_read_the_cuped_decision_where_a_covariate_is_set():
    from experiments.stats.sequential import sequential_looks

    frame = users(n=20000)
    analysis = Analysis(METRICS[3:4], control="A")
    looks = sequential_looks(analysis, [(0, frame)], "revenue_per_visitor", tau=1.0)
    row = analysis.run(frame).table.iloc[0]
    assert looks.abs_lift.iloc[0] == pytest.approx(row.cuped_lift, rel=1e-12)
