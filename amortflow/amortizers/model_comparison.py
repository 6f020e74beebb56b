"""Amortized Bayesian model comparison: posterior model probabilities ``p(m | x)`` from a classifier.

A classifier trained with a strictly proper scoring rule on simulations from ``M`` models
(``m ~ p(m)``, ``x ~ p(x | m)``) converges to the posterior model probabilities (PMPs),
so after training ``p(m | x_obs)`` (and Bayes factors ``p(m|x) p(m') / (p(m'|x) p(m))``)
come in one network pass (Radev et al. 2021, "Amortized Bayesian model comparison with
evidential deep learning", IEEE TNNLS).

Losses: ``"cross_entropy"`` for a softmax head (``-sum_m y_m log softmax(logits)_m``) and
``"evidential"`` for a Dirichlet head (see :func:`amortflow.amortizers.losses.evidential_loss`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import tensorflow as tf

from amortflow.amortizers.base import (
    Amortizer,
    as_float,
    check_input_dict,
    chunk_ranges,
    count_datasets,
    datasets_per_call,
    dummy_inputs,
    maybe_deserialize,
    maybe_serialize,
    slice_inputs,
)
from amortflow.amortizers.base import to_numpy as as_numpy
from amortflow.amortizers.entry_points import checked
from amortflow.amortizers.losses import evidential_loss
from amortflow.exceptions import ArgumentError, ConfigurationError, ShapeError, describe_shape

_LOSSES = ("cross_entropy", "evidential")


@keras.saving.register_keras_serializable(package="amortflow")
class AmortizedModelComparison(Amortizer):
    """Posterior model probabilities ``(n_datasets, num_models)`` from a model classifier.

    Parameters
    ----------
    inference_net : ModelClassifier
        ``inference_net(conditions (B, k)) -> (B, M)``: logits for ``head="softmax"`` or Dirichlet
        concentrations ``alpha`` for ``head="evidential"``.
    summary_net : keras layer, optional
        Summarizes ``summary_conditions``; the classifier sees ``[summaries, direct_conditions]``.
    loss_fun : None, "cross_entropy", "evidential" or callable, optional
        None picks ``"evidential"`` for an evidential head and ``"cross_entropy"`` otherwise. A
        callable ``f(model_indices (B, M), outputs (B, M)) -> (B,) or scalar`` replaces it.
    kl_weight : float, default 0.01
        Weight of the Dirichlet KL regularizer of the evidential loss.
    standardize : bool, default True
        Standardize the conditions per feature with statistics that the Trainer estimates from
        the training data (see :mod:`amortflow.amortizers.standardization`).
    """

    STANDARDIZED_KEYS = ("summary_conditions", "direct_conditions")

    def __init__(self, inference_net, summary_net=None, loss_fun=None, kl_weight: float = 0.01,
                 standardize: bool = True, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self.inference_net = maybe_deserialize(inference_net)
        self.summary_net = maybe_deserialize(summary_net)
        loss_fun = maybe_deserialize(loss_fun)
        if loss_fun is None:
            loss_fun = "evidential" if self.head == "evidential" else "cross_entropy"
        if not (loss_fun in _LOSSES or callable(loss_fun)):
            raise ArgumentError(f"loss_fun must be None, one of {_LOSSES} or a callable, received {loss_fun!r}.")
        if loss_fun == "evidential" and self.head != "evidential":
            raise ArgumentError("loss_fun='evidential' needs a classifier with head='evidential' (outputs alpha).")
        if loss_fun == "cross_entropy" and self.head == "evidential":
            raise ArgumentError("loss_fun='cross_entropy' needs softmax logits; the classifier has head='evidential'.")
        if not kl_weight >= 0:
            raise ArgumentError(f"kl_weight must be >= 0, received {kl_weight!r}.")
        self.loss_fun = loss_fun
        self.kl_weight = float(kl_weight)
        self._init_standardization(standardize)

    @property
    def head(self) -> str:
        """``"softmax"`` or ``"evidential"`` (from the classifier)."""
        return getattr(self.inference_net, "head", "softmax")

    @property
    def num_models(self) -> int | None:
        return getattr(self.inference_net, "num_models", None)

    # --- forward and loss ---------------------------------------------------------------
    def _conditions(self, input_dict: Mapping, training: bool = False) -> tf.Tensor:
        condition, _ = self.summarize(input_dict, training)
        if condition is None:
            raise ConfigurationError(
                "AmortizedModelComparison needs data: 'summary_conditions' (with a summary_net) and/or "
                f"'direct_conditions'; received keys {sorted(k for k in input_dict if input_dict[k] is not None)}."
            )
        return condition

    @checked("model_comparison.call")
    def call(self, input_dict, training=False):
        """Classifier outputs ``(B, M)``: logits (softmax head) or concentrations ``alpha`` (evidential)."""
        check_input_dict("AmortizedModelComparison", input_dict)
        self._remember_inputs({k: v for k, v in input_dict.items() if k != "model_indices"})
        return self.inference_net(self._conditions(input_dict, training), training=training)

    def _one_hot(self, model_indices, num_models: int) -> tf.Tensor:
        indices = tf.convert_to_tensor(model_indices)
        if indices.shape.rank == 1:
            return tf.one_hot(tf.cast(indices, tf.int32), num_models)
        if indices.shape.rank != 2 or indices.shape[-1] != num_models:
            raise ShapeError(
                f"input_dict['model_indices'] must be one-hot (B, {num_models}) or integer (B,), "
                f"received {describe_shape(model_indices)}."
            )
        return as_float(indices, "model_indices")

    def compute_loss(self, input_dict, training=False):
        """Mean loss over the batch (scalar tensor); see the module docstring."""
        check_input_dict("AmortizedModelComparison", input_dict, ("model_indices",))
        outputs = self(input_dict, training=training)
        y = self._one_hot(input_dict["model_indices"], int(outputs.shape[-1]))
        if self.loss_fun == "cross_entropy":
            per_row = -tf.reduce_sum(y * tf.nn.log_softmax(outputs, axis=-1), axis=-1)
        elif self.loss_fun == "evidential":
            per_row = evidential_loss(y, outputs, self.kl_weight)
        else:
            per_row = self.loss_fun(y, outputs)
        return tf.reduce_mean(per_row)

    # --- queries ------------------------------------------------------------------------
    @checked("model_comparison.posterior_probs")
    def posterior_probs(self, input_dict, batch_size: int | None = None, to_numpy: bool = True):
        """Posterior model probabilities ``(n_datasets, M)`` (rows sum to one)."""
        outputs = self._outputs_chunked(input_dict, batch_size)
        if self.head == "evidential":
            probs = outputs / tf.reduce_sum(outputs, axis=-1, keepdims=True)
        else:
            probs = tf.nn.softmax(outputs, axis=-1)
        return as_numpy(probs) if to_numpy else probs

    @checked("model_comparison.posterior_probs")
    def posterior_alphas(self, input_dict, batch_size: int | None = None, to_numpy: bool = True):
        """Dirichlet concentrations ``alpha`` ``(n_datasets, M)`` of an evidential head.

        ``alpha / sum(alpha)`` are the PMPs; ``sum(alpha)`` grows with the evidence in the data.
        """
        if self.head != "evidential":
            raise ArgumentError("posterior_alphas needs a classifier with head='evidential'.")
        outputs = self._outputs_chunked(input_dict, batch_size)
        return as_numpy(outputs) if to_numpy else outputs

    def _outputs_chunked(self, input_dict, batch_size):
        check_input_dict("AmortizedModelComparison.posterior_probs", input_dict)
        n = count_datasets(input_dict)
        step = datasets_per_call(batch_size)
        return tf.concat([self(slice_inputs(input_dict, a, b)) for a, b in chunk_ranges(n, step)], axis=0)

    # --- integration ---------------------------------------------------------------------
    def default_configurator(self, generative_model=None):
        """A :class:`~amortflow.configuration.DefaultModelComparisonConfigurator` for ``M`` models.

        ``M`` is ``generative_model.num_models`` (a ``MultiGenerativeModel``) or the classifier's.
        """
        from amortflow.configuration import DefaultModelComparisonConfigurator

        num_models = getattr(generative_model, "num_models", None) or self.num_models
        if num_models is None:
            raise ArgumentError("default_configurator needs a MultiGenerativeModel or a classifier with num_models.")
        if self.num_models is not None and num_models != self.num_models:
            raise ArgumentError(
                f"The generative model has {num_models} models but the classifier outputs {self.num_models}."
            )
        return DefaultModelComparisonConfigurator(num_models)

    def _build_from_record(self, record: Mapping) -> None:
        self(dummy_inputs(record))

    def get_config(self) -> dict[str, Any]:
        config = self._base_config()
        config.update(
            {
                "inference_net": keras.saving.serialize_keras_object(self.inference_net),
                "summary_net": maybe_serialize(self.summary_net),
                "loss_fun": maybe_serialize(self.loss_fun),
                "kl_weight": self.kl_weight,
            }
        )
        return config
