"""Power: sample size per arm, MDE and achieved power; test duration; simulated power.

Conventions (statsmodels.stats.power, printed by the CLI):

- proportion: Cohen's effect size ``h = 2 asin(sqrt(p_t)) - 2 asin(sqrt(p_c))`` with
  ``NormalIndPower``, as R's ``pwr.2p.test`` / ``pwr.2p2n.test``. The analysis uses the pooled
  z-test on proportions, which differs slightly from the arcsine formula at low counts.
- mean: Cohen's ``d = mde / sd`` with ``TTestIndPower`` (two-sample t, as R's ``pwr.t.test``
  and G*Power).
- ratio: ``d = mde / sd_ratio`` with ``NormalIndPower``, where ``sd_ratio`` is the per-user
  standard deviation of the delta-method linearisation of ``numer / denom`` (:func:`ratio_sd`).
- CUPED: a covariate with correlation ``rho`` multiplies the variance by ``1 - rho**2``, so the
  standardised effect is divided by ``sqrt(1 - rho**2)`` (also for Cohen's h, approximately).
- ``allocation_ratio`` is ``n_treatment / n_control`` (statsmodels' ``ratio``); ``n_control``
  is statsmodels' ``nobs1``. One-sided tests use ``alternative="larger"`` on ``|effect|``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_confint, proportion_effectsize

from experiments.stats.checks import ConfigError, check_choice, check_number
from experiments.stats.comparisons import compare_proportions

KINDS = ("proportion", "mean", "ratio")
CONVENTIONS = {
    "proportion": "Cohen's h = 2*asin(sqrt(p_t)) - 2*asin(sqrt(p_c)) with statsmodels "
    "NormalIndPower (as R pwr.2p.test); the pooled z-test used in analysis differs slightly "
    "at low counts",
    "mean": "Cohen's d = mde / sd with statsmodels TTestIndPower (two-sample t, as R "
    "pwr.t.test and G*Power)",
    "ratio": "d = mde / sd of the delta-method linearised ratio, with statsmodels NormalIndPower",
}


class Design(NamedTuple):
    """What is being powered.

    Attributes:
        kind: ``"proportion"``, ``"mean"`` or ``"ratio"``.
        baseline: Control value (a proportion, a mean, or a ratio).
        sd: Per-user standard deviation (mean: of the value; ratio: of the linearised ratio);
            ignored for proportions.
        alpha: Significance level.
        alternative: ``"two-sided"`` or one-sided (``"larger"`` / ``"smaller"``).
        allocation_ratio: ``n_treatment / n_control``.
        cuped_rho: Correlation with a pre-period covariate (0 = no CUPED).
    """

    kind: str
    baseline: float
    sd: float | None = None
    alpha: float = 0.05
    alternative: str = "two-sided"
    allocation_ratio: float = 1.0
    cuped_rho: float = 0.0


def _solver(design: Design) -> TTestIndPower | NormalIndPower:
    return TTestIndPower() if design.kind == "mean" else NormalIndPower()


def _sm_alternative(design: Design) -> str:
    return "two-sided" if design.alternative == "two-sided" else "larger"


def check_design(design: Design) -> Design:
    """Return ``design`` if its fields are valid, else raise ConfigError naming the field."""
    check_choice(design.kind, "metric", KINDS)
    check_number(design.alpha, "alpha", gt=0, lt=1)
    check_choice(design.alternative, "alternative", ("two-sided", "larger", "smaller"))
    check_number(design.allocation_ratio, "allocation_ratio", gt=0)
    check_number(design.cuped_rho, "cuped_rho", ge=0, lt=1)
    if design.kind == "proportion":
        check_number(design.baseline, "baseline", gt=0, lt=1)
    elif design.sd is None or check_number(design.sd, "sd", gt=0) <= 0:
        raise ConfigError("sd", f"a number > 0 when metric={design.kind}", design.sd)
    return design


def effect_size(design: Design, mde_abs: float) -> float:
    """Standardised effect of an absolute lift ``mde_abs`` (see the module's conventions)."""
    check_design(design)
    shrink = math.sqrt(1 - design.cuped_rho**2)
    if design.kind == "proportion":
        treated = design.baseline + mde_abs
        if not 0 < treated < 1:
            raise ConfigError("mde", "a lift keeping the proportion inside (0, 1)", treated)
        return abs(float(proportion_effectsize(treated, design.baseline))) / shrink
    return abs(mde_abs) / (design.sd * shrink)


def _lift_from_effect(design: Design, effect: float) -> float:
    """Inverse of :func:`effect_size`: the absolute lift (upwards) of a standardised effect."""
    effect *= math.sqrt(1 - design.cuped_rho**2)
    if design.kind == "proportion":
        angle = math.asin(math.sqrt(design.baseline)) + effect / 2
        return math.sin(min(angle, math.pi / 2)) ** 2 - design.baseline
    return effect * design.sd


def n_control(design: Design, mde_abs: float, power: float) -> float:
    """Users in the control arm (fractional) to reach ``power`` for lift ``mde_abs``."""
    check_number(power, "power", gt=0, lt=1)
    return _scalar(
        _solver(design).solve_power(
            effect_size=effect_size(design, mde_abs), nobs1=None, alpha=design.alpha,
            power=power, ratio=design.allocation_ratio, alternative=_sm_alternative(design),
        )
    )  # fmt: skip


def achieved_power(design: Design, mde_abs: float, n_control: float) -> float:
    """Power for lift ``mde_abs`` with ``n_control`` users in control."""
    return float(
        _solver(design).power(
            effect_size=effect_size(design, mde_abs), nobs1=n_control, alpha=design.alpha,
            ratio=design.allocation_ratio, alternative=_sm_alternative(design),
        )
    )  # fmt: skip


def minimum_detectable_effect(design: Design, n_control: float, power: float) -> float:
    """Smallest absolute lift (upwards) detected with ``power`` given ``n_control`` users."""
    check_number(power, "power", gt=0, lt=1)
    check_design(design)
    check_number(n_control, "n_per_arm", gt=1)
    effect = _solver(design).solve_power(
        effect_size=None, nobs1=n_control, alpha=design.alpha, power=power,
        ratio=design.allocation_ratio, alternative=_sm_alternative(design),
    )  # fmt: skip
    return _lift_from_effect(design, _scalar(effect))


def _scalar(value) -> float:
    """A float from solve_power's result (a scalar or, at times, a 1-element array)."""
    return float(np.ravel(value)[0])


def mde_from_se(se: float, alpha: float, power: float, alternative: str = "two-sided") -> float:
    """MDE of a test whose lift has standard error ``se``: ``(z_{1-a(/2)} + z_power) * se``.

    The normal approximation used to judge whether a SMART target is achievable from the
    standard error observed at the deadline's sample size.
    """
    tail = alpha / 2 if alternative == "two-sided" else alpha
    return float((stats.norm.isf(tail) + stats.norm.ppf(power)) * se)


def ratio_sd(ratio: float, denom_mean: float, numer_sd: float, denom_sd: float, corr: float):
    """Per-user sd of the delta-method linearisation ``(numer - ratio * denom) / denom_mean``.

    ``sd**2 = (numer_sd**2 - 2 ratio corr numer_sd denom_sd + ratio**2 denom_sd**2)
    / denom_mean**2``.
    """
    var = numer_sd**2 - 2 * ratio * corr * numer_sd * denom_sd + ratio**2 * denom_sd**2
    if var <= 0:
        raise ConfigError("corr", "a correlation leaving the ratio a positive variance", corr)
    return math.sqrt(var) / denom_mean


def days_needed(total_n: float, daily_traffic: float | None) -> int | None:
    """Days of new eligible users (``daily_traffic`` a day, all arms) to reach ``total_n``."""
    return None if daily_traffic is None else math.ceil(total_n / daily_traffic)


@dataclass(frozen=True)
class SampleSize:
    """A sized test: the contents of power.json.

    Attributes:
        n_per_arm: Users per arm for an equal split.
        n_control: Users in control for the requested split.
        n_treatment: Users in treatment for the requested split.
        total_n: ``n_control + n_treatment``.
        days: Days of ``daily_traffic`` to reach ``total_n`` (None without traffic).
        alpha: Significance level.
        power: Target power.
        baseline: Control value.
        mde_abs: Absolute lift powered for.
        mde_rel: Relative lift powered for.
        method: The convention (formula and statsmodels class).
    """

    n_per_arm: int
    n_control: int
    n_treatment: int
    total_n: int
    days: int | None
    alpha: float
    power: float
    baseline: float
    mde_abs: float
    mde_rel: float
    method: str


def sample_size(design: Design, mde_abs: float, power: float, daily_traffic=None) -> SampleSize:
    """Size a test for an absolute lift ``mde_abs`` (users rounded up per arm)."""
    if check_number(mde_abs, "mde") == 0:
        raise ConfigError("mde", "a lift other than 0", mde_abs)
    n_c = math.ceil(n_control(design, mde_abs, power) - 1e-9)
    n_t = math.ceil(n_c * design.allocation_ratio - 1e-9)
    equal = math.ceil(n_control(design._replace(allocation_ratio=1.0), mde_abs, power) - 1e-9)
    return SampleSize(
        n_per_arm=equal, n_control=n_c, n_treatment=n_t, total_n=n_c + n_t,
        days=days_needed(n_c + n_t, daily_traffic), alpha=design.alpha, power=power,
        baseline=design.baseline, mde_abs=mde_abs,
        mde_rel=mde_abs / design.baseline if design.baseline else math.nan,
        method=CONVENTIONS[design.kind],
    )  # fmt: skip


def power_curve(design: Design, mde_abs: float, n_controls: Iterable[float]) -> pd.DataFrame:
    """Achieved power at each control-arm size: a tidy table ``n_control, n_treatment, power``."""
    rows = [
        {"n_control": n, "n_treatment": n * design.allocation_ratio,
         "power": achieved_power(design, mde_abs, n)}
        for n in n_controls
    ]  # fmt: skip
    return pd.DataFrame(rows)


def plot_power_curve(curves: dict[str, pd.DataFrame], target_power: float, path: str) -> None:
    """Save power against users per control arm, one line per labelled curve, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, curve in curves.items():
        ax.plot(curve["n_control"], curve["power"], label=label)
    ax.axhline(target_power, color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="users in control arm", ylabel="power", ylim=(0, 1), title="Power curve")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


class MapFunction(Protocol):
    """A ``map``-like callable (builtin ``map``, ``Executor.map``, a cluster's map)."""

    def __call__(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterable[Any]:
        """Apply ``fn`` to every item, in order."""
        ...


class SimulatedPower(NamedTuple):
    """Simulated power with its Monte Carlo (Wilson) interval.

    Attributes:
        power: Share of replicates that rejected.
        ci_low: Lower end of the Wilson interval for the true power.
        ci_high: Upper end.
        replicates: Number of replicates.
        rejections: Number that rejected.
    """

    power: float
    ci_low: float
    ci_high: float
    replicates: int
    rejections: int


def _one_replicate(make_data: Callable, analyse: Callable, seed: np.random.SeedSequence) -> bool:
    return bool(analyse(make_data(np.random.default_rng(seed))))


def simulated_power(
    make_data: Callable[[np.random.Generator], Any],
    analyse: Callable[[Any], bool],
    replicates: int,
    seed: int,
    map_fn: MapFunction = map,
    alpha: float = 0.05,
    progress: Callable[[Iterable[bool]], Iterable[bool]] | None = None,
) -> SimulatedPower:
    """Power by simulation: the share of ``replicates`` experiments in which ``analyse`` rejects.

    Args:
        make_data: Makes one experiment's data from a random generator.
        analyse: Returns True when the test rejects on that data.
        replicates: Number of experiments (R).
        seed: Root seed; replicate ``i`` uses child ``i`` of ``SeedSequence(seed).spawn(R)``,
            so any ``map_fn`` (serial, processes, a cluster) gives the same answer.
        map_fn: How to run replicates (``make_data`` and ``analyse`` must be picklable for
            process-based maps).
        alpha: ``1 -`` confidence of the Monte Carlo interval.
        progress: Wraps the stream of results to show progress (e.g. ``tqdm``).
    """
    check_number(replicates, "replicates", ge=1, integer=True)
    children = np.random.SeedSequence(seed).spawn(replicates)
    job = functools.partial(_one_replicate, make_data, analyse)
    results = map_fn(job, children)
    hits = int(sum(results if progress is None else progress(results)))
    low, high = proportion_confint(hits, replicates, alpha=alpha, method="wilson")
    return SimulatedPower(hits / replicates, float(low), float(high), replicates, hits)


@dataclass(frozen=True)
class BinomialExperiment:
    """``make_data`` for two arms of Bernoulli users: returns (count_c, n_c, count_t, n_t)."""

    p_control: float
    p_treatment: float
    n_control: int
    n_treatment: int

    def __call__(self, rng: np.random.Generator) -> tuple[int, int, int, int]:
        """Draw one experiment's conversion counts."""
        c = rng.binomial(self.n_control, self.p_control)
        t = rng.binomial(self.n_treatment, self.p_treatment)
        return c, self.n_control, t, self.n_treatment


@dataclass(frozen=True)
class ProportionZTest:
    """``analyse`` for :class:`BinomialExperiment`: pooled two-proportion z-test at ``alpha``."""

    alpha: float = 0.05
    alternative: str = "two-sided"

    def __call__(self, data: tuple[int, int, int, int]) -> bool:
        """Return True when the z-test rejects."""
        result = compare_proportions(*data, alpha=self.alpha, alternative=self.alternative)
        return bool(result.p_value < self.alpha)
