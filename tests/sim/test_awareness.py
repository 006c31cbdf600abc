"""Awareness fades: aware prospects forget the store at ``traffic.forget_half_life``."""

import numpy as np
import pytest
from sim_helpers import scenario

from sim.world import World


def test_prospects_forget_at_the_half_life_and_only_prospects():
    """A brand-new store with no ads and no discovery: nothing makes anyone aware again, so an
    aware prospect at the start is still aware 180 days later (90 warm-up + 90) with chance
    2 ** (-180 / 60) = 0.125, if it stays a prospect (no order, on no list)."""
    # everyone in the market from the start (newcomers start unaware)
    sc = scenario("scenario.population.size=60000", "scenario.history.days=0",
                  "scenario.traffic.discovery_rate=0", "scenario.traffic.forget_half_life=60",
                  "scenario.channels.paid_search.budget_per_1000=0",
                  "scenario.channels.paid_social.budget_per_1000=0",
                  "scenario.channels.display.budget_per_1000=0",
                  "scenario.population.newcomers=0")  # fmt: skip
    world = World(sc, 3, events=False)
    pop = world.pop
    start = world._prospect(np.arange(pop.size))
    world.run()
    stayed = start & (pop.n_orders == 0) & ~pop.email_ok & ~pop.sms_ok
    share = pop.aware[stayed].mean()
    # ~8,900 such prospects (measured: 12.2%): SD sqrt(.125 x .875 / 8,900) ~ 0.0035; 0.014 is 4 SD
    assert stayed.sum() > 5000
    assert share == pytest.approx(0.125, abs=0.014), share
    # customers and subscribers never forget
    keep = (pop.n_orders > 0) | pop.email_ok | pop.sms_ok
    assert pop.aware[keep & start].all()


def test_the_past_and_the_engine_agree_on_awareness():
    """The drawn past forgets as the engine does: the aware share at the warm-up's start and at
    the window's end (default store with a 60-day half-life, 100,000 agents: 81.3% and 84.6%)
    differ by a few points, not by the tens a past without forgetting would leave to decay."""
    sc = scenario("scenario.population.size=50000", "scenario.traffic.forget_half_life=60")
    world = World(sc, 7, events=False)
    before = world.pop.aware.mean()
    world.run()
    assert 0.6 < before < 0.95
    assert abs(world.pop.aware.mean() - before) < 0.05, (before, world.pop.aware.mean())


def test_ad_carryover_visits_come_later_at_the_channels_half_life():
    """paid_social with response 0.05 and a 5-day half-life: every reached agent makes a visit
    of its own (direct) with chance 1 - exp(-0.05 F), after a delay of mean 5 / ln 2 = 7.2 days
    (+0.5 for the hour of the day's impression). Captured as scheduled, 40,000 agents, 30 window
    days: 11,138 visits, mean delay 7.23 days (measured), so the mean's SE is ~7.2 / sqrt(11,000)
    = 0.07 days: 0.4 is > 5 SE; the count against its expectation from the day's reach and
    frequency within 5% (binomial SE ~1%). Everyone is in the market (no newcomers): a reached
    newcomer not yet in it makes no visit, and the expectation counts the whole audience."""
    sc = scenario("scenario.population.size=40000", "scenario.days=30",
                  "scenario.channels.paid_social.response=0.05",
                  "scenario.channels.paid_social.carryover_half_life=5",
                  "scenario.population.newcomers=0")  # fmt: skip
    world = World(sc, 4, events=False)
    seen = []
    later = world.schedule_visits

    def capture(agent, time, channel, recovered=None):
        if channel == "direct":
            seen.append((np.floor(world.now), np.asarray(time)))
        later(agent, time, channel, recovered)

    world.schedule_visits = capture
    world.run()
    window = [(day, t) for day, t in seen if day >= 0]
    delays = np.concatenate([t - day - 0.5 for day, t in window])
    assert len(delays) > 2000
    assert delays.mean() == pytest.approx(5 / np.log(2), abs=0.4), delays.mean()
    cfg, n = sc.channels["paid_social"], sc.population.size
    size = world.audience("paid_social").sum()
    expected = 0.0
    for day, _ in window:
        imp = cfg.budget_per_1000 * n / cfg.cpm * world.weekday_factor(int(day))
        reach = size * -np.expm1(-imp / size)
        freq = cfg.saturation_frequency * -np.expm1(-imp / reach / cfg.saturation_frequency)
        expected += reach * -np.expm1(-cfg.response * freq)
    assert sum(len(t) for _, t in window) == pytest.approx(expected, rel=0.05)
