"""As-of looks: tables as known on a day, a look rebuilt from the log, A/A rates and bias.

Monte Carlo bands: a rate over R independent replicates has SE sqrt(p (1 - p) / R); a mean
difference has SE sd / sqrt(R). Bands are written next to each assertion.
"""

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pytest
from test_experiments import config, design

from experiments import worlds
from experiments.looks import SequentialReplicate, look_days, users_as_of
from experiments.replicates import run_replicates
from experiments.run import run

CUT = 13  # the look rebuilt from the event log: data up to the end of day 13


def log_users(events, users: pd.DataFrame, day: float) -> pd.DataFrame:
    """The per-user counts the event log gives up to the end of ``day`` (no margin in the log)."""
    log = events.filter(pc.less(events["time"], day + 1)).to_pandas()
    n = len(users)
    sessions = log[log["event"] == "session_start"]
    bought = log[log["event"] == "purchase"]
    s = np.bincount(sessions["user_id"], minlength=n)
    first = sessions.groupby("user_id")["time"].min().apply(np.floor)
    return users.assign(
        sessions=s, exposed=s > 0,
        first_exposure_day=first.reindex(range(n)).to_numpy(),
        orders=np.bincount(bought["user_id"], minlength=n),
        items=np.bincount(bought["user_id"], weights=bought["quantity"], minlength=n),
        revenue=np.bincount(bought["user_id"], weights=bought["value"], minlength=n),
    )  # fmt: skip


def test_as_of_tables_match_the_event_log_and_end_at_the_per_user_table():
    """Day 13: every column the log carries agrees; the last day is the per-user table itself.

    Also: the sessions table holds only the window, the orders table the warm-up too (whose
    orders set first/last order days, as in the full table).
    """
    d = design("strategy=[bundles]", "scenario.warmup_days=30", truth=False)
    res = worlds.ab_world(d.scenario, 3, d.strategy, 0.5, "ab_test", events=True)
    assert (res.sessions["time"] >= 0).all() and (res.orders["time"] < 0).any()
    pd.testing.assert_frame_equal(users_as_of(res, d.scenario.days - 1), res.users)
    as_of, logged = users_as_of(res, CUT), log_users(res.events, res.users, CUT)
    for col in ("sessions", "orders", "items", "revenue", "first_exposure_day", "exposed"):
        np.testing.assert_allclose(as_of[col].astype(float), logged[col].astype(float),
                                   rtol=1e-12, err_msg=col)  # fmt: skip
    assert (as_of["orders"] < res.users["orders"]).any()  # later orders are not seen yet
    known = as_of["last_order_day"].dropna()
    assert (known < CUT + 1).all() and (as_of["pre_orders"] == res.users["pre_orders"]).all()


def test_a_look_in_sequential_csv_is_the_analysis_of_the_log_cut_at_its_day(tmp_path):
    """Run the CLI's A/B test; rebuild day 13's look from events.parquet; same numbers."""
    import pyarrow.parquet as pq

    from experiments.abtest import analysis_of

    cfg = config("experiment=ab_test", "strategy=[bundles]", "experiment.truth=false",
                 "target=q1_conversion", "target.deadline=2027-01-30",
                 "scenario.warmup_days=30")  # fmt: skip
    run(cfg, tmp_path)
    seq = pd.read_csv(tmp_path / "sequential.csv").set_index("day")
    assert list(seq.index) == look_days(30, 7) and seq["tau_source"].str.contains("planned").all()
    users = pd.read_parquet(tmp_path / "users.parquet")
    frame = log_users(pq.read_table(tmp_path / "events.parquet"), users, CUT)
    c = analysis_of(cfg, 0.5).only("conversion_rate").run(frame).comparisons
    (comparison,) = c.values()
    look = seq.loc[CUT]
    assert look["abs_lift"] == pytest.approx(float(comparison.abs_lift), rel=1e-9)
    assert look["se"] == pytest.approx(float(comparison.se), rel=1e-9)
    assert look["z"] == pytest.approx(float(comparison.abs_lift / comparison.se), rel=1e-9)
    assert look["n"] == frame["exposed"].sum()
    # tau = the target's +15% x the pre-period's conversion rate, fixed before the first look
    baseline = users["pre_orders"].sum() / users["pre_sessions"].sum()
    assert seq["tau"].to_numpy() == pytest.approx(0.15 * baseline)
    assert seq["tau_source"].str.contains("pre-period baseline").all()


AA_R = 200


@pytest.fixture(scope="module")
def aa_replicates(tmp_path_factory):
    """200 A/A tests in the busy small store: horizon rows (every metric) and as-of looks."""
    # A busy store (10x the visits) so that ratio metrics such as AOV have a few hundred orders
    # per arm, where their normal approximation holds; a 30-day warm-up is enough for A/A.
    aa = design("scenario.warmup_days=30", "scenario.traffic.visit_rate=0.04", truth=False)
    # The mSPRT's tau, planned before the test as an analyst would: 25% (about this small
    # store's MDE at 80% power) of the conversion rate of the warm-up, i.e. of past data.
    past = worlds.plain(aa.scenario, 1).users
    tau = 0.25 * past["pre_orders"].sum() / past["pre_sessions"].sum()
    task = SequentialReplicate(aa, ("conversion_rate",), tau=float(tau))
    folder = tmp_path_factory.mktemp("aa")
    return run_replicates(task, AA_R, 2024, folder, "processes", 2, progress=False)


def test_aa_test_rejects_at_about_alpha(aa_replicates):
    """Fixed horizon, every metric (the former test in test_experiments.py, same assertions)."""
    reps = aa_replicates[aa_replicates["kind"] == "horizon"]
    reps = reps[reps["population"] == "exposed"]  # the decision's rows (ITT rows follow them)
    rates = reps.assign(reject=reps["p_value"] < 0.05).groupby("metric")["reject"].mean()
    # each metric: SE sqrt(.05 * .95 / 200) = 0.0154; band 0.05 +- 3.5 SE = [0, 0.104]
    assert (rates <= 0.05 + 3.5 * np.sqrt(0.05 * 0.95 / AA_R)).all(), rates
    # pooled over the metrics the mean rate sits near alpha (they are correlated, so use the
    # single-metric SE): [0.05 - 3.5 SE, 0.05 + 3.5 SE]
    assert abs(rates.mean() - 0.05) < 3.5 * np.sqrt(0.05 * 0.95 / AA_R), rates


def test_aa_primary_metric_rejects_at_about_alpha_fixed_and_sequential(aa_replicates):
    """conversion_rate: fixed horizon, and as-of looks with O'Brien-Fleming and the mSPRT.

    Each rate inside 0.05 +- 3.5 SE, SE = sqrt(.05 * .95 / 200) = 0.0154: [0, 0.104]. The
    naive daily peek is printed beside them (it inflates the rate; 5 looks, about 0.1).
    """
    reps = aa_replicates
    horizon = reps[(reps["kind"] == "horizon") & (reps["metric"] == "conversion_rate")
                   & (reps["population"] == "exposed")]  # fmt: skip
    looks = reps[reps["kind"] == "look"].groupby("replicate")
    rates = {"fixed": (horizon["p_value"] < 0.05).mean()} | {
        rule: looks[f"{rule}_reject"].max().mean() for rule in ("obf", "msprt", "naive")
    }
    print("A/A rejection rates, conversion_rate, 200 replicates:", rates)
    band = 3.5 * np.sqrt(0.05 * 0.95 / AA_R)
    for rule in ("fixed", "obf", "msprt"):
        assert abs(rates[rule] - 0.05) <= band, rates
    assert looks.size().eq(len(look_days(30, 7))).all()


BIAS_R = 30
BIAS_METRICS = ("items_per_order", "revenue_per_visitor")


def test_estimates_at_each_look_are_unbiased_for_the_truth_as_of_that_day(tmp_path):
    """Bundles: each look's lift minus the truth cut at its day, mean over 30 replicates.

    |mean| <= 3.5 MC SE (SE = sd of the differences / sqrt(30)) at every look of both metrics.
    The truth of revenue per visitor grows with the days (orders accumulate), so reading
    whole-window totals at early looks (the old stand-in) overstates it there.
    """
    d = design("strategy=[bundles]", "scenario.warmup_days=30", "scenario.traffic.visit_rate=0.04")
    task = SequentialReplicate(d, BIAS_METRICS)
    reps = run_replicates(task, BIAS_R, 7, tmp_path, "processes", 2, progress=False)
    looks = reps[reps["kind"] == "look"].assign(err=lambda t: t["abs_lift"] - t["true_abs_lift"])
    summary = looks.groupby(["metric", "day"])["err"].agg(["mean", "std"])
    summary["mc_se"] = summary["std"] / np.sqrt(BIAS_R)
    truth = looks.groupby(["metric", "day"])["true_abs_lift"].mean()
    print("bias per look vs truth as of the day:\n", summary.assign(truth=truth))
    assert (summary["mean"].abs() <= 3.5 * summary["mc_se"]).all(), summary
    assert truth.loc["revenue_per_visitor"].is_monotonic_increasing  # revenue accumulates


def test_a_target_with_an_earlier_deadline_is_judged_on_what_was_known_by_then():
    """Deadline day 13 of 30: the verdict reads the table as of day 13, and so does its truth."""
    import dataclasses
    import datetime as dt

    from experiments.abtest import run_once
    from experiments.looks import truth_as_of
    from experiments.stats.targets import SmartTarget

    d = design("strategy=[bundles]", "scenario.warmup_days=30", truth=True)
    deadline = d.scenario.start + dt.timedelta(days=CUT)
    d = dataclasses.replace(d, target=SmartTarget("items_per_order", 0.1, deadline=deadline))
    outcome = run_once(d, 5)
    as_of = users_as_of(outcome.results, CUT)
    assert outcome.smart["n_by_arm"] == {arm: int(n) for arm, n in as_of[as_of.exposed].groupby(
        "arm", observed=True).size().items()}  # fmt: skip
    (r,) = outcome.smart["results"]
    expected = d.analysis.only("items_per_order").run(as_of).comparisons
    assert r["estimate"] == pytest.approx(float(next(iter(expected.values())).rel_lift))
    truth = truth_as_of(d, 5, [CUT], ["items_per_order"]).iloc[0]
    assert r["assumed_from"] == "truth"
    assert r["assumed_lift"] == pytest.approx(truth.all_treated / truth.none_treated - 1)
