"""python -m experiments.power: outputs, and one clear line with exit code 2 on bad input."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.stats.checks import ConfigError

ROOT = Path(__file__).resolve().parents[2]
POWER_KEYS = {
    "n_per_arm", "n_control", "n_treatment", "total_n", "days", "alpha", "power", "baseline",
    "mde_abs", "mde_rel", "method",
}  # fmt: skip


def power_cli(out: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "experiments.power", *args, f"hydra.run.dir={out}"]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_proportion_example_from_the_issue(tmp_path):
    out = tmp_path / "run"
    done = power_cli(out, "metric=proportion", "baseline=0.10", "mde=0.02", "mde_kind=absolute",
                     "alpha=0.05", "power=0.8", "daily_traffic=5000")  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "power.json").read_text())
    assert POWER_KEYS <= set(summary)
    # Hand: h = 2 asin(sqrt(.12)) - 2 asin(sqrt(.10)) = 0.064; n = 2 (2.8016 / h)^2 = 3834.3.
    assert summary["n_per_arm"] == 3835 and summary["total_n"] == 7670 and summary["days"] == 2
    assert summary["mde_rel"] == pytest.approx(0.2)
    assert (out / "power_curve.png").stat().st_size > 1000
    for text in ("n per arm (equal split): 3,835", "total n: 7,670", "days: 2", "Cohen's h"):
        assert text in done.stdout
    assert not list(out.glob(".*.tmp*"))  # no temporary file left behind


def test_mean_relative_one_sided_unequal_split(tmp_path):
    out = tmp_path / "run"
    done = power_cli(out, "metric=mean", "baseline=50", "sd=20", "mde=0.05", "mde_kind=relative",
                     "alternative=larger", "allocation_ratio=2", "cuped_rho=0.5",
                     "n_per_arm=500")  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "power.json").read_text())
    assert summary["mde_abs"] == pytest.approx(2.5)
    assert summary["n_treatment"] >= 2 * summary["n_control"] - 1
    assert 0 < summary["power_at_n"] < 1 and "TTestIndPower" in summary["method"]


def test_ratio_from_its_parts_with_simulated_power(tmp_path):
    out = tmp_path / "run"
    done = power_cli(out, "metric=ratio", "baseline=100", "denom_mean=1", "numer_sd=150",
                     "denom_sd=0.8", "corr=0.6", "mde=0.1", "mde_kind=relative")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "power.json").read_text())["n_per_arm"] > 0
    done = power_cli(tmp_path / "sim", "baseline=0.2", "mde=0.05", "simulate=200", "seed=1")
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "sim" / "power.json").read_text())
    low, high = summary["simulated_power_ci"]
    assert low <= 0.8 <= high or abs(summary["simulated_power"] - 0.8) < 0.07


@pytest.mark.parametrize(
    "args, expected",
    [
        (["alpha=1.5"], "alpha: must be a number > 0 and < 1"),
        (["power=0"], "power: must be a number > 0 and < 1"),
        (["mde=0"], "mde: must be a number > 0"),
        (["metric=median"], "metric: must be one of proportion, mean, ratio"),
        (["metric=mean"], "sd: must be a number > 0 when metric=mean"),
        (["baseline=1.2"], "baseline: must be a number > 0 and < 1"),
        (["mde=0.95"], "mde: must be a lift keeping the proportion inside (0, 1)"),
        (["mde=abc"], "mde: must be of type float"),
        (["colour=red"], "colour: unknown key"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, args, expected):
    out = tmp_path / "run"
    defaults = ["baseline=0.1", "mde=0.02"]
    done = power_cli(out, *defaults, *args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], done.stderr
    assert "Traceback" not in done.stderr and not out.exists()


def test_missing_required_value(tmp_path):
    done = power_cli(tmp_path / "run", "mde=0.02")
    assert done.returncode == 2
    assert (
        done.stderr.strip() == "error: baseline: must be given (it is required and has no default)"
    )


def test_power_config_composes_and_runs_in_process(tmp_path):
    from experiments.cli import compose_config
    from experiments.power import register_schemas, run

    register_schemas()
    cfg = compose_config("power", ["baseline=0.02", "mde=0.1", "mde_kind=relative"])
    summary = run(cfg, tmp_path)
    assert 78_000 <= summary["n_per_arm"] <= 82_000  # BENCHMARKS.md: ~80k per arm
    assert json.loads((tmp_path / "power.json").read_text())["n_per_arm"] == summary["n_per_arm"]


@pytest.mark.parametrize("args", [["alpha=0"], ["alpha=1"], ["power=1"], ["power=-0.2"]])
def test_alpha_and_power_edges_fail_validation_in_process(args):
    from experiments.cli import compose_config
    from experiments.power import register_schemas, validate
    from sim.errors import ConfigError

    register_schemas()
    cfg = compose_config("power", ["baseline=0.1", "mde=0.02", *args])
    key = args[0].split("=")[0]
    with pytest.raises(ConfigError, match=f"{key}: must be a number > 0 and < 1"):
        validate(cfg)


def test_a_decrease_is_sized_and_simulated_as_a_decrease(tmp_path):
    """alternative=smaller sizes 0.10 -> 0.08 (statsmodels, Cohen's h, one-sided) and simulates it.

    Simulated power: R = 400 replicates at true power ~0.80 have MC sd sqrt(.8 * .2 / 400) = 0.02;
    the Wilson interval must hold 0.8, or the estimate lie within 3.5 sd (0.07) of it.
    """
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    h = abs(proportion_effectsize(0.08, 0.10))
    expected = math.ceil(
        NormalIndPower().solve_power(h, power=0.8, alpha=0.05, alternative="larger")
    )
    out = tmp_path / "run"
    done = power_cli(out, "baseline=0.10", "mde=0.02", "mde_kind=absolute", "alternative=smaller",
                     "simulate=400", "seed=2", "n_per_arm=2000")  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "power.json").read_text())
    assert summary["direction"] == "decrease" and summary["n_per_arm"] == expected
    assert summary["mde_abs"] == pytest.approx(-0.02) and summary["mde_rel"] == pytest.approx(-0.2)
    low, high = summary["simulated_power_ci"]
    assert low <= 0.8 <= high or abs(summary["simulated_power"] - 0.8) <= 0.07
    assert summary["mde_at_n"] < 0 and summary["power_at_n"] == pytest.approx(
        NormalIndPower().power(h, nobs1=2000, alpha=0.05, alternative="larger"), abs=1e-12
    )
    assert "direction: decrease" in done.stdout


def in_process(tmp_path, *overrides):
    from experiments.cli import compose_config
    from experiments.power import register_schemas, run

    register_schemas()
    cfg = compose_config("power", ["baseline=0.1", "mde=0.02", *overrides])
    return run(cfg, tmp_path)


def test_two_sided_sizes_the_harder_direction_and_says_which(tmp_path):
    """Baseline 0.9: the decrease (towards 0.5, larger variance) is the harder one: it is sized."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    summary = in_process(tmp_path, "baseline=0.9", "mde=0.05")
    h_down, h_up = abs(proportion_effectsize(0.85, 0.9)), abs(proportion_effectsize(0.95, 0.9))
    assert h_down < h_up
    assert summary["direction"] == "decrease" and summary["mde_abs"] == pytest.approx(-0.05)
    n = NormalIndPower().solve_power(h_down, nobs1=None, alpha=0.05, power=0.8)
    assert summary["n_per_arm"] == math.ceil(n)
    assert in_process(tmp_path, "baseline=0.1")["direction"] == "increase"


def test_power_curve_shows_the_sized_direction():
    from experiments.power import curves_for
    from experiments.stats.power import Design

    design = Design("proportion", 0.10, alternative="smaller")
    curves = curves_for(design, -0.02, [100, 2525, 6000])
    assert len(curves) == 3 and all("(lift -0.0" in label for label in curves)
    (sized,) = [c for label, c in curves.items() if label == "0.1 -> 0.08 (lift -0.02)"]
    # statsmodels: 2,524.4 per arm for 0.10 -> 0.08 one-sided (3,020.5 for 0.10 -> 0.12).
    assert sized["power"].iloc[1] == pytest.approx(0.8, abs=1e-3)


def test_sequential_sizes_are_reported_beside_the_fixed_n(tmp_path):
    from experiments.power import report

    summary = in_process(tmp_path, "looks=5")
    assert json.loads((tmp_path / "power.json").read_text()) == pytest.approx(summary)
    assert summary["n_per_arm"] == 3835 and summary["looks"] == 5
    assert summary["msprt_tau"] == pytest.approx(0.02)  # fixed in advance: the absolute MDE
    assert 1 < summary["obf_inflation"] < 1.05
    assert abs(summary["n_per_arm_obf"] - summary["obf_inflation"] * 3834.3) <= 1  # hand n
    assert summary["expected_n_obf"] < summary["n_per_arm"] < summary["n_per_arm_msprt_max"]
    assert 0 < summary["expected_n_msprt"] < summary["n_per_arm_msprt_max"]
    lines = report(summary).splitlines()
    for key in ("fixed horizon", "O'Brien-Fleming", "mSPRT"):
        assert sum(key in line for line in lines) == 1, lines
    assert in_process(tmp_path, "msprt_tau=0.01")["msprt_tau"] == 0.01


@pytest.mark.parametrize(
    "args, expected",
    [
        (["looks=0"], "looks: must be an integer >= 1 and <= 60"),
        (["looks=2.5"], "looks: must be"),
        (["msprt_tau=0"], "msprt_tau: must be a number > 0"),
        (["mde=0.1", "alternative=smaller"], "mde: must be a lift keeping the proportion inside"),
    ],
)
def test_bad_sequential_or_direction_input_fails_validation(args, expected):
    from experiments.cli import compose_config
    from experiments.power import register_schemas, validate

    register_schemas()
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(")):
        validate(compose_config("power", ["baseline=0.1", "mde=0.02", *args]))
