"""Columnar recorders for the event log and the engine's own tallies.

Mechanisms append whole cohorts as array chunks; nothing is per agent. Only the experiment
window (time >= 0) is recorded: the warm-up (and, for ``history.pre_days`` beyond it, the
drawn past) shows up as the per-user pre-period counters.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa

EVENTS = (
    "session_start", "page_view", "view_item", "add_to_cart", "begin_checkout", "purchase",
    "cart_abandon", "email_send", "email_open", "email_click", "sms_send", "sms_click", "review",
    "survey_response", "unsubscribe", "quiz_response", "shipping_fee", "return", "email_signup",
    "welcome_send", "welcome_open", "welcome_click",
)  # fmt: skip
"""Event names: DESIGN.md's list plus ``quiz_response`` (the zero-party preference quiz) and the
order economics and lifecycle: ``shipping_fee`` (value = the fee), ``return`` (value = the
refund), ``email_signup`` and the welcome series' ``welcome_send``, ``welcome_open``,
``welcome_click``. Strategies register their own with :meth:`EventLog.code`."""

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
    """Collects event chunks; :meth:`table` assembles the event log table sorted by time."""

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
        m = n if all_kept else int(np.count_nonzero(keep))
        for col, dtype in _COLUMNS.items():
            v = values[col]
            if np.ndim(v) == 0:  # a scalar: kept as (value, count), written once at assembly
                self._chunks[col].append(_Fill(dtype(v), m))
                continue
            v = np.asarray(v) if np.shape(v) == (n,) else np.broadcast_to(v, (n,))
            if all_kept:  # a copy: the caller may reuse its array
                self._chunks[col].append(np.array(v, dtype=dtype))
            else:
                self._chunks[col].append(v[keep].astype(dtype, copy=False))

    def table(self, arm: np.ndarray, arm_names: list[str], channels: tuple[str, ...]) -> pa.Table:
        """The event log as an Arrow table with DESIGN.md's columns, sorted by time (stable).

        Built column by column, each chunk list freed as soon as it is joined, in two threads
        (numpy's take releases the GIL), each joining its columns into one scratch buffer it
        reuses: the peak memory is about one copy of the log plus two scratch columns, and a
        large array is allocated (and its pages first touched) once per column, not twice.
        """
        times = _join(self._chunks.pop("time"), np.float64)
        order = np.argsort(times, kind="stable")
        n = len(times)
        columns = {"time": times[order]}
        del times
        rest = [c for c in _COLUMNS if c != "time"]

        def gather(cols: list[str]) -> dict[str, np.ndarray]:
            scratch = np.empty(n * 8, dtype=np.uint8)  # the widest column: 8 bytes a row
            out = {}
            for col in cols:
                dtype = np.dtype(_COLUMNS[col])
                joined = _join(self._chunks.pop(col), dtype, scratch[: n * dtype.itemsize])
                out[col] = np.take(joined, order)
            return out

        with ThreadPoolExecutor(2) as pool:
            for part in pool.map(gather, [rest[0::2], rest[1::2]]):
                columns.update(part)
        self._chunks = {c: [] for c in _COLUMNS}
        arm_codes = arm[columns["user_id"]]
        columns["channel"] += 1  # code 0 is "none"
        return pa.table(
            {
                "time": columns["time"],
                "user_id": columns["user_id"],
                "session_id": columns["session_id"],
                "event": _dictionary(columns["event"], self.names),
                "product_id": columns["product_id"],
                "quantity": columns["quantity"],
                "value": columns["value"],
                "channel": _dictionary(columns["channel"], ["none", *channels]),
                "arm": _dictionary(arm_codes, arm_names),
                "order_id": columns["order_id"],
            }
        )


def _dictionary(codes: np.ndarray, names: list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(codes.astype(np.int16, copy=False), pa.array(names))


class _Fill:
    """A chunk of one repeated value (an event's scalar column), expanded by :func:`_join`."""

    __slots__ = ("value", "size")

    def __init__(self, value, size: int) -> None:
        self.value, self.size = value, size

    def __len__(self) -> int:
        return self.size


def _join(chunks: list, dtype, buffer: np.ndarray | None = None) -> np.ndarray:
    """The event log's chunks (arrays and :class:`_Fill`) joined into one array, one pass.

    Into ``buffer`` (bytes, viewed as ``dtype``) when given, else a new array.
    """
    size = sum(len(c) for c in chunks)
    out = np.empty(size, dtype=dtype) if buffer is None else buffer.view(dtype)[:size]
    at = 0
    for c in chunks:
        out[at : at + len(c)] = c.value if isinstance(c, _Fill) else c
        at += len(c)
    return out


def _scalar(value) -> bool:
    """A Python or numpy scalar (the quick test before ``np.ndim``)."""
    return isinstance(value, (int, float, np.generic))


def _concat(chunks: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(chunks) if chunks else np.empty(0, dtype=dtype)


class Table:
    """An append-only columnar table of fixed columns (sessions, orders, messages, surveys)."""

    def __init__(self, **dtypes) -> None:
        self.dtypes = dtypes
        self._chunks: dict[str, list[np.ndarray]] = {c: [] for c in dtypes}

    def add(self, **columns) -> None:
        """Append equal-length arrays (scalars broadcast to the first array's length)."""
        arrays = [np.size(v) for v in columns.values() if not _scalar(v) and np.ndim(v) > 0]
        n = max(arrays) if arrays else 1
        if n == 0:
            return
        for c, dtype in self.dtypes.items():
            values = np.asarray(columns[c], dtype=dtype)
            if values.shape != (n,):  # a scalar: one row, or broadcast (a read-only view)
                values = values.reshape(1) if n == 1 else np.broadcast_to(values, (n,))
            self._chunks[c].append(values)

    def compact(self) -> None:
        """Join each column's chunks into one array (the same rows; fewer objects to copy)."""
        self._chunks = {c: [_concat(v, self.dtypes[c])] if v else []
                        for c, v in self._chunks.items()}  # fmt: skip

    def frame(self) -> pd.DataFrame:
        """All rows as a DataFrame.

        Each column is its own fresh array; ``copy=False`` keeps pandas from stacking columns of
        one type into a block (a second copy of the whole table).
        """
        columns = {c: _concat(v, self.dtypes[c]) for c, v in self._chunks.items()}
        return pd.DataFrame(columns, copy=False)
