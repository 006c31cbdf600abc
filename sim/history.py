"""The store's past: customers of every tenure, recency and frequency before warm-up."""

from __future__ import annotations


def draw_history(world) -> None:
    """Give the world's agents a past of ``scenario.history.days`` days (filled in next)."""
