"""Sources that simulate while training: online learning and experience replay."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

from amortflow.trainers.arrays import Nested, stack, unstack_index
from amortflow.trainers.buffers import MemoryReplayBuffer
from amortflow.trainers.seeds import SeedTree, Stream
from amortflow.trainers.sources.base import BatchSource, Chunk, seed_global_numpy


class OnlineSource(BatchSource):
    """Fresh simulations for every step: ``epochs x iterations_per_epoch`` batches.

    The batch of iteration ``i`` of epoch ``e`` is simulated with the generator of key
    ``(ONLINE, run, e, i)``, so a resumed run simulates the same data.
    """

    mode = "online"

    def __init__(
        self,
        generative_model: Callable,
        configurator: Callable,
        epochs: int,
        iterations_per_epoch: int,
        batch_size: int,
        seeds: SeedTree,
        run: int,
        replay_buffer: MemoryReplayBuffer | None = None,
    ):
        super().__init__(configurator, batch_size, seeds, run)
        self.generative_model = generative_model
        #: Optional buffer that also receives every fresh batch (``Trainer(replay_buffer=...)``).
        self.replay_buffer = replay_buffer
        self.epochs = int(epochs)
        self.iterations_per_epoch = int(iterations_per_epoch)

    def num_epochs(self) -> int:
        return self.epochs

    def steps_in_epoch(self, epoch: int) -> int:
        return self.iterations_per_epoch

    def identity(self) -> dict:
        return {**super().identity(), "iterations_per_epoch": self.iterations_per_epoch}

    def simulate(self, epoch: int, iteration: int) -> Nested:
        """The configured batch of ``(epoch, iteration)``."""
        position = (self.run, epoch, iteration)
        seed_global_numpy(self.generative_model, self.seeds, *position)
        raw = self.generative_model(self.batch_size, rng=self.seeds.rng(Stream.ONLINE, *position))
        return self.configure(raw)

    def epoch_batches(self, epoch: int, start_iteration: int) -> Iterator[Nested]:
        for iteration in range(start_iteration, self.iterations_per_epoch):
            yield self.simulate(epoch, iteration)

    @property
    def finalizes(self) -> bool:
        return self.replay_buffer is not None

    def finalize(self, chunk: Chunk) -> Chunk:
        if self.replay_buffer is not None and chunk.n_steps:
            for i in range(chunk.n_steps):
                self.replay_buffer.store(unstack_index(chunk.data, i))
        return chunk


class ReplaySource(OnlineSource):
    """Experience replay: each step stores a fresh batch in a :class:`MemoryReplayBuffer` and
    trains on ``batch_size`` simulations drawn uniformly from the buffer.

    Storing and sampling happen in the training thread (:meth:`finalize`), so the buffer
    that a checkpoint saves holds exactly the simulations of the steps trained so far.
    """

    mode = "experience_replay"

    def __init__(self, *args, replay_buffer: MemoryReplayBuffer, **kwargs):
        super().__init__(*args, replay_buffer=replay_buffer, **kwargs)

    def identity(self) -> dict:
        return {**super().identity(), "buffer_capacity": self.replay_buffer.capacity}

    @property
    def finalizes(self) -> bool:
        return True

    def finalize(self, chunk: Chunk) -> Chunk:
        if chunk.n_steps == 0:
            return chunk
        batches = []
        for i in range(chunk.n_steps):
            self.replay_buffer.store(unstack_index(chunk.data, i))
            rng = self.seeds.rng(Stream.REPLAY, self.run, chunk.epoch, chunk.first_iteration + i)
            batches.append(self.replay_buffer.sample(self.batch_size, rng))
        return replace(chunk, data=stack(batches))
