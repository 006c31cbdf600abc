"""Compiled scatter-adds for the engine's per-agent counters (numba).

``np.add.at`` is correct with repeated indices but slow (tens of ns per element); these loops
add in the same order, so the sums are bit for bit those of ``np.add.at`` (a test pins them).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _add_values(target, index, values):
    for j in range(index.shape[0]):
        target[index[j]] += values[j]


@njit(cache=True)
def _add_one(target, index):
    for j in range(index.shape[0]):
        target[index[j]] += 1


def add_at(target: np.ndarray, index: np.ndarray, values=1) -> None:
    """``np.add.at(target, index, values)`` for a 1-D target and an integer index array."""
    index = np.ascontiguousarray(index)
    if not len(index):
        return
    if np.ndim(values) == 0:
        if values == 1:
            _add_one(target, index)
            return
        values = np.full(len(index), values)
    _add_values(target, index, np.ascontiguousarray(values, dtype=target.dtype))
