"""AmortizedRatio: the NRE losses are minimized by the true log ratio (with the documented constants).

Model: ``theta ~ N(0, 1)``, ``x | theta ~ N(theta, s^2)`` with ``s^2 = 0.1`` (think of ``x`` as
the mean of 10 unit-variance observations). The exact log ratio is

``log r(x, theta) = log N(x; theta, s^2) - log N(x; 0, 1 + s^2)``.

A fixed "classifier" returning ``log r + c`` with one trainable offset ``c`` isolates each loss'
normalization: NRE-A and NRE-C are minimized at ``c = 0``; NRE-B is invariant to ``c``.
Margin: near the optimum ``L(c) - L(0) ~ c^2 I / 2`` with ``I`` of order 0.1-0.5 per unit, so at
``c = +-0.5`` the gap is >= 0.01, while with ``B = 4096`` pairs the Monte Carlo noise of a loss
*difference* is about ``|c| sd(sigmoid) / sqrt(B) < 0.5 * 0.5 / 64 = 0.004`` - a clear separation.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import amortflow as af
from amortflow.amortizers import AmortizedRatio
from amortflow.exceptions import ArgumentError, ConfigurationError, ShapeError
from amortflow.networks.classifiers import RatioClassifier
from tests.amortizers.helpers import tiny_deep_set

S2 = 0.1


@keras.saving.register_keras_serializable(package="amortflow_tests")
class ExactLogRatio(keras.layers.Layer):
    """``log r(x, theta) + offset`` for the Gaussian model above (x in the conditions)."""

    def __init__(self, offset: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.offset = float(offset)

    def call(self, parameters, conditions, training=False):
        theta, x = parameters[:, 0], conditions[:, 0]
        log_lik = -0.5 * tf.square(x - theta) / S2 - 0.5 * np.log(2 * np.pi * S2)
        log_evidence = -0.5 * tf.square(x) / (1 + S2) - 0.5 * np.log(2 * np.pi * (1 + S2))
        return log_lik - log_evidence + self.offset


def joint_pairs(n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(n, 1))
    x = theta + np.sqrt(S2) * rng.normal(size=(n, 1))
    return {"parameters": theta.astype("float32"), "direct_conditions": x.astype("float32")}


def losses_at_offsets(loss: str, offsets=(-0.5, 0.0, 0.5), num_contrastive: int = 4) -> np.ndarray:
    data = joint_pairs(4096)
    values = []
    for offset in offsets:
        amortizer = AmortizedRatio(ExactLogRatio(offset), num_contrastive=num_contrastive, loss=loss, seed=7)
        values.append(float(amortizer.compute_loss(data)))
    return np.asarray(values)


@pytest.mark.parametrize("loss", ["nre_a", "nre_c"])
def test_nre_a_and_c_are_minimized_by_the_exact_log_ratio(loss):
    below, at, above = losses_at_offsets(loss)
    assert at < below - 0.01 and at < above - 0.01


def test_nre_b_is_invariant_to_a_constant():
    values = losses_at_offsets("nre_b")
    np.testing.assert_allclose(values, values[1], rtol=1e-5)


def nre_c_loss(data, offset: float, gamma: float) -> float:
    amortizer = AmortizedRatio(ExactLogRatio(offset), num_contrastive=4, loss="nre_c", gamma=gamma, seed=7)
    return float(amortizer.compute_loss(data))


def test_nre_c_gamma_weighs_the_two_classes():
    # gamma -> large: the class-0 term vanishes and NRE-C approaches NRE-B's shift invariance.
    data = joint_pairs(4096)
    spread = []
    for gamma in (1.0, 1000.0):
        values = [
            nre_c_loss(data, offset=c, gamma=gamma)
            for c in (0.0, 0.5)
        ]
        spread.append(values[1] - values[0])
    assert spread[0] > 0.01 > abs(spread[1])


def test_contrastive_pairs_never_use_the_own_parameters():
    amortizer = AmortizedRatio(ExactLogRatio(), num_contrastive=3)
    indices = np.stack([idx.numpy() for idx in amortizer._contrastive_indices(10)])
    assert indices.shape == (3, 10)
    assert not np.any(indices == np.arange(10))
    assert all(len(set(indices[:, i])) == 3 for i in range(10))  # K distinct partners per row
    assert all(sorted(row) == list(range(10)) for row in indices.tolist())  # each theta used once per k


@pytest.mark.parametrize("batch_size", [2, 3, 5])
def test_short_batches_pair_each_row_with_its_other_rows(batch_size):
    # An epoch's last batch can hold K or fewer simulations: partners cycle over the B - 1 others.
    amortizer = AmortizedRatio(ExactLogRatio(), num_contrastive=6, loss="nre_b")
    indices = np.stack([idx.numpy() for idx in amortizer._contrastive_indices(batch_size)])
    assert indices.shape == (6, batch_size)
    assert not np.any(indices == np.arange(batch_size))
    assert all(set(indices[:, i]) == set(range(batch_size)) - {i} for i in range(batch_size))
    assert np.isfinite(float(amortizer.compute_loss(joint_pairs(batch_size), training=True)))


def test_one_row_batch_in_a_graph_has_zero_loss_and_eager_one_row_is_an_error():
    amortizer = AmortizedRatio(ExactLogRatio(), num_contrastive=2, loss="nre_a")
    one = joint_pairs(1)
    with pytest.raises(ShapeError, match="needs at least 2"):
        amortizer.compute_loss(one)
    spec = {key: tf.TensorSpec((None,) + value.shape[1:], tf.float32) for key, value in one.items()}
    graph_loss = tf.function(lambda batch: amortizer.compute_loss(batch), input_signature=[spec])
    assert float(graph_loss(one)) == 0.0
    assert float(graph_loss(joint_pairs(8))) > 0.0


@pytest.mark.parametrize("loss", ["nre_a", "nre_b", "nre_c"])
def test_validation_pairs_are_fixed_and_training_pairs_fresh(loss):
    # Early stopping compares validation losses across epochs: they must not move with the pairing.
    data = joint_pairs(256)
    amortizer = AmortizedRatio(ExactLogRatio(), num_contrastive=4, loss=loss, seed=3)
    validation = [float(amortizer.compute_loss(data, training=False)) for _ in range(3)]
    training = [float(amortizer.compute_loss(data, training=True)) for _ in range(3)]
    assert validation[0] == validation[1] == validation[2]
    assert len(set(training)) == 3


def test_default_classifier_summary_net_and_log_ratio_shapes():
    af.set_seed(0)
    rng = np.random.default_rng(0)
    conf = {
        "parameters": rng.normal(size=(12, 2)).astype("float32"),
        "summary_conditions": rng.normal(size=(12, 6, 3)).astype("float32"),
        "direct_conditions": np.ones((12, 1), "float32"),
    }
    amortizer = AmortizedRatio(summary_net=tiny_deep_set(), num_contrastive=2, loss="nre_c")
    assert isinstance(amortizer.classifier_net, RatioClassifier)
    with tf.GradientTape() as tape:
        loss = amortizer.compute_loss(conf, training=True)
    grads = tape.gradient(loss, amortizer.trainable_variables)
    assert np.isfinite(float(loss)) and all(g is not None for g in grads)
    assert amortizer.log_ratio(conf).shape == (12,)
    np.testing.assert_allclose(amortizer.log_ratio(conf, batch_size=5), amortizer(conf).numpy(), atol=1e-6)
    assert isinstance(amortizer.default_configurator(), af.configuration.DefaultPosteriorConfigurator)


def test_ratio_errors():
    with pytest.raises(ArgumentError, match="loss"):
        AmortizedRatio(ExactLogRatio(), loss="nre_d")
    with pytest.raises(ArgumentError, match="num_contrastive >= 2"):
        AmortizedRatio(ExactLogRatio(), loss="nre_b", num_contrastive=1)
    with pytest.raises(ArgumentError, match="gamma"):
        AmortizedRatio(ExactLogRatio(), gamma=0.0)
    amortizer = AmortizedRatio(ExactLogRatio(), num_contrastive=4)
    with pytest.raises(ConfigurationError, match="needs data"):
        amortizer.compute_loss({"parameters": np.zeros((8, 1), "float32")})
