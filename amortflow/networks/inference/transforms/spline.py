"""Monotone rational-quadratic spline with identity tails (Durkan, Bekasov, Murray, Papamakarios, 2019).

Inside the box ``[left, right] x [bottom, top]`` the map is a monotone piecewise
rational-quadratic function through ``K + 1`` knots ``(x_k, y_k)`` with positive slopes
``d_k`` at the knots. On bin ``k``, with ``w = x_{k+1} - x_k``, ``h = y_{k+1} - y_k``,
``s = h / w`` and ``xi = (x - x_k) / w``:

``y = y_k + h (s xi^2 + d_k xi (1 - xi)) / (s + (d_{k+1} + d_k - 2 s) xi (1 - xi))``

``dy/dx = s^2 (d_{k+1} xi^2 + 2 s xi (1 - xi) + d_k (1 - xi)^2) / (s + (d_{k+1} + d_k - 2 s) xi (1 - xi))^2``

The boundary slopes are fixed to 1 and outside the box the map is a shift with slope 1
(``y = x - left + bottom`` below, ``y = x - right + top`` above), so the transform is
continuously differentiable on the whole real line and inputs far outside the box pass
through unchanged. The inverse solves the quadratic in ``xi`` in its numerically stable form
``xi = 2c / (-b - sqrt(b^2 - 4ac))`` (Durkan et al., 2019, Eq. 6-8).

Raw parameters per dimension: ``K`` bin widths, ``K`` bin heights and ``K - 1`` interior
slopes. Zero raw parameters give equal bins and unit slopes: the identity when the box is
square.

Reference: Durkan et al. (2019), "Neural Spline Flows", NeurIPS, arXiv:1906.04032.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import tensorflow as tf

from amortflow.exceptions import ArgumentError
from amortflow.networks.inference.transforms.base import Transform

#: Smallest bin width / height as a fraction of the box side, and smallest knot slope;
#: they keep the spline strictly monotone and its inverse well conditioned.
MIN_BIN_FRACTION = 1e-3
MIN_DERIVATIVE = 1e-3


@keras.saving.register_keras_serializable(package="amortflow")
class RationalQuadraticSpline(Transform):
    """Elementwise monotone rational-quadratic spline on ``[left, right]``, identity shift outside.

    Parameters
    ----------
    bins : int, default 16
        Number of bins ``K``; each dimension needs ``3 K - 1`` raw parameters.
    default_domain : sequence of 4 floats, default (-5, 5, -5, 5)
        ``(left, right, bottom, top)`` of the spline box.
    """

    def __init__(self, bins: int = 16, default_domain: Sequence[float] = (-5.0, 5.0, -5.0, 5.0)):
        if isinstance(bins, bool) or int(bins) != bins or bins < 2:
            raise ArgumentError(f"bins must be an int >= 2, received {bins!r}.")
        domain = tuple(float(v) for v in default_domain)
        if len(domain) != 4 or not (domain[0] < domain[1] and domain[2] < domain[3]):
            raise ArgumentError(
                "default_domain must be (left, right, bottom, top) with left < right and bottom < top, "
                f"received {default_domain!r}."
            )
        self.bins = int(bins)
        self.default_domain = domain
        self.params_per_dim = 3 * self.bins - 1
        # softplus(raw + shift) + MIN_DERIVATIVE = 1 at raw = 0: zero parameters give unit slopes.
        self._derivative_shift = math.log(math.expm1(1.0 - MIN_DERIVATIVE))

    # --- parameters -> bins ---------------------------------------------------------------
    def _bins(self, raw, low: float, high: float):
        """Bin sizes ``(..., K)`` from raw logits and their lower edges, the bins spanning ``[low, high]``."""
        fraction = MIN_BIN_FRACTION + (1.0 - MIN_BIN_FRACTION * self.bins) * tf.nn.softmax(raw, axis=-1)
        return (high - low) * fraction, low + (high - low) * tf.cumsum(fraction, axis=-1, exclusive=True)

    def _table(self, params):
        """Per-bin quantities ``(B, d, K, 6)`` (x-edge, width, y-edge, height, left and right slope) and the edges."""
        raw_widths, raw_heights, raw_slopes = tf.split(params, [self.bins, self.bins, self.bins - 1], axis=-1)
        left, right, bottom, top = self.default_domain
        widths, x_edges = self._bins(raw_widths, left, right)
        heights, y_edges = self._bins(raw_heights, bottom, top)
        inner = MIN_DERIVATIVE + tf.nn.softplus(raw_slopes + self._derivative_shift)
        slopes_left = tf.pad(inner, [[0, 0], [0, 0], [1, 0]], constant_values=1.0)
        slopes_right = tf.pad(inner, [[0, 0], [0, 0], [0, 1]], constant_values=1.0)
        table = tf.stack([x_edges, widths, y_edges, heights, slopes_left, slopes_right], axis=-1)
        return table, x_edges, y_edges

    def _bin_values(self, value, table, edges):
        """The six bin quantities of the bin holding each element of ``value``, each ``(B, d)``.

        The bin index counts the lower ``edges`` (``(B, d, K)``) at or below ``value``; a one-hot
        contraction then reads all six quantities in one op (no gather, XLA friendly).
        """
        index = tf.reduce_sum(tf.cast(tf.expand_dims(value, -1) >= edges, tf.int32), axis=-1) - 1
        one_hot = tf.one_hot(index, self.bins, dtype=value.dtype)  # index -1 (impossible after clipping) -> zeros
        return tf.unstack(tf.einsum("bdk,bdkf->bdf", one_hot, table), axis=-1)

    @staticmethod
    def _evaluate(xi, s, d_k, d_k1):
        """Relative rise ``(y - y_k) / h`` and ``log dy/dx`` on a bin at relative position ``xi``."""
        xi_1m = xi * (1.0 - xi)
        denominator = s + (d_k1 + d_k - 2.0 * s) * xi_1m
        numerator = tf.square(s) * (d_k1 * tf.square(xi) + 2.0 * s * xi_1m + d_k * tf.square(1.0 - xi))
        rise = (s * tf.square(xi) + d_k * xi_1m) / denominator
        return rise, tf.math.log(numerator) - 2.0 * tf.math.log(denominator)

    # --- maps ------------------------------------------------------------------------------
    def forward(self, x, params):
        left, right, bottom, top = self.default_domain
        # Clamping first keeps the unused in-box branch finite for far-away inputs (no NaN gradients).
        xc = tf.clip_by_value(x, left, right)
        table, x_edges, _ = self._table(params)
        x_k, w, y_k, h, d_k, d_k1 = self._bin_values(xc, table, x_edges)
        rise, log_slope = self._evaluate((xc - x_k) / w, h / w, d_k, d_k1)
        inside = (x >= left) & (x <= right)
        y_out = tf.where(x < left, x - left + bottom, x - right + top)
        log_det = tf.where(inside, log_slope, tf.zeros_like(x))
        return tf.where(inside, y_k + h * rise, y_out), tf.reduce_sum(log_det, axis=-1)

    def inverse(self, y, params):
        left, right, bottom, top = self.default_domain
        yc = tf.clip_by_value(y, bottom, top)
        table, _, y_edges = self._table(params)
        x_k, w, y_k, h, d_k, d_k1 = self._bin_values(yc, table, y_edges)
        s = h / w
        dy = yc - y_k
        delta = d_k1 + d_k - 2.0 * s
        a = h * (s - d_k) + dy * delta
        b = h * d_k - dy * delta
        c = -s * dy
        root = tf.sqrt(tf.maximum(tf.square(b) - 4.0 * a * c, 0.0))
        xi = tf.clip_by_value(2.0 * c / (-b - root), 0.0, 1.0)
        x_in = x_k + xi * w
        inside = (y >= bottom) & (y <= top)
        x_out = tf.where(y < bottom, y - bottom + left, y - top + right)
        log_det = tf.where(inside, -self._evaluate(xi, s, d_k, d_k1)[1], tf.zeros_like(y))
        return tf.where(inside, x_in, x_out), tf.reduce_sum(log_det, axis=-1)

    def get_config(self) -> dict:
        return {"bins": self.bins, "default_domain": list(self.default_domain)}
