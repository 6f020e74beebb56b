"""Checkpoints: a run killed mid-epoch resumes exactly; broken folders give a clear CheckpointError."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import amortflow as af
from amortflow.exceptions import CheckpointError
from amortflow.trainers import Trainer, current_learning_rate
from amortflow.trainers.seeds import network_seed_states

from .conftest import D, GaussianMeanAmortizer, make_amortizer, make_model

REPO_ROOT = Path(__file__).resolve().parents[2]
EPOCHS, ITERATIONS, BATCH = 3, 24, 16
SETTINGS = {"seed": 0, "progress": False, "jit_compile": False, "steps_per_call": 4, "checkpoint_every": 8}

TRAIN_SCRIPT = """
import sys, time
sys.path.insert(0, {root!r})
import amortflow as af
from tests.trainers.conftest import make_amortizer, make_model

model = make_model()

def slow_model(batch_size, rng=None):  # slow enough that the parent can kill us mid-run
    time.sleep(0.05)
    return model(batch_size, rng=rng)

af.set_seed(0)
trainer = af.trainers.Trainer(make_amortizer(), slow_model, checkpoint_path=sys.argv[1], **{settings!r})
trainer.train_online(epochs={epochs}, iterations_per_epoch={iterations}, batch_size={batch})
print("FINISHED")
"""


def _latest_checkpoint(folder: Path) -> int | None:
    try:
        text = (folder / "checkpoint").read_text()
    except OSError:
        return None
    found = re.search(r'^model_checkpoint_path: "(?:.*/)?ckpt-(\d+)"', text, re.MULTILINE)
    return int(found.group(1)) if found else None


def _run_and_kill(folder: Path, script: Path, kill_from_step: int, timeout: float = 240.0) -> int:
    """Start training in a subprocess and SIGKILL it once a checkpoint >= ``kill_from_step`` exists."""
    process = subprocess.Popen([sys.executable, str(script), str(folder)], cwd=REPO_ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and process.poll() is None:
            latest = _latest_checkpoint(folder)
            if latest is not None and latest >= kill_from_step:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
                return latest
            time.sleep(0.02)
        out, err = process.communicate(timeout=5)
        raise AssertionError(f"training ended before it could be killed:\n{out.decode()}\n{err.decode()[-3000:]}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_killed_mid_epoch_training_resumes_the_same_run(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT.format(root=str(REPO_ROOT), settings=SETTINGS, epochs=EPOCHS,
                                          iterations=ITERATIONS, batch=BATCH))  # fmt: skip
    folder = tmp_path / "ckpt"
    seen = _run_and_kill(folder, script, kill_from_step=ITERATIONS + 8)  # inside epoch 2
    assert seen < EPOCHS * ITERATIONS

    af.set_seed(0)
    trainer = Trainer(make_amortizer(), make_model(), checkpoint_path=folder, **SETTINGS)
    resumed_at = trainer.step
    assert resumed_at == _latest_checkpoint(folder) >= seen  # the newest complete checkpoint
    assert trainer.history.num_steps == resumed_at and trainer.epoch == resumed_at // ITERATIONS
    history = trainer.train_online(epochs=EPOCHS, iterations_per_epoch=ITERATIONS, batch_size=BATCH)
    train = history["train_losses"]
    assert trainer.step == len(train) == EPOCHS * ITERATIONS and trainer.epoch == EPOCHS
    assert train["Epoch"].tolist() == [e for e in range(1, EPOCHS + 1) for _ in range(ITERATIONS)]
    assert train["Iteration"].tolist() == list(range(1, ITERATIONS + 1)) * EPOCHS
    # the optimizer continued at the right step: the cosine schedule ends exactly at 0
    assert int(trainer.optimizer.iterations.numpy()) == EPOCHS * ITERATIONS
    assert current_learning_rate(trainer.optimizer) == pytest.approx(0.0, abs=1e-12)

    # ... and it is the same run: an uninterrupted run from the same seed has the same losses
    af.set_seed(0)
    reference = Trainer(make_amortizer(), make_model(), **{**SETTINGS, "checkpoint_every": None})
    expected = reference.train_online(epochs=EPOCHS, iterations_per_epoch=ITERATIONS, batch_size=BATCH)
    np.testing.assert_allclose(train["Loss"], expected["train_losses"]["Loss"], rtol=1e-4, atol=1e-4)


def _trained_folder(tmp_path, model) -> Path:
    folder = tmp_path / "ckpt"
    trainer = Trainer(GaussianMeanAmortizer(), model, checkpoint_path=folder, seed=1, progress=False, jit_compile=False)
    trainer.train_online(epochs=2, iterations_per_epoch=5, batch_size=8)
    assert _latest_checkpoint(folder) == 10
    return folder


def _corrupt(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] + b"\x00garbage" * 4)


def test_corrupt_checkpoints(tmp_path, model, caplog):
    folder = _trained_folder(tmp_path, model)
    # newest data file damaged: the previous checkpoint is restored, with a warning
    _corrupt(next(folder.glob("ckpt-10.data-*")))
    with caplog.at_level(logging.WARNING, logger="amortflow"):
        trainer = Trainer(GaussianMeanAmortizer(), model, checkpoint_path=folder, progress=False)
    assert trainer.step == 5 and trainer.history.num_steps == 5
    assert "ckpt-10 cannot be restored" in caplog.text
    assert re.search(r"Resumed from .*ckpt-5, the newest intact checkpoint; skipped(.|\n)*ckpt-10", caplog.text)
    # every checkpoint damaged: a CheckpointError that lists them
    _corrupt(next(folder.glob("ckpt-5.data-*")))
    with pytest.raises(CheckpointError, match=r"No checkpoint in .* could be restored(.|\n)*ckpt-10(.|\n)*ckpt-5"):
        Trainer(GaussianMeanAmortizer(), model, checkpoint_path=folder)


def test_state_file_must_belong_to_its_checkpoint(tmp_path, model):
    folder = _trained_folder(tmp_path, model)
    (folder / "ckpt-10.state.json").write_text((folder / "ckpt-5.state.json").read_text())
    (folder / "ckpt-5.state.json").unlink()
    with pytest.raises(CheckpointError, match=r"belongs to checkpoint 5, not 10(.|\n)*no state file"):
        Trainer(GaussianMeanAmortizer(), model, checkpoint_path=folder)


def test_checkpoint_of_another_network_is_refused(tmp_path, model):
    folder = _trained_folder(tmp_path, model)
    with pytest.raises(CheckpointError, match="different network configuration"):
        Trainer(GaussianMeanAmortizer(num_params=3), lambda b, rng=None: {**model(b, rng), "prior_draws": np.zeros((b, 3))},
                checkpoint_path=folder)  # fmt: skip


def test_empty_or_foreign_folders_and_fresh_paths(tmp_path, model):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="empty folder"):
        Trainer(GaussianMeanAmortizer(), model, checkpoint_path=tmp_path / "empty")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("hello")
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        Trainer(GaussianMeanAmortizer(), model, checkpoint_path=tmp_path / "foreign")
    fresh = Trainer(GaussianMeanAmortizer(), model, checkpoint_path=tmp_path / "new" / "run")  # does not exist: fresh
    assert fresh.step == 0 and not (tmp_path / "new").exists()


def test_resume_keeps_the_replay_buffer_and_a_changed_plan_starts_a_new_run(tmp_path, model, caplog):
    folder = tmp_path / "ckpt"
    settings = {"seed": 2, "progress": False, "jit_compile": False}
    first = Trainer(GaussianMeanAmortizer(), model, checkpoint_path=folder, **settings)
    first.train_experience_replay(epochs=1, iterations_per_epoch=3, batch_size=8, buffer_capacity=20)
    second = Trainer(GaussianMeanAmortizer(), model, checkpoint_path=folder, **settings)
    assert len(second.replay_buffer) == 20 and second.replay_buffer.capacity == 20
    np.testing.assert_array_equal(second.replay_buffer.sample(20, np.random.default_rng(0))["parameters"],
                                  first.replay_buffer.sample(20, np.random.default_rng(0))["parameters"])  # fmt: skip
    # the restored run was finished: a new call is a new run, epochs continue at 2
    history = second.train_online(epochs=1, iterations_per_epoch=2, batch_size=8)
    assert history["train_losses"]["Epoch"].tolist() == [1, 1, 1, 2, 2]
    assert int(second.optimizer.iterations.numpy()) == 2


def test_a_trainer_without_a_model_or_checks_restores_the_weights_at_once(tmp_path, model):
    """The checkpoint records the input shapes, so the networks are built and loaded in the constructor."""
    folder = tmp_path / "ckpt"
    first = Trainer(GaussianMeanAmortizer(), model, checkpoint_path=folder, seed=1, progress=False, jit_compile=False)
    first.train_online(epochs=2, iterations_per_epoch=5, batch_size=8)
    saved = [w.numpy().copy() for w in first.amortizer.weights]
    for kwargs in ({"generative_model": model, "skip_checks": True}, {}):
        second = Trainer(GaussianMeanAmortizer(), checkpoint_path=folder, progress=False, **kwargs)
        assert second.step == 10 and second.state.deferred_weights is None
        restored = [w.numpy() for w in second.amortizer.weights]
        assert len(restored) == len(saved)
        for got, expected in zip(restored, saved):
            np.testing.assert_array_equal(got, expected)


def test_a_restored_posterior_samples_from_the_trained_networks_before_any_training(tmp_path, model):
    folder = tmp_path / "ckpt"
    af.set_seed(3)
    first = Trainer(make_amortizer(), model, checkpoint_path=folder, seed=3, progress=False, jit_compile=False)
    first.train_online(epochs=1, iterations_per_epoch=4, batch_size=8)
    conf = first.configure(model(3, rng=np.random.default_rng(0)))
    expected = first.amortizer.sample(conf, n_samples=5, seed=11)
    af.set_seed(99)  # other initial weights
    second = Trainer(make_amortizer(), checkpoint_path=folder, progress=False)  # no generative model
    np.testing.assert_allclose(second.amortizer.sample(conf, n_samples=5, seed=11), expected, rtol=1e-5, atol=1e-5)


def test_every_weight_of_a_real_amortizer_is_restored(tmp_path, model):
    """Coupling layers and DeepSet modules live in Python lists; their weights must be saved too."""
    folder = tmp_path / "ckpt"
    af.set_seed(4)
    first = Trainer(make_amortizer(), model, checkpoint_path=folder, seed=4, progress=False, jit_compile=False)
    first.train_online(epochs=1, iterations_per_epoch=6, batch_size=8)
    saved = [w.numpy().copy() for w in first.amortizer.weights]
    af.set_seed(5)  # other initial weights
    second = Trainer(make_amortizer(), model, checkpoint_path=folder, progress=False, jit_compile=False)
    restored = [w.numpy() for w in second.amortizer.weights]
    assert len(restored) == len(saved) > 10
    for got, expected in zip(restored, saved):
        np.testing.assert_array_equal(got, expected)


def _dropout_amortizer() -> af.amortizers.AmortizedPosterior:
    inference = af.networks.InvertibleNetwork(num_params=D, num_coupling_layers=2, coupling_settings={
        "dense_args": {"units": 8}, "num_dense": 1, "dropout": True, "dropout_prob": 0.3})  # fmt: skip
    return af.amortizers.AmortizedPosterior(inference, af.networks.DeepSet(summary_dim=4, num_equiv=0))


def test_the_networks_random_streams_resume_where_they_stopped(tmp_path, model):
    """Dropout's generator state is saved, so a resumed run does not replay its first masks."""

    def seed_states(trainer):
        return [state.numpy().tolist() for state in network_seed_states(trainer.amortizer)]

    folder = tmp_path / "ckpt"
    first = Trainer(_dropout_amortizer(), model, checkpoint_path=folder, seed=1, progress=False, jit_compile=False)
    first.train_online(epochs=1, iterations_per_epoch=5, batch_size=8)
    saved = seed_states(first)
    assert any(counter > 0 for _, counter in saved)  # dropout masks were drawn in training
    second = Trainer(_dropout_amortizer(), model, checkpoint_path=folder, progress=False, jit_compile=False)
    assert second.step == 5 and seed_states(second) == saved


def test_checkpoints_without_the_networks_seed_states_still_restore(tmp_path, model, monkeypatch):
    """Checkpoints written before the seed states were saved load their weights as before."""
    folder = tmp_path / "ckpt"
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_network_seed_objects", lambda self: {})
        first = Trainer(_dropout_amortizer(), model, checkpoint_path=folder, seed=1, progress=False, jit_compile=False)
        first.train_online(epochs=1, iterations_per_epoch=5, batch_size=8)
    second = Trainer(_dropout_amortizer(), model, checkpoint_path=folder, progress=False, jit_compile=False)
    assert second.step == 5
    for restored, saved in zip(second.amortizer.weights, first.amortizer.weights):
        np.testing.assert_array_equal(restored.numpy(), saved.numpy())
