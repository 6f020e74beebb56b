"""Lazy access to Dask's ``distributed`` and one client per amortflow object.

``dask``/``distributed`` are an optional extra (``pip install amortflow[distributed]``), so
nothing here imports them at module import time: :func:`import_distributed` does, on first
use, with an error message that says how to install them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from amortflow.exceptions import ArgumentError
from amortflow.simulation.validation import SeedLike

logger = logging.getLogger("amortflow")

#: Simulations per Dask task when no ``chunk_size`` is given: large enough that the
#: per-task overhead of Dask (~1 ms) is small next to the simulations, small enough to
#: keep every worker busy for batches of a few hundred.
DEFAULT_CHUNK_SIZE = 32
#: Re-runs of a task that raised something other than a SimulationError (e.g. an OSError
#: on a flaky file system). A worker that *dies* is handled by the scheduler instead
#: (``distributed.scheduler.allowed-failures``).
DEFAULT_RETRIES = 2
#: Streaming keeps this many tasks per worker thread submitted, so a worker finishing one
#: task finds the next one already queued.
DEFAULT_IN_FLIGHT_PER_THREAD = 2

INSTALL_HINT = "pip install amortflow[distributed]"


def import_distributed() -> ModuleType:
    """Return the ``distributed`` module, or raise an ImportError saying how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            f"Simulating on a Dask cluster needs dask and distributed, which are not installed ({exc}). "
            f"Install them with: {INSTALL_HINT}"
        ) from exc
    return distributed


class ClientHandle:
    """The Dask client of one amortflow object: borrowed from the user, or owned and made lazily.

    Parameters
    ----------
    client : distributed.Client, Dask cluster, scheduler address or None
        A ``Client`` is used as is and never closed by amortflow. A cluster object (e.g.
        ``LocalCluster``, ``dask_jobqueue.SLURMCluster``) or an address string gets a new
        ``Client`` that :meth:`close` closes (the cluster itself is left running). ``None``
        starts a ``LocalCluster`` of processes on first use, closed by :meth:`close`.
    cluster_kwargs : dict, optional
        Arguments of that ``LocalCluster``; default one single-threaded worker process per
        core (``threads_per_worker=1``: Python simulators hold the GIL).
    """

    def __init__(self, client: Any = None, cluster_kwargs: dict | None = None):
        self._given = client
        self._cluster_kwargs = dict(cluster_kwargs or {})
        self._client = None
        self._cluster = None
        if client is not None and not (isinstance(client, str) or _is_client(client) or _is_cluster(client)):
            raise ArgumentError(
                "client must be a distributed.Client, a Dask cluster (LocalCluster, SLURMCluster, ...), a scheduler "
                f"address or None, received {type(client).__name__}."
            )

    @property
    def client(self):
        """The ``distributed.Client``, created on first access if needed."""
        if self._client is None:
            self._client = self._connect()
        return self._client

    @property
    def owns_client(self) -> bool:
        """True if :meth:`close` closes the client (it was not given by the user)."""
        return self._given is None or not _is_client(self._given)

    def _connect(self):
        distributed = import_distributed()
        if self._given is None:
            kwargs = {"n_workers": os.cpu_count() or 1, "threads_per_worker": 1, "processes": True}
            kwargs.update(self._cluster_kwargs)
            logger.info("Starting a Dask LocalCluster (%s) for simulations.", kwargs)
            self._cluster = distributed.LocalCluster(**kwargs)
            return distributed.Client(self._cluster)
        if _is_client(self._given):
            return self._given
        return distributed.Client(self._given)

    def n_threads(self) -> int:
        """Worker threads in the cluster now (at least 1, so that callers can size queues)."""
        return max(1, sum(self.client.nthreads().values()))

    def close(self) -> None:
        """Close what this handle created (its client, its LocalCluster); a borrowed client stays open."""
        if self._client is not None and self.owns_client:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client, self._cluster = None, None


class ClusterModel:
    """Base of a generative model bound to a Dask client: what a stream made from it borrows.

    :class:`~amortflow.simulation.distributed.DaskGenerativeModel` is the one subclass; a
    :class:`~amortflow.simulation.distributed.StreamingSimulations` given one reuses its client
    and settings. The base lives here, beside :class:`ClientHandle`, so that the streaming module
    recognises such a model without importing the model module (which imports it).
    """

    #: The wrapped model, whose ``model(batch_size, rng=...)`` the tasks call.
    generative_model: Callable
    #: Simulations per Dask task.
    chunk_size: int
    #: ``"raise"`` or ``"drop"``: what a task whose simulations are invalid does.
    on_invalid: str
    #: Dask re-runs of a task that raised something other than an amortflow error.
    retries: int
    #: The client of the model, lent to a stream made without a client of its own.
    _handle: ClientHandle


def describe_workers(client: Any) -> str:
    """The workers' states in one line, for errors about tasks that do not finish.

    A worker that is ``paused`` (its process above Dask's memory pause threshold, 80 % of its
    memory limit by default) takes no new tasks, so a cluster of paused workers stalls a batch
    for ever; the line shows each worker's memory next to its limit.
    """
    try:
        workers = client.scheduler_info()["workers"]
    except Exception as exc:  # noqa: BLE001 - an error message must not raise a second error
        return f"worker states unavailable ({type(exc).__name__}: {exc})"
    if not workers:
        return "no workers are connected"
    states = []
    for address, info in sorted(workers.items()):
        used = (info.get("metrics") or {}).get("memory")
        limit = info.get("memory_limit")
        memory = "" if used is None or not limit else f", memory {used / 2**20:.0f} of {limit / 2**20:.0f} MiB"
        states.append(f"{info.get('name', address)}: {info.get('status', 'unknown')}{memory}")
    paused = sum(info.get("status") == "paused" for info in workers.values())
    hint = f" ({paused} paused for memory: raise the workers' memory limit)" if paused else ""
    return f"{len(states)} worker(s){hint}: " + "; ".join(states)


def _is_client(obj: Any) -> bool:
    return type(obj).__name__ == "Client" and hasattr(obj, "submit") and hasattr(obj, "gather")


def _is_cluster(obj: Any) -> bool:
    return hasattr(obj, "scheduler_address") and hasattr(obj, "scale")


def root_seed_sequence(seed: SeedLike) -> np.random.SeedSequence:
    """The root ``SeedSequence`` of a run from an int seed, a ``SeedSequence``, a Generator or ``None``.

    ``None`` draws fresh entropy from the operating system; a Generator gives up 128 bits of
    its stream (so a seeded Generator gives a reproducible root).
    """
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        high, low = (int(word) for word in seed.integers(0, 2**64, size=2, dtype=np.uint64))
        return np.random.SeedSequence(high << 64 | low)  # one int, so that seed_entropy stays an int
    if seed is None:
        return np.random.SeedSequence()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ArgumentError(f"seed must be a non-negative int, a SeedSequence, a Generator or None, received {seed!r}.")
    return np.random.SeedSequence(int(seed))


def child_seed(root: np.random.SeedSequence, index: int) -> np.random.SeedSequence:
    """Child ``index`` of ``root``: the same as ``root.spawn(index + 1)[index]`` on a fresh root.

    Computed directly from the spawn key, so task ``index`` gets the same stream whichever
    worker runs it, in whatever order, and no two task indices share a stream.
    """
    return np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, int(index)), pool_size=root.pool_size)


def check_policy(on_invalid: Any) -> str:
    """``on_invalid`` if it is ``"raise"`` or ``"drop"``, else an ArgumentError."""
    if on_invalid not in ("raise", "drop"):
        raise ArgumentError(f"on_invalid must be 'raise' or 'drop', received {on_invalid!r}.")
    return on_invalid


def check_count(name: str, value: Any) -> int:
    """``value`` as a non-negative int, else an ArgumentError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ArgumentError(f"{name} must be a non-negative int, received {value!r}.")
    return int(value)
