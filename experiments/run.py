"""``python -m experiments.run``: simulate the store and write its tables, KPIs and figures.

``run(cfg, out_dir)`` is a plain function (tested directly); the Hydra app around it is thin.
Outputs in the run folder: kpis.json, daily.csv, users.parquet, events.parquet (unless
``output.events=false``), funnel.png, kpis_over_time.png and run.json (written last).
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from experiments import config as config_mod
from experiments import outputs
from experiments.cli import hydra_app
from experiments.figures import funnel_figure, kpis_over_time_figure
from sim.aggregate import facts_of
from sim.config import Scenario
from sim.kpis import REGISTRY
from sim.world import Results, World

STAGES = ("awareness", "interest", "decision", "action")


def simulate(scenario: Scenario, seed: int, events: bool = True, progress: bool = False) -> Results:
    """Run the plain store once and return its tables."""
    world = World(scenario, seed, events=events)
    total = scenario.warmup_days + scenario.days
    with tqdm(total=total, desc="simulating days", unit="day", disable=not progress,
              file=sys.stderr) as bar:  # fmt: skip
        return world.run(progress=lambda day: bar.update(1))


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
    percent = kpi.endswith("_rate") or kpi in {"ctr", "csat", "zero_party_share",
                                               "revenue_share_by_channel"}  # fmt: skip
    if percent:
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


def compute(cfg: DictConfig) -> Outcome:
    """Simulate and compute every KPI (the engine's work, without writing anything)."""
    scenario = config_mod.scenario_of(cfg)
    results = simulate(scenario, cfg.seed, cfg.output.events, cfg.progress)
    facts = facts_of(results)
    return Outcome(results, outputs.kpi_summary(facts), outputs.daily_table(facts, scenario.start))


def write(cfg: DictConfig, outcome: Outcome, out_dir: Path, started: str) -> None:
    """Write every output of a run into ``out_dir``; run.json last, as the completion mark."""
    results = outcome.results
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs.write_json(out_dir / "kpis.json", outcome.summary)
    outputs.write_csv(out_dir / "daily.csv", outcome.daily)
    outputs.write_parquet(out_dir / "users.parquet", results.users)
    if results.events is not None:
        outputs.write_parquet(out_dir / "events.parquet", results.events)
    funnel_figure(results.sessions, out_dir / "funnel.png")
    kpis_over_time_figure(outcome.daily, out_dir / "kpis_over_time.png")
    resolved = OmegaConf.to_yaml(cfg, resolve=True)
    outputs.write_json(out_dir / "run.json", {
        "package": "funnelsim", "version": outputs.package_version(), "seed": int(cfg.seed),
        "experiment": cfg.experiment.name, "config_hash": outputs.config_hash(resolved),
        "start_time": started, "end_time": dt.datetime.now(dt.UTC).isoformat(),
    })  # fmt: skip


def run(cfg: DictConfig, out_dir: Path) -> dict:
    """Run the experiment of a composed config into ``out_dir``; return the KPI summary."""
    started = dt.datetime.now(dt.UTC).isoformat()
    outcome = compute(cfg)
    write(cfg, outcome, out_dir, started)
    return outcome.summary


def _task(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    out_dir = Path(HydraConfig.get().runtime.output_dir)
    summary = run(cfg, out_dir)
    print(format_kpis(kpi_frame(summary)))
    print(f"\nOutputs in {out_dir}")


def main() -> None:
    """Entry point of ``python -m experiments.run``."""
    config_mod.register()
    hydra_app("config", _task, config_mod.validate_run)


if __name__ == "__main__":
    main()
