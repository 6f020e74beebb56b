"""On-disk cache of reference posterior samples.

Reference sampling for the ODE tasks takes minutes per observation, so samples are stored
under ``$AMORTFLOW_CACHE_DIR/reference`` (default ``~/.cache/amortflow/reference``), one
``.npz`` file per (task, observation, n_samples, seed, sampler version, options).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

logger = logging.getLogger("amortflow")

#: Environment variable that moves the cache (e.g. to a shared project folder).
CACHE_ENV_VAR = "AMORTFLOW_CACHE_DIR"


def reference_cache_dir() -> Path:
    """The folder holding cached reference samples (not created here)."""
    root = os.environ.get(CACHE_ENV_VAR)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "amortflow"
    return base / "reference"


def observation_key(observation: int | np.ndarray) -> str:
    """``"obs3"`` for a numbered observation, else a short hash of the array's bytes."""
    if isinstance(observation, (int, np.integer)):
        return f"obs{int(observation)}"
    digest = hashlib.sha1(np.ascontiguousarray(observation, dtype=np.float64).tobytes()).hexdigest()
    return f"x{digest[:12]}"


def cache_path(task: str, observation: int | np.ndarray, n_samples: int, seed: int, version: int,
               options: dict | None = None) -> Path:  # fmt: skip
    """File name ``<task>_<obs>_<n>_seed<seed>_v<version>[_<options hash>].npz`` in the cache folder."""
    name = f"{task}_{observation_key(observation)}_{n_samples}_seed{seed}_v{version}"
    if options:
        name += "_" + hashlib.sha1(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return reference_cache_dir() / f"{name}.npz"


def load(path: Path) -> tuple[np.ndarray, dict] | None:
    """Samples and diagnostics stored at ``path``, or ``None`` if absent or unreadable."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return data["samples"], json.loads(str(data["diagnostics"]))
    except (OSError, ValueError, KeyError) as error:  # a truncated file from a killed run: recompute
        logger.warning("Ignoring unreadable reference cache file %s (%s).", path, error)
        return None


def save(path: Path, samples: np.ndarray, diagnostics: dict) -> None:
    """Write atomically (temporary file + rename), so parallel runs never read half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    os.close(handle)
    try:
        np.savez(tmp, samples=samples, diagnostics=np.array(json.dumps(diagnostics, default=str)))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
