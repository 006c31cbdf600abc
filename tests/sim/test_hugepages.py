"""Importing sim switches numpy's huge-page advice off, unless the user set numpy's own switch."""

import os
import subprocess
import sys

import pytest

PROBE = (
    "import numpy as np, sim; core = getattr(np, '_core', None) or np.core; "
    "print(core.multiarray._get_madvise_hugepage())"
)


@pytest.mark.parametrize(("env", "expected"), [(None, "False"), ("1", "True"), ("0", "False")])
def test_sim_turns_the_advice_off_unless_numpy_madvise_hugepage_is_set(env, expected):
    environ = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if env is not None:
        environ["NUMPY_MADVISE_HUGEPAGE"] = env
    run = subprocess.run([sys.executable, "-c", PROBE], env=environ, capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert run.stdout.strip() == expected
