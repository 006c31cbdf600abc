"""The store's past: customers of every tenure, recency and frequency before warm-up.

A store an experiment runs in has traded for years. Simulating those years with the full engine
would cost about twelve times a quarter's run, so ``scenario.history.days`` of past are drawn
before the warm-up from a reduced model of the engine's own mechanisms, per agent and one event
at a time:

- awareness comes at the agent's daily hazard of being made aware by the paid channels whose
  audience it is in (the same keyed audiences as the engine, their mean daily reach and
  frequency) plus organic discovery; ``population.initially_aware`` is the share aware when the
  past begins;
- an aware agent visits at its own hazard (``visit_rate``, thinned by the weekday cycle as the
  engine does), boosted after an order (``post_purchase_boost``, ``boost_days``) and cut to
  ``lapsed_rate`` once lapsed, plus clicks from ads, e-mail and SMS at their mean daily rates;
- an unaware agent becomes aware at the ads' hazard of making it so, or by a visit: a
  discovery or an ad's click (the engine's ads reach the unaware too), a visit that can end in
  an order like any other; a prospect who forgets the store becomes aware again the same way;
- each visit ends in an order with the agent's mean purchase chance per visit (the funnel's
  bounce, number of product views, add-to-cart by taste and price with ``customer_cart_lift``
  once a customer, checkout and purchase), plus the orders of the cart it may leave (the
  planned return of ``funnel.come_back``, or the next visit within ``cart_days`` taking the
  saved cart up with ``cart_return``: :func:`_carts_back`, booked at this visit), or else
  lapses the agent with ``lapse_per_visit x churn``; an order ends a lapse;
- so the number of visits to the next order or lapse is geometric, and its time inverts the
  cumulative visit hazard: one draw per event, not per visit;
- an order's basket is one product picked with the add-to-cart weights (taste x price), in
  the funnel's units (one, or up to ``max_units`` where its chance is above 1) and one more with
  ``second_item``, sometimes a second product (one unit), topped up to the free-shipping
  threshold as the funnel does (baskets of one or two units), and kept with the checkout's
  chance (value term, shipping fee), booked with the revenue and margin the funnel would book;
- each order's satisfaction (product quality and price, delivery against the promise, a return)
  sets the customer's lapse chance and visit hazard until the next, as after a delivery;
- satiation (``retention.satiation``) scales the purchase chance of the visits while the
  post-order boost is above 1% (its term is below e^-16 after that at the defaults); the past
  has no seasonality, holidays or promotions (the warm-up has them).

What the reduced model leaves out (strategies, review dynamics, a session's other views) the
full 90-day warm-up then works out from this state. A pre-period longer than the warm-up
(``history.pre_days``, at least 90 days) leaves the pre_* columns' first days to the past: it
counts the visits, orders and revenue of ``[-pre_days, -warmup_days)`` into them
(:func:`_history`'s ``pre_out``).
Every draw is keyed on (seed, agent, counter) like :mod:`sim.rng`'s, before any agent acts,
so every world of a seed (arms, with and without a strategy) shares the same past. The
per-agent event loop is a numba kernel: it branches per agent, which numpy cannot vectorise
(a numpy version took ~5 s at a million agents). ``tests/sim/test_history.py`` checks the
result is stationary.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from sim import rng
from sim.rng import uniform_one

_S_GRID = np.linspace(0.0, 6.0, 61)  # price-sensitivity grid of the taste x price tables
_VIEW_DRAWS = 20_000  # Monte Carlo draws of the views-per-session distribution


def views_distribution(extra_pages: float, views_per_page: float, max_views: int) -> np.ndarray:
    """P(k product views) of a non-bounced session, k = 1..max_views (the funnel's own rule)."""
    g = np.random.default_rng(20_240_101)
    pages = 2 + np.floor(g.exponential(size=_VIEW_DRAWS) * max(extra_pages - 0.5, 0.0))
    n = np.floor((pages - 1) * views_per_page + g.random(_VIEW_DRAWS))
    n = np.clip(n, 1, max_views).astype(int)
    return np.bincount(n, minlength=max_views + 1)[1:] / _VIEW_DRAWS


_K_GRID = np.linspace(np.log(1e-4), 0.0, 49)  # log of a view's cart chance at price factor 1


class _Shop:
    """The funnel's terms of each agent's purchase chance per visit, as tables and arrays."""

    @staticmethod
    def _add_ons(sc, cat) -> np.ndarray:
        """``[product, qty-1]``: the item a shopper tops the cart up with (-1: none, no top-up).

        As the funnel: a cart within ``topup_gap`` below the free-shipping threshold gets the
        cheapest item that closes the gap, here among the product's cheap complements (the
        session's other views are not known to the past).
        """
        ship = sc.shipping
        out = np.full((cat.size, 2), -1, dtype=np.int64)
        if ship.fee <= 0 or ship.topup_rate <= 0:
            return out
        comp_price = cat.price[cat.complements]  # [P, k]
        for qty in (1, 2):
            gap = ship.free_threshold - cat.price * qty
            near = (gap > 0) & (gap <= ship.topup_gap)
            price = np.where(comp_price >= gap[:, None], comp_price, np.inf)
            pick = np.argmin(price, axis=1)
            found = near & np.isfinite(price[np.arange(cat.size), pick])
            out[found, qty - 1] = cat.complements[np.flatnonzero(found), pick[found]]
        return out

    def _closing(self, sc, cat, qty: int) -> np.ndarray:
        """``[s grid, product]``: the checkout's factor on p_purchase of a basket of ``qty``."""
        f, ship = sc.funnel, sc.shipping

        def term(value, fee):
            ratio = np.maximum(value, 1.0) / (1.5 * f.price_reference)
            out = ratio[None, :] ** (-0.15 * _S_GRID[:, None])
            cut = 1 - np.minimum(ship.fee_abandon * _S_GRID[:, None], 1.0)
            return np.where(fee[None, :], out * cut, out)

        value = cat.price * qty
        fee = (ship.fee > 0) & (value < ship.free_threshold)
        plain = term(value, fee)
        add = self.add_on[:, qty - 1]
        topped = term(value + np.where(add >= 0, cat.price[np.maximum(add, 0)], 0.0),
                      np.zeros(cat.size, bool))  # fmt: skip
        rate = np.where(add >= 0, ship.topup_rate, 0.0)[None, :]
        return rate * topped + (1 - rate) * plain

    def __init__(self, world) -> None:
        from sim.funnel import MAX_VIEWS
        from sim.world import CH

        sc, pop, cat = world.scenario, world.pop, world.catalog
        f = sc.funnel
        factor = (cat.price[None, :] / f.price_reference) ** (-_S_GRID[:, None])  # [grid, P]
        k = np.exp(_K_GRID)
        # mean over a category's products of min(1, k x factor): the engine clips each view
        # ... and the same weighted by the checkout's terms of that product's basket
        self.add_on = self._add_ons(sc, cat)
        close = np.zeros((len(_S_GRID), cat.size))
        for qty, share in ((1, 1 - f.second_item), (2, f.second_item)):
            close += share * self._closing(sc, cat, qty)
        cart = [np.minimum(1.0, k[None, :, None] * factor[:, None, p]) for p in cat.by_category]
        self.clipped = np.stack([x.mean(axis=2) for x in cart])  # [category, s grid, k grid]
        self.closing = np.stack([
            (x * close[:, None, p]).mean(axis=2) for x, p in zip(cart, cat.by_category, strict=True)
        ])  # fmt: skip
        self.by_cat = [np.asarray(p) for p in cat.by_category]
        self.s = pop.price_sensitivity
        self.aff = pop.affinity
        self.p_views = views_distribution(f.extra_pages, f.views_per_page, MAX_VIEWS)
        bounce = np.array([f.bounce[name] for name in CH])
        own = (
            sc.traffic.organic_share * bounce[CH["organic_search"]]
            + (1 - sc.traffic.organic_share) * bounce[CH["direct"]]
        )
        self.stay = 1 - np.clip(own + f.mobile_bounce * pop.device, 0, 1)
        paid = [CH[name] for name in sc.channels] or [CH["direct"]]
        self.click_stay = 1 - np.clip(bounce[paid].mean() + f.mobile_bounce * pop.device, 0, 1)
        self.base = f.p_cart * pop.cart_propensity.astype(float)
        self.f = f


def _ad_rates(world) -> tuple[np.ndarray, np.ndarray]:
    """Each agent's daily hazard of being made aware by ads (and discovery), and of an ad visit.

    An ad visit is a click or a later visit the ads bring (``response``, carry-over).
    """
    sc, pop = world.scenario, world.pop
    n = pop.size
    aware_h, click_h = np.full(n, sc.traffic.discovery_rate), np.zeros(n)
    for name, cfg in sc.channels.items():
        audience = world.audience(name)
        size = int(audience.sum())
        impressions = cfg.budget_per_1000 * n / cfg.cpm * float(np.mean(sc.traffic.weekday))
        if size == 0 or impressions <= 0:
            continue
        reach = size * -np.expm1(-impressions / size)
        f0 = cfg.saturation_frequency
        freq = f0 * -np.expm1(-impressions / reach / f0)
        share = reach / size
        aware_h[audience] += share * -np.expm1(-cfg.awareness_per_impression * freq)
        weight = world.click_weights(audience)
        click_h[audience] += share * -np.expm1(-cfg.ctr * freq) * weight / weight.mean()
        # carry-over visits (channel response): in a steady past their delay does not matter
        click_h[audience] += share * -np.expm1(-cfg.response * freq)
    return aware_h, click_h


def _message_rates(world, email_ok: np.ndarray, sms_ok: np.ndarray) -> np.ndarray:
    """Each agent's daily hazard of clicking an e-mail or SMS campaign (subscribers only)."""
    sc, eng = world.scenario, world.pop.email_engagement.astype(float)
    out = np.zeros(len(eng))
    for cfg, ok in ((sc.email, email_ok), (sc.sms, sms_ok)):
        p_open = np.clip(cfg.open_rate * eng[ok], 0, 1)
        p_click = np.clip(cfg.click_rate / cfg.open_rate * eng[ok], 0, 1)
        out[ok] += p_open * p_click / cfg.every_days
    return out


@njit(cache=True)
def _p_buy(aff, s_pos, base, lift, clipped, closing, p_views, p_checkout, p_purchase):
    """An agent's chance that a non-bounced visit ends in an order.

    Per category, bilinear lookups of ``clipped`` and ``closing`` (``[c, s, log k]`` tables) at
    the agent's sensitivity and the view's cart chance ``k`` at price factor 1; below the k grid
    no view clips, so the value scales linearly in ``k``.
    """
    n_cat, n_s, n_k = clipped.shape
    k0, dk = _K_GRID[0], _K_GRID[1] - _K_GRID[0]
    si = min(int(s_pos), n_s - 2)
    sw = s_pos - si
    q = 0.0
    weighted = 0.0
    for c in range(n_cat):
        a = aff[c]
        k = base * lift * np.sqrt(a * n_cat)
        if k <= 0.0:
            continue
        x = (np.log(k) - k0) / dk
        scale = a
        if x < 0.0:
            scale = a * k / np.exp(k0)
            x = 0.0
        x = min(x, n_k - 1.0)
        ki = min(int(x), n_k - 2)
        kw = x - ki
        w00 = (1 - sw) * (1 - kw) * scale
        w01 = (1 - sw) * kw * scale
        w10 = sw * (1 - kw) * scale
        w11 = sw * kw * scale
        q += (w00 * clipped[c, si, ki] + w01 * clipped[c, si, ki + 1]
              + w10 * clipped[c, si + 1, ki] + w11 * clipped[c, si + 1, ki + 1])  # fmt: skip
        weighted += (w00 * closing[c, si, ki] + w01 * closing[c, si, ki + 1]
                     + w10 * closing[c, si + 1, ki] + w11 * closing[c, si + 1, ki + 1])  # fmt: skip
    no_cart = 0.0
    one_line = 0.0
    for j in range(p_views.shape[0]):
        no_cart += p_views[j] * (1.0 - q) ** (j + 1)
        one_line += p_views[j] * (j + 1) * q * (1.0 - q) ** j
    term = weighted / q if q > 0.0 else 1.0
    second = 1.0 - one_line / (1.0 - no_cart) if no_cart < 1.0 else 0.0
    return (1.0 - no_cart) * p_checkout * min(1.0, p_purchase * term), second, 1.0 - no_cart, term


@njit(cache=True)
def _carts_back(p, cart, lifted, come_back, cart_return, taken_up):
    """A visit's chance of an order, counting the cart it may leave and the orders that come of it.

    ``p`` orders now; ``cart - p`` leaves a cart. With ``come_back`` the shopper means to come
    back for it and buys on that return with the lifted chance ``lifted`` (given a cart); one
    who leaves it again may come back again: ``come_back (cart - p) lifted / (1 - come_back (1
    - lifted))``. Else the saved cart is taken up with ``cart_return`` if the next visit comes
    while it is kept (``taken_up``: that chance) and bought with the normal chance ``p /
    cart``. The reduced model books those orders at the visit that left the cart (the engine's
    come days later). Works on scalars and arrays alike.

    Approximations (measured in a review, 2026-12-03): a planned return counts as taken up
    wherever it lands, while the engine takes a cart up only within ``cart_days`` (99.9% of
    returns at the defaults, 14 and 2 days; 71% at 3 and 2); the visit that takes a saved cart
    up keeps its own order chance too (an overlap under 1.5% of a visit's orders).
    """
    left = np.maximum(cart - p, 0.0)
    # (1 - come_back (1 - lifted)) is 0 only with come_back = 1 and lifted = 0: nothing bought
    back = come_back * left * lifted / np.maximum(1.0 - come_back * (1.0 - lifted), 1e-300)
    kept = (1.0 - come_back) * left * cart_return * taken_up * p / np.maximum(cart, 1e-300)
    return p + back + kept


@njit(cache=True)
def _cart_line(key, i, j, aff, cat_start, cat_size, cat_products, base, sens, price_log,
               max_units):  # fmt: skip
    """Views until one goes to the cart, as the funnel's views do; (product, units, counter).

    A view whose chance is above 1 is always carted, in the funnel's units
    (:meth:`sim.funnel.Funnel._cart`): ``e = min(chance, max_units)`` expected, ``floor(e)``
    and one more with chance ``e - floor(e)``.
    """
    n_cat = aff.shape[0]
    while True:
        u = uniform_one(key, i, j)
        c = 0
        acc = aff[0]
        while acc < u and c < n_cat - 1:
            c += 1
            acc += aff[c]
        prod = cat_products[cat_start[c] + int(uniform_one(key, i, j + 1) * cat_size[c])]
        chance = base * np.sqrt(aff[c] * n_cat) * np.exp(-sens * price_log[prod])
        j += 3
        u = uniform_one(key, i, j - 1)
        if u < chance:
            e = min(chance, max_units)
            if e <= 1.0:
                return prod, 1, j
            whole = np.floor(e)  # chance above 1: every u carts, so u is a plain uniform
            return prod, int(whole) + (1 if u < e - whole else 0), j


@njit(cache=True)
def _poisson(key, i, c, mean):
    """A Poisson count of the given mean from the keyed uniform ``(key, i, c)`` (inversion)."""
    if mean <= 0.0:
        return 0
    u = uniform_one(key, i, c)
    k = 0
    term = np.exp(-mean)
    total = term
    while u > total and k < 10_000:
        k += 1
        term *= mean / k
        total += term
    return k


@njit(cache=True)
def _leave_time(key, i, origin, first, hazard):
    """When agent ``i``, a customer since ``first``, leaves the market for good.

    Each agent has exits at the points of a keyed Poisson process of rate ``hazard`` from
    ``origin``; a customer leaves at the first one after its first order: an exponential wait
    from that order (memoryless), and one that a slightly earlier or later first order mostly
    does not move, so worlds that differ a little stay paired agent by agent.
    """
    t = min(origin, first)
    k = 0
    while t <= first:
        t -= np.log1p(-uniform_one(key, i, k)) / hazard
        k += 1
    return t


@njit(cache=True)
def leave_times(key, agent, origin, first, hazard):
    """:func:`_leave_time` of each of ``agent`` (customers since ``first``)."""
    out = np.empty(len(agent))
    for j in range(len(agent)):
        out[j] = _leave_time(key, agent[j], origin, first[j], hazard)
    return out


@njit(cache=True)
def _overlap(a, b, lo, hi):
    """Length of [a, b) within [lo, hi)."""
    return max(0.0, min(b, hi) - max(a, lo))


@njit(cache=True)
def _jumped(pkey, i, c, rate, a, b, lo, hi):
    """Visits at ``rate`` in [a, b) that fall in the pre-period [lo, hi).

    A Poisson count on the agent's pre-period stream (counter ``c``); returns the count and the
    next counter.
    """
    span = _overlap(a, b, lo, hi)
    if span > 0.0:
        return _poisson(pkey, i, c, rate * span), c + 1
    return 0, c


@njit(cache=True, nogil=True)
def _history(
    key,
    aware0,
    enter,
    wake_h,
    wake_visit,
    wake_stay,
    own,
    click,
    stay,
    click_stay,
    aff,
    sens,
    base,
    churn_q,
    lift,
    clipped,
    closing,
    p_views,
    p_checkout,
    p_purchase,
    start,
    t0,
    boost_b,
    boost_days,
    lapsed_rate,
    price_log,
    cat_start,
    cat_size,
    cat_products,
    basket,
    cap,
    price,
    add_on,
    shipping,
    sat_base,
    return_rate,
    sat,
    forget_h,
    carts,
    pkey,
    pre_lo,
    lkey,
    leave_h,
    lo,
    hi,
):
    """Every agent's past, one agent at a time; returns its state at t0 and its orders.

    ``basket`` = (second_item, max_units);
    ``shipping`` = (threshold, fee charged?, fee_abandon, topup_rate, price_reference);
    ``sat`` = (promise, early_per_day, late_per_day, delivery_days, sd, return drop, reference,
    visit weight, lapse weight, satiation, satiation days); ``forget_h``: each agent's hazard of
    forgetting the store while a prospect (0 for those on a list: the e-mails keep it in mind);
    ``carts`` = (come_back, come_back_lift, cart_return, cart_days): the orders of the carts
    a visit leaves, booked at that visit (:func:`_carts_back`). ``pre_out`` counts each
    agent's visits in ``[pre_lo, t0)`` (the pre-period before the warm-up, when
    ``history.pre_days`` is longer): the visits the loop steps through, and for the stretches it
    jumps, the visits that neither order nor lapse, a Poisson count of rate ``rate (1 - stop)``
    (a thinned Poisson process is independent of its events), drawn from the stream ``pkey`` so
    the past itself is the same whatever the warm-up.
    """
    threshold, fee_on, fee_abandon, topup_rate, price_ref = shipping
    second_item, max_units = basket
    come_back, back_lift, cart_return, cart_days = carts
    back_checkout = min(1.0, p_checkout * (1.0 + back_lift))
    promise, early_w, late_w, delivery, sat_sd, drop, sat_ref, k_visit, k_lapse, fed, fed_d = sat
    cheapest = max(price.min(), 1.0) / (1.5 * price_ref)
    n = hi - lo  # agents lo .. hi - 1
    s_step = _S_GRID[1] - _S_GRID[0]
    aware = np.zeros(n, np.bool_)
    lapsed_out = np.zeros(n, np.bool_)
    last_out = np.full(n, -np.inf)
    gap_out = np.zeros(n)
    sat_out = np.full(n, np.nan)
    pre_out = np.zeros(n, np.int32)
    o_add = np.empty(cap, np.int64)
    o_agent = np.empty(cap, np.int64)
    o_time = np.empty(cap, np.float64)
    o_product = np.empty(cap, np.int64)
    o_qty = np.empty(cap, np.int32)
    m = 0
    for i in range(lo, hi):
        j = 0
        c = 0  # counter of the pre-period's own stream
        end = t0  # the agent's past ends at t0, or when it leaves the market (a customer)
        pre = 0
        pending = False  # made aware by a visit (a discovery, an ad's click): it comes first
        if aware0[i]:
            t = start
        else:
            t = max(start, enter[i]) - np.log(1.0 - uniform_one(key, i, j)) / max(wake_h[i], 1e-12)
            pending = uniform_one(key, i, j + 1) < wake_visit[i]
        j += 2
        if t >= t0:
            continue
        aware[i - lo] = True
        s_pos = min(max(sens[i], _S_GRID[0]), _S_GRID[-1]) / s_step
        p_new, second_new, cart_new, term = _p_buy(aff[i], s_pos, base[i], 1.0, clipped, closing,
                                                   p_views, p_checkout, p_purchase)  # fmt: skip
        back_new = back_checkout * min(1.0, p_purchase * (1.0 + back_lift) * term)
        p_cust = -1.0  # computed at the first order (most agents never order)
        second_cust = 0.0
        cart_cust = 0.0
        back_cust = 0.0
        last = -np.inf
        lapsed = False
        visit_f = 1.0  # satisfaction's factors on the visit hazard and the lapse chance
        lapse_f = 1.0
        s_last = np.nan
        bound = cheapest ** (-0.15 * sens[i])  # the checkout factor of the cheapest basket
        while True:
            if last > -np.inf and p_cust < 0.0:
                p_cust, second_cust, cart_cust, term = _p_buy(aff[i], s_pos, base[i], lift,
                                                              clipped, closing, p_views,
                                                              p_checkout, p_purchase)  # fmt: skip
                back_cust = back_checkout * min(1.0, p_purchase * (1.0 + back_lift) * term)
            customer = last > -np.inf
            pb = p_cust if customer else p_new
            pc = cart_cust if customer else cart_new
            pr = back_cust if customer else back_new
            a = own[i] * visit_f * (lapsed_rate if lapsed else 1.0)
            q = min(churn_q[i] * lapse_f, 1.0)
            b = click[i]
            boost = boost_b * np.exp(-(t - last) / boost_days) if last > -np.inf else 0.0
            if pending:  # the visit that made the agent aware, at t
                pending = False
                pv = _carts_back(pb, pc, pr, come_back, cart_return,
                                 -np.expm1(-(a + b) * cart_days))  # fmt: skip
                p = pv * wake_stay[i]
                if t >= pre_lo:
                    pre += 1
                buys = uniform_one(key, i, j) < p
                lapses = (not buys) and uniform_one(key, i, j + 1) < q
                j += 2
            elif boost > 0.01:  # visit by visit: the engine sets the hazard at each visit
                rate = b + a * (1.0 + boost)
                t += -np.log(1.0 - uniform_one(key, i, j)) / rate
                if t >= end:
                    break
                if t >= pre_lo:
                    pre += 1
                own_visit = uniform_one(key, i, j + 1) * rate < a * (1.0 + boost)
                pv = _carts_back(pb, pc, pr, come_back, cart_return, -np.expm1(-rate * cart_days))
                p = pv * (stay[i] if own_visit else click_stay[i])
                p *= 1.0 - fed * np.exp(-(t - last) / fed_d)  # satiation (linear in p_cart)
                buys = uniform_one(key, i, j + 2) < p
                lapses = (not buys) and (not lapsed) and uniform_one(key, i, j + 3) < q
                j += 4
            elif (
                forget_h[i] > 0.0 and last == -np.inf
            ):  # a prospect: its next order or lapse, or it
                rate = a + b  # forgets the store first (competing hazards)
                pv = _carts_back(pb, pc, pr, come_back, cart_return, -np.expm1(-rate * cart_days))
                p = pv * (a * stay[i] + b * click_stay[i]) / rate if rate > 0.0 else 0.0
                stop = p if lapsed else p + (1.0 - p) * q
                hazard = rate * stop if rate > 0.0 else 0.0
                total = hazard + forget_h[i]
                was = t
                t += -np.log(1.0 - uniform_one(key, i, j)) / total
                if pre_lo < t0:  # the visits on the way that neither order nor lapse
                    k, c = _jumped(pkey, i, c, rate * (1.0 - stop), was, t, pre_lo, end)
                    pre += k
                if t >= end:
                    break
                if uniform_one(key, i, j + 1) * total < forget_h[i]:
                    # forgotten: aware again as at first (an ad or a visit), or not by t0
                    t += -np.log(1.0 - uniform_one(key, i, j + 2)) / max(wake_h[i], 1e-12)
                    pending = uniform_one(key, i, j + 3) < wake_visit[i]
                    j += 4
                    if t >= end:
                        aware[i - lo] = False
                        break
                    continue
                buys = lapsed or uniform_one(key, i, j + 2) * stop < p
                lapses = not buys
                if t >= pre_lo:  # the visit that orders or lapses
                    pre += 1
                j += 3
            else:  # event by event: visits to the next order or lapse are geometric
                rate = a + b
                if rate <= 0.0:
                    break
                pv = _carts_back(pb, pc, pr, come_back, cart_return, -np.expm1(-rate * cart_days))
                p = pv * (a * stay[i] + b * click_stay[i]) / rate
                stop = p if lapsed else p + (1.0 - p) * q
                if stop <= 0.0:  # visits that never order or lapse, to t0
                    k, c = _jumped(pkey, i, c, rate, t, end, pre_lo, end)
                    pre += k
                    break
                # a geometric number of exponential gaps is one exponential gap at rate x stop
                was = t
                t += -np.log(1.0 - uniform_one(key, i, j)) / (rate * stop)
                if pre_lo < t0:  # the visits on the way that neither order nor lapse
                    k, c = _jumped(pkey, i, c, rate * (1.0 - stop), was, t, pre_lo, end)
                    pre += k
                if t >= end:
                    break
                buys = lapsed or uniform_one(key, i, j + 1) * stop < p
                lapses = not buys
                if t >= pre_lo:  # the visit that orders or lapses
                    pre += 1
                j += 2
            if buys:
                if m == cap:
                    return (
                        aware,
                        lapsed_out,
                        last_out,
                        gap_out,
                        sat_out,
                        pre_out,
                        (o_agent, o_time, o_product, o_qty, o_add),
                        -1,
                    )
                # the basket: views until one is carted, as the funnel fills a cart; a top-up
                # to the free-shipping threshold; kept with the checkout's chance (or redrawn)
                k_lift = lift if last > -np.inf else 1.0
                second = second_cust if last > -np.inf else second_new
                while True:
                    prod, units, j = _cart_line(key, i, j, aff[i], cat_start, cat_size,
                                                cat_products, base[i] * k_lift, sens[i],
                                                price_log, max_units)  # fmt: skip
                    qty = units + (1 if uniform_one(key, i, j) < second_item else 0)
                    value = price[prod] * qty
                    prod2 = -1
                    if uniform_one(key, i, j + 1) < second:  # a second line, of one unit
                        prod2, _, j = _cart_line(key, i, j + 2, aff[i], cat_start, cat_size,
                                                 cat_products, base[i] * k_lift, sens[i],
                                                 price_log, max_units)  # fmt: skip
                        value += price[prod2]
                    # (the add-on tables know baskets of 1 or 2 units; a bigger one has none)
                    extra = add_on[prod, qty - 1] if prod2 < 0 and qty <= 2 else -1
                    if extra >= 0 and uniform_one(key, i, j + 2) >= topup_rate:
                        extra = -1
                    value += price[extra] if extra >= 0 else 0.0
                    factor = (max(value, 1.0) / (1.5 * price_ref)) ** (-0.15 * sens[i])
                    if fee_on and value < threshold:
                        factor *= 1.0 - min(fee_abandon * sens[i], 1.0)
                    kept = uniform_one(key, i, j + 3) * bound < factor
                    j += 4
                    if kept:
                        break
                if prod2 >= 0:
                    extra = prod2
                # its satisfaction on delivery (sim.world.World.satisfaction): quality and
                # price, days against the promise, a return; the customer's latest from now on
                e1 = -np.log(1.0 - uniform_one(key, i, j))
                e2 = -np.log(1.0 - uniform_one(key, i, j + 1))
                days = 1.0 + delivery * 0.5 * (e1 + e2)
                returned = 1.0 if uniform_one(key, i, j + 2) < return_rate[prod] else 0.0
                z = np.sqrt(-2.0 * np.log(1.0 - uniform_one(key, i, j + 3)))
                z *= np.cos(2.0 * np.pi * uniform_one(key, i, j + 4))
                j += 5
                s_last = sat_base[prod] + early_w * max(promise - days, 0.0)
                s_last += -late_w * max(days - promise, 0.0) - drop * returned + sat_sd * z
                s_last = min(max(s_last, 1.0), 5.0)
                visit_f = np.exp(k_visit * (s_last - sat_ref))
                lapse_f = np.exp(-k_lapse * (s_last - sat_ref))
                o_add[m] = extra
                o_agent[m] = i
                o_time[m] = t
                o_product[m] = prod
                o_qty[m] = qty
                m += 1
                if last == -np.inf and leave_h > 0.0:  # the first order starts its clock
                    end = min(t0, _leave_time(lkey, i, start, t, leave_h))
                last = t
                lapsed = False
            elif lapses:
                lapsed = True
        lapsed_out[i - lo] = lapsed
        last_out[i - lo] = last
        sat_out[i - lo] = s_last
        pre_out[i - lo] = pre
        # to the first own visit after t0: a counter of its own (the last draw decided t >= t0)
        gap_out[i - lo] = -np.log(1.0 - uniform_one(key, i, 1 << 40))
    out = (o_agent[:m], o_time[:m], o_product[:m], o_qty[:m], o_add[:m])
    return aware, lapsed_out, last_out, gap_out, sat_out, pre_out, out, m


def forget_rate(scenario) -> float:
    """Daily hazard at which an aware prospect forgets the store (0: never)."""
    half_life = scenario.traffic.forget_half_life
    return float(np.log(2.0) / half_life) if half_life > 0 else 0.0


def draw_history(world) -> None:
    """Give the world's agents ``scenario.history.days`` of past before the warm-up.

    Sets awareness, subscriptions, order counts, last order times and lapses at the start of
    warm-up, books the past orders in the orders table (times before ``-warmup_days``) and
    reschedules the aware agents' first visits from that state. A past of 0 days changes nothing.
    """
    sc, pop = world.scenario, world.pop
    days = sc.history.days
    if days <= 0:
        return
    n, t0 = pop.size, -float(sc.warmup_days)
    aware_h, click_h = _ad_rates(world)
    # An unaware agent becomes aware by an ad seen or by a visit: a discovery or an ad's click
    # (ads reach the unaware too), a visit that can end in an order
    ad_click = click_h.copy()
    wake_h = aware_h + ad_click
    came = sc.traffic.discovery_rate + ad_click
    wake_visit = came / np.maximum(wake_h, 1e-300)
    # Subscribers: the population's opt-in draws, now among everyone aware by warm-up (an agent
    # unaware then has no past orders, so its clicks before do not matter).
    pkey = world.keyed("population")
    ids = np.arange(n, dtype=np.uint64)
    email_optin = rng.uniform(pkey, ids, 3) < sc.population.email_optin
    sms_optin = rng.uniform(pkey, ids, 4) < sc.population.sms_optin
    click_h += _message_rates(world, email_optin, sms_optin)
    shop = _Shop(world)
    f, ret = sc.funnel, sc.retention
    keep = float(np.mean(sc.traffic.weekday) / np.max(sc.traffic.weekday))
    order = np.concatenate(shop.by_cat)
    sizes = np.array([len(p) for p in shop.by_cat])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    cat, am, ship = world.catalog, sc.aftermath, sc.shipping
    shipping = (float(ship.free_threshold), bool(ship.fee > 0), float(ship.fee_abandon),
                float(ship.topup_rate), float(f.price_reference))  # fmt: skip
    sat_base = (am.satisfaction_mean + am.quality_weight * (cat.quality - sc.catalog.rating_mean)
                - am.price_weight * cat.price_vs_category)  # fmt: skip
    sat_params = (float(am.promise_days), float(am.early_per_day), float(am.late_per_day),
                  float(am.delivery_days), float(am.satisfaction_sd),
                  float(sc.returns.satisfaction_drop), float(ret.satisfaction_reference),
                  float(ret.satisfaction_visits), float(ret.satisfaction_lapse),
                  float(ret.satiation), float(ret.satiation_days))  # fmt: skip
    wake_stay = (sc.traffic.discovery_rate * shop.stay + ad_click * shop.click_stay) / np.maximum(
        came, 1e-300
    )  # the waking visit's chance not to bounce: a discovery's (organic) or an ad click's
    args = (
        world.keyed("history"), pop.aware, pop.enter_at, wake_h, wake_visit, wake_stay,
        pop.visit_rate * keep, click_h,
        shop.stay, shop.click_stay, shop.aff, shop.s, shop.base,
        np.clip(ret.lapse_per_visit * pop.churn.astype(float), 0, 1),
        float(f.customer_cart_lift), shop.clipped, shop.closing, shop.p_views,
        float(f.p_checkout), float(f.p_purchase), t0 - days, t0,
        float(ret.post_purchase_boost), float(ret.boost_days), float(ret.lapsed_rate),
        np.log(world.catalog.price / f.price_reference), starts, sizes, order,
        (float(f.second_item), float(f.max_units)),
    )  # fmt: skip
    return_rate = np.asarray(sc.returns.rate_by_category, dtype=float)[cat.category]
    # prospects forget the store, those who will be on a list do not (as in the engine)
    forget_h = np.where(email_optin | sms_optin, 0.0, forget_rate(sc))
    carts = (float(f.come_back), float(f.come_back_lift), float(f.cart_return),
             float(f.cart_days))  # fmt: skip
    # The pre-period before the warm-up (``history.pre_days`` longer than it): the past counts its
    # visits, orders and revenue into the pre_* columns (its own keyed stream: the past is the
    # same either way)
    pre_lo = -float(sc.history.pre_days)
    tail = (cat.price, shop.add_on, shipping, sat_base, return_rate, sat_params, forget_h, carts,
            world.keyed("history_pre"), pre_lo, world.keyed("leave"),
            float(sc.retention.leave_per_year) / 365.0)  # fmt: skip

    def part(lo: int, hi: int):
        cap = max(1024, 2 * (hi - lo))
        while True:
            out = _history(*args, cap, *tail, lo, hi)
            if out[-1] >= 0:
                return out
            cap *= 2

    # Two halves of the agents in two threads (the kernel releases the GIL); each agent's past
    # depends only on its own keyed draws, so the halves joined in order are the serial result.
    half = n // 2
    with ThreadPoolExecutor(2) as pool:
        parts = list(pool.map(part, (0, half), (half, n)))
    aware, lapsed, last, gap, sat, pre = (np.concatenate([p[k] for p in parts]) for k in range(6))
    orders = tuple(np.concatenate([p[6][k] for p in parts]) for k in range(5))
    pop.aware = aware
    pop.email_ok, pop.sms_ok = aware & email_optin, aware & sms_optin
    pop.lapsed = lapsed
    pop.last_order = last
    pop.satisfaction = sat.astype(pop.satisfaction.dtype)
    world.u["pre_sessions"] += pre
    _book(world, *orders, pre_lo)
    world.start_leaving()
    due = np.flatnonzero(aware)
    world.reschedule(due, np.full(len(due), t0), gap[due])


def _book(world, agent, time, product, qty, add, pre_lo=np.inf) -> None:
    """Book the past orders (grouped by agent, in time order) and the agents' counters.

    Orders at ``pre_lo`` or later (before the warm-up) count in the pre_* columns too.
    """
    from sim.kernels import add_at
    from sim.world import _ORDER_SHIFT, CH

    pop, cat = world.pop, world.catalog
    number = np.arange(len(agent)) - np.searchsorted(agent, agent)  # k-th order of the agent
    extra = np.maximum(add, 0)
    topped = add >= 0
    revenue = cat.price[product] * qty + np.where(topped, cat.price[extra], 0.0)
    margin = cat.price[product] * cat.margin[product] * qty + np.where(
        topped, cat.price[extra] * cat.margin[extra], 0.0
    )
    qty = qty + topped
    pre = time >= pre_lo
    add_at(world.u["pre_orders"], agent[pre], 1)
    add_at(world.u["pre_revenue"], agent[pre], revenue[pre])
    pop.n_orders += np.bincount(agent, minlength=pop.size).astype(pop.n_orders.dtype)
    first = number == 0
    world.u["first_order"][agent[first]] = time[first]
    world.u["last_order"][agent] = time  # in time order within an agent: the last write wins
    organic = rng.uniform(world.keyed("history_channel"), agent, number)
    organic = organic < world.scenario.traffic.organic_share
    world.t_orders.add(
        order_id=agent.astype(np.int64) * _ORDER_SHIFT + number, user_id=agent, time=time,
        revenue=revenue, margin=margin, items=qty.astype(np.int32),
        channel=np.where(organic, CH["organic_search"], CH["direct"]).astype(np.int8),
        discount=np.zeros(len(agent)),
    )  # fmt: skip


@njit(cache=True)
def _buy_chances(aff, s_pos, base, lift, clipped, closing, p_views, p_checkout, p_purchase):
    """:func:`_p_buy` of every agent (its first value: the chance a non-bounced visit orders)."""
    out = np.empty(aff.shape[0])
    for i in range(aff.shape[0]):
        out[i] = _p_buy(aff[i], s_pos[i], base[i], lift, clipped, closing, p_views, p_checkout,
                        p_purchase)[0]  # fmt: skip
    return out


def customer_buy_chance(world) -> np.ndarray:
    """Each agent's chance that an own visit ends in an order once it is a customer.

    The reduced model's purchase chance of the drawn past (the funnel's bounce, views,
    add-to-cart with ``customer_cart_lift``, checkout and purchase), with the own visits' mix
    of organic and direct bounce, plus the carts its shoppers come back for
    (``funnel.come_back``): a cart left is bought on the planned return with the lifted
    checkout and purchase chances ``o_r``, and a return that leaves it again may come back
    again, so ``p + come_back A o_r / (1 - come_back (1 - o_r))`` with ``A`` the chance of
    leaving a cart. Satiation and the saved carts taken up by chance (``cart_return``) are
    left out.
    """
    shop, f = _Shop(world), world.scenario.funnel
    s_pos = np.clip(shop.s.astype(float), _S_GRID[0], _S_GRID[-1]) / (_S_GRID[1] - _S_GRID[0])
    args = (shop.aff, s_pos, shop.base, float(f.customer_cart_lift), shop.clipped, shop.closing,
            shop.p_views)  # fmt: skip
    p = _buy_chances(*args, float(f.p_checkout), float(f.p_purchase))
    if f.come_back > 0:
        up = 1.0 + f.come_back_lift
        cart = _buy_chances(*args, 1.0, 1e12)  # the chance of a cart (checkout and buy sure)
        lifted = _buy_chances(*args, min(1.0, f.p_checkout * up), f.p_purchase * up)
        o_r = np.divide(lifted, cart, out=np.zeros_like(cart), where=cart > 0)
        p = _carts_back(p, cart, o_r, float(f.come_back), 0.0, 0.0)
    return shop.stay * p


def from_log(world, orders, first, last, lapsed, visit_rate) -> None:
    """Make every agent a customer with a given past, instead of a drawn one.

    Call it on a world built with ``history.days = 0`` and ``warmup_days = 0``, before it
    runs: agent ``i`` is aware (on no list), has ``orders[i]`` past orders, the first at time
    ``first[i]`` and the last at ``last[i]`` (days, before the world's start), is lapsed or
    not and visits at its own hazard ``visit_rate[i]`` (boosted after its last order as any
    customer's). Its first own visit is drawn from that state (keyed on the agent, stream
    ``log_past``). The past orders themselves are not booked in the orders table.
    """
    pop, n = world.pop, world.pop.size
    start = float(world.env.now)
    pop.aware[:] = True
    pop.email_ok[:] = False
    pop.sms_ok[:] = False
    pop.n_orders[:] = np.asarray(orders, dtype=pop.n_orders.dtype)
    pop.last_order[:] = last
    pop.lapsed[:] = lapsed
    pop.visit_rate[:] = visit_rate
    world.u["first_order"][:] = first
    world.start_leaving()
    world.u["last_order"][:] = last
    world.forget_at[:] = np.inf  # customers do not forget the store
    ids = np.arange(n)
    gap = rng.exponential(world.keyed("log_past"), ids, 0)
    world.reschedule(ids, np.full(n, start), gap)
