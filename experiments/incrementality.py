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
one substitution (``channels.paid_search.brand_capture``: aware agents searching for the store
by name click its ad instead of its organic result); social and display clicks are still all
new visits, and abandoners never return for their carts unreminded, so their incremental
returns come out about at the attributed ones.
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
           budgets: dict | None = None) -> Results:  # fmt: skip
    """The store with the strategies on everyone, ``off`` channels and ``budgets`` multipliers.

    ``off``: channels switched off from day 0; ``budgets``: per paid channel, its budget's
    multiplier on each window day.
    """
    hooks = build_strategies(worlds.specs(strategy, ["all"]), ["all"])
    return World(scenario, seed, hooks, arm_names=("all",), events=False, off=off,
                 budget_multipliers=budgets).run()  # fmt: skip


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


def last_click(sessions: pd.DataFrame) -> pd.Series:
    """Window revenue per channel of the last click (ad, e-mail, SMS) within 7 days of an order.

    A visit a retargeting reminder brought (``recovered``) is a ``retargeting`` click, whatever
    channel carried the reminder.
    """
    s = sessions[sessions["time"].to_numpy() >= 0]
    channel = s["channel"].astype(str)
    if "recovered" in s:
        channel = channel.where(~s["recovered"].to_numpy(), "retargeting")
    s = s.assign(channel=channel)
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
    on = run_world(scenario, seed, strategy, (), budgets)
    if keep is not None:
        keep["on"] = on
    attributed = last_click(on.sessions)
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
        ax.text(i, 0.03, f"last-click\nROAS {roas:.2f}", ha="center", fontsize=7, color="white")
    ax.set_xticks(x, table["channel"])
    ax.set_ylabel("incremental / attributed revenue")
    ax.set_title("What each channel adds (channel off, same world) vs what last click credits")
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
    text = (f"{scenario.population.size:,} agents, {scenario.days} days, seed {cfg.seed}, "
            f"{strategies_label(cfg)}. Each channel is switched off from day 0 in a world that "
            "shares everything else (past, agents, keyed random numbers); incremental revenue "
            "is the window's revenue difference, with its paired Monte Carlo SE. Attributed "
            "revenue: last click (paid ad, e-mail, SMS, retargeting reminder) within 7 days of an "
            "order, in the all-on world.")  # fmt: skip
    report.write_report(out_dir, "Attribution against incrementality", [
        report.Section("Setup and reading", text, [table], ["incrementality.png"]),
    ])  # fmt: skip
    return {"incrementality": table.to_dict("records")}
