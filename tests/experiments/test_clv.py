"""``experiment=clv``: CLV predicted at day 0 against the same world's future, and bad input."""

import warnings

import numpy as np
import pandas as pd
import pytest
from test_run_cli import assert_rejected, run_cli

from experiments import clv
from experiments.config import load_scenario

COLUMNS = ["method", "segment", "predicted", "actual", "rel_error"]
SEGMENTS = ["bargain_hunter", "loyalist", "browser", "high_value"]  # the default store's


@pytest.fixture(scope="module")
def default_store():
    """The default store at 200,000 agents (about 21,000 customers at day 0), seed 42: ~5 s."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a fallback note is asserted where it matters
        return clv.evaluate(load_scenario(["scenario.population.size=200000"]), seed=42)


def test_bgnbd_gg_is_within_15_percent_of_the_worlds_future(default_store):
    """Issue 10's target: mean predicted margin per customer at day 0 over 365 days within 15%
    of what they brought. Monte Carlo error of the truth: about 3% (sd / sqrt(n) / mean; heavy
    buyers make it 4% at 100,000 agents, hence 200,000).

    Measured +5.4% at this seed (+9.2% and +4.9% at seeds 1 and 2; +7.6% at 100,000 agents,
    +8.0% in ``experiment=clv``'s run of the same size; measured before a fix of the past's
    units, which moves them by a point or so).
    Where shoppers were alike (``scenario=alike``) it was -2.7%, and -18% to -28% while
    customers never left the market and ad clicks fell at random (BG/NBD's dropout is
    permanent; those customers kept buying)."""
    row = default_store.table.set_index(["method", "segment"]).loc[("bgnbd_gg", "all")]
    customers = default_store.customers
    se = customers["actual"].std() / np.sqrt(len(customers)) / customers["actual"].mean()
    assert se < 0.04, se
    assert abs(row["rel_error"]) <= 0.15, row.to_dict()


def test_predictions_are_the_stores_kpis(default_store):
    """bgnbd_gg's predictions are the clv_predictive KPI (same fit, same past in the window run),
    and simple's are the clv_simple KPI of the window, in total and by segment."""
    table = default_store.table.set_index(["method", "segment"])["predicted"]
    kpis = default_store.window_kpis
    for method, kpi in clv.METHODS.items():
        assert table[(method, "all")] == pytest.approx(kpis["total"][kpi], rel=1e-9)
        for segment in SEGMENTS:
            expected = kpis["by_segment"][segment][kpi]
            assert table[(method, segment)] == pytest.approx(expected, rel=1e-9), segment
    assert default_store.prediction.notes == ()  # with a past, both fits converge


def test_the_textbook_formula_overstates_the_customers_future(default_store):
    """clv_simple extrapolates window buyers' pace for 1 / yearly churn years: it overstates
    what the customers at day 0 bring by far more than the truth's 3% Monte Carlo error."""
    simple = default_store.table.query("method == 'simple'").set_index("segment")
    assert (simple["rel_error"] > 1.0).all(), simple


def test_realised_margin_discounts_each_order_at_its_time():
    orders = pd.DataFrame({"user_id": [0, 0, 1, 1, 2], "time": [-5.0, 0.0, 182.5, 365.0, 364.9],
                           "margin": [7.0, 10.0, 20.0, 99.0, 5.0]})  # fmt: skip
    discounted, plain = clv.realised(orders, 4, 365, 0.10)
    np.testing.assert_allclose(plain, [10.0, 20.0, 5.0, 0.0])  # [0, 365): t=-5 and t=365 out
    np.testing.assert_allclose(discounted, [10.0, 20.0 / 1.1**0.5, 5.0 / 1.1 ** (364.9 / 365),
                                            0.0])  # fmt: skip


def test_deciles_are_ten_equal_groups_in_order_of_prediction():
    rng = np.random.default_rng(0)
    customers = pd.DataFrame({"predicted": rng.gamma(1.0, 10.0, 1003)})
    customers["actual"] = customers["predicted"] * 2
    table = clv.deciles(customers)
    assert list(table["decile"]) == list(range(1, 11))
    assert table["customers"].sum() == 1003 and np.ptp(table["customers"]) <= 1
    assert table["predicted"].is_monotonic_increasing
    np.testing.assert_allclose(table["actual"], 2 * table["predicted"])


def test_clv_csv_report_and_printed_table(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("experiment=clv", "scenario.population.size=4000", "progress=false",
                   "scenario.clv.horizon_days=120", f"hydra.run.dir={out}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / "clv.csv")
    assert list(table.columns) == COLUMNS
    assert list(table["method"]) == ["simple"] * 5 + ["bgnbd_gg"] * 5
    assert list(table["segment"]) == (["all", *SEGMENTS]) * 2
    np.testing.assert_allclose(table["rel_error"], table["predicted"] / table["actual"] - 1,
                               rtol=1e-12)  # fmt: skip
    names = {p.name for p in out.iterdir()}
    assert {"clv.csv", "clv_customers.parquet", "clv_calibration.png", "kpis.json", "report.md",
            "report.html", "run.json"} <= names  # fmt: skip
    assert "bgnbd_gg" in proc.stdout and "rel_error" in proc.stdout
    assert "Calibration" in (out / "report.md").read_text()
    customers = pd.read_parquet(out / "clv_customers.parquet")
    everyone = table.set_index(["method", "segment"]).loc[("bgnbd_gg", "all")]
    assert everyone["actual"] == pytest.approx(customers["actual"].mean(), rel=1e-12)


BAD = [  # overrides after experiment=clv, the key the message must name, words of what is allowed
    (["+experiment.horizon_days=30"], "experiment.horizon_days", "unknown key"),
    (["scenario.clv.horizon_days=0"], "scenario.clv.horizon_days", "integer > 0"),
    (["scenario.clv.discount_rate=-0.1"], "scenario.clv.discount_rate", ">= 0"),
    (["strategy=[bundles]", "strategy.bundles.arms=[treatment]"], "strategy.bundles.arms",
     "one of control"),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "key", "allowed"), BAD, ids=[b[1] for b in BAD])
def test_bad_input_gives_one_line_and_exit_2(tmp_path, overrides, key, allowed):
    assert_rejected(tmp_path, "experiment=clv", *overrides, key=key, allowed=allowed)
