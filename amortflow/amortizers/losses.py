"""Loss terms used by the amortizers (TensorFlow, differentiable).

* :func:`maximum_mean_discrepancy` - squared MMD between two samples with a multi-scale
  Gaussian kernel (Gretton et al. 2012, "A kernel two-sample test", JMLR). Added to the
  posterior loss it pulls the summary outputs towards a standard normal, so that data unlike
  the training simulations later show up as outliers in summary space (Schmitt et al. 2023,
  "Detecting model misspecification in amortized Bayesian inference with neural networks").
* :func:`dirichlet_kl_to_uniform` and :func:`evidential_loss` - the evidential model-comparison
  loss of Radev et al. (2021), "Amortized Bayesian model comparison with evidential deep learning".
"""

from __future__ import annotations

import tensorflow as tf

from amortflow.defaults import MMD_BANDWIDTH_SETS
from amortflow.diagnostics.metrics.mmd import Bandwidths, resolve_bandwidths

#: Bandwidths ``s`` of the loss's kernel ``k(a, b) = mean_s exp(-||a - b||^2 / (2 s^2))``: the
#: ``"summary_loss"`` set; a range of scales keeps the MMD sensitive to differences in location,
#: scale and tails alike.
DEFAULT_MMD_BANDWIDTHS = MMD_BANDWIDTH_SETS["summary_loss"]


def _kernel(a, b, bandwidths) -> tf.Tensor:
    sq_dist = (
        tf.reduce_sum(tf.square(a), axis=-1)[:, None]
        - 2.0 * tf.matmul(a, b, transpose_b=True)
        + tf.reduce_sum(tf.square(b), axis=-1)[None, :]
    )
    sq_dist = tf.maximum(sq_dist, 0.0)  # rounding can make it slightly negative
    scales = tf.constant([1.0 / (2.0 * s * s) for s in bandwidths], dtype=a.dtype)
    return tf.reduce_mean(tf.exp(-sq_dist[..., None] * scales), axis=-1)


def maximum_mean_discrepancy(x, y, bandwidths: Bandwidths = "summary_loss") -> tf.Tensor:
    """Biased (V-statistic) estimate of ``MMD^2(P, Q)`` from ``x ~ P`` (n, k) and ``y ~ Q`` (m, k).

    ``MMD^2 = mean k(x, x') + mean k(y, y') - 2 mean k(x, y)``, which is >= 0 and 0 iff ``P = Q``
    (for a characteristic kernel) in the limit of many draws. The differentiable (TensorFlow)
    twin of :func:`amortflow.diagnostics.maximum_mean_discrepancy` with its Gaussian kernel: the
    two agree for the same ``bandwidths`` (a name of
    :data:`amortflow.defaults.MMD_BANDWIDTH_SETS` or the scales); only their defaults differ
    (``"summary_loss"`` here, ``"two_sample_test"`` there).
    """
    bandwidths = resolve_bandwidths(bandwidths)
    x = tf.convert_to_tensor(x)
    y = tf.cast(tf.convert_to_tensor(y), x.dtype)
    value = (
        tf.reduce_mean(_kernel(x, x, bandwidths))
        + tf.reduce_mean(_kernel(y, y, bandwidths))
        - 2.0 * tf.reduce_mean(_kernel(x, y, bandwidths))
    )
    return tf.maximum(value, 0.0)


def dirichlet_kl_to_uniform(alpha) -> tf.Tensor:
    """``KL(Dir(alpha) || Dir(1, ..., 1))`` per row of ``alpha`` (B, M), shape (B,).

    ``KL = lgamma(a0) - sum lgamma(a_m) - lgamma(M) + sum (a_m - 1)(digamma(a_m) - digamma(a0))``
    with ``a0 = sum_m a_m``.
    """
    alpha = tf.convert_to_tensor(alpha)
    num_models = tf.cast(tf.shape(alpha)[-1], alpha.dtype)
    alpha0 = tf.reduce_sum(alpha, axis=-1)
    return (
        tf.math.lgamma(alpha0)
        - tf.reduce_sum(tf.math.lgamma(alpha), axis=-1)
        - tf.math.lgamma(num_models)
        + tf.reduce_sum((alpha - 1.0) * (tf.math.digamma(alpha) - tf.math.digamma(alpha0)[:, None]), axis=-1)
    )


def evidential_loss(model_indices, alpha, kl_weight: float) -> tf.Tensor:
    """Per-row evidential loss ``(B,)`` for one-hot ``model_indices`` and concentrations ``alpha`` (B, M).

    ``L = -sum_m y_m log(alpha_m / alpha0) + kl_weight * KL(Dir(alpha_tilde) || Dir(1))``

    The first term is the logarithmic score of the Dirichlet mean (the predicted model
    probabilities), a strictly proper scoring rule, so its minimizer is the true posterior
    model probability. The KL term with ``alpha_tilde = y + (1 - y) * alpha`` (the
    evidence for the true model removed) shrinks misleading evidence for wrong models
    towards the flat Dirichlet, so that the total evidence ``alpha0`` stays small where the
    data do not discriminate (Radev et al. 2021; Sensoy et al. 2018, "Evidential deep
    learning to quantify classification uncertainty").
    """
    y = tf.cast(model_indices, alpha.dtype)
    alpha0 = tf.reduce_sum(alpha, axis=-1, keepdims=True)
    log_score = -tf.reduce_sum(y * (tf.math.log(alpha) - tf.math.log(alpha0)), axis=-1)
    alpha_tilde = y + (1.0 - y) * alpha
    return log_score + kl_weight * dirichlet_kl_to_uniform(alpha_tilde)
