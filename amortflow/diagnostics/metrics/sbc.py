"""Simulation-based calibration (SBC): ranks, binomial histogram bands and simultaneous ECDF bands.

If the posterior approximation is exact, the rank of a true parameter among draws from its
posterior is uniform (Talts et al. 2018, "Validating Bayesian inference algorithms with
simulation-based calibration", arXiv:1804.06788). The ECDF of the ranks is then checked
against *simultaneous* confidence bands (Säilynoja, Bürkner & Vehtari 2022, "Graphical test
for discrete uniformity and its applications in goodness-of-fit evaluation and multiple
sample comparison", Statistics and Computing 32:32).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy import stats

from amortflow._checks import resolve_rng
from amortflow.diagnostics._inputs import check_draws_and_truth
from amortflow.exceptions import ArgumentError

#: Default seed of the uniform simulations behind :func:`simultaneous_ecdf_bands`,
#: so that the same call always draws the same bands.
DEFAULT_ECDF_SEED = 20220401


def sbc_ranks(post_samples: Any, prior_samples: Any, fractional: bool = False) -> np.ndarray:
    """Rank of each true parameter among its posterior draws.

    ``rank[n, d] = #{s : post_samples[n, s, d] < prior_samples[n, d]}``, an integer in
    ``[0, S]``; uniform on ``{0, ..., S}`` when the draws come from the exact posterior.
    Ties count as "not below" (they have probability zero for continuous parameters).

    Parameters
    ----------
    post_samples : array-like, shape (N, S, D)
        ``S`` posterior draws for each of ``N`` simulated data sets.
    prior_samples : array-like, shape (N, D)
        The parameters that generated each data set.
    fractional : bool, default False
        Return fractional ranks in ``(0, 1)`` instead: ``(rank + 0.5) / (S + 1)``, the centre of
        the rank's cell when ``[0, 1]`` is cut into ``S + 1`` equal cells. Their CDF differs
        from the uniform one by at most ``0.5 / (S + 1)`` (the plain ``rank / S`` puts mass
        ``1 / (S + 1)`` exactly on 0 and 1, which the ECDF bands at the ends would flag), and
        from the fraction of draws below the truth by less than ``1 / S``.

    Returns
    -------
    numpy.ndarray, shape (N, D)
        Integer ranks, or fractional ranks when ``fractional=True``.
    """
    post, prior = check_draws_and_truth(post_samples, prior_samples)
    ranks = np.sum(post < prior[:, None, :], axis=1)
    return (ranks + 0.5) / (post.shape[1] + 1) if fractional else ranks


#: Long name of :func:`sbc_ranks`.
simulation_based_calibration_ranks = sbc_ranks


def default_num_bins(num_datasets: int, num_samples: int) -> int:
    """Histogram bins for SBC ranks: about 20 data sets per bin, between 2 and 20 bins, at most ``S + 1``."""
    return int(max(2, min(num_datasets // 20, 20, num_samples + 1)))


def binomial_band(num_datasets: int, num_bins: int, interval: float = 0.99) -> tuple[float, float]:
    """Central ``interval`` of the count in one bin of a uniform rank histogram.

    Under uniformity the count in each of ``num_bins`` bins is ``Binomial(N, 1 / num_bins)``.
    The band is point-wise (per bin), not simultaneous.
    """
    low, high = stats.binom.interval(interval, num_datasets, 1.0 / num_bins)
    return float(low), float(high)


class EcdfBands(NamedTuple):
    """Simultaneous confidence bands for the ECDF of ``num_samples`` uniform values."""

    z: np.ndarray
    """Evaluation points in ``(0, 1)``, shape (K,)."""
    lower: np.ndarray
    """Lower band of the ECDF at ``z``, shape (K,)."""
    upper: np.ndarray
    """Upper band of the ECDF at ``z``, shape (K,)."""
    gamma: float
    """Point-wise level that gives the requested simultaneous confidence."""


def simultaneous_ecdf_bands(
    num_samples: int,
    num_points: int | None = None,
    num_simulations: int = 1000,
    confidence: float = 0.95,
    eps: float = 1e-5,
    seed: int | np.random.Generator | None = DEFAULT_ECDF_SEED,
) -> EcdfBands:
    """Simultaneous ``confidence`` bands for the ECDF of ``num_samples`` i.i.d. ``U(0, 1)`` values.

    Simulation method of Säilynoja et al. (2022): at ``z_k`` the scaled ECDF ``N F(z_k)`` of a
    uniform sample is ``Binomial(N, z_k)``. For each of ``num_simulations`` uniform samples the
    smallest two-sided point-wise tail probability over all ``z_k``,

    ``p = min_k 2 min(P[X <= N F(z_k)], P[X >= N F(z_k)])``,  ``X ~ Binomial(N, z_k)``,

    is recorded; its ``(1 - confidence)`` quantile ``gamma`` is the point-wise level whose
    binomial intervals ``[Q(gamma / 2), Q(1 - gamma / 2)] / N`` hold the *whole* ECDF with
    probability ``confidence``. The bands are reproducible: the simulations use ``seed``.

    Parameters
    ----------
    num_samples : int
        Number of values ``N`` behind the ECDF (the number of simulated data sets in SBC).
    num_points : int, optional
        Number of evaluation points ``K``; defaults to ``num_samples``.
    num_simulations : int, default 1000
        Uniform samples simulated to calibrate ``gamma``.
    confidence : float, default 0.95
        Simultaneous coverage of the bands.
    eps : float, default 1e-5
        ``z`` runs over ``[eps, 1 - eps]``, keeping away from the degenerate ends.
    seed : int or numpy.random.Generator, optional
        Seed of the uniform simulations.

    Returns
    -------
    EcdfBands
        ``(z, lower, upper, gamma)``.
    """
    if num_samples < 1 or not 0.0 < confidence < 1.0:
        raise ArgumentError(
            f"simultaneous_ecdf_bands needs num_samples >= 1 and 0 < confidence < 1; "
            f"received num_samples={num_samples}, confidence={confidence}."
        )
    n = int(num_samples)
    z = np.linspace(eps, 1.0 - eps, int(num_points or n))
    rng = resolve_rng(seed)
    uniforms = np.sort(rng.uniform(size=(int(num_simulations), n)), axis=1)
    counts = np.stack([np.searchsorted(row, z, side="right") for row in uniforms])
    tail = np.minimum(stats.binom.cdf(counts, n, z), stats.binom.sf(counts - 1, n, z))
    min_p = np.min(2.0 * tail, axis=1)
    gamma = float(np.quantile(min_p, 1.0 - confidence))
    lower = stats.binom.ppf(gamma / 2.0, n, z) / n
    upper = stats.binom.ppf(1.0 - gamma / 2.0, n, z) / n
    return EcdfBands(z=z, lower=lower, upper=upper, gamma=gamma)


def rank_ecdf(fractional_ranks: np.ndarray, z: np.ndarray) -> np.ndarray:
    """ECDF of fractional ranks ``(N, D)`` evaluated at ``z`` ``(K,)``; returns ``(K, D)``."""
    sorted_ranks = np.sort(np.asarray(fractional_ranks), axis=0)
    counts = np.stack([np.searchsorted(col, z, side="right") for col in sorted_ranks.T], axis=1)
    return counts / sorted_ranks.shape[0]


def sbc_ecdf_within_bands(
    post_samples: Any,
    prior_samples: Any,
    confidence: float = 0.95,
    num_simulations: int = 1000,
    seed: int | np.random.Generator | None = DEFAULT_ECDF_SEED,
) -> np.ndarray:
    """Whether each parameter's rank ECDF lies inside the simultaneous ``confidence`` bands.

    A calibrated posterior passes for a parameter with probability ``confidence``; a
    ``False`` is evidence of mis-calibration (over- or under-confidence, or bias).

    Returns
    -------
    numpy.ndarray of bool, shape (D,)
    """
    ranks = sbc_ranks(post_samples, prior_samples, fractional=True)
    bands = simultaneous_ecdf_bands(ranks.shape[0], None, num_simulations, confidence, seed=seed)
    ecdf = rank_ecdf(ranks, bands.z)
    inside = (ecdf >= bands.lower[:, None]) & (ecdf <= bands.upper[:, None])
    return np.all(inside, axis=0)
