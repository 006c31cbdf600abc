"""One A/B analysis: several metrics over two or more arms, an SRM check, multiple testing.

:class:`Analysis` takes the per-user table (DESIGN.md), keeps the analysed population (exposed
users by default; all users for intention to treat), checks the sample ratio, compares every
treatment arm with the control for every metric, and adjusts the p-values across all those
comparisons (Holm or Benjamini-Hochberg, ``statsmodels.stats.multitest.multipletests``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from experiments.stats.checks import ConfigError, check_choice, check_number
from experiments.stats.comparisons import Comparison
from experiments.stats.metrics import Columns, Groups, Metric

RESULT_COLUMNS = (
    "metric", "arm", "control", "treatment", "abs_lift", "abs_ci_low", "abs_ci_high",
    "rel_lift", "rel_ci_low", "rel_ci_high", "p_value", "p_adjusted", "significant",
)  # fmt: skip
CORRECTIONS = {"holm": "holm", "bh": "fdr_bh", "none": None}
POPULATIONS = ("exposed", "all")


class SRMResult(NamedTuple):
    """Sample-ratio-mismatch check: chi-square of arm sizes against the planned split.

    Attributes:
        counts: Users per arm in the analysed population.
        expected_shares: Planned share of each arm.
        statistic: Chi-square statistic.
        p_value: Its p-value (``scipy.stats.chisquare``, k - 1 degrees of freedom).
        flag: True when ``p_value < threshold``: the split is broken, distrust the results.
        threshold: The flag threshold (0.001 by convention).
    """

    counts: dict[str, int]
    expected_shares: dict[str, float]
    statistic: float
    p_value: float
    flag: bool
    threshold: float


def srm_check(counts, names, shares=None, threshold: float = 0.001) -> SRMResult:
    """Chi-square test of observed arm sizes against ``shares`` (equal split by default)."""
    counts = np.asarray(counts, dtype=float)
    shares = np.full(len(counts), 1 / len(counts)) if shares is None else np.asarray(shares, float)
    shares = shares / shares.sum()
    result = stats.chisquare(counts, f_exp=shares * counts.sum())
    return SRMResult(
        counts=dict(zip(names, map(int, counts), strict=True)),
        expected_shares=dict(zip(names, map(float, shares), strict=True)),
        statistic=float(result.statistic),
        p_value=float(result.pvalue),
        flag=bool(result.pvalue < threshold),
        threshold=threshold,
    )


def adjust_p_values(p_values, correction: str) -> np.ndarray:
    """Holm (``"holm"``), Benjamini-Hochberg (``"bh"``) or no (``"none"``) adjustment.

    NaN p-values (undefined comparisons) are left out of the family and stay NaN.
    """
    p_values = np.asarray(p_values, dtype=float)
    adjusted = p_values.copy()
    ok = ~np.isnan(p_values)
    if correction == "holm" and ok.any():
        adjusted[ok] = _holm(p_values[ok])
    elif CORRECTIONS[correction] is not None and ok.any():
        adjusted[ok] = multipletests(p_values[ok], method=CORRECTIONS[correction])[1]
    return adjusted


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment, as statsmodels' ``multipletests(method="holm")``.

    Written out because statsmodels' Holm branch calls ``gc.collect()`` on every call, which
    costs ~70 ms in a process full of simulation objects: most of a small replicate's
    analysis. A test pins it to statsmodels.
    """
    order = np.argsort(p, kind="stable")
    m = len(p)
    stepped = np.maximum.accumulate(np.minimum(p[order] * np.arange(m, 0, -1), 1.0))
    out = np.empty(m)
    out[order] = stepped
    return out


def user_table(**columns) -> pd.DataFrame:
    """Build a per-user table from arrays (e.g. ``arm=..., revenue=...``) of one length."""
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ConfigError("columns", "arrays of one length (one value per user)", lengths)
    return pd.DataFrame(columns)


def arm_groups(frame: pd.DataFrame, arm_col: str, control: str, arms, keep) -> Groups:
    """Code each row by arm (control first); rows outside ``keep`` or ``arms`` are left out."""
    if arm_col not in frame.columns:
        raise ConfigError("arm_col", "a column of the input: " + ", ".join(map(str, frame.columns)))
    codes, uniques = pd.factorize(frame[arm_col], sort=True)
    present = [str(u) for u in uniques]
    if len(present) < 2 and arms is None:
        raise ConfigError("arm_col", f"a column with two or more arms (column '{arm_col}')",
                          f"only {present}")  # fmt: skip
    names = [control] + [a for a in (present if arms is None else arms) if a != control]
    for key, arm in [("control", control)] + [("arms", a) for a in names[1:]]:
        if arm not in present:
            raise ConfigError(key, "an arm in the data: " + ", ".join(present), arm)
    if len(names) < 2:
        raise ConfigError("arms", "two or more arms including the control", list(names))
    lookup = np.array([names.index(a) if a in names else len(names) for a in present] + [0])
    out = np.where(codes >= 0, lookup[codes], len(names))
    out = np.where(keep, out, len(names))
    return Groups.build(out.astype(np.intp), tuple(names))


def _check_arm_sizes(groups: Groups, population: str) -> np.ndarray:
    counts = groups.n
    for name, count in zip(groups.names, counts, strict=True):
        if count < 2:
            allowed = f"an arm with at least 2 users in the analysed population ({population})"
            raise ConfigError(f"arm '{name}'", allowed, f"{int(count)} users")
    return counts


def _notes(metric: str, arm: str, comparison: Comparison) -> list[str]:
    """Reasons for defined-but-degenerate results (stated, not hidden)."""
    notes = []
    if not np.isfinite(comparison.control) or not np.isfinite(comparison.treatment):
        notes.append(f"{metric} ({arm}): undefined (a ratio's denominator sums to 0 in an arm)")
    elif comparison.se == 0:
        notes.append(
            f"{metric} ({arm}): zero variance (every user has the same value in each arm): "
            "p-value is 1 if the arms are equal, 0 if not; intervals have zero width"
        )
    elif np.isnan(comparison.rel_lift) or np.isnan(comparison.rel_ci_low):
        notes.append(f"{metric} ({arm}): relative lift undefined (a mean is 0 or negative)")
    return notes


class AnalysisResult(NamedTuple):
    """What an analysis returns.

    Attributes:
        table: One row per (metric, treatment arm), columns :data:`RESULT_COLUMNS`.
        srm: The sample-ratio-mismatch check.
        comparisons: ``{(metric, arm): Comparison}`` with standard errors.
        notes: Reasons for undefined or degenerate results, one sentence each.
        arms: Analysed arms, control first.
    """

    table: pd.DataFrame
    srm: SRMResult
    comparisons: dict[tuple[str, str], Comparison]
    notes: tuple[str, ...]
    arms: tuple[str, ...]


@dataclass(frozen=True)
class Analysis:
    """Compare every treatment arm with the control on every metric.

    Args:
        metrics: The metrics (names must be unique).
        control: Name of the control arm.
        arm_col: Column holding each user's arm.
        arms: Arms to analyse (default: all in the data).
        alpha: Significance level, also ``1 - confidence`` of the intervals.
        correction: ``"holm"``, ``"bh"`` or ``"none"`` across all comparisons.
        expected_shares: Planned split for the SRM check, one per arm (control first).
        population: ``"exposed"`` (users with a session in the experiment) or ``"all"`` (ITT).
        exposed_col: The exposure column.
        srm_threshold: Flag the SRM check below this p-value.
    """

    metrics: tuple[Metric, ...]
    control: str
    arm_col: str = "arm"
    arms: tuple[str, ...] | None = None
    alpha: float = 0.05
    correction: str = "holm"
    expected_shares: tuple[float, ...] | None = None
    population: str = "exposed"
    exposed_col: str = "exposed"
    srm_threshold: float = 0.001

    def __post_init__(self) -> None:
        check_number(self.alpha, "alpha", gt=0, lt=1)
        check_choice(self.correction, "correction", CORRECTIONS)
        check_choice(self.population, "population", POPULATIONS)
        names = [m.name for m in self.metrics]
        if not names or len(set(names)) != len(names):
            raise ConfigError("analysis.metrics", "a non-empty list with unique names", names)

    def only(self, metric: str, key: str = "metric") -> Analysis:
        """Return this analysis restricted to one metric (no multiple-testing adjustment)."""
        names = [m.name for m in self.metrics]
        if metric not in names:
            raise ConfigError(key, "one of the analysis metrics: " + ", ".join(names), metric)
        chosen = tuple(m for m in self.metrics if m.name == metric)
        return dataclasses.replace(self, metrics=chosen, correction="none")

    def groups(self, frame: pd.DataFrame, keep: np.ndarray | None = None) -> Groups:
        """Arm codes of the analysed population (optionally restricted to ``keep``)."""
        keep = np.ones(len(frame), dtype=bool) if keep is None else keep
        if self.population == "exposed":
            if self.exposed_col not in frame.columns:
                raise ConfigError("exposed_col", "a column of the input (or population=all)",
                                  self.exposed_col)  # fmt: skip
            keep = keep & frame[self.exposed_col].to_numpy(dtype=bool)
        return arm_groups(frame, self.arm_col, self.control, self.arms, keep)

    def run(self, frame: pd.DataFrame, keep: np.ndarray | None = None) -> AnalysisResult:
        """Analyse ``frame`` (rows outside the boolean mask ``keep`` are ignored)."""
        groups = self.groups(frame, keep)
        counts = _check_arm_sizes(groups, self.population)
        shares = self.expected_shares
        if shares is not None and len(shares) != groups.size:
            raise ConfigError("expected_shares", f"{groups.size} shares, one per arm", shares)
        srm = srm_check(counts, groups.names, shares, self.srm_threshold)
        comparisons, rows, notes = {}, [], []
        columns = Columns(frame)
        for metric in self.metrics:
            summary = metric.summarize(columns, groups)
            for k, arm in enumerate(groups.names[1:], start=1):
                comparison = metric.compare(summary, 0, k, self.alpha)
                comparisons[(metric.name, arm)] = comparison
                rows.append(_row(metric.name, arm, comparison))
                notes += _notes(metric.name, arm, comparison)
        table = self._table(rows)
        return AnalysisResult(table, srm, comparisons, tuple(notes), groups.names)

    def _table(self, rows: list[dict]) -> pd.DataFrame:
        table = pd.DataFrame(rows)
        table["p_adjusted"] = adjust_p_values(table["p_value"], self.correction)
        table["significant"] = table["p_adjusted"] < self.alpha
        return table[list(RESULT_COLUMNS)]


def _row(metric: str, arm: str, c: Comparison) -> dict:
    fields = ("control", "treatment", "abs_lift", "abs_ci_low", "abs_ci_high",
              "rel_lift", "rel_ci_low", "rel_ci_high", "p_value")  # fmt: skip
    return {"metric": metric, "arm": arm} | {f: float(getattr(c, f)) for f in fields}
