"""Crash and corruption suite: kill training at random points, damage each checkpoint file in turn.

After every case the run must either resume from the newest intact checkpoint and end with the
history of an uninterrupted run (nothing lost, nothing repeated), or stop with an amortflow
error that says what to do. Seeds are fixed, so every run of the suite tests the same cases.
Bounded: about 80 s on two cores (six short subprocesses, 30 in-process resumes).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import amortflow as af
from amortflow.exceptions import AmortflowError, CheckpointError
from amortflow.trainers import Trainer

from .conftest import GaussianMeanAmortizer, make_model

REPO_ROOT = Path(__file__).resolve().parents[2]
EPOCHS, ITERATIONS, BATCH = 3, 16, 8
SETTINGS = {"seed": 0, "progress": False, "jit_compile": False, "steps_per_call": 2, "checkpoint_every": 2,
            "prefetch": 0}  # fmt: skip

# A training process that resumes from the folder; ``hook`` kills it (SIGKILL) at its k-th save (k <= 3: at
# most 6 steps; the parent's timed kill comes within 0.25 s of a save), so the five kills end well before step 48:
#   csv   - half of the new history rows written          state - the state file written, no TF files
#   tf    - TF files written, the index not updated        index - the index written, old files not deleted
#   time  - no hook: the parent kills it at a random moment
TRAIN_SCRIPT = """
import os, signal, sys, time
sys.path.insert(0, {root!r})
import amortflow as af
from amortflow.trainers import checkpoints, history
from tests.trainers.conftest import GaussianMeanAmortizer, make_model

folder, hook, at_save = sys.argv[1], sys.argv[2], int(sys.argv[3])
saves = [0]

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def fire(when):
    return hook == when and saves[0] == at_save

original_append = history.LossHistory.append_csv
def append_csv(self, path):
    saves[0] += 1
    before = path.stat().st_size if path.exists() else 0
    rows = original_append(self, path)
    if fire("csv"):
        with open(path, "r+b") as handle:
            handle.truncate(before + (path.stat().st_size - before) // 2)
        die()
    return rows
history.LossHistory.append_csv = append_csv

original_json = checkpoints.write_json_atomic
def write_json_atomic(path, content):
    original_json(path, content)
    if fire("state"):
        die()
checkpoints.write_json_atomic = write_json_atomic

original_index = checkpoints.tf.compat.v1.train.update_checkpoint_state
def update_checkpoint_state(*args, **kwargs):
    if fire("tf"):
        die()
    return original_index(*args, **kwargs)
checkpoints.tf.compat.v1.train.update_checkpoint_state = update_checkpoint_state

original_remove = checkpoints.CheckpointStore._remove_all_but
def remove_all_but(self, kept):
    if fire("index"):
        die()
    return original_remove(self, kept)
checkpoints.CheckpointStore._remove_all_but = remove_all_but

model = make_model()
def slow_model(batch_size, rng=None):  # slow enough that the parent can kill us at a random moment
    time.sleep(0.03)
    return model(batch_size, rng=rng)

af.set_seed(0)
trainer = af.trainers.Trainer(GaussianMeanAmortizer(), slow_model, checkpoint_path=folder, **{settings!r})
trainer.train_online(epochs={epochs}, iterations_per_epoch={iterations}, batch_size={batch})
print("FINISHED")
"""


@pytest.fixture(scope="module")
def reference() -> Trainer:
    """The uninterrupted run every interrupted one must reproduce."""
    af.set_seed(0)
    trainer = Trainer(GaussianMeanAmortizer(), make_model(), **SETTINGS)
    trainer.train_online(epochs=EPOCHS, iterations_per_epoch=ITERATIONS, batch_size=BATCH)
    return trainer


def _complete_checkpoints(folder: Path) -> list[int]:
    """Checkpoints whose files all exist and whose tensors all read back (checked with TF directly)."""
    found = []
    for index in folder.glob("ckpt-*.index"):
        number = int(index.name[len("ckpt-") : -len(".index")])
        if not (folder / f"ckpt-{number}.state.json").is_file():
            continue
        try:
            reader = tf.train.load_checkpoint(str(folder / f"ckpt-{number}"))
            for key in reader.get_variable_to_shape_map():
                reader.get_tensor(key)
        except Exception:  # noqa: BLE001 - a damaged checkpoint is simply not complete
            continue
        found.append(number)
    return sorted(found)


def _assert_same_rows(trainer: Trainer, reference: Trainer) -> None:
    """The trainer's history is the reference's first ``trainer.step`` rows: nothing lost, nothing repeated."""
    got, expected = trainer.history.train_frame(), reference.history.train_frame().iloc[: trainer.step]
    assert trainer.history.num_steps == trainer.step == len(got)
    assert got[["Epoch", "Iteration"]].values.tolist() == expected[["Epoch", "Iteration"]].values.tolist()
    np.testing.assert_allclose(got["Loss"], expected["Loss"], rtol=1e-4, atol=1e-4)


def _run(folder: Path, script: Path, hook: str, at_save: int, kill_after: float | None) -> str:
    """Run one training process; with ``kill_after``, SIGKILL it that many seconds after its first new save."""
    process = subprocess.Popen([sys.executable, str(script), str(folder), hook, str(at_save)], cwd=REPO_ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        if kill_after is not None:
            start = max(_complete_checkpoints(folder), default=0) if folder.exists() else 0
            deadline = time.monotonic() + 120
            while process.poll() is None and time.monotonic() < deadline:
                if max(_numbers(folder), default=0) > start:
                    time.sleep(kill_after)
                    os.kill(process.pid, signal.SIGKILL)
                    break
                time.sleep(0.02)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"training failed ({process.returncode}):\n{err.decode()[-3000:]}")
    return out.decode()


def _numbers(folder: Path) -> list[int]:
    return [int(p.name[len("ckpt-") : -len(".index")]) for p in folder.glob("ckpt-*.index")] if folder.exists() else []


def test_killed_at_random_points_and_mid_save_the_run_resumes_without_loss_or_repeat(tmp_path, reference):
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT.format(root=str(REPO_ROOT), settings=SETTINGS, epochs=EPOCHS,
                                          iterations=ITERATIONS, batch=BATCH))  # fmt: skip
    folder = tmp_path / "ckpt"
    rng = np.random.default_rng(27)
    resumed_at = 0
    for hook in ("time", "csv", "state", "tf", "index"):
        at_save = int(rng.integers(1, 4))
        kill_after = float(rng.uniform(0.0, 0.25)) if hook == "time" else None
        out = _run(folder, script, hook, at_save, kill_after)
        assert "FINISHED" not in out, f"the {hook} case was not interrupted"
        expected = max(_complete_checkpoints(folder))
        trainer = Trainer(GaussianMeanAmortizer(), make_model(), checkpoint_path=folder, **SETTINGS)
        assert trainer.step == expected >= resumed_at, hook  # the newest intact checkpoint
        _assert_same_rows(trainer, reference)
        resumed_at = trainer.step
    out = _run(folder, script, "none", 0, None)
    assert "FINISHED" in out
    final = Trainer(GaussianMeanAmortizer(), make_model(), checkpoint_path=folder, **SETTINGS)
    assert final.step == EPOCHS * ITERATIONS and final.state.run.finished
    _assert_same_rows(final, reference)
    for got, expected in zip(final.amortizer.weights, reference.amortizer.weights):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)
    assert len(_numbers(folder)) <= 3  # max_to_keep: the interrupted saves left nothing behind


# --- corrupting each file of the newest checkpoint ------------------------------------------
REPLAY = {"epochs": 3, "iterations_per_epoch": 4, "batch_size": BATCH, "buffer_capacity": 24, "validation_sims": 16,
          "early_stopping": {"patience": 50, "restore_best_weights": True}}  # fmt: skip
STOP_AT = 8  # the pristine folder: killed after step 8 (checkpoints 4, 6, 8; 8 ends epoch 2)


class StopAfter:
    """The generative model, but the (n+1)-th training batch raises (a crash in the middle of the run)."""

    def __init__(self, n: int):
        self.model, self.n, self.calls = make_model(), n, 0

    def __call__(self, batch_size, rng=None):
        if batch_size == BATCH:
            self.calls += 1
            if self.calls > self.n:
                raise KeyboardInterrupt("killed")
        return self.model(batch_size, rng=rng)


@pytest.fixture(scope="module")
def replay_reference() -> Trainer:
    af.set_seed(0)
    trainer = Trainer(GaussianMeanAmortizer(), make_model(), **SETTINGS)
    trainer.train_experience_replay(**REPLAY)
    return trainer


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pristine") / "ckpt"
    af.set_seed(0)
    trainer = Trainer(GaussianMeanAmortizer(), StopAfter(STOP_AT), checkpoint_path=folder, **SETTINGS)
    with pytest.raises(KeyboardInterrupt):
        trainer.train_experience_replay(**REPLAY)
    assert sorted(_numbers(folder)) == [4, 6, 8]
    assert (folder / "ckpt-8.buffer.npz").is_file() and (folder / "ckpt-8.best.npz").is_file()
    return folder


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "flip":  # bytes in the middle inverted: same length, wrong content
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 8]) + data[middle + 8 :])
    elif how == "garbage":
        path.write_bytes(b"\x00garbage\xff" * 7)
    elif how == "delete":
        path.unlink()


FILES = ["ckpt-8.index", "ckpt-8.data-00000-of-00001", "ckpt-8.state.json", "ckpt-8.buffer.npz", "ckpt-8.best.npz",
         "checkpoint", "history_train.csv"]  # fmt: skip


@pytest.mark.parametrize("how", ["truncate", "flip", "garbage", "delete"])
def test_each_damaged_file_resumes_the_newest_intact_state_or_says_what_to_do(tmp_path, pristine, replay_reference,
                                                                             how, caplog):  # fmt: skip
    for name in FILES:
        folder = tmp_path / f"{name}-{how}"
        shutil.copytree(pristine, folder)
        _damage(folder / name, how)
        expected = _expected_step(pristine, folder, name)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="amortflow"):
            if expected is None:
                # only the history is shared by all checkpoints: damaged inside the rows of each, nothing can
                # be restored exactly, and the error says how to go on (followed here)
                with pytest.raises(CheckpointError, match="move that file aside") as info:
                    Trainer(GaussianMeanAmortizer(), make_model(), checkpoint_path=folder, **SETTINGS)
                assert str(folder / name) in str(info.value)
                (folder / name).rename(folder / "damaged_history.csv")
                trainer = Trainer(GaussianMeanAmortizer(), make_model(), checkpoint_path=folder, **SETTINGS)
                assert trainer.step == STOP_AT and "is missing" in caplog.text
                continue
            trainer = Trainer(GaussianMeanAmortizer(), make_model(), checkpoint_path=folder, **SETTINGS)
        assert trainer.step == expected, (name, how)  # the newest intact checkpoint ...
        if expected < STOP_AT:
            assert "ckpt-8 cannot be restored" in caplog.text  # ... and a warning names the one skipped
        if name == "history_train.csv" and how == "delete":  # resumes at 8; only the loss rows are gone
            assert trainer.history.train_frame()["Loss"].isna().all() and "is missing" in caplog.text
            continue
        _assert_same_rows(trainer, replay_reference)
        trainer.train_experience_replay(**REPLAY)
        _assert_same_rows(trainer, replay_reference)
        assert trainer.step == 12 and max(_numbers(folder)) == 12 and len(_numbers(folder)) <= 3
        np.testing.assert_allclose(trainer.history.val_frame()["Loss"], replay_reference.history.val_frame()["Loss"],
                                   rtol=1e-4)  # fmt: skip


def _expected_step(pristine: Path, folder: Path, name: str) -> int | None:
    """The newest checkpoint left intact by damaging ``name`` (None: none is)."""
    if name == "checkpoint":
        return STOP_AT  # the index is only a hint
    if name != "history_train.csv":
        return 6  # a file of checkpoint 8
    if not (folder / name).exists():
        return STOP_AT  # a history moved away loses its rows, not the checkpoint
    # the history is shared: a checkpoint survives if the bytes of its rows are unchanged
    before, after = (pristine / name).read_bytes(), (folder / name).read_bytes()
    same = next((i for i, (a, b) in enumerate(zip(before, after)) if a != b), min(len(before), len(after)))
    for number in (8, 6, 4):
        state = json.loads((pristine / f"ckpt-{number}.state.json").read_text())
        if state["history"]["csv"]["bytes"] <= same:
            return number
    return None


def test_a_folder_with_every_checkpoint_damaged_stops_with_an_amortflow_error(tmp_path, pristine):
    folder = tmp_path / "ckpt"
    shutil.copytree(pristine, folder)
    for number in (4, 6, 8):
        _damage(folder / f"ckpt-{number}.data-00000-of-00001", "flip")
    with pytest.raises(AmortflowError, match=r"(?s)No checkpoint in .* could be restored.*ckpt-8.*ckpt-6.*ckpt-4.*"
                                             r"another checkpoint_path"):  # fmt: skip
        Trainer(GaussianMeanAmortizer(), make_model(), checkpoint_path=folder, **SETTINGS)
