"""Customer lifetime value from a transaction log: BG/NBD purchase counts and Gamma-Gamma spend.

The models are the ``lifetimes`` library's (Fader, Hardie and Lee 2005, "Counting your customers
the easy way"; Fader, Hardie and Lee 2005, "RFM and CLV"); this module only turns a log of
``customer_id, day, amount`` rows (days as numbers, as the simulator's tables have them) into
the recency-frequency-monetary summary they fit, and asks them for a horizon's expectations.

Conventions (``lifetimes``'): one purchase period is a day; several orders on one day count as
one purchase of their total; ``frequency`` = repeat purchase days (days with a purchase - 1),
``recency`` = last purchase day - first, ``T`` = end of the log - first purchase day,
``monetary_value`` = mean amount of the repeat purchase days (0 without a repeat). A test pins
:func:`rfm_summary` to ``lifetimes.utils.summary_data_from_transaction_data`` and the fit to the
paper's CDNOW estimates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from experiments.stats.checks import ConfigError, check_number

RFM_COLUMNS = ("frequency", "recency", "T", "monetary_value")


def rfm_summary(
    log: pd.DataFrame, end: float, customer: str = "customer_id", day: str = "day",
    amount: str = "amount",
) -> pd.DataFrame:  # fmt: skip
    """One row per customer with a purchase by ``end`` (day number, inclusive): RFM columns.

    Days are floored to whole days; rows after ``end`` are ignored. Index: the customer id.
    """
    for col in (customer, day, amount):
        if col not in log.columns:
            allowed = "a column of the log: " + ", ".join(map(str, log.columns))
            raise ConfigError(f"column '{col}'", allowed)
    days = np.floor(log[day].to_numpy(dtype=float))
    rows = log.assign(**{day: days})[days <= end]
    daily = rows.groupby([customer, day], sort=True)[amount].sum().reset_index()
    g = daily.groupby(customer, sort=True)
    first, last = g[day].min(), g[day].max()
    frequency = g.size() - 1
    repeat_total = g[amount].sum() - g[amount].first()  # sorted by day: first = first day's
    monetary = np.where(frequency > 0, repeat_total / frequency.where(frequency > 0, 1), 0.0)
    return pd.DataFrame({"frequency": frequency.astype(float), "recency": last - first,
                         "T": end - first, "monetary_value": monetary})  # fmt: skip


@dataclass(frozen=True)
class LifetimeModel:
    """A fitted BG/NBD model and, if spend was fitted, a Gamma-Gamma model (lifetimes objects).

    Attributes:
        bgnbd: ``lifetimes.BetaGeoFitter`` (params ``r, alpha, a, b``; time unit: days).
        gamma_gamma: ``lifetimes.GammaGammaFitter`` (params ``p, q, v``) or None.
    """

    bgnbd: Any
    gamma_gamma: Any | None

    @property
    def params(self) -> dict[str, float]:
        """Every fitted parameter by name."""
        found = dict(self.bgnbd.params_)
        if self.gamma_gamma is not None:
            found |= dict(self.gamma_gamma.params_)
        return {k: float(v) for k, v in found.items()}


def fit_lifetime_model(summary: pd.DataFrame, spend: bool = True, penalizer: float = 0.0):
    """Fit BG/NBD to ``summary`` (:func:`rfm_summary`), and Gamma-Gamma to its repeat buyers.

    Gamma-Gamma assumes spend is independent of purchase frequency and needs positive amounts;
    it is fitted on customers with ``frequency > 0``.
    """
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    check_number(penalizer, "penalizer", ge=0)
    needed = RFM_COLUMNS if spend else RFM_COLUMNS[:3]
    missing = [c for c in needed if c not in summary.columns]
    if missing:
        raise ConfigError("summary", "an RFM table with " + ", ".join(needed), missing)
    repeat = summary[summary["frequency"] > 0]
    if spend and (repeat["monetary_value"] <= 0).any():
        bad = int((repeat["monetary_value"] <= 0).sum())
        raise ConfigError("amount", "positive for every repeat buyer (Gamma-Gamma)", f"{bad} not")
    bgnbd = BetaGeoFitter(penalizer_coef=penalizer)
    bgnbd.fit(summary["frequency"], summary["recency"], summary["T"])
    if not spend:
        return LifetimeModel(bgnbd, None)
    gamma_gamma = GammaGammaFitter(penalizer_coef=penalizer)
    gamma_gamma.fit(repeat["frequency"], repeat["monetary_value"])
    return LifetimeModel(bgnbd, gamma_gamma)


def expected_purchases(model: LifetimeModel, summary: pd.DataFrame, days: float) -> np.ndarray:
    """Each customer's expected purchase days in the next ``days`` days (BG/NBD)."""
    check_number(days, "horizon_days", gt=0)
    expected = model.bgnbd.conditional_expected_number_of_purchases_up_to_time(
        days, summary["frequency"], summary["recency"], summary["T"]
    )
    return np.asarray(expected, dtype=float)


def expected_value(
    model: LifetimeModel, summary: pd.DataFrame, days: float, yearly_discount: float = 0.0
) -> np.ndarray:
    """Each customer's expected amount over the next ``days`` days, discounted.

    Undiscounted: expected purchases x the Gamma-Gamma conditional expected amount per purchase.
    With a discount, the horizon is cut into 30-day steps, each step's purchases discounted at
    ``(1 + yearly_discount) ** (-step_end / 365)``.
    """
    check_number(yearly_discount, "discount_rate", ge=0)
    if model.gamma_gamma is None:
        raise ConfigError("spend", "a model fitted with spend=True for expected value")
    spend = np.asarray(model.gamma_gamma.conditional_expected_average_profit(
        summary["frequency"], summary["monetary_value"]), dtype=float)  # fmt: skip
    ends = np.append(np.arange(30.0, days, 30.0), days)
    cumulative = np.stack([expected_purchases(model, summary, t) for t in ends])
    steps = np.diff(cumulative, axis=0, prepend=0.0)
    weights = (1 + yearly_discount) ** (-ends / 365)
    return spend * (weights[:, None] * steps).sum(axis=0)


def clv_per_customer(
    orders: pd.DataFrame, n_users: int, end: float = 0.0, horizon_days: float = 365.0,
    discount_rate: float = 0.0, max_fit: int = 20_000, seed: int = 0,
) -> np.ndarray:  # fmt: skip
    """Predicted margin over ``(end, end + horizon_days]`` of each user who ordered before ``end``.

    ``orders`` has ``user_id, time, margin`` (days, as the simulator's orders table). BG/NBD and
    Gamma-Gamma are fitted on the orders before ``end`` of at most ``max_fit`` customers drawn
    at random (seeded: four parameters do not need a million rows) and predict every customer.
    Returns one value per user id ``0..n_users-1``; NaN for users with no order before ``end``.
    """
    out = np.full(n_users, np.nan)
    past = orders[orders["time"].to_numpy() < end]
    if past["user_id"].nunique() < 20:
        return out
    log = pd.DataFrame({"customer_id": past["user_id"].to_numpy(),
                        "day": past["time"].to_numpy(),
                        "amount": np.maximum(past["margin"].to_numpy(), 0.01)})  # fmt: skip
    summary = rfm_summary(log, end=np.floor(end) - 1e-9 if end == np.floor(end) else end)
    fit_rows = summary
    if len(summary) > max_fit:
        pick = np.random.default_rng(seed).choice(len(summary), max_fit, replace=False)
        fit_rows = summary.iloc[np.sort(pick)]
    model = fit_lifetime_model(fit_rows)
    out[summary.index.to_numpy()] = expected_value(model, summary, horizon_days, discount_rate)
    return out
