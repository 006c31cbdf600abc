"""The one error type for bad input, and scalar checks that name the key.

It lives in the statistics layer, which must stand alone (it serves real data and imports
nothing from the simulator); it uses the standard library only, so ``sim`` and ``strategies``
import it too (through :mod:`sim.errors`) without pulling in the statistics code.

Every layer raises :class:`ConfigError` for input a user can fix (a config value, a data file, a
command-line argument). The command-line entry points turn it into one line on stderr and exit
code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


class ConfigError(ValueError):
    """Bad input, named by its dotted key and what is allowed.

    Args:
        key: The dotted config key (or column, or argument) that is wrong.
        allowed: What is allowed, in words, e.g. ``"a number in [0, 1]"``.
        got: The value that was given, shown in the message.
        message: The whole line, when "must be" does not fit (an unknown key).
    """

    def __init__(self, key: str, allowed: str, got: Any = None, message: str | None = None) -> None:
        self.key = key
        self.allowed = allowed
        self.got = got
        shown = "" if got is None else f" (got {got!r})"
        super().__init__(message or f"{key}: must be {allowed}{shown}")


def check_number(
    value: Any,
    key: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    integer: bool = False,
) -> float:
    """Return ``value`` if it is a finite number within the given bounds, else raise ConfigError.

    Example:
        >>> check_number(0.5, "scenario.funnel.p_cart", ge=0, le=1)
        0.5
    """
    parts = []
    if ge is not None:
        parts.append(f">= {ge:g}")
    if gt is not None:
        parts.append(f"> {gt:g}")
    if le is not None:
        parts.append(f"<= {le:g}")
    if lt is not None:
        parts.append(f"< {lt:g}")
    kind = "an integer" if integer else "a number"
    allowed = kind + (" " + " and ".join(parts) if parts else "")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(key, allowed, value)
    if not math.isfinite(value) or (integer and int(value) != value):
        raise ConfigError(key, allowed, value)
    if (
        (ge is not None and value < ge)
        or (gt is not None and value <= gt)
        or (le is not None and value > le)
        or (lt is not None and value >= lt)
    ):
        raise ConfigError(key, allowed, value)
    return value


def check_probability(value: Any, key: str) -> float:
    """Return ``value`` if it is a probability in [0, 1], else raise ConfigError."""
    return check_number(value, key, ge=0, le=1)


def check_choice(value: Any, key: str, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ConfigError listing them."""
    choices = list(choices)
    if value not in choices:
        raise ConfigError(key, "one of " + ", ".join(map(str, choices)), value)
    return value
