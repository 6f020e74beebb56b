"""Presimulated data on disk: resumable ``.npz`` shards plus a JSON manifest.

Format (``format_version`` 1) of a folder::

    manifest.json       {"format_version": 1, "batch_size": B, "n_batches": n, "seed_entropy": int,
                         "model_name": str, "keys": [...],
                         "shards": {"0": {"file": "shard_00000.npz", "bytes": int, "sha256": hex,
                                          "keys": [...], "shapes": {key: [...]}}, ...}}
    shard_00000.npz     one raw simulation dict of B simulations (numpy .npz, no pickle)
    shard_00001.npz     ...

A shard holds the keys of the raw dict whose value is not ``None`` (absent contexts are
simply missing); every value is a numeric array (a non-batchable context is a 0-d or 1-d
array). Shards are readable with nothing but NumPy: ``np.load(path)``.

Each shard is written to a temporary file and moved into place with ``os.replace``
(atomic), and only then recorded in the manifest with its size and SHA-256. Re-running
skips shards whose file matches its manifest entry and redoes the others (missing,
half-written, truncated or corrupt). Shard ``i`` is simulated from the ``i``-th child of
``numpy.random.SeedSequence(seed_entropy)``, so a resumed run writes exactly what an
uninterrupted run would have written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from amortflow._checks import RAW_KEYS, numeric_array
from amortflow.exceptions import ArgumentError, DataError
from amortflow.simulation.prior import check_batch_size

logger = logging.getLogger("amortflow")

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"


def shard_name(index: int) -> str:
    """File name of shard ``index``: ``shard_00000.npz``, ..."""
    return f"shard_{index:05d}.npz"


def presimulate_and_save(
    generative_model: Callable,
    folder: str | os.PathLike,
    batch_size: int,
    n_batches: int,
    seed: int | None = None,
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> list[Path]:
    """Simulate ``n_batches`` batches of ``batch_size`` and save them as shards in ``folder``.

    Parameters
    ----------
    generative_model : GenerativeModel
        Any callable ``model(batch_size, rng=...)`` returning a raw simulation dict.
    folder : path
        Created if missing. An existing folder with a manifest is *resumed*.
    batch_size, n_batches : int
        Simulations per shard and number of shards. A resumed run may ask for more shards.
    seed : int, optional
        Seed of the whole run. ``None``: a fresh random seed, stored in the manifest; a resumed
        run reuses the stored seed (passing a different one raises :class:`DataError`).
    overwrite : bool, default False
        Delete existing shards and manifest first instead of resuming.
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    list of pathlib.Path
        The paths of all ``n_batches`` shards, in order.

    Notes
    -----
    Functions that take no ``rng`` draw from NumPy's global state; to keep shards
    reproducible anyway, that state is seeded per shard and restored afterwards.

    Examples
    --------
    >>> import tempfile
    >>> from amortflow.simulation import GenerativeModel
    >>> model = GenerativeModel(lambda b, rng: rng.normal(size=(b, 2)),
    ...                         lambda p, rng: p[:, None] + rng.normal(size=(len(p), 10, 2)),
    ...                         prior_is_batched=True, simulator_is_batched=True, skip_test=True)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     paths = presimulate_and_save(model, folder, batch_size=16, n_batches=3, seed=1, progress=False)
    ...     raw = load_shard(paths[0])
    >>> [p.name for p in paths], raw["sim_data"].shape
    (['shard_00000.npz', 'shard_00001.npz', 'shard_00002.npz'], (16, 10, 2))
    """
    if not callable(generative_model):
        raise ArgumentError(f"presimulate_and_save needs a generative model, received {type(generative_model).__name__}.")
    batch_size, n_batches = check_batch_size(batch_size), check_batch_size(n_batches)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ArgumentError(f"presimulate_and_save(seed=...) must be a non-negative int or None, received {seed!r}.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if overwrite:
        clear_shards(folder)
    manifest = start_manifest(folder, generative_model, batch_size, n_batches, seed)
    children = np.random.SeedSequence(manifest["seed_entropy"]).spawn(n_batches)
    seed_global = getattr(generative_model, "uses_global_rng", True)
    written = 0
    for index in tqdm(range(n_batches), desc="presimulating", disable=not progress):
        if shard_is_complete(folder, manifest, index):
            continue
        raw = simulate_shard(generative_model, batch_size, children[index], seed_global)
        record_shard(folder, manifest, index, write_shard(folder, index, raw))
        written += 1
    logger.info("presimulate_and_save: wrote %d shard(s), kept %d complete one(s) in %s.", written, n_batches - written, folder)
    return [folder / shard_name(i) for i in range(n_batches)]


def clear_shards(folder: Path) -> None:
    """Delete every shard, partial shard and the manifest in ``folder`` (``overwrite=True``)."""
    for path in list(folder.glob("shard_*.npz")) + list(folder.glob(".shard_*.partial")) + [folder / MANIFEST_NAME]:
        path.unlink(missing_ok=True)


def start_manifest(folder: Path, model: Any, batch_size: int, n_batches: int, seed: int | None) -> dict:
    """Create the manifest of a new folder, or read and check the one being resumed.

    Shared by the serial and the Dask writers so both produce the same resumable format.
    """
    path = folder / MANIFEST_NAME
    for stale in folder.glob(".shard_*.partial"):  # left by an interrupted write
        stale.unlink()
    if not path.exists():
        entropy = int(seed) if seed is not None else int(np.random.SeedSequence().entropy)
        manifest = {"format_version": FORMAT_VERSION, "batch_size": batch_size, "n_batches": n_batches,
                    "seed_entropy": entropy, "model_name": str(getattr(model, "name", "anonymous")),
                    "shards": {}}  # fmt: skip
        write_json(path, manifest)
        return manifest
    manifest = read_manifest(folder)
    if manifest["batch_size"] != batch_size:
        raise DataError(
            f"{folder} holds shards of batch_size={manifest['batch_size']}, but batch_size={batch_size} was "
            "requested; pass the same batch_size to resume, or overwrite=True to start over."
        )
    if seed is not None and int(seed) != manifest["seed_entropy"]:
        raise DataError(
            f"{folder} was written with seed={manifest['seed_entropy']}, but seed={seed} was requested; "
            "pass the same seed (or None) to resume, or overwrite=True to start over."
        )
    manifest["n_batches"] = max(manifest["n_batches"], n_batches)
    return manifest


def record_shard(folder: Path, manifest: dict, index: int, entry: dict) -> None:
    """Add shard ``index`` to the manifest (written at once), unless its layout differs from the others'.

    A folder resumed with another generative model would otherwise mix shards of different
    shapes, and training would fail mid-epoch with an error that names no shard; the new shard
    is deleted instead and a :class:`DataError` names both layouts.
    """
    reference = next((other for key, other in sorted(manifest["shards"].items()) if key != str(index)), None)
    problem = None if reference is None else layout_difference(reference, entry)
    if problem is not None:
        (folder / entry["file"]).unlink(missing_ok=True)
        raise DataError(
            f"{folder} holds shards whose {problem} ({reference['file']}: {_layout(reference)}), but the new shard "
            f"{entry['file']} has {_layout(entry)}; it was not kept. The folder was written by another generative "
            "model: use another folder, or overwrite=True to replace its shards."
        )
    manifest["shards"][str(index)] = entry
    manifest.setdefault("keys", entry["keys"])
    write_json(folder / MANIFEST_NAME, manifest)


def layout_difference(a: dict, b: dict) -> str | None:
    """How two shard entries differ in what training needs equal: keys, ranks, last axes (None if they do not).

    Middle axes may differ (e.g. ``sim_data (B, n_obs, d)`` with a per-shard ``n_obs`` context).
    """
    if a["keys"] != b["keys"]:
        return f"keys are {a['keys']}"
    for key in a["keys"]:
        shape_a, shape_b = a["shapes"][key], b["shapes"][key]
        if len(shape_a) != len(shape_b) or shape_a[-1:] != shape_b[-1:] or (key == "prior_draws" and shape_a != shape_b):
            return f"'{key}' has shape {tuple(shape_a)}"
    return None


def _layout(entry: dict) -> str:
    return ", ".join(f"{key} {tuple(entry['shapes'][key])}" for key in entry["keys"])


def simulate_shard(model: Callable, batch_size: int, child: np.random.SeedSequence, seed_global: bool) -> dict:
    """Simulate one shard from its own ``SeedSequence`` child (the same draws wherever it runs).

    With ``seed_global`` NumPy's legacy global state is seeded from the child too, for
    simulators that ignore ``rng``; the caller's global state is restored afterwards.
    """
    rng = np.random.default_rng(child)
    if not seed_global:
        return model(batch_size, rng=rng)
    saved = np.random.get_state()
    np.random.seed(child.spawn(1)[0].generate_state(4))
    try:
        return model(batch_size, rng=rng)
    finally:
        np.random.set_state(saved)


def _numeric_arrays(raw: dict) -> dict[str, np.ndarray]:
    arrays = {}
    for key, value in raw.items():
        if value is None:
            continue
        array = numeric_array(value, f"Cannot save '{key}' to a .npz shard; '{key}'", error=DataError,
                              expected="numeric arrays (presimulated data and contexts)")
        arrays[key] = array
    for key in ("prior_draws", "sim_data"):
        if key not in arrays:
            raise DataError(f"Cannot save a shard without '{key}'; received keys {sorted(arrays)}.")
    return arrays


def write_shard(folder: Path, index: int, raw: dict) -> dict:
    """Write shard ``index`` atomically and return its manifest entry (file, size, SHA-256, shapes)."""
    arrays = _numeric_arrays(raw)
    final = folder / shard_name(index)
    partial = folder / f".{shard_name(index)}.partial"
    with open(partial, "wb") as handle:
        np.savez(handle, **arrays)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, final)  # atomic: a shard file is either complete or absent
    return {"file": final.name, "bytes": final.stat().st_size, "sha256": _sha256(final),
            "keys": sorted(arrays), "shapes": {k: list(v.shape) for k, v in arrays.items()}}  # fmt: skip


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: Path, content: dict) -> None:
    """Write ``content`` as JSON atomically (temporary file, then ``os.replace``)."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(content, indent=1))
    os.replace(partial, path)


def shard_is_complete(folder: Path, manifest: dict, index: int, verify: bool = True) -> bool:
    """Whether shard ``index`` exists and matches its manifest entry (size, and SHA-256 if ``verify``)."""
    entry = manifest["shards"].get(str(index))
    path = folder / shard_name(index)
    if entry is None or not path.exists():
        return False
    if path.stat().st_size != entry["bytes"] or (verify and _sha256(path) != entry["sha256"]):
        logger.warning("Shard %s does not match its manifest entry (truncated or corrupt); it will be redone.", path)
        return False
    return True


def read_manifest(folder: str | os.PathLike) -> dict:
    """The manifest of a presimulation folder, or a :class:`DataError` naming what is wrong."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"Presimulation folder {folder} does not exist.")
    path = folder / MANIFEST_NAME
    if not path.exists():
        raise DataError(f"{folder} has no {MANIFEST_NAME}; expected a folder written by presimulate_and_save.")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not valid JSON ({exc}).") from exc
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if version != FORMAT_VERSION or not {"batch_size", "n_batches", "seed_entropy", "shards"} <= manifest.keys():
        raise DataError(f"{path} is not a format_version={FORMAT_VERSION} amortflow manifest (found version {version!r}).")
    return manifest


def iter_shard_paths(folder: str | os.PathLike, verify: bool = False) -> Iterator[Path]:
    """Iterate over the complete shards of ``folder``, in order.

    Parameters
    ----------
    folder : path
        A folder written by :func:`presimulate_and_save`.
    verify : bool, default False
        Also compare each shard's SHA-256 with the manifest (reads every file); by default
        only existence and size are checked.

    Raises
    ------
    DataError
        If the folder or its manifest is missing or invalid, or holds no complete shard.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    n_batches = manifest["n_batches"]
    paths = [folder / shard_name(i) for i in range(n_batches) if shard_is_complete(folder, manifest, i, verify)]
    if not paths:
        raise DataError(f"{folder} holds no complete shard (manifest lists {n_batches}); run presimulate_and_save.")
    if len(paths) < n_batches:
        logger.warning("%s: %d of %d shards are incomplete and skipped.", folder, n_batches - len(paths), n_batches)
    return iter(paths)


def load_shard(path: str | os.PathLike) -> dict:
    """Load one shard as a raw simulation dict (absent contexts are ``None``).

    Raises
    ------
    DataError
        If the file is missing, is not a valid ``.npz`` file (truncated, corrupt) or lacks
        ``prior_draws``/``sim_data``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Shard {path} does not exist.")
    try:
        with np.load(path, allow_pickle=False) as data:
            stored = {key: data[key] for key in data.files}
    except Exception as exc:  # noqa: BLE001 - zipfile/EOF/ValueError/OSError all mean "unreadable"
        raise DataError(f"Shard {path} is corrupt or truncated and cannot be read ({type(exc).__name__}: {exc}).") from exc
    missing = [key for key in ("prior_draws", "sim_data") if key not in stored]
    if missing:
        raise DataError(f"Shard {path} lacks {missing}; found keys {sorted(stored)}.")
    raw = {key: None for key in RAW_KEYS}
    for key, value in stored.items():
        raw[key] = value[()] if value.ndim == 0 else value  # a scalar context comes back as a NumPy scalar
    return raw
