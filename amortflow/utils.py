"""Small helpers shared across amortflow: seeding, loading saved amortizers and the package logger."""

from __future__ import annotations

import logging
import os
import random
import zipfile
from pathlib import Path

import numpy as np

from amortflow._checks import resolve_rng
from amortflow.exceptions import ModelFileError

logger = logging.getLogger("amortflow")


def set_seed(seed: int) -> np.random.Generator:
    """Seed Python, NumPy, TensorFlow and Keras, and return a fresh ``numpy.random.Generator``.

    Parameters
    ----------
    seed : int
        The seed. The same seed gives the same simulations and initial weights.

    Returns
    -------
    numpy.random.Generator
        A generator seeded with ``seed``, to pass on explicitly (``rng=``).
    """
    import keras  # imported lazily: amortflow's __init__ pins the backend first

    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)  # also seeds TensorFlow's global generator
    return np.random.default_rng(seed)


#: ``rng`` -> ``numpy.random.Generator``; ``None`` derives one from NumPy's global state, so that
#: :func:`set_seed` makes it repeatable (the same function as ``amortflow._checks.resolve_rng``).
as_generator = resolve_rng


#: Members every ``.keras`` archive written by ``model.save`` holds.
KERAS_ARCHIVE_MEMBERS = ("config.json", "metadata.json", "model.weights.h5")


def load_amortizer(path: str | os.PathLike, custom_objects: dict | None = None, compile: bool = False):
    """Load an amortizer (or any Keras model) saved with ``amortizer.save(path)`` to a ``.keras`` file.

    The archive is checked first, so that a damaged file gives an error that says so (Keras
    itself reports "File not found" for a truncated file that exists).

    Parameters
    ----------
    path : path
        The ``.keras`` file.
    custom_objects : dict, optional
        Classes not registered with ``keras.saving.register_keras_serializable``.
    compile : bool, default False
        Passed to ``keras.saving.load_model`` (amortizers are trained by a Trainer, not ``fit``).

    Returns
    -------
    keras.Model
        The amortizer, with the saved weights.

    Raises
    ------
    ModelFileError
        If the file is missing, is not a complete ``.keras`` archive (truncated, overwritten,
        another format) or cannot be rebuilt from its contents.
    """
    import keras  # imported lazily: amortflow's __init__ pins the backend first

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path} does not exist (or is not a file); pass the path given to amortizer.save(...).")
    _check_keras_archive(path)
    try:
        return keras.saving.load_model(path, custom_objects=custom_objects, compile=compile)
    except Exception as exc:  # noqa: BLE001 - Keras raises ValueError, TypeError, OSError, ... for bad contents
        raise ModelFileError(
            f"{path} is a Keras archive, but its model cannot be rebuilt ({type(exc).__name__}: {str(exc)[:300]}). "
            "Import the module that defines its classes (custom layers need "
            "keras.saving.register_keras_serializable or custom_objects=...), or save the amortizer again."
        ) from exc


def _check_keras_archive(path: Path) -> None:
    size = path.stat().st_size
    advice = "Save the amortizer again (amortizer.save(path)) or copy the file anew."
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} ({size} bytes) is not a .keras archive: it is truncated, overwritten or in "
                             f"another format (a .keras file is a zip archive). {advice}")  # fmt: skip
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            bad = archive.testzip()  # reads every member and checks its CRC
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ModelFileError(f"{path} ({size} bytes) is a damaged .keras archive ({exc}). {advice}") from exc
    if bad is not None:
        raise ModelFileError(f"{path} is a damaged .keras archive: member {bad!r} fails its CRC check. {advice}")
    missing = [name for name in KERAS_ARCHIVE_MEMBERS if name not in names]
    if missing:
        raise ModelFileError(f"{path} lacks {missing} of a .keras archive (found {sorted(names)[:10]}). {advice}")
