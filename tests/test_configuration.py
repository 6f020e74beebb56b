import numpy as np
import pytest

from amortflow.configuration import (
    DefaultJointConfigurator,
    DefaultLikelihoodConfigurator,
    DefaultModelComparisonConfigurator,
    DefaultPosteriorConfigurator,
)
from amortflow.exceptions import ArgumentError, ConfigurationError
from amortflow.simulation import ContextGenerator, GenerativeModel, MultiGenerativeModel, Prior, Simulator

B, N = 4, 6


def raw(**entries):
    base = {
        "prior_draws": np.arange(B * 2, dtype=np.float64).reshape(B, 2),
        "sim_data": np.ones((B, N, 3)),
        "prior_batchable_context": None,
        "prior_non_batchable_context": None,
        "sim_batchable_context": None,
        "sim_non_batchable_context": None,
    }
    return {**base, **entries}


# --- posterior -------------------------------------------------------------------------------
def test_posterior_plain_set_data():
    conf = DefaultPosteriorConfigurator()(raw())
    assert conf["parameters"].dtype == np.float32 and conf["parameters"].shape == (B, 2)
    assert conf["summary_conditions"].dtype == np.float32 and conf["summary_conditions"].shape == (B, N, 3)
    assert conf["direct_conditions"] is None


def test_posterior_batchable_context_broadcast_along_set_axis():
    design = np.arange(B * 2.0).reshape(B, 2)  # one design vector per simulation
    conf = DefaultPosteriorConfigurator()(raw(sim_batchable_context=design, prior_batchable_context=list(range(B))))
    summary = conf["summary_conditions"]
    assert summary.shape == (B, N, 3 + 1 + 2)
    np.testing.assert_array_equal(summary[:, :, 3], np.repeat(np.arange(B)[:, None], N, axis=1))  # prior's first
    np.testing.assert_array_equal(summary[:, 2, 4:], design)
    np.testing.assert_array_equal(summary[:, 0, 4:], summary[:, -1, 4:])


def test_posterior_per_observation_context_is_attached_per_row():
    times = np.tile(np.linspace(0, 1, N), (B, 1))  # (B, N): one time per observation
    conf = DefaultPosteriorConfigurator()(raw(sim_batchable_context=times))
    np.testing.assert_allclose(conf["summary_conditions"][:, :, 3], times)


def test_posterior_non_batchable_context_goes_direct():
    conf = DefaultPosteriorConfigurator(non_batchable_transform="sqrt")(raw(sim_non_batchable_context=N * 1.5 + 7))
    np.testing.assert_allclose(conf["direct_conditions"], np.full((B, 1), np.sqrt(16.0)))
    conf = DefaultPosteriorConfigurator()(raw(prior_non_batchable_context=np.array([1.0, 2.0]), sim_non_batchable_context=3))
    np.testing.assert_array_equal(conf["direct_conditions"], np.tile([1.0, 2.0, 3.0], (B, 1)))


def test_posterior_2d_data_goes_direct():
    conf = DefaultPosteriorConfigurator()(raw(sim_data=np.ones((B, 5)), sim_batchable_context=np.zeros(B), sim_non_batchable_context=2))
    assert conf["summary_conditions"] is None
    assert conf["direct_conditions"].shape == (B, 5 + 1 + 1)


def test_posterior_observed_data_without_parameters():
    conf = DefaultPosteriorConfigurator()({"sim_data": np.zeros((1, N, 3))})
    assert conf["parameters"] is None and conf["summary_conditions"].shape == (1, N, 3)


def test_posterior_from_a_generative_model():
    context = ContextGenerator(non_batchable_context_fun=lambda rng: int(rng.integers(3, 6)))
    model = GenerativeModel(
        Prior(batch_prior_fun=lambda b, rng: rng.normal(size=(b, 2))),
        Simulator(batch_simulator_fun=lambda p, n, rng: rng.normal(size=(len(p), n, 2)), context_generator=context),
        skip_test=True,
    )
    out = model(5, rng=0)
    conf = DefaultPosteriorConfigurator()(out)
    assert conf["summary_conditions"].shape == (5, out["sim_non_batchable_context"], 2)
    np.testing.assert_array_equal(conf["direct_conditions"], np.full((5, 1), out["sim_non_batchable_context"]))


@pytest.mark.parametrize(
    "entries, match",
    [
        ({"sim_data": None}, r"needs the key 'sim_data'; received keys \["),
        ({"sim_data": np.array(["a", "b"])}, r"'sim_data' must be numeric.*dtype <U1 with shape \(2,\)"),
        ({"prior_draws": np.zeros((3, 2))}, r"'prior_draws' has shape \(3, 2\); expected \(4, \.\.\.\)"),
        ({"sim_batchable_context": np.zeros(2)}, r"'sim_batchable_context' has shape \(2,\); expected \(4, \.\.\.\)"),
        ({"sim_non_batchable_context": "ten"}, r"'sim_non_batchable_context' must be numeric"),
        ({"sim_non_batchable_context": np.zeros((2, 2))}, r"'sim_non_batchable_context' .* shape \(2, 2\); expected a scalar or a vector"),
        ({"sim_batchable_context": [[1.0], [1.0, 2.0], [1.0], [1.0]]}, r"'sim_batchable_context' is not a rectangular"),
    ],
)
def test_posterior_errors(entries, match):
    with pytest.raises(ConfigurationError, match=match):
        DefaultPosteriorConfigurator()(raw(**entries))


def test_bad_inputs_and_transforms():
    with pytest.raises(ConfigurationError, match="expected a raw simulation dict, received list"):
        DefaultPosteriorConfigurator()([1, 2])
    with pytest.raises(ArgumentError, match="non_batchable_transform must be"):
        DefaultPosteriorConfigurator(non_batchable_transform="cube")
    with pytest.raises(ConfigurationError, match="non_batchable_transform of 'sim_non_batchable_context'=-1 is not finite"):
        DefaultPosteriorConfigurator(non_batchable_transform="sqrt")(raw(sim_non_batchable_context=-1))
    conf = DefaultPosteriorConfigurator(non_batchable_transform=lambda v: v / 10)(raw(sim_non_batchable_context=20))
    np.testing.assert_allclose(conf["direct_conditions"], np.full((B, 1), 2.0))


# --- likelihood and joint --------------------------------------------------------------------
def test_likelihood():
    conf = DefaultLikelihoodConfigurator()(raw())
    assert conf["observables"].shape == (B, N, 3) and conf["observables"].dtype == np.float32
    np.testing.assert_array_equal(conf["conditions"], raw()["prior_draws"])
    with_context = DefaultLikelihoodConfigurator()(raw(sim_batchable_context=np.ones((B, 2)), sim_non_batchable_context=5))
    assert with_context["conditions"].shape == (B, 2 + 2 + 1)
    assert DefaultLikelihoodConfigurator()({"prior_draws": np.zeros((2, 2))})["observables"] is None
    with pytest.raises(ConfigurationError, match="needs the key 'prior_draws'"):
        DefaultLikelihoodConfigurator()({"sim_data": np.zeros((2, 3))})
    with pytest.raises(ConfigurationError, match=r"'prior_draws' has shape \(4,\); expected \(B, \.\.\.\) with 2 axes"):
        DefaultLikelihoodConfigurator()(raw(prior_draws=np.zeros(B)))


def test_joint():
    conf = DefaultJointConfigurator()(raw())
    assert set(conf) == {"posterior_inputs", "likelihood_inputs"}
    assert conf["posterior_inputs"]["summary_conditions"].shape == (B, N, 3)
    assert conf["likelihood_inputs"]["conditions"].shape == (B, 2)


# --- model comparison ------------------------------------------------------------------------
def test_model_comparison_merges_in_index_order():
    indices = np.array([1, 0, 1, 2, 0])
    outputs = [
        raw(sim_data=np.stack([np.full((N, 3), 0.0), np.full((N, 3), 0.1)])),
        raw(sim_data=np.stack([np.full((N, 3), 1.0), np.full((N, 3), 1.1)]), prior_draws=np.zeros((2, 5))),
        raw(sim_data=np.full((1, N, 3), 2.0)),
    ]
    conf = DefaultModelComparisonConfigurator(3)({"model_outputs": outputs, "model_indices": indices})
    np.testing.assert_array_equal(conf["model_indices"], np.eye(3, dtype=np.float32)[indices])
    np.testing.assert_allclose(conf["summary_conditions"][:, 0, 0], [1.0, 0.0, 1.1, 2.0, 0.1])
    assert conf["direct_conditions"] is None and conf["summary_conditions"].dtype == np.float32


def test_model_comparison_from_multi_model():
    def model(offset):
        return GenerativeModel(
            Prior(batch_prior_fun=lambda b, rng: rng.normal(size=(b, 1 + int(offset)))),
            Simulator(batch_simulator_fun=lambda p, rng: offset + 0.01 * rng.normal(size=(len(p), N, 1))),
            skip_test=True,
        )

    out = MultiGenerativeModel([model(0.0), model(1.0)])(20, rng=0)
    conf = DefaultModelComparisonConfigurator(2)(out)
    np.testing.assert_allclose(conf["summary_conditions"][:, 0, 0], out["model_indices"], atol=0.1)
    assert conf["model_indices"].shape == (20, 2)


def test_model_comparison_observed_data_and_errors():
    conf = DefaultModelComparisonConfigurator(2)({"sim_data": np.zeros((1, N, 3))})
    assert conf["model_indices"] is None and conf["summary_conditions"].shape == (1, N, 3)
    configurator = DefaultModelComparisonConfigurator(2)
    good = [raw(sim_data=np.zeros((1, N, 3))), raw(sim_data=np.zeros((1, N, 3)))]
    with pytest.raises(ConfigurationError, match=r"different shapes.*model 0: \(6, 3\), model 1: \(7, 3\)"):
        configurator({"model_outputs": [good[0], raw(sim_data=np.zeros((1, N + 1, 3)))], "model_indices": np.array([0, 1])})
    with pytest.raises(ConfigurationError, match=r"must lie in \[0, 2\); received values 0\.\.2"):
        configurator({"model_outputs": good, "model_indices": np.array([0, 2])})
    with pytest.raises(ConfigurationError, match=r"model_outputs\[1\] holds 1 simulations but model_indices names model 1 2 times"):
        configurator({"model_outputs": good, "model_indices": np.array([0, 1, 1])})
    with pytest.raises(ConfigurationError, match=r"model_indices contains 1, but model_outputs\[1\] is None"):
        configurator({"model_outputs": [good[0], None], "model_indices": np.array([0, 1])})
    with pytest.raises(ConfigurationError, match="'direct_conditions' exists for models \\[1\\] but not for \\[0\\]"):
        configurator({"model_outputs": [good[0], raw(sim_data=np.zeros((1, N, 3)), sim_non_batchable_context=3)],
                      "model_indices": np.array([0, 1])})  # fmt: skip
    with pytest.raises(ArgumentError, match="num_models=...\\) must be an int >= 2, received 1"):
        DefaultModelComparisonConfigurator(1)
