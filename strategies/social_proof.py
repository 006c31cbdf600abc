"""Social proof: show each product's star rating and review count, and ask buyers for reviews.

At ``on_view`` a viewed product's add-to-cart chance is multiplied by::

    m = (1 + well_reviewed_lift) * (1 + r * L * s(n) / s(5) * q) / (1 + L * s(N) / s(5))
    s(n) = 1 - exp(-n / saturation_reviews)          # saturates: most of it in 5-10 reviews
    L = lift_at_5_reviews * (price / price_reference) ** price_exponent
    q = clip((rating - rating_floor) / (rating_reference - rating_floor), 0, max_quality)

with ``n`` and ``rating`` the product's reviews in the shopper's review group (one group when the
arms share one catalog, ``scenario.catalog.shared_reviews``; else one per arm), ``r`` the
shopper's social-proof responsiveness (mean 1) and ``N = well_reviewed_count``. So:

- for a mean shopper, 5 good reviews make a product ``1 + L`` times as likely to go to the cart
  as none, more so for dear items (Spiegel 2017: +270%; +190% cheap, +380% expensive, hence
  ``price_exponent``). Carts of cheap items are often near certain already, and a fuller cart
  checks out a little less often, so orders rise less: the default 9.5 makes orders per session
  rise by about 270% when every product goes from 0 to 5 reviews (4.3 did where shoppers were
  alike: the readiest shoppers' carts are near certain without reviews);
- a well-reviewed product (``N`` reviews at the reference rating) sells ``well_reviewed_lift``
  better than in the plain store, which shows no reviews, whatever its price; one with few or
  poor reviews sells worse. This sets the store-wide effect without shifting sales to dear items.

Reviews come from real purchases: after each order the buyer is asked for a review, which
raises the review chance by ``review_request_lift`` at ``cost_per_request``. More sales -> more
reviews -> more sales: the effect feeds on itself and grows over time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.errors import check_number
from strategies.base import Strategy, StrategyConfig


@dataclass
class SocialProofConfig(StrategyConfig):
    """Parameters of ``conf/strategy/social_proof.yaml``.

    Attributes:
        lift_at_5_reviews: Add-to-cart lift of 5 reviews over none at the reference price,
            calibrated so that orders rise +270% (Spiegel Research Center 2017).
        price_exponent: Growth of that lift with price (Spiegel: +190% cheap, +380% expensive).
        saturation_reviews: e-folding review count of the effect (Spiegel: nearly all of it
            within 5-10 reviews; 1 - exp(-10 / 2.5) = 98%).
        well_reviewed_lift: Add-to-cart lift of a well-reviewed product over the plain store
            (assumption; sets the store-wide effect).
        well_reviewed_count: Review count of a well-reviewed product (Spiegel: the effect is
            nearly complete by 10).
        rating_floor: Mean rating at or below which reviews add nothing (assumption).
        rating_reference: Rating at which the lift is as stated (the catalog's mean, 4.2).
        max_quality: Cap on the rating factor q.
        review_request_lift: Multiplier on a buyer's review chance from the post-purchase
            review request (assumption).
        cost_per_request: Cost of one review request email (as the ESP send cost).
        fee_per_1000_per_day: Reviews widget fee (assumption).
    """

    name: str = "social_proof"
    lift_at_5_reviews: float = 9.5
    price_exponent: float = 0.3
    saturation_reviews: float = 2.5
    well_reviewed_lift: float = 0.30
    well_reviewed_count: float = 10.0
    rating_floor: float = 3.0
    rating_reference: float = 4.2
    max_quality: float = 1.5
    review_request_lift: float = 2.0
    cost_per_request: float = 0.001
    fee_per_1000_per_day: float = 0.05

    def check(self, key: str) -> None:
        """Raise ConfigError naming the first bad field."""
        super().check(key)
        for field_name in ("lift_at_5_reviews", "price_exponent", "max_quality",
                           "review_request_lift", "cost_per_request", "rating_floor"):  # fmt: skip
            check_number(getattr(self, field_name), f"{key}.{field_name}", ge=0)
        check_number(self.saturation_reviews, f"{key}.saturation_reviews", gt=0)
        check_number(self.well_reviewed_lift, f"{key}.well_reviewed_lift", gt=-1)
        check_number(self.well_reviewed_count, f"{key}.well_reviewed_count", ge=0)
        check_number(self.rating_reference, f"{key}.rating_reference", gt=self.rating_floor)


class SocialProof(Strategy):
    """Ratings and review counts shown at product views; review requests after orders."""

    name = "social_proof"
    config_class = SocialProofConfig
    config: SocialProofConfig

    def multiplier(self, world, agent: np.ndarray, product: np.ndarray) -> np.ndarray:
        """The add-to-cart multiplier ``m`` of each (agent, product) pair (same shapes)."""
        c, cat = self.config, world.catalog
        group = world.review_group[world.pop.arm[agent]]
        n = cat.reviews[group, product]
        rating = cat.rating(group, product)
        s5 = -np.expm1(-5.0 / c.saturation_reviews)
        s = -np.expm1(-n / c.saturation_reviews) / s5
        s_well = -np.expm1(-c.well_reviewed_count / c.saturation_reviews) / s5
        q = np.clip((rating - c.rating_floor) / (c.rating_reference - c.rating_floor), 0, None)
        q = np.minimum(q, c.max_quality)
        ref = world.scenario.funnel.price_reference
        lift = c.lift_at_5_reviews * (cat.price[product] / ref) ** c.price_exponent
        resp = self.responsiveness(world, agent)
        return (1 + c.well_reviewed_lift) * (1 + resp * lift * s * q) / (1 + lift * s_well)

    def on_view(self, world, visits, sel) -> None:
        """Scale each viewed product's add-to-cart chance by its social proof."""
        sel = self.live_sel(visits.time, sel)
        if not len(sel):
            return
        views = visits.views[sel]
        valid = views >= 0
        row, col = np.nonzero(valid)
        agent = visits.agent[sel][row]
        m = self.multiplier(world, agent, views[row, col])
        visits.p_cart[sel[row], col] *= m

    def on_purchase(self, world, carts, sel) -> None:
        """Ask each buyer for a review: a higher review chance, at a cost per request."""
        c = self.config
        sel = self.live_sel(carts.time, sel)
        if not len(sel):
            return
        carts.p_review[sel] = np.minimum(carts.p_review[sel] * c.review_request_lift, 1.0)
        day = int(np.floor(carts.time[sel].min()))
        self.book(world, "review_request", np.full(len(sel), c.cost_per_request),
                  carts.agent[sel], day)  # fmt: skip
