"""Bundles: offer complements of what is in the cart at a discount (the yoga mat + blocks).

At ``on_cart`` each cart's first line is the anchor; its catalog complements are offered at
``discount``. A shopper takes complement ``j`` (rank 0 = the strongest) with chance::

    p = take_rate * r * rank_decay**j * (1 + discount_elasticity * s * discount)

where ``r`` is the shopper's bundles responsiveness and ``s`` its price sensitivity (both mean
about 1), capped at ``max_take``. Taken complements are added to the basket at the discounted
price, so items per order and AOV rise and margin per item falls. There is no trustworthy
published take rate (BENCHMARKS.md): every default here is an assumption meant for sweeps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.errors import check_number, check_probability
from strategies.base import Strategy, StrategyConfig

BUNDLE_TAG = 5
"""``Basket.tag`` of the lines a bundle added."""


@dataclass
class BundlesConfig(StrategyConfig):
    """Parameters of ``conf/strategy/bundles.yaml`` (all assumptions: no published figure).

    Attributes:
        discount: Price cut on the bundled complements, in [0, 1).
        take_rate: Chance the strongest complement is taken at no discount (mean shopper).
        rank_decay: Complementarity of the j-th complement relative to the first: decay**j.
        discount_elasticity: Relative rise of the take rate per unit discount and sensitivity.
        max_take: Cap on the chance of taking one complement.
    """

    name: str = "bundles"
    discount: float = 0.10
    take_rate: float = 0.10
    rank_decay: float = 0.6
    discount_elasticity: float = 5.0
    max_take: float = 0.9

    def check(self, key: str) -> None:
        """Raise ConfigError naming the first bad field."""
        super().check(key)
        check_number(self.discount, f"{key}.discount", ge=0, lt=1)
        check_probability(self.take_rate, f"{key}.take_rate")
        check_probability(self.rank_decay, f"{key}.rank_decay")
        check_number(self.discount_elasticity, f"{key}.discount_elasticity", ge=0)
        check_probability(self.max_take, f"{key}.max_take")


class Bundles(Strategy):
    """Complements of the cart's first item, offered at a discount (see module docstring)."""

    name = "bundles"
    config_class = BundlesConfig
    config: BundlesConfig

    def on_cart(self, world, visits, basket, sel) -> None:
        """Offer each selected cart the complements of its first line; add the ones taken."""
        c = self.config
        sel = self.live_sel(visits.time, sel)
        if not len(sel):
            return
        first = np.full(len(visits), -1, dtype=np.int64)
        first[basket.visit[::-1]] = basket.product[::-1]
        anchor = first[sel]
        agent = visits.agent[sel]
        comps = world.catalog.complements[anchor]  # [s, k]
        k = comps.shape[1]
        strength = c.rank_decay ** np.arange(k)
        sens = world.pop.price_sensitivity[agent].astype(float)
        resp = self.responsiveness(world, agent)
        p = c.take_rate * resp[:, None] * strength[None, :]
        p = np.minimum(p * (1 + c.discount_elasticity * sens * c.discount)[:, None], c.max_take)
        slot = visits.session_no[sel].astype(np.int64)[:, None] * 8 + np.arange(k)[None, :]
        taken = self.uniform(np.broadcast_to(agent[:, None], slot.shape), slot) < p
        row, col = np.nonzero(taken)
        product = comps[row, col]
        list_price = world.catalog.price[product]
        basket.extend(
            visit=sel[row],
            product=product,
            quantity=np.ones(len(row)),
            list_price=list_price,
            price=list_price * (1 - c.discount),
            tag=np.full(len(row), BUNDLE_TAG),
        )
        world.log.add(
            "bundle_offer", visits.time[sel], agent, product=anchor,
            quantity=taken.sum(axis=1), value=c.discount,
        )  # fmt: skip
