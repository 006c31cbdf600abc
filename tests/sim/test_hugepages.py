"""Importing sim, or only the statistics layer, switches numpy's huge-page advice off, unless the
user set numpy's own switch."""

import os
import subprocess
import sys

import pytest

PROBE = (
    "import numpy as np, {module}; core = getattr(np, '_core', None) or np.core; "
    "print(core.multiarray._get_madvise_hugepage())"
)


@pytest.mark.parametrize("module", ["sim", "experiments.stats.analysis"])
@pytest.mark.parametrize(("env", "expected"), [(None, "False"), ("1", "True"), ("0", "False")])
def test_importing_turns_the_advice_off_unless_numpy_madvise_hugepage_is_set(module, env, expected):
    environ = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if env is not None:
        environ["NUMPY_MADVISE_HUGEPAGE"] = env
    probe = PROBE.format(module=module)
    run = subprocess.run([sys.executable, "-c", probe], env=environ, capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert run.stdout.strip() == expected
