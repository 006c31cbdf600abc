"""CUPED's lever against a real log: how much a pre-period explains, in CDNOW and in its world.

CUPED removes the share of a metric's variance that its pre-period value explains (one
covariate: the squared correlation, :func:`experiments.stats.metrics.cuped`). That share is a
property of the customers: how persistent each one's buying is from one quarter to the next.
This module measures it on CDNOW's real customers (the orders of the ``PRE`` days before the
cut against those of the ``WINDOW`` days after) and in the world calibrated to the same log
(:mod:`experiments.calibration.forecast`: the log's customers with their real past, run on
from the cut), with the same pre-period: the world's answer graded against the real one.

Then two references for the world: the same CDNOW cohort at later cuts, as it buys less often
(:func:`cdnow_over_time`), and the default store's own customers at day 0 and those of
``scenario=alike``, whose shoppers are alike (:func:`store_customers`), with how concentrated
their buying is (:func:`statistics`).

``python -m experiments.calibration.persistence [FRACTION] [REPLICATES]`` prints the tables
(FRACTION of CDNOW's customers, seeded; the lifetimes wheel of the dev extra has the log).
The world's modules are imported when the comparison runs, so a bad argument exits at once.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from experiments.stats.metrics import Groups, cuped

PRE = 91  # days of pre-period before the cut, as a quarter's A/B test would use
WINDOW = 91  # days of the window after it
CUTS = (91, 181, 271, 361, 451)  # days of CDNOW's file for cdnow_over_time (from 1997-01-01)
STORE = ["scenario.population.size=100000"]  # the default store for store_customers
FIRST_YEAR = (
    "cohort",
    "second_in_year",
    "third_given_second",
    "fourth_given_third",
    "top_10pct_x_mean",
    "top_1pct_x_mean",
)  # first_year's figures, as printed


def reduction(y: np.ndarray, x: np.ndarray) -> float:
    """Share of ``y``'s variance CUPED removes with covariate ``x`` (one arm)."""
    groups = Groups.build(np.zeros(len(y), dtype=np.intp), ("all",))
    adjusted, _, _ = cuped(groups, np.asarray(y, float), np.asarray(x, float))
    return float(1 - adjusted.var[0] / np.var(y, ddof=1))


def per_customer(codes: np.ndarray, day: np.ndarray, amount: np.ndarray, n: int):
    """(revenue, purchase days) per customer code of orders on ``day`` (whole days)."""
    revenue = np.bincount(codes, weights=amount, minlength=n)
    width = int(day.max(initial=0)) + 1
    pairs = np.unique(codes.astype(np.int64) * width + day)
    return revenue, np.bincount(pairs // width, minlength=n).astype(float)


def _real(frame: pd.DataFrame, log, lo: int, hi: int):
    """The log's customers' revenue and purchase days on days ``[lo, hi)`` of the full file."""
    code = pd.Series(np.arange(log.size), index=log.customers)
    day = (frame["date"] - pd.Timestamp(log.start)).dt.days.to_numpy()
    ok = (day >= lo) & (day < hi) & frame["customer_id"].isin(code.index).to_numpy()
    codes = code.loc[frame["customer_id"].to_numpy()[ok]].to_numpy()
    return per_customer(codes, day[ok] - lo, frame["amount"].to_numpy()[ok], log.size)


def _world(found, log, seed: int):
    """One run of the calibrated world from the cut: revenue and purchase days per customer."""
    from experiments.calibration.forecast import customer_days, replicate_orders

    o = replicate_orders(found, log, WINDOW, seed)
    t = o["time"].to_numpy()
    ok = (t >= 0) & (t < WINDOW)
    revenue = np.bincount(o["user_id"].to_numpy()[ok], weights=o["revenue"].to_numpy()[ok],
                          minlength=log.size)  # fmt: skip
    return revenue, customer_days(o, log.size, WINDOW).astype(float)


def statistics(pre_revenue, pre_days, revenue, days) -> dict:
    """A customer base's buying over a window, and what its pre-period explains of it."""
    buyers = days > 0
    return {"purchase_days_per_customer": days.mean(), "share_buying": buyers.mean(),
            "days_per_buyer": days[buyers].mean() if buyers.any() else np.nan,
            "variance_to_mean": days.var() / days.mean() if days.mean() > 0 else np.nan,
            "cuped_purchase_days": reduction(days, pre_days),
            "cuped_revenue": reduction(revenue, pre_revenue)}  # fmt: skip


def cdnow_over_time(frame: pd.DataFrame, cuts: tuple[int, ...] = CUTS) -> pd.DataFrame:
    """CDNOW's customers at each cut (a day of the file): the statistics of :func:`statistics`.

    The customers are the file's cohort, whose first purchases all fall in its first quarter.

    As the cohort ages fewer of its customers buy in a quarter; what a pre-period explains
    shows whether persistence is a property of frequent buyers only.
    """
    start = frame["date"].min()
    code, day, amount = _cdnow_arrays(frame)
    n = int(code.max()) + 1

    def part(lo: int, hi: int):
        ok = (day >= lo) & (day < hi)
        return per_customer(code[ok], day[ok] - lo, amount[ok], n)

    rows = []
    for cut in cuts:
        stats = statistics(*part(cut - PRE, cut), *part(cut, cut + WINDOW))
        rows.append({"source": f"CDNOW at {(start + pd.Timedelta(days=cut)).date()}",
                     "customers": n, **stats})  # fmt: skip
    return pd.DataFrame(rows)


def _cdnow_arrays(frame: pd.DataFrame):
    """A CDNOW frame as customer codes, days since its first date, amounts."""
    day = (frame["date"] - frame["date"].min()).dt.days.to_numpy()
    return pd.factorize(frame["customer_id"])[0], day, frame["amount"].to_numpy()


def first_year(user: np.ndarray, time: np.ndarray, revenue: np.ndarray, end: float) -> dict:
    """Each customer's first year, as RJMetrics' 2015 benchmark reports it (176 stores).

    The cohort: customers whose first order is at least 365 days before ``end``. Returns the
    chance of a second purchase day within the year of the first (published: 32%), of a third
    given a second (published: past 50%) and of a fourth given a third, and how many times the
    cohort's mean first-year revenue its top 10% and top 1% spend (published, over a
    customer's life: 6x and 18x).
    """
    n = int(user.max(initial=-1)) + 1
    first = np.full(n, np.inf)
    np.minimum.at(first, user, time)
    cohort = first <= end - 365
    rows = cohort[user] & (time - first[user] < 365)
    span = int(np.floor(time.min(initial=0))) - 1
    days = per_customer(user[rows], np.floor(time[rows]).astype(np.int64) - span,
                        revenue[rows], n)[1][cohort]  # fmt: skip
    value = np.sort(np.bincount(user[rows], weights=revenue[rows], minlength=n)[cohort])[::-1]
    mean = value.mean()
    return {"cohort": int(cohort.sum()), "second_in_year": np.mean(days >= 2),
            "third_given_second": np.mean(days[days >= 2] >= 3),
            "fourth_given_third": np.mean(days[days >= 3] >= 4),
            "top_10pct_x_mean": value[: max(len(value) // 10, 1)].mean() / mean,
            "top_1pct_x_mean": value[: max(len(value) // 100, 1)].mean() / mean}  # fmt: skip


def store_customers(overrides: list[str], seed: int = 42) -> tuple[dict, dict]:
    """A store's customers at day 0 (an order before it), 90 days before and after.

    Returns :func:`statistics` with the customers' count, and their :func:`first_year`.
    """
    from experiments.config import load_scenario
    from experiments.run import simulate

    results = simulate(load_scenario(overrides), seed, events=False)
    o, n = results.orders, len(results.users)
    t, user = o["time"].to_numpy(), o["user_id"].to_numpy()
    known = np.zeros(n, dtype=bool)
    known[user[t < 0]] = True

    def part(lo: float, hi: float):
        ok = (t >= lo) & (t < hi)
        day = np.floor(t[ok] - lo).astype(np.int64)
        return [x[known] for x in per_customer(user[ok], day, o["revenue"].to_numpy()[ok], n)]

    years = first_year(user, t, o["revenue"].to_numpy(), float(results.scenario.days))
    return {"customers": int(known.sum()), **statistics(*part(-90, 0), *part(0, 90))}, years


def compare(fraction: float = 1.0, replicates: int = 4, seed: int = 3) -> pd.DataFrame:
    """Per source (CDNOW, then each world replicate): the window's means and CUPED's share."""
    from experiments.calibration import forecast as F
    from experiments.calibration.cdnow import load_cdnow, split
    from experiments.calibration.transactions import from_frame
    from experiments.config import load_scenario
    from experiments.replicates import replicate_seeds

    full = load_cdnow()
    fit_rows, _ = split(full, fraction=fraction, seed=1)
    log = from_frame(fit_rows)
    found = F.fit_log(load_scenario([]), log, seed=seed)
    pre_rev, pre_days = _real(full, log, log.days - PRE, log.days)
    rows = []
    sources = [("CDNOW", _real(full, log, log.days, log.days + WINDOW))]
    sources += [(f"world, replicate {i + 1}", _world(found, log, child))
                for i, child in enumerate(replicate_seeds(seed, replicates))]  # fmt: skip
    for name, (revenue, days) in sources:
        rows.append({"source": name, "customers": log.size,
                     "purchase_days_per_customer": days.mean(),
                     "revenue_per_customer": revenue.mean(),
                     "cuped_purchase_days": reduction(days, pre_days),
                     "cuped_revenue": reduction(revenue, pre_rev)})  # fmt: skip
    return pd.DataFrame(rows)


def main(argv: list[str]) -> None:
    """Print the comparison."""
    try:
        fraction = float(argv[0]) if argv else 1.0
        replicates = int(argv[1]) if len(argv) > 1 else 4
    except ValueError:
        fraction = replicates = -1
    if not (0 < fraction <= 1 and replicates >= 1 and len(argv) <= 2):
        print("error: usage: persistence [FRACTION in (0, 1]] [REPLICATES >= 1]", file=sys.stderr)
        sys.exit(2)
    table = compare(fraction, replicates)
    shown = {"float_format": lambda v: f"{v:.3f}", "index": False}
    print(
        f"CDNOW's customers at the cut; pre-period the {PRE} days before it, window the "
        f"{WINDOW} days after; CUPED = share of the window's variance the pre-period removes"
    )
    print(table.to_string(**shown))
    from experiments.calibration.cdnow import load_cdnow

    print("\nThe same cohort as it ages, and the default and alike stores' customers at "
          "day 0 (100,000 agents, seed 42; 90 days each side)")  # fmt: skip
    full = load_cdnow()
    store, store_year = store_customers(STORE)
    alike, alike_year = store_customers([*STORE, "scenario=alike"])
    stores = pd.DataFrame([{"source": "default store", **store}, {"source": "alike", **alike}])
    print(pd.concat([cdnow_over_time(full), stores], ignore_index=True).to_string(**shown))
    code, day, amount = _cdnow_arrays(full)
    years = [{"source": "RJMetrics 2015 (176 stores; top shares over a lifetime)",
              "second_in_year": 0.32, "third_given_second": 0.5, "top_10pct_x_mean": 6.0,
              "top_1pct_x_mean": 18.0},
             {"source": "CDNOW", **first_year(code, day.astype(float), amount,
                                              float(day.max() + 1))},
             {"source": "default store", **store_year},
             {"source": "alike", **alike_year}]  # fmt: skip
    print("\nA customer's first year (cohorts whose first order is a year or more before the end)")
    years = pd.DataFrame(years).astype({"cohort": "Int64"})
    print(years[["source", *FIRST_YEAR]].to_string(**shown))


if __name__ == "__main__":
    main(sys.argv[1:])
