"""Replicates: one SeedSequence spawned per replicate, run on a swappable backend, resumable.

Each replicate ``i`` gets the i-th child of ``SeedSequence(seed)`` and returns a tidy
DataFrame; its result is written atomically to ``<folder>/rep_<i>.parquet`` as soon as it is
done. Re-running into the same folder skips the replicates whose file exists, so an
interrupted run resumes where it stopped and never reads a torn file. The numbers depend only
on the seed and the replicate's index, so every backend (serial, local processes, Ray) and
every worker count gives identical results.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from experiments.outputs import write_parquet
from sim.errors import ConfigError

BACKENDS = ("serial", "processes", "ray")
Task = Callable[[int, int], pd.DataFrame]
"""A replicate: ``task(index, seed) -> DataFrame`` (a picklable top-level callable)."""


def replicate_seeds(seed: int, count: int) -> list[int]:
    """The 63-bit seed of each replicate: child ``i`` of ``SeedSequence(seed)``."""
    children = np.random.SeedSequence(seed).spawn(count)
    return [int(c.generate_state(2, np.uint64)[0] >> np.uint64(1)) for c in children]


def _path(folder: Path, index: int) -> Path:
    return folder / f"rep_{index:05d}.parquet"


def _run_one(task: Task, index: int, seed: int) -> tuple[int, pd.DataFrame]:
    frame = task(index, seed)
    return index, frame.assign(replicate=index, seed=seed)


def _serial(task: Task, jobs: list[tuple[int, int]], workers: int) -> Iterator:
    for index, seed in jobs:
        yield _run_one(task, index, seed)


def _processes(task: Task, jobs: list[tuple[int, int]], workers: int) -> Iterator:
    pool = ProcessPoolExecutor(max_workers=workers)
    try:
        pending = {pool.submit(_run_one, task, i, s) for i, s in jobs}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
    finally:  # on Ctrl-C or an error: drop what has not started, do not wait for it
        pool.shutdown(wait=False, cancel_futures=True)


def _ray(task: Task, jobs: list[tuple[int, int]], workers: int) -> Iterator:
    import ray

    if not ray.is_initialized():
        # RAY_ADDRESS (e.g. ray://head:10001 or auto) points at a cluster; else a local one.
        ray.init(address=os.environ.get("RAY_ADDRESS"), num_cpus=None if
                 os.environ.get("RAY_ADDRESS") else workers, include_dashboard=False,
                 log_to_driver=False)  # fmt: skip
    remote = ray.remote(_run_one)
    pending = [remote.remote(task, i, s) for i, s in jobs]
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)


MAPS = {"serial": _serial, "processes": _processes, "ray": _ray}


def run_replicates(
    task: Task,
    count: int,
    seed: int,
    folder: Path,
    backend: str = "serial",
    workers: int = 2,
    progress: bool = True,
    desc: str = "replicates",
) -> pd.DataFrame:
    """Run ``count`` replicates of ``task`` (skipping finished ones) and return all rows.

    Args:
        task: ``task(index, seed) -> DataFrame``; top-level function or picklable object.
        count: Number of replicates.
        seed: The run's seed; replicate seeds are spawned from it.
        folder: Where each replicate's file goes (created).
        backend: serial, processes or ray.
        workers: Worker processes (processes, local Ray).
        progress: Show a progress bar on stderr.
        desc: The progress bar's label.

    Returns:
        The rows of every replicate, in replicate order, with ``replicate`` and ``seed`` columns.
    """
    if backend not in MAPS:
        raise ConfigError("backend", "one of " + ", ".join(BACKENDS), backend)
    folder.mkdir(parents=True, exist_ok=True)
    seeds = replicate_seeds(seed, count)
    jobs = [(i, s) for i, s in enumerate(seeds) if not _path(folder, i).exists()]
    frames = {}
    with tqdm(total=count, initial=count - len(jobs), desc=desc, unit="rep",
              disable=not progress, file=sys.stderr) as bar:  # fmt: skip
        for index, frame in MAPS[backend](task, jobs, workers):
            write_parquet(_path(folder, index), frame)
            # read back now, while the workers run (the same frame a resumed run reads)
            frames[index] = pd.read_parquet(_path(folder, index))
            bar.update(1)
    return pd.concat([frames.get(i) if i in frames else pd.read_parquet(_path(folder, i))
                      for i in range(count)], ignore_index=True)  # fmt: skip
