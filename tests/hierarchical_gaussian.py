"""The conjugate hierarchical Gaussian of the two-level tests, with its exact joint posterior.

``mu ~ N(0, 1)`` (hyper), ``theta_g | mu ~ N(mu, tau^2)`` for ``g = 1..G``, ``x_gn | theta_g ~ N(theta_g, sigma^2)``
for ``n = 1..N``, with ``tau = 0.5`` and ``sigma = 1`` known.

Derivation. The group mean ``xbar_g`` is sufficient for ``theta_g``: ``xbar_g | theta_g ~ N(theta_g, sigma^2 / N)``.
Integrating ``theta_g`` out, ``xbar_g | mu ~ N(mu, v)`` with ``v = tau^2 + sigma^2 / N``, independent over ``g``, so

``mu | x ~ N(m, 1 / P)``,  ``P = 1 + G / v``,  ``m = (sum_g xbar_g / v) / P``.

Given ``mu``, the groups decouple: ``theta_g | mu, x ~ N((mu / tau^2 + N xbar_g / sigma^2) / p, 1 / p)`` with
``p = 1 / tau^2 + N / sigma^2``. The joint posterior is the product (Gaussian); ancestral sampling
(``mu`` first, then each ``theta_g``) draws from it exactly. The marginal of ``theta_g`` has mean
``(m / tau^2 + N xbar_g / sigma^2) / p`` and variance ``1 / p + (1 / (tau^2 p))^2 / P``.
"""

from __future__ import annotations

import numpy as np

import amortflow as af

TAU, SIGMA = 0.5, 1.0


def local_prior(mu, num_groups, rng):
    return mu[:, None, :] + TAU * rng.normal(size=(len(mu), num_groups, 1))


def simulator(theta, group_size, rng):
    batch, groups, _ = theta.shape
    return theta[:, :, None, :] + SIGMA * rng.normal(size=(batch, groups, group_size, 1))


def model(num_groups=8, group_size=10) -> af.simulation.TwoLevelGenerativeModel:
    """The model; ``num_groups`` / ``group_size`` are ints or ``f(rng) -> int`` (varying between batches)."""
    sizes = group_size if callable(group_size) else (lambda rng: group_size)
    prior = af.simulation.TwoLevelPrior(lambda b, rng: rng.normal(size=(b, 1)), local_prior, num_groups=num_groups)
    context = af.simulation.ContextGenerator(non_batchable_context_fun=sizes)
    return af.simulation.TwoLevelGenerativeModel(prior, simulator, context_generator=context)


def exact_posterior(data: np.ndarray) -> dict:
    """Means and sds of ``mu`` ``(B,)`` and of each ``theta_g`` ``(B, G)`` given ``data (B, G, N, 1)``."""
    groups, size = data.shape[1], data.shape[2]
    xbar = data[..., 0].mean(axis=2)
    v = TAU**2 + SIGMA**2 / size
    precision_mu = 1.0 + groups / v
    mean_mu = (xbar / v).sum(axis=1) / precision_mu
    p = 1.0 / TAU**2 + size / SIGMA**2
    mean_theta = (mean_mu[:, None] / TAU**2 + size * xbar / SIGMA**2) / p
    sd_theta = np.sqrt(1.0 / p + (1.0 / (TAU**2 * p)) ** 2 / precision_mu)
    return {"mu_mean": mean_mu, "mu_sd": 1.0 / np.sqrt(precision_mu), "theta_mean": mean_theta,
            "theta_sd": np.full_like(mean_theta, sd_theta), "xbar": xbar, "p": p}  # fmt: skip


def exact_draws(data: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``(B, n, 1 + G)`` exact joint draws ``(mu, theta_1..G)`` by ancestral sampling."""
    rng = np.random.default_rng(seed)
    post = exact_posterior(data)
    size = data.shape[2]
    mu = post["mu_mean"][:, None] + post["mu_sd"] * rng.normal(size=(len(data), n))
    mean = (mu[..., None] / TAU**2 + size * post["xbar"][:, None, :] / SIGMA**2) / post["p"]
    theta = mean + rng.normal(size=mean.shape) / np.sqrt(post["p"])
    return np.concatenate([mu[..., None], theta], axis=-1)


def amortizer(summary_dim: int = 4, components: int = 1) -> af.amortizers.TwoLevelAmortizedPosterior:
    """Tiny networks: mean-pooling DeepSets and single-Gaussian MDNs (the exact posteriors are Gaussian)."""
    from amortflow.networks.inference.mdn import MixtureDensityNetwork

    dense = {"units": 16}
    sets = [af.networks.DeepSet(summary_dim=summary_dim, num_equiv=0, num_dense_s1=1, num_dense_s2=1,
                                dense_s1_args=dense, dense_s2_args=dense) for _ in range(2)]  # fmt: skip
    net = af.networks.HierarchicalNetwork(sets)
    local = af.amortizers.AmortizedPosterior(MixtureDensityNetwork(1, num_components=components, hidden_units=(32, 32)))
    hyper = af.amortizers.AmortizedPosterior(MixtureDensityNetwork(1, num_components=components, hidden_units=(32, 32)))
    return af.amortizers.TwoLevelAmortizedPosterior(local, hyper, summary_net=net)
