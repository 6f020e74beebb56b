"""Standardization of an amortizer's inputs and parameters: statistics, units, save/load, resume."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import amortflow as af
from amortflow.amortizers.standardization import Standardization, feature_statistics
from amortflow.exceptions import ShapeError

from ..trainers.conftest import make_amortizer
from .helpers import tiny_flow

QUIET = {"progress": False, "jit_compile": False, "seed": 0}


def shifted_gaussian_model(loc: float, scale: float) -> af.simulation.GenerativeModel:
    """theta ~ N(loc, scale^2 I_2), x_n ~ N(theta, scale^2 I_2), 10 per data set: far from unit scale."""
    return af.simulation.GenerativeModel(
        lambda batch_size, rng: loc + scale * rng.normal(size=(batch_size, 2)),
        lambda theta, rng: theta[:, None, :] + scale * rng.normal(size=(theta.shape[0], 10, 2)),
        prior_is_batched=True, simulator_is_batched=True, skip_test=True,
    )  # fmt: skip


def test_feature_statistics_pool_the_set_axis_ignore_non_finite_entries_and_keep_constants_unscaled():
    values = np.array([[[1.0, 7.0, 0.0], [3.0, 7.0, np.nan]], [[5.0, 7.0, 2.0], [7.0, 7.0, np.inf]]])
    mean, std = feature_statistics(values)
    np.testing.assert_allclose(mean, [4.0, 7.0, 1.0])
    np.testing.assert_allclose(std, [np.sqrt(5.0), 1.0, 1.0])  # constant feature: std 1, not 0


def test_an_unadapted_layer_is_the_identity_and_adapt_checks_the_feature_count():
    layer = Standardization()
    x = np.array([[1.0, -2.0]], dtype="float32")
    np.testing.assert_allclose(layer(x), x)
    assert not layer.is_adapted
    with pytest.raises(ShapeError, match="3 features"):
        layer.adapt(np.zeros((4, 3)))


def test_the_trainer_adapts_the_statistics_to_the_training_data_once():
    model = shifted_gaussian_model(loc=50.0, scale=4.0)
    sims = model(500, rng=1)
    amortizer = make_amortizer()
    trainer = af.trainers.Trainer(amortizer, model, **QUIET)
    assert amortizer.standardization_pending
    trainer.train_offline(sims, epochs=1, batch_size=100, early_stopping=False)
    assert not amortizer.standardization_pending
    params = amortizer.standardizers["parameters"]
    np.testing.assert_allclose(params.mean.numpy(), sims["prior_draws"].mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(params.std.numpy(), sims["prior_draws"].std(axis=0), rtol=1e-4)
    data = amortizer.standardizers["summary_conditions"]
    np.testing.assert_allclose(data.mean.numpy(), sims["sim_data"].reshape(-1, 2).mean(axis=0), rtol=1e-5)
    # a second run on other data keeps the statistics: they are part of the trained model
    before = params.mean.numpy().copy()
    trainer.train_offline(shifted_gaussian_model(0.0, 1.0)(300, rng=2), epochs=1, batch_size=100, early_stopping=False)
    np.testing.assert_array_equal(params.mean.numpy(), before)


def test_draws_come_back_in_the_users_units():
    model = shifted_gaussian_model(loc=100.0, scale=0.01)
    sims = model(400, rng=3)
    amortizer = make_amortizer()
    af.trainers.Trainer(amortizer, model, **QUIET).train_offline(sims, epochs=1, batch_size=100, early_stopping=False)
    draws = amortizer.sample({"summary_conditions": sims["sim_data"][:3]}, n_samples=500, seed=1)
    # Even a barely trained flow puts its draws within a few prior sd of the prior mean once its
    # outputs are mapped back; without the inverse map they would sit near 0.
    assert np.all(np.abs(draws.mean(axis=1) - 100.0) < 0.1)


def _grid_integral(log_density, lower: float, upper: float, n: int = 4001) -> float:
    grid = np.linspace(lower, upper, n)
    density = np.exp(log_density(grid))
    return float(np.sum(0.5 * (density[1:] + density[:-1]) * np.diff(grid)))  # trapezoid rule


def test_log_posterior_of_a_standardized_amortizer_integrates_to_one_in_the_users_units():
    # One parameter with mean 3 and sd 0.1: a density that forgot the Jacobian of the map would
    # integrate to 1 / 0.1 = 10.
    amortizer = af.amortizers.AmortizedPosterior(tiny_flow(1))
    conf = {"parameters": 3.0 + 0.1 * np.random.default_rng(0).normal(size=(200, 1)), "direct_conditions": np.ones((200, 1))}
    amortizer.compute_loss(conf)
    amortizer.adapt_standardization(conf)

    def log_density(grid):
        n = len(grid)
        return amortizer.log_posterior({"parameters": grid[:, None], "direct_conditions": np.ones((n, 1))})

    # Trapezoid rule on 4,001 points over +-20 sd: the error is far below 1e-3 for a smooth density.
    assert _grid_integral(log_density, 1.0, 5.0) == pytest.approx(1.0, abs=1e-3)


def test_log_likelihood_of_a_standardized_surrogate_integrates_to_one_in_the_users_units():
    amortizer = af.amortizers.AmortizedLikelihood(tiny_flow(1))
    rng = np.random.default_rng(1)
    conf = {"observables": -20.0 + 0.5 * rng.normal(size=(200, 1)), "conditions": rng.normal(size=(200, 2))}
    amortizer.compute_loss(conf)
    amortizer.adapt_standardization(conf)
    condition = np.array([[0.3, -0.2]])

    def log_density(grid):
        n = len(grid)
        return amortizer.log_likelihood({"observables": grid[:, None], "conditions": np.repeat(condition, n, 0)})

    assert _grid_integral(log_density, -30.0, -10.0) == pytest.approx(1.0, abs=1e-3)


def test_statistics_survive_a_keras_file_and_a_checkpoint_resume(tmp_path):
    model = shifted_gaussian_model(loc=-7.0, scale=3.0)
    sims = model(300, rng=4)
    amortizer = make_amortizer()
    trainer = af.trainers.Trainer(amortizer, model, checkpoint_path=tmp_path / "ckpt", **QUIET)
    trainer.train_offline(sims, epochs=1, batch_size=100, early_stopping=False)
    stats = {key: layer.mean.numpy().copy() for key, layer in amortizer.standardizers.items() if layer.built}

    amortizer.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    for key, mean in stats.items():
        np.testing.assert_array_equal(loaded.standardizers[key].mean.numpy(), mean)
    conf = trainer.configurator(model(4, rng=5))
    np.testing.assert_allclose(loaded.log_posterior(conf), amortizer.log_posterior(conf), rtol=1e-5)

    # A fresh amortizer resumed from the checkpoint gets the saved statistics, not new ones
    # from the (differently scaled) data of the next run.
    resumed = make_amortizer()
    trainer = af.trainers.Trainer(resumed, model, checkpoint_path=tmp_path / "ckpt", **QUIET)
    trainer.train_offline(shifted_gaussian_model(0.0, 1.0)(300, rng=6), epochs=1, batch_size=100, early_stopping=False)
    for key, mean in stats.items():
        np.testing.assert_array_equal(resumed.standardizers[key].mean.numpy(), mean)


def test_standardize_false_adds_no_state_and_round_trips_its_config():
    plain = af.amortizers.AmortizedPosterior(tiny_flow(2), standardize=False)
    standardized = af.amortizers.AmortizedPosterior(tiny_flow(2))
    conf = {"parameters": np.zeros((4, 2)), "direct_conditions": np.ones((4, 3))}
    plain.compute_loss(conf)
    standardized.compute_loss(conf)
    assert not plain.standardizers and not plain.standardization_pending
    assert len(standardized.weights) == len(plain.weights) + 6  # mean, std, flag for parameters and conditions
    config = plain.get_config()
    assert config["standardize"] is False
    assert af.amortizers.AmortizedPosterior.from_config(config).get_config()["standardize"] is False
