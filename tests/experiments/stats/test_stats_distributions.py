"""experiments.stats.distributions gives scipy.stats' bits without its per-call checks."""

import numpy as np
import pytest
from scipy import stats

from experiments.stats import distributions as dist

X = np.array([-np.inf, -40, -8.5, -1.96, -1e-300, -0.0, 0.0, 1e-300, 0.3, 1.96, 8.5, 40, np.inf,
              np.nan])  # fmt: skip
Q = np.array([-0.1, 0.0, 1e-300, 1e-12, 0.025, 0.05, 0.5, 0.95, 0.975, 1 - 1e-12, 1.0, 1.1,
              np.nan])  # fmt: skip
DF = np.array([-1.0, 0.0, 0.5, 1.0, 2.5, 30.0, 1e6, np.inf, np.nan])  # bad, small, large, inf


def assert_same_bits(ours, theirs):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    assert np.array_equal(np.isnan(ours), np.isnan(theirs))
    # the bits, so a negative zero or an infinity of the other sign would show
    assert np.array_equal(np.where(np.isnan(ours), 0, ours).view(np.int64),
                          np.where(np.isnan(theirs), 0, theirs).view(np.int64))  # fmt: skip


@pytest.mark.parametrize(("ours", "theirs", "grid"), [
    (dist.norm_sf, stats.norm.sf, X), (dist.norm_cdf, stats.norm.cdf, X),
    (dist.norm_ppf, stats.norm.ppf, Q), (dist.norm_isf, stats.norm.isf, Q),
])  # fmt: skip
def test_the_normal_tails_and_quantiles_are_scipy_stats_bit_for_bit(ours, theirs, grid):
    assert_same_bits(ours(grid), theirs(grid))
    for value in grid:  # a scalar in, a numpy scalar out, as scipy.stats
        assert type(ours(float(value))) is type(theirs(float(value))) is np.float64
        assert_same_bits(ours(float(value)), theirs(float(value)))


@pytest.mark.parametrize(("ours", "theirs", "grid"), [
    (dist.t_sf, stats.t.sf, X), (dist.t_cdf, stats.t.cdf, X), (dist.t_ppf, stats.t.ppf, Q),
])  # fmt: skip
def test_the_t_tails_and_quantiles_are_scipy_stats_bit_for_bit(ours, theirs, grid):
    values, df = np.meshgrid(grid, DF)
    assert_same_bits(ours(values, df), theirs(values, df))
    assert type(ours(0.975, 12.0)) is type(theirs(0.975, 12.0)) is np.float64
    assert_same_bits(ours(0.975, np.array([12.0, 3.0])), theirs(0.975, np.array([12.0, 3.0])))
