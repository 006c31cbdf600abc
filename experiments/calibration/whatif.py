"""A what-if of one store: a strategy's lift on a per-user total, with its Monte Carlo error.

A store's what-if is the pair of worlds at one seed, with and without the strategy (common
random numbers); the error comes from the agents, paired person by person. A seed draws the
people and, unless the scenario pins it (``catalog.seed``, as a calibrated store does), the
catalog too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from experiments import worlds
from sim.config import Scenario


class Lift(NamedTuple):
    """A strategy's relative lift on a per-user column's total, and its standard error."""

    without: float
    with_: float
    lift: float  # with / without - 1
    se: float  # delta method over paired users


def paired_lift(scenario: Scenario, seed: int, strategy: Mapping, column: str = "revenue") -> Lift:
    """The store at ``seed`` without and with ``strategy`` on everyone; lift of ``column``'s total.

    With w and o each user's value with and without, lift = sum(w) / sum(o) - 1 and, users being
    independent, se = sqrt(N var(w - R o)) / sum(o) with R = sum(w) / sum(o) (delta method).
    """
    store = worlds.warm(scenario, seed, branches=2)  # both worlds branch from one warm-up
    o = worlds.plain(scenario, seed, store=store).users[column].to_numpy(float)
    w = worlds.treated(scenario, seed, strategy, store=store).users[column].to_numpy(float)
    ratio = w.sum() / o.sum()
    se = math.sqrt(len(o) * np.var(w - ratio * o, ddof=1)) / o.sum()
    return Lift(float(o.sum()), float(w.sum()), float(ratio - 1), se)
