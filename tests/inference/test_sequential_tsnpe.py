"""SequentialInference(method="tsnpe") on the conjugate Gaussian model (:mod:`tests.inference.conjugate`).

Known answers. The posterior as in :mod:`tests.inference.test_sequential` (same budget: 0.25
posterior sd in the mean, 15 % in the sd, plus 4 Monte Carlo standard errors of 4000 draws).
The truncation region of the exact posterior, its ``1 - 1e-4`` highest-probability disc of
radius ``sd sqrt(chi2_2^-1(1 - 1e-4))`` around the posterior mean, holds a prior mass
``P(noncentral chi2_2(|m|^2) <= r^2) = 0.41``: the share of prior draws accepted into round 2's
proposal. A network sd off by 15 % moves the radius by as much and the mass by about 0.1, so
the acceptance may differ from 0.41 by 0.15.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

import amortflow as af
from amortflow.inference import SequentialInference
from tests.amortizers.helpers import tiny_flow
from tests.inference.conjugate import POSTERIOR_MEAN, POSTERIOR_SD, X_OBS, assert_matches_posterior, model

N_DRAWS = 4000


def test_tsnpe_recovers_the_analytic_posterior_and_truncation_region(rng):
    posterior = af.amortizers.AmortizedPosterior(tiny_flow(2))
    inference = SequentialInference(model(), posterior, X_OBS, method="tsnpe", seed=1, trainer_kwargs={"progress": False})
    history = inference.run(rounds=2, simulations_per_round=600, epochs=30, batch_size=128, optimizer=3e-3)
    assert [r.proposal for r in history] == ["prior", "truncated prior"] and history[1].total_simulations == 1200
    radius_sq = POSTERIOR_SD**2 * stats.chi2.ppf(1 - 1e-4, df=2)
    region_mass = stats.ncx2.cdf(radius_sq, df=2, nc=float(np.sum(POSTERIOR_MEAN**2)))
    assert abs(region_mass - 0.41) < 0.01
    assert abs(history[1].proposal_acceptance - region_mass) < 0.15
    draws = inference.sample(N_DRAWS, seed=0)
    assert draws.shape == (N_DRAWS, 2)
    assert_matches_posterior(draws)
    assert np.isfinite(inference.log_prob(draws[:10])).all()
