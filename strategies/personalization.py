"""Personalization: rank products by each visitor's estimated affinity (with a cold start).

The store's estimate of a visitor's tastes comes from history and zero-party data, so its
*knowledge* of the visitor is::

    k = 1 - (1 - cold_start) * (1 - zero_party_weight * quiz) * exp(-orders / orders_to_learn)

(``quiz`` = the visitor answered the preference quiz). At ``on_view`` each product view slot is
replaced by a ranked recommendation with chance ``recommended_share * k * r`` (``r`` the
visitor's personalization responsiveness, mean 1): a product of the visitor's favourite
category, shown in a "for you" slot. Its add-to-cart chance follows the funnel's own taste and
price terms (``sqrt(affinity * categories)``, ``(price / reference) ** -sensitivity``), times
``1 + relevance_lift``; so the gain comes from a better match, and new visitors (small ``k``)
gain little. Emails are personalised too: click chance ``* (1 + email_click_lift * k * r)``.
The platform costs ``fee_per_1000_per_day``. Defaults are set so that revenue rises by about
12%, inside McKinsey's +5% to +15% (BENCHMARKS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.errors import check_number, check_probability
from strategies.base import Strategy, StrategyConfig

_SLOTS = 16  # keyed-draw slots per session (two per view slot)


@dataclass
class PersonalizationConfig(StrategyConfig):
    """Parameters of ``conf/strategy/personalization.yaml``.

    Attributes:
        recommended_share: Share of view slots showing a recommendation when the estimate is
            perfect (assumption; Salesforce: recommendations touch a minority of visits).
        relevance_lift: Extra add-to-cart lift of a recommended slot (assumption).
        cold_start: Knowledge of a visitor without history or quiz (assumption: session data
            only, weak).
        zero_party_weight: Knowledge a quiz answer adds (zero-party data, 002; assumption).
        orders_to_learn: e-folding number of orders for the estimate to learn (assumption).
        email_click_lift: Relative email click lift at full knowledge (assumption).
        fee_per_1000_per_day: Platform fee per 1,000 agents per day (assumption: ~$5k a quarter
            for a 100k-people market).
    """

    name: str = "personalization"
    recommended_share: float = 0.24
    relevance_lift: float = 0.3
    cold_start: float = 0.15
    zero_party_weight: float = 0.6
    orders_to_learn: float = 1.5
    email_click_lift: float = 0.3
    fee_per_1000_per_day: float = 0.5

    def check(self, key: str) -> None:
        """Raise ConfigError naming the first bad field."""
        super().check(key)
        for field_name in ("recommended_share", "cold_start", "zero_party_weight"):
            check_probability(getattr(self, field_name), f"{key}.{field_name}")
        check_number(self.relevance_lift, f"{key}.relevance_lift", ge=0)
        check_number(self.orders_to_learn, f"{key}.orders_to_learn", gt=0)
        check_number(self.email_click_lift, f"{key}.email_click_lift", ge=0)


class Personalization(Strategy):
    """Affinity-ranked recommendations in view slots, personalised emails (module docstring)."""

    name = "personalization"
    config_class = PersonalizationConfig
    config: PersonalizationConfig

    def setup(self, world) -> None:
        """Take the keyed stream; index the catalog's products by category (padded)."""
        super().setup(world)
        by_cat = world.catalog.by_category
        self.per_cat = np.array([len(p) for p in by_cat])
        self.prod_by_cat = np.stack([np.resize(p, self.per_cat.max()) for p in by_cat])

    def knowledge(self, world, agent: np.ndarray) -> np.ndarray:
        """How well the store knows each agent's tastes, in [0, 1]."""
        c, pop = self.config, world.pop
        unknown = (1 - c.cold_start) * (1 - c.zero_party_weight * pop.zero_party[agent])
        return 1 - unknown * np.exp(-pop.n_orders[agent] / c.orders_to_learn)

    def on_view(self, world, visits, sel) -> None:
        """Replace some view slots by products of the visitor's favourite category."""
        c, pop, cat = self.config, world.pop, world.catalog
        sel = self.live_sel(visits.time, sel)
        sel = sel[~visits.recovered[sel]]  # a recovered cart keeps its own product
        if not len(sel):
            return
        agent = visits.agent[sel]
        views = visits.views[sel]
        p_rec = c.recommended_share * self.knowledge(world, agent)
        p_rec *= self.responsiveness(world, agent)
        slots = np.arange(views.shape[1])
        k = visits.session_no[sel].astype(np.int64)[:, None] * _SLOTS + 2 * slots[None, :]
        agents2d = np.broadcast_to(agent[:, None], k.shape)
        rec = (views >= 0) & (self.uniform(agents2d, k) < p_rec[:, None])
        row, col = np.nonzero(rec)
        if not len(row):
            return
        a = agent[row]
        aff = pop.affinity[a]
        top = np.argmax(aff, axis=1)
        pool = self.prod_by_cat[top]
        pick = np.floor(self.uniform(a, k[row, col] + 1) * self.per_cat[top])
        new = pool[np.arange(len(row)), pick.astype(np.int64)]
        old = views[row, col]
        old_taste = aff[np.arange(len(row)), cat.category[old]].astype(float)
        new_taste = aff[np.arange(len(row)), top].astype(float)
        sens = pop.price_sensitivity[a].astype(float)
        ratio = np.sqrt(new_taste / np.maximum(old_taste, 1e-12))
        ratio *= (cat.price[new] / cat.price[old]) ** (-sens) * (1 + c.relevance_lift)
        pos = sel[row]
        visits.views[pos, col] = new
        visits.p_cart[pos, col] *= np.where(old_taste > 0, ratio, 1.0)

    def on_message(self, world, messages, sel) -> None:
        """Personalised emails: a higher click chance for agents the store knows."""
        c = self.config
        if messages.kind != "email":
            return
        sel = self.live_sel(messages.time, sel)
        if not len(sel):
            return
        agent = messages.agent[sel]
        lift = c.email_click_lift * self.knowledge(world, agent) * self.responsiveness(world, agent)
        messages.p_click[sel] *= 1 + lift
