"""``scenario=loyal_core``: a store with a core of heavy buyers, graded on published figures.

One run of 100,000 agents over 90 days at seed 7, as the default store's band test. Its values
beside the default store's are in README ("A store with a core of heavy buyers").
"""

import numpy as np
import pytest
from sim_helpers import run_world
from test_calibration import BANDS, CTR_BANDS

from experiments.calibration.persistence import first_year, reduction
from sim.aggregate import facts_of, kpi_table

SIZE = "scenario.population.size=100000"


@pytest.fixture(scope="module")
def core():
    return run_world(SIZE, "scenario=loyal_core", events=False)


def test_it_keeps_every_published_band_of_the_default_store(core):
    """The same BENCHMARKS bands as the default store (seeds 7, 42, 3 all inside every band)."""
    assert core.scenario.population.newcomers > 0  # the preset keeps its market (README)
    facts = facts_of(core)
    kpis = kpi_table(facts, []).iloc[0]
    out = {k: kpis[k] for k, (lo, hi) in BANDS.items() if not lo <= kpis[k] <= hi}
    ctr = kpi_table(facts, ["channel"])["ctr"]
    out |= {c: ctr[c] for c, (lo, hi) in CTR_BANDS.items() if not lo <= ctr[c] <= hi}
    assert not out, out


def test_loyalty_builds_as_in_real_stores(core):
    """A customer's first year against RJMetrics 2015 (176 stores) and CDNOW (a real log).

    The first repeat lies between RJMetrics' 32% and CDNOW's 45.8% (40.9% here; SE 0.6 points
    at 7,502 customers); a third purchase given a second reaches RJMetrics' "above 50%" within
    Monte Carlo error (51.1%; SE 0.9 points at ~3,070 customers with a second: 3 SE is 2.7
    points) and a fourth given a third is likelier still (CDNOW: 45.8, 60.2, 65.6%). The best
    customers stand further above the mean than the default store's (top 1%: 10.6 against 6.4
    times the mean; CDNOW 14.8). Seeds 42 and 3: 41.4 and 40.6%, 50.2 and 50.7%.
    """
    o = core.orders
    got = first_year(o["user_id"].to_numpy(), o["time"].to_numpy(), o["revenue"].to_numpy(),
                     float(core.scenario.days))  # fmt: skip
    assert got["cohort"] > 7_000
    assert 0.32 <= got["second_in_year"] <= 0.458, got
    assert got["third_given_second"] >= 0.50 - 0.027, got
    assert got["fourth_given_third"] > got["third_given_second"] > got["second_in_year"], got
    assert got["top_1pct_x_mean"] > 8.0, got  # the default store: 6.4 at this seed


def _cuped(results, days: int) -> float:
    """Share of the window visitors' revenue variance a ``days`` pre-period's revenue removes."""
    u, o = results.users, results.orders
    t = o["time"].to_numpy()
    pre = (t < 0) & (t >= -days)
    covariate = np.bincount(o["user_id"].to_numpy()[pre], weights=o["revenue"].to_numpy()[pre],
                            minlength=len(u))  # fmt: skip
    seen = u["exposed"].to_numpy()
    return reduction(u["revenue"].to_numpy(float)[seen], covariate[seen])


def test_a_shoppers_past_predicts_its_revenue(core):
    """CUPED on revenue per visitor: the default store ~1%, the heavy-buyer core 11-24%.

    Measured at seeds 7, 42 and 3: 16.7, 11.3 and 10.8% with the 90-day pre-period (mean 12.9,
    SD 3.3 points: 5% is 2.4 SD below the mean and 1.8 below the lowest), 24.4, 24.2 and 16.6%
    with the year before day 0; the default store 0.8, 1.1 and 0.8% (it has no covariate that
    could remove more than 4%: README). The year removes more than the quarter at every seed
    (paired: same visitors). The covariate is summed from the orders table, which equals the
    ``pre_*`` columns of ``history.pre_days`` (tests/sim/test_history.py).
    """
    default = run_world(SIZE, events=False)
    quarter, year = _cuped(core, 90), _cuped(core, 365)
    assert quarter > 0.05 and year > quarter, (quarter, year)
    assert _cuped(default, 90) < 0.03
