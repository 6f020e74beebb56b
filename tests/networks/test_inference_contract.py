"""One contract suite for every inference network in ``tests/networks/registry.py``.

Each registry entry runs for the target/condition dimensions in ``DIMS`` (1-D and
multi-D targets, with and without a condition). Every network must give the documented
shapes for several batch sizes, a normalized density (quadrature), gradients for every
trainable weight, a config round trip, the same results eagerly and in ``tf.function``, and
identical outputs after a ``.keras`` save/load in a fresh process (one process for all cases).
The checks whose code paths do not depend on the dimensions (config, tf.function, save/load)
run once per entry, at ``NAME_DIMS``, to keep the suite fast.
Networks without a density (``has_density = False``: a consistency model) must raise from
``log_prob`` and are checked through their training loss and seeded draws instead.
Flows also satisfy ``inverse(forward(x)) = x`` and ``log_det_J = log|det| of the autodiff Jacobian``.

Weights are perturbed before the numerical checks: many networks start at (or near) the
identity, where several checks would pass trivially.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.networks.registry import INFERENCE_NETWORKS, load_all
from tests.support import assert_config_round_trip, run_in_fresh_process

load_all()

# Keras' saver and weight reads call np.array on TF variables, which NumPy 2 flags once per weight.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

#: (num_params, condition_dim) every network is checked with; None = unconditional. Together they
#: cover 1-D targets (whose couplings see only the condition or a constant), conditional and
#: unconditional multi-D targets, and an odd split of the dimensions.
DIMS = ((1, None), (2, 3), (3, None))
PERTURBATION_SCALE = 0.1
CASES = [
    pytest.param(name, dims, id=f"{name}-D{dims[0]}-{'C' + str(dims[1]) if dims[1] else 'uncond'}")
    for name in sorted(INFERENCE_NETWORKS)
    for dims in DIMS
]
#: Dimensions of the once-per-entry checks.
NAME_DIMS = (2, 3)
NAME_CASES = [pytest.param(name, NAME_DIMS, id=f"{name}-D2-C3") for name in sorted(INFERENCE_NETWORKS)]
FLOW_NAMES = {name for name, factory in INFERENCE_NETWORKS.items() if factory(1, None).is_flow}
FLOW_CASES = [case for case in CASES if case.values[0] in FLOW_NAMES]
DENSITY_NAMES = {name for name, factory in INFERENCE_NETWORKS.items() if factory(1, None).has_density}


@keras.saving.register_keras_serializable(package="amortflow_tests")
class InferenceHolder(keras.Model):
    """An amortizer-like model holding an inference network as an attribute, as amortizers do."""

    def __init__(self, inference_net, **kwargs):
        super().__init__(**kwargs)
        self.inference_net = inference_net

    def call(self, targets, condition=None, training=False):
        if not self.inference_net.has_density:
            return self.inference_net(targets, condition, training=training)
        return self.inference_net.log_prob(targets, condition, training=training)

    def get_config(self):
        return {"name": self.name, "inference_net": keras.saving.serialize_keras_object(self.inference_net)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        net = keras.saving.deserialize_keras_object(config.pop("inference_net"))
        return cls(net, **config)


def make_inputs(num_params, condition_dim, batch_size, seed=0):
    rng = np.random.default_rng(seed)
    targets = rng.normal(size=(batch_size, num_params)).astype("float32")
    condition = None if condition_dim is None else rng.normal(size=(batch_size, condition_dim)).astype("float32")
    return targets, condition


def perturb(net, seed=1, scale=PERTURBATION_SCALE):
    """Add N(0, scale^2) noise to every trainable weight, so that no layer is the identity."""
    rng = np.random.default_rng(seed)
    for weight in net.trainable_weights:
        weight.assign(weight.numpy() + scale * rng.standard_normal(weight.shape).astype("float32"))


def make_network(name, dims, perturbed=True, seed=1):
    """A built (and by default perturbed) network of registry entry ``name``."""
    num_params, condition_dim = dims
    keras.utils.set_random_seed(seed)
    net = INFERENCE_NETWORKS[name](num_params, condition_dim)
    targets, condition = make_inputs(num_params, condition_dim, 2)
    net.compute_loss(targets, condition)  # builds every weight, also of networks without a density
    if perturbed:
        perturb(net, seed)
    return net


@pytest.mark.parametrize("name, dims", CASES)
def test_shapes_for_several_batch_sizes(name, dims):
    num_params, condition_dim = dims
    net = make_network(name, dims, perturbed=False)
    for batch_size in (1, 7):
        targets, condition = make_inputs(num_params, condition_dim, batch_size)
        assert tuple(net.compute_loss(targets, condition).shape) == ()
        if not net.has_density:
            with pytest.raises(NotImplementedError, match="no tractable density"):
                net.log_prob(targets, condition)
            continue
        assert tuple(net.log_prob(targets, condition).shape) == (batch_size,)
        if net.is_flow:
            z, log_det_J = net(targets, condition)
            assert tuple(z.shape) == (batch_size, num_params) and tuple(log_det_J.shape) == (batch_size,)
            assert tuple(net.inverse(z, condition).shape) == (batch_size, num_params)
    if condition_dim is not None:
        assert tuple(net.sample(5, condition, seed=3).shape) == (7, 5, num_params)
    else:
        assert tuple(net.sample(6, seed=3).shape) == (6, num_params)


@pytest.mark.parametrize("name, dims", FLOW_CASES)
def test_flow_inverse_undoes_forward(name, dims):
    net = make_network(name, dims)
    targets, condition = make_inputs(*dims, 16)
    z, _ = net(targets, condition)
    assert np.max(np.abs(z.numpy() - targets)) > 1e-2, "the perturbed flow should not be the identity"
    np.testing.assert_allclose(net.inverse(z, condition).numpy(), targets, atol=1e-4)


@pytest.mark.parametrize("name, dims", FLOW_CASES)
def test_flow_log_det_matches_autodiff_jacobian(name, dims):
    net = make_network(name, dims)
    targets, condition = make_inputs(*dims, 8)
    x = tf.constant(targets)
    with tf.GradientTape(persistent=True) as tape:  # persistent: a per-output loop, cheaper than pfor here
        tape.watch(x)
        z, log_det_J = net(x, condition)
    jacobian = tape.batch_jacobian(z, x, experimental_use_pfor=False).numpy().astype("float64")
    _, expected = np.linalg.slogdet(jacobian)
    # float32 round-off: observed errors are <= 1e-6 for every registry case (two weight seeds);
    # 2e-5 leaves a 20x margin while still catching any missing or wrong log-det term.
    np.testing.assert_allclose(log_det_J.numpy(), expected, atol=2e-5)


@pytest.mark.parametrize(
    "name, dims", [case for case in CASES if case.values[1] in ((1, None), (2, 3)) and case.values[0] in DENSITY_NAMES]
)
def test_density_integrates_to_one(name, dims):
    num_params, condition_dim = dims
    net = make_network(name, dims)
    # Riemann sum on a grid that holds all but a negligible tail of the (perturbed) density;
    # the step is far below the density's length scale, so the quadrature error is << 1 %.
    half_width, step = 15.0, (0.01 if num_params == 1 else 0.1)
    axis = np.arange(-half_width, half_width + step / 2, step, dtype="float32")
    grid = np.stack(np.meshgrid(*[axis] * num_params, indexing="ij"), axis=-1).reshape(-1, num_params)
    condition = None
    if condition_dim is not None:
        row = np.random.default_rng(5).normal(size=(1, condition_dim)).astype("float32")
        condition = np.repeat(row, len(grid), axis=0)
    log_q = net.log_prob(grid, condition).numpy().astype("float64")
    log_normal = -0.5 * np.sum(grid.astype("float64") ** 2, axis=1) - 0.5 * num_params * np.log(2 * np.pi)
    near = np.sum(grid**2, axis=1) < 4.0
    assert np.max(np.abs(log_q - log_normal)[near]) > 0.05, "density should differ from the latent one"
    assert abs(np.exp(log_q).sum() * step**num_params - 1.0) < 0.01


@pytest.mark.parametrize("name, dims", CASES)
def test_gradients_reach_every_trainable_weight(name, dims):
    net = make_network(name, dims)
    targets, condition = make_inputs(*dims, 32)
    with tf.GradientTape() as tape:  # the loss amortizers train with (-mean log_prob for density networks)
        loss = net.compute_loss(targets, condition, training=True)
    grads = tape.gradient(loss, net.trainable_weights)
    assert np.isfinite(loss.numpy())
    for weight, grad in zip(net.trainable_weights, grads):
        assert grad is not None, f"no gradient reaches {weight.path}"
        grad = tf.convert_to_tensor(grad).numpy()
        assert np.all(np.isfinite(grad)) and np.any(grad != 0.0), f"zero or non-finite gradient for {weight.path}"


@pytest.mark.parametrize("name, dims", NAME_CASES)
def test_config_round_trip(name, dims):
    assert_config_round_trip(make_network(name, dims, perturbed=False))
    assert_config_round_trip(INFERENCE_NETWORKS[name](*dims))  # unbuilt, too


@pytest.mark.parametrize("name, dims", NAME_CASES)
def test_eager_and_tf_function_agree(name, dims):
    net = make_network(name, dims)
    targets, condition = make_inputs(*dims, 7)
    if net.has_density:
        compiled = tf.function(lambda x, c: net.log_prob(x, c))
        expected = net.log_prob(targets, condition).numpy()
        np.testing.assert_allclose(compiled(targets, condition).numpy(), expected, atol=1e-5)
    else:
        compiled = tf.function(lambda c: net.sample(4, c, seed=11))
        np.testing.assert_allclose(compiled(condition).numpy(), net.sample(4, condition, seed=11).numpy(), atol=1e-5)
    if net.is_flow:
        z, _ = net(targets, condition)
        compiled_inverse = tf.function(lambda v, c: net.inverse(v, c))
        np.testing.assert_allclose(compiled_inverse(z, condition).numpy(), net.inverse(z, condition).numpy(), atol=1e-5)


def _outputs(net, targets, condition) -> dict[str, np.ndarray]:
    if not net.has_density:  # seeded draws are a deterministic function of the weights
        return {"draws": net.sample(3, condition, seed=11).numpy()}
    outputs = {"log_prob": net.log_prob(targets, condition).numpy()}
    if net.is_flow:
        z, log_det_J = net(targets, condition)
        outputs.update(z=z.numpy(), log_det_J=log_det_J.numpy(), inverse=net.inverse(targets, condition).numpy())
    return outputs


def test_keras_save_load_in_fresh_process_reproduces_outputs(tmp_path):
    """Every entry, held by an amortizer-like keras.Model, saved to .keras and loaded in ONE fresh process."""
    expected = {}
    for index, case in enumerate(NAME_CASES):
        name, dims = case.values
        net = make_network(name, dims)
        targets, condition = make_inputs(*dims, 5, seed=index)
        holder = InferenceHolder(net)
        holder(targets, condition)
        holder.save(tmp_path / f"case_{index}.keras")
        arrays = {"targets": targets} if condition is None else {"targets": targets, "condition": condition}
        np.savez(tmp_path / f"case_{index}_inputs.npz", **arrays)
        expected.update({f"{index}/{key}": value for key, value in _outputs(net, targets, condition).items()})
    loaded = run_in_fresh_process(
        f"""
        import keras
        from tests.networks.test_inference_contract import InferenceHolder, _outputs
        results = {{}}
        for index in range({len(NAME_CASES)}):
            model = keras.saving.load_model(workdir / f"case_{{index}}.keras")
            with np.load(workdir / f"case_{{index}}_inputs.npz") as data:
                condition = data["condition"] if "condition" in data.files else None
                outputs = _outputs(model.inference_net, data["targets"], condition)
            results.update({{f"{{index}}/{{key}}": value for key, value in outputs.items()}})
        store(**results)
        """,
        tmp_path,
    )
    assert sorted(loaded) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(loaded[key], value, err_msg=f"{NAME_CASES[int(key.split('/')[0])].id}: {key}")
