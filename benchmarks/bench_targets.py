"""Issue 13's performance table: every measure, the issue's starting figure, its target, now.

Runs the other benchmarks in fresh processes, one after another (a quiet machine, one sitting):

- ``bench_engine.py``'s child at 100k and 1M agents, event log on and off (engine seconds,
  sessions, peak memory); ``--runs`` times each at 1M, alternating on and off;
- the whole ``python -m experiments.run`` process at 1M agents with the event log on;
- ``bench_compare.py`` (Mesa 3 and plain SimPy toys against funnelsim at 100k agents);
- ``bench_stats.py`` (10 metrics on 10 million users);
- ``bench_power_sim.py`` (``--replicates``; under 1,000 the figure is scaled to 1,000 and
  marked so).

Prints one row per measure: the figure the issue started from, its target, the runs of this
sitting and whether the target is met. Nothing is asserted; the figures go into README and the
closing note. The cost growth is the exponent of engine time (log off) from 100k to 1M agents
(below 1 counts as met: fixed costs spread over more sessions).

``--against DIR`` measures a second checkout (another commit, e.g. ``git worktree add --detach
DIR <commit>``) in the same sitting, each measure alternating between the two, and prints its
figures beside this code's: the only fair before-and-after on a machine whose speed drifts
between sittings.

Before and after the sitting it prints the machine's cost of touching fresh memory (256 MB
first written in a new process, ms per MB). On this project's 2-core machine (2026-12-03) that
ranged from 0.2 ms/MB (memory another process had just freed) to over 10 ms/MB (memory the
host had taken back after some idle seconds): a 1M-agent run touches about 1 GB, so the same
code's figures move by seconds with it.

Usage: python benchmarks/bench_targets.py [--runs 2] [--replicates 1000] [--skip NAME ...]
       [--against DIR]   (NAME: compare, stats, power_sim)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"

# measure: (the starting figure, target text, is the target met by value v)
TARGETS = {
    "engine s, 1M, log off": ("6.5", "<= 2.2", lambda v: v <= 2.2),
    "engine s, 1M, log on": ("8.5", "<= 3.0", lambda v: v <= 3.0),
    "whole process s, 1M, log on": ("11.9", "<= 5", lambda v: v <= 5.0),
    "vs Mesa 3, whole process, log off (x faster)": ("~6", ">= 14", lambda v: v >= 14),
    "vs plain SimPy, per session (x faster)": ("~2", ">= 5", lambda v: v >= 5),
    "sessions/s, engine, log off, 1M": ("0.29M", ">= 1M", lambda v: v >= 1e6),
    "peak MB, 1M, log off": ("711", "<= 600", lambda v: v <= 600),
    "power_sim s, 1,000 x 50k x 30 days, 2 workers": ("191", "<= 60", lambda v: v <= 60),
    "analysis s, 10 metrics x 10M users": ("4.8", "<= 3", lambda v: v <= 3.0),
    "cost growth exponent, 100k -> 1M (engine, log off)": (
        "flat per session", "1.00 +- 0.05", lambda v: v <= 1.05),  # below 1: fixed costs spread
}  # fmt: skip


PROBE = """
import time, numpy as np
start = time.perf_counter()
np.ones(32 * 2**20)
print((time.perf_counter() - start) * 1e3 / 256)
"""


def probe() -> float:
    """The machine's cost of first touching fresh memory: ms per MB, 256 MB in a new process."""
    return float(_run([sys.executable, "-c", PROBE])[1])


def _run(cmd: list[str], root: Path = ROOT) -> tuple[float, str]:
    """Run a command from a checkout's root (its code first on the path); wall s and stdout."""
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode:
        tail = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        raise SystemExit(f"{' '.join(cmd[1:3])} failed: {tail}")
    return wall, proc.stdout


def _json(out: str) -> dict:
    return json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])


def engine(size: int, events: str, root: Path = ROOT) -> dict:
    """One bench_engine child: engine_s, write_s, sessions, peak_mb."""
    script = root / "benchmarks" / "bench_engine.py"
    return _json(_run([sys.executable, str(script), "--child", str(size), events], root)[1])


def whole_process(size: int, root: Path = ROOT) -> float:
    """Wall seconds of ``python -m experiments.run`` with the event log on."""
    with tempfile.TemporaryDirectory() as out:
        wall, _ = _run([sys.executable, "-m", "experiments.run",
                        f"scenario.population.size={size}", "output.events=true",
                        "progress=false", f"hydra.run.dir={out}"], root)  # fmt: skip
    return wall


def measure(args, root: Path, got: dict[str, list[float]], notes: dict[str, str]):
    """One checkout's measures into ``got``: a generator that yields before each measure."""
    small = None
    for _ in range(args.runs):
        for events in ("off", "on"):
            yield "engine"
            small = small or engine(100_000, "off", root)
            r = engine(1_000_000, events, root)
            if events == "off":
                got["engine s, 1M, log off"].append(r["engine_s"])
                got["sessions/s, engine, log off, 1M"].append(r["sessions"] / r["engine_s"])
                got["peak MB, 1M, log off"].append(r["peak_mb"])
                got["cost growth exponent, 100k -> 1M (engine, log off)"].append(
                    math.log(r["engine_s"] / small["engine_s"]) / math.log(10))  # fmt: skip
            else:
                got["engine s, 1M, log on"].append(r["engine_s"])
        yield "process"
        got["whole process s, 1M, log on"].append(whole_process(1_000_000, root))
    bench = root / "benchmarks"
    if "compare" not in args.skip:
        yield "compare"
        _, out = _run([sys.executable, str(bench / "bench_compare.py")], root)
        mesa = re.search(r"vs mesa: whole process ([\d.]+)x", out)
        simpy = re.search(r"vs simpy: whole process [\d.]+x faster, per session ([\d.]+)x", out)
        notes["vs Mesa 3, whole process, log off (x faster)"] = "100k agents, 180 days"
        notes["vs plain SimPy, per session (x faster)"] = "100k agents, 180 days"
        if mesa:
            got["vs Mesa 3, whole process, log off (x faster)"].append(float(mesa.group(1)))
        else:
            notes["vs Mesa 3, whole process, log off (x faster)"] = "Mesa 3 not installed"
        if simpy:
            got["vs plain SimPy, per session (x faster)"].append(float(simpy.group(1)))
    if "stats" not in args.skip:
        yield "stats"
        _, out = _run([sys.executable, str(bench / "bench_stats.py")], root)
        got["analysis s, 10 metrics x 10M users"].append(
            _number(r"analysis wall time: ([\d.]+) s", out))  # fmt: skip
    if "power_sim" not in args.skip:
        yield "power_sim"
        _, out = _run([sys.executable, str(bench / "bench_power_sim.py"),
                       "--replicates", str(args.replicates)], root)  # fmt: skip
        wall = _number(r"wall ([\d.]+) s", out)
        key = "power_sim s, 1,000 x 50k x 30 days, 2 workers"
        got[key].append(wall * 1000 / args.replicates)
        if args.replicates != 1000:
            notes[key] = f"{args.replicates} replicates, scaled to 1,000"


def _number(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    if found is None:
        raise SystemExit(f"no figure matching {pattern!r} in:\n{text}")
    return float(found.group(1))


def main() -> None:
    """Measure everything once (the 1M engine ``--runs`` times) and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="engine runs at 1M, each log state")
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--skip", nargs="*", default=[], choices=["compare", "stats", "power_sim"])
    parser.add_argument("--against", type=Path, help="a second checkout, measured alternately")
    args = parser.parse_args()
    if args.against is not None and not (args.against / "benchmarks").is_dir():
        raise SystemExit(f"--against: {args.against} is not a funnelsim checkout (no benchmarks/)")
    print(f"fresh memory, first touch: {probe():.2f} ms/MB", flush=True)
    got: dict[str, list[float]] = {k: [] for k in TARGETS}
    before: dict[str, list[float]] = {k: [] for k in TARGETS}
    notes: dict[str, str] = {}
    runs = [measure(args, ROOT, got, notes)]
    if args.against is not None:  # each measure alternates between the two checkouts
        runs.insert(0, measure(args, args.against, before, {}))
    while runs:
        for run in list(runs):
            try:
                next(run)
            except StopIteration:
                runs.remove(run)
    print(f"fresh memory, first touch: {probe():.2f} ms/MB (after the sitting)")
    label = "this sitting" if args.against is None else "this code"
    head = "" if args.against is None else f" {args.against.name:<24}"
    print(f"{'measure':<52} {'issue start':>16} {'target':>13} {head} {label:<24} met")
    for name, (start, target, met) in TARGETS.items():
        values = got[name]
        old = ", ".join(_fmt(name, v) for v in before[name]) or "not run"
        cell = "" if args.against is None else f" {old:<24}"
        if not values:
            print(f"{name:<52} {start:>16} {target:>13} {cell} {'not run':<24} -")
            continue
        shown = ", ".join(_fmt(name, v) for v in values)
        verdict = "yes" if met(statistics.median(values)) else "no"
        note = f"  ({notes[name]})" if name in notes else ""
        print(f"{name:<52} {start:>16} {target:>13} {cell} {shown:<24} {verdict}{note}")


def _fmt(name: str, v: float) -> str:
    if name.startswith("sessions/s"):
        return f"{v / 1e6:.2f}M"
    if name.startswith("peak"):
        return f"{v:,.0f}"
    return f"{v:.2f}"


if __name__ == "__main__":
    main()
