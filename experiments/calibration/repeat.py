"""The world's repeat buying as a likelihood: fit it to a log, draw each customer's state.

A customer of the world visits at its own hazard ``lambda_i (1 + B exp(-s / D))`` (``s`` days
since its last order; ``lambda_i`` = ``traffic.visit_rate`` x its segment's factor x a
Gamma(k, 1/k) multiplier ``g``, ``k`` = ``population.visit_rate_shape``; thinned by the
weekday cycle). A visit ends in an order with the agent's chance ``p_i``
(:func:`sim.history.customer_buy_chance`), else lapses it with ``q_i`` =
``lapse_per_visit`` x its churn; a lapsed customer visits at ``lapsed_rate`` times the hazard and
an order ends the lapse. In the boost's own clock (``U = s + B D (1 - exp(-s / D))``) that is a
two-state chain: active -> order at ``a = lambda p``, active -> lapsed at ``b = lambda (1 - p) q``,
lapsed -> order at ``c = lapsed_rate a``. Between two orders ``U`` apart its density is
``a e^{-(a+b)U} + b c (e^{-cU} - e^{-(a+b)U}) / (a + b - c)`` (times the hazard's boost at the
order), and no order in the ``U`` to the end of the log has chance ``e^{-(a+b)U}`` (active)
plus the second term over ``c`` (lapsed). ``g`` is integrated out on a grid of Gamma bins.

The drawn past's reduced model (:mod:`sim.history`), its purchase chance with the orders of
the planned cart returns added (``funnel.come_back``); it leaves out satiation, the saved carts
taken up by chance and the engine setting the hazard visit by visit, so the engine's level is
checked by :mod:`experiments.calibration.forecast` (fit.csv), not matched. Given a customer's
purchase days, the posterior of ``(g, lapsed)`` at the end of the log is its state.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numba import njit, prange
from scipy.optimize import minimize
from scipy.special import expit, gammainc, logit, logsumexp

from experiments.calibration.transactions import OrderLog

GRID = np.logspace(-4.0, 2.5, 66)  # visit-rate multipliers g (mean 1): steps of 26%
_EDGES = np.sqrt(GRID[:-1] * GRID[1:])
KEYS = (
    "traffic.visit_rate",
    "population.visit_rate_shape",
    "retention.lapse_per_visit",
    "retention.lapsed_rate",
    "retention.post_purchase_boost",
    "retention.boost_days",
)


@dataclass(frozen=True)
class Repeat:
    """The world's repeat-buying parameters (the scenario keys of :data:`KEYS`, in order)."""

    visit_rate: float
    shape: float
    lapse_per_visit: float
    lapsed_rate: float
    boost: float
    boost_days: float

    def as_keys(self) -> dict[str, float]:
        """Scenario key: value."""
        return dict(zip(KEYS, dataclasses.astuple(self), strict=True))


class Agents(NamedTuple):
    """What the likelihood needs of each agent: factor on its visit rate, buy and lapse chances."""

    factor: np.ndarray  # segment's visit factor x the weekday thinning's mean
    p: np.ndarray  # chance an own visit ends in an order (a customer)
    churn: np.ndarray  # segment's factor on lapse_per_visit


class Gaps(NamedTuple):
    """Each customer's gaps: between purchase days (ending in an order) and to the log's end."""

    customer: np.ndarray  # customer of each order gap
    gap: np.ndarray  # days between two purchase days
    censor: np.ndarray  # per customer: days from its last purchase to the end of the log


def gaps_of(log: OrderLog) -> Gaps:
    """Purchase-day gaps of a log (purchases at midday; the log ends after its last day)."""
    c, d = log.customer, log.day.astype(float)
    same = c[1:] == c[:-1]
    last = np.append(np.flatnonzero(~same), len(c) - 1)
    return Gaps(c[1:][same], np.diff(d)[same], log.days - (d[last] + 0.5))


def _weights(shape: float) -> np.ndarray:
    cdf = gammainc(shape, shape * _EDGES)
    return np.diff(np.concatenate([[0.0], cdf, [1.0]]))


def _terms(r: Repeat, agents: Agents, idx: np.ndarray, span: np.ndarray):
    """Log of the active and of the lapsed term at ``U(span)``, shape ``[rows, grid]``."""
    u = span + r.boost * r.boost_days * -np.expm1(-span / r.boost_days)
    lam = (r.visit_rate * agents.factor[idx])[:, None] * GRID[None, :]
    p = agents.p[idx][:, None]
    q = np.minimum(r.lapse_per_visit * agents.churn[idx], 1.0)[:, None]
    a, b = lam * p, lam * (1 - p) * q
    c = r.lapsed_rate * a
    s = a + b
    u = u[:, None]
    active = -s * u
    lapsed = np.log(b) - c * u + np.log(-np.expm1(-(s - c) * u)) - np.log(s - c)
    return active, lapsed, a, c


def log_posterior(r: Repeat, agents: Agents, g: Gaps) -> tuple[np.ndarray, np.ndarray]:
    """Per customer and grid point: log prior x likelihood, and log P(lapsed | g, data)."""
    n = len(g.censor)
    out = np.tile(np.log(np.maximum(_weights(r.shape), 1e-300)), (n, 1))
    if len(g.gap):
        active, lapsed, a, c = _terms(r, agents, g.customer, g.gap)
        dens = np.logaddexp(np.log(a) + active, np.log(c) + lapsed)
        _add_rows(out, g.customer, dens)
    active, lapsed, _, _ = _terms(r, agents, np.arange(n), g.censor)
    end = np.logaddexp(active, lapsed)
    return out + end, lapsed - end


def _add_rows(out: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
    """``out[rows] += values`` for sorted ``rows`` with repeats (one reduceat, no Python loop)."""
    start = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    out[rows[start]] += np.add.reduceat(values, start, axis=0)


@njit(cache=True, parallel=True)
def _marginal(v, lapse, lapsed_rate, boost, days, factor, p, churn, first, gap, censor, logw):
    """Sum over customers of log sum_j w_j L(data | g_j): :func:`log_posterior`, fused."""
    n, m = len(censor), len(logw)
    out = np.empty(n)
    for i in prange(n):
        row = np.empty(m)
        q = min(lapse * churn[i], 1.0)
        for j in range(m):
            lam = v * factor[i] * GRID[j]
            a = lam * p[i]
            b = lam * (1.0 - p[i]) * q
            c = lapsed_rate * a
            s = a + b
            acc = logw[j]
            for k in range(first[i], first[i + 1]):
                u = gap[k] + boost * days * -np.expm1(-gap[k] / days)
                x = np.log(a) - s * u
                y = np.log(b * c / (s - c)) - c * u + np.log(-np.expm1(-(s - c) * u))
                acc += max(x, y) + np.log1p(np.exp(-abs(x - y)))
            u = censor[i] + boost * days * -np.expm1(-censor[i] / days)
            x = -s * u
            y = np.log(b / (s - c)) - c * u + np.log(-np.expm1(-(s - c) * u))
            row[j] = acc + max(x, y) + np.log1p(np.exp(-abs(x - y)))
        top = row.max()
        out[i] = top + np.log(np.exp(row - top).sum())
    return out.sum()


def log_likelihood(r: Repeat, agents: Agents, g: Gaps) -> float:
    """Log-likelihood of every customer's purchase days after its first (g integrated out)."""
    first = np.searchsorted(g.customer, np.arange(len(g.censor) + 1))
    logw = np.log(np.maximum(_weights(r.shape), 1e-300))
    marginal = _marginal(
        r.visit_rate,
        r.lapse_per_visit,
        r.lapsed_rate,
        r.boost,
        r.boost_days,
        agents.factor,
        agents.p,
        agents.churn,
        first,
        g.gap,
        g.censor,
        logw,
    )
    boost = np.log1p(r.boost * np.exp(-g.gap / r.boost_days)).sum()  # the hazard at each order
    return float(marginal + boost)


def _unpack(theta: np.ndarray) -> Repeat:
    v, k, q, lr, b, d = theta
    return Repeat(float(np.exp(v)), float(np.exp(k)), float(expit(q)), float(expit(lr)),
                  float(np.exp(b)), float(np.exp(d)))  # fmt: skip


def _pack(r: Repeat) -> np.ndarray:
    return np.array([np.log(r.visit_rate), np.log(r.shape), logit(r.lapse_per_visit),
                     logit(r.lapsed_rate), np.log(r.boost), np.log(r.boost_days)])  # fmt: skip


BOUNDS = [(None, None), (np.log(0.02), np.log(50.0)), (logit(1e-4), logit(0.999)),
          (logit(1e-3), logit(0.95)), (np.log(0.01), np.log(500.0)),
          (np.log(0.5), np.log(365.0))]  # fmt: skip


class RepeatFit(NamedTuple):
    """The fitted parameters, the log-likelihood at them, and the optimiser's verdict."""

    params: Repeat
    log_likelihood: float
    converged: bool
    evaluations: int


def subset(agents: Agents, g: Gaps, keep: np.ndarray) -> tuple[Agents, Gaps]:
    """The agents and gaps of the customers ``keep`` (sorted codes), renumbered."""
    new = np.full(len(g.censor), -1)
    new[keep] = np.arange(len(keep))
    rows = new[g.customer] >= 0
    picked = Agents(*(x[keep] for x in agents))
    return picked, Gaps(new[g.customer[rows]], g.gap[rows], g.censor[keep])


FREE = (0, 1, 2, 3, 4, 5)  # indices of the fitted parameters (all six)


def _optimise(start: Repeat, agents: Agents, g: Gaps, evaluations: int, ftol: float):
    n, full, free = max(len(g.censor), 1), _pack(start), list(FREE)

    def objective(theta):
        x = full.copy()
        x[free] = theta
        return -log_likelihood(_unpack(x), agents, g) / n

    found = minimize(objective, full[free], method="L-BFGS-B", bounds=[BOUNDS[i] for i in free],
                     options={"maxfun": evaluations, "ftol": ftol})  # fmt: skip
    full[free] = found.x
    return full, found


def fit_repeat(start: Repeat, agents: Agents, g: Gaps, seed: int = 0, first_fit: int = 4000,
               evaluations: int = 600, polish: int = 100) -> RepeatFit:  # fmt: skip
    """Maximum likelihood from ``start`` (L-BFGS-B on log and logit scales).

    Two stages, for speed: the search runs on ``first_fit`` customers drawn at random (seeded),
    then continues on every customer from where it stopped (at most ``polish`` evaluations of
    the full log's likelihood).
    """
    n = len(g.censor)
    used = 0
    if n > 2 * first_fit:
        keep = np.sort(np.random.default_rng(seed).choice(n, first_fit, replace=False))
        x, found = _optimise(start, *subset(agents, g, keep), evaluations, 1e-9)
        start, used = _unpack(x), int(found.nfev)
    x, found = _optimise(start, agents, g, polish if used else evaluations, 1e-9)
    return RepeatFit(_unpack(x), -found.fun * max(n, 1), bool(found.success),
                     used + int(found.nfev))  # fmt: skip


def draw_state(r: Repeat, agents: Agents, g: Gaps, u_g: np.ndarray, u_lapse: np.ndarray):
    """Each customer's (g, lapsed) at the end of the log from its posterior, by given uniforms."""
    post, lapsed = log_posterior(r, agents, g)
    prob = np.exp(post - logsumexp(post, axis=1, keepdims=True))
    cdf = np.cumsum(prob, axis=1)
    j = np.minimum((cdf < (u_g * cdf[:, -1])[:, None]).sum(axis=1), len(GRID) - 1)
    rows = np.arange(len(j))
    return GRID[j], u_lapse < np.exp(lapsed[rows, j])
