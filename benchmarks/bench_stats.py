"""Benchmark: one analysis of 10 metrics over 10 million users (two arms).

Prints the wall time of data generation and of the analysis, and the process's peak resident
memory (resource.getrusage ru_maxrss, which includes the table itself). Asserts nothing.

    .venv/bin/python benchmarks/bench_stats.py [n_users]
"""

import resource
import sys
import time

import numpy as np
import pandas as pd

from experiments.stats.analysis import Analysis
from experiments.stats.metrics import Mean, Proportion, RatioOfMeans

METRICS = (
    Proportion(name="visitor_conversion_rate", column="converted"),
    RatioOfMeans(name="conversion_rate", numer="orders", denom="sessions"),
    RatioOfMeans(name="aov", numer="revenue", denom="orders"),
    RatioOfMeans(name="items_per_order", numer="items", denom="orders"),
    RatioOfMeans(name="revenue_per_session", numer="revenue", denom="sessions"),
    Mean(name="revenue_per_visitor", column="revenue"),
    Mean(name="revenue_per_visitor_cuped", column="revenue", covariate="pre_revenue"),
    Mean(name="orders_per_visitor", column="orders", covariate="pre_orders"),
    Mean(name="sessions_per_visitor", column="sessions", covariate="pre_sessions"),
    Mean(name="margin_per_visitor", column="margin", nonnegative=False),
)


def per_user_table(n: int, seed: int = 0) -> pd.DataFrame:
    """A per-user table with DESIGN.md's analysed columns (2% of users convert)."""
    rng = np.random.default_rng(seed)
    arm = pd.Categorical.from_codes(rng.integers(0, 2, n, dtype=np.int8), ["A", "B"])
    sessions = 1 + rng.poisson(1.5, n)
    converted = rng.random(n) < 0.02
    orders = converted * (1 + rng.poisson(0.3, n))
    revenue = orders * rng.lognormal(4.5, 1.0, n)
    return pd.DataFrame(
        {
            "arm": arm,
            "exposed": rng.random(n) < 0.95,
            "sessions": sessions,
            "orders": orders,
            "items": orders * (1 + rng.poisson(1.0, n)),
            "converted": converted,
            "revenue": revenue,
            "margin": 0.3 * revenue - 3.0 * converted,
            "pre_sessions": rng.poisson(2.0, n),
            "pre_orders": rng.poisson(0.05, n),
            "pre_revenue": 0.3 * revenue + rng.exponential(5.0, n),
        }
    )


def rss_mb() -> float:
    """Current resident memory in MB (Linux /proc)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(n: int) -> None:
    start = time.perf_counter()
    frame = per_user_table(n)
    made = time.perf_counter()
    print(f"users: {n:,}  metrics: {len(METRICS)}  arms: 2")
    print(f"data generation: {made - start:.2f} s, resident memory after: {rss_mb():,.0f} MB")
    result = Analysis(METRICS, control="A").run(frame)
    done = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"analysis wall time: {done - made:.2f} s")
    print(f"peak resident memory (whole process, table included): {peak:,.0f} MB")
    print(result.table[["metric", "control", "treatment", "p_value"]].to_string(index=False))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000)
