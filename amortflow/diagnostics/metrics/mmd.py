"""Maximum mean discrepancy (MMD) between two samples, with a mixture of kernel bandwidths.

Gretton et al. (2012), "A kernel two-sample test", JMLR 13. Used to detect model
misspecification in amortized inference (Schmitt et al. 2023, "Detecting model
misspecification in amortized Bayesian inference with neural networks").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.spatial.distance import cdist

from amortflow._checks import check_choice, numeric_array, resolve_rng
from amortflow.defaults import MMD_BANDWIDTH_SETS
from amortflow.diagnostics._inputs import check_samples_2d
from amortflow.exceptions import ArgumentError, ShapeError

#: What a bandwidth argument accepts: a name of :data:`amortflow.defaults.MMD_BANDWIDTH_SETS`
#: or the length scales themselves.
Bandwidths = str | Sequence[float]

#: The two-sample test's length scales (the ``"two_sample_test"`` set), the default here.
DEFAULT_MMD_BANDWIDTHS = MMD_BANDWIDTH_SETS["two_sample_test"]

_KERNELS = ("gaussian", "inverse_multiquadratic")


def resolve_bandwidths(bandwidths: Bandwidths) -> tuple[float, ...]:
    """Length scales of a named set (``"summary_loss"``, ``"two_sample_test"``) or given directly.

    Raises :class:`ArgumentError` for an unknown name, an empty set or a scale that is not
    a positive finite number.
    """
    if isinstance(bandwidths, str):
        return MMD_BANDWIDTH_SETS[check_choice("bandwidths", bandwidths, tuple(MMD_BANDWIDTH_SETS))]
    values = numeric_array(bandwidths, "bandwidths", dtype=np.float64, finite=True, expected="positive length scales")
    if values.ndim != 1 or values.size == 0 or np.any(values <= 0.0):
        raise ArgumentError(f"bandwidths must be positive length scales (a non-empty sequence), received {bandwidths!r}.")
    return tuple(float(v) for v in values)


def mixture_kernel(
    x: np.ndarray, y: np.ndarray, kernel: str = "gaussian", bandwidths: Bandwidths = "two_sample_test"
) -> np.ndarray:
    """Kernel matrix ``k(x_i, y_j)`` averaged over ``bandwidths``; ``k(x, x) = 1``.

    * ``"gaussian"``: ``k(x, y) = mean_sigma exp(-||x - y||^2 / (2 sigma^2))``
    * ``"inverse_multiquadratic"``: ``k(x, y) = mean_sigma sigma^2 / (sigma^2 + ||x - y||^2)``
    """
    check_choice("kernel", kernel, _KERNELS)
    bandwidths = resolve_bandwidths(bandwidths)
    # cdist sums squared differences directly: exact zeros for identical points, unlike the
    # |x|^2 + |y|^2 - 2 x.y expansion, whose round-off small bandwidths would amplify
    d2 = cdist(x, y, "sqeuclidean")
    out = np.zeros_like(d2)
    for sigma in bandwidths:
        s2 = float(sigma) ** 2
        out += np.exp(-d2 / (2.0 * s2)) if kernel == "gaussian" else s2 / (s2 + d2)
    return out / len(bandwidths)


def maximum_mean_discrepancy(
    x: Any,
    y: Any,
    kernel: str = "gaussian",
    mmd_weight: float = 1.0,
    unbiased: bool = False,
    bandwidths: Bandwidths = "two_sample_test",
) -> float:
    """Squared maximum mean discrepancy between samples ``x`` and ``y`` (times ``mmd_weight``).

    Biased (V-statistic), all pairs including ``i = j``:
    ``MMD^2 = mean_ij k(x_i, x_j) + mean_ij k(y_i, y_j) - 2 mean_ij k(x_i, y_j)``,
    non-negative. Unbiased (U-statistic): the first two means exclude ``i = j``,
    ``sum_{i != j} k(x_i, x_j) / (n (n - 1))``; it can be slightly negative and is zero in
    expectation when ``x`` and ``y`` share a distribution. The kernel is :func:`mixture_kernel`.

    Parameters
    ----------
    x : array-like, shape (n, D)
    y : array-like, shape (m, D)
    kernel : {"gaussian", "inverse_multiquadratic"}, default "gaussian"
    mmd_weight : float, default 1.0
        Factor on the result (as when MMD is used as a loss term).
    unbiased : bool, default False
    bandwidths : str or sequence of float, default "two_sample_test"
        Kernel length scales ``sigma`` to average over, or the name of a set in
        :data:`amortflow.defaults.MMD_BANDWIDTH_SETS` (``"summary_loss"`` gives the scales
        of the posterior's MMD loss term, :func:`amortflow.amortizers.maximum_mean_discrepancy`).

    Returns
    -------
    float
    """
    xs, ys = check_samples_2d(x, "x"), check_samples_2d(y, "y")
    if xs.shape[1] != ys.shape[1]:
        raise ShapeError(f"`x` {xs.shape} and `y` {ys.shape} must have the same number of dimensions.")
    n, m = xs.shape[0], ys.shape[0]
    bandwidths = resolve_bandwidths(bandwidths)
    k_xx = mixture_kernel(xs, xs, kernel, bandwidths)
    k_yy = mixture_kernel(ys, ys, kernel, bandwidths)
    k_xy = mixture_kernel(xs, ys, kernel, bandwidths)
    if unbiased:
        if n < 2 or m < 2:
            raise ShapeError(f"the unbiased MMD needs >= 2 samples on each side; received {n} and {m}.")
        term_x = (k_xx.sum() - np.trace(k_xx)) / (n * (n - 1))
        term_y = (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        mmd2 = term_x + term_y - 2.0 * k_xy.mean()
    else:
        mmd2 = max(k_xx.mean() + k_yy.mean() - 2.0 * k_xy.mean(), 0.0)
    return float(mmd_weight * mmd2)


def mmd_null_distribution(
    reference: Any,
    num_observed: int,
    num_null_samples: int = 200,
    rng: np.random.Generator | int | None = None,
    **mmd_kwargs: Any,
) -> np.ndarray:
    """MMD values to expect when ``num_observed`` samples come from the reference distribution.

    Each null value is the MMD between ``num_observed`` points drawn (without replacement)
    from ``reference`` and the remaining reference points. Compare an observed MMD (of
    ``num_observed`` real summaries against ``reference``) with this distribution, e.g. in
    :func:`~amortflow.diagnostics.plot_mmd_hypothesis_test`.

    Parameters
    ----------
    reference : array-like, shape (n, D)
        Samples from the model (e.g. summary outputs of simulations); ``n > num_observed``.
    num_observed : int
    num_null_samples : int, default 200
    rng : numpy.random.Generator or int, optional
    **mmd_kwargs
        Passed on to :func:`maximum_mean_discrepancy`.

    Returns
    -------
    numpy.ndarray, shape (num_null_samples,)
    """
    ref = check_samples_2d(reference, "reference")
    if not 0 < num_observed < ref.shape[0]:
        raise ArgumentError(
            f"num_observed must be in [1, {ref.shape[0] - 1}] for a reference of shape {ref.shape}; "
            f"received {num_observed}."
        )
    gen = resolve_rng(rng)
    null = np.empty(int(num_null_samples))
    for i in range(null.shape[0]):
        perm = gen.permutation(ref.shape[0])
        null[i] = maximum_mean_discrepancy(ref[perm[:num_observed]], ref[perm[num_observed:]], **mmd_kwargs)
    return null
