"""Unit tests of the trainer's parts that need no training: buffers, history, stopper, schedule, seeds."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

from amortflow.exceptions import ArgumentError, CheckpointError, ConfigurationError
from amortflow.trainers import EarlyStopper, LossHistory, MemoryReplayBuffer, ShuffleBuffer, current_learning_rate
from amortflow.trainers import default_optimizer, make_optimizer
from amortflow.trainers.prefetch import Prefetcher
from amortflow.trainers.seeds import SeedTree, Stream
from amortflow.trainers.sources.rows import RowData, raw_num_rows, take_raw_rows


def _rows(start: int, n: int) -> dict:
    ids = np.arange(start, start + n, dtype=np.float32)
    return {"parameters": ids[:, None], "summary_conditions": np.repeat(ids[:, None, None], 3, axis=1), "direct_conditions": None}


# --- replay buffer -----------------------------------------------------------------------
def test_replay_buffer_is_fifo_and_bounded():
    buffer = MemoryReplayBuffer(capacity=5)
    buffer.store(_rows(0, 3))
    buffer.store(_rows(3, 4))  # 7 rows into 5 slots: 0 and 1 are evicted
    assert len(buffer) == 5
    sample = buffer.sample(5, np.random.default_rng(0))
    assert sorted(sample["parameters"].ravel()) == [2, 3, 4, 5, 6]
    assert sample["direct_conditions"] is None
    np.testing.assert_array_equal(sample["summary_conditions"][:, 0, 0], sample["parameters"][:, 0])


def test_replay_buffer_rejects_other_shapes_and_round_trips(tmp_path):
    buffer = MemoryReplayBuffer(capacity=4)
    buffer.store(_rows(0, 6))
    with pytest.raises(ConfigurationError, match="fixed shape"):
        buffer.store({"parameters": np.zeros((2, 1)), "summary_conditions": np.zeros((2, 5, 1)), "direct_conditions": None})
    buffer.save(tmp_path / "b.npz")
    clone = MemoryReplayBuffer(capacity=4)
    clone.load(tmp_path / "b.npz")
    rng = lambda: np.random.default_rng(3)  # noqa: E731
    np.testing.assert_array_equal(clone.sample(4, rng())["parameters"], buffer.sample(4, rng())["parameters"])
    clone.store(_rows(10, 1))  # the write position was restored too: the oldest row (2) goes
    assert sorted(clone.sample(4, rng())["parameters"].ravel()) == [3, 4, 5, 10]
    with pytest.raises(CheckpointError, match="capacity"):
        MemoryReplayBuffer(capacity=3).load(tmp_path / "b.npz")


# --- shuffle buffer: data larger than the buffer -------------------------------------------
def test_shuffle_buffer_streams_more_data_than_it_holds():
    shard_size, n_shards, capacity, batch = 25, 8, 30, 16
    buffer = ShuffleBuffer(capacity, batch, np.random.default_rng(1))
    batches = []
    for shard in range(n_shards):
        batches += list(buffer.push(_rows(shard * shard_size, shard_size)))
    batches += list(buffer.drain())
    ids = np.concatenate([b["parameters"].ravel() for b in batches])
    # every simulation exactly once, in ceil(N / batch) batches, all full except the last
    assert sorted(ids) == list(range(shard_size * n_shards))
    assert len(batches) == math.ceil(shard_size * n_shards / batch)
    assert all(len(b["parameters"]) == batch for b in batches[:-1])
    # never more than capacity + one shard in memory
    assert buffer.max_held <= capacity + shard_size
    # rows stay whole and batches mix shards
    for b in batches:
        np.testing.assert_array_equal(b["summary_conditions"][:, 1, 0], b["parameters"][:, 0])
    shards_per_batch = [len(np.unique(b["parameters"] // shard_size)) for b in batches]
    assert max(shards_per_batch) >= 2
    assert not np.array_equal(ids, np.sort(ids))


def test_shuffle_buffer_drains_before_a_shape_change():
    buffer = ShuffleBuffer(capacity=100, batch_size=4, rng=np.random.default_rng(0))
    assert list(buffer.push(_rows(0, 6))) == []
    other = {"parameters": np.zeros((3, 1), np.float32), "summary_conditions": np.zeros((3, 7, 1), np.float32),
             "direct_conditions": None}  # fmt: skip
    out = list(buffer.push(other)) + list(buffer.drain())
    assert [b["summary_conditions"].shape[1] for b in out] == [3, 3, 7]
    assert [len(b["parameters"]) for b in out] == [4, 2, 3]


# --- rows: configure once when the configurator is row-wise -------------------------------
def test_row_data_configures_once_only_when_rowwise():
    raw = {"prior_draws": np.arange(8.0).reshape(4, 2), "sim_data": np.ones((4, 3, 2)), "sim_non_batchable_context": 3}

    def rowwise(r):
        return {"parameters": np.asarray(r["prior_draws"], np.float32), "summary_conditions": None}

    def batch_standardized(r):  # depends on the other rows of its batch
        p = np.asarray(r["prior_draws"], np.float32)
        return {"parameters": (p - p.mean(0)) / (p.std(0) + 1), "summary_conditions": None}

    fast = RowData.build(raw, rowwise)
    assert fast.configured is not None
    slow = RowData.build(raw, batch_standardized)
    assert slow.configured is None and slow.raw is raw
    np.testing.assert_allclose(slow.batch(np.array([0, 1]))["parameters"], batch_standardized(take_raw_rows(raw, [0, 1]))["parameters"])
    assert take_raw_rows(raw, np.array([1]))["sim_non_batchable_context"] == 3


def test_raw_rows_slice_two_level_parameters_and_keep_per_batch_context():
    # A two-level raw dict: every parameter key has the batch on its first axis, G and N are per batch.
    raw = {"hyper_prior_draws": np.arange(6.0).reshape(6, 1), "local_prior_draws": np.arange(18.0).reshape(6, 3, 1),
           "shared_prior_draws": None, "prior_non_batchable_context": 3, "sim_non_batchable_context": 4,
           "sim_batchable_context": None, "sim_data": np.arange(72.0).reshape(6, 3, 4, 1)}  # fmt: skip
    index = np.array([4, 1])
    part = take_raw_rows(raw, index)
    for key in ("hyper_prior_draws", "local_prior_draws", "sim_data"):
        np.testing.assert_array_equal(part[key], raw[key][index])
    assert part["shared_prior_draws"] is None
    assert part["prior_non_batchable_context"] == 3 and part["sim_non_batchable_context"] == 4
    assert raw_num_rows(raw) == 6
    with pytest.raises(ConfigurationError, match="disagree"):
        raw_num_rows({**raw, "local_prior_draws": raw["local_prior_draws"][:5]})


# --- history --------------------------------------------------------------------------
def test_history_frames_running_mean_and_csv_resume(tmp_path):
    history = LossHistory()
    history.start_epoch()
    history.add_steps(1, 1, np.array([[1.0], [np.nan], [3.0]]), skipped=np.array([False, True, False]))
    assert history.running_mean == 2.0  # NaN steps are left out of the average
    history.add_steps(1, 4, np.array([[5.0]]))
    history.add_validation(1, np.array([0.5]))
    path = tmp_path / "h.csv"
    assert history.append_csv(path) == 4
    checkpoint = history.state()  # a checkpoint taken after 4 rows
    history.add_steps(2, 1, np.array([[7.0], [8.0]]), skipped=np.array([True, False]))
    assert history.append_csv(path) == 6
    frame = history.train_frame()
    assert list(frame.columns) == ["Epoch", "Iteration", "Loss", "Skipped"]
    assert frame["Iteration"].tolist() == [1, 2, 3, 4, 1, 2]
    # a skipped step with a finite loss is marked, not only the NaN ones
    assert frame["Skipped"].tolist() == [False, True, False, False, True, False]
    assert history.val_frame()["Epoch"].tolist() == [1]
    # restoring the checkpoint taken after 4 rows drops the 2 later rows
    restored = LossHistory.restore(checkpoint, path)
    restored.truncate_csv(path)
    assert restored.num_steps == 4 and restored.train_frame()["Loss"].tolist()[-1] == 5.0
    assert restored.train_frame()["Skipped"].tolist() == [False, True, False, False]
    assert len(path.read_text().strip().split("\n")) == 5
    with pytest.raises(CheckpointError, match="differ from the ones saved"):
        LossHistory.restore(history.state(), path)  # the 6-row state: its rows are gone
    path.write_text(path.read_text().replace("5", "6"))  # same length, other values
    with pytest.raises(CheckpointError, match=r"CRC32"):
        LossHistory.restore(checkpoint, path)


def test_history_cut_in_half_still_restores_an_older_checkpoint(tmp_path):
    history, path, states = LossHistory(), tmp_path / "h.csv", []
    for epoch in range(1, 5):
        history.add_steps(epoch, 1, np.arange(10.0)[:, None] + epoch)
        history.append_csv(path)
        states.append(history.state())
    data = path.read_bytes()
    path.write_bytes(data[: states[1]["csv"]["bytes"] + 7])  # cut mid-row, inside epoch 3
    for state in states[2:]:
        with pytest.raises(CheckpointError, match="cut short or overwritten"):
            LossHistory.restore(state, path)
    restored = LossHistory.restore(states[1], path)  # 20 rows, all before the cut
    restored.truncate_csv(path)
    assert restored.num_steps == 20 and path.stat().st_size == states[1]["csv"]["bytes"]
    restored.add_steps(3, 1, np.array([[9.0]]))
    restored.append_csv(path)
    assert LossHistory.restore(restored.state(), path).num_steps == 21


def test_history_csv_of_an_older_format_is_rewritten_with_the_skipped_column(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("Epoch,Iteration,Loss\n1,1,0.5\n1,2,nan\n1,3,0.25\n")
    restored = LossHistory.restore({"loss_names": ["Loss"], "val_rows": [], "train_rows": 2}, path)
    assert restored.train_frame()["Skipped"].tolist() == [False, True]
    restored.truncate_csv(path)
    assert path.read_text().splitlines() == ["Epoch,Iteration,Loss,Skipped", "1,1,0.5,0", "1,2,nan,1"]
    assert LossHistory.restore(restored.state(), path).num_steps == 2


# --- early stopping ---------------------------------------------------------------------
def test_early_stopper_counts_epochs_without_significant_improvement():
    stopper = EarlyStopper(patience=3, tolerance=0.1)
    decisions = [stopper.update(v) for v in (5.0, 4.0, 3.95, 3.92, 3.85, 3.9)]
    # 3.85 is more than 0.1 below 4.0 (the last improvement) and resets the count
    assert decisions == [False, False, False, False, False, False]
    assert [stopper.update(v) for v in (3.8, 3.9)] == [False, True]
    clone = EarlyStopper.from_state(stopper.get_state())
    assert clone.best == stopper.best and clone.epochs_without_improvement == 3
    with pytest.raises(ArgumentError):
        EarlyStopper(patience=0)


# --- optimizer --------------------------------------------------------------------------
def test_default_schedule_is_a_cosine_from_lr_to_zero():
    opt = default_optimizer(total_steps=100, learning_rate=1e-3)
    assert opt.global_clipnorm == 1.0
    for step, expected in ((0, 1e-3), (50, 5e-4), (100, 0.0), (150, 0.0)):
        opt.iterations.assign(step)
        assert current_learning_rate(opt) == pytest.approx(expected, abs=1e-9)
    assert make_optimizer(opt, 10, 1e-3) is opt
    assert current_learning_rate(make_optimizer(2e-3, 10, 1e-3)) == pytest.approx(2e-3)
    with pytest.raises(ArgumentError):
        make_optimizer("adam!", 10, 1e-3)


# --- seeds and prefetching ------------------------------------------------------------------
def test_seed_tree_streams_are_reproducible_and_distinct():
    a, b = SeedTree(3), SeedTree(3)
    assert a.rng(Stream.ONLINE, 0, 1, 2).integers(1 << 30) == b.rng(Stream.ONLINE, 0, 1, 2).integers(1 << 30)
    draws = {SeedTree(3).rng(s, 0, 1, 2).integers(1 << 30) for s in (Stream.ONLINE, Stream.OFFLINE, Stream.REPLAY)}
    assert len(draws) == 3
    assert SeedTree(None).entropy != SeedTree(None).entropy


def test_prefetcher_forwards_errors_and_stops_its_thread():
    def items():
        yield 1
        yield 2
        raise ValueError("simulator exploded")

    with Prefetcher(items, max_ahead=1) as it:
        assert next(it) == 1 and next(it) == 2
        with pytest.raises(ValueError, match="exploded"):
            next(it)

    produced = []

    def endless():
        for i in range(10**9):
            produced.append(i)
            yield i

    prefetcher = Prefetcher(endless, max_ahead=2)
    assert next(prefetcher) == 0
    prefetcher.close()
    count = len(produced)
    time.sleep(0.2)
    assert len(produced) == count <= 5  # bounded look-ahead, stopped for good
    assert not any(t.name == "amortflow-producer" and t.is_alive() for t in threading.enumerate())
