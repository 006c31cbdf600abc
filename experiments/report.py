"""Experiment figures and the self-contained report (report.md and report.html).

The report is a list of sections, each a title, a few sentences, tables and figures; the HTML
embeds every picture (base64), so the one file can be mailed or opened anywhere.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from experiments.figures import save_figure  # noqa: E402
from experiments.outputs import write_atomic  # noqa: E402


@dataclass
class Section:
    """One part of the report."""

    title: str
    text: str = ""
    tables: list[pd.DataFrame] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)  # file names in the run folder


def lift_figure(
    table: pd.DataFrame,
    path: Path,
    target=None,
    estimate: str = "A/B estimate, 95% CI",
    versus: str = "treatment vs control",
) -> None:
    """Relative lift of each metric with its interval, the truth (if known) and the target."""
    t = table.iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(t) + 1.5))
    y = np.arange(len(t))
    err = [t["rel_lift"] - t["rel_ci_low"], t["rel_ci_high"] - t["rel_lift"]]
    ax.errorbar(t["rel_lift"], y, xerr=err, fmt="o", capsize=4, label=estimate)
    if "true_rel_lift" in t:
        ax.scatter(t["true_rel_lift"], y, marker="x", color="black", zorder=3,
                   label="true lift (everyone vs no one treated)")  # fmt: skip
    ax.axvline(0, color="grey", lw=1)
    if target is not None and target.lift_kind == "relative":
        row = np.flatnonzero(t["metric"].to_numpy() == target.metric)
        ax.scatter(np.full(len(row), target.signed_lift), row, marker="|", s=400, color="red",
                   label=f"target {target.signed_lift:+.0%} ({target.metric})")  # fmt: skip
    ax.set_yticks(y)
    ax.set_yticklabels(t["metric"])
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_xlabel(f"relative lift, {versus}")
    ax.set_title(f"Lift by metric, {versus}")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    save_figure(fig, path)


def sequential_figure(seq: pd.DataFrame, metric: str, start, path: Path) -> None:
    """The looks as an analyst saw them on each day: lift with intervals, p-values, decisions.

    ``seq`` is sequential.csv: each row is computed from the data as of its day. One-sided
    metrics (guardrails) get one-sided intervals (only the finite end is drawn) and p-values.
    """
    dates = pd.to_datetime(start) + pd.to_timedelta(seq["day"], unit="D")
    fig, (a, b) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    side, alpha = seq["alternative"].iloc[0], float(seq["alpha"].iloc[0])
    half = seq["se"] * seq["naive_bound"]
    naive_low = seq["abs_lift"] - half if side != "smaller" else seq["abs_lift"] * np.nan
    naive_high = seq["abs_lift"] + half if side != "larger" else seq["abs_lift"] * np.nan
    a.plot(dates, seq["abs_lift"], "o-", color="C0", label="lift (absolute), as of each day")
    a.fill_between(dates, naive_low.fillna(seq["abs_lift"]), naive_high.fillna(seq["abs_lift"]),
                   alpha=0.2, color="C0", label=f"fixed-horizon {1 - alpha:.0%} CI "
                   "(invalid if peeked at)")  # fmt: skip
    finite = seq[["cs_low", "cs_high"]].where(np.isfinite(seq[["cs_low", "cs_high"]]))
    tau = f"tau {seq['tau'].iloc[0]:.3g}: {seq['tau_source'].iloc[0]}"
    a.plot(dates, finite["cs_low"], "k--", lw=1, label=f"always-valid interval (mSPRT, {tau})")
    a.plot(dates, finite["cs_high"], "k--", lw=1)
    null = seq["null"].iloc[0]
    a.axhline(null, color="grey", lw=1, label="null" if null == 0 else f"null (margin {null:+g})")
    a.set_title(f"{metric}: lift at each look ({side})")
    a.legend(fontsize=7)
    b.semilogy(dates, seq["naive_p"], "o-", label="naive p-value (peeking)")
    b.semilogy(dates, seq["always_valid_p"], "o-", label="always-valid p-value (mSPRT)")
    b.axhline(alpha, color="red", lw=1, label=f"alpha = {alpha:g}")
    rules = (("naive", "C0", "naive"), ("obf", "C2", "O'Brien-Fleming"), ("msprt", "C1", "mSPRT"))
    for rule, color, name in rules:  # a vertical line at the first look where each rejects
        hit = np.flatnonzero(seq[f"{rule}_reject"].to_numpy(dtype=bool))
        if len(hit):
            b.axvline(dates.iloc[hit[0]], color=color, ls=":", label=f"{name} rejects")
    b.set_title("p-value at each look; first rejection of each rule marked")
    b.legend(fontsize=7)
    fig.autofmt_xdate()
    save_figure(fig, path)


def power_figure(table: pd.DataFrame, path: Path, target_power: float = 0.8) -> None:
    """Simulated power (with intervals) and analytic power by population size, per metric."""
    metrics = list(dict.fromkeys(table["metric"]))
    cols = min(3, len(metrics))
    rows = int(np.ceil(len(metrics) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        t = table[table["metric"] == metric]
        err = [t["power"] - t["power_ci_low"], t["power_ci_high"] - t["power"]]
        ax.errorbar(t["size"], t["power"], yerr=err, fmt="o-", capsize=3, label="simulated")
        ax.plot(t["size"], t["analytic_power"], "s--", label="analytic (z, same lift and SE)")
        ax.axhline(target_power, color="grey", lw=1)
        ax.set_ylim(0, 1.02)
        ax.set_xscale("log")
        ax.set_xticks(t["size"].to_numpy())
        ax.set_xticklabels([f"{v:,.0f}" for v in t["size"]], fontsize=8)
        ax.minorticks_off()
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("agents in the world")
    for ax in axes.flat[len(metrics) :]:
        ax.axis("off")
    axes.flat[0].set_ylabel("power")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("Power by population size: simulated (95% Wilson CI) vs analytic")
    fig.tight_layout()
    save_figure(fig, path)


def _markdown_table(frame: pd.DataFrame) -> str:
    shown = frame.map(_cell)
    head = "| " + " | ".join(map(str, shown.columns)) + " |"
    rule = "|" + "---|" * len(shown.columns)
    body = ["| " + " | ".join(row) + " |" for row in shown.astype(str).to_numpy()]
    return "\n".join([head, rule, *body])


def _cell(value) -> str:
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return "-"
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def write_report(out_dir: Path, title: str, sections: list[Section]) -> None:
    """Write report.md and a self-contained report.html (pictures embedded) into ``out_dir``."""
    md = [f"# {title}", ""]
    body = [f"<h1>{html.escape(title)}</h1>"]
    for s in sections:
        md += [f"## {s.title}", "", s.text, ""]
        body += [f"<h2>{html.escape(s.title)}</h2>", f"<p>{html.escape(s.text)}</p>"]
        for t in s.tables:
            md += [_markdown_table(t), ""]
            body.append(t.map(_cell).to_html(index=False, border=0, classes="t"))
        for name in s.figures:
            md += [f"![{name}]({name})", ""]
            data = base64.b64encode((out_dir / name).read_bytes()).decode()
            body.append(f'<img alt="{name}" src="data:image/png;base64,{data}">')
    style = ("body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
             "table.t{border-collapse:collapse;font-size:12px;margin:1em 0}"
             "table.t td,table.t th{padding:3px 8px;border-bottom:1px solid #ddd;"
             "text-align:right}"
             "img{max-width:100%;margin:1em 0}")  # fmt: skip
    head = f"<meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style>"
    page = f"<!doctype html><html><head>{head}</head><body>{''.join(body)}</body></html>"
    write_atomic(out_dir / "report.md", lambda tmp: tmp.write_text("\n".join(md)))
    write_atomic(out_dir / "report.html", lambda tmp: tmp.write_text(page))
