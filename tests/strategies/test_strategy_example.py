"""A "write your own strategy" example: a welcome discount for first-time buyers.

The README's section on strategies shows this class. A strategy is a config dataclass (one
field per parameter, validated in ``check``) and a :class:`strategies.base.Strategy` subclass
that overrides the hooks it needs; it acts on behaviour (prices, propensities), never on KPIs,
and what it gives away or pays shows up in profit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from strategy_helpers import SEED, make_scenario, paired_lift, per_user

from sim.errors import ConfigError, check_number
from sim.world import World
from strategies import make_config
from strategies.base import Strategy, StrategyConfig


@dataclass
class WelcomeDiscountConfig(StrategyConfig):
    """Parameters (a conf/strategy/welcome_discount.yaml would hold the same fields)."""

    name: str = "welcome_discount"
    discount: float = 0.10  # off the first order's list prices
    purchase_lift: float = 0.15  # relative rise of the chance to complete a discounted checkout
    fee_per_1000_per_day: float = 0.05  # the pop-up tool's fee

    def check(self, key: str) -> None:
        super().check(key)
        check_number(self.discount, f"{key}.discount", ge=0, lt=1)
        check_number(self.purchase_lift, f"{key}.purchase_lift", ge=0)


class WelcomeDiscount(Strategy):
    """First-time buyers get ``discount`` off their cart and complete checkout more often."""

    name = "welcome_discount"
    config_class = WelcomeDiscountConfig

    def _newcomers(self, world, visits, sel):
        sel = self.live_sel(visits.time, sel)  # nothing before the launch day
        return sel[world.pop.n_orders[visits.agent[sel]] == 0]

    def on_cart(self, world, visits, basket, sel):
        mine = np.zeros(len(visits), dtype=bool)
        mine[self._newcomers(world, visits, sel)] = True
        lines = mine[basket.visit]
        basket.price[lines] = basket.list_price[lines] * (1 - self.config.discount)

    def on_checkout(self, world, visits, sel):
        sel = self._newcomers(world, visits, sel)
        visits.p_purchase[sel] *= 1 + self.config.purchase_lift


def _run(strategies):
    return World(make_scenario(100_000), SEED, strategies, events=False).run()


def test_welcome_discount_converts_newcomers_and_costs_margin():
    config = make_config(WelcomeDiscount, {"discount": 0.15}, "strategy.welcome_discount")
    with_, without = _run([WelcomeDiscount(config, arms=(0,))]), _run([])
    newcomers = (without.users["pre_orders"] == 0).to_numpy()
    w, o = per_user(with_)[newcomers], per_user(without)[newcomers]
    conversion, se = paired_lift(w, o, "orders", "sessions")
    assert conversion > 3 * se  # 3 paired standard errors (see test_strategy_effects)
    margin, margin_se = paired_lift(w, o, "margin", "revenue")
    assert margin < -3 * margin_se  # margin per dollar sold falls: the discount is paid
    assert with_.orders.loc[with_.orders["time"] >= 0, "discount"].sum() > 0
    fees = with_.costs.loc[with_.costs["kind"] == "welcome_discount_fee", "amount"].sum()
    assert fees == pytest.approx(0.05 * 100_000 / 1000 * make_scenario(1).days)


def test_welcome_discount_checks_its_config():
    with pytest.raises(ConfigError, match=r"^strategy.welcome_discount.discount: must be"):
        make_config(WelcomeDiscount, {"discount": 1.0}, "strategy.welcome_discount")
