"""Training from presimulated shards on disk, streamed through a bounded shuffle buffer.

Each epoch reads the shards in a fresh random order, configures each shard as a whole (one
vectorized configurator call per shard; the configured rows of different shards can be
mixed because every row is a complete network input) and pushes its rows into a
:class:`ShuffleBuffer`. At most ``shuffle_buffer`` rows plus one shard are in memory, so data
sets far larger than RAM train fine; batches mix simulations from several shards.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from amortflow.defaults import DEFAULT_STANDARDIZATION_PILOT_STORED
from amortflow.exceptions import ArgumentError, DataError
from amortflow.trainers.arrays import Nested, flatten, num_rows, unflatten
from amortflow.trainers.seeds import SeedTree, Stream
from amortflow.trainers.sources.base import BatchSource


class ShuffleBuffer:
    """Shuffle a stream of rows with bounded memory (the ``tf.data`` shuffle-buffer scheme, vectorized).

    Rows are pushed in blocks. While the buffer holds at least ``max(capacity, batch_size)``
    rows, a batch of ``batch_size`` rows drawn uniformly from the buffer leaves it; the holes
    are filled with the buffer's last rows. :meth:`drain` empties the rest in random order.
    A block whose per-row shapes differ from the buffered ones first drains the buffer
    (rows of different shapes cannot share a batch).

    Parameters
    ----------
    capacity : int
        Rows to hold before batches are released; larger values shuffle better.
    batch_size : int
        Rows per released batch (the last batch of a drain may be smaller).
    rng : numpy.random.Generator
    """

    def __init__(self, capacity: int, batch_size: int, rng: np.random.Generator):
        self.capacity, self.batch_size, self.rng = int(capacity), int(batch_size), rng
        self._template = None
        self._arrays: dict[tuple, np.ndarray] = {}
        self._n = 0
        self.max_held = 0  # peak number of rows held (for tests and memory reports)

    def __len__(self) -> int:
        return self._n

    def push(self, rows: Nested) -> Iterator[Nested]:
        """Add a block of rows and yield the batches that become available."""
        template, flat = flatten(rows)
        if self._template is not None and template != self._template:
            yield from self.drain()
        if self._n == 0:
            self._template, self._arrays = template, {}
        self._append(flat, num_rows(rows))
        while self._n >= max(self.capacity, self.batch_size):
            yield self._pop(self.batch_size)

    def drain(self) -> Iterator[Nested]:
        """Yield all remaining rows in random order, in batches."""
        while self._n > 0:
            yield self._pop(min(self.batch_size, self._n))

    def _append(self, flat: dict, m: int) -> None:
        for path, array in flat.items():
            held = self._arrays.get(path)
            if held is None or held.shape[0] < self._n + m:
                grown = np.empty((max(self._n + m, 2 * (0 if held is None else held.shape[0])), *array.shape[1:]), array.dtype)
                if held is not None:
                    grown[: self._n] = held[: self._n]
                self._arrays[path] = held = grown
            held[self._n : self._n + m] = array
        self._n += m
        self.max_held = max(self.max_held, self._n)

    def _pop(self, size: int) -> Nested:
        n = self._n
        index = self.rng.choice(n, size=size, replace=False)
        batch = unflatten(self._template, {path: array[index] for path, array in self._arrays.items()})
        tail = np.arange(n - size, n)
        holes = index[index < n - size]
        movers = tail[~np.isin(tail, index)]
        for array in self._arrays.values():
            array[holes] = array[movers]
        self._n = n - size
        return batch


class PresimulationSource(BatchSource):
    """Shards written by :func:`amortflow.simulation.presimulate_and_save`, streamed from disk."""

    mode = "presimulation"
    pilot_rows = DEFAULT_STANDARDIZATION_PILOT_STORED

    def __init__(
        self, path: str | os.PathLike, configurator: Callable, epochs: int, batch_size: int,
        shuffle_buffer: int, seeds: SeedTree, run: int, shards: list[Path] | None = None,
    ):  # fmt: skip
        super().__init__(configurator, batch_size, seeds, run)
        if isinstance(shuffle_buffer, bool) or not isinstance(shuffle_buffer, int) or shuffle_buffer < 1:
            raise ArgumentError(f"shuffle_buffer must be an int >= 1 (simulations), received {shuffle_buffer!r}.")
        self.path = Path(path)
        self.epochs, self.shuffle_buffer = int(epochs), shuffle_buffer
        # ``shards`` selects some of the folder's shards (the others are held out for validation).
        all_shards, sizes = complete_shards(self.path)
        self.shards = all_shards if shards is None else list(shards)
        size_of = dict(zip(all_shards, sizes))
        self.num_simulations = sum(size_of[shard] for shard in self.shards)

    def num_epochs(self) -> int:
        return self.epochs

    def steps_in_epoch(self, epoch: int) -> int:
        return math.ceil(self.num_simulations / self.batch_size)

    def identity(self) -> dict:
        return {**super().identity(), "path": str(self.path), "num_simulations": self.num_simulations}

    def epoch_batches(self, epoch: int, start_iteration: int) -> Iterator[Nested]:
        """Batches of the epoch; a resume replays the epoch's stream and skips the batches already trained."""
        from amortflow.simulation import load_shard

        rng = self.seeds.rng(Stream.DISK, self.run, epoch)
        buffer = ShuffleBuffer(self.shuffle_buffer, self.batch_size, rng)
        self.last_buffer = buffer
        produced = 0
        for shard in rng.permutation(len(self.shards)):
            for batch in buffer.push(self.configure(load_shard(self.shards[shard]))):
                produced += 1
                if produced > start_iteration:
                    yield batch
        for batch in buffer.drain():
            produced += 1
            if produced > start_iteration:
                yield batch


def complete_shards(path: Path) -> tuple[list[Path], list[int]]:
    """The complete shards of a presimulation folder and their numbers of simulations (from the manifest).

    The shards are checked to fit together before the first step (keys, ranks, last axes), so
    that a folder mixed by another generative model fails with both shards named instead of
    with a Keras error mid-epoch.
    """
    from amortflow.simulation import iter_shard_paths, read_manifest
    from amortflow.simulation.presimulation import layout_difference

    shards = list(iter_shard_paths(path))
    entries = {entry["file"]: entry for entry in read_manifest(path)["shards"].values()}
    first = entries[shards[0].name]
    for shard in shards[1:]:
        problem = layout_difference(first, entries[shard.name])
        if problem is not None:
            raise DataError(
                f"The shards of {path} do not fit together: in {first['file']} {problem}, but {shard.name} "
                f"has shapes {entries[shard.name]['shapes']}. Presimulate into separate folders per generative model."
            )
    return shards, [int(entries[shard.name]["shapes"]["prior_draws"][0]) for shard in shards]
