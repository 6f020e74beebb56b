"""Small helpers shared across amortflow: seeding and the package logger."""

from __future__ import annotations

import logging
import random

import numpy as np

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


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """Turn ``None``, an int seed or a Generator into a ``numpy.random.Generator``."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)
