"""SNPE-C (APT): sequential neural posterior estimation with the atomic loss, one round's training and sampling.

Round 1 simulates from the prior and trains with the plain NPE loss ``-log q(theta | x)``
(proposal = prior, so no correction is needed); every later round trains the same network on
the pooled simulations of all rounds with the atomic loss of
:mod:`amortflow.inference.atomic_loss` (Greenberg et al. 2019), whose minimizer is the posterior
whatever the proposals were. Inference needs no correction either: ``q(theta | x_obs)`` is the
posterior estimate, and the next round's proposal.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from amortflow.exceptions import ArgumentError
from amortflow.inference.atomic_loss import AtomicPosterior


class SNPEC:
    """The ``method="snpe_c"`` of :class:`~amortflow.inference.SequentialInference`.

    Parameters
    ----------
    generative_model : GenerativeModel
    amortizer : AmortizedPosterior
    x_obs : numpy.ndarray
        One observed data set, shaped like one simulation's ``sim_data``.
    prior : tfp.distributions.Distribution
        The prior, event shape ``(D,)``.
    num_atoms : int
        Atoms of the atomic loss.
    trainer_kwargs : dict
        Passed to the :class:`~amortflow.trainers.Trainer`.
    """

    name = "snpe_c"
    proposal_name = "posterior"
    has_normalized_density = True

    def __init__(self, generative_model, amortizer, x_obs: np.ndarray, prior, num_atoms: int, trainer_kwargs: Mapping):
        from amortflow.amortizers import AmortizedPosterior
        from amortflow.trainers import Trainer

        if not isinstance(amortizer, AmortizedPosterior):
            raise ArgumentError(f"method={self.name!r} needs an AmortizedPosterior, received {type(amortizer).__name__}.")
        self.amortizer = amortizer
        self.prior = prior
        self.wrapper = AtomicPosterior(amortizer, lambda theta: prior.log_prob(tf.cast(theta, prior.dtype)), num_atoms)
        self.trainer = Trainer(amortizer=self.wrapper, generative_model=generative_model, **dict(trainer_kwargs))
        raw_obs = {"sim_data": x_obs[None], "prior_draws": None}
        self.conditions = {key: value for key, value in self.trainer.configure(raw_obs).items() if key != "parameters"}
        self.last_acceptance_rate = None

    def train(self, raw: Mapping, round_index: int, epochs: int, batch_size: int, train_kwargs: Mapping) -> dict:
        """Train on the pooled simulations ``raw``; the atomic loss from the second round on."""
        self.wrapper.atomic.assign(round_index > 0)
        return self.trainer.train_offline(raw, epochs=epochs, batch_size=batch_size, **dict(train_kwargs))

    def sample(self, n_samples: int, seed: int | None) -> np.ndarray:
        """``(n_samples, D)`` draws of ``q(theta | x_obs)`` (inside the prior's box when it has one)."""
        draws = self.amortizer.sample(self.conditions, n_samples, seed=seed, squeeze=True)
        self.last_acceptance_rate = self.amortizer.last_acceptance_rate
        return draws

    def log_prob(self, theta: np.ndarray) -> np.ndarray:
        """Normalized ``log q(theta | x_obs)`` of rows ``theta (n, D)``: ``(n,)``."""
        draws = np.asarray(theta, dtype=np.float32)[None]
        return self.amortizer.log_posterior({**self.conditions, "parameters": draws})[0]
