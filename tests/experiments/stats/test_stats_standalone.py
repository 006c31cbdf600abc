"""The statistics layer stands alone: it serves real data, so it imports nothing from sim/."""

import subprocess
import sys
from pathlib import Path

STATS = Path(__file__).resolve().parents[3] / "experiments" / "stats"


def test_importing_every_stats_module_loads_nothing_from_the_simulator():
    modules = sorted(p.stem for p in STATS.glob("*.py") if p.stem != "__init__")
    code = (
        "import sys\n"
        + "".join(f"import experiments.stats.{m}\n" for m in modules)
        + "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sim', 'strategies')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_simulator_and_the_stats_layer_raise_one_error_type():
    from experiments.stats.checks import ConfigError
    from sim.errors import ConfigError as SimConfigError

    assert SimConfigError is ConfigError
