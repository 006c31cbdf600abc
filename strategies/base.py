"""The strategy base class: sim's hooks plus arms, a launch day, keyed draws and costs.

A strategy is a :class:`Strategy` subclass with a config dataclass (its schema, one field per
parameter of ``conf/strategy/<name>.yaml``) and the hooks it needs. The base class does the
plumbing every strategy shares:

- **arms**: ``self.arms`` holds the arm indices it applies to; the world calls each hook with
  ``sel``, the positions of the cohort's agents in those arms, and never with an empty ``sel``;
- **launch**: nothing happens before ``start_day`` (default 0), so the warm-up stays the plain
  store's pre-period (CUPED, retention); hooks filter with :meth:`Strategy.live`;
- **keyed draws**: :meth:`Strategy.uniform` draws from the strategy's own stream, so adding it
  never changes anyone else's random numbers (DESIGN.md, "Randomness");
- **costs**: a fixed platform fee per 1,000 agents of its arms per day, booked at day start, and
  :meth:`Strategy.book` for per-message or per-impression costs. Discounts lower the price paid,
  so they leave profit through gross margin; they are not booked again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from omegaconf import MISSING

from sim import rng
from sim.errors import check_number
from sim.hooks import Hooks
from sim.population import STRATEGY_NAMES


@dataclass
class StrategyConfig:
    """Fields every strategy has.

    Attributes:
        name: The strategy's registry name (``bundles``, ``retargeting``...).
        arms: Names of the arms it applies to; ``None`` = every arm but the first (the
            control) when there are several, else the only arm.
        start_day: Launch day; before it the strategy does nothing (0 = the experiment start).
        fee_per_1000_per_day: Fixed platform cost per 1,000 agents of its arms per day.
    """

    name: str = MISSING
    arms: list[str] | None = None
    start_day: int = 0
    fee_per_1000_per_day: float = 0.0

    def check(self, key: str) -> None:
        """Raise ConfigError naming ``<key>.<field>`` for the first bad value."""
        check_number(self.start_day, f"{key}.start_day", integer=True)
        check_number(self.fee_per_1000_per_day, f"{key}.fee_per_1000_per_day", ge=0)


class Strategy(Hooks):
    """Base class of the strategies: no-op hooks, arms, launch day, keyed draws, costs.

    Subclasses set ``name`` and ``config_class`` and override the hooks they need (see
    :mod:`sim.hooks` for what each hook may change). Per-agent state is allocated in
    :meth:`setup`, which must call ``super().setup(world)``.

    Args:
        config: The validated config dataclass.
        arms: Arm indices the strategy applies to.
    """

    name = "strategy"
    config_class: type[StrategyConfig] = StrategyConfig

    def __init__(self, config: StrategyConfig, arms: tuple[int, ...] = ()) -> None:
        super().__init__(arms)
        self.config = config
        self.key = np.uint64(0)
        self._agents_by_arm: np.ndarray | None = None
        self._responsiveness: np.ndarray | None = None

    def setup(self, world) -> None:
        """Take the strategy's keyed-draw stream (allocate per-agent state in subclasses).

        Called by each world the strategy is built into; build one strategy object per world
        (``build_strategies`` is cheap), as the per-agent state lives on the object.
        """
        self.key = world.keyed(f"strategy.{self.name}")
        self._agents_by_arm = None
        self._responsiveness = None

    # -- helpers ------------------------------------------------------------------------------
    def live(self, time: np.ndarray) -> np.ndarray:
        """Mask of times at or after the launch day."""
        return np.asarray(time) >= self.config.start_day

    def live_sel(self, time: np.ndarray, sel: np.ndarray) -> np.ndarray:
        """The positions of ``sel`` whose time is at or after the launch day."""
        return sel[self.live(time[sel])]

    def uniform(self, agent: np.ndarray, k) -> np.ndarray:
        """Keyed uniforms of this strategy: a pure function of (seed, name, agent, k)."""
        return rng.uniform(self.key, agent, k)

    def book(self, world, kind: str, amounts: np.ndarray, agents: np.ndarray, day: int) -> None:
        """Book per-agent costs as ``<name>_<kind>``, summed by arm."""
        world.ledger.book_by_arm(
            f"{self.name}_{kind}", np.asarray(amounts, float), world.pop.arm[agents], int(day)
        )

    def responsiveness(self, world, agent: np.ndarray) -> np.ndarray:
        """How much the strategy moves each agent (mean 1), from the population's traits.

        The population draws one column per strategy of ``sim.population.STRATEGY_NAMES``; a
        strategy of another name (your own) gets 1 for everyone.
        """
        if self._responsiveness is None:  # one contiguous column, taken once
            if self.name in STRATEGY_NAMES:
                column = world.pop.responsiveness[:, STRATEGY_NAMES.index(self.name)]
                self._responsiveness = column.astype(float)
            else:
                self._responsiveness = np.ones(world.pop.size)
        return self._responsiveness[agent]

    # -- hooks --------------------------------------------------------------------------------
    def on_day_start(self, world, day: int, agents: np.ndarray) -> None:
        """Book the fixed platform fee of the day (from the launch day on)."""
        fee = self.config.fee_per_1000_per_day
        if fee and day >= self.config.start_day:
            if self._agents_by_arm is None:  # arms never change during a run: count them once
                self._agents_by_arm = np.bincount(world.pop.arm[agents])
            for arm, count in enumerate(self._agents_by_arm):
                world.ledger.book(f"{self.name}_fee", fee / 1000 * count, arm, day)
