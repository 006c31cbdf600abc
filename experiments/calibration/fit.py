"""Fit a scenario's parameters to a dashboard: which KPI identifies which parameter, the search.

The map (:data:`MAP`, by mechanism): ``sessions`` -> ``population.size`` (traffic is per
capita, so sessions scale with the market); ``visitors`` with ``sessions`` ->
``traffic.visit_rate`` (sessions per visitor); ``add_to_cart_rate`` -> ``funnel.p_cart``;
``checkout_completion_rate`` -> ``funnel.p_purchase``; ``conversion_rate`` -> ``funnel.p_checkout``
(with the add-to-cart rate given; else ``funnel.p_cart``); ``aov`` -> ``catalog.price_median``;
``repeat_purchase_rate`` -> ``retention.post_purchase_boost``; ``retention_rate`` (or
``churn_rate``) -> ``retention.lapse_per_visit``; ``email_open_rate`` / ``email_click_rate`` ->
``email.open_rate`` / ``email.click_rate``. A KPI is fitted only if given; every other KPI of
the dashboard is simulated and compared, and every parameter nobody identifies stays at its
default, with a note saying why.

The search: :func:`scipy.optimize.root` (Powell's hybrid method, MINPACK's hybrj: one
finite-difference Jacobian, then Broyden updates, so most steps cost one simulation) on the log
KPIs, over log-parameters (logit for probabilities) relative to the defaults. Every trial runs
with the same seed (common random numbers: a trial differs from the last only where the
parameters changed someone's path, so the objective is smooth at the scale of the
finite-difference step) and at a reduced population; totals are rescaled from the search
population to the market size, which is therefore fitted without simulating (its Jacobian
column is known). Each KPI is a joint function of every parameter (cheaper prices raise the
add-to-cart rate too), so all are fitted at once; the map is one KPI per parameter, so the
system is square. The search stops within the trial's own Monte Carlo error; the fitted store
then runs at its full size, and a few Gauss-Newton steps correct what the small population left.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import root
from scipy.special import expit, logit

from experiments.calibration.dashboard import Dashboard
from experiments.replicates import replicate_seeds
from sim.aggregate import facts_of, kpi_table
from sim.config import Scenario, validate
from sim.errors import ConfigError
from sim.kpis import REGISTRY
from sim.world import World

SIZE = "population.size"
PROBABILITIES = {"funnel.p_cart", "funnel.p_checkout", "funnel.p_purchase",
                 "retention.lapse_per_visit", "email.open_rate", "email.click_rate"}  # fmt: skip
STEP = 0.1  # finite-difference step, in log (logit) units: ~10% of a parameter (less is noise)
BOUND = 3.0  # the search stays within e^+-3 (about x20) of the default, in log (logit) units
TOLERANCE = 0.01  # close enough: every fitted KPI within 1% (or its Monte Carlo error)
GROUPS = 8  # agent groups of a full-scale run, for its standard errors (batch means)
PENALTY = 10.0  # residual of a KPI the trial cannot compute (no orders: no AOV)
FITTED = ("sessions", "visitors", "add_to_cart_rate", "checkout_completion_rate",
          "conversion_rate", "aov", "repeat_purchase_rate", "retention_rate", "churn_rate",
          "email_open_rate", "email_click_rate")  # fmt: skip
"""The KPIs that identify a parameter (:func:`plan`); any other KPI id is compared only."""
ONE_TO_ONE = {
    "aov": "catalog.price_median",
    "repeat_purchase_rate": "retention.post_purchase_boost",
    "email_open_rate": "email.open_rate",
    "email_click_rate": "email.click_rate",
}


def plan(kpis: dict[str, float]) -> tuple[dict[str, str], list[str]]:
    """Which parameter each given KPI fits (kpi -> dotted scenario key), and notes on the rest."""
    given, fits, notes = set(kpis), {}, []
    if "sessions" in given:
        fits["sessions"] = SIZE
    elif "visitors" in given:
        fits["visitors"] = SIZE
    else:
        notes.append(f"{SIZE} stays at the default: no sessions or visitors on the dashboard "
                     "(the calibrated store's totals are for the default market)")  # fmt: skip
    if {"sessions", "visitors"} <= given:
        fits["visitors"] = "traffic.visit_rate"
    else:
        notes.append("traffic.visit_rate stays at the default: market size and visit rate are "
                     "confounded unless both sessions and visitors are given")  # fmt: skip
    notes += _funnel(given, fits)
    for kpi, key in ONE_TO_ONE.items():
        if kpi in given:
            fits[kpi] = key
        else:
            notes.append(f"{key} stays at the default: no {kpi} on the dashboard")
    churn = "retention_rate" if "retention_rate" in given else "churn_rate"
    if churn in given:  # churn_rate = 1 - retention_rate: one of them identifies the lapse chance
        fits[churn] = "retention.lapse_per_visit"
    else:
        notes.append("retention.lapse_per_visit stays at the default: no retention_rate or "
                     "churn_rate on the dashboard")  # fmt: skip
    return fits, notes


def _funnel(given: set[str], fits: dict[str, str]) -> list[str]:
    """The three funnel probabilities need add-to-cart, checkout completion and conversion."""
    notes = []
    if "add_to_cart_rate" in given:
        fits["add_to_cart_rate"] = "funnel.p_cart"
    if "checkout_completion_rate" in given:
        fits["checkout_completion_rate"] = "funnel.p_purchase"
    if "conversion_rate" in given:
        cart = "add_to_cart_rate" in given
        fits["conversion_rate"] = "funnel.p_checkout" if cart else "funnel.p_cart"
    for key, why in (
        ("funnel.p_cart", "no add_to_cart_rate or conversion_rate on the dashboard"),
        ("funnel.p_checkout", "conversion_rate and add_to_cart_rate are both needed to tell "
         "carts that begin checkout from the rest"),
        ("funnel.p_purchase", "no checkout_completion_rate on the dashboard (conversion alone "
         "cannot split starting checkout from completing it)"),
    ):  # fmt: skip
        if key not in fits.values():
            notes.append(f"{key} stays at the default: {why}")
    return notes


def get(scenario: Scenario, key: str) -> float:
    """A scenario's value at a dotted key (``funnel.p_cart``)."""
    node = scenario
    for part in key.split("."):
        node = getattr(node, part)
    return node


def with_values(scenario: Scenario, values: dict[str, float]) -> Scenario:
    """A copy of the scenario with the dotted keys set (the market size rounded to agents)."""
    out = copy.deepcopy(scenario)
    for key, value in values.items():
        *path, name = key.split(".")
        node = out
        for part in path:
            node = getattr(node, part)
        integer = key in (SIZE, "catalog.seed")
        setattr(node, name, int(round(value)) if integer else float(value))
    return validate(out)


def for_period(scenario: Scenario, dashboard: Dashboard) -> Scenario:
    """The scenario over the dashboard's period (its name, day 0 and number of days)."""
    out = copy.deepcopy(scenario)
    out.name, out.start_date, out.days = dashboard.name, dashboard.start, dashboard.days
    return validate(out)


def _forward(key: str, value: float) -> float:
    return float(logit(value)) if key in PROBABILITIES else math.log(value)


def _inverse(key: str, z: float) -> float:
    return float(expit(z)) if key in PROBABILITIES else math.exp(z)


def close(r: np.ndarray, measured: pd.DataFrame, ses: float = 1.0) -> bool:
    """Whether every log residual is within TOLERANCE or ``ses`` of its relative standard error.

    Closer than the Monte Carlo error of the run is noise: the search stops there (and at the
    market size, the correction steps at twice it).
    """
    rel_se = (measured["se"] / measured["value"].abs()).to_numpy(float)
    return bool(np.all(np.abs(r) < np.maximum(TOLERANCE, ses * np.nan_to_num(rel_se))))


class _Stop(Exception):
    """The search ends early: out of trials, or every fitted KPI is close enough."""


@dataclass
class Search:
    """The objective: log simulated KPIs minus log targets, with a trial budget and a cache.

    ``x`` holds, per fitted parameter, its transform (log, or logit for probabilities) minus
    the default's. Trials run at ``population`` agents with one seed; a total is rescaled by
    market size / population.
    """

    base: Scenario
    targets: dict[str, float]
    fits: dict[str, str]
    population: int
    seed: int
    trials: int
    on_trial: Callable[[], None] = lambda: None
    used: int = 0
    cache: dict = field(default_factory=dict)
    best: tuple[float, np.ndarray] | None = None
    jac: np.ndarray | None = None
    trace: list = field(default_factory=list)  # (trials used, sum of squared residuals)
    searching: bool = True  # stop at TOLERANCE and at the trial budget (off for the ranges)

    def __post_init__(self) -> None:
        self.params = list(dict.fromkeys(self.fits.values()))
        self.kpis = list(self.fits)
        self.log_targets = np.log([self.targets[k] for k in self.kpis])
        self.totals = np.array([REGISTRY[k].type == "total" for k in self.kpis])
        self.z0 = np.array([_forward(p, get(self.base, p)) for p in self.params])
        self.simulated = [i for i, p in enumerate(self.params) if p != SIZE]
        # The market size is not bounded: it needs no simulation (sessions scale with it)
        self.bound = np.array([np.inf if p == SIZE else BOUND for p in self.params])

    def values(self, x: np.ndarray) -> dict[str, float]:
        """The parameter values at ``x``."""
        z = self.z0 + np.clip(x, -self.bound, self.bound)
        return {p: _inverse(p, v) for p, v in zip(self.params, z, strict=True)}

    def kpis_at(self, x: np.ndarray) -> pd.DataFrame:
        """The fitted KPIs of one trial at the search population, and their standard errors.

        Cached by the simulated part of ``x`` (the market size needs no simulation).
        """
        key = tuple(np.round(np.clip(x, -BOUND, BOUND)[self.simulated], 12))
        if key not in self.cache:
            if self.searching and self.used >= self.trials:
                raise _Stop("trials")
            values = {p: v for p, v in self.values(x).items() if p != SIZE}
            scenario = with_values(self.base, {**values, SIZE: self.population})
            self.cache[key] = measure(scenario, self.seed, self.kpis)
            self.used += 1
            self.on_trial()
        return self.cache[key]

    def residuals(self, x: np.ndarray) -> np.ndarray:
        """Log simulated - log target, per fitted KPI (totals rescaled to the market size)."""
        trial = self.kpis_at(x)
        sim = trial["value"].to_numpy(float)
        size = self.values(x).get(SIZE, self.base.population.size)
        sim = np.where(self.totals, sim * size / self.population, sim)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.log(sim) - self.log_targets
        r = np.where(np.isfinite(r), r, PENALTY)
        cost = float(r @ r)
        self.trace.append((self.used, cost))
        if self.best is None or cost < self.best[0]:
            self.best = (cost, x.copy())
        if self.searching and close(r, trial):
            raise _Stop("converged")
        return r

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """Forward differences of STEP; the market size's column is known (totals: 1)."""
        r0 = self.residuals(x)
        jac = np.zeros((len(r0), len(x)))
        for j, p in enumerate(self.params):
            if p == SIZE:
                jac[:, j] = self.totals
                continue
            step = np.zeros_like(x)
            step[j] = STEP
            jac[:, j] = (self.residuals(x + step) - r0) / STEP
        self.jac = jac
        return jac


@dataclass(frozen=True)
class Cost:
    """What a calibration cost: simulations, agents per simulation and seconds, per phase."""

    search_simulations: int
    search_population: int
    search_seconds: float
    full_simulations: int  # at the market size: the check, and each correction step before it
    full_population: int
    full_seconds: float
    stopped: str  # how the search ended: converged | tolerance (root's own test) | trials


@dataclass(frozen=True)
class Calibration:
    """A calibrated store, how well it fits the dashboard and what the fit cost."""

    scenario: Scenario
    seed: int  # the store is the scenario at this seed (the seed draws its catalog)
    fits: dict[str, str]  # kpi -> the parameter it identifies
    notes: list[str]
    fit: pd.DataFrame  # kpi, target, simulated, se, rel_error, parameter
    uncertainty: pd.DataFrame  # parameter, value, low, high, default
    cost: Cost


def check_fittable(dashboard: Dashboard) -> dict[str, str]:
    """The dashboard's fits (kpi -> parameter); ConfigError if nothing or a value cannot be fitted.

    A fitted KPI is compared in logs: it must be > 0 (and a rate < 1).
    """
    fits, _ = plan(dashboard.kpis)
    if not fits:
        raise ConfigError("dashboard.kpis", "at least one KPI that identifies a parameter: "
                          + ", ".join(FITTED))  # fmt: skip
    for kpi in fits:
        value = dashboard.kpis[kpi]
        if value <= 0 or (kpi.endswith("_rate") and value >= 1):
            allowed = "a number > 0 and < 1 to be fitted" if kpi.endswith("_rate") else \
                "a number > 0 to be fitted"  # fmt: skip
            raise ConfigError(f"dashboard.kpis.{kpi}", allowed, value)
    return fits


def search(base: Scenario, dashboard: Dashboard, trials: int, population: int, seed: int,
           on_trial: Callable[[], None] = lambda: None) -> tuple[Search, str]:  # fmt: skip
    """Solve for the fitted KPIs within ``trials`` simulations; the best point tried wins."""
    fits = check_fittable(dashboard)
    s = Search(base, dashboard.kpis, fits, population, seed, trials, on_trial)
    try:
        # Powell's hybrid method (MINPACK hybrj): one Jacobian by finite differences, then
        # Broyden updates, so most iterations cost one simulation; a new Jacobian only when the
        # updates stop helping. The first step is bounded to 1 in log units (factor).
        root(s.residuals, np.zeros(len(s.params)), jac=s.jacobian, method="hybr",
             options={"xtol": 1e-3, "factor": 1.0})  # fmt: skip
        stopped = "tolerance"
    except _Stop as stop:
        stopped = str(stop)
    return s, stopped


def uncertainty(s: Search, x: np.ndarray, jac: np.ndarray, rel_sd: np.ndarray) -> pd.DataFrame:
    """Each fitted parameter's range that still fits the dashboard within its noise (95%).

    Linearised: with J the Jacobian of the log KPIs in the transformed parameters and S the
    diagonal of each KPI's relative noise in one store over the period (``rel_sd``: the
    standard error of :func:`measure` / the value), the parameters' covariance is
    J+ S^2 J+^T (J+ the pseudo-inverse); the range is the transform's +-1.96 sd, mapped back.
    """
    pinv = np.linalg.pinv(jac)
    cov = pinv @ np.diag(np.asarray(rel_sd, float) ** 2) @ pinv.T
    sd = np.sqrt(np.clip(np.diag(cov), 0, None))
    rows = []
    for j, p in enumerate(s.params):
        z = s.z0[j] + x[j]
        identified = np.any(np.abs(jac[:, j]) > 1e-9) and np.isfinite(sd[j])
        low, high = (_inverse(p, z - 1.96 * sd[j]), _inverse(p, z + 1.96 * sd[j])) if identified \
            else (math.nan, math.nan)  # fmt: skip
        rows.append({"parameter": p, "value": _inverse(p, z), "low": low, "high": high,
                     "default": get(s.base, p)})  # fmt: skip
    return pd.DataFrame(rows)


def measure(scenario: Scenario, seed: int, kpis: list[str], groups: int = GROUPS) -> pd.DataFrame:
    """The store's KPIs at full scale and their Monte Carlo standard errors, from one run.

    The agents are dealt into ``groups`` groups by id (labels only: a world without strategies
    runs the same whatever its arms, to the last digit); each KPI is computed per group too, and
    its standard error is the groups' (batch means): sd / sqrt(groups) for a rate or mean,
    sd x sqrt(groups) for a total. New seeds would not do: a seed also draws the catalog (its
    240 prices), and stores of one scenario differ by about 7% in conversion and AOV by their
    catalogs alone, at any population.
    """
    arm = (np.arange(scenario.population.size) % groups).astype(np.int8)
    names = tuple(f"group_{i}" for i in range(groups))
    results = World(scenario, seed, arm=arm, arm_names=names, events=False).run()
    facts = facts_of(results)
    total = kpi_table(facts, []).iloc[0][kpis]
    by = kpi_table(facts, ["arm"])[kpis]
    sd = by.std(ddof=1)
    totals = np.array([REGISTRY[k].type == "total" for k in kpis])
    se = np.where(totals, sd * math.sqrt(groups), sd / math.sqrt(groups))
    return pd.DataFrame({"value": total.to_numpy(float), "se": se}, index=kpis)


def calibrate(base: Scenario, dashboard: Dashboard, trials: int = 60, population: int = 50_000,
              polish: int = 2, seed: int = 42, replicates: int = 3,
              progress: Callable[[str], None] = lambda phase: None) -> Calibration:  # fmt: skip
    """Fit ``base`` (a whole scenario) to the dashboard; check the result at full scale.

    Args:
        base: The scenario to start from; every parameter the dashboard does not identify keeps
            its value.
        dashboard: The store's period and KPIs.
        trials: Simulations the search may spend (each at ``population`` agents).
        population: Agents per search simulation; totals are rescaled to the market size.
        polish: Correction steps at the market size at most, taken while a fitted KPI is off by
            more than twice its standard error: a Gauss-Newton step with the search's Jacobian
            from the full-scale residuals (so the search population's own noise is not left in
            the fit), each checked by a full-scale run; the best full-scale run is kept.
        seed: The one seed of every simulation (common random numbers); the calibrated store is
            the scenario with its catalog drawn at this seed (``catalog.seed``).
        replicates: Full-scale runs of the calibrated store behind fit.csv (people drawn anew
            at the seeds :func:`experiments.replicates.replicate_seeds` spawns, the catalog
            kept): ``simulated`` is their mean, ``se`` its standard error.
        progress: Called with ``"search"`` after each search trial, ``"full"`` after each
            full-scale run.

    Returns:
        The calibrated scenario, its fit to every dashboard KPI, the fitted parameters' ranges,
        the notes on parameters left at their default and the cost.
    """
    base = for_period(base, dashboard)
    fits, notes = plan(dashboard.kpis)
    started = time.perf_counter()
    s, stopped = search(base, dashboard, trials, population, seed, lambda: progress("search"))
    searched = time.perf_counter() - started
    x = s.best[1] if s.best is not None else np.zeros(len(s.params))
    s.searching = False
    jac = s.jac if s.jac is not None else s.jacobian(x)  # stopped before any: a few more trials
    kpis, target = list(dashboard.kpis), pd.Series(dashboard.kpis)
    started, runs, best = time.perf_counter(), 0, None
    while True:
        scenario = with_values(base, s.values(x))
        measured = measure(scenario, seed, kpis)
        runs += 1
        progress("full")
        r = np.log(measured.loc[s.kpis, "value"].to_numpy(float)) - s.log_targets
        r = np.where(np.isfinite(r), r, PENALTY)
        if best is None or r @ r < best[0]:
            best = (float(r @ r), x, scenario, measured)
        if runs > polish or close(r, measured.loc[s.kpis], 2.0):
            break
        step = np.linalg.pinv(jac) @ r
        # The search's Jacobian is noisy (finite differences on a small population): a step
        # longer than twice the largest residual (elasticities are about 1) is not trusted
        step *= min(1.0, 2 * np.abs(r).max() / max(np.abs(step).max(), 1e-12))
        x = np.clip(x - step, -s.bound, s.bound)
    _, x, scenario, measured = best
    # The store keeps its catalog (drawn at the seed); fit.csv: new people, a few replicates
    scenario = with_values(scenario, {"catalog.seed": seed})
    if replicates > 1:
        reps = [measure(scenario, r, kpis) for r in replicate_seeds(seed, replicates)]
        for _ in reps:
            progress("full")
        measured = pd.DataFrame({
            "value": np.mean([m["value"] for m in reps], axis=0),
            "se": np.sqrt(np.sum([m["se"] ** 2 for m in reps], axis=0)) / replicates,
            "se_one": np.sqrt(np.mean([m["se"] ** 2 for m in reps], axis=0)),
        }, index=kpis)  # fmt: skip
    full_s = time.perf_counter() - started
    fit = pd.DataFrame({"kpi": kpis, "target": target[kpis].to_numpy(),
                        "simulated": measured["value"].to_numpy(),
                        "se": measured["se"].to_numpy(),
                        "rel_error": (measured["value"] / target[kpis] - 1).to_numpy(),
                        "parameter": [fits.get(k, "") for k in kpis]})  # fmt: skip
    # The ranges: the noise of one period of the store (one run's), not of the replicates' mean
    one = measured["se_one"] if "se_one" in measured else measured["se"]
    rel_sd = (one / measured["value"].abs())[s.kpis].to_numpy()
    cost = Cost(s.used, population, round(searched, 2), runs + replicates * (replicates > 1),
                scenario.population.size,
                round(full_s, 2), stopped)  # fmt: skip
    return Calibration(scenario, seed, fits, notes, fit, uncertainty(s, x, jac, rel_sd), cost)
