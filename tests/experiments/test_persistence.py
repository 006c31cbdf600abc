"""CUPED's lever against a real log (experiments.calibration.persistence): the pure parts."""

import subprocess
import sys

import numpy as np
import pandas as pd
import statsmodels.api as sm

from experiments.calibration.persistence import (
    cdnow_over_time,
    first_year,
    per_customer,
    reduction,
    statistics,
    store_customers,
)


def test_reduction_is_the_r_squared_of_the_regression_on_the_pre_period():
    """One arm, one covariate: CUPED's variance share equals OLS R^2 (statsmodels) to 1e-12."""
    g = np.random.default_rng(5)
    rate = g.gamma(0.3, 1.0, 4000)
    x, y = g.poisson(rate), g.poisson(rate) * g.gamma(3.0, 10.0, 4000)
    ols = sm.OLS(y.astype(float), sm.add_constant(x.astype(float))).fit()
    assert abs(reduction(y, x) - ols.rsquared) < 1e-12
    assert abs(reduction(y, g.permutation(x))) < 0.01  # an unrelated covariate removes ~nothing


def test_per_customer_counts_purchase_days_once_and_sums_revenue():
    codes = np.array([0, 0, 0, 2, 2])
    day = np.array([3, 3, 5, 0, 1])
    revenue, days = per_customer(codes, day, np.array([1.0, 2.0, 4.0, 8.0, 16.0]), 4)
    assert revenue.tolist() == [7.0, 0.0, 24.0, 0.0]
    assert days.tolist() == [2.0, 0.0, 2.0, 0.0]


def test_bad_arguments_exit_2_with_one_line():
    for args in (["1.5"], ["0.5", "0"]):
        run = subprocess.run([sys.executable, "-m", "experiments.calibration.persistence", *args],
                             capture_output=True, text=True)  # fmt: skip
        assert run.returncode == 2 and run.stdout == "", args
        assert len(run.stderr.strip().splitlines()) == 1 and "FRACTION" in run.stderr, args


def test_statistics_of_a_small_customer_base():
    days = np.array([0.0, 2.0, 1.0, 0.0])
    stats = statistics(np.zeros(4), np.array([0.0, 1.0, 1.0, 0.0]), np.array([0, 30, 10, 0.0]),
                       days)  # fmt: skip
    assert stats["purchase_days_per_customer"] == 0.75 and stats["share_buying"] == 0.5
    assert stats["days_per_buyer"] == 1.5
    assert abs(stats["variance_to_mean"] - days.var() / 0.75) < 1e-12
    assert abs(stats["cuped_purchase_days"] - np.corrcoef(days, [0, 1, 1, 0])[0, 1] ** 2) < 1e-12
    assert stats["cuped_revenue"] == 0.0  # a constant pre-period explains nothing


def test_cdnow_over_time_counts_each_side_of_the_cut():
    frame = pd.DataFrame({
        "customer_id": [1, 1, 1, 2, 2],
        "date": pd.to_datetime(["1997-01-01", "1997-03-05", "1997-03-05", "1997-04-10",
                                "1997-05-01"]),
        "amount": [5.0, 1.0, 2.0, 7.0, 9.0],
    })  # fmt: skip
    row = cdnow_over_time(frame, cuts=(91,)).iloc[0]  # 1997-04-02: pre from Jan 1, window after
    assert row["source"] == "CDNOW at 1997-04-02" and row["customers"] == 2
    assert row["purchase_days_per_customer"] == 1.0 and row["share_buying"] == 0.5
    assert row["days_per_buyer"] == 2.0


def test_store_customers_are_those_with_an_order_before_day_0():
    """Checked against the forecast module's own count of purchase days."""
    from experiments.calibration.forecast import customer_days
    from experiments.config import load_scenario
    from experiments.run import simulate

    overrides = ["scenario.population.size=5000"]
    stats, _ = store_customers(overrides, seed=3)
    orders = simulate(load_scenario(overrides), 3, events=False).orders
    before = np.unique(orders["user_id"].to_numpy()[orders["time"].to_numpy() < 0])
    assert stats["customers"] == len(before) > 100
    window = customer_days(orders, 5000, 90.0)[before]
    assert stats["purchase_days_per_customer"] == window.mean()
    assert stats["share_buying"] == (window > 0).mean()


def test_first_year_counts_purchase_days_in_the_year_of_the_first():
    # customer 0: days 0, 0 (one purchase day), 100, 200, 400 (after its year);
    # customer 1: one order; customer 2: days 10 and 20; customer 3: first order too late
    user = np.array([0, 0, 0, 0, 0, 1, 2, 2, 3])
    time = np.array([0.2, 0.7, 100.0, 200.0, 400.0, 5.0, 10.0, 20.0, 500.0])
    revenue = np.array([1.0, 1.0, 2.0, 2.0, 50.0, 3.0, 4.0, 4.0, 9.0])
    got = first_year(user, time, revenue, end=520.0)
    assert got["cohort"] == 3  # 3's first order is within 365 days of the end
    assert got["second_in_year"] == 2 / 3 and got["third_given_second"] == 0.5
    assert got["fourth_given_third"] == 0.0
    # first-year revenue 6, 3, 8: mean 17/3; the top tenth and hundredth are one customer
    assert abs(got["top_10pct_x_mean"] - 8 / (17 / 3)) < 1e-12
