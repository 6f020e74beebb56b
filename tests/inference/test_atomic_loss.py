"""The APT / SNPE-C atomic loss: its atoms, its value where it is known, and the proposal correction it makes.

Known answer (see :mod:`tests.inference.conjugate`): training on simulations whose parameters
come from a narrow, shifted proposal ``N(m + 0.3, 0.25^2 I)`` (``m`` the posterior mean), the
plain NPE loss learns the *proposal posterior*, precision ``1 / 0.25^2 + 10 = 26`` instead of
``11``: its sd is ``sqrt(11 / 26) = 0.65`` of the true one and its mean is shifted by
``16 (m + 0.3 - m_26) / 26`` (0.68 and 0.51 posterior sd here). The atomic loss learns the true
posterior.

Tolerances. 4000 draws: Monte Carlo standard error 0.016 sd for a mean, 1.1 % for an sd (4 of
each allowed). Estimation, a tiny flow trained for seconds on 1500 simulations of which the
atomic loss sees only the proposal's region: the mean may be off by 0.3 posterior sd and the sd
by 20 % (seeds of this set-up gave at most 0.24 sd and 15 %). The uncorrected fit must match the
proposal posterior within the same budget and miss the true one by more than it.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import amortflow as af
from amortflow.exceptions import ArgumentError
from amortflow.inference.atomic_loss import AtomicPosterior, contrasting_indices
from amortflow.inference.proposal_simulation import simulate_at
from tests.amortizers.helpers import tiny_flow
from tests.inference.conjugate import N_OBS, POSTERIOR_MEAN, POSTERIOR_SD, PRIOR, X_OBS, c2st_against_exact, model

N_DRAWS = 4000
MEAN_TOL = 0.3 + 4 / np.sqrt(N_DRAWS)  # in posterior sds
SD_TOL = 0.2 + 4 / np.sqrt(2 * N_DRAWS)  # relative
#: C2ST accuracy against exact draws: normals within the budget above have a total-variation
#: distance of at most 0.24, so the best classifier scores at most 0.62; + 4 standard errors
#: of an accuracy from 2 x 1000 points (0.011 each). The proposal posterior scores about 0.73.
C2ST_TOL = 0.62 + 4 * np.sqrt(0.25 / 2000)
PROPOSAL_SHIFT, PROPOSAL_SD = 0.3, 0.25


def test_contrasting_atoms_are_other_rows_without_repeats():
    others, valid = contrasting_indices(12, 5, keras.random.SeedGenerator(0))
    others, valid = others.numpy(), valid.numpy()
    assert others.shape == (12, 4) and valid.all()
    assert not (others == np.arange(12)[:, None]).any()
    assert all(len(set(row)) == 4 for row in others)


def test_a_batch_smaller_than_the_atoms_masks_the_row_itself():
    others, valid = contrasting_indices(3, 10, keras.random.SeedGenerator(1))
    others, valid = others.numpy(), valid.numpy()
    assert others.shape == (3, 3) and (valid.sum(axis=1) == 2).all()
    assert (others[~valid] == np.arange(3)).all()  # the invalid atom of row i is i itself


def test_loss_is_log_atoms_when_the_network_equals_the_prior():
    # An untrained flow is the identity (standard normal) and the standardization is unadapted,
    # so q(theta | x) = N(0, I) = p(theta): every ratio q / p is 1 and L = log(number of atoms).
    wrapper = AtomicPosterior(af.amortizers.AmortizedPosterior(tiny_flow(2)), PRIOR.log_prob, num_atoms=10)
    theta = np.random.default_rng(0).normal(size=(16, 2)).astype("float32")
    batch = {"parameters": theta, "direct_conditions": theta + 0.1}
    np.testing.assert_allclose(float(wrapper.compute_loss(batch)), np.log(10), rtol=1e-5)
    np.testing.assert_allclose(float(wrapper.compute_loss({k: v[:3] for k, v in batch.items()})), np.log(3), rtol=1e-5)
    assert len(wrapper.weights) == len(wrapper.posterior.weights)  # no weights of its own


def test_the_atomic_loss_trains_under_xla():
    # XLA needs every shape at compile time; the atoms' shapes follow the batch's
    wrapper = AtomicPosterior(af.amortizers.AmortizedPosterior(tiny_flow(2)), PRIOR.log_prob)
    trainer = af.trainers.Trainer(amortizer=wrapper, generative_model=model(), progress=False, seed=0, jit_compile=True)
    history = trainer.train_offline(model()(200, rng=0), epochs=2, batch_size=64, early_stopping=False)
    assert trainer._compiled.uses_xla and np.isfinite(history["train_losses"]["Loss"]).all()


def test_arguments_are_checked():
    posterior = af.amortizers.AmortizedPosterior(tiny_flow(2))
    with pytest.raises(ArgumentError, match="num_atoms"):
        AtomicPosterior(posterior, PRIOR.log_prob, num_atoms=1)
    with pytest.raises(ArgumentError, match="prior_log_prob"):
        AtomicPosterior(posterior, None)
    with_mmd = af.amortizers.AmortizedPosterior(tiny_flow(2), af.networks.DeepSet(summary_dim=2), summary_loss_fun="MMD")
    with pytest.raises(ArgumentError, match="summary_loss_fun"):
        AtomicPosterior(with_mmd, PRIOR.log_prob)


def _fit(raw, atomic: bool):
    posterior = af.amortizers.AmortizedPosterior(tiny_flow(2))
    amortizer = AtomicPosterior(posterior, PRIOR.log_prob) if atomic else posterior
    trainer = af.trainers.Trainer(amortizer=amortizer, generative_model=model(), progress=False, seed=0)
    trainer.train_offline(raw, epochs=40, batch_size=128, optimizer=3e-3)
    draws = posterior.sample(trainer.configure({"sim_data": X_OBS[None]}), N_DRAWS, seed=0, squeeze=True)
    shift, sd = (draws.mean(axis=0) - POSTERIOR_MEAN) / POSTERIOR_SD, draws.std(axis=0) / POSTERIOR_SD
    return shift, sd, c2st_against_exact(draws)


def test_the_atomic_loss_corrects_for_a_proposal_the_plain_loss_does_not(rng):
    theta = POSTERIOR_MEAN + PROPOSAL_SHIFT + PROPOSAL_SD * rng.normal(size=(1500, 2))
    raw = simulate_at(model(), theta.astype("float32"), rng)
    # the proposal posterior the plain loss converges to, in units of the true posterior
    precision = 1 / PROPOSAL_SD**2 + N_OBS
    wrong_mean = ((POSTERIOR_MEAN + PROPOSAL_SHIFT) / PROPOSAL_SD**2 + N_OBS * X_OBS) / precision
    wrong_shift, wrong_sd = (wrong_mean - POSTERIOR_MEAN) / POSTERIOR_SD, np.sqrt(1 / precision) / POSTERIOR_SD
    assert np.all(np.abs(wrong_shift) > MEAN_TOL) and wrong_sd < 1 - SD_TOL  # the test can tell them apart

    shift, sd, accuracy = _fit(raw, atomic=False)
    np.testing.assert_array_less(np.abs(shift - wrong_shift), MEAN_TOL)
    np.testing.assert_array_less(np.abs(sd / wrong_sd - 1), SD_TOL)
    assert np.all(np.abs(shift) > MEAN_TOL) and np.all(sd < 1 - SD_TOL) and accuracy > C2ST_TOL  # visibly wrong

    shift, sd, accuracy = _fit(raw, atomic=True)
    np.testing.assert_array_less(np.abs(shift), MEAN_TOL)
    np.testing.assert_array_less(np.abs(sd - 1), SD_TOL)
    assert accuracy < C2ST_TOL
