"""Sources over simulations held in memory: offline training and round-based training."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np

from amortflow.defaults import DEFAULT_STANDARDIZATION_PILOT_STORED
from amortflow.exceptions import ArgumentError
from amortflow.trainers.arrays import Nested
from amortflow.trainers.seeds import SeedTree, Stream
from amortflow.trainers.sources.base import BatchSource, seed_global_numpy
from amortflow.trainers.sources.rows import RowData, is_standard_raw, raw_num_rows

logger = logging.getLogger("amortflow")


def shuffled_batches(data: RowData, batch_size: int, rng: np.random.Generator, start: int) -> Iterator[Nested]:
    """Batches of a fresh permutation of ``data`` (the last one may be smaller), from batch ``start`` on."""
    order = rng.permutation(data.n)
    for first in range(start * batch_size, data.n, batch_size):
        yield data.batch(order[first : first + batch_size])


class OfflineSource(BatchSource):
    """A fixed set of simulations, reshuffled every epoch (``ceil(n / batch_size)`` steps per epoch)."""

    mode = "offline"
    pilot_rows = DEFAULT_STANDARDIZATION_PILOT_STORED

    def __init__(
        self, simulations_dict: Mapping, configurator: Callable, epochs: int, batch_size: int, seeds: SeedTree, run: int
    ):
        super().__init__(configurator, batch_size, seeds, run)
        self.epochs = int(epochs)
        if is_standard_raw(simulations_dict) and raw_num_rows(simulations_dict) == 0:
            raise ArgumentError(
                f"simulations_dict holds 0 simulations (its arrays have length 0; keys {sorted(simulations_dict)}); "
                "train_offline needs at least one."
            )
        self.data = RowData.build(simulations_dict, self.configure)

    def num_epochs(self) -> int:
        return self.epochs

    def steps_in_epoch(self, epoch: int) -> int:
        return math.ceil(self.data.n / self.batch_size)

    def identity(self) -> dict:
        return {**super().identity(), "num_simulations": self.data.n}

    def epoch_batches(self, epoch: int, start_iteration: int) -> Iterator[Nested]:
        rng = self.seeds.rng(Stream.OFFLINE, self.run, epoch)
        return shuffled_batches(self.data, self.batch_size, rng, start_iteration)


class RoundsSource(BatchSource):
    """Round-based training: simulate ``sim_per_round`` per round, then train ``epochs`` epochs on
    all simulations so far. Epoch ``e`` of the run belongs to round ``e // epochs``.

    With ``cache_dir`` each round's simulations are also saved there (``.npz``, atomic), so a
    resumed run reloads them instead of simulating again.
    """

    mode = "rounds"

    def __init__(
        self,
        generative_model: Callable,
        configurator: Callable,
        rounds: int,
        sim_per_round: int,
        epochs: int,
        batch_size: int,
        seeds: SeedTree,
        run: int,
        cache_dir: Path | None = None,
    ):
        super().__init__(configurator, batch_size, seeds, run)
        self.generative_model = generative_model
        self.rounds, self.sim_per_round, self.epochs = int(rounds), int(sim_per_round), int(epochs)
        self.cache_dir = cache_dir
        self._rounds: list[RowData] = []
        self._pooled: tuple[int, RowData] | None = None

    def num_epochs(self) -> int:
        return self.rounds * self.epochs

    def steps_in_epoch(self, epoch: int) -> int:
        return math.ceil((epoch // self.epochs + 1) * self.sim_per_round / self.batch_size)

    def identity(self) -> dict:
        return {**super().identity(), "rounds": self.rounds, "sim_per_round": self.sim_per_round}

    def epoch_batches(self, epoch: int, start_iteration: int) -> Iterator[Nested]:
        data = self.pooled(epoch // self.epochs)
        rng = self.seeds.rng(Stream.OFFLINE, self.run, epoch)
        return shuffled_batches(data, self.batch_size, rng, start_iteration)

    def pooled(self, round_index: int) -> RowData:
        """All simulations of rounds ``0..round_index``."""
        if self._pooled is None or self._pooled[0] != round_index:
            while len(self._rounds) <= round_index:
                raw = self._round_raw(len(self._rounds))
                self._rounds.append(RowData.build(raw, self.configure, require_rows=True))
            self._pooled = (round_index, RowData.concat(self._rounds[: round_index + 1]))
        return self._pooled[1]

    def _round_raw(self, round_index: int) -> Mapping:
        path = None if self.cache_dir is None else self.cache_dir / f"run{self.run:03d}_round{round_index:04d}.npz"
        if path is not None and path.is_file():
            from amortflow.simulation import load_shard

            logger.info("Round %d: reloading its simulations from %s.", round_index + 1, path)
            return load_shard(path)
        position = (self.run, round_index)
        seed_global_numpy(self.generative_model, self.seeds, *position)
        raw = self.generative_model(self.sim_per_round, rng=self.seeds.rng(Stream.ROUND, *position))
        if path is not None:
            _save_raw(raw, path)
        return raw


def _save_raw(raw: Mapping, path: Path) -> None:
    """Save the numeric entries of a raw dict (skip, with a DEBUG note, if some are not numeric)."""
    arrays = {key: np.asarray(value) for key, value in raw.items() if value is not None}
    if any(array.dtype.kind not in "biuf" for array in arrays.values()):
        logger.debug("Round simulations with non-numeric contexts are not cached; a resume simulates them again.")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
