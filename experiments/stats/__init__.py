"""The statistics layer: reads DESIGN.md's per-user table, needs nothing from the simulator.

- ``comparisons``: two-sample tests from sufficient statistics, vectorised (z, Welch, delta method).
- ``metrics``: Proportion, Mean (CUPED, Mann-Whitney, bootstrap), RatioOfMeans.
- ``analysis``: Analysis of 2+ arms, SRM check, Holm / Benjamini-Hochberg.
- ``sequential``: naive peek, O'Brien-Fleming alpha spending, mSPRT / confidence sequences.
- ``power``: sample size, MDE, power, duration, power curves, simulated power.
- ``targets``: SMART targets (met / not met / inconclusive, probability, achievable).
- ``lifetime``: CLV from a transaction log (RFM; BG/NBD and Gamma-Gamma, pinned to lifetimes).
- ``checks``: the one bad-input error (ConfigError) and scalar checks naming the key.
"""

import os

import numpy as np


def no_hugepage_advice() -> None:
    """Stop numpy advising transparent huge pages for its large arrays, unless the user chose.

    On Linux numpy marks every array of 4 MB or more ``madvise(MADV_HUGEPAGE)``. Where the
    kernel's THP defrag policy is ``madvise`` (a common default), the first touch of such an
    array can stall in memory compaction. On this project's 2-core machine:

    - the simulator (2026-12-03, default store, 1M agents, event log on): the log's assembly
      1.8 s with the advice and 0.65 s without; ``benchmarks/bench_engine.py``'s engine time
      9.7-9.8 s against 8.5-8.6 s (log off: 7.4-7.5 s against 7.3 s);
    - the analysis (2026-12-04, ``benchmarks/bench_stats.py``, 10 metrics on 10M users):
      2.61-2.79 s with the advice, 2.10-2.16 s without.

    Results are the same bits either way. Called when this package (or :mod:`sim`) is imported;
    ``NUMPY_MADVISE_HUGEPAGE`` set in the environment (numpy's own switch, read when numpy is
    imported) is left as the user set it.
    """
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return
    core = getattr(np, "_core", None) or np.core  # numpy 2 / numpy 1.26
    toggle = getattr(core.multiarray, "_set_madvise_hugepage", None)
    if toggle is not None:
        toggle(False)


no_hugepage_advice()
