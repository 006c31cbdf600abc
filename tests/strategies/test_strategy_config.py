"""Config of the strategies: YAML defaults = dataclass schemas, and bad input -> ConfigError."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from sim.errors import ConfigError
from strategies import STRATEGIES, build_strategies

ARMS = ["control", "treatment"]


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_yaml_matches_schema_and_builds(name):
    """Each conf/strategy/<name>.yaml has exactly its schema's fields, with the same defaults."""
    cls = STRATEGIES[name]
    schema = OmegaConf.structured(cls.config_class)
    loaded = OmegaConf.load(Path("conf/strategy") / f"{name}.yaml")[name]
    merged = OmegaConf.to_object(OmegaConf.merge(schema, loaded))  # unknown keys would raise
    assert asdict(merged) == asdict(cls.config_class())
    (strategy,) = build_strategies([OmegaConf.to_container(loaded)], ARMS)
    assert strategy.name == name and strategy.arms == (1,)


def test_default_arms_and_stacking():
    """arms: null = every arm but the control (or the only arm); order is kept when stacked."""
    stack = build_strategies([{"name": "retargeting"}, {"name": "bundles"}], ARMS)
    assert [s.name for s in stack] == ["retargeting", "bundles"]
    assert [s.arms for s in stack] == [(1,), (1,)]
    (alone,) = build_strategies([{"name": "bundles"}], ["control"])
    assert alone.arms == (0,)
    (both,) = build_strategies([{"name": "bundles", "arms": ARMS}], ARMS)
    assert both.arms == (0, 1)


def _error(specs, arm_names=ARMS) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        build_strategies(specs, arm_names)
    return info.value


def test_unknown_strategy_name():
    err = _error([{"name": "telepathy"}])
    assert err.key == "strategy"
    assert str(err).startswith(
        "strategy: must be one of bundles, chat_assistant, gamification, personalization"
    )
    assert "'telepathy'" in str(err)


def test_negative_discount():
    err = _error([{"name": "bundles", "discount": -0.1}])
    assert str(err) == "strategy.bundles.discount: must be a number >= 0 and < 1 (got -0.1)"


@pytest.mark.parametrize("discount", [1.0, 1.5])
def test_discount_of_100_percent_or_more(discount):
    err = _error([{"name": "bundles", "discount": discount}])
    assert err.key == "strategy.bundles.discount" and "< 1" in str(err)


def test_negative_delay():
    err = _error([{"name": "retargeting", "email_delays": [0.04, -1.0]}])
    assert str(err) == "strategy.retargeting.email_delays[1]: must be a number >= 0 (got -1.0)"


def test_nonexistent_arm():
    err = _error([{"name": "social_proof", "arms": ["treatment", "variant_b"]}])
    assert (
        str(err)
        == "strategy.social_proof.arms: must be one of control, treatment (got 'variant_b')"
    )


def test_unknown_parameter():
    err = _error([{"name": "gamification", "points_per_euro": 1.0}])
    assert err.key == "strategy.gamification.points_per_euro"
    assert "points_per_dollar" in str(err)


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ({"name": "personalization", "recommended_share": 1.2}, "recommended_share"),
        ({"name": "social_proof", "saturation_reviews": 0}, "saturation_reviews"),
        ({"name": "gamification", "badge_levels": [300.0, 100.0]}, "badge_levels"),
        ({"name": "retargeting", "completion_lift": -0.5}, "completion_lift"),
        ({"name": "retargeting", "ad_cpm": "cheap"}, "ad_cpm"),
        ({"name": "bundles", "fee_per_1000_per_day": -1}, "fee_per_1000_per_day"),
        ({"name": "win_back", "open_rate": 1.5}, "open_rate"),
        ({"name": "chat_assistant", "engage_rate": -0.2}, "engage_rate"),
    ],
)
def test_bad_values_name_their_key(spec, key):
    assert _error([spec]).key == f"strategy.{spec['name']}.{key}"
