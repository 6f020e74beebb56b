"""Shared pytest set-up: headless plotting, the TensorFlow backend and fixed seeds."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import amortflow as af  # noqa: E402


def _is_notebook_run(item) -> bool:
    return getattr(item, "originalname", None) == "test_notebook_executes"


def pytest_collection_modifyitems(config, items):
    """The notebook executions last: they run in the background from the start, and their tests only wait."""
    items.sort(key=_is_notebook_run)  # stable: the order within each group stays


@pytest.fixture(scope="session", autouse=True)
def tutorial_notebooks_in_the_background(request):
    """Start executing the selected tutorial notebooks when the session starts (see tests/test_tutorials.py)."""
    items = [item for item in request.session.items if _is_notebook_run(item)]
    if not items:
        yield
        return
    with items[0].module.notebook_pool([item.callspec.params["path"] for item in items]):
        yield


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator; also seeds TensorFlow/Keras so weights are reproducible."""
    return af.set_seed(20261124)
