"""What runs on a Dask worker, and how the client ships a model there and reads task results back.

A task simulates one chunk from its own ``SeedSequence`` (child ``index`` of the run's root,
see :func:`~amortflow.simulation.distributed._client.child_seed`), through the same
``simulate_shard`` as the serial presimulation, so a task's output depends only on the model,
its size and its seed: never on the worker, the number of workers or the order of tasks.

Errors from the model are *returned*, not raised: Dask re-runs a raising task ``retries``
times, which would repeat a deterministic simulator failure with the same seed for nothing.
What Dask still re-runs are tasks whose worker died, and tasks that raised anything else.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from amortflow._checks import RAW_KEYS
from amortflow.exceptions import AmortflowError, ArgumentError, ShapeError, SimulationError
from amortflow.simulation import presimulation
from amortflow.simulation.distributed._client import import_distributed


@dataclass(frozen=True)
class TaskOutcome:
    """Result of one Dask task: ``raw`` (or ``entry`` of a written shard), or the model's ``error``."""

    index: int
    size: int
    raw: dict | None = None
    entry: dict | None = None
    error: AmortflowError | None = None

    @property
    def droppable(self) -> bool:
        """True if the task failed because a simulation was invalid (``on_invalid="drop"`` may skip it)."""
        return isinstance(self.error, SimulationError)


def simulate_task(model: Callable, index: int, size: int, seed: np.random.SeedSequence, seed_global: bool) -> TaskOutcome:
    """Simulate ``size`` simulations from ``seed`` (runs on a worker)."""
    try:
        raw = presimulation.simulate_shard(model, size, seed, seed_global)
    except AmortflowError as exc:
        return TaskOutcome(index, size, error=exc)
    return TaskOutcome(index, size, raw=raw)


def write_shard_task(
    model: Callable, folder: str | os.PathLike, index: int, size: int, seed: np.random.SeedSequence, seed_global: bool
) -> TaskOutcome:
    """Simulate shard ``index`` and write it (atomically) into ``folder``; returns its manifest entry."""
    outcome = simulate_task(model, index, size, seed, seed_global)
    if outcome.error is not None:
        return outcome
    return TaskOutcome(index, size, entry=presimulation.write_shard(Path(folder), index, outcome.raw))


def task_error(outcome: TaskOutcome, what: str = "Dask task") -> AmortflowError:
    """The model's error of a failed task, re-raised on the client with the task index in front."""
    error = outcome.error
    try:
        wrapped = type(error)(f"{what} {outcome.index} ({outcome.size} simulations) failed: {error}")
    except TypeError:  # an error class with an unusual constructor
        wrapped = SimulationError(f"{what} {outcome.index} ({outcome.size} simulations) failed: {error}")
    wrapped.__cause__ = error
    return wrapped


def merge_raw(raws: Sequence[dict]) -> dict:
    """Concatenate raw simulation dicts along the batch axis.

    Batch-wise entries (``prior_draws``, ``sim_data``, batchable contexts) are concatenated;
    non-batchable contexts must be the same in every part, since a batch shares one.
    """
    if len(raws) == 1:
        return dict(raws[0])
    merged = {}
    for key in RAW_KEYS:
        values = [raw.get(key) for raw in raws]
        if "non_batchable" in key:
            merged[key] = _shared_value(key, values)
        else:
            merged[key] = _concatenate(key, values)
    return merged


def same_value(a: Any, b: Any) -> bool:
    """Whether two non-batchable contexts are equal (arrays element-wise, with their shapes)."""
    if a is None or b is None:
        return a is None and b is None
    try:
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    except (TypeError, ValueError):
        return bool(a == b)


def _shared_value(key: str, values: list) -> Any:
    for i, value in enumerate(values[1:], start=1):
        if not same_value(values[0], value):
            raise SimulationError(
                f"Simulation tasks drew different '{key}': {value!r} in part {i} but {values[0]!r} in part 0; a batch "
                "needs one shared non-batchable context. Use chunk_size >= batch_size (one task per batch) for models "
                "whose non-batchable context varies, or a fixed context."
            )
    return values[0]


def _concatenate(key: str, values: list) -> Any:
    if all(v is None for v in values):
        return None
    if any(v is None for v in values):
        raise SimulationError(f"'{key}' is None in some simulation tasks but not in others; expected the same keys in every task.")
    if all(isinstance(v, np.ndarray) for v in values):
        shapes = {v.shape[1:] for v in values}
        if len(shapes) > 1:
            raise ShapeError(
                f"Simulation tasks returned '{key}' with different shapes per simulation {sorted(shapes)}; expected one "
                "shape to stack them into one batch (does a non-batchable context change the shape?)."
            )
        return np.concatenate(values, axis=0)
    return [row for value in values for row in value]


def outcome_of(future: Any, index: int, size: int) -> TaskOutcome:
    """The outcome of a finished future; a task that kept killing its workers counts as an invalid simulation."""
    distributed = import_distributed()
    if future.status == "error":
        exc = future.exception()
        if isinstance(exc, distributed.KilledWorker):
            return TaskOutcome(index, size, error=SimulationError(
                f"the task killed its worker process repeatedly (crash or out of memory in the simulator): {exc}"))  # fmt: skip
        raise exc
    return future.result()


def check_picklable(model: Any) -> None:
    """Raise an ArgumentError now if ``model`` cannot be sent to Dask workers."""
    import cloudpickle

    try:
        cloudpickle.dumps(model)
    except Exception as exc:  # noqa: BLE001 - any pickling failure means "cannot ship to workers"
        raise ArgumentError(
            f"The generative model {model!r} cannot be pickled ({type(exc).__name__}: {exc}), so it cannot be sent to "
            "Dask workers; avoid open files, locks or TensorFlow objects in its functions."
        ) from exc
