"""A store's order export: one row per order (customer, date, amount), read and checked once.

The file is CSV or Parquet with (at least) three columns, by default ``customer_id``, ``date``
and ``amount``; ``columns.customer_id=``, ``columns.date=`` and ``columns.amount=`` name them
when the export calls them something else. Dates are ``YYYY-MM-DD`` (a time of day is
ignored) or ``YYYYMMDD``. Several orders of a customer on one day are one purchase day of their
total amount: an order is a customer-day, as BG/NBD counts them.

Every bad value raises :class:`ConfigError` naming its field (``transactions.amount``) and
the first bad row (1 = the first data row), before anything runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import ConfigError

FIELDS = ("customer_id", "date", "amount")
SUFFIXES = (".csv", ".parquet", ".pq")


@dataclass(frozen=True)
class OrderLog:
    """Purchase days of a store's customers (one row per customer and day with an order).

    Attributes:
        customers: The customer ids as in the file, in order of the codes below.
        customer: Code of each row's customer, ``0 .. len(customers) - 1``, rows sorted by it.
        day: Day of each row, counted from ``start`` (0 = the log's first date).
        amount: Total amount of the customer's orders that day.
        start: The log's first date.
        end: The log's last date (``day`` runs to ``(end - start).days``).
    """

    customers: np.ndarray
    customer: np.ndarray
    day: np.ndarray
    amount: np.ndarray
    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        """Days from the first date to the last, both included."""
        return (self.end - self.start).days + 1

    @property
    def size(self) -> int:
        """Number of customers."""
        return len(self.customers)

    def summary(self) -> pd.DataFrame:
        """Per customer: first and last purchase day, purchase days, total amount."""
        first = np.searchsorted(self.customer, np.arange(self.size))
        count = np.diff(np.append(first, len(self.customer)))
        last_row = first + count - 1
        total = np.add.reduceat(self.amount, first)
        return pd.DataFrame({"first": self.day[first], "last": self.day[last_row],
                             "purchases": count, "amount": total})  # fmt: skip


MIN_CUSTOMERS = 100  # fewer cannot pin six repeat-buying parameters (and few order at all)


def _read(path: Path) -> pd.DataFrame:
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        return pd.read_parquet(path)
    except (OSError, ValueError, ImportError) as exc:
        kind = "CSV" if path.suffix.lower() == ".csv" else "Parquet"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError("transactions", f"a readable {kind} file ({reason})", str(path)) from None


def _bad_row(values: pd.Series, bad: np.ndarray, key: str, allowed: str) -> ConfigError:
    row = int(np.flatnonzero(bad)[0])
    return ConfigError(key, "", message=f"{key}: must be {allowed}; row {row + 1} has "
                       f"{values.iloc[row]!r} (rows count from 1, the first data row)")  # fmt: skip


def parse_dates(values: pd.Series, key: str) -> np.ndarray:
    """Dates as ``datetime64[D]``: ISO dates (a time of day ignored) or YYYYMMDD."""
    if pd.api.types.is_datetime64_any_dtype(values):
        out = pd.to_datetime(values, errors="coerce")
    else:
        text = values.astype(str).str.strip()
        try:
            out = pd.to_datetime(text, errors="coerce", format="ISO8601")
        except ValueError:  # mixed time zones: the dates alone, as written
            out = pd.to_datetime(text.str[:10], errors="coerce", format="%Y-%m-%d")
        compact = text.str.fullmatch(r"\d{8}")
        if compact.any():
            out[compact] = pd.to_datetime(text[compact], errors="coerce", format="%Y%m%d")
    bad = out.isna().to_numpy()
    if bad.any():
        raise _bad_row(values, bad, key, "a date (YYYY-MM-DD or YYYYMMDD)")
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_localize(None)
    return out.dt.normalize().to_numpy().astype("datetime64[D]")


def parse_amounts(values: pd.Series, key: str) -> np.ndarray:
    """Amounts as floats, each a finite number >= 0."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        out = values.astype(float)
    else:
        out = pd.to_numeric(values.astype(str).str.strip(), errors="coerce")
    number = out.to_numpy(dtype=float)
    bad = ~np.isfinite(number)
    if bad.any():
        raise _bad_row(values, bad, key, "a number")
    if (number < 0).any():
        raise _bad_row(values, number < 0, key, "a number >= 0 (an amount, not a refund)")
    return number


def from_frame(frame: pd.DataFrame, columns: dict[str, str] | None = None) -> OrderLog:
    """A checked OrderLog from a table whose columns ``columns`` names (field: column)."""
    names = {f: (columns or {}).get(f, f) for f in FIELDS}
    for name, column in names.items():
        if column not in frame.columns:
            have = ", ".join(map(str, frame.columns)) or "none"
            raise ConfigError(
                f"transactions.{name}",
                "",
                message=(
                    f"transactions.{name}: the file has no column '{column}' (set "
                    f"columns.{name}=<its name> if it has another); its columns are {have}"
                ),
            )
    if frame.empty:
        raise ConfigError("transactions", "a file with at least one order row", "no rows")
    ids = frame[names["customer_id"]]
    missing = ids.isna().to_numpy() | (ids.astype(str).str.strip() == "").to_numpy()
    if missing.any():
        raise _bad_row(ids, missing, "transactions.customer_id", "a customer id (not empty)")
    days = parse_dates(frame[names["date"]], "transactions.date")
    amounts = parse_amounts(frame[names["amount"]], "transactions.amount")
    if amounts.sum() <= 0:
        raise ConfigError("transactions.amount", "", message="transactions.amount: must have "
                          "an amount > 0 (every order is 0: no spend to fit)")  # fmt: skip
    codes, customers = pd.factorize(ids.astype(str).str.strip(), sort=True)
    first = days.min()
    day = (days - first).astype(np.int64)
    # One row per customer and day: the day's orders are one purchase of their total
    key = codes.astype(np.int64) * (int(day.max()) + 1) + day
    uniq, inverse = np.unique(key, return_inverse=True)
    total = np.bincount(inverse, weights=amounts, minlength=len(uniq))
    span = int(day.max()) + 1
    return OrderLog(
        customers=np.asarray(customers), customer=uniq // span, day=uniq % span, amount=total,
        start=first.astype(dt.date), end=days.max().astype(dt.date),
    )  # fmt: skip


def load_transactions(path: str | Path, columns: dict[str, str] | None = None) -> OrderLog:
    """Read and check an order export (ConfigError naming the field if anything is wrong)."""
    path = Path(path)
    if not path.is_file() or path.suffix.lower() not in SUFFIXES:
        raise ConfigError("transactions", "an existing .csv or .parquet file", str(path))
    log = from_frame(_read(path), columns)
    if log.size < MIN_CUSTOMERS:
        raise ConfigError("transactions.customer_id", "", message=(
            f"transactions.customer_id: must have at least {MIN_CUSTOMERS} customers to fit "
            f"repeat buying (the file has {log.size})"))  # fmt: skip
    return log
