"""Customer lifetime value from a transaction log: BG/NBD purchase counts and Gamma-Gamma spend.

The models are Fader, Hardie and Lee's (2005, "Counting your customers the easy way": BG/NBD;
2005, "RFM and CLV" and Hardie's note 025: Gamma-Gamma). This module turns a log of
``customer_id, day, amount`` rows (days as numbers, as the simulator's tables have them) into
the recency-frequency-monetary summary they fit, fits them and asks them for a horizon's
expectations.

Conventions (the ``lifetimes`` library's): one purchase period is a day; several orders on one
day count as one purchase of their total; ``frequency`` = repeat purchase days (days with a
purchase - 1), ``recency`` = last purchase day - first, ``T`` = end of the log - first purchase
day, ``monetary_value`` = mean amount of the repeat purchase days (0 without a repeat).

The fits are written here (numpy log-likelihoods with analytic gradients, scipy's BFGS on log
parameters, time scaled so the oldest customer's T is 1, as lifetimes does) because lifetimes'
fitters take seconds on a store's customers (autograd, and a Hessian after every fit) and
raise when a fit does not converge. The tests pin :func:`rfm_summary` to
``lifetimes.utils.summary_data_from_transaction_data``, the fits and predictions to lifetimes'
on the same data, and the fits to the papers' CDNOW estimates.

A fit that does not converge does not raise: BG/NBD is refitted with a small penalizer
(lifetimes' L2 on the scaled parameters); Gamma-Gamma (which fails on a young store's few
repeat buyers, typically) gives way to the mean amount of the repeat purchase days.
:attr:`LifetimeModel.notes` says which happened; :func:`clv_per_customer` also warns
(:class:`ClvFitWarning`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import digamma, expit, gammaln, hyp2f1

from experiments.stats.checks import ConfigError, check_number

RFM_COLUMNS = ("frequency", "recency", "T", "monetary_value")
PENALIZER = 0.01  # BG/NBD refit's L2 coefficient, scaled parameters (lifetimes: 0.001-0.1)
LOG_LIMIT = np.log(1e6)  # a scaled parameter beyond 1e6 or below 1e-6: the fit ran off (degenerate)
STEP_DAYS = 30.0  # discounting: expected purchases per 30-day step, discounted at its midpoint


class ClvFitWarning(UserWarning):
    """A CLV fit did not converge and fell back (penalizer, or mean spend), or could not run."""


# -- RFM summary ------------------------------------------------------------------------------
def _day_order(ids: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Row order by id, then day (one int64 key: several times faster than lexsort)."""
    if not len(ids):
        return np.arange(0)
    low, span = days.min(), days.max() - days.min() + 1
    if int(ids.min()) < 0 or float(ids.max()) * span >= 2.0**62:
        return np.lexsort((days, ids))
    return np.argsort(ids.astype(np.int64) * int(span) + (days - low).astype(np.int64))


def _rfm_arrays(ids: np.ndarray, days: np.ndarray, amounts: np.ndarray, end: float):
    """RFM of each id from rows already restricted to ``floor(day) <= end``: ids sorted.

    Returns ``(ids, frequency, recency, T, monetary)``, one entry per distinct id.
    """
    days = np.floor(days)
    order = _day_order(ids, days)
    ids, days, amounts = ids[order], days[order], amounts[order]
    new_day = np.ones(len(ids), dtype=bool)
    new_day[1:] = (ids[1:] != ids[:-1]) | (days[1:] != days[:-1])
    at = np.flatnonzero(new_day)
    day_ids, day_days = ids[at], days[at]
    day_amounts = np.add.reduceat(amounts, at) if len(at) else amounts[:0]
    new_id = np.ones(len(day_ids), dtype=bool)
    new_id[1:] = day_ids[1:] != day_ids[:-1]
    first = np.flatnonzero(new_id)
    count = np.diff(np.append(first, len(day_ids)))
    frequency = (count - 1).astype(float)
    repeat_total = (np.add.reduceat(day_amounts, first) if len(first) else day_amounts[:0]) - (
        day_amounts[first]
    )
    monetary = np.where(frequency > 0, repeat_total / np.maximum(frequency, 1), 0.0)
    first_day, last_day = day_days[first], day_days[first + count - 1]
    return day_ids[first], frequency, last_day - first_day, end - first_day, monetary


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
    days = log[day].to_numpy(dtype=float)
    keep = np.floor(days) <= end
    codes, names = pd.factorize(log[customer][keep], sort=True)
    amounts = log[amount].to_numpy(dtype=float)[keep]
    ids, frequency, recency, T, monetary = _rfm_arrays(codes, days[keep], amounts, end)
    index = pd.Index(names[ids], name=customer)
    return pd.DataFrame({"frequency": frequency, "recency": recency, "T": T,
                         "monetary_value": monetary}, index=index)  # fmt: skip


# -- The models -------------------------------------------------------------------------------
def _distinct_pairs(x: np.ndarray, T: np.ndarray):
    """Distinct (x, T) pairs and each row's pair number (hashing: no sort of the rows)."""
    t_code, t_values = pd.factorize(T)
    x_code, x_values = pd.factorize(x)
    pair, pairs = pd.factorize(x_code.astype(np.int64) * len(t_values) + t_code)
    return x_values[pairs // len(t_values)], t_values[pairs % len(t_values)], pair


@dataclass(frozen=True)
class BgNbd:
    """BG/NBD parameters (time unit: the log's, days).

    Purchase rate ~ Gamma(r, alpha); dropout after each repeat purchase with probability
    ~ Beta(a, b).
    """

    r: float
    alpha: float
    a: float
    b: float

    def expected_purchases(self, t, frequency, recency, T) -> np.ndarray:
        """Expected purchase days in the next ``t`` days of customers with this history.

        Fader, Hardie and Lee (2005), eq. 10. ``t`` a number: one value per customer; an array
        of ``k`` horizons: shape ``(k, customers)``. The hypergeometric term depends on
        (frequency, T) only, so it is computed once per distinct pair.
        """
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        x, tx, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        ux, uT, inv = _distinct_pairs(x, T)
        ts = np.atleast_1d(np.asarray(t, dtype=float))[:, None]
        ca, cb, cc = r + ux, b + ux, a + b + ux - 1
        z = ts / (alpha + uT + ts)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            ln_hyp = np.log(hyp2f1(ca, cb, cc, z))
            bad = np.isinf(ln_hyp)
            if bad.any():  # Euler's transformation where the series overflows
                ca_, cb_, cc_ = (np.broadcast_to(v, z.shape)[bad] for v in (ca, cb, cc))
                ln_hyp[bad] = np.log(hyp2f1(cc_ - ca_, cc_ - cb_, cc_, z[bad])) + (
                    cc_ - ca_ - cb_) * np.log1p(-z[bad])  # fmt: skip
        grow = (a + b + ux - 1) / (a - 1) * (1 - np.exp(ln_hyp + ca * np.log((alpha + uT) / (
            alpha + uT + ts))))  # fmt: skip
        odds = (x > 0) * a / (b + np.maximum(x, 1) - 1) * ((alpha + T) / (alpha + tx)) ** (r + x)
        out = grow[:, inv] / (1 + odds)
        return out[0] if np.ndim(t) == 0 else out


@dataclass(frozen=True)
class GammaGamma:
    """Gamma-Gamma spend parameters: an amount ~ Gamma(p, nu), nu ~ Gamma(q, v) per customer."""

    p: float
    q: float
    v: float

    @property
    def mean_spend(self) -> float:
        """The population's mean amount per purchase, v p / (q - 1)."""
        return self.v * self.p / (self.q - 1)

    def expected_spend(self, frequency, monetary_value) -> np.ndarray:
        """Conditional expected amount per purchase (Hardie's note 025, eq. 5)."""
        x = np.asarray(frequency, dtype=float)
        weight = self.p * x / (self.p * x + self.q - 1)
        return (1 - weight) * self.mean_spend + weight * np.asarray(monetary_value, dtype=float)


@dataclass(frozen=True)
class LifetimeModel:
    """A fitted BG/NBD model and spend (Gamma-Gamma, or the fallback mean spend), with notes.

    Attributes:
        bgnbd: The purchase-count model.
        gamma_gamma: The spend model, or None (not fitted, or fell back to ``mean_spend``).
        mean_spend: The fallback's amount per purchase (mean of the repeat purchase days), or
            None when Gamma-Gamma was used or spend was not fitted.
        notes: What did not go as planned: refits with a penalizer, fallbacks.
    """

    bgnbd: BgNbd
    gamma_gamma: GammaGamma | None = None
    mean_spend: float | None = None
    notes: tuple[str, ...] = ()

    @property
    def params(self) -> dict[str, float]:
        """Every fitted parameter by name."""
        found = vars(self.bgnbd) | (vars(self.gamma_gamma) if self.gamma_gamma else {})
        return {k: float(v) for k, v in found.items()}

    def expected_spend(self, frequency, monetary_value) -> np.ndarray:
        """Each customer's expected amount per future purchase."""
        if self.gamma_gamma is not None:
            return self.gamma_gamma.expected_spend(frequency, monetary_value)
        if self.mean_spend is None:
            raise ConfigError("spend", "a model fitted with spend=True for expected value")
        return np.full(len(frequency), self.mean_spend)


# -- Fitting ----------------------------------------------------------------------------------
class _Fit(NamedTuple):
    params: np.ndarray
    converged: bool


def _minimize(objective, x0: np.ndarray, args: tuple, check=None) -> _Fit:
    """BFGS on log parameters (tol 1e-7, as lifetimes); converged = a finite, sane optimum."""
    with np.errstate(all="ignore"):
        res = minimize(objective, x0, args=args, jac=True, method="BFGS", tol=1e-7)
    sane = np.all(np.isfinite(res.x)) and np.all(np.abs(res.x) < LOG_LIMIT)
    small_gradient = np.all(np.isfinite(res.jac)) and np.max(np.abs(res.jac)) < 1e-4
    params = np.exp(res.x)
    ok = bool(sane and (res.success or small_gradient) and (check is None or check(params)))
    return _Fit(params, ok)


def _bgnbd_objective(theta, x, tx, T, xs, counts, penalizer):
    """Mean negative log-likelihood of BG/NBD (lifetimes' form) and its gradient in log params.

    The terms in frequency only are summed over distinct frequencies ``xs`` (``counts`` each).
    """
    r, alpha, a, b = params = np.exp(theta)
    n = len(x)
    ll_x = (counts * (gammaln(r + xs) - gammaln(r) + gammaln(a + b) + gammaln(b + xs)
                      - gammaln(b) - gammaln(a + b + xs))).sum()  # fmt: skip
    ll_x += n * r * np.log(alpha)
    ln_T, ln_tx = np.log(alpha + T), np.log(alpha + tx)
    A3 = -(r + x) * ln_T
    repeat = x > 0
    A4 = np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * ln_tx
    d = np.where(repeat, A4 - A3, -np.inf)
    share = expit(d)  # weight of the "dropped out after the last purchase" term
    ll = ll_x + (A3 + np.logaddexp(0.0, d)).sum()
    g_r = (counts * (digamma(r + xs) - digamma(r))).sum() + n * np.log(alpha) - (
        (1 - share) * ln_T + share * ln_tx).sum()  # fmt: skip
    g_alpha = n * r / alpha - ((r + x) * ((1 - share) / (alpha + T) + share / (alpha + tx))).sum()
    ab = (counts * (digamma(a + b) - digamma(a + b + xs))).sum()
    g_a = ab + (share / a).sum()
    g_b = ab + (counts * (digamma(b + xs) - digamma(b))).sum() - (
        share / (b + np.maximum(x, 1) - 1)).sum()  # fmt: skip
    grad = np.array([g_r, g_alpha, g_a, g_b]) * params
    value = -ll / n + penalizer * (params**2).sum()
    return value, -grad / n + 2 * penalizer * params**2


def _gamma_gamma_objective(theta, x, m, penalizer):
    """Mean negative log-likelihood of Gamma-Gamma (lifetimes' form) and its gradient."""
    p, q, v = params = np.exp(theta)
    px, ln_xmv = p * x, np.log(x * m + v)
    ll = (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v) + (px - 1) * np.log(m)
          + px * np.log(x) - (px + q) * ln_xmv)  # fmt: skip
    psi = digamma(px + q)
    g_p = (x * (psi - digamma(px) + np.log(m) + np.log(x) - ln_xmv)).sum()
    g_q = (psi - digamma(q) + np.log(v) - ln_xmv).sum()
    g_v = (q / v - (px + q) / (x * m + v)).sum()
    n = len(x)
    grad = np.array([g_p, g_q, g_v]) * params
    return -ll.sum() / n + penalizer * (params**2).sum(), -grad / n + 2 * penalizer * params**2


def fit_bgnbd(frequency, recency, T, penalizer: float = 0.0) -> tuple[BgNbd, bool]:
    """Maximum-likelihood BG/NBD (time scaled so the largest T is 1); also whether it converged."""
    x, tx, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    scale = 1.0 / T.max()
    xs, counts = np.unique(x, return_counts=True)
    args = (x, tx * scale, T * scale, xs, counts, penalizer)
    fit = _minimize(_bgnbd_objective, np.full(4, 0.1), args)
    r, alpha, a, b = fit.params
    return BgNbd(r, alpha / scale, a, b), fit.converged


def fit_gamma_gamma(frequency, monetary_value, penalizer: float = 0.0) -> tuple[GammaGamma, bool]:
    """Maximum-likelihood Gamma-Gamma on repeat buyers; converged needs q > 1 (a finite mean).

    Amounts are divided by their mean for the fit (v scales with them; p and q do not), so a
    penalizer means the same whatever the currency.
    """
    x, m = np.asarray(frequency, dtype=float), np.asarray(monetary_value, dtype=float)
    scale = m.mean()
    fit = _minimize(_gamma_gamma_objective, np.full(3, 0.1), (x, m / scale, penalizer),
                    check=lambda params: params[1] > 1)  # fmt: skip
    p, q, v = fit.params
    return GammaGamma(p, q, v * scale), fit.converged


def fit_lifetime_model(summary: pd.DataFrame, spend: bool = True, penalizer: float = 0.0):
    """Fit BG/NBD to ``summary`` (:func:`rfm_summary`), and Gamma-Gamma to its repeat buyers.

    Gamma-Gamma assumes spend is independent of purchase frequency and needs positive amounts;
    it is fitted on customers with ``frequency > 0``. A BG/NBD fit that does not converge is
    refitted with ``PENALIZER``; spend falls back to the repeat purchase days' mean amount
    (see the module; ``notes`` say so).
    """
    check_number(penalizer, "penalizer", ge=0)
    needed = RFM_COLUMNS if spend else RFM_COLUMNS[:3]
    missing = [c for c in needed if c not in summary.columns]
    if missing:
        raise ConfigError("summary", "an RFM table with " + ", ".join(needed), missing)
    repeat = summary[summary["frequency"] > 0]
    if spend and (repeat["monetary_value"] <= 0).any():
        bad = int((repeat["monetary_value"] <= 0).sum())
        raise ConfigError("amount", "positive for every repeat buyer (Gamma-Gamma)", f"{bad} not")
    notes = []
    bgnbd, ok = fit_bgnbd(summary["frequency"], summary["recency"], summary["T"], penalizer)
    if not ok:
        bgnbd, ok = fit_bgnbd(summary["frequency"], summary["recency"], summary["T"],
                              max(penalizer, PENALIZER))  # fmt: skip
        state = "converged" if ok else "did not converge either; its estimates are used"
        notes.append(f"BG/NBD did not converge; refitted with penalizer {PENALIZER:g}: {state}")
    if not spend:
        return LifetimeModel(bgnbd, notes=tuple(notes))
    return _with_spend(bgnbd, repeat, penalizer, notes)


def _with_spend(bgnbd: BgNbd, repeat: pd.DataFrame, penalizer: float, notes: list[str]):
    """Gamma-Gamma on the repeat buyers, or else the mean amount of their repeat purchase days.

    No penalized refit here: an L2 penalty on (p, q, v) pulls the population mean v p / (q - 1)
    anywhere (+37% on a test's one-price store), while the mean amount is unbiased for it.
    """
    x, m = repeat["frequency"].to_numpy(), repeat["monetary_value"].to_numpy()
    if len(x) >= 2:
        model, ok = fit_gamma_gamma(x, m, penalizer)
        if ok:
            return LifetimeModel(bgnbd, model, None, tuple(notes))
    mean = float((x * m).sum() / x.sum()) if len(x) else float("nan")
    why = "did not converge" if len(x) >= 2 else "needs at least 2"
    notes.append(
        f"Gamma-Gamma {why} on {len(x):,} repeat buyers; spend is the mean amount of "
        f"their {int(x.sum()):,} repeat purchase days ({mean:.4g}) for everyone"
    )
    return LifetimeModel(bgnbd, None, mean, tuple(notes))


# -- Predictions ------------------------------------------------------------------------------
def expected_purchases(model: LifetimeModel, summary: pd.DataFrame, days: float) -> np.ndarray:
    """Each customer's expected purchase days in the next ``days`` days (BG/NBD)."""
    check_number(days, "horizon_days", gt=0)
    return model.bgnbd.expected_purchases(
        float(days), summary["frequency"], summary["recency"], summary["T"]
    )


def expected_value(
    model: LifetimeModel, summary: pd.DataFrame, days: float, yearly_discount: float = 0.0
) -> np.ndarray:
    """Each customer's expected amount over the next ``days`` days, discounted.

    Undiscounted: expected purchases x expected amount per purchase. With a discount, the
    horizon is cut into 30-day steps, each step's expected purchases discounted at
    ``(1 + yearly_discount) ** (-t / 365)`` at the step's midpoint ``t`` (the discount of the
    mean time of a purchase in the step, to within a few hundredths of a percent).
    """
    check_number(days, "horizon_days", gt=0)
    check_number(yearly_discount, "discount_rate", ge=0)
    spend = model.expected_spend(summary["frequency"], summary["monetary_value"])
    if yearly_discount == 0:
        return spend * expected_purchases(model, summary, days)
    ends = np.append(np.arange(STEP_DAYS, days, STEP_DAYS), days)
    cumulative = model.bgnbd.expected_purchases(
        ends, summary["frequency"], summary["recency"], summary["T"]
    )
    steps = np.diff(cumulative, axis=0, prepend=0.0)
    mids = (ends + np.append(0.0, ends[:-1])) / 2
    return spend * ((1 + yearly_discount) ** (-mids / 365) @ steps)


class ClvPrediction(NamedTuple):
    """:func:`predict_clv`'s result.

    Attributes:
        values: Predicted amount per user id ``0..n_users-1``; NaN for non-customers.
        model: The fitted model (None when there were too few customers to fit).
        customers: Customers at ``end`` (users with an order before it).
        fitted: Customers the model was fitted on (at most ``max_fit``).
        notes: Fallbacks taken (also in ``model.notes``), or why nothing was fitted.
    """

    values: np.ndarray
    model: LifetimeModel | None
    customers: int
    fitted: int
    notes: tuple[str, ...]


MIN_CUSTOMERS = 20


def predict_clv(
    orders: pd.DataFrame, n_users: int, end: float = 0.0, horizon_days: float = 365.0,
    discount_rate: float = 0.0, max_fit: int = 20_000, seed: int = 0,
) -> ClvPrediction:  # fmt: skip
    """:func:`clv_per_customer` with the model, the counts and the notes."""
    check_number(horizon_days, "horizon_days", gt=0)
    check_number(discount_rate, "discount_rate", ge=0)
    check_number(max_fit, "max_fit", ge=MIN_CUSTOMERS, integer=True)
    out = np.full(n_users, np.nan)
    time = orders["time"].to_numpy(dtype=float)
    past = time < end
    user = orders["user_id"].to_numpy()[past]
    amount = np.maximum(orders["margin"].to_numpy(dtype=float)[past], 0.01)  # Gamma-Gamma: > 0
    # T runs to ``end``; a purchase on end's own day is not in the past when end is a whole day
    ids, x, tx, T, m = _rfm_arrays(user, time[past], amount, end)
    if len(ids) < MIN_CUSTOMERS:
        note = f"no CLV fit: {len(ids)} customers before day {end:g} (at least {MIN_CUSTOMERS})"
        return ClvPrediction(out, None, len(ids), 0, (note,))
    summary = pd.DataFrame({"frequency": x, "recency": tx, "T": T, "monetary_value": m})
    fit_rows = summary
    if len(summary) > max_fit:
        pick = np.random.default_rng(seed).choice(len(summary), max_fit, replace=False)
        fit_rows = summary.iloc[np.sort(pick)]
    model = fit_lifetime_model(fit_rows)
    out[ids] = expected_value(model, summary, horizon_days, discount_rate)
    return ClvPrediction(out, model, len(ids), len(fit_rows), model.notes)


def clv_per_customer(
    orders: pd.DataFrame, n_users: int, end: float = 0.0, horizon_days: float = 365.0,
    discount_rate: float = 0.0, max_fit: int = 20_000, seed: int = 0,
) -> np.ndarray:  # fmt: skip
    """Predicted margin over ``[end, end + horizon_days)`` of each user who ordered before ``end``.

    ``orders`` has ``user_id, time, margin`` (days, as the simulator's orders table; user ids
    ``0..n_users-1``). BG/NBD and Gamma-Gamma are fitted on the orders before ``end`` of at
    most ``max_fit`` customers drawn at random (seeded: seven parameters do not need a million
    rows) and predict every customer; future margin is discounted at ``discount_rate`` a year
    (:func:`expected_value`). An order's margin enters as at least 0.01 (Gamma-Gamma needs
    positive amounts). Returns one value per user id; NaN for users with no order before
    ``end``, and for everyone when fewer than 20 customers exist. Fallbacks (see the module)
    are announced with a :class:`ClvFitWarning`.
    """
    found = predict_clv(orders, n_users, end, horizon_days, discount_rate, max_fit, seed)
    for note in found.notes:
        warnings.warn(note, ClvFitWarning, stacklevel=2)
    return found.values
