"""Hydra structured-config schemas of experiments.run, and config -> typed objects.

The scenario schema is :class:`sim.config.Scenario` (sim takes plain dataclasses); this module
registers it, and the run's own schema, in Hydra's ConfigStore. ``load_scenario`` gives a
validated Scenario from the YAML tree without Hydra's app machinery (tests, notebooks).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf

from experiments.schemas import AnalysisConf, TargetConf
from experiments.schemas import register_schemas as register_analysis
from sim.config import OutputConfig, Scenario, validate
from sim.errors import ConfigError, check_choice, check_number

EXPERIMENTS = ("baseline", "whatif", "ab_test", "power_sim", "clv", "prices", "incrementality",
               "budget", "promotion")  # fmt: skip
BACKENDS = ("serial", "processes", "ray")


@dataclass
class ExperimentConfig:
    """Which experiment to run (``conf/experiment/<name>.yaml``) and its analysis settings."""

    name: str = MISSING
    truth: bool = True  # ab_test: also run everyone / no one treated for the true effect
    sizes: list[int] = field(default_factory=list)  # power_sim: population sizes
    # power_sim: a size's replicates branch at day 0 from one store warmed up once (seed: the
    # run's), each with its own split and window; false: a new store for every replicate
    shared_store: bool = True
    price_changes: list[float] = field(default_factory=list)  # prices: relative, 0.1 = +10%
    budget_sd: float = 0.0  # incrementality: SD of the paid budgets' daily log multiplier
    budget_corr: float = 0.0  # incrementality: its day-to-day AR(1) correlation
    channels: list[str] = field(default_factory=list)  # budget: paid channels to sweep
    budget_scales: list[float] = field(default_factory=list)  # budget: x today's budget
    total_scale: float = 1.0  # budget: the split's total, x today's total spend
    alpha: float = 0.05
    correction: str = "holm"
    population: str = "exposed"  # exposed users (DESIGN.md) or all (intention to treat)
    sequential_metric: str | None = None  # default: the (first) primary metric
    look_every: int = 7  # days between sequential looks (O'Brien-Fleming bounds cost grows fast)
    # mSPRT mixing sd tau, fixed before the test: planned_mde (relative lift) x the control's
    # value at the first look; default the target's lift when the target is on the sequential
    # metric, else a non-inferiority metric's margin, else 10%. msprt_tau: absolute override.
    planned_mde: float | None = None
    msprt_tau: float | None = None


@dataclass
class RunConfig:
    """The whole config of ``python -m experiments.run``."""

    seed: int = MISSING
    progress: bool = True
    output: OutputConfig = field(default_factory=OutputConfig)
    scenario: Scenario = field(default_factory=Scenario)
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    strategy: dict[str, Any] = field(default_factory=dict)
    analysis: AnalysisConf = field(default_factory=AnalysisConf)
    target: TargetConf = field(default_factory=TargetConf)
    split: float = 0.5
    scenario_file: str | None = None  # a scenario YAML that replaces conf/scenario/default.yaml
    replicates: int = 1
    backend: str = "serial"
    workers: int = 2


def register() -> None:
    """Register the schemas (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
    cs.store(group="scenario", name="scenario_schema", node=Scenario)
    register_analysis()


def check_known_keys(node: Any, schema: Any, prefix: str) -> None:
    """Raise ConfigError for a key the schema does not have (``+scenario.new_key=1`` included).

    Hydra's ``+key=value`` adds keys even to a structured config, and turning the config into
    dataclasses drops them silently; so every key is checked against the dataclass fields, and
    the values of ``dict[str, X]`` fields against ``X``. A typo never runs as if unset.
    """
    if isinstance(schema, type) and dataclasses.is_dataclass(schema):
        hints = typing.get_type_hints(schema)
        for key in node:
            full = f"{prefix}{key}"
            if key not in hints:
                known = ", ".join(sorted(hints))
                where = prefix.rstrip(".") or "the top level"
                raise ConfigError(full, "", message=f"{full}: unknown key; the keys of {where} "
                                  f"are {known}")  # fmt: skip
            check_known_keys(node[key], hints[key], full + ".")
    elif typing.get_origin(schema) is dict and isinstance(node, DictConfig):
        value_type = typing.get_args(schema)[1]
        for key in node:
            check_known_keys(node[key], value_type, f"{prefix}{key}.")
    elif typing.get_origin(schema) is list and isinstance(node, ListConfig):
        for i, item in enumerate(node):
            check_known_keys(item, typing.get_args(schema)[0], f"{prefix.rstrip('.')}[{i}].")
    elif typing.get_origin(schema) in (typing.Union, types.UnionType):
        for option in typing.get_args(schema):
            if dataclasses.is_dataclass(option) and isinstance(node, DictConfig):
                check_known_keys(node, option, prefix)


def scenario_of(cfg: DictConfig) -> Scenario:
    """The validated Scenario of a composed run config."""
    return validate(OmegaConf.to_object(cfg.scenario))


def validate_run(cfg: DictConfig) -> None:
    """Check a composed run config once, before anything runs (ConfigError on bad values)."""
    from experiments import worlds

    check_known_keys(cfg, RunConfig, "")
    check_number(cfg.seed, "seed", ge=0, integer=True)
    check_choice(cfg.experiment.name, "experiment", EXPERIMENTS)
    check_number(cfg.replicates, "replicates", ge=1, integer=True)
    check_number(cfg.workers, "workers", ge=1, integer=True)
    check_choice(cfg.backend, "backend", BACKENDS)
    check_number(cfg.split, "split", gt=0, lt=1)
    scenario = scenario_of(cfg)
    name = cfg.experiment.name  # no strategy is allowed: a what-if of nothing, an A/A test
    arms = {"whatif": ("all",), "baseline": ("control",), "clv": ("control",),
            "prices": ("all",), "incrementality": ("all",), "budget": ("all",),
            "promotion": ("all",)}.get(
        name, worlds.AB_ARMS)  # fmt: skip
    worlds.check_strategies(cfg.strategy, arms)
    check_number(cfg.experiment.look_every, "experiment.look_every", ge=1, integer=True)
    for key in ("planned_mde", "msprt_tau"):
        if cfg.experiment[key] is not None:
            check_number(cfg.experiment[key], f"experiment.{key}", gt=0)
    if name in ("ab_test", "power_sim"):
        from experiments import abtest  # the statistics layer: only for the runs that use it

        analysis = abtest.analysis_of(cfg, cfg.split)
        abtest.target_of(cfg, analysis, scenario)
    if name == "incrementality":
        check_number(cfg.experiment.budget_sd, "experiment.budget_sd", ge=0)
        check_number(cfg.experiment.budget_corr, "experiment.budget_corr", ge=0, lt=1)
    if name == "budget":
        if not cfg.experiment.channels:
            raise ConfigError("experiment.channels", "a non-empty list of paid channels")
        for i, channel in enumerate(cfg.experiment.channels):
            check_choice(channel, f"experiment.channels[{i}]", sorted(scenario.channels))
        if not cfg.experiment.budget_scales:
            raise ConfigError("experiment.budget_scales", "a non-empty list of numbers >= 0")
        for i, scale in enumerate(cfg.experiment.budget_scales):
            check_number(scale, f"experiment.budget_scales[{i}]", ge=0)
        check_number(cfg.experiment.total_scale, "experiment.total_scale", gt=0)
    if name == "prices":
        if not cfg.experiment.price_changes:
            raise ConfigError("experiment.price_changes", "a non-empty list of price changes")
        for i, change in enumerate(cfg.experiment.price_changes):
            key = f"experiment.price_changes[{i}]"
            check_number(change, key, gt=-1)
            if change == 0:
                raise ConfigError(key, "a price change other than 0 (today's prices always run)")
    if name == "promotion" and not scenario.promotions:
        raise ConfigError("promotion", "at least one promotion of conf/promotion/ "
                          "(e.g. promotion=[winter_sale])")  # fmt: skip
    if name == "power_sim":
        if not cfg.experiment.sizes:
            raise ConfigError("experiment.sizes", "a non-empty list of population sizes")
        for i, size in enumerate(cfg.experiment.sizes):
            check_number(size, f"experiment.sizes[{i}]", gt=0, integer=True)
        # a store warmed once must branch into the A/B worlds (sim.world.World.branch)
        why = cfg.experiment.shared_store and worlds.why_not_shared(
            scenario, cfg.strategy, worlds.AB_ARMS)  # fmt: skip
        if why:
            raise ConfigError("experiment.shared_store", f"false when {why}", True)


def load_scenario(overrides: list[str] | None = None) -> Scenario:
    """Compose ``conf/config.yaml`` with overrides and return its validated Scenario."""
    from experiments.cli import compose_config

    register()
    cfg = compose_config("config", list(overrides or []))
    return scenario_of(cfg)
