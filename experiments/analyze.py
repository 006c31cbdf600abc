"""Read an A/B test: ``python -m experiments.analyze input=users.parquet arm_col=arm control=A``.

Reads a per-user CSV or Parquet file (DESIGN.md's per-user table, or an analyst's export with
its own column names), analyses the metrics of ``conf/analysis/<name>.yaml``, prints a table and
writes ab_results.csv and srm.json (and smart.json with a target) to Hydra's run folder.
``run(cfg, out_dir)`` is the plain function behind it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from experiments.cli import hydra_app
from experiments.outputs import write_csv, write_json
from experiments.schemas import (  # noqa: F401 - the schemas' home before experiments.schemas
    AnalysisConf,
    AnalyzeConf,
    MetricConf,
    TargetConf,
    register_schemas,
)
from experiments.stats import analysis as an
from experiments.stats.analysis import ROLES
from experiments.stats.checks import ConfigError, check_choice
from experiments.stats.metrics import Mean, Metric, Proportion, RatioOfMeans
from experiments.stats.targets import SmartTarget, evaluate_target, parse_date, target_rows

FORMATS = ("auto", "csv", "parquet")
METRIC_KINDS = {"proportion": ("column",), "mean": ("column",), "ratio": ("numer", "denom")}


def build_metric(conf: Any, index: int) -> Metric:
    """Turn one metric's config into a Metric object (ConfigError naming the key if bad)."""
    key = f"analysis.metrics[{index}]"
    check_choice(conf.kind, f"{key}.kind", METRIC_KINDS)
    for needed in METRIC_KINDS[conf.kind]:
        if conf[needed] is None:
            raise ConfigError(f"{key}.{needed}", f"a column name when kind={conf.kind}")
    if conf.role is not None:
        check_choice(conf.role, f"{key}.role", ROLES)
    common = {"name": conf.name, "alternative": conf.alternative, "ni_margin": conf.ni_margin,
              "higher_is_better": conf.higher_is_better, "covariate": conf.covariate}  # fmt: skip
    if conf.kind == "ratio":
        if conf.covariate is not None:
            raise ConfigError(f"{key}.covariate", "null for kind=ratio (CUPED adjusts per-user "
                              "means and proportions)", conf.covariate)  # fmt: skip
        return RatioOfMeans(numer=conf.numer, denom=conf.denom, nonnegative=conf.nonnegative,
                            **common)  # fmt: skip
    if conf.kind == "mean":
        return Mean(column=conf.column, test=conf.test, nonnegative=conf.nonnegative, **common)
    return Proportion(column=conf.column, **common)


def metric_columns(conf: Any) -> list[tuple[str, str]]:
    """``(part, column)`` of every column a metric's config names."""
    parts = ("column", "numer", "denom", "covariate")
    return [(part, conf[part]) for part in parts if conf[part] is not None]


def usable_metrics(cfg: Any, columns: list[str] | None) -> tuple[list, list[str]]:
    """The metric configs to analyse, and the names of those skipped for missing columns.

    With ``analysis.skip_missing`` (the default list) a metric whose columns the input lacks is
    skipped; otherwise (a list the user wrote) it stops with the column's key.
    """
    if columns is None:
        return list(cfg.analysis.metrics), []
    keep, skipped = [], []
    for i, m in enumerate(cfg.analysis.metrics):
        absent = [(part, col) for part, col in metric_columns(m) if col not in columns]
        if absent and cfg.analysis.skip_missing:
            skipped.append(f"{m.name} ({', '.join(col for _, col in absent)})")
        elif absent:
            allowed = "a column of the input: " + ", ".join(columns)
            raise ConfigError(f"analysis.metrics[{i}].{absent[0][0]}", allowed, absent[0][1])
        else:
            keep.append(m)
    if not keep:
        raise ConfigError("analysis.metrics", "at least one metric whose columns the input has "
                          "(skipped: " + "; ".join(skipped) + ")")  # fmt: skip
    return keep, skipped


def build_analysis(cfg: Any, columns: list[str] | None = None) -> an.Analysis:
    """Build the Analysis object of a config (on the metrics the input's ``columns`` allow).

    Roles: as each metric's ``role`` says; with no primary named, the target's metric is
    primary (else :class:`~experiments.stats.analysis.Analysis`'s default, conversion_rate).
    """
    confs, _ = usable_metrics(cfg, columns)
    metrics = tuple(build_metric(m, i) for i, m in enumerate(confs))
    roles = {m.name: m.role for m in confs if m.role is not None}
    target = getattr(cfg, "target", None)
    names = [m.name for m in metrics]
    if "primary" not in roles.values() and target is not None and target.metric in names:
        roles[target.metric] = "primary"
    return an.Analysis(
        metrics=metrics, control=str(cfg.control), arm_col=cfg.arm_col,
        arms=None if cfg.arms is None else tuple(map(str, cfg.arms)), alpha=cfg.alpha,
        correction=cfg.correction,
        expected_shares=None if cfg.expected_shares is None else tuple(cfg.expected_shares),
        population=cfg.population, exposed_col=cfg.exposed_col, roles=roles,
        drop_missing=bool(getattr(cfg, "drop_missing", False)),
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
    with _readable(cfg):
        if _format(cfg) == "csv":
            with open(cfg.input, "rb") as f:
                head = f.read(65536)
            if b"\x00" in head:  # text has no NUL bytes; pandas would read binary as a header
                raise ConfigError("input", "a text CSV file", f"{cfg.input}: binary data")
            return list(pd.read_csv(cfg.input, nrows=0).columns)
        return list(pq.read_schema(cfg.input).names)


@contextlib.contextmanager
def _readable(cfg: Any):
    """Turn a file that is not the text or Parquet it claims to be into a ConfigError."""
    kind = _format(cfg)
    try:
        yield
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError,
            pa.ArrowInvalid, OSError) as exc:  # fmt: skip
        allowed = "a text CSV file" if kind == "csv" else "a Parquet file"
        reason = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
        raise ConfigError("input", allowed, f"{cfg.input}: {reason}") from None


def validate(cfg: DictConfig) -> None:
    """Check the config, and that the input has the columns it names, before any output."""
    build_analysis(cfg)
    columns = input_columns(cfg)
    analysis = build_analysis(cfg, columns)
    build_target(cfg, analysis)
    for key in ("arm_col",) + (("exposed_col",) if cfg.population == "exposed" else ()):
        if cfg[key] not in columns:
            raise ConfigError(key, "a column of the input: " + ", ".join(columns), cfg[key])


def read_table(cfg: Any) -> pd.DataFrame:
    """Load the per-user table."""
    with _readable(cfg):
        if _format(cfg) == "csv":
            return pd.read_csv(cfg.input, dtype={cfg.arm_col: str})
        return pd.read_parquet(cfg.input)


def run(cfg: Any, out_dir: str | Path) -> tuple[an.AnalysisResult, list | None]:
    """Analyse the input and write ab_results.csv, srm.json and (with a target) smart.json."""
    columns = input_columns(cfg)
    analysis = build_analysis(cfg, columns)
    _, skipped = usable_metrics(cfg, columns)
    if skipped:
        print("skipped (the input lacks their columns): " + "; ".join(skipped))
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


def judge_target(cfg: Any, analysis: an.Analysis, target: SmartTarget, frame,
                 true_lift: float | None = None) -> dict:  # fmt: skip
    """Re-run the target's metric on its segment up to its deadline and judge each arm.

    The verdict reads the metric's decision test (CUPED where it has a covariate). ``true_lift``
    (on the target's scale), where the caller knows it, is the lift ``p_met`` and
    ``achievable`` assume; otherwise the estimate stands in. ``cfg.data_end`` (optional): the
    last day the data covers (:func:`experiments.stats.targets.target_rows`).
    """
    keep = target_rows(frame, target, cfg.start_date, cfg.day_col, cfg.segment_col,
                       getattr(cfg, "data_end", None))  # fmt: skip
    single = analysis.only(target.metric, key="target.metric")
    two_sided = dataclasses.replace(single.metrics[0], alternative="two-sided", ni_margin=None)
    result = dataclasses.replace(single, metrics=(two_sided,)).run(frame, keep)
    verdicts = [
        evaluate_target(
            target, arm, result.decisions[(target.metric, arm)], analysis.alpha, true_lift=true_lift
        )  # fmt: skip
        for arm in result.arms[1:]
    ]
    return {
        "target": {k: (str(v) if k == "deadline" and v else v) for k, v in vars(target).items()},
        "interval": f"{1 - analysis.alpha:.0%} two-sided confidence interval of the lift",
        "definitions": TARGET_DEFINITIONS,
        "n_by_arm": result.srm.counts,
        "results": [v._asdict() for v in verdicts],
    }


TARGET_DEFINITIONS = {
    "verdict": "met: the whole interval is at or beyond the target; not met: wholly short of "
    "it; inconclusive: it contains the target",
    "p_met": "probability of a 'met' verdict at this sample size if the true lift is "
    "assumed_lift: Phi(s (assumed - target) / se - z_(1-alpha/2)), log scale for relative lifts",
    "achievable": "p_met >= 0.8",
    "min_lift_to_meet": "the true lift at which p_met = 0.8: target + s (z_(1-alpha/2) + z_0.8) se",
    "posterior_p_beyond_target": "flat-prior normal posterior probability that the true lift is "
    "at or beyond the target (not the chance of a 'met' verdict)",
}


def _with_ci(values, lows, highs, fmt: str) -> list[str]:
    """``value [low, high]``; "undefined" for what cannot be computed (never "nan")."""
    cells = []
    for v, lo, hi in zip(values, lows, highs, strict=True):
        if np.isnan(v):
            cells.append("undefined")
        elif np.isnan(lo) or np.isnan(hi):
            cells.append(f"{fmt.format(v)} [undefined]")
        else:
            cells.append(f"{fmt.format(v)} [{fmt.format(lo)}, {fmt.format(hi)}]")
    return cells


def results_frame(table: pd.DataFrame) -> pd.DataFrame:
    """ab_results as a reader sees it: lifts with intervals, p-values, the decision."""
    return pd.DataFrame({
        "metric": table.metric, "arm": table.arm, "role": table.role,
        "population": table.population,
        "control": table.control.map("{:.4g}".format),
        "treatment": table.treatment.map("{:.4g}".format),
        "abs lift [CI]": _with_ci(table.abs_lift, table.abs_ci_low, table.abs_ci_high, "{:+.4g}"),
        "rel lift [CI]": _with_ci(table.rel_lift, table.rel_ci_low, table.rel_ci_high, "{:+.2%}"),
        "p": table.p_value.map("{:.4f}".format), "p adj": table.p_adjusted.map("{:.4f}".format),
        "sig": table.significant.map({True: "yes", False: "no"}),
    })  # fmt: skip


def report(result: an.AnalysisResult, smart: dict | None) -> str:
    """Readable table, SRM line, notes and target verdicts."""
    srm = result.srm
    lines = [
        results_frame(result.table).to_string(index=False),
        "",
        f"SRM check: counts {srm.counts}, chi2 {srm.statistic:.3f}, p {srm.p_value:.4g}"
        + (" -- SAMPLE RATIO MISMATCH: do not trust these results" if srm.flag else " (ok)"),
    ]
    lines += [f"note: {n}" for n in result.notes]
    for r in (smart or {}).get("results", []):
        chance = "undefined" if np.isnan(r["p_met"]) else f"{r['p_met']:.3f}"
        achievable = "undefined" if r["achievable"] is None else r["achievable"]
        lines.append(f"target {r['metric']} ({r['arm']}): {r['verdict']}; {r['reason']}; "
                     f"P(met) {chance}; achievable: {achievable}")  # fmt: skip
    return "\n".join(lines)


def task(cfg: DictConfig) -> an.AnalysisResult:
    """Hydra task: run, print the report."""
    result, smart = run(cfg, HydraConfig.get().runtime.output_dir)
    print(report(result, smart))
    return result


def main() -> None:
    """Register the schemas and run the Hydra app.

    A metric list given on the command line (``analysis.metrics=[...]``) is the user's own: its
    metrics stop with exit 2 when their columns are missing, as in a list file they wrote.
    """
    register_schemas()
    argv = sys.argv[1:]
    keys = [a.lstrip("+~").split("=")[0] for a in argv]
    if any(k.startswith("analysis.metrics") for k in keys) and "analysis.skip_missing" not in keys:
        argv.append("analysis.skip_missing=false")
    hydra_app("analyze", task, validate, argv)


if __name__ == "__main__":
    main()
