"""``scenario_file=PATH``: a scenario file replaces the default one; overrides apply on top."""

from pathlib import Path

from test_run_cli import ROOT, assert_invalid, assert_rejected, run_cli

from experiments.config import load_scenario

DEFAULT = Path(ROOT) / "conf" / "scenario" / "default.yaml"


def _file(tmp_path, replace=(), append="") -> Path:
    text = DEFAULT.read_text()
    for old, new in replace:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "my_store.yaml"
    path.write_text(text + append)
    return path


def test_the_file_replaces_the_default_and_overrides_apply_on_top(tmp_path):
    path = _file(tmp_path, [("name: default", "name: my_store"),
                            ("  size: 100000 ", "  size: 5000 ")])  # fmt: skip
    sc = load_scenario([f"scenario_file={path}", "scenario.days=20"])
    assert sc.name == "my_store" and sc.population.size == 5000  # from the file
    assert sc.days == 20  # the override, on top
    assert sc.traffic.visit_rate == load_scenario([]).traffic.visit_rate  # the rest as written


def test_bad_scenario_files_are_named(tmp_path):
    bad = _file(tmp_path, append="\nmystery_knob: 3\n")
    assert_invalid(f"scenario_file={bad}", key="scenario.mystery_knob", allowed="unknown key")
    assert_invalid(f"scenario_file={tmp_path / 'nope.yaml'}", key="scenario_file",
                   allowed="an existing .yaml file")  # fmt: skip
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    assert_invalid(f"scenario_file={tmp_path / 'list.yaml'}", key="scenario_file",
                   allowed="a YAML mapping")  # fmt: skip
    # a preset and a file at once: the file would silently win over the preset
    assert_invalid(f"scenario_file={_file(tmp_path)}", "scenario=alike", key="scenario_file",
                   allowed="not both")  # fmt: skip


def test_every_experiment_runs_on_a_scenario_file(tmp_path):
    path = _file(tmp_path, [("name: default", "name: my_store")])
    out = tmp_path / "run"
    proc = run_cli(f"scenario_file={path}", "experiment=whatif", "strategy=[bundles]",
                   "scenario.population.size=3000", "progress=false",
                   f"hydra.run.dir={out}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (out / "whatif.csv").exists()
    resolved = (out / ".hydra" / "config.yaml").read_text()
    assert "name: my_store" in resolved and f"scenario_file: {path}" in resolved
    bad = _file(tmp_path, append="\nmystery_knob: 3\n")
    assert_rejected(tmp_path, f"scenario_file={bad}", key="scenario.mystery_knob",
                    allowed="unknown key")  # fmt: skip
