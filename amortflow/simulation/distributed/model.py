"""A generative model whose batches are simulated as tasks on a Dask cluster."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import threading
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

from amortflow.exceptions import ArgumentError, SimulationError
from amortflow.simulation.distributed._client import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_RETRIES,
    ClientHandle,
    ClusterModel,
    check_count,
    check_policy,
    child_seed,
    describe_workers,
    import_distributed,
    root_seed_sequence,
)
from amortflow.simulation.distributed.presimulation import dask_presimulate_and_save
from amortflow.simulation.distributed.streaming import StreamingSimulations
from amortflow.simulation.distributed.tasks import TaskOutcome, check_picklable, merge_raw, outcome_of, simulate_task, task_error
from amortflow.simulation.prior import check_batch_size
from amortflow.simulation.validation import SeedLike

logger = logging.getLogger("amortflow")


class DaskGenerativeModel(ClusterModel):
    """Simulates any generative model on a Dask cluster, reproducibly.

    ``model(batch_size)`` splits the batch into tasks of ``chunk_size`` simulations, runs
    them on the cluster's workers and returns one raw dict (the same keys and shapes as the
    wrapped model) with the tasks' rows in task order. Task ``i`` simulates from child ``i``
    of ``numpy.random.SeedSequence(seed)``, so for a given ``seed`` (and ``chunk_size``) the
    simulations are the same whatever the number of workers, the order in which tasks finish
    or a worker dying and its task being re-run; no two tasks share a random stream.

    Parameters
    ----------
    generative_model : GenerativeModel
        Any picklable callable ``model(batch_size, rng=...)`` returning a raw dict.
    client : distributed.Client, Dask cluster, address or None
        Where to simulate. ``None``: a ``LocalCluster`` of single-threaded worker processes
        on this machine, started on first use and closed by :meth:`close` (or ``with``).
    chunk_size : int, default 32
        Simulations per Dask task. Use 1 for simulators that take seconds or more.
    seed : int, SeedSequence or None
        Seed of the whole sequence of calls: the ``k``-th batch of a fresh model is the same
        for the same seed. ``None``: fresh entropy (kept in :attr:`seed_entropy`).
    on_invalid : {"raise", "drop"}, optional
        What to do with a task whose model raises a ``SimulationError`` (the message names the
        simulation's parameters for per-simulation simulators): raise it on the client, or log
        it, drop the task and simulate a replacement task. Default: the model's ``on_invalid``.
    retries : int, default 2
        Dask re-runs of a task that raised anything other than an amortflow error.
    cluster_kwargs : dict, optional
        Arguments of the default ``LocalCluster``.
    max_replacement_rounds : int, default 10
        Rounds of replacement tasks for dropped ones (``on_invalid="drop"``) before giving up.
    timeout : float, optional
        Seconds one call waits for its tasks. Past it the tasks are cancelled and a
        ``SimulationError`` names each worker's state (a worker paused for memory takes no
        tasks, so without a timeout such a batch waits for ever). Default: no limit.

    Notes
    -----
    With ``rng=`` given to a call, the call's tasks use the children of a root derived from
    ``rng`` instead (an int gives the same batch every time). The non-batchable context
    (e.g. ``n_obs``) is drawn once per *task*; all tasks of one batch must agree on it, so a
    model whose non-batchable context varies needs ``chunk_size >= batch_size``.

    Examples
    --------
    >>> from distributed import Client  # doctest: +SKIP
    >>> with DaskGenerativeModel(model, Client(n_workers=4), chunk_size=8, seed=1) as dask_model:  # doctest: +SKIP
    ...     raw = dask_model(batch_size=256)
    """

    def __init__(
        self,
        generative_model: Callable,
        client: Any = None,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        seed: SeedLike = None,
        on_invalid: str | None = None,
        retries: int = DEFAULT_RETRIES,
        cluster_kwargs: dict | None = None,
        max_replacement_rounds: int = 10,
        timeout: float | None = None,
    ):
        import_distributed()  # fail now, with the install hint, rather than at the first batch
        if not callable(generative_model):
            raise ArgumentError(f"DaskGenerativeModel needs a generative model, received {type(generative_model).__name__}.")
        self.generative_model = generative_model
        self.chunk_size = check_batch_size(chunk_size)
        self.on_invalid = check_policy(on_invalid if on_invalid is not None else getattr(generative_model, "on_invalid", "raise"))
        self.retries = check_count("retries", retries)
        self.max_replacement_rounds = check_count("max_replacement_rounds", max_replacement_rounds)
        if timeout is not None and not (isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0):
            raise ArgumentError(f"timeout must be a positive number of seconds or None, received {timeout!r}.")
        self.timeout = None if timeout is None else float(timeout)
        self.seed = seed if isinstance(seed, (int, np.integer)) else None
        self._root = root_seed_sequence(seed)
        self._next_task = 0
        self._lock = threading.Lock()  # calls from several threads (training, validation) get disjoint tasks
        self._handle = ClientHandle(client, cluster_kwargs)
        check_picklable(generative_model)

    # --- what the rest of amortflow reads from a generative model ------------------------
    prior = property(lambda self: getattr(self.generative_model, "prior", None), doc="The wrapped model's prior.")
    simulator = property(lambda self: getattr(self.generative_model, "simulator", None), doc="The wrapped model's simulator.")
    name = property(lambda self: getattr(self.generative_model, "name", "anonymous"), doc="The wrapped model's name.")
    uses_global_rng = property(lambda self: getattr(self.generative_model, "uses_global_rng", True),
                               doc="Whether a user function draws from NumPy's global state (seeded per task).")  # fmt: skip

    @property
    def seed_entropy(self) -> int:
        """Entropy of the root ``SeedSequence``: pass it as ``seed`` to repeat this model's batches."""
        return int(self._root.entropy)

    @property
    def client(self):
        """The Dask client (a default ``LocalCluster`` is started on first access)."""
        return self._handle.client

    def __call__(self, batch_size: int, rng: SeedLike = None) -> dict:
        """Simulate ``batch_size`` simulations on the cluster; see the class docstring for seeding."""
        batch_size = check_batch_size(batch_size)
        sizes = [self.chunk_size] * (batch_size // self.chunk_size)
        if batch_size % self.chunk_size:
            sizes.append(batch_size % self.chunk_size)
        if rng is None:
            root, reserve = self._root, self._reserve
        else:
            root, reserve = root_seed_sequence(rng), _own_numbering()
        return merge_raw(self._simulate_tasks(root, reserve, sizes))

    def _reserve(self, n_tasks: int) -> list[int]:
        """The next ``n_tasks`` indices of this model's task counter."""
        with self._lock:
            first, self._next_task = self._next_task, self._next_task + n_tasks
        return list(range(first, first + n_tasks))

    def _simulate_tasks(self, root: np.random.SeedSequence, reserve: Callable, sizes: list[int]) -> list[dict]:
        """Run one task per size, replacing dropped ones by new task indices; the raws in order."""
        raws: list[dict | None] = [None] * len(sizes)
        todo = list(zip(range(len(sizes)), reserve(len(sizes))))
        rounds = 0
        while todo:
            outcomes = self._run(root, [(index, sizes[position]) for position, index in todo])
            failed = []
            for (position, _), outcome in zip(todo, outcomes):
                if outcome.error is None:
                    raws[position] = outcome.raw
                elif self.on_invalid == "drop" and outcome.droppable:
                    logger.warning("DaskGenerativeModel %r: dropped task %d: %s", self.name, outcome.index, outcome.error)
                    failed.append(position)
                else:
                    raise task_error(outcome)
            if failed and rounds >= self.max_replacement_rounds:
                raise SimulationError(
                    f"DaskGenerativeModel {self.name!r}: {len(failed)} task(s) still failed after {rounds} rounds of "
                    "replacement tasks (on_invalid='drop'); check the simulator or the prior range."
                )
            todo = list(zip(failed, reserve(len(failed))))
            rounds += 1
        return raws

    def _run(self, root: np.random.SeedSequence, tasks: list[tuple[int, int]]) -> list[TaskOutcome]:
        """Submit ``(index, size)`` tasks and return their outcomes in the same order."""
        distributed = import_distributed()
        client, token = self.client, uuid.uuid4().hex[:12]
        seed_global = bool(self.uses_global_rng)
        futures = [
            client.submit(simulate_task, self.generative_model, index, size, child_seed(root, index), seed_global,
                          key=f"amortflow-simulate-{token}-{index}", retries=self.retries)  # fmt: skip
            for index, size in tasks
        ]
        try:
            try:
                distributed.wait(futures, timeout=self.timeout)
            except (TimeoutError, asyncio.TimeoutError) as exc:
                done = sum(future.done() for future in futures)
                raise SimulationError(
                    f"DaskGenerativeModel {self.name!r}: {len(futures) - done} of {len(futures)} task(s) did not finish "
                    f"within timeout={self.timeout:g} s and were cancelled; {describe_workers(client)}."
                ) from exc
            return [outcome_of(future, index, size) for future, (index, size) in zip(futures, tasks)]
        finally:  # interrupted (or failed): do not leave tasks running on the cluster
            client.cancel([future for future in futures if not future.done()])

    def presimulate_and_save(self, folder: str | os.PathLike, batch_size: int, n_batches: int, seed: int | None = None, **kwargs) -> list:
        """Write shards from the cluster's workers; see :func:`dask_presimulate_and_save`.

        ``seed`` defaults to this model's int ``seed`` (if one was given), so that a resumed
        run finds the same seed in the manifest.
        """
        kwargs.setdefault("retries", self.retries)
        seed = self.seed if seed is None else seed
        return dask_presimulate_and_save(self.generative_model, folder, batch_size, n_batches, seed, client=self.client, **kwargs)

    def stream(self, buffer_capacity: int, **kwargs) -> StreamingSimulations:
        """A :class:`StreamingSimulations` of this model on this client (``chunk_size`` and seed inherited)."""
        return StreamingSimulations(self, buffer_capacity=buffer_capacity, **kwargs)

    def close(self) -> None:
        """Close the client/LocalCluster this model started (a client given by the user stays open)."""
        self._handle.close()

    def __enter__(self) -> DaskGenerativeModel:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DaskGenerativeModel({self.generative_model!r}, chunk_size={self.chunk_size}, seed_entropy={self.seed_entropy})"


def _own_numbering() -> Callable[[int], list[int]]:
    """Task indices 0, 1, 2, ... of one call that brought its own ``rng``."""
    counter = itertools.count()
    return lambda n_tasks: [next(counter) for _ in range(n_tasks)]
