import logging

import numpy as np
import pytest
import tensorflow_probability as tfp

from amortflow.exceptions import ArgumentError, ShapeError, SimulationError
from amortflow.simulation import RAW_KEYS, GenerativeModel, Prior, Simulator

from .conftest import gaussian_batch_prior, gaussian_batch_sim, gaussian_prior_fun, gaussian_sim


def test_six_keys_and_shapes(gaussian_model):
    out = gaussian_model(batch_size=7, rng=0)
    assert set(out) == set(RAW_KEYS)
    assert out["prior_draws"].shape == (7, 2) and out["sim_data"].shape == (7, 5, 2)
    assert all(out[k] is None for k in RAW_KEYS if "context" in k)


def test_contexts_of_both_kinds(context_model):
    out = context_model(batch_size=4, rng=3)
    n_obs = out["sim_non_batchable_context"]
    assert out["sim_batchable_context"].shape == (4, n_obs)
    assert out["sim_data"].shape == (4, n_obs, 2)
    assert out["prior_batchable_context"] is None and out["prior_non_batchable_context"] is None


def test_pilot_run_logs_shapes_and_absent_contexts(caplog, context_model):
    with caplog.at_level(logging.INFO, logger="amortflow"):
        GenerativeModel(context_model.prior, context_model.simulator, name="ctx")
    text = caplog.text
    assert "'ctx': running 2 pilot simulations" in text
    assert "Shape of parameter batch after 2 pilot simulations: (2, 2)" in text
    assert "Shape of simulation batch after 2 pilot simulations: (2, " in text
    assert "No optional prior_batchable_context" in text and "No optional prior_non_batchable_context" in text
    assert "sim_batchable_context: array of shape (2, " in text and "sim_non_batchable_context: int" in text


def test_skip_test_runs_nothing():
    def never(b):
        raise AssertionError("called")

    GenerativeModel(Prior(batch_prior_fun=never), Simulator(batch_simulator_fun=never), skip_test=True)


def test_pilot_catches_bad_simulator():
    def bad_sim(params):
        return params[:1]

    with pytest.raises(ShapeError, match=r"batch_simulator_fun 'bad_sim'.*shape \(1, 2\).*batch_size=2"):
        GenerativeModel(Prior(batch_prior_fun=gaussian_batch_prior), Simulator(batch_simulator_fun=bad_sim))


@pytest.mark.parametrize("prior_batched, sim_batched", [(False, False), (True, True), (False, True), (True, False)])
def test_plain_callables_are_wrapped(prior_batched, sim_batched):
    prior = gaussian_batch_prior if prior_batched else gaussian_prior_fun
    sim = gaussian_batch_sim if sim_batched else gaussian_sim
    model = GenerativeModel(prior, sim, prior_is_batched=prior_batched, simulator_is_batched=sim_batched)
    assert model.prior.is_batched is prior_batched and model.simulator.is_batched is sim_batched
    assert model(3, rng=0)["sim_data"].shape == (3, 5, 2)


def test_callable_simulator_needs_flag():
    with pytest.raises(ArgumentError, match="simulator_is_batched=True"):
        GenerativeModel(gaussian_prior_fun, gaussian_sim)


def test_distribution_as_prior():
    model = GenerativeModel(tfp.distributions.Normal([0.0, 0.0], 1.0), Simulator(batch_simulator_fun=gaussian_batch_sim))
    assert model.prior.dim == 2 and model(3, rng=0)["prior_draws"].shape == (3, 2)


def test_seed_reproducibility(context_model):
    a, b = context_model(6, rng=11), context_model(6, rng=11)
    for key in RAW_KEYS:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["prior_draws"], context_model(6, rng=12)["prior_draws"])


def unstable_sim(params, rng):
    """Returns NaN whenever theta_1 > 0.5 (about 31% of N(0, 1) draws)."""
    data = params[:, None, :] + rng.normal(size=(len(params), 4, 2))
    data[params[:, 0] > 0.5] = np.nan
    return data


def test_nan_raises_with_count_and_example():
    model = GenerativeModel(Prior(batch_prior_fun=gaussian_batch_prior), Simulator(batch_simulator_fun=unstable_sim), skip_test=True)
    with pytest.raises(SimulationError) as info:
        model(50, rng=0)
    message = str(info.value)
    assert "batch_simulator_fun 'unstable_sim'" in message and "'sim_data' (shape (50, 4, 2))" in message
    assert " of 50 simulations" in message and "with parameters [" in message and "on_invalid='drop'" in message


def test_drop_keeps_batch_size_and_logs(caplog):
    model = GenerativeModel(
        Prior(batch_prior_fun=gaussian_batch_prior, context_generator=None),
        Simulator(batch_simulator_fun=unstable_sim),
        on_invalid="drop",
        skip_test=True,
        name="unstable",
    )
    with caplog.at_level(logging.INFO, logger="amortflow"):
        out = model(200, rng=0)
    assert out["sim_data"].shape == (200, 4, 2) and np.isfinite(out["sim_data"]).all()
    assert (out["prior_draws"][:, 0] <= 0.5).all()  # every kept simulation comes from a valid parameter
    assert "'unstable': dropped" in caplog.text and "keep batch_size=200" in caplog.text


def test_drop_keeps_contexts_consistent():
    from amortflow.simulation import ContextGenerator

    context = ContextGenerator(
        non_batchable_context_fun=lambda rng: int(rng.integers(3, 6)),
        batchable_context_fun=lambda rng: rng.normal(),
    )

    def sim(theta, shift, n_obs, rng):
        x = theta + shift + rng.normal(size=(n_obs, 2))
        return x * np.nan if shift > 1.0 else x

    model = GenerativeModel(Prior(prior_fun=gaussian_prior_fun), Simulator(simulator_fun=sim, context_generator=context),
                            on_invalid="drop", skip_test=True)  # fmt: skip
    out = model(64, rng=5)
    assert (out["sim_batchable_context"] <= 1.0).all()  # the shift that caused NaN was dropped with its data
    assert out["sim_data"].shape == (64, out["sim_non_batchable_context"], 2)


def test_drop_gives_up_when_everything_fails():
    def always_nan(params):
        return np.full((len(params), 3), np.inf)

    model = GenerativeModel(Prior(batch_prior_fun=gaussian_batch_prior), Simulator(batch_simulator_fun=always_nan),
                            on_invalid="drop", skip_test=True)  # fmt: skip
    with pytest.raises(SimulationError, match=r"'always_nan' had NaN or inf.*re-simulation rounds; 10 of 10 still invalid"):
        model(10, rng=0)


def test_bad_on_invalid():
    with pytest.raises(ArgumentError, match="'raise' or 'drop', received 'ignore'"):
        GenerativeModel(gaussian_prior_fun, gaussian_sim, simulator_is_batched=False, on_invalid="ignore")
