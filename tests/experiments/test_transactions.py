"""``python -m experiments.calibrate transactions=FILE``: reader, bad input, CDNOW forecast."""

import numpy as np
import pandas as pd
import pytest
from test_calibrate import calibrate_cli

from experiments.calibration import forecast as F
from experiments.calibration.transactions import from_frame, load_transactions
from experiments.config import load_scenario
from sim.errors import ConfigError

ORDERS = pd.DataFrame({"customer_id": ["a", "b", "a", "a"],
                       "date": ["19970101", "1997-01-03", "1997-01-01 10:00", "1997-01-05"],
                       "amount": ["1.5", "2", "3", "0"]})  # fmt: skip


def test_orders_of_a_day_are_one_purchase_day_of_their_total():
    log = from_frame(ORDERS)
    assert list(log.customers) == ["a", "b"] and log.days == 5
    s = log.summary()
    assert s["purchases"].tolist() == [2, 1] and s["amount"].tolist() == [4.5, 2.0]
    assert s["first"].tolist() == [0, 2] and s["last"].tolist() == [4, 2]
    renamed = ORDERS.rename(columns={"amount": "total"})
    assert from_frame(renamed, {"amount": "total"}).amount.sum() == log.amount.sum()


@pytest.mark.parametrize(
    ("column", "values", "says", "row"),
    [
        ("amount", None, "transactions.amount: the file has no column 'amount'", None),
        ("date", ["1997-01-01", "soon", "1997-01-02", "1997-01-02"], "transactions.date", 2),
        ("amount", ["1", "2", "-3", "4"], "transactions.amount: must be a number >= 0", 3),
    ],
)  # fmt: skip
def test_bad_logs_exit_2_with_one_line_naming_the_field_and_write_nothing(
    tmp_path, column, values, says, row
):
    frame = ORDERS.drop(columns=column) if values is None else ORDERS.assign(**{column: values})
    with pytest.raises(ConfigError, match=says):
        from_frame(frame)
    path = tmp_path / "orders.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "out"
    proc = calibrate_cli(f"transactions={path}", "forecast_days=10", f"hydra.run.dir={out}")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], lines
    if row is not None:  # the first bad row, counted from 1
        assert f"row {row} has" in lines[0]
    assert proc.stdout == "" and not out.exists()


def _many(amount="5", dates=("1997-01-02",)):
    """A log of 150 customers (enough to fit), one order each."""
    n = 150
    return pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)],
                         "date": [dates[i % len(dates)] for i in range(n)],
                         "amount": [amount] * n})  # fmt: skip


@pytest.mark.parametrize(
    ("frame", "says"),
    [
        (ORDERS, "transactions.customer_id: must have at least 100 customers"),
        (_many(amount="0"), "transactions.amount: must have an amount > 0"),
    ],
)
def test_too_few_customers_or_no_spend_exit_2_before_anything_runs(tmp_path, frame, says):
    path = tmp_path / "orders.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "out"
    proc = calibrate_cli(f"transactions={path}", f"hydra.run.dir={out}")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], lines
    assert proc.stdout == "" and not out.exists()


def test_mixed_time_zones_and_an_upper_case_suffix_are_read(tmp_path):
    frame = _many(dates=("1997-01-01T10:00:00Z", "1997-01-02T10:00:00+05:00"))
    path = tmp_path / "orders.CSV"
    frame.to_csv(path, index=False)
    log = load_transactions(path)  # the dates as written (pandas refuses mixed zones)
    assert log.size == 150 and str(log.start) == "1997-01-01" and str(log.end) == "1997-01-02"


def test_cdnow_sample_forecast_is_near_the_actual_orders():
    """A tenth of CDNOW's customers: fit on 39 weeks, forecast the next 39, against the truth.

    Tolerance: 3 SD of the difference between the simulated total and the actual one (the
    replicates' variance plus the actual count's own Poisson variance, independent), plus 12%
    for the model: a judgement, not Monte Carlo error (on the full file the simulated total is
    -5.7% off and BG/NBD's -14.3%: see the README).
    """
    cdnow = pytest.importorskip("experiments.calibration.cdnow")
    pytest.importorskip("lifetimes")
    fit_rows, actual = cdnow.split(cdnow.load_cdnow(), fraction=0.1, seed=1)
    log = from_frame(fit_rows)
    # a base with a per-agent spread of cart propensity and newcomers: the fit turns both off (its
    # fitted Gamma over visit rates is the customers' spread; the log's customers are all in the
    # market), so the forecast is the same as from the default
    base = load_scenario(["scenario.population.cart_propensity_shape=1",
                          "scenario.population.newcomers=0.4"])  # fmt: skip
    found = F.fit_log(base, log, seed=3)
    assert found.scenario.population.cart_propensity_shape == 0
    assert found.scenario.population.newcomers == 0
    spend = found.fit.set_index("statistic").loc["amount_per_purchase_day"]
    assert abs(spend["rel_error"]) < 0.05, spend  # three secant steps on price_median
    sim = F.simulate_forecast(found, log, 273, seed=3, replicates=4).sum(axis=1)
    truth = float(actual["actual_orders"].sum())
    tol = 3 * np.sqrt(sim.var(ddof=1) + truth) + 0.12 * truth
    assert abs(np.median(sim) - truth) <= tol, (np.median(sim), truth, tol)
    # It can fail: the default store's repeat buying, with the same state, misses by more
    default = found._replace(reduced=F._repeat_of(load_scenario([])),
                             engine_visit_rate=load_scenario([]).traffic.visit_rate)  # fmt: skip
    other = F.simulate_forecast(default, log, 273, seed=3, replicates=2).sum(axis=1)
    assert abs(np.median(other) - truth) > tol, (np.median(other), truth)
