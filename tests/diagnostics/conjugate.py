"""The conjugate normal model behind the known-answer tests.

theta ~ N(0, 1), x | theta ~ N(theta, 1), so the exact posterior is N(x / 2, 1 / 2) in every
dimension. Halving its standard deviation gives an over-confident one.
"""

from __future__ import annotations

import numpy as np

POST_SD = np.sqrt(0.5)


def conjugate_draws(num_datasets: int, num_samples: int, num_params: int, seed: int, sd_factor: float = 1.0):
    """True parameters ``(N, D)`` and posterior draws ``(N, S, D)`` with sd ``sd_factor * sqrt(1/2)``."""
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal((num_datasets, num_params))
    x = theta + rng.standard_normal((num_datasets, num_params))
    draws = x[:, None, :] / 2 + sd_factor * POST_SD * rng.standard_normal((num_datasets, num_samples, num_params))
    return theta, draws
