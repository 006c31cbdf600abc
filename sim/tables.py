"""Assemble a finished world's arrays into DESIGN.md's tables (per-user table, event log)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from sim.config import SOURCES
from sim.population import DEVICES

USER_COLUMNS = (
    "user_id", "arm", "segment", "device", "exposed", "first_exposure_day", "sessions", "orders",
    "items", "revenue", "margin", "converted", "first_order_day", "last_order_day",
    "pre_sessions", "pre_orders", "pre_revenue",
)  # fmt: skip
MESSAGE_KINDS = (
    "email_send", "email_open", "email_click", "sms_send", "sms_click", "unsubscribe",
    "email_signup", "welcome_send", "welcome_open", "welcome_click",
)  # fmt: skip
"""Kinds of the messages table; each is also the name of its event in the log."""
MESSAGE_CODE = {name: code for code, name in enumerate(MESSAGE_KINDS)}


def users_table(world) -> pd.DataFrame:
    """The per-user table: one row per agent, every agent, in DESIGN.md's column order.

    ``exposed`` = had a session in the experiment window (the same rule in every arm);
    ``first_order_day`` / ``last_order_day`` are day numbers (floats; negative = warm-up; NaN =
    never ordered); ``converted`` = ordered at least once in the window.
    """
    pop, u = world.pop, world.u
    return pd.DataFrame(
        {
            "user_id": np.arange(pop.size, dtype=np.int64),
            "arm": pd.Categorical.from_codes(pop.arm, world.arm_names),
            "segment": pd.Categorical.from_codes(pop.segment, pop.segment_names),
            "device": pd.Categorical.from_codes(pop.device, DEVICES),
            "exposed": u["sessions"] > 0,
            "first_exposure_day": u["first_exposure"],
            "sessions": u["sessions"],
            "orders": u["orders"],
            "items": u["items"],
            "revenue": u["revenue"],
            "margin": u["margin"],
            "converted": u["orders"] > 0,
            "first_order_day": u["first_order"],
            "last_order_day": u["last_order"],
            "pre_sessions": u["pre_sessions"],
            "pre_orders": u["pre_orders"],
            "pre_revenue": u["pre_revenue"],
        }
    )


def _take(column: pd.Series, rows: np.ndarray) -> pd.Categorical:
    """Rows of a categorical column, kept categorical (no per-row strings)."""
    return pd.Categorical.from_codes(column.cat.codes.to_numpy()[rows], column.cat.categories)


def _label(frame: pd.DataFrame, col: str, names, offset: int = 0) -> None:
    frame[col] = pd.Categorical.from_codes(frame[col].to_numpy() + offset, list(names))


def _with_shipments(orders: pd.DataFrame, shipments: pd.DataFrame) -> pd.DataFrame:
    """Orders with the engine's shipment columns (the drawn past has none: 0, False, -1, 0)."""
    s = shipments.set_index("order_id").reindex(orders["order_id"].to_numpy())
    return orders.assign(
        shipping=s["shipping"].fillna(0.0).to_numpy(np.float64),
        express=s["express"].fillna(False).to_numpy(bool),
        category=s["category"].fillna(-1).to_numpy(np.int8),
        p_return=s["p_return"].fillna(0.0).to_numpy(np.float64),
    )


def build_results(world, release: bool = False, lean: bool = False):
    """Turn a finished world into :class:`sim.world.Results`.

    ``release``: :meth:`sim.world.World.release` first (a world its caller discards).
    ``lean``: only ``users``; the other tables and ``extra`` are None (an A/B replicate reads
    nothing else).

    Columns of the order economics (issue 10): ``sessions.shipping`` and ``orders.shipping``
    (the fee the shopper paid; 0 from the threshold on), ``sessions.cart_value`` (the cart's
    value at checkout, bought or abandoned, top-ups included; 0 without a cart),
    ``orders.express``, ``orders.category`` (of the first line; -1 for orders of the drawn
    past), ``orders.p_return`` (the chance of a return after on_purchase) and
    ``orders.returned`` (returned by the end of the run: orders delivered after it are not
    yet); ``returns`` has one row per returned order: ``time`` (delivery), ``user_id``,
    ``order_id``, ``refund`` (the order's value), ``margin_lost`` (refund - salvage_share x
    cost of goods), ``cost`` (handling), ``category``, ``arm``, ``segment`` (warm-up rows have
    time < 0); ``surveys`` add ``order_id``, ``late`` (delivered after the promise),
    ``returned`` and ``express``.
    """
    from sim.world import Results

    arm_names, seg_names = world.arm_names, world.pop.segment_names
    events = None
    if world.log.enabled:  # assembled in a thread from here: Results.events waits when read
        pool = ThreadPoolExecutor(1)
        events = pool.submit(world.log.table, world.pop.arm.copy(), arm_names, SOURCES)
        pool.shutdown(wait=False)
    if release:  # World.run(release=True): the world's state goes before the tables come
        world.release()
    users = users_table(world)
    if lean:
        return Results(scenario=world.scenario, seed=world.seed, arm_names=list(arm_names),
                       users=users, event_log=events, sessions=None, orders=None,
                       messages=None, impressions=None, surveys=None, costs=None, extra=None,
                       returns=None)  # fmt: skip
    sessions = world.t_sessions.frame()
    _label(sessions, "channel", SOURCES)
    orders = _with_shipments(world.t_orders.frame(), world.t_shipments.frame())
    _label(orders, "channel", SOURCES)
    returns = world.t_returns.frame()
    orders["returned"] = np.isin(orders["order_id"].to_numpy(), returns["order_id"].to_numpy())
    for frame in (sessions, orders):
        ids = frame["user_id"].to_numpy()
        frame["arm"] = _take(users["arm"], ids)
        frame["segment"] = _take(users["segment"], ids)
    messages = world.t_messages.frame()
    _label(messages, "arm", arm_names)
    _label(messages, "segment", seg_names)
    _label(messages, "kind", MESSAGE_KINDS)
    impressions = world.t_impressions.frame()
    _label(impressions, "channel", SOURCES)
    _label(impressions, "arm", arm_names)
    surveys = world.t_surveys.frame()
    surveys = surveys[surveys["time"] >= 0].reset_index(drop=True)
    surveys["arm"] = _take(users["arm"], surveys["user_id"].to_numpy())
    surveys["segment"] = _take(users["segment"], surveys["user_id"].to_numpy())
    returns["arm"] = _take(users["arm"], returns["user_id"].to_numpy())
    returns["segment"] = _take(users["segment"], returns["user_id"].to_numpy())
    ledger = world.ledger
    costs = pd.DataFrame({"kind": ledger.kind, "amount": ledger.amount, "arm": ledger.arm,
                          "day": ledger.day})  # fmt: skip
    costs = costs[costs["day"] >= 0].reset_index(drop=True)
    costs["arm"] = pd.Categorical.from_codes(costs["arm"].to_numpy(dtype=np.int8), arm_names)
    return Results(
        scenario=world.scenario,
        seed=world.seed,
        arm_names=list(arm_names),
        users=users,
        event_log=events,
        sessions=sessions,
        orders=orders,
        messages=messages,
        impressions=impressions,
        surveys=surveys,
        costs=costs,
        returns=returns,
        views=None if world.t_views is None else _views(world.t_views.frame()),
        extra={
            "zero_party": world.pop.zero_party.copy(),
            "ad_reached": world.expected_reach(),
            "unit_cost": world.catalog.price * (1 - world.catalog.margin),
        },
    )


def _views(views: pd.DataFrame) -> pd.DataFrame:
    _label(views, "channel", SOURCES)
    return views
