"""Each strategy moves the KPIs it targets, by a margin outside Monte Carlo noise.

Every test compares two worlds at the same seed, with and without the strategy (default
parameters, 100k agents, one arm). Both worlds share each user's random numbers (keyed draws),
so the comparison is paired: ``paired_lift`` gives the relative change and its Monte Carlo
standard error from the per-user paired differences (users as units, delta method; see
conftest). "Outside the noise" means more than 3 standard errors from zero (a one-sided normal
tail of 0.13%). The published ranges of BENCHMARKS.md are checked with the same standard error:
the point estimate must lie inside the range, at least one SE from either bound.
"""

from __future__ import annotations

import numpy as np
import pytest
from strategy_helpers import paired_lift, per_user

SIZE = 100_000
Z = 3.0  # standard errors from zero for "outside Monte Carlo noise"


SIZE_LARGE = 300_000  # small denominators: customers active at day 0, abandoned carts


def _pair(store, name, events=False, size=SIZE):
    with_, world = store.run(size=size, specs=[{"name": name}], events=events)
    without, _ = store.run(size=size)
    return with_, without, world


def _kpis(store, name, events=False, size=SIZE):
    return store.kpis(size=size, specs=[{"name": name}], events=events), store.kpis(size=size)


def test_personalization_raises_add_to_cart_and_revenue(store):
    with_, without, _ = _pair(store, "personalization")
    w, o = per_user(with_), per_user(without)
    cart, cart_se = paired_lift(w, o, "carts", "sessions")
    revenue, revenue_se = paired_lift(w, o, "revenue")
    assert cart > Z * cart_se, (cart, cart_se)
    assert revenue > Z * revenue_se, (revenue, revenue_se)
    k, k0 = _kpis(store, "personalization")
    assert k["email_click_rate"] > k0["email_click_rate"]
    assert k["strategy_costs"] > k0["strategy_costs"] + 0.4 * SIZE / 1000 * 90  # the fee


def test_personalization_revenue_inside_mckinsey_range(store):
    """Default parameters: revenue +5% to +15% (McKinsey 2023), at least 1 SE inside."""
    with_, without, _ = _pair(store, "personalization")
    lift, se = paired_lift(per_user(with_), per_user(without), "revenue")
    assert 0.05 <= lift - se and lift + se <= 0.15, (lift, se)


def test_personalization_cold_start_is_weak(store):
    """Known customers (ordered before day 0) gain more add-to-cart lift than prospects.

    Measured where shoppers are alike (``scenario=alike``, 100k agents): +8.8% (SE 1.0) against
    +2.5% (SE 0.5), 5.8 SE apart. In the default store the gap is there but within the noise
    (+4.1% against +2.7%, 1.4 SE): its known customers include the readiest shoppers, who add
    to the cart anyway, so a better-fitting page moves them less.
    """
    with_, _ = store.run(size=SIZE, specs=[{"name": "personalization"}], preset="alike")
    without, _ = store.run(size=SIZE, preset="alike")
    known = (without.users["first_order_day"] < 0).to_numpy()
    w, o = per_user(with_), per_user(without)
    known_lift, known_se = paired_lift(w[known], o[known], "carts", "sessions")
    new_lift, new_se = paired_lift(w[~known], o[~known], "carts", "sessions")
    # Independent subsets: the SE of the difference is the root sum of squares.
    assert known_lift - new_lift > Z * np.hypot(known_se, new_se), (known_lift, new_lift)


def test_social_proof_raises_conversion(store):
    """Reviews move the shoppers who have not bought before: their orders per session +11.8%
    (SE 3.2; 100k agents). Customers who bought before the window hardly move (add-to-cart
    -0.8%, SE 1.4: they know the store, and the readiest add anyway), so the whole store's
    conversion gains +2.9% (SE 1.8), within the noise at this size."""
    with_, without, _ = _pair(store, "social_proof")
    new = ~(without.users["first_order_day"] < 0).to_numpy()
    lift, se = paired_lift(per_user(with_)[new], per_user(without)[new], "orders", "sessions")
    assert lift > Z * se, (lift, se)
    k, k0 = _kpis(store, "social_proof")
    assert k["strategy_costs"] > k0["strategy_costs"]


def test_gamification_raises_return_visits_and_retention(store):
    with_, without, _ = _pair(store, "gamification", size=SIZE_LARGE)
    customers = (without.users["pre_orders"] > 0).to_numpy()
    w, o = per_user(with_), per_user(without)
    visits, visits_se = paired_lift(w[customers], o[customers], "sessions")
    kept, kept_se = paired_lift(w, o, "retained", "active")
    assert visits > Z * visits_se, (visits, visits_se)
    assert kept > Z * kept_se, (kept, kept_se)
    k, k0 = _kpis(store, "gamification", size=SIZE_LARGE)
    assert k["retention_rate"] > k0["retention_rate"]
    assert k["strategy_costs"] > k0["strategy_costs"]


def test_gamification_points_are_redeemed_as_discounts(store):
    with_, without, _ = _pair(store, "gamification", size=SIZE_LARGE)
    window = with_.orders["time"] >= 0
    assert with_.orders.loc[window, "discount"].sum() > 0
    assert without.orders["discount"].sum() == 0


def test_retargeting_recovers_carts_at_a_cost(store):
    with_, without, world = _pair(store, "retargeting", events=True, size=SIZE_LARGE)
    w, o = per_user(with_), per_user(without)
    # Completion = orders / carts = 1 - abandonment: up means abandonment down.
    completion, se = paired_lift(w, o, "orders", "carts")
    assert completion > Z * se, (completion, se)
    k, k0 = _kpis(store, "retargeting", events=True, size=SIZE_LARGE)
    assert k["cart_abandonment_rate"] < k0["cart_abandonment_rate"]
    events = with_.events.column("event").to_pandas().value_counts()
    strategy = world.strategies[0]
    assert events["cart_recovered"] == strategy.recovered_orders > 50
    assert events["reminder_send"] > events["reminder_click"] > events["cart_recovered"]
    costs = with_.costs.groupby("kind", observed=True)["amount"].sum()
    for kind in ("retargeting_email", "retargeting_sms", "ad_retargeting"):  # its ads: ad spend
        assert costs[kind] > 0, kind
    plain = store.run(size=SIZE_LARGE)[1].pop
    # Some who stay on the email / SMS lists without reminders leave them with reminders.
    left = (plain.email_ok & ~world.pop.email_ok) | (plain.sms_ok & ~world.pop.sms_ok)
    assert left.sum() > 0


def test_retargeting_revenue_share_a_few_percent(store):
    """Default parameters: recovered-cart revenue is a few percent of all revenue.

    Klaviyo: abandoned-cart flows make ~4% of revenue (top quartile ~10%); the range checked is
    2% - 10%. SE of the share: the recovered revenue is a compound Poisson sum, so
    ``SE = sqrt(sum(value**2)) / revenue``.
    """
    with_, _, _ = _pair(store, "retargeting", events=True, size=SIZE_LARGE)
    events = with_.events.to_pandas()
    values = events.loc[events["event"] == "cart_recovered", "value"].to_numpy()
    revenue = with_.users["revenue"].sum()
    share, se = values.sum() / revenue, np.sqrt((values**2).sum()) / revenue
    assert 0.02 <= share - se and share + se <= 0.10, (share, se)


def test_bundles_more_items_higher_aov_lower_margin_per_item(store):
    with_, without, _ = _pair(store, "bundles")
    w, o = per_user(with_), per_user(without)
    items, items_se = paired_lift(w, o, "items", "orders")
    aov, aov_se = paired_lift(w, o, "revenue", "orders")
    margin, margin_se = paired_lift(w, o, "margin", "items")
    assert items > Z * items_se, (items, items_se)
    assert aov > Z * aov_se, (aov, aov_se)
    assert margin < -Z * margin_se, (margin, margin_se)
    k, k0 = _kpis(store, "bundles")
    for kpi, sign in (("items_per_order", 1), ("aov", 1), ("margin_per_item", -1)):
        assert sign * (k[kpi] - k0[kpi]) > 0, kpi
    # The cost of bundles is the discount: out of the margin, shown in the orders table.
    assert with_.orders.loc[with_.orders["time"] >= 0, "discount"].sum() > 0


@pytest.mark.parametrize("name", ["personalization", "social_proof", "gamification", "retargeting"])
def test_every_strategy_costs_money(store, name):
    """Fees, messages and impressions reach strategy_costs and lower profit by as much."""
    size = SIZE_LARGE if name in ("retargeting", "gamification") else SIZE
    k, k0 = _kpis(store, name, events=name == "retargeting", size=size)
    extra = k["strategy_costs"] - k0["strategy_costs"]
    assert extra > 0
    assert k["profit"] == pytest.approx(
        k["gross_margin"] + k["shipping_fees"] - k["ad_spend"] - k["strategy_costs"]
    )


def test_strategies_stack(store):
    """retargeting + bundles in one world: both mechanisms act, both cost, effects add up."""
    specs = [{"name": "retargeting"}, {"name": "bundles"}]
    stacked, world = store.run(size=SIZE, specs=specs)
    without, _ = store.run(size=SIZE)
    bundles_only, _ = store.run(size=SIZE, specs=[{"name": "bundles"}])
    w, o, b = per_user(stacked), per_user(without), per_user(bundles_only)
    items, items_se = paired_lift(w, o, "items", "orders")
    assert items > Z * items_se, (items, items_se)
    revenue, revenue_se = paired_lift(w, b, "revenue")  # reminders on top of bundles
    assert revenue > Z * revenue_se, (revenue, revenue_se)
    assert world.strategies[0].recovered_orders > 0
    kinds = set(stacked.costs["kind"])
    assert {"retargeting_email", "ad_retargeting"} <= kinds
