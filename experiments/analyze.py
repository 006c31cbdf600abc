"""Read an A/B test: ``python -m experiments.analyze input=users.parquet arm_col=arm control=A``.

Reads a per-user CSV or Parquet file (DESIGN.md's per-user table, or an analyst's export with
its own column names), analyses the metrics of ``conf/analysis/<name>.yaml``, prints a table and
writes ab_results.csv and srm.json (and smart.json with a target) to Hydra's run folder.
``run(cfg, out_dir)`` is the plain function behind it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import MISSING, DictConfig

from experiments.cli import hydra_app
from experiments.outputs import write_csv, write_json
from experiments.stats import analysis as an
from experiments.stats.metrics import Mean, Metric, Proportion, RatioOfMeans
from experiments.stats.targets import SmartTarget, evaluate_target, parse_date, target_rows
from sim.errors import ConfigError, check_choice

FORMATS = ("auto", "csv", "parquet")
METRIC_KINDS = {"proportion": ("column",), "mean": ("column",), "ratio": ("numer", "denom")}


@dataclass
class MetricConf:
    """One metric of an analysis (conf/analysis/*.yaml)."""

    name: str = MISSING
    kind: str = MISSING
    column: str | None = None
    numer: str | None = None
    denom: str | None = None
    covariate: str | None = None
    test: str = "welch"
    alternative: str = "two-sided"
    ni_margin: float | None = None
    higher_is_better: bool = True
    nonnegative: bool = True


@dataclass
class AnalysisConf:
    """Schema of the ``analysis`` group: the metric list."""

    metrics: list[MetricConf] = field(default_factory=list)


@dataclass
class TargetConf:
    """A SMART target judged on the data (``metric: null`` means no target)."""

    metric: str | None = None
    lift: float = 0.1
    direction: str = "increase"
    lift_kind: str = "relative"
    segment: str | None = None
    deadline: str | None = None


@dataclass
class AnalyzeConf:
    """Schema of conf/analyze.yaml (see its comments for each field)."""

    input: str = MISSING
    format: str = "auto"
    arm_col: str = "arm"
    control: str = "A"
    arms: list[str] | None = None
    expected_shares: list[float] | None = None
    population: str = "exposed"
    exposed_col: str = "exposed"
    alpha: float = 0.05
    correction: str = "holm"
    start_date: str | None = None
    day_col: str = "first_exposure_day"
    segment_col: str = "segment"
    analysis: AnalysisConf = field(default_factory=AnalysisConf)
    target: TargetConf = field(default_factory=TargetConf)


def build_metric(conf: Any, index: int) -> Metric:
    """Turn one metric's config into a Metric object (ConfigError naming the key if bad)."""
    key = f"analysis.metrics[{index}]"
    check_choice(conf.kind, f"{key}.kind", METRIC_KINDS)
    for needed in METRIC_KINDS[conf.kind]:
        if conf[needed] is None:
            raise ConfigError(f"{key}.{needed}", f"a column name when kind={conf.kind}")
    common = {"name": conf.name, "alternative": conf.alternative, "ni_margin": conf.ni_margin,
              "higher_is_better": conf.higher_is_better}  # fmt: skip
    if conf.kind == "ratio":
        return RatioOfMeans(numer=conf.numer, denom=conf.denom, nonnegative=conf.nonnegative,
                            **common)  # fmt: skip
    if conf.kind == "mean" or conf.covariate is not None:  # CUPED on a proportion: adjusted mean
        return Mean(column=conf.column, covariate=conf.covariate, test=conf.test,
                    nonnegative=conf.nonnegative, **common)  # fmt: skip
    return Proportion(column=conf.column, **common)


def build_analysis(cfg: Any) -> an.Analysis:
    """Build the Analysis object of a config."""
    metrics = tuple(build_metric(m, i) for i, m in enumerate(cfg.analysis.metrics))
    return an.Analysis(
        metrics=metrics, control=str(cfg.control), arm_col=cfg.arm_col,
        arms=None if cfg.arms is None else tuple(map(str, cfg.arms)), alpha=cfg.alpha,
        correction=cfg.correction,
        expected_shares=None if cfg.expected_shares is None else tuple(cfg.expected_shares),
        population=cfg.population, exposed_col=cfg.exposed_col,
    )  # fmt: skip


def build_target(cfg: Any, analysis: an.Analysis) -> SmartTarget | None:
    """Build the SMART target of a config, or None (``target.metric: null``)."""
    t = cfg.target
    if t.metric is None:
        return None
    names = [m.name for m in analysis.metrics]
    if t.metric not in names:
        raise ConfigError("target.metric", "one of the analysis metrics: " + ", ".join(names),
                          t.metric)  # fmt: skip
    deadline = None if t.deadline is None else parse_date(t.deadline, "target.deadline")
    if cfg.start_date is not None:
        parse_date(cfg.start_date, "start_date")
    return SmartTarget(t.metric, t.lift, t.direction, t.lift_kind, t.segment, deadline)


def _format(cfg: Any) -> str:
    check_choice(cfg.format, "format", FORMATS)
    if cfg.format != "auto":
        return cfg.format
    suffix = Path(cfg.input).suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise ConfigError("format", "csv or parquet (the input's suffix is neither)", suffix)
    return "csv" if suffix == ".csv" else "parquet"


def input_columns(cfg: Any) -> list[str]:
    """Read the input file's column names without loading the data."""
    if not Path(cfg.input).is_file():
        raise ConfigError("input", "an existing CSV or Parquet file", cfg.input)
    if _format(cfg) == "csv":
        return list(pd.read_csv(cfg.input, nrows=0).columns)
    return list(pq.read_schema(cfg.input).names)


def validate(cfg: DictConfig) -> None:
    """Check the config, and that the input has the columns it names, before any output."""
    analysis = build_analysis(cfg)
    build_target(cfg, analysis)
    columns = input_columns(cfg)
    for key in ("arm_col",) + (("exposed_col",) if cfg.population == "exposed" else ()):
        if cfg[key] not in columns:
            raise ConfigError(key, "a column of the input: " + ", ".join(columns), cfg[key])
    for i, m in enumerate(cfg.analysis.metrics):
        for part in ("column", "numer", "denom", "covariate"):
            if m[part] is not None and m[part] not in columns:
                allowed = "a column of the input: " + ", ".join(columns)
                raise ConfigError(f"analysis.metrics[{i}].{part}", allowed, m[part])


def read_table(cfg: Any) -> pd.DataFrame:
    """Load the per-user table."""
    if _format(cfg) == "csv":
        return pd.read_csv(cfg.input, dtype={cfg.arm_col: str})
    return pd.read_parquet(cfg.input)


def run(cfg: Any, out_dir: str | Path) -> tuple[an.AnalysisResult, list | None]:
    """Analyse the input and write ab_results.csv, srm.json and (with a target) smart.json."""
    analysis = build_analysis(cfg)
    target = build_target(cfg, analysis)
    frame = read_table(cfg)
    result = analysis.run(frame)
    smart = None if target is None else judge_target(cfg, analysis, target, frame)
    out_dir = Path(out_dir)
    if smart is not None:
        write_json(out_dir / "smart.json", smart)
    write_json(out_dir / "srm.json", result.srm._asdict())
    write_csv(out_dir / "ab_results.csv", result.table)
    return result, smart


def judge_target(cfg: Any, analysis: an.Analysis, target: SmartTarget, frame) -> dict:
    """Re-run the target's metric on its segment up to its deadline and judge each arm."""
    keep = target_rows(frame, target, cfg.start_date, cfg.day_col, cfg.segment_col)
    result = analysis.only(target.metric, key="target.metric").run(frame, keep)
    verdicts = [
        evaluate_target(target, arm, result.comparisons[(target.metric, arm)], analysis.alpha)
        for arm in result.arms[1:]
    ]
    counts = result.srm.counts
    return {
        "target": {k: (str(v) if k == "deadline" and v else v) for k, v in vars(target).items()},
        "posterior": "normal posterior with a flat prior (log scale for relative lifts)",
        "interval": f"{1 - analysis.alpha:.0%} two-sided confidence interval of the lift",
        "achievable_rule": "MDE (80% power) at the deadline's sample size <= target lift",
        "n_by_arm": counts,
        "results": [v._asdict() for v in verdicts],
    }


def _with_ci(values, lows, highs, fmt: str) -> list[str]:
    return [
        f"{fmt.format(v)} [{fmt.format(lo)}, {fmt.format(hi)}]"
        for v, lo, hi in zip(values, lows, highs, strict=True)
    ]


def report(result: an.AnalysisResult, smart: dict | None) -> str:
    """Readable table, SRM line, notes and target verdicts."""
    t = result.table
    shown = pd.DataFrame({
        "metric": t.metric, "arm": t.arm,
        "control": t.control.map("{:.4g}".format), "treatment": t.treatment.map("{:.4g}".format),
        "abs lift [CI]": _with_ci(t.abs_lift, t.abs_ci_low, t.abs_ci_high, "{:+.4g}"),
        "rel lift [CI]": _with_ci(t.rel_lift, t.rel_ci_low, t.rel_ci_high, "{:+.2%}"),
        "p": t.p_value.map("{:.4f}".format), "p adj": t.p_adjusted.map("{:.4f}".format),
        "sig": t.significant.map({True: "yes", False: "no"}),
    })  # fmt: skip
    srm = result.srm
    lines = [
        shown.to_string(index=False),
        "",
        f"SRM check: counts {srm.counts}, chi2 {srm.statistic:.3f}, p {srm.p_value:.4g}"
        + (" -- SAMPLE RATIO MISMATCH: do not trust these results" if srm.flag else " (ok)"),
    ]
    lines += [f"note: {n}" for n in result.notes]
    for r in (smart or {}).get("results", []):
        lines.append(
            f"target {r['metric']} ({r['arm']}): {r['verdict']}; P(meet) "
            f"{r['probability']:.3f}; achievable: {r['achievable']}; {r['reason']}"
        )
    return "\n".join(lines)  # fmt: skip


def task(cfg: DictConfig) -> an.AnalysisResult:
    """Hydra task: run, print the report."""
    result, smart = run(cfg, HydraConfig.get().runtime.output_dir)
    print(report(result, smart))
    return result


def register_schemas() -> None:
    """Register conf/analyze.yaml's schema and the analysis group's in Hydra's ConfigStore."""
    store = ConfigStore.instance()
    store.store(name="analyze_schema", node=AnalyzeConf)
    store.store(group="schema", name="analysis", node=AnalysisConf)


def main() -> None:
    """Register the schemas and run the Hydra app."""
    register_schemas()
    hydra_app("analyze", task, validate)


if __name__ == "__main__":
    main()
