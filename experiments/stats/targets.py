"""SMART targets: was "conversion +15% by the end of Q1" met, and could it have been met.

A target names a metric (a KPI id), a direction, an absolute or relative lift (relative to the
control arm), an optional segment and a deadline date. It is judged on the users exposed up to
the deadline (the per-user table holds each user's totals, so "up to the deadline" selects users
by ``first_exposure_day``; their later activity is not cut off).

Verdict for an increase of ``L`` (DESIGN.md): **met** when the whole confidence interval of the
lift is at or above ``L``; **not met** when it is wholly below ``L``; **inconclusive** otherwise.
A decrease mirrors this with the target ``-L``. Relative targets use the relative-lift interval
(delta method on the log ratio), absolute targets the absolute one.

The probability of meeting the target uses a normal posterior with a flat prior: the lift is
``N(estimate, se**2)`` (for relative lifts, ``log(1 + lift)`` is normal with the delta-method
standard error). **Achievable** means the MDE at the deadline's sample size (from the observed
standard error, at the analysis' alpha and 80% power) is no larger than the target lift.
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
from experiments.stats.power import mde_from_se

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

    @property
    def signed_lift(self) -> float:
        """The target as a lift: ``+lift`` for an increase, ``-lift`` for a decrease."""
        return self.lift if self.direction == "increase" else -self.lift


class TargetResult(NamedTuple):
    """A target's verdict for one treatment arm (the contents of smart.json's results)."""

    metric: str
    arm: str
    lift_kind: str
    target_lift: float
    estimate: float
    ci_low: float
    ci_high: float
    verdict: str
    probability: float
    achievable: bool
    mde: float
    reason: str


def parse_date(value, key: str) -> dt.date:
    """Read a date from a ``datetime.date`` or an ISO string, else ConfigError naming ``key``."""
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(key, "a date written YYYY-MM-DD", value) from None


def target_rows(frame: pd.DataFrame, target: SmartTarget, start_date, day_col, segment_col):
    """Boolean mask of the rows a target is judged on (segment, exposed by the deadline)."""
    keep = np.ones(len(frame), dtype=bool)
    if target.segment is not None:
        segments = frame[_column(frame, segment_col, "segment_col")].astype(str)
        if target.segment not in set(segments.unique()):
            allowed = "a segment in the data: " + ", ".join(sorted(segments.unique()))
            raise ConfigError("target.segment", allowed, target.segment)
        keep &= (segments == target.segment).to_numpy()
    if target.deadline is not None:
        keep &= _before_deadline(frame, target.deadline, start_date, day_col)
    return keep


def _column(frame: pd.DataFrame, column: str, key: str) -> str:
    if column not in frame.columns:
        raise ConfigError(
            key, "a column of the input: " + ", ".join(map(str, frame.columns)), column
        )
    return column


def _before_deadline(frame, deadline: dt.date, start_date, day_col: str) -> np.ndarray:
    if start_date is None:
        raise ConfigError("start_date", "a date (YYYY-MM-DD) when the target has a deadline")
    start = parse_date(start_date, "start_date")
    days = frame[_column(frame, day_col, "day_col")].to_numpy(dtype=float)
    finite = days[np.isfinite(days)]  # never-exposed users may have NaN or inf
    last = start + dt.timedelta(days=int(finite.max()) if finite.size else 0)
    if not start <= deadline <= last:
        allowed = f"a date within the data, {start.isoformat()} to {last.isoformat()}"
        raise ConfigError("target.deadline", allowed, deadline.isoformat())
    return np.nan_to_num(days, nan=np.inf) <= (deadline - start).days


def evaluate_target(
    target: SmartTarget, arm: str, comparison: Comparison, alpha: float, power: float = 0.8
) -> TargetResult:
    """Verdict, probability of meeting the target, and whether it was achievable."""
    goal = target.signed_lift
    if target.lift_kind == "relative":
        est, low, high = (float(comparison.rel_lift), float(comparison.rel_ci_low),
                          float(comparison.rel_ci_high))  # fmt: skip
        se, gap = float(comparison.rel_se), math.log1p(est) - math.log1p(goal)
        mde = math.expm1(mde_from_se(se, alpha, power))
    else:
        est, low, high = (float(comparison.abs_lift), float(comparison.abs_ci_low),
                          float(comparison.abs_ci_high))  # fmt: skip
        se, gap = float(comparison.se), est - goal
        mde = mde_from_se(se, alpha, power)
    sign = 1 if target.direction == "increase" else -1
    probability = float(stats.norm.cdf(sign * gap / se)) if se > 0 else float(sign * gap >= 0)
    verdict, reason = _verdict(sign, goal, low, high, 1 - alpha)
    return TargetResult(target.metric, arm, target.lift_kind, goal, est, low, high, verdict,
                        probability, bool(mde <= target.lift), mde, reason)  # fmt: skip


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
