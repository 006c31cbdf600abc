"""Printed tables and report sections of the experiments (words and layout).

The A/B report opens with the decision panel; the rule behind it is :mod:`experiments.decision`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.decision import (
    POWER,
    Sense,
    decide,
    decision_estimate,
    effect,
    guardrail_state,
    lift_format,
    p_phrase,
    planned_lifts,
    senses,
)
from experiments.report import (
    MISSING,
    Panel,
    Section,
    Table,
    format_frame,
    interval,
    is_percent,
    number,
    p_value,
    percent,
    points,
)

HEADLINE = ("conversion_rate", "add_to_cart_rate", "cart_abandonment_rate", "aov",
            "items_per_order", "revenue", "revenue_per_visitor", "retention_rate",
            "strategy_costs", "profit", "roas")  # fmt: skip
TONES = {"better": "good", "non-inferior": "good", "passes": "good", "worse": "bad",
         "fails": "bad"}  # fmt: skip


def strategies_label(cfg) -> str:
    """The strategies' names joined by " + ", or "no strategy"."""
    return " + ".join(cfg.strategy) if cfg.strategy else "no strategy"


def setup_text(cfg, scenario) -> str:
    """One paragraph: what was simulated."""
    return (
        f"Scenario '{scenario.name}': {scenario.population.size:,} agents, {scenario.days} days "
        f"from {scenario.start_date} after a {scenario.warmup_days}-day warm-up; strategies: "
        f"{strategies_label(cfg)}; split {cfg.split:.0%} treatment; seed {cfg.seed}; "
        f"replicates {cfg.replicates} on backend '{cfg.backend}'."
    )


# --- The decision --------------------------------------------------------------------------


# --- The A/B report ------------------------------------------------------------------------


def ab_panel(outcome, table, sense, days: float, alpha: float) -> Panel:
    """The decision panel: next step, primary metric, target, sample ratio, guardrails."""
    srm = outcome.analysis.srm
    decisions = decide(table, srm, sense, days, alpha, planned_lifts(outcome.smart, table))
    tone = {"ship": "good", "stop": "bad", "keep running": "neutral"}
    if len(decisions) == 1:
        d = decisions[0]
        headline, summary, worst = d.headline, d.reason, d.action
    else:
        headline = "; ".join(f"{d.arm}: {d.headline}" for d in decisions)
        summary = " ".join(f"{d.arm}: {d.reason}" for d in decisions)
        actions = [d.action for d in decisions]
        worst = next(a for a in ("stop", "keep running", "ship") if a in actions)
    rows = table[table["population"] == table["population"].iloc[0]]
    lines = [("Primary metric", _primary_text(r, sense[r["metric"]], alpha))
             for _, r in rows[rows["role"] == "primary"].iterrows()]  # fmt: skip
    for r in (outcome.smart or {}).get("results", []):
        lines.append(("Target", _target_text(outcome.smart, r)))
    lines.append(("Sample ratio", _srm_text(srm)))
    lines.append(("Guardrails", _guardrails_text(rows, sense, alpha)))
    return Panel(headline, tone[worst], summary, lines)


def _primary_text(row, sense: Sense, alpha: float) -> str:
    metric, arm = row["metric"], row["arm"]
    lift = lift_format(metric)
    estimate = decision_estimate(row)[0]
    words = {"better": "significantly better", "worse": "significantly worse",
             "inconclusive": "no clear difference", "non-inferior": "shown non-inferior",
             "not shown": "non-inferiority not shown"}[effect(row, sense)]  # fmt: skip
    cuped = " (CUPED)" if pd.notna(row.get("cuped_lift", np.nan)) else ""
    shown = _lift_cell(metric, estimate, row["adj_ci_low"], row["adj_ci_high"])
    text = (f"{metric}, {arm} vs control: {shown}{cuped} ({_rel_text(row)} relative); "
            f"adjusted {p_phrase(row['p_adjusted'])}: {words} at alpha {alpha:g}.")  # fmt: skip
    if "true_abs_lift" in row and pd.notna(row["true_abs_lift"]):
        true_rel = percent(row["true_rel_lift"], True)
        text += f" The true lift is {lift(row['true_abs_lift'])} ({true_rel})."
    return text


def _rel_text(row) -> str:
    if pd.isna(row["rel_lift"]):
        return "undefined"
    return _with_ci(lambda v: percent(v, True), row["rel_lift"], row["rel_ci_low"],
                    row["rel_ci_high"])  # fmt: skip


def _target_text(smart: dict, r: dict) -> str:
    t = smart["target"]
    rel = t["lift_kind"] == "relative"
    show = (lambda v: percent(v, True)) if rel else (lambda v: number(v, signed=True))
    goal = show(r["target_lift"] * (1 if t["direction"] == "increase" else -1))
    when = f" by {t['deadline']}" if t.get("deadline") else ""
    where = {"met": "lies wholly at or beyond", "not met": "lies wholly short of"}.get(
        r["verdict"], "contains")  # fmt: skip
    ci = interval(r["ci_low"], r["ci_high"], show)
    return (f"{t['metric']} {goal} ({t['lift_kind']}){when}, {r['arm']}: {r['verdict'].upper()}: "
            f"estimate {show(r['estimate'])} {ci}; the {smart['interval']} {where} the target. "
            f"Chance of a 'met' verdict at this sample size if the true lift is "
            f"{show(r['assumed_lift'])} ({r['assumed_from']}): {percent(r['p_met'])}; it reaches "
            f"{POWER:.0%} at a true lift of {show(r['min_lift_to_meet'])}. Flat-prior "
            f"probability that the lift is at or beyond the target: "
            f"{percent(r['posterior_p_beyond_target'])}.")  # fmt: skip


def _srm_text(srm) -> str:
    counts = ", ".join(f"{arm} {n:,}" for arm, n in srm.counts.items())
    shares = " / ".join(f"{s:.0%}" for s in srm.expected_shares.values())
    state = "MISMATCH: the split is broken" if srm.flag else "OK"
    return (
        f"{state} ({p_phrase(srm.p_value)}; flagged below {srm.threshold:g}): "
        f"{counts} users, planned {shares}."
    )


def _guardrails_text(rows, sense, alpha: float) -> str:
    guards = rows[rows["role"] == "guardrail"]
    if guards.empty:
        return "none set (give a metric ni_margin or role: guardrail in conf/analysis/)."
    return "; ".join(f"{r['metric']} ({r['arm']}): {guardrail_state(r, sense[r['metric']], alpha)}"
                     for _, r in guards.iterrows())  # fmt: skip


DECISION_TEXT = (
    "How the next step is decided (on the exposed users): stop if the sample ratio check flags "
    "a mismatch (the split is broken), if a primary metric is significantly worse or if a "
    "guardrail fails (its interval wholly beyond its margin); ship if a primary metric is "
    "significantly better (p adjusted for multiple primary metrics) and no guardrail fails; "
    f"otherwise keep running. 'About N more days' is the days until the test has {POWER:.0%} "
    "power for the observed lift, from its standard error so far and the users exposed per day "
    "so far: an estimate that assumes traffic and lift stay as observed. Over a year: the effect "
    "is too small to detect with this traffic. An extended test has been peeked at: decide on "
    "the always-valid (mSPRT) or O'Brien-Fleming looks below, not on a re-run of this test."
)
ROLE_TEXTS = {
    "primary": ("Primary metrics", "The decision. lift and relative lift: the plain test (as in "
                "ab_results.csv). decision lift: the test behind the result (CUPED-adjusted "
                "where a covariate is set) with the interval that agrees with the adjusted p "
                "(corrected across primary metrics x arms). Green: significantly better; red: "
                "significantly worse."),
    "secondary": ("Secondary metrics", "Not corrected for multiple testing: a significant one "
                  "is a lead to follow up, not a result."),
    "guardrail": ("Guardrails", "Non-inferiority tests (one-sided, against the margin): passes "
                  "= shown non-inferior; fails = the two-sided interval lies wholly beyond the "
                  "margin; not shown = neither yet. Without a margin: fails = significantly "
                  "worse."),
}  # fmt: skip
RESULT_WORDS = {"inconclusive": "no clear difference"}


def result_of(row, sense: Sense, alpha: float) -> str:
    """The result column's word for a row, by its role."""
    if row["role"] == "guardrail":
        return guardrail_state(row, sense, alpha)
    word = effect(row, sense)
    return RESULT_WORDS.get(word, word)


def metric_table(rows: pd.DataFrame, sense, alpha: float, compact: bool = False) -> Table:
    """One row per metric x arm: levels, lifts with intervals, p-values, result, the truth.

    ``compact`` (the ITT table): a role column instead of the decision's lift and CUPED columns.
    """
    show = {
        "arm": rows["arm"].nunique() > 1,
        "role": compact,
        "decision": not compact
        and (
            bool(rows["variance_reduction"].notna().any())
            or int((rows["role"] == "primary").sum()) > 1
        ),
        "adjusted": bool((rows["role"] == "primary").any()),
        "margin": any(sense[m].margin is not None for m in rows["metric"]),
        "truth": "true_abs_lift" in rows and bool(rows["true_abs_lift"].notna().any()),
    }
    records = [_metric_cells(r, sense[r["metric"]], alpha, show) for _, r in rows.iterrows()]
    tones = [TONES.get(r["result"], "") for r in records]
    return Table(pd.DataFrame(records), tones, keys=1 + show["arm"] + show["role"])


def _formats(metric: str):
    """A metric's level, lift and interval-end formats (rates: %, pp; ends: 3 digits)."""
    if is_percent(metric):
        return percent, points, lambda v: points(v, unit=False)
    return (number, lambda v: number(v, signed=True),
            lambda v: number(v, signed=True, digits=3))  # fmt: skip


def _lift_cell(metric: str, value, low, high) -> str:
    _, lift, ends = _formats(metric)
    if low is None or high is None or (pd.isna(low) and pd.isna(high)):
        return lift(value)
    return f"{lift(value)} {interval(low, high, ends)}"


def _metric_cells(r, sense: Sense, alpha: float, show: dict) -> dict:
    level, lift, _ = _formats(r["metric"])
    ci = f"{1 - alpha:.0%} CI"
    cells = {"metric": r["metric"]} | ({"arm": r["arm"]} if show["arm"] else {})
    cells |= {"role": r["role"]} if show["role"] else {}
    cells |= {"control": level(r["control"]), "treatment": level(r["treatment"]),
              f"lift [{ci}]": _lift_cell(r["metric"], r["abs_lift"], r["abs_ci_low"],
                                         r["abs_ci_high"]),
              f"relative lift [{ci}]": _rel_text(r), "p": p_value(r["p_value"])}  # fmt: skip
    if show["decision"]:
        cells["decision lift [CI]"] = _lift_cell(r["metric"], decision_estimate(r)[0],
                                                 r["adj_ci_low"], r["adj_ci_high"])  # fmt: skip
        cells["CUPED variance cut"] = percent(r["variance_reduction"])
    if show["adjusted"]:
        cells["adjusted p"] = p_value(r["p_adjusted"])
    if show["margin"]:
        cells["margin"] = MISSING if sense.margin is None else lift(-sense.sign * sense.margin)
    cells["result"] = result_of(r, sense, alpha)
    if show["truth"]:
        cells["true lift (vs lift CI)"] = _truth_cell(r, lift)
    return cells


def _truth_cell(r, lift) -> str:
    if pd.isna(r["true_abs_lift"]):
        return MISSING
    covered = "in CI" if r["abs_covered"] else "outside CI"
    return f"{lift(r['true_abs_lift'])} ({percent(r['true_rel_lift'], True)}), {covered}"


def target_table(smart: dict) -> Table:
    """The SMART target's judgement per arm, formatted."""
    t = smart["target"]
    rel = t["lift_kind"] == "relative"
    show = (lambda v: percent(v, True)) if rel else (lambda v: number(v, signed=True))
    records = [{
        "metric": r["metric"], "arm": r["arm"], "target": show(r["target_lift"] * (
            1 if t["direction"] == "increase" else -1)),
        "estimate [CI]": f"{show(r['estimate'])} {interval(r['ci_low'], r['ci_high'], show)}",
        "verdict": r["verdict"], "P(met) at assumed lift": percent(r["p_met"]),
        "assumed lift": f"{show(r['assumed_lift'])} ({r['assumed_from']})",
        "lift for 80% P(met)": show(r["min_lift_to_meet"]),
        "achievable": "yes" if r["achievable"] else "no",
        "P(lift beyond target), flat prior": percent(r["posterior_p_beyond_target"]),
    } for r in smart["results"]]  # fmt: skip
    tones = [{"met": "good", "not met": "bad"}.get(r["verdict"], "") for r in smart["results"]]
    return Table(pd.DataFrame(records), tones)


def kpi_table(frame: pd.DataFrame) -> Table:
    """A KPI x column table (KPIs by arm, what-if levels): rates as percentages."""
    frame = frame.reset_index(drop=True)
    return Table(format_frame(frame, percent_rows=frame["kpi"].map(is_percent)))


def whatif_table(table: pd.DataFrame) -> Table:
    """The what-if table: levels without and with, differences with their intervals."""
    records = []
    for _, r in table.iterrows():
        level = _formats(r["kpi"])[0]
        records.append({
            "kpi": r["kpi"], "without": level(r["without"]), "with": level(r["with"]),
            "difference [95% CI]": _lift_cell(r["kpi"], r["abs_diff"], r.get("abs_diff_ci_low"),
                                              r.get("abs_diff_ci_high")),
            "relative [95% CI]": _with_ci(lambda v: percent(v, True), r["rel_diff"],
                                          r.get("rel_diff_ci_low"), r.get("rel_diff_ci_high")),
            "replicates": number(r.get("replicates")),
        })  # fmt: skip
    return Table(pd.DataFrame(records))


def _with_ci(fmt, value, low, high) -> str:
    if low is None or high is None or (pd.isna(low) and pd.isna(high)):
        return fmt(value)
    return f"{fmt(value)} {interval(low, high, fmt)}"


def power_table(table: pd.DataFrame) -> Table:
    """power_sim's table: power with its interval beside the analytic one; the target's odds."""
    records = []
    for _, r in table.iterrows():
        rec = {"size": number(r["size"]), "metric": r["metric"],
               "replicates": number(r["replicates"]),
               "power [95% CI]": _with_ci(percent, r["power"], r["power_ci_low"],
                                          r["power_ci_high"]),
               "analytic power": percent(r["analytic_power"]),
               "mean lift": number(r["mean_abs_lift"], signed=True),
               "mean se": number(r["mean_se"])}  # fmt: skip
        if "p_target_met" in r:
            rec["P(target met) [95% CI]"] = _with_ci(percent, r["p_target_met"],
                                                     r["p_target_met_ci_low"],
                                                     r["p_target_met_ci_high"])  # fmt: skip
            rec["predicted P(met)"] = percent(r["predicted_p_met"])
        records.append(rec)
    return Table(pd.DataFrame(records))


def ab_sections(cfg, scenario, design, outcome, table, by_arm, seq, metric, reps, panel):
    """The A/B report: the decision, metric tables by role, target, ITT, then figures."""
    sense, alpha = senses(design.analysis, design.target), design.analysis.alpha
    first = table["population"].iloc[0]
    rows, itt = table[table["population"] == first], table[table["population"] != first]
    sections = [Section("Decision", DECISION_TEXT, panel=panel)]
    for role, (title, text) in ROLE_TEXTS.items():
        part = rows[rows["role"] == role]
        if len(part):
            sections.append(Section(f"{title} ({first} users)", text,
                                    [metric_table(part, sense, alpha)]))  # fmt: skip
    if outcome.smart is not None:
        text = "\n\n".join(f"{k}: {v}." for k, v in outcome.smart["definitions"].items())
        sections.append(Section("SMART target", text, [target_table(outcome.smart)]))
    if len(itt):
        sections.append(Section("All assigned users (intention to treat)", ITT_TEXT,
                                [metric_table(itt, sense, alpha, compact=True)]))  # fmt: skip
    if outcome.analysis.notes:
        sections.append(Section("Notes", "\n\n".join(outcome.analysis.notes)))
    return sections + _ab_context(cfg, scenario, by_arm, seq, metric, reps)


ITT_TEXT = (
    "Every assigned user, exposed or not. Exposure happens after assignment, so the treatment "
    "can move who is exposed; where this differs from the exposed rows, read both."
)


def _ab_context(cfg, scenario, by_arm, seq, metric, reps) -> list[Section]:
    """Setup and the figures that follow the decision and the tables."""
    sections = [
        Section("Setup", setup_text(cfg, scenario) + f"\n\nDecision population: "
                f"{cfg.experiment.population} users."),
        Section("Lift by metric and the truth",
                "The true lift is the same world run with everyone and with no one treated "
                "(common random numbers); with shared reviews social proof spills over to "
                "control and the estimate is biased towards zero.", figures=["lift.png"]),
        Section(f"Looks over time: {metric}",
                f"A look every {cfg.experiment.look_every} days, each on the data as of its day. "
                "Peeking at the fixed-horizon test inflates false positives; the always-valid "
                "p-value and interval (mSPRT) and O'Brien-Fleming bounds stay valid.",
                figures=["sequential.png"]),
        Section(f"Looks over time: {metric}, the numbers", "sequential.csv, one row per look.",
                [seq]),
        Section("Funnel and KPIs by arm", "Every KPI of the window, control vs treatment.",
                [kpi_table(by_arm.reset_index())], ["funnel.png", "kpis_over_time.png"]),
    ]  # fmt: skip
    if reps is not None:
        sections.append(Section("Replicates", "Rates over replicates (spawned seeds).",
                                [replicate_summary(reps)]))  # fmt: skip
    return sections


def panel_text(panel: Panel) -> str:
    """The decision panel as printed lines."""
    lines = [f"NEXT STEP: {panel.headline}", f"  {panel.summary}"]
    return "\n".join(lines + [f"  {label}: {text}" for label, text in panel.rows])


def whatif_text(table: pd.DataFrame) -> str:
    """Headline KPIs without and with the strategies."""
    t = table[table["kpi"].isin(HEADLINE)][["kpi", "without", "with", "abs_diff", "rel_diff"]]
    return t.to_string(index=False, float_format=lambda v: f"{v:,.4g}")


def ab_text(outcome, table: pd.DataFrame, reps, panel: Panel | None = None) -> str:
    """The decision, the A/B result table, SRM, target verdicts and rates over replicates."""
    from experiments.analyze import report as analysis_report

    lines = [panel_text(panel), ""] if panel is not None else []
    lines.append(analysis_report(outcome.analysis, outcome.smart))
    if "true_rel_lift" in table:
        lines += ["", "True relative lift (everyone vs no one treated) and whether the A/B "
                  "interval covers it:"]  # fmt: skip
        shown = table[["metric", "population", "rel_lift", "rel_ci_low", "rel_ci_high",
                       "true_rel_lift", "rel_covered"]]  # fmt: skip
        lines.append(shown.to_string(index=False, float_format=lambda v: f"{v:+.2%}"))
    if reps is not None:
        lines += ["", replicate_summary(reps).to_string(index=False)]
    return "\n".join(lines)


def replicate_summary(reps: pd.DataFrame) -> pd.DataFrame:
    """Per metric and population over replicates: rejection rate and (with truth) coverage."""
    agg = {"replicates": ("significant", "size"), "rejection_rate": ("significant", "mean")}
    if "abs_covered" in reps:
        agg["coverage_abs"] = ("abs_covered", "mean")
    keys = ["population", "metric"] if "population" in reps else ["metric"]
    return reps.groupby(keys, sort=False).agg(**agg).reset_index()
