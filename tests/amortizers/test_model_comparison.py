"""AmortizedModelComparison: accuracy and calibration on two clearly different simulators.

Models (equal prior probabilities): ``M0: x_n ~ N(0, 1)``, ``M1: x_n ~ N(0, 2^2)``, ``n = 1..20``.
The exact posterior model probability is ``p(M1 | x) = sigmoid(log L1 - log L0)``. The
sufficient statistic ``sum x_n^2`` separates the models: the Bayes classifier is right with
probability ~0.98 (checked below on the test set), so > 95 % held-out accuracy leaves room for
the network's estimation error.

Calibration tolerance: for ``n = 2000`` held-out data sets and 10 equal-width bins, even
*exact* probabilities give a nonzero expected calibration error from binomial noise,
``E[ECE] <= sum_b (n_b/n) sqrt(p_b (1 - p_b) / n_b) <= sqrt(10 / n) / 2 = 0.035``; we accept
ECE < 0.05. The PMPs themselves must be within 0.05 of the exact ones on average.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

import amortflow as af
from amortflow.amortizers import AmortizedModelComparison
from amortflow.exceptions import ArgumentError, ConfigurationError
from amortflow.networks.classifiers import ModelClassifier
from tests.amortizers.helpers import tiny_deep_set, train

N_OBS = 20
SCALES = (1.0, 2.0)


def simulate(n_sims: int, seed: int):
    rng = np.random.default_rng(seed)
    model = rng.integers(0, 2, size=n_sims)
    x = rng.normal(size=(n_sims, N_OBS, 1)) * np.asarray(SCALES)[model][:, None, None]
    return {"model_indices": np.eye(2, dtype="float32")[model], "summary_conditions": x.astype("float32")}, model


def exact_pmp(x) -> np.ndarray:
    log_lik = np.stack([stats.norm.logpdf(x[..., 0], 0.0, s).sum(axis=1) for s in SCALES], axis=1)
    return np.exp(log_lik - np.logaddexp(log_lik[:, :1], log_lik[:, 1:]))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    confidence, predicted = probs.max(axis=1), probs.argmax(axis=1)
    correct = (predicted == labels).astype(float)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    return sum(
        abs(correct[which == b].mean() - confidence[which == b].mean()) * np.mean(which == b)
        for b in range(bins)
        if np.any(which == b)
    )


@pytest.mark.parametrize("head", ["softmax", "evidential"])
def test_model_comparison_is_accurate_and_calibrated(head):
    af.set_seed(11)
    data, _ = simulate(20000, seed=1)
    amortizer = AmortizedModelComparison(ModelClassifier(2, hidden_units=(32, 32), head=head), tiny_deep_set())
    train(amortizer, data, steps=400, batch_size=128, learning_rate=3e-3)
    test, labels = simulate(2000, seed=2)
    probs = amortizer.posterior_probs(test)
    assert probs.shape == (2000, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    bayes_accuracy = np.mean(exact_pmp(test["summary_conditions"]).argmax(axis=1) == labels)
    assert bayes_accuracy > 0.97  # the problem is as easy as claimed
    assert np.mean(probs.argmax(axis=1) == labels) > 0.95
    assert expected_calibration_error(probs, labels) < 0.05
    assert np.mean(np.abs(probs - exact_pmp(test["summary_conditions"]))) < 0.05
    if head == "evidential":
        alphas = amortizer.posterior_alphas(test)
        assert np.all(alphas >= 1.0)
        np.testing.assert_allclose(alphas / alphas.sum(axis=1, keepdims=True), probs, rtol=1e-5)


def test_default_configurator_takes_the_number_of_models():
    amortizer = AmortizedModelComparison(ModelClassifier(3, hidden_units=(8,)))

    class ThreeModels:
        num_models = 3

    configurator = amortizer.default_configurator(ThreeModels())
    assert isinstance(configurator, af.configuration.DefaultModelComparisonConfigurator)
    assert isinstance(amortizer.default_configurator(), af.configuration.DefaultModelComparisonConfigurator)
    ThreeModels.num_models = 2
    with pytest.raises(ArgumentError, match="3"):
        amortizer.default_configurator(ThreeModels())


def test_losses_integer_indices_and_errors():
    rng = np.random.default_rng(0)
    conditions = rng.normal(size=(6, 3)).astype("float32")
    softmax = AmortizedModelComparison(ModelClassifier(3, hidden_units=(8,)))
    one_hot = {"model_indices": np.eye(3)[[0, 1, 2, 0, 1, 2]], "direct_conditions": conditions}
    integer = {"model_indices": np.array([0, 1, 2, 0, 1, 2]), "direct_conditions": conditions}
    np.testing.assert_allclose(float(softmax.compute_loss(one_hot)), float(softmax.compute_loss(integer)), rtol=1e-6)
    logits = softmax(one_hot)
    expected = -np.mean(np.sum(one_hot["model_indices"] * tf.nn.log_softmax(logits).numpy(), axis=1))
    np.testing.assert_allclose(float(softmax.compute_loss(one_hot)), expected, rtol=1e-5)
    evidential = AmortizedModelComparison(ModelClassifier(3, hidden_units=(8,), head="evidential"), kl_weight=0.0)
    alpha = evidential(one_hot).numpy()
    log_score = -np.mean(np.log(np.sum(one_hot["model_indices"] * alpha, axis=1) / alpha.sum(axis=1)))
    np.testing.assert_allclose(float(evidential.compute_loss(one_hot)), log_score, rtol=1e-5)
    assert evidential.loss_fun == "evidential" and softmax.loss_fun == "cross_entropy"
    with pytest.raises(ArgumentError, match="head='evidential'"):
        AmortizedModelComparison(ModelClassifier(3), loss_fun="evidential")
    with pytest.raises(ArgumentError, match="posterior_alphas"):
        softmax.posterior_alphas(one_hot)
    with pytest.raises(ConfigurationError, match="needs data"):
        softmax.compute_loss({"model_indices": one_hot["model_indices"]})
