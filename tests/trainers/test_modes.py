"""Every training mode on a tiny real amortizer: history layout, schedule, validation, early stopping."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

import amortflow as af
from amortflow.exceptions import ArgumentError
from amortflow.trainers import MemoryReplayBuffer, Trainer, current_learning_rate

from .conftest import GaussianMeanAmortizer, make_amortizer, posterior_nll_bounds


def _assert_history_layout(history: dict, steps_per_epoch: list[int], first_epoch: int = 1) -> None:
    train = history["train_losses"]
    assert list(train.columns[:3]) == ["Epoch", "Iteration", "Loss"]
    epochs = list(range(first_epoch, first_epoch + len(steps_per_epoch)))
    assert train.groupby("Epoch").size().loc[epochs].tolist() == steps_per_epoch
    for epoch, steps in zip(epochs, steps_per_epoch):
        assert train.loc[train.Epoch == epoch, "Iteration"].tolist() == list(range(1, steps + 1))


def test_online_training_learns_logs_validation_and_decays_lr_to_zero(model, quiet_settings, caplog):
    trainer = Trainer(make_amortizer(), model, default_lr=5e-3, **quiet_settings)
    assert isinstance(trainer.configurator, af.configuration.DefaultPosteriorConfigurator)
    with caplog.at_level(logging.INFO, logger="amortflow"):
        history = trainer.train_online(epochs=3, iterations_per_epoch=40, batch_size=32, validation_sims=200)
    _assert_history_layout(history, [40, 40, 40])
    val = history["val_losses"]
    assert val["Epoch"].tolist() == [1, 2, 3]
    assert "Validation, Epoch: 3, Loss: " in caplog.text
    assert trainer.step == 120 and trainer.epoch == 3
    # cosine decay from default_lr to exactly 0 at the last planned step
    assert int(trainer.optimizer.iterations.numpy()) == 120
    assert current_learning_rate(trainer.optimizer) == pytest.approx(0.0, abs=1e-12)
    # learning: the prior's NLL is 2.84 nats, the exact posterior's 0.44 (conftest); with
    # 200 validation sets the mean NLL has a Monte Carlo error of ~0.1, so being 1 nat below
    # the prior cannot happen by chance.
    prior_nll, _ = posterior_nll_bounds()
    assert val["Loss"].iloc[-1] < prior_nll - 1.0
    assert np.isfinite(history["train_losses"]["Loss"]).all()


def test_experience_replay_keeps_a_bounded_buffer(model, quiet_settings):
    trainer = Trainer(make_amortizer(), model, replay_buffer=MemoryReplayBuffer(capacity=40), **quiet_settings)
    trainer.train_online(epochs=1, iterations_per_epoch=2, batch_size=16)
    assert len(trainer.replay_buffer) == 32  # online training fills the trainer's replay buffer too
    first_optimizer = trainer.optimizer
    history = trainer.train_experience_replay(epochs=2, iterations_per_epoch=5, batch_size=16, reuse_optimizer=True)
    _assert_history_layout(history, [2, 5, 5])
    assert len(trainer.replay_buffer) == 40 and trainer.replay_buffer.capacity == 40
    # reuse_optimizer continues the same optimizer (and its step count)
    assert trainer.optimizer is first_optimizer and int(first_optimizer.iterations.numpy()) == 12


def test_memory_is_the_deprecated_name_of_replay_buffer(model, quiet_settings):
    buffer = MemoryReplayBuffer(capacity=8)
    with pytest.warns(DeprecationWarning, match="replay_buffer"):
        trainer = Trainer(make_amortizer(), model, memory=buffer, skip_checks=True, **quiet_settings)
    assert trainer.replay_buffer is buffer and trainer.state.replay_buffer is buffer
    with pytest.raises(ArgumentError, match="not both"), pytest.warns(DeprecationWarning):
        Trainer(make_amortizer(), model, memory=True, replay_buffer=True, skip_checks=True, **quiet_settings)


def test_rounds_and_offline_have_data_sized_epochs(model, quiet_settings):
    trainer = Trainer(make_amortizer(), model, **quiet_settings)
    history = trainer.train_rounds(rounds=2, sim_per_round=40, epochs=2, batch_size=16)
    _assert_history_layout(history, [3, 3, 5, 5])
    # one cosine schedule over all 16 steps of all rounds: it ends exactly at 0
    assert int(trainer.optimizer.iterations.numpy()) == 16
    assert current_learning_rate(trainer.optimizer) == pytest.approx(0.0, abs=1e-12)
    history = trainer.train_offline(model(100, rng=3), epochs=2, batch_size=32)
    _assert_history_layout(history, [3, 3, 5, 5, 4, 4])  # epochs continue: 5 and 6
    assert int(trainer.optimizer.iterations.numpy()) == 8  # a new run gets a new optimizer


def test_training_from_disk_with_a_buffer_smaller_than_the_data(model, quiet_settings, tmp_path):
    af.simulation.presimulate_and_save(model, tmp_path / "sims", batch_size=20, n_batches=5, seed=0, progress=False)
    trainer = Trainer(make_amortizer(), model, **quiet_settings)
    history = trainer.train_from_presimulation(tmp_path / "sims", epochs=2, batch_size=16, shuffle_buffer=24)
    _assert_history_layout(history, [math.ceil(100 / 16)] * 2)


def test_early_stopping_stops_when_validation_stalls(model, quiet_settings):
    trainer = Trainer(GaussianMeanAmortizer(), model, **quiet_settings)
    # a learning rate of ~0 keeps the validation loss constant: epoch 1 improves on +inf,
    # epochs 2 and 3 do not, so patience=2 stops after epoch 3 of 20.
    history = trainer.train_online(epochs=20, iterations_per_epoch=3, batch_size=8, validation_sims=50,
                                   optimizer=1e-12, early_stopping={"patience": 2, "tolerance": 0.05})  # fmt: skip
    assert history["val_losses"]["Epoch"].tolist() == [1, 2, 3]
    assert trainer.epoch == 3 and len(history["train_losses"]) == 9
    with pytest.raises(ArgumentError, match="validation_sims"):
        trainer.train_online(epochs=1, iterations_per_epoch=1, batch_size=8, early_stopping=True)


def test_xla_step_and_progress_bar(model, capsys):
    trainer = Trainer(GaussianMeanAmortizer(), model, jit_compile=True, seed=0, steps_per_call=4)
    history = trainer.train_online(epochs=1, iterations_per_epoch=10, batch_size=16)
    assert trainer._compiled.uses_xla and np.isfinite(history["train_losses"]["Loss"]).all()
    err = capsys.readouterr().err
    assert "Training epoch 1" in err and "Avg.Loss" in err and "LR: " in err


def test_arguments_are_checked(model, quiet_settings):
    with pytest.raises(ArgumentError, match="unknown keyword"):
        Trainer(GaussianMeanAmortizer(), model, steps_per_cal=3)
    trainer = Trainer(GaussianMeanAmortizer(), model, **quiet_settings)
    with pytest.raises(ArgumentError, match="positive integer"):
        trainer.train_online(epochs=0, iterations_per_epoch=1, batch_size=8)
    with pytest.raises(ArgumentError, match="Unknown training argument"):
        trainer.train_online(epochs=1, iterations_per_epoch=1, batch_size=8, jit_compile=True)
    with pytest.raises(ArgumentError, match="generative_model"):
        Trainer(GaussianMeanAmortizer(), **quiet_settings).train_online(epochs=1, iterations_per_epoch=1, batch_size=8)
