"""Columnar recorders for the event log and the engine's own tallies.

Mechanisms append whole cohorts as array chunks; nothing is per agent. Only the experiment
window (time >= 0) is recorded: the warm-up shows up as the per-user pre-period counters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

EVENTS = (
    "session_start", "page_view", "view_item", "add_to_cart", "begin_checkout", "purchase",
    "cart_abandon", "email_send", "email_open", "email_click", "sms_send", "sms_click", "review",
    "survey_response", "unsubscribe", "quiz_response",
)  # fmt: skip
"""Event names (DESIGN.md's list plus ``quiz_response``, the zero-party preference quiz).
Strategies register their own with :meth:`EventLog.code`."""

_COLUMNS = {
    "time": np.float64,
    "user_id": np.int64,
    "session_id": np.int64,
    "event": np.int16,
    "product_id": np.int32,
    "quantity": np.int32,
    "value": np.float64,
    "channel": np.int8,
    "order_id": np.int64,
}


class EventLog:
    """Collects event chunks; :meth:`frame` assembles the event log table sorted by time."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.names = list(EVENTS)
        self._chunks: dict[str, list[np.ndarray]] = {c: [] for c in _COLUMNS}

    def code(self, name: str) -> int:
        """The integer code of an event name, registering a strategy's own event."""
        if name not in self.names:
            self.names.append(name)
        return self.names.index(name)

    def add(
        self,
        event: str,
        time: np.ndarray,
        user: np.ndarray,
        *,
        session: np.ndarray | int = -1,
        product: np.ndarray | int = -1,
        quantity: np.ndarray | int = 1,
        value: np.ndarray | float = np.nan,
        channel: np.ndarray | int = -1,
        order: np.ndarray | int = -1,
    ) -> None:
        """Record one event per entry of ``user`` (scalars broadcast); only times >= 0 are kept."""
        if not self.enabled or len(user) == 0:
            return
        keep = time >= 0
        if not keep.any():
            return
        n = len(user)
        values = {
            "time": time,
            "user_id": user,
            "session_id": session,
            "event": self.code(event),
            "product_id": product,
            "quantity": quantity,
            "value": value,
            "channel": channel,
            "order_id": order,
        }
        all_kept = keep.all()
        for col, dtype in _COLUMNS.items():
            arr = np.broadcast_to(np.asarray(values[col], dtype=dtype), (n,))
            self._chunks[col].append(arr.copy() if all_kept else arr[keep])

    def frame(
        self, arm: np.ndarray, arm_names: list[str], channels: tuple[str, ...]
    ) -> pd.DataFrame:
        """The event log as a DataFrame with DESIGN.md's columns, sorted by time (stable)."""
        cols = {c: _concat(self._chunks[c], d) for c, d in _COLUMNS.items()}
        order = np.argsort(cols["time"], kind="stable")
        out = {c: v[order] for c, v in cols.items()}
        channel_names = ["none", *channels]
        return pd.DataFrame(
            {
                "time": out["time"],
                "user_id": out["user_id"],
                "session_id": out["session_id"],
                "event": pd.Categorical.from_codes(out["event"], self.names),
                "product_id": out["product_id"],
                "quantity": out["quantity"],
                "value": out["value"],
                "channel": pd.Categorical.from_codes(out["channel"] + 1, channel_names),
                "arm": pd.Categorical.from_codes(arm[out["user_id"]], arm_names),
                "order_id": out["order_id"],
            }
        )


def _concat(chunks: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(chunks) if chunks else np.empty(0, dtype=dtype)


class Table:
    """An append-only columnar table of fixed columns (sessions, orders, messages, surveys)."""

    def __init__(self, **dtypes) -> None:
        self.dtypes = dtypes
        self._chunks: dict[str, list[np.ndarray]] = {c: [] for c in dtypes}

    def add(self, **columns) -> None:
        """Append equal-length arrays (scalars broadcast to the first array's length)."""
        n = max(np.size(v) for v in columns.values())
        for c, dtype in self.dtypes.items():
            self._chunks[c].append(np.broadcast_to(np.asarray(columns[c], dtype=dtype), (n,)))

    def frame(self) -> pd.DataFrame:
        """All rows as a DataFrame."""
        return pd.DataFrame({c: _concat(v, self.dtypes[c]) for c, v in self._chunks.items()})
