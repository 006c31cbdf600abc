"""Win-back e-mails: an incentive to lapsed customers, on a calendar (article 001).

"If a returning customer hasn't made a purchase in a while, you can send them a targeted email
with a special offer to re-engage them" (001). Every ``every_days`` days from the launch day,
at the day's start, the strategy e-mails its arms' lapsed customers: agents with at least one
order who are subscribed (``email_ok``) and either lapsed (``pop.lapsed``) or without an order
for ``min_days_since_order`` days, and who got no win-back e-mail in the last ``cooldown_days``.

- A recipient opens with chance ``open_rate * e`` (``e``: the agent's e-mail engagement, mean
  about 1) and clicks given an open with chance ``click_rate / open_rate``, keyed draws on
  (agent, e-mails received); so clicks per e-mail average ``click_rate * e``. A click is a
  visit from the ``email`` source on the day of the send.
- Opening reveals the incentive: ``discount`` off the next order, valid ``valid_days`` from the
  open, whether the agent comes back through the e-mail or later on its own. A holder's
  add-to-cart chance rises by the store's own price response, ``(1 - discount) **
  -price_sensitivity`` (the funnel scales it as ``price ** -price_sensitivity``), and the cart's
  price paid falls by ``discount``: the discount leaves profit through gross margin. The order
  uses the incentive up (``winback_redeem``); an abandoned cart keeps it.
- Each e-mail costs ``cost_per_send`` (``win_back_email``) and unsubscribes its recipient with
  chance ``unsubscribe``.

Events: ``winback_send`` (value = the discount offered), ``winback_open``, ``winback_click``,
``winback_unsubscribe``, ``winback_redeem`` (value = the discount given, with the order id).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.config import SOURCES
from sim.errors import ConfigError, check_number, check_probability
from strategies.base import Strategy, StrategyConfig

SEND_TIME = 0.375
"""Time of day of the sends (9:00, as the engine's newsletters)."""


@dataclass
class WinBackConfig(StrategyConfig):
    """Parameters of ``conf/strategy/win_back.yaml``.

    Attributes:
        every_days: Days between two sends of the calendar (assumption: a weekly sender).
        min_days_since_order: Days without an order that make a customer lapsed, besides the
            engine's ``lapsed`` flag (assumption: 90, the window in which a customer counts as
            active for ``retention_rate``).
        cooldown_days: At most one win-back e-mail per agent in this many days (assumption:
            monthly, about three touches a quarter).
        open_rate: Mean open rate (Omnisend 2020: lapsed-purchaser automations open 22-25%).
        click_rate: Mean click rate of recipients (Omnisend H1 2021: lapsed-purchase
            automations 2.60%; Klaviyo's flow benchmarks put win-back clicks at 4-7%).
        discount: Incentive: share off the next order (assumption: 15%, within the 10-20%
            usually offered).
        valid_days: Days the incentive stays valid after the open (assumption).
        cost_per_send: Cost per e-mail (as ``scenario.email.cost_per_send``).
        unsubscribe: Unsubscribe chance per e-mail (assumption: 0.5%, above newsletters' 0.2%;
            flows report 0.2-0.6%).
        fee_per_1000_per_day: Platform fee (assumption: 0, the ESP's flows are included).
    """

    name: str = "win_back"
    every_days: int = 7
    min_days_since_order: float = 90.0
    cooldown_days: float = 30.0
    open_rate: float = 0.25
    click_rate: float = 0.026
    discount: float = 0.15
    valid_days: float = 14.0
    cost_per_send: float = 0.001
    unsubscribe: float = 0.005
    fee_per_1000_per_day: float = 0.0

    def check(self, key: str) -> None:
        """Raise ConfigError naming the first bad field."""
        super().check(key)
        check_number(self.every_days, f"{key}.every_days", ge=1, integer=True)
        for field_name in ("min_days_since_order", "cooldown_days", "cost_per_send"):
            check_number(getattr(self, field_name), f"{key}.{field_name}", ge=0)
        for field_name in ("open_rate", "click_rate", "unsubscribe"):
            check_probability(getattr(self, field_name), f"{key}.{field_name}")
        if self.click_rate > self.open_rate:
            raise ConfigError(f"{key}.click_rate", "a number <= open_rate (clicks need an open)",
                              self.click_rate)  # fmt: skip
        check_number(self.discount, f"{key}.discount", ge=0, lt=1)
        check_number(self.valid_days, f"{key}.valid_days", gt=0)


class WinBack(Strategy):
    """Win-back e-mails with a discount to lapsed customers (see module docstring)."""

    name = "win_back"
    config_class = WinBackConfig
    config: WinBackConfig

    def setup(self, world) -> None:
        """Allocate the per-agent state: last send, e-mails received, incentive held."""
        super().setup(world)
        n = world.pop.size
        self.last_send = np.full(n, -np.inf)
        self.received = np.zeros(n, dtype=np.int32)  # win-back e-mails so far (keyed counter)
        self.opened_at = np.full(n, -np.inf)  # open time of the incentive held (-inf: none)
        self.pending = np.zeros(n)  # discount (dollars) applied to an open cart
        self.pending_time = np.full(n, np.nan)  # time of the visit that cart belongs to
        self.channel = SOURCES.index("email")
        self.redeemed_orders = 0
        self.redeemed_discount = 0.0

    def eligible(self, world, day: int, agents: np.ndarray) -> np.ndarray:
        """The agents (of ``agents``) a send on ``day`` goes to."""
        c, pop = self.config, world.pop
        agents = agents[(pop.n_orders[agents] > 0) & pop.email_ok[agents]]
        lapsed = pop.lapsed[agents] | (day - pop.last_order[agents] >= c.min_days_since_order)
        rested = day - self.last_send[agents] >= c.cooldown_days
        return agents[lapsed & rested]

    def on_day_start(self, world, day: int, agents: np.ndarray) -> None:
        """Book the fee; on the calendar's days, e-mail the lapsed customers."""
        super().on_day_start(world, day, agents)
        c = self.config
        if day < c.start_day or (day - c.start_day) % c.every_days:
            return
        agent = self.eligible(world, day, agents)
        if len(agent):
            self._send(world, day, agent)

    def _send(self, world, day: int, agent: np.ndarray) -> None:
        """Send, open, click, unsubscribe (keyed draws); clicks join the day's visits."""
        c, pop, log, ch = self.config, world.pop, world.log, self.channel
        time = np.full(len(agent), day + SEND_TIME)
        k = self.received[agent].astype(np.int64) * 4
        engagement = pop.email_engagement[agent]
        p_open = np.clip(c.open_rate * engagement, 0, 1)
        p_click = c.click_rate / c.open_rate if c.open_rate else 0.0  # given an open
        opened = self.uniform(agent, k) < p_open
        clicked = opened & (self.uniform(agent, k + 1) < p_click)
        unsub = self.uniform(agent, k + 2) < c.unsubscribe
        t_open = time + 0.5 * self.uniform(agent, k + 3)  # within half a day
        t_click = t_open + 0.02
        self.book(world, "email", np.full(len(agent), c.cost_per_send), agent, day)
        self.last_send[agent] = day  # cooldowns count whole days between send days
        self.received[agent] += 1
        self.opened_at[agent[opened]] = t_open[opened]
        world.unsubscribe(agent[unsub], "email")
        log.add("winback_send", time, agent, channel=ch, value=c.discount)
        log.add("winback_open", t_open[opened], agent[opened], channel=ch)
        log.add("winback_click", t_click[clicked], agent[clicked], channel=ch)
        log.add("winback_unsubscribe", time[unsub], agent[unsub], channel=ch)
        # Same-day visits join today's batch directly (the engine runs it last today).
        world.queue_visits(agent[clicked], t_click[clicked], np.full(clicked.sum(), ch, np.int8))

    def holders(self, world, visits, sel: np.ndarray) -> np.ndarray:
        """The positions of ``sel`` whose agent holds a valid incentive at the visit's time."""
        age = visits.time[sel] - self.opened_at[visits.agent[sel]]
        return sel[(age >= 0) & (age < self.config.valid_days)]

    def on_view(self, world, visits, sel) -> None:
        """A holder sees lower prices: add-to-cart rises by the store's price response."""
        sel = self.holders(world, visits, sel)
        if len(sel):
            sens = world.pop.price_sensitivity[visits.agent[sel]].astype(float)
            visits.p_cart[sel] *= ((1 - self.config.discount) ** -sens)[:, None]

    def on_cart(self, world, visits, basket, sel) -> None:
        """A holder's cart is paid ``discount`` less."""
        sel = self.holders(world, visits, sel)
        if not len(sel):
            return
        mine = np.zeros(len(visits), dtype=bool)
        mine[sel] = True
        lines = mine[basket.visit]
        before = basket.price[lines] * basket.quantity[lines]
        basket.price[lines] = basket.price[lines] * (1 - self.config.discount)
        given = np.bincount(basket.visit[lines], weights=before * self.config.discount,
                            minlength=len(visits))  # fmt: skip
        self.pending[visits.agent[sel]] = given[sel]
        self.pending_time[visits.agent[sel]] = visits.time[sel]  # the visit whose cart it is

    def on_abandon(self, world, carts, sel) -> None:
        """An abandoned cart keeps the incentive."""
        self.pending[carts.agent[sel]] = 0.0

    def on_purchase(self, world, carts, sel) -> None:
        """The order uses the incentive up."""
        agent = carts.agent[sel]
        # that visit's cart only (an agent may have two visits in one day's batch)
        used = (self.pending[agent] > 0) & (self.pending_time[agent] == carts.time[sel])
        sel, agent = sel[used], agent[used]
        if not len(sel):
            return
        given = self.pending[agent]
        world.log.add("winback_redeem", carts.time[sel], agent, value=given,
                      order=carts.order_id[sel], channel=self.channel)  # fmt: skip
        self.redeemed_orders += len(sel)
        self.redeemed_discount += float(given.sum())
        self.opened_at[agent] = -np.inf
        self.pending[agent] = 0.0
