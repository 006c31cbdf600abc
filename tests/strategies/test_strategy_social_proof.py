"""Social proof: the published 0 -> 5 review lift, growth as reviews accumulate, spill-over.

Paired comparisons at one seed, as in test_strategy_effects (``paired_lift``: relative change
and its Monte Carlo standard error from per-user paired differences).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from strategy_helpers import paired_lift, per_user

Z = 3.0  # standard errors from zero for "outside Monte Carlo noise"
ARMS = ("control", "treatment")


def _fixed_reviews(store, count: int):
    """Run the default store with social proof, every product at ``count`` reviews of 4.2.

    Reviews are frozen (no review is written: review_rate 0, no requests), so the shopper sees
    exactly ``count`` reviews everywhere for the whole run.
    """
    spec = {"name": "social_proof", "review_request_lift": 1.0}
    world = store.world(size=100_000, specs=[spec], **{"aftermath.review_rate": 0.0})
    world.catalog.reviews[:] = count
    world.catalog.rating_sum[:] = 4.2 * count
    return world.run()


def test_five_reviews_versus_none_matches_spiegel(store):
    """Orders per session with 5 reviews vs none: +270% (Spiegel; +190% cheap, +380% dear).

    The range checked is +190% to +380%, with the point estimate at least one SE inside.
    """
    five, none = per_user(_fixed_reviews(store, 5)), per_user(_fixed_reviews(store, 0))
    lift, se = paired_lift(five, none, "orders", "sessions")
    assert 1.90 <= lift - se and lift + se <= 3.80, (lift, se)
    assert abs(lift - 2.70) < 3 * se, (lift, se)  # the calibration target itself


def test_effect_grows_as_reviews_accumulate(store):
    """A new store (1 review per product on average): the lift grows from month 1 to month 3.

    Reviews come from purchases (and review requests), so products climb the saturating curve.
    The two months' lifts come from disjoint sessions; the SE of their difference is taken as
    the root sum of squares.
    """
    young = {"catalog.initial_reviews": 1.0}
    with_, _ = store.run(size=300_000, specs=[{"name": "social_proof"}], **young)
    without, _ = store.run(size=300_000, **young)
    early, early_se = paired_lift(per_user(with_, 0, 30), per_user(without, 0, 30),
                                  "orders", "sessions")  # fmt: skip
    late, late_se = paired_lift(per_user(with_, 60, 90), per_user(without, 60, 90),
                                "orders", "sessions")  # fmt: skip
    assert late - early > Z * np.hypot(early_se, late_se), (early, late, early_se, late_se)


def _spillover(store, shared: bool, size: int):
    """Both worlds' results, with the treatment plain (A) and with social proof (B).

    Both arms show the store's reviews (social proof on the control in both worlds: spill-over
    needs control shoppers who read reviews). In B the treatment arm also gets social proof
    with insistent review requests (an incentive: 8 times the review chance), so its shoppers
    buy more and write many more reviews. A young store (2 reviews per product on average)
    makes the new reviews count.
    """
    scenario = {"catalog.initial_reviews": 2.0, "catalog.shared_reviews": shared}
    control = {"name": "social_proof", "arms": ["control"]}
    treatment = {"name": "social_proof", "arms": ["treatment"], "review_request_lift": 8.0}
    run = dict(size=size, arm_names=ARMS, split=0.5, **scenario)
    a, _ = store.run(specs=[control], **run)
    b, _ = store.run(specs=[control, treatment], **run)
    in_control = (a.users["arm"] == "control").to_numpy()
    return a, b, in_control


def test_shared_catalog_leaks_into_the_control_arm(store):
    a, b, in_control = _spillover(store, shared=True, size=500_000)
    ua, ub = per_user(a), per_user(b)
    treated, treated_se = paired_lift(ub[~in_control], ua[~in_control], "orders", "sessions")
    leak, leak_se = paired_lift(ub[in_control], ua[in_control], "orders", "sessions")
    assert treated > Z * treated_se, (treated, treated_se)  # the treatment arm grows...
    assert leak > Z * leak_se, (leak, leak_se)  # ...and so does the control arm


def test_separate_catalogs_do_not_leak(store):
    """Per-arm reviews: the control arm is bit-identical whatever the treatment does."""
    a, b, in_control = _spillover(store, shared=False, size=100_000)
    pd.testing.assert_frame_equal(a.users[in_control], b.users[in_control], check_exact=True)
    assert not a.users[~in_control].equals(b.users[~in_control])
