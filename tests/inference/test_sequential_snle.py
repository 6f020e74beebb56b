"""SequentialInference(method="snle") on the conjugate Gaussian model (:mod:`tests.inference.conjugate`).

Tolerances. 4000 MCMC draws of 50 random-walk chains are autocorrelated: their effective sample
size is reported by the sampler (about 500 here), so the Monte Carlo budget is 4 standard
errors for that ESS. Estimation, a tiny likelihood flow trained for seconds on 2 x 600
simulations: 0.25 posterior sd in the mean, 15 % in the sd (as for SNPE-C).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import amortflow as af
from amortflow.exceptions import ArgumentError
from amortflow.inference import SequentialInference
from tests.amortizers.helpers import tiny_flow
from tests.inference.conjugate import POSTERIOR_MEAN, POSTERIOR_SD, X_OBS, assert_matches_posterior, model

N_DRAWS = 4000


def test_snle_recovers_the_analytic_posterior(rng):
    likelihood = af.amortizers.AmortizedLikelihood(tiny_flow(2))
    inference = SequentialInference(model(), likelihood, X_OBS, method="snle", seed=1, trainer_kwargs={"progress": False})
    history = inference.run(rounds=2, simulations_per_round=600, epochs=30, batch_size=128, optimizer=3e-3)
    assert [r.proposal for r in history] == ["prior", "posterior"] and history[1].total_simulations == 1200
    draws = inference.sample(N_DRAWS, seed=0)
    assert draws.shape == (N_DRAWS, 2)
    assert_matches_posterior(draws, effective_size=np.min(inference._method.last_mcmc.ess))
    # log_prob is unnormalized: it differs from the exact log posterior by about a constant
    exact = stats.norm(POSTERIOR_MEAN, POSTERIOR_SD).logpdf(draws[:200]).sum(axis=1)
    learned = inference.log_prob(draws[:200])
    assert learned.shape == (200,) and np.corrcoef(exact, learned)[0, 1] > 0.9


def test_snle_inputs_are_checked():
    posterior = af.amortizers.AmortizedPosterior(tiny_flow(2))
    with pytest.raises(ArgumentError, match="method='snle' needs an AmortizedLikelihood"):
        SequentialInference(model(), posterior, X_OBS, method="snle")
    likelihood = af.amortizers.AmortizedLikelihood(tiny_flow(2))
    with pytest.raises(ArgumentError, match="mcmc_kwargs may not set"):
        SequentialInference(model(), likelihood, X_OBS, method="snle", mcmc_kwargs={"num_results": 10})
    with pytest.raises(ArgumentError, match="mcmc_kwargs apply to methods 'snle' and 'snre'"):
        SequentialInference(model(), posterior, X_OBS, mcmc_kwargs={"kernel": "nuts"})
