"""``experiment=budget``: response curves of the paid channels and the profit-maximising split.

Each channel of ``experiment.channels`` is run with its budget over the window (from day 0; the
past as configured) at each of ``experiment.budget_scales`` times today's, the others at theirs,
on the same seed (the same past, agents and keyed random numbers:
common random numbers). The window's revenue, gross margin and profit per point give the
channel's response curve; the marginal ROAS between neighbouring points is their revenue
difference over their spend difference, with a Monte Carlo SE from the paired per-user revenue
differences (the points share their agents).

The split: each channel's incremental gross margin over its zero-budget point is fitted with a
saturating curve ``m(x) = a (1 - exp(-x / b))`` (scipy's ``curve_fit``; ``x`` the window's
spend), and ``scipy.optimize.minimize`` (SLSQP) finds the spends that maximise
``sum m_c(x_c) - x_c`` with ``sum x_c`` equal to today's total spend times
``experiment.total_scale``. The channels are assumed to add up (each curve was measured with
the others at today's budgets); the split is read with the curves' Monte Carlo error, shown in
the figure as 95% bars on the measured points.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from scipy.optimize import OptimizeWarning, curve_fit, minimize  # noqa: E402

from experiments import incrementality, outputs, report, worlds  # noqa: E402
from experiments.figures import save_figure  # noqa: E402
from experiments.texts import strategies_label  # noqa: E402
from sim.config import Scenario  # noqa: E402
from sim.world import Results  # noqa: E402

COLUMNS = ["channel", "budget_scale", "spend", "revenue", "margin", "profit", "margin_gain",
           "margin_gain_se", "marginal_roas", "marginal_roas_se"]  # fmt: skip
SPLIT_COLUMNS = ["channel", "spend_today", "spend_optimal", "spend_optimal_low",
                 "spend_optimal_high", "margin_gain_today", "margin_gain_optimal", "curve_a",
                 "curve_b"]  # fmt: skip
REDRAWS = 200  # the split's uncertainty: refits on the curves' points redrawn within their noise


def _world(scenario: Scenario, seed: int, strategy: dict, channel: str | None = None,
           scale: float = 1.0) -> Results:  # fmt: skip
    """The store with ``channel``'s window budget times ``scale`` (its past as configured)."""
    budgets = None if channel is None else {channel: np.full(scenario.days, float(scale))}
    return incrementality.run_world(scenario, seed, strategy, (), budgets)


def _point(results: Results, channel: str) -> dict:
    o = results.orders[results.orders["time"].to_numpy() >= 0]
    spend = incrementality.window_spend(results, channel)
    return {"spend": spend, "revenue": float(o["revenue"].sum()),
            "margin": float(o["margin"].sum()),
            "profit": float(worlds.kpis(results)["profit"])}  # fmt: skip


def curves(scenario: Scenario, seed: int, channels: list[str], scales: list[float],
           strategy: dict | None = None) -> pd.DataFrame:  # fmt: skip
    """budget.csv: each channel at each budget scale (the others at 1), side by side."""
    strategy = strategy or {}
    scales = sorted(set(scales) | {0.0, 1.0})
    base = _world(scenario, seed, strategy)
    rows = []
    for channel in channels:
        runs = {1.0: base}
        for scale in scales:
            if scale != 1.0:
                runs[scale] = _world(scenario, seed, strategy, channel, scale)
        zero = runs[0.0].users["margin"].to_numpy(float)
        previous = None
        for scale in scales:
            r = runs[scale]
            row = {"channel": channel, "budget_scale": scale, **_point(r, channel)}
            d = r.users["margin"].to_numpy(float) - zero
            row["margin_gain"] = float(d.sum())
            row["margin_gain_se"] = float(np.sqrt(len(d) * np.var(d, ddof=1)))
            row["marginal_roas"] = row["marginal_roas_se"] = np.nan
            if previous is not None:
                step = r.users["revenue"].to_numpy(float) - previous[1].users["revenue"].to_numpy(
                    float)  # fmt: skip
                dx = row["spend"] - previous[0]["spend"]
                if dx > 0:
                    row["marginal_roas"] = float(step.sum()) / dx
                    row["marginal_roas_se"] = float(np.sqrt(len(step) * np.var(step, ddof=1))) / dx
            rows.append(row)
            previous = (row, r)
    return pd.DataFrame(rows, columns=COLUMNS)


def saturating(x, a, b):
    """``a (1 - exp(-x / b))``: diminishing returns from 0, slope ``a / b`` at 0."""
    return a * -np.expm1(-np.asarray(x, dtype=float) / b)


def fit_curve(spend: np.ndarray, gain: np.ndarray) -> tuple[float, float]:
    """The saturating curve through a channel's (spend, margin gain) points (least squares)."""
    top = max(float(np.max(gain)), 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        (a, b), _ = curve_fit(saturating, spend, gain, p0=(2 * top, max(spend.max(), 1.0)),
                              bounds=([0.0, 1e-6], [np.inf, np.inf]), maxfev=20_000)  # fmt: skip
    return float(a), float(b)


def _optimum(params: list[tuple[float, float]], total: float) -> np.ndarray:
    """The spends maximising ``sum saturating(x_c) - x_c`` with ``sum x_c = total``."""

    def loss(x):
        return -sum(saturating(xi, a, b) - xi for xi, (a, b) in zip(x, params, strict=True))

    x0 = np.full(len(params), total / len(params))
    found = minimize(loss, x0, method="SLSQP", bounds=[(0.0, total)] * len(params),
                     constraints=[{"type": "eq", "fun": lambda x: x.sum() - total}])  # fmt: skip
    return found.x


def best_split(table: pd.DataFrame, total_scale: float = 1.0, seed: int = 0) -> pd.DataFrame:
    """budget_split.csv: today's spends and the profit-maximising ones at the same total.

    ``spend_optimal_low`` and ``_high`` are the 5th and 95th percentiles of the optimum over
    ``REDRAWS`` refits on the measured margin gains redrawn with their Monte Carlo SEs (normal,
    independent points: a rough spread, seeded), so a split inside its noise reads as such.
    """
    rows, params, groups = [], [], []
    for channel, g in table.groupby("channel", sort=False):
        a, b = fit_curve(g["spend"].to_numpy(), g["margin_gain"].to_numpy())
        today = g.loc[g["budget_scale"] == 1.0].iloc[0]
        rows.append(
            {
                "channel": channel,
                "spend_today": today["spend"],
                "margin_gain_today": today["margin_gain"],
                "curve_a": a,
                "curve_b": b,
            }
        )
        params.append((a, b))
        groups.append(g)  # fmt: skip
    split = pd.DataFrame(rows)
    total = split["spend_today"].sum() * total_scale
    best = _optimum(params, total)
    split["spend_optimal"] = best
    split["margin_gain_optimal"] = [saturating(x, a, b)
                                    for x, (a, b) in zip(best, params, strict=True)]  # fmt: skip
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(REDRAWS):
        noisy = [p["margin_gain"].to_numpy() + p.get("margin_gain_se", 0 * p["spend"]).fillna(0)
                 .to_numpy() * rng.standard_normal(len(p)) for p in groups]  # fmt: skip
        refits = [fit_curve(p["spend"].to_numpy(), y) for p, y in zip(groups, noisy, strict=True)]
        draws.append(_optimum(refits, total))
    split["spend_optimal_low"], split["spend_optimal_high"] = np.percentile(draws, [5, 95], axis=0)
    return split.reindex(columns=SPLIT_COLUMNS)


def figure(table: pd.DataFrame, split: pd.DataFrame, path: Path) -> None:
    """Margin gain against spend per channel: measured points (95% bars), fitted curves, splits."""
    fig, ax = plt.subplots(figsize=(7.0, 4.4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (channel, g) in enumerate(table.groupby("channel", sort=False)):
        color = colors[i % len(colors)]
        ax.errorbar(g["spend"], g["margin_gain"], yerr=1.96 * g["margin_gain_se"], fmt="o",
                    color=color, capsize=3, label=channel)  # fmt: skip
        s = split.set_index("channel").loc[channel]
        x = np.linspace(0, max(g["spend"].max(), s["spend_optimal"]) * 1.05, 100)
        ax.plot(x, saturating(x, s["curve_a"], s["curve_b"]), color=color, lw=1)
        ax.plot([s["spend_today"]], [saturating(s["spend_today"], s["curve_a"], s["curve_b"])],
                marker="s", ms=9, mfc="none", color=color)  # fmt: skip
        ax.plot([s["spend_optimal"]], [s["margin_gain_optimal"]], marker="*", ms=13,
                color=color)  # fmt: skip
    top = table["spend"].max()
    ax.plot([0, top], [0, top], color="grey", ls=":", lw=1, label="margin = spend (break-even)")
    ax.set_xlabel("window spend of the channel ($)")
    ax.set_ylabel("gross margin gained over no spend ($)")
    ax.set_title("Response curves (points: measured, 95% bars; square: today; star: best split)",
                 fontsize=9)  # fmt: skip
    ax.legend(frameon=False, fontsize=8)
    save_figure(fig, path)


def table_text(table: pd.DataFrame, split: pd.DataFrame) -> str:
    """budget.csv's marginal ROAS and budget_split.csv, readable."""
    lines = [f"{'channel':<12} {'scale':>5} {'spend':>9} {'margin gain':>20} {'marginal ROAS':>16}"]
    for _, r in table.iterrows():
        roas = ("" if np.isnan(r["marginal_roas"]) else
                f"{r['marginal_roas']:.2f} +- {r['marginal_roas_se']:.2f}")  # fmt: skip
        lines.append(
            f"{r['channel']:<12} {r['budget_scale']:>5g} {r['spend']:>9,.0f} "
            f"{r['margin_gain']:>10,.0f} +- {r['margin_gain_se']:>6,.0f} {roas:>16}"
        )
    lines.append("")
    lines.append(f"{'channel':<12} {'spend today':>12} {'best split':>12} {'90% range':>20}")
    for _, r in split.iterrows():
        lines.append(
            f"{r['channel']:<12} {r['spend_today']:>12,.0f} {r['spend_optimal']:>12,.0f} "
            f"{r['spend_optimal_low']:>9,.0f} - {r['spend_optimal_high']:<9,.0f}"
        )
    gain = split["margin_gain_optimal"].sum() - split["margin_gain_today"].sum()
    lines.append(f"Fitted margin gain of the best split over today's, same total: {gain:+,.0f}")
    return "\n".join(lines)


def run(cfg, scenario: Scenario, out_dir: Path) -> dict:
    """Run the budget sweep; write budget.csv, budget_split.csv, budget.png and the report."""
    strategy = OmegaConf.to_container(cfg.strategy, resolve=True)
    channels = [str(c) for c in cfg.experiment.channels]
    table = curves(scenario, cfg.seed, channels, [float(s) for s in cfg.experiment.budget_scales],
                   strategy)  # fmt: skip
    split = best_split(table, float(cfg.experiment.total_scale), cfg.seed)
    outputs.write_csv(out_dir / "budget.csv", table)
    outputs.write_csv(out_dir / "budget_split.csv", split)
    figure(table, split, out_dir / "budget.png")
    text = (
        f"{scenario.population.size:,} agents, {scenario.days} days, seed {cfg.seed}, "
        f"{strategies_label(cfg)}. Each channel at each budget scale with the others at "
        "today's, on common random numbers; margin gain over the channel's zero-budget "
        "world with its paired Monte Carlo SE. The split maximises the fitted margin gains "
        "less spend at today's total x experiment.total_scale, assuming channels add up."
    )
    report.write_report(out_dir, "Budgets: response curves and the best split", [
        report.Section("Setup and reading", text, [table, split], ["budget.png"]),
    ])  # fmt: skip
    return {"budget": table.to_dict("records"), "split": split.to_dict("records")}
