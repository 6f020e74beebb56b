"""Known answers for ConsistencyModel: the conjugate Gaussian posterior through AmortizedPosterior
and the Trainer (a looser budget than the flows': two network evaluations per draw, no density),
the missing density, the discretization schedule and argument checks.

Timing on the shared 2-core test machine: the trained posterior ~20 s (800 steps).
"""

from __future__ import annotations

import keras
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
    # The initial weights come from Keras' global seed: fix it, or the result depends on the
    # tests that ran before. Over 8 initial seeds (800 and 1,600 steps) the mean error ranged
    # up to 0.65 posterior sd and the C2ST over 0.51-0.63, so this budget holds for most seeds,
    # not all: consistency training is noisier than the flows' maximum likelihood.
    keras.utils.set_random_seed(0)
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


def test_validation_loss_does_not_follow_the_training_schedule():
    # Early stopping compares validation losses of different epochs, so the loss with
    # training=False must be one fixed objective: the final discretization and fixed noise.
    # Before this, N doubled on the step schedule and the weight 1 / (sigma_{n+1} - sigma_n)
    # with it, and the validation loss jumped up at each doubling (issue 24's benchmark).
    net = ConsistencyModel(2, total_steps=30, s0=2, s1=8, dense_args={"units": 8}, seed=0)
    rng = np.random.default_rng(0)
    x, c = rng.normal(size=(256, 2)).astype("float32"), rng.normal(size=(256, 3)).astype("float32")
    before = float(net.compute_loss(x, c, training=False))
    for _ in range(40):  # past every doubling: N = 3, 5, 9
        net.compute_loss(x, c, training=True)
    assert int(net.step.numpy()) == 40
    assert float(net.compute_loss(x, c, training=False)) == pytest.approx(before, rel=1e-6)
    assert float(net.compute_loss(x, c, training=False)) == pytest.approx(before, rel=1e-6)
    # Training draws fresh noise every call.
    assert float(net.compute_loss(x, c, training=True)) != pytest.approx(float(net.compute_loss(x, c, training=True)))


def test_the_trainer_sizes_the_schedule_and_trains_every_epoch(tmp_path, caplog):
    net = ConsistencyModel(2, dense_args={"units": 8}, num_dense=1, seed=0)
    with pytest.raises(ArgumentError, match="total_steps"):  # by hand, the schedule needs its length
        net.compute_loss(np.zeros((4, 2), "float32"), np.zeros((4, 2), "float32"), training=True)
    amortizer = af.amortizers.AmortizedPosterior(net)
    trainer = af.trainers.Trainer(amortizer=amortizer, generative_model=model(), progress=False, seed=0)
    sims = model()(600, rng=0)
    with caplog.at_level("INFO", logger="amortflow"):
        history = trainer.train_offline(sims, epochs=3, batch_size=100)
    # "auto" early stopping does not apply: no validation split, all 600 simulations, all 3 epochs.
    assert "does not measure convergence" in caplog.text
    assert net.total_steps == 3 * 6 and int(net.step.numpy()) == 18
    assert len(history["val_losses"]) == 0 and len(history["train_losses"]) == 18  # no validation run
    trainer.train_offline(sims, epochs=1, batch_size=100)  # a second run continues the first's schedule
    assert net.total_steps == 18 and int(net.step.numpy()) == 24
    path = tmp_path / "cm.keras"
    amortizer.save(path)
    reloaded = keras.saving.load_model(path)
    assert reloaded.inference_net.total_steps == 18


def test_explicit_early_stopping_is_obeyed_with_a_warning(caplog):
    amortizer = af.amortizers.AmortizedPosterior(ConsistencyModel(2, dense_args={"units": 8}, num_dense=1, seed=0))
    trainer = af.trainers.Trainer(amortizer=amortizer, generative_model=model(), progress=False, seed=0)
    with caplog.at_level("WARNING", logger="amortflow"):
        trainer.train_offline(model()(300, rng=0), epochs=1, batch_size=100, early_stopping=True)
    assert "does not measure convergence" in caplog.text
