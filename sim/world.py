"""The world: SimPy keeps time in days; mechanisms are processes acting on cohorts of agents.

Processes (each wakes once a day, or once per cohort for follow-ups):

- ``paid_<channel>``: budget -> impressions (CPM) -> reach over a fixed audience (saturating)
  -> awareness and clicks (CTR) -> visits at exact times inside the day;
- ``own_visits``: every agent has a next own-visit time drawn from its own hazard (organic or
  direct; an unaware agent's first one is its discovery by organic search), thinned by the
  weekday cycle; an aware searcher in the search audience may click the store's own search ad
  instead of its organic result (``brand_capture``: the same visit, now a paid click);
- ``email`` and ``sms``: campaigns on a calendar: sends, opens, clicks -> visits, unsubscribes
  (more often with more frequent sends: fatigue);
- ``welcome``: the welcome series of new email subscribers (sign-ups come from the funnel: a
  first visit's pop-up and checkout);
- ``delivery``: the day's deliveries -> satisfaction (delivery time against the promise,
  product quality, value for money, returns) -> survey, review and return, which feed back into
  the catalog's ratings and the customer's return visits and churn;
- ``visits``: last each day, every visit the mechanisms queued that day (each at its exact
  time) goes through the funnel as one batch.

No mechanism loops over agents; the count of SimPy events grows with mechanisms x days.
"""

from __future__ import annotations

import datetime as dt
import pickle
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import simpy

from sim import calendar, rng
from sim.catalog import build_catalog
from sim.config import PAID_CHANNELS, SOURCES, Scenario
from sim.eventlog import EventLog, Table
from sim.funnel import Funnel, carts_of, occurrence
from sim.history import draw_history, forget_rate, leave_times
from sim.hooks import Basket, Carts, Hooks, Ledger, Messages
from sim.kernels import CumulativeSearch, add_at, preload
from sim.population import NEVER, build_population
from sim.tables import MESSAGE_CODE

_DAY_KEY = 1 << 20  # keyed counters use day + _DAY_KEY so warm-up days stay non-negative
_ORDER_SHIFT = np.int64(1 << 24)
_BURST_KEY = 1 << 32  # campaign numbers of a promotion's extra newsletters (apart from the rest)
_VIEW_LEAD = 8  # days before the window from which World(touches=True) records impressions
_NPS_NOISE = 1.0  # sd of the 0-10 answer around 2.5 (satisfaction - 1) (assumption)
CH = {name: i for i, name in enumerate(SOURCES)}


@dataclass
class Results:
    """What a run returns: the tables every layer relies on, plus the engine's tallies.

    ``users`` is DESIGN.md's per-user table; ``events`` its event log as a ``pyarrow.Table``
    (``events.to_pandas()`` for a DataFrame; None when the log is off). ``sessions``,
    ``orders``, ``messages``, ``impressions``, ``surveys``, ``costs`` and ``returns`` are the
    tallies the KPIs are computed from; ``extra`` holds per-agent arrays the KPIs need
    (zero-party data, expected ad reach). See :func:`sim.tables.build_results` for columns.
    A lean run (``World.run(lean=True)``, A/B replicates) has only ``users``; the other tables
    and ``extra`` are None.
    """

    scenario: Scenario
    seed: int
    arm_names: list[str]
    users: pd.DataFrame
    # the event log, or a Future of it while it is assembled in a thread: read ``events``
    event_log: pa.Table | Future | None
    sessions: pd.DataFrame
    orders: pd.DataFrame
    messages: pd.DataFrame
    impressions: pd.DataFrame
    surveys: pd.DataFrame
    costs: pd.DataFrame
    extra: dict
    returns: pd.DataFrame | None = None
    views: pd.DataFrame | None = None  # per-person ad impressions (World(touches=True) only)

    @property
    def events(self) -> pa.Table | None:
        """The event log (``pyarrow.Table``), None when it is off.

        :func:`sim.tables.build_results` assembles it in a thread while the caller goes on
        (the KPIs need not wait for it); the first read waits for it and raises its errors.
        """
        if isinstance(self.event_log, Future):
            self.event_log = self.event_log.result()
        return self.event_log

    def __getstate__(self) -> dict:
        """Pickled with the event log itself (a Future cannot cross processes)."""
        self.events  # noqa: B018 (waits for the log)
        return self.__dict__


class World:
    """One simulated store. Build it, then :meth:`run` it once.

    Args:
        scenario: A validated :class:`sim.config.Scenario`.
        seed: The run's seed; every draw is keyed on it.
        strategies: Hook objects (strategies), each applying to the arms in its ``arms``.
        arm: Arm index of every agent (default: everyone in arm 0).
        arm_names: Names of the arms, indexed by ``arm``.
        events: Whether to record the event log.
        off: Channels switched off from day 0 (a whole-market holdout): paid channels buy
            nothing (and branded search is not captured), ``email`` sends no campaign or welcome
            e-mail, ``sms`` no campaign.
        budget_multipliers: Per paid channel, its budget's multiplier on each window day.
        touches: Also draw every paid impression per person (``Results.views``: user, time,
            channel) from a week before the window on, for multi-touch attribution; keyed apart
            from every other draw, so the world is the same with or without it.
    """

    def __init__(
        self,
        scenario: Scenario,
        seed: int,
        strategies: Sequence[Hooks] = (),
        arm: np.ndarray | None = None,
        arm_names: Sequence[str] = ("control",),
        events: bool = True,
        off: Sequence[str] = (),
        budget_multipliers: dict[str, np.ndarray] | None = None,
        touches: bool = False,
    ) -> None:
        self.scenario = scenario
        self.seed = int(seed)
        self._stream_keys: dict[str, np.uint64] = {}
        self._audiences: dict[str, np.ndarray] = {}  # paid channels' audience masks (audience)
        self.off = frozenset(off)
        self.budget_multipliers = dict(budget_multipliers or {})
        self.arm_names = list(arm_names)
        self.env = simpy.Environment(initial_time=-scenario.warmup_days)
        preload()  # the compiled kernels load beside the population's draws
        self.pop = build_population(scenario, self.seed)
        if arm is not None:
            self.pop.arm[:] = arm
        groups = 1 if scenario.catalog.shared_reviews else len(self.arm_names)
        own = scenario.catalog.seed  # a store's own catalog, whatever the run's seed
        self.catalog = build_catalog(scenario.catalog, self.seed if own is None else own, groups)
        self.review_group = (
            np.zeros(len(self.arm_names), np.int64) if groups == 1 else np.arange(groups)
        )
        self.strategies = list(strategies)
        self._arm_masks: dict[int, np.ndarray] = {}
        self._arm_agents: dict[int, np.ndarray] = {}
        self.ledger = Ledger()
        self.log = EventLog(events)
        self._tables()
        views = Table(user_id=np.int64, time=np.float64, channel=np.int8)
        self.t_views = views if touches else None
        n = self.pop.size
        self.bounce_by_source = np.array([scenario.funnel.bounce[s] for s in SOURCES])
        self.rate_mult = np.ones(n)
        self.weekday = np.asarray(scenario.traffic.weekday, dtype=float)
        # Own visits are drawn at the calendar's highest rate and thinned to each day's: the
        # candidate hazard is the agent's rate x visit_ceiling (1 without holidays or season)
        self.calendar = calendar.build(scenario)
        self._traffic_max = float(self.calendar.traffic.max())
        self.visit_ceiling = self._traffic_max / float(self.weekday.max())
        self.funnel = Funnel(self)
        self._user_counters(n)
        self.audience_share: dict = {}
        self.window_impressions = dict.fromkeys(PAID_CHANNELS, 0.0)
        self.deliveries: dict[int, list] = {}
        self.welcomes: dict[int, list] = {}
        self._return_rate = np.asarray(scenario.returns.rate_by_category, dtype=float)
        # Each agent's last satisfaction as multipliers on its visit hazard and lapse chance
        # (kept per agent so the hot paths gather instead of recomputing; see _feel).
        self.sat_visits = np.ones(n, dtype=np.float32)
        self.sat_lapse = np.ones(n, dtype=np.float32)
        self.email_left = np.zeros(n, dtype=bool)  # unsubscribed from e-mail (never mailed again)
        self.saved_at = np.full(n, -np.inf)  # when the agent's last cart was left (saved cart)
        self.saved_product = np.full(n, -1, dtype=np.int64)  # its first product
        # Abandoners who mean to come back for the saved cart, and when (funnel.come_back)
        self.coming_back = np.zeros(n, dtype=bool)
        self.return_at = np.full(n, np.inf)
        self.returns_due: dict[int, list[np.ndarray]] = {}  # day -> agents filed to return then
        self.come_back = self.scenario.funnel.come_back > 0
        self.resume_at = np.full(n, -np.inf)  # planned time of a visit a promotion moved forward
        # Each agent's candidate own-visit hazard, set at its last visit (reschedule) and kept
        # through thinned candidates, so thinning at any ceiling gives the same visit process
        self.candidate_rate = np.ones(n)
        self._queued: list[tuple] = []
        self._procs: list | None = None  # the daily processes, once started
        self._progress: Callable[[int], None] | None = None
        self._pending: list[tuple] | None = None  # a branch's pending events (branch())
        self._day0: bytes | None = None  # a warmed world's pickled copy (branch())
        # branches this store will still give (None: any); the last one frees its bytes
        self.branches: int | None = None
        self._schedule_first_visits()
        draw_history(self)  # a past of orders; reschedules its customers' first visits
        # Aware prospects forget the store at a constant hazard (memoryless: one draw from now)
        self.forget = forget_rate(scenario)
        self.leaving = scenario.retention.leave_per_year > 0  # customers leave the market
        self.entering = scenario.population.newcomers > 0  # and newcomers enter it
        self.forget_at = np.full(n, np.inf)
        if self.forget > 0:
            ids = np.flatnonzero(self._prospect(np.arange(n)))
            gap = rng.exponential(self.keyed("forget"), ids, 0)
            self.forget_at[ids] = -scenario.warmup_days + gap / self.forget
        for s in self.strategies:
            s.setup(self)

    # -- set-up -----------------------------------------------------------------------------
    def _tables(self) -> None:
        f8, i8, i4, i1, b = np.float64, np.int64, np.int32, np.int8, np.bool_
        self.t_sessions = Table(
            session_id=i8, user_id=i8, time=f8, channel=i1, pages=i4, views=i4, carted=b,
            checkout=b, purchased=b, revenue=f8, margin=f8, items=i4, shipping=f8, cart_value=f8,
            recovered=b,
        )  # fmt: skip
        self.t_orders = Table(
            order_id=i8, user_id=i8, time=f8, revenue=f8, margin=f8, items=i4, channel=i1,
            discount=f8,
        )  # fmt: skip
        self.t_messages = Table(day=i4, arm=i1, segment=i1, kind=i1, count=i8)
        self.t_impressions = Table(day=i4, channel=i1, arm=i1, impressions=f8, reached=f8)
        self.t_surveys = Table(time=f8, user_id=i8, nps=i1, csat=i1, order_id=i8, late=b,
                               returned=b, express=b)  # fmt: skip
        # Orders the engine placed (not the drawn past): fee paid, express, first line's
        # category, chance of a return (after on_purchase)
        self.t_shipments = Table(order_id=i8, shipping=f8, express=b, category=i1, p_return=f8)
        self.t_returns = Table(time=f8, user_id=i8, order_id=i8, refund=f8, margin_lost=f8,
                               cost=f8, category=i1)  # fmt: skip

    def _user_counters(self, n: int) -> None:
        self.u = {
            name: np.zeros(n, dtype=dtype)
            for name, dtype in [
                ("sessions", np.int32), ("orders", np.int32), ("items", np.int32),
                ("revenue", np.float64), ("margin", np.float64), ("pre_sessions", np.int32),
                ("pre_orders", np.int32), ("pre_revenue", np.float64),
            ]
        }  # fmt: skip
        self.u["first_exposure"] = np.full(n, np.nan)
        self.u["first_order"] = np.full(n, np.nan)
        self.u["last_order"] = np.full(n, np.nan)

    def _schedule_first_visits(self) -> None:
        pop, t0 = self.pop, -self.scenario.warmup_days
        ids = np.arange(pop.size)
        gap = rng.exponential(self.keyed("first_visit"), ids, 0)
        rate = np.where(pop.aware, pop.visit_rate, self.scenario.traffic.discovery_rate)
        self.candidate_rate = rate * self.visit_ceiling
        # a newcomer's discovery clock starts when it enters the market (memoryless: exact)
        pop.next_visit = np.maximum(t0, pop.enter_at) + gap / self.candidate_rate

    # -- helpers for mechanisms and strategies ---------------------------------------------
    @property
    def now(self) -> float:
        """Current simulated time in days (day 0 = ``scenario.start_date``)."""
        return self.env.now

    def date(self, day: int) -> dt.date:
        """Calendar date of a day number."""
        return self.scenario.date_of(day)

    def _entered(self, agent: np.ndarray, time) -> np.ndarray:
        """Which agents are in the market by ``time`` (``population.newcomers`` enter later)."""
        return self.pop.enter_at[agent] <= time

    def _prospect(self, agent: np.ndarray) -> np.ndarray:
        """Aware, no order yet, on no list: who can forget the store."""
        pop = self.pop
        return (
            pop.aware[agent]
            & (pop.n_orders[agent] == 0)
            & ~pop.email_ok[agent]
            & ~pop.sms_ok[agent]
        )

    def _aware(self, agent: np.ndarray, time, counter) -> None:
        """Make agents aware; those newly so get a time to forget the store (keyed draws)."""
        if self.forget > 0:
            fresh = ~self.pop.aware[agent]
            new = agent[fresh]
            gap = rng.exponential(
                self.keyed("forget"), new, np.broadcast_to(counter, fresh.shape)[fresh]
            )
            self.forget_at[new] = np.broadcast_to(time, fresh.shape)[fresh] + gap / self.forget
        self.pop.aware[agent] = True

    def _forget(self, day: int) -> None:
        """Daily step: prospects whose time has come forget the store.

        Their next own visit is a discovery again (organic search, at ``discovery_rate``).
        """
        due = np.flatnonzero(self.forget_at < day + 1)
        if not len(due):
            return
        when = np.maximum(self.forget_at[due], day)
        self.forget_at[due] = np.inf
        keep = self._prospect(due)
        due, when = due[keep], when[keep]
        self.pop.aware[due] = False
        discovery = self.scenario.traffic.discovery_rate * self.visit_ceiling
        self.candidate_rate[due] = max(discovery, 1e-12)  # as reschedule's floor
        gap = rng.exponential(self.keyed("forget_next"), due, day + _DAY_KEY)
        self.pop.next_visit[due] = when + gap / self.candidate_rate[due]

    def unsubscribe(self, agent: np.ndarray, kind: str) -> None:
        """Agents leave the ``email`` or ``sms`` list (e-mail: for good, see email_known)."""
        if kind == "email":
            self.pop.email_ok[agent] = False
            self.email_left[agent] = True
        else:
            self.pop.sms_ok[agent] = False

    def plan_returns(self, agent: np.ndarray, time: np.ndarray) -> None:
        """The agents mean to come back for their saved carts at ``time`` (a later day).

        Filed under the day it falls on, or the next day the daily step will look at (a
        reminder's visit from yesterday, processed today, can plan a return for today).
        """
        self.coming_back[agent] = True
        self.return_at[agent] = time
        day = np.maximum(np.floor(time), np.floor(self.env.now) + 1).astype(np.int64)
        for d in np.unique(day).tolist():
            self.returns_due.setdefault(d, []).append(agent[day == d])

    def _returning(self, day: int) -> np.ndarray:
        """The planned returns due on ``day`` (sorted; cancelled or moved ones dropped)."""
        parts = self.returns_due.pop(day, None)
        if parts is None:
            return np.empty(0, np.int64)
        agent = np.unique(np.concatenate(parts))
        return agent[self.return_at[agent] < day + 1]

    def cancel_return(self, agent: np.ndarray) -> None:
        """The agents came back for their saved carts (their planned return is used up)."""
        self.coming_back[agent] = False
        self.return_at[agent] = np.inf

    def email_known(self, agent: np.ndarray) -> np.ndarray:
        """Whether the store may e-mail each agent about its own cart.

        On the list, or a past buyer (the address given at checkout) who never unsubscribed.
        """
        pop = self.pop
        return pop.email_ok[agent] | ((pop.n_orders[agent] > 0) & ~self.email_left[agent])

    def start_leaving(self) -> None:
        """Set every customer's time of leaving the market from its first order (a past's)."""
        first = self.u["first_order"]
        customers = np.flatnonzero(np.isfinite(first))
        self.pop.gone_at[customers] = self.leave_at(customers, first[customers])

    def leave_at(self, agent: np.ndarray, first: np.ndarray) -> np.ndarray:
        """When customers whose first order was at ``first`` leave the market for good.

        The first exit after the first order of a keyed Poisson process of exits
        (``retention.leave_per_year``) from the start of the past: an exponential wait, the
        same in every world and in the past (:func:`sim.history.leave_times`).
        """
        hazard = self.scenario.retention.leave_per_year / 365.0
        if hazard <= 0:
            return np.full(len(agent), np.inf)
        origin = -float(self.scenario.warmup_days + self.scenario.history.days)
        agent = np.asarray(agent, dtype=np.int64)
        return leave_times(self.keyed("leave"), agent, origin, np.asarray(first, float), hazard)

    def weekday_factor(self, day: int) -> float:
        """Traffic multiplier of a day's weekday."""
        return float(self.weekday[self.date(day).weekday()])

    def keyed(self, name: str) -> np.uint64:
        """The keyed-draw stream of a mechanism or strategy (see :mod:`sim.rng`; kept per name)."""
        key = self._stream_keys.get(name)
        if key is None:
            key = self._stream_keys[name] = rng.stream_key(self.seed, name)
        return key

    def _overrides(self, strategy: Hooks, hook: str) -> bool:
        """Whether a strategy defines ``hook`` (the base class's no-op needs no call)."""
        return getattr(type(strategy), hook) is not getattr(Hooks, hook)

    def dispatch(self, hook: str, cohort) -> None:
        """Call ``hook`` of each strategy on the cohort's agents of its arms."""
        for s in self.strategies:
            if not self._overrides(s, hook):
                continue
            sel = self._select(s, cohort.agent)
            if len(sel):
                getattr(s, hook)(self, cohort, sel)

    def dispatch_basket(self, visits, basket: Basket) -> None:
        """Call on_cart of each strategy on the visits (of its arms) that have a cart."""
        has_cart = np.zeros(len(visits), dtype=bool)
        has_cart[basket.visit] = True
        for s in self.strategies:
            if not self._overrides(s, "on_cart"):
                continue
            sel = self._select(s, visits.agent, has_cart)
            if len(sel):
                s.on_cart(self, visits, basket, sel)

    def _members(self, strategy: Hooks) -> np.ndarray:
        """Per-agent mask of the strategy's arms (arms are fixed, so computed once)."""
        mask = self._arm_masks.get(id(strategy))
        if mask is None:
            mask = np.isin(self.pop.arm, strategy.arms)
            self._arm_masks[id(strategy)] = mask
        return mask

    def _select(self, strategy: Hooks, agent: np.ndarray, extra=None) -> np.ndarray:
        mask = self._members(strategy)[agent]
        if extra is not None:
            mask &= extra
        return np.flatnonzero(mask)

    def satisfaction_factor(self, agent: np.ndarray, k: float, sat=None) -> np.ndarray:
        """``exp(k (s - reference))`` of each agent's last satisfaction ``s``; 1 before one.

        ``retention.satisfaction_reference`` is the satisfaction at which nothing changes; the
        visit hazard uses ``k = satisfaction_visits`` (happy customers come back sooner), the
        lapse chance ``k = -satisfaction_lapse`` (unhappy ones lapse more).
        """
        sat = self.pop.satisfaction[agent] if sat is None else sat
        if not k:
            return np.ones(len(agent))
        ref = self.scenario.retention.satisfaction_reference
        return np.where(np.isnan(sat), 1.0, np.exp(k * (sat - ref)))

    def reschedule(self, agent: np.ndarray, time: np.ndarray, gap: np.ndarray) -> None:
        """Set each agent's next own visit at ``time + gap / hazard`` (gap ~ Exp(1))."""
        pop, ret = self.pop, self.scenario.retention
        if self.calendar.pulls:  # after a visit a promotion moved forward: from the planned time
            time = np.maximum(time, self.resume_at[agent])
            self.resume_at[agent] = -np.inf
        since = time - pop.last_order[agent]
        boost = 1.0 + ret.post_purchase_boost * np.exp(-since / ret.boost_days)
        rate = pop.visit_rate[agent] * boost * self.rate_mult[agent]
        if ret.cart_boost > 0:  # a shopper who just left a cart comes back soon for it
            rate = rate * (
                1 + ret.cart_boost * np.exp(-(time - self.saved_at[agent]) / ret.cart_boost_days)
            )
        rate *= self.sat_visits[agent]
        rate = np.where(pop.lapsed[agent], rate * ret.lapsed_rate, rate) * self.visit_ceiling
        self.candidate_rate[agent] = np.maximum(rate, 1e-12)
        pop.next_visit[agent] = time + gap / self.candidate_rate[agent]

    def schedule_visits(self, agent, time, channel: str, recovered=None) -> None:
        """Schedule visits at future exact times (follow-ups: reminders, ads); one process."""
        agent, time = np.asarray(agent), np.asarray(time, dtype=float)
        if len(agent) == 0:
            return
        for day in np.unique(np.floor(time)):
            rows = np.floor(time) == day
            rec = None if recovered is None else np.asarray(recovered)[rows]
            self.env.process(self._later(day, agent[rows], time[rows], CH[channel], rec))

    def _later(self, day, agent, time, channel, recovered):
        yield self.env.timeout(max(day - self.env.now, 0))
        code = np.full(len(agent), channel, dtype=np.int8)
        self.queue_visits(agent, time, code, recovered)

    def queue_visits(self, agent, time, channel, recovered=None) -> None:
        """Add visits to the day's batch; the last process of each day runs them together."""
        if len(agent):
            rec = np.zeros(len(agent), bool) if recovered is None else np.asarray(recovered, bool)
            self._queued.append((agent, time, channel, rec))

    def _run_queued(self, day: int) -> None:
        """Daily step, last of the day: every visit of the day through the funnel, by time.

        Planned returns due today join last, so a reminder that brought the shopper back first
        (:meth:`cancel_return`) takes their place.

        One batch a day keeps the SimPy and numpy overhead per day fixed whatever the number
        of mechanisms; shared state (reviews, stock of points) is updated between days.
        """
        due = self._returning(day) if self.come_back else ()
        if len(due):  # planned returns for saved carts (funnel.come_back): direct visits
            self.queue_visits(due, self.return_at[due], np.full(len(due), CH["direct"], np.int8))
            self.return_at[due] = np.inf
        if not self._queued:
            return
        agent, time, channel, rec = (np.concatenate(c) for c in zip(*self._queued, strict=True))
        self._queued = []
        if self.leaving or self.entering:  # nor clicks, returns for carts... once gone or before
            here = np.ones(len(agent), dtype=bool)
            if self.leaving:
                here &= time < self.pop.gone_at[agent]
            if self.entering:
                here &= self._entered(agent, time)
            agent, time, channel, rec = agent[here], time[here], channel[here], rec[here]
        order = np.argsort(time, kind="stable")
        self.funnel.run(agent[order], time[order], channel[order], rec[order])

    # -- recording --------------------------------------------------------------------------
    def record_visits(self, v, b: Basket, bounced, pages, has_cart, began, bought, value, quiz):
        """Book a processed batch: user counters, tallies, events, orders and follow-ups."""
        pop, log, u = self.pop, self.log, self.u
        m = len(v)
        cost = self.catalog.price[b.product] * (1 - self.catalog.margin[b.product])
        line_margin = (b.price - cost) * b.quantity
        margin = np.bincount(b.visit, weights=line_margin, minlength=m)
        items = np.bincount(b.visit, weights=b.quantity, minlength=m).astype(np.int32)
        discount = np.bincount(b.visit, weights=(b.list_price - b.price) * b.quantity, minlength=m)
        sid = self.funnel.session_ids(v)
        window = v.time >= 0
        pre = ~window & (v.time >= -self.scenario.history.pre_days)  # the pre_* columns' days
        a = v.agent
        add_at(u["pre_sessions"], a[pre], 1)
        add_at(u["pre_orders"], a[pre & bought], 1)
        add_at(u["pre_revenue"], a[pre & bought], value[pre & bought])
        w = window
        add_at(u["sessions"], a[w], 1)
        wb = w & bought
        add_at(u["orders"], a[wb], 1)
        add_at(u["items"], a[wb], items[wb])
        add_at(u["revenue"], a[wb], value[wb])
        add_at(u["margin"], a[wb], margin[wb])
        u["first_exposure"][a[w]] = np.fmin(u["first_exposure"][a[w]], np.floor(v.time[w]))
        pop.zero_party[a[quiz]] = True
        self._aware(a, v.time, pop.n_sessions[a].astype(np.int64) + 1)
        order_no = pop.n_orders[a].astype(np.int64)
        order_no[bought] += occurrence(a[bought])  # two orders of one agent in one batch
        order_id = np.where(bought, a.astype(np.int64) * _ORDER_SHIFT + order_no, -1)
        add_at(pop.n_orders, a[bought], 1)
        pop.last_order[a[bought]] = v.time[bought]
        u["first_order"][a[bought]] = np.fmin(u["first_order"][a[bought]], v.time[bought])
        if self.leaving:  # a first order starts the customer's clock of leaving the market
            new = np.unique(a[bought][np.isinf(pop.gone_at[a[bought]])])
            pop.gone_at[new] = self.leave_at(new, u["first_order"][new])
        u["last_order"][a[bought]] = v.time[bought]
        fee = np.where(bought, v.shipping, 0.0)
        if w.any():
            self.t_sessions.add(
                session_id=sid[w], user_id=a[w], time=v.time[w], channel=v.channel[w],
                pages=pages[w], views=(v.views[w] >= 0).sum(axis=1), carted=has_cart[w],
                checkout=began[w], purchased=bought[w], revenue=np.where(bought, value, 0.0)[w],
                margin=np.where(bought, margin, 0.0)[w], items=np.where(bought, items, 0)[w],
                shipping=fee[w], cart_value=value[w], recovered=v.recovered[w],
            )  # fmt: skip
        if bought.any():
            self.t_orders.add(
                order_id=order_id[bought], user_id=a[bought], time=v.time[bought],
                revenue=value[bought], margin=margin[bought], items=items[bought],
                channel=v.channel[bought], discount=discount[bought],
            )  # fmt: skip
        if log.enabled:
            self._log_visits(
                v, b, sid, pages, began, bought, has_cart, value, items, order_id, quiz
            )
            ship = bought & (fee > 0)
            log.add("shipping_fee", v.time[ship], a[ship], session=sid[ship], value=fee[ship],
                    channel=v.channel[ship], order=order_id[ship])  # fmt: skip
        rows = np.flatnonzero(bought)
        if len(rows):
            self._purchase(v, b, carts_of(v, value, items, rows, order_id[rows]), margin, fee)
        rows = np.flatnonzero(has_cart & ~bought)
        if len(rows):
            self.dispatch("on_abandon", carts_of(v, value, items, rows, np.full(len(rows), -1)))

    def _log_visits(self, v, b, sid, pages, began, bought, has_cart, value, items, order_id, quiz):
        log, a, t, ch = self.log, v.agent, v.time, v.channel
        log.add("session_start", t, a, session=sid, channel=ch)
        rep = np.repeat(np.arange(len(v)), pages)
        log.add("page_view", t[rep], a[rep], session=sid[rep], channel=ch[rep])
        vi, vk = np.nonzero(v.views >= 0)
        log.add("view_item", t[vi], a[vi], session=sid[vi], product=v.views[vi, vk], channel=ch[vi])
        bv = b.visit
        log.add(
            "add_to_cart", t[bv], a[bv], session=sid[bv], product=b.product, quantity=b.quantity,
            value=b.price * b.quantity, channel=ch[bv],
        )  # fmt: skip
        for name, mask in (("begin_checkout", began), ("purchase", bought)):
            log.add(
                name, t[mask], a[mask], session=sid[mask], quantity=items[mask],
                value=value[mask], channel=ch[mask], order=order_id[mask],
            )  # fmt: skip
        ab = has_cart & ~bought
        log.add("cart_abandon", t[ab], a[ab], session=sid[ab], value=value[ab], channel=ch[ab])
        log.add("quiz_response", t[quiz], a[quiz], session=sid[quiz], channel=ch[quiz])

    # -- follow-ups: shipping, delivery, satisfaction, surveys, reviews, returns -------------
    def _purchase(self, v, b: Basket, carts: Carts, margin: np.ndarray, fee: np.ndarray) -> None:
        """Book a batch's orders: shipping and express costs, return chance, on_purchase, delivery.

        ``carts.p_return`` is set before on_purchase (strategies may lower it): the mean of
        ``returns.rate_by_category`` over the order's lines, weighted by the lines' value.
        """
        cat, am, ship = self.catalog, self.scenario.aftermath, self.scenario.shipping
        rows, n = carts.visit, len(carts)
        order = np.full(len(v), -1)
        order[rows] = np.arange(n)
        line = order[b.visit]  # the order of each basket line (-1: not bought)
        mine = np.flatnonzero(line >= 0)
        line, item = line[mine], b.product[mine]
        product = np.empty(n, dtype=np.int64)
        product[line[::-1]] = item[::-1]  # the first line's product of each order
        line_value = b.price[mine] * b.quantity[mine]
        rate = self._return_rate[cat.category[item]]
        weighted = np.bincount(line, weights=line_value * rate, minlength=n)
        list_value = np.bincount(line, weights=b.list_price[mine] * b.quantity[mine], minlength=n)
        carts.p_return = np.where(carts.value > 0, weighted / np.maximum(carts.value, 1e-12), 0.0)
        carts.p_review = np.full(n, am.review_rate)
        express = np.zeros(n, dtype=bool)
        if am.express_share > 0:  # keyed: the same orders go express whatever else changes
            u = rng.uniform(self.keyed("delivery"), carts.agent, carts.order_id * 4 + 2)
            express = u < am.express_share
        day, arm = int(np.floor(self.env.now)), self.pop.arm[carts.agent]
        self.ledger.book_by_arm("shipping", np.full(len(rows), ship.cost_per_order), arm, day)
        # The fees shoppers pay are income: booked negative, so profit and replays count them.
        self.ledger.book_by_arm("shipping_fee", -fee[rows], arm, day)
        if express.any():
            self.ledger.book_by_arm("express", np.full(int(express.sum()), am.express_cost),
                                    arm[express], day)  # fmt: skip
        self.dispatch("on_purchase", carts)
        self.t_shipments.add(order_id=carts.order_id, shipping=fee[rows], express=express,
                             category=cat.category[product], p_return=carts.p_return)  # fmt: skip
        discount = 1 - carts.value / np.maximum(list_value, 1e-12)
        self._deliveries(carts, product, express, margin[rows], discount)

    def _deliveries(self, carts, product, express, margin, discount) -> None:
        """Put orders into the delivery bucket of their delivery day.

        Delivery takes a day's handling plus a transit time ``mean x Gamma(2, 1/2)`` (the sum of
        two keyed exponentials: fewer very late parcels than one exponential), with the mean
        ``delivery_days``, or ``express_days`` for express orders. The same draws serve both,
        so the express lever moves each order's delivery and nothing else.
        """
        am, key = self.scenario.aftermath, self.keyed("delivery")
        k = carts.order_id[:, None] * 4 + np.arange(2)[None, :]
        u = rng.uniform(key, np.broadcast_to(carts.agent[:, None], k.shape), k)
        gamma2 = -0.5 * np.log1p(-u).sum(axis=1)  # two keyed exponentials, mean 1 together
        delay = np.where(express, am.express_days, am.delivery_days) * gamma2
        # From the day after the one being processed on: that day's bucket is still open.
        first = np.floor(self.env.now) + 1
        when = np.maximum(carts.time + 1.0 + delay, first)
        day = np.floor(when).astype(np.int64)
        order = np.argsort(day, kind="stable")
        day = day[order]
        columns = [c[order] for c in (carts.agent, when, carts.order_id, product, carts.p_review,
                                      carts.p_return, when - carts.time, carts.value, margin,
                                      discount, express)]  # fmt: skip
        starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
        ends = np.r_[starts[1:], len(day)]
        for d, a, b in zip(day[starts].tolist(), starts.tolist(), ends.tolist(), strict=True):
            self.deliveries.setdefault(d, []).append(tuple(c[a:b] for c in columns))

    def satisfaction(self, product, days, discount, returned, noise) -> np.ndarray:
        """Satisfaction (1-5 scale, unclipped) of delivered orders.

        ``satisfaction_mean`` + ``quality_weight`` (quality - rating_mean) + ``discount_weight``
        x discount share - ``price_weight`` x log(price / category median) + ``early_per_day``
        x days early - ``late_per_day`` x days late (against ``promise_days``) -
        ``satisfaction_drop`` if returned + ``satisfaction_sd`` x noise (standard normal). The
        product is the order's first line (the one a review rates).
        """
        am, cat = self.scenario.aftermath, self.catalog
        early = np.maximum(am.promise_days - days, 0.0)
        late = np.maximum(days - am.promise_days, 0.0)
        return (
            am.satisfaction_mean
            + am.quality_weight * (cat.quality[product] - self.scenario.catalog.rating_mean)
            + am.discount_weight * discount
            - am.price_weight * cat.price_vs_category[product]
            + am.early_per_day * early
            - am.late_per_day * late
            - self.scenario.returns.satisfaction_drop * returned
            + am.satisfaction_sd * noise
        )

    def _deliver(self, day: int) -> None:
        """Daily step: the day's deliveries -> returns -> satisfaction -> surveys and reviews.

        Answers: CSAT and a review's stars = satisfaction rounded to 1-5; NPS = 2.5 (s - 1)
        + noise, rounded to 0-10 (so s >= 4.4 tends to a promoter, s < 3.6 to a detractor).
        The agent's last satisfaction (``pop.satisfaction``) then sets its lapse chance and
        visit hazard; its pending next visit is moved by the change of hazard.
        """
        chunks = self.deliveries.pop(day, None)
        if not chunks:
            return
        cols = [np.concatenate(c) for c in zip(*chunks, strict=True)]
        agent, time, order_id, product, p_review, p_return, days = cols[:7]
        value, margin, discount, express = cols[7:]
        # One keyed draw per order for uniforms 16 o + j: j = 0, 1 satisfaction noise and 2, 3
        # the NPS answer's (Box-Muller pairs, as rng.normal), 4 review, 5 survey, 6 return.
        k = order_id.astype(np.int64)[:, None] * 16 + np.arange(7)[None, :]
        u = rng.uniform(self.keyed("satisfaction"), np.broadcast_to(agent[:, None], k.shape), k)
        radius = np.sqrt(-2.0 * np.log1p(-u[:, [0, 2]]))
        noise = radius * np.cos(2.0 * np.pi * u[:, [1, 3]])
        returned = u[:, 6] < np.clip(p_return, 0, 1)
        if returned.any():
            self._returns(agent[returned], time[returned], order_id[returned],
                          product[returned], value[returned], margin[returned])  # fmt: skip
        s = self.satisfaction(product, days, discount, returned, noise[:, 0])
        sat = np.clip(np.rint(s), 1, 5)
        self._feel(agent, time, np.clip(s, 1, 5))
        surveyed = u[:, 5] < self.scenario.aftermath.survey_rate
        if surveyed.any():
            sv = surveyed
            nps = np.clip(np.rint(2.5 * (s[sv] - 1) + _NPS_NOISE * noise[sv, 1]), 0, 10)
            late = days[sv] > self.scenario.aftermath.promise_days
            self.t_surveys.add(time=time[sv], user_id=agent[sv], nps=nps, csat=sat[sv],
                               order_id=order_id[sv], late=late, returned=returned[sv],
                               express=express[sv])  # fmt: skip
            self.log.add("survey_response", time[sv], agent[sv], quantity=sat[sv], value=nps,
                         order=order_id[sv])  # fmt: skip
        reviewed = u[:, 4] < np.clip(p_review, 0, 1)
        if reviewed.any():
            g = self.review_group[self.pop.arm[agent[reviewed]]]
            np.add.at(self.catalog.reviews, (g, product[reviewed]), 1)
            np.add.at(self.catalog.rating_sum, (g, product[reviewed]), sat[reviewed])
            self.log.add("review", time[reviewed], agent[reviewed], product=product[reviewed],
                         value=sat[reviewed], order=order_id[reviewed])  # fmt: skip

    def _feel(self, agent: np.ndarray, time: np.ndarray, sat: np.ndarray) -> None:
        """Keep each agent's last satisfaction; move its pending own visit by the new hazard.

        A pending visit at ``t`` after the delivery moves to ``now + (t - now) old / new``
        (the remaining Exp(1) budget at the new rate), so a disappointed customer's next visit
        comes later; visits already due today are left alone.
        """
        pop, ret = self.pop, self.scenario.retention
        new = self.satisfaction_factor(agent, ret.satisfaction_visits, sat)
        change = new / self.sat_visits[agent]
        pop.satisfaction[agent] = sat
        self.sat_visits[agent] = new
        self.sat_lapse[agent] = self.satisfaction_factor(agent, -ret.satisfaction_lapse, sat)
        nxt = pop.next_visit[agent]
        move = np.isfinite(nxt) & (nxt >= np.floor(self.env.now) + 1)
        pop.next_visit[agent[move]] = time[move] + (nxt[move] - time[move]) / change[move]
        self.candidate_rate[agent] *= change

    def _returns(self, agent, time, order_id, product, value, margin) -> None:
        """Returned orders: refund, the margin lost, handling; booked as ledger kind "returns".

        The refund is the order's value; the cost of goods comes back at ``salvage_share``
        (restocked or resold), so the margin lost is ``refund - salvage_share x cost of goods``.
        """
        cfg = self.scenario.returns
        margin_lost = value - cfg.salvage_share * (value - margin)
        cost = np.full(len(agent), cfg.cost_per_return)
        self.t_returns.add(time=time, user_id=agent, order_id=order_id, refund=value,
                           margin_lost=margin_lost, cost=cost,
                           category=self.catalog.category[product])  # fmt: skip
        self.ledger.book_by_arm("returns", margin_lost + cost, self.pop.arm[agent],
                                int(np.floor(self.env.now)))  # fmt: skip
        self.log.add("return", time, agent, product=product, value=value, order=order_id)

    # -- mechanisms ---------------------------------------------------------------------------
    def _daily(self, step: Callable[[int], None], wait: bool = False):
        days = self.scenario.days
        if wait:  # a branch's process: its day-0 step keeps its place among day 0's events
            yield self.env.timeout(0)
        while self.env.now < days:
            step(int(self.env.now))
            yield self.env.timeout(1)

    def _day_start(self, day: int) -> None:
        for s in self.strategies:
            if id(s) not in self._arm_agents:
                self._arm_agents[id(s)] = np.flatnonzero(self._members(s))
            agents = self._arm_agents[id(s)]
            if len(agents):
                s.on_day_start(self, day, agents)
        if self._progress is not None:
            self._progress(day)

    def _pull_forward(self, day: int) -> None:
        """A promotion's first day: pending own visits planned soon after it come during it.

        Each aware, not lapsed agent whose next own visit falls in ``[end, end + pull_days)``
        moves it, with chance ``pull_forward`` (keyed), to a uniform time over the sale's days;
        the visit is moved, not added: the agent's visits after it go on from the planned time
        (:meth:`reschedule`), so the weeks after the sale lose the moved visits.
        """
        pop, key = self.pop, self.keyed("pull_forward")
        for i, (end, share, span) in enumerate(self.calendar.pulls.get(day, ())):
            nxt = pop.next_visit
            cand = np.flatnonzero((nxt >= end) & (nxt < end + span))
            cand = cand[pop.aware[cand] & ~pop.lapsed[cand]]
            # only visits, not candidates the calendar's thinning will drop (the same keyed draw)
            planned = np.floor(pop.next_visit[cand]).astype(np.int64)
            traffic = self.calendar.at(self.calendar.traffic, planned)
            own = rng.uniform(self.keyed("own_visits"), cand, (planned + _DAY_KEY) * 4)
            cand = cand[own < traffic / self._traffic_max]
            k = (day + _DAY_KEY) * 16 + 2 * i
            who = cand[rng.uniform(key, cand, k) < share]
            self.resume_at[who] = pop.next_visit[who]
            pop.next_visit[who] = day + (end - day) * rng.uniform(key, who, k + 1)

    def _own_visits(self, day: int) -> None:
        pop = self.pop
        if self.calendar.pulls:
            self._pull_forward(day)
        due = np.flatnonzero(pop.next_visit < day + 1)
        time = np.maximum(pop.next_visit[due], day)
        if self.leaving:  # a customer who has left the market makes no more visits of its own
            here = time < pop.gone_at[due]
            pop.next_visit[due[~here]] = NEVER
            due, time = due[here], time[here]
        if not len(due):
            return
        k = day + _DAY_KEY
        key = self.keyed("own_visits")
        traffic = self.calendar.traffic[day + self.calendar.offset]
        keep = rng.uniform(key, due, k * 4) < traffic / self._traffic_max
        if self.calendar.pulls:  # a visit a promotion moved forward is a visit, not a candidate
            keep |= self.resume_at[due] > time
        late = due[~keep]  # thinned: the next candidate at the same hazard
        gap = rng.exponential(key, late, k * 4 + 1)
        pop.next_visit[late] = time[~keep] + gap / self.candidate_rate[late]
        agent, time = due[keep], time[keep]
        organic = ~pop.aware[agent] | (
            rng.uniform(key, agent, k * 4 + 2) < self.scenario.traffic.organic_share
        )
        channel = np.where(organic, CH["organic_search"], CH["direct"]).astype(np.int8)
        search = self.scenario.channels.get("paid_search")
        if (search is not None and search.brand_capture > 0 and search.budget_per_1000 > 0
                and self._buying("paid_search", day)):  # fmt: skip
            # Branded search: an aware agent searching for the store by name meets its ad above
            # the organic result and clicks it with chance brand_capture (keyed per visit): the
            # same visit, now a paid click (bought by the channel's budget, no extra spend)
            captured = organic & pop.aware[agent] & self._search_audience[agent]
            captured &= rng.uniform(key, agent, k * 4 + 3) < search.brand_capture
            channel[captured] = CH["paid_search"]
        self.queue_visits(agent, time, channel)

    def _buying(self, name: str, day: int) -> bool:
        """Whether a paid channel buys ads on ``day`` (not off, no zero budget multiplier)."""
        if day < 0:
            return True
        multiplier = self.budget_multipliers.get(name)
        return name not in self.off and (multiplier is None or multiplier[day] > 0)

    def _paid(self, name: str, audience: np.ndarray):
        """Daily step of a paid channel over a fixed audience.

        Impressions fall at random on the audience (Poisson), so a day's reach is
        ``P (1 - exp(-I / P))``; a reached agent sees ``I / reach`` impressions, of which
        ``F = f0 (1 - exp(-I / reach / f0))`` are effective (ad fatigue; f0 =
        ``saturation_frequency``), becomes aware with chance ``1 - exp(-a F)`` and clicks with
        chance ``1 - exp(-ctr F)``. Reach and fatigue make returns on budget diminish. The
        agents who become aware and who click are drawn directly from the audience by a
        generator keyed on (seed, channel, day), clickers in proportion to ``visit_rate **
        population.ad_click_activity`` (a fixed trait): the draws never depend on agents' state,
        so every world draws the same ones, and the cost is O(clicks log audience), not O(reach).
        """
        cfg = self.scenario.channels[name]
        n, size, code = self.pop.size, len(audience), CH[name]
        by_arm = np.bincount(self.pop.arm[audience], minlength=len(self.arm_names)) / max(size, 1)
        self.audience_share[name] = (audience, cfg)
        k = self.scenario.population.ad_click_activity
        # who clicks: at random over the audience, or by activity (a cumulative weight to search)
        search = None
        if k > 0 and size:
            search = CumulativeSearch(np.cumsum(self.click_weights(audience)))

        def step(day: int) -> None:
            if not self._buying(name, day):
                return
            impressions = cfg.budget_per_1000 * n / cfg.cpm * self.weekday_factor(day)
            if day >= 0 and name in self.budget_multipliers:
                impressions *= self.budget_multipliers[name][day]
            if impressions <= 0 or size == 0:
                return
            reach = size * -np.expm1(-impressions / size)
            # Ad fatigue: a reached agent's effective impressions saturate near f0 a day.
            f0 = cfg.saturation_frequency
            freq = f0 * -np.expm1(-impressions / reach / f0)
            g = rng.generator(self.seed, name, day + _DAY_KEY)
            n_aware, n_click = g.binomial(
                int(round(reach)), [-np.expm1(-cfg.awareness_per_impression * freq),
                                    -np.expm1(-cfg.ctr * freq)])  # fmt: skip
            # With replacement: O(draws); an agent drawn twice for awareness changes nothing, and
            # one drawn twice for a click visits twice (two clicks).
            # an agent drawn twice gets the same keyed forget time: no need to deduplicate
            seen = audience[g.integers(0, size, n_aware)]
            if self.entering:  # an ad seen before entering the market is not seen by this store
                seen = seen[self._entered(seen, day + 0.5)]
            self._aware(seen, day + 0.5, day + _DAY_KEY + (code << 24))
            if search is None:
                clicked = audience[g.integers(0, size, n_click)]
            else:
                pick = search(g.random(n_click) * search.cum[-1])
                clicked = audience[np.minimum(pick, size - 1)]
            for arm, share in enumerate(by_arm):
                self.ledger.book(f"ad_{name}", impressions * share * cfg.cpm / 1000, arm, day)
                if day >= 0 and share > 0:
                    self.t_impressions.add(day=day, channel=code, arm=arm,
                                           impressions=impressions * share,
                                           reached=reach * share)  # fmt: skip
            if day >= 0:
                self.window_impressions[name] += impressions
            if self.t_views is not None and day >= -_VIEW_LEAD:
                # Who saw them, for attribution only: its own keyed generator, no state change
                v = rng.generator(self.seed, f"views_{name}", day + _DAY_KEY)
                seen = audience[v.integers(0, size, v.poisson(impressions))]
                when = day + v.random(len(seen))
                if self.entering:  # a view before entering the market is not this store's
                    inside = self._entered(seen, when)
                    seen, when = seen[inside], when[inside]
                self.t_views.add(user_id=seen, time=when, channel=code)
            time = day + g.random(len(clicked))
            self.queue_visits(clicked, time, np.full(len(clicked), code, dtype=np.int8))
            if cfg.response > 0:  # carry-over: visits of their own in the days after
                c = rng.generator(self.seed, f"carryover_{name}", day + _DAY_KEY)
                later = audience[c.integers(0, size, c.binomial(
                    int(round(reach)), -np.expm1(-cfg.response * freq)))]  # fmt: skip
                wait = c.exponential(cfg.carryover_half_life / np.log(2), len(later))
                when = day + c.random(len(later)) + wait
                if self.entering:  # the ad was seen before its viewer entered the market
                    inside = self._entered(later, day + 0.5)
                    later, when = later[inside], when[inside]
                self.schedule_visits(later, when, "direct")

        return step

    def click_weights(self, audience: np.ndarray) -> np.ndarray:
        """Each audience member's weight as an ad clicker: ``visit_rate ** ad_click_activity``.

        The engine's daily click draw and the past's click hazard (:mod:`sim.history`) both use it.
        """
        return self.pop.visit_rate[audience] ** self.scenario.population.ad_click_activity

    def audience(self, name: str) -> np.ndarray:
        """Per-agent mask of a paid channel's fixed audience (keyed: the same in every world).

        Drawn once per world and kept (the past, the search audience and the channel's daily
        step ask for it); read-only, so no caller can change another's.
        """
        mask = self._audiences.get(name)
        if mask is None:
            share = self.scenario.channels[name].audience
            mask = rng.uniform(self.keyed(f"audience_{name}"), np.arange(self.pop.size)) < share
            mask.flags.writeable = False
            self._audiences[name] = mask
        return mask

    def expected_reach(self) -> np.ndarray:
        """Each agent's chance of having seen at least one ad in the window (for ``reach``)."""
        unseen = np.ones(self.pop.size)
        for name, (audience, _) in self.audience_share.items():
            unseen[audience] *= np.exp(-self.window_impressions[name] / len(audience))
        return 1 - unseen

    def _campaign(self, kind: str):
        cfg = getattr(self.scenario, kind)
        ok = self.pop.email_ok if kind == "email" else self.pop.sms_ok
        kinds = {"email": (0, 1, 2), "sms": (3, None, 4)}[kind]

        def step(day: int) -> None:
            if day >= 0 and kind in self.off:
                return
            campaigns = (
                []
                if (day - cfg.first_day) % cfg.every_days
                else [(day + _DAY_KEY) // cfg.every_days]
            )
            if kind == "email":  # a promotion's burst: extra newsletters, keyed apart
                burst = self.calendar.emails.get(day, [])
                campaigns += [_BURST_KEY + (day + _DAY_KEY) * 8 + i for i in range(len(burst))]
            for campaign in campaigns:
                agent = np.flatnonzero(ok)
                if not len(agent):
                    return
                eng = self.pop.email_engagement[agent]
                p_click = np.clip(cfg.click_rate / cfg.open_rate * eng, 0, 1)
                msg = Messages(agent=agent, time=np.full(len(agent), day + 0.375), kind=kind,
                               campaign=campaign, p_open=np.clip(cfg.open_rate * eng, 0, 1),
                               p_click=p_click)  # fmt: skip
                self.dispatch("on_message", msg)
                self._send(kind, cfg, msg, kinds, day)

        return step

    def _send(self, kind, cfg, msg: Messages, kinds, day: int) -> None:
        """Opens, clicks and unsubscribes of one campaign's sends.

        Fatigue: the per-send unsubscribe chance is ``unsubscribe x (7 / every_days) ** fatigue``
        (``unsubscribe`` holds at a weekly cadence; sending more often raises it per send).
        """
        pop, agent = self.pop, msg.agent
        key, k = self.keyed(kind), msg.campaign * 8
        opened = rng.uniform(key, agent, k) < msg.p_open
        clicked = opened & (rng.uniform(key, agent, k + 1) < msg.p_click)
        p_unsub = min(cfg.unsubscribe * (7.0 / cfg.every_days) ** cfg.fatigue, 1.0)
        unsub = rng.uniform(key, agent, k + 2) < p_unsub
        self.unsubscribe(agent[unsub], kind)
        self.ledger.book_by_arm(kind, np.full(len(agent), cfg.cost_per_send), pop.arm[agent], day)
        t_open = msg.time + 0.5 * rng.uniform(key, agent, k + 3)
        t_click = t_open + 0.02
        if day >= 0:
            tally = [(kinds[0], np.ones(len(agent), bool)), (kinds[1], opened),
                     (kinds[2], clicked), (MESSAGE_CODE["unsubscribe"], unsub)]  # fmt: skip
            self._tally_kinds(day, agent, [(k, m) for k, m in tally if k is not None])
            self.log.add(f"{kind}_send", msg.time, agent, channel=CH[kind])
            if kind == "email":
                self.log.add("email_open", t_open[opened], agent[opened], channel=CH[kind])
            self.log.add(f"{kind}_click", t_click[clicked], agent[clicked], channel=CH[kind])
            self.log.add("unsubscribe", msg.time[unsub], agent[unsub], channel=CH[kind])
        code = np.full(int(clicked.sum()), CH[kind], dtype=np.int8)
        self.queue_visits(agent[clicked], t_click[clicked], code)

    # -- email list: sign-ups and the welcome series -------------------------------------------
    def email_signup(self, agent: np.ndarray, time: np.ndarray) -> None:
        """Agents (unique, not on the list) join the email list at ``time`` (today).

        Each gets the welcome series: ``welcome_emails`` emails, the first on the next day,
        then every ``welcome_every_days`` days.
        """
        cfg, day = self.scenario.email, int(np.floor(self.env.now))
        self.pop.email_ok[agent] = True
        if day >= 0:
            self._tally_messages(
                day, agent, MESSAGE_CODE["email_signup"], np.ones(len(agent), bool)
            )
            self.log.add("email_signup", time, agent, channel=CH["email"])
        for step in range(cfg.welcome_emails):
            self.welcomes.setdefault(day + 1 + step * cfg.welcome_every_days, []).append(
                (agent, np.full(len(agent), day + _DAY_KEY, np.int64), np.full(len(agent), step))
            )

    def _welcome(self, day: int) -> None:
        """Daily step: the welcome emails due today, to those still on the list."""
        chunks = self.welcomes.pop(day, None)
        if not chunks or (day >= 0 and "email" in self.off):
            return
        agent, signup_day, step = (np.concatenate(c) for c in zip(*chunks, strict=True))
        keep = self.pop.email_ok[agent]
        agent, signup_day, step = agent[keep], signup_day[keep], step[keep]
        if not len(agent):
            return
        cfg, key = self.scenario.email, self.keyed("welcome")
        k = (signup_day * 8 + step)[:, None] * 4 + np.arange(4)[None, :]
        u = rng.uniform(
            key, np.broadcast_to(agent[:, None], k.shape), k
        )  # open, click, unsub, time
        eng = self.pop.email_engagement[agent]
        opened = u[:, 0] < np.clip(cfg.welcome_open_rate * eng, 0, 1)
        click_given_open = cfg.welcome_click_rate / max(cfg.welcome_open_rate, 1e-12)
        clicked = opened & (u[:, 1] < np.clip(click_given_open * eng, 0, 1))
        unsub = u[:, 2] < cfg.unsubscribe
        self.unsubscribe(agent[unsub], "email")
        cost = np.full(len(agent), cfg.cost_per_send)
        self.ledger.book_by_arm("email", cost, self.pop.arm[agent], day)
        t_send = np.full(len(agent), day + 0.375)
        t_click = t_send + 0.5 * u[:, 3] + 0.02
        if day >= 0:
            tally = (("welcome_send", np.ones(len(agent), bool)), ("welcome_open", opened),
                     ("welcome_click", clicked), ("unsubscribe", unsub))  # fmt: skip
            self._tally_kinds(day, agent, [(MESSAGE_CODE[name], m) for name, m in tally])
            for name, mask in tally:
                t = t_click if name == "welcome_click" else t_send
                self.log.add(name, t[mask], agent[mask], channel=CH["email"])
        code = np.full(int(clicked.sum()), CH["email"], dtype=np.int8)
        self.queue_visits(agent[clicked], t_click[clicked], code)

    def _tally_messages(self, day: int, agent: np.ndarray, kind: int, mask: np.ndarray) -> None:
        self._tally_kinds(day, agent, ((kind, mask),))

    def _tally_kinds(self, day: int, agent: np.ndarray, kinds) -> None:
        """Count messages by arm and segment, for each ``(kind, mask)`` of the same recipients."""
        n_seg = len(self.pop.segment_names)
        code = self.pop.arm[agent].astype(np.int64) * n_seg + self.pop.segment[agent]
        groups = len(self.arm_names) * n_seg
        counts = np.stack([np.bincount(code[mask], minlength=groups) for _, mask in kinds])
        row, nz = np.nonzero(counts)
        kind = np.array([k for k, _ in kinds], dtype=np.int64)[row]
        self.t_messages.add(
            day=day, arm=nz // n_seg, segment=nz % n_seg, kind=kind, count=counts[row, nz]
        )

    # -- running --------------------------------------------------------------------------
    _STATE = ("rate_mult", "sat_visits", "sat_lapse", "email_left", "saved_at", "saved_product",
              "coming_back", "return_at", "resume_at", "candidate_rate", "forget_at")  # fmt: skip
    _POP_STATE = ("affinity", "responsiveness", "price_sensitivity", "visit_rate",
                  "cart_propensity", "churn", "email_engagement", "next_visit", "last_order",
                  "satisfaction", "gone_at", "enter_at", "lapsed", "email_ok", "sms_ok", "aware",
                  "n_orders", "n_messages")  # fmt: skip

    def release(self) -> None:
        """Drop the per-agent state the finished world's tables do not read.

        About 160 MB at 1M agents, so the tables are built in its memory; the world cannot run
        on after it. Kept: ``pop.arm``, ``segment``, ``device``, ``zero_party``, ``n_sessions``
        and ``u``.
        """
        for name in self._STATE:
            setattr(self, name, None)
        for name in self._POP_STATE:
            setattr(self.pop, name, None)

    def _steps(self) -> list[Callable[[int], None]]:
        """The daily steps, in the order they run each day (the day's visits last)."""
        steps = [self._day_start]
        for name in PAID_CHANNELS:
            if name in self.scenario.channels:
                steps.append(self._paid(name, np.flatnonzero(self.audience(name))))
        if self.forget > 0:
            steps.append(self._forget)
        steps += [self._own_visits, self._campaign("email"), self._campaign("sms"),
                  self._welcome, self._deliver, self._run_queued]  # fmt: skip
        return steps

    def _start(self) -> None:
        """Register the daily processes (once: a warmed world goes on with its own)."""
        if self._procs is not None:
            return
        env = self.env
        if self._pending is not None:  # a branch: its parent's pending events, in their order
            steps = self._steps()
            self._procs = []
            for kind, *args in self._pending:
                if kind == "daily":
                    self._procs.append(env.process(self._daily(steps[args[0]], wait=True)))
                else:
                    env.process(self._later(*args))
            self._pending = None
            return
        if "paid_search" in self.scenario.channels:
            self._search_audience = self.audience("paid_search")
        if np.isfinite(self.pop.satisfaction).any():  # a drawn past may have set some
            ret, everyone = self.scenario.retention, np.arange(self.pop.size)
            self.sat_visits[:] = self.satisfaction_factor(everyone, ret.satisfaction_visits)
            self.sat_lapse[:] = self.satisfaction_factor(everyone, -ret.satisfaction_lapse)
        self._procs = [env.process(self._daily(step)) for step in self._steps()]

    def warm_up(self, progress: Callable[[int], None] | None = None) -> World:
        """Run the warm-up only (to the start of day 0); :meth:`run` or :meth:`branch` go on."""
        if self.env.now >= 0:
            raise RuntimeError("the warm-up has already run")
        self._progress = progress
        self._start()
        self.env.run(until=0)
        for table in (self.t_sessions, self.t_orders, self.t_messages, self.t_impressions,
                      self.t_surveys, self.t_shipments, self.t_returns, self.t_views):  # fmt: skip
            if table is not None:  # one array per column: a branch copies them at once
                table.compact()
        return self

    @staticmethod
    def why_not_branch(scenario: Scenario, strategies: Sequence[Hooks] = (),
                       arm_names: Sequence[str] = ("control",)) -> str | None:  # fmt: skip
        """Why a world of these strategies and arms cannot branch from a plain store, or None.

        Its warm-up must be the plain store's: the strategies do nothing before day 0
        (``start_day`` >= 0) and, with several arms, the reviews are pooled over them
        (``catalog.shared_reviews``).
        """
        if len(arm_names) > 1 and not scenario.catalog.shared_reviews:
            return "catalog.shared_reviews is false (each arm's reviews would start in the warm-up)"
        early = [s.name for s in strategies if getattr(getattr(s, "config", None), "start_day",
                                                       0) < 0]  # fmt: skip
        if early:
            return (f"strategy {early[0]} starts before day 0 (it would act in the warm-up; a "
                    "branch needs strategies that start on day >= 0)")  # fmt: skip
        return None

    def branch(
        self,
        seed: int,
        strategies: Sequence[Hooks] = (),
        arm: np.ndarray | None = None,
        arm_names: Sequence[str] = ("control",),
        events: bool | None = None,
    ) -> World:
        """A copy of this warmed store that runs the window with its own seed, arms, strategies.

        The copy shares everything drawn up to day 0 (population, catalog, past, warm-up,
        pending visits) and draws every keyed number of the window from ``seed``. Run on the
        store's own seed, arms and strategies, it gives the same tables, bit for bit, as the
        world run straight through (``tests/sim/test_branch.py``); a world that
        :meth:`why_not_branch` names a reason for cannot branch. ``events``: record the event
        log or not (default: as this world; the log holds no warm-up events). This world is
        left as it was, to branch again, but cannot run on itself (its state is in the copy);
        with ``branches`` set, the last of them frees the copy's bytes.
        """
        if self.env.now != 0 or self._procs is None or self._pending is not None:
            raise RuntimeError("branch() needs a world warmed up to day 0 (warm_up())")
        if self.strategies:
            raise RuntimeError("branch() needs a warmed store without strategies")
        if self.branches == 0:
            raise RuntimeError("this store's branches are used up (branches=)")
        why = self.why_not_branch(self.scenario, strategies, arm_names)
        if why is not None:
            raise ValueError(f"branch(): {why}")
        if self._day0 is None:  # the store at day 0 as bytes, once: every branch loads a copy
            pending = self._pending_events()
            kept = {k: getattr(self, k) for k in ("env", "_procs", "_progress")}
            try:  # not copied: the SimPy processes and the caller's progress callback
                for k in kept:
                    setattr(self, k, None)
                self._day0 = pickle.dumps((self, pending), protocol=pickle.HIGHEST_PROTOCOL)
            finally:
                for k, v in kept.items():
                    setattr(self, k, v)
            # from now on a store to branch from only: the bytes hold its state
            keep = ("scenario", "seed", "env", "_procs", "_pending", "_day0", "strategies",
                    "branches")  # fmt: skip
            self.__dict__ = {k: v for k, v in self.__dict__.items() if k in keep}
        new, pending = pickle.loads(self._day0)
        if self.branches is not None:
            self.branches -= 1
            if self.branches == 0:  # the last branch: the bytes go with it
                self._day0 = None
        new.seed = int(seed)
        new._stream_keys = {}  # every keyed stream of the window from the new seed
        new.funnel.key = new.keyed("funnel")
        new.env = simpy.Environment(initial_time=0)
        new._pending = pending
        if events is not None:
            new.log = EventLog(events)  # the log keeps times >= 0 only: nothing of the warm-up
        new.arm_names = list(arm_names)
        new.pop.arm[:] = 0 if arm is None else arm
        new.review_group = np.zeros(len(new.arm_names), np.int64)
        new.strategies = list(strategies)
        for s in new.strategies:
            s.setup(new)
        return new

    def _pending_events(self) -> list[tuple]:
        """The warmed world's pending SimPy events as data, in the order they would fire.

        ``("daily", i)``: the i-th daily step; ``("later", day, agent, time, channel,
        recovered)``: visits :meth:`schedule_visits` filed for a later day.
        """
        index = {id(p): i for i, p in enumerate(self._procs)}
        out = []
        for _, _, _, event in sorted(self.env._queue, key=lambda e: e[:3]):
            if not event.callbacks:  # the stop event of env.run(until=0): does nothing
                continue
            (callback,) = event.callbacks
            proc = callback.__self__
            if id(proc) in index:
                out.append(("daily", index[id(proc)]))
            elif proc._generator.__name__ == "_later":
                f = proc._generator.gi_frame.f_locals
                out.append(("later", f["day"], f["agent"], f["time"], f["channel"],
                            f["recovered"]))  # fmt: skip
            else:
                raise RuntimeError(f"branch(): cannot copy a pending {proc._generator.__name__}")
        return out

    def run(
        self,
        progress: Callable[[int], None] | None = None,
        release: bool = False,
        lean: bool = False,
    ) -> Results:
        """Simulate warm-up and horizon; return the tables. ``progress(day)`` is called daily.

        ``release``: the agents' state arrays the tables do not need are dropped before the
        tables are built (:meth:`release`), for a caller that discards the world after it.
        ``lean``: only ``users`` (the other tables None), for a replicate that reads nothing
        else.
        """
        if self._day0 is not None:
            raise RuntimeError("a store that has branched cannot run on: run its branches")
        self._progress = progress
        self._start()
        self.env.run(until=self.scenario.days)
        from sim.tables import build_results  # local: tables imports world's Results

        return build_results(self, release, lean)
