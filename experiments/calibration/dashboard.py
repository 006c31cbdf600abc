"""A store's dashboard: a period and KPI values over it, read from YAML and checked once.

The file::

    name: my_store
    period: {start: "2026-10-01", days: 90}
    kpis:                 # KPI ids of the glossary (sim/kpis.py); totals over the period,
      sessions: 250000    # rates as fractions
      conversion_rate: 0.028

Every bad value raises :class:`ConfigError` naming its field (``dashboard.kpis.sessions``) and
what is allowed, before anything runs.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from sim.errors import ConfigError, check_number
from sim.kpis import REGISTRY

KEYS = ("name", "period", "kpis")
PERIOD_KEYS = ("start", "days")
SIGNED = {"profit"}  # totals that may be negative
NPS_RANGE = (-100.0, 100.0)


@dataclass(frozen=True)
class Dashboard:
    """A store's KPIs over a period (values as on the dashboard: totals, rates as fractions)."""

    name: str
    start: str  # day 0 of the period, YYYY-MM-DD
    days: int
    kpis: dict[str, float]


def is_proportion(kpi: str) -> bool:
    """Whether a KPI is a share in [0, 1]: type proportion, or an id ending in ``_rate``."""
    return REGISTRY[kpi].type == "proportion" or kpi.endswith("_rate")


def check_kpi(kpi: str, value: object, key: str) -> float:
    """Check one KPI value against what its type allows; return it as a float."""
    if kpi not in REGISTRY:
        raise ConfigError(key, "", message=f"{key}: unknown KPI id; the KPI ids are "
                          + ", ".join(REGISTRY))  # fmt: skip
    if is_proportion(kpi):
        return float(check_number(value, key, ge=0, le=1))
    if kpi == "nps":
        return float(check_number(value, key, ge=NPS_RANGE[0], le=NPS_RANGE[1]))
    if kpi in SIGNED:
        return float(check_number(value, key))
    return float(check_number(value, key, ge=0))


def _mapping(node: object, key: str, allowed: str) -> dict:
    if not isinstance(node, dict) or not node:
        raise ConfigError(key, allowed, None if node is None else node)
    return node


def _unknown(node: dict, known: tuple[str, ...], where: str) -> None:
    for key in node:
        if key not in known:
            raise ConfigError(f"{where}.{key}", "", message=f"{where}.{key}: unknown key; the "
                              f"keys of {where} are " + ", ".join(known))  # fmt: skip


def parse(data: object, default_name: str = "calibrated") -> Dashboard:
    """A checked Dashboard from the parsed YAML (a mapping)."""
    node = _mapping(data, "dashboard", "a YAML mapping with period and kpis")
    _unknown(node, KEYS, "dashboard")
    name = node.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("dashboard.name", "a non-empty text", name)
    period = _mapping(node.get("period"), "dashboard.period",
                      "a mapping {start: YYYY-MM-DD, days: N}")  # fmt: skip
    _unknown(period, PERIOD_KEYS, "dashboard.period")
    start = period.get("start")
    if isinstance(start, dt.date):  # YAML reads an unquoted date as a date
        start = start.isoformat()
    try:  # only YYYY-MM-DD (Python's ISO parser also takes 20261001 and week dates)
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(start)):
            raise ValueError(start)
        start = dt.date.fromisoformat(str(start)).isoformat()
    except ValueError:
        raise ConfigError("dashboard.period.start", "a date YYYY-MM-DD", start) from None
    days = period.get("days")
    if days is None:
        raise ConfigError("dashboard.period.days", "an integer >= 1 (the period's length)")
    check_number(days, "dashboard.period.days", ge=1, integer=True)
    kpis = _mapping(node.get("kpis"), "dashboard.kpis", "a mapping of KPI ids to values")
    values = {str(k): check_kpi(str(k), v, f"dashboard.kpis.{k}") for k, v in kpis.items()}
    return Dashboard(name.strip(), str(start), int(days), values)


def load_dashboard(path: str | Path) -> Dashboard:
    """Read and check a dashboard file (ConfigError naming the field if anything is wrong)."""
    path = Path(path)
    if not path.is_file() or path.suffix not in (".yaml", ".yml"):
        raise ConfigError("dashboard", "an existing .yaml file", str(path))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        raise ConfigError("dashboard", "a readable YAML file", str(path)) from None
    return parse(data, default_name=path.stem)
