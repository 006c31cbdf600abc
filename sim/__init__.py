"""funnelsim package."""

import os

import numpy as np


def _no_hugepage_advice() -> None:
    """Stop numpy advising transparent huge pages for its large arrays, unless the user chose.

    On Linux numpy marks every array of 4 MB or more ``madvise(MADV_HUGEPAGE)``. Where the
    kernel's THP defrag policy is ``madvise`` (a common default), the first touch of such an
    array can stall in memory compaction once a long run has fragmented memory. On this
    project's 2-core machine (2026-12-03), in the default store at 1M agents with the event
    log, the log's assembly took 1.8 s with the advice and 0.65 s without, and a script running
    it (imports included) 9.8-9.9 s against 8.3-8.5 s; ``benchmarks/bench_engine.py`` gave
    engine times of 9.7-9.8 s against 8.5-8.6 s (log off: 7.4-7.5 s against 7.3 s). Four A/B
    replicates of 40,000 agents were unchanged. Results are the same bits either way.
    ``NUMPY_MADVISE_HUGEPAGE`` set in the environment (numpy's own switch, read when numpy is
    imported) is left as the user set it.
    """
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return
    core = getattr(np, "_core", None) or np.core  # numpy 2 / numpy 1.26
    toggle = getattr(core.multiarray, "_set_madvise_hugepage", None)
    if toggle is not None:
        toggle(False)


_no_hugepage_advice()
