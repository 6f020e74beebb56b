"""Fixed-step ODE integration and the divergence of a vector field, for continuous flows.

``rk4`` integrates ``dy/dt = f(t, y)`` for a tuple of tensors ``y`` with the classical
fourth-order Runge-Kutta scheme (global error ``O(h^4)``); a fixed number of steps keeps the
cost predictable and the map differentiable and graph-friendly. ``divergence`` gives
``div v(x) = tr(dv/dx)`` exactly (one backward pass per dimension, via the batch Jacobian) or
by Hutchinson's estimator ``E[eps^T (dv/dx) eps]`` with Rademacher ``eps`` (one backward pass),
Hutchinson (1989); Grathwohl et al. (2019), "FFJORD", ICLR.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf


def rk4(f: Callable, y: tuple, t0: float, t1: float, num_steps: int) -> tuple:
    """Integrate ``dy/dt = f(t, y)`` from ``t0`` to ``t1`` (either direction) in ``num_steps`` RK4 steps."""
    h = (t1 - t0) / num_steps

    def add(a, b, scale):
        return tuple(ai + scale * bi for ai, bi in zip(a, b))

    for i in range(num_steps):
        t = t0 + i * h
        k1 = f(t, y)
        k2 = f(t + h / 2, add(y, k1, h / 2))
        k3 = f(t + h / 2, add(y, k2, h / 2))
        k4 = f(t + h, add(y, k3, h))
        y = tuple(yi + h / 6 * (a + 2 * b + 2 * c + d) for yi, a, b, c, d in zip(y, k1, k2, k3, k4))
    return y


def value_and_divergence(fn: Callable, x: tf.Tensor, probe: tf.Tensor | None = None):
    """``(v (B, D), div v (B,))`` of ``v = fn(x)``; exact without ``probe``, Hutchinson with a probe ``(B, D)``."""
    exact = probe is None
    with tf.GradientTape(persistent=exact) as tape:
        tape.watch(x)
        v = fn(x)
    if not exact:
        vjp = tape.gradient(v, x, output_gradients=probe)  # eps^T dv/dx in one backward pass
        return v, tf.reduce_sum(vjp * probe, axis=-1)
    # tr(dv/dx) = sum_i e_i^T (dv/dx) e_i: D backward passes (a loop, cheaper here than pfor's retracing).
    dim = x.shape[-1]
    divergence = 0.0
    for i in range(dim):
        basis = tf.one_hot(tf.fill(tf.shape(x)[:1], i), dim, dtype=x.dtype)
        divergence += tape.gradient(v, x, output_gradients=basis)[:, i]
    del tape
    return v, divergence
