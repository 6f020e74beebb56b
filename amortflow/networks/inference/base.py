"""The interface every inference network shares, so that every amortizer takes any of them.

An inference network is a conditional density estimator ``q(targets | condition)``:

* ``log_prob(targets, condition)`` -> ``(B,)`` normalized log density,
* ``sample(n_samples, condition)`` -> ``(B, n_samples, D)`` (``(n_samples, D)`` when ``condition`` is None).

Normalizing flows (:class:`FlowNetwork`) get both from a bijection
``z, log_det_J = net(targets, condition)`` and its inverse, plus a latent distribution;
other estimators (a mixture density network) implement the two methods directly.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from amortflow.distributions import resolve_latent_dist


class InferenceNetwork(keras.layers.Layer):
    """Base class of conditional density estimators over ``num_params``-dimensional targets."""

    #: True for bijective networks that support ``call`` -> (z, log_det_J) and ``inverse``.
    is_flow = False
    #: False for networks without a tractable density (``log_prob`` raises); they train through
    #: :meth:`compute_loss` and only sample.
    has_density = True
    #: True when :meth:`compute_loss` is the mean negative log density, so an amortizer may add the
    #: (constant) log-Jacobian of its standardization and report a loss in the user's units.
    loss_is_negative_log_prob = True
    #: False when a lower validation loss does not mean a better fit, so stopping early on it
    #: would end training at an arbitrary point; ``early_stopping="auto"`` then trains all epochs.
    loss_signals_convergence = True

    def __init__(self, num_params: int, **kwargs):
        super().__init__(**kwargs)
        self.num_params = int(num_params)

    def log_prob(self, targets, condition=None, latent_dist=None, training=False):
        """Return ``log q(targets | condition)`` with shape ``(B,)``."""
        raise NotImplementedError

    def plan_training(self, total_steps: int) -> None:
        """Called by the Trainer before a run of ``total_steps`` planned optimizer steps.

        Networks whose objective follows a schedule over training (the consistency model's
        discretization) size it here; the default does nothing.
        """

    def sample(self, n_samples: int, condition=None, latent_dist=None, seed=None):
        """Return draws of shape ``(B, n_samples, D)``, or ``(n_samples, D)`` when ``condition`` is None."""
        raise NotImplementedError

    def compute_loss(self, targets, condition=None, latent_dist=None, training=False):
        """Scalar training loss of a batch; by default the mean negative log density.

        Networks trained by another objective (flow matching, consistency training) override it
        and set :attr:`loss_is_negative_log_prob` to False; amortizers always train through it.
        """
        return -tf.reduce_mean(self.log_prob(targets, condition, latent_dist=latent_dist, training=training))


def inference_networks_of(model: keras.layers.Layer) -> list[InferenceNetwork]:
    """Every :class:`InferenceNetwork` inside ``model`` (an amortizer), itself included, in tracking order."""
    return [layer for layer in model._flatten_layers(include_self=True, recursive=True) if isinstance(layer, InferenceNetwork)]


def tile_condition(condition, n_samples: int):
    """Repeat each row of ``condition`` (B, C) ``n_samples`` times -> (B * n_samples, C), row-major per data set."""
    return tf.repeat(condition, repeats=n_samples, axis=0)


class FlowNetwork(InferenceNetwork):
    """A conditional normalizing flow: a bijection ``z = f(targets; condition)`` with tractable log-det.

    Subclasses implement ``_forward(targets, condition, training) -> (z, log_det_J)`` and
    ``_inverse(z, condition, training) -> targets``. The density follows from

    ``log q(targets | c) = log p_Z(f(targets; c)) + log|det df/dtargets|``.
    """

    is_flow = True

    def call(self, targets, condition=None, inverse=False, training=False):
        """Forward: ``(z, log_det_J)`` with shapes ``(B, D)``, ``(B,)``. ``inverse=True``: targets from ``z``."""
        if inverse:
            return self._inverse(targets, condition, training)
        return self._forward(targets, condition, training)

    def inverse(self, z, condition=None, training=False):
        """Map latents back to targets (used for sampling)."""
        return self(z, condition, inverse=True, training=training)

    def log_prob(self, targets, condition=None, latent_dist=None, training=False):
        z, log_det_J = self(targets, condition, training=training)
        return resolve_latent_dist(latent_dist).log_prob(z) + log_det_J

    def sample(self, n_samples: int, condition=None, latent_dist=None, seed=None):
        latent = resolve_latent_dist(latent_dist)
        if condition is None:
            z = latent.sample((n_samples, self.num_params), seed=seed)
            return self.inverse(z)
        condition = tf.convert_to_tensor(condition)
        n_datasets = tf.shape(condition)[0]
        z = latent.sample((n_datasets * n_samples, self.num_params), seed=seed)
        draws = self.inverse(z, tile_condition(condition, n_samples))
        return tf.reshape(draws, (n_datasets, n_samples, self.num_params))

    def _forward(self, targets, condition, training):
        raise NotImplementedError

    def _inverse(self, z, condition, training):
        raise NotImplementedError
