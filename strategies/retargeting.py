"""Behavioural retargeting: abandoned-cart reminders by email, SMS and ads.

When a cart is abandoned (``on_abandon``) the agent enters a reminder flow, unless it entered
one less than ``cap_days`` ago (the frequency cap). The flow's steps (channel, delay) go into
day buckets that one daily SimPy process sends at the day's start, one batch per channel. The
log keeps the exact send times; a reminder due on the day of the abandonment goes out with the
next day's batch, as the engine runs each day's visits as one batch at the day's end. A step is
skipped for agents who ordered since, or who are no longer subscribed (email, SMS).

A step leads to a click with chance ``click * exp(-delay / recovery_decay_days)`` (recovery
decays with delay; for ads ``click = 1 - (1 - ad_ctr) ** impressions_per_step``); a shopper who
means to come back for the cart anyway (``funnel.come_back``) and has not yet clicks an email or
SMS with chance ``capture`` instead, and the click replaces that return, so part of what last
click credits to the flow would have been bought anyway. A click is a visit that restores the
abandoned cart (its first product); its checkout then follows the normal funnel (the basket's
value term, the shipping fee) with both steps' chances raised by ``completion_lift`` (a shopper
who came back for the cart is readier to pay), so that about half of such clickers buy at the
default basket (Omnisend: about 1 in 2 clickers convert). Nothing is
forced; the incrementality experiment measures what the flows add against what last click
credits them. Each email or SMS costs its price, ads their CPM, and each message risks an
unsubscribe that grows with the reminders already received (``unsubscribe * (1 + fatigue *
sent_before)``). Orders from restored carts are logged as ``cart_recovered`` (Klaviyo:
abandoned-cart flows make about 4% of revenue).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.config import SOURCES
from sim.errors import ConfigError, check_number, check_probability
from strategies.base import Strategy, StrategyConfig

CHANNELS = {"email": "email", "sms": "sms", "ads": "display"}
"""Reminder channel -> the traffic source of the visit a click brings."""


@dataclass
class RetargetingConfig(StrategyConfig):
    """Parameters of ``conf/strategy/retargeting.yaml``.

    Attributes:
        email_delays: Days after abandonment of each reminder email (1 h and 24 h, the usual
            Klaviyo flow).
        sms_delays: Days after abandonment of each reminder SMS.
        ad_delays: Days after abandonment of each day of dynamic product ads.
        email_click: Click chance of a reminder email at no delay for a shopper not coming back
            anyway (with ``capture``, about Klaviyo 2017's 9.50% of all recipients; tuned).
        sms_click: The same for a reminder SMS (Klaviyo: flows ~10%).
        ad_ctr: Click chance of one retargeting impression (assumption, above display's 0.46%).
        impressions_per_step: Ad impressions shown per ad step.
        recovery_decay_days: e-folding days of the click chance with delay (assumption).
        capture: Click chance of a reminder email or SMS that reaches a shopper who means to
            come back for the cart and has not yet (``funnel.come_back``): the message's link is
            the way back, and the click replaces the return (assumption).
        completion_lift: Relative rise of the checkout and purchase chances on a visit that
            restores the cart (0.3: 0.58 x 1.3 x 0.53 x 1.3 = 0.52 at the default basket;
            Omnisend: about 1 in 2 clickers convert; tuned to it).
        cap_days: Frequency cap: at most one reminder flow per agent in this many days.
        cost_email: Cost per reminder email (as the ESP send cost).
        cost_sms: Cost per reminder SMS (as the SMS send cost).
        ad_cpm: Cost per 1,000 retargeting impressions (assumption, above display's $4.80).
        unsubscribe: Unsubscribe chance of a first reminder (assumption, 0.2-0.5% per flow
            message is typical).
        fatigue: Relative rise of the unsubscribe chance per reminder already received.
    """

    name: str = "retargeting"
    email_delays: list[float] = field(default_factory=lambda: [0.04, 1.0])
    sms_delays: list[float] = field(default_factory=lambda: [0.25])
    ad_delays: list[float] = field(default_factory=lambda: [1.0, 2.0, 3.0])
    email_click: float = 0.07
    sms_click: float = 0.08
    ad_ctr: float = 0.007
    impressions_per_step: float = 3.0
    recovery_decay_days: float = 2.0
    capture: float = 0.5
    completion_lift: float = 0.3
    cap_days: float = 7.0
    cost_email: float = 0.001
    cost_sms: float = 0.01
    ad_cpm: float = 8.0
    unsubscribe: float = 0.003
    fatigue: float = 0.5

    def check(self, key: str) -> None:
        """Raise ConfigError naming the first bad field."""
        super().check(key)
        for field_name in ("email_delays", "sms_delays", "ad_delays"):
            for i, delay in enumerate(getattr(self, field_name)):
                check_number(delay, f"{key}.{field_name}[{i}]", ge=0)
        for field_name in ("email_click", "sms_click", "ad_ctr", "unsubscribe", "capture"):
            check_probability(getattr(self, field_name), f"{key}.{field_name}")
        for field_name in ("impressions_per_step", "cap_days", "cost_email", "cost_sms",
                           "ad_cpm", "fatigue", "completion_lift"):  # fmt: skip
            check_number(getattr(self, field_name), f"{key}.{field_name}", ge=0)
        check_number(self.recovery_decay_days, f"{key}.recovery_decay_days", gt=0)
        if not self.steps():
            raise ConfigError(f"{key}.email_delays", "at least one reminder (email, SMS or ad)")

    def steps(self) -> list[tuple[str, float]]:
        """The flow's (channel, delay) steps."""
        out = [("email", d) for d in self.email_delays] + [("sms", d) for d in self.sms_delays]
        return out + [("ads", d) for d in self.ad_delays]


class Retargeting(Strategy):
    """Abandoned-cart reminder flows over email, SMS and ads (see module docstring)."""

    name = "retargeting"
    config_class = RetargetingConfig
    config: RetargetingConfig

    def setup(self, world) -> None:
        """Allocate the per-agent flow state."""
        super().setup(world)
        n = world.pop.size
        self.last_flow = np.full(n, -np.inf)  # abandonment time of the agent's current flow
        self.sent = np.zeros(n, dtype=np.int32)  # reminders received so far (keyed counter)
        self.cart_product = np.full(n, -1, dtype=np.int64)
        self.click_time = np.full(n, np.nan)  # time of the visit a reminder brought
        self.queue: dict[tuple[int, str], list] = {}  # (day, channel) -> due reminder steps
        world.env.process(self._daily(world))
        self.recovered_orders = 0
        self.recovered_revenue = 0.0
        self.channel = {name: SOURCES.index(src) for name, src in CHANNELS.items()}

    def on_cart(self, world, visits, basket, sel) -> None:
        """Remember each cart's first product (a reminder restores it)."""
        first = np.full(len(visits), -1, dtype=np.int64)
        first[basket.visit[::-1]] = basket.product[::-1]
        self.cart_product[visits.agent[sel]] = first[sel]

    def on_view(self, world, visits, sel) -> None:
        """A visit from a reminder shows the abandoned product first (it goes to the cart)."""
        sel = sel[visits.recovered[sel]]
        product = self.cart_product[visits.agent[sel]]
        sel, product = sel[product >= 0], product[product >= 0]
        visits.views[sel, 0] = product

    def on_checkout(self, world, visits, sel) -> None:
        """Clickers who came back for their cart check out and buy more readily (not surely)."""
        sel = sel[visits.recovered[sel]]
        lift = 1.0 + self.config.completion_lift
        visits.p_checkout[sel] = np.minimum(visits.p_checkout[sel] * lift, 1.0)
        visits.p_purchase[sel] = np.minimum(visits.p_purchase[sel] * lift, 1.0)

    def on_abandon(self, world, carts, sel) -> None:
        """Start a reminder flow for abandoners outside the frequency cap."""
        c = self.config
        sel = self.live_sel(carts.time, sel)
        agent, time = carts.agent[sel], carts.time[sel]
        ok = time - self.last_flow[agent] >= c.cap_days
        agent, time = agent[ok], time[ok]
        if not len(agent):
            return
        self.last_flow[agent] = time
        for channel, delay in c.steps():
            day = np.floor(time + delay)
            for d in np.unique(day):
                rows = day == d
                step = (np.full(rows.sum(), delay), agent[rows], time[rows])
                # Due today: the day's visits are being processed, so send at the next day's
                # start (with the exact send times), its clicks join the next day's visits.
                day_sent = int(max(d, np.floor(world.now) + 1))
                self.queue.setdefault((day_sent, channel), []).append(step)

    def _daily(self, world):
        """Send each day's due reminders, one batch per channel (a SimPy process).

        It runs at the start of each day, before the engine's batch of the day's visits (which
        comes last), so the clicks join that batch.
        """
        while world.now < world.scenario.days:
            day = int(np.floor(world.now))
            for channel in CHANNELS:
                steps = self.queue.pop((day, channel), None)
                if steps:
                    columns = zip(*steps, strict=True)
                    self._send(world, channel, *(np.concatenate(x) for x in columns))
            yield world.env.timeout(1)

    def _send(self, world, channel: str, delay, agent, abandoned) -> None:
        """Send one channel's reminders (skip buyers and the unsubscribed); clicks are visits."""
        c, pop = self.config, world.pop
        ok = (pop.last_order[agent] < abandoned) & (self.last_flow[agent] == abandoned)
        if channel == "email":  # subscribers and past buyers who never unsubscribed
            ok &= world.email_known(agent)
        elif channel == "sms":
            ok &= pop.sms_ok[agent]
        agent, send, delay = agent[ok], (abandoned + delay)[ok], delay[ok]
        if not len(agent):
            return
        k = self.sent[agent].astype(np.int64) * 4
        if channel == "ads":
            click = 1 - (1 - c.ad_ctr) ** c.impressions_per_step
            cost = c.impressions_per_step * c.ad_cpm / 1000
        else:
            click = c.email_click if channel == "email" else c.sms_click
            cost = c.cost_email if channel == "email" else c.cost_sms
        p_click = click * np.exp(-delay / c.recovery_decay_days) * self.responsiveness(world, agent)
        # One who would come back anyway takes the message's link back (not an ad on another site)
        coming = world.coming_back[agent] & (channel != "ads")
        clicked = self.uniform(agent, k) < np.where(coming, c.capture, p_click)
        code = self.channel[channel]
        amounts, day = np.full(len(agent), cost), int(np.floor(send.min()))
        if channel == "ads":  # ad spend (ad_spend, ROAS, CAC), apart from the paid channels'
            world.ledger.book_by_arm("ad_retargeting", amounts, pop.arm[agent], day)
        else:
            self.book(world, channel, amounts, agent, day)
        world.log.add("reminder_send", send, agent, channel=code, value=cost)
        if channel != "ads":
            p_unsub = c.unsubscribe * (1 + c.fatigue * self.sent[agent])
            unsub = self.uniform(agent, k + 1) < p_unsub
            world.unsubscribe(agent[unsub], channel)
            world.log.add("reminder_unsubscribe", send[unsub], agent[unsub], channel=code)
        self.sent[agent] += 1
        who = agent[clicked]
        when = send[clicked] + 0.05 * self.uniform(who, k[clicked] + 2)  # within ~an hour
        when = np.minimum(when, np.floor(send[clicked]) + 0.999)  # on the day it was sent
        self.click_time[who] = when
        world.cancel_return(who)
        world.log.add("reminder_click", when, who, channel=code)
        world.schedule_visits(who, when, CHANNELS[channel], recovered=np.ones(len(who), bool))

    def on_purchase(self, world, carts, sel) -> None:
        """Log orders placed on a visit a reminder brought (``cart_recovered``)."""
        agent = carts.agent[sel]
        hit = sel[self.click_time[agent] == carts.time[sel]]
        world.log.add(
            "cart_recovered", carts.time[hit], carts.agent[hit], value=carts.value[hit],
            order=carts.order_id[hit],
        )  # fmt: skip
        self.recovered_orders += len(hit)
        self.recovered_revenue += float(carts.value[hit].sum())
