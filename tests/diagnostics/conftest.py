"""Fixtures for the diagnostics tests: the conjugate normal model and figure clean-up.

Conjugate model: theta ~ N(0, 1), x | theta ~ N(theta, 1), so the exact posterior is
N(x / 2, 1 / 2) in every dimension. Halving its standard deviation gives an over-confident one.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

POST_SD = np.sqrt(0.5)


def conjugate_draws(num_datasets: int, num_samples: int, num_params: int, seed: int, sd_factor: float = 1.0):
    """True parameters ``(N, D)`` and posterior draws ``(N, S, D)`` with sd ``sd_factor * sqrt(1/2)``."""
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal((num_datasets, num_params))
    x = theta + rng.standard_normal((num_datasets, num_params))
    draws = x[:, None, :] / 2 + sd_factor * POST_SD * rng.standard_normal((num_datasets, num_samples, num_params))
    return theta, draws


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
