"""Pin Keras 3 to the TensorFlow backend and quiet TensorFlow's start-up logs.

This module must run before anything imports ``keras`` or ``tensorflow``;
``amortflow/__init__.py`` imports it first.
"""

from __future__ import annotations

import logging
import os
import sys

_REQUIRED_BACKEND = "tensorflow"


def _keras_backend_already_loaded() -> str | None:
    """Return the backend of an already imported Keras 3, or None if Keras is not loaded."""
    keras_module = sys.modules.get("keras")
    if keras_module is None:
        return None
    backend_module = getattr(keras_module, "backend", None)
    backend_fn = getattr(backend_module, "backend", None)
    return backend_fn() if callable(backend_fn) else None


def configure_backend() -> None:
    """Force ``KERAS_BACKEND=tensorflow`` or fail clearly when that is impossible.

    Raises
    ------
    ImportError
        If Keras was already imported with a backend other than TensorFlow:
        Keras reads the backend once, at import, so it cannot be switched later.
    """
    loaded = _keras_backend_already_loaded()
    if loaded is not None and loaded != _REQUIRED_BACKEND:
        raise ImportError(
            f"amortflow needs Keras' '{_REQUIRED_BACKEND}' backend, but Keras was already imported "
            f"with the '{loaded}' backend. Set KERAS_BACKEND=tensorflow before importing keras, "
            "or import amortflow first."
        )
    requested = os.environ.get("KERAS_BACKEND")
    if requested not in (None, _REQUIRED_BACKEND):
        logging.getLogger("amortflow").warning(
            "KERAS_BACKEND=%s was set; amortflow switches it to '%s'.", requested, _REQUIRED_BACKEND
        )
    os.environ["KERAS_BACKEND"] = _REQUIRED_BACKEND
    # TensorFlow's C++ INFO lines (oneDNN, CPU instruction notices) are noise for users;
    # warnings and errors still show. A user's own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
