"""Calibration to a store's dashboard: read it (dashboard), fit the scenario to it (fit).

``python -m experiments.calibrate dashboard=FILE`` (:mod:`experiments.calibrate`) is the entry
point; this package holds the parts it is made of.
"""
