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
    # Ad clicks fall on the audience in proportion to visit_rate ** ad_click_activity: people who
    # come often on their own click the store's ads often too (0: at random over the audience)
    ad_click_activity: float = 0.0
    # Gamma shape of each agent's own multiplier (mean 1) on its segment's cart_propensity; 0: none
    cart_propensity_shape: float = 0.0
    # Share of the agents who enter the market later, over the default span (as many a day over
    # any other: sim.population.entry_times); 0: none
    newcomers: float = 0.0


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
    # The catalog's own seed: a store keeps its catalog whatever the run's seed (replicates then
    # draw new people for the same store); None: the run's seed draws it
    seed: int | None = None


@dataclass
class PaidChannelConfig:
    """A paid channel: budget per 1,000 people of the population per day, CPM and CTR."""

    budget_per_1000: float = MISSING
    cpm: float = MISSING
    ctr: float = MISSING
    audience: float = MISSING  # share of the population the campaign targets
    awareness_per_impression: float = MISSING
    saturation_frequency: float = MISSING  # ad fatigue: effective impressions saturate near it
    # Search only: the share of aware agents' organic-search visits whose searcher clicks the
    # store's own search ad instead (a paid click replacing a visit that was coming anyway)
    brand_capture: float = 0.0
    # Carry-over: an agent the day's ads reach makes a visit of its own later (not a click:
    # direct, after an exponential delay whose half-life is carryover_half_life days) with
    # chance 1 - exp(-response F), F its effective impressions; a day's impressions bring
    # visits that decay geometrically over the following days (adstock)
    response: float = 0.0
    carryover_half_life: float = 1.0


@dataclass
class TrafficConfig:
    """Organic and direct visits of aware agents, discovery of unaware ones, the weekday cycle."""

    visit_rate: float = MISSING
    discovery_rate: float = MISSING
    organic_share: float = MISSING
    weekday: list[float] = field(default_factory=list)
    # Aware prospects (no order yet, on no list) forget the store at this half-life in days
    # (0: never); ads and visits make them aware again
    forget_half_life: float = 0.0


@dataclass
class MessagingConfig:
    """An email or SMS campaign calendar."""

    every_days: int = MISSING
    first_day: int = MISSING
    open_rate: float = MISSING
    click_rate: float = MISSING
    unsubscribe: float = MISSING  # per send at a weekly cadence
    cost_per_send: float = MISSING
    fatigue: float = MISSING  # per-send unsubscribe = unsubscribe * (7 / every_days) ** fatigue


@dataclass
class EmailConfig(MessagingConfig):
    """The email newsletter, plus how the list grows (sign-ups) and greets (welcome series)."""

    signup_checkout: float = MISSING  # chance a buyer not on the list joins at checkout
    signup_popup: float = MISSING  # chance a visitor not on the list joins by the pop-up
    welcome_emails: int = MISSING  # emails of the welcome series after a sign-up (0: none)
    welcome_every_days: int = MISSING  # days between them (the first on the day after)
    welcome_open_rate: float = MISSING
    welcome_click_rate: float = MISSING  # clicks per delivered welcome email


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
    # Most units of one product a view adds: a view's expected units are min(p_cart, max_units)
    # (sim.funnel.Funnel._cart); 1 is a cart chance clipped at 1
    max_units: int = 1
    # Reference prices: a shopper who saw a promotion's prices remembers them; afterwards the
    # list price feels (1 - discount) ** -(reference_weight exp(-days since / reference_days))
    # dearer, priced in with the shopper's sensitivity (the post-promotion dip)
    reference_weight: float = 0.0
    reference_days: float = 1.0
    # Saved carts: a cart left is still there on the shopper's next visit within cart_days,
    # taken up with chance cart_return (the shopper came back for it, no reminder needed)
    cart_return: float = 0.0
    cart_days: float = 1.0
    # Planned returns: an abandoner means to come back for the cart with chance come_back and
    # does so from the next day on, after an exponential wait of mean come_back_days (a visit
    # of its own that takes the saved cart up, checkout and purchase x (1 + come_back_lift)).
    # A reminder reaching one before that return is the way it comes back (retargeting)
    come_back: float = 0.0
    come_back_days: float = 1.0
    come_back_lift: float = 0.0


@dataclass
class AftermathConfig:
    """After an order: delivery, satisfaction, surveys and reviews."""

    delivery_days: float = (
        MISSING  # mean transit days of standard shipping (after a day's handling)
    )
    promise_days: float = MISSING  # delivery promised within this many days of the order
    early_per_day: float = MISSING  # satisfaction points per day delivered before the promise
    late_per_day: float = MISSING  # satisfaction points lost per day late
    express_share: float = MISSING  # share of orders the store ships express (the lever)
    express_days: float = MISSING  # mean transit days of express shipping
    express_cost: float = MISSING  # extra carrier cost per express order (ledger "express")
    satisfaction_mean: float = MISSING  # on time, list price, average product and price
    satisfaction_sd: float = MISSING  # spread of satisfaction between orders (noise)
    quality_weight: float = MISSING  # satisfaction points per star of product quality
    discount_weight: float = MISSING  # satisfaction points per unit discount share
    price_weight: float = MISSING  # points lost per log of price over the category's median
    survey_rate: float = MISSING
    review_rate: float = MISSING


@dataclass
class RetentionConfig:
    """Return visits after an order, and lapsing (churn)."""

    post_purchase_boost: float = MISSING
    boost_days: float = MISSING
    lapse_per_visit: float = MISSING
    lapsed_rate: float = MISSING
    satisfaction_reference: float = MISSING  # satisfaction (1-5) at which nothing changes
    satisfaction_lapse: float = MISSING  # lapse chance x exp(k (reference - satisfaction))
    satisfaction_visits: float = MISSING  # visit hazard x exp(k (satisfaction - reference))
    # Need satisfied by an order: the add-to-cart chance x (1 - satiation exp(-days since the
    # last order / satiation_days)); what makes a promotion's pulled-forward orders leave a dip
    satiation: float = 0.0
    satiation_days: float = 1.0
    # After leaving a cart (saved: funnel.cart_return > 0) the visit hazard x (1 + cart_boost
    # exp(-days since / cart_boost_days)): shoppers come back for their carts
    cart_boost: float = 0.0
    cart_boost_days: float = 1.0
    # A customer leaves the market for good (moves, the need ends, a rival wins it) at this yearly
    # hazard from the first order: no visits, clicks or orders after (0: customers never leave)
    leave_per_year: float = 0.0


@dataclass
class ShippingConfig:
    """What shipping costs the shopper and the store; how the free-shipping threshold acts."""

    fee: float = MISSING  # paid by the shopper on an order below the threshold
    free_threshold: float = MISSING  # basket value from which shipping is free
    cost_per_order: float = MISSING  # the store's carrier cost of every order (ledger "shipping")
    fee_abandon: float = MISSING  # relative drop of checkout completion when a fee is charged
    topup_rate: float = MISSING  # chance a shopper just below the threshold tops the cart up
    topup_gap: float = MISSING  # largest gap to the threshold (dollars) shoppers top up


@dataclass
class ReturnsConfig:
    """Returns after delivery: rates by category, refunds, handling cost."""

    rate_by_category: list[float] = field(default_factory=list)  # one per catalog category
    cost_per_return: float = MISSING  # handling and return label per return (ledger "returns")
    salvage_share: float = MISSING  # share of a returned order's cost of goods recovered
    satisfaction_drop: float = MISSING  # satisfaction points a return takes off its order


@dataclass
class HolidayConfig:
    """A holiday or shopping event: a span of days each year with traffic and intent multipliers.

    Its first day is ``month``/``day`` (a fixed date) or, with ``day`` 0, the ``nth``
    ``weekday`` (0 = Monday) of ``month``; then ``offset`` days later (negative: before).
    """

    month: int = MISSING
    day: int = 0
    weekday: int = 0
    nth: int = 0
    offset: int = 0
    days: int = 1  # length of the span
    traffic: float = 1.0  # multiplier of own visits (organic, direct, discovery)
    intent: float = 1.0  # multiplier of the add-to-cart chance
    source: str = ""


@dataclass
class CalendarConfig:
    """Yearly seasonality of own visits and the holidays (see :mod:`sim.calendar`)."""

    seasonality: float = 0.0  # amplitude: own visits x (1 + a cos(2 pi (doy - peak_day) / 365))
    peak_day: int = 1  # day of the year (1-366) of the seasonal peak
    holidays: dict[str, HolidayConfig] = field(default_factory=dict)
    use_holidays: bool = True  # false: no holiday moves traffic or intent (a what-if without)


@dataclass
class PromotionConfig:
    """A store-wide promotion: a discount over a span of days, with an email burst.

    ``start`` is a date (YYYY-MM-DD) or the name of a calendar holiday (then every year's
    occurrence in the simulated span, from the holiday's first day).
    """

    start: str = MISSING
    days: int = MISSING
    discount: float = MISSING  # share off every list price, for every shopper
    email_days: list[int] = field(default_factory=list)  # extra newsletters, days from start
    # Pull-forward: on the first day, each aware, not lapsed agent whose next own visit falls
    # within pull_days after the sale comes during it instead with chance pull_forward (at a
    # uniform time over the sale's days): the visits, and the orders they bring, leave a dip
    pull_forward: float = 0.0
    pull_days: int = 0


@dataclass
class HistoryConfig:
    """The store's past before warm-up: a drawn order history (see :mod:`sim.history`)."""

    days: int = MISSING  # length of the past drawn before warm-up (0: a brand-new store)
    # days before day 0 the per-user pre_* columns count (DESIGN.md: at least 90; the warm-up and,
    # beyond it, the drawn past)
    pre_days: int = 90


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
    email: EmailConfig = field(default_factory=EmailConfig)
    sms: MessagingConfig = field(default_factory=MessagingConfig)
    funnel: FunnelConfig = field(default_factory=FunnelConfig)
    aftermath: AftermathConfig = field(default_factory=AftermathConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    shipping: ShippingConfig = field(default_factory=ShippingConfig)
    returns: ReturnsConfig = field(default_factory=ReturnsConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    calendar: CalendarConfig = field(default_factory=CalendarConfig)
    promotions: dict[str, PromotionConfig] = field(default_factory=dict)
    clv: ClvConfig = field(default_factory=ClvConfig)

    @property
    def start(self) -> dt.date:
        """Day 0 as a calendar date."""
        return dt.date.fromisoformat(self.start_date)

    def day_of(self, date: str | dt.date) -> int:
        """The day number of a calendar date (day 0 is ``start_date``)."""
        date = dt.date.fromisoformat(date) if isinstance(date, str) else date
        return (date - self.start).days

    def date_of(self, day: int) -> dt.date:
        """The calendar date of a day number (the inverse of :meth:`day_of`)."""
        return self.start + dt.timedelta(days=int(day))


# Keys whose values are probabilities; everything else numeric must be >= 0 unless listed below.
_PROBABILITIES = {
    "share", "mobile_share", "initially_aware", "email_optin", "sms_optin", "quiz_rate",
    "margin", "ctr", "brand_capture", "audience", "awareness_per_impression", "organic_share",
    "open_rate", "newcomers",
    "click_rate", "unsubscribe", "mobile_bounce", "p_cart", "p_checkout", "p_purchase",
    "second_item", "survey_rate", "review_rate", "lapse_per_visit", "bounce", "express_share",
    "fee_abandon", "topup_rate", "rate_by_category", "salvage_share", "signup_checkout",
    "signup_popup", "welcome_open_rate", "welcome_click_rate", "satiation",
    "reference_weight", "cart_return", "come_back", "pull_forward",
}  # fmt: skip
_POSITIVE = {
    "size", "days", "n_products", "n_categories", "price_median", "price_scale", "cpm",
    "every_days", "delivery_days", "affinity_concentration", "visit_rate_shape", "price_reference",
    "boost_days", "saturation_frequency", "horizon_days", "promise_days", "express_days",
    "welcome_every_days", "satiation_days",
    "reference_days", "cart_days", "cart_boost_days", "come_back_days", "carryover_half_life",
    "max_units",
}  # fmt: skip
_INTEGERS = {
    "size", "days", "warmup_days", "n_products", "n_categories", "complements", "horizon_days",
    "welcome_emails", "welcome_every_days", "month", "day", "nth", "peak_day", "pull_days",
    "seed", "pre_days", "max_units",
}  # fmt: skip


PRE_DAYS_MIN = 90  # DESIGN.md: the per-user pre_* columns cover at least 90 days before day 0
_AT_LEAST = {"pre_days": PRE_DAYS_MIN}  # names with a lower bound of their own
_ZERO_ALLOWED = {"history.days"}  # dotted suffixes exempt from a positive name ("days")
_CHECKED_ELSEWHERE = {"offset", "email_days"}  # signed day counts (sim.calendar.check)


def _check_value(key: str, name: str, value: object) -> None:
    if value is None or isinstance(value, bool | str) or name in _CHECKED_ELSEWHERE:
        return
    integer = name in _INTEGERS
    if name in _AT_LEAST:
        check_number(value, key, ge=_AT_LEAST[name], integer=integer)
    elif any(key.endswith("." + k) for k in _ZERO_ALLOWED):
        check_number(value, key, ge=0, integer=integer)
    elif name in _PROBABILITIES:
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
    n_cat = scenario.catalog.n_categories
    if len(scenario.returns.rate_by_category) != n_cat:
        raise ConfigError(f"{prefix}.returns.rate_by_category",
                          f"a list of {n_cat} return rates (one per catalog category)",
                          len(scenario.returns.rate_by_category))  # fmt: skip
    from sim.population import newcomer_share

    newcomers, share = scenario.population.newcomers, newcomer_share(scenario)
    if newcomers > 0 and share >= 1:  # as many a day as the default span holds
        top = newcomers / share
        raise ConfigError(f"{prefix}.population.newcomers",
                          f"below {top:.3f} with this past and warm-up (as many newcomers enter a "
                          "day over any span: over this one they would be every agent)",
                          newcomers)  # fmt: skip
    ref = scenario.retention.satisfaction_reference
    if not 1 <= ref <= 5:
        raise ConfigError(f"{prefix}.retention.satisfaction_reference", "in [1, 5]", ref)
    from sim.calendar import check

    check(scenario, prefix)
    return scenario
