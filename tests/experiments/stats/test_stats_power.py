"""Power: pinned references (R pwr, G*Power, hand calculations), CUPED, splits, simulation."""

import math
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from scipy import stats
from scipy.optimize import brentq
from statsmodels.stats.proportion import proportion_confint, proportion_effectsize

from experiments.stats.checks import ConfigError
from experiments.stats.power import (
    BinomialExperiment,
    Design,
    ProportionZTest,
    achieved_power,
    boundary_crossing,
    days_needed,
    drift_for_power,
    mde_from_se,
    minimum_detectable_effect,
    n_control,
    plot_power_curve,
    power_curve,
    ratio_sd,
    sample_size,
    sequential_size,
    simulated_power,
    sized_lift,
)
from experiments.stats.sequential import first_crossing, group_sequential_bounds, mixture_bounds

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


def test_a_decrease_is_sized_as_a_decrease():
    """0.10 -> 0.08 one-sided: statsmodels' NormalIndPower on Cohen's h (2,524.4 per arm).

    statsmodels is called here rather than its value copied: h = |2 asin(sqrt .08) - 2 asin(sqrt
    .10)| = 0.0700, larger than the increase's 0.0640 (3,020.5 per arm, today's answer).
    """
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    design = Design("proportion", 0.10, alternative="smaller")
    lift = sized_lift(design, 0.02)
    h = abs(proportion_effectsize(0.08, 0.10))
    reference = NormalIndPower().solve_power(h, power=0.8, alpha=0.05, alternative="larger")
    size = sample_size(design, lift, 0.8)
    assert lift == -0.02 and size.direction == "decrease"
    assert size.n_per_arm == math.ceil(reference) and size.mde_abs == -0.02
    mde = minimum_detectable_effect(design, reference, 0.8)
    assert mde == pytest.approx(-0.02, rel=1e-4)  # solve_power's accuracy, as above
    assert achieved_power(design, mde, reference) == pytest.approx(0.8, abs=1e-6)
    with pytest.raises(ConfigError, match="mde: must be a lift keeping the proportion inside"):
        sized_lift(design, 0.10)
    with pytest.raises(ConfigError, match="mde: must be a lift in the direction of alternative"):
        sample_size(design, +0.02, 0.8)


def test_two_sided_sizes_the_harder_direction():
    """A two-sided test promises the MDE either way; the smaller |h| (towards 0.5) needs more n."""
    assert sized_lift(Design("proportion", 0.10), 0.02) == 0.02
    assert sized_lift(Design("proportion", 0.90), 0.02) == -0.02
    assert sized_lift(Design("proportion", 0.10), 0.15) == 0.15  # 0.10 - 0.15 is impossible
    assert sized_lift(Design("mean", 5.0, sd=2.0), 1.0) == 1.0  # symmetric: the increase
    high = Design("proportion", 0.90)
    n = n_control(high, -0.02, 0.8)
    assert achieved_power(high, +0.02, n) > 0.8  # the easier direction is covered too
    assert minimum_detectable_effect(high, n, 0.8) == pytest.approx(-0.02, rel=1e-4)


def classical_obf_bounds(looks, alpha=0.05):
    """O'Brien-Fleming (1979) bounds C / sqrt(t_k), C solved for two-sided alpha (recursion)."""
    t = np.arange(1, looks + 1) / looks

    def gap(c):
        crossing = boundary_crossing(t, c / np.sqrt(t), 0.0)
        return crossing.upper.sum() + crossing.lower.sum() - alpha

    return t, brentq(gap, 1.5, 4.0, xtol=1e-10) / np.sqrt(t)


@pytest.mark.parametrize("looks, power, published", [(5, 0.8, 1.028), (5, 0.9, 1.026)])
def test_drift_recursion_gives_jennison_turnbull_obf_inflation(looks, power, published):
    """Jennison & Turnbull (2000) Table 2.3 (and gsDesign's unit test test.JT.OFss, n.I = 102.8%):
    classical O'Brien-Fleming, K = 5, two-sided alpha 0.05, R = 1.028 at power 0.8, 1.026 at 0.9.

    C itself is J&T's C_B(5, 0.05) = 2.040. Tolerance: half the table's last digit plus 1e-4 of
    numerical integration error.
    """
    t, bounds = classical_obf_bounds(looks)
    assert bounds[-1] == pytest.approx(2.040, abs=6e-4)
    fixed = drift_for_power(np.array([1.0]), lambda drift: np.array([1.959964]), power)
    seq = drift_for_power(t, lambda drift: bounds, power)
    assert (seq / fixed) ** 2 == pytest.approx(published, abs=6e-4)


def test_lan_demets_obf_inflation_and_one_look():
    """Lan-DeMets OBF spending, 5 looks: inflation just under the classical design's 1.028.

    K = 1 is the fixed design exactly; more looks cost more; the bounds spent under H0 add to alpha.
    """
    one = sequential_size(Design("proportion", 0.10), 0.02, 0.8, looks=1)
    assert one.obf_inflation == 1.0 and one.n_per_arm_obf == 3835
    five = sequential_size(Design("proportion", 0.10), 0.02, 0.8, looks=5)
    print(f"LD-OBF inflation, 5 looks, power 0.8: {five.obf_inflation:.5f}")
    assert 1.02 < five.obf_inflation < 1.028
    ten = sequential_size(Design("proportion", 0.10), 0.02, 0.8, looks=10)
    assert ten.obf_inflation > five.obf_inflation
    t = np.arange(1, 6) / 5
    null = boundary_crossing(t, group_sequential_bounds(t, 0.05), 0.0)
    assert null.upper.sum() + null.lower.sum() == pytest.approx(0.05, abs=1e-5)
    with pytest.raises(ConfigError, match="looks: must be an integer >= 1"):
        sequential_size(Design("proportion", 0.10), 0.02, 0.8, looks=0)


def brute_force_sequential(size, p_c, p_t, tau_std, rng, replicates):
    """Bernoulli users in both arms, arcsine z at each of the planned looks (as the sizing).

    Returns the mSPRT's (stopping n, rejected upward) and the OBF rule's rejection, per replicate.
    """
    t = np.arange(1, size.looks + 1) / size.looks
    z = {}
    for rule, n_max in (("msprt", size.n_per_arm_msprt_max), ("obf", size.n_per_arm_obf)):
        n = np.maximum(np.round(t * n_max).astype(int), 1)
        steps = np.diff(n, prepend=0)
        c = rng.binomial(steps, p_c, (replicates, len(n))).cumsum(axis=1)
        tr = rng.binomial(steps, p_t, (replicates, len(n))).cumsum(axis=1)
        h = 2 * np.arcsin(np.sqrt(tr / n)) - 2 * np.arcsin(np.sqrt(c / n))
        z[rule] = (h / np.sqrt(2 / n), n)
    zm, n = z["msprt"]
    stop = first_crossing(zm, mixture_bounds(tau_std**2 * n / 2, 0.05))
    last = np.where(stop.reject, stop.look, len(n) - 1)
    upward = stop.reject & (zm[np.arange(replicates), last] > 0)
    obf = first_crossing(z["obf"][0], group_sequential_bounds(t, 0.05))
    return n[last], upward, obf.reject


def test_msprt_expected_n_and_obf_power_match_brute_force_simulation():
    """The deterministic recursion against 4,000 simulated tests (seed 21), 0.10 -> 0.12, 5 looks.

    Tolerances 4 MC standard errors: expected n's se is sd(n) / sqrt(R) (about 25 users);
    the powers' se is sqrt(.8 * .2 / R) = 0.0063.
    """
    design = Design("proportion", 0.10)
    size = sequential_size(design, 0.02, 0.8, looks=5)
    tau_std = float(proportion_effectsize(0.12, 0.10))  # tau = the MDE
    stopped, upward, obf = brute_force_sequential(size, 0.10, 0.12, tau_std,
                                                  np.random.default_rng(21), 4000)  # fmt: skip
    print(f"expected n: recursion {size.expected_n_msprt:.0f}, simulated {stopped.mean():.0f}")
    assert abs(stopped.mean() - size.expected_n_msprt) <= 4 * stopped.std() / math.sqrt(4000)
    power_se = math.sqrt(0.8 * 0.2 / 4000)
    assert abs(upward.mean() - 0.8) <= 4 * power_se  # the cap is where the mSPRT has 80% power
    assert abs(obf.mean() - 0.8) <= 4 * power_se
