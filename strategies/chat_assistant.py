"""Conversational commerce: a chat assistant in the session, paid per conversation.

In a session of the strategy's arms a chat conversation opens with chance ``engage_rate``:
among sessions with a cart (``audience: cart``, a proactive invitation in the cart) or among
sessions that did not bounce (``audience: session``, a chat widget on every page). Each
conversation costs ``cost_per_conversation`` (booked as ``chat_assistant_conversation``) and is
logged as ``chat_start`` with its session id. A conversation can

- cut abandonment at checkout: ``p_purchase -> 1 - (1 - p_purchase) * (1 - abandonment_cut)``
  for the session's checkout (a relative cut of the chance a begun checkout is abandoned);
- cut returns: ``p_return -> p_return * (1 - return_cut)`` for orders placed in a session with
  a conversation (skipped while the engine does not model returns: ``Carts.p_return`` None).

**Both effects default to 0.** No causal estimate is published: Intercom's "visitors who chat
are 82% more likely to convert" compares visitors who chose to chat with those who did not
(self-selection), so it says nothing about what chat *causes* (BENCHMARKS.md). With the
defaults the strategy is a pure cost, and the useful question is how large the effect must be.

**Break-even.** Each unit of ``abandonment_cut`` turns ``checkouts * abandonment`` of the
checkouts begun in sessions with a conversation into orders (``abandonment`` = the share of
those checkouts abandoned without the effect), each adding ``m`` to profit (its gross margin
less what fulfilling it costs); the conversations cost ``conversations *
cost_per_conversation``. Chat pays for itself when::

    abandonment_cut >= conversations * cost_per_conversation / (checkouts * abandonment * m)

(:func:`break_even_abandonment_cut`; :func:`chat_figures` reads the figures from a run's event
log, ``m`` being the margin of the abandoned baskets less shipping and returns). On the default
store with ``audience: cart`` (100k agents, one quarter) 59% of the carts with a conversation
reach checkout and 44% of those checkouts are abandoned, and a saved order would bring ~$31
(an abandoned basket's $53 of margin less $15 of expected returns and $7.50 of shipping), so at
$0.99 a conversation chat must cut checkout abandonment by about 12% (relative) to pay,
whatever the engage rate (README). The formula counts
the saved orders' own margin only; in the default store an order also brings later visits (the
post-purchase boost) and more orders, so chat pays at a somewhat smaller cut: the formula is the
conservative (upper) break-even.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from sim.aggregate import OPERATIONS
from sim.errors import check_choice, check_number, check_probability
from strategies.base import Strategy, StrategyConfig

AUDIENCES = ("cart", "session")


@dataclass
class ChatAssistantConfig(StrategyConfig):
    """Parameters of ``conf/strategy/chat_assistant.yaml``.

    Attributes:
        audience: ``cart``: a conversation can open in sessions with a cart (a proactive
            invitation in the cart); ``session``: in any session that did not bounce.
        engage_rate: Chance a session of the audience opens a conversation (BoldChat, 2012: a
            retailer inviting inside the cart saw over 20% accept; one vendor's example).
        cost_per_conversation: Cost of one conversation (Intercom Fin: $0.99 per resolution,
            2024-25; staffed live chat is put at $3-12 per chat, to sweep).
        abandonment_cut: Relative cut of the abandonment chance of a checkout in a session with
            a conversation. Default 0: no causal estimate is published (the 82% figure is
            correlational, BENCHMARKS.md); find the break-even instead.
        return_cut: Relative cut of the return chance of an order placed in a session with a
            conversation. Default 0 for the same reason.
        fee_per_1000_per_day: Platform fee (assumption: 0, the cost is per conversation).
    """

    name: str = "chat_assistant"
    audience: str = "cart"
    engage_rate: float = 0.2
    cost_per_conversation: float = 0.99
    abandonment_cut: float = 0.0
    return_cut: float = 0.0
    fee_per_1000_per_day: float = 0.0

    def check(self, key: str) -> None:
        """Raise ConfigError naming the first bad field."""
        super().check(key)
        check_choice(self.audience, f"{key}.audience", AUDIENCES)
        for field_name in ("engage_rate", "abandonment_cut", "return_cut"):
            check_probability(getattr(self, field_name), f"{key}.{field_name}")
        check_number(self.cost_per_conversation, f"{key}.cost_per_conversation", ge=0)


class ChatAssistant(Strategy):
    """Chat conversations in sessions, paid per conversation (see module docstring)."""

    name = "chat_assistant"
    config_class = ChatAssistantConfig
    config: ChatAssistantConfig

    def setup(self, world) -> None:
        """Reset the batch state and the tallies."""
        super().setup(world)
        self._batch = None  # the Visits cohort being processed...
        self._chat = np.zeros(0, dtype=bool)  # ...and which of its sessions had a conversation
        self.conversations = 0

    def on_session_start(self, world, visits, sel) -> None:
        """A new batch: no conversation yet (the mask follows the batch to on_purchase)."""
        self._batch = visits
        self._chat = np.zeros(len(visits), dtype=bool)

    def on_view(self, world, visits, sel) -> None:
        """``audience: session``: a conversation may open in a session that did not bounce."""
        if self.config.audience == "session":
            sel = self.live_sel(visits.time, sel)
            self._engage(world, visits, sel[visits.views[sel, 0] >= 0])

    def on_cart(self, world, visits, basket, sel) -> None:
        """``audience: cart``: a conversation may open in a session with a cart."""
        if self.config.audience == "cart":
            self._engage(world, visits, self.live_sel(visits.time, sel))

    def _engage(self, world, visits, sel) -> None:
        """Open conversations with keyed draws (one per session), book and log them."""
        agent = visits.agent[sel]
        chat = sel[self.uniform(agent, visits.session_no[sel]) < self.config.engage_rate]
        if not len(chat):
            return
        self._chat[chat] = True
        self.conversations += len(chat)
        cost = np.full(len(chat), self.config.cost_per_conversation)
        self.book(world, "conversation", cost, visits.agent[chat], int(np.floor(world.now)))
        session = world.funnel.session_ids(visits)[chat]
        world.log.add("chat_start", visits.time[chat], visits.agent[chat], session=session,
                      channel=visits.channel[chat], value=cost)  # fmt: skip

    def _chat_at(self, positions: np.ndarray) -> np.ndarray:
        """Mask over ``positions`` (into the current batch) of sessions with a conversation."""
        out = np.zeros(len(positions), dtype=bool)
        ok = positions < len(self._chat)
        out[ok] = self._chat[positions[ok]]
        return out

    def on_checkout(self, world, visits, sel) -> None:
        """A conversation cuts the abandonment chance of the session's checkout."""
        cut = self.config.abandonment_cut
        if cut > 0 and visits is self._batch:  # (guarded: 1 - (1 - p) is not always p)
            chat = sel[self._chat[sel]]
            visits.p_purchase[chat] = 1 - (1 - visits.p_purchase[chat]) * (1 - cut)

    def on_purchase(self, world, carts, sel) -> None:
        """A conversation cuts the return chance of the session's order (when returns exist)."""
        cut = self.config.return_cut
        if cut > 0 and carts.p_return is not None:
            chat = sel[self._chat_at(carts.visit[sel])]
            carts.p_return[chat] *= 1 - cut


class ChatFigures(NamedTuple):
    """A run's figures for the break-even (see :func:`break_even_abandonment_cut`)."""

    conversations: int
    cost_per_conversation: float
    checkouts: int
    abandonment: float
    margin_per_order: float


def break_even_abandonment_cut(
    conversations: float,
    cost_per_conversation: float,
    checkouts: float,
    abandonment: float,
    margin_per_order: float,
) -> float:
    """The ``abandonment_cut`` at which chat pays for itself (see module docstring).

    ``cut* = conversations * cost_per_conversation / (checkouts * abandonment *
    margin_per_order)``: the conversations' cost over the margin that one unit of cut brings.
    A value above 1 means chat cannot pay even by saving every abandoned checkout.

    Args:
        conversations: Conversations held (each costs ``cost_per_conversation``).
        cost_per_conversation: Cost of one conversation.
        checkouts: Checkouts begun in sessions with a conversation (the carts the cut acts on).
        abandonment: Share of those checkouts abandoned without the effect (1 - orders /
            checkouts, from a run with ``abandonment_cut: 0``).
        margin_per_order: What an order saved from abandonment adds to profit: the mean gross
            margin of the baskets abandoned at checkout in those sessions (not of the orders
            placed: bigger baskets are abandoned more) less the costs an order brings
            (shipping, returns), plus later orders it leads to, if counted.

    Returns:
        The break-even cut (0 when the conversations cost nothing, inf when nothing can be
        saved).
    """
    for value, key in ((conversations, "conversations"), (checkouts, "checkouts"),
                       (cost_per_conversation, "cost_per_conversation"),
                       (margin_per_order, "margin_per_order")):  # fmt: skip
        check_number(value, key, ge=0)
    check_probability(abandonment, "abandonment")
    cost = conversations * cost_per_conversation
    gain = checkouts * abandonment * margin_per_order  # margin per unit of cut
    if cost == 0:
        return 0.0
    return cost / gain if gain > 0 else float("inf")


def chat_figures(results, cost_per_conversation: float) -> ChatFigures:
    """Read the break-even's figures from a run with the event log on (``events=True``).

    Sessions with a conversation are those with a ``chat_start`` event; their checkouts and
    orders are their ``begin_checkout`` and ``purchase`` events. The margin per order is what a
    saved order adds to profit: the mean gross margin of the baskets of the *abandoned*
    checkouts (``add_to_cart`` values less unit costs), as those are the orders a cut would save
    and they are bigger than the orders placed (bigger baskets are abandoned more), less what
    an order costs to fulfil (the ledger's ``sim.aggregate.OPERATIONS``): returns as the
    window's share of revenue (a refund grows with the order's value) times the basket's
    value, and the other kinds (shipping, express) averaged per order.
    """
    cols = ["event", "session_id", "product_id", "quantity", "value"]
    ev = results.events.select(cols).to_pandas()
    event = ev["event"].astype(str)
    chat = ev.loc[event == "chat_start", "session_id"].unique()
    began = ev.loc[(event == "begin_checkout") & ev["session_id"].isin(chat), "session_id"]
    bought = ev.loc[(event == "purchase") & ev["session_id"].isin(chat), "session_id"]
    lost = np.setdiff1d(began.to_numpy(), bought.to_numpy())
    adds = ev[(event == "add_to_cart") & ev["session_id"].isin(lost)]
    unit_cost = results.extra["unit_cost"][adds["product_id"].to_numpy()]
    margin = (adds["value"] - unit_cost * adds["quantity"]).sum()
    value = adds["value"].sum()
    orders = results.orders[results.orders["time"] >= 0]
    kind, amount = results.costs["kind"].astype(str), results.costs["amount"]
    refunds = amount[kind == "returns"].sum() / max(orders["revenue"].sum(), 1e-12)
    per_order = amount[kind.isin(OPERATIONS) & (kind != "returns")].sum() / max(len(orders), 1)
    saved = (margin - refunds * value) / len(lost) - per_order if len(lost) else 0.0
    return ChatFigures(
        conversations=len(chat),
        cost_per_conversation=float(cost_per_conversation),
        checkouts=len(began),
        abandonment=len(lost) / len(began) if len(began) else 0.0,
        margin_per_order=float(saved),
    )
