"""Fixed-budget training holds out a validation split and stops early by default."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import amortflow as af
from amortflow.exceptions import ArgumentError
from amortflow.trainers import EarlyStopper
from amortflow.trainers.seeds import Stream
from amortflow.trainers.validation_split import hold_out_simulations, split_shards, split_simulations, validation_size

from .conftest import make_amortizer


def test_validation_size_is_ten_percent_with_a_floor_and_a_cap():
    assert [validation_size(n) for n in (200, 1000, 10_000, 10**6)] == [100, 100, 1000, 10_000]


def test_the_held_out_split_is_disjoint_from_training_and_covers_every_simulation(model):
    raw = model(1000, rng=0)
    raw["sim_non_batchable_context"] = 10
    training, validation = split_simulations(raw, np.random.default_rng(1))
    assert len(validation["prior_draws"]) == 100 and len(training["prior_draws"]) == 900
    rows = lambda part: {tuple(row) for row in part["prior_draws"]}  # noqa: E731
    assert not rows(training) & rows(validation)
    assert rows(training) | rows(validation) == rows(raw)
    assert training["sim_non_batchable_context"] == validation["sim_non_batchable_context"] == 10
    # the matching data travel with their parameters
    index = np.flatnonzero((raw["prior_draws"] == validation["prior_draws"][0]).all(axis=1))[0]
    np.testing.assert_array_equal(raw["sim_data"][index], validation["sim_data"][0])


def test_early_stopper_defaults_are_patience_20_no_tolerance_and_best_weights():
    stopper = EarlyStopper()
    assert (stopper.patience, stopper.tolerance, stopper.restore_best_weights) == (20, 0.0, True)


def test_train_offline_holds_out_validation_and_stops_early_by_default(model, quiet_settings, caplog):
    sims = model(200, rng=2)
    trainer = af.trainers.Trainer(make_amortizer(), model, default_lr=5e-2, **quiet_settings)
    with caplog.at_level(logging.INFO, logger="amortflow"):
        history = trainer.train_offline(sims, epochs=150, batch_size=100)
    assert "100 of the 200 simulations are held out" in caplog.text
    # one step per epoch on the 100 kept simulations, and one validation loss per epoch
    epochs = history["val_losses"]["Epoch"].tolist()
    assert len(history["train_losses"]) == len(epochs) == trainer.epoch
    losses = history["val_losses"]["Loss"].to_numpy()
    best_epoch = int(np.argmin(losses)) + 1
    # a learning rate of 0.05 on 100 simulations overfits: the validation loss stops falling early
    assert trainer.epoch == best_epoch + 20 < 150
    assert f"Restored the weights of epoch {best_epoch}" in caplog.text
    held_out = hold_out_simulations(sims, True, None, trainer.seeds.rng(Stream.VALIDATION, 0, 1))[1]
    conf = trainer.configure(held_out)
    assert float(trainer.amortizer.compute_loss(conf)) == pytest.approx(losses.min(), rel=1e-4)


def test_too_few_simulations_train_all_epochs_unless_early_stopping_is_demanded(model, quiet_settings, caplog):
    sims = model(150, rng=3)
    trainer = af.trainers.Trainer(make_amortizer(), model, **quiet_settings)
    with caplog.at_level(logging.INFO, logger="amortflow"):
        history = trainer.train_offline(sims, epochs=2, batch_size=50)
    assert "no early stopping" in caplog.text and len(history["val_losses"]) == 0
    assert len(history["train_losses"]) == 2 * 3
    with pytest.raises(ArgumentError, match="needs at least 200; received 150"):
        trainer.train_offline(sims, epochs=2, batch_size=50, early_stopping=True)


def test_presimulation_holds_out_whole_shards(model, quiet_settings, tmp_path, caplog):
    folder = tmp_path / "sims"
    af.simulation.presimulate_and_save(model, folder, batch_size=50, n_batches=10, seed=0, progress=False)
    trainer = af.trainers.Trainer(make_amortizer(), model, **quiet_settings)
    with caplog.at_level(logging.INFO, logger="amortflow"):
        history = trainer.train_from_presimulation(folder, epochs=2, batch_size=50)
    assert "2 shard(s) with 100 simulations are held out" in caplog.text
    assert len(history["train_losses"]) == 2 * 8 and len(history["val_losses"]) == 2


def test_split_shards_refuses_a_split_that_leaves_too_little():
    shards = [f"shard_{i}" for i in range(2)]
    with pytest.raises(ArgumentError, match="cannot be split"):
        split_shards(shards, [150, 50], np.random.default_rng(0))
