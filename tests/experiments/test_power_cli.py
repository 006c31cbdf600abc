"""python -m experiments.power: outputs, and one clear line with exit code 2 on bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
