"""``experiment=incrementality``: channel holdouts on common random numbers beside last click."""

import json

import numpy as np
import pandas as pd
import pytest
from sim_helpers import scenario
from test_run_cli import assert_rejected, run_cli

from experiments import incrementality
from sim.world import World


@pytest.fixture(scope="module")
def default_store():
    """The default store at 150,000 agents, seed 42, and its five holdouts: ~7 s."""
    return incrementality.evaluate(scenario("scenario.population.size=150000"), seed=42)


def test_a_holdout_starts_at_day_0_and_buys_nothing_after():
    sc = scenario("scenario.population.size=20000")
    on = World(sc, 5, events=False).run()
    off = World(sc, 5, events=False, off=("paid_search", "email")).run()
    pre = ["pre_sessions", "pre_orders", "pre_revenue"]
    pd.testing.assert_frame_equal(on.users[pre], off.users[pre])  # the same past and warm-up
    costs = off.costs[off.costs["day"] >= 0]
    assert costs.loc[costs["kind"].isin(["ad_paid_search", "email"]), "amount"].sum() == 0
    window = off.sessions[off.sessions["time"] >= 0]
    assert not window["channel"].isin(["paid_search", "email"]).any()
    assert on.sessions.loc[on.sessions["time"] >= 0, "channel"].isin(["paid_search"]).any()


def test_last_click_credits_the_latest_click_within_seven_days():
    s = pd.DataFrame({
        "user_id": [1, 1, 1, 2, 2, 3, 3],
        "time": [1.0, 2.0, 3.0, 1.0, 9.5, 4.0, 4.5],
        "channel": ["paid_search", "email", "direct", "display", "organic_search", "sms",
                    "paid_social"],
        "purchased": [False, False, True, False, True, False, True],
        "revenue": [0.0, 0.0, 100.0, 0.0, 50.0, 0.0, 20.0],
    })  # fmt: skip
    s["channel"] = pd.Categorical(s["channel"])
    # user 1: the e-mail (a day before) beats the older ad; user 2: the display click is 8.5
    # days old, so nobody; user 3: the order's own session came from a social ad
    expected = {"paid_search": 0.0, "paid_social": 20.0, "display": 0.0, "email": 100.0,
                "sms": 0.0, "retargeting": 0.0}  # fmt: skip
    assert incrementality.last_click(s).to_dict() == expected
    # a visit a reminder brought is a retargeting click, whatever channel carried it
    s["recovered"] = [False, False, False, False, False, False, True]
    expected = {**expected, "paid_social": 0.0, "retargeting": 20.0}
    assert incrementality.last_click(s).to_dict() == expected


def test_the_table_adds_up(default_store):
    t = default_store.set_index("channel")
    assert list(t.index) == list(incrementality.CHANNELS)
    assert (t["spend"] > 0).all()
    np.testing.assert_allclose(t["attributed_roas"], t["attributed_revenue"] / t["spend"])
    np.testing.assert_allclose(t["incremental_roas"], t["incremental_revenue"] / t["spend"])
    # every channel adds revenue: each incremental revenue is > 3 of its paired SEs
    assert (t["incremental_revenue"] > 3 * t["incremental_revenue_se"]).all(), t


def test_paid_search_adds_less_than_last_click_credits_it(default_store):
    """Blake, Nosko & Tadelis (2015): branded search's incremental return is far below its
    attributed one. Here branded searchers click the store's ad instead of its organic result
    (``brand_capture``): last click credits those visits, switching search off loses none of
    them. Measured at seed 42 (attributed vs incremental +- paired SE) before planned cart
    returns and fading awareness: 2.72 vs 2.41 +- 0.19 at 50,000 agents, 2.50 vs 1.93 +- 0.09 at
    150,000; with them, 2.98 vs 2.46 +- 0.11 at 150,000 (~5 SEs; under 3 at 50,000, too few
    agents for this test); with the past trading at the engine's pace, 3.09 vs 2.44 +- 0.11
    (~6 SEs); with customers leaving the market and ad clicks following activity, 2.57 vs
    2.17 +- 0.11 (3.7 SEs); with shoppers who differ as real ones do (the store since
    2026-12-03), 2.19 vs 1.53 +- 0.10 (6.9 SEs). The gap must exceed 3 paired SEs of the
    incremental ROAS."""
    row = default_store.set_index("channel").loc["paid_search"]
    gap = row["attributed_roas"] - row["incremental_roas"]
    assert gap > 3 * row["incremental_roas_se"], row.to_dict()


def test_the_command_writes_the_table_figure_and_report(tmp_path):
    """With retargeting on (as a user would run it), its flows get a row too (10,000 agents:
    at 5,000 no reminded cart came back in 30 days, at seed 0)."""
    out = tmp_path / "run"
    proc = run_cli("experiment=incrementality", "strategy=[retargeting]",
                   "scenario.population.size=10000", "scenario.days=30", "progress=false",
                   f"hydra.run.dir={out}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "incr. ROAS" in proc.stdout
    table = pd.read_csv(out / "incrementality.csv")
    assert list(table.columns) == incrementality.COLUMNS
    row = table.set_index("channel").loc["retargeting"]
    assert row["spend"] > 0 and row["attributed_revenue"] > 0, row.to_dict()
    names = {p.name for p in out.iterdir()}
    assert {"incrementality.png", "mmm.csv", "mmm_truth.json", "report.html", "report.md",
            "run.json"} <= names  # fmt: skip
    truth = json.loads((out / "mmm_truth.json").read_text())
    for _, r in table.iterrows():
        assert truth[r["channel"]]["incremental_revenue"] == pytest.approx(
            r["incremental_revenue"], rel=1e-9
        )
    mmm = pd.read_csv(out / "mmm.csv")
    assert len(mmm) == 30 and {"date", "revenue", "orders", "weekday", "holiday",
                               "promotion", "paid_search_spend"} <= set(mmm.columns)  # fmt: skip


def test_a_strategy_on_an_arm_the_experiment_lacks_exits_2(tmp_path):
    assert_rejected(tmp_path, "experiment=incrementality", "strategy=[bundles]",
                    "strategy.bundles.arms=[treatment]", key="strategy.bundles.arms",
                    allowed="one of all")  # fmt: skip


def test_budget_walks_vary_around_the_budget():
    walks = incrementality.budget_walks(seed=3, days=20_000, sd=0.3, corr=0.85)
    for name, m in walks.items():
        x = np.log(m)
        # 20,000 days of an AR(1) with corr 0.85: ~1,600 independent days, so the SD of log is
        # within ~2% of 0.3 (SE 0.3 / sqrt(2 x 1,600)), the lag-1 correlation within ~0.01
        assert x.std() == pytest.approx(0.3, rel=0.06), name
        assert np.corrcoef(x[1:], x[:-1])[0, 1] == pytest.approx(0.85, abs=0.02), name
        assert m.mean() == pytest.approx(1.0, abs=0.04), name  # mean 1 by construction
    flat = incrementality.budget_walks(seed=3, days=30, sd=0.0, corr=0.85)
    assert all((m == 1).all() for m in flat.values())


@pytest.fixture(scope="module")
def flighted():
    """A 20,000-agent store with flighted budgets and its display holdout."""
    sc = scenario("scenario.population.size=20000")
    budgets = incrementality.budget_walks(seed=8, days=sc.days, sd=0.3, corr=0.85)
    keep = {}
    table = incrementality.evaluate(sc, 8, channels=("display",), budgets=budgets, keep=keep)
    return sc, budgets, table, keep["on"]


def test_the_mmm_table_adds_up_to_the_run(flighted):
    sc, _, table, on = flighted
    mmm = incrementality.mmm_table(on)
    assert len(mmm) == sc.days and mmm["date"].iloc[0] == str(sc.start)
    window = on.orders[on.orders["time"] >= 0]
    assert mmm["revenue"].sum() == pytest.approx(window["revenue"].sum(), rel=1e-12)
    assert mmm["orders"].sum() == len(window)
    costs = on.costs[on.costs["day"] >= 0]
    sessions = on.sessions[on.sessions["time"] >= 0]
    for name in ("paid_search", "paid_social", "display"):
        spend = costs.loc[costs["kind"] == f"ad_{name}", "amount"].sum()
        assert mmm[f"{name}_spend"].sum() == pytest.approx(spend, rel=1e-12)
        assert mmm[f"{name}_clicks"].sum() == (sessions["channel"] == name).sum()
        # flighted: the daily spend moves by tens of percent around its mean (SD 0.3 in logs)
        assert mmm[f"{name}_spend"].std() / mmm[f"{name}_spend"].mean() > 0.15, name
    assert table.set_index("channel").loc["display", "spend"] == pytest.approx(
        mmm["display_spend"].sum(), rel=1e-12
    )


def test_the_truth_is_the_channel_off_difference(flighted):
    sc, budgets, table, on = flighted
    off = World(sc, 8, (), arm_names=("all",), events=False, off=("display",),
                budget_multipliers=budgets).run()  # fmt: skip
    truth = incrementality.truth(table)["display"]
    expected = on.users["revenue"].sum() - off.users["revenue"].sum()
    assert truth["incremental_revenue"] == pytest.approx(expected, rel=1e-12)
    assert truth["incremental_roas"] == pytest.approx(expected / truth["spend"], rel=1e-12)


def test_attribution_models_split_an_order_as_defined():
    """User 1's order at day 10 ($100): touches a search click (6 days before), an e-mail click
    (1 day) and a display view (half a day); a social view 2 days before (views count 1 day)
    and an SMS click 8 days before (clicks count 7) are out. User 3's order at day 5 ($40): a
    social click and a display view. User 2's order has no touch."""
    sessions = pd.DataFrame({
        "user_id": [1, 2, 3], "time": [10.0, 3.0, 5.0], "purchased": [True, True, True],
        "revenue": [100.0, 70.0, 40.0],
    })  # fmt: skip
    touches = pd.DataFrame({
        "user_id": [1, 1, 1, 1, 1, 3, 3],
        "time": [4.0, 9.0, 9.5, 8.0, 2.0, 4.5, 4.9],
        "channel": ["paid_search", "email", "display", "paid_social", "sms", "paid_social",
                    "display"],
        "click": [True, True, False, False, True, True, False],
    })  # fmt: skip
    out = incrementality.multi_touch(sessions, touches)
    assert (
        out.loc["paid_search", "first_click"] == 100 and out.loc["paid_social", "first_click"] == 40
    )
    assert out["first_click"].sum() == 140  # user 2's order goes to nobody
    assert out.loc["paid_search", "linear"] == pytest.approx(100 / 3)
    assert out.loc["display", "linear"] == pytest.approx(100 / 3 + 20)
    assert out.loc["paid_search", "position_based"] == pytest.approx(40)  # first of three
    assert out.loc["email", "position_based"] == pytest.approx(20)  # the middle one
    assert out.loc["display", "position_based"] == pytest.approx(40 + 20)  # last; half of two
    w = 2.0 ** (-np.array([6.0, 1.0, 0.5]) / incrementality.HALF_LIFE)
    assert out.loc["email", "time_decay"] == pytest.approx(100 * w[1] / w.sum())
    assert out.loc[["sms", "retargeting"]].to_numpy().sum() == 0
    for model in ("linear", "position_based", "time_decay"):  # every touched order, in full
        assert out[model].sum() == pytest.approx(140)


def test_view_through_credits_display(default_store):
    """Display's impressions reach people who buy anyway: every model with view-through credits
    it more than last click does (150,000 agents, seed 42: linear 83,828, last click 37,570,
    truth 38,292 +- 3,458)."""
    t = default_store.set_index("channel")
    for model in ("linear", "position_based", "time_decay"):
        assert (
            t.loc["display", f"attributed_revenue_{model}"]
            > 1.5 * t.loc["display", "attributed_revenue"]
        )
    totals = [
        t[f"attributed_revenue_{m}"].sum() for m in ("linear", "position_based", "time_decay")
    ]
    np.testing.assert_allclose(totals, totals[0], rtol=1e-9)  # each touched order, in full


def test_recording_impressions_changes_nothing_else():
    # everyone in the market from the start: an impression on a newcomer before it enters is
    # paid for but not recorded as a view (README, "A store with a past")
    sc = scenario("scenario.population.size=20000", "scenario.population.newcomers=0")
    plain = World(sc, 5, events=False).run()
    seen = World(sc, 5, events=False, touches=True).run()
    pd.testing.assert_frame_equal(plain.sessions, seen.sessions)
    pd.testing.assert_frame_equal(plain.orders, seen.orders)
    assert plain.views is None and len(seen.views) > 0
    v = seen.views
    assert v["time"].min() >= -8 and set(v["channel"].astype(str)) == {
        "paid_search",
        "paid_social",
        "display",
    }
    # a window day's impressions per channel: the day's Poisson count around the booked ones
    imp = seen.impressions.groupby(seen.impressions["channel"].astype(str), observed=True)
    booked = imp["impressions"].sum()
    drawn = v[v["time"] >= 0].groupby(v["channel"].astype(str), observed=True).size()
    for channel, n in booked.items():  # >= 100,000 each: Poisson SD < 0.3%
        assert drawn[channel] == pytest.approx(n, rel=0.01), channel


def test_retargeting_adds_less_than_last_click_credits_it():
    """The published direction (Johnson, Lewis & Nubbemeyer 2017): reminders are credited with
    orders that would have come anyway (shoppers who meant to come back for the cart take the
    reminder's link back). 200,000 agents, seed 42, measured: 115,907 attributed, 90,841 +- 5,389
    incremental (a gap of 4.7 paired SEs; 113,830 and 88,282 +- 4,862 before customers left the
    market). Asserted: the
    gap beyond 3 paired SEs (the attributed figure is the on world's own, no noise of its own
    against the off world)."""
    table = incrementality.evaluate(scenario("scenario.population.size=200000"), seed=42,
                                    strategy={"retargeting": {"name": "retargeting"}},
                                    channels=())  # fmt: skip
    row = table.set_index("channel").loc["retargeting"]
    gap = row["attributed_revenue"] - row["incremental_revenue"]
    assert gap > 3 * row["incremental_revenue_se"], row.to_dict()


def test_without_planned_returns_reminders_are_about_as_incremental_as_credited():
    """The mechanism, not a tuned gap: with funnel.come_back 0 nobody was coming back anyway,
    and the gap closes (100,000 agents, seed 42, measured: 32,385 attributed, 32,645 +- 3,130
    incremental): within 2 paired SEs."""
    table = incrementality.evaluate(
        scenario("scenario.population.size=100000", "scenario.funnel.come_back=0"), seed=42,
        strategy={"retargeting": {"name": "retargeting"}}, channels=(),
    )  # fmt: skip
    row = table.set_index("channel").loc["retargeting"]
    gap = row["attributed_revenue"] - row["incremental_revenue"]
    assert abs(gap) < 2 * row["incremental_revenue_se"], row.to_dict()


def test_the_preset_switches_retargeting_on_and_strategy_off_switches_it_off():
    from experiments.cli import compose_config
    from experiments.config import register

    register()
    assert list(compose_config("config", ["experiment=incrementality"]).strategy) == ["retargeting"]
    off = compose_config("config", ["experiment=incrementality", "strategy=[]"])
    assert list(off.strategy) == [] and off.experiment.budget_sd == 0.3
    assert list(compose_config("config", []).strategy) == []  # only this experiment's preset
