"""Bad-input errors and checks for the simulator: the statistics layer's, re-exported.

One error type serves every layer (the command lines turn it into one line and exit code 2); it
is defined in :mod:`experiments.stats.checks` so that the statistics layer imports nothing from
``sim``.
"""

from experiments.stats.checks import ConfigError, check_choice, check_number, check_probability

__all__ = ["ConfigError", "check_choice", "check_number", "check_probability"]
