"""What to do next after an A/B test: the rule the report's decision panel applies.

It reads, per treatment arm, the decision population's rows of ab_results (exposed users by
default), in this order:

1. **Stop: the split is broken, fix assignment** when the SRM check flags (p below its
   threshold, 0.001): the arms are not comparable, so no other number of the test is trusted.
2. **Stop: the treatment harms ...** when a primary metric is significantly worse
   (``p_adjusted < alpha`` with the decision's estimate on the bad side of its null) or a
   guardrail fails: its two-sided ``1 - alpha`` interval lies wholly on the bad side of its null
   (minus its non-inferiority margin; 0 without one, i.e. significant harm).
3. **Ship** when a primary metric is significantly better (a primary with a margin: shown
   non-inferior), none is significantly worse and no guardrail fails. Guardrails that have not
   yet shown non-inferiority are named in the panel.
4. Otherwise **keep running for about N more days**: the days until the test has 80% power for
   the observed distance of the primary metric's estimate from its null. With the decision's
   standard error ``se`` (CUPED where set), ``z = z_(1 - alpha/(2m)) + z_0.8`` (``m`` primary
   metrics x arms: a Bonferroni bound on the correction; one-sided tests use ``alpha/m``), the
   MDE now is ``z se``; the standard error falls as ``1/sqrt(n)``, so the users needed grow by
   ``k = (z se / |estimate - null|)^2`` and ``N = days so far x (k - 1)`` at the users exposed per
   day so far. With several primary metrics, the smallest N. It is an estimate: it assumes the
   traffic and the lift stay as observed. Where the target is on the primary metric, the days
   for the target's lift are given beside it. If N is over a year (or the estimate sits on its
   null), **stop: the effect is too small to detect with this traffic**.

"Better" is the target's direction on the target's metric, else the metric's
``higher_is_better``. Extending a test after looking at it is a sequential design: read the
always-valid (mSPRT) or O'Brien-Fleming looks, which the report shows, not a re-run of the
fixed-horizon test.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd

from experiments.report import (
    is_percent,
    number,
    p_value,
    points,
)

POWER = 0.8  # the power "keep running" plans for
MAX_DAYS = 365  # beyond this, the effect is too small to detect with this traffic


class Sense(NamedTuple):
    """How to read one metric's lift.

    Attributes:
        sign: +1 if a higher value is better, -1 if lower is.
        null: The lift under the null (0, or minus the non-inferiority margin, signed).
        margin: The non-inferiority margin, or None.
        one_sided: Whether the metric's test is one-sided.
    """

    sign: int
    null: float
    margin: float | None
    one_sided: bool


class Decision(NamedTuple):
    """What to do next about one treatment arm (see the module docstring).

    Attributes:
        arm: The treatment arm.
        action: ``"ship"``, ``"stop"`` or ``"keep running"``.
        headline: The action in a few words.
        reason: Why, in one or two sentences.
        more_days: Estimated days still needed (keep running and "too small"), else None.
    """

    arm: str
    action: str
    headline: str
    reason: str
    more_days: float | None = None


def senses(analysis, target=None) -> dict[str, Sense]:
    """Each metric's direction and null, from the Analysis' metrics and the SMART target."""
    out = {}
    for m in analysis.metrics:
        sign = 1 if m.higher_is_better else -1
        if target is not None and target.metric == m.name:
            sign = 1 if target.direction == "increase" else -1
        one_sided = m.test_alternative != "two-sided"
        out[m.name] = Sense(sign, float(m.null), m.ni_margin, one_sided)
    return out


def decision_estimate(row) -> tuple[float, float]:
    """The estimate and standard error behind a row's decision (CUPED where a covariate is)."""
    if pd.notna(row.get("cuped_lift", np.nan)):
        return float(row["cuped_lift"]), float(row["se"]) * math.sqrt(
            max(1 - float(row["variance_reduction"]), 0.0)
        )
    return float(row["abs_lift"]), float(row["se"])


def effect(row, sense: Sense) -> str:
    """``better``, ``worse``, ``inconclusive``; with a margin ``non-inferior`` or ``not shown``."""
    side = sense.sign * (decision_estimate(row)[0] - sense.null)
    if not row["significant"] or side == 0:
        return "not shown" if sense.margin is not None else "inconclusive"
    if sense.margin is not None:
        return "non-inferior" if side > 0 else "worse"
    return "better" if side > 0 else "worse"


def guardrail_state(row, sense: Sense, alpha: float) -> str:
    """``fails``, ``passes`` (non-inferior), ``not shown`` or (no margin) ``no harm seen``."""
    if sense.margin is None:
        return "fails" if effect(row, sense) == "worse" else "no harm seen"
    from scipy import stats  # here, not at import: a plain run's config and texts need none

    estimate, se = decision_estimate(row)
    best = sense.sign * (estimate - sense.null) + stats.norm.isf(alpha / 2) * se
    if best < 0:
        return "fails"
    return "passes" if row["significant"] else "not shown"


def more_days(row, sense: Sense, alpha: float, m: int, days: float, lift=None) -> float:
    """Days until 80% power for ``lift`` (default: the estimate), at the traffic so far."""
    from scipy import stats

    estimate, se = decision_estimate(row)
    delta = abs((estimate if lift is None else lift) - sense.null)
    z = stats.norm.isf(alpha / m / (1 if sense.one_sided else 2)) + stats.norm.isf(1 - POWER)
    if not (np.isfinite(se) and se > 0 and delta > 0):
        return math.inf
    return max(days * ((z * se / delta) ** 2 - 1), 0.0)


def decide(table, srm, sense, days: float, alpha: float = 0.05, planned=None) -> list[Decision]:
    """What to do next about each treatment arm (the rule of the module docstring).

    Args:
        table: ab_results (the first population's rows are the decision's).
        srm: The SRM check of that population.
        sense: ``{metric: Sense}`` (:func:`senses`).
        days: Days of data so far (the users exposed per day are their count / days).
        alpha: The analysis' significance level.
        planned: ``{metric: planned absolute lift}`` (the target's), shown beside the estimate.
    """
    rows = table[table["population"] == table["population"].iloc[0]]
    arms = list(dict.fromkeys(rows["arm"]))
    if srm.flag:
        counts = ", ".join(f"{arm} {n:,}" for arm, n in srm.counts.items())
        reason = (f"The sample ratio check flags a mismatch ({counts} users; "
                  f"{p_phrase(srm.p_value)}, below {srm.threshold:g}): the arms are not "
                  "comparable, so no result of this test can be trusted. Find the assignment "
                  "or logging bug, fix it and restart the test.")  # fmt: skip
        return [Decision(arm, "stop", "Stop: the split is broken, fix assignment", reason)
                for arm in arms]  # fmt: skip
    family = int((rows["role"] == "primary").sum()) or 1
    rate = sum(srm.counts.values()) / days
    return [_decide_arm(rows[rows["arm"] == arm], arm, sense, alpha, family, days, rate, planned)
            for arm in arms]  # fmt: skip


def _decide_arm(rows, arm, sense, alpha, family, days, rate, planned) -> Decision:
    primary = rows[rows["role"] == "primary"]
    guards = rows[rows["role"] == "guardrail"]
    effects = {r["metric"]: effect(r, sense[r["metric"]]) for _, r in primary.iterrows()}
    fails = [r["metric"] for _, r in guards.iterrows()
             if guardrail_state(r, sense[r["metric"]], alpha) == "fails"]  # fmt: skip
    harmed = [m for m, e in effects.items() if e == "worse"] + fails
    if harmed:
        reason = (f"{_join(harmed)} {'is' if len(harmed) == 1 else 'are'} significantly worse in "
                  f"{arm} (a primary metric significantly worse, or a guardrail's interval wholly "
                  "beyond its margin). Do not ship; look for the cause.")  # fmt: skip
        return Decision(arm, "stop", f"Stop: {arm} harms {_join(harmed)}", reason)
    won = [m for m, e in effects.items() if e in ("better", "non-inferior")]
    if won:
        return Decision(arm, "ship", "Ship", _ship_reason(arm, won, effects, guards, sense, alpha))
    if primary.empty:
        return Decision(arm, "keep running", "No primary metric", "Nothing to decide on.")
    return _keep_running(primary, arm, sense, alpha, family, days, rate, planned)


def _ship_reason(arm, won, effects, guards, sense, alpha) -> str:
    words = "; ".join(f"{m} {effects[m]}" for m in won)
    unshown = [r["metric"] for _, r in guards.iterrows()
               if guardrail_state(r, sense[r["metric"]], alpha) == "not shown"]  # fmt: skip
    reason = (
        f"{arm} is significantly better on the primary metric ({words}; adjusted for "
        "multiple primary metrics), no primary metric is worse and no guardrail fails."
    )
    if unshown:
        reason += f" Not yet shown within their margin: {_join(unshown)} (watch them)."
    return reason


def _keep_running(primary, arm, sense, alpha, family, days, rate, planned) -> Decision:
    needs = {r["metric"]: more_days(r, sense[r["metric"]], alpha, family, days)
             for _, r in primary.iterrows()}  # fmt: skip
    metric = min(needs, key=needs.get)
    row = primary[primary["metric"] == metric].iloc[0]
    estimate = decision_estimate(row)[0]
    n, lift = needs[metric], _lift_text(metric, estimate)
    if sense[metric].null != 0:  # a non-inferiority test: the distance from the margin counts
        lift += f", {_lift_text(metric, estimate - sense[metric].null)} from its margin"
    basis = (
        f"at the {rate:,.0f} users exposed per day so far, {POWER:.0%} power for the "
        f"observed lift of {metric} ({lift}) takes about"
    )
    if not np.isfinite(n) or n > MAX_DAYS:
        more = "forever" if not np.isfinite(n) else f"{n:,.0f} more days"
        reason = (f"No primary metric is conclusive, and {basis} {more}: more than a year. "
                  "The effect, if any, is too small to detect with this traffic; stop and treat "
                  "it as no detectable difference (or redesign: more traffic, a more sensitive "
                  "metric, CUPED).")  # fmt: skip
        return Decision(arm, "stop", "Stop: the effect is too small to detect with this traffic",
                        reason, n)  # fmt: skip
    days_n = max(math.ceil(n), 1)
    reason = (f"No primary metric is conclusive yet; {basis} {days_n} more days (about "
              f"{days_n * rate:,.0f} more users). An estimate: it assumes the traffic and the "
              "lift stay as observed.")  # fmt: skip
    if planned and metric in planned:
        m = more_days(row, sense[metric], alpha, family, days, planned[metric])
        target = _lift_text(metric, planned[metric])
        reason += (f" For the target's lift ({target}): "
                   + ("already powered." if m == 0 else f"about {m:,.0f} more days."))  # fmt: skip
    return Decision(arm, "keep running", f"Keep running for about {days_n} more days", reason, n)


def p_phrase(p) -> str:
    """``p = 0.034`` or ``p < 0.001``."""
    text = p_value(p)
    return f"p {text[0]} {text[1:]}" if text.startswith("<") else f"p = {text}"


def _join(names) -> str:
    return ", ".join(names)


def lift_format(metric: str, digits: int = 4):
    """How a metric's lift is shown: percentage points for rates, else a signed number."""
    return points if is_percent(metric) else (lambda v: number(v, signed=True, digits=digits))


def _lift_text(metric: str, value: float) -> str:
    return lift_format(metric)(value)


def planned_lifts(smart: dict | None, table: pd.DataFrame) -> dict[str, float]:
    """The target's lift on its metric as an absolute lift (relative x the control's value)."""
    if not smart:
        return {}
    target = smart["target"]
    lift = target["lift"] * (1 if target["direction"] == "increase" else -1)
    if target["lift_kind"] == "relative":
        rows = table[(table["metric"] == target["metric"])]
        if rows.empty:
            return {}
        lift *= float(rows["control"].iloc[0])
    return {target["metric"]: lift}
