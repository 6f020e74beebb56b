"""Joint amortized posterior and likelihood estimation (Radev et al. 2023, "JANA", UAI).

Both networks learn from the same simulations; the loss is the sum
``L = -E[log q(theta | x)] - E[log q(x | theta)]``. The posterior gives fast parameter
estimates, the likelihood surrogate an emulator of the simulator and marginal likelihoods.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from amortflow.amortizers.base import Amortizer, check_input_dict, maybe_deserialize
from amortflow.amortizers.likelihood import AmortizedLikelihood
from amortflow.amortizers.posterior import AmortizedPosterior
from amortflow.exceptions import ArgumentError

_KEYS = ("posterior_inputs", "likelihood_inputs")


@keras.saving.register_keras_serializable(package="amortflow")
class AmortizedPosteriorLikelihood(Amortizer):
    """An :class:`AmortizedPosterior` and an :class:`AmortizedLikelihood` trained together.

    Inputs are dicts ``{"posterior_inputs": {...}, "likelihood_inputs": {...}}`` holding the
    configured inputs of each part. Query methods accept the joint dict or the part's own dict.

    Parameters
    ----------
    amortized_posterior : AmortizedPosterior
    amortized_likelihood : AmortizedLikelihood
    """

    def __init__(self, amortized_posterior, amortized_likelihood, **kwargs):
        amortized_posterior = maybe_deserialize(amortized_posterior)
        amortized_likelihood = maybe_deserialize(amortized_likelihood)
        if not isinstance(amortized_posterior, AmortizedPosterior):
            raise ArgumentError(
                f"amortized_posterior must be an AmortizedPosterior, received {type(amortized_posterior).__name__}."
            )
        if not isinstance(amortized_likelihood, AmortizedLikelihood):
            raise ArgumentError(
                f"amortized_likelihood must be an AmortizedLikelihood, received {type(amortized_likelihood).__name__}."
            )
        super().__init__(**kwargs)
        self.amortized_posterior = amortized_posterior
        self.amortized_likelihood = amortized_likelihood

    @property
    def summary_net(self):
        """The posterior's summary network (or None); the likelihood takes observations directly."""
        return self.amortized_posterior.summary_net

    @staticmethod
    def _part(input_dict, key: str) -> Mapping:
        """The part ``key`` of a joint dict, or ``input_dict`` itself when it is already a part's dict."""
        if isinstance(input_dict, Mapping) and key in input_dict:
            check_input_dict("AmortizedPosteriorLikelihood", input_dict, (key,))
            return input_dict[key]
        return input_dict

    @property
    def standardization_pending(self) -> bool:
        """True when either part still needs its standardization statistics."""
        return self.amortized_posterior.standardization_pending or self.amortized_likelihood.standardization_pending

    def adapt_standardization(self, input_dict: Mapping) -> list[str]:
        """Adapt each part's standardization on its part of a joint input dict; returns ``"part/key"`` names."""
        check_input_dict("AmortizedPosteriorLikelihood.adapt_standardization", input_dict, _KEYS)
        posterior = self.amortized_posterior.adapt_standardization(input_dict["posterior_inputs"])
        likelihood = self.amortized_likelihood.adapt_standardization(input_dict["likelihood_inputs"])
        return [f"posterior_inputs/{k}" for k in posterior] + [f"likelihood_inputs/{k}" for k in likelihood]

    def call(self, input_dict, training=False):
        """``((z, log_det_J) of the posterior, (z, log_det_J) of the likelihood)`` for flow networks."""
        check_input_dict("AmortizedPosteriorLikelihood", input_dict, _KEYS)
        return (
            self.amortized_posterior(input_dict["posterior_inputs"], training=training),
            self.amortized_likelihood(input_dict["likelihood_inputs"], training=training),
        )

    def compute_loss(self, input_dict, training=False):
        """Sum of the posterior and the likelihood losses (scalar tensor)."""
        check_input_dict("AmortizedPosteriorLikelihood", input_dict, _KEYS)
        self.built = True
        return self.amortized_posterior.compute_loss(
            input_dict["posterior_inputs"], training=training
        ) + self.amortized_likelihood.compute_loss(input_dict["likelihood_inputs"], training=training)

    def log_posterior(self, input_dict, **kwargs):
        """See :meth:`AmortizedPosterior.log_posterior`."""
        return self.amortized_posterior.log_posterior(self._part(input_dict, "posterior_inputs"), **kwargs)

    def log_likelihood(self, input_dict, **kwargs):
        """See :meth:`AmortizedLikelihood.log_likelihood`."""
        return self.amortized_likelihood.log_likelihood(self._part(input_dict, "likelihood_inputs"), **kwargs)

    def log_prob(self, input_dict, **kwargs) -> dict:
        """``{"log_posterior": (B,), "log_likelihood": (B,)}`` for a joint input dict."""
        check_input_dict("AmortizedPosteriorLikelihood.log_prob", input_dict, _KEYS)
        return {"log_posterior": self.log_posterior(input_dict, **kwargs),
                "log_likelihood": self.log_likelihood(input_dict, **kwargs)}  # fmt: skip

    def sample_parameters(self, input_dict, n_samples: int, **kwargs):
        """Posterior draws ``(n_datasets, n_samples, D)``; see :meth:`AmortizedPosterior.sample`."""
        return self.amortized_posterior.sample(self._part(input_dict, "posterior_inputs"), n_samples, **kwargs)

    def sample_data(self, input_dict, n_samples: int, **kwargs):
        """Synthetic data ``(B, n_samples, d)``; see :meth:`AmortizedLikelihood.sample`.

        ``input_dict`` is a joint dict, a likelihood dict (its ``conditions`` are used) or the
        conditions array itself.
        """
        return self.amortized_likelihood.sample(self._part(input_dict, "likelihood_inputs"), n_samples, **kwargs)

    def default_configurator(self, generative_model=None):
        """The :class:`~amortflow.configuration.DefaultJointConfigurator`; adopts prior bounds like the posterior."""
        from amortflow.configuration import DefaultJointConfigurator

        self.amortized_posterior._adopt_prior_bounds(generative_model)
        return DefaultJointConfigurator()

    def get_build_config(self):
        return {"built": True}

    def build_from_config(self, config):
        # Each part was deserialized with its own build config, so it is built already.
        self.built = True

    def get_config(self) -> dict[str, Any]:
        config = self._base_config()
        config.update(
            {
                "amortized_posterior": keras.saving.serialize_keras_object(self.amortized_posterior),
                "amortized_likelihood": keras.saving.serialize_keras_object(self.amortized_likelihood),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
