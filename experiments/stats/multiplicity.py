"""Multiple testing: which comparisons form the family, their adjusted p-values and intervals.

- :func:`adjust_p_values`: Holm, Benjamini-Hochberg or none over one family of p-values.
- :func:`dunnett_p_values`: Dunnett's many-to-one test of several treatment arms against one
  control on a per-user value (``scipy.stats.dunnett``: pooled variance, multivariate t).
- :func:`adjusted_interval`: an interval that agrees with an adjusted p-value.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

from experiments.stats.distributions import norm_isf

CORRECTIONS = {"holm": "holm", "bh": "fdr_bh", "none": None}
_SCIPY_ALTERNATIVE = {"two-sided": "two-sided", "larger": "greater", "smaller": "less"}


def adjust_p_values(p_values, correction: str) -> np.ndarray:
    """Holm (``"holm"``), Benjamini-Hochberg (``"bh"``) or no (``"none"``) adjustment.

    NaN p-values (undefined comparisons) are left out of the family and stay NaN.
    """
    p_values = np.asarray(p_values, dtype=float)
    adjusted = p_values.copy()
    ok = ~np.isnan(p_values)
    if correction == "holm" and ok.any():
        adjusted[ok] = _holm(p_values[ok])
    elif CORRECTIONS[correction] is not None and ok.any():
        adjusted[ok] = multipletests(p_values[ok], method=CORRECTIONS[correction])[1]
    return adjusted


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment, as statsmodels' ``multipletests(method="holm")``.

    Written out because statsmodels' Holm branch calls ``gc.collect()`` on every call, which
    costs ~70 ms in a process full of simulation objects: most of a small replicate's
    analysis. A test pins it to statsmodels.
    """
    order = np.argsort(p, kind="stable")
    m = len(p)
    stepped = np.maximum.accumulate(np.minimum(p[order] * np.arange(m, 0, -1), 1.0))
    out = np.empty(m)
    out[order] = stepped
    return out


def dunnett_p_values(samples: list[np.ndarray], alternative: str) -> np.ndarray:
    """Dunnett p-values of arms ``1..k`` against arm 0 (``samples[0]`` is the control)."""
    control, *treatments = samples
    result = stats.dunnett(
        *treatments, control=control, alternative=_SCIPY_ALTERNATIVE[alternative],
        rng=np.random.default_rng(0),  # its multivariate-t integral is randomised: fix it
    )  # fmt: skip
    return np.asarray(result.pvalue, dtype=float)


def adjusted_interval(estimate, se, null, p, p_adjusted, alpha, alternative):
    """The interval that excludes ``null`` exactly when ``p_adjusted < alpha``.

    The test's p-value is mapped to a z (``isf(p / 2)`` two-sided, ``isf(p)`` one-sided), which
    gives the standard error the test implied, ``|estimate - null| / z``; the interval is
    ``estimate -+ isf(a') * that``, at ``a' = alpha * p / p_adjusted`` (halved two-sided). Then
    it excludes ``null`` iff ``p < a'`` iff ``p_adjusted < alpha``, whatever the test (z, Welch
    t, Fisher, Dunnett). Without an adjustment (``p_adjusted == p``) and for a z-test this is
    the usual Wald interval. Where the implied standard error is undefined (``p`` of 0 or 1),
    ``se`` stands in.

    Returns:
        ``(low, high)``; the untested side is infinite for a one-sided alternative.
    """
    p, p_adj = float(p), float(p_adjusted)
    if not (np.isfinite(p) and np.isfinite(p_adj) and np.isfinite(estimate)):
        return np.nan, np.nan
    two = alternative == "two-sided"
    level = min(alpha * p / p_adj, 1.0) if p > 0 and p_adj > 0 else alpha
    z_test = norm_isf(p / 2 if two else p)
    implied = abs(estimate - null) / z_test if 0 < z_test < np.inf else se
    half = norm_isf(level / 2 if two else level) * implied
    low = -np.inf if alternative == "smaller" else estimate - half
    high = np.inf if alternative == "larger" else estimate + half
    return float(low), float(high)
