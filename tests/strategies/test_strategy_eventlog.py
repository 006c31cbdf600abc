"""With every strategy on, the event log still tells the engine's story.

The KPIs rebuilt from the event log alone (``sim.replay``) equal the engine's, total and per
arm, and every event lies in the window: a strategy's own events (``reminder_send``,
``bundle_offer``, ``points_award``...) never pose as the engine's.
"""

from __future__ import annotations

import pytest
from sim_helpers import assert_log_matches_engine

from strategies import STRATEGIES

ARMS = ("control", "treatment")


@pytest.fixture(scope="module")
def stacked(store):
    specs = [{"name": name} for name in sorted(STRATEGIES)]
    results, _ = store.run(size=20_000, specs=specs, arm_names=ARMS, split=0.5, events=True)
    return results


@pytest.mark.parametrize("keys", [[], ["arm"]])
def test_kpis_from_the_event_log_equal_the_engines(stacked, keys):
    assert_log_matches_engine(stacked, keys)


def test_strategy_events_are_logged_in_the_window(stacked):
    ev = stacked.events.to_pandas()
    assert ev["time"].between(0, stacked.scenario.days, inclusive="left").all()
    counts = ev["event"].value_counts()
    for name in ("reminder_send", "reminder_click", "cart_recovered", "bundle_offer",
                 "points_award", "badge_award", "winback_send", "winback_click",
                 "chat_start"):  # fmt: skip
        assert counts.get(name, 0) > 0, name
    treated = ev[ev["event"].isin(["reminder_send", "bundle_offer", "points_award",
                                   "winback_send", "chat_start"])]  # fmt: skip
    assert (treated["arm"] == "treatment").all()  # only the strategies' arm
