"""``experiment=prices``: every price moved by a few percent, and the price elasticity that emerges.

The store is run at its own prices and with every price changed by each of
``experiment.price_changes`` (relative: ``0.1`` is +10%), on the same seed (the same agents and
keyed random numbers: common random numbers). Unit costs stay where they are
(:func:`sim.catalog.build_catalog`), so a price rise widens the margin on every item sold while
shoppers, each with their own price sensitivity, buy fewer: the net is the question.

The price elasticity of demand is nobody's parameter here: it emerges from the funnel's price
terms (add-to-cart by price and sensitivity, the checkout's value term, the shipping fee) and
what follows from fewer orders (fewer post-order visits). It is the arc elasticity
``ln(Q1 / Q0) / ln(P1 / P0)`` of items sold in the window (and of orders), with a Monte Carlo
standard error from the paired per-user differences (delta method: the two worlds share their
agents). The published reference is Bijmolt, van Heerde & Pieters (2005): a mean of -2.62 over
1,851 estimates, most between -1 and -4 (``../shared/BENCHMARKS.md``).
"""

from __future__ import annotations

import dataclasses
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
from sim.config import Scenario  # noqa: E402
from sim.world import Results  # noqa: E402

COLUMNS = ["price_change", "orders", "items", "revenue", "margin", "margin_per_item", "profit",
           "orders_change", "items_change", "revenue_change", "margin_change",
           "margin_per_item_change", "profit_change", "elasticity_items", "elasticity_items_se",
           "elasticity_orders", "elasticity_orders_se"]  # fmt: skip
PUBLISHED = (-4.0, -1.0, -2.62)  # most estimates between, and the mean (Bijmolt et al. 2005)


def _totals(results: Results) -> dict:
    """Window totals of one world: orders, items, revenue, margin, margin per item, profit."""
    o = results.orders[results.orders["time"].to_numpy() >= 0]
    items, margin = float(o["items"].sum()), float(o["margin"].sum())
    return {"orders": float(len(o)), "items": items, "revenue": float(o["revenue"].sum()),
            "margin": margin, "margin_per_item": margin / items if items else np.nan,
            "profit": float(worlds.kpis(results)["profit"])}  # fmt: skip


def elasticity(base: np.ndarray, moved: np.ndarray, scale: float) -> tuple[float, float]:
    """Arc elasticity ``ln(sum moved / sum base) / ln(scale)`` and its paired standard error.

    ``base`` and ``moved`` are per-user quantities of the same users in the two worlds. The
    log ratio's linearisation is ``sum_i (moved_i / M - base_i / B)``, so its variance is
    ``n var(moved_i / M - base_i / B)``.
    """
    b, m = base.sum(), moved.sum()
    if b <= 0 or m <= 0:
        return np.nan, np.nan
    z = moved / m - base / b
    se = np.sqrt(len(z) * np.var(z, ddof=1)) / abs(np.log(scale))
    return float(np.log(m / b) / np.log(scale)), float(se)


def evaluate(scenario: Scenario, seed: int, changes: list[float], strategy: dict | None = None
             ) -> pd.DataFrame:  # fmt: skip
    """prices.csv: the store at its prices (change 0) and at each change, side by side.

    ``strategy``: the config's strategies, on everyone in every world (as a what-if's).
    """
    base = worlds.store(scenario, seed, strategy)
    rows = [{"price_change": 0.0, **_totals(base)}]
    for change in changes:
        catalog = dataclasses.replace(
            scenario.catalog, price_scale=scenario.catalog.price_scale * (1 + change)
        )
        moved = worlds.store(dataclasses.replace(scenario, catalog=catalog), seed, strategy)
        row = {"price_change": change, **_totals(moved)}
        for key in ("items", "orders"):
            e, se = elasticity(base.users[key].to_numpy(float), moved.users[key].to_numpy(float),
                               1 + change)  # fmt: skip
            row[f"elasticity_{key}"], row[f"elasticity_{key}_se"] = e, se
        rows.append(row)
    table = pd.DataFrame(rows)
    for key in ("orders", "items", "revenue", "margin", "margin_per_item", "profit"):
        at_list = table.loc[0, key]  # profit may be negative: its change is relative to |profit|
        table[f"{key}_change"] = (table[key] - at_list) / abs(at_list) if at_list else np.nan
    return table.reindex(columns=COLUMNS).sort_values("price_change", ignore_index=True)


def figure(table: pd.DataFrame, path: Path) -> None:
    """Items, orders, margin per item and total margin against the price change, in percent."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    x = 100 * table["price_change"]
    for col, label, style in (("items_change", "items sold", "o-"),
                              ("orders_change", "orders", "s-"),
                              ("margin_per_item_change", "margin per item", "^--"),
                              ("margin_change", "gross margin", "d-")):  # fmt: skip
        ax.plot(x, 100 * table[col], style, label=label)
    ax.axhline(0, color="grey", lw=0.8)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("every price changed by (%)")
    ax.set_ylabel("change against today's prices (%)")
    ax.set_title("Prices as a what-if: unit costs fixed, demand from the funnel")
    ax.legend(frameon=False, fontsize=8)
    save_figure(fig, path)


def table_text(table: pd.DataFrame) -> str:
    """A readable prices.csv: changes in percent, elasticities with their standard errors."""
    lines = [f"{'price':>7} {'items':>8} {'orders':>8} {'margin/item':>12} {'margin':>8} "
             f"{'profit':>10} {'elasticity (items)':>20}"]  # fmt: skip
    at_list = table.loc[table["price_change"] == 0, "profit"].iloc[0]
    for _, r in table.iterrows():
        e = ("" if r["price_change"] == 0 else
             f"{r['elasticity_items']:.2f} +- {r['elasticity_items_se']:.2f}")  # fmt: skip
        lines.append(f"{r['price_change']:>+7.0%} {r['items_change']:>+8.1%} "
                     f"{r['orders_change']:>+8.1%} {r['margin_per_item_change']:>+12.1%} "
                     f"{r['margin_change']:>+8.1%} {r['profit'] - at_list:>+10,.0f} "
                     f"{e:>20}")  # fmt: skip
    low, high, mean = PUBLISHED
    lines.append(f"Published price elasticities: mean {mean}, most between {low:g} and {high:g} "
                 "(Bijmolt, van Heerde & Pieters 2005). profit: change in currency.")  # fmt: skip
    return "\n".join(lines)


def run(cfg, scenario: Scenario, out_dir: Path) -> dict:
    """Run the price what-if; write prices.csv, prices.png and the report."""
    changes = [float(c) for c in cfg.experiment.price_changes]
    strategy = OmegaConf.to_container(cfg.strategy, resolve=True)
    table = evaluate(scenario, cfg.seed, changes, strategy)
    outputs.write_csv(out_dir / "prices.csv", table)
    figure(table, out_dir / "prices.png")
    moved = table[table["price_change"] != 0]
    low, high, mean = PUBLISHED
    text = (f"{scenario.population.size:,} agents, {scenario.days} days, seed {cfg.seed}, "
            f"{strategies_label(cfg)}; every "
            "world shares the agents and their keyed random numbers, so the differences are the "
            "price's, not noise between draws. Unit costs are fixed: margin per item moves with "
            "the price. Elasticities are arc elasticities of items sold (and orders) with their "
            f"Monte Carlo standard errors. Published: mean {mean}, most between {low:g} and "
            f"{high:g} (Bijmolt, van Heerde & Pieters 2005).")  # fmt: skip
    report.write_report(out_dir, "Prices as a what-if", [
        report.Section("Setup and reading", text, [moved[COLUMNS]], ["prices.png"]),
    ])  # fmt: skip
    return {"prices": table.to_dict("records")}
