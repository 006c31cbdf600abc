"""``experiment=budget``: response curves on common random numbers and the best split."""

import numpy as np
import pandas as pd
import pytest
from sim_helpers import scenario
from test_run_cli import assert_invalid, assert_rejected, run_cli

from experiments import budget


def test_the_curve_fit_recovers_a_saturating_curve():
    x = np.array([0.0, 500.0, 1000.0, 2000.0, 4000.0])
    a, b = budget.fit_curve(x, budget.saturating(x, 3000.0, 1500.0))
    assert (a, b) == pytest.approx((3000.0, 1500.0), rel=1e-4)


def test_the_best_split_equalises_marginal_returns():
    """Two channels with known curves: at the optimum (both spends inside the bounds) the
    marginal margins a / b exp(-x / b) are equal and the spends add up to the total."""
    rows = []
    for channel, (a, b) in {"one": (4000.0, 1000.0), "two": (9000.0, 3000.0)}.items():
        for scale in (0.0, 0.5, 1.0, 2.0, 4.0):
            x = 1000.0 * scale
            rows.append({"channel": channel, "budget_scale": scale, "spend": x,
                         "margin_gain": float(budget.saturating(x, a, b))})  # fmt: skip
    split = budget.best_split(pd.DataFrame(rows)).set_index("channel")
    x1, x2 = split.loc["one", "spend_optimal"], split.loc["two", "spend_optimal"]
    assert x1 + x2 == pytest.approx(2000.0, rel=1e-6)
    # noise-free points: every redrawn refit lands on the same optimum
    assert split["spend_optimal_low"].to_numpy() == pytest.approx(split["spend_optimal"], rel=1e-3)
    assert split["spend_optimal_high"].to_numpy() == pytest.approx(split["spend_optimal"], rel=1e-3)
    assert 4000 / 1000 * np.exp(-x1 / 1000) == pytest.approx(9000 / 3000 * np.exp(-x2 / 3000),
                                                              rel=1e-3)  # fmt: skip


@pytest.fixture(scope="module")
def small_store():
    """20,000 agents, 30 days: search and display at 0, 1 and 3 times their budget (~4 s)."""
    sc = scenario("scenario.population.size=20000", "scenario.days=30")
    return budget.curves(sc, 4, ["paid_search", "display"], [0.0, 1.0, 3.0])


def test_spend_follows_the_budget_and_gains_start_at_zero(small_store):
    for channel, g in small_store.groupby("channel"):
        g = g.set_index("budget_scale")
        assert g.loc[0.0, "spend"] == 0 and g.loc[0.0, "margin_gain"] == 0, channel
        # the window's impressions (and so spend) are the budget's, times the multiplier
        assert g.loc[3.0, "spend"] == pytest.approx(3 * g.loc[1.0, "spend"], rel=1e-9), channel
    # more budget, more margin: search at 3x against 1x by more than 3 paired SEs of the 3x
    # gain (display, a fifth of the spend, is within its noise at this size)
    g = small_store[small_store["channel"] == "paid_search"].set_index("budget_scale")
    assert g.loc[3.0, "margin_gain"] - g.loc[1.0, "margin_gain"] > 3 * g.loc[3.0, "margin_gain_se"]


def test_the_command_writes_curves_split_and_figure(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("experiment=budget", "scenario.population.size=5000", "scenario.days=30",
                   "experiment.budget_scales=[0,1,2]", "experiment.channels=[display]",
                   "progress=false", f"hydra.run.dir={out}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "best split" in proc.stdout
    assert list(pd.read_csv(out / "budget.csv").columns) == budget.COLUMNS
    split = pd.read_csv(out / "budget_split.csv")
    assert list(split.columns) == budget.SPLIT_COLUMNS
    assert (split["spend_optimal_low"] <= split["spend_optimal"] + 1e-6).all()
    assert (split["spend_optimal"] <= split["spend_optimal_high"] + 1e-6).all()
    assert {"budget.png", "report.html", "run.json"} <= {p.name for p in out.iterdir()}


BAD = [  # overrides after experiment=budget, the key the message must name, what is allowed
    (["experiment.channels=[tv]"], "experiment.channels[0]", "one of display, paid_search"),
    (["experiment.budget_scales=[1,-1]"], "experiment.budget_scales[1]", ">= 0"),
    (["experiment.total_scale=0"], "experiment.total_scale", "> 0"),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "key", "allowed"), BAD, ids=[b[1] for b in BAD])
def test_bad_input_is_refused_naming_the_key(overrides, key, allowed):
    assert_invalid("experiment=budget", *overrides, key=key, allowed=allowed)


def test_bad_input_on_the_command_line_is_one_line_and_exit_2(tmp_path):
    overrides, key, allowed = BAD[0]
    assert_rejected(tmp_path, "experiment=budget", *overrides, key=key, allowed=allowed)
