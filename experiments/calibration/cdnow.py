"""CDNOW, the CD retailer's log in the ``lifetimes`` wheel (dev dependency), cut for a holdout.

``python -m experiments.calibration.cdnow FOLDER [CUT] [FRACTION]`` writes FOLDER/cdnow_fit.csv
(customer_id, date, amount: the orders up to CUT, default 1997-09-30, the first 39 weeks) for
``experiments.calibrate transactions=``, and FOLDER/cdnow_actual.csv (date, actual_orders: the
customer-days after CUT). FRACTION < 1 keeps that share of the customers (seeded).
``python -m experiments.calibration.cdnow FOLDER --compare RUN`` prints each forecast's total
error against the actual orders over RUN/forecast.csv's days, and draws RUN/forecast.png with
the actual orders.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

CUT = "1997-09-30"


def load_cdnow() -> pd.DataFrame:
    """The 69,659 orders of CDNOW's 23,570 customers: customer_id, date, amount."""
    try:
        from lifetimes import datasets
    except ImportError:
        sys.exit("error: CDNOW ships in the lifetimes package: pip install -e '.[dev]'")
    path = Path(datasets.__file__).parent / "CDNOW_master.txt"
    frame = pd.read_csv(path, sep=r"\s+", dtype=str)
    frame.columns = ["customer_id", "date", "cds", "amount"]
    frame["date"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    frame["amount"] = frame["amount"].astype(float)
    return frame[["customer_id", "date", "amount"]]


def split(frame: pd.DataFrame, cut: str = CUT, fraction: float = 1.0, seed: int = 0):
    """(orders up to ``cut``, actual customer-days per date after it) of a share of customers."""
    if fraction < 1:
        ids = frame["customer_id"].unique()
        keep = ids[np.random.default_rng(seed).random(len(ids)) < fraction]
        frame = frame[frame["customer_id"].isin(keep)]
    before = frame[frame["date"] <= cut]
    after = frame[(frame["date"] > cut) & frame["customer_id"].isin(before["customer_id"])]
    days = after.drop_duplicates(["customer_id", "date"]).groupby("date").size()
    actual = days.rename("actual_orders").rename_axis("date").reset_index()
    fit = before.assign(date=before["date"].dt.strftime("%Y-%m-%d"))
    return fit, actual.assign(date=actual["date"].dt.strftime("%Y-%m-%d"))


def compare(folder: Path, run: Path) -> str:
    """Total forecast errors against the actual orders, and forecast.png with the actual."""
    from experiments.calibration.logrun import forecast_figure

    table = pd.read_csv(run / "forecast.csv")
    actual = pd.read_csv(folder / "cdnow_actual.csv").set_index("date")["actual_orders"]
    truth = float(actual.reindex(table["date"], fill_value=0).sum())
    lines = [f"actual orders over {len(table)} days: {truth:,.0f}"]
    for col in ("simulated_cumulative_p50", "simulated_cumulative_p05", "simulated_cumulative_p95",
                "bgnbd_orders"):  # fmt: skip
        total = float(table[col].iloc[-1] if "cumulative" in col else table[col].sum())
        lines.append(f"{col:<26}{total:>10,.0f}  {total / truth - 1:+.1%}")
    actual.index = pd.to_datetime(actual.index)
    forecast_figure(table, run / "forecast.png", actual)
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    """Write the split (or compare a run's forecast with it)."""
    folder = Path(argv[0])
    if len(argv) > 2 and argv[1] == "--compare":
        print(compare(folder, Path(argv[2])))
        return
    cut = argv[1] if len(argv) > 1 else CUT
    fraction = float(argv[2]) if len(argv) > 2 else 1.0
    fit, actual = split(load_cdnow(), cut, fraction)
    folder.mkdir(parents=True, exist_ok=True)
    fit.to_csv(folder / "cdnow_fit.csv", index=False)
    actual.to_csv(folder / "cdnow_actual.csv", index=False)
    print(f"{fit['customer_id'].nunique():,} customers, {len(fit):,} orders to {cut}; "
          f"{int(actual['actual_orders'].sum()):,} customer-days after")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
