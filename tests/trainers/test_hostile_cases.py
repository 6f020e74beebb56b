"""Hostile-but-fair uses of a Trainer (issue 27): each gave a wrong result without an error."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
import tensorflow as tf

from amortflow.configuration import DefaultPosteriorConfigurator
from amortflow.exceptions import (
    ArgumentError,
    CheckpointError,
    ConfigurationError,
    NonFiniteLossError,
    TrainerBusyError,
)
from amortflow.trainers import Trainer

from .conftest import GaussianMeanAmortizer

SETTINGS = {"seed": 1, "progress": False, "jit_compile": False}


def _train(folder, model, epochs=2, iterations=5, **kwargs) -> Trainer:
    trainer = Trainer(GaussianMeanAmortizer(), model, checkpoint_path=folder, **SETTINGS, **kwargs)
    trainer.train_online(epochs=epochs, iterations_per_epoch=iterations, batch_size=8)
    return trainer


def _weights(trainer) -> list[np.ndarray]:
    return [w.numpy().copy() for w in trainer.amortizer.weights]


def test_a_relative_checkpoint_path_resumes_in_a_fresh_working_directory(tmp_path, model, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = Trainer(GaussianMeanAmortizer(), model, checkpoint_path="checkpoints", **SETTINGS)
    first.train_online(epochs=1, iterations_per_epoch=4, batch_size=8)
    assert first.checkpoint_path == tmp_path / "checkpoints"
    monkeypatch.chdir(tmp_path.parent)  # a notebook that changed directory keeps its folder
    first.save_checkpoint()
    assert not (tmp_path.parent / "checkpoints").exists()
    monkeypatch.chdir(tmp_path)
    second = Trainer(GaussianMeanAmortizer(), model, checkpoint_path="checkpoints", **SETTINGS)
    assert second.step == 4 and second.history.num_steps == 4
    for got, expected in zip(_weights(second), _weights(first)):
        np.testing.assert_array_equal(got, expected)


def test_two_threads_cannot_train_one_trainer_at_once(model):
    started, release = threading.Event(), threading.Event()

    def slow_model(batch_size, rng=None):
        started.set()
        release.wait(timeout=30)
        return model(batch_size, rng=rng)

    trainer = Trainer(GaussianMeanAmortizer(), slow_model, skip_checks=True, prefetch=0, **SETTINGS)
    results = {}
    thread = threading.Thread(target=lambda: results.setdefault(
        "first", trainer.train_online(epochs=1, iterations_per_epoch=3, batch_size=8)))  # fmt: skip
    thread.start()
    assert started.wait(timeout=30)
    with pytest.raises(TrainerBusyError, match="already training"):
        trainer.train_online(epochs=1, iterations_per_epoch=3, batch_size=8)
    release.set()
    thread.join(timeout=60)
    train = results["first"]["train_losses"]
    assert train["Iteration"].tolist() == [1, 2, 3] and trainer.step == 3  # no duplicated rows
    trainer.train_online(epochs=1, iterations_per_epoch=2, batch_size=8)  # free again afterwards
    assert trainer.step == 5


@pytest.mark.parametrize("damage", ["deleted", "garbage", "empty"])
def test_a_damaged_index_is_replaced_by_a_scan_of_the_folder(tmp_path, model, caplog, damage):
    folder = tmp_path / "ckpt"
    first = _train(folder, model)
    index = folder / "checkpoint"
    {"deleted": index.unlink, "garbage": lambda: index.write_bytes(b"\x00\xffnot a proto ::: {"),
     "empty": lambda: index.write_text("")}[damage]()  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="amortflow"):
        second = Trainer(GaussianMeanAmortizer(), model, checkpoint_path=folder, **SETTINGS)
    assert second.step == 10 and "scan" in caplog.text
    for got, expected in zip(_weights(second), _weights(first)):
        np.testing.assert_array_equal(got, expected)
    second.train_online(epochs=1, iterations_per_epoch=2, batch_size=8)
    assert tf.train.latest_checkpoint(str(folder)).endswith("ckpt-12")  # the next save writes a new index


def _flip_bytes_of(folder, prefix: str, key: str) -> None:
    """Damage the stored bytes of one tensor of a checkpoint (found by its value)."""
    value = tf.train.load_checkpoint(prefix).get_tensor(key)
    data_file = next(folder.glob(f"{prefix.rsplit('/', 1)[1]}.data-*"))
    data = bytearray(data_file.read_bytes())
    at = bytes(data).find(np.ascontiguousarray(value).tobytes())
    assert at >= 0
    data[at] ^= 0xFF
    data_file.write_bytes(bytes(data))


def test_corrupt_optimizer_slots_fall_back_to_the_older_checkpoint_at_construction(tmp_path, model, caplog):
    folder = tmp_path / "ckpt"
    _train(folder, model, epochs=2)
    reader = tf.train.load_checkpoint(str(folder / "ckpt-10"))
    slot = next(k for k in sorted(reader.get_variable_to_shape_map()) if k.startswith("optimizer/_variables/"))
    _flip_bytes_of(folder, str(folder / "ckpt-10"), slot)
    with caplog.at_level(logging.WARNING, logger="amortflow"):
        trainer = Trainer(GaussianMeanAmortizer(), model, checkpoint_path=folder, **SETTINGS)
    assert trainer.step == 5  # not "restored" step 10 that would fail at train_online
    assert "ckpt-10 cannot be restored" in caplog.text and "damaged" in caplog.text
    history = trainer.train_online(epochs=2, iterations_per_epoch=5, batch_size=8)  # the run continues
    assert trainer.step == 10 and history["train_losses"]["Iteration"].tolist() == list(range(1, 6)) * 2
    assert sorted(p.name for p in folder.glob("*.index")) == ["ckpt-10.index", "ckpt-5.index"]


def test_a_history_cut_in_half_restores_the_checkpoint_whose_rows_survive(tmp_path, model, caplog):
    folder = tmp_path / "ckpt"
    _train(folder, model, epochs=4)  # checkpoints 10, 15, 20 kept; 20 rows in the CSV
    csv = folder / "history_train.csv"
    lines = csv.read_text().splitlines(keepends=True)
    csv.write_text("".join(lines[:8]) + lines[8][:5])  # 7 rows and half a row: fewer than any checkpoint has
    with pytest.raises(CheckpointError, match=r"(?s)ckpt-20.*ckpt-15.*ckpt-10.*move that file aside"):
        Trainer(GaussianMeanAmortizer(), model, checkpoint_path=folder, **SETTINGS)
    csv.write_text("".join(lines[:17]) + lines[17][:5])  # 16 rows: checkpoint 15's rows are intact
    trainer = Trainer(GaussianMeanAmortizer(), model, checkpoint_path=folder, **SETTINGS)
    assert trainer.step == 15 and len(csv.read_text().splitlines()) == 16  # header + 15 rows
    # following the advice of the error: without the file, the newest checkpoint resumes
    csv.unlink()
    with caplog.at_level(logging.WARNING, logger="amortflow"):
        trainer = Trainer(GaussianMeanAmortizer(), model, checkpoint_path=folder, **SETTINGS)
    assert trainer.step == 20 and trainer.history.train_frame()["Loss"].isna().all() and "is missing" in caplog.text


class GradientBomb(GaussianMeanAmortizer):
    """Finite loss, NaN gradient on batches whose first parameter is exactly 1234 (sqrt at 0)."""

    def compute_loss(self, input_dict, training=False):
        loss = super().compute_loss(input_dict, training)
        healthy = tf.cast(tf.not_equal(input_dict["parameters"][0, 0], 1234.0), tf.float32)
        return loss + tf.sqrt(tf.abs(self.log_scale[0] - self.log_scale[0]) + healthy)  # d/dx sqrt(0) = inf


class MarkBatches:
    """Default configurator; the calls listed in ``bad`` get parameters[0, 0] = 1234."""

    def __init__(self, bad):
        self.base, self.bad, self.calls = DefaultPosteriorConfigurator(), set(bad), 0

    def __call__(self, raw):
        out = self.base(raw)
        if self.calls in self.bad:
            out["parameters"][0, 0] = 1234.0
        self.calls += 1
        return out


def test_skipped_steps_are_marked_even_when_their_loss_is_finite(model):
    trainer = Trainer(GradientBomb(), model, configurator=MarkBatches({2, 5}), skip_checks=True, steps_per_call=4,
                      **SETTINGS)  # fmt: skip
    train = trainer.train_online(epochs=1, iterations_per_epoch=8, batch_size=8)["train_losses"]
    assert np.isfinite(train["Loss"]).all()
    assert np.flatnonzero(train["Skipped"]).tolist() == [1, 4]  # steps 2 and 5 (call 0 builds the amortizer)
    assert trainer.nonfinite_steps == 2 and int(trainer.optimizer.iterations.numpy()) == 6


@pytest.mark.parametrize("jit", [False, True])
def test_after_a_nonfinite_stop_the_step_count_ends_at_the_step_that_raised(model, jit):
    amortizer = GradientBomb()
    trainer = Trainer(amortizer, model, configurator=MarkBatches(range(6, 100)), skip_checks=True, steps_per_call=16,
                      max_nonfinite_in_a_row=3, **{**SETTINGS, "jit_compile": jit})  # fmt: skip
    with pytest.raises(NonFiniteLossError, match="at step 8 "):
        trainer.train_online(epochs=1, iterations_per_epoch=40, batch_size=8)
    # steps 6, 7, 8 skipped; the device ran no step of the 16-step chunk after step 8
    assert trainer.step == 8 and trainer.history.num_steps == 8
    assert trainer.history.train_frame()["Skipped"].tolist() == [False] * 5 + [True] * 3
    assert int(trainer.optimizer.iterations.numpy()) == 5


def test_validation_data_of_another_shape_fail_before_the_first_step(model):
    trainer = Trainer(GaussianMeanAmortizer(), model, **SETTINGS)
    wrong = model(20, rng=np.random.default_rng(0))
    wrong["sim_data"] = wrong["sim_data"][..., :1]  # one feature instead of two
    with pytest.raises(ConfigurationError, match=r"validation_sims.*'summary_conditions' has shape \(B, 10, 1\), "
                                                 r"expected \(B, 10, 2\)"):  # fmt: skip
        trainer.train_online(epochs=1, iterations_per_epoch=3, batch_size=8, validation_sims=wrong)
    assert trainer.step == 0 and trainer.history.num_steps == 0


def test_offline_training_on_zero_simulations_says_so(model):
    trainer = Trainer(GaussianMeanAmortizer(), model, **SETTINGS)
    empty = {key: value[:0] if isinstance(value, np.ndarray) else value for key, value in model(4).items()}
    with pytest.raises(ArgumentError, match="0 simulations"):
        trainer.train_offline(empty, epochs=1, batch_size=8)


def test_training_refuses_a_folder_whose_shards_do_not_fit_together(tmp_path, model):
    import json

    from amortflow.exceptions import DataError
    from amortflow.simulation import presimulate_and_save
    from amortflow.simulation.presimulation import write_shard

    presimulate_and_save(model, tmp_path, batch_size=8, n_batches=2, seed=0, progress=False)
    manifest = json.loads((tmp_path / "manifest.json").read_text())  # a folder mixed by an older version
    raw = model(8, rng=np.random.default_rng(1))
    manifest["shards"]["2"] = write_shard(tmp_path, 2, {**raw, "sim_data": raw["sim_data"][..., :1]})
    manifest["n_batches"] = 3
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    trainer = Trainer(GaussianMeanAmortizer(), model, **SETTINGS)
    with pytest.raises(DataError, match=r"shard_00000.npz 'sim_data' has shape \(8, 10, 2\), but shard_00002.npz"):
        trainer.train_from_presimulation(tmp_path, epochs=1, batch_size=8)
    assert trainer.step == 0
