"""Additive sums per group, from the engine's tallies or rebuilt from the event log.

``sums(facts, keys)`` groups every tally by ``keys`` (a subset of day, arm, segment, channel)
and returns one row per group with the columns the KPI formulas in :mod:`sim.kpis` read. A sum
whose table has no such key (messages have no channel) is NaN in that scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from sim import kpis
from sim.config import PAID_CHANNELS

ATTRIBUTION_DAYS = 7.0
CUBE_KEYS = ("day", "arm", "segment", "channel")  # every scope's keys are among these
REPEAT_WINDOW = 90.0
RETENTION_PROGRAMMES = ("gamification_", "win_back_")  # ledger kinds not in CAC (prefixes)
OPERATIONS = ("shipping", "returns", "express")  # ledger kinds that are not marketing
FEE_INCOME = "shipping_fee"  # shoppers' shipping fees, booked as negative costs


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
    clv: object = None  # scenario.clv (horizon, discount) for clv_predictive; None: no fit
    seed: int = 0
    returns: pd.DataFrame | None = None  # time, user_id, refund, margin_lost, cost, arm, segment

    @cached_property
    def session_frame(self) -> pd.DataFrame:
        """Sessions with the derived columns every scope sums (computed once)."""
        s = _with_day(self.sessions)
        return s.assign(
            bounce=s["pages"].to_numpy() == 1,
            ad_click=s["channel"].isin(PAID_CHANNELS).to_numpy(),
            attributed=attributed(s),
        )

    @cached_property
    def session_weights(self) -> dict[str, np.ndarray]:
        """The summed session columns as float arrays (converted once, for every scope)."""
        s = self.session_frame
        return {col: s[col].to_numpy(dtype=float) for col in SESSION_SUMS.values() if col}

    @cached_property
    def session_cube(self):
        """The session sums per occupied cell of the day x arm x segment x channel grid.

        ``(cell of each session, grid size, occupied cells, {sum: per occupied cell})``, or
        None when the grid is not dense (see :func:`_dense_codes`). Every scope's session sums
        add up cells (thousands) instead of sessions (millions).
        """
        dense = _dense_codes(self.session_frame, list(CUBE_KEYS))
        if dense is None:
            return None
        cell, cells = dense
        counts = np.bincount(cell, minlength=cells)
        occupied = np.flatnonzero(counts)
        s = self.session_frame  # bincount casts each column to float itself, one at a time
        sums = {name: counts[occupied].astype(float) if col is None
                else np.bincount(cell, weights=s[col].to_numpy(), minlength=cells)[occupied]
                for name, col in SESSION_SUMS.items()}  # fmt: skip
        return cell, cells, occupied, sums

    @cached_property
    def cohort_frame(self) -> pd.DataFrame:
        """The per-user table with the cohort columns of the retention KPIs (computed once)."""
        return _cohort(self)


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
        clv=results.scenario.clv,
        seed=results.seed,
        returns=getattr(results, "returns", None),
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


SESSION_SUMS = {  # output column: session-table column summed
    "sessions": None, "bounces": "bounce", "views": "views", "cart_sessions": "carted",
    "checkouts": "checkout", "orders": "purchased", "revenue": "revenue", "margin": "margin",
    "items": "items", "ad_clicks": "ad_click", "attributed_revenue": "attributed",
}  # fmt: skip


def _codes(frame: pd.DataFrame, keys: list[str]) -> tuple[np.ndarray, pd.Index]:
    """Group number of each row and the groups' index (sorted), for numpy bincount sums.

    The same as pandas' ``groupby(keys, observed=True, sort=True)`` (``ngroup`` and the
    groups' index; a test pins it), computed without a sort when every key is categorical or
    integer with a small range: each row's place in the keys' mixed-radix grid, then the grid's
    occupied cells numbered in order.
    """
    if not keys:
        return np.zeros(len(frame), dtype=np.int64), pd.RangeIndex(1)
    dense = _dense_codes(frame, keys)
    if dense is None:
        g = frame.groupby(keys, observed=True, sort=True)
        return g.ngroup().to_numpy(), g.size().index
    cell, cells = dense
    counts = np.bincount(cell, minlength=cells)
    occupied = np.flatnonzero(counts)
    number = np.zeros(cells, dtype=np.int64)
    number[occupied] = np.arange(len(occupied))
    first = np.empty(cells, dtype=np.int64)
    first[cell[::-1]] = np.arange(len(cell))[::-1]  # each cell's first row (the last write wins)
    rows = frame[keys].iloc[first[occupied]]
    index = pd.Index(rows[keys[0]]) if len(keys) == 1 else pd.MultiIndex.from_frame(rows)
    return number[cell], index


_DENSE_CELLS = 1 << 22  # a grid of up to ~4M cells is numbered densely; larger: pandas


def _dense_codes(frame: pd.DataFrame, keys: list[str]):
    """Each row's cell in the keys' grid and the grid's size, or None.

    None: a key is neither categorical nor an integer column, or the grid is too large.
    """
    cell, cells = np.zeros(len(frame), dtype=np.int64), 1
    for key in keys:
        col = frame[key]
        if isinstance(col.dtype, pd.CategoricalDtype):
            code, size = col.cat.codes.to_numpy().astype(np.int64), len(col.cat.categories)
            if len(code) and code.min() < 0:
                return None  # missing values: pandas drops them
        elif np.issubdtype(col.dtype, np.integer):
            values = col.to_numpy().astype(np.int64)
            low = int(values.min()) if len(values) else 0
            code, size = values - low, (int(values.max()) - low + 1 if len(values) else 1)
        else:
            return None
        cells *= size
        if cells > _DENSE_CELLS:
            return None
        cell = cell * size + code
    return cell, cells


def _distinct(codes: np.ndarray, user: np.ndarray, groups: int) -> np.ndarray:
    """Distinct users per group."""
    if not len(codes):
        return np.zeros(groups)
    width = int(user.max()) + 1
    pairs = np.sort(codes.astype(np.int64) * width + user)
    first = np.ones(len(pairs), dtype=bool)
    first[1:] = pairs[1:] != pairs[:-1]
    return np.bincount(pairs[first] // width, minlength=groups).astype(float)


def _session_sums(f: Facts, keys: list[str]) -> pd.DataFrame:
    s = f.session_frame
    codes, index = _codes(s, keys)
    m = len(index)
    cube = f.session_cube
    if cube is None:
        weights = f.session_weights
        out = {
            name: np.bincount(codes, minlength=m).astype(float) if col is None
            else np.bincount(codes, weights=weights[col], minlength=m)
            for name, col in SESSION_SUMS.items()
        }  # fmt: skip
    else:  # the scope's sums from the cube's cells: each cell lies in one group
        cell, cells, occupied, cell_sums = cube
        group = np.zeros(cells, dtype=np.int64)
        group[cell] = codes
        group = group[occupied]
        out = {name: np.bincount(group, weights=cell_sums[name], minlength=m)
               for name in SESSION_SUMS}  # fmt: skip
    user = s["user_id"].to_numpy()
    bought = s["purchased"].to_numpy()
    out["visitors"] = _distinct(codes, user, m)
    out["purchasers"] = _distinct(codes[bought], user[bought], m)
    return pd.DataFrame(out, index=index)


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
    kind = c["kind"].astype(str)
    fee = (kind == FEE_INCOME).to_numpy()
    acquisition = ~is_ad & ~kind.isin(OPERATIONS) & ~kind.str.startswith(RETENTION_PROGRAMMES)
    acquisition &= ~fee
    c = c.assign(
        ad_spend=np.where(is_ad, c["amount"], 0.0),
        other_costs=np.where(is_ad | fee, 0.0, c["amount"]),
        shipping_fees=np.where(fee, -c["amount"], 0.0),
        acquisition_costs=np.where(acquisition, c["amount"], 0.0),
        channel=pd.Categorical(c["kind"].str.removeprefix("ad_").where(is_ad, "none")),
    )
    agg = {"ad_spend": ("ad_spend", "sum"), "other_costs": ("other_costs", "sum"),
           "acquisition_costs": ("acquisition_costs", "sum"),
           "shipping_fees": ("shipping_fees", "sum")}  # fmt: skip
    if "channel" in keys:  # only ad spend belongs to a channel
        out = _group(c[is_ad.to_numpy()], keys, agg)
        out["other_costs"] = np.nan
        out["acquisition_costs"] = np.nan
        out["shipping_fees"] = np.nan
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


def _return_sums(f: Facts, keys: list[str]) -> pd.DataFrame | None:
    """Returns in the window (by the day they came back): their count and the refunds."""
    if "channel" in keys or f.returns is None:
        return None
    r = _with_day(f.returns)
    r = r[r["time"].to_numpy() >= 0].assign(returned=1.0)
    agg = {"returns": ("returned", "sum"), "refunds": ("refund", "sum")}
    return _group(r, keys, agg)


def _survey_sums(f: Facts, keys: list[str]) -> pd.DataFrame | None:
    if "channel" in keys:
        return None
    s = _with_day(f.surveys)
    s = s.assign(promoter=s["nps"] >= 9, detractor=s["nps"] <= 6, pos=s["csat"] >= 4)
    agg = {"survey_n": ("nps", "size"), "promoters": ("promoter", "sum"),
           "detractors": ("detractor", "sum"), "csat_pos": ("pos", "sum")}  # fmt: skip
    return _group(s, keys, agg)


COHORT_SUMS = ("repeat_eligible", "repeaters", "repeat_days", "active_at_start", "retained",
               "margin_to_date", "revenue_to_date", "customers_to_date", "new_customers",
               "zero_party_customers", "customers_at_start", "clv_predicted")  # fmt: skip


def _cohort(f: Facts) -> pd.DataFrame:
    """Per-user cohort columns from all orders (warm-up included) and the per-user table."""
    u, n = f.users, len(f.users)
    o = f.orders.sort_values(["user_id", "time"], kind="stable")
    user, time = o["user_id"].to_numpy(), o["time"].to_numpy()
    first_row = np.ones(len(o), dtype=bool)
    first_row[1:] = user[1:] != user[:-1]
    second_row = np.zeros(len(o), dtype=bool)
    second_row[1:] = ~first_row[1:] & first_row[:-1]
    t1, t2 = np.full(n, np.nan), np.full(n, np.nan)
    t1[user[first_row]] = time[first_row]
    t2[user[second_row]] = time[second_row]
    eligible = t1 <= f.days - REPEAT_WINDOW
    repeat = eligible & (t2 - t1 <= REPEAT_WINDOW)
    active = np.zeros(n, bool)
    active[user[(time < 0) & (time >= -REPEAT_WINDOW)]] = True
    customer = ~np.isnan(t1)
    at_start = customer & (t1 < 0)
    predicted = _predicted_clv(f, n)
    return u.assign(
        repeat_eligible=eligible,
        repeaters=repeat,
        repeat_days=np.where(repeat, t2 - t1, 0.0),
        active_at_start=active,
        retained=active & (u["orders"].to_numpy() > 0),
        margin_to_date=np.bincount(user, weights=o["margin"].to_numpy(), minlength=n),
        revenue_to_date=np.bincount(user, weights=o["revenue"].to_numpy(), minlength=n),
        customers_to_date=customer,
        customers_at_start=at_start & np.isfinite(predicted),  # none when nothing was fitted
        clv_predicted=np.where(at_start & np.isfinite(predicted), predicted, 0.0),
        new_customers=customer & (t1 >= 0),
        zero_party_customers=customer & f.extra["zero_party"],
        reached=f.extra["ad_reached"],
    )


def _predicted_clv(f: Facts, n: int) -> np.ndarray:
    """Each user's predicted margin over the CLV horizon, fitted on the orders before day 0."""
    from experiments.stats.lifetime import clv_per_customer  # the stats layer's models

    clv = f.clv
    if clv is None or not len(f.orders):
        return np.full(n, np.nan)
    return clv_per_customer(f.orders, n, 0.0, clv.horizon_days, clv.discount_rate, seed=f.seed)


def _user_sums(f: Facts, keys: list[str], reach_only: bool = False):
    """Cohort sums per group (or only the expected ad reach)."""
    cols = ("reached",) if reach_only else COHORT_SUMS
    frame = f.cohort_frame
    if keys:  # bincounts: pandas' sums, faster (a test pins them)
        codes, index = _codes(frame, keys)
        out = pd.DataFrame(index=index)
        for c in cols:
            values = frame[c].to_numpy()
            total = np.bincount(codes, weights=values.astype(float), minlength=len(index))
            out[c] = total if values.dtype.kind == "f" else total.round().astype(np.int64)
    else:
        out = _group(frame, keys, {c: (c, "sum") for c in cols})
    return out["reached"] if reach_only else out


def sums(f: Facts, keys: list[str]) -> pd.DataFrame:
    """Every additive sum per group of ``keys``; NaN where a table lacks a key."""
    parts = [_session_sums(f, keys), _message_sums(f, keys), _cost_sums(f, keys),
             _impression_sums(f, keys), _survey_sums(f, keys), _return_sums(f, keys)]  # fmt: skip
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
              "new_customers", "zero_party_customers", "acquisition_costs", "revenue_to_date",
              "customers_at_start", "clv_predicted", "returns", "refunds",
              "shipping_fees"]  # fmt: skip
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
