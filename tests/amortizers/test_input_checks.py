"""Inference-time input checks (issue 22, issue 27 items 3-5): each bad input gets an amortflow error
naming the key, the shape received and the shape expected, before any TensorFlow op.

The amortizers are the ones a new user trains first: ``AmortizedPosterior(InvertibleNetwork,
DeepSet)`` on data sets of shape ``(B, 10, 2)`` with 2 parameters, and its likelihood, ratio and
model-comparison siblings on the same data.
"""

from __future__ import annotations

import logging

import keras
import numpy as np
import pytest
import tensorflow_probability as tfp

import amortflow as af
from amortflow.amortizers import AmortizedLikelihood, AmortizedModelComparison, AmortizedPosterior, AmortizedRatio
from amortflow.exceptions import (
    AmortflowError,
    ArgumentError,
    ConfigurationError,
    NonFiniteInputError,
    NonFiniteOutputError,
    ShapeError,
)
from amortflow.inference import importance_sample, sample_posterior_mcmc
from amortflow.inference.targets import make_log_likelihood_fn
from amortflow.networks.classifiers import ModelClassifier, RatioClassifier
from tests.amortizers.helpers import simulate_gaussian, tiny_deep_set, tiny_flow, train

tfd = tfp.distributions
PRIOR = tfd.Independent(tfd.Normal(np.zeros(2, "float32"), 1.0), 1)
# Keras converts variables with np.array(x) while saving; NumPy 2 warns about their __array__.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def datasets(n: int = 5, n_obs: int = 10, seed: int = 0):
    """``(theta (n, 2), x (n, n_obs, 2))`` of the Gaussian model."""
    return simulate_gaussian(n, n_obs, dim=2, seed=seed)


@pytest.fixture(scope="module")
def npe():
    af.set_seed(0)
    mu, x = datasets(64)
    amortizer = AmortizedPosterior(tiny_flow(2), tiny_deep_set())
    train(amortizer, {"parameters": mu, "summary_conditions": x}, steps=3, batch_size=32, compiled=False)
    return amortizer


@pytest.fixture(scope="module")
def nle():
    af.set_seed(1)
    mu, x = datasets(64)
    amortizer = AmortizedLikelihood(tiny_flow(2))
    train(amortizer, {"observables": x, "conditions": mu}, steps=3, batch_size=32, compiled=False)
    return amortizer


@pytest.fixture(scope="module")
def nre():
    af.set_seed(2)
    mu, x = datasets(64)
    amortizer = AmortizedRatio(RatioClassifier(hidden_units=(16,)), tiny_deep_set())
    train(amortizer, {"parameters": mu, "summary_conditions": x}, steps=3, batch_size=32, compiled=False)
    return amortizer


@pytest.fixture(scope="module")
def comparison():
    af.set_seed(3)
    _, x = datasets(64)
    amortizer = AmortizedModelComparison(ModelClassifier(2, hidden_units=(16,)), tiny_deep_set())
    indices = np.eye(2, dtype="float32")[np.arange(64) % 2]
    train(amortizer, {"model_indices": indices, "summary_conditions": x}, steps=3, batch_size=32, compiled=False)
    return amortizer


# --- the record of trained shapes -----------------------------------------------------------
def test_amortizers_record_the_trained_shapes_and_keep_them_after_reloading(npe, tmp_path):
    assert npe.trained_shapes == {"parameters": (None, 2), "summary_conditions": (None, 10, 2)}
    assert npe.get_build_config()["input_axes"] == {"parameters": [2], "summary_conditions": [10, 2]}
    npe.save(tmp_path / "npe.keras")
    loaded = keras.saving.load_model(tmp_path / "npe.keras")
    assert loaded.trained_shapes == npe.trained_shapes
    _, x = datasets()
    with pytest.raises(ShapeError, match=r"summary_conditions must have shape \(n_datasets, 10, 2\)"):
        loaded.sample({"summary_conditions": x[..., :1]}, 10)


def test_an_axis_seen_with_several_sizes_is_recorded_as_varying():
    amortizer = AmortizedPosterior(tiny_flow(2), tiny_deep_set())
    for n_obs in (10, 7):
        mu, x = datasets(4, n_obs)
        amortizer.compute_loss({"parameters": mu, "summary_conditions": x})
    assert amortizer.trained_shapes["summary_conditions"] == (None, None, 2)


def test_older_records_without_axes_trust_only_the_feature_axis(npe):
    clone = AmortizedPosterior.from_config(npe.get_config())
    clone.build_from_config({"input_record": {"summary_conditions": [2, 1, 2], "parameters": [2, 2]}})
    assert clone.trained_shapes == {"summary_conditions": (None, None, 2), "parameters": (None, 2)}


# --- AmortizedPosterior: the inputs of issue 22 ----------------------------------------------
def test_wrong_feature_count_names_key_received_and_expected_shape(npe):
    _, x = datasets()
    bad = np.concatenate([x, x[..., :1]], axis=-1)  # (5, 10, 3)
    with pytest.raises(ShapeError, match=r"summary_conditions .*\(n_datasets, 10, 2\).*\(5, 10, 3\)"):
        npe.sample({"summary_conditions": bad}, 10)
    with pytest.raises(ShapeError, match=r"\(5, 10, 3\)"):
        npe.log_posterior({"parameters": np.zeros((5, 2)), "summary_conditions": bad})
    with pytest.raises(ShapeError, match=r"3 features on the last axis instead of 2"):
        npe({"parameters": np.zeros((5, 2), "float32"), "summary_conditions": bad})


def test_one_data_set_without_batch_axis_is_used_as_a_batch_of_one_and_said_so(npe, caplog):
    _, x = datasets()
    with caplog.at_level(logging.WARNING, logger="amortflow"):
        draws = npe.sample({"summary_conditions": x[0]}, 20, seed=1)
    assert "one data set without its batch axis" in caplog.text and "(1, 10, 2)" in caplog.text
    np.testing.assert_array_equal(draws, npe.sample({"summary_conditions": x[:1]}, 20, seed=1))
    log_q = npe.log_posterior({"parameters": np.zeros(2), "summary_conditions": x[0]})
    assert log_q.shape == (1,)


def test_four_axes_are_refused_with_the_expected_shape(npe):
    _, x = datasets()
    with pytest.raises(ShapeError, match=r"\(n_datasets, 10, 2\).*\(5, 10, 2, 1\).*one axis too many"):
        npe.sample({"summary_conditions": x[..., None]}, 10)


def test_log_posterior_refuses_more_or_fewer_parameter_rows_than_data_sets(npe):
    _, x = datasets()
    for rows in (6, 4):  # 6 raised deep in TensorFlow, 4 silently dropped a data set (issue 27, item 4)
        with pytest.raises(ShapeError, match=rf"disagree .*parameters shape \({rows}, 2\).*\(5, 10, 2\)"):
            npe.log_posterior({"parameters": np.zeros((rows, 2)), "summary_conditions": x})
    # several parameter vectors per data set: (n_datasets, n_draws, D)
    assert npe.log_posterior({"parameters": np.zeros((5, 3, 2)), "summary_conditions": x}).shape == (5, 3)
    with pytest.raises(ShapeError, match=r"parameters must have shape \(n_datasets, 2\)"):
        npe.log_posterior({"parameters": np.zeros((5, 3)), "summary_conditions": x})


def test_nan_in_an_observation_is_an_error_or_dropped_on_request(npe):
    _, x = datasets()
    bad = x.copy()
    bad[2, 4, 1] = np.nan
    with pytest.raises(NonFiniteInputError, match=r"summary_conditions .*\(5, 10, 2\).*1 NaN or inf.*\(2, 4, 1\)"):
        npe.sample({"summary_conditions": bad}, 10)
    with pytest.raises(NonFiniteInputError, match="summary_conditions"):
        npe.log_posterior({"parameters": np.zeros((5, 2)), "summary_conditions": np.where(np.isnan(bad), np.inf, bad)})
    with pytest.raises(NonFiniteInputError, match="parameters"):
        npe.log_posterior({"parameters": np.full((5, 2), np.nan), "summary_conditions": x})
    # "drop" removes the set element with the NaN: the same as passing that data set without it
    one = npe.sample({"summary_conditions": bad[2:3]}, 20, seed=3, nonfinite="drop")
    np.testing.assert_array_equal(one, npe.sample({"summary_conditions": np.delete(bad[2:3], 4, axis=1)}, 20, seed=3))
    with pytest.raises(NonFiniteInputError, match="one call at a time"):
        npe.sample({"summary_conditions": bad}, 10, nonfinite="drop")  # sets of 9 and 10 elements
    with pytest.raises(ArgumentError, match="nonfinite"):
        npe.sample({"summary_conditions": x}, 10, nonfinite="ignore")


def test_sets_with_zero_elements_are_refused(npe):
    # (5, 0, 2) gave all-NaN draws (issue 27, item 5)
    with pytest.raises(ShapeError, match=r"summary_conditions has shape \(5, 0, 2\).*axis 1 has zero elements"):
        npe.sample({"summary_conditions": np.zeros((5, 0, 2), "float32")}, 10)


def test_zero_data_sets_are_refused(npe):
    # (0, 10, 2) raised ZeroDivisionError in amortizers/base.py
    with pytest.raises(ShapeError, match=r"summary_conditions has shape \(0, 10, 2\).*zero data sets"):
        npe.sample({"summary_conditions": np.zeros((0, 10, 2), "float32")}, 10)
    with pytest.raises(ShapeError, match="zero data sets"):
        npe.log_posterior({"parameters": np.zeros((0, 2)), "summary_conditions": np.zeros((0, 10, 2))})


def test_lists_and_tuples_of_data_sets_are_arrays(npe):
    # a list of 5 data sets gave draws for the first one only (issue 27, item 3)
    _, x = datasets()
    expected = npe.sample({"summary_conditions": x}, 15, seed=2)
    for container in (list, tuple):
        draws = npe.sample({"summary_conditions": container(x)}, 15, seed=2)
        assert draws.shape == (5, 15, 2)
        np.testing.assert_array_equal(draws, expected)
    with pytest.raises(ShapeError, match="could not be stacked"):
        npe.sample({"summary_conditions": [x[0], x[1, :7]]}, 5)
    # amortizer(inputs): Keras would read the lists as nested inputs
    mu = np.zeros((5, 2), "float32")
    z, _ = npe({"parameters": list(mu), "summary_conditions": tuple(x)})
    np.testing.assert_allclose(z, npe({"parameters": mu, "summary_conditions": x})[0], rtol=1e-6)
    with pytest.raises(ShapeError, match="could not be stacked"):
        npe({"parameters": mu, "summary_conditions": [x[0], x[1, :7]]})


def test_missing_or_unexpected_condition_keys_and_bad_dtypes(npe):
    _, x = datasets()
    with pytest.raises(ConfigurationError, match=r"trained with summary_conditions of shape \(n_datasets, 10, 2\)"):
        npe.sample({"direct_conditions": np.zeros((5, 1))}, 5)
    with pytest.raises(ConfigurationError, match="direct_conditions .* not among the amortizer's training inputs"):
        npe.sample({"summary_conditions": x, "direct_conditions": np.zeros((5, 1))}, 5)
    with pytest.raises(ArgumentError, match="must hold numbers"):
        npe.sample({"summary_conditions": x.astype(str)}, 5)
    assert npe.sample({"summary_conditions": np.round(x).astype("int64")}, 5).shape == (5, 5, 2)


def test_a_set_size_other_than_the_trained_one_is_used_with_a_warning(npe, caplog):
    _, x = datasets(n_obs=25)
    with caplog.at_level(logging.WARNING, logger="amortflow"):
        draws = npe.sample({"summary_conditions": x}, 5, seed=0)
    assert draws.shape == (5, 5, 2) and "trained on (n_datasets, 10, 2) only" in caplog.text


def test_nan_output_from_finite_input_is_an_error_not_an_answer(npe, monkeypatch):
    _, x = datasets()
    monkeypatch.setattr(AmortizedPosterior, "_draw", lambda self, c, n, s: np.full((c.shape[0], n, 2), np.nan))
    with pytest.raises(NonFiniteOutputError, match="AmortizedPosterior.sample produced"):
        npe.sample({"summary_conditions": x}, 5)


def test_an_amortizer_without_record_still_refuses_what_needs_none():
    amortizer = AmortizedPosterior(tiny_flow(2), tiny_deep_set())
    with pytest.raises(ShapeError, match="zero data sets"):
        amortizer.sample({"summary_conditions": np.zeros((0, 10, 2))}, 5)
    with pytest.raises(ShapeError, match="zero elements"):
        amortizer.sample({"summary_conditions": np.zeros((3, 0, 2))}, 5)
    with pytest.raises(NonFiniteInputError):
        amortizer.sample({"summary_conditions": np.full((3, 4, 2), np.inf)}, 5)


# --- the other amortizers ---------------------------------------------------------------------
def test_likelihood_checks_observables_conditions_and_rows(nle):
    mu, x = datasets()
    with pytest.raises(ShapeError, match=r"observables must have shape \(n_datasets, N, 2\).*\(5, 10, 3\)"):
        nle.log_likelihood({"observables": np.concatenate([x, x[..., :1]], -1), "conditions": mu})
    with pytest.raises(ShapeError, match=r"disagree .*observables shape \(5, 10, 2\).*conditions shape \(4, 2\)"):
        nle.log_likelihood({"observables": x, "conditions": mu[:4]})
    bad = x.copy()
    bad[0, 0, 0] = np.inf
    with pytest.raises(NonFiniteInputError, match="observables"):
        nle.log_likelihood({"observables": bad, "conditions": mu})
    dropped = nle.log_likelihood({"observables": bad[:1], "conditions": mu[:1]}, nonfinite="drop")
    np.testing.assert_allclose(dropped, nle.log_likelihood({"observables": x[:1, 1:], "conditions": mu[:1]}))
    with pytest.raises(ShapeError, match=r"conditions must have shape \(n_datasets, 2\).*\(5, 3\)"):
        nle.sample(np.zeros((5, 3)), 4)
    with pytest.raises(ShapeError, match="zero data sets"):
        nle.sample({"conditions": np.zeros((0, 2))}, 4)
    assert nle.sample(list(mu), 4, seed=0).shape == (5, 4, 2)


def test_joint_amortizer_checks_each_part(npe, nle):
    joint = af.amortizers.AmortizedPosteriorLikelihood(npe, nle)
    mu, x = datasets()
    with pytest.raises(ShapeError, match="summary_conditions"):
        joint.sample_parameters({"summary_conditions": x[..., :1]}, 5)
    with pytest.raises(ShapeError, match="conditions"):
        joint.sample_data(np.zeros((5, 4)), 5)
    with pytest.raises(ShapeError, match="disagree"):
        joint.log_likelihood({"observables": x, "conditions": mu[:2]})


def test_ratio_checks_parameters_and_conditions(nre):
    mu, x = datasets()
    with pytest.raises(ShapeError, match=r"disagree .*parameters shape \(6, 2\)"):
        nre.log_ratio({"parameters": np.zeros((6, 2)), "summary_conditions": x})
    with pytest.raises(ShapeError, match=r"parameters must have shape \(n_datasets, 2\).*\(5, 3\)"):
        nre.log_ratio({"parameters": np.zeros((5, 3)), "summary_conditions": x})
    with pytest.raises(NonFiniteInputError, match="parameters"):
        nre.log_ratio({"parameters": np.full((5, 2), np.nan), "summary_conditions": x})
    with pytest.raises(ShapeError, match=r"\(5, 0, 2\)"):
        nre({"parameters": mu, "summary_conditions": np.zeros((5, 0, 2), "float32")})


def test_model_comparison_checks_its_conditions(comparison):
    _, x = datasets()
    with pytest.raises(ShapeError, match=r"summary_conditions must have shape \(n_datasets, 10, 2\)"):
        comparison.posterior_probs({"summary_conditions": x[..., :1]})
    with pytest.raises(NonFiniteInputError):
        comparison.posterior_probs({"summary_conditions": np.where(x > 2, np.nan, x)})
    with pytest.raises(ShapeError, match="zero data sets"):
        comparison.posterior_probs({"summary_conditions": x[:0]})
    probs = comparison.posterior_probs({"summary_conditions": tuple(x)})
    assert probs.shape == (5, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


# --- MCMC and importance sampling on x_obs ------------------------------------------------------
def test_mcmc_and_importance_sampling_check_x_obs_before_any_chain(nle, nre):
    _, x = datasets(1)
    bad = x[0].copy()
    bad[3] = np.nan
    with pytest.raises(NonFiniteInputError, match=r"observables .*\(0, 3, 0\)"):
        sample_posterior_mcmc(nle, bad, PRIOR, num_results=10, num_burnin=0)
    with pytest.raises(NonFiniteInputError, match="summary_conditions"):
        importance_sample(nre, bad, PRIOR, num_proposals=10)
    with pytest.raises(ShapeError, match=r"summary_conditions must have shape \(n_datasets, 10, 2\).*\(1, 10, 3\)"):
        make_log_likelihood_fn(nre, np.zeros((10, 3)))
    with pytest.raises(ShapeError, match="zero elements"):
        make_log_likelihood_fn(nle, np.zeros((0, 2)))
    with pytest.raises(ShapeError, match="exactly one data set"):
        make_log_likelihood_fn(nre, {"summary_conditions": x[0][None].repeat(2, axis=0)})
    # "drop": the likelihood of the nine finite observations
    theta = np.zeros((3, 2), "float32")
    dropped, _ = make_log_likelihood_fn(nle, bad, nonfinite="drop")
    finite, _ = make_log_likelihood_fn(nle, np.delete(bad, 3, axis=0))
    np.testing.assert_allclose(dropped(theta), finite(theta), rtol=1e-6)
    fn, _ = make_log_likelihood_fn(nre, x[0])  # one data set without batch axis: the convention here, no warning
    assert np.isfinite(fn(theta)).all()


def test_every_error_is_an_amortflow_error():
    for error in (NonFiniteInputError, NonFiniteOutputError, ShapeError):
        assert issubclass(error, AmortflowError)
