"""Writing a run's outputs: atomically, file by file, with run.json written last.

Every file is written to a temporary name and renamed into place, so an interrupted run never
leaves a half-written file under its final name; run.json (version, seed, config hash, start
and end time) is written last and marks the folder as complete.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.aggregate import Facts, kpi_table
from sim.kpis import REGISTRY

SCOPES = ("arm", "segment", "channel")


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)``, then rename ``tmp`` to ``path`` (same folder: the rename is atomic)."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _clean(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _records(table: pd.DataFrame) -> dict:
    return {
        str(group): {k: _clean(float(v)) for k, v in row.items() if not math.isnan(v)}
        for group, row in table.iterrows()
    }


def kpi_summary(facts: Facts) -> dict:
    """kpis.json: {"total": {kpi: value}, "by_arm": {arm: {...}}, "by_segment", "by_channel"}."""
    total = kpi_table(facts, []).iloc[0]
    out = {"total": {k: _clean(float(v)) for k, v in total.items()}}
    for scope in SCOPES:
        out[f"by_{scope}"] = _records(kpi_table(facts, [scope]))
    return out


def daily_table(facts: Facts, start: dt.date) -> pd.DataFrame:
    """daily.csv, long: day, date, kpi, scope, group, value (NaN values left out)."""
    parts = []
    for scope in ("total", *SCOPES):
        keys = ["day"] if scope == "total" else ["day", scope]
        wide = kpi_table(facts, keys).reset_index()
        group = "all" if scope == "total" else wide[scope].astype(str)
        long = wide.assign(scope=scope, group=group).melt(
            id_vars=["day", "scope", "group"], value_vars=list(REGISTRY), var_name="kpi"
        )
        parts.append(long.dropna(subset=["value"]))
    daily = pd.concat(parts, ignore_index=True)
    daily["date"] = [(start + dt.timedelta(days=int(d))).isoformat() for d in daily["day"]]
    return daily[["day", "date", "kpi", "scope", "group", "value"]].sort_values(
        ["scope", "group", "kpi", "day"], kind="stable"
    )


def package_version() -> str:
    """The installed funnelsim version."""
    try:
        return version("funnelsim")
    except PackageNotFoundError:
        return "unknown"


def config_hash(config_yaml: str) -> str:
    """SHA-256 of the resolved config, in YAML."""
    return hashlib.sha256(config_yaml.encode()).hexdigest()


def write_json(path: Path, data: dict) -> None:
    """Write JSON atomically (NaN written as null)."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, allow_nan=False)))


def write_parquet(path: Path, table: pd.DataFrame | pa.Table) -> None:
    """Write a DataFrame or Arrow table to Parquet atomically."""
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    # Dictionary-encode only what is categorical already: ids gain nothing from it, and
    # encoding 7 million ids is most of the writing time of a large event log.
    coded = [f.name for f in table.schema if pa.types.is_dictionary(f.type)]
    atomic_write(path, lambda tmp: pq.write_table(table, tmp, use_dictionary=coded))


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    """Write a CSV atomically."""
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))
