"""SequentialInference on the conjugate Gaussian model (:mod:`tests.inference.conjugate`): known answers and input checks.

Tolerances. 4000 posterior draws: Monte Carlo standard error 0.016 sd for a mean and 1.1 % for
an sd (4 of each allowed). Estimation, a tiny flow trained for seconds on 2 x 600 simulations:
the mean may be off by 0.25 posterior sd and the sd by 15 % (two normals that close have a
total-variation distance below 0.15, so a classifier two-sample test could reach at most 0.57).
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow_probability as tfp
from scipy import stats

import amortflow as af
from amortflow.exceptions import ArgumentError, ShapeError
from amortflow.inference import RoundRecord, SequentialInference
from tests.amortizers.helpers import tiny_deep_set, tiny_flow
from tests.inference.conjugate import (
    POSTERIOR_MEAN,
    POSTERIOR_SD,
    PRIOR,
    X_OBS,
    assert_matches_posterior,
    model,
    sample_means,
)

tfd = tfp.distributions
N_DRAWS = 4000
QUIET = {"progress": False}


def test_snpe_c_recovers_the_analytic_posterior(rng):
    posterior = af.amortizers.AmortizedPosterior(tiny_flow(2))
    inference = SequentialInference(model(), posterior, X_OBS, method="snpe_c", seed=1, trainer_kwargs=QUIET)
    history = inference.run(rounds=2, simulations_per_round=600, epochs=30, batch_size=128, optimizer=3e-3)
    assert [record.round for record in history] == [1, 2] and all(isinstance(r, RoundRecord) for r in history)
    assert [r.proposal for r in history] == ["prior", "posterior"]
    assert [r.total_simulations for r in history] == [600, 1200] and all(0 < r.epochs <= 30 for r in history)
    assert np.isfinite([r.final_train_loss for r in history]).all()
    draws = inference.sample(N_DRAWS, seed=0)
    assert draws.shape == (N_DRAWS, 2)
    assert_matches_posterior(draws)
    # log_prob is the network's normalized density: close to the analytic one where the posterior lives
    exact = stats.norm(POSTERIOR_MEAN, POSTERIOR_SD).logpdf(draws[:200]).sum(axis=1)
    learned = inference.log_prob(draws[:200])
    assert learned.shape == (200,) and np.corrcoef(exact, learned)[0, 1] > 0.9
    assert abs(np.mean(learned - exact)) < 0.3
    assert inference.log_prob(draws[0]).shape == (1,)


def test_draws_stay_inside_a_bounded_prior(rng):
    box = tfd.Independent(tfd.Uniform(np.full(2, -1.0, "float32"), np.full(2, 1.0, "float32")), 1)
    simulator = af.simulation.Simulator(batch_simulator_fun=sample_means)
    boxed = af.simulation.GenerativeModel(prior=af.simulation.Prior(distribution=box), simulator=simulator, skip_test=True)
    inference = SequentialInference(boxed, af.amortizers.AmortizedPosterior(tiny_flow(2)), np.array([0.95, 0.0], "float32"),
                                    seed=2, trainer_kwargs=QUIET)  # fmt: skip
    inference.run(rounds=1, simulations_per_round=200, epochs=2, batch_size=64)
    draws = inference.sample(500, seed=0)  # x_obs near the edge: an untrained flow puts mass outside
    assert draws.shape == (500, 2) and np.all(np.abs(draws) <= 1.0)
    assert np.isneginf(inference.log_prob(np.array([[1.5, 0.0]]))).all()


def test_inputs_are_checked():
    posterior = af.amortizers.AmortizedPosterior(tiny_flow(2))
    with pytest.raises(ArgumentError, match="method must be one of"):
        SequentialInference(model(), posterior, X_OBS, method="snpe_a")
    with pytest.raises(ShapeError, match=r"x_obs must be one data set shaped like one simulation's sim_data, \(2,\)"):
        SequentialInference(model(), posterior, np.zeros((10, 2)))
    function_prior = af.simulation.GenerativeModel(
        prior=af.simulation.Prior(batch_prior_fun=lambda b, rng: rng.normal(size=(b, 2))),
        simulator=af.simulation.Simulator(batch_simulator_fun=sample_means), skip_test=True,
    )  # fmt: skip
    with pytest.raises(ArgumentError, match="needs the prior's density"):
        SequentialInference(function_prior, posterior, X_OBS)
    likelihood = af.amortizers.AmortizedLikelihood(tiny_flow(2))
    with pytest.raises(ArgumentError, match="method='snpe_c' needs an AmortizedPosterior"):
        SequentialInference(model(), likelihood, X_OBS)
    inference = SequentialInference(model(), posterior, X_OBS, trainer_kwargs=QUIET)
    with pytest.raises(ArgumentError, match="call run"):
        inference.sample(10)
    with pytest.raises(ArgumentError, match="rounds must be a positive integer"):
        inference.run(rounds=0, simulations_per_round=10)


def test_snpe_c_with_a_summary_network_on_set_valued_data(rng):
    # the atomic loss summarizes each data set once and repeats its summary for every atom
    def observations(theta, rng):
        return theta[:, None, :] + rng.normal(size=(len(theta), 10, 2))

    simulator = af.simulation.Simulator(batch_simulator_fun=observations)
    sets = af.simulation.GenerativeModel(prior=af.simulation.Prior(distribution=PRIOR), simulator=simulator, skip_test=True)
    posterior = af.amortizers.AmortizedPosterior(tiny_flow(2), tiny_deep_set(4))
    x_obs = (X_OBS + np.zeros((10, 2))).astype("float32")
    inference = SequentialInference(sets, posterior, x_obs, seed=3, trainer_kwargs=QUIET)
    history = inference.run(rounds=2, simulations_per_round=200, epochs=2, batch_size=64)
    assert [r.total_simulations for r in history] == [200, 400] and np.isfinite(history[1].final_train_loss)
    assert inference.sample(100, seed=0).shape == (100, 2)


def test_checkpoints_of_the_two_snpe_c_trainers_do_not_collide(tmp_path):
    kwargs = {**QUIET, "checkpoint_path": tmp_path / "run"}
    inference = SequentialInference(model(), af.amortizers.AmortizedPosterior(tiny_flow(2)), X_OBS, seed=4,
                                    trainer_kwargs=kwargs)  # fmt: skip
    inference.run(rounds=2, simulations_per_round=200, epochs=1, batch_size=64)
    assert inference.trainer.checkpoint_path == tmp_path / "run_atomic"
    assert any((tmp_path / "run").iterdir()) and any((tmp_path / "run_atomic").iterdir())


def test_each_snpe_c_trainer_traces_its_step_once_whatever_the_number_of_rounds():
    # every round is a new train_offline run with a new schedule; its optimizer is renewed in place,
    # so the step traced in the first round of a trainer serves the later ones (a trace costs seconds)
    inference = SequentialInference(model(), af.amortizers.AmortizedPosterior(tiny_flow(2)), X_OBS, seed=5,
                                    trainer_kwargs=QUIET)  # fmt: skip
    inference.run(rounds=4, simulations_per_round=100, epochs=2, batch_size=64)
    plain, atomic = inference._method.trainer, inference.trainer
    assert atomic is not plain and atomic.state.runs_started == 3
    assert plain._compiled.traces == 1 and atomic._compiled.traces == 1
