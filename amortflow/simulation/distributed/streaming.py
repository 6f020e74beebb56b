"""Streaming simulations from a Dask cluster into a bounded buffer for online training.

The pattern of DeepMelissa (Meyer et al., 2023, "Training deep surrogate models with large
numerical solutions"): simulation tasks run on the cluster all the time; a background thread
puts the rows of each finished task (in completion order, via ``distributed.as_completed``)
into a :class:`SimulationBuffer` and submits the next task; training draws its batches from
the buffer. Training waits only once, until the buffer first holds ``watermark`` rows; after
that a batch never waits for a simulation, and memory stays at ``buffer_capacity`` rows.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

from amortflow.exceptions import ArgumentError, SimulationError
from amortflow.simulation.distributed._client import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_IN_FLIGHT_PER_THREAD,
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
from amortflow.simulation.distributed.buffer import SimulationBuffer
from amortflow.simulation.distributed.tasks import TaskOutcome, check_picklable, outcome_of, simulate_task, task_error
from amortflow.simulation.generative_model import MAX_INVALID_FRACTION
from amortflow.simulation.prior import check_batch_size
from amortflow.simulation.validation import SeedLike, resolve_rng

logger = logging.getLogger("amortflow")


class IndexLedger:
    """Which task indices have contributed: each index counts once (a re-run's copy is refused).

    Stored as "every index below ``low``" plus a set of the indices above it, so memory stays
    small for endless streams whose tasks finish roughly in order.
    """

    def __init__(self):
        self.low = 0
        self._above: set[int] = set()

    def add(self, index: int) -> bool:
        """Record ``index``; False if it was recorded before."""
        if index < self.low or index in self._above:
            return False
        self._above.add(index)
        while self.low in self._above:
            self._above.discard(self.low)
            self.low += 1
        return True

    def __contains__(self, index: int) -> bool:
        return index < self.low or index in self._above


class StreamingSimulations:
    """A data source of simulations that keep arriving from a Dask cluster (see the module notes).

    Parameters
    ----------
    generative_model : GenerativeModel or DaskGenerativeModel
        The model to simulate. A ``DaskGenerativeModel`` lends its client, ``chunk_size``,
        ``on_invalid`` and ``retries`` as defaults (not its seed: the stream's tasks must not
        repeat the model's own batches).
    client : distributed.Client, Dask cluster, address or None
        ``None`` (and no DaskGenerativeModel): a ``LocalCluster`` closed by :meth:`close`.
    buffer_capacity : int
        Simulations held in memory.
    watermark : int, optional
        Simulations in the buffer before the first batch is served; default ``buffer_capacity``.
    chunk_size : int, default 32
        Simulations per task.
    max_in_flight : int, optional
        Tasks kept submitted; default twice the cluster's worker threads at :meth:`start`.
    policy : {"fifo", "reservoir"}, default "fifo"
        Which row a new simulation replaces in a full buffer (see :class:`SimulationBuffer`).
    seed : int, SeedSequence or None
        Task ``i`` simulates from child ``i`` of ``SeedSequence(seed)`` (the same rows as
        task ``i`` of a ``DaskGenerativeModel`` with that seed); batch sampling and the
        reservoir draw from the root's own state. The *order* in which tasks arrive depends
        on the cluster, so batches are not bit-reproducible, the set of simulations is.
    on_invalid : {"raise", "drop"}, optional
        A task whose model raises a ``SimulationError``: fail the next :meth:`next_batch`
        with it, or log it and go on without its rows. Default: the model's ``on_invalid``.
    retries : int, default 2
        Dask re-runs of a task that raised something other than an amortflow error.
    max_simulations : int, optional
        Stop submitting after this many simulations (``None``: stream until :meth:`close`).

    Examples
    --------
    >>> with StreamingSimulations(model, client, buffer_capacity=4096, watermark=1024) as stream:  # doctest: +SKIP
    ...     for step in range(10_000):
    ...         raw = stream.next_batch(64)
    ...     print(stream.stats())
    """

    def __init__(
        self,
        generative_model: Callable | ClusterModel,
        client: Any = None,
        *,
        buffer_capacity: int,
        watermark: int | None = None,
        chunk_size: int | None = None,
        max_in_flight: int | None = None,
        policy: str = "fifo",
        seed: SeedLike = None,
        on_invalid: str | None = None,
        retries: int | None = None,
        max_simulations: int | None = None,
        cluster_kwargs: dict | None = None,
    ):
        import_distributed()
        lender = generative_model if isinstance(generative_model, ClusterModel) else None
        model = lender.generative_model if lender else generative_model
        if not callable(model):
            raise ArgumentError(f"StreamingSimulations needs a generative model, received {type(model).__name__}.")
        check_picklable(model)
        self.generative_model = model
        self._handle = lender._handle if (lender and client is None) else ClientHandle(client, cluster_kwargs)
        self._owns_handle = not (lender and client is None)
        self.chunk_size = check_batch_size(chunk_size or (lender.chunk_size if lender else DEFAULT_CHUNK_SIZE))
        default_policy = lender.on_invalid if lender else getattr(model, "on_invalid", "raise")
        self.on_invalid = check_policy(on_invalid if on_invalid is not None else default_policy)
        self.retries = check_count("retries", retries if retries is not None else (lender.retries if lender else DEFAULT_RETRIES))
        self.buffer_capacity = check_batch_size(buffer_capacity)
        self.watermark = self.buffer_capacity if watermark is None else check_batch_size(watermark)
        if self.watermark > self.buffer_capacity:
            raise ArgumentError(f"watermark={self.watermark} exceeds buffer_capacity={self.buffer_capacity}; expected watermark <= capacity.")
        self.max_in_flight = None if max_in_flight is None else check_batch_size(max_in_flight)
        self.max_simulations = None if max_simulations is None else check_batch_size(max_simulations)
        self._root = root_seed_sequence(seed)
        state = self._root.generate_state(8)  # the root's own words: disjoint from every task's child stream
        self._rng = np.random.default_rng(state[:4])
        self._buffer = SimulationBuffer(self.buffer_capacity, policy, seed=np.random.default_rng(state[4:]))
        self.policy = policy
        self._cond = threading.Condition()
        self._ledger = IndexLedger()
        self._in_flight: dict[str, tuple[Any, int, int]] = {}
        self._counts = {"tasks_done": 0, "simulations_done": 0, "invalid_tasks": 0, "duplicates_dropped": 0, "batches_drawn": 0}
        self._next_index, self._submitted, self._invalid_simulations = 0, 0, 0
        self._state = "new"  # new -> running -> closed
        self._ready, self._collecting, self._error = False, False, None
        self._thread: threading.Thread | None = None
        self._started_at = self._ready_after = None

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> StreamingSimulations:
        """Submit the first ``max_in_flight`` tasks and start collecting results (idempotent)."""
        if self._state == "running":
            return self
        if self._state == "closed":
            raise SimulationError("This StreamingSimulations was closed; create a new one to stream again.")
        distributed = import_distributed()
        client = self._handle.client
        if self.max_in_flight is None:
            self.max_in_flight = DEFAULT_IN_FLIGHT_PER_THREAD * self._handle.n_threads()
        self._token, self._seed_global = uuid.uuid4().hex[:12], bool(getattr(self.generative_model, "uses_global_rng", True))
        self._as_completed = distributed.as_completed()
        self._state, self._collecting, self._started_at = "running", True, time.monotonic()
        while len(self._in_flight) < self.max_in_flight and self._submit_next(client):
            pass
        self._thread = threading.Thread(target=self._collect, name="amortflow-streaming", daemon=True)
        self._thread.start()
        logger.info("StreamingSimulations: %d task(s) of %d simulations in flight, buffer of %d (watermark %d, %s).",
                    len(self._in_flight), self.chunk_size, self.buffer_capacity, self.watermark, self._buffer.policy)  # fmt: skip
        return self

    def close(self) -> None:
        """Stop submitting, cancel tasks in flight, stop the collector; close a client this object started."""
        if self._state == "running":
            self._state = "closed"
            deadline = time.monotonic() + 30
            while self._thread.is_alive() and time.monotonic() < deadline:
                with self._cond:  # again each round: a task may have been submitted meanwhile
                    futures = [future for future, _, _ in self._in_flight.values() if not future.done()]
                if futures:
                    self._handle.client.cancel(futures)
                self._thread.join(timeout=0.5)
        self._state = "closed"
        if self._owns_handle:
            self._handle.close()

    def __enter__(self) -> StreamingSimulations:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- the collector thread ---------------------------------------------------------------
    def _submit_next(self, client) -> bool:
        """Submit the next task unless ``max_simulations`` is reached or the stream is closing."""
        size = self.chunk_size
        if self.max_simulations is not None:
            size = min(size, self.max_simulations - self._submitted)
        if size <= 0 or self._state != "running":
            return False
        index, self._next_index = self._next_index, self._next_index + 1
        future = client.submit(simulate_task, self.generative_model, index, size, child_seed(self._root, index), self._seed_global,
                               key=f"amortflow-stream-{self._token}-{index}", retries=self.retries)  # fmt: skip
        with self._cond:
            self._in_flight[future.key] = (future, index, size)
        self._submitted += size
        self._as_completed.add(future)
        return True

    def _collect(self) -> None:
        client = self._handle.client
        try:
            for future in self._as_completed:
                if self._state != "running" or future.status == "cancelled":
                    with self._cond:
                        self._in_flight.pop(future.key, None)
                    continue
                _, index, size = self._in_flight[future.key]
                self._accept(future.key, outcome_of(future, index, size))  # fetched outside the lock
                while len(self._in_flight) < self.max_in_flight and self._submit_next(client):
                    pass
        except BaseException as exc:  # noqa: BLE001 - handed to the training thread by next_batch
            if self._state == "running":
                logger.error("StreamingSimulations stopped: %s", exc)
                with self._cond:
                    self._error = exc
        finally:
            with self._cond:
                self._collecting = False
                self._cond.notify_all()

    def _accept(self, key: str, outcome: TaskOutcome) -> None:
        """Put a finished task's rows into the buffer, once per task index.

        Leaving ``in flight`` and entering the counts happen under one lock, so that
        :meth:`stats` never shows a task as neither running nor done.
        """
        with self._cond:
            self._in_flight.pop(key, None)
            if not self._ledger.add(outcome.index):
                self._counts["duplicates_dropped"] += 1
                return
            if outcome.error is not None:
                if not (outcome.droppable and self.on_invalid == "drop"):
                    raise task_error(outcome)
                self._counts["invalid_tasks"] += 1
                self._invalid_simulations += outcome.size
                logger.warning("StreamingSimulations: dropped task %d: %s", outcome.index, outcome.error)
                self._check_failure_rate()
                return
            self._buffer.add(outcome.raw)
            self._counts["tasks_done"] += 1
            self._counts["simulations_done"] += len(outcome.raw["prior_draws"])
            if not self._ready and self._buffer.fill >= self.watermark:
                self._mark_ready()

    def _check_failure_rate(self) -> None:
        """Stop an endless stream of failing tasks (the rule of ``GenerativeModel(on_invalid="drop")``)."""
        total = self._invalid_simulations + self._counts["simulations_done"]
        if total >= 100 and self._invalid_simulations / total > MAX_INVALID_FRACTION:
            raise SimulationError(
                f"StreamingSimulations: {self._invalid_simulations} of {total} simulations failed "
                f"(more than {MAX_INVALID_FRACTION:.0%}); check the simulator or the prior range."
            )

    def _mark_ready(self) -> None:
        self._ready, self._ready_after = True, time.monotonic() - self._started_at
        logger.info("StreamingSimulations: watermark of %d simulations reached after %.1f s.", self.watermark, self._ready_after)
        self._cond.notify_all()

    # --- what training calls -----------------------------------------------------------------
    def next_batch(self, batch_size: int, rng: SeedLike = None, timeout: float | None = None) -> dict:
        """A raw simulation dict of ``batch_size`` rows drawn uniformly from the buffer.

        Starts the stream if needed. Blocks only until the buffer first reaches the watermark
        (or the stream ended with some rows); afterwards it returns at once.

        Raises
        ------
        SimulationError
            A task failed and ``on_invalid="raise"`` (the message names the task and the
            simulation's parameters), or the stream ended without producing any simulation.
        TimeoutError
            The watermark was not reached within ``timeout`` seconds.
        """
        batch_size = check_batch_size(batch_size)
        self.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._ready and self._error is None:
                if not self._collecting:
                    if self._buffer.fill == 0:
                        raise SimulationError(f"The simulation stream ended without any simulation ({self._counts}).")
                    self._mark_ready()  # max_simulations below the watermark: serve what there is
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"Watermark of {self.watermark} simulations not reached within {timeout} s; {self.describe()}; "
                                       f"{describe_workers(self._handle.client)}.")  # fmt: skip
                self._cond.wait(timeout=remaining)
            if self._error is not None:
                raise self._error
            self._counts["batches_drawn"] += 1
            return self._buffer.sample(batch_size, self._rng if rng is None else resolve_rng(rng))

    def stats(self) -> dict:
        """Progress of the stream, a snapshot (see ``docs/scale_out.md`` for each key)."""
        with self._cond:
            out = dict(self._counts)
            out["tasks_in_flight"] = len(self._in_flight)
            out["simulations_in_flight"] = sum(size for _, _, size in self._in_flight.values())
            out.update(self._buffer.stats())
            out.update(ready=self._ready, active=self._collecting, seconds_to_watermark=self._ready_after, watermark=self.watermark)
        return out

    def describe(self) -> str:
        """One line for a progress bar: simulations done / in flight, buffer fill, seen counts."""
        s = self.stats()
        return (f"sims {s['simulations_done']} (+{s['simulations_in_flight']} running) | buffer {s['buffer_fill']}/"
                f"{s['buffer_capacity']} | seen {s['seen_mean']:.2f} (max {s['seen_max']})")  # fmt: skip

    def __repr__(self) -> str:
        return f"StreamingSimulations({self.generative_model!r}, policy={self.policy!r}, state={self._state!r})"
