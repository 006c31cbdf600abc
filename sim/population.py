"""The population: one row per agent in a structure of arrays, never one object per agent."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim import rng
from sim.config import Scenario

DEVICES = ("desktop", "mobile")
NEVER = np.inf


@dataclass
class Population:
    """Agents as arrays. Traits are fixed at birth; state changes as the world runs.

    Traits: ``segment`` (index into ``segment_names``), ``device``, ``price_sensitivity``,
    ``affinity[n, categories]`` (true category tastes, rows sum to 1), ``visit_rate`` (own
    organic/direct visit hazard per day), ``cart_propensity`` (multiplier on ``funnel.p_cart``: the
    segment's, times the agent's own Gamma draw of shape ``population.cart_propensity_shape``, mean
    1, when that is above 0), ``email_engagement``, ``responsiveness[n, 5]`` (how much
    each strategy moves the agent: personalization, social_proof, gamification, retargeting,
    bundles; mean 1), ``arm``.

    State: ``aware``, ``email_ok``/``sms_ok`` (subscribed), ``zero_party`` (answered the quiz),
    ``lapsed``, ``next_visit`` (time of the next own visit, inf = none), ``n_sessions``,
    ``n_orders``, ``last_order`` (time), ``gone_at`` (when a customer leaves the market for good:
    ``retention.leave_per_year``; inf = never), ``enter_at`` (when the agent enters the market:
    -inf for those in it from the start; ``population.newcomers`` of them enter later, see
    :func:`entry_times`), ``satisfaction`` (of the last delivered order; NaN
    before one), ``revenue``, ``margin``, ``items`` and the per-user
    table's counters.
    """

    segment_names: tuple[str, ...]
    segment: np.ndarray
    device: np.ndarray
    price_sensitivity: np.ndarray
    affinity: np.ndarray
    visit_rate: np.ndarray
    cart_propensity: np.ndarray
    churn: np.ndarray
    email_engagement: np.ndarray
    responsiveness: np.ndarray
    arm: np.ndarray
    aware: np.ndarray
    email_ok: np.ndarray
    sms_ok: np.ndarray
    zero_party: np.ndarray
    lapsed: np.ndarray
    next_visit: np.ndarray
    n_sessions: np.ndarray
    n_orders: np.ndarray
    n_messages: np.ndarray
    last_order: np.ndarray
    satisfaction: np.ndarray
    gone_at: np.ndarray
    enter_at: np.ndarray

    @property
    def size(self) -> int:
        """Number of agents."""
        return len(self.segment)


STRATEGY_NAMES = ("personalization", "social_proof", "gamification", "retargeting", "bundles")


def build_population(scenario: Scenario, seed: int) -> Population:
    """Draw every agent's traits with keyed draws (agent i's traits depend only on seed and i)."""
    pop = scenario.population
    n = pop.size
    ids = np.arange(n, dtype=np.uint64)
    g = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed & (2**63 - 1), 7])))
    # Gamma heterogeneity (mean 1) and Dirichlet tastes: whole-array draws from one generator are
    # fine here because traits are drawn once, before any agent acts. Drawn first: numpy's draws
    # release the GIL, so the compiled kernels load beside them (sim.kernels.preload).
    shape = pop.visit_rate_shape
    heterogeneity = g.gamma(shape, 1.0 / shape, n)
    affinity = g.standard_gamma(
        pop.affinity_concentration, (n, scenario.catalog.n_categories), dtype=np.float32
    )
    affinity /= affinity.sum(axis=1, keepdims=True)
    sensitivity = g.gamma(4.0, 0.25, n)
    responsiveness = 0.5 * g.standard_gamma(2.0, (n, len(STRATEGY_NAMES)), dtype=np.float32)
    engagement = g.gamma(3.0, 1 / 3.0, n)
    k = pop.cart_propensity_shape  # drawn last: every earlier trait stays as it was
    own_propensity = g.gamma(k, 1.0 / k, n) if k > 0 else None
    key = rng.stream_key(seed, "population")
    names = tuple(pop.segments)
    segs = [pop.segments[s] for s in names]
    shares = np.cumsum([s.share for s in segs])
    segment = np.minimum(
        np.searchsorted(shares, rng.uniform(key, ids, 0), side="right"), len(segs) - 1
    )
    segment = segment.astype(np.int8)

    def trait(attr: str) -> np.ndarray:
        return np.array([getattr(s, attr) for s in segs])[segment]

    sensitivity = trait("price_sensitivity") * sensitivity
    engagement = trait("email_engagement") * engagement
    propensity = trait("cart_propensity")
    if own_propensity is not None:
        propensity = propensity * own_propensity
    u = lambda k: rng.uniform(key, ids, k)  # noqa: E731
    enter_at = entry_times(scenario, key, ids)
    aware = (u(1) < pop.initially_aware) & ~np.isfinite(enter_at)  # newcomers start unaware
    return Population(
        segment_names=names,
        segment=segment,
        device=(u(2) < pop.mobile_share).astype(np.int8),
        price_sensitivity=sensitivity.astype(np.float32),
        affinity=affinity,
        visit_rate=(scenario.traffic.visit_rate * trait("visit_rate") * heterogeneity),
        cart_propensity=propensity.astype(np.float32),
        churn=trait("churn").astype(np.float32),
        email_engagement=engagement.astype(np.float32),
        responsiveness=responsiveness,
        arm=np.zeros(n, dtype=np.int8),
        aware=aware,
        email_ok=aware & (u(3) < pop.email_optin),
        sms_ok=aware & (u(4) < pop.sms_optin),
        zero_party=np.zeros(n, dtype=bool),
        lapsed=np.zeros(n, dtype=bool),
        next_visit=np.full(n, NEVER),
        n_sessions=np.zeros(n, dtype=np.int32),
        n_orders=np.zeros(n, dtype=np.int32),
        n_messages=np.zeros(n, dtype=np.int32),
        last_order=np.full(n, -np.inf),
        satisfaction=np.full(n, np.nan, dtype=np.float32),
        gone_at=np.full(n, np.inf),
        enter_at=enter_at,
    )


ENTRY_DAYS_AFTER = 730  # newcomers keep arriving for two years after day 0 (a window, a CLV year)
# The entry span of the default store: its three-year past (history.days 1095), 90-day warm-up
# and ENTRY_DAYS_AFTER. population.newcomers is the newcomers' share over it; over another span
# (another past or warm-up) the share scales with the span, so as many enter a day.
REFERENCE_SPAN = 1095 + 90 + ENTRY_DAYS_AFTER


def entry_span(scenario: Scenario) -> tuple[float, float]:
    """When newcomers may enter: the start of the drawn past, and the span from it."""
    start = -float(scenario.warmup_days + scenario.history.days)
    return start, ENTRY_DAYS_AFTER - start


def newcomer_share(scenario: Scenario) -> float:
    """The share of agents who enter later: ``population.newcomers`` x span / REFERENCE_SPAN."""
    return scenario.population.newcomers * (entry_span(scenario)[1] / REFERENCE_SPAN)


def entry_times(scenario: Scenario, key, ids: np.ndarray) -> np.ndarray:
    """When each agent enters the market: -inf for most, a later time for newcomers.

    Customers leave the market for good (``retention.leave_per_year``); without anyone coming in
    their place the people who would buy are used up and the store's orders fall quarter after
    quarter. Newcomers are people who enter later, at a constant rate from the start of the
    drawn past to ``ENTRY_DAYS_AFTER`` days after day 0 (an end that does not depend on
    ``scenario.days``, so a longer run keeps the same past): ``population.newcomers`` of the
    agents over the default store's span (:data:`REFERENCE_SPAN`), as many a day over any other
    (:func:`newcomer_share`), so a longer warm-up or past does not thin the window's newcomers.
    Before it a newcomer is outside the market: unaware, no discovery; an ad impression on it
    is paid for (it is in the audience) but neither makes it aware nor brings a click.
    Keyed draws (counters 5 and 6 of the population stream): an agent's time depends only on
    the seed and its id.
    """
    out = np.full(len(ids), -np.inf)
    if scenario.population.newcomers <= 0:
        return out
    start, span = entry_span(scenario)
    new = rng.uniform(key, ids, 5) < newcomer_share(scenario)
    out[new] = start + span * rng.uniform(key, ids[new], 6)
    return out
