"""Figures of a run: the funnel by arm and KPIs over time by arm."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from experiments.outputs import write_atomic  # noqa: E402

FUNNEL_STEPS = (
    ("sessions", "Sessions"),
    ("engaged", "Viewed a product"),
    ("carted", "Added to cart"),
    ("checkout", "Began checkout"),
    ("purchased", "Purchased"),
)


def save_figure(fig, path: Path) -> None:
    """Save a figure as PNG atomically and close it."""
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight"))
    plt.close(fig)


def funnel_figure(sessions: pd.DataFrame, path: Path) -> None:
    """Horizontal funnel: sessions at each stage, share of sessions, one bar group per arm."""
    s = sessions.assign(sessions=True, engaged=sessions["views"] > 0)
    counts = s.groupby("arm", observed=True)[[k for k, _ in FUNNEL_STEPS]].sum()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    arms = list(counts.index)
    height = 0.8 / len(arms)
    for i, arm in enumerate(arms):
        row = counts.loc[arm]
        ys = [j + i * height for j in range(len(FUNNEL_STEPS))]
        bars = ax.barh(ys, row.values, height=height, label=str(arm))
        for bar, value in zip(bars, row.values, strict=True):
            share = value / row["sessions"] if row["sessions"] else 0
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2,
                    f" {value:,.0f} ({share:.1%})", va="center", fontsize=8)  # fmt: skip
    ax.set_yticks([j + height * (len(arms) - 1) / 2 for j in range(len(FUNNEL_STEPS))])
    ax.set_yticklabels([label for _, label in FUNNEL_STEPS])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("sessions (log scale); in brackets: share of all sessions")
    ax.set_title("Funnel: from session to purchase")
    if len(arms) > 1:
        ax.legend(title="arm")
    ax.margins(x=0.35)
    save_figure(fig, path)


OVER_TIME = (
    ("sessions", "Sessions per day", "{x:,.0f}"),
    ("conversion_rate", "Conversion rate (orders / sessions)", "{x:.1%}"),
    ("aov", "Average order value ($)", "{x:,.0f}"),
    ("revenue", "Revenue per day ($)", "{x:,.0f}"),
)


def kpis_over_time_figure(daily: pd.DataFrame, path: Path, window: int = 7) -> None:
    """Four KPIs per day by arm (thin) with a 7-day rolling mean (thick)."""
    scope = "arm" if daily["scope"].eq("arm").any() else "total"
    fig, axes = plt.subplots(2, 2, figsize=(11, 6.5), sharex=True)
    for ax, (kpi, title, fmt) in zip(axes.flat, OVER_TIME, strict=True):
        sel = daily[(daily["kpi"] == kpi) & (daily["scope"] == scope)]
        for group, g in sel.groupby("group"):
            g = g.sort_values("day")
            dates = pd.to_datetime(g["date"])
            line = ax.plot(dates, g["value"], lw=0.7, alpha=0.45)[0]
            ax.plot(dates, g["value"].rolling(window, min_periods=1).mean(), lw=2,
                    color=line.get_color(), label=f"{group} ({window}-day mean)")  # fmt: skip
        ax.set_title(title, fontsize=10)
        ax.yaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter(fmt))
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.autofmt_xdate()
    fig.suptitle("KPIs over time (thin: daily; thick: rolling mean)")
    save_figure(fig, path)


def order_value_figure(orders: pd.DataFrame, threshold: float, path: Path, width: float = 5.0):
    """Histogram of order values with the free-shipping threshold marked.

    Shoppers a little below the threshold top their carts up and unexpected fees make carts
    below it be abandoned more, so orders bunch just above it. Bins of ``width`` dollars are
    aligned on the threshold; values beyond the 98th percentile are left out of view.
    """
    values = orders["revenue"].to_numpy()
    top = max(float(pd.Series(values).quantile(0.98)), threshold * 1.5) if len(values) else 1.0
    start = threshold - width * int(threshold // width)
    bins = [start + width * i for i in range(int((top - start) // width) + 2)]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    ax.hist(values[values <= bins[-1]], bins=bins, color="#4C72B0", edgecolor="white", lw=0.4)
    ax.axvline(threshold, color="#C44E52", lw=2, ls="--",
               label=f"free-shipping threshold \\${threshold:,.0f}")  # fmt: skip
    below = ((values >= threshold - 4 * width) & (values < threshold)).sum()
    above = ((values >= threshold) & (values < threshold + 4 * width)).sum()
    span = f"\\${4 * width:,.0f}"  # escaped: matplotlib reads $...$ as mathtext
    ax.set_title(f"Order values: {above:,} orders in the {span} above the threshold, "
                 f"{below:,} in the {span} below", fontsize=10)  # fmt: skip
    ax.set_xlabel(f"order value (\\$, bins of \\${width:g})")
    ax.set_ylabel("orders")
    ax.legend()
    ax.grid(alpha=0.3)
    save_figure(fig, path)
