"""Per-data-set summaries of a posterior against the truth: z-score and contraction.

Both follow Schad, Betancourt & Vasishth (2021), "Toward a principled Bayesian workflow in
cognitive science", Psychological Methods 26(1): a good posterior has z-scores near zero
and contraction near one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from amortflow.diagnostics._inputs import check_draws_and_truth, to_numpy
from amortflow.exceptions import ArgumentError, ShapeError


def posterior_z_score(post_samples: Any, prior_samples: Any) -> np.ndarray:
    """Posterior z-score ``(mean_post - theta_true) / sd_post`` for every data set and parameter.

    Parameters
    ----------
    post_samples : array-like, shape (N, S, D)
    prior_samples : array-like, shape (N, D)

    Returns
    -------
    numpy.ndarray, shape (N, D)
    """
    post, prior = check_draws_and_truth(post_samples, prior_samples)
    return (post.mean(axis=1) - prior) / post.std(axis=1, ddof=1)


def posterior_contraction(
    post_samples: Any, prior_samples: Any | None = None, prior_variance: Any | None = None
) -> np.ndarray:
    """Posterior contraction ``1 - Var_post / Var_prior`` for every data set and parameter.

    One means the data pinned the parameter down, zero means the posterior is as wide as the
    prior (negative: wider than the prior).

    Parameters
    ----------
    post_samples : array-like, shape (N, S, D)
    prior_samples : array-like, shape (N, D), optional
        Draws from the prior (e.g. the true parameters of the simulated data sets); the prior
        variance is their variance over the ``N`` data sets.
    prior_variance : array-like, shape (D,) or scalar, optional
        The prior variance, when known. Give exactly one of ``prior_samples`` and ``prior_variance``.

    Returns
    -------
    numpy.ndarray, shape (N, D)
    """
    if (prior_samples is None) == (prior_variance is None):
        raise ArgumentError("posterior_contraction needs exactly one of `prior_samples` and `prior_variance`.")
    if prior_samples is not None:
        post, prior = check_draws_and_truth(post_samples, prior_samples)
        if prior.shape[0] < 2:
            raise ShapeError(
                f"estimating the prior variance needs >= 2 rows of `prior_samples`; received {prior.shape}."
            )
        variance = prior.var(axis=0, ddof=1)
    else:
        post = to_numpy(post_samples, "post_samples")
        if post.ndim == 2:
            post = post[..., None]
        variance = np.broadcast_to(to_numpy(prior_variance, "prior_variance"), (post.shape[-1],))
    return 1.0 - post.var(axis=1, ddof=1) / variance
