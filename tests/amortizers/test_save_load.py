"""Every amortizer saves to one ``.keras`` file and, loaded in a fresh Python process, gives identical results.

Each amortizer is trained for a few steps (so its weights are not the initial ones), saved,
and queried here; one fresh process loads all files and repeats the queries: densities,
ratios and probabilities must be bit-identical, and draws with the same seed too.
"""

from __future__ import annotations

import numpy as np
import pytest

import amortflow as af
from amortflow.amortizers import (
    AmortizedLikelihood,
    AmortizedModelComparison,
    AmortizedPosterior,
    AmortizedPosteriorLikelihood,
    AmortizedRatio,
)
from amortflow.networks.classifiers import ModelClassifier, RatioClassifier
from amortflow.networks.inference.maf import MaskedAutoregressiveFlow
from amortflow.networks.inference.mdn import MixtureDensityNetwork
from tests.amortizers.helpers import simulate_gaussian, tiny_deep_set, tiny_flow, train
from tests.support import assert_config_round_trip, run_in_fresh_process

# Keras converts variables with np.array(x) while saving; NumPy 2 warns about their __array__.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def make_inputs():
    mu, x = simulate_gaussian(64, 6, dim=2, seed=0)
    posterior = {"parameters": mu, "summary_conditions": x, "direct_conditions": np.full((64, 1), 6.0, "float32")}
    likelihood = {"observables": x, "conditions": mu}
    model = {"model_indices": np.eye(2, dtype="float32")[np.arange(64) % 2], "summary_conditions": x}
    return posterior, likelihood, model


def make_amortizers():
    """name -> (amortizer, training inputs)."""
    posterior, likelihood, model = make_inputs()
    spline = {"dense_args": {"units": 16}, "bins": 6}
    maf = MaskedAutoregressiveFlow(2, num_layers=2, hidden_units=(8,))
    mdn = MixtureDensityNetwork(2, num_components=2, hidden_units=(8,))
    joint = AmortizedPosteriorLikelihood(
        AmortizedPosterior(tiny_flow(2), tiny_deep_set()), AmortizedLikelihood(tiny_flow(2))
    )
    ratio = AmortizedRatio(RatioClassifier(hidden_units=(16,)), tiny_deep_set(), num_contrastive=3, loss="nre_c")
    classifier = ModelClassifier(2, hidden_units=(16,), head="evidential")
    post = AmortizedPosterior(
        tiny_flow(2, permutation="learnable"),
        tiny_deep_set(),
        latent_dist="student_t",
        summary_loss_fun="MMD",
        prior_bounds=([-4.0, -np.inf], [4.0, np.inf]),
    )
    lik = AmortizedLikelihood(tiny_flow(2, coupling_design="spline", coupling_settings=spline))
    return {
        "posterior": (post, posterior),
        "posterior_maf": (AmortizedPosterior(maf, tiny_deep_set()), posterior),
        "posterior_mdn": (AmortizedPosterior(mdn, tiny_deep_set()), posterior),
        "likelihood": (lik, likelihood),
        "joint": (joint, {"posterior_inputs": posterior, "likelihood_inputs": likelihood}),
        "ratio": (ratio, posterior),
        "model_comparison": (AmortizedModelComparison(classifier, tiny_deep_set()), model),
    }


# One query script shared by this process and the fresh one: name -> {output name: array}.
QUERIES = """
def query(name, amortizer, inputs):
    if name.startswith("posterior"):
        return {"log_prob": amortizer.log_prob(inputs), "draws": amortizer.sample(inputs, 25, seed=7)}
    if name == "likelihood":
        return {"log_prob": amortizer.log_likelihood(inputs),
                "draws": amortizer.sample(inputs["conditions"], 5, seed=7)}
    if name == "joint":
        return {"log_prob": amortizer.log_posterior(inputs) + amortizer.log_likelihood(inputs),
                "draws": amortizer.sample_parameters(inputs, 25, seed=7),
                "data": amortizer.sample_data(inputs, 5, seed=7)}
    if name == "ratio":
        return {"log_ratio": amortizer.log_ratio(inputs)}
    return {"probs": amortizer.posterior_probs(inputs), "alphas": amortizer.posterior_alphas(inputs)}
"""


def test_every_amortizer_reloads_identically_in_a_fresh_process(tmp_path):
    af.set_seed(0)
    namespace: dict = {}
    exec(QUERIES, namespace)
    expected = {}
    for name, (amortizer, inputs) in make_amortizers().items():
        train(amortizer, inputs, steps=3, batch_size=16, compiled=False)
        assert_config_round_trip(amortizer)
        amortizer.save(tmp_path / f"{name}.keras")
        for key, value in namespace["query"](name, amortizer, inputs).items():
            expected[f"{name}/{key}"] = value

    loaded = run_in_fresh_process(
        QUERIES
        + """
import keras
from tests.amortizers.test_save_load import make_inputs
posterior, likelihood, model = make_inputs()
inputs = {"posterior": posterior, "posterior_maf": posterior, "posterior_mdn": posterior,
          "likelihood": likelihood, "ratio": posterior, "model_comparison": model,
          "joint": {"posterior_inputs": posterior, "likelihood_inputs": likelihood}}
out = {}
for name, data in inputs.items():
    amortizer = keras.saving.load_model(workdir / f"{name}.keras")
    for key, value in query(name, amortizer, data).items():
        out[f"{name}/{key}"] = value
    if name == "posterior":
        out["posterior/bounds"] = np.stack(amortizer.prior_bounds)
        out["posterior/latent_is_student_t"] = np.array(type(amortizer.latent_dist).__name__ == "StudentT")
store(**out)
""",
        tmp_path,
    )
    assert set(expected) <= set(loaded)
    for key, value in expected.items():
        np.testing.assert_array_equal(loaded[key], value, err_msg=key)
    np.testing.assert_array_equal(loaded["posterior/bounds"], [[-4.0, -np.inf], [4.0, np.inf]])
    assert loaded["posterior/latent_is_student_t"]


@pytest.mark.parametrize("name", ["posterior", "ratio", "model_comparison"])
def test_config_holds_the_constructor_arguments(name):
    amortizer, _ = make_amortizers()[name]
    config = amortizer.get_config()
    expected = {
        "posterior": {
            "inference_net", "summary_net", "latent_dist", "summary_loss_fun", "prior_bounds", "bounded_sampling"
        },
        "ratio": {"classifier_net", "summary_net", "num_contrastive", "loss", "gamma", "seed"},
        "model_comparison": {"inference_net", "summary_net", "loss_fun", "kl_weight"},
    }[name]
    assert expected <= set(config)
    clone = type(amortizer).from_config(config)
    assert type(clone) is type(amortizer)


def test_load_amortizer_names_a_damaged_keras_file(tmp_path):
    from amortflow.exceptions import ModelFileError

    amortizer, inputs = make_amortizers()["posterior"]
    train(amortizer, inputs, steps=1, batch_size=16, compiled=False)
    path = tmp_path / "posterior.keras"
    amortizer.save(path)
    loaded = af.utils.load_amortizer(path)
    for got, expected in zip(loaded.weights, amortizer.weights):
        np.testing.assert_array_equal(got.numpy(), expected.numpy())
    data = path.read_bytes()
    cases = {
        "truncated.keras": (data[: len(data) // 2], "not a .keras archive: it is truncated"),
        "garbage.keras": (b"\x00garbage" * 100, "not a .keras archive"),
        "flipped.keras": (data[:200] + bytes(b ^ 0xFF for b in data[200:260]) + data[260:], "damaged .keras archive"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ModelFileError, match=message) as info:
            af.utils.load_amortizer(tmp_path / name)
        assert name in str(info.value)
    with pytest.raises(ModelFileError, match="does not exist"):
        af.utils.load_amortizer(tmp_path / "missing.keras")
