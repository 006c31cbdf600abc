"""Speed-ups that must not change a number: a finished world's state released before its tables
are built, and the event log assembled in a thread (Results.events waits for it)."""

import pickle

import pandas as pd
from sim_helpers import scenario

from sim.world import World

SMALL = ("scenario.population.size=3000", "scenario.warmup_days=20", "scenario.days=20")
TABLES = ("users", "sessions", "orders", "messages", "impressions", "surveys", "costs", "returns")


def test_a_released_world_gives_the_same_tables_and_event_log():
    kept = World(scenario(*SMALL), 3, events=True).run()
    world = World(scenario(*SMALL), 3, events=True)
    released = world.run(release=True)
    assert world.pop.next_visit is None and world.forget_at is None  # the state is gone
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(released, name), getattr(kept, name))
    pd.testing.assert_frame_equal(released.events.to_pandas(), kept.events.to_pandas())
    assert len(kept.events) > 1000  # a log worth comparing


def test_the_event_log_survives_pickling_while_it_is_assembled():
    results = World(scenario(*SMALL), 4, events=True).run(release=True)
    copy = pickle.loads(pickle.dumps(results))
    pd.testing.assert_frame_equal(copy.events.to_pandas(), results.events.to_pandas())
    assert World(scenario(*SMALL), 4, events=False).run().events is None
