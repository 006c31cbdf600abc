"""Order economics: shipping fee and free-shipping threshold, carrier costs, returns, profit.

Known answers where the engine books money (ledger totals equal the tables' sums), Monte Carlo
tolerances where shoppers decide (stated next to each assertion; ``Z`` standard errors make a
false alarm about once in 16,000 per assertion).
"""

import numpy as np
import pandas as pd
import pytest
from sim_helpers import run_world, scenario

from sim.aggregate import facts_of, kpi_table
from sim.errors import ConfigError
from sim.hooks import Hooks
from sim.world import World

Z = 4.0
DEFAULT = "scenario.population.size=100000"  # the calibration test's run (cached per worker)
SMALL = "scenario.population.size=30000"


def test_order_values_bunch_just_above_the_threshold():
    """More orders in the topup_gap above the threshold than in the topup_gap below it.

    Counts in two adjacent windows are (nearly) independent Poisson counts, so the SE of their
    difference is sqrt(above + below). Without the threshold's pull the two would be close
    (the order-value density is flat there); with it above is about twice below.
    """
    r = run_world(DEFAULT, events=False)
    o = r.orders[r.orders["time"] >= 0]
    t, gap = r.scenario.shipping.free_threshold, r.scenario.shipping.topup_gap
    v = o["revenue"].to_numpy()
    below = int(((v >= t - gap) & (v < t)).sum())
    above = int(((v >= t) & (v < t + gap)).sum())
    assert above - below > Z * np.sqrt(above + below), (above, below)
    # known answers: the fee is paid exactly below the threshold, by orders the engine placed
    engine = o["category"] >= 0
    fee = np.where(v < t, r.scenario.shipping.fee, 0.0)
    np.testing.assert_array_equal(o.loc[engine, "shipping"], fee[engine.to_numpy()])
    s = r.sessions
    assert s["shipping"].sum() == pytest.approx(o["shipping"].sum(), rel=1e-12)


def _abandonment(sessions: pd.DataFrame, threshold: float, below: bool) -> tuple[float, float]:
    """Cart abandonment of carts below (or from) the threshold and its binomial SE.

    Carts are the units (an agent rarely has two carts in a window: the clustering is small).
    """
    carts = sessions[sessions["carted"]]
    side = carts["cart_value"] < threshold
    bought = carts.loc[side if below else ~side, "purchased"].to_numpy(float)
    rate = 1 - bought.mean()
    return rate, np.sqrt(rate * (1 - rate) / len(bought))


def test_a_shipping_fee_raises_abandonment_below_the_threshold():
    """With the fee, carts below the threshold are abandoned more than with free shipping.

    Baymard: extra costs are the top reason for abandonment. Carts from the threshold on pay
    nothing either way; the difference of differences removes what else the fee changes (top-ups
    move some carts above). SEs of independent binomial rates, combined in quadrature.
    """
    fee = run_world(DEFAULT, events=False).sessions
    free = run_world(DEFAULT, "scenario.shipping.fee=0", events=False).sessions
    t = 75.0
    (b1, sb1), (a1, sa1) = _abandonment(fee, t, True), _abandonment(fee, t, False)
    (b0, sb0), (a0, sa0) = _abandonment(free, t, True), _abandonment(free, t, False)
    assert b1 - b0 > Z * np.hypot(sb1, sb0), (b1, b0)
    assert (b1 - a1) - (b0 - a0) > Z * np.sqrt(sb1**2 + sa1**2 + sb0**2 + sa0**2)
    assert (free["shipping"] == 0).all()


def test_carrier_costs_and_fees_are_booked():
    """Known answers: carrier cost per window order (ledger "shipping"); fees as income."""
    r = run_world(DEFAULT, events=False)
    o = r.orders[r.orders["time"] >= 0]
    booked = r.costs.groupby("kind")["amount"].sum()
    assert booked["shipping"] == pytest.approx(len(o) * r.scenario.shipping.cost_per_order)
    assert -booked["shipping_fee"] == pytest.approx(o["shipping"].sum(), rel=1e-9)


def test_returns_by_category_follow_the_rates():
    """Each category's returned share matches its orders' mean return chance.

    An order's chance is the value-weighted mean of its lines' category rates, so a one-line
    order's chance is its category's rate exactly. Orders placed 10+ days before the end have
    all been delivered. SE of a share of independent Bernoulli draws: sqrt(sum p (1 - p)) / n.
    """
    r = run_world(DEFAULT, events=False)
    rates = np.asarray(r.scenario.returns.rate_by_category)
    assert rates.mean() == pytest.approx(0.176, abs=1e-3)  # NRF & Appriss: 17.6% of online sales
    o = r.orders[(r.orders["category"] >= 0) & (r.orders["time"] < r.scenario.days - 10)]
    one_line = o[o["items"] == 1]
    np.testing.assert_allclose(one_line["p_return"], rates[one_line["category"]], rtol=1e-12)
    by_cat = o.groupby("category").agg(
        n=("returned", "size"), returned=("returned", "mean"), p=("p_return", "mean"),
        var=("p_return", lambda p: (p * (1 - p)).sum()),
    )  # fmt: skip
    se = np.sqrt(by_cat["var"]) / by_cat["n"]
    assert (np.abs(by_cat["returned"] - by_cat["p"]) < Z * se).all(), by_cat
    assert np.corrcoef(by_cat["returned"], rates[by_cat.index])[0, 1] > 0.8
    # every return is in the returns table, once, with its refund = the order's value
    ret = r.returns.set_index("order_id")
    assert ret.index.is_unique
    assert set(ret.index) == set(r.orders.loc[r.orders["returned"], "order_id"])
    paid = r.orders.set_index("order_id").loc[ret.index, "revenue"]
    np.testing.assert_allclose(ret["refund"], paid, rtol=1e-12)


def test_profit_falls_by_the_returns_cost():
    """With returns that do not touch satisfaction, the only difference is their cost.

    Returns are drawn at delivery from their own keyed numbers and, with satisfaction_drop 0,
    change nothing an agent does, so the two worlds are the same store but for the refunds and
    handling: profit falls by exactly the "returns" ledger total (a known answer).
    """
    calm = "scenario.returns.satisfaction_drop=0"
    none = "scenario.returns.rate_by_category=[0,0,0,0,0,0,0,0]"
    with_ = run_world(SMALL, calm, events=False)
    without = run_world(SMALL, calm, none, events=False)
    pd.testing.assert_frame_equal(
        with_.orders.drop(columns=["returned", "p_return"]),
        without.orders.drop(columns=["returned", "p_return"]),
    )
    cost = with_.costs.loc[with_.costs["kind"] == "returns", "amount"].sum()
    window = with_.returns[with_.returns["time"] >= 0]
    assert cost == pytest.approx((window["margin_lost"] + window["cost"]).sum(), rel=1e-12)
    assert cost > 0 and len(without.returns) == 0
    profit = [kpi_table(facts_of(r), []).iloc[0]["profit"] for r in (with_, without)]
    assert profit[1] - profit[0] == pytest.approx(cost, rel=1e-9)


class NoReturns(Hooks):
    """A strategy that makes its arm's orders unreturnable (sets ``p_return`` in on_purchase)."""

    def on_purchase(self, world, carts, sel):
        carts.p_return[sel] = 0.0


def test_a_strategy_can_lower_the_return_chance():
    """p_return is set before on_purchase and the return is drawn from it at delivery."""
    sc = scenario(SMALL)
    r = World(sc, 7, strategies=[NoReturns(arms=(0,))], events=False).run()
    assert len(r.returns[r.returns["time"] >= 1]) == 0  # orders from day 0 on are the hook's
    assert (r.orders.loc[r.orders["category"] >= 0, "p_return"] == 0).all()


def test_order_value_figure(tmp_path):
    from experiments.figures import order_value_figure

    r = run_world(DEFAULT, events=False)
    path = tmp_path / "order_values.png"
    order_value_figure(r.orders[r.orders["time"] >= 0], 75.0, path)
    assert path.stat().st_size > 10_000


@pytest.mark.parametrize(
    "override, key",
    [
        ("scenario.returns.rate_by_category=[0.1,0.2]", "scenario.returns.rate_by_category"),
        (
            "scenario.returns.rate_by_category=[0.1,1.2,0.1,0.1,0.1,0.1,0.1,0.1]",
            r"scenario.returns.rate_by_category\[1\]",
        ),
        ("scenario.returns.salvage_share=1.5", "scenario.returns.salvage_share"),
        ("scenario.shipping.fee=-1", "scenario.shipping.fee"),
        ("scenario.shipping.topup_rate=2", "scenario.shipping.topup_rate"),
    ],
)
def test_bad_economics_config_names_its_key(override, key):
    with pytest.raises(ConfigError, match=key):
        scenario(override)
