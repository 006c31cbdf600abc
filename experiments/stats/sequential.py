"""Sequential tests that stay valid when an A/B test is looked at every day.

Three ways to read a test at looks ``k = 1..K`` with z statistics ``z_k`` (two-sided):

- :func:`naive_peek`: reject at the first look with ``|z_k| >= z_{1-alpha/2}``. Invalid: with 30
  equally spaced looks at alpha 0.05 its false-positive rate is about 28% (Armitage, McPherson
  and Rowe 1969), which is why it is here: to show the inflation.
- :func:`group_sequential_bounds`: Lan-DeMets alpha spending with the O'Brien-Fleming-type
  function ``alpha(t) = 2 - 2 Phi(z_{1-alpha/4} / sqrt(t))`` on each side; boundaries found by
  recursive numerical integration of the joint law of the z statistics (Jennison and Turnbull 2000,
  ch. 19). Needs the information fraction of each look (e.g. users so far / planned users).
- :func:`msprt_bounds` / :func:`always_valid_p_values` / :func:`confidence_sequence`: the mixture
  sequential probability ratio test (Johari, Pekelis and Walsh 2017; Robbins' normal mixture)
  with a ``N(0, tau**2)`` mixing distribution on the lift. Valid at any stopping time without a
  planned horizon; ``tau**2 = mixing * (variance of the estimate at the planned end)``.

statsmodels and scipy have none of these, so they are written here; the tests pin the
O'Brien-Fleming boundaries against published values and calibrate all three by simulation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import optimize, stats

from experiments.stats.checks import ConfigError, check_number

DEFAULT_MIXING = 10.0  # tau**2 / final variance: near the smallest final-look boundary at 5%


class SequentialResult(NamedTuple):
    """Outcome of a sequential test on one or many series of looks.

    Attributes:
        reject: True where some look crossed its boundary.
        look: Index (0-based) of the first crossing, -1 where none.
    """

    reject: np.ndarray
    look: np.ndarray


def information_fractions(info) -> np.ndarray:
    """Check looks' information (sample sizes or fractions) and scale them to end at 1."""
    t = np.asarray(info, dtype=float)
    if t.ndim != 1 or t.size == 0 or t[0] <= 0 or np.any(np.diff(t) <= 0):
        raise ConfigError("looks", "a non-empty increasing sequence of positive information", info)
    return t / t[-1]


def obrien_fleming_spending(t, alpha: float) -> np.ndarray:
    """Lan-DeMets O'Brien-Fleming-type spending, two-sided: alpha spent by fraction ``t``.

    Each side spends ``alpha / 2`` with ``2 - 2 Phi(z_{1 - alpha/4} / sqrt(t))``, as R's ldbounds
    and gsDesign (``sfLDOF``) do for a symmetric two-sided test; the total is twice that.
    """
    return 2 * (2 - 2 * stats.norm.cdf(stats.norm.isf(alpha / 4) / np.sqrt(t)))


def first_crossing(z, bounds) -> SequentialResult:
    """First look where ``|z| >= bound`` (looks on the last axis of ``z``)."""
    crossed = np.abs(np.asarray(z, dtype=float)) >= np.asarray(bounds, dtype=float)
    reject = crossed.any(axis=-1)
    return SequentialResult(reject, np.where(reject, crossed.argmax(axis=-1), -1))


def naive_peek(z, alpha: float = 0.05) -> SequentialResult:
    """Reject at the first look with ``|z| >= z_{1-alpha/2}``: the invalid daily peek."""
    return first_crossing(z, stats.norm.isf(alpha / 2))


def group_sequential_bounds(
    info, alpha: float = 0.05, spending: Callable = obrien_fleming_spending
) -> np.ndarray:
    """Two-sided z boundaries at each look from an alpha-spending function.

    Args:
        info: Information at each look (sample sizes, or fractions ending at 1).
        alpha: Total two-sided type I error.
        spending: ``spending(t, alpha)``, cumulative alpha spent at fraction ``t``.

    Returns:
        ``b_k`` such that under H0 ``P(first |z| >= b_k at look k) = spent_k - spent_{k-1}``.
    """
    check_number(alpha, "alpha", gt=0, lt=1)
    t = information_fractions(info)
    spent = np.diff(np.concatenate([[0.0], spending(t, alpha)]))
    # At least 8 grid points per sd of the smallest increment over +-9 sd of the score.
    points = int(np.clip(np.ceil(18 * 8 / np.sqrt(np.diff(t, prepend=0.0).min())), 801, 4001))
    bounds = [float(stats.norm.isf(spent[0] / 2))]
    grid, density = _start_density(t[0], bounds[0], points)
    for k in range(1, len(t)):
        sd = np.sqrt(t[k] - t[k - 1])
        bound = _solve_bound(grid, density, sd, np.sqrt(t[k]), spent[k])
        bounds.append(bound)
        grid, density = _next_density(grid, density, sd, bound * np.sqrt(t[k]), np.sqrt(t[k]))
    return np.array(bounds)


def _trapezoid_weights(grid: np.ndarray) -> np.ndarray:
    step = grid[1] - grid[0]
    w = np.full(grid.size, step)
    w[[0, -1]] = step / 2
    return w


def _start_density(t1: float, bound: float, points: int) -> tuple[np.ndarray, np.ndarray]:
    """Density of the score ``S_1 = z_1 sqrt(t_1)`` on the continuation region."""
    half = min(bound, 9.0) * np.sqrt(t1)
    grid = np.linspace(-half, half, points)
    return grid, stats.norm.pdf(grid, scale=np.sqrt(t1))


def _crossing(grid, density, sd, scale, bound) -> float:
    """P(stay until now, then |S_k| >= bound * scale) with independent N(0, sd^2) increments."""
    edge = bound * scale
    tail = stats.norm.sf((edge - grid) / sd) + stats.norm.cdf((-edge - grid) / sd)
    return float(np.sum(_trapezoid_weights(grid) * density * tail))


def _solve_bound(grid, density, sd, scale, target) -> float:
    """Find the boundary whose crossing probability equals ``target`` (on the log scale)."""
    if target <= 0:
        return np.inf

    def gap(b: float) -> float:
        return np.log(max(_crossing(grid, density, sd, scale, b), 1e-300)) - np.log(target)

    return float(optimize.brentq(gap, 1e-3, 40.0, xtol=1e-10))


def _next_density(grid, density, sd, edge, scale) -> tuple[np.ndarray, np.ndarray]:
    """Sub-density of ``S_k`` on ``(-edge, edge)``: convolve with the increment's normal law."""
    half = min(edge, 9.0 * scale)
    new_grid = np.linspace(-half, half, grid.size)
    kernel = stats.norm.pdf((new_grid[:, None] - grid[None, :]) / sd) / sd
    return new_grid, kernel @ (_trapezoid_weights(grid) * density)


def msprt_bounds(info, alpha: float = 0.05, mixing: float = DEFAULT_MIXING) -> np.ndarray:
    """Two-sided z boundaries of the normal-mixture SPRT at each look.

    With ``r = tau**2 / var_final`` and information fraction ``t``, the mixture likelihood ratio
    is ``(1 + r t)**-0.5 * exp(z**2 r t / (2 (1 + r t)))``; it crosses ``1 / alpha`` when
    ``z**2 >= (1 + r t) / (r t) * (2 log(1 / alpha) + log(1 + r t))``.
    """
    check_number(alpha, "alpha", gt=0, lt=1)
    check_number(mixing, "mixing", gt=0)
    return _mixture_bound(mixing * information_fractions(info), alpha)


def _mixture_bound(rt: np.ndarray, alpha: float) -> np.ndarray:
    return np.sqrt((1 + rt) / rt * (2 * np.log(1 / alpha) + np.log1p(rt)))


def _inverse_lr(z, rt: np.ndarray) -> np.ndarray:
    """``min(1, 1 / mixture likelihood ratio)`` at each look."""
    log_lr = -0.5 * np.log1p(rt) + np.asarray(z, float) ** 2 * rt / (2 * (1 + rt))
    return np.minimum(1.0, np.exp(-log_lr))


def always_valid_p_values(z, info, mixing: float = DEFAULT_MIXING) -> np.ndarray:
    """Always-valid p-values: running minimum of ``1 / likelihood ratio`` (looks on last axis)."""
    return np.minimum.accumulate(_inverse_lr(z, mixing * information_fractions(info)), axis=-1)


def confidence_sequence(estimate, se, tau: float, alpha: float = 0.05):
    """Always-valid ``1 - alpha`` interval for a lift with standard error ``se`` at this look.

    Normal-mixture boundary with mixing standard deviation ``tau`` (in the lift's units): the
    set of lifts the mSPRT would not reject. Intersect over looks for a running interval.

    Returns:
        ``(low, high)``.
    """
    var = np.asarray(se, dtype=float) ** 2
    half = np.sqrt(var * (var + tau**2) / tau**2 * (2 * np.log(1 / alpha) + np.log1p(tau**2 / var)))
    return estimate - half, estimate + half


def sequential_looks(analysis, frame, metric: str, days, day_col: str = "first_exposure_day",
                     planned_n: float | None = None, mixing: float = DEFAULT_MIXING):  # fmt: skip
    """Read one metric at several daily looks with the naive, group-sequential and mSPRT rules.

    Look ``d`` analyses the users first exposed on or before day ``d`` (the per-user table holds
    totals, so each user's later activity is included: a stand-in for as-of-day data). The
    information fraction is users so far over ``planned_n`` (default: users at the last look).

    Args:
        analysis: An :class:`~experiments.stats.analysis.Analysis` (control and first treatment
            arm are compared; its alpha is used).
        frame: The per-user table.
        metric: Name of one of the analysis' metrics.
        days: Days of the looks, increasing.
        day_col: Each user's first exposure day.
        planned_n: Users (all arms) planned at the end.
        mixing: mSPRT mixing variance over the final look's variance.

    Returns:
        A tidy DataFrame, one row per look.
    """
    single = analysis.only(metric)
    exposure = frame[day_col].to_numpy(dtype=float)
    rows = [_look(single, frame, exposure <= day, day) for day in days]
    table = pd.DataFrame(rows)
    n_total = table["n"].to_numpy(dtype=float)
    fraction = n_total / (n_total[-1] if planned_n is None else planned_n)
    return _decide(table, fraction, analysis.alpha, mixing)


def _look(analysis, frame, keep, day) -> dict:
    result = analysis.run(frame, keep)
    (comparison,) = result.comparisons.values()
    z = float(np.sign(comparison.abs_lift) * stats.norm.isf(comparison.p_value / 2))
    return {"day": day, "n": sum(result.srm.counts.values()),
            "abs_lift": float(comparison.abs_lift), "se": float(comparison.se), "z": z}  # fmt: skip


def _decide(table, fraction, alpha: float, mixing: float):
    """Add each rule's boundary and decision (and the always-valid p and interval)."""
    if np.any(np.diff(fraction) <= 0) or fraction[-1] > 1 + 1e-9:
        raise ConfigError("days", "looks with more users each time, within planned_n")
    z, se = table["z"].to_numpy(), table["se"].to_numpy()
    planned = fraction if fraction[-1] >= 1 - 1e-9 else np.append(fraction, 1.0)
    table["naive_bound"] = stats.norm.isf(alpha / 2)
    table["obf_bound"] = group_sequential_bounds(planned, alpha)[: len(z)]
    table["msprt_bound"] = _mixture_bound(mixing * fraction, alpha)
    for rule in ("naive", "obf", "msprt"):
        table[f"{rule}_reject"] = np.maximum.accumulate(np.abs(z) >= table[f"{rule}_bound"])
    table["always_valid_p"] = np.minimum.accumulate(_inverse_lr(z, mixing * fraction))
    tau = np.sqrt(mixing * fraction[-1]) * se[-1]  # sd of the final look, scaled to the plan
    low, high = confidence_sequence(table["abs_lift"].to_numpy(), se, tau, alpha)
    table["cs_low"], table["cs_high"] = np.maximum.accumulate(low), np.minimum.accumulate(high)
    return table
