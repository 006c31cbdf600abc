"""python -m experiments.analyze: outputs, and one clear line with exit code 2 on bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULT_COLUMNS = [
    "metric", "arm", "control", "treatment", "abs_lift", "abs_ci_low", "abs_ci_high",
    "rel_lift", "rel_ci_low", "rel_ci_high", "p_value", "p_adjusted", "significant",
    "role", "population", "method", "adj_ci_low", "adj_ci_high",
    "cuped_lift", "cuped_ci_low", "cuped_ci_high", "cuped_p_value", "variance_reduction", "se",
]  # fmt: skip


def per_user_table(n=20000, seed=0, arms=("A", "B")) -> pd.DataFrame:
    """DESIGN.md's per-user table, every column, with +20% conversion in arm B."""
    rng = np.random.default_rng(seed)
    arm = rng.choice(arms, n)
    converted = rng.random(n) < np.where(arm == "B", 0.06, 0.05)
    orders = converted * (1 + rng.poisson(0.3, n))
    revenue = orders * rng.lognormal(4, 1, n)
    first_order = np.where(converted, rng.integers(0, 90, n), np.nan)
    return pd.DataFrame({
        "user_id": np.arange(n), "arm": arm, "segment": rng.choice(["loyal", "browser"], n),
        "device": rng.choice(["mobile", "desktop"], n), "exposed": rng.random(n) < 0.9,
        "first_exposure_day": rng.integers(0, 90, n), "sessions": 1 + rng.poisson(1.5, n),
        "orders": orders, "items": orders * (1 + rng.poisson(1, n)), "revenue": revenue,
        "margin": 0.3 * revenue - 5 * converted, "converted": converted,
        "first_order_day": first_order, "last_order_day": first_order,
        "pre_sessions": rng.poisson(2, n), "pre_orders": rng.poisson(0.1, n),
        "pre_revenue": 0.4 * revenue + rng.lognormal(2, 1, n),
    })  # fmt: skip


@pytest.fixture(scope="module")
def users_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "users.parquet"
    per_user_table().to_parquet(path)
    return path


def analyze_cli(out: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "experiments.analyze", *args, f"hydra.run.dir={out}"]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_default_analysis_writes_results_srm_and_smart(tmp_path, users_file):
    out = tmp_path / "run"
    done = analyze_cli(out, f"input={users_file}", "arm_col=arm", "control=A",
                       "start_date=2026-01-01", "target.metric=visitor_conversion_rate",
                       "target.lift=0.1", "target.deadline=2026-03-15")  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = pd.read_csv(out / "ab_results.csv")
    assert list(results.columns) == RESULT_COLUMNS
    assert {"visitor_conversion_rate", "conversion_rate", "aov", "revenue_per_visitor"} <= set(
        results.metric
    )
    srm = json.loads((out / "srm.json").read_text())
    assert set(srm) >= {"counts", "p_value", "flag"} and srm["flag"] is False
    smart = json.loads((out / "smart.json").read_text())
    (verdict,) = smart["results"]
    assert verdict["verdict"] in ("met", "not met", "inconclusive")
    assert 0 <= verdict["p_met"] <= 1 and isinstance(verdict["achievable"], bool)
    assert verdict["achievable"] == (verdict["p_met"] >= 0.8)
    assert "flat-prior" in smart["definitions"]["posterior_p_beyond_target"]
    # the target's metric is the primary one, the only one corrected
    primary = results[results.role == "primary"]
    assert set(primary.metric) == {"visitor_conversion_rate"}
    assert "visitor_conversion_rate" in done.stdout and "SRM check" in done.stdout


def test_csv_input_other_column_names_and_metric_list(tmp_path):
    frame = per_user_table(seed=1, arms=("control", "v1", "v2"))
    frame = frame.rename(columns={"arm": "variant"})
    path = tmp_path / "export.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "run"
    done = analyze_cli(out, f"input={path}", "arm_col=variant", "control=control",
                       "analysis=guardrails", "correction=bh", "population=all")  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = pd.read_csv(out / "ab_results.csv")
    assert set(results.arm) == {"v1", "v2"} and len(results) == 6 and set(results.population) == {
        "itt"}  # fmt: skip
    assert np.isinf(results.abs_ci_high).all()  # non-inferiority: one-sided


def test_all_users_converting_is_a_defined_result_with_its_reason(tmp_path):
    frame = per_user_table(seed=2)
    frame["converted"] = True
    path = tmp_path / "all.parquet"
    frame.to_parquet(path)
    out = tmp_path / "run"
    done = analyze_cli(out, f"input={path}")
    assert done.returncode == 0, done.stderr
    results = pd.read_csv(out / "ab_results.csv").query("population == 'exposed'")
    row = results.set_index("metric").loc["visitor_conversion_rate"]
    assert row.p_value == 1.0 and not row.significant
    assert "note: visitor_conversion_rate (B, exposed): zero variance" in done.stdout


def bad_file(tmp_path, change) -> Path:
    frame = per_user_table(n=4000, seed=3)
    frame = change(frame)
    path = tmp_path / "bad.parquet"
    frame.to_parquet(path)
    return path


def set_rows(column, value, rows=slice(3, 5)):
    def change(frame):
        frame[column] = frame[column].astype(float)
        frame.loc[rows, column] = value
        return frame

    return change


def keep_arm(arm):
    return lambda frame: frame[frame.arm == arm]


def unexpose(arm):
    def change(frame):
        frame.loc[frame.arm == arm, "exposed"] = False
        return frame

    return change


BAD_DATA = [
    (set_rows("revenue", np.nan), "column 'revenue': must be a finite number in every row"),
    (set_rows("revenue", -3.0), "column 'revenue': must be non-negative (>= 0) in every row"),
    (lambda f: f.drop(columns=["exposed"]), "exposed_col: must be a column of the input"),
    (set_rows("exposed", np.nan), "column 'exposed': 3 rows are blank (missing)"),
    (
        lambda f: f.astype({"arm": object}).assign(arm=lambda d: d.arm.where(d.index != 7)),
        "column 'arm': 1 rows are blank",
    ),
    (keep_arm("A"), "arm_col: must be a column with two or more arms"),
    (unexpose("B"), "arm 'B': must be an arm with at least 2 users"),
]


@pytest.mark.parametrize("change, expected", BAD_DATA)
def test_bad_data_is_one_line_and_exit_code_2(tmp_path, change, expected):
    out = tmp_path / "run"
    done = analyze_cli(out, f"input={bad_file(tmp_path, change)}")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not (out / "ab_results.csv").exists() and not (out / "srm.json").exists()


BAD_CONFIG = [
    (["input=/no/such/users.parquet"], "input: must be an existing CSV or Parquet file"),
    (["alpha=1"], "alpha: must be a number > 0 and < 1"),
    (["control=Z"], "control: must be an arm in the data: A, B"),
    (["target.metric=ctr"], "target.metric: must be one of the analysis metrics"),
    (["start_date=2026-01-01", "target.metric=aov", "target.deadline=2026-12-31"],
     "target.deadline: must be a date within the data, 2026-01-01 to 2026-03-31"),
    (["target.metric=aov", "target.lift=0"], "target.lift: must be a number > 0"),
    (["analysis=nope"], "analysis: must be one of default, guardrails, heavy_tails"),
    (["correction=bonferroni"], "correction: must be one of holm, bh, none"),
]  # fmt: skip


@pytest.mark.parametrize("args, expected", BAD_CONFIG)
def test_bad_config_is_one_line_and_exit_code_2(tmp_path, users_file, args, expected):
    out = tmp_path / "run"
    done = analyze_cli(out, f"input={users_file}", *args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], done.stderr
    assert "Traceback" not in done.stderr and not (out / "ab_results.csv").exists()


@pytest.mark.parametrize(
    "option", sorted(p.stem for p in (ROOT / "conf" / "analysis").glob("*.yaml"))
)
def test_every_analysis_option_composes_and_builds(option, users_file):
    from experiments.analyze import build_analysis, register_schemas, validate
    from experiments.cli import compose_config

    register_schemas()
    cfg = compose_config("analyze", [f"analysis={option}", f"input={users_file}"])
    validate(cfg)
    analysis = build_analysis(cfg)
    assert len(analysis.metrics) == len(cfg.analysis.metrics) > 0
    assert analysis.run(pd.read_parquet(users_file)).table.p_value.notna().all()


def test_a_target_from_the_shared_target_group(tmp_path, users_file):
    out = tmp_path / "run"
    done = analyze_cli(out, f"input={users_file}", "target=q1_conversion",
                       "start_date=2026-01-01", "target.deadline=2026-03-31")  # fmt: skip
    assert done.returncode == 0, done.stderr
    smart = json.loads((out / "smart.json").read_text())
    assert smart["target"]["metric"] == "conversion_rate" and smart["target"]["lift"] == 0.15
    done = analyze_cli(tmp_path / "bad", f"input={users_file}", "target=q5")
    assert done.returncode == 2 and "target: must be one of" in done.stderr


def analyze_here(tmp_path, *args: str, capsys=None):
    """Compose, validate and run the analysis in this process (faster than the CLI)."""
    from experiments.analyze import register_schemas, report, run, validate
    from experiments.cli import compose_config

    register_schemas()
    cfg = compose_config("analyze", list(args))
    validate(cfg)
    result, smart = run(cfg, tmp_path)
    return result, report(result, smart)


def test_default_list_skips_metrics_the_input_lacks_and_names_them(tmp_path, capsys):
    """An analyst's own export without orders/items: the default list still runs on the rest."""
    from experiments.stats.checks import ConfigError

    path = bad_file(tmp_path, lambda f: f.drop(columns=["orders", "items", "pre_sessions"]))
    result, _ = analyze_here(tmp_path, f"input={path}")
    skipped = [line for line in capsys.readouterr().out.splitlines() if line.startswith("skip")]
    assert len(skipped) == 1, skipped
    for name in ("conversion_rate (orders)", "aov (orders)", "items_per_order (items, orders)"):
        assert name in skipped[0]
    assert "aov" not in set(result.table.metric)
    assert "revenue_per_visitor" in set(result.table.metric)
    # no metric at all can be computed
    path = bad_file(tmp_path, lambda f: f[["arm", "exposed", "segment"]])
    with pytest.raises(ConfigError, match="analysis.metrics: must be at least one metric"):
        analyze_here(tmp_path, f"input={path}")
    # a binary file named .parquet
    path = tmp_path / "junk.parquet"
    path.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(ConfigError, match="input: must be a Parquet file"):
        analyze_here(tmp_path, f"input={path}")


def test_on_the_command_line_a_listed_metric_stops_and_binary_csv_is_one_line(tmp_path):
    path = bad_file(tmp_path, lambda f: f.drop(columns=["orders"]))
    mine = "analysis.metrics=[{name: aov, kind: ratio, numer: revenue, denom: orders}]"
    done = analyze_cli(tmp_path / "mine", f"input={path}", mine)
    assert done.returncode == 2 and "analysis.metrics[0].denom: must be a column" in done.stderr
    path = tmp_path / "users.csv"
    path.write_bytes(bytes(range(256)) * 40)  # today: a UnicodeDecodeError traceback
    done = analyze_cli(tmp_path / "bin", f"input={path}")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith("error: input: must be a text CSV file"), done.stderr
    assert not (tmp_path / "bin").exists()


def test_drop_missing_drops_blank_exposure_and_says_how_many(tmp_path):
    path = bad_file(tmp_path, set_rows("exposed", np.nan))
    _, printed = analyze_here(tmp_path, f"input={path}", "drop_missing=true")
    assert "dropped 3 rows with a blank 'exposed'" in printed  # rows 3 to 5


def test_relative_lift_with_a_zero_control_prints_undefined(tmp_path):
    frame = per_user_table(n=400, seed=5)
    frame.loc[frame.arm == "A", "converted"] = False
    path = tmp_path / "zero.parquet"
    frame.to_parquet(path)
    metric = "analysis.metrics=[{name: vcr, kind: proportion, column: converted}]"
    result, printed = analyze_here(tmp_path, f"input={path}", metric)
    assert "undefined" in printed and "nan" not in printed.lower()
    assert "fisher exact" in result.table.method.tolist()
