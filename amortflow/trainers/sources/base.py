"""What every data source shares: configured batches grouped into chunks for the compiled step.

A training mode is a *source* of configured batches, epoch by epoch. The trainer runs
several steps per compiled call, so the source groups consecutive batches of equal shapes
into a :class:`Chunk` (stacked ``(K, B, ...)`` arrays). Chunks never span two epochs.
Sources run in a background thread (see :mod:`amortflow.trainers.prefetch`) and must be
deterministic functions of ``(run, epoch, iteration)`` (see :mod:`amortflow.trainers.seeds`),
which is what makes an exact resume possible.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from amortflow.defaults import DEFAULT_STANDARDIZATION_PILOT
from amortflow.trainers.arrays import Nested, as_float32, concatenate, map_arrays, num_rows, shape_signature, stack
from amortflow.trainers.seeds import SeedTree



@dataclass
class Chunk:
    """``n_steps`` consecutive batches of one epoch, stacked along a new first axis."""

    data: Nested | None  # None only for an empty end-of-epoch marker
    epoch: int  # 0-based epoch of the run
    first_iteration: int  # 0-based iteration within the epoch
    n_steps: int
    epoch_end: bool  # the last chunk of its epoch


class BatchSource:
    """Base class of the training modes' data sources.

    Subclasses set ``mode`` and implement :meth:`num_epochs`, :meth:`steps_in_epoch` and
    :meth:`epoch_batches`; replay-style sources also override :meth:`finalize`.

    Parameters
    ----------
    configurator : callable
        Raw dict -> configured dict.
    batch_size : int
        Simulations per step.
    seeds : SeedTree
        The trainer's random streams.
    run : int
        Index of the trainer's run (part of every seed key).
    """

    mode = "base"
    #: Simulations whose features give the amortizer's standardization statistics (see :meth:`pilot`).
    pilot_rows = DEFAULT_STANDARDIZATION_PILOT

    def __init__(self, configurator: Callable, batch_size: int, seeds: SeedTree, run: int):
        self.configurator = configurator
        self.batch_size = int(batch_size)
        self.seeds = seeds
        self.run = int(run)

    # --- to implement -----------------------------------------------------------------
    def num_epochs(self) -> int:
        """Epochs of the whole run."""
        raise NotImplementedError

    def steps_in_epoch(self, epoch: int) -> int:
        """Planned steps of ``epoch`` (0-based)."""
        raise NotImplementedError

    def epoch_batches(self, epoch: int, start_iteration: int) -> Iterator[Nested]:
        """Configured batches of ``epoch`` from ``start_iteration`` on (runs in the producer thread)."""
        raise NotImplementedError

    def identity(self) -> dict:
        """JSON-able description of the run's plan; a resumed run must match it."""
        return {"mode": self.mode, "batch_size": self.batch_size, "epochs": self.num_epochs()}

    # --- shared -----------------------------------------------------------------------
    @property
    def finalizes(self) -> bool:
        """True if :meth:`finalize` works on the chunk (it then receives numpy arrays)."""
        return False

    def finalize(self, chunk: Chunk) -> Chunk:
        """Last step in the training thread before a chunk trains (identity by default)."""
        return chunk

    def planned_steps(self) -> int:
        """Steps of the whole run (the length of the default learning-rate schedule)."""
        return sum(self.steps_in_epoch(epoch) for epoch in range(self.num_epochs()))

    def configure(self, raw: Mapping) -> Nested:
        """The configurator's output as float32 arrays."""
        return as_float32(self.configurator(raw))

    def pilot(self, max_rows: int) -> tuple[Nested, int] | None:
        """Feature rows of the run's first batches, for the amortizer's standardization statistics.

        Takes the batches of epoch 0 (the ones training starts with, so nothing extra is
        simulated for good) until they hold ``max_rows`` simulations, and flattens every leaf to
        ``(rows, features)``: set and time axes are pooled, so batches whose set sizes differ can
        be joined. Returns ``(feature rows, number of simulations)``, or None when the epoch has no batch.
        """
        pieces, rows = [], 0
        for batch in self.epoch_batches(0, 0):
            pieces.append(map_arrays(_feature_rows, batch))
            rows += num_rows(batch)
            if rows >= max_rows:
                break
        return (concatenate(pieces), rows) if pieces else None

    def chunks(self, start_epoch: int, start_iteration: int, steps_per_call: int) -> Iterator[Chunk]:
        """All chunks of the run from ``(start_epoch, start_iteration)`` on."""
        for epoch in range(start_epoch, self.num_epochs()):
            first = start_iteration if epoch == start_epoch else 0
            yield from self._epoch_chunks(epoch, first, steps_per_call)

    def _epoch_chunks(self, epoch: int, first: int, steps_per_call: int) -> Iterator[Chunk]:
        group: list[Nested] = []
        signature = None
        iteration = first
        for batch in self.epoch_batches(epoch, first):
            batch_signature = (shape_signature(batch), num_rows(batch))
            if group and (len(group) == steps_per_call or batch_signature != signature):
                yield Chunk(stack(group), epoch, iteration, len(group), False)
                iteration += len(group)
                group = []
            group.append(batch)
            signature = batch_signature
        if group:
            yield Chunk(stack(group), epoch, iteration, len(group), True)
        else:  # nothing (left) to train on in this epoch: still mark its end
            yield Chunk(None, epoch, iteration, 0, True)


def seed_global_numpy(model: Any, seeds: SeedTree, *position: int) -> None:
    """Seed NumPy's global state for simulators that draw from it instead of an ``rng`` argument."""
    if getattr(model, "uses_global_rng", False):
        from amortflow.trainers.seeds import Stream

        np.random.seed(seeds.legacy_seed(Stream.ONLINE, *position))


def _feature_rows(array: np.ndarray) -> np.ndarray:
    """``(B, ..., d)`` -> ``(B * ..., d)``; a vector ``(B,)`` is one feature."""
    array = np.asarray(array)
    return array.reshape(-1, 1) if array.ndim == 1 else array.reshape(-1, array.shape[-1])
