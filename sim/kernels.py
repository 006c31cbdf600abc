"""Compiled kernels of the engine (numba): scatter-adds and a weighted draw's search.

``np.add.at`` is correct with repeated indices but slow (tens of ns per element); these loops
add in the same order, so the sums are bit for bit those of ``np.add.at`` (a test pins them).
:class:`CumulativeSearch` answers ``np.searchsorted(cum, u, side="right")`` through a guide
table, the same indices (a test pins them) at O(1) a key instead of O(log n).
"""

from __future__ import annotations

import importlib
import os
import threading

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


@njit(cache=True)
def _guided(cum, thresholds, guide, step, keys):
    out = np.empty(keys.shape[0], dtype=np.int64)
    last, n = guide.shape[0] - 1, cum.shape[0]
    for i in range(keys.shape[0]):
        x = keys[i]
        b = min(int(x / step), last) if step > 0 else 0
        while b > 0 and thresholds[b] > x:  # a rounding step too far: back to a bound below x
            b -= 1
        while b < last and thresholds[b + 1] <= x:
            b += 1
        j = guide[b]  # the first index with cum > thresholds[b] <= x: at or before the answer
        while j < n and cum[j] <= x:
            j += 1
        out[i] = j
    return out


class CumulativeSearch:
    """``np.searchsorted(cum, keys, side="right")`` for many draws on one fixed ``cum``.

    ``cum`` is a non-decreasing cumulative weight (a weighted draw's inverse CDF). A guide table
    holds, for ``len(cum) // 4`` equal steps of its range, the answer at each step's start;
    a key starts from the step below it and walks forward, so each costs a few reads wherever
    it falls, not a binary search's scattered ones. Exact: the same index as ``searchsorted``
    for every finite key >= 0 (a test pins it; the engine's keys are ``u * cum[-1]``, ``u`` in
    [0, 1)), ``len(cum)`` for keys at or above ``cum[-1]``. Negative, NaN or infinite keys and
    an overflowed ``cum`` are not supported.
    """

    def __init__(self, cum: np.ndarray) -> None:
        self.cum = np.ascontiguousarray(cum, dtype=np.float64)
        size = max(len(self.cum) // 4, 1)
        top = float(self.cum[-1]) if len(self.cum) else 0.0
        self.step = top / size
        self.thresholds = np.arange(size, dtype=np.float64) * self.step
        self.guide = np.searchsorted(self.cum, self.thresholds, side="right").astype(np.int64)

    def __call__(self, keys: np.ndarray) -> np.ndarray:
        """The index of each key, as ``np.searchsorted(cum, keys, side="right")``."""
        keys = np.ascontiguousarray(keys, dtype=np.float64)
        return _guided(self.cum, self.thresholds, self.guide, self.step, keys)


# The engine's kernels called from Python (kernels they call are compiled into them)
ENGINE_KERNELS = {
    "sim.rng": ("_uniform_flat", "_uniform_scalar_k"),
    "sim.kernels": ("_add_values", "_add_one", "_guided"),
    "sim.history": ("_history", "leave_times"),
    "sim.funnel": ("_view_slots",),
}
_preloading: list[threading.Thread] = []


def load_cached(kernels: dict[str, tuple[str, ...]] = ENGINE_KERNELS) -> int:
    """Load the compiled versions of ``kernels`` that numba's on-disk cache holds; how many.

    Only what the cache holds for this code and machine (nothing is compiled here): the
    signatures its index lists. A kernel first called with a new signature compiles as before.
    """
    loaded = 0
    for module, names in kernels.items():
        for name in names:
            fn = getattr(importlib.import_module(module), name)
            index = fn._cache._cache_file._load_index()  # {(signature, machine, code): file}
            codegen = fn.targetctx.codegen()
            for key in list(index):
                signature = tuple(key[0])
                if signature in fn.overloads or fn._cache._index_key(signature, codegen) != key:
                    continue  # loaded already, or compiled for another machine or code
                fn.compile(signature)  # a cache hit: loaded, not compiled
                loaded += 1
    return loaded


def preload() -> None:
    """Start :func:`load_cached` in a thread, once per process.

    A process's first call of a compiled kernel initialises numba and loads its code from the
    cache (about 0.2 s, then 10-50 ms a kernel); started before a world draws its population,
    the loading runs beside the population's random draws (numpy's draws release the GIL).
    A fork waits for it (numba's compiler lock must not be held across a fork), and so does
    the interpreter's exit (the thread is not a daemon: it is not stopped inside numba).
    """
    if _preloading:
        return
    thread = threading.Thread(target=_load_quietly, name="numba-preload")
    _preloading.append(thread)
    os.register_at_fork(before=thread.join)
    thread.start()


def _load_quietly() -> None:
    try:
        load_cached()
    except Exception:  # noqa: BLE001 (numba's cache internals may change: the kernels then load
        pass  # on their first call, as without the preload)
