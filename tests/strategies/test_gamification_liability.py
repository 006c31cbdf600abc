"""Gamification books outstanding points as a liability: booked at award, released at redemption.

A point's expected cost is ``point_value * (1 - breakage)``. Redeemed points leave profit
through the discount (gross margin), so their liability is released then; what stays booked at
the end of a run is the expected cost of the points still outstanding.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.errors import ConfigError
from sim.hooks import Basket, Carts, Visits
from strategies import build_strategies

KIND = "gamification_points_liability"
SIZE = 40_000
M = 1000


def _liability(results):
    costs = results.costs
    return costs.loc[costs["kind"] == KIND, "amount"].to_numpy()


def test_booked_minus_released_is_the_cost_of_points_outstanding(store):
    # min_redeem $1 (default $5): redemptions happen in a 40,000-agent quarter whatever the draws
    results, world = store.run(size=SIZE, specs=[{"name": "gamification", "min_redeem": 1.0}])
    game = world.strategies[0]
    amounts = _liability(results)
    booked, released = amounts[amounts > 0].sum(), -amounts[amounts < 0].sum()
    assert booked > 0 and released > 0  # points were awarded and redeemed
    outstanding = game.points.sum()  # the only arm: every agent's balance
    expected = outstanding * game.config.point_value * (1 - game.config.breakage)
    # Sums of a few thousand float bookings: equal to rounding.
    assert booked - released == pytest.approx(expected, rel=1e-9)
    # Released = 70% of the points' value redeemed, which left through the orders' discounts.
    discount = results.orders.loc[results.orders["time"] >= 0, "discount"].sum()
    assert released == pytest.approx((1 - game.config.breakage) * discount, rel=1e-9)


def test_profit_falls_by_the_liability(store):
    """Booking changes no one's behaviour: profit falls by exactly the net liability."""
    on, _ = store.run(size=SIZE, specs=[{"name": "gamification"}])
    off, _ = store.run(size=SIZE, specs=[{"name": "gamification", "book_liability": False}])
    assert on.users.equals(off.users)
    assert len(_liability(off)) == 0
    k_on = store.kpis(size=SIZE, specs=[{"name": "gamification"}])
    k_off = store.kpis(size=SIZE, specs=[{"name": "gamification", "book_liability": False}])
    assert k_off["profit"] - k_on["profit"] == pytest.approx(_liability(on).sum(), rel=1e-9)
    assert k_on["gross_margin"] == k_off["gross_margin"]


def _cohorts(world, value):
    agent = np.arange(M)
    visits = Visits(
        agent=agent, time=np.full(M, 5.0), channel=np.zeros(M, np.int8),
        session_no=np.zeros(M, np.int64), recovered=np.zeros(M, bool),
        p_bounce=np.zeros(M), extra_pages=np.ones(M),
    )  # fmt: skip
    price = np.full(M, 40.0)
    basket = Basket(visit=agent, product=agent % world.catalog.size, quantity=np.ones(M, np.int32),
                    list_price=price, price=price.copy(), tag=np.zeros(M, np.int16))  # fmt: skip
    carts = Carts(agent=agent, time=np.full(M, 5.0), value=np.full(M, value),
                  items=np.ones(M, np.int32), visit=agent, order_id=agent)  # fmt: skip
    return visits, basket, carts


@pytest.mark.parametrize("breakage", [0.3, 0.0, 1.0])
def test_award_books_and_redemption_releases(store, breakage):
    world = store.world(size=M, specs=[{"name": "gamification", "breakage": breakage}])
    game = world.strategies[0]
    all_ = np.arange(M)
    visits, basket, carts = _cohorts(world, value=600.0)
    game.on_purchase(world, carts, all_)  # 600 points each, worth $6
    game.on_cart(world, visits, basket, all_)  # $6 of a $40 cart paid with points
    visits, _, carts = _cohorts(world, value=0.0)
    game.on_purchase(world, carts, all_)  # the order spends them
    assert np.all(game.points[:M] == 0)
    if breakage == 1.0:  # no point is expected to be redeemed: nothing to book
        assert world.ledger.kind == []
        return
    assert world.ledger.kind == [KIND, KIND]  # one booking per arm and event
    share = 1 - breakage
    assert world.ledger.amount == pytest.approx([M * 6.0 * share, -M * 6.0 * share])


@pytest.mark.parametrize(
    ("spec", "key"),
    [({"breakage": 1.2}, "breakage"), ({"book_liability": "yes"}, "book_liability")],
)
def test_bad_values_name_their_key(spec, key):
    with pytest.raises(ConfigError) as info:
        build_strategies([{"name": "gamification", **spec}], ["control"])
    assert info.value.key == f"strategy.gamification.{key}"
