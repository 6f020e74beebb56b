"""Fixed Fourier features of a scalar time, the time input of velocity and consistency networks.

``emb(t) = [t, sin(2 pi k t), cos(2 pi k t)]_{k = 1..K}`` (``2 K + 1`` features). A raw ``t`` alone
is one feature among many condition features; the periodic features let a small MLP resolve
the velocity's fast change near the data end of the path (Tancik et al., 2020, "Fourier features
let networks learn high frequency functions in low dimensional domains", NeurIPS).
"""

from __future__ import annotations

import math

import tensorflow as tf


def time_features(t, batch_size, num_frequencies: int, dtype=tf.float32) -> tf.Tensor:
    """Features ``(B, 2 K + 1)`` of ``t``: a scalar (shared by the batch) or a ``(B,)``/``(B, 1)`` tensor."""
    t = tf.cast(tf.convert_to_tensor(t), dtype)
    t = tf.reshape(t, (-1, 1))
    t = tf.broadcast_to(t, (batch_size, 1))
    if num_frequencies == 0:
        return t
    k = tf.range(1, num_frequencies + 1, dtype=dtype)[None, :]
    angle = 2.0 * math.pi * k * t
    return tf.concat([t, tf.sin(angle), tf.cos(angle)], axis=-1)


def num_time_features(num_frequencies: int) -> int:
    """Width of :func:`time_features`."""
    return 2 * int(num_frequencies) + 1
