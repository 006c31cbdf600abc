"""One batch of visits through the funnel, vectorised: bounce, views, cart, checkout, order.

Every random decision of a session is a keyed draw on (agent, session number, slot), so an
agent's session plays out the same in every world where it happens, whatever else changes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim import rng
from sim.hooks import TOPUP_TAG, Basket, Carts, Visits
from sim.kernels import add_at

MAX_VIEWS = 6
SLOTS = 64  # keyed-draw slots per session
_S_BOUNCE, _S_PAGES, _S_NVIEWS, _S_QUIZ, _S_CHECKOUT, _S_PURCHASE, _S_LAPSE, _S_NEXT = range(8)
_S_CAT, _S_PROD, _S_CART, _S_QTY = 8, 16, 24, 32  # + view index
_S_TOPUP, _S_POPUP, _S_SIGNUP, _S_RESUME, _S_COME_BACK, _S_RETURN_GAP = 40, 41, 42, 43, 44, 45
_SESSION_SHIFT = np.int64(1 << 24)


def occurrence(agent: np.ndarray) -> np.ndarray:
    """0 for an agent's first entry in the batch, 1 for its second, ... (stable order)."""
    order = np.argsort(agent, kind="stable")
    sorted_agent = agent[order]
    idx = np.arange(len(agent))
    start = np.ones(len(agent), dtype=bool)
    start[1:] = sorted_agent[1:] != sorted_agent[:-1]
    rank_sorted = idx - np.maximum.accumulate(np.where(start, idx, 0))
    rank = np.empty_like(rank_sorted)
    rank[order] = rank_sorted
    return rank


class Funnel:
    """Runs visit batches for one world (holds the keyed streams and the catalog lookups)."""

    def __init__(self, world) -> None:
        self.w = world
        self.key = world.keyed("funnel")
        cat = world.catalog
        self.per_cat = np.array([len(p) for p in cat.by_category])
        cal = world.calendar
        self.sale = bool((cal.discount > 0).any())  # a promotion somewhere in the span
        self.calendar = cal if (cal.intent != 1).any() or self.sale else None
        promotions = self.sale and world.scenario.funnel.reference_weight > 0
        n = world.pop.size
        self.ref_seen = np.full(n, -np.inf) if promotions else None  # last promotion visit
        self.ref_depth = np.zeros(n) if promotions else None  # its discount
        width = self.per_cat.max()
        self.prod_by_cat = np.stack(
            [np.resize(p, width) for p in cat.by_category]
        )  # padded by repetition; indexing stays within each category's own count

    def draw(self, v: Visits, slot: int | np.ndarray) -> np.ndarray:
        """Keyed uniforms for each visit (shape broadcast with ``slot``)."""
        k = v.session_no.astype(np.int64)[:, None] * SLOTS + np.atleast_1d(slot)[None, :]
        agent = np.broadcast_to(v.agent[:, None], k.shape)
        out = rng.uniform(self.key, agent, k)
        return out[:, 0] if np.ndim(slot) == 0 else out

    def draw_rows(self, v: Visits, rows: np.ndarray, slot: int) -> np.ndarray:
        """Keyed uniforms of the visits at positions ``rows`` (the same numbers as :meth:`draw`)."""
        return rng.uniform(
            self.key, v.agent[rows], v.session_no[rows].astype(np.int64) * SLOTS + slot
        )

    def run(self, agent: np.ndarray, time: np.ndarray, channel: np.ndarray, recovered=None):
        """Process one batch of visits at the given exact times; updates the world's state."""
        w, pop, cfg = self.w, self.w.pop, self.w.scenario.funnel
        if len(agent) == 0:
            return
        session_no = pop.n_sessions[agent] + occurrence(agent)
        add_at(pop.n_sessions, agent, 1)
        recovered = np.zeros(len(agent), bool) if recovered is None else recovered
        v = Visits(
            agent=agent,
            time=time,
            channel=channel,
            session_no=session_no,
            recovered=recovered,
            p_bounce=w.bounce_by_source[channel] + cfg.mobile_bounce * pop.device[agent],
            extra_pages=np.full(len(agent), cfg.extra_pages),
        )
        self._resumed = self._resume(v)
        w.dispatch("on_session_start", v)
        bounced = (self.draw(v, _S_BOUNCE) < v.p_bounce) & ~recovered & ~self._resumed
        pages = np.where(
            bounced, 1, 2 + np.floor(rng.exponential(self.key, agent, session_no * SLOTS + _S_PAGES)
                                     * np.maximum(v.extra_pages - 0.5, 0.0))
        ).astype(np.int32)  # fmt: skip
        self._views(v, pages, bounced)
        back = np.flatnonzero(self._resumed)
        if len(back):  # the saved cart's product is there again, first
            v.views[back, 0] = w.saved_product[agent[back]]
        w.dispatch("on_view", v)
        basket = self._cart(v)
        w.dispatch_basket(v, basket)
        self._checkout(v, basket, bounced, pages)

    def _resume(self, v: Visits) -> np.ndarray:
        """Which visits take up the agent's saved cart (not a reminder's: those are recovered).

        A cart left within ``funnel.cart_days`` is still in the store (the saved cart); on the
        agent's next visit it is taken up (no bounce, its first product in the cart, the normal
        checkout) if the agent meant to come back for it (``funnel.come_back``: the planned
        return, or any visit before it) or else with chance ``funnel.cart_return``; else let go.
        """
        cfg, w = self.w.scenario.funnel, self.w
        resumed = np.zeros(len(v), dtype=bool)
        self._planned = resumed.copy()
        if cfg.cart_return <= 0 and cfg.come_back <= 0:
            return resumed
        rows = np.flatnonzero((v.time - w.saved_at[v.agent] <= cfg.cart_days) & ~v.recovered)
        if len(rows):
            agent = v.agent[rows]
            planned = w.coming_back[agent] & (w.saved_product[agent] >= 0)
            back = planned | (self.draw_rows(v, rows, _S_RESUME) < cfg.cart_return)
            resumed[rows[back]] = w.saved_product[agent[back]] >= 0
            self._planned[rows[planned]] = True
            w.saved_at[agent] = -np.inf  # seen: taken up or let go
        if cfg.come_back > 0:  # back (for the cart or not, or by a reminder)
            w.cancel_return(v.agent[w.coming_back[v.agent]])
        return resumed

    def _views(self, v: Visits, pages: np.ndarray, bounced: np.ndarray) -> None:
        w, pop, cfg = self.w, self.w.pop, self.w.scenario.funnel
        u_n = self.draw(v, _S_NVIEWS)
        n_views = np.minimum(MAX_VIEWS, np.floor((pages - 1) * cfg.views_per_page + u_n))
        n_views = np.where(bounced, 0, np.maximum(n_views, 1)).astype(np.int32)
        slots = np.arange(MAX_VIEWS)
        u_cat = self.draw(v, _S_CAT + slots)
        u_prod = self.draw(v, _S_PROD + slots)
        customer = np.where(pop.n_orders[v.agent] > 0, cfg.customer_cart_lift, 1.0)
        # float32 as the traits are: the same numbers as the numpy expression of the funnel's
        # rule (cart propensity x p_cart in float32, then the customer lift in float64)
        base = (np.float32(cfg.p_cart) * pop.cart_propensity[v.agent]) * customer
        if self.calendar is not None:
            base = base * self._calendar_factor(v)
        ret = w.scenario.retention
        if ret.satiation > 0:  # a recent order's need, satisfied
            since = v.time - pop.last_order[v.agent]
            fed = np.exp(-np.where(np.isfinite(since), since, np.inf) / ret.satiation_days)
            base = base * (1 - ret.satiation * fed)
        v.views, v.p_cart = _view_slots(
            pop.affinity, v.agent, n_views.astype(np.int64), u_cat, u_prod, self.per_cat,
            self.prod_by_cat, w.catalog.price / cfg.price_reference, pop.price_sensitivity, base,
        )  # fmt: skip

    def _calendar_factor(self, v: Visits) -> np.ndarray:
        """Cart-chance multiplier of the visit's day: intent, promotion, remembered prices.

        A promotion's discount d is priced in as any discount, ``(1 - d) ** -sensitivity``. A
        visitor on a promotion day remembers its price; later the list price is compared with
        that reference, ``(1 - d_seen) ** (sensitivity x w)``, ``w = reference_weight x
        exp(-days since / reference_days)``: Greenleaf (1995), promotions lower reference
        prices and so sales after them.
        """
        cal, cfg = self.calendar, self.w.scenario.funnel
        factor = cal.at(cal.intent, v.time)
        if not self.sale:  # no promotion: (1 - 0) ** -s is 1, no power to take per visit
            return factor
        sens = self.w.pop.price_sensitivity[v.agent].astype(float)
        d_now = cal.at(cal.discount, v.time)
        factor = factor * (1 - d_now) ** -sens
        if self.ref_seen is not None:
            since = v.time - self.ref_seen[v.agent]
            w = cfg.reference_weight * np.exp(-since / cfg.reference_days)
            factor *= (1 - self.ref_depth[v.agent]) ** (sens * w)
            seen = d_now > 0
            self.ref_seen[v.agent[seen]] = v.time[seen]
            self.ref_depth[v.agent[seen]] = d_now[seen]
        return factor

    def _cart(self, v: Visits) -> Basket:
        """The cart: each viewed product's units, ``p_cart`` of them expected up to a ceiling.

        A view's expected units are ``e = min(p_cart, funnel.max_units)``: ``floor(e)`` and one
        more with chance ``e - floor(e)`` (below 1, the chance the product goes to the cart),
        plus one with ``second_item``. With ``max_units`` 1 this is a chance clipped at 1, and
        the readiest shoppers stop answering prices, reviews and offers; above it what they buy
        still scales with each factor, in quantity, as heavy buyers' quantities do
        (Krishnamurthi & Raj 1991; Kim & Rossi 1994: heavy buyers are the more price-sensitive).
        """
        cfg = self.w.scenario.funnel
        slots = np.arange(MAX_VIEWS)
        expected = np.clip(np.nan_to_num(v.p_cart), 0.0, cfg.max_units)
        whole = np.floor(expected)
        units = whole + (self.draw(v, _S_CART + slots) < expected - whole)
        units[v.views < 0] = 0
        back = v.recovered | self._resumed
        if back.any():  # a recovered or saved cart comes back with its first item in it, one
            units[back, 0] = v.views[back, 0] >= 0  # unit (the slot's chance is another view's)
        visit, col = np.nonzero(units)
        product = v.views[visit, col]
        qty = units[visit, col] + (self.draw(v, _S_QTY + slots)[visit, col] < cfg.second_item)
        price = self.w.catalog.price[product]
        paid = price.copy()
        if self.sale:  # a store-wide promotion's discount
            paid *= 1 - self.calendar.at(self.calendar.discount, v.time[visit])
        return Basket(
            visit=visit.astype(np.int64),
            product=product.astype(np.int64),
            quantity=qty.astype(np.int32),
            list_price=price,
            price=paid,
            tag=np.zeros(len(visit), dtype=np.int16),
        )

    def _top_up(self, v: Visits, b: Basket, value, carts, first) -> np.ndarray:
        """Shoppers a little below the free-shipping threshold add an item to reach it.

        A cart whose value is within ``shipping.topup_gap`` below the threshold is topped up with
        chance ``topup_rate``: the shopper adds the cheapest item that closes the gap among the
        products viewed in the session and the cheap complements of the cart's first item (one
        unit at list price, or at a store-wide promotion's price); with no such item, nothing is
        added. So order values bunch just above the threshold. Returns the carts' values with
        the added items.
        """
        cfg, cat = self.w.scenario.shipping, self.w.catalog
        if cfg.fee <= 0 or cfg.topup_rate <= 0 or not len(carts):
            return value
        gap = cfg.free_threshold - value[carts]
        near = np.flatnonzero((gap > 0) & (gap <= cfg.topup_gap))
        near = near[self.draw_rows(v, carts[near], _S_TOPUP) < cfg.topup_rate]
        if not len(near):
            return value
        rows = carts[near]
        cand = np.concatenate([v.views[rows], cat.complements[first[near]]], axis=1)
        off = np.ones(len(rows))
        if self.sale:  # in a store-wide sale the added item is discounted too
            off = 1 - self.calendar.at(self.calendar.discount, v.time[rows])
        price = np.where(cand >= 0, cat.price[np.maximum(cand, 0)] * off[:, None], np.inf)
        price = np.where(price >= gap[near, None], price, np.inf)
        pick = np.argmin(price, axis=1)
        found = np.isfinite(price[np.arange(len(rows)), pick])
        rows, product = rows[found], cand[found, pick[found]]
        paid = price[found, pick[found]]
        b.extend(
            visit=rows, product=product, quantity=np.ones(len(rows)),
            list_price=cat.price[product], price=paid, tag=np.full(len(rows), TOPUP_TAG),
        )  # fmt: skip
        value = value.copy()
        value[rows] += paid  # after the cart's own lines, as bincount would add
        return value

    def _checkout(self, v: Visits, b: Basket, bounced: np.ndarray, pages: np.ndarray) -> None:
        """Top-ups, shipping fee, checkout and purchase; then booking, sign-ups and return.

        Everything is computed on the visits with a cart (``carts``), the only ones that can
        check out, and scattered into full-length arrays for the hooks and the tables.
        """
        w, pop, cfg = self.w, self.w.pop, self.w.scenario.funnel
        ship = w.scenario.shipping
        m = len(v)
        value = np.bincount(b.visit, weights=b.price * b.quantity, minlength=m)
        carts, first_line = np.unique(b.visit, return_index=True)
        value = self._top_up(v, b, value, carts, b.product[first_line])
        has_cart = np.zeros(m, dtype=bool)
        has_cart[carts] = True
        vc = value[carts]
        sens = pop.price_sensitivity[v.agent[carts]]
        ratio = np.maximum(vc, 1.0) / (1.5 * cfg.price_reference)
        fee = np.where(vc < ship.free_threshold, ship.fee, 0.0)
        # An unexpected fee at checkout: completion falls by fee_abandon x price sensitivity.
        fee_factor = np.where(fee > 0, 1 - np.minimum(ship.fee_abandon * sens, 1.0), 1.0)
        v.shipping, v.p_checkout, v.p_purchase = np.zeros(m), np.zeros(m), np.zeros(m)
        v.shipping[carts] = fee
        v.p_checkout[carts] = cfg.p_checkout
        v.p_purchase[carts] = cfg.p_purchase * ratio ** (-0.15 * sens) * fee_factor
        if cfg.come_back_lift and self._planned.any():  # came back for the cart: readier to pay
            v.p_checkout[self._planned] *= 1 + cfg.come_back_lift
            v.p_purchase[self._planned] *= 1 + cfg.come_back_lift
        w.dispatch("on_checkout", v)
        began = np.zeros(m, dtype=bool)
        began[carts] = self.draw_rows(v, carts, _S_CHECKOUT) < np.clip(v.p_checkout[carts], 0, 1)
        rows = np.flatnonzero(began)
        bought = np.zeros(m, dtype=bool)
        bought[rows] = self.draw_rows(v, rows, _S_PURCHASE) < np.clip(v.p_purchase[rows], 0, 1)
        v.purchased = bought
        if cfg.cart_return > 0 or cfg.come_back > 0:  # a cart left is saved; an order empties it
            left = has_cart & ~bought
            rows = np.flatnonzero(left | bought)[::-1]  # the batch is in time order: latest first
            rows = rows[np.unique(v.agent[rows], return_index=True)[1]]  # each agent's last
            first = np.full(m, -1, dtype=np.int64)
            first[carts] = b.product[first_line]
            agent, left = v.agent[rows], left[rows]
            w.saved_at[agent] = np.where(left, v.time[rows], -np.inf)
            w.saved_product[agent] = np.where(left, first[rows], -1)
            if cfg.come_back > 0:  # some mean to come back for it, from the next day on
                means = left & (self.draw_rows(v, rows, _S_COME_BACK) < cfg.come_back)
                k = v.session_no[rows].astype(np.int64) * SLOTS + _S_RETURN_GAP
                wait = rng.exponential(self.key, agent, k) * cfg.come_back_days
                # (_resume already cancelled every visitor's earlier plan)
                w.plan_returns(agent[means], (np.floor(v.time[rows]) + 1 + wait)[means])
        rows = np.flatnonzero(pop.n_sessions[v.agent] == 1)
        quiz = np.zeros(m, dtype=bool)
        quiz[rows] = self.draw_rows(v, rows, _S_QUIZ) < w.scenario.population.quiz_rate
        w.record_visits(v, b, bounced, pages, has_cart, began, bought, value, quiz)
        self._signups(v, bounced, bought)
        self._after(v)

    def _signups(self, v: Visits, bounced: np.ndarray, bought: np.ndarray) -> None:
        """Email sign-ups: by the pop-up of a first visit and at checkout, if not on the list."""
        cfg = self.w.scenario.email
        popup = ~bounced & (v.session_no == 0)
        rows = np.flatnonzero(popup | bought)
        rows = rows[~self.w.pop.email_ok[v.agent[rows]]]
        if not len(rows):
            return
        p = np.where(bought[rows], cfg.signup_checkout, 0.0)
        p = 1 - (1 - p) * np.where(popup[rows], 1 - cfg.signup_popup, 1.0)
        rows = rows[self.draw_rows(v, rows, _S_SIGNUP) < p]
        if len(rows):
            agent, first = np.unique(v.agent[rows], return_index=True)
            self.w.email_signup(agent, v.time[rows[first]])

    def _after(self, v: Visits) -> None:
        """Return hazard and lapsing: schedule each agent's next own visit.

        The lapse chance of a visit without an order is scaled by the agent's last satisfaction
        (``world.sat_lapse``, see :meth:`sim.world.World.satisfaction_factor`): unhappy
        customers lapse more.
        """
        w, pop, cfg = self.w, self.w.pop, self.w.scenario.retention
        v.rate_mult = np.ones(len(v))
        lapse = cfg.lapse_per_visit * pop.churn[v.agent] * w.sat_lapse[v.agent]
        v.p_lapse = np.where(v.purchased, 0.0, lapse)
        w.dispatch("on_return", v)
        lapse = self.draw(v, _S_LAPSE) < v.p_lapse
        pop.lapsed[v.agent] = np.where(v.purchased, False, pop.lapsed[v.agent] | lapse)
        w.rate_mult[v.agent] = v.rate_mult
        gap = rng.exponential(self.key, v.agent, v.session_no.astype(np.int64) * SLOTS + _S_NEXT)
        w.reschedule(v.agent, v.time, gap)

    def session_ids(self, v: Visits) -> np.ndarray:
        """Stable session ids: agent id and the agent's session number."""
        return v.agent.astype(np.int64) * _SESSION_SHIFT + v.session_no


@njit(cache=True)
def _view_slots(affinity, agent, n_views, u_cat, u_prod, per_cat, prod_by_cat, rel_price, sens,
                base):  # fmt: skip
    """Each visit's viewed products and their cart chances (one compiled pass).

    Slot j of a visit with at least j + 1 views shows a product of category c (drawn by the
    agent's tastes: the first c whose cumulative affinity reaches ``u_cat``) picked uniformly
    by ``u_prod``; its cart chance is ``base x (price / reference) ** -sensitivity x
    sqrt(affinity_c x categories)``. Empty slots: product -1, chance 0.
    """
    m, k = u_cat.shape
    n_cat = affinity.shape[1]
    views = np.full((m, k), -1, np.int64)
    p_cart = np.zeros((m, k))
    width = np.float32(n_cat)
    for i in range(m):
        a = agent[i]
        for j in range(min(n_views[i], k)):
            acc = np.float32(0.0)
            c = 0
            for cc in range(n_cat):  # cumulative affinity in float32, as numpy's cumsum
                acc += affinity[a, cc]
                if acc < u_cat[i, j]:
                    c = cc + 1
            c = min(c, n_cat - 1)
            product = prod_by_cat[c, int(np.floor(u_prod[i, j] * per_cat[c]))]
            views[i, j] = product
            taste = np.sqrt(np.float32(affinity[a, c] * width))
            factor = rel_price[product] ** (-np.float64(sens[a]))
            p_cart[i, j] = base[i] * factor * np.float64(taste)
    return views, p_cart


def carts_of(v: Visits, value: np.ndarray, items: np.ndarray, rows: np.ndarray, order_id) -> Carts:
    """The Carts cohort of the visits at positions ``rows``."""
    return Carts(
        agent=v.agent[rows],
        time=v.time[rows],
        value=value[rows],
        items=items[rows],
        visit=rows,
        order_id=order_id,
    )
