"""Null distribution of the MMD by bootstrap: reference samples drawn with replacement.

:func:`~amortflow.diagnostics.metrics.mmd.mmd_null_distribution` splits the reference
(without replacement) into a pseudo-observed part and the rest; this variant instead draws
the ``num_observed`` pseudo-observed points with replacement and compares them with the
*whole* reference, as in Schmitt et al. (2021), "Detecting model misspecification in
amortized Bayesian inference with neural networks", used by
:meth:`~amortflow.trainers.Trainer.mmd_hypothesis_test` with ``bootstrap=True``.
"""

from __future__ import annotations

import numpy as np

from amortflow.diagnostics.metrics.mmd import maximum_mean_discrepancy


def mmd_bootstrap_null(
    reference: np.ndarray, num_observed: int, num_null_samples: int, rng: np.random.Generator
) -> np.ndarray:
    """MMD values to expect for ``num_observed`` samples of the reference distribution (bootstrap).

    Parameters
    ----------
    reference : numpy.ndarray, shape (n, D)
        Samples from the model (e.g. summary outputs of simulations).
    num_observed : int
        Size of each bootstrap sample (that of the observed data).
    num_null_samples : int
        Bootstrap samples, i.e. values of the null distribution.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray, shape (num_null_samples,)
        ``MMD^2(reference[idx_b], reference)`` with ``idx_b`` drawn uniformly with replacement.
    """
    n = len(reference)
    return np.array(
        [maximum_mean_discrepancy(reference[rng.integers(0, n, num_observed)], reference) for _ in range(int(num_null_samples))]
    )
