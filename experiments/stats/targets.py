"""SMART targets: was "conversion +15% by the end of Q1" met, and could it have been met.

A target names a metric (a KPI id), a direction, an absolute or relative lift (relative to the
control arm), an optional segment and a deadline date. It is judged on the users exposed up to
the deadline (selected by ``first_exposure_day``). A per-user table of totals cannot cut their
later activity: the simulator therefore passes the table as of the deadline
(:func:`experiments.looks.users_as_of`); real data should be exported as of the deadline.

One rule, and every quantity follows it. Work on the lift's scale: the absolute lift, or
``log(1 + lift)`` for a relative target (its interval is the delta method on the log ratio), with
standard error ``se``; ``L`` is the target on that scale, ``s`` = +1 for an increase, -1 for a
decrease, ``z = z_{1 - alpha/2}``.

- **verdict**: **met** when the whole ``1 - alpha`` two-sided interval of the lift is at or beyond
  ``L`` (for an increase: its lower end >= L); **not met** when it is wholly short of ``L``;
  **inconclusive** otherwise. "Met" is a one-sided test of "the lift is short of the target" at
  level ``alpha / 2``.
- **p_met(theta)**: the probability that the verdict is "met" when the true lift is ``theta``:
  ``Phi(s (theta - L) / se - z)``. It is the power of the "met" rule, not of a test against zero.
- **min_lift_to_meet**: the true lift at which ``p_met`` reaches the planned power (80%):
  ``L + s (z + z_power) se``: the MDE of the "met" rule at this sample size.
- **achievable**: ``p_met(theta) >= power`` at the lift the run assumes: the true lift where it
  is known (the simulator's everyone-vs-no-one worlds), else the estimate (a plug-in, said so in
  ``assumed_from``).
- **posterior_p_beyond_target**: a different quantity, named for what it is: the probability
  that the true lift is at or beyond ``L`` under a flat prior and a normal likelihood,
  ``Phi(s (estimate - L) / se)``. It is not the chance of a "met" verdict.

power_sim's simulated share of "met" verdicts estimates ``p_met`` at the true lift, and its
``predicted_p_met`` column applies the formula to the replicates' mean lift and standard error.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from experiments.stats.checks import ConfigError, check_choice, check_number
from experiments.stats.comparisons import Comparison

DIRECTIONS = ("increase", "decrease")
LIFT_KINDS = ("absolute", "relative")


@dataclass(frozen=True)
class SmartTarget:
    """A SMART target on one metric.

    Args:
        metric: KPI id, one of the analysis' metric names.
        lift: Size of the change wanted, > 0 (e.g. 0.15 for 15% relative).
        direction: ``"increase"`` or ``"decrease"``.
        lift_kind: ``"relative"`` (to the control arm) or ``"absolute"``.
        segment: Restrict to users of this segment (None: everyone).
        deadline: Judge on users exposed on or before this date (None: all data).
    """

    metric: str
    lift: float
    direction: str = "increase"
    lift_kind: str = "relative"
    segment: str | None = None
    deadline: dt.date | None = None

    def __post_init__(self) -> None:
        check_number(self.lift, "target.lift", gt=0)
        check_choice(self.direction, "target.direction", DIRECTIONS)
        check_choice(self.lift_kind, "target.lift_kind", LIFT_KINDS)
        if self.lift_kind == "relative" and self.direction == "decrease" and self.lift >= 1:
            raise ConfigError("target.lift", "< 1 for a relative decrease (a fall of 100% or "
                              "more leaves nothing to measure)", self.lift)  # fmt: skip

    @property
    def signed_lift(self) -> float:
        """The target as a lift: ``+lift`` for an increase, ``-lift`` for a decrease."""
        return self.lift if self.direction == "increase" else -self.lift


class TargetResult(NamedTuple):
    """A target's verdict for one treatment arm (smart.json's results; see the module doc)."""

    metric: str
    arm: str
    lift_kind: str
    target_lift: float
    estimate: float
    ci_low: float
    ci_high: float
    se: float
    verdict: str
    p_met: float
    achievable: bool | None  # None where the lift is undefined
    min_lift_to_meet: float
    assumed_lift: float
    assumed_from: str
    posterior_p_beyond_target: float
    reason: str


def parse_date(value, key: str) -> dt.date:
    """Read a date from a ``datetime.date`` or an ISO string, else ConfigError naming ``key``."""
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(key, "a date written YYYY-MM-DD", value) from None


def target_rows(frame: pd.DataFrame, target: SmartTarget, start_date, day_col, segment_col,
                data_end: dt.date | None = None):  # fmt: skip
    """Boolean mask of the rows a target is judged on (segment, exposed by the deadline).

    ``data_end``: the last day the data covers, where the caller knows it (a simulated
    horizon, or a table cut at a day); else the day column's last value stands for it. A
    deadline after it is an error.
    """
    keep = np.ones(len(frame), dtype=bool)
    if target.segment is not None:
        segments = frame[_column(frame, segment_col, "segment_col")].astype(str)
        if target.segment not in set(segments.unique()):
            allowed = "a segment in the data: " + ", ".join(sorted(segments.unique()))
            raise ConfigError("target.segment", allowed, target.segment)
        keep &= (segments == target.segment).to_numpy()
    if target.deadline is not None:
        keep &= _before_deadline(frame, target.deadline, start_date, day_col, data_end)
    return keep


def _column(frame: pd.DataFrame, column: str, key: str) -> str:
    if column not in frame.columns:
        raise ConfigError(
            key, "a column of the input: " + ", ".join(map(str, frame.columns)), column
        )
    return column


def _before_deadline(frame, deadline: dt.date, start_date, day_col: str,
                     data_end: dt.date | None = None) -> np.ndarray:  # fmt: skip
    if start_date is None:
        raise ConfigError("start_date", "a date (YYYY-MM-DD) when the target has a deadline")
    start = parse_date(start_date, "start_date")
    days = frame[_column(frame, day_col, "day_col")].to_numpy(dtype=float)
    last = data_end  # else the last first exposure (a day with none would cut the data short)
    if last is None:
        finite = days[np.isfinite(days)]  # never-exposed users may have NaN or inf
        last = start + dt.timedelta(days=int(finite.max()) if finite.size else 0)
    if not start <= deadline <= last:
        allowed = f"a date within the data, {start.isoformat()} to {last.isoformat()}"
        raise ConfigError("target.deadline", allowed, deadline.isoformat())
    return np.nan_to_num(days, nan=np.inf) <= (deadline - start).days


def p_met(theta, goal, se, alpha: float, direction: str, lift_kind: str):
    """Probability of a "met" verdict when the true lift is ``theta`` (module doc's rule)."""
    sign = 1 if direction == "increase" else -1
    gap = np.log1p(theta) - np.log1p(goal) if lift_kind == "relative" else np.subtract(theta, goal)
    with np.errstate(divide="ignore", invalid="ignore"):
        return stats.norm.cdf(sign * gap / se - stats.norm.isf(alpha / 2))


def min_lift_to_meet(goal: float, se: float, alpha, power, direction, lift_kind) -> float:
    """The true lift at which :func:`p_met` equals ``power``: the "met" rule's MDE."""
    sign = 1 if direction == "increase" else -1
    step = sign * (stats.norm.isf(alpha / 2) + stats.norm.ppf(power)) * se
    return math.expm1(math.log1p(goal) + step) if lift_kind == "relative" else goal + step


def evaluate_target(
    target: SmartTarget, arm: str, comparison: Comparison, alpha: float, power: float = 0.8,
    true_lift: float | None = None,
) -> TargetResult:  # fmt: skip
    """Verdict, the chance of a "met" verdict, and whether the target was achievable.

    ``comparison`` must be two-sided (the verdict reads its ``1 - alpha`` interval; a one-sided
    interval would make "met" a test at ``alpha`` and "not met" impossible):
    :func:`experiments.analyze.judge_target` compares the target's metric two-sided.
    """
    goal, relative = target.signed_lift, target.lift_kind == "relative"
    prefix = "rel" if relative else "abs"
    est, low, high = (float(getattr(comparison, f"{prefix}_{part}"))
                      for part in ("lift", "ci_low", "ci_high"))  # fmt: skip
    se = float(comparison.rel_se if relative else comparison.se)
    sign = 1 if target.direction == "increase" else -1
    assumed, source = (est, "estimate (plug-in)") if true_lift is None else (true_lift, "truth")
    rule = (goal, se, alpha, target.direction, target.lift_kind)
    with np.errstate(divide="ignore", invalid="ignore"):  # a relative lift of -100%: -inf
        gap = float(np.log1p(est) - np.log1p(goal)) if relative else est - goal
        if not (np.isfinite(se) and np.isfinite(est)):  # undefined lift: nothing to predict
            chance = posterior = math.nan
        elif se > 0:
            chance = float(p_met(assumed, *rule))
            posterior = float(stats.norm.cdf(sign * gap / se))
        else:
            chance, posterior = float(sign * (assumed - goal) > 0), float(sign * gap >= 0)
    verdict, reason = _verdict(sign, goal, low, high, 1 - alpha)
    return TargetResult(target.metric, arm, target.lift_kind, goal, est, low, high, se, verdict,
                        chance, None if math.isnan(chance) else bool(chance >= power),
                        min_lift_to_meet(goal, se, alpha, power, target.direction,
                                         target.lift_kind),
                        assumed, source, posterior, reason)  # fmt: skip


def _verdict(sign: int, goal: float, low: float, high: float, level: float) -> tuple[str, str]:
    """Met / not met / inconclusive from where the interval lies relative to the goal."""
    shown = f"the {level:.0%} interval [{low:+.4g}, {high:+.4g}]"
    if math.isnan(low) or math.isnan(high):
        return "inconclusive", "the lift is undefined on this data"
    near, far = (low, high) if sign > 0 else (-high, -low)
    side = "above" if sign > 0 else "below"
    if near >= sign * goal:
        return "met", f"{shown} lies wholly at or {side} the target {goal:+.4g}"
    if far < sign * goal:
        return "not met", f"{shown} lies wholly short of the target {goal:+.4g}"
    return "inconclusive", f"{shown} contains the target {goal:+.4g}"
