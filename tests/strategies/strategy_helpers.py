"""Helpers of the strategy tests: the default scenario, cached runs and paired comparisons.

Runs are cached per pytest process (each xdist worker has its own cache), keyed by scenario
overrides, seed, strategy specs and arms, so the with/without pairs of several tests share the
plain store's run. (A module of its own, not conftest, so that test modules can import it
whatever other conftest files the suite has.)
"""

from __future__ import annotations

import json

import numpy as np
from omegaconf import OmegaConf

from experiments.config import load_scenario
from sim.aggregate import facts_of, kpi_table
from sim.config import Scenario, validate
from sim.world import World
from strategies import build_strategies

SEED = 20270101


def make_scenario(size: int = 20_000, preset: str = "default", **overrides) -> Scenario:
    """The default scenario (or a preset of ``conf/scenario/`` over it) with
    ``population.size`` and dotted overrides."""
    cfg = OmegaConf.structured(load_scenario([f"scenario={preset}"]))
    cfg.population.size = size
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value)
    return validate(OmegaConf.to_object(cfg))


class Store:
    """Builds and runs worlds, caching results by their inputs."""

    def __init__(self) -> None:
        self.cache: dict = {}

    def world(self, size=20_000, seed=SEED, specs=(), arm_names=("control",), split=None,
              events=False, **overrides) -> World:  # fmt: skip
        """An unrun world; ``split`` (any value but None) alternates agents over arms 0 and 1."""
        scenario = make_scenario(size, **overrides)
        arm = None
        if split is not None:
            arm = (np.arange(size) % 2 == 1).astype(np.int8)  # alternate ids: a 50/50 split
        strategies = build_strategies([dict(s) for s in specs], list(arm_names))
        return World(scenario, seed, strategies, arm=arm, arm_names=arm_names, events=events)

    def run(self, size=20_000, seed=SEED, specs=(), arm_names=("control",), split=None,
            events=False, **overrides):  # fmt: skip
        """Run (or fetch) the world; returns ``(results, world)``."""
        key = json.dumps([size, seed, list(specs), list(arm_names), split, events, overrides],
                         sort_keys=True, default=str)  # fmt: skip
        if key not in self.cache:
            w = self.world(size, seed, specs, arm_names, split, events, **overrides)
            self.cache[key] = (w.run(), w)
        return self.cache[key]

    def kpis(self, *args, by_arm: bool = False, **kwargs):
        """KPI totals (a Series) or per arm (a DataFrame indexed by arm) of a cached run."""
        results, _ = self.run(*args, **kwargs)
        table = kpi_table(facts_of(results), ["arm"] if by_arm else [])
        return table if by_arm else table.iloc[0]


def per_user(results, start: float = 0.0, end: float | None = None):
    """Per-user sums of a run for paired comparisons (users are the units).

    Columns: ``sessions``, ``carts`` (sessions with an add to cart), ``orders``, ``items``,
    ``revenue``, ``margin`` over window days ``[start, end)``, and ``active`` (an order in the 90
    days before day 0: retention's denominator) and ``retained`` (active and ordered in the
    window).
    """
    import pandas as pd

    n = len(results.users)
    end = results.scenario.days if end is None else end
    s = results.sessions
    s = s[(s["time"] >= start) & (s["time"] < end)]
    uid = s["user_id"].to_numpy()
    bought = s["purchased"].to_numpy()
    out = pd.DataFrame(
        {
            "sessions": np.bincount(uid, minlength=n),
            "carts": np.bincount(uid, weights=s["carted"].to_numpy(), minlength=n),
            "orders": np.bincount(uid, weights=bought, minlength=n),
            "items": np.bincount(uid, weights=s["items"].to_numpy() * bought, minlength=n),
            "revenue": np.bincount(uid, weights=s["revenue"].to_numpy(), minlength=n),
            "margin": np.bincount(uid, weights=s["margin"].to_numpy(), minlength=n),
        }
    )
    o = results.orders
    pre = o[(o["time"] >= -90) & (o["time"] < 0)]
    out["active"] = np.bincount(pre["user_id"].to_numpy(), minlength=n) > 0
    out["retained"] = out["active"] & (out["orders"] > 0)
    return out


def paired_lift(with_, without, num: str, den: str | None = None) -> tuple[float, float]:
    """Relative change of ``sum(num) / sum(den)`` from ``without`` to ``with_``, and its SE.

    Both worlds share the seed, so each user's draws are common to both (common random
    numbers) and the noise of the comparison comes only from users whose paths the strategy
    changed. The standard error treats users as independent units and linearises the ratio
    (delta method) on the *paired* per-user differences::

        psi_i = (a_i - R a b_i) / (R_a mean(b_a)) - (c_i - R_c d_i) / (R_c mean(d_c))
        SE(lift) = (1 + lift) * sd(psi) / sqrt(n)

    where ``a, b`` are numerator and denominator with the strategy, ``c, d`` without, and
    ``R = sum(numerator) / sum(denominator)``. ``den=None`` compares totals (``b = 1``).
    """
    n = len(with_)
    a, c = with_[num].to_numpy(float), without[num].to_numpy(float)
    b = with_[den].to_numpy(float) if den else np.ones(n)
    d = without[den].to_numpy(float) if den else np.ones(n)
    r_a, r_c = a.sum() / b.sum(), c.sum() / d.sum()
    psi = (a - r_a * b) / (r_a * b.mean()) - (c - r_c * d) / (r_c * d.mean())
    lift = r_a / r_c - 1
    return lift, (1 + lift) * psi.std(ddof=1) / np.sqrt(n)
