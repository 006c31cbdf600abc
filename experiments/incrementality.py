"""``experiment=incrementality``: what each channel adds, against what last-click attribution says.

The store runs with every channel on, and once more with each channel switched off from day 0
(a holdout of the whole market, ``World(off=...)``), on the same seed: the same past, agents and
keyed random numbers (common random numbers). A channel's incremental revenue is the window's
revenue with it on minus with it off; its Monte Carlo standard error comes from the paired
per-user differences (``sqrt(n var(d))``). Its attributed revenue is what a last-click report
gives it in the all-on world: each order's revenue goes to the channel of the user's last click
(a paid ad, an e-mail or an SMS) within 7 days before it, the order's own session included;
orders with no such click (organic and direct visits only) go to no channel. Spend is the
window's ad spend (paid channels) or sending cost (e-mail, SMS). With the retargeting strategy
on, its flows get a row too: a visit a reminder brought is a retargeting click, its spend every
cost the strategy books, its holdout the store without the strategy.

The paid budgets can be flighted day by day (:func:`budget_walks`, the same in every world), and
the all-on world's days are a marketing-mix testbed: :func:`mmm_table` and :func:`truth`.

Incrementality experiments (Blake, Nosko & Tadelis 2015 on eBay's search ads; Gordon et al.
2019 on Facebook lift tests) find last-click attribution overstates what ads add, most of all
for branded search, whose clicks replace visits people were about to make. The world has that
substitution (``channels.paid_search.brand_capture``: aware agents searching for the store by
name click its ad instead of its organic result) and saved carts that abandoners take up on
their own (``funnel.cart_return``), or mean to come back for (``funnel.come_back``: a reminder
reaching one first is the way back, so last click credits it with an order that comes anyway);
social and display clicks are still all new visits.

Beside last click, four multi-touch models (:func:`multi_touch`: first click, linear,
position-based, time decay) split each order over a touch table (:func:`touch_table`): clicks,
and ad impressions drawn per person by a world run with ``touches=True`` (view-through).
"""

from __future__ import annotations

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
from sim import rng  # noqa: E402
from sim.aggregate import ATTRIBUTION_DAYS  # noqa: E402
from sim.calendar import build as build_calendar  # noqa: E402
from sim.config import PAID_CHANNELS, Scenario  # noqa: E402
from sim.world import Results, World  # noqa: E402
from strategies import build_strategies  # noqa: E402

CHANNELS = (*PAID_CHANNELS, "email", "sms")  # and "retargeting" when the strategy is on
COLUMNS = ["channel", "spend", "attributed_revenue", "incremental_revenue",
           "incremental_revenue_se", "attributed_roas", "incremental_roas",
           "incremental_roas_se"]  # fmt: skip
SPEND_KINDS = {**{c: f"ad_{c}" for c in PAID_CHANNELS}, "email": "email", "sms": "sms"}
LABELS = (*CHANNELS, "retargeting")  # every channel an order can be credited to
VIEW_DAYS = 1.0  # view-through window: an impression up to a day before an order (assumption, a
# common ad-platform default; clicks count 7 days, as last click)
HALF_LIFE = 7.0  # time decay: a touch's weight halves every 7 days before the order (assumption,
# Google Analytics' former default)
MODELS = ("first_click", "linear", "position_based", "time_decay")
COLUMNS += [f"attributed_revenue_{m}" for m in MODELS]


def budget_walks(seed: int, days: int, sd: float, corr: float) -> dict[str, np.ndarray]:
    """Each paid channel's daily budget multiplier over the window: exp of a stationary AR(1).

    ``x_t = corr x_(t-1) + sqrt(1 - corr^2) sd e_t`` (``x_0 ~ N(0, sd^2)``), multiplier
    ``exp(x_t - sd^2 / 2)``: mean 1, so the spend varies around the config's budget (campaigns
    flighted up and down, slowly when ``corr`` is near 1). Keyed per (seed, channel): the same
    in every world of the experiment. ``sd = 0``: constant budgets.
    """
    out = {}
    for name in PAID_CHANNELS:
        e = rng.generator(seed, f"budget_walk_{name}", 0).standard_normal(days)
        x = np.empty(days)
        for t in range(days):
            x[t] = sd * e[t] if t == 0 else corr * x[t - 1] + np.sqrt(1 - corr**2) * sd * e[t]
        out[name] = np.exp(x - sd**2 / 2)
    return out


def run_world(scenario: Scenario, seed: int, strategy: dict, off: tuple[str, ...],
              budgets: dict | None = None, touches: bool = False) -> Results:  # fmt: skip
    """The store with the strategies on everyone, ``off`` channels and ``budgets`` multipliers.

    ``off``: channels switched off from day 0; ``budgets``: per paid channel, its budget's
    multiplier on each window day; ``touches``: also draw the impressions per person.
    """
    hooks = build_strategies(worlds.specs(strategy, ["all"]), ["all"])
    return World(scenario, seed, hooks, arm_names=("all",), events=False, off=off,
                 budget_multipliers=budgets, touches=touches).run()  # fmt: skip


def mmm_table(results: Results) -> pd.DataFrame:
    """mmm.csv: one row per window day of the paid channels' data, the sales and the controls.

    Per paid channel ``<channel>_spend``, ``_impressions`` and ``_clicks`` (sessions from it);
    ``revenue`` and ``orders``; ``weekday`` (0 = Monday); ``holiday`` and ``promotion``: 1 on a
    day a holiday of ``scenario.calendar`` or a promotion covers (:mod:`sim.calendar`).
    """
    sc, days = results.scenario, results.scenario.days
    index = np.arange(days)
    dates = [sc.start + dt.timedelta(days=int(d)) for d in index]
    out = pd.DataFrame({"date": [str(d) for d in dates]})
    costs, imp = results.costs, results.impressions
    s = results.sessions[results.sessions["time"].to_numpy() >= 0]
    s_day = np.floor(s["time"].to_numpy()).astype(int)
    for name in PAID_CHANNELS:
        c = costs[(costs["kind"] == f"ad_{name}") & (costs["day"] >= 0)]
        out[f"{name}_spend"] = np.bincount(c["day"], weights=c["amount"], minlength=days)[:days]
        i = imp[(imp["channel"].astype(str) == name) & (imp["day"] >= 0)]
        out[f"{name}_impressions"] = np.bincount(i["day"], weights=i["impressions"],
                                                 minlength=days)[:days]  # fmt: skip
        mine = (s["channel"].astype(str) == name).to_numpy()
        out[f"{name}_clicks"] = np.bincount(s_day[mine], minlength=days)[:days]
    o = results.orders[results.orders["time"].to_numpy() >= 0]
    o_day = np.floor(o["time"].to_numpy()).astype(int)
    out["revenue"] = np.bincount(o_day, weights=o["revenue"], minlength=days)[:days]
    out["orders"] = np.bincount(o_day, minlength=days)[:days]
    out["weekday"] = [d.weekday() for d in dates]
    cal = build_calendar(sc)
    out["holiday"] = cal.holiday[cal.offset : cal.offset + days].astype(int)
    out["promotion"] = cal.promotion[cal.offset : cal.offset + days].astype(int)
    return out


def click_channel(sessions: pd.DataFrame) -> pd.Series:
    """Each session's channel as a click: a visit a reminder brought is ``retargeting``."""
    channel = sessions["channel"].astype(str)
    if "recovered" in sessions:
        channel = channel.where(~sessions["recovered"].to_numpy(), "retargeting")
    return channel


def last_click(sessions: pd.DataFrame) -> pd.Series:
    """Window revenue per channel of the last click (ad, e-mail, SMS) within 7 days of an order.

    A visit a retargeting reminder brought (``recovered``) is a ``retargeting`` click, whatever
    channel carried the reminder.
    """
    s = sessions[sessions["time"].to_numpy() >= 0]
    s = s.assign(channel=click_channel(s))
    labels = [*CHANNELS, "retargeting"]
    clicks = s[s["channel"].isin(labels)][["user_id", "time", "channel"]]
    buys = s[s["purchased"].to_numpy()][["user_id", "time", "revenue"]]
    if not len(clicks) or not len(buys):
        return pd.Series(0.0, index=labels)
    hit = pd.merge_asof(
        buys.sort_values("time"),
        clicks.rename(columns={"channel": "click_channel"}).assign(t=lambda d: d["time"])
        .drop(columns="time").sort_values("t"),
        left_on="time", right_on="t", by="user_id", direction="backward",
        tolerance=ATTRIBUTION_DAYS,
    )  # fmt: skip
    hit = hit[hit["click_channel"].notna()]
    out = hit.groupby(hit["click_channel"].astype(str))["revenue"].sum()
    return out.reindex(labels, fill_value=0.0)


def touch_table(results: Results) -> pd.DataFrame:
    """Per user, every ad impression (``click`` False) and click (True) with its time and channel.

    Clicks are the sessions from a paid ad, an e-mail, an SMS or a retargeting reminder
    (``recovered``: channel ``retargeting``); impressions are those a world run with
    ``touches=True`` drew per person (``Results.views``; paid channels only, not retargeting's
    ads). For this experiment only: events.parquet has no impressions.
    """
    s = results.sessions
    channel = click_channel(s)
    mine = channel.isin(LABELS).to_numpy()
    parts = [pd.DataFrame({"user_id": s["user_id"].to_numpy()[mine],
                           "time": s["time"].to_numpy()[mine],
                           "channel": channel.to_numpy()[mine], "click": True})]  # fmt: skip
    if results.views is not None:
        v = results.views
        parts.append(pd.DataFrame({"user_id": v["user_id"].to_numpy(), "time": v["time"].to_numpy(),
                                   "channel": v["channel"].astype(str).to_numpy(),
                                   "click": False}))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def multi_touch(sessions: pd.DataFrame, touches: pd.DataFrame) -> pd.DataFrame:
    """Window revenue per channel (rows) under four attribution models (columns, ``MODELS``).

    An order's touches are its user's clicks within 7 days before it (its own session included)
    and impressions within ``VIEW_DAYS``. First click: the whole order to the earliest click.
    Linear: equal shares to every touch. Position-based: 40% to the first touch, 40% to the
    last, 20% shared by those between (one touch: all; two: half each). Time decay: shares
    ``2 ** (-age / HALF_LIFE)``, normalised. Orders without a touch go to no channel.
    """
    s = sessions[sessions["time"].to_numpy() >= 0]
    buys = s.loc[s["purchased"].to_numpy(), ["user_id", "time", "revenue"]]
    buys = buys.reset_index(drop=True).assign(order=lambda d: np.arange(len(d)))
    t = touches[touches["user_id"].isin(buys["user_id"])]
    j = buys.merge(t.rename(columns={"time": "touch_time"}), on="user_id")
    age = j["time"].to_numpy() - j["touch_time"].to_numpy()
    limit = np.where(j["click"].to_numpy(), ATTRIBUTION_DAYS, VIEW_DAYS)
    keep = (age >= 0) & (age <= limit)
    j = j[keep].assign(age=age[keep]).sort_values(["order", "touch_time"], kind="stable")
    out = pd.DataFrame(0.0, index=list(LABELS), columns=list(MODELS))
    if not len(j):
        return out
    order = j["order"].to_numpy()
    k = j.groupby("order")["age"].transform("size").to_numpy()
    pos = j.groupby("order").cumcount().to_numpy()
    revenue, channel = j["revenue"].to_numpy(), j["channel"].to_numpy()
    first = j[j["click"].to_numpy()].groupby("order").head(1)
    out["first_click"] = first.groupby("channel")["revenue"].sum().reindex(LABELS, fill_value=0)
    ends = np.select([k == 1, k == 2], [1.0, 0.5], 0.4)
    middle = 0.2 / np.maximum(k - 2, 1)
    decay = 2.0 ** (-j["age"].to_numpy() / HALF_LIFE)
    shares = {"linear": 1.0 / k,
              "position_based": np.where((pos == 0) | (pos == k - 1), ends, middle),
              "time_decay": decay / np.bincount(order, weights=decay)[order]}  # fmt: skip
    for model, share in shares.items():
        credit = pd.Series(revenue * share).groupby(channel).sum()
        out[model] = credit.reindex(LABELS, fill_value=0.0)
    return out


def window_spend(results: Results, channel: str) -> float:
    """The window's spend on a channel; retargeting: every cost the strategy books."""
    c = results.costs[results.costs["day"] >= 0]
    kind = c["kind"].astype(str)
    if channel == "retargeting":  # its messages and its ads (booked as ad spend)
        mine = kind.str.startswith("retargeting_") | (kind == "ad_retargeting")
    else:
        mine = kind == SPEND_KINDS[channel]
    return float(c.loc[mine.to_numpy(), "amount"].sum())


def evaluate(scenario: Scenario, seed: int, strategy: dict | None = None,
             channels=CHANNELS, budgets: dict | None = None, keep: dict | None = None
             ) -> pd.DataFrame:  # fmt: skip
    """incrementality.csv: per channel, spend, attributed and incremental revenue and ROAS.

    ``budgets``: daily budget multipliers of the paid channels (:func:`budget_walks`), the same
    in every world; ``keep``: a dict that receives the all-on world as ``keep["on"]``.
    """
    strategy = strategy or {}
    on = run_world(scenario, seed, strategy, (), budgets, touches=True)
    if keep is not None:
        keep["on"] = on
    attributed = last_click(on.sessions)
    models = multi_touch(on.sessions, touch_table(on))
    revenue_on = on.users["revenue"].to_numpy(float)
    rows = []
    if "retargeting" in strategy:
        channels = (*channels, "retargeting")
    for channel in channels:
        if channel == "retargeting":  # the strategy off, everything else as it was
            others = {k: v for k, v in strategy.items() if k != "retargeting"}
            off = run_world(scenario, seed, others, (), budgets)
        else:
            off = run_world(scenario, seed, strategy, (channel,), budgets)
        d = revenue_on - off.users["revenue"].to_numpy(float)
        spend = window_spend(on, channel)
        se = float(np.sqrt(len(d) * np.var(d, ddof=1)))
        row = {"channel": channel, "spend": spend, "attributed_revenue": attributed[channel],
               "incremental_revenue": float(d.sum()), "incremental_revenue_se": se}  # fmt: skip
        for model in MODELS:
            row[f"attributed_revenue_{model}"] = float(models.loc[channel, model])
        with np.errstate(divide="ignore", invalid="ignore"):
            row["attributed_roas"] = row["attributed_revenue"] / spend if spend else np.nan
            row["incremental_roas"] = row["incremental_revenue"] / spend if spend else np.nan
            row["incremental_roas_se"] = se / spend if spend else np.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def truth(table: pd.DataFrame) -> dict:
    """mmm_truth.json: each channel's incremental revenue (its SE), spend and ROAS in the window."""
    keys = ("spend", "incremental_revenue", "incremental_revenue_se", "incremental_roas",
            "incremental_roas_se")  # fmt: skip
    return {r["channel"]: {k: float(r[k]) for k in keys} for _, r in table.iterrows()}


def figure(table: pd.DataFrame, path: Path) -> None:
    """Incremental over attributed revenue per channel (1: last click is right), 95% bars."""
    fig, ax = plt.subplots(figsize=(7.0, 4.0))
    x = np.arange(len(table))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = table["incremental_revenue"] / table["attributed_revenue"]
        err = 1.96 * table["incremental_revenue_se"] / table["attributed_revenue"]
    ax.bar(x, ratio, 0.6, yerr=err, capsize=4, color="tab:orange")
    ax.axhline(1, color="black", lw=1, ls="--")
    ax.text(-0.45, 1.02, "last click right", ha="left", va="bottom", fontsize=8)
    for i, roas in enumerate(table["attributed_roas"]):
        ax.text(i, 0.03, f"last-click\nROAS\n{roas:.3g}", ha="center", fontsize=7, color="white")
    ax.set_xticks(x, table["channel"])
    ax.set_ylabel("incremental / attributed revenue")
    ax.set_title("What each channel adds (channel off, same world) vs what last click credits")
    save_figure(fig, path)


MODEL_NAMES = {"attributed_revenue": "last click",
               **{f"attributed_revenue_{m}": m.replace("_", " ") for m in MODELS}}  # fmt: skip


def models_figure(table: pd.DataFrame, path: Path) -> None:
    """Per channel: the truth (incremental revenue, 95% bar) beside each attribution model."""
    fig, ax = plt.subplots(figsize=(9.5, 4.4))
    x = np.arange(len(table))
    width = 0.8 / (len(MODEL_NAMES) + 1)
    ax.bar(x - 0.4 + width / 2, table["incremental_revenue"], width,
           yerr=1.96 * table["incremental_revenue_se"], capsize=3, color="black",
           label="incremental (the truth, 95%)")  # fmt: skip
    for i, (col, name) in enumerate(MODEL_NAMES.items(), start=1):
        ax.bar(x - 0.4 + width * (i + 0.5), table[col], width, label=name)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(x, table["channel"])
    ax.set_ylabel("window revenue ($)")
    ax.yaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:,.0f}"))
    ax.set_title("Attribution models against the truth (the channel switched off, same world)",
                 fontsize=10)  # fmt: skip
    ax.legend(fontsize=8, ncol=3, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    save_figure(fig, path)


def table_text(table: pd.DataFrame) -> str:
    """A readable incrementality.csv."""
    lines = [f"{'channel':<12} {'spend':>10} {'attributed':>11} {'incremental':>20} "
             f"{'attr. ROAS':>10} {'incr. ROAS':>16}"]  # fmt: skip
    for _, r in table.iterrows():
        lines.append(f"{r['channel']:<12} {r['spend']:>10,.0f} {r['attributed_revenue']:>11,.0f} "
                     f"{r['incremental_revenue']:>11,.0f} +- {r['incremental_revenue_se']:>5,.0f} "
                     f"{r['attributed_roas']:>10.2f} {r['incremental_roas']:>8.2f} +- "
                     f"{r['incremental_roas_se']:.2f}")  # fmt: skip
    return "\n".join(lines)


MODELS_TEXT = (
    "Each model splits each window order's revenue over its user's touches: clicks (paid ads, "
    "e-mail, SMS, retargeting reminders) within 7 days before it and ad impressions within a "
    "day (view-through). First click: all to the earliest click; linear: equal shares; "
    "position-based: 40% first, 40% last, 20% between; time decay: halving every 7 days. Last "
    "click counts clicks only. Beside them, the truth: the revenue lost when the channel is off."
)


def run(cfg, scenario: Scenario, out_dir: Path) -> dict:
    """Run the incrementality experiment; write incrementality.csv, the figure and the report."""
    strategy = OmegaConf.to_container(cfg.strategy, resolve=True)
    budgets = budget_walks(cfg.seed, scenario.days, cfg.experiment.budget_sd,
                           cfg.experiment.budget_corr)  # fmt: skip
    keep = {}
    table = evaluate(scenario, cfg.seed, strategy, budgets=budgets, keep=keep)
    outputs.write_csv(out_dir / "incrementality.csv", table)
    outputs.write_csv(out_dir / "mmm.csv", mmm_table(keep["on"]))
    outputs.write_json(out_dir / "mmm_truth.json", truth(table))
    figure(table, out_dir / "incrementality.png")
    models_figure(table, out_dir / "attribution_models.png")
    text = (f"{scenario.population.size:,} agents, {scenario.days} days, seed {cfg.seed}, "
            f"{strategies_label(cfg)}. Each channel is switched off from day 0 in a world that "
            "shares everything else (past, agents, keyed random numbers); incremental revenue "
            "is the window's revenue difference, with its paired Monte Carlo SE. Attributed "
            "revenue: last click (paid ad, e-mail, SMS, retargeting reminder) within 7 days of an "
            "order, in the all-on world.")  # fmt: skip
    report.write_report(out_dir, "Attribution against incrementality", [
        report.Section("Setup and reading", text, [table[COLUMNS[:8]]], ["incrementality.png"]),
        report.Section("Attribution models", MODELS_TEXT,
                       [table[["channel", *MODEL_NAMES, "incremental_revenue"]]],
                       ["attribution_models.png"]),
    ])  # fmt: skip
    return {"incrementality": table.to_dict("records")}
