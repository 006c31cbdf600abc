"""Power: pinned references (R pwr, G*Power, hand calculations), CUPED, splits, simulation."""

import math
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from experiments.stats.power import (
    BinomialExperiment,
    Design,
    ProportionZTest,
    achieved_power,
    days_needed,
    mde_from_se,
    minimum_detectable_effect,
    n_control,
    plot_power_curve,
    power_curve,
    ratio_sd,
    sample_size,
    simulated_power,
)
from sim.errors import ConfigError

Z975, Z95, Z80 = stats.norm.ppf(0.975), stats.norm.ppf(0.95), stats.norm.ppf(0.8)


def test_proportion_sample_size_matches_r_pwr_2p_test():
    """R: pwr.2p.test(h = ES.h(0.65, 0.45), power = 0.8) -> n = 95.77 per group.

    Hand calculation: h = 2 asin(sqrt(.65)) - 2 asin(sqrt(.45)) = 0.404860;
    n = 2 ((z_.975 + z_.8) / h)^2 = 95.770 (the far tail changes n by < 0.001).
    (A figure of 95.3 sometimes quoted does not survive this calculation.)
    """
    h = 2 * math.asin(math.sqrt(0.65)) - 2 * math.asin(math.sqrt(0.45))
    assert h == pytest.approx(0.404860, abs=1e-6)
    hand = 2 * ((Z975 + Z80) / h) ** 2
    n = n_control(Design("proportion", 0.45), 0.20, 0.8)
    assert n == pytest.approx(hand, abs=1e-3)
    assert n == pytest.approx(95.77, abs=0.005)


def test_mean_sample_size_matches_g_power_and_r_pwr_t_test():
    """R: pwr.t.test(d = 0.5, power = 0.8) -> n = 63.76561; G*Power: 64 per group."""
    n = n_control(Design("mean", 0.0, sd=10.0), 5.0, 0.8)
    assert n == pytest.approx(63.76561, abs=1e-4)
    assert sample_size(Design("mean", 0.0, sd=10.0), 5.0, 0.8).n_per_arm == 64


def test_two_percent_baseline_ten_percent_relative_needs_about_80k_per_arm():
    """BENCHMARKS.md: at a 2% baseline a 10% relative MDE needs ~80k users per arm."""
    size = sample_size(Design("proportion", 0.02), 0.002, 0.8)
    assert 78_000 <= size.n_per_arm <= 82_000
    assert size.total_n == 2 * size.n_per_arm and size.mde_rel == pytest.approx(0.1)


def normal_n(sd, delta, z_alpha, ratio=1.0):
    """Hand formula: n_control = (z_a + z_b)^2 sd^2 (1 + 1/k) / delta^2."""
    return (z_alpha + Z80) ** 2 * sd**2 * (1 + 1 / ratio) / delta**2


def test_ratio_sample_size_is_the_normal_formula_with_delta_method_sd():
    sd = ratio_sd(ratio=100.0, denom_mean=0.06, numer_sd=40.0, denom_sd=0.3, corr=0.9)
    hand_var = 40.0**2 - 2 * 100 * 0.9 * 40 * 0.3 + 100**2 * 0.3**2
    assert sd == pytest.approx(math.sqrt(hand_var) / 0.06, rel=1e-12)
    n = n_control(Design("ratio", 100.0, sd=sd), 5.0, 0.8)
    assert n == pytest.approx(normal_n(sd, 5.0, Z975), rel=1e-4)


def test_unequal_split_and_one_sided_follow_hand_formulas():
    design = Design("ratio", 1.0, sd=2.0, allocation_ratio=3.0)
    assert n_control(design, 0.1, 0.8) == pytest.approx(normal_n(2.0, 0.1, Z975, 3.0), rel=1e-4)
    size = sample_size(design, 0.1, 0.8)
    assert size.n_treatment == math.ceil(size.n_control * 3) and size.n_per_arm < size.n_treatment
    one_sided = Design("ratio", 1.0, sd=2.0, alternative="larger")
    assert n_control(one_sided, 0.1, 0.8) == pytest.approx(normal_n(2.0, 0.1, Z95), rel=1e-9)


def test_cuped_multiplies_the_variance_by_one_minus_rho_squared():
    plain = n_control(Design("ratio", 1.0, sd=2.0), 0.1, 0.8)
    cuped = n_control(Design("ratio", 1.0, sd=2.0, cuped_rho=0.5), 0.1, 0.8)
    assert cuped / plain == pytest.approx(1 - 0.5**2, rel=1e-4)


def test_mde_and_power_invert_sample_size():
    for design, mde in [
        (Design("proportion", 0.10), 0.02),
        (Design("mean", 50.0, sd=20.0), 2.5),
        (Design("ratio", 100.0, sd=500.0, allocation_ratio=0.5), 5.0),
    ]:
        n = n_control(design, mde, 0.8)
        # statsmodels' root finder is accurate to about 1e-4 relative.
        assert minimum_detectable_effect(design, n, 0.8) == pytest.approx(mde, rel=1e-4)
        assert achieved_power(design, mde, n) == pytest.approx(0.8, abs=1e-9)


def test_days_from_daily_traffic_over_all_arms():
    size = sample_size(Design("proportion", 0.10), 0.02, 0.8, daily_traffic=5000)
    assert size.n_per_arm == 3835 and size.total_n == 7670  # hand: 2((z+z)/h)^2 = 3834.3
    assert size.days == 2 == days_needed(7670, 5000)
    assert days_needed(10_000, 5000) == 2 and days_needed(10_001, 5000) == 3
    assert days_needed(10, None) is None


def test_mde_from_se():
    assert mde_from_se(0.01, 0.05, 0.8) == pytest.approx((Z975 + Z80) * 0.01)
    assert mde_from_se(0.01, 0.05, 0.8, "larger") == pytest.approx((Z95 + Z80) * 0.01)


def test_power_curve_rises_and_is_plotted(tmp_path):
    design = Design("proportion", 0.10)
    curve = power_curve(design, 0.02, [500, 1000, 3835, 8000])
    assert list(curve.columns) == ["n_control", "n_treatment", "power"]
    assert np.all(np.diff(curve.power) > 0) and curve.power.iloc[2] == pytest.approx(0.8, abs=1e-3)
    plot_power_curve({"lift +0.02": curve}, 0.8, str(tmp_path / "curve.png"))
    assert (tmp_path / "curve.png").stat().st_size > 1000


def test_bad_power_inputs_are_errors():
    with pytest.raises(ConfigError, match="mde: must be a lift other than 0"):
        sample_size(Design("proportion", 0.1), 0.0, 0.8)
    with pytest.raises(ConfigError, match="mde: must be a lift keeping the proportion inside"):
        sample_size(Design("proportion", 0.95), 0.1, 0.8)
    with pytest.raises(ConfigError, match="corr: must be a correlation"):
        ratio_sd(ratio=1.0, denom_mean=1.0, numer_sd=1.0, denom_sd=1.0, corr=1.0)


def test_simulated_power_is_the_same_through_any_map_function():
    experiment = BinomialExperiment(0.10, 0.13, 1500, 1500)
    serial = simulated_power(experiment, ProportionZTest(), 40, seed=3)
    with ProcessPoolExecutor(max_workers=2) as pool:
        parallel = simulated_power(experiment, ProportionZTest(), 40, seed=3, map_fn=pool.map)
    assert serial == parallel
    low, high = proportion_confint(serial.rejections, 40, method="wilson")
    assert (serial.ci_low, serial.ci_high) == pytest.approx((low, high))
    assert serial != simulated_power(experiment, ProportionZTest(), 40, seed=4)


def test_simulated_power_spawns_one_seed_per_replicate():
    seen = []

    def make_data(rng):
        seen.append(rng.integers(1 << 62))
        return None

    simulated_power(make_data, lambda data: True, 5, seed=9)
    children = np.random.SeedSequence(9).spawn(5)
    assert seen == [np.random.default_rng(c).integers(1 << 62) for c in children]
    with pytest.raises(ConfigError, match="replicates"):
        simulated_power(make_data, lambda data: True, 0, seed=9)


@pytest.mark.parametrize("value", [0, 1, -0.5, 2])
def test_alpha_or_power_outside_0_1_are_errors(value):
    with pytest.raises(ConfigError, match="alpha: must be a number > 0 and < 1"):
        n_control(Design("proportion", 0.1, alpha=value), 0.02, 0.8)
    with pytest.raises(ConfigError, match="power: must be a number > 0 and < 1"):
        n_control(Design("proportion", 0.1), 0.02, value)
    with pytest.raises(ConfigError, match="power: must be a number > 0 and < 1"):
        minimum_detectable_effect(Design("proportion", 0.1), 1000, value)


def test_mean_and_ratio_need_a_positive_sd():
    with pytest.raises(ConfigError, match="sd: must be a number > 0 when metric=mean"):
        n_control(Design("mean", 10.0), 1.0, 0.8)
    with pytest.raises(ConfigError, match="sd: must be a number > 0"):
        n_control(Design("ratio", 10.0, sd=-1.0), 1.0, 0.8)


def test_mde_for_means_over_many_sizes_is_a_number():
    """statsmodels' solve_power at times returns a 1-element array (seen at n=1825, sd/mean 7)."""
    from experiments.stats.power import Design, minimum_detectable_effect

    design = Design("mean", 1.0, sd=7.0)
    values = [minimum_detectable_effect(design, n, 0.8) for n in range(1800, 1850)]
    assert all(isinstance(v, float) and v > 0 for v in values)
    assert values == sorted(values, reverse=True)  # more users, smaller MDE
