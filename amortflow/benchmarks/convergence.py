"""MCMC convergence diagnostics for the reference samplers.

The rank-normalized split R-hat of Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021),
"Rank-normalization, folding, and localization: an improved R-hat for assessing convergence
of MCMC", Bayesian Analysis 16(2). Chains are split in halves (detects drift), draws are
replaced by normal scores of their ranks (robust to heavy tails), and the maximum of the
R-hat of the draws ("bulk") and of their distances to the median ("tail") is reported.
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

from amortflow.exceptions import ShapeError


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
    flat = chains.reshape(n * m, dim)
    ranks = stats.rankdata(flat, axis=0)
    return special.ndtri((ranks - 0.375) / (n * m + 0.25)).reshape(n, m, dim)


def split_rhat(chains: np.ndarray) -> np.ndarray:
    """Rank-normalized split R-hat per parameter, ``max(bulk, tail)``.

    Parameters
    ----------
    chains : np.ndarray
        Draws of shape ``(n_iterations, n_chains, D)`` with ``n_iterations >= 4``.

    Returns
    -------
    np.ndarray
        Shape ``(D,)``; values near 1 mean the chains agree, > 1.01-1.05 that they do not.
    """
    chains = np.asarray(chains, dtype=float)
    if chains.ndim != 3 or chains.shape[0] < 4:
        raise ShapeError(
            f"split_rhat expected chains of shape (n_iterations >= 4, n_chains, D), received {chains.shape}."
        )
    half = chains.shape[0] // 2
    split = np.concatenate([chains[:half], chains[-half:]], axis=1)
    bulk = _classic_rhat(_rank_normalize(split))
    folded = np.abs(split - np.median(split.reshape(-1, split.shape[-1]), axis=0))
    tail = _classic_rhat(_rank_normalize(folded))
    return np.maximum(bulk, tail)
