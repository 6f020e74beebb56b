"""SequentialInference(method="snre") on the conjugate Gaussian model (:mod:`tests.inference.conjugate`).

Tolerances as in :mod:`tests.inference.test_sequential_snle`: 4 Monte Carlo standard errors for
the ESS the sampler reports, plus 0.25 posterior sd in the mean and 15 % in the sd for a small
classifier trained for seconds on 2 x 600 simulations (three seeds gave at most 0.12 sd and 11 %).
"""

from __future__ import annotations

import numpy as np
import pytest

import amortflow as af
from amortflow.exceptions import ArgumentError
from amortflow.inference import SequentialInference
from amortflow.networks.classifiers import RatioClassifier
from tests.amortizers.helpers import tiny_flow
from tests.inference.conjugate import X_OBS, assert_matches_posterior, model

N_DRAWS = 4000


def test_snre_recovers_the_analytic_posterior(rng):
    ratio = af.amortizers.AmortizedRatio(RatioClassifier(hidden_units=(64, 64)), num_contrastive=4, loss="nre_c")
    inference = SequentialInference(model(), ratio, X_OBS, method="snre", seed=1, trainer_kwargs={"progress": False})
    history = inference.run(rounds=2, simulations_per_round=600, epochs=30, batch_size=128, optimizer=3e-3)
    assert [r.proposal for r in history] == ["prior", "posterior"] and history[1].total_simulations == 1200
    draws = inference.sample(N_DRAWS, seed=0)
    assert draws.shape == (N_DRAWS, 2)
    assert_matches_posterior(draws, effective_size=np.min(inference._method.last_mcmc.ess))
    assert inference.log_prob(draws[:10]).shape == (10,)


def test_snre_needs_a_ratio_amortizer():
    with pytest.raises(ArgumentError, match="method='snre' needs an AmortizedRatio"):
        SequentialInference(model(), af.amortizers.AmortizedLikelihood(tiny_flow(2)), X_OBS, method="snre")
