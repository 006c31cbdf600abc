"""``experiment=clv``: customer lifetime value predicted at day 0, against the world's own future.

At day 0 the store has customers from its past (``scenario.history.days`` and the warm-up).
Two predictions of the gross margin each of them brings over the next
``scenario.clv.horizon_days`` days:

- ``simple``: the textbook formula, the ``clv_simple`` KPI (AOV x orders per year x margin
  share x 1 / yearly churn), as the store's KPI table reports it after a window of the
  scenario's default length (``scenario.days``, 90 days): the figure an analyst would quote.
  It reads the window's buyers and churn, so it even sees that much past day 0.
- ``bgnbd_gg``: BG/NBD + Gamma-Gamma fitted on the orders before day 0, the ``clv_predictive``
  KPI (:func:`experiments.stats.lifetime.predict_clv`), discounted at
  ``scenario.clv.discount_rate`` a year.

The truth: the same world (same seed: the same past, the same agents' keyed draws) run for
``horizon_days`` days after day 0, and each customer's realised margin of the orders in
``[0, horizon_days)``. For ``bgnbd_gg`` it is discounted as the prediction is, each order at
``(1 + rate) ** (-t / 365)`` for its time ``t`` in days; the textbook formula discounts
nothing, so its truth is the undiscounted margin. ``rel_error`` = predicted / actual - 1.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from tqdm import tqdm  # noqa: E402

from experiments import outputs, report, worlds  # noqa: E402
from experiments.figures import save_figure  # noqa: E402
from experiments.stats.lifetime import ClvPrediction, predict_clv  # noqa: E402
from experiments.texts import strategies_label  # noqa: E402
from sim.aggregate import facts_of  # noqa: E402
from sim.config import Scenario  # noqa: E402
from sim.world import Results, World  # noqa: E402
from strategies import build_strategies  # noqa: E402

COLUMNS = ["method", "segment", "predicted", "actual", "rel_error"]
METHODS = {"simple": "clv_simple", "bgnbd_gg": "clv_predictive"}  # method: its KPI


@dataclass(frozen=True)
class ClvOutcome:
    """What ``experiment=clv`` found.

    Attributes:
        table: clv.csv: method, segment, predicted, actual, rel_error.
        customers: One row per customer at day 0: user_id, segment, predicted (bgnbd_gg),
            actual (discounted as the prediction), actual_undiscounted.
        prediction: The fit (model, customers, notes), as the clv_predictive KPI makes it.
        window_kpis: kpis.json of the default-length window (clv_simple, clv_historical, ...).
        window_days: Length of that window (``scenario.days``).
        horizon_days: The prediction's horizon (``scenario.clv.horizon_days``).
        discount_rate: Yearly discount of future margin (``scenario.clv.discount_rate``).
    """

    table: pd.DataFrame
    customers: pd.DataFrame
    prediction: ClvPrediction
    window_kpis: dict
    window_days: int
    horizon_days: int
    discount_rate: float


def simulate(scenario: Scenario, seed: int, strategy=None, progress: bool = False,
             label: str = "") -> Results:  # fmt: skip
    """The store (with the config's strategies on its one arm), without the event log."""
    hooks = build_strategies(worlds.specs(strategy or {}), ["control"])
    total = scenario.warmup_days + scenario.days
    with tqdm(total=total, desc=label or f"{scenario.days}-day world", unit="day",
              disable=not progress, file=sys.stderr) as bar:  # fmt: skip
        return World(scenario, seed, hooks, events=False).run(lambda day: bar.update(1))


def realised(orders: pd.DataFrame, n_users: int, horizon: float, rate: float):
    """Each user's margin of orders in ``[0, horizon)``: discounted at ``rate`` a year, and not."""
    time = orders["time"].to_numpy()
    future = (time >= 0) & (time < horizon)
    user, margin = orders["user_id"].to_numpy()[future], orders["margin"].to_numpy()[future]
    discount = (1 + rate) ** (-time[future] / 365)
    return (np.bincount(user, weights=margin * discount, minlength=n_users),
            np.bincount(user, weights=margin, minlength=n_users))  # fmt: skip


def evaluate(scenario: Scenario, seed: int, strategy=None, progress: bool = False) -> ClvOutcome:
    """Fit at day 0, run the same world over the horizon, compare (see the module)."""
    horizon, rate = scenario.clv.horizon_days, scenario.clv.discount_rate
    future = simulate(dataclasses.replace(scenario, days=horizon), seed, strategy, progress,
                      f"world over the {horizon}-day horizon")  # fmt: skip
    window = future
    if scenario.days != horizon:
        window = simulate(scenario, seed, strategy, progress, f"{scenario.days}-day window")
    window_kpis = outputs.kpi_summary(facts_of(window))
    n = len(future.users)
    prediction = predict_clv(future.orders, n, 0.0, horizon, rate, seed=seed)
    discounted, plain = realised(future.orders, n, horizon, rate)
    at_start = np.zeros(n, dtype=bool)
    at_start[future.orders["user_id"].to_numpy()[future.orders["time"].to_numpy() < 0]] = True
    ids = np.flatnonzero(at_start)
    customers = pd.DataFrame({
        "user_id": ids, "segment": future.users["segment"].to_numpy()[ids],
        "predicted": prediction.values[ids], "actual": discounted[ids],
        "actual_undiscounted": plain[ids],
    })  # fmt: skip
    segments = list(scenario.population.segments)
    table = comparison(customers, window_kpis, segments)
    return ClvOutcome(table, customers, prediction, window_kpis, scenario.days, horizon, rate)


def comparison(customers: pd.DataFrame, window_kpis: dict, segments: list[str]) -> pd.DataFrame:
    """clv.csv: each method's mean prediction and the truth, for all customers and by segment."""
    rows = []
    for method in METHODS:
        for segment in ["all", *segments]:
            part = customers if segment == "all" else customers[customers["segment"] == segment]
            if method == "simple":
                kpis = window_kpis["total"] if segment == "all" else (
                    window_kpis["by_segment"].get(segment, {}))  # fmt: skip
                predicted = kpis.get("clv_simple", np.nan)
                actual = part["actual_undiscounted"].mean()
            else:
                predicted, actual = part["predicted"].mean(), part["actual"].mean()
            rows.append({"method": method, "segment": segment, "predicted": predicted,
                         "actual": actual})  # fmt: skip
    table = pd.DataFrame(rows, columns=COLUMNS[:4])
    with np.errstate(divide="ignore", invalid="ignore"):
        table["rel_error"] = table["predicted"] / table["actual"] - 1
    return table


def deciles(customers: pd.DataFrame) -> pd.DataFrame:
    """Customers at day 0 in ten equal groups by predicted value: mean predicted and actual."""
    c = customers.dropna(subset=["predicted"])
    order = np.argsort(c["predicted"].to_numpy(), kind="stable")
    group = np.empty(len(c), dtype=int)
    group[order] = np.arange(len(c)) * 10 // max(len(c), 1) + 1
    g = c.assign(decile=group).groupby("decile")
    return pd.DataFrame({"customers": g.size(), "predicted": g["predicted"].mean(),
                         "actual": g["actual"].mean()}).reset_index()  # fmt: skip


def calibration_figure(table: pd.DataFrame, horizon: int, path: Path) -> None:
    """Mean predicted against mean actual margin by decile of predicted value, and the diagonal."""
    fig, ax = plt.subplots(figsize=(6, 5.4))
    top = float(np.nanmax(table[["predicted", "actual"]].to_numpy())) * 1.08
    ax.plot([0, top], [0, top], color="grey", lw=1, ls="--", label="perfect calibration")
    ax.plot(table["predicted"], table["actual"], "o-", color="C0",
            label="customers at day 0, by decile of predicted value")  # fmt: skip
    for _, r in table.iterrows():
        ax.annotate(str(int(r["decile"])), (r["predicted"], r["actual"]), xytext=(4, -10),
                    textcoords="offset points", fontsize=7, color="C0")  # fmt: skip
    ax.set(xlim=(0, top), ylim=(0, top), xlabel=f"mean predicted margin over {horizon} days",
           ylabel="mean actual margin (the world's future)",
           title="BG/NBD + Gamma-Gamma calibration")  # fmt: skip
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def table_text(table: pd.DataFrame) -> str:
    """clv.csv as printed: money to the cent, rel_error as a signed percentage."""
    shown = table.assign(
        predicted=table["predicted"].map(lambda v: f"{v:,.2f}"),
        actual=table["actual"].map(lambda v: f"{v:,.2f}"),
        rel_error=table["rel_error"].map(lambda v: f"{v:+.1%}"),
    )
    return shown.to_string(index=False)


def _setup(cfg, scenario: Scenario, found: ClvOutcome) -> str:
    p = found.prediction
    return (
        f"Scenario '{scenario.name}': {scenario.population.size:,} agents; a past of "
        f"{scenario.history.days} days and a {scenario.warmup_days}-day warm-up before day 0 "
        f"({scenario.start_date}); strategies: {strategies_label(cfg)}; seed {cfg.seed}. "
        f"{p.customers:,} customers at day 0 (an order before it); the model was fitted on "
        f"{p.fitted:,} of them. Horizon {found.horizon_days} days, future margin discounted at "
        f"{found.discount_rate:.0%} a year; the textbook figure is read from a "
        f"{found.window_days}-day window."
    )


def _reading(found: ClvOutcome) -> str:
    """The comparison in words: what each method is, what the truth is, and how far off."""
    row = found.table.set_index(["method", "segment"])["rel_error"]
    rate = found.discount_rate
    return (
        f"simple is the textbook formula, the clv_simple KPI (AOV x orders per year x margin "
        f"share x 1 / yearly churn) of the store's KPI table after a {found.window_days}-day "
        f"window: the figure an analyst would quote. bgnbd_gg is BG/NBD + Gamma-Gamma fitted on "
        f"the orders before day 0, the clv_predictive KPI, discounted at {rate:.0%} a year."
        f"\n\nThe truth: the same world (same seed: the same past, the same agents' random "
        f"numbers) run {found.horizon_days} days past day 0; each customer's realised margin. "
        f"For bgnbd_gg it is discounted as the prediction is, each order at (1 + {rate:g}) ** "
        f"(-t / 365) at its time t in days; the textbook formula discounts nothing, so its "
        f"truth is the undiscounted margin. rel_error = predicted / actual - 1."
        f"\n\nHere the textbook figure is {row[('simple', 'all')] + 1:.1f} times the truth and "
        f"BG/NBD + Gamma-Gamma is off by {row[('bgnbd_gg', 'all')]:+.1%}. The textbook formula "
        f"takes the pace of the window's buyers (each bought at least once in "
        f"{found.window_days} days) for every customer, for 1 / yearly churn years; most "
        f"customers at day 0 have not bought for a long time."
    )


def _sections(cfg, scenario: Scenario, found: ClvOutcome) -> list[report.Section]:
    table = found.table.assign(customers=[
        len(found.customers) if s == "all" else int((found.customers["segment"] == s).sum())
        for s in found.table["segment"]])  # fmt: skip
    shown = report.Table(pd.DataFrame({
        "method": table["method"], "segment": table["segment"],
        "customers": table["customers"].map(report.number),
        "predicted": table["predicted"].map(report.number),
        "actual": table["actual"].map(report.number),
        "rel_error": table["rel_error"].map(lambda v: report.percent(v, signed=True)),
    }), keys=2)  # fmt: skip
    notes = " ".join(found.prediction.notes) or "Both fits converged."
    model = found.prediction.model
    params = ", ".join(f"{k} {v:.4g}" for k, v in model.params.items()) if model else "none"
    return [
        report.Section("Setup", _setup(cfg, scenario, found)),
        report.Section("Predicted against the world's future", _reading(found), [shown]),
        report.Section("Calibration", "Customers at day 0 in ten equal groups by their "
                       "predicted margin (BG/NBD + Gamma-Gamma): the mean prediction of each "
                       "group against what the group brought. On the diagonal the model ranks "
                       "and sizes customers right; below it, it promises too much; above it, "
                       "too little.", figures=["clv_calibration.png"]),
        report.Section("The fitted model", f"Parameters (days, margin in currency): {params}. "
                       f"{notes}"),
    ]  # fmt: skip


def run(cfg, scenario: Scenario, out_dir: Path) -> dict:
    """Run the CLV experiment; write clv.csv, clv_customers.parquet, the figure and the report."""
    strategy = OmegaConf.to_container(cfg.strategy, resolve=True)
    found = evaluate(scenario, cfg.seed, strategy, cfg.progress)
    outputs.write_csv(out_dir / "clv.csv", found.table)
    outputs.write_parquet(out_dir / "clv_customers.parquet", found.customers)
    outputs.write_json(out_dir / "kpis.json", found.window_kpis)
    calibration_figure(deciles(found.customers), found.horizon_days,
                       out_dir / "clv_calibration.png")  # fmt: skip
    report.write_report(out_dir, "Customer lifetime value against the world's future",
                        _sections(cfg, scenario, found))  # fmt: skip
    return {"clv": found.table.to_dict("records"), "notes": list(found.prediction.notes)}
