"""A view's cart chance above 1 is its expected units, up to ``funnel.max_units``.

``Funnel._cart`` on 100,000 visits of four views each, with fixed cart chances: each view adds
``floor(e)`` units and one more with chance ``e - floor(e)``, ``e = min(p_cart, max_units)``,
plus one with ``second_item`` (0.2) once added. So the mean quantity per view is
``e + 0.2 min(e, 1)``; its SD is under 1, so its SE is under 0.0032 and 4 SE is 0.013.
"""

import numpy as np
import pytest
from sim_helpers import scenario

from sim.hooks import Visits
from sim.world import World

M = 100_000
CHANCES = (0.4, 1.0, 2.5, 7.0)


def _basket(max_units: int):
    sc = scenario("scenario.population.size=1000", f"scenario.funnel.max_units={max_units}")
    world = World(sc, 3, events=False)
    funnel = world.funnel
    funnel._resumed = np.zeros(M, dtype=bool)
    v = Visits(
        agent=np.arange(M) % 1000, time=np.full(M, 1.0), channel=np.zeros(M, np.int8),
        session_no=np.arange(M) // 1000, recovered=np.zeros(M, dtype=bool),
        p_bounce=np.zeros(M), extra_pages=np.ones(M),
    )  # fmt: skip
    v.views = np.full((M, 6), -1)
    v.views[:, : len(CHANCES)] = np.arange(len(CHANCES))
    v.p_cart = np.zeros((M, 6))
    v.p_cart[:, : len(CHANCES)] = CHANCES
    return funnel._cart(v)  # the products were chosen so that a view's product is its column


def _quantities(max_units: int) -> np.ndarray:
    basket = _basket(max_units)
    return np.bincount(basket.product, weights=basket.quantity, minlength=len(CHANCES)) / M


@pytest.mark.parametrize("max_units", [1, 3])
def test_expected_units_follow_the_chance_up_to_the_ceiling(max_units):
    second = 0.2
    expected = [min(p, max_units) + second * min(p, max_units, 1.0) for p in CHANCES]
    np.testing.assert_allclose(_quantities(max_units), expected, atol=0.013)


def test_below_one_the_ceiling_changes_nothing():
    """Where a chance is under 1, max_units 1 and 3 draw the same lines, draw for draw."""
    one, three = _basket(1), _basket(3)
    a, b = one.product == 0, three.product == 0
    np.testing.assert_array_equal(one.visit[a], three.visit[b])
    np.testing.assert_array_equal(one.quantity[a], three.quantity[b])


def test_the_past_draws_the_funnels_units():
    """``sim.history._cart_line``: a carted line's units as the funnel's, for chances above 1.

    One product (no price or taste term: the view's chance is ``base``), 20,000 agents' first
    lines each: mean units ``min(chance, max_units)`` (SD under 0.5, so 4 SE is 0.015).
    """
    from sim import rng
    from sim.history import _cart_line

    key = rng.stream_key(5, "history")
    one = np.zeros(1, np.int64)
    for chance, expected in ((0.6, 1.0), (1.2, 1.2), (2.5, 2.5), (4.0, 3.0)):
        units = [
            _cart_line(key, i, 0, np.ones(1), one, np.ones(1, np.int64), one, chance, 0.0,
                       np.zeros(1), 3.0)[1]
            for i in range(20_000)
        ]  # fmt: skip
        assert np.mean(units) == pytest.approx(expected, abs=0.015), chance
