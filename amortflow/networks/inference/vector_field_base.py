"""Shared plumbing of the networks that learn a field over (theta, time, condition).

:class:`FlowMatching` and :class:`ConsistencyModel` are both an MLP over
``[theta_t, time features, condition]``: they record the condition's width when built, rebuild
from it when loaded, and check every call's inputs against it the same way.
"""

from __future__ import annotations

import tensorflow as tf

from amortflow.exceptions import ShapeError, describe_shape
from amortflow.networks.inference.base import InferenceNetwork


class VectorFieldNetwork(InferenceNetwork):
    """An :class:`InferenceNetwork` built for a fixed condition width ``condition_dim`` (or None)."""

    condition_dim: int | None = None
    #: First of the two fixed seeds of the validation loss (see :meth:`_loss_seeds`).
    validation_seed: int = 0

    def _loss_seeds(self, training: bool) -> tuple:
        """Seeds of a loss's two random draws: the network's generator in training, fixed in validation.

        Validation (``training=False``) then draws the same noise at every call, so the losses of
        different epochs differ only through the weights and early stopping compares fits, not
        the Monte-Carlo noise of the loss (common random numbers).
        """
        if training:
            return self.seed_generator, self.seed_generator
        return self.validation_seed, self.validation_seed + 1

    def get_build_config(self):
        return {"condition_dim": self.condition_dim}

    def build_from_config(self, config):
        condition_dim = config.get("condition_dim")
        self.build((None, self.num_params), None if condition_dim is None else (None, condition_dim))

    def _prepare(self, targets, condition):
        """Float tensors, a built network and checked shapes; ``targets`` may be None (sampling)."""
        name = type(self).__name__
        if targets is not None:
            targets = tf.convert_to_tensor(targets, dtype=self.compute_dtype)
            if targets.shape.rank != 2 or targets.shape[-1] != self.num_params:
                raise ShapeError(
                    f"{name} expects targets of shape (B, {self.num_params}), received {describe_shape(targets)}."
                )
        condition = None if condition is None else tf.convert_to_tensor(condition, dtype=self.compute_dtype)
        if not self.built:
            self.build((None, self.num_params), None if condition is None else tuple(condition.shape))
        received = None if condition is None else condition.shape[-1]
        if received != self.condition_dim:
            expected = "None" if self.condition_dim is None else f"shape (B, {self.condition_dim})"
            raise ShapeError(
                f"{name} was built for condition {expected}, "
                f"received {'None' if condition is None else describe_shape(condition)}."
            )
        return targets, condition
