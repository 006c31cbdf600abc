"""CLV models on a transaction log: pinned to lifetimes and the CDNOW paper, and to their truth.

Synthetic check: customers drawn from a BG/NBD world with known parameters (each buys at a
Poisson rate lambda ~ Gamma(r, alpha) and, after each repeat purchase, drops out with
probability p ~ Beta(a, b)); the model fitted on the first 180 days predicts the next 180 days'
purchases.
"""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from lifetimes.datasets import load_cdnow_summary, load_cdnow_summary_data_with_monetary_value
from lifetimes.utils import summary_data_from_transaction_data

from experiments.stats.checks import ConfigError
from experiments.stats.lifetime import (
    expected_purchases,
    expected_value,
    fit_lifetime_model,
    rfm_summary,
)


def test_bgnbd_on_cdnow_gives_the_papers_estimates():
    """Fader, Hardie and Lee (2005), CDNOW, 2,357 customers: r .243, alpha 4.414, a .793, b 2.426.

    The paper's time unit is weeks (as the summary), so alpha is in weeks.
    """
    model = fit_lifetime_model(load_cdnow_summary(index_col=[0]), spend=False)
    params = model.params
    expected = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in expected.items():
        assert params[name] == pytest.approx(value, abs=1.5e-3), (name, params)


def test_gamma_gamma_on_cdnow_gives_the_published_estimates():
    """Fader, Hardie and Lee, "RFM and CLV" (2005) / lifetimes' docs: p 6.25, q 3.74, v 15.45."""
    summary = load_cdnow_summary_data_with_monetary_value()
    model = fit_lifetime_model(summary)
    for name, value in {"p": 6.25, "q": 3.74, "v": 15.45}.items():
        assert model.params[name] == pytest.approx(value, abs=0.01), (name, model.params)


def test_rfm_summary_equals_lifetimes_on_the_same_log():
    rng = np.random.default_rng(3)
    n = 3000
    log = pd.DataFrame({"customer_id": rng.integers(0, 400, n), "day": rng.uniform(-200, 100, n),
                        "amount": rng.lognormal(3, 1, n)})  # fmt: skip
    ours = rfm_summary(log, end=60)
    start = dt.datetime(2026, 1, 1)
    dated = log.assign(date=start + pd.to_timedelta(np.floor(log["day"]) + 200, unit="D"))
    theirs = summary_data_from_transaction_data(
        dated[log["day"] < 61], "customer_id", "date", "amount",
        observation_period_end=start + dt.timedelta(days=260),
    )  # fmt: skip
    theirs = theirs.loc[ours.index]
    for col in ("frequency", "recency", "T", "monetary_value"):
        np.testing.assert_allclose(ours[col], theirs[col], rtol=1e-12, err_msg=col)


def bgnbd_world(n, r, alpha, a, b, horizon, rng):
    """Purchase days of ``n`` customers, each observed from a first purchase at day 0."""
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    times, alive = [np.zeros(n)], np.ones(n, dtype=bool)
    t = np.zeros(n)
    for _ in range(400):  # enough purchases for every customer to pass the horizon or drop out
        t = t + rng.exponential(1 / np.maximum(lam, 1e-12))
        alive &= t < horizon
        if not alive.any():
            break
        times.append(np.where(alive, t, np.nan))
        alive &= rng.random(n) >= p  # BG/NBD: drop out only after a repeat purchase
    days = np.stack(times, axis=1)
    ids = np.repeat(np.arange(n), days.shape[1])
    flat = days.ravel()
    keep = ~np.isnan(flat)
    return pd.DataFrame({"customer_id": ids[keep], "day": flat[keep], "amount": 20.0})


def test_fitted_model_predicts_the_holdout_of_its_own_world():
    """Fit on days 0-179, predict days 180-359; truth: the world's own future purchase days.

    Tolerance: 3.5 Monte Carlo SE of the mean holdout purchases per customer (sd / sqrt(n)).
    Measured: predicted 1.272, actual 1.281, SE 0.037 (fitted r .505, alpha 22.1, a .743,
    b 2.73 against the world's .5, 20, .8, 3).
    """
    rng = np.random.default_rng(11)
    log = bgnbd_world(6000, r=0.5, alpha=20.0, a=0.8, b=3.0, horizon=360, rng=rng)
    log["day"] = np.floor(log["day"])
    summary = rfm_summary(log, end=179)
    model = fit_lifetime_model(summary, spend=False)
    predicted = expected_purchases(model, summary, 180).mean()
    future = log[log["day"] >= 180].groupby(["customer_id", "day"]).size().groupby(level=0).size()
    actual = future.reindex(summary.index, fill_value=0)
    se = actual.std() / np.sqrt(len(actual))
    assert abs(predicted - actual.mean()) < 3.5 * se, (predicted, actual.mean(), se)


def test_discounting_lowers_value_and_no_discount_is_purchases_times_spend():
    summary = load_cdnow_summary_data_with_monetary_value()
    model = fit_lifetime_model(summary)
    plain = expected_value(model, summary, 52.0)  # the CDNOW summary counts weeks
    spend = model.gamma_gamma.conditional_expected_average_profit(
        summary["frequency"], summary["monetary_value"])  # fmt: skip
    np.testing.assert_allclose(plain, expected_purchases(model, summary, 52.0) * spend,
                               rtol=1e-9)  # fmt: skip
    assert (expected_value(model, summary, 52.0, yearly_discount=0.1) < plain).all()


def test_bad_input_names_the_key():
    with pytest.raises(ConfigError, match="column 'amount'"):
        rfm_summary(pd.DataFrame({"customer_id": [1], "day": [0.0]}), end=1)
    summary = pd.DataFrame({"frequency": [1.0, 0.0], "recency": [3.0, 0.0], "T": [5.0, 5.0],
                            "monetary_value": [-2.0, 0.0]})  # fmt: skip
    with pytest.raises(ConfigError, match="amount: must be positive for every repeat buyer"):
        fit_lifetime_model(summary)
