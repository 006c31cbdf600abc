"""Marketing strategies as costed mechanisms at the simulator's hooks.

``build_strategies`` turns config mappings (one per strategy: ``name``, ``arms`` and its
parameters, as in ``conf/strategy/<name>.yaml``) into hook objects for :class:`sim.world.World`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields

from sim.errors import ConfigError, check_choice
from sim.hooks import Hooks
from strategies.base import Strategy, StrategyConfig
from strategies.bundles import Bundles
from strategies.chat_assistant import ChatAssistant
from strategies.gamification import Gamification
from strategies.personalization import Personalization
from strategies.retargeting import Retargeting
from strategies.social_proof import SocialProof
from strategies.win_back import WinBack

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (Personalization, SocialProof, Gamification, Retargeting, Bundles)
    + (WinBack, ChatAssistant)
}
"""The registry: strategy name -> class (each class names its config dataclass)."""

__all__ = ["STRATEGIES", "Strategy", "StrategyConfig", "build_strategies", "make_config"]


def make_config(cls: type[Strategy], spec: Mapping, key: str) -> StrategyConfig:
    """The validated config dataclass of ``cls`` from a mapping; ConfigError names the key."""
    known = {f.name for f in fields(cls.config_class)}
    for field_name in spec:
        if field_name not in known:
            raise ConfigError(f"{key}.{field_name}", "a field among " + ", ".join(sorted(known)))
    config = cls.config_class(**{**dict(spec), "name": cls.name})
    config.check(key)
    return config


def _arms(names: Sequence[str] | None, arm_names: Sequence[str], key: str) -> tuple[int, ...]:
    if names is None:
        return tuple(range(1, len(arm_names))) if len(arm_names) > 1 else (0,)
    if isinstance(names, str):
        names = [names]
    for name in names:
        check_choice(name, key, arm_names)
    return tuple(sorted({list(arm_names).index(n) for n in names}))


def build_strategies(specs: Sequence[Mapping], arm_names: Sequence[str]) -> list[Hooks]:
    """Build strategy objects from config mappings, validating every value once.

    Args:
        specs: One mapping per strategy, e.g. ``{"name": "bundles", "arms": ["treatment"],
            "discount": 0.1}``; omitted parameters take the defaults of the strategy's config
            dataclass (the same as its ``conf/strategy/<name>.yaml``).
        arm_names: The world's arm names (index = arm code).

    Returns:
        The strategies in the given order (hooks fire in this order).

    Raises:
        ConfigError: An unknown strategy name (key ``strategy``), an unknown field or a bad
            value (``strategy.<name>.<field>``), or an arm that does not exist
            (``strategy.<name>.arms``).
    """
    out: list[Hooks] = []
    for spec in specs:
        spec = dict(spec)
        name = check_choice(spec.get("name"), "strategy", sorted(STRATEGIES))
        cls = STRATEGIES[name]
        key = f"strategy.{name}"
        config = make_config(cls, spec, key)
        out.append(cls(config, _arms(config.arms, arm_names, f"{key}.arms")))
    return out
