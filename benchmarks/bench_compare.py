"""funnelsim against a Mesa 3 model and plain SimPy, written the way a user would.

Both comparison models are a toy funnel of the same agents and days as funnelsim's default run
(the warm-up and the window: 180 days): each agent visits at its own daily hazard (Gamma with
shape 1, mean ``--rate``, about funnelsim's sessions per agent and day), a visit adds to the cart
with chance 0.08 and a cart is bought with chance 0.3. They do far less per session than
funnelsim (no product views, prices, checkout, e-mail, ads, delivery, returns or event log), so
the ratios understate funnelsim's lead per unit of work.

- Mesa 3: one ``mesa.Agent`` per customer, ``Model.step`` calls every agent's ``step`` once a
  day (``agents.shuffle_do("step")``), the agent draws its visit with ``self.random``.
- plain SimPy: one process per customer, exponential waits between visits.
- funnelsim: ``python -m experiments.run`` with the event log off (whole process: imports, the
  drawn past, warm-up, window, KPIs, files), and the engine's own time per simulated session
  (``benchmarks/bench_engine.py``'s measure).

Each runs in a fresh process; whole-process seconds include imports. Nothing is asserted: the
figures go into README and the closing note. Mesa is not a dependency of funnelsim: install it
with ``pip install -e '.[bench]'`` (without it the Mesa row says so and is skipped).

Usage: python benchmarks/bench_compare.py [--agents 100000] [--days 180] [--rate 0.012]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
P_CART, P_BUY = 0.08, 0.3


def mesa_model(agents: int, days: int, rate: float) -> tuple[int, int]:
    """The Mesa 3 toy: returns (sessions, orders)."""
    import mesa
    import numpy as np

    class Customer(mesa.Agent):
        def __init__(self, model, rate):
            super().__init__(model)
            self.rate = rate
            self.sessions = 0
            self.orders = 0

        def step(self):
            if self.random.random() < self.rate:  # a visit today
                self.sessions += 1
                if self.random.random() < P_CART and self.random.random() < P_BUY:
                    self.orders += 1

    class Store(mesa.Model):
        def __init__(self, n, seed=1):
            super().__init__(seed=seed)
            rates = np.random.default_rng(seed).gamma(1.0, rate, n)
            for r in rates:
                Customer(self, float(r))

        def step(self):
            self.agents.shuffle_do("step")

    store = Store(agents)
    for _ in range(days):
        store.step()
    return sum(a.sessions for a in store.agents), sum(a.orders for a in store.agents)


def simpy_model(agents: int, days: int, rate: float) -> tuple[int, int]:
    """The plain SimPy toy: a process per customer; returns (sessions, orders)."""
    import numpy as np
    import simpy

    rng = np.random.default_rng(1)
    counts = [0, 0]

    def customer(env, r):
        while True:
            yield env.timeout(rng.exponential(1.0 / r))
            counts[0] += 1
            if rng.random() < P_CART and rng.random() < P_BUY:
                counts[1] += 1

    env = simpy.Environment()
    for r in rng.gamma(1.0, rate, agents):
        env.process(customer(env, max(float(r), 1e-9)))
    env.run(until=days)
    return counts[0], counts[1]


def child(name: str, agents: int, days: int, rate: float) -> None:
    """One model in this process; prints one JSON line (simulation seconds and counts)."""
    t0 = time.perf_counter()
    sessions, orders = {"mesa": mesa_model, "simpy": simpy_model}[name](agents, days, rate)
    print(json.dumps({"sim_s": time.perf_counter() - t0, "sessions": sessions,
                      "orders": orders}))  # fmt: skip


def _run(cmd: list[str]) -> tuple[float, dict | None, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        return wall, None, (proc.stderr.strip().splitlines() or ["failed"])[-1]
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.startswith("{")]
    return wall, (json.loads(lines[-1]) if lines else {}), ""


def main() -> None:
    """Run the three models in child processes and print the table with the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=100_000)
    parser.add_argument(
        "--days", type=int, default=180, help="toy days (funnelsim: warm-up + window)"
    )
    parser.add_argument("--rate", type=float, default=0.012, help="toy mean visits per agent-day")
    parser.add_argument("--child", choices=["mesa", "simpy"])
    args = parser.parse_args()
    if args.child:
        child(args.child, args.agents, args.days, args.rate)
        return
    me = [sys.executable, __file__, "--agents", str(args.agents), "--days", str(args.days),
          "--rate", str(args.rate), "--child"]  # fmt: skip
    rows = {}
    for name in ("mesa", "simpy"):
        wall, r, err = _run([*me, name])
        if r is None:
            print(f"{name}: not run ({err})")
            continue
        rows[name] = (wall, r["sim_s"], r["sessions"])
    with tempfile.TemporaryDirectory() as out:
        wall, _, err = _run([sys.executable, "-m", "experiments.run",
                             f"scenario.population.size={args.agents}", "output.events=false",
                             "progress=false", f"hydra.run.dir={out}"])  # fmt: skip
    _, eng, err2 = _run([sys.executable, str(ROOT / "benchmarks" / "bench_engine.py"), "--child",
                         str(args.agents), "off"])  # fmt: skip
    if eng is None:
        raise SystemExit(f"funnelsim did not run: {err or err2}")
    rows["funnelsim"] = (wall, eng["engine_s"], eng["sessions"])
    print(f"{args.agents:,} agents; toys: {args.days} days, mean {args.rate} visits a day")
    print(f"{'model':<10} {'process s':>10} {'sim s':>8} {'sessions':>10} {'us/session':>11}")
    for name, (wall, sim, sessions) in rows.items():
        print(f"{name:<10} {wall:>10.2f} {sim:>8.2f} {sessions:>10,} {1e6 * sim / sessions:>11.2f}")
    f_wall, f_sim, f_sess = rows["funnelsim"]
    per = 1e6 * f_sim / f_sess
    for name, (wall, sim, sessions) in rows.items():
        if name != "funnelsim":
            print(f"funnelsim vs {name}: whole process {wall / f_wall:.1f}x faster, per session "
                  f"{1e6 * sim / sessions / per:.1f}x faster")  # fmt: skip


if __name__ == "__main__":
    main()
