"""``experiment=promotion``: the store with and without its promotions, day by day.

The store runs with ``scenario.promotions`` (chosen with ``promotion=[...]``, conf/promotion/)
and without them on the same seed (common random numbers), so the daily difference is the
promotions' doing. During a promotion every price is discounted (demand rises with each
shopper's price sensitivity) and extra newsletters go out; visits are pulled forward from the
weeks after (``pull_forward``: shoppers who had planned a visit come during the sale instead),
an order satisfies a need for a while (``retention.satiation``), and shoppers who
saw the promotion's prices find the list price dear for a while (``funnel.reference_weight``):
a dip after. The discount is also given on orders that would have come anyway, so the net
effect on gross margin can be negative while orders rise.

Outputs: the promoted store's usual tables (daily.csv, kpis_over_time.png, ...), promotion.csv
(per window day: sessions, orders, revenue, gross margin with and without, the differences),
promotion_phases.csv (during, the 28 days after, the rest, the whole window: differences with
Monte Carlo standard errors from the paired per-user differences), promotion.png and a report.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from experiments import outputs, report, worlds  # noqa: E402
from experiments.figures import save_figure  # noqa: E402
from experiments.texts import strategies_label  # noqa: E402
from sim.aggregate import facts_of  # noqa: E402
from sim.calendar import build as build_calendar  # noqa: E402
from sim.config import Scenario  # noqa: E402
from sim.world import Results  # noqa: E402

AFTER_DAYS = 28  # the "after" phase: days after each promotion day (as the default pull_days)
KEYS = ("sessions", "orders", "revenue", "margin")
PHASES = ("during", f"after {AFTER_DAYS} days", "other days", "whole window")


def _window_orders(results: Results) -> pd.DataFrame:
    o = results.orders[results.orders["time"].to_numpy() >= 0]
    return o.assign(day=np.floor(o["time"].to_numpy()).astype(int))


def _window_sessions(results: Results) -> pd.DataFrame:
    s = results.sessions[results.sessions["time"].to_numpy() >= 0]
    return pd.DataFrame({"user_id": s["user_id"].to_numpy(),
                         "day": np.floor(s["time"].to_numpy()).astype(int)})  # fmt: skip


def phases_of(scenario: Scenario) -> np.ndarray:
    """Phase index (into PHASES) of each window day."""
    cal = build_calendar(scenario)
    on = cal.promotion[cal.offset : cal.offset + scenario.days] > 0
    after = np.zeros(scenario.days, bool)
    for day in np.flatnonzero(on):
        after[day + 1 : day + 1 + AFTER_DAYS] = True
    return np.where(on, 0, np.where(after, 1, 2))


def daily(without: Results, with_: Results, days: int, start) -> pd.DataFrame:
    """promotion.csv: per window day, each total with and without, and the difference."""
    out = pd.DataFrame({"day": np.arange(days)})
    out["date"] = [(start + dt.timedelta(days=int(d))).isoformat() for d in out["day"]]
    for name, res in (("without", without), ("with", with_)):
        out[f"sessions_{name}"] = np.bincount(_window_sessions(res)["day"], minlength=days)[:days]
        o = _window_orders(res)
        out[f"orders_{name}"] = np.bincount(o["day"], minlength=days)[:days]
        for key in ("revenue", "margin"):
            out[f"{key}_{name}"] = np.bincount(o["day"], weights=o[key], minlength=days)[:days]
    for key in KEYS:
        out[f"{key}_diff"] = out[f"{key}_with"] - out[f"{key}_without"]
    return out


def phase_table(without: Results, with_: Results, phase: np.ndarray) -> pd.DataFrame:
    """Per phase: totals with and without, the difference and its paired standard error."""
    n = without.scenario.population.size
    pairs = (("without", without), ("with", with_))
    frames = {name: _window_orders(r) for name, r in pairs}
    visits = {name: _window_sessions(r) for name, r in pairs}
    rows = []
    for p, label in enumerate(PHASES):
        row = {"phase": label, "days": int((phase == p).sum()) if p < 3 else len(phase)}
        for key in KEYS:
            per_user = {}
            for name in frames:
                o = visits[name] if key == "sessions" else frames[name]
                sel = o if p == 3 else o[phase[o["day"].to_numpy()] == p]
                weights = None if key in ("sessions", "orders") else sel[key].to_numpy()
                per_user[name] = np.bincount(sel["user_id"], weights=weights, minlength=n)
                row[f"{key}_{name}"] = float(per_user[name].sum())
            diff = per_user["with"] - per_user["without"]
            row[f"{key}_diff"] = float(diff.sum())
            row[f"{key}_diff_se"] = float(np.sqrt(n * np.var(diff, ddof=1)))
        rows.append(row)
    return pd.DataFrame(rows)


def figure(table: pd.DataFrame, phase: np.ndarray, path: Path) -> None:
    """Daily orders with and without, their difference, and the cumulative differences."""
    dates = pd.to_datetime(table["date"])
    fig, axes = plt.subplots(4, 1, figsize=(9, 10), sharex=True)
    axes[0].plot(dates, table["orders_without"], lw=1.2, label="without the promotions")
    axes[0].plot(dates, table["orders_with"], lw=1.2, label="with them")
    axes[0].set_ylabel("orders per day")
    colors = np.where(table["orders_diff"] >= 0, "#55A868", "#C44E52")
    axes[1].bar(dates, table["orders_diff"], color=colors, width=0.9)
    axes[1].set_ylabel("orders, with - without")
    axes[2].plot(dates, table["orders_diff"].cumsum(), lw=1.8, label="orders (left)")
    twin = axes[2].twinx()
    twin.plot(dates, table["margin_diff"].cumsum(), lw=1.8, color="#8172B2",
              label="gross margin, $ (right)")  # fmt: skip
    axes[2].set_ylabel("cumulative orders")
    twin.set_ylabel("cumulative gross margin ($)")
    lines = axes[2].get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    axes[2].legend(lines, [ln.get_label() for ln in lines], fontsize=8, loc="center right")
    axes[3].plot(dates, table["sessions_diff"].cumsum(), lw=1.8, color="#4C72B0")
    axes[3].set_ylabel("cumulative sessions")
    for ax in axes:
        for day in np.flatnonzero(phase == 0):
            ax.axvspan(dates[day], dates[day] + pd.Timedelta(days=1), color="#DD8452",
                       alpha=0.15, lw=0)  # fmt: skip
        ax.axhline(0, color="grey", lw=0.7)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[0].set_title("Promotion days shaded: the bump, the dip after, and what is left (same "
                      "agents, same random numbers)", fontsize=10)  # fmt: skip
    fig.autofmt_xdate()
    save_figure(fig, path)


def table_text(phases: pd.DataFrame) -> str:
    """The phase table as printed: differences with their standard errors."""
    lines = [f"{'phase':<14} {'days':>5} {'sessions':>18} {'orders':>16} {'revenue ($)':>22} "
             f"{'margin ($)':>22}"]  # fmt: skip
    for _, r in phases.iterrows():
        cells = [f"{r[f'{k}_diff']:>+10,.0f} +- {r[f'{k}_diff_se']:<6,.0f}" for k in KEYS]
        lines.append(f"{r['phase']:<14} {r['days']:>5} {cells[0]:>18} {cells[1]:>16} "
                     f"{cells[2]:>22} {cells[3]:>22}")  # fmt: skip
    lines.append("with - without the promotions, +- one Monte Carlo standard error (paired).")
    return "\n".join(lines)


def run(cfg, scenario: Scenario, out_dir: Path, write_tables) -> dict:
    """Run both worlds; write the promoted store's tables, promotion*.csv, the figure, a report."""
    strategy = OmegaConf.to_container(cfg.strategy, resolve=True)
    with_ = worlds.store(scenario, cfg.seed, strategy, bool(cfg.output.events))
    without = worlds.store(dataclasses.replace(scenario, promotions={}), cfg.seed, strategy)
    facts = facts_of(with_)
    write_tables(out_dir, with_, outputs.kpi_summary(facts),
                 outputs.daily_table(facts, scenario.start))  # fmt: skip
    phase = phases_of(scenario)
    table = daily(without, with_, scenario.days, scenario.start)
    phases = phase_table(without, with_, phase)
    outputs.write_csv(out_dir / "promotion.csv", table)
    outputs.write_csv(out_dir / "promotion_phases.csv", phases)
    figure(table, phase, out_dir / "promotion.png")
    names = ", ".join(f"{k} ({p.discount:.0%} off, {p.days} days from {p.start})"
                      for k, p in scenario.promotions.items())  # fmt: skip
    text = (f"{scenario.population.size:,} agents, {scenario.days} days from "
            f"{scenario.start_date}, seed {cfg.seed}, {strategies_label(cfg)}; promotions: "
            f"{names}. Both worlds share the agents and their keyed random numbers, so the "
            "difference is the promotions'. During: the discount's bump and the visits it moved "
            "forward. After: those visits missing, needs met by the sale's orders (satiation) "
            "and list prices that feel dear to those who saw the discount (reference prices). "
            "The discount is also given on orders that would have come "
            "anyway, so gross margin can fall while orders rise.")  # fmt: skip
    shown = phases[["phase", "days"]].copy()
    for k in KEYS:  # the SE unsigned: named apart from the signed difference
        shown[f"{k}_diff"] = phases[f"{k}_diff"]
        shown[f"{k}_se"] = phases[f"{k}_diff_se"]
    report.write_report(out_dir, "Promotion: with and without", [
        report.Section("Setup and reading", text, [shown], ["promotion.png"]),
        report.Section("KPIs over time (with the promotions)", "", figures=["kpis_over_time.png"]),
    ])  # fmt: skip
    return {"promotion": phases.to_dict("records")}
