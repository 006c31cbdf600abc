"""Sequential tests that stay valid when an A/B test is looked at every day.

Three ways to read a test at looks ``k = 1..K`` with z statistics ``z_k = (estimate_k - null) /
se_k`` (``null`` is the metric's own: 0, or minus a non-inferiority margin). A two-sided metric
rejects on ``|z_k|``; a one-sided one (``larger``, or a non-inferiority guardrail) on ``z_k``
(``-z_k`` for ``smaller``) against one-sided bounds:

- :func:`naive_peek`: reject at the first look with ``|z_k| >= z_{1-alpha/2}``. Invalid: with 30
  equally spaced looks at alpha 0.05 its false-positive rate is about 28% (Armitage, McPherson
  and Rowe 1969), which is why it is here: to show the inflation.
- :func:`group_sequential_bounds`: Lan-DeMets alpha spending with the O'Brien-Fleming-type
  function (two-sided: ``alpha(t) = 2 - 2 Phi(z_{1-alpha/4} / sqrt(t))`` on each side;
  one-sided: ``2 - 2 Phi(z_{1-alpha/2} / sqrt(t))``); boundaries found by recursive numerical
  integration of the joint law of the z statistics (Jennison and Turnbull 2000, ch. 19). The
  z statistics' correlation comes from the information of each look (``1 / se**2``); the alpha
  spent by a look can follow the planned calendar (Lan and DeMets 1989: days so far over
  planned days), so a look's bound needs nothing from later looks.
- :func:`msprt_bounds` / :func:`always_valid_p_values` / :func:`confidence_sequence`: the mixture
  sequential probability ratio test (Johari, Pekelis and Walsh 2017; Robbins' normal mixture).
  Two-sided: a ``N(0, tau**2)`` mixing distribution on ``lift - null``; one-sided: its half on
  the alternative's side (a half-normal), whose likelihood ratio is ``2 Phi(z sqrt(r / (1 + r)))``
  times the two-sided one. Both are non-negative (super)martingales under the null, so Ville's
  inequality makes them valid at any stopping time. ``tau`` (the lift's units) is fixed before
  the data: see :func:`mixing_sd`.

statsmodels and scipy have none of these, so they are written here; the tests pin the
O'Brien-Fleming boundaries against published values and calibrate all three by simulation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import optimize, stats

from experiments.stats.checks import ConfigError, check_number

DEFAULT_MIXING = 10.0  # tau**2 / final variance: near the smallest final-look boundary at 5%
DEFAULT_PLANNED_MDE = 0.10  # relative lift the mSPRT's mixture is centred on, if none is given
SIDES = {"two-sided": 2, "larger": 1, "smaller": 1}
_SQRT_2PI = np.sqrt(2 * np.pi)


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


def obrien_fleming_spending(t, alpha: float, sides: int = 2) -> np.ndarray:
    """Lan-DeMets O'Brien-Fleming-type spending: alpha spent by fraction ``t``.

    Two-sided, each side spends ``alpha / 2`` with ``2 - 2 Phi(z_{1 - alpha/4} / sqrt(t))``, as
    R's ldbounds and gsDesign (``sfLDOF``) do for a symmetric test; the total is twice that.
    One-sided (``sides=1``), the one side spends ``2 - 2 Phi(z_{1 - alpha/2} / sqrt(t))``.
    """
    if sides == 1:
        return 2 - 2 * stats.norm.cdf(stats.norm.isf(alpha / 2) / np.sqrt(t))
    return 2 * (2 - 2 * stats.norm.cdf(stats.norm.isf(alpha / 4) / np.sqrt(t)))


def first_crossing(z, bounds) -> SequentialResult:
    """First look where ``|z| >= bound`` (looks on the last axis of ``z``)."""
    crossed = np.abs(np.asarray(z, dtype=float)) >= np.asarray(bounds, dtype=float)
    reject = crossed.any(axis=-1)
    return SequentialResult(reject, np.where(reject, crossed.argmax(axis=-1), -1))


def naive_peek(z, alpha: float = 0.05) -> SequentialResult:
    """Reject at the first look with ``|z| >= z_{1-alpha/2}``: the invalid daily peek."""
    return first_crossing(z, stats.norm.isf(alpha / 2))


def _spending_times(spend_at, t: np.ndarray) -> np.ndarray:
    if spend_at is None:
        return t
    s = np.asarray(spend_at, dtype=float)
    if s.shape != t.shape or s[0] <= 0 or s[-1] > 1 + 1e-12 or np.any(np.diff(s) < 0):
        raise ConfigError("spend_at", "one non-decreasing fraction in (0, 1] per look", spend_at)
    return s


def group_sequential_bounds(
    info,
    alpha: float = 0.05,
    spending: Callable = obrien_fleming_spending,
    sides: int = 2,
    spend_at=None,
) -> np.ndarray:
    """Boundaries of z at each look from an alpha-spending function.

    Args:
        info: Information at each look (``1 / se**2``, sample sizes, or fractions); only ratios
            matter: ``corr(z_j, z_k) = sqrt(info_j / info_k)``.
        alpha: Total type I error (two-sided, or of the one side when ``sides=1``).
        spending: ``spending(t, alpha, sides)``, cumulative alpha spent at fraction ``t``.
        sides: 2 (reject on ``|z|``) or 1 (reject on ``z`` only).
        spend_at: Fraction of the plan reached at each look (e.g. days so far over planned
            days), fixed in advance; default: ``info`` over the last look's information.

    Returns:
        ``b_k`` such that under H0 ``P(first crossing of b_k at look k) = spent_k - spent_{k-1}``.
        Look ``k``'s bound depends on looks ``1..k`` only.
    """
    check_number(alpha, "alpha", gt=0, lt=1)
    t = information_fractions(info)
    spent = np.diff(np.concatenate([[0.0], spending(_spending_times(spend_at, t), alpha, sides)]))
    # At least 8 grid points per sd of the smallest increment over 18 sd of the score.
    points = int(np.clip(np.ceil(18 * 8 / np.sqrt(np.diff(t, prepend=0.0).min())), 801, 4001))
    bounds = [float(stats.norm.isf(spent[0] / sides)) if spent[0] > 0 else np.inf]
    grid, density = _start_density(t[0], bounds[0], points, sides)
    for k in range(1, len(t)):
        sd = np.sqrt(t[k] - t[k - 1])
        bound = _solve_bound(grid, density, sd, np.sqrt(t[k]), spent[k], sides)
        bounds.append(bound)
        grid, density = _next_density(grid, density, sd, bound, np.sqrt(t[k]), sides)
    return np.array(bounds)


def _trapezoid_weights(grid: np.ndarray) -> np.ndarray:
    step = grid[1] - grid[0]
    w = np.full(grid.size, step)
    w[[0, -1]] = step / 2
    return w


def _region(bound: float, scale: float, sides: int, points: int) -> np.ndarray:
    """Grid over the continuation region of the score ``S = z * scale`` (cut at 9 sd)."""
    top = min(bound, 9.0) * scale
    return np.linspace(-top if sides == 2 else -9.0 * scale, top, points)


def _start_density(t1: float, bound: float, points: int, sides: int):
    """Density of the score ``S_1 = z_1 sqrt(t_1)`` on the continuation region."""
    grid = _region(bound, np.sqrt(t1), sides, points)
    return grid, stats.norm.pdf(grid, scale=np.sqrt(t1))


def _crossing(grid, density, sd, scale, bound, sides) -> float:
    """P(stay until now, then cross ``bound * scale``) with independent N(0, sd^2) increments."""
    edge = bound * scale
    tail = stats.norm.sf((edge - grid) / sd)
    if sides == 2:
        tail = tail + stats.norm.cdf((-edge - grid) / sd)
    return float(np.sum(_trapezoid_weights(grid) * density * tail))


def _solve_bound(grid, density, sd, scale, target, sides) -> float:
    """Find the boundary whose crossing probability equals ``target`` (on the log scale)."""
    if target <= 0:
        return np.inf

    def gap(b: float) -> float:
        p = _crossing(grid, density, sd, scale, b, sides)
        return np.log(max(p, 1e-300)) - np.log(target)

    return float(optimize.brentq(gap, 1e-3, 40.0, xtol=1e-10))


def _next_density(grid, density, sd, bound, scale, sides):
    """Sub-density of ``S_k`` on the continuation region: convolve with the increment's law."""
    new_grid = _region(bound, scale, sides, grid.size)
    # exp written out: scipy.stats.norm.pdf's argument checks cost more than the kernel itself
    kernel = np.exp(-0.5 * ((new_grid[:, None] - grid[None, :]) / sd) ** 2) / (sd * _SQRT_2PI)
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


def mixture_log_lr(z, r, sides: int = 2) -> np.ndarray:
    """Log of the mSPRT's mixture likelihood ratio at ``z``, with ``r = tau**2 / se**2``.

    Two-sided (normal mixture): ``-log(1 + r) / 2 + z**2 r / (2 (1 + r))``. One-sided
    (half-normal mixture on the alternative's side, ``z`` signed towards it): that plus
    ``log(2 Phi(z sqrt(r / (1 + r))))``, increasing in ``z``.
    """
    z, r = np.asarray(z, dtype=float), np.asarray(r, dtype=float)
    log_lr = -0.5 * np.log1p(r) + z**2 * r / (2 * (1 + r))
    if sides == 1:
        log_lr = log_lr + np.log(2) + stats.norm.logcdf(z * np.sqrt(r / (1 + r)))
    return log_lr


def mixture_bounds(r, alpha: float = 0.05, sides: int = 2) -> np.ndarray:
    """The z at which the mixture likelihood ratio reaches ``1 / alpha`` (``r = tau**2 / se**2``).

    One-sided bounds are found by bisection (60 halvings, vectorised) between 0, where the ratio
    is below 1, and the two-sided bound, where the half-normal ratio already exceeds the normal.
    """
    r = np.asarray(r, dtype=float)
    high = _mixture_bound(r, alpha)
    if sides == 2:
        return high
    low, target = np.zeros_like(high), np.log(1 / alpha)
    for _ in range(60):
        mid = (low + high) / 2
        above = mixture_log_lr(mid, r, 1) >= target
        low, high = np.where(above, low, mid), np.where(above, mid, high)
    return high


def _inverse_lr(z, rt: np.ndarray, sides: int = 2) -> np.ndarray:
    """``min(1, 1 / mixture likelihood ratio)`` at each look."""
    return np.minimum(1.0, np.exp(-mixture_log_lr(z, rt, sides)))


def always_valid_p_values(z, info, mixing: float = DEFAULT_MIXING, sides: int = 2) -> np.ndarray:
    """Always-valid p-values: running minimum of ``1 / likelihood ratio`` (looks on last axis)."""
    rt = mixing * information_fractions(info)
    return np.minimum.accumulate(_inverse_lr(z, rt, sides), axis=-1)


def confidence_sequence(estimate, se, tau: float, alpha: float = 0.05, alternative="two-sided"):
    """Always-valid ``1 - alpha`` interval for a lift with standard error ``se`` at this look.

    The set of lifts the mSPRT with mixing standard deviation ``tau`` (in the lift's units)
    would not reject; one-sided alternatives give a one-sided interval (the other end
    infinite). Intersect over looks for a running interval.

    Returns:
        ``(low, high)``.
    """
    estimate, se = np.asarray(estimate, dtype=float), np.asarray(se, dtype=float)
    half = se * mixture_bounds(tau**2 / se**2, alpha, SIDES[alternative])
    low = np.where(alternative == "smaller", -np.inf, estimate - half)
    high = np.where(alternative == "larger", np.inf, estimate + half)
    return low, high


def mixing_sd(metric, control, planned_mde: float | None = None, tau: float | None = None,
              baseline: float | None = None) -> tuple[float, str]:  # fmt: skip
    """The mSPRT's mixing standard deviation ``tau`` (lift units), fixed before the test reads.

    In order: ``tau`` if given; else ``planned_mde`` (relative) times the metric's ``baseline``
    planned from history (e.g. the pre-period), if given, else times ``|control|``, the control
    arm's value at the first look (the first thing known; where it is 0, as for a rare event in
    a small first week, the first look where it is not); else, for a non-inferiority metric, its
    margin (the distance from the null to "no change"); else :data:`DEFAULT_PLANNED_MDE` in
    place of ``planned_mde``. The mixture is most powerful near lifts of about ``tau``.

    Args:
        metric: The metric (its margin is used).
        control: The control's value at each look, in order (or at the first look).
        planned_mde: Relative lift the test is planned for.
        tau: Absolute override.
        baseline: The metric's value planned from history.

    Returns:
        ``(tau, source)``, the source in words.
    """
    if tau is not None:
        return check_number(tau, "experiment.msprt_tau", gt=0), "msprt_tau"
    if planned_mde is None and metric.ni_margin is not None:
        return float(metric.ni_margin), "non-inferiority margin"
    mde = DEFAULT_PLANNED_MDE if planned_mde is None else planned_mde
    check_number(mde, "experiment.planned_mde", gt=0)
    source = "planned_mde" if planned_mde is not None else f"default planned MDE {mde:.0%}"
    if baseline is not None and np.isfinite(baseline) and baseline != 0:
        return float(mde * abs(baseline)), f"{source} x pre-period baseline {baseline:.4g}"
    values = np.abs(np.atleast_1d(np.asarray(control, dtype=float)))
    usable = np.flatnonzero(np.isfinite(values) & (values > 0))
    if not usable.size:
        why = "set (> 0): the control is 0 or undefined at every look, so no scale"
        raise ConfigError("experiment.msprt_tau", why, float(values[0]))
    where = "the first look" if usable[0] == 0 else f"look {usable[0] + 1} (first with control > 0)"
    return float(mde * values[usable[0]]), f"{source} x control at {where}"


def sequential_looks(analysis, looks, metric: str, days=None, *, spend_at=None,
                     planned_mde: float | None = None, tau: float | None = None,
                     baseline: float | None = None,
                     day_col: str = "first_exposure_day"):  # fmt: skip
    """Read one metric at several looks with the naive, O'Brien-Fleming and mSPRT rules.

    Args:
        analysis: An :class:`~experiments.stats.analysis.Analysis` (control and first treatment
            arm are compared; its alpha is used).
        looks: ``{day: per-user table as of that day}`` (or ``(day, table)`` pairs): each look
            sees only what was known then. A single per-user table with ``days`` instead is a
            stand-in for data without times: look ``d`` reads the users first exposed by ``d``
            with their whole-window totals, so early looks see later activity.
        metric: Name of one of the analysis' metrics (its null and side are used).
        days: Days of the looks, only with a single per-user table.
        spend_at: Share of the planned test reached at each look (alpha spending); default:
            information over the last look's information.
        planned_mde: Relative lift the mSPRT is tuned to (see :func:`mixing_sd`).
        tau: Absolute mixing standard deviation of the mSPRT (overrides ``planned_mde``).
        baseline: The metric's value planned from history (scales ``planned_mde``).
        day_col: Each user's first exposure day (single-table stand-in only).

    Returns:
        A tidy DataFrame, one row per look (columns in :func:`decide`).
    """
    single = analysis.only(metric)
    if isinstance(looks, pd.DataFrame):
        exposure = looks[day_col].to_numpy(dtype=float)
        rows = [look_row(single, looks, day, exposure <= day) for day in days]
    else:
        pairs = looks.items() if isinstance(looks, Mapping) else looks
        rows = [look_row(single, frame, day) for day, frame in pairs]
    table = pd.DataFrame(rows)
    scale, source = mixing_sd(single.metrics[0], table["control"].to_numpy(), planned_mde, tau,
                              baseline)  # fmt: skip
    return decide(table, single.metrics[0], analysis.alpha, scale, spend_at).assign(
        tau=scale, tau_source=source
    )


def look_row(analysis, frame: pd.DataFrame, day, keep=None) -> dict:
    """One look: users, both arms' values, lift, its se and ``z = (lift - null) / se``.

    The look reads the metric's decision test, as the horizon does: CUPED-adjusted where the
    metric has a covariate, else the plain test.
    """
    result = analysis.run(frame, keep)
    (c,) = (result.decisions or result.comparisons).values()
    metric = analysis.metrics[0]
    se = float(c.se)
    z = (float(c.abs_lift) - metric.null) / se if se > 0 else np.nan
    return {"day": day, "n": sum(result.srm.counts.values()), "control": float(c.control),
            "treatment": float(c.treatment), "abs_lift": float(c.abs_lift), "se": se,
            "null": metric.null, "alternative": metric.test_alternative, "z": z,
            "information": 1 / se**2 if se > 0 else 0.0}  # fmt: skip


def growing(information) -> np.ndarray:
    """Looks whose information exceeds every earlier look's (the only ones tested by OBF)."""
    info = np.nan_to_num(np.asarray(information, dtype=float), nan=0.0, posinf=0.0)
    before = np.maximum.accumulate(np.concatenate([[0.0], info[:-1]]))
    return info > before


def decide(table: pd.DataFrame, metric, alpha: float, tau: float, spend_at=None) -> pd.DataFrame:
    """Add each rule's boundary and decision, the always-valid p and the confidence sequence.

    Columns added: ``alpha``, ``toward`` (z signed towards the alternative; ``|z|`` if two-sided),
    ``naive_p``, ``spend_at``, ``info_grew`` (O'Brien-Fleming skips a look whose information
    does not grow: bound inf, its alpha is spent at the next look), ``*_bound`` and ``*_reject``
    for naive, obf and msprt, ``always_valid_p``, ``cs_low`` and ``cs_high`` (running).
    """
    sides = SIDES[metric.test_alternative]
    z = table["z"].to_numpy(dtype=float)
    toward = np.abs(z) if sides == 2 else (-z if metric.test_alternative == "smaller" else z)
    se = table["se"].to_numpy(dtype=float)
    table["toward"] = toward
    table["naive_p"] = np.minimum(1.0, sides * stats.norm.sf(toward))
    table["info_grew"] = grew = growing(table["information"])
    table["alpha"] = alpha
    table["naive_bound"] = stats.norm.isf(alpha / sides)
    table["obf_bound"] = _obf(table["information"].to_numpy(), grew, alpha, sides, spend_at)
    table["spend_at"] = table["information"] / table["information"].max() if spend_at is None \
        else np.asarray(spend_at, dtype=float)  # fmt: skip
    r = tau**2 / se**2
    table["msprt_bound"] = mixture_bounds(r, alpha, sides)
    for rule in ("naive", "obf", "msprt"):
        table[f"{rule}_reject"] = np.maximum.accumulate(toward >= table[f"{rule}_bound"])
    table["always_valid_p"] = np.fmin.accumulate(_inverse_lr(toward, r, sides))
    shifted = table["abs_lift"].to_numpy(dtype=float)
    low, high = confidence_sequence(shifted, se, tau, alpha, metric.test_alternative)
    table["cs_low"], table["cs_high"] = np.fmax.accumulate(low), np.fmin.accumulate(high)
    return table


def _obf(information, grew, alpha, sides, spend_at) -> np.ndarray:
    bounds = np.full(len(information), np.inf)
    if grew.any():
        at = None if spend_at is None else np.asarray(spend_at, dtype=float)[grew]
        bounds[grew] = group_sequential_bounds(information[grew], alpha, sides=sides, spend_at=at)
    return bounds
