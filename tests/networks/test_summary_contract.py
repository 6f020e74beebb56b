"""Contract suite of every summary network in ``SUMMARY_NETWORKS`` (see registry_summary.py).

Checks, per case: output shapes for several batch sizes and set/series lengths on one
instance; invariance to permuting set axes; gradients reach every trainable weight;
``get_config -> from_config -> get_config`` equality (before and after building);
eager == ``tf.function`` (dynamic shapes); ``.keras`` save/load of a model holding the
network reproduces its outputs exactly in a fresh process (one process for all cases).
"""

from __future__ import annotations

import functools
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.networks.registry import SUMMARY_NETWORKS, load_all
from tests.networks.registry_summary import INPUT_DIM, SUMMARY_TRAITS, SummaryHolder, output_of
from tests.support import assert_config_round_trip, run_in_fresh_process

load_all()
CASES = sorted(SUMMARY_NETWORKS)

# float32 sums over a few dozen terms, reordered by a permutation or by graph-mode fusion:
# rounding differences are ~1e-7 relative per operation, far below 1e-5.
ATOL = 1e-5


def make_case(name, seed=0):
    """A fresh network of case ``name`` (weights seeded) and its input generator."""
    keras.utils.set_random_seed(seed)
    return SUMMARY_NETWORKS[name](INPUT_DIM)


@functools.lru_cache(maxsize=None)
def shared_case(name):
    """One network per case, shared by the tests that do not change it (building is the slow part)."""
    return make_case(name)


def test_registry_has_every_summary_network():
    names = {type(SUMMARY_NETWORKS[c](INPUT_DIM)[0]).__name__ for c in CASES}
    assert {"DeepSet", "SetTransformer", "SequenceNetwork", "TimeSeriesTransformer"} <= names
    assert {"HierarchicalNetwork", "SplitNetwork", "ConvSummary"} <= names


@pytest.mark.parametrize("name", CASES)
def test_output_shapes_for_varying_batch_and_set_sizes(name):
    net, make_input = shared_case(name)
    rng = np.random.default_rng(1)
    expected_dim = SUMMARY_TRAITS[name].output_dim
    for batch_size, size in [(4, 9), (1, 1), (2, 13)]:
        out = output_of(net, make_input(batch_size, size, rng))
        assert out.shape == (batch_size, expected_dim)
        assert np.all(np.isfinite(out))
    assert tuple(net.compute_output_shape(make_input(2, 5, rng).shape)) == (2, expected_dim)


@pytest.mark.parametrize("name", [c for c in CASES if SUMMARY_TRAITS[c].invariant_axes])
def test_permutation_invariance(name):
    net, make_input = shared_case(name)
    rng = np.random.default_rng(2)
    x = make_input(4, 9, rng)
    reference = output_of(net, x)
    for axis in SUMMARY_TRAITS[name].invariant_axes:
        permuted = np.take(x, rng.permutation(x.shape[axis]), axis=axis)
        np.testing.assert_allclose(output_of(net, permuted), reference, atol=ATOL, err_msg=f"axis {axis}")


@pytest.mark.parametrize("name", CASES)
def test_gradients_reach_every_trainable_weight(name):
    net, make_input = shared_case(name)
    rng = np.random.default_rng(3)
    x = tf.constant(make_input(4, 9, rng))
    # A random projection of the output: a plain sum could cancel exactly (e.g. after layer norm).
    projection = tf.constant(rng.normal(size=(1, SUMMARY_TRAITS[name].output_dim)).astype("float32"))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(net(x, training=True) * projection)
    weights = net.trainable_weights
    grads = tape.gradient(loss, weights)
    assert weights, "no trainable weights"
    missing = [w.path for w, g in zip(weights, grads) if g is None or not np.any(g.numpy() != 0.0)]
    assert not missing, f"no gradient reaches {missing}"


@pytest.mark.parametrize("name", CASES)
def test_config_round_trip_before_and_after_build(name):
    fresh, _ = make_case(name)
    assert_config_round_trip(fresh)
    net, make_input = shared_case(name)
    output_of(net, make_input(2, 5, np.random.default_rng(4)))  # make sure it is built
    # from_config gives an unbuilt clone, so this also checks that building leaves the config unchanged.
    assert_config_round_trip(net)
    assert without_names(net.get_config()) == without_names(fresh.get_config())


def without_names(config):
    """``config`` without the auto-generated layer names (nested ones included)."""
    if isinstance(config, dict):
        return {k: without_names(v) for k, v in config.items() if k != "name"}
    if isinstance(config, list):
        return [without_names(v) for v in config]
    return config


@pytest.mark.parametrize("name", CASES)
def test_eager_and_tf_function_agree_for_dynamic_shapes(name):
    net, make_input = shared_case(name)
    rng = np.random.default_rng(5)
    x = make_input(3, 8, rng)
    spec = tf.TensorSpec((None,) * (x.ndim - 1) + (x.shape[-1],), tf.float32)
    compiled = tf.function(lambda t: net(t, training=False), input_signature=[spec], autograph=False)
    for x in (x, make_input(5, 11, rng)):  # the same trace serves both shapes
        np.testing.assert_allclose(compiled(x).numpy(), output_of(net, x), atol=ATOL)
    assert len(compiled._list_all_concrete_functions_for_serialization()) == 1


@pytest.fixture(scope="module")
def reloaded_outputs(tmp_path_factory):
    """Save a SummaryHolder per case, reload all of them in ONE fresh process, return both outputs."""
    workdir = tmp_path_factory.mktemp("summary_save_load")
    expected, inputs = {}, {}
    for name in CASES:
        net, make_input = shared_case(name)
        holder = SummaryHolder(net)
        inputs[name] = make_input(3, 7, np.random.default_rng(6))
        expected[name] = output_of(holder, inputs[name])
        with warnings.catch_warnings():
            # Keras' saver calls np.array on TF variables, which NumPy 2 flags once per weight.
            warnings.filterwarnings("ignore", message="__array__ implementation", category=DeprecationWarning)
            holder.save(workdir / f"{name}.keras")
    np.savez(workdir / "inputs.npz", **inputs)
    code = f"""
        import keras
        import tests.networks.registry_summary  # registers SummaryHolder
        inputs = np.load(workdir / "inputs.npz")
        outputs = {{}}
        for name in {CASES!r}:
            model = keras.saving.load_model(workdir / f"{{name}}.keras")
            outputs[name] = model(inputs[name], training=False).numpy()
        store(**outputs)
    """
    return expected, run_in_fresh_process(code, workdir)


@pytest.mark.parametrize("name", CASES)
def test_keras_save_load_in_fresh_process_is_exact(name, reloaded_outputs):
    expected, reloaded = reloaded_outputs
    np.testing.assert_array_equal(reloaded[name], expected[name])
