"""Gamification: points per spend, badges and a leaderboard; points redeemed as discounts.

- ``on_purchase``: a buyer earns ``points_per_dollar`` points per dollar paid; badges are point
  levels (``badge_levels``); each arm's top ``leaderboard_share`` of point holders is on the
  leaderboard (recomputed daily).
- ``on_cart``: a member with at least ``min_redeem`` points' worth pays part of the cart with
  points (at most ``max_redeem_share`` of it): the price paid falls, the points go when the
  order is placed, and the discount leaves profit through gross margin.
- ``on_return``: customers (at least one order) come back more often and lapse less:
  visit hazard ``* (1 + r * v * (visit_lift + badge_lift * badges / levels +
  leaderboard_lift * on_board))`` and lapse chance ``* (1 - r * v * churn_reduction)``, with
  ``r`` the agent's gamification responsiveness and ``v = exp(-(t - start_day) /
  novelty_days)`` the novelty that fades (Meyer-Waarden: small effects that erode within 6-9
  months; Marketing Science 2021: the value comes mostly from lower attrition).

**Points are a liability.** A point awarded is a discount owed: when points are awarded, their
expected cost, ``points * point_value * (1 - breakage)``, is booked to the ledger as
``gamification_points_liability`` (``breakage`` is the share of points never redeemed, an
assumption). When points are redeemed, the discount lowers the price paid and so leaves profit
through gross margin; the liability booked for those points is released then (a negative
booking of ``points * point_value * (1 - breakage)``), so no point is counted twice. Over a
window, liability booked minus released is the expected cost of the points still outstanding
at its end (less those outstanding at its start), and profit carries it: a programme that piles
up points no longer looks free until they are spent. ``book_liability: false`` turns the
booking off (profit then counts points only as they are redeemed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.errors import ConfigError, check_number, check_probability
from strategies.base import Strategy, StrategyConfig


@dataclass
class GamificationConfig(StrategyConfig):
    """Parameters of ``conf/strategy/gamification.yaml``.

    Attributes:
        points_per_dollar: Points earned per dollar paid (assumption: 1, a common scheme).
        point_value: Dollars a point is worth when redeemed (assumption: 1% back).
        min_redeem: Smallest balance, in dollars, that can be redeemed (assumption).
        max_redeem_share: Largest share of a cart paid with points (assumption).
        badge_levels: Point balances that earn a badge (assumption).
        leaderboard_share: Share of each arm's point holders shown on the leaderboard.
        visit_lift: Relative return-visit lift of a member at full novelty (assumption).
        badge_lift: Extra lift with every badge (assumption).
        leaderboard_lift: Extra lift on the leaderboard (assumption).
        churn_reduction: Relative cut of the lapse chance at full novelty (assumption, chosen so
            that retention rises mostly through lower attrition, Marketing Science 2021).
        novelty_days: e-folding days of the novelty (Meyer-Waarden: erodes within 6-9 months).
        breakage: Share of awarded points never redeemed (assumption: retail programmes report
            20-30%, Brandmovers; ~30% of points go unredeemed, Bond Brand Loyalty).
        book_liability: Book the expected cost of points at award and release it at
            redemption (``gamification_points_liability``); false = count points only as
            they are redeemed.
        fee_per_1000_per_day: Loyalty platform fee (assumption).
    """

    name: str = "gamification"
    points_per_dollar: float = 1.0
    point_value: float = 0.01
    min_redeem: float = 5.0
    max_redeem_share: float = 0.5
    badge_levels: list[float] = field(default_factory=lambda: [100.0, 300.0, 1000.0])
    leaderboard_share: float = 0.1
    visit_lift: float = 0.3
    badge_lift: float = 0.2
    leaderboard_lift: float = 0.2
    churn_reduction: float = 0.5
    novelty_days: float = 180.0
    breakage: float = 0.3
    book_liability: bool = True
    fee_per_1000_per_day: float = 0.2

    def check(self, key: str) -> None:
        """Raise ConfigError naming the first bad field."""
        super().check(key)
        for field_name in ("points_per_dollar", "min_redeem", "visit_lift", "badge_lift",
                           "leaderboard_lift"):  # fmt: skip
            check_number(getattr(self, field_name), f"{key}.{field_name}", ge=0)
        check_number(self.point_value, f"{key}.point_value", gt=0)
        for field_name in ("max_redeem_share", "leaderboard_share", "churn_reduction",
                           "breakage"):  # fmt: skip
            check_probability(getattr(self, field_name), f"{key}.{field_name}")
        if not isinstance(self.book_liability, bool):
            raise ConfigError(f"{key}.book_liability", "true or false", self.book_liability)
        check_number(self.novelty_days, f"{key}.novelty_days", gt=0)
        levels = list(self.badge_levels)
        for i, level in enumerate(levels):
            check_number(level, f"{key}.badge_levels[{i}]", gt=0)
        if levels != sorted(levels):
            raise ConfigError(f"{key}.badge_levels", "increasing point levels", levels)


class Gamification(Strategy):
    """Points, badges, a leaderboard; novelty-fading loyalty (see module docstring)."""

    name = "gamification"
    config_class = GamificationConfig
    config: GamificationConfig

    def setup(self, world) -> None:
        """Allocate points, pending redemptions and leaderboard flags per agent."""
        super().setup(world)
        n = world.pop.size
        self.points = np.zeros(n)
        self.pending = np.zeros(n)  # dollars of points applied to an open cart
        self.redeem_at = np.full(n, np.nan)  # that cart's visit time (it, not another, spends them)
        self.on_board = np.zeros(n, dtype=bool)
        self.board = np.empty(0, dtype=np.int64)  # ids on the leaderboard
        self.levels = np.asarray(self.config.badge_levels, dtype=float)

    def badges(self, agent: np.ndarray) -> np.ndarray:
        """Number of badges each agent holds."""
        return np.searchsorted(self.levels, self.points[agent], side="right")

    def on_day_start(self, world, day: int, agents: np.ndarray) -> None:
        """Book the fee; redraw each arm's leaderboard from the point balances."""
        super().on_day_start(world, day, agents)
        if day < self.config.start_day:
            return
        self.on_board[self.board] = False
        holders = np.flatnonzero(self.points > 0)  # points accrue only in the strategy's arms
        arm = world.pop.arm[holders]
        board = []
        for a in np.unique(arm):
            mine = holders[arm == a]
            pts = self.points[mine]
            board.append(mine[pts >= np.quantile(pts, 1 - self.config.leaderboard_share)])
        self.board = np.concatenate(board) if board else np.empty(0, dtype=np.int64)
        self.on_board[self.board] = True

    def on_cart(self, world, visits, basket, sel) -> None:
        """Pay part of the cart with points: lower the price paid of the cart's lines."""
        c = self.config
        sel = self.live_sel(visits.time, sel)
        # one redemption per agent and batch: its first cart of the day (visits are in time
        # order), else two carts would spend one balance twice and release it once
        sel = sel[np.unique(visits.agent[sel], return_index=True)[1]]
        agent = visits.agent[sel]
        balance = self.points[agent] * c.point_value
        use = balance >= max(c.min_redeem, 1e-12)
        sel, agent, balance = sel[use], agent[use], balance[use]
        if not len(sel):
            return
        m = len(visits)
        value = np.bincount(basket.visit, weights=basket.price * basket.quantity, minlength=m)
        amount = np.minimum(balance, c.max_redeem_share * value[sel])
        scale = np.ones(m)
        scale[sel] = 1 - amount / np.maximum(value[sel], 1e-12)
        basket.price = basket.price * scale[basket.visit]
        self.pending[agent] = amount
        self.redeem_at[agent] = visits.time[sel]

    def _redeeming(self, carts, sel) -> np.ndarray:
        """The positions of ``sel`` whose cart is the one that applied its agent's points."""
        return sel[carts.time[sel] == self.redeem_at[carts.agent[sel]]]

    def on_abandon(self, world, carts, sel) -> None:
        """An abandoned cart keeps its points."""
        self.pending[carts.agent[self._redeeming(carts, sel)]] = 0.0

    def liability(self, points: np.ndarray) -> np.ndarray:
        """Expected cost of points: ``points * point_value * (1 - breakage)``."""
        return points * self.config.point_value * (1 - self.config.breakage)

    def on_purchase(self, world, carts, sel) -> None:
        """Spend redeemed points (release their liability), award new ones (book it), badges."""
        c = self.config
        day = int(np.floor(world.now))
        agent = carts.agent[self._redeeming(carts, sel)]  # the order that used the points
        spent = self.pending[agent] / c.point_value
        self.points[agent] -= spent
        self.pending[agent] = 0.0
        if c.book_liability and spent.any():
            self.book(world, "points_liability", -self.liability(spent), agent, day)
        sel = self.live_sel(carts.time, sel)
        if not len(sel):
            return
        agent = carts.agent[sel]
        before = self.badges(agent)
        earned = carts.value[sel] * c.points_per_dollar
        np.add.at(self.points, agent, earned)
        if c.book_liability:
            self.book(world, "points_liability", self.liability(earned), agent, day)
        time = carts.time[sel]
        world.log.add("points_award", time, agent, value=earned, order=carts.order_id[sel])
        new = self.badges(agent) > before
        world.log.add("badge_award", time[new], agent[new], quantity=self.badges(agent[new]))

    def on_return(self, world, visits, sel) -> None:
        """Customers return more often and lapse less, while the novelty lasts."""
        c = self.config
        sel = self.live_sel(visits.time, sel)
        sel = sel[world.pop.n_orders[visits.agent[sel]] > 0]
        if not len(sel):
            return
        agent = visits.agent[sel]
        pull = self.responsiveness(world, agent) * np.exp(
            -(visits.time[sel] - c.start_day) / c.novelty_days
        )
        lift = c.visit_lift + c.badge_lift * self.badges(agent) / max(len(self.levels), 1)
        lift = lift + c.leaderboard_lift * self.on_board[agent]
        visits.rate_mult[sel] *= 1 + pull * lift
        visits.p_lapse[sel] *= 1 - np.minimum(pull * c.churn_reduction, 1.0)
