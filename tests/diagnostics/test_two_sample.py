"""Two-sample metrics with known answers: C2ST accuracy and the maximum mean discrepancy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from amortflow.diagnostics import metrics
from amortflow.exceptions import ArgumentError, ShapeError

N_C2ST = 500  # per side; 2 * 500 held-out predictions in total
# Standard error of an accuracy near 0.5 from 1000 held-out predictions: sqrt(0.25 / 1000).
C2ST_TOL = 4 * np.sqrt(0.25 / (2 * N_C2ST))  # = 0.063


@pytest.fixture(scope="module")
def gaussian_pair():
    rng = np.random.default_rng(3)
    return rng.standard_normal((N_C2ST, 2)), rng.standard_normal((N_C2ST, 2))


def test_c2st_of_equal_distributions_is_chance(gaussian_pair):
    a, b = gaussian_pair
    assert abs(metrics.c2st(a, b) - 0.5) < C2ST_TOL


def test_c2st_of_a_unit_shift_is_the_bayes_accuracy(gaussian_pair):
    a, b = gaussian_pair
    # N(0, I) vs N((1, 0), I): the best classifier (a linear boundary) is right with Phi(1 / 2) = 0.691.
    accuracy = metrics.c2st(a, b + np.array([1.0, 0.0]))
    assert abs(accuracy - norm.cdf(0.5)) < C2ST_TOL


def test_c2st_of_far_apart_distributions_is_one(gaussian_pair):
    a, b = gaussian_pair
    # Bayes accuracy Phi(|(10, 10)| / 2) = Phi(7.07) = 1 - 1e-12: any error is the classifier's.
    # The reference z-scoring keeps the classifier's inputs O(10) rather than O(100) here.
    assert metrics.c2st(a, b * 10.0 + 100.0) > 0.98


def test_c2st_rejects_mismatched_dimensions():
    with pytest.raises(ShapeError, match="same number of dimensions"):
        metrics.c2st(np.zeros((10, 2)), np.zeros((10, 3)))


def _expected_gaussian_kernel(shift: float, bandwidths=metrics.DEFAULT_MMD_BANDWIDTHS) -> float:
    """E k(x, y) for x ~ N(0, I_2), y ~ N(shift e_1, I_2): x - y ~ N(-shift e_1, 2 I_2), so
    E exp(-|x - y|^2 / (2 s^2)) = s^2 / (s^2 + 2) * exp(-shift^2 / (2 (s^2 + 2))), averaged over s."""
    s2 = np.asarray(bandwidths, dtype=float) ** 2
    return float(np.mean(s2 / (s2 + 2.0) * np.exp(-(shift**2) / (2.0 * (s2 + 2.0)))))


def _repeat_mmd(shift: float, n: int, reps: int, seed: int, **kwargs) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([
        metrics.maximum_mean_discrepancy(
            rng.standard_normal((n, 2)), rng.standard_normal((n, 2)) + np.array([shift, 0.0]), **kwargs
        )
        for _ in range(reps)
    ])


def test_kernels_are_one_on_the_diagonal_and_symmetric():
    x = np.random.default_rng(0).standard_normal((20, 3))
    for kernel in ("gaussian", "inverse_multiquadratic"):
        k = metrics.mixture_kernel(x, x, kernel)
        np.testing.assert_allclose(np.diag(k), 1.0, rtol=1e-12)
        np.testing.assert_allclose(k, k.T, rtol=1e-12)
        assert np.all((k > 0) & (k <= 1.0 + 1e-12))


def test_unbiased_mmd_is_zero_on_average_for_equal_distributions():
    values = _repeat_mmd(0.0, n=200, reps=30, seed=5, unbiased=True)
    # mean of 30 replicates within 4 standard errors of zero (the U-statistic is unbiased)
    assert abs(values.mean()) < 4 * values.std(ddof=1) / np.sqrt(values.size)
    assert np.all(np.abs(values) < 0.01)  # and each one is small on the kernel's [0, 2] scale


def test_biased_mmd_of_equal_distributions_is_its_known_bias():
    n, values = 200, _repeat_mmd(0.0, n=200, reps=30, seed=6)
    # E[V-statistic] = 2 (1 - E k(x, x')) / n under equal distributions (the diagonal k(x, x) = 1 terms)
    expected = 2.0 * (1.0 - _expected_gaussian_kernel(0.0)) / n
    assert abs(values.mean() - expected) < 4 * values.std(ddof=1) / np.sqrt(values.size)


def test_unbiased_mmd_of_a_shift_matches_the_population_value():
    values = _repeat_mmd(1.0, n=200, reps=20, seed=7, unbiased=True)
    # population MMD^2 = E k(x, x') + E k(y, y') - 2 E k(x, y)
    expected = 2.0 * (_expected_gaussian_kernel(0.0) - _expected_gaussian_kernel(1.0))
    assert abs(values.mean() - expected) < 4 * values.std(ddof=1) / np.sqrt(values.size)


@pytest.mark.parametrize("kernel", ["gaussian", "inverse_multiquadratic"])
@pytest.mark.parametrize("unbiased", [False, True])
def test_mmd_grows_monotonically_with_the_shift(kernel, unbiased):
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((300, 2)), rng.standard_normal((300, 2))
    values = [
        metrics.maximum_mean_discrepancy(x, y + np.array([s, 0.0]), kernel=kernel, unbiased=unbiased)
        for s in (0.0, 0.5, 1.0, 2.0, 4.0)
    ]
    assert np.all(np.diff(values) > 0), values
    assert values[0] < 0.01


def test_mmd_weight_symmetry_and_argument_checks():
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((50, 2)), rng.standard_normal((60, 2)) + 1.0
    base = metrics.maximum_mean_discrepancy(x, y)
    assert metrics.maximum_mean_discrepancy(y, x) == pytest.approx(base, rel=1e-10)
    assert metrics.maximum_mean_discrepancy(x, y, mmd_weight=3.0) == pytest.approx(3.0 * base, rel=1e-10)
    with pytest.raises(ArgumentError, match="kernel"):
        metrics.maximum_mean_discrepancy(x, y, kernel="laplace")
    with pytest.raises(ShapeError):
        metrics.maximum_mean_discrepancy(x, np.zeros((5, 3)))


def test_mmd_null_distribution_matches_equal_distribution_values():
    rng = np.random.default_rng(10)
    reference = rng.standard_normal((200, 2))
    null = metrics.mmd_null_distribution(reference, 40, num_null_samples=40, rng=1)
    assert null.shape == (40,) and np.all(null >= 0)
    shifted = metrics.maximum_mean_discrepancy(rng.standard_normal((40, 2)) + 1.5, reference[40:])
    assert shifted > null.max()  # a 1.5-sd shift of 40 points lies beyond every null value
    with pytest.raises(ArgumentError, match="num_observed"):
        metrics.mmd_null_distribution(reference, 200)


def test_one_mmd_with_named_bandwidth_sets():
    from amortflow.amortizers import maximum_mean_discrepancy as mmd_loss
    from amortflow.defaults import MMD_BANDWIDTH_SETS

    # Each caller keeps its numbers: the loss mixes the "summary_loss" scales, the test the
    # "two_sample_test" scales, and the two implementations agree for the same set (float32
    # round-off of the TF loss on kernel values <= 1 is ~1e-6 relative; 1e-4 leaves room).
    assert MMD_BANDWIDTH_SETS["summary_loss"] == (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
    assert metrics.DEFAULT_MMD_BANDWIDTHS == MMD_BANDWIDTH_SETS["two_sample_test"]
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(200, 3)), rng.normal(size=(150, 3)) + 0.5
    for name in MMD_BANDWIDTH_SETS:
        numpy_value = metrics.maximum_mean_discrepancy(x, y, bandwidths=name)
        np.testing.assert_allclose(float(mmd_loss(x, y, bandwidths=name)), numpy_value, rtol=1e-4)
    assert float(mmd_loss(x, y)) == pytest.approx(metrics.maximum_mean_discrepancy(x, y, bandwidths="summary_loss"), rel=1e-4)
    with pytest.raises(ArgumentError, match="bandwidths must be one of"):
        metrics.maximum_mean_discrepancy(x, y, bandwidths="wide")
    with pytest.raises(ArgumentError, match="positive length scales"):
        metrics.maximum_mean_discrepancy(x, y, bandwidths=[1.0, -1.0])
