"""``python -m experiments.run``: outputs of the default experiment, and bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sim.eventlog import EVENTS
from sim.kpis import REGISTRY
from sim.tables import USER_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
EVENT_COLUMNS = ["time", "user_id", "session_id", "event", "product_id", "quantity", "value",
                 "channel", "arm", "order_id"]  # fmt: skip


def run_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "experiments.run", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def assert_invalid(*overrides, key: str, allowed: str) -> None:
    """In process (no CLI start-up): the composed config fails validation naming ``key`` and
    ``allowed`` (the CLI turns that ConfigError into one line and exit 2, as tested here)."""
    from experiments.cli import compose_config
    from experiments.config import register, validate_run
    from sim.errors import ConfigError

    register()
    with pytest.raises(ConfigError) as raised:
        validate_run(compose_config("config", list(overrides)))
    assert key in str(raised.value) and allowed in str(raised.value), str(raised.value)


def assert_rejected(tmp_path, *args, key: str, allowed: str) -> None:
    """The command exits 2 with one line naming ``key`` and ``allowed``, and writes nothing."""
    out = tmp_path / "out"
    proc = run_cli(*args, f"hydra.run.dir={out}")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert key in lines[0] and allowed in lines[0], lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not out.exists()  # nothing that looks like a result


def test_default_experiment_writes_every_output(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("scenario.population.size=3000", "progress=false", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr
    for stage in ("AWARENESS", "INTEREST", "DECISION", "ACTION"):
        assert stage in proc.stdout
    assert "conversion_rate" in proc.stdout
    names = {p.name for p in out.iterdir()}
    assert {"kpis.json", "daily.csv", "users.parquet", "events.parquet", "funnel.png",
            "kpis_over_time.png", "order_values.png", "run.json"} <= names  # fmt: skip
    users = pd.read_parquet(out / "users.parquet")
    assert list(users.columns) == list(USER_COLUMNS) and len(users) == 3000
    events = pd.read_parquet(out / "events.parquet")
    assert list(events.columns) == EVENT_COLUMNS
    assert set(events["event"].astype(str)) <= set(EVENTS)
    kpis = json.loads((out / "kpis.json").read_text())
    assert set(kpis) == {"total", "by_arm", "by_segment", "by_channel"}
    assert set(kpis["total"]) == set(REGISTRY)
    daily = pd.read_csv(out / "daily.csv")
    assert list(daily.columns) == ["day", "date", "kpi", "scope", "group", "value"]
    assert daily["day"].between(0, 89).all() and set(daily["kpi"]) <= set(REGISTRY)
    meta = json.loads((out / "run.json").read_text())
    assert {"version", "seed", "config_hash", "start_time", "end_time"} <= set(meta)
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_event_log_can_be_switched_off(tmp_path):
    proc = run_cli("scenario.population.size=2000", "progress=false", "output.events=false",
                   f"hydra.run.dir={tmp_path}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "events.parquet").exists() and (tmp_path / "users.parquet").exists()


BAD = [  # override, the key the message must name, words of what is allowed
    (
        "scenario.channels.display.budget_per_1000=-5",
        "scenario.channels.display.budget_per_1000",
        ">= 0",
    ),
    ("scenario.funnel.p_cart=1.5", "scenario.funnel.p_cart", ">= 0 and <= 1"),
    ("scenario.history.days=5000", "scenario.population.newcomers", "below 0.329 with this past"),
    ("scenario.funnel.bounce.email=-0.1", "scenario.funnel.bounce.email", ">= 0 and <= 1"),
    ("scenario.population.sise=10", "scenario.population.sise", "size"),
    ("scenario.population.size=0", "scenario.population.size", "integer > 0"),
    ("scenario.days=0", "scenario.days", "integer > 0"),
    ("scenario.days=ninety", "scenario.days", "of type int"),
    ("scenario.days=???", "scenario.days", "given"),
    ("~scenario.days", "scenario.days", "required"),
    ("scenario=nope", "scenario", "one of alike, default"),
    (
        "experiment=nope",
        "experiment",
        "one of ab_test, baseline, budget, clv, incrementality, power_sim, prices, promotion, "
        "whatif",
    ),
    ("seed=-1", "seed", ">= 0"),
    ("scenario.start_date=2027-02-30", "scenario.start_date", "YYYY-MM-DD"),
    ("scenario.history.pre_days=30", "scenario.history.pre_days", "integer >= 90"),
    ("scenario.history.pre_days=-1", "scenario.history.pre_days", "integer >= 90"),
    # experiments (issue 5)
    ("target=nope", "target", "one of aov_10, none, q1_conversion, q1_sales"),
    ("replicates=0", "replicates", "integer >= 1"),
    ("split=1.5", "split", "> 0 and < 1"),
    ("split=0", "split", "> 0 and < 1"),
    ("backend=spark", "backend", "one of serial, processes, ray"),
    ("strategy=[nope]", "strategy", "one of bundles, chat_assistant, gamification"),
    # issue 9 item 10: a key added with + is not silently ignored
    ("+scenario.some_new_key=1", "scenario.some_new_key", "unknown key"),
    ("+experiment.lookevery=3", "experiment.lookevery", "unknown key"),
]
EXPERIMENT_BAD = [  # need experiment=ab_test
    (["target=q1_sales", "scenario.days=30"], "target.deadline",
     "a date within the horizon, 2027-01-01 to 2027-01-30"),
    (["target=q1_sales", "target.metric=bounce_rat"], "target.metric",
     "one of the analysis metrics"),
    (["experiment=power_sim", "experiment.sizes=[]"], "experiment.sizes", "non-empty list"),
    (["experiment=power_sim", "scenario.catalog.shared_reviews=false"],
     "experiment.shared_store", "false when catalog.shared_reviews is false"),
    (["experiment=power_sim", "strategy=[bundles]", "strategy.bundles.start_day=-3"],
     "experiment.shared_store", "false when strategy bundles starts before day 0"),
    (["experiment.msprt_tau=-1"], "experiment.msprt_tau", "> 0"),
    (["strategy=[bundles]", "strategy.bundles.discount=1.0"], "strategy.bundles.discount",
     "< 1"),
    (["strategy=[bundles]", "strategy.bundles.discount=-0.1"], "strategy.bundles.discount",
     ">= 0"),
    (["strategy=[retargeting]", "strategy.retargeting.email_delays=[-1]"],
     "strategy.retargeting.email_delays[0]", ">= 0"),
    (["strategy=[retargeting]", "strategy.retargeting.arms=[treatment,nope]"],
     "strategy.retargeting.arms", "one of control, treatment"),
]  # fmt: skip


@pytest.mark.parametrize(("override", "key", "allowed"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_gives_one_line_and_exit_2(tmp_path, override, key, allowed, extra=()):
    assert_rejected(tmp_path, override, *extra, key=key, allowed=allowed)


@pytest.mark.parametrize(("overrides", "key", "allowed"), EXPERIMENT_BAD,
                         ids=[b[1] for b in EXPERIMENT_BAD])  # fmt: skip
def test_bad_experiment_input_gives_one_line_and_exit_2(tmp_path, overrides, key, allowed):
    test_bad_input_gives_one_line_and_exit_2(tmp_path, "experiment=ab_test", key, allowed,
                                             extra=overrides)  # fmt: skip


def test_missing_field_in_a_scenario_file(tmp_path):
    conf = tmp_path / "conf" / "scenario"
    conf.mkdir(parents=True)
    text = (ROOT / "conf" / "scenario" / "default.yaml").read_text()
    (conf / "partial.yaml").write_text(
        "\n".join(line for line in text.splitlines() if not line.startswith("warmup_days:"))
    )
    proc = run_cli("scenario=partial", f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
                   f"hydra.run.dir={tmp_path / 'out'}")  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: scenario.warmup_days: must be given (it is required and has no default)"
    )


def test_a_genuine_bug_keeps_its_traceback_and_exits_1(tmp_path):
    code = ("import sys, experiments.run as r\n"
            "def boom(*a, **k): raise RuntimeError('a genuine bug')\n"
            "r.simulate = boom\n"
            f"sys.argv = ['run', 'hydra.run.dir={tmp_path}']\n"
            "r.main()\n")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, env=env)  # fmt: skip
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "a genuine bug" in proc.stderr
