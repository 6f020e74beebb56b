"""Helpers shared by several test modules (imported as ``from tests.support import ...``)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]


def assert_config_round_trip(obj) -> None:
    """``get_config -> from_config -> get_config`` must give the same config."""
    config = obj.get_config()
    clone = type(obj).from_config(config)
    assert json.dumps(clone.get_config(), sort_keys=True, default=str) == json.dumps(
        config, sort_keys=True, default=str
    )


def run_in_fresh_process(code: str, workdir: Path, timeout: float = 240.0) -> dict[str, np.ndarray]:
    """Run ``code`` in a new Python process and return the arrays it stored.

    The code runs with ``workdir`` (a :class:`pathlib.Path`) defined, amortflow and numpy
    imported as ``af`` and ``np``, and a function ``store(**arrays)`` that saves arrays
    to return. Used for save/load tests: nothing of this process's state leaks into the load.
    """
    out_file = Path(workdir) / "fresh_process_outputs.npz"
    script = textwrap.dedent(
        f"""
        import os, sys
        os.environ["KERAS_BACKEND"] = "tensorflow"
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from pathlib import Path
        import numpy as np
        import amortflow as af
        workdir = Path({str(workdir)!r})
        def store(**arrays):
            np.savez({str(out_file)!r}, **arrays)
        """
    ) + textwrap.dedent(code)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT
    )
    if result.returncode != 0:
        raise AssertionError(f"fresh process failed:\n{result.stderr[-4000:]}")
    with np.load(out_file) as data:
        return {key: data[key] for key in data.files}


def save_keras(obj, path: Path) -> Path:
    """Save a Keras layer or model to ``path`` (a ``.keras`` file), wrapping a bare layer if needed."""
    if not isinstance(obj, keras.Model):
        raise TypeError("save_keras expects a keras.Model; wrap layers in a Model first")
    obj.save(path)
    return path
