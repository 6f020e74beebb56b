"""Training on simulations streamed from a Dask cluster (a mixin of :class:`~amortflow.trainers.Trainer`).

Kept apart from the other modes because it needs the optional ``dask`` extra and owns a stream.
"""

from __future__ import annotations

from amortflow._checks import positive_int
from amortflow.trainers.options import TrainOptions
from amortflow.trainers.seeds import Stream
from amortflow.trainers.sources import StreamingSource


class StreamingMixin:
    """:meth:`train_streaming` of :class:`~amortflow.trainers.Trainer`."""

    def train_streaming(self, epochs: int, iterations_per_epoch: int, batch_size: int, stream=None,
                        buffer_capacity: int = 1000, watermark: int | None = None, policy: str = "fifo",
                        client=None, save_checkpoint: bool = True, optimizer=None, reuse_optimizer: bool = False,
                        early_stopping=False, validation_sims=None, **kwargs) -> dict:  # fmt: skip
        """Train on simulations streaming from a Dask cluster (``epochs x iterations_per_epoch`` steps).

        Each step draws ``batch_size`` simulations uniformly from the bounded buffer of a
        :class:`~amortflow.simulation.distributed.StreamingSimulations`, which the cluster
        refills all the time; training waits only once, until the buffer first holds
        ``watermark`` simulations. The stream's ``stats()`` are logged at INFO after each epoch.

        Parameters
        ----------
        stream : StreamingSimulations, optional
            Used as given and left open. Default: a stream of ``generative_model`` on
            ``client`` (None: a ``LocalCluster``), closed when training ends.
        buffer_capacity, watermark, policy, client
            Settings of the stream built here (see ``StreamingSimulations``); ignored with ``stream``.
        Others
            As in :meth:`train_online`; ``validation_sims=<int>`` simulates with ``generative_model``.

        Notes
        -----
        The buffer's contents depend on the order in which the cluster's tasks finish, so a
        resumed streaming run continues with the simulations that arrive then, not the same ones.
        """

        epochs, iterations = positive_int("epochs", epochs), positive_int("iterations_per_epoch", iterations_per_epoch)
        batch_size, run_index = positive_int("batch_size", batch_size), self.state.next_run_index()
        own = stream is None
        if own:
            from amortflow.simulation.distributed import StreamingSimulations  # needs the optional dask extra

            seed = int(self.seeds.rng(Stream.ONLINE, run_index).integers(2**63))
            stream = StreamingSimulations(self._require_model("train_streaming"), client, seed=seed, policy=policy,
                                          buffer_capacity=positive_int("buffer_capacity", buffer_capacity), watermark=watermark)  # fmt: skip
        try:
            def source(run: int) -> StreamingSource:
                return StreamingSource(stream, self.configure, epochs=epochs, iterations_per_epoch=iterations,
                                       batch_size=batch_size, seeds=self.seeds, run=run)  # fmt: skip

            options = TrainOptions(save_checkpoint=save_checkpoint, optimizer=optimizer, reuse_optimizer=reuse_optimizer,
                                   early_stopping=early_stopping, validation_sims=validation_sims, overrides=kwargs)
            return self._train(source, options)
        finally:
            if own:
                stream.close()

