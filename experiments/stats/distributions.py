"""The normal and t distributions' tails and quantiles without scipy.stats' per-call checks.

``scipy.stats.norm.sf`` and its kin check and broadcast their arguments in Python on every call
(about 30 us), which is most of their cost on the few numbers an A/B analysis asks for: a
50,000-user analysis of 8 metrics makes about 100 such calls, a third of its time, and
power_sim makes a thousand analyses. These call the same kernels scipy.stats calls
(``scipy.special.ndtr``, ``ndtri``, ``stdtr``, ``stdtrit``) with the same arithmetic, so they
give the same bits wherever scipy.stats is defined, and NaN where it gives NaN (a test pins them
to scipy.stats on a grid with infinities, NaN, zeros and bad degrees of freedom).
"""

from __future__ import annotations

import numpy as np
from scipy import special


def norm_sf(x):
    """``scipy.stats.norm.sf(x)``."""
    return special.ndtr(-np.asarray(x, dtype=float))[()]


def norm_cdf(x):
    """``scipy.stats.norm.cdf(x)``."""
    return special.ndtr(np.asarray(x, dtype=float))[()]


def norm_ppf(q):
    """``scipy.stats.norm.ppf(q)`` (scipy adds 0 to the kernel's value: no negative zero)."""
    return (special.ndtri(np.asarray(q, dtype=float)) + 0.0)[()]


def norm_isf(q):
    """``scipy.stats.norm.isf(q)``."""
    return (-special.ndtri(np.asarray(q, dtype=float)) + 0.0)[()]


def t_sf(x, df):
    """``scipy.stats.t.sf(x, df)``: NaN where ``df`` is not positive."""
    df = np.asarray(df, dtype=float)
    return np.where(df > 0, special.stdtr(df, -np.asarray(x, dtype=float)), np.nan)[()]


def t_cdf(x, df):
    """``scipy.stats.t.cdf(x, df)``."""
    df = np.asarray(df, dtype=float)
    return np.where(df > 0, special.stdtr(df, np.asarray(x, dtype=float)), np.nan)[()]


def t_ppf(q, df):
    """``scipy.stats.t.ppf(q, df)`` (the ends of the support at 0 and 1, as scipy.stats)."""
    df, q = np.asarray(df, dtype=float), np.asarray(q, dtype=float)
    x = np.where(q == 0, -np.inf, np.where(q == 1, np.inf, special.stdtrit(df, q) + 0.0))
    return np.where(df > 0, x, np.nan)[()]  # [()]: a 0-d result as a numpy scalar
