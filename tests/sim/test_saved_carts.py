"""Saved carts: a cart left is still there on the shopper's next visit, and taken up."""

import numpy as np
import pandas as pd
from sim_helpers import run_world


def _next_after_a_left_cart(sessions: pd.DataFrame) -> pd.DataFrame:
    """Sessions whose previous session (same user, an earlier day, within 14 days) left a cart."""
    s = sessions.sort_values(["user_id", "time"], kind="stable").reset_index(drop=True)
    same = s["user_id"].eq(s["user_id"].shift())
    left = (s["carted"] & ~s["purchased"]).shift(fill_value=False) & same
    prev_time = s["time"].shift()
    # visits of one day run as one batch: a cart left earlier that day is not saved yet
    later_day = np.floor(s["time"]) > np.floor(prev_time)
    return s[left & later_day & (s["time"] - prev_time <= 14) & ~s["recovered"]]


def test_a_saved_cart_is_taken_up_with_cart_return_1():
    r = run_world("scenario.population.size=20000", "scenario.funnel.cart_return=1.0",
                  "scenario.retention.cart_boost=10",  # more returns within 14 days to check
                  events=False)  # fmt: skip
    nxt = _next_after_a_left_cart(r.sessions)
    assert len(nxt) > 200
    # every one of them came back for the cart: no bounce, the cart is there (deterministic)
    assert nxt["carted"].all() and (nxt["pages"] > 1).all()


def test_abandoners_come_back_sooner():
    """cart_boost 10 (no planned returns, come_back 0): measured at 100,000 agents, 40% of
    abandoners are back within 3 days (19% with 0, the default: heavy visitors come back soon
    anyway; 25% and 9% where shoppers were alike). Here (20,000 agents) 37.8% of 851 and 15.4%
    of 709 abandoned window carts: SDs 1.7 and 1.4 points, 2.2 for the gap of 22 points; the
    bounds are 4.9 and 5.3 SD from the measured share and gap."""
    shares = []
    for boost in ("0", "10"):
        r = run_world("scenario.population.size=20000", f"scenario.retention.cart_boost={boost}",
                      "scenario.funnel.come_back=0", events=False)  # fmt: skip
        s = r.sessions.sort_values(["user_id", "time"], kind="stable")
        gap = s.groupby("user_id")["time"].shift(-1) - s["time"]
        left = s["carted"] & ~s["purchased"] & (s["time"] >= 0)
        shares.append(float((gap[left] <= 3).mean()))
    assert shares[0] < 0.22 and shares[1] - shares[0] > 0.11, shares


def test_who_means_to_come_back_comes_back_for_the_cart():
    """come_back 1: every abandoner comes back for the cart, from the next day (a wait of mean
    come_back_days 2: more than 9 days has chance exp(-4.5) = 1.1%), and takes it up (no bounce,
    the cart there) on that visit or any earlier one: deterministic but for the waits. Only
    carts left before day 80 are checked, so the return falls in the window."""
    r = run_world("scenario.population.size=20000", "scenario.funnel.come_back=1.0",
                  events=False)  # fmt: skip
    s = r.sessions.sort_values(["user_id", "time"], kind="stable").reset_index(drop=True)
    same = s["user_id"].eq(s["user_id"].shift(-1))
    gap = (s["time"].shift(-1) - s["time"]).where(same)
    left = s["carted"] & ~s["purchased"] & ~s["recovered"] & s["time"].between(0, 80)
    assert left.sum() > 500
    back = gap[left] <= 10
    assert back.mean() > 0.97, back.mean()  # 1.1% waits over 9 days (+ the next day's start)
    nxt = s.shift(-1)[left & (gap <= 10)]
    later_day = np.floor(nxt["time"]) > np.floor(s.loc[nxt.index, "time"])
    # a later visit the same day is in the same batch as the abandonment: nothing saved yet
    assert nxt.loc[later_day, "carted"].astype(bool).all()
    assert (nxt.loc[later_day, "pages"] > 1).all()
