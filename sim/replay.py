"""Rebuild the KPI tallies from the event log alone, to check the log against the engine.

The event log covers the experiment window. What it cannot hold comes from the run: ad
impressions and costs (DESIGN.md: impressions are counted per day, channel and arm, not logged),
orders of the warm-up (cohort KPIs such as repeat purchase look back before day 0), unit costs of
products (for margins) and per-agent arrays (zero-party data given in the warm-up, ad reach).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.aggregate import Facts
from sim.tables import MESSAGE_KINDS


def _per_session(ev: pd.DataFrame, name: str) -> pd.DataFrame:
    return ev[ev["event"] == name]


def sessions_from_events(ev: pd.DataFrame, unit_cost: np.ndarray) -> pd.DataFrame:
    """One row per session_start, with pages, views, cart, checkout and order from its events."""
    starts = _per_session(ev, "session_start").set_index("session_id")
    sid = starts.index

    def count(name: str) -> np.ndarray:
        return _per_session(ev, name).groupby("session_id").size().reindex(sid, fill_value=0)

    buys = _per_session(ev, "purchase").set_index("session_id")
    adds = _per_session(ev, "add_to_cart")
    line_margin = adds["value"] - unit_cost[adds["product_id"].to_numpy()] * adds["quantity"]
    margin = line_margin.groupby(adds["session_id"]).sum()
    purchased = sid.isin(buys.index)
    return pd.DataFrame(
        {
            "session_id": sid.to_numpy(),
            "user_id": starts["user_id"].to_numpy(),
            "time": starts["time"].to_numpy(),
            "channel": starts["channel"].astype(str).to_numpy(),
            "pages": count("page_view").to_numpy(),
            "views": count("view_item").to_numpy(),
            "carted": count("add_to_cart").to_numpy() > 0,
            "checkout": count("begin_checkout").to_numpy() > 0,
            "purchased": purchased,
            "revenue": buys["value"].reindex(sid, fill_value=0.0).to_numpy(),
            "margin": np.where(purchased, margin.reindex(sid, fill_value=0.0).to_numpy(), 0.0),
            "items": buys["quantity"].reindex(sid, fill_value=0).to_numpy(),
        }
    )


def facts_from_events(events: pd.DataFrame, results) -> Facts:
    """Facts whose sessions, window orders, messages and surveys come from ``events`` only."""
    users = results.users
    arm, segment = users["arm"].array, users["segment"].array
    sessions = sessions_from_events(events, results.extra["unit_cost"])
    sessions["channel"] = pd.Categorical(
        sessions["channel"], results.sessions["channel"].cat.categories
    )
    window_orders = sessions[sessions["purchased"]]
    orders = pd.concat(
        [results.orders[results.orders["time"] < 0],
         window_orders[["user_id", "time", "revenue", "margin", "items", "channel"]]],
        ignore_index=True,
    )  # fmt: skip
    for frame in (sessions, orders):
        frame["arm"] = arm[frame["user_id"].to_numpy()]
        frame["segment"] = segment[frame["user_id"].to_numpy()]
    msg = events[events["event"].isin(MESSAGE_KINDS)]
    messages = (
        msg.assign(
            day=np.floor(msg["time"]).astype(np.int64),
            arm=arm[msg["user_id"].to_numpy()],
            segment=segment[msg["user_id"].to_numpy()],
            kind=pd.Categorical(msg["event"].astype(str), MESSAGE_KINDS),
        )
        .groupby(["day", "arm", "segment", "kind"], observed=True)
        .size()
        .rename("count")
        .reset_index()
    )
    survey = _per_session(events, "survey_response")
    surveys = pd.DataFrame(
        {
            "time": survey["time"].to_numpy(),
            "user_id": survey["user_id"].to_numpy(),
            "nps": survey["value"].to_numpy(),
            "csat": survey["quantity"].to_numpy(),
            "arm": arm[survey["user_id"].to_numpy()],
            "segment": segment[survey["user_id"].to_numpy()],
        }
    )
    back = events[events["event"] == "return"]
    returns = pd.DataFrame({"time": back["time"].to_numpy(), "user_id": back["user_id"].to_numpy(),
                            "refund": back["value"].to_numpy(dtype=float),
                            "arm": arm[back["user_id"].to_numpy()],
                            "segment": segment[back["user_id"].to_numpy()]})  # fmt: skip
    return Facts(
        days=results.scenario.days,
        sessions=sessions,
        orders=orders,
        messages=messages,
        impressions=results.impressions,
        surveys=surveys,
        costs=results.costs,
        users=users,
        extra=results.extra,
        clv=getattr(results.scenario, "clv", None),
        seed=getattr(results, "seed", 0),
        returns=returns,
    )
