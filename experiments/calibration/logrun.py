"""``python -m experiments.calibrate transactions=FILE``: fit to an order log, forecast, write.

Outputs in the run folder: calibrated.yaml (the starting scenario with the fitted values, market
size = the log's customers), fit.csv (the engine against the log: repeat purchase days and
amount per purchase day), transactions.json (the log, the fitted parameters, the likelihood
fit, BG/NBD's parameters, forecast totals, timings) and, with ``forecast_days=N``,
forecast.csv and forecast.png.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402
from tqdm import tqdm  # noqa: E402

from experiments import outputs  # noqa: E402
from experiments.calibration import forecast as F  # noqa: E402
from experiments.calibration.transactions import OrderLog  # noqa: E402
from experiments.figures import save_figure  # noqa: E402
from sim.config import Scenario  # noqa: E402


def forecast_figure(table: pd.DataFrame, path: Path, actual: pd.Series | None = None) -> None:
    """Cumulative orders after the log: simulated median and band, BG/NBD (and the actual)."""
    fig, ax = plt.subplots(figsize=(8, 4.2))
    date = pd.to_datetime(table["date"])
    ax.fill_between(date, table["simulated_cumulative_p05"], table["simulated_cumulative_p95"],
                    color="tab:blue", alpha=0.25,
                    label="simulated, 5-95% of replicates' running totals")  # fmt: skip
    ax.plot(date, table["simulated_cumulative_p50"], color="tab:blue", label="simulated, median")
    ax.plot(date, table["bgnbd_orders"].cumsum(), color="tab:orange", label="BG/NBD")
    if actual is not None:
        ax.plot(date, actual.reindex(date, fill_value=0).cumsum().to_numpy(), color="black",
                label="actual")  # fmt: skip
    ax.set_ylabel("cumulative orders (customer-days)")
    ax.set_title("Orders of the log's customers after its last date")
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    save_figure(fig, path)


def _yaml(scenario: Scenario, found: F.LogFit, source: str, seed: int) -> str:
    values = found.reduced.as_keys() | {
        "traffic.visit_rate": found.engine_visit_rate,
        "catalog.price_median": scenario.catalog.price_median,
    }
    lines = [
        f"# Calibrated by `python -m experiments.calibrate` to the order log {source}",
        f"# ({dt.date.today().isoformat()}, funnelsim {outputs.package_version()}), seed {seed}.",
        "# Fitted:",
        *[f"#   {k}: {v:.6g}" for k, v in values.items()],
        "# population.size is the log's customers; every other value is the starting scenario's.",
    ]
    return "\n".join(lines) + "\n" + OmegaConf.to_yaml(OmegaConf.structured(scenario))


def run_log(base: Scenario, log: OrderLog, cfg: DictConfig, out_dir: Path) -> dict:
    """Fit the world to the log, forecast ``cfg.forecast_days`` days, write the outputs."""
    began = time.perf_counter()
    bar = tqdm(total=F.SPEND_STEPS + 2 + cfg.replicates * (cfg.forecast_days > 0),
               desc="fit and forecast", unit="step", file=sys.stderr,
               disable=not cfg.progress)  # fmt: skip
    try:
        found = F.fit_log(base, log, int(cfg.seed), lambda phase: bar.update(1))
        fitted = time.perf_counter() - began
        table = None
        if cfg.forecast_days > 0:
            simulated = F.simulate_forecast(
                found,
                log,
                int(cfg.forecast_days),
                int(cfg.seed),
                int(cfg.replicates),
                lambda p: bar.update(1),
            )
            bgnbd, params = F.bgnbd_forecast(log, int(cfg.forecast_days))
            table = F.forecast_table(log, simulated, bgnbd)
    finally:
        bar.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    text = _yaml(found.scenario, found, str(cfg.transactions), int(cfg.seed))
    outputs.write_atomic(out_dir / "calibrated.yaml", lambda tmp: tmp.write_text(text))
    outputs.write_csv(out_dir / "fit.csv", found.fit)
    summary = {
        "transactions": str(cfg.transactions), "customers": log.size,
        "purchase_days": len(log.day), "first_date": log.start.isoformat(),
        "last_date": log.end.isoformat(), "seed": int(cfg.seed),
        "fitted": found.reduced.as_keys() | {
            "traffic.visit_rate": found.engine_visit_rate,
            "catalog.price_median": found.scenario.catalog.price_median},
        "likelihood": {"visit_rate": found.reduced.visit_rate,
                       "log_likelihood": found.likelihood.log_likelihood,
                       "converged": found.likelihood.converged,
                       "evaluations": found.likelihood.evaluations},
        "fit": found.fit.to_dict("records"), "engine_runs": found.steps,
        "fit_seconds": fitted,
    }  # fmt: skip
    if table is not None:
        outputs.write_csv(out_dir / "forecast.csv", table)
        forecast_figure(table, out_dir / "forecast.png")
        totals = simulated.sum(axis=1)
        summary["forecast"] = {
            "days": int(cfg.forecast_days), "replicates": int(cfg.replicates),
            "simulated_total": float(np.median(totals)),
            "simulated_total_p05": float(np.percentile(totals, 5)),
            "simulated_total_p95": float(np.percentile(totals, 95)),
            "bgnbd_total": float(bgnbd.sum()), "bgnbd": params,
        }  # fmt: skip
    summary["seconds"] = time.perf_counter() - began
    outputs.write_json(out_dir / "transactions.json", summary)
    return summary


def report_log(summary: dict) -> str:
    """The lines printed for a user: the fit, the parameters, the forecast's totals, the cost."""
    lines = [f"{summary['customers']:,} customers, {summary['purchase_days']:,} purchase days, "
             f"{summary['first_date']} to {summary['last_date']}", "",
             f"{'statistic':<26}{'target':>14}{'simulated':>14}{'error':>9}"]  # fmt: skip
    for r in summary["fit"]:
        lines.append(f"{r['statistic']:<26}{r['target']:>14,.4g}{r['simulated']:>14,.4g}"
                     f"{r['rel_error']:>+9.1%}")  # fmt: skip
    lines += [""] + [f"{k}: {v:.6g}" for k, v in summary["fitted"].items()]
    f = summary.get("forecast")
    if f:
        lines.append(f"forecast, {f['days']} days: simulated {f['simulated_total']:,.0f} orders "
                     f"(5-95%: {f['simulated_total_p05']:,.0f}-{f['simulated_total_p95']:,.0f}, "
                     f"{f['replicates']} replicates), BG/NBD {f['bgnbd_total']:,.0f}")  # fmt: skip
    lines.append(f"cost: {summary['seconds']:.1f} s ({summary['fit_seconds']:.1f} s fitting, "
                 f"{summary['engine_runs']} engine runs)")  # fmt: skip
    return "\n".join(lines)
