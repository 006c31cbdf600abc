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

Direction. A lift is signed: ``alternative="larger"`` sizes the increase ``baseline + mde``,
``"smaller"`` the decrease ``baseline - mde`` (:func:`sized_lift`). A two-sided test promises
to detect the MDE either way, so it sizes the *harder* direction: for a proportion the one
with the smaller ``|h|`` (towards 0.5, where the variance is larger; the increase when the
baseline is below 0.5, the decrease above it), among the directions that keep the proportion
inside (0, 1); for means and ratios both directions need the same n and the increase is named.

Sequential designs (:func:`sequential_size`), for an analyst who will look before the end:

- O'Brien-Fleming: Lan-DeMets OBF-type spending at ``looks`` equally spaced looks, bounds from
  :func:`experiments.stats.sequential.group_sequential_bounds`. The drift ``theta`` (the mean of
  z at the last look) giving the target power is solved with :func:`boundary_crossing`, a
  recursive numerical integration like sequential.py's but with the drift; the maximum n is
  ``(theta_seq / theta_fixed)**2`` (the inflation factor) times the fixed n.
- mSPRT: the normal-mixture SPRT (Johari, Pekelis and Walsh 2017) with a ``N(0, tau**2)``
  mixing law on the lift, ``tau`` fixed in advance (default: the MDE), checked at the same
  looks, truncated at the n where it reaches the target power (so it is compared with the
  others at equal power). Its expected n at the MDE is exact up to the numerical integration.
- One-sided designs use one-sided boundaries (``sides=1``: OBF spending of ``alpha`` on the
  sized side, the half-normal mixture for the mSPRT), as the analysis in sequential.py does.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np
import pandas as pd
from scipy import optimize, stats
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_confint, proportion_effectsize

from experiments.stats.checks import ConfigError, check_choice, check_number
from experiments.stats.comparisons import compare_proportions
from experiments.stats.sequential import SIDES, group_sequential_bounds, mixture_bounds

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


def _lift_from_effect(design: Design, effect: float, sign: int = 1) -> float:
    """Inverse of :func:`effect_size`: the lift (up if ``sign`` > 0, else down) of an effect."""
    effect *= math.sqrt(1 - design.cuped_rho**2)
    if design.kind == "proportion":
        angle = math.asin(math.sqrt(design.baseline)) + sign * effect / 2
        return math.sin(min(max(angle, 0.0), math.pi / 2)) ** 2 - design.baseline
    return sign * effect * design.sd


def sized_lift(design: Design, mde: float) -> float:
    """The signed lift a test is sized for, given the MDE's size ``mde > 0``.

    ``"larger"``: ``+mde``; ``"smaller"``: ``-mde``; two-sided: the harder direction (see the
    module's docstring). ConfigError (key ``mde``) if the sized lift leaves (0, 1).
    """
    check_design(design)
    check_number(mde, "mde", gt=0)
    if design.alternative == "smaller":
        lift = -mde
    elif design.alternative == "larger" or design.kind != "proportion":
        lift = mde
    else:
        inside = [lift for lift in (mde, -mde) if 0 < design.baseline + lift < 1] or [mde]
        lift = min(inside, key=lambda lift: effect_size(design, lift))  # a tie: the increase
    effect_size(design, lift)
    return lift


def direction(lift: float) -> str:
    """``"increase"`` or ``"decrease"``: the direction of a signed lift."""
    return "decrease" if lift < 0 else "increase"


def _check_side(design: Design, lift: float) -> float:
    """ConfigError if a one-sided design is asked about a lift on its other side."""
    if check_number(lift, "mde") == 0:
        raise ConfigError("mde", "a lift other than 0", lift)
    wrong = {"larger": lift < 0, "smaller": lift > 0}.get(design.alternative, False)
    if wrong:
        raise ConfigError(
            "mde", f"a lift in the direction of alternative={design.alternative}", lift
        )
    return lift


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
    """Smallest lift detected with ``power`` given ``n_control`` users, signed.

    In the sized direction: down for ``"smaller"``; two-sided, the larger of the two directions'
    lifts (the one that can be promised either way).
    """
    check_number(power, "power", gt=0, lt=1)
    check_design(design)
    check_number(n_control, "n_per_arm", gt=1)
    effect = _solver(design).solve_power(
        effect_size=None, nobs1=n_control, alpha=design.alpha, power=power,
        ratio=design.allocation_ratio, alternative=_sm_alternative(design),
    )  # fmt: skip
    if design.alternative != "two-sided":
        return _lift_from_effect(
            design, _scalar(effect), -1 if design.alternative == "smaller" else 1
        )
    up, down = (_lift_from_effect(design, _scalar(effect), sign) for sign in (1, -1))
    return up if up >= -down else down


def _scalar(value) -> float:
    """A float from solve_power's result (a scalar or, at times, a 1-element array)."""
    return float(np.ravel(value)[0])


def mde_from_se(se: float, alpha: float, power: float, alternative: str = "two-sided") -> float:
    """MDE of a test whose lift has standard error ``se``: ``(z_{1-a(/2)} + z_power) * se``.

    The normal approximation of a test against 0 (SMART targets use their own rule:
    :func:`experiments.stats.targets.min_lift_to_meet`).
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
        mde_abs: Absolute lift powered for (signed: negative for a decrease).
        mde_rel: Relative lift powered for (signed).
        method: The convention (formula and statsmodels class).
        direction: ``"increase"`` or ``"decrease"``: the direction sized.
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
    direction: str


def sample_size(design: Design, mde_abs: float, power: float, daily_traffic=None) -> SampleSize:
    """Size a test for a signed absolute lift ``mde_abs`` (users rounded up per arm).

    Use :func:`sized_lift` to turn a planned MDE into the lift to size.
    """
    _check_side(design, mde_abs)
    n_c = math.ceil(n_control(design, mde_abs, power) - 1e-9)
    n_t = math.ceil(n_c * design.allocation_ratio - 1e-9)
    equal = math.ceil(n_control(design._replace(allocation_ratio=1.0), mde_abs, power) - 1e-9)
    return SampleSize(
        n_per_arm=equal, n_control=n_c, n_treatment=n_t, total_n=n_c + n_t,
        days=days_needed(n_c + n_t, daily_traffic), alpha=design.alpha, power=power,
        baseline=design.baseline, mde_abs=mde_abs,
        mde_rel=mde_abs / design.baseline if design.baseline else math.nan,
        method=CONVENTIONS[design.kind], direction=direction(mde_abs),
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


class Crossing(NamedTuple):
    """Probabilities of first crossing each look's boundary, on each side.

    Attributes:
        upper: ``P(first crossing at look k, with z_k >= b_k)``.
        lower: ``P(first crossing at look k, with z_k <= -b_k)``.
    """

    upper: np.ndarray
    lower: np.ndarray


def boundary_crossing(fractions, bounds, drift: float, sides: int = 2) -> Crossing:
    """First-crossing probabilities of z boundaries when z drifts (Jennison-Turnbull ch. 19).

    The score ``S(t) = z sqrt(t)`` is ``drift * t + W(t)``: z at the last look has mean
    ``drift``. The sub-density of ``S`` on the continuation region (``|z_k| < b_k``, or
    ``z_k < b_k`` one-sided) is carried from look to look by convolution with the normal
    increment (Simpson's rule), as sequential.py does under the null.

    Args:
        fractions: Information fractions of the looks, increasing, ending at 1.
        bounds: ``b_k`` (z scale, may be ``inf``) at each look.
        drift: Mean of z at ``t = 1`` (0 under the null).
        sides: 2 (stop at ``|z| >= b``) or 1 (stop at ``z >= b`` only; ``lower`` is 0).
    """
    t = np.asarray(fractions, float)
    edges, sd = np.asarray(bounds, float) * np.sqrt(t), np.sqrt(np.diff(t, prepend=0.0))
    step = sd.min() / 8  # Simpson at 8 points per sd: the inflation to 1e-5 at 30 looks
    grid = np.zeros(1)
    mass = np.ones(1)  # the score starts at 0 with probability 1
    upper, lower = [], []
    for k in range(t.size):
        mean = grid + drift * sd[k] ** 2
        upper.append(float(mass @ stats.norm.sf(edges[k], mean, sd[k])))
        lower.append(float(mass @ stats.norm.cdf(-edges[k], mean, sd[k])) if sides == 2 else 0.0)
        new = _region(
            edges[k] if sides == 2 else np.inf, edges[k], drift * t[k], np.sqrt(t[k]), step
        )
        mass = _simpson(new) * (_normal_pdf(new[:, None] - mean[None, :], sd[k]) @ mass)
        grid = new
    return Crossing(np.array(upper), np.array(lower))


def _region(below: float, above: float, mean: float, sd: float, step: float) -> np.ndarray:
    """Grid over ``(-below, above)``, cut at 10 sd from the mean (the rest is < 1e-22).

    An odd number of points, for Simpson's rule.
    """
    low, high = max(-below, mean - 10 * sd), min(above, mean + 10 * sd)
    high = max(high, low)  # nothing left inside: a zero-width grid carries zero mass
    return np.linspace(low, high, 2 * int(np.clip(np.ceil((high - low) / step / 2), 50, 2000)) + 1)


def _normal_pdf(x: np.ndarray, sd: float) -> np.ndarray:
    """``N(0, sd**2)`` density (numpy directly: scipy's pdf costs 3x on these matrices)."""
    return np.exp(-0.5 * (x / sd) ** 2) / (sd * math.sqrt(2 * math.pi))


def _simpson(grid: np.ndarray) -> np.ndarray:
    """Composite Simpson weights (an odd number of points).

    Error O(step**4): the trapezoid's O(step**2) added up over many looks (0.1% of the inflation
    factor at 30 looks).
    """
    w = np.ones(grid.size)
    w[1:-1:2], w[2:-1:2] = 4, 2
    return w * (grid[1] - grid[0]) / 3


def drift_for_power(fractions, bounds_at: Callable[[float], np.ndarray], power: float,
                    sides: int = 2) -> float:  # fmt: skip
    """The drift at which the boundaries ``bounds_at(drift)`` are crossed with ``power``.

    Two-sided, a crossing on the wrong side counts too, as in statsmodels' two-sided power.
    """

    def gap(drift: float) -> float:
        crossing = boundary_crossing(fractions, bounds_at(drift), drift, sides)
        return crossing.upper.sum() + crossing.lower.sum() - power

    return float(optimize.brentq(gap, 1e-3, 40.0, xtol=1e-8))


def expected_fraction(fractions, crossing: Crossing) -> float:
    """Expected stopping information over the maximum: stop at a crossing, else at the end."""
    stop = (crossing.upper + crossing.lower)[:-1]
    return float(np.sum(np.asarray(fractions)[:-1] * stop) + 1 - stop.sum())


@dataclass(frozen=True)
class SequentialSize:
    """Users per arm (equal split) when the test will be looked at before the end.

    Attributes:
        looks: Equally spaced looks, the last at the maximum n.
        n_fixed: Fixed-horizon n per arm, unrounded.
        obf_inflation: Maximum n of the O'Brien-Fleming design over the fixed n.
        n_per_arm_obf: Maximum n per arm of the O'Brien-Fleming design.
        expected_n_obf: Its expected n per arm when the true lift is the MDE.
        msprt_tau: Mixing sd of the mSPRT, in the lift's units.
        n_per_arm_msprt_max: The mSPRT's cap: the n per arm where it reaches the target power.
        expected_n_msprt: Its expected n per arm when the true lift is the MDE.
    """

    looks: int
    n_fixed: float
    obf_inflation: float
    n_per_arm_obf: int
    expected_n_obf: float
    msprt_tau: float
    n_per_arm_msprt_max: int
    expected_n_msprt: float


def sequential_size(design: Design, lift: float, power: float, looks: int = 5,
                    msprt_tau: float | None = None) -> SequentialSize:  # fmt: skip
    """Size the O'Brien-Fleming and mSPRT designs for a signed ``lift`` (module docstring).

    Args:
        design: The test (alpha, sides, CUPED; an equal split is sized).
        lift: Signed lift, as from :func:`sized_lift`.
        power: Target power.
        looks: Equally spaced looks (1 to 60; the last at the maximum n).
        msprt_tau: Mixing sd on the lift, in its units (default ``|lift|``, fixed in advance).
    """
    check_number(looks, "looks", ge=1, le=60, integer=True)  # 60: two months of daily looks, ~5 s
    tau = abs(lift) if msprt_tau is None else check_number(msprt_tau, "msprt_tau", gt=0)
    n_fixed = n_control(design._replace(allocation_ratio=1.0), _check_side(design, lift), power)
    t, sides, alpha = np.arange(1, looks + 1) / looks, SIDES[design.alternative], design.alpha
    fixed, _ = _design_drift([1.0], lambda d: group_sequential_bounds([1.0], alpha, sides=sides),
                             power, sides)  # fmt: skip
    obf_bounds = group_sequential_bounds(t, alpha, sides=sides)
    obf, obf_stop = _design_drift(t, lambda d: obf_bounds, power, sides)
    ratio = tau / abs(lift)  # tau on the standardised scale: (tau / |lift|) * effect size
    # r = tau**2 / var(estimate) = (tau_std * drift / effect)**2 * t = (ratio * drift)**2 * t
    msprt, msprt_stop = _design_drift(
        t, lambda d: mixture_bounds((ratio * d) ** 2 * t, alpha, sides), power, sides
    )
    n_obf, n_msprt = n_fixed * (obf / fixed) ** 2, n_fixed * (msprt / fixed) ** 2
    return SequentialSize(
        looks=looks, n_fixed=n_fixed, obf_inflation=(obf / fixed) ** 2,
        n_per_arm_obf=math.ceil(n_obf - 1e-9), expected_n_obf=n_obf * obf_stop,
        msprt_tau=tau, n_per_arm_msprt_max=math.ceil(n_msprt - 1e-9),
        expected_n_msprt=n_msprt * msprt_stop,
    )  # fmt: skip


def _design_drift(t, bounds_at, power: float, sides: int) -> tuple[float, float]:
    """The drift giving ``power``, and the expected stopping fraction at that drift."""
    drift = drift_for_power(t, bounds_at, power, sides)
    return drift, expected_fraction(t, boundary_crossing(t, bounds_at(drift), drift, sides))
