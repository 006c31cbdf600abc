"""The email list's life: sign-ups (pop-up, checkout), the welcome series, fatigue, balance.

Known answers where the engine schedules (welcome days, costs), Monte Carlo tolerances where
agents decide (binomial or Poisson standard errors, stated next to each assertion; ``Z`` of them
make a false alarm about once in 16,000 per assertion).
"""

import numpy as np
import pytest
from sim_helpers import run_world, scenario

from sim.errors import ConfigError

Z = 4.0
DEFAULT = "scenario.population.size=100000"  # the calibration test's run (cached per worker)
SMALL = "scenario.population.size=30000"


def list_size(results):
    """Newsletter recipients on each campaign day (the list's size that day)."""
    m = results.messages
    return m[m["kind"] == "email_send"].groupby("day", observed=True)["count"].sum()


def test_signups_get_the_welcome_series():
    """Known answer: a sign-up on day d gets welcome emails on days d + 1, d + 3 and d + 5.

    Checked for agents who signed up once, at least 6 days before the end, and never
    unsubscribed in the window (an unsubscribed agent gets no more).
    """
    r = run_world(SMALL)
    ev = r.events.to_pandas()
    ev = ev.assign(day=np.floor(ev["time"]).astype(int))
    signup = ev[ev["event"] == "email_signup"]
    gone = set(ev.loc[(ev["event"] == "unsubscribe") & (ev["channel"] == "email"), "user_id"])
    once = signup.groupby("user_id")["day"].agg(["size", "first"])
    cfg = r.scenario.email
    last = r.scenario.days - 1 - (cfg.welcome_emails - 1) * cfg.welcome_every_days - 1
    once = once[(once["size"] == 1) & (once["first"] <= last) & ~once.index.isin(gone)]
    assert len(once) > 50
    welcome = ev[(ev["event"] == "welcome_send") & ev["user_id"].isin(once.index)]
    offsets = welcome["day"].to_numpy() - once.loc[welcome["user_id"], "first"].to_numpy()
    got = welcome.assign(offset=offsets).groupby("user_id")["offset"].apply(sorted)
    expected = [1 + i * cfg.welcome_every_days for i in range(cfg.welcome_emails)]
    assert (got.apply(lambda x: x == expected)).all() and len(got) == len(once)
    # pop-up sign-ups come from first visits, checkout sign-ups from orders: both happen
    first_visit = ev[ev["event"] == "session_start"].groupby("user_id")["time"].min()
    at_first = signup["time"].to_numpy() == first_visit.reindex(signup["user_id"]).to_numpy()
    bought = set(ev.loc[ev["event"] == "purchase", "session_id"])
    sessions = ev[ev["event"] == "session_start"].set_index(["user_id", "time"])["session_id"]
    keys = list(zip(signup["user_id"], signup["time"], strict=True))
    at_checkout = np.array([sessions.get(k, -1) in bought for k in keys])
    assert at_first.sum() > 0 and at_checkout.sum() > 0


def test_the_list_grows_by_signups_and_stays_roughly_stable():
    """Sign-ups keep the list up; in the default store it is roughly stable.

    Paired worlds (with and without sign-ups): over the window the gap between their lists grows
    by the window's sign-ups, less those who unsubscribe again (a few); its noise is below the
    Poisson SE of the sign-up count. The default store's list changes by ~1% over the window
    (the rates are tuned so); 4% allows for the noise and for the past it starts from.
    """
    grow = run_world(SMALL, events=False)
    flat = run_world(SMALL, "scenario.email.signup_popup=0", "scenario.email.signup_checkout=0",
                     events=False)  # fmt: skip
    m = grow.messages
    signups = m.loc[m["kind"] == "email_signup", "count"].sum()  # in the window
    gap = list_size(grow) - list_size(flat)  # the warm-up's sign-ups are in it from the start
    growth = gap.iloc[-1] - gap.iloc[0]
    assert Z * np.sqrt(signups) < growth <= signups + Z * np.sqrt(signups), (growth, signups)
    assert list_size(flat).iloc[-1] < list_size(flat).iloc[0]  # unsubscribes alone shrink it
    size = list_size(run_world(DEFAULT, events=False))
    assert abs(size.iloc[-1] / size.iloc[0] - 1) < 0.04, size.iloc[[0, -1]]


def email_unsubscribes_per_send(results) -> tuple[float, float, int]:
    """Email unsubscribes per email sent (campaigns only: no welcome series) and its SE."""
    ev = results.events.to_pandas()
    sends = int((ev["event"] == "email_send").sum())
    unsubs = int(((ev["event"] == "unsubscribe") & (ev["channel"] == "email")).sum())
    rate = unsubs / sends
    return rate, np.sqrt(rate * (1 - rate) / sends), sends


def test_fatigue_more_frequent_sends_more_unsubscribes_per_send():
    """Per-send unsubscribes = unsubscribe x (7 / every_days) ** fatigue.

    Weekly sends keep the configured 0.2%; sending every 3 days raises it to 0.2% x 7/3. Each
    rate is a binomial share of sends (SE sqrt(p (1 - p) / sends)).
    """
    no_welcome = "scenario.email.welcome_emails=0"
    weekly = run_world(SMALL, no_welcome)
    often = run_world(SMALL, no_welcome, "scenario.email.every_days=3")
    cfg = weekly.scenario.email
    (r7, se7, _), (r3, se3, _) = (email_unsubscribes_per_send(r) for r in (weekly, often))
    assert r3 - r7 > Z * np.hypot(se3, se7), (r3, r7)
    assert abs(r7 - cfg.unsubscribe) < Z * se7, (r7, se7)
    assert abs(r3 - cfg.unsubscribe * (7 / 3) ** cfg.fatigue) < Z * se3, (r3, se3)


def test_welcome_emails_open_more_and_cost_like_campaigns():
    """Welcome emails open more than the newsletter; every email costs cost_per_send.

    Opens per delivered email are binomial shares (SE sqrt(p (1 - p) / n)); the ledger's
    "email" total is a known answer: cost_per_send x (newsletters + welcome emails).
    """
    r = run_world(DEFAULT, events=False)
    counts = r.messages.groupby("kind", observed=True)["count"].sum()
    w_open = counts["welcome_open"] / counts["welcome_send"]
    c_open = counts["email_open"] / counts["email_send"]
    se = np.hypot(np.sqrt(w_open * (1 - w_open) / counts["welcome_send"]),
                  np.sqrt(c_open * (1 - c_open) / counts["email_send"]))  # fmt: skip
    assert w_open - c_open > Z * se, (w_open, c_open)
    cost = r.costs.loc[r.costs["kind"] == "email", "amount"].sum()
    sends = counts["email_send"] + counts["welcome_send"]
    assert cost == pytest.approx(sends * r.scenario.email.cost_per_send, rel=1e-9)


@pytest.mark.parametrize(
    "override, key",
    [
        ("scenario.email.signup_popup=2", "scenario.email.signup_popup"),
        ("scenario.email.welcome_emails=-1", "scenario.email.welcome_emails"),
        ("scenario.email.welcome_every_days=0", "scenario.email.welcome_every_days"),
        ("scenario.email.fatigue=-0.5", "scenario.email.fatigue"),
        ("scenario.sms.fatigue=-0.5", "scenario.sms.fatigue"),
    ],
)
def test_bad_email_config_names_its_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        scenario(override)
