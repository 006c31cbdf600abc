"""Fixtures of the strategy tests (helpers live in strategy_helpers.py)."""

from __future__ import annotations

import pytest
from strategy_helpers import Store


@pytest.fixture(scope="session")
def store() -> Store:
    """Cached runs of the default store for the strategy tests."""
    return Store()
