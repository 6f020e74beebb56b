"""A bounded replay buffer of configured simulations for experience replay."""

from __future__ import annotations

import warnings

import json
import os
from pathlib import Path

import numpy as np

from amortflow.exceptions import ArgumentError, CheckpointError, ConfigurationError
from amortflow.trainers.arrays import Nested, iter_leaves, num_rows, shape_signature, unflatten

_META_KEY = "__meta__"


class MemoryReplayBuffer:
    """First-in-first-out memory of at most ``capacity`` configured simulations (rows).

    Experience replay (Lin, 1992) trains on batches drawn uniformly from recent simulations
    instead of only the newest ones, so that every simulation is used several times.
    The buffer keeps configured inputs (the configurator runs once per simulation); once
    full, each new simulation replaces the oldest.

    Parameters
    ----------
    capacity : int, default 1000
        Maximum number of simulations held.

    Examples
    --------
    >>> import numpy as np
    >>> buffer = MemoryReplayBuffer(capacity=3)
    >>> buffer.store({"parameters": np.arange(5.0)[:, None]})
    >>> len(buffer), sorted(buffer.sample(3, np.random.default_rng(0))["parameters"].ravel().tolist())
    (3, [2.0, 3.0, 4.0])
    """

    def __init__(self, capacity: int = 1000):
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ArgumentError(f"MemoryReplayBuffer(capacity=...) must be an int >= 1, received {capacity!r}.")
        self.capacity = int(capacity)
        self._arrays: dict[tuple, np.ndarray] = {}
        self._template: tuple | None = None  # shape_signature of the stored rows
        self._size = 0
        self._next = 0  # ring position of the next write

    def __len__(self) -> int:
        return self._size

    def store(self, configured: Nested) -> None:
        """Add the simulations (rows) of a configured dict, evicting the oldest when full."""
        n = num_rows(configured, "MemoryReplayBuffer.store")
        self._check_or_allocate(configured)
        keep = min(n, self.capacity)
        slots = (self._next + np.arange(keep)) % self.capacity
        for path, leaf in iter_leaves(configured):
            if leaf is not None:
                self._arrays[path][slots] = np.asarray(leaf)[n - keep :]
        self._next = int((self._next + keep) % self.capacity)
        self._size = min(self._size + keep, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> Nested:
        """Draw ``batch_size`` stored simulations uniformly (without replacement when enough are held)."""
        if self._size == 0:
            raise ArgumentError("MemoryReplayBuffer.sample: the buffer is empty; store simulations first.")
        replace = batch_size > self._size
        index = rng.choice(self._size, size=batch_size, replace=replace)
        return unflatten(self._template, {path: array[index] for path, array in self._arrays.items()})

    def _check_or_allocate(self, configured: Nested) -> None:
        signature = shape_signature(configured)
        if self._template is None:
            self._template = signature
            for path, leaf in iter_leaves(configured):
                if leaf is not None:
                    self._arrays[path] = np.empty((self.capacity, *np.shape(leaf)[1:]), dtype=np.asarray(leaf).dtype)
        elif signature != self._template:
            raise ConfigurationError(
                "MemoryReplayBuffer holds simulations with per-simulation shapes "
                f"{dict(self._template)}, but received {dict(signature)}; experience replay needs "
                "simulations of one fixed shape (e.g. a fixed number of observations)."
            )

    # --- persistence (checkpoints) -------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the buffer to ``path`` (``.npz``) atomically: temp file, then ``os.replace``."""
        path = Path(path)
        meta = {"capacity": self.capacity, "size": self._size, "next": self._next,
                "template": None if self._template is None else [[list(p), s] for p, s in self._template]}  # fmt: skip
        arrays = {"/".join(p): a for p, a in self._arrays.items()}
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "wb") as handle:
            np.savez(handle, **{_META_KEY: np.array(json.dumps(meta))}, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    def load(self, path: str | os.PathLike) -> None:
        """Replace the contents with those saved by :meth:`save` (``CheckpointError`` if unreadable)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data[_META_KEY]))
                arrays = {tuple(key.split("/")): data[key] for key in data.files if key != _META_KEY}
        except Exception as exc:  # noqa: BLE001 - any read failure means a corrupt file
            raise CheckpointError(f"Replay buffer file {path} cannot be read ({type(exc).__name__}: {exc}).") from exc
        if meta["capacity"] != self.capacity:
            raise CheckpointError(
                f"Replay buffer file {path} has capacity {meta['capacity']}, but this buffer has {self.capacity}."
            )
        template = meta["template"]
        self._template = None if template is None else tuple((tuple(p), None if s is None else tuple(s)) for p, s in template)
        self._arrays, self._size, self._next = arrays, int(meta["size"]), int(meta["next"])


def deprecated_memory_argument(kwargs: dict, replay_buffer):
    """``Trainer(memory=...)``, BayesFlow 1's name of ``replay_buffer``: still accepted, with a warning."""
    if "memory" not in kwargs:
        return replay_buffer
    memory = kwargs.pop("memory")
    warnings.warn("Trainer(memory=...) is deprecated; pass replay_buffer=... instead.", DeprecationWarning,
                  stacklevel=3)  # fmt: skip
    if replay_buffer is not False:
        raise ArgumentError("Pass replay_buffer=... or the deprecated memory=..., not both.")
    return memory


def as_replay_buffer(memory) -> MemoryReplayBuffer | None:
    if memory is False or memory is None:
        return None
    if memory is True:
        return MemoryReplayBuffer()
    if isinstance(memory, MemoryReplayBuffer):
        return memory
    raise ArgumentError(f"replay_buffer must be True, False or a MemoryReplayBuffer, received {memory!r}.")
