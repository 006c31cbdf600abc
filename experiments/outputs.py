"""Writing outputs: atomically, file by file (run.json of a run is written last).

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
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.aggregate import Facts, kpi_table
from sim.kpis import REGISTRY

SCOPES = ("arm", "segment", "channel")


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)``, then rename ``tmp`` onto ``path`` (same folder: the rename is atomic).

    The temporary name keeps the suffix (``.name.tmp.png``) so writers that infer the format
    from it still work; it is removed if writing fails.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def plain(value: Any) -> Any:
    """JSON-ready copy: numpy scalars to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _records(table: pd.DataFrame) -> dict:
    return {
        str(group): {k: float(v) for k, v in row.items() if not math.isnan(v)}
        for group, row in table.iterrows()
    }


def kpi_summary(facts: Facts) -> dict:
    """kpis.json: {"total": {kpi: value}, "by_arm": {arm: {...}}, "by_segment", "by_channel"}."""
    total = kpi_table(facts, []).iloc[0]
    out = {"total": plain({k: float(v) for k, v in total.items()})}
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
    days, at = np.unique(daily["day"].to_numpy(), return_inverse=True)  # a date per day, once
    daily["date"] = np.array([(start + dt.timedelta(days=int(d))).isoformat() for d in days],
                             dtype=object)[at]  # fmt: skip
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


def write_run_json(out_dir: Path, cfg: Any, started: str, **what: str) -> Path:
    """run.json, written last: version, seed, what ran (``what``), config hash, start and end."""
    from omegaconf import OmegaConf

    resolved = OmegaConf.to_yaml(cfg, resolve=True)
    return write_json(out_dir / "run.json", {
        "package": "funnelsim", "version": package_version(), "seed": int(cfg.seed), **what,
        "config_hash": config_hash(resolved),
        "start_time": started, "end_time": dt.datetime.now(dt.UTC).isoformat(),
    })  # fmt: skip


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON (NaN and inf written as null), atomically."""
    text = json.dumps(plain(data), indent=2, allow_nan=False) + "\n"
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_parquet(path: str | Path, table: pd.DataFrame | pa.Table) -> Path:
    """Write a DataFrame or Arrow table to Parquet atomically."""
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    # Dictionary-encode only what is categorical already: ids gain nothing from it, and
    # encoding 7 million ids is most of the writing time of a large event log.
    coded = [f.name for f in table.schema if pa.types.is_dictionary(f.type)]
    return write_atomic(path, lambda tmp: pq.write_table(table, tmp, use_dictionary=coded))


def write_csv(path: str | Path, frame: pd.DataFrame) -> Path:
    """Write a DataFrame as CSV without its index, atomically."""
    return write_atomic(path, lambda tmp: frame.to_csv(tmp, index=False))
