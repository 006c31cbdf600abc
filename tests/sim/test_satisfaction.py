"""Satisfaction: delivery against the promise, product quality, the express lever, churn.

Small worlds at fixed seeds; every survey is answered (``survey_rate`` 1) so the answers are
many. Tolerances are Monte Carlo standard errors written next to each assertion; ``Z`` of them
make a false alarm about once in 16,000 per assertion.
"""

import numpy as np
import pytest
from sim_helpers import run_world, scenario

from sim.errors import ConfigError
from sim.world import World

Z = 4.0
SIZE = "scenario.population.size=40000"
ALL_SURVEYED = "scenario.aftermath.survey_rate=1.0"


def nps_and_se(surveys) -> tuple[float, float]:
    """NPS (points) and its standard error: each answer scores +1, 0 or -1, NPS is their mean."""
    score = (surveys["nps"] >= 9).astype(float) - (surveys["nps"] <= 6).astype(float)
    return 100 * score.mean(), 100 * score.std(ddof=1) / np.sqrt(len(score))


def test_late_deliveries_are_less_satisfying():
    """CSAT of orders delivered after the promise is lower than of orders on time.

    ``late_per_day`` takes 0.5 a day; late parcels are ~1.5 days late on average, so the gap is
    near 0.7 points; the SE of a difference of two means is sqrt(var_1/n_1 + var_2/n_2).
    """
    s = run_world(SIZE, ALL_SURVEYED, events=False).surveys
    late, on_time = s.loc[s["late"], "csat"], s.loc[~s["late"], "csat"]
    assert 0.04 < s["late"].mean() < 0.16  # ~9% of parcels arrive after 7 days (Gamma transit)
    se = np.hypot(late.std() / np.sqrt(len(late)), on_time.std() / np.sqrt(len(on_time)))
    assert on_time.mean() - late.mean() > Z * se, (on_time.mean(), late.mean(), se)


def test_returns_lower_satisfaction():
    """A returned order's CSAT is lower (``satisfaction_drop`` 1 point); SE as above."""
    s = run_world(SIZE, ALL_SURVEYED, events=False).surveys
    ret, kept = s.loc[s["returned"], "csat"], s.loc[~s["returned"], "csat"]
    se = np.hypot(ret.std() / np.sqrt(len(ret)), kept.std() / np.sqrt(len(kept)))
    assert kept.mean() - ret.mean() > Z * se, (kept.mean(), ret.mean(), se)


def test_express_lever_raises_nps_at_its_cost():
    """Shipping every order express raises NPS; the ledger books express_cost per order.

    The two worlds share their random numbers (keyed draws): an order placed in both has the
    same survey draw and answer noise, so the answers are paired by order id and only its
    delivery differs. SE of the mean paired difference of promoter scores (+1, 0, -1) from
    its spread; the lever's gain is ~10 NPS points.
    """
    plain = run_world(SIZE, ALL_SURVEYED, events=False)
    fast = run_world(SIZE, ALL_SURVEYED, "scenario.aftermath.express_share=1.0", events=False)
    both = plain.surveys.merge(fast.surveys, on="order_id", suffixes=("_0", "_1"))
    assert len(both) > 0.8 * len(plain.surveys)  # most orders are common to both worlds

    def score(nps):
        return (nps >= 9).astype(float) - (nps <= 6).astype(float)

    gain = 100 * (score(both["nps_1"]) - score(both["nps_0"]))
    assert gain.mean() > Z * gain.std(ddof=1) / np.sqrt(len(gain)), gain.describe()
    n0, n1 = nps_and_se(plain.surveys)[0], nps_and_se(fast.surveys)[0]
    assert 28 <= n0 <= 62  # published e-commerce NPS (conf/scenario/default.yaml); SE ~2.3
    assert n1 > n0
    assert fast.surveys["express"].all() and not plain.surveys["express"].any()
    assert fast.surveys["late"].mean() < 0.01  # express transit averages 1 day: never 6 late
    # known answer: one express_cost per order placed in the window (booked on its order day)
    cost = fast.costs.loc[fast.costs["kind"] == "express", "amount"].sum()
    window = (fast.orders["time"] >= 0).sum()
    assert cost == pytest.approx(window * fast.scenario.aftermath.express_cost, rel=1e-9)
    assert "express" not in set(plain.costs["kind"])


def test_stars_reveal_product_quality():
    """Reviews' mean stars per product follow the catalog's latent quality.

    Every delivered order is reviewed (``review_rate`` 1); the stars written during the run
    (warm-up and window) are the catalog's rating sums minus the initial ones. With ~20
    reviews a product the noise of a product's mean star is ~0.2 against a quality spread of
    0.35, so the correlation is ~0.85; 0.5 leaves room for noise and for the other terms
    (price, value, delivery).
    """
    world = World(scenario("scenario.population.size=100000", "scenario.aftermath.review_rate=1.0"),
                  7, events=False)  # fmt: skip
    cat = world.catalog
    reviews0, stars0 = cat.reviews[0].copy(), cat.rating_sum[0].copy()
    world.run()
    n, stars = cat.reviews[0] - reviews0, cat.rating_sum[0] - stars0
    rated = n >= 10
    assert rated.sum() > 100
    assert np.corrcoef(cat.quality[rated], stars[rated] / n[rated])[0, 1] > 0.5


def test_unhappy_customers_come_back_less():
    """Worse products (quality 1.5 stars lower) -> lower satisfaction -> fewer return visits.

    Paired per customer (the same agents; customers = an order before the window): sessions in
    the window fall. SE of the mean paired difference from its per-customer spread.
    """
    base = run_world(SIZE, events=False)
    poor = run_world(SIZE, "scenario.aftermath.satisfaction_mean=3.1", events=False)
    customers = (base.users["pre_orders"] > 0).to_numpy() & (
        poor.users["pre_orders"] > 0
    ).to_numpy()
    diff = (base.users["sessions"] - poor.users["sessions"]).to_numpy()[customers]
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    assert diff.mean() > Z * se, (diff.mean(), se)
    # and their survey answers are worse (same SE rule as above)
    (n0, se0), (n1, se1) = nps_and_se(base.surveys), nps_and_se(poor.surveys)
    assert n0 - n1 > Z * np.hypot(se0, se1)


@pytest.mark.parametrize(
    "override, key",
    [
        ("scenario.aftermath.express_share=1.5", "scenario.aftermath.express_share"),
        ("scenario.aftermath.promise_days=0", "scenario.aftermath.promise_days"),
        ("scenario.aftermath.late_per_day=-1", "scenario.aftermath.late_per_day"),
        (
            "scenario.retention.satisfaction_reference=7",
            "scenario.retention.satisfaction_reference",
        ),
    ],
)
def test_bad_satisfaction_config_names_its_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        scenario(override)
