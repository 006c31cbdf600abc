"""The KPI registry: one id, type, funnel stage and formula (in the docstring) per KPI.

Every KPI is a formula on *additive sums* (sessions, orders, revenue, opens, ...) so one
registry serves every scope: the sums are computed per group (total, day, arm, segment,
channel) and each KPI's formula is applied to the group's sums. A KPI whose sums do not exist
in a scope (ROAS per segment: ad spend is not split by segment) is NaN there and left out.

Types: ``proportion`` (a share of users), ``mean`` (per user), ``ratio`` (denominator not users:
analysed with the delta method under user randomisation) and ``total`` (counts, money).
Only the experiment window (day >= 0) counts, except where a formula says "to date".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class KPI:
    """One registered KPI: its id, type, funnel stage and formula."""

    id: str
    type: str
    stage: str
    formula: Callable[[pd.DataFrame], pd.Series]

    @property
    def doc(self) -> str:
        """The formula in words (the function's docstring)."""
        return (self.formula.__doc__ or "").strip()


REGISTRY: dict[str, KPI] = {}


def kpi(type_: str, stage: str):
    """Register a KPI formula under its function's name."""

    def wrap(fn):
        REGISTRY[fn.__name__] = KPI(fn.__name__, type_, stage, fn)
        return fn

    return wrap


def _div(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


# -- Awareness ------------------------------------------------------------------------------
@kpi("total", "awareness")
def impressions(s):
    """Ad impressions served (all paid channels)."""
    return s["impressions"]


@kpi("total", "awareness")
def reach(s):
    """Unique agents who saw at least one ad impression in the window."""
    return s["reached"]


@kpi("total", "awareness")
def sessions(s):
    """Website traffic: sessions started in the window."""
    return s["sessions"]


@kpi("total", "awareness")
def visitors(s):
    """Unique agents with at least one session."""
    return s["visitors"]


# -- Interest -------------------------------------------------------------------------------
@kpi("ratio", "interest")
def ctr(s):
    """Click-through rate = ad clicks / ad impressions (each ad click opens a session)."""
    return _div(s["ad_clicks"], s["impressions"])


@kpi("ratio", "interest")
def product_views_per_session(s):
    """Content interaction = product views / sessions."""
    return _div(s["views"], s["sessions"])


@kpi("ratio", "interest")
def bounce_rate(s):
    """One-page sessions / sessions."""
    return _div(s["bounces"], s["sessions"])


@kpi("ratio", "interest")
def email_open_rate(s):
    """Email opens / emails delivered."""
    return _div(s["email_open"], s["email_send"])


@kpi("ratio", "interest")
def email_click_rate(s):
    """Email clicks / emails delivered."""
    return _div(s["email_click"], s["email_send"])


@kpi("ratio", "interest")
def sms_click_rate(s):
    """SMS clicks / SMS delivered."""
    return _div(s["sms_click"], s["sms_send"])


# -- Decision -------------------------------------------------------------------------------
@kpi("ratio", "decision")
def add_to_cart_rate(s):
    """Sessions with an add to cart / sessions."""
    return _div(s["cart_sessions"], s["sessions"])


@kpi("ratio", "decision")
def conversion_rate(s):
    """Orders / sessions (the headline; one order at most per session)."""
    return _div(s["orders"], s["sessions"])


@kpi("proportion", "decision")
def visitor_conversion_rate(s):
    """Purchasers / visitors."""
    return _div(s["purchasers"], s["visitors"])


@kpi("ratio", "decision")
def checkout_completion_rate(s):
    """Purchases / checkouts begun."""
    return _div(s["orders"], s["checkouts"])


@kpi("ratio", "decision")
def cart_abandonment_rate(s):
    """1 - purchases / carts created (a cart is created by a session's first add to cart)."""
    return 1 - _div(s["orders"], s["cart_sessions"])


# -- Action ---------------------------------------------------------------------------------
@kpi("total", "action")
def orders(s):
    """Orders placed in the window."""
    return s["orders"]


@kpi("total", "action")
def revenue(s):
    """Revenue of the window's orders (prices paid, after discounts)."""
    return s["revenue"]


@kpi("ratio", "action")
def aov(s):
    """Average order value = revenue / orders."""
    return _div(s["revenue"], s["orders"])


@kpi("mean", "action")
def revenue_per_visitor(s):
    """Revenue / visitors."""
    return _div(s["revenue"], s["visitors"])


@kpi("ratio", "action")
def items_per_order(s):
    """Items (units) / orders."""
    return _div(s["items"], s["orders"])


@kpi("ratio", "action")
def margin_per_item(s):
    """Gross margin / items sold."""
    return _div(s["margin"], s["items"])


@kpi("total", "action")
def gross_margin(s):
    """Revenue minus cost of goods of the window's orders."""
    return s["margin"]


@kpi("total", "action")
def ad_spend(s):
    """Ad spend of the window (per arm: split by the arm's share of impressions)."""
    return s["ad_spend"]


@kpi("total", "action")
def strategy_costs(s):
    """Every non-ad cost: messages, strategies (fees, reminders), shipping, express, returns."""
    return s["other_costs"]


@kpi("total", "action")
def shipping_fees(s):
    """Shipping fees paid by shoppers on orders below the free-shipping threshold (income)."""
    return s["shipping_fees"]


@kpi("total", "action")
def profit(s):
    """Gross margin + shipping fees - ad spend - other costs.

    Other costs: strategies, messages, the carrier's shipping and express costs and returns
    (refunded margin and handling); discounts are already out of the margin. Like the costs,
    the fees come from the ledger (no segment or channel scope).
    """
    return s["margin"] + s["shipping_fees"] - s["ad_spend"] - s["other_costs"]


@kpi("ratio", "action")
def return_rate(s):
    """Orders returned in the window (by the day they come back) / orders of the window."""
    return _div(s["returns"], s["orders"])


@kpi("total", "action")
def refunds(s):
    """Revenue refunded for the window's returns (the margin lost and handling are costs)."""
    return s["refunds"]


@kpi("ratio", "action")
def roas(s):
    """Blended ROAS = all revenue / all ad spend."""
    return _div(s["revenue"], s["ad_spend"])


@kpi("ratio", "action")
def roas_attributed(s):
    """Revenue of orders with a paid click in the 7 days before (last click) / ad spend."""
    return _div(s["attributed_revenue"], s["ad_spend"])


@kpi("ratio", "action")
def revenue_share_by_channel(s):
    """The group's revenue / all revenue of its scope (by channel: the channel's share)."""
    return _div(s["revenue"], s["scope_revenue"])


@kpi("proportion", "action")
def repeat_purchase_rate(s):
    """Repeat customers / customers whose first order is >= 90 days before the end.

    Repeat customers order again within 90 days of their first order (warm-up orders count).
    """
    return _div(s["repeaters"], s["repeat_eligible"])


@kpi("mean", "action")
def days_to_second_order(s):
    """Mean days from first to second order among the repeat_purchase_rate's repeaters."""
    return _div(s["repeat_days"], s["repeaters"])


@kpi("proportion", "action")
def retention_rate(s):
    """Customers active at day 0 who order in the window / customers active at day 0.

    Active at day 0 = an order in the 90 days before day 0.
    """
    return _div(s["retained"], s["active_at_start"])


@kpi("proportion", "action")
def churn_rate(s):
    """1 - retention_rate."""
    return 1 - _div(s["retained"], s["active_at_start"])


@kpi("mean", "action")
def clv_historical(s):
    """Revenue per customer to date (warm-up and the store's past included), as the articles say."""
    return _div(s["revenue_to_date"], s["customers_to_date"])


@kpi("mean", "action")
def clv_historical_margin(s):
    """Gross margin per customer to date (warm-up and past included): clv_historical's twin."""
    return _div(s["margin_to_date"], s["customers_to_date"])


@kpi("mean", "action")
def clv_simple(s):
    """The articles' textbook CLV: AOV x orders per year x margin share x 1 / yearly churn.

    Orders per year = window orders / window purchasers x 365 / days; yearly churn =
    1 - (1 - churn_rate) ** (365 / days). Kept for teaching: it assumes a lifetime of
    1 / yearly churn years at the rate of customers who bought in the window, so it overstates
    what the store's customers bring (``experiment=clv`` grades it against the world's future).
    """
    years = s["days"] / 365.0
    per_year = _div(s["orders"], s["purchasers"]) / years
    churn = 1 - _div(s["retained"], s["active_at_start"])
    yearly = 1 - (1 - churn) ** (1 / years)
    return (
        _div(s["revenue"], s["orders"])
        * per_year
        * _div(s["margin"], s["revenue"])
        * _div(1.0, yearly)
    )


@kpi("mean", "action")
def clv_predictive(s):
    """Predicted gross margin per customer at day 0 over scenario.clv.horizon_days, discounted.

    BG/NBD (purchase counts) + Gamma-Gamma (margin per purchase) fitted on the orders before
    day 0 (``experiments.stats.lifetime.clv_per_customer``), averaged over the customers at day 0.
    """
    return _div(s["clv_predicted"], s["customers_at_start"])


@kpi("ratio", "action")
def cac(s):
    """Customer acquisition cost = acquisition spend / new customers (first order ever in window).

    Acquisition spend = ad spend + every marketing cost except retention programmes'
    (gamification, win-back) and operations (shipping, returns, express delivery): messages,
    discounts, reminders and strategy fees count, as the articles define CAC.
    """
    return _div(s["ad_spend"] + s["acquisition_costs"], s["new_customers"])


@kpi("ratio", "action")
def cac_paid(s):
    """Paid CAC = ad spend / new customers."""
    return _div(s["ad_spend"], s["new_customers"])


@kpi("ratio", "action")
def clv_cac_ratio(s):
    """clv_predictive / cac (the glossary's ratio).

    Read it with care: clv_predictive is the next year's margin of the average customer at day 0
    (most of a going concern's customers are dormant), cac the cost of one new customer.
    """
    return _div(clv_predictive(s), cac(s))


@kpi("total", "action")
def new_customers(s):
    """Agents whose first order ever falls in the window."""
    return s["new_customers"]


@kpi("ratio", "action")
def nps(s):
    """Net promoter score = % promoters (9-10) - % detractors (0-6) among survey answers."""
    return 100 * _div(s["promoters"] - s["detractors"], s["survey_n"])


@kpi("ratio", "action")
def csat(s):
    """Customer satisfaction = share of answers 4-5 on the 1-5 scale."""
    return _div(s["csat_pos"], s["survey_n"])


@kpi("proportion", "action")
def zero_party_share(s):
    """Customers to date who shared preferences (the quiz) / customers to date."""
    return _div(s["zero_party_customers"], s["customers_to_date"])


def evaluate(sums: pd.DataFrame) -> pd.DataFrame:
    """Apply every KPI formula to a frame of sums (one row per group).

    The formulas read the sums as numpy columns (a dict), not pandas Series: the same
    elementwise arithmetic without pandas' per-operation overhead, which on a store's few groups
    was most of the cost.
    """
    columns = {c: sums[c].to_numpy() for c in sums.columns}
    out = {k.id: np.asarray(k.formula(columns), dtype=float) for k in REGISTRY.values()}
    return pd.DataFrame(out, index=sums.index)
