"""Standardization of an amortizer's inputs and learned variables, with statistics from training data.

Networks train best on inputs of unit scale, and a user's simulations rarely are: counts in
the thousands next to rates of 0.01. Every amortizer therefore maps each input feature and
each learned variable through

``u = (v - mean) / std``   (per feature, i.e. per entry of the last axis),

with ``mean`` and ``std`` estimated from the training data before the first step (the
Trainer calls :meth:`Amortizer.adapt_standardization` on a pilot of its first batches) and
kept as non-trainable weights, so ``.keras`` files and checkpoints hold them. For a learned
density ``q(v)`` the change of variables keeps it normalized in the user's units:

``log q(v) = log q_u((v - mean) / std) - sum(log std)``.

Set and time axes are pooled: a feature of ``(B, N, d)`` data gets one mean over all ``B * N``
entries, so a permutation of the set elements only permutes the standardized rows.
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np
import tensorflow as tf

from amortflow.exceptions import ShapeError, describe_shape

#: A feature whose standard deviation is below this is constant: it is centred, not scaled
#: (dividing by ~0 would blow up round-off into huge inputs).
MIN_STD = 1e-6


def feature_statistics(values) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each feature (last axis) of ``values``, pooled over the other axes.

    Non-finite entries are ignored; a feature with no finite entry gets mean 0 and std 1, and a
    constant feature (std below :data:`MIN_STD`) std 1.

    >>> mean, std = feature_statistics(np.array([[1.0, 5.0], [3.0, 5.0]]))
    >>> mean.tolist(), std.tolist()
    ([2.0, 5.0], [1.0, 1.0])
    """
    array = np.asarray(values, dtype=np.float64)
    rows = array.reshape(-1, array.shape[-1])
    finite = np.isfinite(rows)
    count = finite.sum(axis=0)
    safe = np.where(finite, rows, 0.0)
    mean = np.divide(safe.sum(axis=0), count, out=np.zeros(rows.shape[1]), where=count > 0)
    squares = np.where(finite, (rows - mean) ** 2, 0.0)
    std = np.sqrt(np.divide(squares.sum(axis=0), count, out=np.ones(rows.shape[1]), where=count > 0))
    return mean, np.where(std > MIN_STD, std, 1.0)


@keras.saving.register_keras_serializable(package="amortflow")
class Standardization(keras.layers.Layer):
    """Per-feature affine map ``u = (v - mean) / std`` with statistics set by :meth:`adapt`.

    Until :meth:`adapt` runs it is the identity (mean 0, std 1). ``mean``, ``std`` and the
    ``adapted`` flag are non-trainable weights, built for the last axis of the first input.

    Examples
    --------
    >>> layer = Standardization()
    >>> layer.adapt(np.array([[0.0], [2.0]]))
    >>> float(layer(np.array([[3.0]], dtype="float32"))[0, 0])
    2.0
    """

    def build(self, input_shape):
        dim = input_shape[-1]
        if dim is None:
            raise ShapeError(f"Standardization needs a known last axis, received shape {tuple(input_shape)}.")
        self.mean = self.add_weight(shape=(dim,), initializer="zeros", trainable=False, name="mean")
        self.std = self.add_weight(shape=(dim,), initializer="ones", trainable=False, name="std")
        self.adapted = self.add_weight(shape=(), initializer="zeros", trainable=False, name="adapted")
        self.built = True

    @property
    def is_adapted(self) -> bool:
        """True once statistics were set (by :meth:`adapt` or by loading saved weights)."""
        return self.built and bool(self.adapted.numpy() > 0)

    def call(self, values):
        return (values - self.mean) / self.std

    def inverse(self, standardized):
        """``v = u * std + mean``."""
        return standardized * self.std + self.mean

    def log_det_forward(self):
        """``log |det du/dv| = -sum(log std)`` (a scalar: the map is the same for every row)."""
        return -tf.reduce_sum(tf.math.log(self.std))

    def adapt(self, values) -> None:
        """Set ``mean`` and ``std`` from ``values`` (``(..., d)``; see :func:`feature_statistics`)."""
        array = np.asarray(values)
        if array.ndim < 1 or array.shape[-1] == 0:
            raise ShapeError(f"Standardization.adapt needs values of shape (..., d), received {describe_shape(values)}.")
        if not self.built:
            self.build(array.shape)
        if array.shape[-1] != self.mean.shape[0]:
            raise ShapeError(
                f"Standardization.adapt: values have {array.shape[-1]} features (shape {array.shape}), "
                f"the layer was built for {self.mean.shape[0]}."
            )
        mean, std = feature_statistics(array)
        self.mean.assign(mean.astype("float32"))
        self.std.assign(std.astype("float32"))
        self.adapted.assign(1.0)


def make_standardizers(keys: tuple[str, ...], enabled: bool) -> dict[str, Standardization]:
    """One :class:`Standardization` per input key (an empty dict when standardization is off)."""
    return {key: Standardization(name=f"standardize_{key}") for key in keys} if enabled else {}


def adapt_standardizers(standardizers: Mapping[str, Standardization], inputs: Mapping) -> list[str]:
    """Adapt each standardizer whose key ``inputs`` holds and which is not adapted yet; returns the keys adapted."""
    adapted = []
    for key, layer in standardizers.items():
        value = inputs.get(key)
        if value is None or layer.is_adapted:
            continue
        layer.adapt(value)
        adapted.append(key)
    return adapted


def needs_adaptation(standardizers: Mapping[str, Standardization]) -> bool:
    """True when some standardizer has not been adapted (or not built yet)."""
    return any(not layer.is_adapted for layer in standardizers.values())
