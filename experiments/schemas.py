"""Hydra schemas of the analysis: the metric list, the SMART target and conf/analyze.yaml.

Kept apart from :mod:`experiments.analyze` so that composing a run's config (which embeds the
analysis and target groups) does not import the statistics layer and scipy.stats.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


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
    role: str | None = None  # primary | secondary | guardrail (default: see Analysis)


@dataclass
class AnalysisConf:
    """Schema of the ``analysis`` group: the metric list."""

    metrics: list[MetricConf] = field(default_factory=list)
    skip_missing: bool = False  # skip metrics whose columns the input lacks (default list only)


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
    drop_missing: bool = False
    analysis: AnalysisConf = field(default_factory=AnalysisConf)
    target: TargetConf = field(default_factory=TargetConf)


def register_schemas() -> None:
    """Register conf/analyze.yaml's schema and the analysis group's in Hydra's ConfigStore."""
    store = ConfigStore.instance()
    store.store(name="analyze_schema", node=AnalyzeConf)
    store.store(group="schema", name="analysis", node=AnalysisConf)
