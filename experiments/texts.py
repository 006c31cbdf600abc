"""Printed tables and report sections of the experiments (words and layout only)."""

from __future__ import annotations

import pandas as pd

from experiments.report import Section

HEADLINE = ("conversion_rate", "add_to_cart_rate", "cart_abandonment_rate", "aov",
            "items_per_order", "revenue", "revenue_per_visitor", "retention_rate",
            "strategy_costs", "profit", "roas")  # fmt: skip


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


def whatif_text(table: pd.DataFrame) -> str:
    """Headline KPIs without and with the strategies."""
    t = table[table["kpi"].isin(HEADLINE)][["kpi", "without", "with", "abs_diff", "rel_diff"]]
    return t.to_string(index=False, float_format=lambda v: f"{v:,.4g}")


def ab_text(outcome, table: pd.DataFrame, reps) -> str:
    """The A/B result table, SRM, target verdicts and (with replicates) rates over them."""
    from experiments.analyze import report as analysis_report

    lines = [analysis_report(outcome.analysis, outcome.smart)]
    if "true_rel_lift" in table:
        lines += ["", "True relative lift (everyone vs no one treated) and whether the A/B "
                  "interval covers it:"]  # fmt: skip
        shown = table[["metric", "rel_lift", "rel_ci_low", "rel_ci_high", "true_rel_lift",
                       "rel_covered"]]  # fmt: skip
        lines.append(shown.to_string(index=False, float_format=lambda v: f"{v:+.2%}"))
    if reps is not None:
        lines += ["", replicate_summary(reps).to_string(index=False)]
    return "\n".join(lines)


def replicate_summary(reps: pd.DataFrame) -> pd.DataFrame:
    """Per metric over replicates: rejection rate and (with truth) interval coverage."""
    agg = {"replicates": ("significant", "size"), "rejection_rate": ("significant", "mean")}
    if "abs_covered" in reps:
        agg["coverage_abs"] = ("abs_covered", "mean")
    return reps.groupby("metric", sort=False).agg(**agg).reset_index()


def ab_sections(cfg, scenario, outcome, table, by_arm, seq, metric, reps) -> list[Section]:
    """The A/B report: setup, KPIs by arm, lifts vs truth, target, sequential, replicates."""
    srm = outcome.analysis.srm
    sections = [
        Section("Setup", setup_text(cfg, scenario)),
        Section("Funnel and KPIs by arm", "Every KPI of the window, control vs treatment.",
                [by_arm.reset_index()], ["funnel.png", "kpis_over_time.png"]),
        Section("A/B estimates and the truth",
                f"Exposed users by default (population={cfg.experiment.population}). SRM check "
                f"p = {srm.p_value:.3g}{' (MISMATCH)' if srm.flag else ''}. The true lift is the "
                "same world run with everyone and with no one treated (common random numbers); "
                "with shared reviews social proof spills over to control and the estimate is "
                "biased towards zero.", [table], ["lift.png"]),
        Section(f"Looks over time: {metric}",
                f"A look every {cfg.experiment.look_every} days. Peeking at the fixed-horizon "
                "test inflates false positives; the "
                "always-valid p-value and confidence sequence (mSPRT) and O'Brien-Fleming bounds "
                "stay valid.", [seq], ["sequential.png"]),
    ]  # fmt: skip
    if outcome.smart is not None:
        rows = pd.DataFrame(outcome.smart["results"])
        text = "; ".join(f"{k}: {v}" for k, v in outcome.smart["definitions"].items())
        sections.append(Section("SMART target", text, [rows]))
    if reps is not None:
        sections.append(Section("Replicates", "Rates over replicates (spawned seeds).",
                                [replicate_summary(reps)]))  # fmt: skip
    return sections
