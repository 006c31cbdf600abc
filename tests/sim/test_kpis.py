"""Every KPI formula on a small hand-made event log with known answers.

The log has 3 users and 5 sessions over a 100-day window (warm-up orders given separately), so
each value below is a hand calculation written next to its assertion.
"""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from sim.aggregate import kpi_table
from sim.config import SOURCES
from sim.kpis import REGISTRY
from sim.replay import facts_from_events

ROWS = []


def ev(
    time, user, event, session=-1, product=-1, quantity=1, value=np.nan, channel="none", order=-1
):
    ROWS.append(
        dict(
            time=time,
            user_id=user,
            session_id=session,
            event=event,
            product_id=product,
            quantity=quantity,
            value=value,
            channel=channel,
            arm="control",
            order_id=order,
        )
    )


def session(time, user, sid, channel, pages, views):
    ev(time, user, "session_start", sid, channel=channel)
    for _ in range(pages):
        ev(time, user, "page_view", sid, channel=channel)
    for p in views:
        ev(time, user, "view_item", sid, product=p, channel=channel)


# s1: user 0 bounces (direct)
session(1.0, 0, 1, "direct", 1, [])
# s2: user 0 buys product 0 for 100 (paid search)
session(5.0, 0, 2, "paid_search", 3, [0, 1])
ev(5.0, 0, "add_to_cart", 2, product=0, quantity=1, value=100.0, channel="paid_search")
ev(5.0, 0, "begin_checkout", 2, quantity=1, value=100.0, channel="paid_search", order=1)
ev(5.0, 0, "purchase", 2, quantity=1, value=100.0, channel="paid_search", order=1)
# s3: user 1 adds 2 x product 1 (60) from email and abandons before checkout
session(20.0, 1, 3, "email", 2, [1])
ev(20.0, 1, "add_to_cart", 3, product=1, quantity=2, value=60.0, channel="email")
ev(20.0, 1, "cart_abandon", 3, value=60.0, channel="email")
# s4: user 2 adds products 0 and 1 (paid social), begins checkout, abandons
session(30.0, 2, 4, "paid_social", 4, [0, 1, 1])
ev(30.0, 2, "add_to_cart", 4, product=0, quantity=1, value=100.0, channel="paid_social")
ev(30.0, 2, "add_to_cart", 4, product=1, quantity=1, value=30.0, channel="paid_social")
ev(30.0, 2, "begin_checkout", 4, quantity=2, value=130.0, channel="paid_social")
ev(30.0, 2, "cart_abandon", 4, value=130.0, channel="paid_social")
# s5: user 1 comes back directly and buys 1 x product 1 for 30
session(50.0, 1, 5, "direct", 2, [1])
ev(50.0, 1, "add_to_cart", 5, product=1, quantity=1, value=30.0, channel="direct")
ev(50.0, 1, "begin_checkout", 5, quantity=1, value=30.0, channel="direct", order=2)
ev(50.0, 1, "purchase", 5, quantity=1, value=30.0, channel="direct", order=2)
# messages: one newsletter to all three (opened by 1 and 2, clicked by 1, user 2 unsubscribes)
for u in (0, 1, 2):
    ev(19.4, u, "email_send", channel="email")
for u in (1, 2):
    ev(19.5, u, "email_open", channel="email")
ev(19.6, 1, "email_click", channel="email")
ev(19.6, 2, "unsubscribe", channel="email")
ev(19.4, 0, "sms_send", channel="sms")
# surveys: NPS in value, CSAT in quantity
ev(8.0, 0, "survey_response", quantity=5, value=10.0)
ev(53.0, 1, "survey_response", quantity=3, value=5.0)


@pytest.fixture(scope="module")
def kpis():
    events = pd.DataFrame(ROWS)
    users = pd.DataFrame(
        {
            "user_id": [0, 1, 2],
            "arm": pd.Categorical(["control"] * 3),
            "segment": pd.Categorical(["a", "b", "a"]),
            "orders": [1, 1, 0],
        }
    )
    warmup = pd.DataFrame(
        {
            "order_id": [0],
            "user_id": [0],
            "time": [-10.0],
            "revenue": [50.0],
            "margin": [20.0],
            "items": [1],
            "channel": pd.Categorical(["direct"], SOURCES),
        }
    )
    results = SimpleNamespace(
        users=users, orders=warmup, scenario=SimpleNamespace(days=100),
        sessions=pd.DataFrame({"channel": pd.Categorical([], SOURCES)}),
        impressions=pd.DataFrame({
            "day": [5, 30], "channel": pd.Categorical(["paid_search", "paid_social"]),
            "arm": pd.Categorical(["control"] * 2), "impressions": [1000.0, 2000.0],
            "reached": [500.0, 800.0]}),
        costs=pd.DataFrame({"kind": ["ad_paid_search", "ad_paid_social", "email", "sms"],
                            "amount": [50.0, 30.0, 0.003, 0.01],
                            "arm": pd.Categorical(["control"] * 4), "day": [5, 30, 19, 19]}),
        extra={"unit_cost": np.array([60.0, 20.0]), "zero_party": np.array([False, True, False]),
               "ad_reached": np.array([1.0, 0.0, 0.5])},
    )  # fmt: skip
    return kpi_table(facts_from_events(events, results), []).iloc[0]


EXPECTED = {
    "impressions": 3000,  # 1000 + 2000
    "reach": 1.5,  # expected reach 1 + 0 + 0.5
    "sessions": 5,
    "visitors": 3,
    "ctr": 2 / 3000,  # two paid sessions (s2, s4) / impressions
    "product_views_per_session": 7 / 5,  # 0 + 2 + 1 + 3 + 1 views
    "bounce_rate": 1 / 5,  # s1 has one page
    "email_open_rate": 2 / 3,
    "email_click_rate": 1 / 3,
    "sms_click_rate": 0.0,
    "add_to_cart_rate": 4 / 5,  # s2, s3, s4, s5
    "conversion_rate": 2 / 5,
    "visitor_conversion_rate": 2 / 3,
    "checkout_completion_rate": 2 / 3,  # s2, s4, s5 began; s2, s5 bought
    "cart_abandonment_rate": 1 - 2 / 4,
    "orders": 2,
    "revenue": 130.0,
    "aov": 65.0,
    "revenue_per_visitor": 130 / 3,
    "items_per_order": 1.0,
    "margin_per_item": 25.0,  # (100 - 60) + (30 - 20) over 2 items
    "gross_margin": 50.0,
    "ad_spend": 80.0,
    "strategy_costs": 0.013,  # email + sms
    "shipping_fees": 0.0,  # no shipping_fee bookings in the ledger
    "profit": 50 - 80 - 0.013,
    "return_rate": 0.0,  # no return events
    "refunds": 0.0,
    "roas": 130 / 80,
    "roas_attributed": 100 / 80,  # s2 is itself a paid click; user 1 never clicked an ad
    "revenue_share_by_channel": 1.0,
    "repeat_purchase_rate": 1.0,  # only user 0 (first order day -10 <= 100 - 90) is eligible
    "days_to_second_order": 15.0,  # -10 -> 5
    "retention_rate": 1.0,  # user 0 active at day 0 (order at -10) orders again
    "churn_rate": 0.0,
    "clv_historical": 90.0,  # revenue 50 + 100 (user 0) + 30 (user 1) over 2 customers
    "clv_historical_margin": 35.0,  # margins 20 + 40 (user 0) + 10 (user 1) over 2 customers
    "clv_simple": np.nan,  # yearly churn 0: lifetime undefined
    "clv_predictive": np.nan,  # a replayed log carries no scenario.clv: no model is fitted
    "cac": 80.013,  # ads 80 + email and sms 0.013 (acquisition marketing), one new customer
    "cac_paid": 80.0,  # ads only
    "clv_cac_ratio": np.nan,
    "new_customers": 1,
    "nps": 0.0,  # one promoter (10), one detractor (5) of two answers
    "csat": 0.5,  # one of two answers is 4-5
    "zero_party_share": 0.5,  # user 1 of customers {0, 1}
}


def test_every_registered_kpi_has_a_hand_calculation():
    assert set(EXPECTED) == set(REGISTRY)


@pytest.mark.parametrize("kpi_id", sorted(EXPECTED))
def test_kpi_formula(kpis, kpi_id):
    assert kpis[kpi_id] == pytest.approx(EXPECTED[kpi_id], rel=1e-12, nan_ok=True)


def test_each_kpi_documents_type_stage_and_formula():
    for k in REGISTRY.values():
        assert k.type in {"proportion", "mean", "ratio", "total"}
        assert k.stage in {"awareness", "interest", "decision", "action"}
        assert k.doc, k.id
