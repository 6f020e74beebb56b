"""Data sources without training: what each mode feeds the step (coverage, shuffling, chunking)."""

from __future__ import annotations

import math

import numpy as np

import amortflow as af
from amortflow.configuration import DefaultPosteriorConfigurator
from amortflow.trainers.arrays import as_float32
from amortflow.trainers.seeds import SeedTree
from amortflow.trainers.sources import OfflineSource, OnlineSource, PresimulationSource, RoundsSource

from .conftest import make_model


def configure(raw):
    return as_float32(DefaultPosteriorConfigurator()(raw))


def _epoch_params(source, epoch: int) -> np.ndarray:
    return np.concatenate([b["parameters"] for b in source.epoch_batches(epoch, 0)])


def _sorted_rows(a: np.ndarray) -> np.ndarray:
    return a[np.lexsort(a.T[::-1])]


def test_offline_epochs_visit_every_simulation_once_in_a_new_order():
    raw = make_model()(50, rng=0)
    source = OfflineSource(raw, configure, epochs=2, batch_size=16, seeds=SeedTree(0), run=0)
    assert source.data.configured is not None  # the default configurator is row-wise: configured once
    assert [source.steps_in_epoch(e) for e in range(2)] == [4, 4] and source.planned_steps() == 8
    first, second = _epoch_params(source, 0), _epoch_params(source, 1)
    expected = _sorted_rows(raw["prior_draws"].astype(np.float32))
    np.testing.assert_array_equal(_sorted_rows(first), expected)
    np.testing.assert_array_equal(_sorted_rows(second), expected)
    assert not np.array_equal(first, second)
    # a resume at iteration 2 gets exactly the batches 2.. of the same epoch
    np.testing.assert_array_equal(np.concatenate([b["parameters"] for b in source.epoch_batches(1, 2)]), second[32:])


def test_chunks_stack_steps_and_never_cross_epochs():
    raw = make_model()(50, rng=0)
    source = OfflineSource(raw, configure, epochs=2, batch_size=16, seeds=SeedTree(0), run=0)
    chunks = list(source.chunks(0, 0, steps_per_call=3))
    # per epoch: 3 full batches (one chunk of 3) and a last batch of 2 (own chunk: other shape)
    assert [(c.epoch, c.first_iteration, c.n_steps, c.epoch_end) for c in chunks] == [
        (0, 0, 3, False), (0, 3, 1, True), (1, 0, 3, False), (1, 3, 1, True),
    ]  # fmt: skip
    assert chunks[0].data["summary_conditions"].shape == (3, 16, 10, 2)
    assert chunks[1].data["parameters"].shape == (1, 2, 2)


def test_online_batches_depend_only_on_their_position():
    model = make_model()
    a = OnlineSource(model, configure, 2, 5, 8, SeedTree(4), run=0)
    b = OnlineSource(model, configure, 2, 5, 8, SeedTree(4), run=0)
    resumed = list(b.epoch_batches(1, 3))
    full = list(a.epoch_batches(1, 0))
    np.testing.assert_array_equal(resumed[0]["summary_conditions"], full[3]["summary_conditions"])
    other_run = next(OnlineSource(model, configure, 2, 5, 8, SeedTree(4), run=1).epoch_batches(1, 3))
    assert not np.array_equal(other_run["parameters"], resumed[0]["parameters"])


def test_rounds_pool_all_simulations_so_far(tmp_path):
    source = RoundsSource(make_model(), configure, rounds=3, sim_per_round=20, epochs=2, batch_size=16,
                          seeds=SeedTree(0), run=0, cache_dir=tmp_path)  # fmt: skip
    assert [source.steps_in_epoch(e) for e in range(6)] == [2, 2, 3, 3, 4, 4]
    sizes = [len(_epoch_params(source, e)) for e in range(6)]
    assert sizes == [20, 20, 40, 40, 60, 60]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"run000_round{r:04d}.npz" for r in range(3)]
    # a resumed run reloads the saved rounds: same simulations
    again = RoundsSource(lambda *a, **k: 1 / 0, configure, 3, 20, 2, 16, SeedTree(0), 0, cache_dir=tmp_path)
    np.testing.assert_array_equal(_sorted_rows(_epoch_params(again, 5)), _sorted_rows(_epoch_params(source, 5)))


def test_presimulation_epochs_cover_all_shards_through_a_small_buffer(tmp_path):
    model = make_model()
    af.simulation.presimulate_and_save(model, tmp_path, batch_size=20, n_batches=6, seed=1, progress=False)
    source = PresimulationSource(tmp_path, configure, epochs=2, batch_size=16, shuffle_buffer=25,
                                 seeds=SeedTree(0), run=0)  # fmt: skip
    assert source.num_simulations == 120 and source.steps_in_epoch(0) == math.ceil(120 / 16)
    stored = np.concatenate([af.simulation.load_shard(p)["prior_draws"] for p in sorted(tmp_path.glob("shard_*.npz"))])
    epochs = [_epoch_params(source, e) for e in range(2)]
    for params in epochs:
        assert len(params) == 120
        np.testing.assert_array_equal(_sorted_rows(params), _sorted_rows(stored.astype(np.float32)))
    assert source.last_buffer.max_held <= 25 + 20  # the buffer plus one shard, never the whole data
    assert not np.array_equal(epochs[0], epochs[1])
    # resuming in the middle of an epoch replays its stream and skips what was trained
    np.testing.assert_array_equal(np.concatenate([b["parameters"] for b in source.epoch_batches(1, 5)]), epochs[1][80:])
