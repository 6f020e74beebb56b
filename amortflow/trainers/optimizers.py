"""The default optimizer (Adam, cosine-decayed learning rate, gradient clipping) and helpers.

The learning rate follows a cosine decay from ``lr_0`` to 0 over the ``T`` planned steps of
a training run (Loshchilov & Hutter, 2017, "SGDR")::

    lr(t) = lr_0 * 0.5 * (1 + cos(pi * min(t, T) / T))

and gradients are rescaled so that their global norm is at most ``clip_norm`` before Adam
(Kingma & Ba, 2015) applies them.

A compiled training step captures its optimizer's variables, so a new optimizer object means a
new trace of the step (seconds for a normalizing flow). A trainer that builds the optimizer of a
new run itself (``optimizer=None`` or a learning rate) therefore gives the previous run's
optimizer the state of a fresh one in place (:func:`renew_in_place`): slots and iteration count
from a new optimizer, and the cosine decay's start and length from :class:`RenewableCosineDecay`'s
variables, so the step traced once serves every run and computes what a new optimizer would.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import tensorflow as tf

from amortflow.defaults import DEFAULT_CLIP_NORM, DEFAULT_LEARNING_RATE
from amortflow.exceptions import ArgumentError


def default_optimizer(
    total_steps: int, learning_rate: float = DEFAULT_LEARNING_RATE, clip_norm: float | None = DEFAULT_CLIP_NORM
) -> keras.optimizers.Optimizer:
    """Adam with a cosine decay from ``learning_rate`` to 0 over ``total_steps`` and global-norm clipping.

    Examples
    --------
    >>> opt = default_optimizer(total_steps=100, learning_rate=1e-3)
    >>> round(float(opt.learning_rate), 6)
    0.001
    """
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise ArgumentError(f"total_steps must be an int >= 1, received {total_steps!r}.")
    schedule = RenewableCosineDecay(float(learning_rate), decay_steps=total_steps, alpha=0.0)
    return keras.optimizers.Adam(learning_rate=schedule, global_clipnorm=clip_norm)


@keras.saving.register_keras_serializable(package="amortflow")
class RenewableCosineDecay(keras.optimizers.schedules.CosineDecay):
    """Keras' ``CosineDecay`` (no warm-up) whose initial rate and length are read from variables.

    A compiled step reads the variables at run time, so :meth:`renew` can set them for a new run
    without a new trace. The rates are those a compiled step computes with
    ``CosineDecay(initial_learning_rate, decay_steps, alpha)``, bit for bit: there ``decay_steps`` is
    a constant, and TensorFlow's graph optimizer (and XLA) fold ``pi * (t / T)`` into
    ``t * (pi * (1 / T))`` with one float32 constant; this schedule computes that form from the
    same float32 constant (checked in ``tests/trainers/test_step.py``).

    Parameters
    ----------
    initial_learning_rate : float
    decay_steps : int
        Steps over which the rate decays (> 0).
    alpha : float, default 0.0
        Fraction of the initial rate reached at the end.
    name : str, default "CosineDecay"
    warmup_target, warmup_steps
        Accepted for Keras' configs only: must be None and 0 (no warm-up).
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay", warmup_target=None,
                 warmup_steps=0):  # fmt: skip
        if warmup_target is not None or warmup_steps:
            raise ArgumentError("RenewableCosineDecay has no warm-up; use keras.optimizers.schedules.CosineDecay for one.")
        super().__init__(initial_learning_rate, decay_steps, alpha=alpha, name=name)
        self._initial_rate = tf.Variable(0.0, dtype=tf.float32, trainable=False)
        self._decay_steps = tf.Variable(1.0, dtype=tf.float32, trainable=False)
        self._angle_per_step = tf.Variable(0.0, dtype=tf.float32, trainable=False)
        self.renew(initial_learning_rate, decay_steps)

    def renew(self, initial_learning_rate: float, decay_steps: int) -> None:
        """Start a new decay from ``initial_learning_rate`` over ``decay_steps`` steps (in place)."""
        if decay_steps <= 0:
            raise ArgumentError(f"decay_steps must be > 0, received {decay_steps!r}.")
        self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps  # what get_config saves
        length = tf.constant(float(decay_steps), tf.float32)
        self._initial_rate.assign(float(initial_learning_rate))
        self._decay_steps.assign(length)
        # the constant a graph optimizer folds pi / T into (float32 reciprocal, then the product)
        self._angle_per_step.assign(tf.constant(math.pi, tf.float32) * tf.math.reciprocal(length))

    def __call__(self, step):
        with tf.name_scope(self.name):
            step = tf.minimum(tf.cast(step, tf.float32), self._decay_steps)
            cosine = 0.5 * (1.0 + tf.cos(step * self._angle_per_step))
            return self._initial_rate * ((1 - self.alpha) * cosine + self.alpha)


def builds_own_optimizer(optimizer: Any) -> bool:
    """True when :func:`make_optimizer` builds a new optimizer for the ``optimizer`` argument of a run
    that nobody else holds (None or a learning rate), so a trainer may renew the previous one instead."""
    return optimizer is None or (isinstance(optimizer, (int, float)) and not isinstance(optimizer, bool) and optimizer > 0)


def renew_in_place(optimizer: keras.optimizers.Optimizer, fresh: keras.optimizers.Optimizer, variables: list) -> bool:
    """Give ``optimizer`` the state of ``fresh``, a new optimizer for the same weights; False if it cannot.

    Both must be of the same class and configuration (their names and learning rates aside),
    ``optimizer`` built on exactly ``variables``, and their learning rates both variables (a float)
    or both :class:`RenewableCosineDecay`. ``fresh`` is built on ``variables`` here; its variable
    values (iteration count, slots, a constant learning rate) and its schedule's values are copied
    into ``optimizer``, which then computes what ``fresh`` would.
    """
    if type(optimizer) is not type(fresh) or not optimizer.built:
        return False
    # Keras keeps the weights an optimizer was built for, and the schedule, in private attributes
    built_for = getattr(optimizer, "_trainable_variables", None)
    if built_for is None or len(built_for) != len(variables) or any(a is not b for a, b in zip(built_for, variables)):
        return False
    old_rate, new_rate = getattr(optimizer, "_learning_rate", None), getattr(fresh, "_learning_rate", None)
    schedules = isinstance(old_rate, RenewableCosineDecay), isinstance(new_rate, RenewableCosineDecay)
    if schedules[0] != schedules[1] or (schedules[0] and old_rate.alpha != new_rate.alpha):
        return False
    if not schedules[0] and isinstance(new_rate, keras.optimizers.schedules.LearningRateSchedule):
        return False
    if _config_without_rate(optimizer) != _config_without_rate(fresh):
        return False
    fresh.build(variables)
    old_vars, new_vars = optimizer.variables, fresh.variables
    if len(old_vars) != len(new_vars) or any(
        a.shape != b.shape or a.dtype != b.dtype for a, b in zip(old_vars, new_vars)
    ):
        return False
    for old, new in zip(old_vars, new_vars):
        old.assign(new)
    if schedules[0]:
        old_rate.renew(new_rate.initial_learning_rate, new_rate.decay_steps)
    return True


def _config_without_rate(optimizer: keras.optimizers.Optimizer) -> dict:
    config = dict(optimizer.get_config())
    config.pop("name", None)
    config.pop("learning_rate", None)
    return config


def make_optimizer(optimizer: Any, total_steps: int, default_lr: float) -> keras.optimizers.Optimizer:
    """Turn the ``optimizer`` argument of a ``train_*`` method into a Keras optimizer.

    Parameters
    ----------
    optimizer : None, keras Optimizer, LearningRateSchedule, float or config dict
        ``None``: :func:`default_optimizer`; a schedule or a float: Adam with that learning rate
        and the default clipping; a Keras optimizer: used as is; a dict: ``keras.optimizers.get``.
    total_steps : int
        Planned steps of the run (the length of the default cosine decay).
    default_lr : float
        Initial learning rate of the default optimizer.
    """
    if optimizer is None:
        return default_optimizer(total_steps, default_lr)
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    if isinstance(optimizer, keras.optimizers.schedules.LearningRateSchedule) or (
        isinstance(optimizer, (int, float)) and not isinstance(optimizer, bool) and optimizer > 0
    ):
        return keras.optimizers.Adam(learning_rate=optimizer, global_clipnorm=DEFAULT_CLIP_NORM)
    if isinstance(optimizer, dict):
        return keras.optimizers.get(optimizer)
    raise ArgumentError(
        "optimizer must be None, a keras.optimizers.Optimizer, a LearningRateSchedule, a positive float "
        f"or a config dict; received {type(optimizer).__name__} {optimizer!r}."
    )


def current_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    """The learning rate the next update will use (schedules evaluated at ``optimizer.iterations``)."""
    return float(tf.convert_to_tensor(optimizer.learning_rate).numpy())


def optimizer_config(optimizer: keras.optimizers.Optimizer) -> dict | None:
    """JSON-able config of ``optimizer`` (to rebuild it on resume), or None if it cannot be serialized."""
    try:
        return keras.optimizers.serialize(optimizer)
    except (TypeError, ValueError, NotImplementedError):
        return None


def optimizer_from_config(config: dict) -> keras.optimizers.Optimizer:
    """Rebuild an optimizer saved with :func:`optimizer_config`."""
    return keras.optimizers.deserialize(config)
