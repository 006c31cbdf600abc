"""One A/B analysis: metrics with roles over two or more arms, an SRM check, multiple testing.

:class:`Analysis` takes the per-user table (DESIGN.md), checks the sample ratio of the analysed
population, and compares every treatment arm with the control for every metric, in two
populations: the exposed users (who had a session; the decision) and, beside them, all
assigned users (intention to treat: exposure happens after assignment, so it can be moved by the
treatment). Rows: exposed first, then ITT (``population``: ``exposed`` | ``itt``).

Each metric has a role (primary, secondary or guardrail). Only the primary metrics x treatment
arms form the family whose error rate is controlled: Holm (default) or Benjamini-Hochberg with
two arms; with three or more arms, Dunnett's many-to-one test for means (``scipy.stats.dunnett``)
and Holm against control otherwise, then Bonferroni over the primary metrics if there are
several. Secondary and guardrail rows are not corrected (``p_adjusted`` = their own p).

The decision of a row (``p_adjusted``, ``adj_ci_*``, ``significant``) uses the CUPED-adjusted
test where the metric has a covariate (a variance reduction of the same metric, not a second
test), else the plain test; ``p_value``, ``abs_ci_*`` and ``rel_ci_*`` are always the plain test.
``adj_ci_*`` is the decision's interval at the level that makes it agree with ``p_adjusted``:
the test's own z (or t) mapped through ``alpha * p / p_adjusted`` (the ratio GrowthBook uses), so
the interval excludes the null exactly when ``p_adjusted < alpha``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from experiments.stats.checks import ConfigError, check_choice, check_number
from experiments.stats.comparisons import Comparison
from experiments.stats.metrics import Columns, Groups, Mean, Metric, cuped
from experiments.stats.multiplicity import (
    CORRECTIONS,
    adjust_p_values,
    adjusted_interval,
    dunnett_p_values,
)

RESULT_COLUMNS = (
    "metric", "arm", "control", "treatment", "abs_lift", "abs_ci_low", "abs_ci_high",
    "rel_lift", "rel_ci_low", "rel_ci_high", "p_value", "p_adjusted", "significant",
    "role", "population", "method", "adj_ci_low", "adj_ci_high",
    "cuped_lift", "cuped_ci_low", "cuped_ci_high", "cuped_p_value", "variance_reduction", "se",
)  # fmt: skip
POPULATIONS = ("exposed", "all")
ROLES = ("primary", "secondary", "guardrail")


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


def user_table(**columns) -> pd.DataFrame:
    """Build a per-user table from arrays (e.g. ``arm=..., revenue=...``) of one length."""
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ConfigError("columns", "arrays of one length (one value per user)", lengths)
    return pd.DataFrame(columns)


def flag_column(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """A 0/1 or true/false column as booleans, and where it is blank (missing).

    ``to_numpy(dtype=bool)`` would read a blank (NaN) as True; here a blank is reported.
    """
    try:
        values = frame[column].astype("boolean")
    except (TypeError, ValueError):
        found = ", ".join(map(repr, frame[column].dropna().unique()[:3]))
        raise ConfigError(f"column '{column}'", "0/1 or true/false in every row",
                          f"values such as {found}") from None  # fmt: skip
    missing = values.isna().to_numpy()
    return values.fillna(False).to_numpy(dtype=bool), missing


def missing_rows(missing: np.ndarray, column: str, drop: bool) -> str | None:
    """Stop on blank cells (ConfigError naming the column and the count), or note the drop."""
    count = int(missing.sum())
    if not count:
        return None
    if not drop:
        raise ConfigError(f"column '{column}'", "", message=(
            f"column '{column}': {count:,} rows are blank (missing); fill them, or set "
            "drop_missing=true to leave those rows out"))  # fmt: skip
    return f"dropped {count:,} rows with a blank '{column}' (drop_missing=true)"


def arm_groups(frame: pd.DataFrame, arm_col: str, control: str, arms, keep) -> Groups:
    """Code each row by arm (control first); rows outside ``keep`` or ``arms`` are left out."""
    if arm_col not in frame.columns:
        raise ConfigError("arm_col", "a column of the input: " + ", ".join(map(str, frame.columns)))
    column = frame[arm_col]
    if isinstance(column.dtype, pd.CategoricalDtype):  # its codes: no hashing of every row
        cat = column.cat.codes.to_numpy()
        seen = np.flatnonzero(np.bincount(cat + 1, minlength=len(column.cat.categories) + 1)[1:])
        uniques = column.cat.categories[seen]  # observed, in the categories' order (as factorize)
    else:
        cat, uniques = pd.factorize(column, sort=True)
        seen = np.arange(len(uniques))
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
    # each code's group (a blank cell, code -1, takes the last entry: left out)
    lookup = np.full(int(seen.max(initial=-1)) + 2, len(names), dtype=np.intp)
    lookup[seen] = [names.index(a) if a in names else len(names) for a in present]
    out = np.where(keep, lookup[cat], len(names))
    return Groups.build(out, tuple(names))


class AnalysisResult(NamedTuple):
    """What an analysis returns.

    Attributes:
        table: One row per (population, metric, treatment arm), columns :data:`RESULT_COLUMNS`;
            the decision population's rows first.
        srm: The sample-ratio-mismatch check of the decision population.
        comparisons: ``{(metric, arm): Comparison}`` of the decision population's plain tests.
        notes: Reasons for undefined or degenerate results and rows dropped, one sentence each.
        arms: Analysed arms, control first.
        decisions: ``{(metric, arm): Comparison}`` of the tests behind ``p_adjusted`` (CUPED
            where the metric has a covariate), decision population.
    """

    table: pd.DataFrame
    srm: SRMResult
    comparisons: dict[tuple[str, str], Comparison]
    notes: tuple[str, ...]
    arms: tuple[str, ...]
    decisions: dict[tuple[str, str], Comparison] | None = None


@dataclass(frozen=True)
class Analysis:
    """Compare every treatment arm with the control on every metric.

    Args:
        metrics: The metrics (names must be unique).
        control: Name of the control arm.
        arm_col: Column holding each user's arm.
        arms: Arms to analyse (default: all in the data).
        alpha: Significance level, also ``1 - confidence`` of the intervals.
        correction: ``"holm"``, ``"bh"`` or ``"none"`` over the primary family.
        expected_shares: Planned split for the SRM check, one per arm (control first).
        population: ``"exposed"`` (users with a session in the experiment; ITT rows follow) or
            ``"all"`` (intention to treat only; no exposure column needed).
        exposed_col: The exposure column.
        srm_threshold: Flag the SRM check below this p-value.
        roles: ``{metric: role}`` (primary, secondary, guardrail). Unnamed metrics: if none is
            primary, ``conversion_rate`` is (else the first metric); the rest are guardrails if
            they have a non-inferiority margin, else secondary.
        drop_missing: Leave out rows with a blank arm or exposure (and say how many) instead
            of stopping.
        itt: With ``population="exposed"``, also report the ITT rows.
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
    roles: tuple[tuple[str, str], ...] | dict | None = None
    drop_missing: bool = False
    itt: bool = True

    def __post_init__(self) -> None:
        check_number(self.alpha, "alpha", gt=0, lt=1)
        check_choice(self.correction, "correction", CORRECTIONS)
        check_choice(self.population, "population", POPULATIONS)
        names = [m.name for m in self.metrics]
        if not names or len(set(names)) != len(names):
            raise ConfigError("analysis.metrics", "a non-empty list with unique names", names)
        object.__setattr__(self, "roles", tuple(resolve_roles(self.metrics, self.roles).items()))

    @property
    def role(self) -> dict[str, str]:
        """Each metric's role."""
        return dict(self.roles)

    @property
    def primary(self) -> tuple[str, ...]:
        """The primary metrics, in the analysis' order."""
        return tuple(name for name, role in self.roles if role == "primary")

    def only(self, metric: str, key: str = "metric") -> Analysis:
        """Return this analysis restricted to one metric (no multiple-testing adjustment)."""
        names = [m.name for m in self.metrics]
        if metric not in names:
            raise ConfigError(key, "one of the analysis metrics: " + ", ".join(names), metric)
        chosen = tuple(m for m in self.metrics if m.name == metric)
        return dataclasses.replace(self, metrics=chosen, correction="none",
                                   roles={metric: "primary"}, itt=False)  # fmt: skip

    def masks(self, frame: pd.DataFrame, keep: np.ndarray | None = None):
        """Rows of each analysed population, ``[(population, mask)]``, and notes on drops."""
        keep = np.ones(len(frame), dtype=bool) if keep is None else np.asarray(keep, bool)
        if self.arm_col not in frame.columns:
            allowed = "a column of the input: " + ", ".join(map(str, frame.columns))
            raise ConfigError("arm_col", allowed, self.arm_col)
        blank_arm = frame[self.arm_col].isna().to_numpy()
        notes = [missing_rows(blank_arm, self.arm_col, self.drop_missing)]
        keep = keep & ~blank_arm
        if self.population == "all":
            return [("itt", keep)], [n for n in notes if n]
        if self.exposed_col not in frame.columns:
            raise ConfigError("exposed_col", "a column of the input (or population=all)",
                              self.exposed_col)  # fmt: skip
        exposed, blank = flag_column(frame, self.exposed_col)
        notes.append(missing_rows(blank & keep, self.exposed_col, self.drop_missing))
        keep = keep & ~blank  # left out of both populations, as the note says
        masks = [("exposed", keep & exposed)] + ([("itt", keep)] if self.itt else [])
        return masks, [n for n in notes if n]

    def run(self, frame: pd.DataFrame, keep: np.ndarray | None = None) -> AnalysisResult:
        """Analyse ``frame`` (rows outside the boolean mask ``keep`` are ignored)."""
        masks, notes = self.masks(frame, keep)
        columns, rows, found = Columns(frame), [], {}
        for i, (population, mask) in enumerate(masks):
            groups = arm_groups(frame, self.arm_col, self.control, self.arms, mask)
            counts = _check_arm_sizes(groups, population)
            if i == 0:
                srm = self._srm(counts, groups)
            part, found[population], more = self._compare(columns, groups, population)
            rows += part
            notes += more
        plain = {k: v[0] for k, v in found[masks[0][0]].items()}
        decisions = {k: v[1] for k, v in found[masks[0][0]].items()}
        table = pd.DataFrame(rows)[list(RESULT_COLUMNS)]
        return AnalysisResult(table, srm, plain, tuple(notes), groups.names, decisions)

    def _srm(self, counts: np.ndarray, groups: Groups) -> SRMResult:
        shares = self.expected_shares
        if shares is not None and len(shares) != groups.size:
            raise ConfigError("expected_shares", f"{groups.size} shares, one per arm", shares)
        return srm_check(counts, groups.names, shares, self.srm_threshold)

    def _compare(self, columns: Columns, groups: Groups, population: str):
        """Rows of one population: plain and decision tests, then the family's adjustment."""
        rows, found, notes = [], {}, []
        for metric in self.metrics:
            summary = metric.summarize(columns, groups)
            adjusted = metric.summarize_cuped(columns, groups)
            for k, arm in enumerate(groups.names[1:], start=1):
                plain = metric.compare(summary, 0, k, self.alpha)
                decision = plain if adjusted is None else metric.compare_cuped(
                    adjusted, 0, k, self.alpha)  # fmt: skip
                found[(metric.name, arm)] = (plain, decision)
                method = metric.method(summary, 0, k)
                rows.append(
                    _row(metric.name, arm, plain, decision, method, adjusted is not None)
                    | {"role": self.role[metric.name], "population": population}
                )
                notes += _notes(metric.name, arm, plain, population, method)
        self._adjust(rows, columns, groups)
        if groups.size > 2 and self.correction == "bh":
            notes.append(f"{population}: with three or more arms the primary family is "
                         "corrected by Dunnett (means) and Holm (others), not BH")  # fmt: skip
        return rows, found, notes

    def _adjust(self, rows: list[dict], columns: Columns, groups: Groups) -> None:
        """Fill ``p_adjusted``, ``adj_ci_*`` and ``significant`` of one population's rows."""
        for row in rows:
            row["p_adjusted"] = row["decision_p"]
        family = [r for r in rows if r["role"] == "primary"]
        if groups.size == 2:
            p = adjust_p_values([r["p_adjusted"] for r in family], self.correction)
        else:
            p = self._many_arms(family, columns, groups)
        for row, value in zip(family, p, strict=True):
            row["p_adjusted"] = float(value)
        by_name = {m.name: m for m in self.metrics}
        for row in rows:
            metric = by_name[row["metric"]]
            estimate, se = row.pop("decision_estimate"), row.pop("decision_se")
            p_raw = row.pop("decision_p")
            row["adj_ci_low"], row["adj_ci_high"] = adjusted_interval(
                estimate, se, metric.null, p_raw, row["p_adjusted"], self.alpha,
                metric.test_alternative)  # fmt: skip
            row["significant"] = bool(row["p_adjusted"] < self.alpha)

    def _many_arms(self, family: list[dict], columns: Columns, groups: Groups) -> np.ndarray:
        """Dunnett (means) or Holm (others) across arms per metric; Bonferroni over metrics."""
        if self.correction == "none":
            return np.array([r["p_adjusted"] for r in family], dtype=float)
        names = list(dict.fromkeys(r["metric"] for r in family))
        by_name = {m.name: m for m in self.metrics}
        out = []
        for name in names:
            p = np.array([r["p_adjusted"] for r in family if r["metric"] == name], dtype=float)
            metric = by_name[name]
            if isinstance(metric, Mean) and metric.test == "welch":
                p = dunnett_p_values(_samples(metric, columns, groups), metric.test_alternative)
            else:
                p = adjust_p_values(p, "holm")
            out.append(np.minimum(p * len(names), 1.0))
        return np.concatenate(out) if out else np.array([])


def resolve_roles(metrics, roles) -> dict[str, str]:
    """Each metric's role from the given ones and the defaults (see :class:`Analysis`)."""
    given = dict(roles or {})
    names = [m.name for m in metrics]
    for name, role in given.items():
        if name not in names:
            raise ConfigError("roles", "roles of the analysis' metrics: " + ", ".join(names),
                              name)  # fmt: skip
        check_choice(role, f"analysis.metrics.{name}.role", ROLES)
    if "primary" not in given.values():
        open_names = [n for n in names if n not in given]
        default = "conversion_rate" if "conversion_rate" in open_names else None
        default = default or (open_names[0] if open_names else None)
        if default is not None:
            given[default] = "primary"
    margins = {m.name for m in metrics if m.ni_margin is not None}
    return {n: given.get(n, "guardrail" if n in margins else "secondary") for n in names}


def _samples(metric: Mean, columns: Columns, groups: Groups) -> list[np.ndarray]:
    """Per-arm values of a mean metric as its decision reads them (CUPED-adjusted if set).

    Treatment arms are shifted by the metric's null (minus a non-inferiority margin), so that
    Dunnett's test of "no difference" is the metric's own test of ``lift == null``.
    """
    y = metric.values(columns)
    if metric.covariate is not None:
        x = columns.get(metric.covariate, metric.name, nonnegative=False)
        _, theta, x_bar = cuped(groups, y, x)
        y = y - theta * (x - x_bar)
    return [y[groups.codes == k] - (metric.null if k else 0.0) for k in range(groups.size)]


def _check_arm_sizes(groups: Groups, population: str) -> np.ndarray:
    counts = groups.n
    for name, count in zip(groups.names, counts, strict=True):
        if count < 2:
            allowed = f"an arm with at least 2 users in the analysed population ({population})"
            raise ConfigError(f"arm '{name}'", allowed, f"{int(count)} users")
    return counts


def _notes(metric: str, arm: str, c: Comparison, population: str, method: str) -> list[str]:
    """Reasons for defined-but-degenerate results (stated, not hidden)."""
    where = f"{metric} ({arm}, {population})"
    notes = []
    if method == "fisher exact":
        notes.append(f"{where}: fewer than 5 successes or failures in an arm: p-value from "
                     "Fisher's exact test")  # fmt: skip
    if method == "delta, few events":
        notes.append(f"{where}: fewer than 5 events in an arm: the delta method's normal "
                     "approximation is unreliable here (no exact test for a ratio)")  # fmt: skip
    if not np.isfinite(c.control) or not np.isfinite(c.treatment):
        notes.append(f"{where}: undefined (a ratio's denominator sums to 0 in an arm)")
    elif c.se == 0:
        notes.append(
            f"{where}: zero variance (every user has the same value in each arm): "
            "p-value is 1 if the arms are equal, 0 if not; intervals have zero width"
        )
    elif c.control == 0:
        notes.append(f"{where}: relative lift undefined (the control's value is 0)")
    elif np.isnan(c.rel_lift) or np.isnan(c.rel_ci_low):
        notes.append(f"{where}: relative lift undefined (a mean is 0 or negative)")
    return notes


def _row(metric: str, arm: str, c: Comparison, d: Comparison, method: str, has_cuped: bool):
    fields = ("control", "treatment", "abs_lift", "abs_ci_low", "abs_ci_high",
              "rel_lift", "rel_ci_low", "rel_ci_high", "p_value")  # fmt: skip
    row = {"metric": metric, "arm": arm, "se": float(c.se)}
    row |= {f: float(getattr(c, f)) for f in fields}
    row |= {"method": method, "decision_p": float(d.p_value),
            "decision_estimate": float(d.abs_lift), "decision_se": float(d.se)}  # fmt: skip
    cuped = {"cuped_lift": d.abs_lift, "cuped_ci_low": d.abs_ci_low, "cuped_ci_high": d.abs_ci_high,
             "cuped_p_value": d.p_value}  # fmt: skip
    row |= {k: float(v) if has_cuped else np.nan for k, v in cuped.items()}
    reduction = 1 - float(d.se) ** 2 / float(c.se) ** 2 if has_cuped and c.se > 0 else np.nan
    return row | {"variance_reduction": reduction}
