"""Hydra structured-config schemas of experiments.run, and config -> typed objects.

The scenario schema is :class:`sim.config.Scenario` (sim takes plain dataclasses); this module
registers it, and the run's own schema, in Hydra's ConfigStore. ``load_scenario`` gives a
validated Scenario from the YAML tree without Hydra's app machinery (tests, notebooks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from sim.config import OutputConfig, Scenario, validate
from sim.errors import ConfigError, check_number


@dataclass
class ExperimentConfig:
    """Which experiment to run (``conf/experiment/<name>.yaml``)."""

    name: str = MISSING


@dataclass
class RunConfig:
    """The whole config of ``python -m experiments.run``."""

    seed: int = MISSING
    progress: bool = True
    output: OutputConfig = field(default_factory=OutputConfig)
    scenario: Scenario = field(default_factory=Scenario)
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)


def register() -> None:
    """Register the schemas (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
    cs.store(group="scenario", name="scenario_schema", node=Scenario)


def scenario_of(cfg: DictConfig) -> Scenario:
    """The validated Scenario of a composed run config."""
    return validate(OmegaConf.to_object(cfg.scenario))


def validate_run(cfg: DictConfig) -> None:
    """Check a composed run config once, before anything runs (ConfigError on bad values)."""
    check_number(cfg.seed, "seed", ge=0, integer=True)
    if cfg.experiment.name != "baseline":
        raise ConfigError("experiment", "one of baseline", cfg.experiment.name)
    scenario_of(cfg)


def load_scenario(overrides: list[str] | None = None) -> Scenario:
    """Compose ``conf/config.yaml`` with overrides and return its validated Scenario."""
    from experiments.cli import compose_config

    register()
    cfg = compose_config("config", list(overrides or []))
    return scenario_of(cfg)
