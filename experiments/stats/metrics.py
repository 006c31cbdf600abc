"""Metrics: small objects that read columns of the per-user table and compare arms.

A metric does two things (in the manner of tea-tasting's metric classes): ``summarize`` reduces
its columns to per-arm sufficient statistics in one pass (``np.bincount`` over arm codes, or
for means and CUPED one compiled pass that fuses every sum: 10 million users cost tens of
milliseconds a metric), and ``compare`` turns two arms'
statistics into a :class:`~experiments.stats.comparisons.Comparison`. The analysis composes
several metrics over the same arms.

- :class:`Proportion`: share of users with a 1 (two-proportion z-test, Newcombe interval; Fisher's
  exact test when an arm has fewer than 5 successes or failures).
- :class:`Mean`: mean per user (Welch t), with Mann-Whitney or bootstrap for heavy tails.
- :class:`RatioOfMeans`: ``sum(numer) / sum(denom)`` for rates whose denominator is not users
  (AOV = revenue / orders, session conversion = orders / sessions, CTR, open rate): delta method,
  because users, not sessions, are randomised.

Each metric can be one-sided and can carry a non-inferiority margin (for guardrails). A
proportion or a mean may name a pre-period ``covariate``: CUPED is then a variance reduction of
that metric, not another test. ``compare`` stays the plain test; ``compare_cuped`` gives the
adjusted one beside it (:func:`cuped`), which the analysis uses for its decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd
from numba import njit
from scipy import stats

from experiments.stats.checks import ConfigError, check_choice, check_number
from experiments.stats.comparisons import (
    ALTERNATIVES,
    Comparison,
    MeanStats,
    RatioStats,
    compare_means,
    compare_proportions,
    compare_ratios,
)

MEAN_TESTS = ("welch", "bootstrap", "mannwhitney")
EXACT_BELOW = 5  # successes or failures in an arm below which a proportion gets an exact test
_SCIPY_ALTERNATIVE = {"two-sided": "two-sided", "larger": "greater", "smaller": "less"}


class Moments(NamedTuple):
    """Per-arm size, means of ``y`` and ``x``, and centred sums of squares and cross-products."""

    n: np.ndarray
    mean_y: np.ndarray
    mean_x: np.ndarray
    syy: np.ndarray
    sxx: np.ndarray
    sxy: np.ndarray


class Groups(NamedTuple):
    """Arm membership of every row: ``codes[i]`` indexes ``names``; ``len(names)`` = left out.

    Build with :meth:`build`, which also counts the users of each arm (``n``).
    """

    codes: np.ndarray
    names: tuple[str, ...]
    n: np.ndarray

    @classmethod
    def build(cls, codes: np.ndarray, names: tuple[str, ...]) -> Groups:
        """Groups from row codes (``len(names)`` marks rows left out)."""
        counts = np.bincount(codes, minlength=len(names) + 1)[: len(names)].astype(float)
        return cls(np.asarray(codes, dtype=np.intp), tuple(names), counts)

    @property
    def size(self) -> int:
        """Number of arms analysed."""
        return len(self.names)

    def sums(self, values: np.ndarray) -> np.ndarray:
        """Per-arm sums of ``values`` (rows left out of the analysis are dropped)."""
        total = np.bincount(self.codes, weights=values, minlength=self.size + 1)
        return total[: self.size]

    def moments(self, y: np.ndarray, x: np.ndarray | None = None) -> Moments:
        """Per-arm means and centred second moments, every sum in one compiled pass.

        Values are shifted by their overall mean first (a scalar, so no per-row gather), then
        ``sum((y - m_a)**2) = sum(d**2) - sum(d)**2 / n`` per arm ``a`` with ``d = y - mean(y)``
        loses no precision worth speaking of. The pass adds each row to its arm in row order,
        as ``np.bincount`` does, so the sums are bit for bit :meth:`sums`' (a test pins them).
        """
        shift_y = _shift(y)
        if x is None:
            t = _moment_sums(self.codes, y, shift_y, y, 0.0, self.size, False)
            mean_y = t[0] / self.n  # means from raw sums: an all-0 arm's mean is exactly 0
            syy = _centred(t[2], t[1] ** 2 / self.n, self.n)
            empty = np.full(self.size, np.nan)
            return Moments(self.n, mean_y, empty, syy, empty, empty)
        t = _moment_sums(self.codes, y, shift_y, x, _shift(x), self.size, True)
        mean_y, mean_x = t[0] / self.n, t[3] / self.n
        syy = _centred(t[2], t[1] ** 2 / self.n, self.n)
        sxx = _centred(t[5], t[4] ** 2 / self.n, self.n)
        sxy = t[6] - t[4] * t[1] / self.n
        return Moments(self.n, mean_y, mean_x, syy, sxx, sxy)


def _shift(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else 0.0


@njit(cache=True, nogil=True)
def _moment_sums(codes, y, shift_y, x, shift_x, size, with_x):  # pragma: no cover - compiled
    """Per-arm sums of y, d_y, d_y**2 and (with_x) x, d_x, d_x**2, d_x d_y, d = value - shift.

    Rows with a code outside ``[0, size)`` (``size``: left out of the analysis) are skipped.
    """
    out = np.zeros((7, size))
    for i in range(codes.shape[0]):
        c = codes[i]
        if c < 0 or c >= size:  # left out of the analysis (bincount's bins past the arms)
            continue
        d_y = y[i] - shift_y
        out[0, c] += y[i]
        out[1, c] += d_y
        out[2, c] += d_y * d_y
        if with_x:
            d_x = x[i] - shift_x
            out[3, c] += x[i]
            out[4, c] += d_x
            out[5, c] += d_x * d_x
            out[6, c] += d_x * d_y
    return out


def _centred(raw: np.ndarray, correction: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``raw - correction`` (a centred sum of squares), rounding error below it set to 0.

    When every value of an arm is equal the difference cancels to rounding error, up to about
    ``n * eps * raw`` for ``n`` values summed one after another; a tiny positive or negative
    variance there would hide the "zero variance" case. A real variance that small (relative
    ``n * 4e-16`` of the squared distance to the overall mean) is lost: nothing a test can see.
    """
    centred = raw - correction
    return np.where(centred <= 4 * n * np.finfo(float).eps * raw, 0.0, centred)


class Columns:
    """A frame's columns as float64, each converted and checked once per analysis."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self._cache: dict[str, np.ndarray] = {}

    def get(self, column: str, metric: str, nonnegative: bool) -> np.ndarray:
        """Return a column as float64, checked: present, finite and (if asked) non-negative."""
        if column not in self._cache:
            self._cache[column] = _finite_column(self.frame, column, metric)
        values = self._cache[column]
        if nonnegative and values.min(initial=0.0) < 0:
            got = f"{int(np.count_nonzero(values < 0))} negative values"
            raise ConfigError(f"column '{column}'", "non-negative (>= 0) in every row", got)
        return values


def as_columns(data: pd.DataFrame | Columns) -> Columns:
    """Wrap a DataFrame (a Columns passes through)."""
    return data if isinstance(data, Columns) else Columns(data)


def _finite_column(frame: pd.DataFrame, column: str, metric: str) -> np.ndarray:
    if column not in frame.columns:
        allowed = "a column of the input; it has: " + ", ".join(map(str, frame.columns))
        raise ConfigError(f"column '{column}' (metric {metric})", allowed)
    try:
        values = frame[column].to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise ConfigError(f"column '{column}'", "numeric", str(frame[column].dtype)) from None
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise ConfigError(f"column '{column}'", "a finite number in every row", f"{bad} NaN/inf")
    return values


@dataclass(frozen=True, kw_only=True)
class Metric:
    """Base class: the plumbing shared by every metric; subclasses fill in the statistics.

    Args:
        name: The metric's id in results and targets (a KPI id where one exists).
        alternative: ``"two-sided"``, ``"larger"`` or ``"smaller"`` (treatment vs control).
        ni_margin: Non-inferiority margin (absolute, > 0) for a guardrail: the test becomes
            one-sided, H0 ``lift <= -margin`` (or ``>= +margin`` if lower is better).
        higher_is_better: Direction of the guardrail when ``ni_margin`` is set.
    """

    name: str
    alternative: str = "two-sided"
    ni_margin: float | None = None
    higher_is_better: bool = True
    covariate: str | None = None
    kind: ClassVar[str] = "metric"

    def __post_init__(self) -> None:
        check_choice(self.alternative, f"metrics.{self.name}.alternative", ALTERNATIVES)
        if self.ni_margin is not None:
            check_number(self.ni_margin, f"metrics.{self.name}.ni_margin", gt=0)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the metric reads (the covariate included)."""
        return tuple(c for c in (*self._value_columns(), self.covariate) if c is not None)

    def _value_columns(self) -> tuple[str, ...]:
        raise NotImplementedError

    def values(self, frame) -> np.ndarray:
        """The per-user value (proportions and means), checked; CUPED adjusts it."""
        allowed = "unset for a ratio metric (CUPED here adjusts per-user means and proportions)"
        raise ConfigError(f"metrics.{self.name}.covariate", allowed, self.covariate)

    def summarize_cuped(self, frame, groups: Groups) -> MeanStats | None:
        """Per-arm CUPED statistics of the metric's value (None without a covariate)."""
        if self.covariate is None:
            return None
        columns = as_columns(frame)
        x = columns.get(self.covariate, self.name, nonnegative=False)
        return cuped(groups, self.values(columns), x)[0]

    def compare_cuped(self, summary: MeanStats, control: int, treatment: int, alpha: float):
        """Welch comparison of the CUPED-adjusted means (same alternative and null)."""
        arm_c = MeanStats(summary.n[control], summary.mean[control], summary.var[control])
        arm_t = MeanStats(summary.n[treatment], summary.mean[treatment], summary.var[treatment])
        return compare_means(
            arm_c, arm_t, alpha=alpha, alternative=self.test_alternative, null=self.null
        )

    def method(self, summary: Any, control: int, treatment: int) -> str:
        """The plain test used for arm ``treatment`` against ``control`` (named in results)."""
        return {"proportion": "z", "mean": "welch", "ratio": "delta"}[self.kind]

    @property
    def null(self) -> float:
        """Lift under the null hypothesis: 0, or minus the margin for non-inferiority."""
        if self.ni_margin is None:
            return 0.0
        return -self.ni_margin if self.higher_is_better else self.ni_margin

    @property
    def test_alternative(self) -> str:
        """The alternative actually tested (one-sided for non-inferiority)."""
        if self.ni_margin is None:
            return self.alternative
        return "larger" if self.higher_is_better else "smaller"

    def summarize(self, frame: pd.DataFrame, groups: Groups) -> Any:
        """Reduce the metric's columns to per-arm statistics (arrays indexed by arm code)."""
        raise NotImplementedError

    def compare(self, summary: Any, control: int, treatment: int, alpha: float) -> Comparison:
        """Compare arm ``treatment`` with arm ``control`` from ``summarize``'s output."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class Proportion(Metric):
    """Share of users whose ``column`` is 1 (true): two-proportion z-test, Newcombe interval."""

    column: str
    kind: ClassVar[str] = "proportion"

    def _value_columns(self) -> tuple[str, ...]:
        return (self.column,)

    def values(self, frame) -> np.ndarray:
        """Each user's 0/1 value."""
        values = as_columns(frame).get(self.column, self.name, nonnegative=True)
        if np.any((values != 0) & (values != 1)):
            raise ConfigError(f"column '{self.column}'", "0/1 or true/false in every row")
        return values

    def summarize(self, frame, groups: Groups) -> tuple[np.ndarray, np.ndarray]:
        """Per-arm (count of ones, number of users)."""
        return groups.sums(self.values(frame)), groups.n

    def compare(self, summary, control: int, treatment: int, alpha: float) -> Comparison:
        """Two-proportion comparison of arm ``treatment`` with arm ``control``.

        With fewer than :data:`EXACT_BELOW` successes or failures in an arm the normal
        approximation fails, so the p-value is Fisher's exact test (``scipy.stats.fisher_exact``,
        same side); the Newcombe interval stays (it is a score interval, fine at low counts).
        """
        count, n = summary
        result = compare_proportions(
            count[control], n[control], count[treatment], n[treatment],
            alpha=alpha, alternative=self.test_alternative, null=self.null,
        )  # fmt: skip
        if self.method(summary, control, treatment) != "fisher exact":
            return result
        table = [[count[treatment], n[treatment] - count[treatment]],
                 [count[control], n[control] - count[control]]]  # fmt: skip
        side = _SCIPY_ALTERNATIVE[self.test_alternative]
        return result._replace(p_value=np.asarray(stats.fisher_exact(table, side).pvalue))

    def method(self, summary, control: int, treatment: int) -> str:
        """``"fisher exact"`` for small counts (and no margin), else ``"z"``."""
        count, n = summary
        cells = [count[control], n[control] - count[control],
                 count[treatment], n[treatment] - count[treatment]]  # fmt: skip
        return "fisher exact" if min(cells) < EXACT_BELOW and self.null == 0 else "z"


class MeanSummary(NamedTuple):
    """Per-arm statistics of a (possibly CUPED-adjusted) mean, and raw samples if needed."""

    stats: MeanStats
    theta: float
    samples: tuple[np.ndarray, ...] | None


def cuped(groups: Groups, y: np.ndarray, x: np.ndarray) -> tuple[MeanStats, float, float]:
    """CUPED: per-arm statistics of ``y - theta * (x - mean(x))``.

    ``theta`` is pooled over arms: the within-arm least-squares slope of ``y`` on ``x``,
    ``sum_a sum_i (x - x_a)(y - y_a) / sum_a sum_i (x - x_a)**2``, which is the coefficient of
    ``x`` in the regression ``y ~ arm + x``, so the adjusted lift equals that regression's arm
    coefficient. The covariate is centred at its mean over all analysed users, so adjusted means
    stay on the metric's scale. The uncertainty of ``theta`` itself is ignored (as usual).

    Returns:
        The adjusted statistics, ``theta``, and the covariate's mean (the centring constant).
    """
    m = groups.moments(y, x)
    theta = float(m.sxy.sum() / m.sxx.sum()) if m.sxx.sum() > 0 else 0.0
    x_bar = float((m.mean_x * m.n).sum() / m.n.sum())
    adjusted_mean = m.mean_y - theta * (m.mean_x - x_bar)
    var = (m.syy - 2 * theta * m.sxy + theta**2 * m.sxx) / (m.n - 1)
    return MeanStats(m.n, adjusted_mean, np.maximum(var, 0.0)), theta, x_bar


@dataclass(frozen=True, kw_only=True)
class Mean(Metric):
    """Mean per user of ``column`` (Welch t), optionally CUPED-adjusted by ``covariate``.

    Args:
        column: The per-user value.
        covariate: A pre-period column for CUPED (see :func:`cuped` and
            :meth:`Metric.compare_cuped`), or None; the plain test ignores it.
        test: ``"welch"``; ``"mannwhitney"`` (p-value from ``scipy.stats.mannwhitneyu``, which
            tests stochastic ordering, not means; lifts and intervals stay Welch's); or
            ``"bootstrap"`` (intervals from ``scipy.stats.bootstrap``, percentile method, for the
            difference and the ratio of means; the p-value stays Welch's).
        nonnegative: Reject negative values (true for revenue; false for margin).
        n_resamples: Bootstrap resamples.
        seed: Bootstrap seed.
    """

    column: str
    test: str = "welch"
    nonnegative: bool = True
    n_resamples: int = 2000
    seed: int = 0
    kind: ClassVar[str] = "mean"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice(self.test, f"metrics.{self.name}.test", MEAN_TESTS)

    def _value_columns(self) -> tuple[str, ...]:
        return (self.column,)

    def values(self, frame) -> np.ndarray:
        """Each user's value."""
        return as_columns(frame).get(self.column, self.name, self.nonnegative)

    def summarize(self, frame, groups: Groups) -> MeanSummary:
        """Per-arm n, mean and variance of the plain value (and samples for other tests)."""
        y = self.values(frame)
        m = groups.moments(y)
        samples = None
        if self.test != "welch":
            samples = tuple(y[groups.codes == k] for k in range(groups.size))
        return MeanSummary(MeanStats(m.n, m.mean_y, m.syy / (m.n - 1)), 0.0, samples)

    def method(self, summary, control: int, treatment: int) -> str:
        """The test of the p-value: ``welch``, ``mannwhitney`` or ``bootstrap`` (Welch's p)."""
        return self.test

    def compare(self, summary: MeanSummary, control: int, treatment: int, alpha: float):
        """Welch comparison, with the Mann-Whitney p-value or bootstrap intervals if asked."""
        s = summary.stats
        arm_c = MeanStats(s.n[control], s.mean[control], s.var[control])
        arm_t = MeanStats(s.n[treatment], s.mean[treatment], s.var[treatment])
        result = compare_means(
            arm_c, arm_t, alpha=alpha, alternative=self.test_alternative, null=self.null
        )
        if self.test == "mannwhitney":
            return result._replace(p_value=self._mann_whitney(summary, control, treatment))
        if self.test == "bootstrap":
            return self._bootstrap(result, summary, control, treatment, alpha)
        return result

    def _mann_whitney(self, summary: MeanSummary, control: int, treatment: int) -> np.ndarray:
        y_c, y_t = summary.samples[control], summary.samples[treatment]
        shifted = y_t - self.null  # a margin shifts the treatment sample
        alternative = _SCIPY_ALTERNATIVE[self.test_alternative]
        return np.asarray(stats.mannwhitneyu(shifted, y_c, alternative=alternative).pvalue)

    def _bootstrap(self, result: Comparison, summary, control, treatment, alpha) -> Comparison:
        data = (summary.samples[treatment], summary.samples[control])
        rng = np.random.default_rng(self.seed)
        batch = max(1, 20_000_000 // sum(map(len, data)))  # keep each batch near 160 MB
        intervals = []
        for statistic in (_mean_difference, _mean_ratio_minus_one):
            res = stats.bootstrap(
                data, statistic, n_resamples=self.n_resamples, batch=batch, vectorized=True,
                confidence_level=1 - alpha, method="percentile",
                alternative=_SCIPY_ALTERNATIVE[self.test_alternative], rng=rng,
            )  # fmt: skip
            intervals += [res.confidence_interval.low, res.confidence_interval.high]
        low, high, rel_low, rel_high = np.asarray(intervals, dtype=float)
        return result._replace(
            abs_ci_low=low, abs_ci_high=high, rel_ci_low=rel_low, rel_ci_high=rel_high
        )


def _mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return a.mean(axis=axis) - b.mean(axis=axis)


def _mean_ratio_minus_one(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return a.mean(axis=axis) / b.mean(axis=axis) - 1


@dataclass(frozen=True, kw_only=True)
class RatioOfMeans(Metric):
    """``sum(numer) / sum(denom)`` per arm, e.g. AOV = revenue / orders (delta method, z-test).

    Args:
        numer: Numerator column (per user).
        denom: Denominator column (per user), e.g. orders or sessions.
        nonnegative: Reject negative numerators (denominators must always be >= 0).
    """

    numer: str
    denom: str
    nonnegative: bool = True
    kind: ClassVar[str] = "ratio"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.covariate is not None:
            self.values(None)  # CUPED on a ratio is not offered: say so at construction

    def _value_columns(self) -> tuple[str, ...]:
        return (self.numer, self.denom)

    def summarize(self, frame, groups: Groups) -> RatioStats:
        """Per-arm n, means, variances and covariance of numerator and denominator."""
        columns = as_columns(frame)
        y = columns.get(self.numer, self.name, self.nonnegative)
        x = columns.get(self.denom, self.name, nonnegative=True)
        m = groups.moments(y, x)
        dof = m.n - 1
        return RatioStats(m.n, m.mean_y, m.mean_x, m.syy / dof, m.sxx / dof, m.sxy / dof)

    def method(self, summary: RatioStats, control: int, treatment: int) -> str:
        """``delta``; ``delta, few events`` when an arm sums fewer than 5 in either column.

        No exact test is offered for a ratio under user randomisation; the note says that its
        normal approximation is then unreliable (e.g. conversion_rate with 3 orders in an arm).
        """
        totals = [summary.mean_num[k] * summary.n[k] for k in (control, treatment)]
        totals += [summary.mean_den[k] * summary.n[k] for k in (control, treatment)]
        return "delta, few events" if min(abs(t) for t in totals) < EXACT_BELOW else "delta"

    def compare(self, summary: RatioStats, control: int, treatment: int, alpha: float):
        """Delta-method comparison of the two arms' ratios."""
        arm_c = RatioStats(*(v[control] for v in summary))
        arm_t = RatioStats(*(v[treatment] for v in summary))
        return compare_ratios(
            arm_c, arm_t, alpha=alpha, alternative=self.test_alternative, null=self.null
        )
