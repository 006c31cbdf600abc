"""The worlds an experiment runs: plain, with strategies, an A/B split, everyone / no one treated.

Every world of one experiment shares the seed, so the same agents get the same keyed random
numbers in each: "with" and "without" differ only where a strategy changed someone's path
(common random numbers). That makes what-if differences and true effects precise.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from sim import rng
from sim.aggregate import facts_of, kpi_table
from sim.config import Scenario
from sim.errors import check_number
from sim.world import Results, World
from strategies import build_strategies

AB_ARMS = ("control", "treatment")


def assign_arms(size: int, split: float, salt: str, seed: int) -> np.ndarray:
    """Arm of each agent (1 = treatment with probability ``split``) by a salted hash of its id.

    The hash is a keyed draw on (seed, "assign/<salt>", agent id): the same agent lands in the
    same arm whatever the population size, and another experiment name reshuffles the split.
    """
    check_number(split, "split", gt=0, lt=1)
    u = rng.uniform(rng.stream_key(seed, f"assign/{salt}"), np.arange(size))
    return (u < split).astype(np.int8)


def specs(strategy: Mapping, arms: Sequence[str] | None = None) -> list[dict]:
    """Strategy specs from the config's ``strategy`` mapping (name -> parameters)."""
    out = []
    for label, params in strategy.items():
        params = dict(params)
        # The key labels an instance; ``name`` is the strategy (two instances of one strategy
        # with different arms or parameters: strategy.display={name: social_proof, ...}).
        spec = {**params, "name": params.get("name", label)}
        if arms is not None:
            spec["arms"] = list(arms)
        out.append(spec)
    return out


def check_strategies(strategy: Mapping, arm_names: Sequence[str]) -> None:
    """Validate the strategy configs against the arms (ConfigError naming the key)."""
    build_strategies(specs(strategy), arm_names)


def background(strategy: Mapping) -> dict:
    """The strategies an A/B test runs on its control arm too: part of the store, not the test.

    The truth of an A/B test switches only the others on and off.
    """
    return {k: v for k, v in strategy.items() if "control" in (dict(v).get("arms") or [])}


def warm(scenario: Scenario, seed: int, progress=None, branches: int | None = None) -> World:
    """The plain store of ``seed`` warmed up to day 0, for the worlds of that seed to branch from.

    Worlds of one seed (with and without a strategy, an A/B split and its truth) have the same
    warm-up, bit for bit: strategies do nothing before day 0. Warming it once and branching each
    world from it (``store=`` of :func:`plain`, :func:`treated`, :func:`ab_world`) gives the same
    tables as running each straight through, without simulating the warm-up again.
    ``branches``: how many worlds will branch from it; the last frees the store's copy (at 1M
    agents about 300 MB), so the last world does not run beside it.
    """
    world = World(scenario, seed, events=False).warm_up(progress)
    world.branches = branches
    return world


def why_not_shared(scenario: Scenario, strategy: Mapping, arm_names: Sequence[str]) -> str | None:
    """Why a world of these strategies and arms cannot branch from the plain store, or None."""
    hooks = build_strategies(specs(strategy, list(arm_names)), list(arm_names))
    return World.why_not_branch(scenario, hooks, arm_names)


def sharable(scenario: Scenario, strategy: Mapping, arm_names: Sequence[str]) -> bool:
    """Whether a world of these strategies and arms can branch from the plain store."""
    return why_not_shared(scenario, strategy, arm_names) is None


def _build(scenario, seed, hooks, arm, arm_names, events, store) -> World:
    """The world to run: built, or branched from ``store`` at day 0.

    ``store``: None; a store of this scenario and seed warmed by :func:`warm` (the world is the
    same as built, so one that cannot branch is built); or the seed of a store warmed once per
    process (:func:`warmed`, power_sim), the window drawn from ``seed``.
    """
    same = isinstance(store, World)
    if store is None or (same and World.why_not_branch(scenario, hooks, arm_names) is not None):
        return World(scenario, seed, hooks, arm=arm, arm_names=arm_names, events=events)
    if same:
        if store.seed != seed or store.scenario is not scenario:
            raise ValueError("a warmed store branches into worlds of its own scenario and seed")
        return store.branch(seed, hooks, arm, arm_names, events)
    return warmed(scenario, store).branch(seed, hooks, arm, arm_names, events)


def plain(scenario: Scenario, seed: int, events: bool = False, progress=None,
          store: World | None = None) -> Results:  # fmt: skip
    """The store without any strategy (``store``: a :func:`warm` store of this seed to branch)."""
    world = _build(scenario, seed, (), None, ("control",), events, store)
    return world.run(progress, release=True)


def treated(scenario: Scenario, seed: int, strategy: Mapping, events=False, progress=None,
            store: World | None = None) -> Results:  # fmt: skip
    """The store with the strategies on everyone (one arm, ``all``)."""
    hooks = build_strategies(specs(strategy, ["all"]), ["all"])
    world = _build(scenario, seed, hooks, None, ("all",), events, store)
    return world.run(progress, release=True)


def store(scenario: Scenario, seed: int, strategy: Mapping | None, events=False) -> Results:
    """The store with the strategies on everyone, or the plain store without any."""
    if strategy:
        return treated(scenario, seed, strategy, events=events)
    return plain(scenario, seed, events=events)


def ab_world(scenario, seed: int, strategy: Mapping, split: float, salt: str, events=False,
             progress=None, store: World | int | None = None,
             lean: bool = False) -> Results:  # fmt: skip
    """One world split into control and treatment; strategies on their arms (default: treatment).

    ``store``: a :func:`warm` store of this seed to branch from (the same world, faster); or the
    seed of a store shared by replicates (:func:`warmed`), the split and the window drawn from
    ``seed``; None: the world's own store, from ``seed``. ``lean``: only the per-user table
    (:meth:`World.run`).
    """
    arm = assign_arms(scenario.population.size, split, salt, seed)
    hooks = build_strategies(specs(strategy), AB_ARMS)
    world = _build(scenario, seed, hooks, arm, AB_ARMS, events, store)
    return world.run(progress, release=True, lean=lean)


_WARMED: dict[tuple, World] = {}  # this process's last warmed store (one at a time)


def warmed(scenario: Scenario, seed: int) -> World:
    """The plain store of ``seed`` warmed up to day 0: built once per process, then kept.

    Replicates that branch from it (:meth:`sim.world.World.branch`) skip its population, past
    and warm-up: three quarters of a 30-day replicate's time.
    """
    key = (pickle.dumps(scenario), int(seed))
    world = _WARMED.get(key)
    if world is None:
        _WARMED.clear()
        world = _WARMED[key] = warm(scenario, seed)
    return world


def kpis(results: Results) -> pd.Series:
    """Every KPI in total."""
    return kpi_table(facts_of(results), []).iloc[0]


def side_by_side(without: Results, with_: Results) -> pd.DataFrame:
    """KPI by KPI: without, with, absolute and relative difference."""
    a, b = kpis(without), kpis(with_)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(a != 0, b / a - 1, np.nan)
    return pd.DataFrame({"kpi": a.index, "without": a.to_numpy(), "with": b.to_numpy(),
                         "abs_diff": (b - a).to_numpy(), "rel_diff": rel})  # fmt: skip
