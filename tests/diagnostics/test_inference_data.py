"""to_inference_data: amortflow draws as an arviz.InferenceData (ArviZ is an optional extra)."""

from __future__ import annotations

import numpy as np
import pytest

import amortflow as af
from amortflow.exceptions import ArgumentError, NonFiniteInputError, ShapeError
from amortflow.inference import MCMCResult

az = pytest.importorskip("arviz")


def test_posterior_prior_observed_and_predictive_groups():
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(500, 2))
    idata = af.diagnostics.to_inference_data(
        draws, param_names=["mu", "sigma"], observed=rng.normal(size=(10, 2)), prior_draws=rng.normal(size=(300, 2)),
        posterior_predictive=rng.normal(size=(500, 10, 2)),
    )  # fmt: skip
    assert isinstance(idata, az.InferenceData)
    assert set(idata.groups()) >= {"posterior", "prior", "observed_data", "posterior_predictive"}
    np.testing.assert_array_equal(idata.posterior["mu"].values[0], draws[:, 0])
    assert idata.posterior["sigma"].shape == (1, 500)
    assert idata.prior["mu"].shape == (1, 300)
    assert idata.observed_data["x_obs"].shape == (10, 2)
    assert idata.posterior_predictive["x"].shape == (1, 500, 10, 2)
    summary = az.summary(idata, kind="stats")  # ArviZ's own tools work on it
    np.testing.assert_allclose(summary.loc["mu", "mean"], draws[:, 0].mean(), atol=1e-3)


def test_several_data_sets_and_mcmc_chains():
    draws = np.random.default_rng(1).normal(size=(3, 100, 2))  # what amortizer.sample returns
    idata = af.diagnostics.to_inference_data(draws)
    assert idata.posterior["theta_0"].dims == ("chain", "draw", "dataset")
    np.testing.assert_array_equal(idata.posterior["theta_1"].values[0, :, 2], draws[2, :, 1])
    chains = np.random.default_rng(2).normal(size=(50, 4, 2))  # (num_results, num_chains, D)
    result = MCMCResult(chains.reshape(-1, 2), chains, np.ones(2), np.full(2, 200.0), 0.8, "nuts", np.asarray(0.1))
    idata = af.diagnostics.to_inference_data(result, param_names=["a", "b"])
    assert idata.posterior["a"].shape == (4, 50)
    np.testing.assert_array_equal(idata.posterior["b"].values[3], chains[:, 3, 1])


def test_bad_draws_and_names_are_refused():
    with pytest.raises(ShapeError, match=r"\(5,\)"):
        af.diagnostics.to_inference_data(np.zeros(5))
    with pytest.raises(NonFiniteInputError):
        af.diagnostics.to_inference_data(np.full((4, 2), np.nan))
    with pytest.raises(ArgumentError, match="2 distinct names"):
        af.diagnostics.to_inference_data(np.zeros((4, 2)), param_names=["a"])
    with pytest.raises(ShapeError, match=r"prior_draws must have shape \(n_prior, 2\)"):
        af.diagnostics.to_inference_data(np.zeros((4, 2)), prior_draws=np.zeros((4, 3)))
