"""``python -m experiments.run``: simulate the store and write its tables, KPIs and figures.

``run(cfg, out_dir)`` is a plain function (tested directly); the Hydra app around it is thin.
Outputs in the run folder: kpis.json, daily.csv, users.parquet, events.parquet (unless
``output.events=false``), funnel.png, kpis_over_time.png, order_values.png and run.json
(written last).
"""

from __future__ import annotations

import datetime as dt
import gc
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from experiments import config as config_mod
from experiments import outputs, report, worlds
from experiments.cli import hydra_app
from experiments.decision import senses
from experiments.figures import funnel_figure, kpis_over_time_figure, order_value_figure
from experiments.replicates import run_replicates
from experiments.texts import (
    HEADLINE,
    ab_panel,
    ab_sections,
    ab_text,
    power_table,
    setup_text,
    strategies_label,
    whatif_table,
    whatif_text,
)
from sim.aggregate import facts_of
from sim.config import Scenario
from sim.kpis import REGISTRY
from sim.world import Results, World
from strategies import build_strategies

if TYPE_CHECKING:
    from experiments.abtest import Design

STAGES = ("awareness", "interest", "decision", "action")


def simulate(
    scenario: Scenario, seed: int, events: bool = True, progress: bool = False, strategy=None
) -> Results:
    """Run the store once (with the config's strategies on its one arm) and return its tables."""
    hooks = build_strategies(worlds.specs(strategy or {}), ["control"])
    world = World(scenario, seed, hooks, events=events)
    total = scenario.warmup_days + scenario.days
    with tqdm(total=total, desc="simulating days", unit="day", disable=not progress,
              file=sys.stderr) as bar:  # fmt: skip
        results = world.run(progress=lambda day: bar.update(1), release=True)
    # The world's daily processes refer to it in cycles, which only the cyclic collector frees:
    # free its arrays now, not during the KPIs (1M agents: peak memory 1,055 -> 868 MB)
    del world
    gc.collect()
    return results


def kpi_frame(summary: dict) -> pd.DataFrame:
    """The KPI table grouped by funnel stage: stage, kpi, type and one column per arm."""
    rows = []
    arms = list(summary["by_arm"])
    for kpi in REGISTRY.values():
        row = {"stage": kpi.stage, "kpi": kpi.id, "type": kpi.type}
        row["total"] = summary["total"].get(kpi.id)
        if len(arms) > 1:
            row.update({arm: summary["by_arm"][arm].get(kpi.id) for arm in arms})
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["stage"] = pd.Categorical(frame["stage"], STAGES, ordered=True)
    return frame.sort_values("stage", kind="stable").reset_index(drop=True)


def format_kpis(frame: pd.DataFrame) -> str:
    """Readable table: rates as percentages, money and counts with separators."""
    lines = []
    for stage, g in frame.groupby("stage", observed=True):
        lines.append(f"\n{stage.upper()}")
        for _, row in g.iterrows():
            cells = [_fmt(row[c], row["kpi"], row["type"]) for c in frame.columns[3:]]
            lines.append(f"  {row['kpi']:<28}" + "".join(f"{c:>16}" for c in cells))
    header = f"  {'kpi':<28}" + "".join(f"{c:>16}" for c in frame.columns[3:])
    return header + "\n".join(lines)


def _fmt(value, kpi: str, type_: str) -> str:
    if value is None or pd.isna(value):
        return "-"
    if report.is_percent(kpi):
        return f"{value:.2%}"
    if type_ == "total" or abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


@dataclass
class Outcome:
    """A finished run before it is written: the tables, the KPI summary and daily KPIs."""

    results: Results
    summary: dict
    daily: pd.DataFrame


def _simulate_cfg(cfg: DictConfig) -> Results:
    scenario = config_mod.scenario_of(cfg)
    strategy = OmegaConf.to_container(cfg.strategy, resolve=True)
    return simulate(scenario, cfg.seed, cfg.output.events, cfg.progress, strategy)


def _kpis(results: Results) -> Outcome:
    facts = facts_of(results)
    summary = outputs.kpi_summary(facts)
    return Outcome(results, summary, outputs.daily_table(facts, results.scenario.start))


def compute(cfg: DictConfig) -> Outcome:
    """Simulate and compute every KPI (the engine's work, without writing anything)."""
    return _kpis(_simulate_cfg(cfg))


def _parquet_tables(results: Results) -> list[tuple[str, object]]:
    tables = [("users.parquet", results.users)]
    if results.events is not None:
        tables.append(("events.parquet", results.events))
    return tables


def write_tables(
    out_dir: Path, results: Results, summary: dict, daily: pd.DataFrame, parquet: bool = True
) -> None:
    """A world's tables and figures: kpis.json, daily.csv, users/events.parquet, two PNGs.

    ``parquet=False``: the Parquet files are left to the caller (:func:`run` writes them while
    the KPIs are computed).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs.write_json(out_dir / "kpis.json", summary)
    outputs.write_csv(out_dir / "daily.csv", daily)
    tables = _parquet_tables(results) if parquet else []
    # Parquet is written in a thread (Arrow releases the GIL) while the figures are drawn here:
    # at 1M agents with the event log, ~1 s of each overlaps. Its errors surface at result().
    with ThreadPoolExecutor(1) as pool:
        written = [pool.submit(outputs.write_parquet, out_dir / n, t) for n, t in tables]
        funnel_figure(results.sessions, out_dir / "funnel.png")
        kpis_over_time_figure(daily, out_dir / "kpis_over_time.png")
        window = results.orders[results.orders["time"].to_numpy() >= 0]
        order_value_figure(window, results.scenario.shipping.free_threshold,
                           out_dir / "order_values.png")  # fmt: skip
        for future in written:
            future.result()


def write(cfg: DictConfig, outcome: Outcome, out_dir: Path, started: str) -> None:
    """Write every output of a run into ``out_dir``; run.json last, as the completion mark."""
    write_tables(out_dir, outcome.results, outcome.summary, outcome.daily)
    _run_json(cfg, out_dir, started)


def run(cfg: DictConfig, out_dir: Path) -> dict:
    """Run the experiment of a composed config into ``out_dir``; return its summary."""
    started = dt.datetime.now(dt.UTC).isoformat()
    name = cfg.experiment.name
    if name == "baseline":
        results = _simulate_cfg(cfg)
        out_dir.mkdir(parents=True, exist_ok=True)
        # The Parquet files are written in a thread (Arrow releases the GIL) while the KPIs are
        # computed here; the same files as written after them. Errors surface at result().
        with ThreadPoolExecutor(1) as pool:
            written = [pool.submit(outputs.write_parquet, out_dir / n, t)
                       for n, t in _parquet_tables(results)]  # fmt: skip
            outcome = _kpis(results)
            write_tables(out_dir, results, outcome.summary, outcome.daily, parquet=False)
            for future in written:
                future.result()
        _run_json(cfg, out_dir, started)
        return outcome.summary
    runner = {"whatif": _whatif, "ab_test": _ab_test, "power_sim": _power_sim, "clv": _clv,
              "prices": _prices, "incrementality": _incrementality,
              "budget": _budget, "promotion": _promotion}[name]  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = runner(cfg, config_mod.scenario_of(cfg), out_dir)
    _run_json(cfg, out_dir, started)
    return summary


def _run_json(cfg: DictConfig, out_dir: Path, started: str) -> None:
    outputs.write_run_json(out_dir, cfg, started, experiment=cfg.experiment.name)


def _design(cfg: DictConfig, scenario) -> Design:
    from experiments import abtest

    analysis = abtest.analysis_of(cfg, cfg.split)
    return abtest.Design(
        scenario=scenario, strategy=OmegaConf.to_container(cfg.strategy, resolve=True),
        split=float(cfg.split), salt=cfg.experiment.name, analysis=analysis,
        target=abtest.target_of(cfg, analysis, scenario), truth=bool(cfg.experiment.truth),
    )  # fmt: skip


def _whatif(cfg: DictConfig, scenario, out_dir: Path) -> dict:
    from experiments import whatif

    table = whatif.run(cfg, scenario, out_dir)
    shown = table[table["kpi"].isin(HEADLINE)]
    lift = shown.rename(columns={"kpi": "metric", "rel_diff": "rel_lift",
                                 "rel_diff_ci_low": "rel_ci_low",
                                 "rel_diff_ci_high": "rel_ci_high"})  # fmt: skip
    interval = "mean over replicates, 95% CI" if cfg.replicates > 1 else "one population"
    report.lift_figure(lift, out_dir / "whatif_lift.png", estimate=interval,
                       versus="with vs without the strategies")  # fmt: skip
    print(whatif_text(table))
    report.write_report(out_dir, "What-if: " + strategies_label(cfg), [
        report.Section("Setup", setup_text(cfg, scenario)),
        report.Section("Effect on every KPI", "Without and with the strategies on the same "
                       "population and keyed random numbers; with replicates, the mean and a 95% "
                       "t interval of the difference over replicates. Rates in %, their "
                       "differences in percentage points (pp).", [whatif_table(table)]),
        report.Section("Headline KPIs", "", figures=["whatif_lift.png"]),
    ])  # fmt: skip
    return {"whatif": table.to_dict("records")}


def _ab_test(cfg: DictConfig, scenario, out_dir: Path) -> dict:
    from experiments import abtest, looks

    design = _design(cfg, scenario)
    total = scenario.warmup_days + scenario.days
    with tqdm(total=total, desc="A/B world", unit="day", disable=not cfg.progress,
              file=sys.stderr) as bar:  # fmt: skip
        outcome = abtest.run_once(design, cfg.seed, cfg.output.events, lambda d: bar.update(1))
    results, facts = outcome.results, facts_of(outcome.results)
    summary = outputs.kpi_summary(facts)
    daily = outputs.daily_table(facts, scenario.start)
    by_arm = pd.DataFrame(summary["by_arm"]).reindex(list(REGISTRY)).rename_axis("kpi")
    write_tables(out_dir, results, summary, daily)
    outputs.write_csv(out_dir / "kpis_by_arm.csv", by_arm.reset_index())
    table = abtest.versus_truth(outcome)
    outputs.write_csv(out_dir / "ab_results.csv", outcome.analysis.table)
    outputs.write_json(out_dir / "srm.json", outcome.analysis.srm._asdict())
    if outcome.kpi_truth is not None:
        outputs.write_csv(out_dir / "truth.csv", outcome.kpi_truth)
        outputs.write_csv(out_dir / "ab_vs_truth.csv", table)
    if outcome.smart is not None:
        outputs.write_json(out_dir / "smart.json", outcome.smart)
    names = design.analysis.primary or tuple(m.name for m in design.analysis.metrics)
    metric = cfg.experiment.sequential_metric or names[0]
    seq = looks.sequential_of(design, results, metric, cfg.experiment.look_every,
                              cfg.experiment.planned_mde, cfg.experiment.msprt_tau)  # fmt: skip
    outputs.write_csv(out_dir / "sequential.csv", seq)
    report.lift_figure(table, out_dir / "lift.png", design.target)
    report.sequential_figure(seq, metric, scenario.start, out_dir / "sequential.png")
    reps = None
    if cfg.replicates > 1:
        reps = run_replicates(abtest.Replicate(design), cfg.replicates, cfg.seed,
                              out_dir / "replicates", cfg.backend, cfg.workers, cfg.progress,
                              "A/B replicates")  # fmt: skip
        outputs.write_parquet(out_dir / "replicates.parquet", reps)
    sense = senses(design.analysis, design.target)
    panel = ab_panel(outcome, table, sense, scenario.days, design.analysis.alpha)
    print(ab_text(outcome, table, reps, panel))
    report.write_report(
        out_dir,
        "A/B test: " + strategies_label(cfg),
        ab_sections(cfg, scenario, design, outcome, table, by_arm, seq, metric, reps, panel),
    )
    return summary


def _power_sim(cfg: DictConfig, scenario, out_dir: Path) -> dict:
    from experiments import power_sim

    design = _design(cfg, scenario)
    table = power_sim.run(cfg, design, list(cfg.experiment.sizes), out_dir)
    report.power_figure(table, out_dir / "power_curves.png")
    print(table.to_string(index=False))
    report.write_report(out_dir, "Simulated power: " + strategies_label(cfg), [
        report.Section("Setup", setup_text(cfg, scenario)),
        report.Section("Power by size", " ".join(power_sim.__doc__.split("\n\n")[1:3]).replace(
                       "\n", " ").replace(":mod:", "").replace("`", ""),
                       [power_table(table)], ["power_curves.png"]),
    ])  # fmt: skip
    return {"power": table.to_dict("records")}


def _clv(cfg: DictConfig, scenario, out_dir: Path) -> dict:
    from experiments import clv

    summary = clv.run(cfg, scenario, out_dir)
    print(clv.table_text(pd.DataFrame(summary["clv"])))
    for note in summary["notes"]:
        print(f"note: {note}")
    return summary


def _prices(cfg: DictConfig, scenario, out_dir: Path) -> dict:
    from experiments import prices

    summary = prices.run(cfg, scenario, out_dir)
    print(prices.table_text(pd.DataFrame(summary["prices"])))
    return summary


def _incrementality(cfg: DictConfig, scenario, out_dir: Path) -> dict:
    from experiments import incrementality

    summary = incrementality.run(cfg, scenario, out_dir)
    print(incrementality.table_text(pd.DataFrame(summary["incrementality"])))
    return summary


def _budget(cfg: DictConfig, scenario, out_dir: Path) -> dict:
    from experiments import budget

    summary = budget.run(cfg, scenario, out_dir)
    print(budget.table_text(pd.DataFrame(summary["budget"]), pd.DataFrame(summary["split"])))
    return summary


def _promotion(cfg: DictConfig, scenario, out_dir: Path) -> dict:
    from experiments import promotion

    summary = promotion.run(cfg, scenario, out_dir, write_tables)
    print(promotion.table_text(pd.DataFrame(summary["promotion"])))
    return summary


def _task(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    out_dir = Path(HydraConfig.get().runtime.output_dir)
    summary = run(cfg, out_dir)
    if cfg.experiment.name == "baseline":
        print(format_kpis(kpi_frame(summary)))
    print(f"\nOutputs in {out_dir}")


def main() -> None:
    """Entry point of ``python -m experiments.run``."""
    config_mod.register()
    hydra_app("config", _task, config_mod.validate_run)


if __name__ == "__main__":
    main()
