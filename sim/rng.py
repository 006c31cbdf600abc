"""Keyed random draws: an agent's k-th number for a mechanism is a pure function of its key.

``uniform(seed, mechanism, agent_ids, k)`` hashes ``(seed, mechanism, agent id, k)`` with the
splitmix64 finaliser, vectorised over uint64 arrays. Because no stream is consumed, a strategy that
changes one agent's path (one more visit, one fewer email) leaves every other agent's numbers as
they were, and a world with and a world without a strategy share common random numbers agent by
agent (DESIGN.md, "Randomness").

Aggregate choices that do not belong to one agent (which members of a fixed audience an ad
campaign reaches on a given day) use a ``numpy.random.Generator`` keyed by
``(seed, mechanism, day)`` from :func:`generator`: the audience does not depend on any agent's
state, so those draws are common to every world too.
"""

from __future__ import annotations

import zlib

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_K_MULT = np.uint64(0xD6E8FEB86659FD93)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_TO_UNIT = 1.0 / 2.0**53
_INT64 = (np.dtype(np.int64), np.dtype(np.uint64))  # passed to the kernels as they are


def mechanism_id(name: str) -> int:
    """Stable 32-bit id for a mechanism name (CRC32, identical on every platform and run)."""
    return zlib.crc32(name.encode())


def _mix(x: np.ndarray) -> np.ndarray:
    """Splitmix64 finaliser (Steele, Lea & Flood 2014), in place on a uint64 array."""
    x ^= x >> _S30
    x *= _M1
    x ^= x >> _S27
    x *= _M2
    x ^= x >> _S31
    return x


def stream_key(seed: int, mechanism: str) -> np.uint64:
    """The 64-bit key of one mechanism within one run."""
    with np.errstate(over="ignore"):
        base = np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64)
        base = _mix(base + _GOLDEN * np.uint64(mechanism_id(mechanism) + 1))
    return base[0]


def uniform(key: np.uint64, ids: np.ndarray, k: np.ndarray | int = 0) -> np.ndarray:
    """Uniform numbers in [0, 1), one per id, as a pure function of (key, id, k).

    Args:
        key: A :func:`stream_key`.
        ids: Agent ids (any integer array).
        k: The draw's counter for each agent (scalar or array broadcastable to ``ids``), e.g. the
            agent's session number times the number of slots plus the slot.

    Returns:
        float64 array of the same shape as ``ids``.

    The hash runs in one compiled pass (numba, :func:`uniform_one`); :func:`uniform_numpy`
    is the same function in numpy, and a test pins the two bit for bit.
    """
    if (
        type(ids) is np.ndarray and type(k) is np.ndarray and ids.ndim == 1
        and k.shape == ids.shape and ids.dtype in _INT64 and k.dtype in _INT64
        and ids.flags.c_contiguous and k.flags.c_contiguous
    ):  # fmt: skip
        return _uniform_flat(np.uint64(key), ids, k)  # the common case: no reshaping or casts
    ids = np.asarray(ids)
    k = np.asarray(k)
    if k.ndim == 0:
        out = _uniform_scalar_k(np.uint64(key), _flat(ids), np.uint64(k.astype(np.uint64)))
        return out.reshape(ids.shape)
    ids_b, k_b = np.broadcast_arrays(ids, k)
    out = _uniform_flat(np.uint64(key), _flat(ids_b), _flat(k_b))
    return out.reshape(ids_b.shape)


def _flat(a: np.ndarray) -> np.ndarray:
    """A contiguous 1-d integer array for the kernels.

    64-bit integers pass as they are (the kernels cast each to uint64, as ``astype`` does);
    other types are cast here.
    """
    a = np.ascontiguousarray(a).reshape(-1)
    return a if a.dtype in _INT64 else a.astype(np.uint64)


def uniform_numpy(key: np.uint64, ids: np.ndarray, k: np.ndarray | int = 0) -> np.ndarray:
    """:func:`uniform` in plain numpy (the reference the compiled version is pinned to)."""
    with np.errstate(over="ignore"):
        x = ids.astype(np.uint64) * _GOLDEN
        x += np.asarray(k, dtype=np.uint64) * _K_MULT
        x ^= key
        _mix(x)
        x += _GOLDEN
        _mix(x)
    return (x >> np.uint64(11)).astype(np.float64) * _TO_UNIT


@njit(cache=True)
def _mix64(x):
    """The splitmix64 finaliser of :func:`_mix`, on one uint64 (compiled)."""
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(cache=True)
def uniform_one(key, i, k):
    """:func:`uniform` of one agent ``i`` and counter ``k``, for compiled kernels (same bits)."""
    x = np.uint64(i) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(k) * np.uint64(0xD6E8FEB86659FD93)
    x = _mix64(x ^ key) + np.uint64(0x9E3779B97F4A7C15)
    return float(_mix64(x) >> np.uint64(11)) * (1.0 / 2.0**53)


@njit(cache=True)
def _uniform_flat(key, ids, k):
    out = np.empty(ids.shape[0])
    for j in range(ids.shape[0]):
        out[j] = uniform_one(key, ids[j], k[j])
    return out


@njit(cache=True)
def _uniform_scalar_k(key, ids, k):
    out = np.empty(ids.shape[0])
    for j in range(ids.shape[0]):
        out[j] = uniform_one(key, ids[j], k)
    return out


def exponential(key: np.uint64, ids: np.ndarray, k: np.ndarray | int = 0) -> np.ndarray:
    """Standard exponential draws (mean 1) keyed like :func:`uniform`."""
    return -np.log1p(-uniform(key, ids, k))


def normal(key: np.uint64, ids: np.ndarray, k: np.ndarray | int = 0) -> np.ndarray:
    """Standard normal draws keyed like :func:`uniform` (Box-Muller on two keyed uniforms)."""
    k = np.asarray(k, dtype=np.uint64) * np.uint64(2)
    u1 = uniform(key, ids, k)
    u2 = uniform(key, ids, k + np.uint64(1))
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)


def generator(seed: int, mechanism: str, *keys: int) -> np.random.Generator:
    """A Generator for one aggregate draw, keyed by (seed, mechanism, keys...)."""
    entropy = [seed & 0xFFFFFFFFFFFFFFFF, mechanism_id(mechanism), *[int(k) for k in keys]]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))
