"""SNLE: sequential neural likelihood estimation; one round's training and the MCMC posterior.

The likelihood network ``q(x | theta)`` is trained with the plain maximum-likelihood loss
``-log q(x | theta)`` on the pooled simulations of every round. Its minimizer is the simulator's
likelihood wherever the proposals put parameters, whatever they were, so no correction is needed
(Papamakarios, Sterratt & Murray 2019, "Sequential neural likelihood", AISTATS). The posterior

``p(theta | x_obs) ∝ p(theta) q(x_obs | theta)``

is sampled with :func:`~amortflow.inference.sample_posterior_mcmc`; its draws are the next
round's proposal and the final posterior draws.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from amortflow.exceptions import ArgumentError
from amortflow.inference.mcmc import sample_posterior_mcmc
from amortflow.inference.targets import make_log_likelihood_fn

#: MCMC settings of SNLE's posterior unless ``mcmc_kwargs`` override them; ``num_results`` is set
#: per call so that the chains give the draws asked for. Random-walk Metropolis needs no gradients
#: of the network and tunes its scale in the pilot half of the burn-in (see
#: :mod:`amortflow.inference.mcmc`); many short chains started by likelihood resampling are cheap in
#: one vectorized graph (on a CPU about 10x faster than slice sampling or NUTS here). Short chains can
#: report an R-hat above the threshold: pass ``mcmc_kwargs={"kernel": "nuts"}`` (or longer chains)
#: where the final draws must be certified.
DEFAULT_SNLE_MCMC = {"kernel": "rwm", "num_chains": 50, "num_burnin": 300, "thinning": 2}


class SNLE:
    """The ``method="snle"`` of :class:`~amortflow.inference.SequentialInference`.

    Parameters
    ----------
    generative_model : GenerativeModel
    amortizer : AmortizedLikelihood
    x_obs : numpy.ndarray
        One observed data set, shaped like one simulation's ``sim_data``.
    prior : tfp.distributions.Distribution
        The prior, event shape ``(D,)``.
    mcmc_kwargs : dict
        Overrides of :data:`DEFAULT_SNLE_MCMC` (any argument of ``sample_posterior_mcmc`` but
        ``num_results``, ``seed``, ``target``, ``x_obs`` and ``prior``).
    trainer_kwargs : dict
        Passed to the :class:`~amortflow.trainers.Trainer`.
    """

    name = "snle"
    proposal_name = "posterior"

    def __init__(self, generative_model, amortizer, x_obs: np.ndarray, prior, mcmc_kwargs: Mapping, trainer_kwargs: Mapping):
        from amortflow.trainers import Trainer

        self._check_amortizer(amortizer)
        reserved = sorted(set(mcmc_kwargs) & {"num_results", "seed", "target", "x_obs", "prior"})
        if reserved:
            raise ArgumentError(f"mcmc_kwargs may not set {reserved}: SequentialInference chooses them.")
        self.amortizer = amortizer
        self.prior = prior
        self.x_obs = x_obs
        self.mcmc_kwargs = {**DEFAULT_SNLE_MCMC, **dict(mcmc_kwargs)}
        self.trainer = Trainer(amortizer=amortizer, generative_model=generative_model, **dict(trainer_kwargs))
        self.last_acceptance_rate = None
        self.last_mcmc = None

    def _check_amortizer(self, amortizer) -> None:
        from amortflow.amortizers import AmortizedLikelihood

        if not isinstance(amortizer, AmortizedLikelihood):
            raise ArgumentError(f"method='snle' needs an AmortizedLikelihood, received {type(amortizer).__name__}.")

    def trainer_for(self, round_index: int):
        """The one Trainer of every round."""
        return self.trainer

    def train(self, raw: Mapping, round_index: int, epochs: int, batch_size: int, train_kwargs: Mapping) -> dict:
        """Train on the pooled simulations ``raw`` (the same loss in every round)."""
        return self.trainer.train_offline(raw, epochs=epochs, batch_size=batch_size, **dict(train_kwargs))

    def sample(self, n_samples: int, seed: int | None) -> np.ndarray:
        """``(n_samples, D)`` MCMC draws of ``p(theta) q(x_obs | theta)``, chains interleaved."""
        chains = int(self.mcmc_kwargs["num_chains"])
        result = sample_posterior_mcmc(self.amortizer, self.x_obs, self.prior, num_results=max(2, math.ceil(n_samples / chains)),
                                       seed=seed, **self.mcmc_kwargs)  # fmt: skip
        self.last_mcmc = result
        # draws are (num_results * num_chains, D) in step-major order: the first n take every chain
        return result.draws[:n_samples]

    def log_prob(self, theta: np.ndarray) -> np.ndarray:
        """Unnormalized ``log p(theta) + log q(x_obs | theta)`` of rows ``theta (n, D)``: ``(n,)``."""
        log_likelihood, _ = make_log_likelihood_fn(self.amortizer, self.x_obs)
        theta = tf.constant(theta, dtype=tf.float32)
        log_prior = tf.cast(self.prior.log_prob(tf.cast(theta, self.prior.dtype)), tf.float32)
        return (log_prior + tf.cast(log_likelihood(theta), tf.float32)).numpy()
