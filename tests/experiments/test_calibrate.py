"""``python -m experiments.calibrate dashboard=FILE``: the map, bad input, outputs, recovery."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf
from test_run_cli import ROOT, run_cli

from experiments.calibration import fit as F
from experiments.calibration.dashboard import Dashboard, parse
from experiments.calibration.whatif import paired_lift
from experiments.config import load_scenario
from experiments.replicates import replicate_seeds
from sim.errors import ConfigError

PERIOD = {"start": "2027-01-01", "days": 90}


def calibrate_cli(*args):
    return subprocess.run([sys.executable, "-m", "experiments.calibrate", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_each_kpi_fits_the_parameter_of_its_mechanism():
    fits, notes = F.plan({"sessions": 1, "conversion_rate": 0.03, "aov": 80})
    assert fits == {"sessions": "population.size", "conversion_rate": "funnel.p_cart",
                    "aov": "catalog.price_median"}  # fmt: skip
    said = " ".join(notes)
    assert "traffic.visit_rate stays at the default" in said and "confounded" in said
    assert "funnel.p_purchase stays at the default" in said
    full = {"sessions": 1, "visitors": 1, "add_to_cart_rate": 0.1, "conversion_rate": 0.03,
            "checkout_completion_rate": 0.5, "repeat_purchase_rate": 0.2,
            "churn_rate": 0.8}  # fmt: skip
    fits, notes = F.plan(full)
    assert fits["visitors"] == "traffic.visit_rate"
    assert fits["conversion_rate"] == "funnel.p_checkout"
    assert fits["checkout_completion_rate"] == "funnel.p_purchase"
    assert fits["churn_rate"] == "retention.lapse_per_visit"
    assert not any(n.startswith(("funnel.", "traffic.", "population.")) for n in notes)


@pytest.mark.parametrize(
    ("kpis", "period", "key", "allowed"),
    [
        ({"mystery": 1}, PERIOD, "dashboard.kpis.mystery", "unknown KPI id"),
        ({"conversion_rate": 2.8}, PERIOD, "dashboard.kpis.conversion_rate", "<= 1"),
        ({"visitor_conversion_rate": -0.1}, PERIOD, "dashboard.kpis.visitor_conversion_rate",
         ">= 0"),
        ({"sessions": -5}, PERIOD, "dashboard.kpis.sessions", ">= 0"),
        ({"sessions": 100}, {"start": "2027-01-01", "days": 0}, "dashboard.period.days", ">= 1"),
        ({"sessions": 100}, {"start": "2027-01-01"}, "dashboard.period.days", ">= 1"),
        ({"sessions": 100}, {"start": "Q1", "days": 9}, "dashboard.period.start", "YYYY-MM-DD"),
    ],
)  # fmt: skip
def test_bad_dashboards_are_named(kpis, period, key, allowed):
    with pytest.raises(ConfigError) as raised:
        parse({"name": "x", "period": period, "kpis": kpis})
    assert key in str(raised.value) and allowed in str(raised.value), str(raised.value)


def test_a_kpi_that_identifies_nothing_or_cannot_be_fitted_is_named():
    with pytest.raises(ConfigError, match="dashboard.kpis: must be at least one KPI"):
        F.check_fittable(parse({"period": PERIOD, "kpis": {"bounce_rate": 0.4}}))
    with pytest.raises(ConfigError, match="dashboard.kpis.aov: must be a number > 0"):
        F.check_fittable(parse({"period": PERIOD, "kpis": {"aov": 0}}))


def test_bad_dashboard_exits_2_with_one_line_and_writes_nothing(tmp_path):
    path = tmp_path / "dash.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "period": PERIOD, "kpis": {"sessions": -5}}))
    out = tmp_path / "out"
    proc = calibrate_cli(f"dashboard={path}", f"hydra.run.dir={out}")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "dashboard.kpis.sessions" in lines[0] and ">= 0" in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == "" and not out.exists()


def test_outputs_and_the_calibrated_scenario_runs_with_experiments_run(tmp_path):
    # A small store (~5,000 people) and a short search, so the command stays quick
    dash = {"name": "tiny", "period": {"start": "2026-10-01", "days": 60},
            "kpis": {"sessions": 4000, "conversion_rate": 0.03, "aov": 90.0,
                     "bounce_rate": 0.4}}  # fmt: skip
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(dash, sort_keys=False))
    out = tmp_path / "cal"
    proc = calibrate_cli(f"dashboard={path}", "trials=12", "population=3000", "progress=false",
                         "seed=5", "fit_replicates=2", f"hydra.run.dir={out}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "stays at the default" in proc.stdout and "cost:" in proc.stdout
    assert {"calibrated.yaml", "fit.csv", "uncertainty.csv", "notes.txt", "fit.png",
            "calibration.json", "run.json"} <= {p.name for p in out.iterdir()}  # fmt: skip
    fit = pd.read_csv(out / "fit.csv").set_index("kpi")
    assert list(fit.columns[:4]) == ["target", "simulated", "se", "rel_error"]
    assert list(fit.index) == list(dash["kpis"])
    np.testing.assert_allclose(fit["rel_error"], fit["simulated"] / fit["target"] - 1)
    assert pd.isna(fit.loc["bounce_rate", "parameter"])  # compared only
    ranges = pd.read_csv(out / "uncertainty.csv")
    assert list(ranges.columns[:4]) == ["parameter", "value", "low", "high"]
    assert set(ranges["parameter"]) == {"population.size", "funnel.p_cart", "catalog.price_median"}
    assert (ranges["low"] <= ranges["value"]).all() and (ranges["value"] <= ranges["high"]).all()
    summary = json.loads((out / "calibration.json").read_text())
    assert summary["cost"]["search_simulations"] <= 12
    # Round trip: the calibrated store run by experiments.run at the replicates' seeds is the one
    # measured (fit.csv: their mean), its catalog the calibration seed's whatever the run's seed
    totals = []
    for i, rep_seed in enumerate(replicate_seeds(5, 2)):
        run = tmp_path / f"run{i}"
        proc = run_cli(f"scenario_file={out / 'calibrated.yaml'}", f"seed={rep_seed}",
                       "progress=false", "output.events=false", f"hydra.run.dir={run}")  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        totals.append(json.loads((run / "kpis.json").read_text())["total"])
    sc = load_scenario([f"scenario_file={out / 'calibrated.yaml'}"])
    assert sc.name == "tiny" and sc.start_date == "2026-10-01" and sc.days == 60
    assert sc.catalog.seed == 5
    for kpi, row in fit.iterrows():  # the same worlds: equal up to summation order
        mean = np.mean([t[kpi] for t in totals])
        assert mean == pytest.approx(row["simulated"], rel=1e-9), kpi


MOVED = {"population.size": 30_000, "funnel.p_cart": 0.030, "funnel.p_checkout": 0.66,
         "funnel.p_purchase": 0.62, "catalog.price_median": 90.0,
         "retention.post_purchase_boost": 40.0}  # fmt: skip
KPIS = ["sessions", "conversion_rate", "aov", "add_to_cart_rate", "checkout_completion_rate",
        "repeat_purchase_rate"]  # fmt: skip


def test_recovery_of_a_hidden_store():
    """A hidden store's dashboard, calibrated from the default: KPIs and a what-if match.

    Small, to stay quick: a hidden store of 30,000 people (the default's 20,000 with six
    parameters moved), a search at that size; so the Monte Carlo error of a KPI is a few percent
    (the full-scale figures are in the README). The hidden store runs at another seed than the
    calibration: another population and another catalog, as a real store's would be. (A search
    at 15,000 fitted seed 42's 15,000 people, whose conversion and AOV came out 7-9% above those
    of the fit's new people at 30,000: people alone move them ~3% between seeds at 30,000.)
    """
    default = load_scenario(["scenario.population.size=20000"])
    hidden = F.with_values(default, MOVED)
    truth = F.measure(hidden, 2024, KPIS)  # the dashboard, and its own Monte Carlo error
    dash = Dashboard("hidden", default.start_date, default.days, truth["value"].to_dict())
    cal = F.calibrate(default, dash, trials=40, population=30_000, seed=42)
    fit = cal.fit.set_index("kpi")
    # Tolerance: 5%, or 3 standard errors of the difference of two stores' KPIs when that is
    # wider (the hidden store's and the calibrated one's Monte Carlo errors, independent)
    tol = np.maximum(0.05, 3 * np.hypot(fit["se"], truth["se"]) / fit["target"])
    assert (fit["rel_error"].abs() <= tol).all(), fit.assign(tol=tol)
    # The test can fail: the default store misses most of the dashboard by more than that
    before = F.measure(F.with_values(default, {"population.size": 30_000}), 42, KPIS)
    assert ((before["value"] / fit["target"] - 1).abs() > tol).sum() >= 5
    # The what-if: bundles' revenue lift on each store (paired worlds at its seed) agrees within
    # 3 standard errors of the difference (each lift's delta-method se over paired users)
    strategy = OmegaConf.to_container(OmegaConf.load(ROOT / "conf/strategy/bundles.yaml"))
    on_hidden, on_calibrated = (paired_lift(hidden, 2024, strategy),
                                paired_lift(cal.scenario, 42, strategy))  # fmt: skip
    assert on_hidden.lift > 5 * on_hidden.se  # a lift to recover, not noise
    diff = on_calibrated.lift - on_hidden.lift
    assert abs(diff) <= 3 * np.hypot(on_hidden.se, on_calibrated.se), (on_hidden, on_calibrated)
