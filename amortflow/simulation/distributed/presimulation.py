"""Presimulation fanned out over a Dask cluster, in the resumable shard format of the serial one.

The workers simulate *and write* the shards (each shard atomically, as in the serial
:func:`amortflow.simulation.presimulate_and_save`), so the simulations never travel through
the client; the client alone writes ``manifest.json``, recording each shard (size, SHA-256)
as its task finishes. This needs ``folder`` to be visible at the same path to the workers
and the client: always true for a ``LocalCluster``, true on HPC clusters for home, project
and scratch file systems (not for node-local ``/tmp``) -- a missing file is reported at once.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from amortflow.exceptions import ArgumentError, DataError
from amortflow.simulation import presimulation as serial
from amortflow.simulation.distributed._client import DEFAULT_RETRIES, ClientHandle, child_seed, import_distributed
from amortflow.simulation.distributed.tasks import check_picklable, outcome_of, task_error, write_shard_task
from amortflow.simulation.prior import check_batch_size

logger = logging.getLogger("amortflow")


def dask_presimulate_and_save(
    generative_model: Callable,
    folder: str | os.PathLike,
    batch_size: int,
    n_batches: int,
    seed: int | None = None,
    *,
    client: Any = None,
    overwrite: bool = False,
    progress: bool = True,
    retries: int = DEFAULT_RETRIES,
    cluster_kwargs: dict | None = None,
) -> list[Path]:
    """Simulate ``n_batches`` shards of ``batch_size`` on a Dask cluster and save them in ``folder``.

    The folder has exactly the format of :func:`amortflow.simulation.presimulate_and_save`
    (``manifest.json`` + ``shard_XXXXX.npz``), and shard ``i`` holds exactly the same
    simulations as the serial function writes for the same ``seed``. Re-running resumes:
    complete shards are kept, only missing or damaged ones are submitted. Either function
    may resume a folder written by the other.

    Parameters
    ----------
    generative_model : GenerativeModel
        Any picklable ``model(batch_size, rng=...)`` returning a raw dict.
    folder : path
        A folder the workers can write to at the same path (see the module notes).
    batch_size, n_batches, seed, overwrite, progress
        As for the serial :func:`~amortflow.simulation.presimulate_and_save`.
    client : distributed.Client, Dask cluster, address or None
        ``None`` starts a ``LocalCluster`` for this call and closes it afterwards.
    retries : int, default 2
        Dask re-runs of a task that raised something other than an amortflow error.
    cluster_kwargs : dict, optional
        Arguments of the default ``LocalCluster``.

    Returns
    -------
    list of pathlib.Path
        The paths of all ``n_batches`` shards, in order.

    Raises
    ------
    SimulationError
        If a shard's simulations fail; shards already recorded are kept for a resumed run.
    DataError
        As for the serial function, or if a worker's shard is not visible to the client.
    """
    if not callable(generative_model):
        raise ArgumentError(f"dask_presimulate_and_save needs a generative model, received {type(generative_model).__name__}.")
    batch_size, n_batches = check_batch_size(batch_size), check_batch_size(n_batches)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ArgumentError(f"dask_presimulate_and_save(seed=...) must be a non-negative int or None, received {seed!r}.")
    import_distributed()
    check_picklable(generative_model)
    folder = Path(folder).resolve()  # workers may run in another working directory
    folder.mkdir(parents=True, exist_ok=True)
    if overwrite:
        serial.clear_shards(folder)
    manifest = serial.start_manifest(folder, generative_model, batch_size, n_batches, seed)
    todo = [i for i in range(n_batches) if not serial.shard_is_complete(folder, manifest, i)]
    handle = ClientHandle(client, cluster_kwargs)
    try:
        if todo:
            _fan_out(handle.client, generative_model, folder, manifest, todo, retries, progress)
    finally:
        handle.close()
    logger.info("dask_presimulate_and_save: wrote %d shard(s), kept %d complete one(s) in %s.",
                len(todo), n_batches - len(todo), folder)  # fmt: skip
    return [folder / serial.shard_name(i) for i in range(n_batches)]


def _fan_out(client, model: Callable, folder: Path, manifest: dict, todo: list[int], retries: int, progress: bool) -> None:
    """Submit one task per missing shard and record each in the manifest as it completes."""
    distributed = import_distributed()
    root = np.random.SeedSequence(manifest["seed_entropy"])
    batch_size, token = manifest["batch_size"], uuid.uuid4().hex[:12]
    seed_global = bool(getattr(model, "uses_global_rng", True))
    futures = {
        client.submit(write_shard_task, model, str(folder), index, batch_size, child_seed(root, index), seed_global,
                      key=f"amortflow-shard-{token}-{index}", retries=retries): index  # fmt: skip
        for index in todo
    }
    try:
        for future in tqdm(distributed.as_completed(futures), total=len(futures), desc="presimulating", disable=not progress):
            index = futures[future]
            outcome = outcome_of(future, index, batch_size)
            if outcome.error is not None:
                raise task_error(outcome, what="Shard")
            _check_visible(folder, index, outcome.entry)
            serial.record_shard(folder, manifest, index, outcome.entry)
    finally:
        client.cancel([future for future in futures if not future.done()])  # after an error: stop the rest


def _check_visible(folder: Path, index: int, entry: dict) -> None:
    path = folder / entry["file"]
    size = path.stat().st_size if path.exists() else None
    if size != entry["bytes"]:
        raise DataError(
            f"A Dask worker wrote shard {index} ({entry['bytes']} bytes) to {path}, but the client sees "
            f"{'no file' if size is None else f'{size} bytes'} there; the folder must be on a file system shared by the "
            "workers and the client (not node-local /tmp)."
        )
