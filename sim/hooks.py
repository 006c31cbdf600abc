"""Hooks: where strategies change agent behaviour, and the ledger where they book costs.

A strategy is a :class:`Hooks` subclass that overrides the methods it needs. Every hook has the
signature ``hook(world, cohort, sel)``:

- ``world`` is the running :class:`sim.world.World` (read ``world.pop``, ``world.catalog``,
  ``world.now``; book costs with ``world.ledger.book``; schedule follow-ups with
  ``world.schedule_visits``; draw keyed numbers with ``world.keyed(name)``);
- ``cohort`` holds arrays over the agents that share the event (one entry per visit, message,
  order...), the *whole* cohort;
- ``sel`` is an int array of positions into the cohort: the agents of the arms this strategy
  applies to. A hook reads and writes only ``cohort.<array>[sel]``. It is never called with an
  empty ``sel``, so a strategy on an arm without agents changes nothing, not even a cost.

Hooks may change the arrays named "may change" below and nothing else of the cohort; all
probabilities stay in [0, 1] (the engine clips). Outside the cohort a strategy may: keep its own
per-agent state (allocated in ``setup``), unsubscribe its own agents (``world.pop.email_ok`` /
``sms_ok`` to False), start SimPy processes of its own in ``setup`` (a daily sender), log its
own events (``world.log.add``) and read ``world.now``. A hook a strategy does not override is
never called. They fire in this order inside a visit:
on_session_start -> on_view -> on_cart -> on_checkout -> on_abandon | on_purchase -> on_return.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Visits:
    """A batch of sessions, one entry per session.

    Read: ``agent``, ``time``, ``channel`` (code into ``sim.config.SOURCES``), ``session_no``
    (the agent's session counter, for keyed draws), ``recovered`` (the visit restores an
    abandoned cart). May change in on_session_start: ``p_bounce``, ``extra_pages`` (mean extra
    pages of a non-bounced session). In on_view: ``views`` ([m, K] product ids, -1 = none) and
    ``p_cart`` ([m, K]: a view's cart chance, and above 1 its expected units). In on_checkout:
    ``p_checkout``, ``p_purchase`` (already lowered where a shipping fee is charged); read
    ``shipping`` there (the fee charged at checkout: the basket is below
    ``shipping.free_threshold``; 0 otherwise). In on_return: ``rate_mult`` (multiplier on the
    agent's own visit hazard from now on) and ``p_lapse`` (already scaled by the agent's last
    satisfaction).
    """

    agent: np.ndarray
    time: np.ndarray
    channel: np.ndarray
    session_no: np.ndarray
    recovered: np.ndarray
    p_bounce: np.ndarray
    extra_pages: np.ndarray
    views: np.ndarray | None = None
    p_cart: np.ndarray | None = None
    p_checkout: np.ndarray | None = None
    p_purchase: np.ndarray | None = None
    shipping: np.ndarray | None = None
    purchased: np.ndarray | None = None
    rate_mult: np.ndarray | None = None
    p_lapse: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.agent)


TOPUP_TAG = 1
"""``Basket.tag`` of a line the shopper added to reach the free-shipping threshold."""


@dataclass
class Basket:
    """Cart lines of a batch of visits, long format: one entry per line.

    ``visit`` is the position of the line's visit in the :class:`Visits` cohort. In on_cart a
    hook may append lines (``Basket.extend``) and lower ``price`` (the price paid per unit;
    ``list_price`` stays, so discounts are ``list_price - price``). ``tag`` names who added the
    line (0 = the shopper, ``TOPUP_TAG`` = the shopper topping up to free shipping, after
    on_cart).
    """

    visit: np.ndarray
    product: np.ndarray
    quantity: np.ndarray
    list_price: np.ndarray
    price: np.ndarray
    tag: np.ndarray

    def extend(self, visit, product, quantity, list_price, price, tag) -> None:
        """Append lines (all arguments are arrays of equal length)."""
        for name, new in zip(
            ("visit", "product", "quantity", "list_price", "price", "tag"),
            (visit, product, quantity, list_price, price, tag),
            strict=True,
        ):
            old = getattr(self, name)
            setattr(self, name, np.concatenate([old, np.asarray(new, dtype=old.dtype)]))


@dataclass
class Carts:
    """Carts of a batch: one entry per visit that ended with an abandoned cart or an order.

    Read: ``agent``, ``time``, ``value`` (basket value paid), ``items``, ``visit`` (position in
    the Visits cohort), ``order_id`` (-1 for an abandoned cart). May change in on_purchase:
    ``p_review`` (chance the buyer reviews after delivery) and ``p_return`` (chance the order
    is returned after delivery; set by the engine before on_purchase to the value-weighted mean
    of ``returns.rate_by_category`` over the order's lines; the return is drawn at delivery).
    """

    agent: np.ndarray
    time: np.ndarray
    value: np.ndarray
    items: np.ndarray
    visit: np.ndarray
    order_id: np.ndarray
    p_review: np.ndarray | None = None
    p_return: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.agent)


@dataclass
class Messages:
    """A batch of email or SMS sends: one entry per recipient.

    Read: ``agent``, ``time``, ``kind`` ("email" or "sms"), ``campaign``. May change in
    on_message: ``p_open`` and ``p_click`` (click given open).
    """

    agent: np.ndarray
    time: np.ndarray
    kind: str
    campaign: int
    p_open: np.ndarray
    p_click: np.ndarray

    def __len__(self) -> int:
        return len(self.agent)


class Hooks:
    """Base class of every strategy: no-op hooks and the arms it applies to.

    Subclasses override the hooks they need (see the module docstring for the contract).
    """

    name = "hooks"

    def __init__(self, arms: tuple[int, ...] = ()) -> None:
        self.arms = tuple(arms)

    def setup(self, world) -> None:
        """Called once when the world is built, before warm-up (allocate per-agent state)."""

    def on_day_start(self, world, day: int, agents: np.ndarray) -> None:
        """Start of each day; ``agents`` are the ids of the strategy's arms (fixed costs)."""

    def on_session_start(self, world, visits: Visits, sel: np.ndarray) -> None:
        """A session begins: may change ``p_bounce`` and ``extra_pages``."""

    def on_view(self, world, visits: Visits, sel: np.ndarray) -> None:
        """Products were chosen for viewing: may change ``views`` and ``p_cart``."""

    def on_cart(self, world, visits: Visits, basket: Basket, sel: np.ndarray) -> None:
        """Carts are filled: may add lines and lower prices (``sel`` indexes visits)."""

    def on_checkout(self, world, visits: Visits, sel: np.ndarray) -> None:
        """Carts reach checkout: may change ``p_checkout`` and ``p_purchase``."""

    def on_abandon(self, world, carts: Carts, sel: np.ndarray) -> None:
        """Carts were abandoned: may schedule follow-ups (reminders)."""

    def on_purchase(self, world, carts: Carts, sel: np.ndarray) -> None:
        """Orders were placed: may change ``p_review``, award points, book costs."""

    def on_return(self, world, visits: Visits, sel: np.ndarray) -> None:
        """After the session: may change ``rate_mult`` and ``p_lapse`` (return hazard, churn)."""

    def on_message(self, world, messages: Messages, sel: np.ndarray) -> None:
        """Messages are sent: may change ``p_open`` and ``p_click``."""


@dataclass
class Ledger:
    """Every cost of the run, one row per booking: kind, amount, arm, day.

    Kinds used by the engine: ``ad_<channel>`` (ad spend, split over arms by impressions),
    ``email`` (campaigns and welcome series), ``sms``, ``shipping`` (carrier cost of every order,
    on its order day), ``express`` (the extra cost of express orders, on their order day) and
    ``returns`` (a returned order's refund minus the cost of goods recovered, plus handling, on
    its delivery day). Strategies book their own kinds (``discount``, ``reminder_sms``...).
    """

    kind: list[str] = field(default_factory=list)
    amount: list[float] = field(default_factory=list)
    arm: list[int] = field(default_factory=list)
    day: list[int] = field(default_factory=list)

    def book(self, kind: str, amount: float, arm: int, day: int) -> None:
        """Book one cost (skipped when the amount is zero)."""
        if amount:
            self.kind.append(kind)
            self.amount.append(float(amount))
            self.arm.append(int(arm))
            self.day.append(int(day))

    def book_by_arm(self, kind: str, amounts: np.ndarray, arms: np.ndarray, day: int) -> None:
        """Book per-agent amounts summed by arm."""
        if len(arms):
            totals = np.bincount(arms, weights=amounts)
            for arm, total in enumerate(totals):
                self.book(kind, total, arm, day)
