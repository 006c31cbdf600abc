"""Win-back e-mails: who gets them and when, what they cost, and what the incentive does.

Mechanism tests use a small unrun world and set the population's state by hand; the run test
compares worlds at the same seed (common random numbers, strategy_helpers).
"""

from __future__ import annotations

import numpy as np
import pytest
from strategy_helpers import paired_lift, per_user

from sim.errors import ConfigError
from sim.hooks import Basket, Carts, Visits
from strategies import build_strategies

M = 4000  # agents of the small world
ALL = np.arange(M)
Z = 3.0  # standard errors for "outside Monte Carlo noise" (as test_strategy_effects)


def _world(store, **params):
    world = store.world(size=M, specs=[{"name": "win_back", **params}])
    return world, world.strategies[0]


def _customers(world, day=100.0):
    """Everyone subscribed; a quarter never ordered, a quarter ordered 10 days ago, a quarter
    ordered 10 days ago but lapsed (the engine's flag), a quarter ordered 120 days ago."""
    pop = world.pop
    group = ALL % 4
    pop.email_ok[:M] = True
    pop.n_orders[:M] = np.where(group == 0, 0, 2)
    pop.last_order[:M] = np.select([group == 0, group == 3], [-np.inf, day - 120], day - 10)
    pop.lapsed[:M] = group == 2
    return group


def _sends(world):
    return [a for k, a in zip(world.ledger.kind, world.ledger.amount, strict=True)
            if k == "win_back_email"]  # fmt: skip


def test_lapsed_subscribed_customers_on_the_calendar_with_a_cooldown(store):
    world, wb = _world(store, start_day=100, every_days=7, cooldown_days=35)
    group = _customers(world)
    world.pop.email_ok[:M:8] = False  # unsubscribed: never e-mailed
    wb.on_day_start(world, 100, ALL)
    sent = wb.received[:M] > 0
    expected = np.isin(group, [2, 3]) & (ALL % 8 != 0)  # lapsed (flag or 120 days), subscribed
    assert np.array_equal(sent, expected)
    assert _sends(world) == pytest.approx([expected.sum() * wb.config.cost_per_send])
    wb.on_day_start(world, 103, ALL)  # not a calendar day
    wb.on_day_start(world, 107, ALL)  # a calendar day, inside the cooldown
    assert np.array_equal(wb.received[:M] > 0, expected) and wb.received.max() == 1
    again = expected & world.pop.email_ok[:M]  # still subscribed after the first e-mail
    wb.on_day_start(world, 128, ALL)  # a calendar day, 28 days on: still inside the cooldown
    assert wb.received.max() == 1
    wb.on_day_start(world, 135, ALL)  # 35 days on: the cooldown is over
    assert np.array_equal(wb.received[:M] == 2, again) and again.sum() > 0
    assert len(_sends(world)) == 2


def test_nothing_before_the_launch_or_for_recent_buyers(store):
    world, wb = _world(store, start_day=100)
    group = _customers(world)
    wb.on_day_start(world, 93, ALL)  # before the launch
    assert wb.received.sum() == 0 and _sends(world) == []
    world.pop.lapsed[:M] = False
    world.pop.last_order[:M] = np.where(group == 0, -np.inf, 50.0)  # ordered 50 days ago
    wb.on_day_start(world, 100, ALL)
    assert wb.received.sum() == 0  # not 90 days yet
    wb2_world, wb2 = _world(store, start_day=100, min_days_since_order=45)
    _customers(wb2_world)
    wb2_world.pop.lapsed[:M] = False
    wb2_world.pop.last_order[:M] = np.where(group == 0, -np.inf, 50.0)
    wb2.on_day_start(wb2_world, 100, ALL)
    assert np.array_equal(wb2.received[:M] > 0, group > 0)  # 50 days >= 45: all customers


def test_opens_clicks_and_unsubscribes_follow_the_rates(store):
    world, wb = _world(store, start_day=100, open_rate=0.4, click_rate=0.1, unsubscribe=0.05)
    world.pop.email_ok[:M] = True
    world.pop.n_orders[:M] = 1
    world.pop.lapsed[:M] = True
    clicks = []
    world.queue_visits = lambda agent, time, channel, recovered=None: clicks.append(
        (agent, time, channel)
    )
    wb.on_day_start(world, 100, ALL)
    e = world.pop.email_engagement[:M].astype(float)
    p_open = np.clip(0.4 * e, 0, 1)
    p_click = p_open * 0.25  # click given open: click_rate / open_rate
    opened = np.isfinite(wb.opened_at[:M])
    ((agent, time, channel),) = clicks
    # Sums of independent Bernoullis: expected count +- 3 standard errors.
    for count, p in ((opened.sum(), p_open), (len(agent), p_click)):
        assert abs(count - p.sum()) < Z * np.sqrt((p * (1 - p)).sum()), (count, p.sum())
    unsub = (~world.pop.email_ok[:M]).sum()
    assert abs(unsub - 0.05 * M) < Z * np.sqrt(M * 0.05 * 0.95)
    assert opened[agent].all() and np.all((time > 100) & (time < 101))  # clicks: same day
    assert np.all(channel == 5)  # the email source
    assert np.all((wb.opened_at[:M][opened] >= 100.375) & (wb.opened_at[:M][opened] < 100.875))


def _cohorts(world, time=110.0):
    product = ALL % world.catalog.size
    visits = Visits(
        agent=ALL, time=np.full(M, time), channel=np.zeros(M, np.int8),
        session_no=np.zeros(M, np.int64), recovered=np.zeros(M, bool),
        p_bounce=np.zeros(M), extra_pages=np.ones(M),
    )  # fmt: skip
    visits.views = np.full((M, 6), -1)
    visits.views[:, 0] = product
    visits.p_cart = np.where(visits.views >= 0, 0.05, 0.0)
    price = world.catalog.price[product]
    basket = Basket(visit=ALL, product=product, quantity=np.full(M, 2, np.int32),
                    list_price=price, price=price.copy(), tag=np.zeros(M, np.int16))  # fmt: skip
    carts = Carts(agent=ALL, time=np.full(M, time), value=2 * price, items=np.full(M, 2),
                  visit=ALL, order_id=ALL)  # fmt: skip
    return visits, basket, carts


def test_the_incentive_lowers_the_price_and_is_used_up_by_an_order(store):
    world, wb = _world(store, discount=0.2, valid_days=14)
    group = ALL % 3
    # a third opened 5 days ago (valid), a third 20 days ago (expired), a third never
    wb.opened_at[:M] = np.select([group == 0, group == 1], [105.0, 90.0], -np.inf)
    holder = group == 0
    visits, basket, carts = _cohorts(world)
    wb.on_view(world, visits, ALL)
    sens = world.pop.price_sensitivity[:M].astype(float)
    assert np.allclose(visits.p_cart[holder, 0], 0.05 * 0.8 ** -sens[holder])  # price response
    assert np.all(visits.p_cart[~holder, 0] == 0.05)
    wb.on_cart(world, visits, basket, ALL)
    assert np.allclose(basket.price[holder], 0.8 * basket.list_price[holder])
    assert np.array_equal(basket.price[~holder], basket.list_price[~holder])
    assert np.allclose(wb.pending[:M][holder], 0.2 * 2 * basket.list_price[holder])
    wb.on_abandon(world, carts, ALL)
    assert np.all(wb.pending == 0) and np.all(wb.opened_at[:M][holder] == 105.0)  # kept
    wb.on_cart(world, visits, basket, ALL)
    wb.on_purchase(world, carts, ALL)
    assert np.all(wb.opened_at[:M][holder] == -np.inf)  # used up by the order
    assert np.all(wb.opened_at[:M][group == 1] == 90.0)  # the expired ones were not used
    assert wb.redeemed_orders == holder.sum()


def test_win_back_brings_lapsed_customers_back_at_a_cost(store):
    """Default parameters, 100k agents: recipients come back; e-mails and discounts cost.

    Recipients' sessions +2.5% (SE 0.3) and sessions with a cart +2.5% (SE 0.7); their orders
    +3.0% (SE 1.3: heavy buyers make order counts noisy, so it is not asserted).
    """
    with_, world = store.run(size=100_000, specs=[{"name": "win_back"}], events=True)
    without, _ = store.run(size=100_000)
    ev = with_.events.to_pandas()
    counts = ev["event"].value_counts()
    assert counts["winback_send"] > counts["winback_open"] > counts["winback_click"] > 0
    assert counts["winback_redeem"] > 0 and counts["winback_unsubscribe"] > 0
    recipients = ev.loc[ev["event"] == "winback_send", "user_id"].unique()
    w, o = per_user(with_).iloc[recipients], per_user(without).iloc[recipients]
    for visits in ("sessions", "carts"):
        lift, se = paired_lift(w, o, visits)
        assert lift > Z * se, (visits, lift, se)
    costs = with_.costs.groupby("kind", observed=True)["amount"].sum()
    assert costs["win_back_email"] == pytest.approx(counts["winback_send"] * 0.001)
    redeemed = ev.loc[ev["event"] == "winback_redeem"]
    orders = with_.orders.set_index("order_id").loc[redeemed["order_id"]]
    assert np.allclose(orders["discount"], redeemed["value"].to_numpy())  # the discount given
    assert world.strategies[0].redeemed_orders == len(redeemed)


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ({"every_days": 0}, "every_days"),
        ({"every_days": 2.5}, "every_days"),
        ({"click_rate": 0.5}, "click_rate"),  # more clicks than opens
        ({"discount": 1.0}, "discount"),
        ({"valid_days": 0}, "valid_days"),
        ({"cooldown_days": -1}, "cooldown_days"),
        ({"unsubscribe": 1.5}, "unsubscribe"),
    ],
)
def test_bad_values_name_their_key(spec, key):
    with pytest.raises(ConfigError) as info:
        build_strategies([{"name": "win_back", **spec}], ["control"])
    assert info.value.key == f"strategy.win_back.{key}"
