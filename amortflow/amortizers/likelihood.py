"""Neural likelihood estimation: an amortized surrogate ``q(x | theta) ~ p(x | theta)``.

For i.i.d. data ``x = (x_1, ..., x_N)`` the surrogate models one observation,
``log q(x | theta) = sum_n log q(x_n | theta)``, and is trained on every observation of every
simulation: ``L = -mean_{b, n} log q(x_{b,n} | theta_b)`` (Papamakarios, Sterratt & Murray 2019,
"Sequential neural likelihood", AISTATS; Radev et al. 2023, "JANA"). Fixed-size data
``(B, d)`` are modelled as one joint observation. The trained surrogate is a fast emulator of
the simulator (:meth:`AmortizedLikelihood.sample`) and, with a prior, gives posteriors by
MCMC (:func:`amortflow.inference.sample_posterior_mcmc`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from amortflow._checks import positive_int
from amortflow.amortizers.base import (
    Amortizer,
    as_float,
    as_matrix,
    check_input_dict,
    chunk_ranges,
    datasets_per_call,
    dummy_inputs,
    maybe_deserialize,
    maybe_serialize,
)
from amortflow.amortizers.base import to_numpy as as_numpy
from amortflow.amortizers.entry_points import checked
from amortflow.amortizers.posterior import normalize_latent_dist
from amortflow.amortizers.sampling import sample_chunked
from amortflow.exceptions import ArgumentError, ConfigurationError, ShapeError, describe_shape


@keras.saving.register_keras_serializable(package="amortflow")
class AmortizedLikelihood(Amortizer):
    """Amortized likelihood ``q(x | theta)`` of one observation ``x`` (``(d,)``) given parameters.

    Inputs are dicts with ``observables`` of shape ``(B, N, d)`` (N i.i.d. observations) or
    ``(B, d)``, and ``conditions`` of shape ``(B, D)`` (the parameters).

    Parameters
    ----------
    surrogate_net : InferenceNetwork
        A conditional density estimator whose ``num_params`` is the observation dimension ``d``
        (``InvertibleNetwork(num_params=d)``, ``MaskedAutoregressiveFlow``, ``MixtureDensityNetwork``).
    latent_dist : None, "normal", "student_t" or a distribution object, optional
        Base distribution of a flow surrogate.
    standardize : bool, default True
        Standardize the observables and the conditions per feature with statistics that the
        Trainer estimates from the training data (see :mod:`amortflow.amortizers.standardization`);
        ``log q(x | theta)`` and synthetic data stay in the user's units.
    """

    STANDARDIZED_KEYS = ("observables", "conditions")

    def __init__(self, surrogate_net, latent_dist=None, standardize: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.summary_net = None  # observations enter the surrogate directly
        self.surrogate_net = maybe_deserialize(surrogate_net)
        if not getattr(self.surrogate_net, "has_density", True):
            # a likelihood surrogate exists to be evaluated (MCMC, NLE); failing here beats failing
            # at the first log_likelihood call after a whole training run
            raise ArgumentError(
                f"AmortizedLikelihood needs a surrogate with a tractable density q(x | theta), received "
                f"{type(self.surrogate_net).__name__}, which only samples (has_density=False). Use "
                "FlowMatching, InvertibleNetwork, MaskedAutoregressiveFlow or MixtureDensityNetwork."
            )
        self.latent_dist = normalize_latent_dist(latent_dist)
        self._init_standardization(standardize)

    @property
    def data_dim(self) -> int:
        """Dimension ``d`` of one observation."""
        return int(self.surrogate_net.num_params)

    # --- flattening i.i.d. sets -------------------------------------------------------------
    def flatten(self, observables, conditions) -> tuple[tf.Tensor, tf.Tensor, int]:
        """Rows ``(B*N, d)`` of observations with their repeated conditions ``(B*N, D)``, and ``N``."""
        obs = as_float(observables, "observables")
        cond = as_matrix(conditions, "conditions")
        if obs.shape.rank == 1:
            obs = obs[:, None]
        if obs.shape.rank not in (2, 3) or obs.shape[-1] != self.data_dim:
            raise ShapeError(
                f"observables must have shape (B, N, {self.data_dim}) or (B, {self.data_dim}), "
                f"received {describe_shape(observables)}."
            )
        if obs.shape[0] is not None and cond.shape[0] is not None and obs.shape[0] != cond.shape[0]:
            raise ShapeError(
                f"observables {describe_shape(observables)} and conditions {describe_shape(conditions)} "
                "must have the same number of data sets (first axis)."
            )
        obs = self._standardized("observables", obs)
        cond = self._standardized("conditions", cond)
        if obs.shape.rank == 2:
            return obs, cond, 1
        n_obs = tf.shape(obs)[1]
        return tf.reshape(obs, (-1, self.data_dim)), tf.repeat(cond, n_obs, axis=0), n_obs

    def _inputs(self, input_dict: Mapping):
        check_input_dict("AmortizedLikelihood", input_dict, ("observables", "conditions"))
        self._remember_inputs(input_dict)
        return input_dict["observables"], input_dict["conditions"]

    # --- forward and loss --------------------------------------------------------------
    @checked("likelihood.call")
    def call(self, input_dict, training=False):
        """``(z, log_det_J)`` of a flow surrogate for every observation row ``(B*N, d)``, ``(B*N,)``."""
        if not getattr(self.surrogate_net, "is_flow", False):
            raise ArgumentError(
                f"amortizer(input_dict) returns (z, log_det_J) of a normalizing flow; "
                f"{type(self.surrogate_net).__name__} is not a flow. Use log_likelihood() instead."
            )
        rows, cond, _ = self.flatten(*self._inputs(input_dict))
        return self.surrogate_net(rows, cond, training=training)

    def log_prob_rows(self, observables, conditions, training=False) -> tuple[tf.Tensor, Any]:
        """Per-observation log densities ``(B, N)`` (``(B, 1)`` for fixed-size data)."""
        rows, cond, n_obs = self.flatten(observables, conditions)
        log_prob = self.surrogate_net.log_prob(rows, cond, latent_dist=self.latent_dist, training=training)
        log_prob = log_prob + self._standardization_log_det("observables")
        return tf.reshape(log_prob, (-1, n_obs)), n_obs

    def compute_loss(self, input_dict, training=False):
        """The surrogate's loss over all observation rows; for density networks the mean negative
        log likelihood per observation in the user's units (scalar tensor)."""
        rows, cond, _ = self.flatten(*self._inputs(input_dict))
        net = self.surrogate_net
        loss = net.compute_loss(rows, cond, latent_dist=self.latent_dist, training=training)
        if getattr(net, "loss_is_negative_log_prob", True):
            loss = loss - self._standardization_log_det("observables")
        return loss

    def log_likelihood_tensor(self, observables, conditions) -> tf.Tensor:
        """``log q(x | theta) = sum_n log q(x_n | theta)`` per data set, ``(B,)``, as a tensor (graph-safe)."""
        log_prob, _ = self.log_prob_rows(observables, conditions)
        return tf.reduce_sum(log_prob, axis=-1)

    @checked("likelihood.log_likelihood")
    def log_likelihood(self, input_dict, batch_size: int | None = None, to_numpy: bool = True):
        """Log likelihood of each data set's observables given its conditions, shape ``(B,)``.

        For i.i.d. sets ``(B, N, d)`` it sums the per-observation log densities over ``N``.
        """
        observables, conditions = self._inputs(input_dict)
        n = leading(conditions)
        n_obs = int(np.prod(np.shape(observables)[1:-1])) if np.ndim(observables) > 2 else 1
        step = datasets_per_call(batch_size, max(1, self._default_max_rows() // max(n_obs, 1)))
        pieces = [
            self.log_likelihood_tensor(observables[start:stop], conditions[start:stop])
            for start, stop in chunk_ranges(n, step)
        ]
        result = tf.concat(pieces, axis=0)
        return as_numpy(result) if to_numpy else result

    def log_prob(self, input_dict, batch_size: int | None = None, to_numpy: bool = True):
        """Alias of :meth:`log_likelihood`."""
        return self.log_likelihood(input_dict, batch_size=batch_size, to_numpy=to_numpy)

    # --- synthetic data ---------------------------------------------------------------
    @checked("likelihood.sample")
    def sample(
        self,
        conditions,
        n_samples: int,
        batch_size: int | None = None,
        seed: int | None = None,
        progress: bool | None = None,
    ) -> np.ndarray:
        """Synthetic observations ``(B, n_samples, d)`` from the surrogate, given ``conditions`` ``(B, D)``.

        ``conditions`` may be the array or a dict holding it under ``"conditions"``. For an
        i.i.d. model, ``n_samples = N`` gives one synthetic data set per parameter vector.
        """
        if isinstance(conditions, Mapping):
            check_input_dict("AmortizedLikelihood.sample", conditions, ("conditions",))
            conditions = conditions["conditions"]
        if conditions is None:
            raise ConfigurationError("AmortizedLikelihood.sample needs conditions (B, D); received None.")
        cond = np.asarray(conditions, dtype=np.float32)
        cond = cond[:, None] if cond.ndim == 1 else cond
        n_samples = positive_int("n_samples", n_samples)
        self._remember_inputs({"conditions": cond})
        draws, _ = sample_chunked(
            lambda c, n, s: self._unstandardized(
                "observables", as_numpy(self.surrogate_net.sample(n, c, latent_dist=self.latent_dist, seed=s))
            ),
            lambda start, stop: self._standardized("conditions", tf.convert_to_tensor(cond[start:stop])),
            cond.shape[0],
            n_samples,
            self.data_dim,
            batch_size=batch_size,
            max_rows=self._default_max_rows(),
            seed=seed,
            progress=progress,
            desc="synthetic data",
        )
        return draws

    # --- integration -------------------------------------------------------------------
    def default_configurator(self, generative_model=None):
        """The :class:`~amortflow.configuration.DefaultLikelihoodConfigurator`."""
        from amortflow.configuration import DefaultLikelihoodConfigurator

        return DefaultLikelihoodConfigurator()

    def _build_from_record(self, record: Mapping) -> None:
        inputs = dummy_inputs(record)
        if inputs.get("observables") is None:
            inputs["observables"] = dummy_inputs([2, self.data_dim], seed=1)
        self.compute_loss(inputs)  # the training loss touches every weight, also without a density

    def get_config(self) -> dict[str, Any]:
        config = self._base_config()
        config.update(
            {
                "surrogate_net": keras.saving.serialize_keras_object(self.surrogate_net),
                "latent_dist": maybe_serialize(self.latent_dist),
            }
        )
        return config



def leading(value) -> int:
    """Length of the first axis of an array or tensor."""
    shape = getattr(value, "shape", None)
    return int(np.shape(value)[0]) if shape is None or shape[0] is None else int(shape[0])
