"""Fixtures for the diagnostics tests: draws of the conjugate normal model and figure clean-up."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from tests.diagnostics.conjugate import conjugate_draws  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    """Every test starts and ends without open figures (pyplot keeps them alive otherwise)."""
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def calibrated():
    """500 data sets, 400 exact posterior draws each, 2 parameters."""
    return conjugate_draws(500, 400, 2, seed=11)


@pytest.fixture(scope="module")
def overconfident():
    """Same model and data-set count, posterior sd halved."""
    return conjugate_draws(500, 400, 2, seed=12, sd_factor=0.5)
