"""The catalog: products with category, price, margin, rating, review counts and complements."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim import rng
from sim.config import CatalogConfig


@dataclass
class Catalog:
    """Products as arrays.

    ``quality`` is each product's latent quality in stars (what a buyer's satisfaction reveals:
    reviews' stars come from satisfaction, so their mean tends to it); ``price_vs_category`` is
    log(price / its category's median price), the value-for-money term of satisfaction.

    ``reviews[g, p]`` and ``rating_sum[g, p]`` are kept per review group ``g``: one group when
    the arms share one catalog's reviews (``shared_reviews``), else one group per arm, so social
    proof can spill over between arms or not.
    """

    category: np.ndarray
    price: np.ndarray
    margin: np.ndarray
    quality: np.ndarray  # latent quality in stars (1-5 scale)
    price_vs_category: np.ndarray  # log(price / median price of the product's category)
    complements: np.ndarray  # [products, k] product ids
    reviews: np.ndarray  # [groups, products] review counts
    rating_sum: np.ndarray  # [groups, products] sum of star ratings
    by_category: list[np.ndarray]  # product ids of each category

    @property
    def size(self) -> int:
        """Number of products."""
        return len(self.price)

    def rating(self, group: np.ndarray | int, product: np.ndarray) -> np.ndarray:
        """Mean star rating shown for ``product`` in review group ``group``."""
        n = self.reviews[group, product]
        return np.where(n > 0, self.rating_sum[group, product] / np.maximum(n, 1), 0.0)


def build_catalog(cfg: CatalogConfig, seed: int, groups: int) -> Catalog:
    """Draw a catalog; complements are other products of a neighbouring category."""
    g = rng.generator(seed, "catalog")
    n, c = cfg.n_products, cfg.n_categories
    category = np.arange(n) % c
    price = np.round(cfg.price_median * np.exp(cfg.price_sigma * g.standard_normal(n)), 2)
    price = price * cfg.price_scale
    # The margin share at list prices; unit costs stay where they are when prices move, so a
    # price scale s makes the margin share 1 - (1 - margin) / s (+10%: a 40% margin -> 45.5%,
    # a quarter more margin per item; below the unit cost it is negative).
    at_list = np.clip(cfg.margin + 0.08 * g.standard_normal(n), 0.1, 0.8)
    margin = at_list if cfg.price_scale == 1 else 1.0 - (1.0 - at_list) / cfg.price_scale
    by_category = [np.flatnonzero(category == k) for k in range(c)]
    # Complements: cheaper items of the next category (mat -> blocks and strap).
    comp = np.empty((n, cfg.complements), dtype=np.int64)
    for k in range(c):
        pool = by_category[(k + 1) % c]
        cheap = pool[np.argsort(price[pool])][: max(cfg.complements * 3, 1)]
        for p in by_category[k]:
            comp[p] = g.choice(cheap, cfg.complements, replace=len(cheap) < cfg.complements)
    reviews0 = g.poisson(g.gamma(1.0, cfg.initial_reviews, n)).astype(np.float64)
    quality = np.clip(cfg.rating_mean + 0.35 * g.standard_normal(n), 2.5, 4.9)
    reviews = np.tile(reviews0, (groups, 1))
    median = np.array([np.median(price[p]) for p in by_category])
    return Catalog(
        category=category,
        price=price,
        margin=margin,
        quality=quality,
        price_vs_category=np.log(price / median[category]),
        complements=comp,
        reviews=reviews,
        rating_sum=reviews * quality,
        by_category=by_category,
    )
