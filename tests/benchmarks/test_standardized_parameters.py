"""Z-scored parameters for NLE/NRE benchmark runs: the configurator and the MCMC target agree."""

import numpy as np
import pytest

from amortflow.benchmarks import Benchmark
from amortflow.benchmarks.standardized_parameters import StandardizedParameters
from amortflow.exceptions import ArgumentError


def test_prior_draws_leave_with_zero_mean_and_unit_std():
    # sir: gamma's prior sd is about 0.025, beta's about 0.2; both reach the network on unit scale.
    # 4,000 fresh draws: the sample mean's standard error is 1 / sqrt(4000) = 0.016 and the sample
    # sd's about 0.011 (a log-normal's kurtosis makes it somewhat larger), so 0.08 is > 5 SE.
    bench = Benchmark("sir", n_pilot=200)
    wrap = StandardizedParameters.from_prior(bench.configurator, bench.task, "parameters", seed=4)
    out = wrap(bench.generative_model(batch_size=4000, rng=9))
    assert out["parameters"].dtype == np.float32
    np.testing.assert_allclose(out["parameters"].mean(axis=0), 0.0, atol=0.08)
    np.testing.assert_allclose(out["parameters"].std(axis=0), 1.0, atol=0.08)
    assert bench.task.sample_prior(1000, np.random.default_rng(0)).std(axis=0).min() < 0.05


def test_mcmc_target_feeds_the_network_the_training_scale():
    import tensorflow as tf

    from amortflow.amortizers import AmortizedRatio
    from amortflow.inference.targets import make_log_likelihood_fn
    from amortflow.networks.classifiers import RatioClassifier

    amortizer = AmortizedRatio(RatioClassifier(hidden_units=(8, 8)))
    x_obs = np.array([0.3, -1.2, 0.5], dtype=np.float32)
    theta = np.array([[2.0, -1.0], [0.5, 4.0]], dtype=np.float32)
    mean, std = np.array([1.0, -2.0]), np.array([0.5, 4.0])
    wrap = StandardizedParameters(lambda raw: raw, mean, std, key="parameters")
    raw_fn, _ = make_log_likelihood_fn(amortizer, x_obs)
    target = wrap.on_task_scale(raw_fn)
    expected = raw_fn(tf.constant((theta - mean) / std, dtype=tf.float32))
    np.testing.assert_allclose(target(tf.constant(theta), x_obs).numpy(), expected.numpy(), rtol=1e-6)
    # and it is not the raw-scale value (the test would pass trivially if the map were skipped)
    assert not np.allclose(target(tf.constant(theta), x_obs).numpy(), raw_fn(tf.constant(theta)).numpy())


def test_non_positive_std_raises():
    with pytest.raises(ArgumentError, match="std must be positive"):
        StandardizedParameters(lambda raw: raw, [0.0, 1.0], [1.0, 0.0], key="conditions")
