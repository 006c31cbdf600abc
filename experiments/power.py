"""Size an A/B test: ``python -m experiments.power metric=proportion baseline=0.10 mde=0.02``.

Prints users per arm, total users, days of traffic and the convention used; writes power.json
and power_curve.png to Hydra's run folder. ``run(cfg)`` is the plain function behind it.

The direction sized is the alternative's (``smaller``: a decrease); two-sided, the harder one
(see :mod:`experiments.stats.power`). Beside the fixed-horizon n it reports what peeking costs:
the O'Brien-Fleming maximum n for ``looks`` equally spaced looks and the mSPRT's expected n at
the MDE (:func:`experiments.stats.power.sequential_size`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import MISSING, DictConfig
from tqdm import tqdm

from experiments.cli import hydra_app
from experiments.outputs import write_atomic, write_json
from experiments.stats import power as pw
from experiments.stats.checks import ConfigError, check_choice, check_number

ALTERNATIVES = ("two-sided", "larger", "smaller")
MDE_KINDS = ("absolute", "relative")


@dataclass
class PowerConf:
    """Schema of conf/power.yaml (see its comments for each field)."""

    metric: str = "proportion"
    baseline: float = MISSING
    mde: float = MISSING
    mde_kind: str = "absolute"
    sd: float | None = None
    denom_mean: float | None = None
    numer_sd: float | None = None
    denom_sd: float | None = None
    corr: float | None = None
    alpha: float = 0.05
    power: float = 0.8
    alternative: str = "two-sided"
    allocation_ratio: float = 1.0
    cuped_rho: float = 0.0
    daily_traffic: float | None = None
    n_per_arm: int | None = None
    simulate: int = 0
    seed: int = 0
    looks: int = 5
    msprt_tau: float | None = None


def _sd(cfg: Any) -> float | None:
    """Per-user sd: given for means; for ratios given, or built from its delta-method parts."""
    if cfg.metric == "proportion":
        return None
    if cfg.sd is not None:
        return check_number(cfg.sd, "sd", gt=0)
    if cfg.metric == "mean":
        raise ConfigError("sd", "a number > 0 when metric=mean")
    parts = ("denom_mean", "numer_sd", "denom_sd", "corr")
    for key in parts:
        if cfg[key] is None:
            raise ConfigError(key, "given when metric=ratio without sd (or set sd)")
    check_number(cfg.denom_mean, "denom_mean", gt=0)
    check_number(cfg.corr, "corr", ge=-1, le=1)
    return pw.ratio_sd(cfg.baseline, cfg.denom_mean, cfg.numer_sd, cfg.denom_sd, cfg.corr)


def design_from(cfg: Any) -> tuple[pw.Design, float]:
    """Validate the config; return the design and the signed lift sized (ConfigError if bad)."""
    check_choice(cfg.metric, "metric", pw.KINDS)
    check_choice(cfg.mde_kind, "mde_kind", MDE_KINDS)
    check_choice(cfg.alternative, "alternative", ALTERNATIVES)
    check_number(cfg.alpha, "alpha", gt=0, lt=1)
    check_number(cfg.power, "power", gt=0, lt=1)
    check_number(cfg.mde, "mde", gt=0)
    check_number(cfg.allocation_ratio, "allocation_ratio", gt=0)
    check_number(cfg.cuped_rho, "cuped_rho", ge=0, lt=1)
    if cfg.metric == "proportion":
        check_number(cfg.baseline, "baseline", gt=0, lt=1)
    elif cfg.mde_kind == "relative":
        check_number(cfg.baseline, "baseline", gt=0)
    for key, low in (("daily_traffic", 0), ("n_per_arm", 1)):
        if cfg[key] is not None:
            check_number(cfg[key], key, gt=low) if low == 0 else check_number(cfg[key], key, ge=1)
    check_number(cfg.simulate, "simulate", ge=0, integer=True)
    check_number(cfg.looks, "looks", ge=1, le=60, integer=True)
    if cfg.msprt_tau is not None:
        check_number(cfg.msprt_tau, "msprt_tau", gt=0)
    if cfg.simulate and cfg.metric != "proportion":
        raise ConfigError("simulate", "0 unless metric=proportion", cfg.simulate)
    mde_abs = cfg.mde * cfg.baseline if cfg.mde_kind == "relative" else cfg.mde
    design = pw.Design(cfg.metric, cfg.baseline, _sd(cfg), cfg.alpha, cfg.alternative,
                       cfg.allocation_ratio, cfg.cuped_rho)  # fmt: skip
    return design, pw.sized_lift(design, mde_abs)  # ConfigError if it leaves (0, 1)


def validate(cfg: DictConfig) -> None:
    """Check the config before Hydra makes an output folder."""
    design_from(cfg)


def run(cfg: Any, out_dir: str | Path) -> dict:
    """Size the test, write power.json and power_curve.png to ``out_dir``, return the summary.

    power.json: ``n_per_arm`` is the fixed-horizon n; ``direction`` the direction sized;
    ``looks``, ``obf_inflation``, ``n_per_arm_obf``, ``expected_n_obf``, ``msprt_tau``,
    ``n_per_arm_msprt_max`` and ``expected_n_msprt`` the sequential designs (all per arm, equal
    split; expected n's at the MDE).
    """
    design, mde_abs = design_from(cfg)
    size = pw.sample_size(design, mde_abs, cfg.power, cfg.daily_traffic)
    seq = pw.sequential_size(design, mde_abs, cfg.power, cfg.looks, cfg.msprt_tau)
    summary = dict(vars(size)) | {k: v for k, v in vars(seq).items() if k != "n_fixed"}
    summary |= {"metric": cfg.metric, "alternative": cfg.alternative,
                "allocation_ratio": cfg.allocation_ratio, "cuped_rho": cfg.cuped_rho,
                "daily_traffic": cfg.daily_traffic}  # fmt: skip
    if cfg.n_per_arm is not None:
        summary["power_at_n"] = pw.achieved_power(design, mde_abs, cfg.n_per_arm)
        summary["mde_at_n"] = pw.minimum_detectable_effect(design, cfg.n_per_arm, cfg.power)
    if cfg.simulate:
        summary |= _simulate(cfg, design, mde_abs, size)
    out_dir = Path(out_dir)
    _plot(design, mde_abs, size, cfg.power, out_dir / "power_curve.png")
    write_json(out_dir / "power.json", summary)
    return summary


def _simulate(cfg: Any, design: pw.Design, mde_abs: float, size: pw.SampleSize) -> dict:
    experiment = pw.BinomialExperiment(design.baseline, design.baseline + mde_abs,
                                       size.n_control, size.n_treatment)  # fmt: skip
    test = pw.ProportionZTest(cfg.alpha, cfg.alternative)
    progress = functools.partial(tqdm, total=cfg.simulate, desc="simulated power", disable=None)
    sim = pw.simulated_power(experiment, test, cfg.simulate, cfg.seed, progress=progress)
    return {"simulated_power": sim.power, "simulated_power_ci": [sim.ci_low, sim.ci_high],
            "simulated_replicates": sim.replicates}  # fmt: skip


def curves_for(design: pw.Design, lift: float, n_grid) -> dict:
    """Power curves at 0.75, 1 and 1.5 times the signed ``lift`` (the sized direction).

    Labelled ``"0.1 -> 0.08 (lift -0.02)"``; lifts leaving (0, 1) for a proportion are skipped.
    """
    curves = {}
    for factor in (0.75, 1.0, 1.5):
        treated = design.baseline + factor * lift
        if design.kind != "proportion" or 0 < treated < 1:
            label = f"{design.baseline:.4g} -> {treated:.4g} (lift {factor * lift:+.4g})"
            curves[label] = pw.power_curve(design, factor * lift, n_grid)
    return curves


def _plot(design: pw.Design, mde_abs: float, size: pw.SampleSize, power: float, path: Path):
    n_grid = np.unique(np.linspace(2, 2.5 * size.n_control, 60).round())
    curves = curves_for(design, mde_abs, n_grid)
    write_atomic(path, lambda tmp: pw.plot_power_curve(curves, power, tmp))


def report(summary: dict) -> str:
    """Format the summary as the lines printed for a user."""
    days = "n/a (set daily_traffic)" if summary["days"] is None else summary["days"]
    lines = [
        f"metric: {summary['metric']}  baseline: {summary['baseline']:g}  "
        f"MDE: {summary['mde_abs']:+.4g} absolute ({summary['mde_rel']:+.2%} relative)",
        f"alpha: {summary['alpha']:g} ({summary['alternative']})  power: {summary['power']:g}",
        f"direction: {summary['direction']} ({summary['baseline']:g} -> "
        f"{summary['baseline'] + summary['mde_abs']:.4g})",
        f"n per arm (equal split): {summary['n_per_arm']:,}  fixed horizon: one test at the end",
        *_sequential_lines(summary),
        f"n control / treatment: {summary['n_control']:,} / {summary['n_treatment']:,}",
        f"total n: {summary['total_n']:,}",
        f"days: {days}",
        f"convention: {summary['method']}",
    ]
    if "simulated_power" in summary:
        low, high = summary["simulated_power_ci"]
        lines.append(f"simulated power: {summary['simulated_power']:.3f} [{low:.3f}, {high:.3f}]")
    return "\n".join(lines)


def _sequential_lines(summary: dict) -> list[str]:
    """One line per sequential design: its n and what it means."""
    looks = summary["looks"]
    return [
        f"n per arm, O'Brien-Fleming: {summary['n_per_arm_obf']:,} at most "
        f"(x{summary['obf_inflation']:.4f} the fixed n), {summary['expected_n_obf']:,.0f} expected "
        f"at the MDE: may stop at any of {looks} equally spaced looks",
        f"n per arm, mSPRT: {summary['expected_n_msprt']:,.0f} expected at the MDE, capped at "
        f"{summary['n_per_arm_msprt_max']:,} (where it has power {summary['power']:g}): valid "
        f"at any look (tau {summary['msprt_tau']:.4g}; computed for the {looks} looks)",
    ]


def task(cfg: DictConfig) -> dict:
    """Hydra task: run, print the report."""
    summary = run(cfg, HydraConfig.get().runtime.output_dir)
    print(report(summary))
    return summary


def register_schemas() -> None:
    """Register conf/power.yaml's schema in Hydra's ConfigStore."""
    ConfigStore.instance().store(name="power_schema", node=PowerConf)


def main() -> None:
    """Register the schema and run the Hydra app."""
    register_schemas()
    hydra_app("power", task, validate)


if __name__ == "__main__":
    main()
