"""Engine time with all five strategies on versus the plain store (default scenario, 1M agents).

Prints the engine seconds (``World(...)`` + ``run()``) of the plain store and of the store with
personalization, social proof, gamification, retargeting and bundles stacked, with the event
log off and on, and their ratio. Asserts nothing about time (issue 3 asks for a ratio <= 1.5).

Usage: ``.venv/bin/python benchmarks/bench_strategies.py [--size N] [--seed S] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import gc
import time

from omegaconf import OmegaConf

from sim.config import Scenario, validate
from sim.world import World
from strategies import STRATEGIES, build_strategies


def scenario(size: int) -> Scenario:
    cfg = OmegaConf.merge(
        OmegaConf.structured(Scenario), OmegaConf.load("conf/scenario/default.yaml")
    )
    cfg.population.size = size
    return validate(OmegaConf.to_object(cfg))


def engine_seconds(sc: Scenario, seed: int, specs: list[dict], events: bool) -> float:
    gc.collect()
    start = time.perf_counter()
    world = World(sc, seed, build_strategies(specs, ["control"]), events=events)
    world.run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="best of R runs")
    args = parser.parse_args()
    sc = scenario(args.size)
    every = [{"name": name} for name in sorted(STRATEGIES)]
    print(f"default scenario, {args.size:,} agents, seed {args.seed}, best of {args.repeat}")
    print(f"{'events':>7} {'plain s':>9} {'all five s':>11} {'ratio':>7}")
    for events in (False, True):
        plain = min(engine_seconds(sc, args.seed, [], events) for _ in range(args.repeat))
        five = min(engine_seconds(sc, args.seed, every, events) for _ in range(args.repeat))
        print(f"{'on' if events else 'off':>7} {plain:9.2f} {five:11.2f} {five / plain:7.2f}")


if __name__ == "__main__":
    main()
