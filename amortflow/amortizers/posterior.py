"""Neural posterior estimation: an amortized approximation ``q(theta | x) ~ p(theta | x)``.

Training minimizes the expected negative log posterior over simulations
``(theta, x) ~ p(theta) p(x | theta)``:

``L = -E[ log q(theta | h(x)) ]``,  ``h(x) = [summary_net(summary_conditions), direct_conditions]``,

which is the forward KL divergence ``KL(p(theta | x) || q(theta | x))`` averaged over ``p(x)``
up to a constant (Radev et al. 2020, "BayesFlow: Learning complex stochastic models with
invertible neural networks", IEEE TNNLS).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from amortflow._checks import check_choice, positive_int
from amortflow.amortizers.base import (
    MAX_DATASETS_PER_CHUNK,
    Amortizer,
    as_matrix,
    check_input_dict,
    chunk_ranges,
    count_datasets,
    datasets_per_call,
    dummy_inputs,
    maybe_deserialize,
    maybe_serialize,
    slice_inputs,
    to_numpy,
)
from amortflow.amortizers.entry_points import checked
from amortflow.amortizers.losses import maximum_mean_discrepancy
from amortflow.amortizers.sampling import report_acceptance, sample_chunked
from amortflow.distributions import StandardNormal, resolve_latent_dist
from amortflow.exceptions import ArgumentError, ShapeError, describe_shape

logger = logging.getLogger("amortflow")

_BOUNDED_SAMPLING = ("reject", "none")
_SUMMARY_LOSSES = (None, "MMD")


@keras.saving.register_keras_serializable(package="amortflow")
class AmortizedPosterior(Amortizer):
    """Amortized posterior ``q(theta | x)`` from an inference network and an optional summary network.

    Parameters
    ----------
    inference_net : InferenceNetwork
        Any conditional density estimator of ``amortflow.networks`` (``InvertibleNetwork``,
        ``MaskedAutoregressiveFlow``, ``MixtureDensityNetwork``, ...) over ``D`` parameters.
    summary_net : keras.layers.Layer, optional
        Learns summaries of ``summary_conditions`` (e.g. ``DeepSet``) jointly with the posterior.
    latent_dist : None, "normal", "student_t" or a distribution object, optional
        Base distribution of a flow (standard normal when None). Not used by non-flow networks.
    summary_loss_fun : None, "MMD" or callable, optional
        ``"MMD"`` adds the squared MMD between the summary outputs and standard normal draws
        (see :func:`amortflow.amortizers.losses.maximum_mean_discrepancy`); a callable
        ``f(summary_outputs) -> scalar`` adds its value.
    prior_bounds : (lower, upper), optional
        Arrays of shape ``(D,)`` (``-inf``/``inf`` where unbounded). :meth:`sample` then returns
        only draws inside the box. Set automatically by :meth:`default_configurator` from a
        generative model whose prior has bounded support.
    bounded_sampling : {"reject", "none"}, default "reject"
        ``"reject"``: rejection sampling to ``prior_bounds``; ``"none"``: ignore them.
    standardize : bool, default True
        Standardize the parameters and both kinds of condition per feature, with means and
        standard deviations that the Trainer estimates from the training data before the first
        step (see :mod:`amortflow.amortizers.standardization`). Draws and densities stay in the
        user's units: ``log q(theta | x) = log q_u(u | x) - sum(log std)``, ``u = (theta - mean) / std``.

    Examples
    --------
    >>> amortizer = AmortizedPosterior(af.networks.InvertibleNetwork(num_params=2), af.networks.DeepSet())
    >>> draws = amortizer.sample(conf, n_samples=1000)   # (n_datasets, 1000, 2)
    """

    def __init__(
        self,
        inference_net,
        summary_net=None,
        latent_dist=None,
        summary_loss_fun=None,
        prior_bounds=None,
        bounded_sampling: str = "reject",
        standardize: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.summary_net = maybe_deserialize(summary_net)
        self.inference_net = maybe_deserialize(inference_net)
        self.latent_dist = normalize_latent_dist(latent_dist)
        summary_loss_fun = maybe_deserialize(summary_loss_fun)
        if not (summary_loss_fun in _SUMMARY_LOSSES or callable(summary_loss_fun)):
            raise ArgumentError(f"summary_loss_fun must be None, 'MMD' or a callable, received {summary_loss_fun!r}.")
        if summary_loss_fun is not None and self.summary_net is None:
            raise ArgumentError("summary_loss_fun needs a summary_net whose outputs it acts on; summary_net is None.")
        self.summary_loss_fun = summary_loss_fun
        check_choice("bounded_sampling", bounded_sampling, _BOUNDED_SAMPLING)
        self.bounded_sampling = bounded_sampling
        self._lower = self._upper = None
        if prior_bounds is not None:
            self.set_prior_bounds(*prior_bounds)
        self.seed_generator = keras.random.SeedGenerator(20240601)
        self._init_standardization(standardize)

    STANDARDIZED_KEYS = ("parameters", "summary_conditions", "direct_conditions")

    @property
    def num_params(self) -> int:
        return int(self.inference_net.num_params)

    # --- prior bounds ------------------------------------------------------------------
    @property
    def prior_bounds(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(lower, upper)`` arrays of shape ``(D,)``, or None."""
        return None if self._lower is None else (self._lower.copy(), self._upper.copy())

    def set_prior_bounds(self, lower, upper) -> None:
        """Restrict :meth:`sample` to ``lower <= theta <= upper`` (``(D,)`` arrays; +-inf allowed).

        ``set_prior_bounds(None, None)`` removes the bounds.
        """
        if lower is None and upper is None:
            self._lower = self._upper = None
            return
        lower = np.broadcast_to(np.asarray(lower, dtype=np.float64), (self.num_params,)).copy()
        upper = np.broadcast_to(np.asarray(upper, dtype=np.float64), (self.num_params,)).copy()
        if np.any(np.isnan(lower)) or np.any(np.isnan(upper)) or np.any(lower >= upper):
            raise ArgumentError(f"prior_bounds need lower < upper elementwise, received lower={lower}, upper={upper}.")
        self._lower, self._upper = lower, upper
        # An InvertibleNetwork with coupling_design="auto" picks its couplings from the support
        # (a no-op once its design is fixed, e.g. after building or loading).
        choose = getattr(self.inference_net, "choose_coupling_design", None)
        if choose is not None:
            choose(lower, upper)

    def _active_bounds(self):
        if self._lower is None or self.bounded_sampling == "none":
            return None
        if np.all(np.isinf(self._lower)) and np.all(np.isinf(self._upper)):
            return None
        return self._lower, self._upper

    # --- forward and loss ----------------------------------------------------------------
    def _parameters(self, input_dict: Mapping) -> tf.Tensor:
        parameters = as_matrix(input_dict["parameters"], "parameters")
        if parameters.shape[-1] != self.num_params:
            raise ShapeError(
                f"input_dict['parameters'] must have shape (B, {self.num_params}), "
                f"received {describe_shape(input_dict['parameters'])}."
            )
        return parameters

    @checked("posterior.call")
    def call(self, input_dict, training=False, return_summary=False):
        """Latents and log-Jacobian ``(z (B, D), log_det_J (B,))`` of a flow inference network.

        With ``return_summary=True`` also the summary outputs (or None).
        """
        if not getattr(self.inference_net, "is_flow", False):
            raise ArgumentError(
                f"amortizer(input_dict) returns (z, log_det_J) of a normalizing flow; "
                f"{type(self.inference_net).__name__} is not a flow. Use log_posterior() instead."
            )
        check_input_dict("AmortizedPosterior", input_dict, ("parameters",))
        self._remember_inputs(input_dict)
        condition, summary_outputs = self.summarize(input_dict, training)
        parameters = self._standardized("parameters", self._parameters(input_dict))
        z, log_det_J = self.inference_net(parameters, condition, training=training)
        log_det_J = log_det_J + self._standardization_log_det("parameters")
        return (z, log_det_J, summary_outputs) if return_summary else (z, log_det_J)

    def _network_inputs(self, input_dict: Mapping, training: bool = False):
        """``(standardized parameters, condition, summary_outputs)`` of a batch with parameters."""
        check_input_dict("AmortizedPosterior", input_dict, ("parameters",))
        self._remember_inputs(input_dict)
        condition, summary_outputs = self.summarize(input_dict, training)
        return self._standardized("parameters", self._parameters(input_dict)), condition, summary_outputs

    def _log_prob_tensor(self, input_dict: Mapping, training: bool = False):
        parameters, condition, summary_outputs = self._network_inputs(input_dict, training)
        log_prob = self.inference_net.log_prob(parameters, condition, latent_dist=self.latent_dist, training=training)
        return log_prob + self._standardization_log_det("parameters"), summary_outputs

    def compute_loss(self, input_dict, training=False):
        """The inference network's loss of the batch (+ the summary loss, if any); a scalar tensor.

        For density networks this is the mean negative log posterior in the user's units; other
        networks (flow matching, consistency models) bring their own objective through
        :meth:`~amortflow.networks.inference.base.InferenceNetwork.compute_loss`.
        """
        parameters, condition, summary_outputs = self._network_inputs(input_dict, training)
        net = self.inference_net
        loss = net.compute_loss(parameters, condition, latent_dist=self.latent_dist, training=training)
        if getattr(net, "loss_is_negative_log_prob", True):
            loss = loss - self._standardization_log_det("parameters")
        if self.summary_loss_fun == "MMD":
            reference = keras.random.normal(tf.shape(summary_outputs), seed=self.seed_generator)
            loss = loss + maximum_mean_discrepancy(summary_outputs, reference)
        elif self.summary_loss_fun is not None:
            loss = loss + self.summary_loss_fun(summary_outputs)
        return loss

    # --- densities ----------------------------------------------------------------------
    @checked("posterior.log_posterior")
    def log_posterior(self, input_dict, batch_size: int | None = None, to_numpy: bool = True):
        """Normalized log density ``log q(parameters | x)`` of each data set's parameters.

        ``parameters`` may be ``(n_datasets, D)`` (result ``(n_datasets,)``) or
        ``(n_datasets, n_draws, D)``, e.g. posterior draws (result ``(n_datasets, n_draws)``).
        Work is chunked over data sets (``batch_size`` data sets per call).

        Note: the density is the network's, also where ``prior_bounds`` cut it off; bounded
        sampling draws from it renormalized to the box (the two agree when the network puts
        negligible mass outside the prior support, as a well-trained one does).
        """
        check_input_dict("AmortizedPosterior.log_posterior", input_dict, ("parameters",))
        parameters = np.asarray(input_dict["parameters"], dtype=np.float32)
        if parameters.ndim == 3:
            return self._log_posterior_of_draws(input_dict, parameters, batch_size, to_numpy)
        n = parameters.shape[0] if parameters.ndim else 1
        step = datasets_per_call(batch_size)
        pieces = []
        for start, stop in chunk_ranges(n, step):
            chunk = {**slice_inputs(input_dict, start, stop), "parameters": parameters[start:stop]}
            pieces.append(self._log_prob_tensor(chunk)[0])
        result = tf.concat(pieces, axis=0) if pieces else tf.zeros((0,))
        return to_numpy_or_tensor(result, to_numpy)

    def _log_posterior_of_draws(self, input_dict, draws: np.ndarray, batch_size, to_numpy_flag):
        n_datasets, n_draws, _ = draws.shape
        fitting = max(1, min(self._default_max_rows() // max(n_draws, 1), MAX_DATASETS_PER_CHUNK))
        step = datasets_per_call(batch_size, fitting)
        pieces = []
        for start, stop in chunk_ranges(n_datasets, step):
            condition, _ = self.summarize(slice_inputs(input_dict, start, stop))
            flat = draws[start:stop].reshape(-1, draws.shape[-1])
            if condition is not None:
                condition = tf.repeat(condition, n_draws, axis=0)
            flat = self._standardized("parameters", tf.convert_to_tensor(flat))
            log_prob = self.inference_net.log_prob(flat, condition, latent_dist=self.latent_dist)
            log_prob = log_prob + self._standardization_log_det("parameters")
            pieces.append(tf.reshape(log_prob, (stop - start, n_draws)))
        return to_numpy_or_tensor(tf.concat(pieces, axis=0), to_numpy_flag)

    def log_prob(self, input_dict, batch_size: int | None = None, to_numpy: bool = True):
        """Alias of :meth:`log_posterior`."""
        return self.log_posterior(input_dict, batch_size=batch_size, to_numpy=to_numpy)

    # --- sampling -----------------------------------------------------------------------
    @checked("posterior.sample")
    def sample(
        self,
        input_dict,
        n_samples: int,
        batch_size: int | None = None,
        seed: int | None = None,
        squeeze: bool = False,
        progress: bool | None = None,
    ) -> np.ndarray:
        """Draw ``n_samples`` posterior draws per data set.

        Parameters
        ----------
        input_dict : dict
            Configured inputs with ``summary_conditions`` and/or ``direct_conditions``
            (``parameters`` are ignored).
        n_samples : int
            Draws per data set.
        batch_size : int, optional
            At most this many data sets per network call (default: as many as keep one call
            below :data:`amortflow.defaults.DEFAULT_SAMPLING_MAX_ROWS` rows).
        seed : int, optional
            Makes the draws repeatable (also after saving and loading the amortizer).
        squeeze : bool, default False
            Return ``(n_samples, D)`` when there is exactly one data set.
        progress : bool, optional
            Show a progress bar; by default only for calls with many chunks.

        Returns
        -------
        numpy.ndarray
            ``(n_datasets, n_samples, D)`` float32 draws, inside ``prior_bounds`` if set.
        """
        check_input_dict("AmortizedPosterior.sample", input_dict)
        n_samples = positive_int("n_samples", n_samples)
        self._remember_inputs({k: input_dict.get(k) for k in ("summary_conditions", "direct_conditions")})
        n_datasets = count_datasets(input_dict)
        draws, stats = sample_chunked(
            self._draw,
            lambda start, stop: self.summarize(slice_inputs(input_dict, start, stop))[0],
            n_datasets,
            n_samples,
            self.num_params,
            batch_size=batch_size,
            max_rows=self._default_max_rows(),
            seed=seed,
            progress=progress,
            bounds=self._active_bounds(),
            desc="posterior draws",
        )
        report_acceptance(stats)
        self.last_acceptance_rate = None if stats is None else stats.acceptance_rate
        return draws[0] if squeeze and n_datasets == 1 else draws

    def _draw(self, condition, n_draws: int, seed: int | None) -> np.ndarray:
        draws = self.inference_net.sample(n_draws, condition, latent_dist=self.latent_dist, seed=seed)
        draws = self._unstandardized("parameters", to_numpy(draws))
        return draws[None] if condition is None else draws

    # --- integration with the rest of amortflow -------------------------------------------
    def default_configurator(self, generative_model=None):
        """The :class:`~amortflow.configuration.DefaultPosteriorConfigurator` for this amortizer.

        When ``prior_bounds`` are unset and the generative model's prior has (partly) bounded
        support, they are taken from ``prior.support_bounds()`` so that sampling respects it.
        """
        from amortflow.configuration import DefaultPosteriorConfigurator

        self._adopt_prior_bounds(generative_model)
        return DefaultPosteriorConfigurator()

    def _adopt_prior_bounds(self, generative_model) -> None:
        prior = getattr(generative_model, "prior", None)
        if self._lower is not None or prior is None or not hasattr(prior, "support_bounds"):
            return
        bounds = prior.support_bounds()
        if bounds is None or not (np.isfinite(bounds[0]).any() or np.isfinite(bounds[1]).any()):
            return
        if np.size(bounds[0]) != self.num_params:
            logger.warning(
                "The prior has %d parameters but the inference network %d; prior bounds not adopted.",
                np.size(bounds[0]), self.num_params,
            )  # fmt: skip
            return
        self.set_prior_bounds(*bounds)
        logger.info("AmortizedPosterior: sampling restricted to the prior support %s .. %s.", bounds[0], bounds[1])

    def _build_from_record(self, record: Mapping) -> None:
        inputs = dummy_inputs(record)
        inputs["parameters"] = dummy_inputs([2, self.num_params], seed=1)
        # The training loss touches every weight, also of networks without a density.
        self.compute_loss(inputs)

    def get_config(self) -> dict[str, Any]:
        config = self._base_config()
        config.update(
            {
                "inference_net": keras.saving.serialize_keras_object(self.inference_net),
                "summary_net": maybe_serialize(self.summary_net),
                "latent_dist": maybe_serialize(self.latent_dist),
                "summary_loss_fun": maybe_serialize(self.summary_loss_fun),
                "prior_bounds": None if self._lower is None else [self._lower.tolist(), self._upper.tolist()],
                "bounded_sampling": self.bounded_sampling,
            }
        )
        return config



def normalize_latent_dist(latent_dist):
    """Resolve a latent distribution spec; the standard normal (the default) becomes None.

    None lets networks without a latent space (a mixture density network) accept the default.
    """
    if latent_dist is None:
        return None
    resolved = resolve_latent_dist(maybe_deserialize(latent_dist))
    return None if isinstance(resolved, StandardNormal) else resolved


def to_numpy_or_tensor(value, as_numpy: bool):
    """``value`` as numpy (``as_numpy=True``) or as the tensor it is."""
    return to_numpy(value) if as_numpy else value
