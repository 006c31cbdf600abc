"""A store's customers from its order log, fitted and run forward: the simulated order forecast.

:func:`fit_log` fits the world to a log (:class:`~experiments.calibration.transactions.OrderLog`):

1. spend: ``catalog.price_median`` so that the world's mean amount per purchase day is the
   log's (secant steps on a log scale, each one engine run of the customers);
2. repeat buying: the six parameters of :mod:`experiments.calibration.repeat` by maximum
   likelihood of every customer's purchase days after its first;
3. a check, not a fit: the engine, each customer run from its first purchase to the log's end
   with visit rates from the fitted prior, against the log's repeat purchase days. The reduced
   model leaves out satiation, saved carts and the engine setting the hazard visit by visit,
   and the engine makes more repeat purchases soon after an order than the likelihood's
   model; scaling the visit rate to match this count was tried and made the forecast far
   worse on CDNOW (-40% against -14% for BG/NBD), because the excess is short-term while
   the forecast is mostly of customers long after their last order.

:func:`simulate_forecast` then makes each customer an agent (its purchase days, first and last
purchase, and its visit-rate multiplier and lapse drawn from their posterior given its
history), runs the world ``days`` days from the day after the log's last date, and counts
orders (customer-days) per day; a replicate is a spawned seed (new agents' traits, new draws).
The simulated store has no paid channels, e-mail or SMS: the log says nothing of them, and
their visits are inside the fitted visit rate; its customers do not leave the market
(``retention.leave_per_year`` 0): the fitted lapse is their dropout. :func:`bgnbd_forecast`
is BG/NBD's expectation on the same log.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd

from experiments.calibration import repeat as R
from experiments.calibration.fit import with_values
from experiments.calibration.transactions import OrderLog
from experiments.replicates import replicate_seeds
from experiments.stats.lifetime import fit_bgnbd
from sim import history, rng
from sim.config import PAID_CHANNELS, Scenario
from sim.world import World

OFF = (*PAID_CHANNELS, "email", "sms")
SPEND_STEPS = 3  # engine runs for the spend fit


class LogFit(NamedTuple):
    """What :func:`fit_log` found: the scenario and how it got there."""

    scenario: Scenario  # the starting scenario with the fitted values (market size: the log's)
    reduced: R.Repeat  # the likelihood's parameters (the posterior's model)
    engine_visit_rate: float  # traffic.visit_rate the engine runs at (the likelihood's)
    fit: pd.DataFrame  # target, simulated per statistic
    likelihood: R.RepeatFit
    steps: int  # engine runs


def _scenario(base: Scenario, size: int, start: dt.date, days: int) -> Scenario:
    out = with_values(base, {"population.size": size})
    return dataclasses.replace(out, warmup_days=0, days=max(int(days), 1),
                               start_date=start.isoformat(),
                               history=dataclasses.replace(out.history, days=0))  # fmt: skip


def agents_of(world: World) -> R.Agents:
    """Each agent's factor on the visit rate, its buy chance and its churn factor."""
    sc = world.scenario
    seg = np.array([s.visit_rate for s in sc.population.segments.values()])[world.pop.segment]
    keep = float(np.mean(sc.traffic.weekday) / np.max(sc.traffic.weekday))
    return R.Agents(seg * keep, history.customer_buy_chance(world), world.pop.churn.astype(float))


def _repeat_of(sc: Scenario) -> R.Repeat:
    ret = sc.retention
    return R.Repeat(sc.traffic.visit_rate, sc.population.visit_rate_shape, ret.lapse_per_visit,
                    ret.lapsed_rate, ret.post_purchase_boost, ret.boost_days)  # fmt: skip


def customer_days(orders: pd.DataFrame, n: int, end: np.ndarray | float) -> np.ndarray:
    """Per agent: distinct days ``floor(time)`` of its orders in ``[0, end)`` (end: per agent)."""
    user = orders["user_id"].to_numpy()
    day = np.floor(orders["time"].to_numpy())
    ok = (day >= 0) & (day < np.broadcast_to(end, (n,))[user])
    pairs = np.unique(user[ok].astype(np.int64) * (1 << 20) + day[ok].astype(np.int64))
    return np.bincount(pairs >> 20, minlength=n)


def _from_first_purchase(sc: Scenario, log: OrderLog, seed: int):
    """The engine with each customer from its first purchase to the log's end (aligned at 0).

    Returns per customer its repeat purchase days and the mean amount of the purchase days.
    """
    s = log.summary()
    horizon = (log.days - 1 - s["first"]).to_numpy()  # lifetimes' T
    start = log.start + dt.timedelta(days=int(np.median(s["first"])) + 1)
    world = World(_scenario(sc, log.size, start, int(horizon.max())), seed, events=False,
                  off=OFF)  # fmt: skip
    half = np.full(log.size, -0.5)  # the first purchase at midday of the day before
    history.from_log(world, np.ones(log.size), half, half, np.zeros(log.size, bool),
                     world.pop.visit_rate.copy())  # fmt: skip
    orders = world.run().orders
    repeats = customer_days(orders, log.size, horizon)
    return repeats, float(orders["revenue"].sum() / max(len(orders), 1))


def fit_log(base: Scenario, log: OrderLog, seed: int, tick: Callable[[str], None] = lambda p: None
            ) -> LogFit:  # fmt: skip
    """Fit spend and repeat buying to the log; check the engine's repeat level (see the module)."""
    amount = float(log.amount.mean())
    # Dropout is the repeat model's lapse, fitted to the log; the engine's customers leaving the
    # market (retention.leave_per_year), which that likelihood leaves out, is off; so is a
    # per-agent spread of cart propensity: the fitted Gamma over visit rates is the spread there;
    # and newcomers: the log's customers are the market, all in it from its first day
    sc = with_values(
        base,
        {
            "retention.leave_per_year": 0.0,
            "population.cart_propensity_shape": 0.0,
            "population.newcomers": 0.0,
        },
    )
    spend = []
    for _ in range(SPEND_STEPS):
        _, aov = _from_first_purchase(sc, log, seed)
        spend.append((sc.catalog.price_median, aov))
        tick("spend")
        if len(spend) == 1:
            price = sc.catalog.price_median * amount / aov
        else:
            (p0, a0), (p1, a1) = spend[-2:]
            slope = np.log(a1 / a0) / np.log(p1 / p0) if p1 != p0 and a1 != a0 else 1.0
            price = p1 * (amount / a1) ** (1 / max(slope, 0.2))
        sc = with_values(sc, {"catalog.price_median": float(price)})
    world = World(_scenario(sc, log.size, log.end, 1), seed, events=False, off=OFF)
    gaps = R.gaps_of(log)
    found = R.fit_repeat(_repeat_of(sc), agents_of(world), gaps, seed)
    tick("likelihood")
    sc = with_values(sc, found.params.as_keys())
    target = float(len(log.day) - log.size)  # repeat purchase days in the log
    rate = found.params.visit_rate
    repeats, aov = _from_first_purchase(sc, log, seed)  # the engine's check, not a fit
    simulated = float(repeats.sum())
    tick("check")
    fit = pd.DataFrame({
        "statistic": ["repeat_purchase_days", "amount_per_purchase_day"],
        "target": [target, amount], "simulated": [simulated, aov],
    })  # fmt: skip
    fit["rel_error"] = fit["simulated"] / fit["target"] - 1
    steps = SPEND_STEPS + 1
    return LogFit(sc, found.params, rate, fit, found, steps)


def replicate_orders(found: LogFit, log: OrderLog, days: int, seed: int) -> pd.DataFrame:
    """One replicate: the log's customers run ``days`` days on from the day after it; its orders.

    Each agent starts from its history in the log (purchases, first and last purchase) with its
    visit-rate multiplier and lapse drawn from their posterior given that history.
    """
    s = log.summary()
    end = float(log.days)  # the world's time 0 is the day after the log's last date
    first = s["first"].to_numpy() + 0.5 - end
    last = s["last"].to_numpy() + 0.5 - end
    sc = _scenario(found.scenario, log.size, log.end + dt.timedelta(days=1), days)
    ids = np.arange(log.size)
    world = World(sc, seed, events=False, off=OFF)
    agents = agents_of(world)
    key = rng.stream_key(seed, "log_state")
    g, lapsed = R.draw_state(found.reduced, agents, R.gaps_of(log), rng.uniform(key, ids, 0),
                             rng.uniform(key, ids, 1))  # fmt: skip
    keep = float(np.mean(sc.traffic.weekday) / np.max(sc.traffic.weekday))
    rate = found.engine_visit_rate * agents.factor / keep * g  # segment x posterior g
    history.from_log(world, s["purchases"].to_numpy(), first, last, lapsed, rate)
    return world.run().orders


def simulate_forecast(found: LogFit, log: OrderLog, days: int, seed: int, replicates: int,
                      tick: Callable[[str], None] = lambda p: None) -> np.ndarray:  # fmt: skip
    """Orders (customer-days) of the log's customers per day after it: ``[replicates, days]``."""
    out = np.zeros((replicates, days))
    for r, child in enumerate(replicate_seeds(seed, replicates)):
        orders = replicate_orders(found, log, days, child)
        t = orders["time"].to_numpy()
        day = np.floor(t).astype(np.int64)
        ok = (day >= 0) & (day < days)
        pairs = np.unique(orders["user_id"].to_numpy()[ok].astype(np.int64) * days + day[ok])
        out[r] = np.bincount(pairs % days, minlength=days)
        tick("forecast")
    return out


def bgnbd_forecast(log: OrderLog, days: int) -> tuple[np.ndarray, dict]:
    """BG/NBD's expected purchase days per day over the ``days`` after the log, and its fit."""
    s = log.summary()
    end = log.days - 1  # the last day's number
    frequency = (s["purchases"] - 1).to_numpy(dtype=float)
    recency = (s["last"] - s["first"]).to_numpy(dtype=float)
    T = (end - s["first"]).to_numpy(dtype=float)
    model, converged = fit_bgnbd(frequency, recency, T)
    cumulative = model.expected_purchases(np.arange(1, days + 1), frequency, recency, T)
    daily = np.diff(cumulative.sum(axis=1), prepend=0.0)
    return daily, {"r": model.r, "alpha": model.alpha, "a": model.a, "b": model.b,
                   "converged": bool(converged)}  # fmt: skip


def forecast_table(log: OrderLog, simulated: np.ndarray, bgnbd: np.ndarray) -> pd.DataFrame:
    """forecast.csv: date, simulated median and 5-95% band over replicates, BG/NBD.

    The daily band is each day's; ``simulated_cumulative_p05`` / ``_p50`` / ``_p95`` are the
    replicates' running totals' percentiles (summed daily bands would overstate a total's spread).
    """
    days = simulated.shape[1]
    dates = pd.date_range(log.end + dt.timedelta(days=1), periods=days, freq="D")
    running = np.cumsum(simulated, axis=1)
    return pd.DataFrame({
        "date": dates.strftime("%Y-%m-%d"),
        "simulated_orders": np.median(simulated, axis=0),
        "simulated_orders_p05": np.percentile(simulated, 5, axis=0),
        "simulated_orders_p95": np.percentile(simulated, 95, axis=0),
        "bgnbd_orders": bgnbd,
        "simulated_cumulative_p05": np.percentile(running, 5, axis=0),
        "simulated_cumulative_p50": np.median(running, axis=0),
        "simulated_cumulative_p95": np.percentile(running, 95, axis=0),
    })  # fmt: skip
