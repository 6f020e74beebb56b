"""MCMC convergence diagnostics: rank-normalized split R-hat and effective sample size.

Both follow Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021), "Rank-normalization,
folding, and localization: an improved R-hat for assessing convergence of MCMC", Bayesian
Analysis 16(2). Chains are arrays ``(n_iterations, n_chains, D)``.

* :func:`split_rhat`: chains are split in halves (detects drift within a chain), draws are
  replaced by normal scores of their pooled ranks (robust to heavy tails), and the maximum of
  the R-hat of the draws ("bulk") and of their distances to the median ("tail") is reported.
* :func:`effective_sample_size`: the multi-chain ESS of Stan, ``S / tau`` with
  ``tau = -1 + 2 sum_t rho_t`` summed over Geyer's (1992) initial monotone sequence of
  autocorrelation pairs, the autocorrelations combining within- and between-chain variance.
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

from amortflow.exceptions import ShapeError


def _check_chains(chains, who: str, min_iterations: int) -> np.ndarray:
    chains = np.asarray(chains, dtype=float)
    if chains.ndim != 3 or chains.shape[0] < min_iterations:
        raise ShapeError(
            f"{who} expected chains of shape (n_iterations >= {min_iterations}, n_chains, D), received {chains.shape}."
        )
    return chains


def _classic_rhat(chains: np.ndarray) -> np.ndarray:
    """Gelman-Rubin R-hat of ``chains (n, m, D)``: sqrt of pooled over within-chain variance."""
    n = chains.shape[0]
    within = chains.var(axis=0, ddof=1).mean(axis=0)
    between_over_n = chains.mean(axis=0).var(axis=0, ddof=1)
    pooled = (n - 1) / n * within + between_over_n
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(pooled / within)


def _rank_normalize(chains: np.ndarray) -> np.ndarray:
    """Normal scores ``Phi^-1((r - 3/8) / (S + 1/4))`` of the pooled ranks ``r`` (Blom, 1958)."""
    n, m, dim = chains.shape
    ranks = stats.rankdata(chains.reshape(n * m, dim), axis=0)
    return special.ndtri((ranks - 0.375) / (n * m + 0.25)).reshape(n, m, dim)


def _split(chains: np.ndarray) -> np.ndarray:
    """Each chain's first and last halves as two chains (the middle draw of an odd length dropped)."""
    half = chains.shape[0] // 2
    return np.concatenate([chains[:half], chains[-half:]], axis=1)


def split_rhat(chains: np.ndarray) -> np.ndarray:
    """Rank-normalized split R-hat per parameter, ``max(bulk, tail)`` (Vehtari et al. 2021).

    Parameters
    ----------
    chains : np.ndarray
        Draws of shape ``(n_iterations, n_chains, D)`` with ``n_iterations >= 4``; one chain
        is enough (its halves are compared).

    Returns
    -------
    np.ndarray
        Shape ``(D,)``; values near 1 mean the chains agree, above 1.01-1.05 that they do not.
    """
    split = _split(_check_chains(chains, "split_rhat", 4))
    bulk = _classic_rhat(_rank_normalize(split))
    folded = np.abs(split - np.median(split.reshape(-1, split.shape[-1]), axis=0))
    tail = _classic_rhat(_rank_normalize(folded))
    return np.maximum(bulk, tail)


def _autocovariance(chains: np.ndarray) -> np.ndarray:
    """Biased autocovariance ``(n, m, D)`` of each chain at lags ``0..n-1`` (by FFT, zero-padded)."""
    n = chains.shape[0]
    centred = chains - chains.mean(axis=0)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(centred, n=size, axis=0)
    return np.fft.irfft(spectrum * np.conj(spectrum), n=size, axis=0)[:n] / n


def _ess_one(acov: np.ndarray, chain_means: np.ndarray, n: int) -> float:
    """ESS of one parameter from its autocovariances ``(n, m)`` and chain means ``(m,)``."""
    m = acov.shape[1]
    mean_var = acov[0].mean() * n / (n - 1)  # W, the mean within-chain variance
    var_plus = mean_var * (n - 1) / n + (chain_means.var(ddof=1) if m > 1 else 0.0)
    if not var_plus > 0.0:
        return float("nan")  # constant draws: no information about mixing
    rho = 1.0 - (mean_var - acov.mean(axis=1)) / var_plus
    rho[0] = 1.0
    # Geyer's initial positive sequence: sum pairs (rho_2k + rho_2k+1) while they are positive ...
    pairs = rho[: 2 * (n // 2)].reshape(-1, 2).sum(axis=1)
    positive = np.flatnonzero(pairs <= 0.0)
    pairs = pairs[: positive[0]] if positive.size else pairs
    # ... made monotone (each pair at most the one before), which removes noise at long lags.
    pairs = np.minimum.accumulate(pairs)
    tau = max(-1.0 + 2.0 * pairs.sum(), 1.0 / np.log10(n * m))  # cap antithetic chains at S log10 S
    return n * m / tau


def effective_sample_size(chains: np.ndarray) -> np.ndarray:
    """Multi-chain effective sample size per parameter (Vehtari et al. 2021, Stan's estimator).

    ``ESS = S / tau`` with ``S = n m`` draws and ``tau = -1 + 2 sum_k (rho_2k + rho_2k+1)``
    over the initial monotone positive sequence of autocorrelation pairs, where
    ``rho_t = 1 - (W - mean_j acov_j(t)) / var+`` (``W`` the mean within-chain variance,
    ``var+`` the pooled variance estimate of R-hat). For an AR(1) chain with coefficient
    ``phi`` it is close to ``S (1 - phi) / (1 + phi)``.

    Parameters
    ----------
    chains : np.ndarray
        Draws of shape ``(n_iterations, n_chains, D)`` with ``n_iterations >= 2``.

    Returns
    -------
    np.ndarray
        Shape ``(D,)``; NaN for a parameter whose draws are all equal.
    """
    chains = _check_chains(chains, "effective_sample_size", 2)
    n = chains.shape[0]
    acov = _autocovariance(chains)
    means = chains.mean(axis=0)
    return np.array([_ess_one(acov[:, :, d], means[:, d], n) for d in range(chains.shape[-1])])
