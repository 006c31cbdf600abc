"""The KPI sums' fast paths equal the plain pandas / per-session computations they replace."""

import numpy as np
import pandas as pd
import pytest
from sim_helpers import run_world

from sim import aggregate as ag

SCOPES = [["day"], ["arm"], ["segment"], ["channel"], ["day", "channel"], ["day", "segment"],
          ["day", "arm"], ["arm", "segment"]]  # fmt: skip


@pytest.fixture(scope="module")
def facts():
    return ag.facts_of(run_world("scenario.population.size=20000", events=False, seed=4))


@pytest.mark.parametrize("keys", SCOPES)
def test_dense_group_codes_are_pandas_groupby(facts, keys):
    s = facts.session_frame
    codes, index = ag._codes(s, keys)
    g = s.groupby(keys, observed=True, sort=True)
    assert np.array_equal(codes, g.ngroup().to_numpy())
    pd.testing.assert_index_equal(index, g.size().index, exact=True)


@pytest.mark.parametrize("keys", [[], *SCOPES])
def test_session_sums_from_the_cube_are_the_per_session_sums(facts, keys):
    codes, index = ag._codes(facts.session_frame, keys)
    assert facts.session_cube is not None  # the fast path is the one under test
    fast = ag._session_sums(facts, keys)
    for name, col in ag.SESSION_SUMS.items():
        plain = (
            np.bincount(codes, minlength=len(index))
            if col is None
            else np.bincount(codes, weights=facts.session_weights[col], minlength=len(index))
        )
        # the same additions in another order: equal to rounding (1e-12 relative)
        np.testing.assert_allclose(fast[name].to_numpy(), plain, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("keys", [["segment"], ["arm"]])
def test_cohort_sums_are_pandas_sums(facts, keys):
    plain = ag._group(facts.cohort_frame, keys, {c: (c, "sum") for c in ag.COHORT_SUMS})
    pd.testing.assert_frame_equal(ag._user_sums(facts, keys), plain, check_exact=False, rtol=1e-12)
