"""Simulating a sequential round's proposal draws on a Dask cluster (:class:`~amortflow.simulation.DaskGenerativeModel`).

The client draws the parameters from the proposal (the networks stay here); the draws are cut
into chunks of the model's ``chunk_size`` rows and each chunk is simulated as one task by
:func:`~amortflow.inference.proposal_simulation.simulate_at` with its own random stream: child
``i`` of a root ``SeedSequence`` taken from the round's generator. A chunk's simulations depend
only on its rows and its seed, never on the worker or the order in which tasks finish, so a
round is the same for the same seed whatever the cluster (and equal to :func:`simulate_chunks`
run here).
"""

from __future__ import annotations

import numpy as np

from dataclasses import dataclass
from typing import Any

from amortflow.inference.proposal_simulation import simulate_at
from amortflow.simulation.distributed._client import child_seed, import_distributed, root_seed_sequence
from amortflow.simulation.distributed.tasks import merge_raw


@dataclass(frozen=True)
class SimulatorOnly:
    """What a task needs of the generative model: its simulator and ``on_invalid`` policy.

    Sent instead of the model because its prior, a TFP distribution, does not survive pickling
    to a worker (and the workers never draw from it).
    """

    simulator: Any
    on_invalid: str = "raise"


def is_dask_model(generative_model) -> bool:
    """True for a :class:`~amortflow.simulation.DaskGenerativeModel` (without importing Dask for others)."""
    from amortflow.simulation.distributed.model import DaskGenerativeModel

    return isinstance(generative_model, DaskGenerativeModel)


def chunk_plan(theta: np.ndarray, chunk_size: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.random.SeedSequence]]:
    """``(rows, seed)`` per chunk of ``chunk_size`` rows of ``theta``; the seeds are the children of a root drawn from ``rng``."""
    root = root_seed_sequence(rng)
    return [(theta[start:start + chunk_size], child_seed(root, i))
            for i, start in enumerate(range(0, len(theta), chunk_size))]  # fmt: skip


def simulate_chunk(generative_model, theta: np.ndarray, seed: np.random.SeedSequence) -> dict:
    """One task: ``simulate_at`` of ``theta``'s rows with the stream of ``seed`` (runs on a worker)."""
    return simulate_at(generative_model, theta, np.random.default_rng(seed))


def simulate_chunks(generative_model, theta: np.ndarray, chunk_size: int, rng: np.random.Generator) -> dict:
    """What :func:`simulate_at_on_dask` computes, chunk by chunk in this process (the reference of its tests)."""
    return merge_raw([simulate_chunk(generative_model, rows, seed) for rows, seed in chunk_plan(theta, chunk_size, rng)])


def simulate_at_on_dask(dask_model, theta: np.ndarray, rng: np.random.Generator) -> dict:
    """Raw simulations at ``theta (N, D)``, simulated as tasks of ``dask_model.chunk_size`` rows on its cluster.

    A :class:`~amortflow.exceptions.SimulationError` of a task (NaN or inf with ``on_invalid="raise"``)
    is raised here; with ``on_invalid="drop"`` each task drops its own invalid rows.
    """
    distributed = import_distributed()
    wrapped = dask_model.generative_model
    client, model = dask_model.client, SimulatorOnly(wrapped.simulator, getattr(wrapped, "on_invalid", "raise"))
    futures = [client.submit(simulate_chunk, model, rows, seed, pure=False, retries=dask_model.retries)
               for rows, seed in chunk_plan(np.asarray(theta), dask_model.chunk_size, rng)]  # fmt: skip
    try:
        distributed.wait(futures)
        return merge_raw([future.result() for future in futures])
    finally:  # interrupted (or failed): leave no tasks running on the cluster
        client.cancel([future for future in futures if not future.done()])
