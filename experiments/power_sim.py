"""Simulated power: many A/B tests in the simulator at several population sizes.

At each size, ``replicates`` A/B tests are analysed. By default (``experiment.shared_store``)
they are tests in one store: its population, past and warm-up are drawn once from the run's
seed, and each replicate (its own spawned seed) draws its own split and its own window from
day 0 on; with ``shared_store=false`` every replicate is a new store as well. A metric's
simulated power is its share of unadjusted p-values below alpha (each
metric as if it were the test's only one, like the analytic curve), with a 95% Wilson interval.
Beside it, the analytic power of a two-sided z-test from the same replicates' mean lift and
standard error, ``Phi(|lift| / se - z) + Phi(-|lift| / se - z)`` (z = the 1 - alpha/2
quantile): where the two disagree, the formula's assumptions (normality, no interference, no
novelty) fail. Rows are the decision population's (exposed users by default).

With a target, ``p_target_met`` is the share of replicates whose verdict is "met" (with its
Wilson interval), and ``predicted_p_met`` the same quantity from the formula of
:mod:`experiments.stats.targets`, ``Phi(s (lift - target) / se - z)``, at the replicates' mean
lift and standard error on the target's scale: where they agree, the "achievable" check made
before a test can be trusted.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from experiments import outputs
from experiments.abtest import Design, Replicate
from experiments.replicates import run_replicates
from experiments.stats.targets import p_met


def summarize(reps: pd.DataFrame, alpha: float, target=None) -> pd.DataFrame:
    """Power per (size, metric): simulated with its interval, and analytic; the target's odds."""
    reps = reps[reps["population"] == reps["population"].iloc[0]]
    reps = reps.assign(hit=reps["p_value"] < alpha)
    g = reps.groupby(["size", "metric"], sort=False)
    out = g.agg(replicates=("hit", "size"), hits=("hit", "sum"),
                mean_abs_lift=("abs_lift", "mean"), mean_se=("se", "mean"))  # fmt: skip
    out["power"] = out["hits"] / out["replicates"]
    low, high = proportion_confint(out["hits"], out["replicates"], alpha=0.05, method="wilson")
    out["power_ci_low"], out["power_ci_high"] = low, high
    z = stats.norm.isf(alpha / 2)
    ratio = np.abs(out["mean_abs_lift"]) / out["mean_se"]
    out["analytic_power"] = stats.norm.cdf(ratio - z) + stats.norm.cdf(-ratio - z)
    if target is not None and "target_verdict" in reps:
        out = out.join(_target_odds(reps, alpha, target))
    return out.reset_index()


def _target_odds(reps: pd.DataFrame, alpha: float, target) -> pd.DataFrame:
    """Simulated share of "met" verdicts (Wilson interval) beside the predicted p_met."""
    judged = reps.dropna(subset=["target_verdict"]).assign(
        met=lambda r: r["target_verdict"] == "met")  # fmt: skip
    g = judged.groupby(["size", "metric"], sort=False)
    odds = g.agg(met=("met", "sum"), judged=("met", "size"), estimate=("target_estimate", "mean"),
                 se=("target_se", "mean"))  # fmt: skip
    odds["p_target_met"] = odds["met"] / odds["judged"]
    low, high = proportion_confint(odds["met"], odds["judged"], alpha=0.05, method="wilson")
    odds["p_target_met_ci_low"], odds["p_target_met_ci_high"] = low, high
    odds["predicted_p_met"] = p_met(odds["estimate"].to_numpy(), target.signed_lift,
                                    odds["se"].to_numpy(), alpha, target.direction,
                                    target.lift_kind)  # fmt: skip
    return odds[["p_target_met", "p_target_met_ci_low", "p_target_met_ci_high",
                 "predicted_p_met"]]  # fmt: skip


def run(cfg, design: Design, sizes, out_dir: Path) -> pd.DataFrame:
    """R replicates at each size; writes power_sim.csv and replicates.parquet."""
    frames = []
    for size in sizes:
        scenario = dataclasses.replace(design.scenario, population=dataclasses.replace(
            design.scenario.population, size=int(size)))  # fmt: skip
        store = cfg.seed if cfg.experiment.shared_store else None
        task = Replicate(dataclasses.replace(design, scenario=scenario, truth=False, store=store))
        reps = run_replicates(task, cfg.replicates, cfg.seed, out_dir / f"replicates_{size}",
                              cfg.backend, cfg.workers, cfg.progress,
                              f"power_sim n={size:,}")  # fmt: skip
        frames.append(reps.assign(size=int(size)))
    reps = pd.concat(frames, ignore_index=True)
    table = summarize(reps, design.analysis.alpha, design.target)
    outputs.write_parquet(out_dir / "replicates.parquet", reps)
    outputs.write_csv(out_dir / "power_sim.csv", table)
    return table
