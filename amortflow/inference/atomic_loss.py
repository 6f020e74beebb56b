"""The APT / SNPE-C atomic loss: posterior estimation from simulations drawn from any proposal.

When the training parameters come from a proposal ``p~(theta)`` instead of the prior, the plain
NPE loss ``-log q(theta | x)`` learns the *proposal posterior* ``p~(theta | x) ∝ p~(theta) p(x | theta)``.
Automatic posterior transformation (APT, SNPE-C; Greenberg, Nonnenmacher & Macke 2019, "Automatic
posterior transformation for likelihood-free inference", ICML) trains ``q`` through the
proposal posterior of an *atomic* proposal instead. For each pair ``(theta_i, x_i)`` of a batch,
``K - 1`` other parameters of the batch ``theta_j`` (drawn without replacement) are its
contrasting atoms, and

``L_i = -log [ (q(theta_i | x_i) / p(theta_i)) / sum_{j in atoms(i)} (q(theta_j | x_i) / p(theta_j)) ]``

(the sum includes ``theta_i``). Its minimizer is ``q(theta | x) = p(theta | x)`` for any proposal
(Greenberg et al. 2019, Prop. 1), so no correction is needed at inference: ``q(theta | x_obs)``
is the posterior estimate.

:class:`AtomicPosterior` wraps an :class:`~amortflow.amortizers.AmortizedPosterior` so that the
Trainer's compiled step trains it with this loss; its weights are the posterior's. It is a training
device, not saved on its own: save the posterior.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from amortflow._checks import positive_int
from amortflow.amortizers.base import check_input_dict
from amortflow.exceptions import ArgumentError

#: Atoms per training pair (the pair's own parameters and 9 contrasting ones), as in sbi and the paper.
DEFAULT_NUM_ATOMS = 10


def contrasting_indices(batch_size, num_atoms: int, seed) -> tuple[tf.Tensor, tf.Tensor]:
    """Indices ``(B, m)`` of each row's contrasting atoms and a mask of the valid ones.

    Row ``i`` gets ``m = min(num_atoms - 1, B)`` indices of other rows, uniformly without
    replacement (the first ``m`` of a random ordering in which row ``i`` itself comes last).
    When the batch is too small (``B <= num_atoms - 1``, e.g. the last batch of an epoch) the
    last index is ``i`` itself; the mask marks it invalid. Static ``num_atoms`` keeps the
    shapes known to XLA.
    """
    scores = keras.random.uniform((batch_size, batch_size), seed=seed)
    scores = tf.linalg.set_diag(scores, tf.fill([batch_size], tf.constant(-1.0, scores.dtype)))
    order = tf.argsort(scores, axis=1, direction="DESCENDING")[:, : num_atoms - 1]
    valid = tf.not_equal(order, tf.range(batch_size)[:, None])
    return order, valid


class AtomicPosterior(keras.Model):
    """An :class:`~amortflow.amortizers.AmortizedPosterior` trained with the APT atomic loss.

    Parameters
    ----------
    posterior : AmortizedPosterior
        The network ``q(theta | x)``; trained in place (this wrapper holds no weights of its own).
    prior_log_prob : callable
        ``theta (n, D) -> (n,)`` log prior density in TensorFlow (e.g. a TFP distribution's ``log_prob``).
    num_atoms : int, default 10
        ``K``: atoms per training pair, its own parameters included (>= 2).

    Notes
    -----
    While the proposal is the prior (round 1), train the posterior itself with its plain NPE
    loss, as sbi does; this wrapper is for the rounds after. The posterior's
    ``summary_loss_fun`` is not supported (it has no atomic form here).
    """

    def __init__(self, posterior, prior_log_prob, num_atoms: int = DEFAULT_NUM_ATOMS, **kwargs):
        super().__init__(**kwargs)
        num_atoms = positive_int("num_atoms", num_atoms)
        if num_atoms < 2:
            raise ArgumentError(
                f"num_atoms must be >= 2 (the pair's own parameters and a contrasting one), received {num_atoms}."
            )
        if not callable(prior_log_prob):
            raise ArgumentError(
                f"prior_log_prob must be a callable theta -> log p(theta), received {type(prior_log_prob).__name__}."
            )
        if getattr(posterior, "summary_loss_fun", None) is not None:
            raise ArgumentError(
                "The atomic loss does not add a summary loss; build the AmortizedPosterior without summary_loss_fun."
            )
        self.posterior = posterior
        self.prior_log_prob = prior_log_prob
        self.num_atoms = num_atoms
        self.seed_generator = keras.random.SeedGenerator(20190601)
        self.built = True

    # --- what the Trainer asks of an amortizer ----------------------------------------------
    def default_configurator(self, generative_model=None):
        return self.posterior.default_configurator(generative_model)

    @property
    def standardization_pending(self) -> bool:
        return self.posterior.standardization_pending

    def adapt_standardization(self, input_dict) -> list[str]:
        return self.posterior.adapt_standardization(input_dict)

    def call(self, input_dict, training=False):
        return self.posterior(input_dict, training=training)

    # --- the loss ---------------------------------------------------------------------------
    def compute_loss(self, input_dict, training=False) -> tf.Tensor:
        """``mean_i L_i`` (see the module docstring) of one batch; a scalar tensor."""
        check_input_dict("AtomicPosterior", input_dict, ("parameters",))
        posterior = self.posterior
        posterior._remember_inputs(input_dict)
        theta = tf.cast(input_dict["parameters"], tf.float32)
        condition, _ = posterior.summarize(input_dict, training)
        batch_size, dim = tf.shape(theta)[0], tf.shape(theta)[1]
        others, valid = contrasting_indices(batch_size, self.num_atoms, self.seed_generator)
        atoms = tf.concat([theta[:, None, :], tf.gather(theta, others)], axis=1)  # (B, m + 1, D), own first
        valid = tf.concat([tf.ones_like(valid[:, :1]), valid], axis=1)
        n_atoms = tf.shape(atoms)[1]
        flat = tf.reshape(atoms, (-1, dim))
        if condition is not None:  # each data set's condition once per atom, computed once
            condition = tf.repeat(condition, n_atoms, axis=0)
        # The standardization's log-Jacobian is the same for every atom, so it cancels in the ratio.
        log_q = posterior.inference_net.log_prob(
            posterior._standardized("parameters", flat), condition, latent_dist=posterior.latent_dist, training=training
        )
        log_prior = tf.cast(self.prior_log_prob(flat), tf.float32)
        logits = tf.reshape(log_q - log_prior, (batch_size, n_atoms))
        logits = tf.where(valid, logits, tf.constant(-np.inf, logits.dtype))
        return -tf.reduce_mean(logits[:, 0] - tf.reduce_logsumexp(logits, axis=1))
