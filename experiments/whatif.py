"""What-if: the store with and without the chosen strategies, KPI by KPI.

Both worlds share the population and the keyed random numbers (common random numbers), so the
difference is the strategies' effect on these agents, not noise between two draws. With
``replicates=R`` each replicate is a new population (a spawned seed) and the differences get a
95% interval over replicates (t interval of the mean difference).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from experiments import outputs, worlds
from experiments.replicates import run_replicates
from sim.config import Scenario
from sim.kpis import REGISTRY


@dataclass(frozen=True)
class WhatIf:
    """Replicate task: one pair of worlds (without, with) at a seed."""

    scenario: Scenario
    strategy: dict

    def __call__(self, index: int, seed: int) -> pd.DataFrame:
        """KPI side by side for one population (both worlds branch from one warm-up)."""
        store = worlds.warm(self.scenario, seed, branches=2)
        without = worlds.plain(self.scenario, seed, store=store)
        with_ = worlds.treated(self.scenario, seed, self.strategy, store=store)
        return worlds.side_by_side(without, with_)


def summarize(reps: pd.DataFrame) -> pd.DataFrame:
    """Mean over replicates of each column, and a 95% t interval of the differences."""
    g = reps.groupby("kpi", sort=False)
    out = g[["without", "with", "abs_diff", "rel_diff"]].mean()
    n = g.size()
    for col in ("abs_diff", "rel_diff"):
        sd = g[col].std(ddof=1)
        half = stats.t.ppf(0.975, np.maximum(n - 1, 1)) * sd / np.sqrt(n)
        out[f"{col}_ci_low"] = np.where(n > 1, out[col] - half, np.nan)
        out[f"{col}_ci_high"] = np.where(n > 1, out[col] + half, np.nan)
    out["replicates"] = n
    order = [k for k in REGISTRY if k in out.index]
    return out.loc[order].reset_index()


def run(cfg, scenario: Scenario, out_dir: Path) -> pd.DataFrame:
    """Run the what-if (R replicates) and write whatif.csv, kpis_by_arm.csv, replicates.parquet."""
    task = WhatIf(scenario, dict(cfg.strategy))
    reps = run_replicates(task, cfg.replicates, cfg.seed, out_dir / "replicates",
                          cfg.backend, cfg.workers, cfg.progress, "what-if replicates")  # fmt: skip
    table = summarize(reps)
    outputs.write_csv(out_dir / "whatif.csv", table)
    by_arm = table[["kpi", "without", "with"]]
    outputs.write_csv(out_dir / "kpis_by_arm.csv", by_arm)
    outputs.write_parquet(out_dir / "replicates.parquet", reps)
    return table
