"""A/B tests inside the simulated store, read by the statistics layer, beside their truth.

One replicate: agents are split into control and treatment by a salted hash of their id, the
strategies run on the treatment arm, and the per-user table is analysed (exposed users by
default) at the horizon, at regular looks (sequential) and against the SMART target. Its
truth: the same world (same seed, so the same keyed random numbers) run with everyone treated
and with no one treated; strategies the test also runs on the control arm stay on in both (they
are part of the store). The difference of each metric between the two worlds is the true
effect on this population, which the A/B interval should cover when arms do not interact.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from experiments import worlds
from experiments.analyze import build_analysis, build_target, judge_target
from experiments.looks import truth_as_of, users_as_of
from experiments.stats.analysis import Analysis, AnalysisResult
from experiments.stats.metrics import RatioOfMeans
from experiments.stats.targets import SmartTarget
from sim.config import Scenario
from sim.errors import ConfigError
from sim.world import Results


@dataclass(frozen=True)
class Design:
    """Everything one A/B replicate needs (picklable, so processes and Ray can run it)."""

    scenario: Scenario
    strategy: dict
    split: float
    salt: str
    analysis: Analysis
    target: SmartTarget | None
    truth: bool = True
    # the seed of a store warmed up once that every replicate branches from at day 0
    # (worlds.ab_world); None: each replicate builds and warms its own store from its seed
    store: int | None = None


def analysis_of(cfg: Any, split: float) -> Analysis:
    """The statistics layer's Analysis for a simulated A/B test (control vs treatment)."""
    exp = cfg.experiment
    return build_analysis(SimpleNamespace(
        analysis=cfg.analysis, control="control", arm_col="arm", arms=None, alpha=exp.alpha,
        correction=exp.correction, expected_shares=(1 - split, split),
        population=exp.population, exposed_col="exposed", target=cfg.target,
    ))  # fmt: skip


def target_of(cfg: Any, analysis: Analysis, scenario: Scenario) -> SmartTarget | None:
    """The SMART target of the config, checked against the metrics and the horizon."""
    ns = SimpleNamespace(target=cfg.target, start_date=scenario.start_date)
    target = build_target(ns, analysis)
    if target is not None and target.deadline is not None:
        end = scenario.date_of(scenario.days - 1)
        if not scenario.start <= target.deadline <= end:
            allowed = f"a date within the horizon, {scenario.start} to {end}"
            raise ConfigError("target.deadline", allowed, str(target.deadline))
    return target


def metric_value(users: pd.DataFrame, metric, population: str) -> float:
    """A metric's value over one world's users of ``population`` (exposed | itt | all)."""
    u = users[users["exposed"]] if population == "exposed" else users
    if isinstance(metric, RatioOfMeans):
        den = u[metric.denom].sum()
        return float(u[metric.numer].sum() / den) if den else np.nan
    return float(u[metric.column].mean()) if len(u) else np.nan


def true_effects(design: Design, seed: int, store=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Truth on this population: every KPI and every analysis metric, none vs all treated.

    Metrics get one row per population the analysis reports (exposed, then itt). ``store``: a
    :func:`experiments.worlds.warm` store of this seed both worlds branch from (the same
    tables, faster).
    """
    none, everyone = truth_worlds(design, seed, store)
    kpis = worlds.side_by_side(none, everyone).rename(columns={
        "without": "none_treated", "with": "all_treated", "abs_diff": "abs_lift",
        "rel_diff": "rel_lift"})  # fmt: skip
    populations = ["itt"] if design.analysis.population == "all" else ["exposed", "itt"]
    rows = []
    for population in populations[: 1 + design.analysis.itt]:
        for m in design.analysis.metrics:
            a = metric_value(none.users, m, population)
            b = metric_value(everyone.users, m, population)
            rows.append({"metric": m.name, "population": population, "none_treated": a,
                         "all_treated": b, "true_abs_lift": b - a,
                         "true_rel_lift": b / a - 1 if a else np.nan})  # fmt: skip
    return kpis, pd.DataFrame(rows)


@dataclass
class Outcome:
    """One A/B replicate's results."""

    results: Results
    analysis: AnalysisResult
    smart: dict | None
    kpi_truth: pd.DataFrame | None
    metric_truth: pd.DataFrame | None


def truth_worlds(design: Design, seed: int, store=None) -> tuple[Results, Results]:
    """The worlds of the truth: no one treated (the background strategies on) and everyone."""
    base = worlds.background(design.strategy)
    sc = design.scenario
    none = worlds.treated(sc, seed, base, store=store) if base else worlds.plain(
        sc, seed, store=store)  # fmt: skip
    return none, worlds.treated(sc, seed, design.strategy, store=store)


def run_once(design: Design, seed: int, events: bool = False, progress=None,
             lean: bool = False) -> Outcome:  # fmt: skip
    """Simulate and analyse one A/B test (and its truth when ``design.truth``).

    With the truth, the A/B world and the truth's worlds branch from one warm-up of the seed's
    store (:func:`experiments.worlds.warm`): the same tables as three straight runs. ``lean``:
    the A/B world's results hold only the per-user table, unless a deadline before the horizon
    needs the sessions and orders to cut it.
    """
    if design.truth and design.store is not None:
        raise ValueError("a shared store's replicates have no truth worlds (truth=False)")
    store = design.store
    if design.truth and worlds.sharable(design.scenario, design.strategy, worlds.AB_ARMS):
        later = _truth_at_deadline(design)  # two more worlds
        store = worlds.warm(design.scenario, seed, progress, 3 + 2 * later)  # the bar's warm-up
    results = worlds.ab_world(design.scenario, seed, design.strategy, design.split,
                              design.salt, events, progress, store,
                              lean and deadline_day(design) is None)  # fmt: skip
    result = design.analysis.run(results.users)
    kpi_truth, metric_truth = true_effects(design, seed, store) if design.truth else (None, None)
    smart = None
    if design.target is not None:
        day = deadline_day(design)
        frame = results.users if day is None else users_as_of(results, day)
        # the data runs to the cut (or the horizon), whether or not anyone came first that day
        end = design.scenario.date_of(design.scenario.days - 1 if day is None else day)
        ns = SimpleNamespace(start_date=design.scenario.start_date, day_col="first_exposure_day",
                             segment_col="segment", data_end=end)  # fmt: skip
        smart = judge_target(ns, design.analysis, design.target, frame,
                             _target_truth(design, seed, metric_truth, day, store))  # fmt: skip
    return Outcome(results, result, smart, kpi_truth, metric_truth)


def deadline_day(design: Design) -> int | None:
    """The target's deadline as a day number, None when it is the horizon's last day (or unset).

    A target is judged on what was known by the end of its deadline: the per-user table as of
    that day (:func:`experiments.looks.users_as_of`), not the whole window's totals.
    """
    target, scenario = design.target, design.scenario
    if target is None or target.deadline is None:
        return None
    day = (target.deadline - scenario.start).days
    return day if day < scenario.days - 1 else None


def _truth_at_deadline(design: Design) -> bool:
    """Whether the target's truth is cut at a deadline before the horizon (two more worlds)."""
    target = design.target
    return (design.truth and target is not None and target.segment is None
            and deadline_day(design) is not None)  # fmt: skip


def _target_truth(design: Design, seed: int, metric_truth, day: int | None,
                  store=None) -> float | None:  # fmt: skip
    """The target metric's true lift on its own scale, where the run knows it.

    Known when the truth worlds ran and the target covers the whole decision population (no
    segment); cut at the deadline when it falls before the horizon's end.
    """
    target = design.target
    if metric_truth is None or target.segment is not None:
        return None
    if _truth_at_deadline(design):
        row = truth_as_of(design, seed, [day], [target.metric], store).iloc[0]
        a, b = row["none_treated"], row["all_treated"]
        return float(b / a - 1 if target.lift_kind == "relative" else b - a) if a else None
    row = metric_truth[metric_truth["metric"] == target.metric].iloc[0]
    return float(row["true_rel_lift" if target.lift_kind == "relative" else "true_abs_lift"])


def versus_truth(outcome: Outcome) -> pd.DataFrame:
    """ab_results joined with the true lifts, and whether each interval covers its truth."""
    table = outcome.analysis.table
    if outcome.metric_truth is None:
        return table
    t = table.merge(outcome.metric_truth, on=["metric", "population"], how="left")
    t["abs_covered"] = (t["abs_ci_low"] <= t["true_abs_lift"]) & (
        t["true_abs_lift"] <= t["abs_ci_high"]
    )
    t["rel_covered"] = (t["rel_ci_low"] <= t["true_rel_lift"]) & (
        t["true_rel_lift"] <= t["rel_ci_high"]
    )
    return t


@dataclass(frozen=True)
class Replicate:
    """Replicate task for :func:`experiments.replicates.run_replicates` (one A/B test)."""

    design: Design

    def __call__(self, index: int, seed: int) -> pd.DataFrame:
        """One replicate's rows: one per metric, with the truth when the design asks."""
        outcome = run_once(self.design, seed, lean=True)
        table = versus_truth(outcome)
        decision = table["population"] == table["population"].iloc[0]
        for r in (outcome.smart or {}).get("results", []):
            rows = decision & (table["metric"] == r["metric"])
            table.loc[rows, "target_verdict"] = r["verdict"]
            table.loc[rows, "target_p_met"] = r["p_met"]
            table.loc[rows, "target_estimate"] = r["estimate"]
            table.loc[rows, "target_se"] = r["se"]
        return table.assign(n_exposed=int(outcome.results.users["exposed"].sum()))
