"""The statistics layer: reads DESIGN.md's per-user table, needs nothing from the simulator.

- ``comparisons``: two-sample tests from sufficient statistics, vectorised (z, Welch, delta method).
- ``metrics``: Proportion, Mean (CUPED, Mann-Whitney, bootstrap), RatioOfMeans.
- ``analysis``: Analysis of 2+ arms, SRM check, Holm / Benjamini-Hochberg.
- ``sequential``: naive peek, O'Brien-Fleming alpha spending, mSPRT / confidence sequences.
- ``power``: sample size, MDE, power, duration, power curves, simulated power.
- ``targets``: SMART targets (met / not met / inconclusive, probability, achievable).
- ``lifetime``: CLV from a transaction log (RFM; BG/NBD and Gamma-Gamma, pinned to lifetimes).
- ``checks``: the one bad-input error (ConfigError) and scalar checks naming the key.
"""
