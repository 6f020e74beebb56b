"""A source that trains on simulations streaming in from a Dask cluster (``train_streaming``).

Each step draws ``batch_size`` simulations uniformly from the bounded buffer of a
:class:`~amortflow.simulation.distributed.StreamingSimulations`, which the cluster keeps
refilling; training waits only once, until the buffer first reaches its watermark.

The draw of iteration ``i`` of epoch ``e`` uses the generator of key ``(STREAM, run, e, i)``
(its own stream; sampling from a buffer as in experience replay), but *what* the buffer holds depends on
the order in which the cluster's tasks finish. So batches are not reproducible, and a
resumed run continues with the simulations that arrive then, not with those it had.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from amortflow.defaults import DEFAULT_STANDARDIZATION_PILOT
from amortflow.trainers.arrays import Nested
from amortflow.trainers.seeds import SeedTree, Stream
from amortflow.trainers.sources.base import BatchSource

logger = logging.getLogger("amortflow")


class StreamingSource(BatchSource):
    """Batches drawn from a simulation stream: ``epochs x iterations_per_epoch`` steps.

    Parameters
    ----------
    stream : StreamingSimulations
        An open (or not yet started) stream; the source never closes it.
    configurator, batch_size, seeds, run
        As in :class:`BatchSource`.
    epochs, iterations_per_epoch : int
        The run's plan.
    """

    mode = "streaming"

    def __init__(self, stream, configurator: Callable, epochs: int, iterations_per_epoch: int, batch_size: int,
                 seeds: SeedTree, run: int):  # fmt: skip
        super().__init__(configurator, batch_size, seeds, run)
        self.stream = stream
        self.epochs = int(epochs)
        self.iterations_per_epoch = int(iterations_per_epoch)

    @property
    def pilot_rows(self) -> int:
        # A pilot larger than the buffer would only count its simulations several times.
        return min(DEFAULT_STANDARDIZATION_PILOT, int(self.stream.buffer_capacity))

    def num_epochs(self) -> int:
        return self.epochs

    def steps_in_epoch(self, epoch: int) -> int:
        return self.iterations_per_epoch

    def identity(self) -> dict:
        return {
            **super().identity(),
            "iterations_per_epoch": self.iterations_per_epoch,
            "buffer_capacity": int(self.stream.buffer_capacity),
            "policy": str(self.stream.policy),
        }

    def epoch_batches(self, epoch: int, start_iteration: int) -> Iterator[Nested]:
        for iteration in range(start_iteration, self.iterations_per_epoch):
            rng = self.seeds.rng(Stream.STREAM, self.run, epoch, iteration)
            yield self.configure(self.stream.next_batch(self.batch_size, rng=rng))
        # Runs in the producer thread, which is at most a few chunks ahead of training.
        logger.info("Streaming, after epoch %d of the run: %s", epoch + 1, self.stream.stats())
