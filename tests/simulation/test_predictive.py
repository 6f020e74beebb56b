"""posterior_predictive: one simulated data set per posterior draw, in the layout of the draws."""

from __future__ import annotations

import numpy as np
import pytest

import amortflow as af
from amortflow.exceptions import ArgumentError, NonFiniteInputError, ShapeError


def make_model():
    prior = af.simulation.Prior(batch_prior_fun=lambda b, rng: rng.normal(size=(b, 2)))
    context = af.simulation.ContextGenerator(non_batchable_context_fun=lambda rng: int(rng.integers(5, 9)))
    simulator = af.simulation.Simulator(
        batch_simulator_fun=lambda theta, n, rng: theta[:, None] + 0.01 * rng.normal(size=(len(theta), n, 2)),
        context_generator=context,
    )
    return af.simulation.GenerativeModel(prior, simulator, skip_test=True)


def test_one_data_set_per_draw_in_the_layout_of_the_draws():
    model = make_model()
    draws = np.random.default_rng(0).normal(size=(3, 4, 2))
    x_rep = af.simulation.posterior_predictive(model, draws, rng=1, non_batchable_context=6)
    assert x_rep.shape == (3, 4, 6, 2)
    np.testing.assert_allclose(x_rep.mean(axis=2), draws, atol=0.05)  # each simulated at its own draw
    np.testing.assert_array_equal(x_rep, af.simulation.posterior_predictive(model, draws, rng=1,
                                                                            non_batchable_context=6))  # fmt: skip
    single = af.simulation.posterior_predictive(model.simulator, draws[0], rng=1, non_batchable_context=6)
    assert single.shape == (4, 6, 2)
    assert af.simulation.posterior_predictive(model, draws, rng=1, max_draws=2).shape[:2] == (3, 2)


def test_bad_draws_are_refused():
    model = make_model()
    with pytest.raises(ShapeError, match=r"\(n_datasets, n_samples, D\).*\(3, 0, 2\)"):
        af.simulation.posterior_predictive(model, np.zeros((3, 0, 2)))
    with pytest.raises(ShapeError, match=r"\(4,\)"):
        af.simulation.posterior_predictive(model, np.zeros(4))
    with pytest.raises(NonFiniteInputError, match="NaN"):
        af.simulation.posterior_predictive(model, np.full((2, 2), np.nan))
    with pytest.raises(ArgumentError, match="max_draws"):
        af.simulation.posterior_predictive(model, np.zeros((2, 2)), max_draws=0)
    with pytest.raises(ArgumentError, match="GenerativeModel or a Simulator"):
        af.simulation.posterior_predictive("model", np.zeros((2, 2)))
