"""CUPED's lever against a real log (experiments.calibration.persistence): the pure parts."""

import subprocess
import sys

import numpy as np
import statsmodels.api as sm

from experiments.calibration.persistence import per_customer, reduction


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
