"""Keyed draws: an agent's numbers depend on (seed, mechanism, agent, counter) only."""

import numpy as np
import pandas as pd
from sim_helpers import scenario

from sim import rng
from sim.hooks import Hooks
from sim.world import World


def test_uniform_is_a_pure_function_of_its_key():
    key = rng.stream_key(1, "funnel")
    ids = np.arange(200_000)
    u = rng.uniform(key, ids, 3)
    assert np.array_equal(u, rng.uniform(key, ids, 3))
    assert np.array_equal(u[1000:2000], rng.uniform(key, ids[1000:2000], 3))  # no stream order
    assert (u >= 0).all() and (u < 1).all()
    # mean 1/2 with SE sqrt(1/12/n) = 0.00065; 5 SE
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / len(u))
    other = [rng.uniform(key, ids, 4), rng.uniform(rng.stream_key(2, "funnel"), ids, 3),
             rng.uniform(rng.stream_key(1, "email"), ids, 3)]  # fmt: skip
    for v in other:  # correlation SE 1/sqrt(n) = 0.0022; 5 SE
        assert abs(np.corrcoef(u, v)[0, 1]) < 5 / np.sqrt(len(u))


class BounceOne(Hooks):
    """Makes one agent bounce on every visit: only that agent's path changes."""

    def __init__(self, agent):
        super().__init__(arms=(0,))
        self.agent = agent

    def on_session_start(self, world, visits, sel):
        hit = sel[visits.agent[sel] == self.agent]
        visits.p_bounce[hit] = 1.0


def test_changing_one_agent_leaves_everyone_else_as_they_were():
    sc = scenario("scenario.population.size=5000")
    plain = World(sc, 11, events=False).run().users
    # the agent with the most orders, so that its change is a real one
    agent = int(plain["orders"].idxmax())
    changed = World(sc, 11, strategies=[BounceOne(agent)], events=False).run().users
    assert changed.loc[agent, "orders"] == 0 < plain.loc[agent, "orders"]
    others = plain.index != agent
    pd.testing.assert_frame_equal(plain[others], changed[others])


def test_compiled_draws_are_the_numpy_hash_bit_for_bit():
    key = rng.stream_key(9, "funnel")
    ids = np.arange(100_000)
    for k in (0, 5, ids % 64 * 64 + 3):
        assert np.array_equal(rng.uniform(key, ids, k), rng.uniform_numpy(key, ids, k))
    grid = np.broadcast_to(ids[:500, None], (500, 6))  # the funnel's [visits, slots] draws
    slots = ids[:500, None] * 64 + np.arange(6)[None, :]
    assert np.array_equal(rng.uniform(key, grid, slots), rng.uniform_numpy(key, grid, slots))
    # Counters and ids of every integer type the engine passes (64-bit ones go in uncast).
    for ids_t, k_t in ((np.int32, np.int64), (np.int64, np.uint64), (np.uint64, np.int32)):
        i, k = ids.astype(ids_t), (ids % 97 * 1_000_003).astype(k_t)
        assert np.array_equal(rng.uniform(key, i, k), rng.uniform_numpy(key, i, k))
    big = np.array([2**63, 2**64 - 1, 0, 12345], dtype=np.uint64)  # wrap-around ends, as astype
    neg = np.array([-1, -(2**63), 0, 7], dtype=np.int64)
    for i, k in ((big, neg), (neg, big), (neg, np.int64(-3))):
        assert np.array_equal(rng.uniform(key, i, k), rng.uniform_numpy(key, i, k))


def test_compiled_scatter_add_is_np_add_at():
    from sim.kernels import add_at

    g = np.random.default_rng(0)
    index = g.integers(0, 50, 10_000)  # many repeats
    for target, values in (
        (np.zeros(50), g.random(10_000)),
        (np.zeros(50, np.int32), 1),
        (np.zeros(50, np.int32), g.integers(1, 3, 10_000).astype(np.int32)),
    ):
        expected = target.copy()
        np.add.at(expected, index, values)
        add_at(target, index, values)
        assert np.array_equal(target, expected)  # same order of additions: bit for bit


def test_guided_cumulative_search_is_np_searchsorted():
    from sim.kernels import CumulativeSearch

    g = np.random.default_rng(1)
    for size in (1, 3, 7, 1000, 100_000):
        weights = g.gamma(0.3, 1.0, size) ** 1.5  # heavy-tailed, as visit_rate ** k
        weights[g.random(size) < 0.2] = 0.0  # runs of zero weight: never picked
        cum = np.cumsum(weights)
        search = CumulativeSearch(cum)
        keys = np.concatenate([
            g.random(50_000) * cum[-1],  # the engine's draws
            cum[g.integers(0, size, 200)],  # exactly on a cumulative value
            search.thresholds,  # exactly on a step of the guide
            np.nextafter(search.thresholds, -np.inf)[1:],  # just below one
            [0.0, cum[-1], np.nextafter(cum[-1], np.inf), 2 * cum[-1] + 1],
        ])  # fmt: skip
        assert np.array_equal(search(keys), np.searchsorted(cum, keys, side="right")), size


PRELOAD_PROBE = """
import json
from sim.kernels import ENGINE_KERNELS, load_cached
{before}
loaded = load_cached()
fns = {{n: getattr(__import__(m, fromlist=[n]), n) for m, names in ENGINE_KERNELS.items()
       for n in names}}
print(json.dumps({{"loaded": loaded, "overloads": {{n: len(f.overloads) for n, f in fns.items()}},
                  "hits": sum(sum(f.stats.cache_hits.values()) for f in fns.values()),
                  "misses": sum(sum(f.stats.cache_misses.values()) for f in fns.values())}}))
"""


def test_preload_loads_the_engines_kernels_from_the_cache_and_compiles_nothing():
    """sim.kernels.preload's work, in fresh processes: the first fills numba's cache (a small
    world calls every kernel of ENGINE_KERNELS, as the engine does), the second loads it."""
    import json
    import os
    import subprocess
    import sys

    world = (
        "from sim_helpers import scenario\nfrom sim.world import World\n"
        "World(scenario('scenario.population.size=2000', 'scenario.days=10'), 3).run()"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def probe(code: str) -> dict:
        out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
        return json.loads(out.stdout.strip().splitlines()[-1])

    subprocess.run([sys.executable, "-c", world], env=env, check=True, timeout=300)
    got = probe(PRELOAD_PROBE.format(before=""))
    assert got["misses"] == 0  # nothing compiled: every signature came from the cache
    assert got["loaded"] == got["hits"] == sum(got["overloads"].values())
    assert min(got["overloads"].values()) >= 1, got["overloads"]  # every kernel is loaded
    assert probe(PRELOAD_PROBE.format(before="load_cached()"))["loaded"] == 0  # once only
