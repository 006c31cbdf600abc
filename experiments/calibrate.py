"""Fit the simulator to a store: ``python -m experiments.calibrate dashboard=FILE`` (or a log).

The dashboard (a YAML file: name, period, KPIs; :mod:`experiments.calibration.dashboard`) names
the KPIs a store knows; the parameters those KPIs identify are fitted
(:mod:`experiments.calibration.fit`) and every other one keeps the starting scenario's value
(``conf/scenario/default.yaml``, or ``scenario_file=``), with a note. Outputs in the run folder:
calibrated.yaml (a whole scenario, for ``experiments.run scenario_file=``), fit.csv,
uncertainty.csv, notes.txt, fit.png, calibration.json and run.json (written last).
``run(cfg, out_dir)`` is the plain function behind it.

``transactions=FILE`` (an order export: customer_id, date, amount; CSV or Parquet) instead makes
the log's customers the world's agents and fits their repeat buying and spend to the whole
file (:mod:`experiments.calibration.forecast`); with ``forecast_days=N`` it writes forecast.csv
(per day after the log: the simulated orders' median and 5-95% band over ``replicates``, and
BG/NBD's) and forecast.png. Outputs: calibrated.yaml, fit.csv, transactions.json, run.json.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from hydra.core.config_store import ConfigStore  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402
from tqdm import tqdm  # noqa: E402

from experiments import config as config_mod  # noqa: E402
from experiments import outputs  # noqa: E402
from experiments.calibration.dashboard import Dashboard, load_dashboard  # noqa: E402
from experiments.calibration.fit import Calibration, calibrate, check_fittable  # noqa: E402
from experiments.calibration.logrun import report_log, run_log  # noqa: E402
from experiments.calibration.transactions import OrderLog, load_transactions  # noqa: E402
from experiments.cli import hydra_app  # noqa: E402
from experiments.figures import save_figure  # noqa: E402
from sim.config import Scenario  # noqa: E402
from sim.errors import ConfigError, check_number  # noqa: E402


@dataclass
class TransactionColumns:
    """The order export's column names (``columns.amount=total`` if it calls it so)."""

    customer_id: str = "customer_id"
    date: str = "date"
    amount: str = "amount"


@dataclass
class CalibrateConf:
    """Schema of conf/calibrate.yaml (see its comments for each field)."""

    dashboard: str | None = None
    transactions: str | None = None
    columns: TransactionColumns = field(default_factory=lambda: TransactionColumns())
    forecast_days: int = 0
    replicates: int = 20
    seed: int = 42
    trials: int = 60
    population: int = 50_000
    polish: int = 2
    fit_replicates: int = 3
    progress: bool = True
    scenario: Scenario = field(default_factory=Scenario)
    scenario_file: str | None = None


def validate(cfg: DictConfig) -> tuple[Scenario, Dashboard | OrderLog]:
    """Check the config and the dashboard or log once, before anything runs (ConfigError if bad)."""
    config_mod.check_known_keys(cfg, CalibrateConf, "")
    check_number(cfg.seed, "seed", ge=0, integer=True)
    if (cfg.dashboard is None) == (cfg.transactions is None):
        raise ConfigError("dashboard", "", message="dashboard or transactions: give one of them "
                          "(dashboard=FILE.yaml or transactions=FILE.csv)")  # fmt: skip
    if cfg.transactions is not None:
        check_number(cfg.forecast_days, "forecast_days", ge=0, integer=True)
        check_number(cfg.replicates, "replicates", ge=1, integer=True)
        scenario = config_mod.scenario_of(cfg)
        columns = {k: str(v) for k, v in cfg.columns.items()}
        return scenario, load_transactions(cfg.transactions, columns)
    check_number(cfg.trials, "trials", ge=1, integer=True)
    check_number(cfg.population, "population", ge=100, integer=True)
    check_number(cfg.polish, "polish", ge=0, integer=True)
    check_number(cfg.fit_replicates, "fit_replicates", ge=1, integer=True)
    scenario = config_mod.scenario_of(cfg)
    dashboard = load_dashboard(cfg.dashboard)
    check_fittable(dashboard)
    return scenario, dashboard


def scenario_yaml(cal: Calibration, source: str) -> str:
    """calibrated.yaml: a header saying what was fitted, then the whole scenario."""
    fitted = cal.uncertainty.set_index("parameter")["value"]
    by = {p: k for k, p in reversed(cal.fits.items())}
    lines = [
        f"# Calibrated by `python -m experiments.calibrate` to {source}",
        f"# ({dt.date.today().isoformat()}, funnelsim {outputs.package_version()}).",
        f"# The store keeps the catalog seed {cal.seed} draws (catalog.seed); any run's seed",
        "# draws new people for it (fit.csv: the mean of a few such runs):",
        "#   python -m experiments.run scenario_file=calibrated.yaml",
        "# Fitted (see uncertainty.csv for their ranges):",
        *[f"#   {p}: {v:.6g} (from {by[p]})" for p, v in fitted.items()],
        "# Every other value is the starting scenario's; notes.txt says why.",
    ]
    body = OmegaConf.to_yaml(OmegaConf.structured(cal.scenario))
    return "\n".join(lines) + "\n" + body


def fit_figure(fit: pd.DataFrame, path: Path) -> None:
    """Targets vs simulated KPIs: each KPI's relative error with its 95% Monte Carlo interval."""
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(fit) + 1.4))
    y = np.arange(len(fit))[::-1]
    half = 1.96 * fit["se"] / fit["target"].abs()
    colors = ["tab:blue" if p else "tab:gray" for p in fit["parameter"]]
    ax.axvline(0, color="black", lw=1)
    ax.errorbar(100 * fit["rel_error"], y, xerr=100 * half, fmt="none", ecolor="gray", capsize=3)
    ax.scatter(100 * fit["rel_error"], y, c=colors, zorder=3)
    labels = [f"{k}\n{t:,.4g} -> {s:,.4g}" for k, t, s in
              zip(fit["kpi"], fit["target"], fit["simulated"], strict=True)]  # fmt: skip
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("simulated / target - 1 (%), 95% interval (blue: fitted, gray: compared only)")
    ax.set_title("Calibrated store against the dashboard")
    ax.axvspan(-5, 5, color="tab:green", alpha=0.12, zorder=0)  # within 5%
    save_figure(fig, path)


def write(cal: Calibration, dashboard: Dashboard, cfg: DictConfig, out_dir: Path) -> dict:
    """Every output of a calibration into ``out_dir`` (run.json is the caller's, last)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    text = scenario_yaml(cal, str(cfg.dashboard))
    outputs.write_atomic(out_dir / "calibrated.yaml", lambda tmp: tmp.write_text(text))
    outputs.write_csv(out_dir / "fit.csv", cal.fit)
    outputs.write_csv(out_dir / "uncertainty.csv", cal.uncertainty)
    notes = "\n".join(cal.notes + [OTHERS]) + "\n"
    outputs.write_atomic(out_dir / "notes.txt", lambda tmp: tmp.write_text(notes))
    fit_figure(cal.fit, out_dir / "fit.png")
    summary = {
        "dashboard": str(cfg.dashboard), "name": dashboard.name,
        "period": {"start": dashboard.start, "days": dashboard.days}, "seed": cal.seed,
        "fits": cal.fits,
        "fitted": dict(zip(cal.uncertainty["parameter"], cal.uncertainty["value"], strict=True)),
        "notes": cal.notes, "cost": dataclasses.asdict(cal.cost),
        "fit": cal.fit.to_dict("records"),
    }  # fmt: skip
    outputs.write_json(out_dir / "calibration.json", summary)
    return summary


OTHERS = "every other key of the scenario stays at the starting scenario's value"


def run(cfg: DictConfig, out_dir: Path) -> dict:
    """Calibrate to the config's dashboard (or log) and write the outputs into ``out_dir``."""
    started = dt.datetime.now(dt.UTC).isoformat()
    base, dashboard = validate(cfg)
    if isinstance(dashboard, OrderLog):
        summary = run_log(base, dashboard, cfg, out_dir)
        _run_json(cfg, out_dir, started)
        return summary
    bars: dict[str, tqdm] = {}
    full = cfg.polish + 1 + cfg.fit_replicates * (cfg.fit_replicates > 1)
    totals = {"search": (cfg.trials, "search trials"), "full": (full, "market-size runs")}

    def tick(phase: str) -> None:
        if phase not in bars:  # a new phase: the last one's bar is done
            for bar in bars.values():
                bar.close()
            total, desc = totals[phase]
            bars[phase] = tqdm(total=total, desc=desc, unit="sim", file=sys.stderr,
                               disable=not cfg.progress)  # fmt: skip
        bars[phase].update(1)

    try:
        cal = calibrate(base, dashboard, cfg.trials, cfg.population, cfg.polish, cfg.seed,
                        cfg.fit_replicates, tick)  # fmt: skip
    finally:
        for bar in bars.values():
            bar.close()
    summary = write(cal, dashboard, cfg, out_dir)
    _run_json(cfg, out_dir, started)
    return summary


def _run_json(cfg: DictConfig, out_dir: Path, started: str) -> None:
    outputs.write_run_json(out_dir, cfg, started, command="calibrate")


def report(summary: dict) -> str:
    """The lines printed for a user: the fit, the notes and the cost."""
    fit = pd.DataFrame(summary["fit"])
    lines = [f"{'kpi':<26}{'target':>14}{'simulated':>14}{'se':>12}{'error':>9}  fitted"]
    for r in fit.itertuples():
        lines.append(f"{r.kpi:<26}{r.target:>14,.4g}{r.simulated:>14,.4g}{r.se:>12,.2g}"
                     f"{r.rel_error:>+9.1%}  {r.parameter or '(compared only)'}")  # fmt: skip
    lines.append("")
    lines += [f"{p}: {v:.6g}" for p, v in summary["fitted"].items()]
    lines += [f"note: {n}" for n in summary["notes"]] + [f"note: {OTHERS}"]
    c = summary["cost"]
    total = c["search_seconds"] + c["full_seconds"]
    lines.append(
        f"cost: {c['search_simulations']} search simulations at {c['search_population']:,} "
        f"agents ({c['search_seconds']:.1f} s; search {c['stopped']}) + {c['full_simulations']} "
        f"at the market size, {c['full_population']:,} agents ({c['full_seconds']:.1f} s): "
        f"{total:.1f} s"
    )
    return "\n".join(lines)


def task(cfg: DictConfig) -> dict:
    """Hydra task: run, print the report."""
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    summary = run(cfg, out_dir)
    print(report_log(summary) if "transactions" in summary else report(summary))
    print(f"\nOutputs in {out_dir}")
    return summary


def register_schemas() -> None:
    """Register conf/calibrate.yaml's schema (and the scenario group's) in Hydra's ConfigStore."""
    config_mod.register()
    ConfigStore.instance().store(name="calibrate_schema", node=CalibrateConf)


def main() -> None:
    """Register the schemas and run the Hydra app."""
    register_schemas()
    hydra_app("calibrate", task, validate)


if __name__ == "__main__":
    main()
