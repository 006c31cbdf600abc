"""experiments.run's what-if, A/B test, truth and replicates (small worlds, fixed seeds).

Monte Carlo bands: a rate over R independent replicates has SE sqrt(p (1 - p) / R); bands are
written next to each assertion.
"""

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments.abtest import Design, Replicate, analysis_of, true_effects
from experiments.cli import compose_config
from experiments.config import register, scenario_of
from experiments.replicates import replicate_seeds, run_replicates
from experiments.whatif import WhatIf

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["scenario.population.size=3000", "scenario.days=30", "progress=false"]


def config(*overrides):
    register()
    return compose_config("config", [*SMALL, *overrides])


def design(*overrides, truth=True):
    cfg = config("experiment=ab_test", *overrides)
    scenario = scenario_of(cfg)
    from omegaconf import OmegaConf

    return Design(scenario, OmegaConf.to_container(cfg.strategy), 0.5, "ab_test",
                  analysis_of(cfg, 0.5), None, truth)  # fmt: skip


def test_whatif_without_strategy_reports_exactly_zero_effect():
    cfg = config("experiment=whatif")
    table = WhatIf(scenario_of(cfg), {})(0, 5)
    assert (table["abs_diff"].fillna(0) == 0).all()
    assert (table["without"].fillna(-1) == table["with"].fillna(-1)).all()


def test_whatif_with_bundles_moves_items_per_order():
    cfg = config("experiment=whatif", "strategy=[bundles]")
    table = WhatIf(scenario_of(cfg), {"bundles": {}})(0, 5).set_index("kpi")
    assert table.loc["items_per_order", "rel_diff"] > 0  # bundles add complements to carts


def test_replicates_are_identical_on_every_backend(tmp_path):
    task = WhatIf(scenario_of(config("scenario.population.size=1000", "scenario.days=10",
                                     "scenario.warmup_days=20")), {"bundles": {}})  # fmt: skip
    frames = {
        (backend, workers): run_replicates(
            task, 4, 99, tmp_path / f"{backend}{workers}", backend, workers, progress=False
        )  # fmt: skip
        for backend, workers in (("serial", 1), ("processes", 2), ("processes", 1), ("ray", 2))
    }
    first = frames[("serial", 1)]
    assert first["replicate"].nunique() == 4
    for frame in frames.values():
        pd.testing.assert_frame_equal(frame, first)


class Flaky:
    """A replicate task that is interrupted at one replicate and records what it computed."""

    def __init__(self, log: Path, stop_at: int | None):
        self.log, self.stop_at = log, stop_at

    def __call__(self, index, seed):
        if index == self.stop_at:
            raise KeyboardInterrupt
        with self.log.open("a") as f:
            f.write(f"{index}\n")
        return pd.DataFrame({"value": [float(seed % 1000)]})


def test_an_interrupted_run_resumes_without_recomputing(tmp_path):
    folder, log = tmp_path / "reps", tmp_path / "log.txt"
    with pytest.raises(KeyboardInterrupt):
        run_replicates(Flaky(log, stop_at=3), 6, 1, folder, progress=False)
    assert sorted(p.name for p in folder.iterdir()) == [f"rep_0000{i}.parquet" for i in range(3)]
    (folder / ".rep_00003.parquet.tmp").write_bytes(b"torn")  # a write cut short by a crash
    frame = run_replicates(Flaky(log, stop_at=None), 6, 1, folder, progress=False)
    assert log.read_text().split() == ["0", "1", "2", "3", "4", "5"]  # each computed once
    assert list(frame["replicate"]) == list(range(6))
    assert list(frame["seed"]) == replicate_seeds(1, 6)


def test_ctrl_c_stops_cleanly_and_the_same_command_resumes(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "experiments.run", "experiment=whatif", "replicates=40",
           "strategy=[bundles]", *SMALL, f"hydra.run.dir={out}"]  # fmt: skip
    # Ctrl-C's SIGINT at its default, as a terminal's shell leaves it: a test run launched as a
    # background job inherits it ignored, and the run would never see the interrupt
    default = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True, preexec_fn=default)
    reps = out / "replicates"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(reps.glob("rep_*.parquet"))) < 2:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "resume" in err.splitlines()[-1] and "Traceback" not in err
    done = {p: p.stat().st_mtime_ns for p in reps.glob("rep_*.parquet")}
    assert 2 <= len(done) < 40 and not (out / "run.json").exists()
    for path in done:
        pd.read_parquet(path)  # every finished file is whole
    finish = subprocess.run([*cmd[:4], "replicates=3", *cmd[5:]], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert finish.returncode == 0, finish.stderr
    assert all(p.stat().st_mtime_ns == t for p, t in done.items() if int(p.stem[4:]) < 3)


def test_true_effect_of_no_strategy_is_zero_and_of_bundles_is_positive():
    d = design(truth=True)
    kpis, metrics = true_effects(d, 3)
    assert (metrics["true_abs_lift"].fillna(0) == 0).all()
    d = design("strategy=[bundles]")
    kpis, metrics = true_effects(d, 3)
    assert list(metrics.population.unique()) == ["exposed", "itt"]  # truth for both populations
    exposed = metrics[metrics.population == "exposed"].set_index("metric")
    assert exposed.loc["items_per_order", "true_rel_lift"] > 0.05


def test_true_effect_lies_in_the_ab_interval_at_about_the_nominal_rate(tmp_path):
    """Bundles act on each shopper's own cart: the arms do not interact."""
    R = 60
    d = design("strategy=[bundles]", "scenario.warmup_days=30", "scenario.traffic.visit_rate=0.04")
    reps = run_replicates(Replicate(d), R, 7, tmp_path, "processes", 2, progress=False)
    cover = reps.groupby("metric")["abs_covered"].mean()
    # nominal 0.95; SE sqrt(.95 * .05 / 60) = 0.028; 3.5 SE below: 0.85. Intervals for the
    # population's own effect (the same agents all vs none treated) may cover more than 95%.
    for metric in ("items_per_order", "aov", "revenue_per_visitor", "visitor_conversion_rate"):
        assert cover[metric] >= 0.95 - 3.5 * np.sqrt(0.95 * 0.05 / R), cover
    # The truth is a real effect, not zero. It is each replicate's own 3,000 agents' (all vs
    # none treated), and heavy buyers make it vary: measured mean +0.30 items, SD 0.10 over
    # the 120 (2 of them at or below 0). Its mean lies > 10 SE above 0, and nearly all are.
    truth = reps.loc[reps["metric"] == "items_per_order", "true_abs_lift"]
    assert truth.mean() > 10 * truth.std() / np.sqrt(len(truth)), truth.describe()
    assert (truth > 0).mean() >= 0.95, truth.describe()


def test_replicates_of_one_shared_store_are_honest_and_the_same_on_every_backend(tmp_path):
    """power_sim's replicates branch from one store warmed up once (experiment.shared_store).

    They still vary where a test does (its split and its window), so each replicate's standard
    error describes the spread of the replicates' estimates, and a metric the strategy does not
    move is rejected at about alpha.
    """
    import dataclasses

    R = 150
    d = dataclasses.replace(design("strategy=[bundles]", "scenario.population.size=20000",
                                   truth=False), store=3)  # fmt: skip
    reps = run_replicates(Replicate(d), R, 5, tmp_path / "p", "processes", 2, progress=False)
    serial = run_replicates(Replicate(d), 3, 5, tmp_path / "s", "serial", progress=False)
    pd.testing.assert_frame_equal(serial, reps[reps["replicate"] < 3].reset_index(drop=True))
    exposed = reps[reps["population"] == "exposed"].groupby("metric")
    spread = exposed["abs_lift"].std() / exposed["se"].mean()
    # the SD of R normal estimates has relative SE 1 / sqrt(2 (R - 1)) = 0.058; 3.5 SE: 0.2.
    # Measured at this seed: 1.00 to 1.07 for these (aov's heavier tail: 1.13, not asserted)
    for metric in ("visitor_conversion_rate", "conversion_rate", "revenue_per_visitor",
                   "orders_per_visitor", "sessions_per_visitor", "items_per_order"):  # fmt: skip
        assert abs(spread[metric] - 1) < 3.5 / np.sqrt(2 * (R - 1)), spread
    rejected = exposed["p_value"].apply(lambda p: (p < 0.05).mean())
    assert rejected["items_per_order"] > 0.2  # bundles add items: measured 0.27
    # bundles leave the conversion rate and the sessions alone: rejected at alpha = 0.05, SE
    # sqrt(.05 * .95 / 150) = 0.018; 3.5 SE above: 0.11 (measured 0.053, 0.053)
    for metric in ("conversion_rate", "sessions_per_visitor"):
        assert rejected[metric] < 0.05 + 3.5 * np.sqrt(0.05 * 0.95 / R), rejected


def test_a_deadline_target_is_judged_in_a_small_store(tmp_path):
    """Each replicate is cut at the deadline; a day on which nobody came for the first time is
    still data (this command stopped with "target.deadline: must be a date within the data")."""
    import math

    from experiments.power_sim import run
    from experiments.run import _design

    register()
    cfg = compose_config("config", ["experiment=power_sim", "strategy=[bundles]",
                                    "target=q1_sales", "scenario.days=120", "replicates=4",
                                    "experiment.sizes=[2000]", "progress=false"])  # fmt: skip
    table = run(cfg, _design(cfg, scenario_of(cfg)), [2000], tmp_path)
    judged = table.dropna(subset=["p_target_met"])
    assert len(judged) == 1 and math.isfinite(judged["predicted_p_met"].iloc[0]), judged


SHOWN = {"name": "social_proof", "arms": ["control", "treatment"], "review_request_lift": 1.0,
         "cost_per_request": 0.0}  # the store shows reviews to everyone  # fmt: skip
ASKED = {"name": "social_proof", "arms": ["treatment"], "lift_at_5_reviews": 0.0,
         "well_reviewed_lift": 0.0, "review_request_lift": 8.0,
         "fee_per_1000_per_day": 0.0}  # the test: ask treatment's buyers for reviews  # fmt: skip


def spillover_design(shared: bool) -> Design:
    """A young store (no reviews yet) that shows reviews; the treatment asks buyers for them."""
    d = design("scenario.population.size=40000", "scenario.days=60", "scenario.warmup_days=30",
               "scenario.traffic.visit_rate=0.03", "scenario.catalog.initial_reviews=0",
               f"scenario.catalog.shared_reviews={str(shared).lower()}")  # fmt: skip
    import dataclasses

    return dataclasses.replace(d, strategy={"shown": SHOWN, "asked": ASKED})


def test_shared_reviews_spill_over_and_the_interval_misses_the_truth_more_often(tmp_path):
    """With one catalog, control shoppers read the reviews treatment's buyers were asked for."""
    R = 24
    cover = {}
    for shared in (True, False):
        reps = run_replicates(Replicate(spillover_design(shared)), R, 11, tmp_path / str(shared),
                              "processes", 2, progress=False)  # fmt: skip
        conv = reps[reps["metric"] == "conversion_rate"]
        assert (conv["true_rel_lift"] > 0.1).all()  # asking for reviews truly sells more
        cover[shared] = conv["rel_covered"].mean()
    # difference of two coverage rates over 24 replicates each: SE at most
    # sqrt(2 * 0.25 / 24) = 0.144; require the gap to exceed 2 such SE
    assert cover[False] - cover[True] > 2 * np.sqrt(2 * 0.25 / R), cover
