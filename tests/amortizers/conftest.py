"""Fixtures of the amortizer tests (the helpers live in tests/amortizers/helpers.py)."""

import pytest

from tests.amortizers import helpers


@pytest.fixture
def train():
    """The tiny training loop ``train(amortizer, data, steps, batch_size=128, learning_rate=2e-3, seed=0)``."""
    return helpers.train
