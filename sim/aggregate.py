"""Additive sums per group, from the engine's tallies or rebuilt from the event log.

``sums(facts, keys)`` groups every tally by ``keys`` (a subset of day, arm, segment, channel)
and returns one row per group with the columns the KPI formulas in :mod:`sim.kpis` read. A sum
whose table has no such key (messages have no channel) is NaN in that scope.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim import kpis
from sim.config import PAID_CHANNELS

ATTRIBUTION_DAYS = 7.0
REPEAT_WINDOW = 90.0
SCOPES = {"arm": "arm", "segment": "segment", "channel": "channel"}


@dataclass
class Facts:
    """The tallies KPIs are computed from (window only unless said)."""

    days: int
    sessions: pd.DataFrame  # one row per session: user_id, time, channel, arm, segment, ...
    orders: pd.DataFrame  # one row per order, warm-up included
    messages: pd.DataFrame  # day, arm, segment, kind, count
    impressions: pd.DataFrame  # day, channel, arm, impressions, reached
    surveys: pd.DataFrame  # time, user_id, nps, csat, arm, segment
    costs: pd.DataFrame  # kind, amount, arm, day
    users: pd.DataFrame  # the per-user table
    extra: dict


def facts_of(results) -> Facts:
    """The Facts of a :class:`sim.world.Results`."""
    return Facts(
        days=results.scenario.days,
        sessions=results.sessions,
        orders=results.orders,
        messages=results.messages,
        impressions=results.impressions,
        surveys=results.surveys,
        costs=results.costs,
        users=results.users,
        extra=results.extra,
    )


def _group(frame: pd.DataFrame, keys: list[str], agg: dict) -> pd.DataFrame:
    if not keys:
        return frame.assign(_all=0).groupby("_all").agg(**agg).reset_index(drop=True)
    return frame.groupby(keys, observed=True).agg(**agg)


def _with_day(frame: pd.DataFrame) -> pd.DataFrame:
    if "day" not in frame:
        frame = frame.assign(day=np.floor(frame["time"].to_numpy()).astype(np.int64))
    return frame


def attributed(sessions: pd.DataFrame) -> np.ndarray:
    """Revenue of each session's order if a paid click of the same user came within 7 days."""
    paid = sessions[sessions["channel"].isin(PAID_CHANNELS)][["user_id", "time"]]
    buys = sessions[sessions["purchased"]][["user_id", "time"]].reset_index()
    out = np.zeros(len(sessions))
    if len(paid) and len(buys):
        hit = pd.merge_asof(
            buys.sort_values("time"),
            paid.rename(columns={"time": "paid_time"}).assign(t=lambda d: d.paid_time)
            .sort_values("t"),
            left_on="time", right_on="t", by="user_id", direction="backward",
            tolerance=ATTRIBUTION_DAYS,
        )  # fmt: skip
        rows = hit.loc[hit["paid_time"].notna(), "index"].to_numpy()
        pos = sessions.index.get_indexer(rows)
        out[pos] = sessions["revenue"].to_numpy()[pos]
    return out


def _session_sums(f: Facts, keys: list[str]) -> pd.DataFrame:
    s = _with_day(f.sessions)
    s = s.assign(
        bounce=s["pages"] == 1,
        ad_click=s["channel"].isin(PAID_CHANNELS),
        attributed=attributed(s),
        buyer=np.where(s["purchased"], s["user_id"], -1),
    )
    out = _group(s, keys, {
        "sessions": ("user_id", "size"), "bounces": ("bounce", "sum"), "views": ("views", "sum"),
        "cart_sessions": ("carted", "sum"), "checkouts": ("checkout", "sum"),
        "orders": ("purchased", "sum"), "revenue": ("revenue", "sum"), "margin": ("margin", "sum"),
        "items": ("items", "sum"), "visitors": ("user_id", "nunique"),
        "purchasers": ("buyer", "nunique"), "ad_clicks": ("ad_click", "sum"),
        "attributed_revenue": ("attributed", "sum"),
    })  # fmt: skip
    # nunique counted the -1 placeholder of non-buyers once per group that has any
    has_non_buyer = _group(s.assign(nb=~s["purchased"]), keys, {"nb": ("nb", "any")})["nb"]
    out["purchasers"] = out["purchasers"] - has_non_buyer.reindex(out.index).astype(int)
    return out


def _message_sums(f: Facts, keys: list[str]) -> pd.DataFrame | None:
    if "channel" in keys:
        return None
    if not keys:
        wide = f.messages.groupby("kind", observed=False)["count"].sum().to_frame().T
        return wide.set_axis(pd.RangeIndex(1)).rename_axis(columns=None)
    wide = f.messages.pivot_table(
        index=keys, columns="kind", values="count", aggfunc="sum", observed=False, fill_value=0
    )
    return wide.rename_axis(columns=None)


def _cost_sums(f: Facts, keys: list[str]) -> pd.DataFrame | None:
    if "segment" in keys:
        return None
    c = f.costs
    is_ad = c["kind"].str.startswith("ad_")
    c = c.assign(
        ad_spend=np.where(is_ad, c["amount"], 0.0),
        other_costs=np.where(is_ad, 0.0, c["amount"]),
        channel=pd.Categorical(c["kind"].str.removeprefix("ad_").where(is_ad, "none")),
    )
    agg = {"ad_spend": ("ad_spend", "sum"), "other_costs": ("other_costs", "sum")}
    if "channel" in keys:  # only ad spend belongs to a channel
        out = _group(c[is_ad.to_numpy()], keys, agg)
        out["other_costs"] = np.nan
        return out
    return _group(c, keys, agg)


def _impression_sums(f: Facts, keys: list[str]) -> pd.DataFrame | None:
    if "segment" in keys:
        return None
    out = _group(f.impressions, keys, {"impressions": ("impressions", "sum"),
                                       "reached": ("reached", "sum")})  # fmt: skip
    if "day" not in keys:  # reach over the window counts each agent once
        out["reached"] = np.nan if "channel" in keys else _user_sums(f, keys, reach_only=True)
    return out


def _survey_sums(f: Facts, keys: list[str]) -> pd.DataFrame | None:
    if "channel" in keys:
        return None
    s = _with_day(f.surveys)
    s = s.assign(promoter=s["nps"] >= 9, detractor=s["nps"] <= 6, pos=s["csat"] >= 4)
    agg = {"survey_n": ("nps", "size"), "promoters": ("promoter", "sum"),
           "detractors": ("detractor", "sum"), "csat_pos": ("pos", "sum")}  # fmt: skip
    return _group(s, keys, agg)


def _user_sums(f: Facts, keys: list[str], reach_only: bool = False):
    """Cohort sums from all orders (warm-up included) and the per-user table."""
    u = f.users
    if reach_only:
        return _group(u.assign(r=f.extra["ad_reached"]), keys, {"r": ("r", "sum")})["r"]
    o = f.orders.sort_values(["user_id", "time"], kind="stable")
    first = o.groupby("user_id")["time"].first()
    second = o.groupby("user_id")["time"].nth(1).groupby(o["user_id"]).first()
    t1 = np.full(len(u), np.nan)
    t1[first.index] = first.to_numpy()
    t2 = np.full(len(u), np.nan)
    t2[second.index.to_numpy()] = second.to_numpy()
    eligible = t1 <= f.days - REPEAT_WINDOW
    repeat = eligible & (t2 - t1 <= REPEAT_WINDOW)
    pre = o[(o["time"] < 0) & (o["time"] >= -REPEAT_WINDOW)]["user_id"].unique()
    active = np.zeros(len(u), bool)
    active[pre] = True
    margin_all = np.bincount(o["user_id"], weights=o["margin"], minlength=len(u))
    customer = ~np.isnan(t1)
    frame = u.assign(
        repeat_eligible=eligible,
        repeaters=repeat,
        repeat_days=np.where(repeat, t2 - t1, 0.0),
        active_at_start=active,
        retained=active & (u["orders"].to_numpy() > 0),
        margin_to_date=margin_all,
        customers_to_date=customer,
        new_customers=customer & (t1 >= 0),
        zero_party_customers=customer & f.extra["zero_party"],
        reached=f.extra["ad_reached"],
    )
    cols = ["repeat_eligible", "repeaters", "repeat_days", "active_at_start", "retained",
            "margin_to_date", "customers_to_date", "new_customers",
            "zero_party_customers"]  # fmt: skip
    return _group(frame, keys, {c: (c, "sum") for c in cols})


def sums(f: Facts, keys: list[str]) -> pd.DataFrame:
    """Every additive sum per group of ``keys``; NaN where a table lacks a key."""
    parts = [_session_sums(f, keys), _message_sums(f, keys), _cost_sums(f, keys),
             _impression_sums(f, keys), _survey_sums(f, keys)]  # fmt: skip
    if "day" not in keys and "channel" not in keys:
        parts.append(_user_sums(f, keys))
    frame = parts[0]
    for part in parts[1:]:
        if part is not None:
            frame = frame.join(part, how="outer")
    needed = ["impressions", "reached", "email_send", "email_open", "email_click", "sms_send",
              "sms_click", "unsubscribe", "ad_spend", "other_costs", "survey_n", "promoters",
              "detractors", "csat_pos", "repeat_eligible", "repeaters", "repeat_days",
              "active_at_start", "retained", "margin_to_date", "customers_to_date",
              "new_customers", "zero_party_customers"]  # fmt: skip
    present = {c for p in parts if p is not None for c in p}
    for col in needed:
        if col not in frame:
            frame[col] = np.nan
        elif col in present:
            frame[col] = frame[col].fillna(0)
    session_cols = list(parts[0].columns)
    frame[session_cols] = frame[session_cols].fillna(0)
    frame["days"] = f.days
    frame["scope_revenue"] = _scope_revenue(frame, keys)
    return frame


def _scope_revenue(frame: pd.DataFrame, keys: list[str]) -> pd.Series:
    outer = [k for k in keys if k != "channel"]
    if "channel" not in keys:
        return frame["revenue"]
    if not outer:
        return pd.Series(frame["revenue"].sum(), index=frame.index)
    return frame.groupby(level=outer, observed=True)["revenue"].transform("sum")


def kpi_table(f: Facts, keys: list[str]) -> pd.DataFrame:
    """KPI values per group of ``keys`` (columns: KPI ids)."""
    return kpis.evaluate(sums(f, keys))
