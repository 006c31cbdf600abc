"""Experiment figures and the self-contained report (report.md and report.html).

The report is a list of sections, each a title, a few paragraphs, an optional decision panel,
tables and figures. The HTML embeds every picture (base64) and its CSS, so the one file can be
mailed or opened anywhere; it fetches nothing.

Tables are shown as text made for people (:func:`format_frame`): p-values as ``0.034`` or
``<0.001``, booleans as yes/no, numbers with about four significant digits and no exponent,
rates and relative lifts as percentages, a missing value as a dash. Every table fits a 1280 px
wide page: cells wrap at spaces (intervals stay on one line) and names at underscores, and a
table whose narrowest layout would still be wider than the page is shown as several tables,
each repeating the first column. A :class:`Table` may tone its rows (good: green, bad: red).
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from experiments.figures import save_figure  # noqa: E402
from experiments.outputs import write_atomic  # noqa: E402

MISSING = "\u2013"  # en dash: a value that does not exist (never "nan")
NBSP = "\u00a0"  # keeps an interval on one line


@dataclass
class Table:
    """A table ready to show: text cells, and optionally a tone per row.

    Attributes:
        frame: The cells, already formatted as text (:func:`format_frame`).
        tones: One of ``"good"``, ``"bad"`` or ``""`` per row (colours the row); empty: none.
        caption: A line shown above the table.
        keys: How many first columns name a row (repeated when a wide table is split).
    """

    frame: pd.DataFrame
    tones: list[str] = field(default_factory=list)
    caption: str = ""
    keys: int = 1


@dataclass
class Panel:
    """The decision box a report opens with.

    Attributes:
        headline: What to do, in a few words (e.g. "Ship").
        tone: ``"good"``, ``"bad"`` or ``"neutral"`` (the panel's colour).
        summary: One or two sentences: why.
        rows: ``(label, text)`` pairs shown under it (primary metric, target, SRM, ...).
    """

    headline: str
    tone: str
    summary: str
    rows: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Section:
    """One part of the report: paragraphs (separated by blank lines), a panel, tables, figures."""

    title: str
    text: str = ""
    tables: list[pd.DataFrame | Table] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)  # file names in the run folder
    panel: Panel | None = None


def lift_figure(
    table: pd.DataFrame,
    path: Path,
    target=None,
    estimate: str = "A/B estimate, 95% CI",
    versus: str = "treatment vs control",
) -> None:
    """Relative lift of each metric with its interval, the truth (if known) and the target.

    With a ``population`` column, only the first population's rows (the decision's) are drawn.
    """
    if "population" in table:
        table = table[table["population"] == table["population"].iloc[0]]
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


# --- Cells: numbers for people -------------------------------------------------------------


def number(value, signed: bool = False, digits: int = 4) -> str:
    """``digits`` significant digits (at most 6 decimals, no trailing zeros), no exponent."""
    if value is None or pd.isna(value):
        return MISSING
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{value:{'+' if signed else ''},}"
    v = float(value)
    if np.isinf(v):
        return ("+" if signed else "") + "\u221e" if v > 0 else "-\u221e"
    if abs(v) < 5e-7:
        return "0"
    decimals = int(np.clip(digits - 1 - np.floor(np.log10(abs(v))), 0, 6))
    text = f"{v:{'+' if signed else ''},.{decimals}f}"
    return text.rstrip("0").rstrip(".") if decimals else text  # 0.05, not 0.05000


def percent(value, signed: bool = False) -> str:
    """A share or relative change as a percentage with two decimals (``+18.76%``)."""
    if value is None or pd.isna(value):
        return MISSING
    v = float(value)
    if np.isinf(v):
        return number(v, signed)
    return f"{v:{'+' if signed else ''}.2%}"


def points(value, unit: bool = True) -> str:
    """A difference of two rates in percentage points (``+0.06 pp``; ``+0.06`` without unit)."""
    if value is None or pd.isna(value) or np.isinf(value):
        return number(value, signed=True)
    return f"{100 * float(value):+.2f}" + (f"{NBSP}pp" if unit else "")


def p_value(value) -> str:
    """A p-value: three decimals, or ``<0.001``."""
    if value is None or pd.isna(value):
        return MISSING
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def interval(low, high, fmt=number) -> str:
    """``[low, high]`` on one line, each end shown by ``fmt`` (give lifts a signed one)."""
    return f"[{fmt(low)},{NBSP}{fmt(high)}]"


def is_percent(name: str) -> bool:
    """Whether a KPI or column holds a share (shown as a percentage)."""
    name = str(name)
    return (
        name.endswith(("_rate", "_share", "coverage", "_reduction"))
        or name.startswith(("rel_", "p_target", "predicted_p", "coverage"))
        or "power" in name
        or name in {"ctr", "csat", "revenue_share_by_channel", "spend_at"}
    )


def _is_p(name: str) -> bool:
    return name in {"p", "p_value", "p_adjusted"} or name.endswith(("_p", "_p_value"))


def _is_signed(name: str) -> bool:
    return any(key in name for key in ("lift", "diff", "ci_", "cs_")) or name == "z"


def _column_format(name, column: pd.Series):
    """The formatter of one column, chosen by its name and type."""
    name = str(name)
    values = column.dropna()
    if pd.api.types.is_bool_dtype(column) or (
        len(values) and values.map(lambda v: isinstance(v, bool | np.bool_)).all()
    ):
        return lambda v: MISSING if pd.isna(v) else ("yes" if v else "no")
    if not pd.api.types.is_numeric_dtype(column):
        return lambda v: MISSING if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
    if _is_p(name):
        return p_value
    if is_percent(name):
        return lambda v: percent(v, _is_signed(name))
    return lambda v: number(v, _is_signed(name))


def format_frame(frame: pd.DataFrame, percent_rows=None) -> pd.DataFrame:
    """Every cell as text for people (see the module docstring); columns keep their names.

    Args:
        frame: Any table.
        percent_rows: Optional boolean mask of rows whose numbers are rates (e.g. KPI rows of
            a what-if table): their levels are shown as percentages, their signed differences
            in percentage points.
    """
    frame = frame.reset_index(drop=True)
    out = pd.DataFrame({c: frame[c].map(_column_format(c, frame[c])) for c in frame.columns})
    rows = np.zeros(len(frame), bool) if percent_rows is None else np.asarray(percent_rows, bool)
    for c in frame.columns:
        if pd.api.types.is_float_dtype(frame[c]) and not _is_p(c) and not is_percent(c):
            fmt = points if _is_signed(str(c)) else percent
            out.loc[rows, c] = frame.loc[rows, c].map(fmt)
    return out


# --- Layout: HTML and Markdown -------------------------------------------------------------

TABLE_PX = 1080  # the widest table that fits the page's column (1280 px window)
CHAR_PX, CELL_PX = 7.4, 16  # 12.5 px DejaVu Sans (measured: 6.9-8 px), a cell's padding

STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 max-width:1180px;margin:0 auto;padding:24px 40px;color:#202124;line-height:1.45}
h1{font-size:24px;margin:0 0 16px}h2{font-size:18px;margin:28px 0 8px;
 border-bottom:1px solid #e0e0e0;padding-bottom:4px}
p{margin:6px 0;max-width:980px}
table.t{border-collapse:collapse;font-size:12.5px;margin:8px 0 16px;max-width:100%}
table.t th{font-weight:600;color:#5f6368;text-align:right;vertical-align:bottom;
 padding:4px 7px;border-bottom:2px solid #dadce0}
table.t td{padding:4px 7px;border-bottom:1px solid #eee;text-align:right;vertical-align:top;
 font-variant-numeric:tabular-nums}
table.t td:first-child,table.t th:first-child,table.t .l{text-align:left}
table.t tr.good td{background:#e6f4ea}table.t tr.bad td{background:#fce8e6}
table.t tr.good td.r{color:#137333;font-weight:600}
table.t tr.bad td.r{color:#c5221f;font-weight:600}
.caption{font-size:13px;color:#5f6368;margin:12px 0 0}
.panel{border:1px solid;border-left-width:8px;border-radius:6px;padding:14px 20px;margin:8px 0}
.panel.good{border-color:#1e8e3e;background:#f3faf5}
.panel.bad{border-color:#d93025;background:#fdf4f3}
.panel.neutral{border-color:#f9ab00;background:#fffbf0}
.panel .next{font-size:24px;font-weight:700;margin:0 0 4px}
.panel.good .next{color:#137333}.panel.bad .next{color:#c5221f}.panel.neutral .next{color:#b06000}
.panel dl{display:grid;grid-template-columns:150px 1fr;gap:6px 16px;margin:12px 0 0}
.panel dt{font-weight:600;color:#5f6368}.panel dd{margin:0}
img{max-width:100%;margin:8px 0}
"""


def _min_px(header, cells: pd.Series) -> float:
    """A column's narrowest width: its longest word (cells wrap at spaces, names at '_')."""
    words = str(header).replace("_", " ").split()
    for text in cells.astype(str):
        words += text.replace(NBSP, "x").replace("_", " ").split()
    return CELL_PX + CHAR_PX * max(map(len, words), default=1)


def column_groups(frame: pd.DataFrame, width: float = TABLE_PX, keys: int = 1) -> list[list]:
    """Split the columns so each group, with the ``keys`` first columns repeated, fits ``width``."""
    columns = list(frame.columns)
    head, rest = columns[:keys], columns[keys:]
    base = sum(_min_px(c, frame[c]) for c in head)
    groups, used = [list(head)], base
    for c in rest:
        px = _min_px(c, frame[c])
        if used + px > width and len(groups[-1]) > len(head):
            groups.append(list(head))
            used = base
        groups[-1].append(c)
        used += px
    return groups


def _escape(text) -> str:
    """HTML text in which a name may break after an underscore."""
    return html.escape(str(text)).replace("_", "_<wbr>")


NUMERIC = re.compile(r"^([-+<\[(]|\d|\u221e|\u2013$|yes$|no$)")


def _classes(frame: pd.DataFrame) -> dict:
    """Each column's class attribute: ``l`` for text (left-aligned), ``r`` for the result."""
    out = {}
    for c in frame.columns:
        names = ([] if frame[c].astype(str).str.match(NUMERIC).all() else ["l"]) + (
            ["r"] if c == "result" else [])  # fmt: skip
        out[c] = f' class="{" ".join(names)}"' if names else ""
    return out


def _html_table(table: Table) -> str:
    parts = [f'<p class="caption">{html.escape(table.caption)}</p>'] if table.caption else []
    frame, tones = table.frame, table.tones or [""] * len(table.frame)
    align = _classes(frame)
    for cols in column_groups(frame, keys=table.keys):
        head = "".join(f"<th{align[c]}>{_escape(c)}</th>" for c in cols)
        rows = []
        for tone, (_, row) in zip(tones, frame[cols].iterrows(), strict=True):
            cells = "".join(f"<td{align[c]}>{_escape(row[c])}</td>" for c in cols)
            rows.append(f'<tr class="{tone}">{cells}</tr>' if tone else f"<tr>{cells}</tr>")
        parts.append(f'<table class="t"><thead><tr>{head}</tr></thead>'
                     f"<tbody>{''.join(rows)}</tbody></table>")  # fmt: skip
    return "".join(parts)


def _markdown_table(table: Table) -> str:
    shown = table.frame.astype(str).replace({r"\|": r"\|"}, regex=True)
    head = "| " + " | ".join(map(str, shown.columns)) + " |"
    rule = "|" + "---|" * len(shown.columns)
    body = ["| " + " | ".join(row) + " |" for row in shown.to_numpy()]
    lines = [table.caption, ""] if table.caption else []
    return "\n".join([*lines, head, rule, *body])


def _html_panel(panel: Panel) -> str:
    rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{_escape(v)}</dd>" for k, v in panel.rows)
    return (f'<div class="panel {panel.tone}"><p class="next">{html.escape(panel.headline)}</p>'
            f"<p>{_escape(panel.summary)}</p><dl>{rows}</dl></div>")  # fmt: skip


def _markdown_panel(panel: Panel) -> str:
    lines = [f"> **{panel.headline}**", ">", f"> {panel.summary}", ">"]
    return "\n".join(lines + [f"> - **{k}**: {v}" for k, v in panel.rows])


def _as_table(table: pd.DataFrame | Table) -> Table:
    return table if isinstance(table, Table) else Table(format_frame(table))


def _section(s: Section, out_dir: Path) -> tuple[list[str], list[str]]:
    """One section's Markdown lines and HTML parts."""
    paragraphs = [p.strip() for p in s.text.split("\n\n") if p.strip()]
    md = [f"## {s.title}", ""]
    body = [f"<h2>{html.escape(s.title)}</h2>"]
    if s.panel is not None:
        md += [_markdown_panel(s.panel), ""]
        body.append(_html_panel(s.panel))
    md += [line for p in paragraphs for line in (p, "")]
    body += [f"<p>{_escape(p)}</p>" for p in paragraphs]
    for t in map(_as_table, s.tables):
        md += [_markdown_table(t), ""]
        body.append(_html_table(t))
    for name in s.figures:
        md += [f"![{name}]({name})", ""]
        data = base64.b64encode((out_dir / name).read_bytes()).decode()
        body.append(f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">')
    return md, body


def write_report(out_dir: Path, title: str, sections: list[Section]) -> None:
    """Write report.md and a self-contained report.html (pictures embedded) into ``out_dir``."""
    md, body = [f"# {title}", ""], [f"<h1>{html.escape(title)}</h1>"]
    for s in sections:
        more_md, more_body = _section(s, out_dir)
        md += more_md
        body += more_body
    head = (f"<meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style>")  # fmt: skip
    page = f"<!doctype html><html><head>{head}</head><body>{''.join(body)}</body></html>"
    write_atomic(out_dir / "report.md", lambda tmp: tmp.write_text("\n".join(md), encoding="utf-8"))
    write_atomic(out_dir / "report.html", lambda tmp: tmp.write_text(page, encoding="utf-8"))
