"""Tests of the ratio and model-comparison classifiers: shapes, heads, learning, config, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from amortflow.exceptions import ArgumentError, ShapeError
from amortflow.networks.classifiers import ClassifierMLP, ModelClassifier, RatioClassifier
from tests.networks.registry_density import NetworkHolder
from tests.support import assert_config_round_trip, run_in_fresh_process


@pytest.mark.parametrize("num_params", [1, 3])
def test_ratio_classifier_shapes_and_dynamic_batch(num_params, rng):
    clf = RatioClassifier(hidden_units=(16, 16))
    compiled = tf.function(clf, input_signature=[tf.TensorSpec((None, num_params)), tf.TensorSpec((None, 5))])
    for batch in (1, 7):
        theta = rng.normal(size=(batch, num_params)).astype("float32")
        x = rng.normal(size=(batch, 5)).astype("float32")
        logits = clf(theta, x)
        assert logits.shape == (batch,)
        np.testing.assert_allclose(compiled(theta, x), logits, atol=1e-6)


def test_ratio_classifier_uses_both_inputs(rng):
    clf = RatioClassifier(hidden_units=(16,))
    theta, x = rng.normal(size=(4, 2)).astype("float32"), rng.normal(size=(4, 3)).astype("float32")
    base = clf(theta, x).numpy()
    assert np.all(clf(theta + 1.0, x).numpy() != base)
    assert np.all(clf(theta, x + 1.0).numpy() != base)


def test_ratio_classifier_learns_the_log_ratio(rng):
    """Logistic training on joint vs shuffled pairs of theta ~ N(0, 1), x | theta ~ N(theta, s^2).

    The Bayes-optimal logit is log p(x | theta) - log p(x) with p(x) = N(0, 1 + s^2). We compare
    the learned logit with it on joint pairs: the correlation must exceed 0.95. A classifier
    that ignores one input cannot reach it: with s^2 = 1/4 the true log ratio is
    -2 e^2 + 0.4 x^2 + const (e = x - theta), of variance 0.8, and its best predictor from x
    alone, 0.32 x^2, or from theta alone, 0.4 theta^2, has variance 0.32: correlation sqrt(0.4) = 0.63.
    """
    s2, n = 0.25, 20_000
    theta = rng.normal(size=(n, 1)).astype("float32")
    x = (theta + np.sqrt(s2) * rng.normal(size=(n, 1))).astype("float32")
    clf = RatioClassifier(hidden_units=(32, 32))
    optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-2, 400))

    @tf.function
    def step(theta, x, x_shuffled):
        with tf.GradientTape() as tape:
            joint, marginal = clf(theta, x, training=True), clf(theta, x_shuffled, training=True)
            loss = tf.reduce_mean(tf.nn.softplus(-joint) + tf.nn.softplus(marginal))
        grads = tape.gradient(loss, clf.trainable_variables)
        optimizer.apply_gradients(zip(grads, clf.trainable_variables))

    for _ in range(400):
        idx, perm = rng.integers(0, n, size=256), rng.integers(0, n, size=256)
        step(theta[idx], x[idx], x[perm])
    t, xx = theta[:2000], x[:2000]
    true = -0.5 * (xx - t) ** 2 / s2 - 0.5 * np.log(s2) + 0.5 * xx**2 / (1 + s2) + 0.5 * np.log(1 + s2)
    assert np.corrcoef(clf(t, xx).numpy(), true[:, 0])[0, 1] > 0.95


@pytest.mark.parametrize("head", ["softmax", "evidential"])
def test_model_classifier_heads(head, rng):
    clf = ModelClassifier(num_models=3, hidden_units=(16,), head=head)
    x = rng.normal(size=(6, 4)).astype("float32")
    out = clf(x).numpy()
    probs = clf.posterior_probs(x).numpy()
    assert out.shape == (6, 3) and probs.shape == (6, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    logits = clf.mlp(x).numpy()
    if head == "evidential":
        np.testing.assert_allclose(out, np.logaddexp(0.0, logits) + 1.0, rtol=1e-5)
        np.testing.assert_allclose(probs, out / out.sum(axis=1, keepdims=True), rtol=1e-5)
    else:
        np.testing.assert_allclose(out, logits, rtol=1e-6)
        np.testing.assert_allclose(probs, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), rtol=1e-5)


def test_dropout_acts_in_training_only(rng):
    clf = ModelClassifier(num_models=2, hidden_units=(64,), dropout=0.5)
    x = rng.normal(size=(8, 3)).astype("float32")
    np.testing.assert_array_equal(clf(x), clf(x))
    assert not np.allclose(clf(x, training=True), clf(x))


def test_invalid_arguments_and_inputs(rng):
    with pytest.raises(ArgumentError, match="head"):
        ModelClassifier(num_models=2, head="sigmoid")
    with pytest.raises(ArgumentError, match="num_models"):
        ModelClassifier(num_models=1)
    with pytest.raises(ArgumentError, match="dropout"):
        RatioClassifier(dropout=1.0)
    with pytest.raises(ShapeError, match=r"parameters must have shape \(B, k\)"):
        RatioClassifier()(np.zeros((2, 3, 1), "float32"), np.zeros((2, 4), "float32"))


def test_config_round_trip():
    ratio = RatioClassifier(hidden_units=(8, 4), activation="relu", dropout=0.1, kernel_regularizer="l2")
    assert_config_round_trip(ratio)
    assert ratio.get_config()["hidden_units"] == [8, 4]
    assert_config_round_trip(ModelClassifier(num_models=4, hidden_units=(8,), head="evidential"))
    assert_config_round_trip(ClassifierMLP(3, hidden_units=(8,)))


def test_save_load_in_fresh_process(rng, tmp_path):
    theta, x = rng.normal(size=(5, 2)).astype("float32"), rng.normal(size=(5, 4)).astype("float32")
    ratio = NetworkHolder(RatioClassifier(hidden_units=(8, 8), dropout=0.1))
    model = NetworkHolder(ModelClassifier(num_models=3, hidden_units=(8,), head="evidential"))
    expected = {"logits": ratio((theta, x)).numpy(), "alpha": model((x,)).numpy()}
    ratio.save(tmp_path / "ratio.keras")
    model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "inputs.npz", theta=theta, x=x)
    out = run_in_fresh_process(
        """
        import keras
        import amortflow.networks.classifiers  # registered on import (also via amortflow.networks)
        import tests.networks.registry_density  # registers NetworkHolder
        inputs = np.load(workdir / "inputs.npz")
        ratio = keras.saving.load_model(workdir / "ratio.keras")
        model = keras.saving.load_model(workdir / "model.keras")
        assert model.net.head == "evidential"
        store(logits=ratio.net(inputs["theta"], inputs["x"]), alpha=model.net(inputs["x"]))
        """,
        tmp_path,
    )
    np.testing.assert_array_equal(out["logits"], expected["logits"])
    np.testing.assert_array_equal(out["alpha"], expected["alpha"])
