"""EarlyStopper(restore_best_weights=True): a run ends with its lowest-validation-loss weights, across resumes."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from amortflow.exceptions import ArgumentError, CheckpointError
from amortflow.trainers import EarlyStopper, Trainer
from amortflow.trainers.best_weights import BestWeights

from .conftest import GaussianMeanAmortizer

EPOCHS, ITERATIONS, BATCH = 4, 3, 8
SETTINGS = {"seed": 0, "progress": False, "jit_compile": False, "steps_per_call": 3}


@keras.saving.register_keras_serializable(package="amortflow_tests")
class DescentThenAscent(keras.optimizers.schedules.LearningRateSchedule):
    """``+rate`` for the first ``switch`` steps, ``-ascent`` after: the loss falls, then rises.

    Gradient *ascent* after the first epoch makes every later validation loss worse than the
    first one, so the best epoch is known in advance.
    """

    def __init__(self, rate: float, switch: int, ascent: float):
        self.rate, self.switch, self.ascent = float(rate), int(switch), float(ascent)

    def __call__(self, step):
        return tf.where(tf.cast(step, tf.float32) < self.switch, self.rate, -self.ascent)

    def get_config(self):
        return {"rate": self.rate, "switch": self.switch, "ascent": self.ascent}


def optimizer():
    return keras.optimizers.SGD(learning_rate=DescentThenAscent(0.2, ITERATIONS, ascent=0.02))


def validation_loss(trainer, raw) -> float:
    return float(trainer.amortizer.compute_loss(trainer.configure(raw), training=False))


def train(trainer, validation, restore: bool, epochs: int = EPOCHS) -> dict:
    stopper = EarlyStopper(patience=10, tolerance=0.0, restore_best_weights=restore)
    return trainer.train_online(epochs=epochs, iterations_per_epoch=ITERATIONS, batch_size=BATCH,
                                optimizer=optimizer(), early_stopping=stopper, validation_sims=validation)  # fmt: skip


@pytest.fixture
def validation(model):
    return model(64, rng=np.random.default_rng(5))


@pytest.mark.parametrize("restore", [False, True])
def test_run_ends_with_the_weights_of_its_lowest_validation_loss(model, validation, restore):
    trainer = Trainer(GaussianMeanAmortizer(), model, **SETTINGS)
    val = train(trainer, validation, restore)["val_losses"]["Loss"].to_numpy()
    assert np.all(np.diff(val) > 0), val  # the premise: epoch 1 is the best, later ones get worse
    expected = val[0] if restore else val[-1]
    np.testing.assert_allclose(validation_loss(trainer, validation), expected, rtol=1e-6)


def test_a_finished_run_restored_from_its_checkpoint_has_the_best_weights(tmp_path, model, validation):
    path = tmp_path / "ckpt"
    val = train(Trainer(GaussianMeanAmortizer(), model, checkpoint_path=path, **SETTINGS), validation, True)
    assert list(path.glob("ckpt-*.best.npz"))
    resumed = Trainer(GaussianMeanAmortizer(), model, checkpoint_path=path, **SETTINGS)
    np.testing.assert_allclose(validation_loss(resumed, validation), val["val_losses"]["Loss"].iloc[0], rtol=1e-6)


def test_a_killed_run_resumes_with_its_best_weights_snapshot(tmp_path, model, validation, monkeypatch):
    path = tmp_path / "ckpt"
    trainer = Trainer(GaussianMeanAmortizer(), model, checkpoint_path=path, checkpoint_every=0, **SETTINGS)
    saves = []
    original_save = Trainer.save_checkpoint

    def save_then_die(self):  # the process "dies" right after the checkpoint of epoch 2
        saves.append(original_save(self))
        if len(saves) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(trainer, validation, True)
    monkeypatch.setattr(Trainer, "save_checkpoint", original_save)

    resumed = Trainer(GaussianMeanAmortizer(), model, checkpoint_path=path, **SETTINGS)
    history = train(resumed, validation, True)  # same plan: continues at epoch 3
    val = history["val_losses"]
    assert val["Epoch"].tolist() == [1, 2, 3, 4] and np.all(np.diff(val["Loss"]) > 0)
    np.testing.assert_allclose(validation_loss(resumed, validation), val["Loss"].iloc[0], rtol=1e-6)


def test_stopper_tracks_the_lowest_loss_apart_from_the_tolerance():
    stopper = EarlyStopper(patience=3, tolerance=0.5, restore_best_weights=True)
    lowest_flags = []
    for loss in (2.0, 1.8, float("nan"), 1.9, 1.7):
        stopper.update(loss)
        lowest_flags.append(stopper.is_lowest)
    # 1.8 and 1.7 are new lows though not improvements by more than 0.5; NaN never is one
    assert lowest_flags == [True, True, False, False, True]
    assert stopper.lowest == 1.7 and stopper.best == 2.0
    clone = EarlyStopper.from_state(stopper.get_state())
    assert clone.restore_best_weights and clone.lowest == 1.7
    assert "restore_best_weights=True" in repr(clone)
    with pytest.raises(ArgumentError, match="restore_best_weights"):
        EarlyStopper(restore_best_weights="yes")


def test_best_weights_file_round_trip_and_corruption(tmp_path):
    amortizer = GaussianMeanAmortizer()
    amortizer.compute_loss({"summary_conditions": np.zeros((2, 3, 2), "float32"),
                            "parameters": np.zeros((2, 2), "float32")})  # fmt: skip
    best = BestWeights.capture(amortizer, epoch=3, loss=-1.5)
    best.save(tmp_path / "b.npz")
    loaded = BestWeights.load(tmp_path / "b.npz")
    assert (loaded.epoch, loaded.loss) == (3, -1.5)
    for a, b in zip(loaded.weights, best.weights):
        np.testing.assert_array_equal(a, b)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="corrupt"):
        BestWeights.load(tmp_path / "bad.npz")
    with pytest.raises(CheckpointError, match="other shapes"):
        BestWeights(1, 0.0, best.weights[:1]).restore_into(amortizer)
