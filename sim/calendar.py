"""The calendar: each day's own-visit multiplier and intent, and the store's promotions.

A day's own visits (organic, direct, discovery) are scaled by ``weekday x season x holiday``:
the weekday cycle of ``traffic.weekday``, a yearly cosine ``1 + seasonality cos(2 pi (day of
year - peak_day) / 365)`` and the product of the ``traffic`` multipliers of the holidays that
cover the day. Intent (the add-to-cart chance) is the product of their ``intent``
multipliers. A promotion takes ``discount`` off every list price on its days (the shopper's
price response and the price paid follow, as for any discount) and sends extra newsletters on
``email_days``; on its first day it pulls forward a share ``pull_forward`` of the own visits
aware shoppers had planned within ``pull_days`` after it (they come during the sale instead).
Paid channels keep their budgets: a holiday moves no ad spend.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from sim.errors import ConfigError, check_number


@dataclass
class Calendar:
    """Per-day arrays over the simulated span, indexed by ``day + warmup_days``."""

    offset: int
    traffic: np.ndarray  # own-visit multiplier, weekday cycle included
    intent: np.ndarray  # add-to-cart multiplier
    discount: np.ndarray  # store-wide discount share of the promotions
    promotion: np.ndarray  # 1 on a promotion day (mmm.csv's control)
    holiday: np.ndarray  # 1 on a day a holiday covers (mmm.csv's control)
    emails: dict[int, list[str]]  # day -> promotions sending an extra newsletter that day
    pulls: dict[int, list[tuple[int, float, int]]]  # first day -> (end, pull_forward, pull_days)

    def at(self, values: np.ndarray, time: np.ndarray) -> np.ndarray:
        """``values`` of the days of exact times."""
        idx = np.floor(time).astype(np.int64) + self.offset
        return values[np.clip(idx, 0, len(values) - 1)]


def holiday_start(h, year: int) -> dt.date:
    """First day of a holiday in a year."""
    if h.day:
        first = dt.date(year, h.month, h.day)
    else:
        first = dt.date(year, h.month, 1)
        first += dt.timedelta(days=(h.weekday - first.weekday()) % 7 + 7 * (h.nth - 1))
    return first + dt.timedelta(days=h.offset)


def _years(first: dt.date, last: dt.date) -> range:
    return range(first.year - 1, last.year + 2)


def holiday_days(scenario, name: str) -> list[int]:
    """Day numbers of each occurrence's first day of a holiday (may lie outside the span)."""
    h = scenario.calendar.holidays[name]
    first = scenario.start + dt.timedelta(days=-scenario.warmup_days)
    last = scenario.start + dt.timedelta(days=scenario.days)
    return [scenario.day_of(holiday_start(h, y)) for y in _years(first, last)]


def build(scenario) -> Calendar:
    """The calendar of a scenario's warm-up and window."""
    cal, lo, n = scenario.calendar, -scenario.warmup_days, scenario.warmup_days + scenario.days
    days = np.arange(lo, lo + n)
    dates = [scenario.start + dt.timedelta(days=int(d)) for d in days]
    weekday = np.asarray(scenario.traffic.weekday, float)[[d.weekday() for d in dates]]
    doy = np.array([d.timetuple().tm_yday for d in dates])
    season = 1 + cal.seasonality * np.cos(2 * np.pi * (doy - cal.peak_day) / 365.25)
    traffic, intent, holiday = weekday * season, np.ones(n), np.zeros(n)
    for name, h in cal.holidays.items():
        if not cal.use_holidays:
            break
        for start in holiday_days(scenario, name):
            span = (days >= start) & (days < start + h.days)
            traffic[span] *= h.traffic
            intent[span] *= h.intent
            holiday[span] = 1
    discount, promotion, emails, pulls = np.zeros(n), np.zeros(n), {}, {}
    for name, p in scenario.promotions.items():
        if p.start in cal.holidays:
            starts = holiday_days(scenario, p.start)
        else:
            starts = [scenario.day_of(p.start)]
        for start in starts:
            span = (days >= start) & (days < start + p.days)
            discount[span] = 1 - (1 - discount[span]) * (1 - p.discount)
            promotion[span] = 1
            for e in p.email_days:
                emails.setdefault(start + e, []).append(name)
            if p.pull_forward > 0 and p.pull_days > 0:
                pulls.setdefault(start, []).append((start + p.days, p.pull_forward, p.pull_days))
    return Calendar(
        scenario.warmup_days, traffic, intent, discount, promotion, holiday, emails, pulls
    )


def check(scenario, prefix: str = "scenario") -> None:
    """Calendar and promotion values the generic walk cannot check (ConfigError)."""
    cal = scenario.calendar
    check_number(cal.seasonality, f"{prefix}.calendar.seasonality", ge=0, lt=1)
    check_number(cal.peak_day, f"{prefix}.calendar.peak_day", ge=1, le=366, integer=True)
    for name, h in cal.holidays.items():
        key = f"{prefix}.calendar.holidays.{name}"
        check_number(h.month, f"{key}.month", ge=1, le=12, integer=True)
        check_number(h.day, f"{key}.day", ge=0, le=31, integer=True)
        check_number(h.offset, f"{key}.offset", integer=True)
        if h.day:
            try:
                dt.date(2000, h.month, h.day)  # a leap year: Feb 29 is a date
            except ValueError:
                raise ConfigError(f"{key}.day", f"a day of month {h.month}", h.day) from None
        else:
            check_number(h.weekday, f"{key}.weekday", ge=0, le=6, integer=True)
            check_number(h.nth, f"{key}.nth", ge=1, le=4, integer=True)
    for name, p in scenario.promotions.items():
        key = f"{prefix}.promotions.{name}"
        if p.start not in cal.holidays:
            try:
                dt.date.fromisoformat(p.start)
            except (TypeError, ValueError):
                known = ", ".join(sorted(cal.holidays)) or "none configured"
                allowed = f"a date YYYY-MM-DD or a holiday of scenario.calendar.holidays ({known})"
                raise ConfigError(f"{key}.start", allowed, p.start) from None
        check_number(p.discount, f"{key}.discount", ge=0, lt=1)
        for i, e in enumerate(p.email_days):
            check_number(e, f"{key}.email_days[{i}]", integer=True)
