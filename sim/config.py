"""The scenario schema: plain dataclasses that the simulator takes as typed parameters.

The values live in ``conf/scenario/*.yaml`` (each default with its source); ``experiments``
registers these dataclasses as Hydra structured configs and turns a composed config into a
:class:`Scenario` with ``OmegaConf.to_object``. ``MISSING`` marks a required field. ``validate``
checks every value once, naming the dotted key (``scenario.channels.paid_search.cpm``) and what is
allowed, so the engine can trust its inputs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields, is_dataclass

from omegaconf import MISSING

from sim.errors import ConfigError, check_number, check_probability

SOURCES = ("paid_search", "paid_social", "display", "organic_search", "direct", "email", "sms")
"""Traffic sources, the ``channel`` of a session (index = the channel code in tables)."""
PAID_CHANNELS = ("paid_search", "paid_social", "display")


@dataclass
class SegmentConfig:
    """One customer segment's share and trait means."""

    share: float = MISSING
    visit_rate: float = MISSING  # multiplier on traffic.visit_rate
    price_sensitivity: float = MISSING  # mean of the agent's gamma-distributed sensitivity
    cart_propensity: float = MISSING  # multiplier on funnel.p_cart
    churn: float = MISSING  # multiplier on retention.lapse_per_visit
    email_engagement: float = MISSING  # multiplier on email open/click propensity


@dataclass
class PopulationConfig:
    """Who the agents are."""

    size: int = MISSING
    segments: dict[str, SegmentConfig] = field(default_factory=dict)
    mobile_share: float = MISSING
    initially_aware: float = MISSING
    email_optin: float = MISSING
    sms_optin: float = MISSING
    quiz_rate: float = MISSING
    affinity_concentration: float = MISSING
    visit_rate_shape: float = MISSING


@dataclass
class CatalogConfig:
    """What the store sells."""

    n_products: int = MISSING
    n_categories: int = MISSING
    price_median: float = MISSING
    price_sigma: float = MISSING
    price_scale: float = MISSING
    margin: float = MISSING
    complements: int = MISSING
    initial_reviews: float = MISSING
    rating_mean: float = MISSING
    shared_reviews: bool = True


@dataclass
class PaidChannelConfig:
    """A paid channel: budget per 1,000 people of the population per day, CPM and CTR."""

    budget_per_1000: float = MISSING
    cpm: float = MISSING
    ctr: float = MISSING
    audience: float = MISSING  # share of the population the campaign targets
    awareness_per_impression: float = MISSING
    saturation_frequency: float = MISSING  # ad fatigue: effective impressions saturate near it


@dataclass
class TrafficConfig:
    """Organic and direct visits of aware agents, discovery of unaware ones, the weekday cycle."""

    visit_rate: float = MISSING
    discovery_rate: float = MISSING
    organic_share: float = MISSING
    weekday: list[float] = field(default_factory=list)


@dataclass
class MessagingConfig:
    """An email or SMS campaign calendar."""

    every_days: int = MISSING
    first_day: int = MISSING
    open_rate: float = MISSING
    click_rate: float = MISSING
    unsubscribe: float = MISSING
    cost_per_send: float = MISSING


@dataclass
class FunnelConfig:
    """What happens inside a visit."""

    bounce: dict[str, float] = field(default_factory=dict)
    mobile_bounce: float = MISSING
    extra_pages: float = MISSING
    views_per_page: float = MISSING
    p_cart: float = MISSING
    customer_cart_lift: float = MISSING
    price_reference: float = MISSING
    p_checkout: float = MISSING
    p_purchase: float = MISSING
    second_item: float = MISSING


@dataclass
class AftermathConfig:
    """After an order: delivery, satisfaction, surveys and reviews."""

    delivery_days: float = MISSING
    satisfaction_mean: float = MISSING
    survey_rate: float = MISSING
    review_rate: float = MISSING


@dataclass
class RetentionConfig:
    """Return visits after an order, and lapsing (churn)."""

    post_purchase_boost: float = MISSING
    boost_days: float = MISSING
    lapse_per_visit: float = MISSING
    lapsed_rate: float = MISSING


@dataclass
class HistoryConfig:
    """The store's past before warm-up: a drawn order history (see :mod:`sim.history`)."""

    days: int = MISSING  # length of the past drawn before warm-up (0: a brand-new store)


@dataclass
class ClvConfig:
    """How lifetime value is predicted: horizon and yearly discount rate of future margin."""

    horizon_days: int = MISSING
    discount_rate: float = MISSING  # yearly, for future margin


@dataclass
class OutputConfig:
    """What the run writes."""

    events: bool = True


@dataclass
class Scenario:
    """A whole simulated store: population, catalog, channels, funnel, calendar and horizon."""

    name: str = MISSING
    start_date: str = MISSING
    days: int = MISSING
    warmup_days: int = MISSING
    population: PopulationConfig = field(default_factory=PopulationConfig)
    catalog: CatalogConfig = field(default_factory=CatalogConfig)
    traffic: TrafficConfig = field(default_factory=TrafficConfig)
    channels: dict[str, PaidChannelConfig] = field(default_factory=dict)
    email: MessagingConfig = field(default_factory=MessagingConfig)
    sms: MessagingConfig = field(default_factory=MessagingConfig)
    funnel: FunnelConfig = field(default_factory=FunnelConfig)
    aftermath: AftermathConfig = field(default_factory=AftermathConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    clv: ClvConfig = field(default_factory=ClvConfig)

    @property
    def start(self) -> dt.date:
        """Day 0 as a calendar date."""
        return dt.date.fromisoformat(self.start_date)

    def day_of(self, date: str | dt.date) -> int:
        """The day number of a calendar date (day 0 is ``start_date``)."""
        date = dt.date.fromisoformat(date) if isinstance(date, str) else date
        return (date - self.start).days


# Keys whose values are probabilities; everything else numeric must be >= 0 unless listed below.
_PROBABILITIES = {
    "share", "mobile_share", "initially_aware", "email_optin", "sms_optin", "quiz_rate",
    "margin", "ctr", "audience", "awareness_per_impression", "organic_share", "open_rate",
    "click_rate", "unsubscribe", "mobile_bounce", "p_cart", "p_checkout", "p_purchase",
    "second_item", "survey_rate", "review_rate", "lapse_per_visit", "bounce",
}  # fmt: skip
_POSITIVE = {
    "size", "days", "n_products", "n_categories", "price_median", "price_scale", "cpm",
    "every_days", "delivery_days", "affinity_concentration", "visit_rate_shape", "price_reference",
    "boost_days", "saturation_frequency", "horizon_days",
}  # fmt: skip
_INTEGERS = {
    "size", "days", "warmup_days", "n_products", "n_categories", "complements", "horizon_days",
}  # fmt: skip


def _check_value(key: str, name: str, value: object) -> None:
    if isinstance(value, bool) or isinstance(value, str):
        return
    integer = name in _INTEGERS
    if name in _PROBABILITIES:
        check_probability(value, key)
    elif name in _POSITIVE:
        check_number(value, key, gt=0, integer=integer)
    else:
        check_number(value, key, ge=0, integer=integer)


def _walk(obj: object, prefix: str) -> None:
    if is_dataclass(obj):
        for f in fields(obj):
            _walk_value(getattr(obj, f.name), f"{prefix}.{f.name}", f.name)
    return None


def _walk_value(value: object, key: str, name: str) -> None:
    if is_dataclass(value):
        _walk(value, key)
    elif isinstance(value, dict):
        for sub, item in value.items():
            _walk_value(item, f"{key}.{sub}", name if not is_dataclass(item) else sub)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk_value(item, f"{key}[{i}]", name)
    else:
        _check_value(key, name, value)


def validate(scenario: Scenario, prefix: str = "scenario") -> Scenario:
    """Check every value of a scenario once; raise ConfigError naming the first bad key."""
    _walk(scenario, prefix)
    try:
        dt.date.fromisoformat(scenario.start_date)
    except ValueError:
        raise ConfigError(
            f"{prefix}.start_date", "a date YYYY-MM-DD", scenario.start_date
        ) from None
    if not scenario.population.segments:
        raise ConfigError(f"{prefix}.population.segments", "at least one segment")
    total = sum(s.share for s in scenario.population.segments.values())
    if abs(total - 1) > 1e-6:
        raise ConfigError(f"{prefix}.population.segments", "shares that sum to 1", round(total, 6))
    if len(scenario.traffic.weekday) != 7:
        raise ConfigError(f"{prefix}.traffic.weekday", "a list of 7 weekday factors (Mon..Sun)")
    unknown = set(scenario.channels) - set(PAID_CHANNELS)
    if unknown:
        raise ConfigError(f"{prefix}.channels", "paid channels among " + ", ".join(PAID_CHANNELS))
    missing = set(SOURCES) - set(scenario.funnel.bounce)
    extra = set(scenario.funnel.bounce) - set(SOURCES)
    if missing or extra:
        raise ConfigError(f"{prefix}.funnel.bounce", "one rate for each of " + ", ".join(SOURCES))
    if scenario.catalog.complements >= scenario.catalog.n_products:
        raise ConfigError(f"{prefix}.catalog.complements", "fewer than catalog.n_products")
    return scenario
