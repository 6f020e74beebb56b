"""A bounded in-memory store of simulations for streaming training (FIFO or reservoir).

Rows (single simulations) enter in chunks as simulation tasks finish and leave when they
are replaced; batches are drawn uniformly from the rows present, and each row counts how
often it was drawn (its *seen count*). Memory is fixed at construction time by the first
chunk's row shapes times ``capacity``.

Replacement policies, once the buffer is full:

* ``"fifo"`` -- a new row replaces the *oldest* row. The buffer always holds the most
  recent ``capacity`` simulations; every simulation is trained on for a while and then
  retired. The usual choice when simulations arrive steadily (DeepMelissa, Meyer et al.
  2023).
* ``"reservoir"`` -- reservoir sampling (Vitter 1985, Algorithm R): the ``n``-th row ever
  produced (``n >= capacity``) enters with probability ``capacity / (n + 1)``, replacing a
  uniformly chosen row. The buffer is at every moment a uniform random sample of *all* rows
  produced so far, so late rows are not favoured; as ``n`` grows, new rows enter rarely
  and the buffer changes slowly (rows are seen more often each).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from amortflow._checks import RAW_KEYS, check_choice
from amortflow.exceptions import ArgumentError, ShapeError, SimulationError
from amortflow.simulation.distributed.tasks import same_value
from amortflow.simulation.prior import check_batch_size
from amortflow.simulation.validation import SeedLike, resolve_rng

POLICIES = ("fifo", "reservoir")
ROW_KEYS = ("prior_draws", "sim_data", "prior_batchable_context", "sim_batchable_context")
SHARED_KEYS = ("prior_non_batchable_context", "sim_non_batchable_context")


class SimulationBuffer:
    """At most ``capacity`` simulations, replaced by ``policy``; not thread-safe (lock around it).

    Parameters
    ----------
    capacity : int
        Number of simulations held.
    policy : {"fifo", "reservoir"}, default "fifo"
        Which row a new row replaces once the buffer is full (see the module notes).
    seed : int, Generator or None
        Randomness of the reservoir policy.

    Examples
    --------
    >>> buffer = SimulationBuffer(capacity=4)
    >>> buffer.add({"prior_draws": np.zeros((6, 2)), "sim_data": np.arange(6.0)[:, None]})
    >>> buffer.fill, buffer.total_added, sorted(buffer.sample(4, rng=0)["sim_data"].ravel().tolist())
    (4, 6, [2.0, 3.0, 4.0, 5.0])
    """

    def __init__(self, capacity: int, policy: str = "fifo", seed: SeedLike = None):
        check_choice("policy", policy, POLICIES)
        self.capacity = check_batch_size(capacity)
        self.policy = policy
        self._rng = resolve_rng(seed) if seed is not None else np.random.default_rng()
        self._rows: dict[str, np.ndarray] = {}
        self._shared: dict[str, Any] = {}
        self.seen = np.zeros(self.capacity, dtype=np.int64)
        self.fill = 0
        self.total_added = 0
        self.evicted = 0
        self.evicted_unseen = 0

    def add(self, raw: dict) -> None:
        """Add the simulations of one raw dict (``(k, ...)`` rows), replacing rows per the policy."""
        n_rows = self._check(raw)
        rows, slots = self._slots(n_rows)
        occupied = slots < self.fill  # slots 0..fill-1 are in use: both policies fill them in order
        lost_now = n_rows - rows.size  # rows that never entered (reservoir) or were replaced within this add
        self.evicted += int(occupied.sum()) + lost_now
        self.evicted_unseen += int((self.seen[slots[occupied]] == 0).sum()) + lost_now
        for key, store in self._rows.items():
            value = raw[key]
            if store.dtype == object:  # per-element: numpy would try to broadcast a list of arrays
                for slot, row in zip(slots, rows):
                    store[slot] = value[row]
            else:
                store[slots] = np.asarray(value)[rows]
        self.seen[slots] = 0
        self.total_added += n_rows
        self.fill = min(self.capacity, self.total_added)

    def _slots(self, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the chunk to store and their slots (unique; a later row wins a shared slot)."""
        positions = self.total_added + np.arange(n_rows)
        if self.policy == "fifo":
            slots = positions % self.capacity
        else:  # Algorithm R: row n replaces slot j ~ U{0..n} if j < capacity
            draws = self._rng.integers(0, positions + 1)
            slots = np.where(positions < self.capacity, positions, draws)
        rows = np.flatnonzero(slots < self.capacity)
        slots = slots[rows]
        _, last_in_reversed = np.unique(slots[::-1], return_index=True)
        keep = slots.size - 1 - last_in_reversed
        return rows[keep], slots[keep]

    def _check(self, raw: dict) -> int:
        """Validate a chunk against the first one (which fixes the row shapes) and return its size."""
        if raw.get("prior_draws") is None or raw.get("sim_data") is None:
            raise ArgumentError(f"A simulation chunk needs 'prior_draws' and 'sim_data', received keys {sorted(raw)}.")
        n_rows = len(raw["prior_draws"])
        if not self._rows:
            self._allocate(raw, n_rows)
        for key in ROW_KEYS:
            value, store = raw.get(key), self._rows.get(key)
            if (value is None) != (store is None):
                raise SimulationError(f"'{key}' is {'missing' if value is None else 'present'} in a new chunk but not in the buffer's first chunk.")
            if value is None:
                continue
            if len(value) != n_rows:
                raise ShapeError(f"'{key}' has {len(value)} rows in a chunk with {n_rows} prior_draws; expected {n_rows}.")
            if store.dtype != object and np.shape(value)[1:] != store.shape[1:]:
                raise ShapeError(
                    f"'{key}' arrives with shape {np.shape(value)[1:]} per simulation, but the buffer holds shape "
                    f"{store.shape[1:]}; every simulation in a buffer must have the same shape (fixed non-batchable context)."
                )
        for key in SHARED_KEYS:
            if not same_value(raw.get(key), self._shared[key]):
                raise SimulationError(
                    f"'{key}' of a new chunk is {raw.get(key)!r}, but the buffer holds simulations with "
                    f"{self._shared[key]!r}; batches drawn from a buffer mix simulations, so they need one shared "
                    "non-batchable context."
                )
        return n_rows

    def _allocate(self, raw: dict, n_rows: int) -> None:
        for key in ROW_KEYS:
            value = raw.get(key)
            if value is None:
                continue
            if isinstance(value, np.ndarray) and value.dtype != object:
                self._rows[key] = np.empty((self.capacity, *value.shape[1:]), dtype=value.dtype)
            else:
                self._rows[key] = np.empty(self.capacity, dtype=object)
        self._shared = {key: raw.get(key) for key in SHARED_KEYS}

    def sample(self, batch_size: int, rng: SeedLike = None) -> dict:
        """Draw ``batch_size`` rows uniformly (without replacement when the buffer holds enough).

        Returns a raw dict (all six keys; absent ones ``None``) and adds one to the seen count
        of each row drawn.
        """
        batch_size = check_batch_size(batch_size)
        if self.fill == 0:
            raise SimulationError("Cannot draw a batch from an empty simulation buffer.")
        rng = self._rng if rng is None else resolve_rng(rng)
        index = rng.choice(self.fill, size=batch_size, replace=batch_size > self.fill)
        np.add.at(self.seen, index, 1)
        out = {key: None for key in RAW_KEYS}
        out.update(self._shared)
        for key, store in self._rows.items():
            out[key] = store[index] if store.dtype != object else [store[i] for i in index]
        return out

    def stats(self) -> dict:
        """Fill, capacity, rows added/evicted (and evicted before ever being drawn), seen-count mean and max."""
        seen = self.seen[: self.fill]
        return {
            "buffer_fill": self.fill,
            "buffer_capacity": self.capacity,
            "rows_added": self.total_added,
            "rows_evicted": self.evicted,
            "rows_evicted_unseen": self.evicted_unseen,
            "seen_mean": float(seen.mean()) if self.fill else 0.0,
            "seen_max": int(seen.max()) if self.fill else 0,
        }

    def __len__(self) -> int:
        return self.fill
