"""Shared pytest set-up: headless plotting, the TensorFlow backend and fixed seeds."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import amortflow as af  # noqa: E402


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator; also seeds TensorFlow/Keras so weights are reproducible."""
    return af.set_seed(20261124)
