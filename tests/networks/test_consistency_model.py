"""Known answers for ConsistencyModel: the conjugate Gaussian posterior through AmortizedPosterior
and the Trainer (a looser budget than the flows': two network evaluations per draw, no density),
the missing density, the discretization schedule and argument checks.

Timing on the shared 2-core test machine: the trained posterior ~20 s (800 steps).
"""

from __future__ import annotations

import numpy as np
import pytest

import amortflow as af
from amortflow.exceptions import ArgumentError
from amortflow.networks.inference.consistency_model import ConsistencyModel, discretization_steps, karras_sigmas
from tests.inference.conjugate import POSTERIOR_MEAN, POSTERIOR_SD, X_OBS, c2st_against_exact, model

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

#: Twice the flows' estimation budget (tests/inference/conjugate.py): means within 0.5 posterior
#: sd, sds within 30 %. Two normals that far apart have a total-variation distance of at most 0.37,
#: so the best classifier scores at most 0.685; plus 4 standard errors of a 2 x 1000 accuracy (0.045): 0.73.
MEAN_BUDGET, SD_BUDGET, C2ST_MAX = 0.5, 0.3, 0.73


@pytest.fixture(scope="module")
def trained():
    net = ConsistencyModel(2, total_steps=800, dense_args={"units": 64}, num_dense=2, seed=0)
    amortizer = af.amortizers.AmortizedPosterior(net)
    trainer = af.trainers.Trainer(amortizer=amortizer, generative_model=model(), progress=False, seed=0)
    trainer.train_online(epochs=1, iterations_per_epoch=800, batch_size=128, optimizer=3e-3)
    return amortizer, trainer


def test_trained_consistency_model_matches_the_conjugate_posterior(trained):
    amortizer, trainer = trained
    assert int(amortizer.inference_net.step.numpy()) == 800  # the schedule saw every training step
    draws = amortizer.sample(trainer.configure({"sim_data": X_OBS[None]}), 2000, seed=0, squeeze=True)
    n = len(draws)
    assert np.isfinite(draws).all()
    np.testing.assert_array_less(np.abs(draws.mean(0) - POSTERIOR_MEAN) / POSTERIOR_SD, MEAN_BUDGET + 4 / np.sqrt(n))
    np.testing.assert_array_less(np.abs(draws.std(0) / POSTERIOR_SD - 1), SD_BUDGET + 4 / np.sqrt(2 * n))
    assert c2st_against_exact(draws) < C2ST_MAX


def test_log_posterior_raises_a_clear_error(trained):
    amortizer, trainer = trained
    conf = trainer.configure(model()(3, rng=1))
    with pytest.raises(NotImplementedError, match="no tractable density.*FlowMatching"):
        amortizer.log_posterior(conf)


def test_discretization_doubles_from_s0_to_s1():
    # K = 1000 steps, s0 = 10, s1 = 40: floor(log2 4) + 1 = 3 stages of 333 steps: N = 11, 21, 41, 41.
    got = [int(discretization_steps(k, 1000, 10, 40)) for k in (0, 332, 333, 666, 999, 5000)]
    assert got == [11, 11, 21, 41, 41, 41]
    sigmas = karras_sigmas(5, 0.001, 10.0)
    np.testing.assert_allclose(sigmas[[0, -1]], [0.001, 10.0], rtol=1e-6)
    assert np.all(np.diff(sigmas) > 0)


def test_boundary_condition_holds_at_sigma_min():
    # c_skip(sigma_min) = 1 and c_out(sigma_min) = 0: f(x, sigma_min) = x for any weights.
    net = ConsistencyModel(2, dense_args={"units": 8})
    x = np.random.default_rng(0).normal(size=(5, 2)).astype("float32")
    c = np.ones((5, 3), "float32")
    net.compute_loss(x, c)
    for weight in net.trainable_weights:
        weight.assign(weight.numpy() + 0.5)
    np.testing.assert_allclose(net.consistency_function(x, net.sigma_min, c).numpy(), x, atol=1e-6)
    assert np.abs(net.consistency_function(x, 1.0, c).numpy() - x).max() > 0.1


def test_arguments_are_checked():
    with pytest.raises(ArgumentError, match="sigma_min"):
        ConsistencyModel(2, sigma_min=1.0, sigma_max=0.5)
    with pytest.raises(ArgumentError, match="s0 <= s1"):
        ConsistencyModel(2, s0=20, s1=10)
    with pytest.raises(ArgumentError, match="sampling_sigmas"):
        ConsistencyModel(2, sampling_sigmas=(20.0,))
    with pytest.raises(ArgumentError, match="latent_dist"):
        ConsistencyModel(2).sample(3, latent_dist="student_t")
