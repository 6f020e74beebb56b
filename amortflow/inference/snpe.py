"""SNPE-C (APT): sequential neural posterior estimation with the atomic loss, one round's training and sampling.

Round 1 simulates from the prior and trains with the plain NPE loss ``-log q(theta | x)``
(proposal = prior, so no correction is needed); every later round trains the same network on
the pooled simulations of all rounds with the atomic loss of
:mod:`amortflow.inference.atomic_loss` (Greenberg et al. 2019), whose minimizer is the posterior
whatever the proposals were. Inference needs no correction either: ``q(theta | x_obs)`` is the
posterior estimate, and the next round's proposal.

Two Trainers share the network: one on the posterior (round 1) and one on its
:class:`~amortflow.inference.AtomicPosterior` (every later round), each with its one compiled
step. Switching the loss inside one compiled step would need a ``tf.cond``, whose gradient XLA
cannot compile here (the atoms' shapes become runtime values inside the branch).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

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
    num_atoms : int or None
        Atoms of the atomic loss (None: no atomic loss, as in :class:`~amortflow.inference.tsnpe.TSNPE`).
    trainer_kwargs : dict
        Passed to the :class:`~amortflow.trainers.Trainer`.
    """

    name = "snpe_c"
    proposal_name = "posterior"

    def __init__(self, generative_model, amortizer, x_obs: np.ndarray, prior, num_atoms: int, trainer_kwargs: Mapping):
        from amortflow.amortizers import AmortizedPosterior
        from amortflow.trainers import Trainer

        if not isinstance(amortizer, AmortizedPosterior):
            raise ArgumentError(f"method={self.name!r} needs an AmortizedPosterior, received {type(amortizer).__name__}.")
        self.amortizer = amortizer
        self.prior = prior
        self.generative_model = generative_model
        self.trainer_kwargs = dict(trainer_kwargs)
        if num_atoms is not None:  # checked now, used from round 2 on
            self.wrapper = AtomicPosterior(amortizer, lambda theta: prior.log_prob(tf.cast(theta, prior.dtype)), num_atoms)
        self.trainer = Trainer(amortizer=amortizer, generative_model=generative_model, **self.trainer_kwargs)
        self._atomic_trainer = None
        raw_obs = {"sim_data": x_obs[None], "prior_draws": None}
        self.conditions = {key: value for key, value in self.trainer.configure(raw_obs).items() if key != "parameters"}
        self.last_acceptance_rate = None

    def trainer_for(self, round_index: int):
        """The Trainer of round ``round_index + 1``: the plain one in round 1, the atomic one after."""
        if round_index == 0:
            return self.trainer
        if self._atomic_trainer is None:
            from amortflow.trainers import Trainer

            # the same configurator and settings; the posterior's standardization was adapted in round 1,
            # and round 1's trainer already checked model -> configurator -> network
            kwargs = dict(self.trainer_kwargs)
            if kwargs.get("seed") is not None:
                kwargs["seed"] = int(kwargs["seed"]) + 1  # its own random streams
            if kwargs.get("checkpoint_path") is not None:  # its own folder: a checkpoint holds one trainer's run
                folder = Path(kwargs["checkpoint_path"])
                kwargs["checkpoint_path"] = folder.with_name(folder.name + "_atomic")
            self._atomic_trainer = Trainer(amortizer=self.wrapper, generative_model=self.generative_model,
                                           configurator=self.trainer.configurator, skip_checks=True, **kwargs)  # fmt: skip
        return self._atomic_trainer

    def train(self, raw: Mapping, round_index: int, epochs: int, batch_size: int, train_kwargs: Mapping) -> dict:
        """Train on the pooled simulations ``raw``; the atomic loss from the second round on."""
        trainer = self.trainer_for(round_index)
        return trainer.train_offline(raw, epochs=epochs, batch_size=batch_size, **dict(train_kwargs))

    def sample(self, n_samples: int, seed: int | None) -> np.ndarray:
        """``(n_samples, D)`` draws of ``q(theta | x_obs)`` (inside the prior's box when it has one)."""
        draws = self.amortizer.sample(self.conditions, n_samples, seed=seed, squeeze=True)
        self.last_acceptance_rate = self.amortizer.last_acceptance_rate
        return draws

    def log_prob(self, theta: np.ndarray) -> np.ndarray:
        """Normalized ``log q(theta | x_obs)`` of rows ``theta (n, D)``: ``(n,)``."""
        draws = np.asarray(theta, dtype=np.float32)[None]
        return self.amortizer.log_posterior({**self.conditions, "parameters": draws})[0]
