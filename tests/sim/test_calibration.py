"""The default store reproduces the published figures of ../shared/BENCHMARKS.md.

Each band is the "default must land in" column; one run of 100,000 agents over 90 days (after
the 90-day warm-up) at a fixed seed. At this size the Monte Carlo error of each KPI is well
inside its band (conversion: about +-0.07 points), so landing in the band is not luck.
"""

import pytest
from sim_helpers import run_world

from sim.aggregate import facts_of, kpi_table

BANDS = {
    "conversion_rate": (0.015, 0.030),
    "add_to_cart_rate": (0.05, 0.10),
    "cart_abandonment_rate": (0.65, 0.76),
    "checkout_completion_rate": (0.40, 0.60),
    "bounce_rate": (0.35, 0.55),
    "email_open_rate": (0.15, 0.30),
    "email_click_rate": (0.01, 0.03),
    "aov": (80.0, 140.0),
    "repeat_purchase_rate": (0.10, 0.25),
    "days_to_second_order": (20.0, 45.0),
    "roas": (2.0, 5.0),
}
CTR_BANDS = {  # WordStream / LocalIQ (search 3.17% to 6.4%), display 0.46%, Superads social
    "paid_search": (0.0317, 0.064),
    "display": (0.003, 0.006),
    "paid_social": (0.009, 0.020),
}


@pytest.fixture(scope="module")
def default_run():
    return run_world("scenario.population.size=100000", events=False)


@pytest.mark.parametrize("kpi", sorted(BANDS))
def test_default_kpi_in_published_band(default_run, kpi):
    value = kpi_table(facts_of(default_run), []).iloc[0][kpi]
    low, high = BANDS[kpi]
    assert low <= value <= high, f"{kpi}={value:.4g} outside [{low}, {high}]"


@pytest.mark.parametrize("channel", sorted(CTR_BANDS))
def test_default_ctr_by_channel_in_published_band(default_run, channel):
    by_channel = kpi_table(facts_of(default_run), ["channel"])
    value = by_channel.loc[channel, "ctr"]
    low, high = CTR_BANDS[channel]
    assert low <= value <= high, f"ctr[{channel}]={value:.4g} outside [{low}, {high}]"


def test_a_customers_first_year_repeat_is_in_the_published_range(default_run):
    """RJMetrics 2015 (BENCHMARKS' repeat row): 32% buy again within a year; 21%-36% by vertical.

    Cohorts of the drawn past whose first order is a year or more before the end (17,112
    customers at 100,000 agents, seed 7: 31.4%, SE 0.35 points). Past a second purchase a third
    is likelier than a second was (published: above 50%; this store: 36.0% here, below it, see
    README): the spread of customers shows; the gap is about 6 SE (SE of the third's share
    0.65 points, ~5,400 customers with a second).
    """
    from experiments.calibration.persistence import first_year

    o = default_run.orders
    got = first_year(o["user_id"].to_numpy(), o["time"].to_numpy(), o["revenue"].to_numpy(),
                     float(default_run.scenario.days))  # fmt: skip
    assert got["cohort"] > 10_000
    assert 0.21 <= got["second_in_year"] <= 0.36, got
    assert got["third_given_second"] > got["second_in_year"], got
