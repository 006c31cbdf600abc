"""CUPED's lever against a real log: how much a pre-period explains, in CDNOW and in its world.

CUPED removes the share of a metric's variance that its pre-period value explains (one
covariate: the squared correlation, :func:`experiments.stats.metrics.cuped`). That share is a
property of the customers: how persistent each one's buying is from one quarter to the next.
This module measures it on CDNOW's real customers (the orders of the ``PRE`` days before the
cut against those of the ``WINDOW`` days after) and in the world calibrated to the same log
(:mod:`experiments.calibration.forecast`: the log's customers with their real past, run on
from the cut), with the same pre-period: the world's answer graded against the real one.

``python -m experiments.calibration.persistence [FRACTION] [REPLICATES]`` prints the table
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
    print(
        f"CDNOW's customers at the cut; pre-period the {PRE} days before it, window the "
        f"{WINDOW} days after; CUPED = share of the window's variance the pre-period removes"
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main(sys.argv[1:])
