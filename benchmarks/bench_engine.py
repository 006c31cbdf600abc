"""Engine benchmark: the default scenario at 100k and 1M agents x 90 days (+ 90-day warm-up).

Prints, per size and with the event log on and off: engine time (simulate + compute KPIs),
time to write the outputs, the whole process's wall time (imports included), simulated
sessions per second (warm-up sessions included: the engine simulates them) and peak memory
(max RSS). Each configuration runs in a fresh process so peak memory is its own. Nothing is
asserted: the figures go into README and the closing note.

Usage: python benchmarks/bench_engine.py [--sizes 100000 1000000] [--strategies A B ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(size: int, events: bool, extra: list[str]) -> None:
    """One measured run, in this process; prints one JSON line."""
    import datetime as dt

    from experiments.cli import compose_config
    from experiments.config import register
    from experiments.run import compute, write
    from sim.world import World

    counts = []
    run = World.run

    def count(self, *args, **kwargs):  # the session count of the world compute() builds; the
        results = run(self, *args, **kwargs)  # world itself is not kept (its memory is freed)
        counts.append(int(self.pop.n_sessions.sum()))
        return results

    World.run = count
    register()
    overrides = [f"scenario.population.size={size}", f"output.events={str(events).lower()}",
                 "progress=false", *extra]  # fmt: skip
    cfg = compose_config("config", overrides)
    t0 = time.perf_counter()
    outcome = compute(cfg)
    outcome.results.events  # noqa: B018 (the log is assembled in a thread: engine time waits)
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        write(cfg, outcome, Path(out), dt.datetime.now(dt.UTC).isoformat())
    t2 = time.perf_counter()
    # every session the engine ran (warm-up and window): the agents' session counters, not
    # pre_sessions, which a warm-up shorter than 90 days tops up with the drawn past's visits
    simulated = counts[-1]
    print(json.dumps({
        "engine_s": t1 - t0, "write_s": t2 - t1, "sessions": simulated,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))  # fmt: skip


def main() -> None:
    """Run every configuration in a child process and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--extra", nargs="*", default=[], help="more Hydra overrides")
    parser.add_argument("--child", nargs=2, metavar=("SIZE", "EVENTS"))
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), args.child[1] == "on", args.extra)
        return
    print(f"{'agents':>10} {'events':>6} {'engine s':>9} {'write s':>8} {'process s':>10} "
          f"{'sessions':>10} {'sessions/s':>11} {'us/session':>10} {'peak MB':>8}")  # fmt: skip
    for size in args.sizes:
        for events in ("on", "off"):
            cmd = [sys.executable, __file__, "--child", str(size), events]
            if args.extra:
                cmd += ["--extra", *args.extra]
            start = time.perf_counter()
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
            wall = time.perf_counter() - start
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            rate = r["sessions"] / r["engine_s"]
            print(f"{size:>10,} {events:>6} {r['engine_s']:>9.2f} {r['write_s']:>8.2f} "
                  f"{wall:>10.2f} {r['sessions']:>10,} {rate:>11,.0f} {1e6 / rate:>10.2f} "
                  f"{r['peak_mb']:>8,.0f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
