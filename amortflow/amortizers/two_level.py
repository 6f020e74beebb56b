"""Two-level (hierarchical) neural posterior estimation: global parameters and one local vector per group.

For data ``x = (x_1, ..., x_G)`` in ``G`` groups, global parameters ``gamma = (eta, phi)``
(hyperparameters and shared parameters) and local parameters ``theta_g``, the joint posterior
factorizes because ``theta_g`` depends on the other groups only through ``gamma``:

``p(gamma, theta_1..G | x) = p(gamma | x) prod_g p(theta_g | x_g, gamma)``.

A summary network ``h`` (a two-level :class:`~amortflow.networks.HierarchicalNetwork`) gives
each group's summary ``s_g = h_1(x_g)`` and the all-groups summary ``s = h_2(s_1..G)``. The
global posterior ``q(gamma | s, c)`` and the local posterior ``q(theta_g | s_g, c, gamma)``
(``c`` the direct conditions, e.g. ``sqrt(G), sqrt(N)``) are trained together on simulations by

``L = -E[ log q(gamma | s, c) + sum_g log q(theta_g | s_g, c, gamma) ]``,

the negative joint log density, with the true ``gamma`` as the local condition. Sampling is
ancestral: ``gamma^(j) ~ q(gamma | s, c)``, then ``theta_g^(j) ~ q(theta_g | s_g, c, gamma^(j))``,
which gives draws of the joint posterior (Habermann et al. 2024, "Amortized Bayesian multilevel
models", arXiv:2408.13230).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from amortflow._checks import SAME_GROUP_SIZE, numeric_array, positive_int
from amortflow.amortizers.base import (
    MAX_DATASETS_PER_CHUNK,
    Amortizer,
    SeedStream,
    as_float,
    as_matrix,
    check_input_dict,
    chunk_ranges,
    dummy_inputs,
    maybe_deserialize,
    to_numpy,
)
from amortflow.amortizers.posterior import AmortizedPosterior
from amortflow.amortizers.standardization import adapt_standardizers
from amortflow.exceptions import ArgumentError, ShapeError, describe_shape
from amortflow.networks.summary.hierarchical import HierarchicalNetwork

_TRAINING_KEYS = ("summary_conditions", "global_parameters", "local_parameters")


@keras.saving.register_keras_serializable(package="amortflow")
class TwoLevelAmortizedPosterior(Amortizer):
    """Joint amortized posterior of global (hyper + shared) and local (per-group) parameters.

    Inputs (see :class:`~amortflow.amortizers.DefaultTwoLevelConfigurator`):
    ``summary_conditions (B, G, N, d)``, optional ``direct_conditions (B, k)``,
    ``global_parameters (B, H + S)`` and ``local_parameters (B, G, L)`` (the parameters only
    for training and densities). ``G`` and ``N`` may differ between batches and data sets calls.

    Parameters
    ----------
    local_amortizer : AmortizedPosterior
        Without a summary network; its inference network has ``L`` parameters. Its condition is
        ``[s_g, c, gamma]`` (``gamma`` in the global amortizer's standardized units).
    global_amortizer : AmortizedPosterior
        Without a summary network; its inference network has ``H + S`` parameters, condition ``[s, c]``.
    summary_net : HierarchicalNetwork
        With two networks: the first summarises each group's ``N`` observations, the second the groups.
    standardize : bool, default True
        Standardize the observations and direct conditions (per feature, pooled over groups and
        observations). The parameters are standardized by the two amortizers' own ``parameters``
        standardizers (with their ``standardize`` setting); their condition standardizers stay the
        identity, because their conditions are learned summaries.

    Examples
    --------
    >>> net = af.networks.HierarchicalNetwork([af.networks.DeepSet(summary_dim=8), af.networks.DeepSet(summary_dim=8)])
    >>> amortizer = TwoLevelAmortizedPosterior(
    ...     af.amortizers.AmortizedPosterior(af.networks.InvertibleNetwork(num_params=2)),
    ...     af.amortizers.AmortizedPosterior(af.networks.InvertibleNetwork(num_params=3)), summary_net=net)
    >>> out = amortizer.sample(conf, n_samples=500)   # {"global_samples": (n_datasets, 500, 3), ...}
    """

    STANDARDIZED_KEYS = ("summary_conditions", "direct_conditions")

    def __init__(self, local_amortizer, global_amortizer, summary_net=None, standardize: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.local_amortizer = _check_part("local_amortizer", maybe_deserialize(local_amortizer))
        self.global_amortizer = _check_part("global_amortizer", maybe_deserialize(global_amortizer))
        summary_net = maybe_deserialize(summary_net)
        if not isinstance(summary_net, HierarchicalNetwork) or len(summary_net.networks) != 2:
            raise ArgumentError(
                "TwoLevelAmortizedPosterior(summary_net=...) must be a HierarchicalNetwork of two networks "
                f"(within groups, across groups); received {_describe_net(summary_net)}."
            )
        self.summary_net = summary_net
        self._init_standardization(standardize)

    @property
    def num_global_params(self) -> int:
        return self.global_amortizer.num_params

    @property
    def num_local_params(self) -> int:
        return self.local_amortizer.num_params

    # --- standardization ------------------------------------------------------------------
    def _parameter_standardizers(self) -> list:
        return [layer for part in (self.global_amortizer, self.local_amortizer)
                if (layer := part.standardizers.get("parameters")) is not None]  # fmt: skip

    @property
    def standardization_pending(self) -> bool:
        """True when the data, direct-condition or parameter standardizers still need statistics."""
        layers = list(self.standardizers.values()) + self._parameter_standardizers()
        return any(layer.built and not layer.is_adapted for layer in layers)

    def adapt_standardization(self, input_dict: Mapping) -> list[str]:
        """Statistics of the data, direct conditions and both levels' parameters; returns the keys adapted."""
        keys = adapt_standardizers(self.standardizers, input_dict)
        for key, part in (("global_parameters", self.global_amortizer), ("local_parameters", self.local_amortizer)):
            layer = part.standardizers.get("parameters")
            if layer is not None and input_dict.get(key) is not None and not layer.is_adapted:
                layer.adapt(input_dict[key])
                keys.append(key)
        return keys

    # --- conditions -------------------------------------------------------------------------
    def summaries(self, input_dict: Mapping, training: bool = False):
        """``(group summaries (B, G, s1), global condition (B, s2 + k), direct conditions (B, k) or None)``."""
        data = as_float(input_dict["summary_conditions"], "summary_conditions")
        if data.shape.rank != 4:
            raise ShapeError(
                f"input_dict['summary_conditions'] must have shape (B, G, N, d), received {describe_shape(data)}."
            )
        data = self._standardized("summary_conditions", data)
        group_summaries, summary = self.summary_net(data, training=training, return_all=True)
        direct = input_dict.get("direct_conditions")
        if direct is None:
            return group_summaries, summary, None
        direct = self._standardized("direct_conditions", as_matrix(direct, "direct_conditions"))
        return group_summaries, tf.concat([summary, direct], axis=-1), direct

    def _local_condition(self, group_summaries, direct, global_values):
        """Local conditions ``(B * G, s1 + k + H + S)``: ``[s_g, c, gamma]`` with ``gamma`` standardized."""
        per_dataset = self.global_amortizer._standardized("parameters", global_values)
        if direct is not None:
            per_dataset = tf.concat([direct, per_dataset], axis=-1)
        groups = tf.shape(group_summaries)[1]
        tiled = tf.repeat(per_dataset[:, None, :], groups, axis=1)
        condition = tf.concat([group_summaries, tiled], axis=-1)
        return tf.reshape(condition, (-1, condition.shape[-1]))

    # --- loss and densities -----------------------------------------------------------------
    def _checked_parameters(self, input_dict: Mapping, group_summaries):
        global_values = as_matrix(input_dict["global_parameters"], "global_parameters")
        if global_values.shape[-1] != self.num_global_params:
            raise ShapeError(
                f"input_dict['global_parameters'] must have shape (B, {self.num_global_params}), "
                f"received {describe_shape(input_dict['global_parameters'])}."
            )
        local = as_float(input_dict["local_parameters"], "local_parameters")
        if local.shape.rank == 2:
            local = local[..., None]
        groups = group_summaries.shape[1]
        if local.shape.rank != 3 or local.shape[-1] != self.num_local_params or (
            groups is not None and local.shape[1] is not None and local.shape[1] != groups
        ):
            raise ShapeError(
                f"input_dict['local_parameters'] must have shape (B, {groups}, {self.num_local_params}) "
                f"(groups as in summary_conditions), received {describe_shape(input_dict['local_parameters'])}."
            )
        return global_values, local

    def _log_prob_tensors(self, input_dict: Mapping, training: bool = False):
        """``(log q(gamma | x) (B,), log q(theta_g | x_g, gamma) (B, G))``."""
        check_input_dict("TwoLevelAmortizedPosterior", input_dict, _TRAINING_KEYS)
        self._remember_inputs(input_dict)
        group_summaries, global_condition, direct = self.summaries(input_dict, training)
        global_values, local = self._checked_parameters(input_dict, group_summaries)
        log_global, _ = self.global_amortizer._log_prob_tensor(
            {"parameters": global_values, "direct_conditions": global_condition}, training)
        condition = self._local_condition(group_summaries, direct, global_values)
        flat = tf.reshape(local, (-1, self.num_local_params))
        log_local, _ = self.local_amortizer._log_prob_tensor({"parameters": flat, "direct_conditions": condition}, training)
        return log_global, tf.reshape(log_local, tf.shape(local)[:2])

    def compute_loss(self, input_dict, training=False):
        """Negative joint log posterior: ``-mean_B [log q(gamma | x) + sum_g log q(theta_g | x_g, gamma)]``."""
        log_global, log_local = self._log_prob_tensors(input_dict, training)
        return -tf.reduce_mean(log_global) - tf.reduce_mean(tf.reduce_sum(log_local, axis=1))

    def call(self, input_dict, training=False):
        """``(log q(gamma | x) (B,), log q(theta_g | x_g, gamma) (B, G))`` as tensors."""
        return self._log_prob_tensors(input_dict, training)

    def log_posterior(self, input_dict, batch_size: int | None = None) -> np.ndarray:
        """Joint log density ``log q(gamma | x) + sum_g log q(theta_g | x_g, gamma)``, numpy ``(n_datasets,)``."""
        check_input_dict("TwoLevelAmortizedPosterior.log_posterior", input_dict, _TRAINING_KEYS)
        input_dict = _rectangular_data(input_dict, "log_posterior")
        step = MAX_DATASETS_PER_CHUNK if batch_size is None else positive_int("batch_size", batch_size)
        pieces = []
        for start, stop in chunk_ranges(len(input_dict["summary_conditions"]), step):
            chunk = {k: None if v is None else v[start:stop] for k, v in input_dict.items()}
            log_global, log_local = self._log_prob_tensors(chunk)
            pieces.append(to_numpy(log_global + tf.reduce_sum(log_local, axis=1)))
        return np.concatenate(pieces)

    def log_prob(self, input_dict, batch_size: int | None = None) -> np.ndarray:
        """Alias of :meth:`log_posterior`."""
        return self.log_posterior(input_dict, batch_size=batch_size)

    # --- sampling ---------------------------------------------------------------------------
    def sample(self, input_dict, n_samples: int, batch_size: int | None = None, seed: int | None = None,
               squeeze: bool = False, progress: bool | None = None) -> dict:  # fmt: skip
        """Ancestral draws from the joint posterior of every data set.

        Parameters
        ----------
        input_dict : dict
            ``summary_conditions (n_datasets, G, N, d)`` and, if trained with them,
            ``direct_conditions``; parameters are ignored.
        n_samples : int
            Joint draws per data set.
        batch_size : int, optional
            At most this many data sets per summary-network call.
        seed : int, optional
            Makes the draws repeatable (also after saving and loading).
        squeeze : bool, default False
            Drop the data-set axis when there is exactly one data set.
        progress : bool, optional
            Show the two amortizers' progress bars; by default only for calls with many chunks
            (the local level draws once for each of ``n_datasets * n_samples`` global draws).

        Returns
        -------
        dict
            ``{"global_samples": (n_datasets, n_samples, H + S), "local_samples": (n_datasets, n_samples, G, L)}``;
            draw ``j`` of ``local_samples`` was drawn given draw ``j`` of ``global_samples``.
        """
        check_input_dict("TwoLevelAmortizedPosterior.sample", input_dict, ("summary_conditions",))
        input_dict = _rectangular_data(input_dict, "sample")
        n_samples = positive_int("n_samples", n_samples)
        seeds = SeedStream(seed)
        step = MAX_DATASETS_PER_CHUNK if batch_size is None else positive_int("batch_size", batch_size)
        data = input_dict["summary_conditions"]
        global_parts, local_parts = [], []
        for start, stop in chunk_ranges(len(data), step):
            chunk = {k: None if input_dict.get(k) is None else input_dict[k][start:stop]
                     for k in ("summary_conditions", "direct_conditions")}  # fmt: skip
            draws_global, draws_local = self._sample_chunk(chunk, n_samples, seeds, progress)
            global_parts.append(draws_global)
            local_parts.append(draws_local)
        out = {"global_samples": np.concatenate(global_parts), "local_samples": np.concatenate(local_parts)}
        if squeeze and len(data) == 1:
            out = {key: value[0] for key, value in out.items()}
        return out

    def _sample_chunk(self, chunk: Mapping, n_samples: int, seeds: SeedStream, progress: bool | None):
        group_summaries, global_condition, direct = self.summaries(chunk)
        n_datasets, groups = int(group_summaries.shape[0]), int(group_summaries.shape[1])
        draws_global = self.global_amortizer.sample(
            {"direct_conditions": to_numpy(global_condition)}, n_samples, seed=seeds(), progress=progress)
        # Each data set's summaries once per global draw: rows (dataset, draw).
        flat_global = tf.constant(draws_global.reshape(n_datasets * n_samples, -1))
        repeated_groups = tf.repeat(group_summaries, n_samples, axis=0)
        repeated_direct = None if direct is None else tf.repeat(direct, n_samples, axis=0)
        condition = self._local_condition(repeated_groups, repeated_direct, flat_global)
        draws_local = self.local_amortizer.sample({"direct_conditions": to_numpy(condition)}, 1, seed=seeds(),
                                                   progress=progress)
        return draws_global, draws_local.reshape(n_datasets, n_samples, groups, self.num_local_params)

    # --- integration --------------------------------------------------------------------------
    def default_configurator(self, generative_model=None):
        """The :class:`~amortflow.amortizers.DefaultTwoLevelConfigurator` (``generative_model`` is not needed)."""
        from amortflow.amortizers.two_level_configurator import DefaultTwoLevelConfigurator

        return DefaultTwoLevelConfigurator()

    def _build_from_record(self, record: Mapping) -> None:
        self.compute_loss(dummy_inputs(record))

    def get_config(self) -> dict[str, Any]:
        config = self._base_config()
        config.update(
            {
                "local_amortizer": keras.saving.serialize_keras_object(self.local_amortizer),
                "global_amortizer": keras.saving.serialize_keras_object(self.global_amortizer),
                "summary_net": keras.saving.serialize_keras_object(self.summary_net),
            }
        )
        return config


def _rectangular_data(input_dict: Mapping, method: str) -> dict:
    """``input_dict`` with its data as one array; ragged groups (lists of different sizes) are a ShapeError."""
    data = input_dict["summary_conditions"]
    if tf.is_tensor(data):
        return dict(input_dict)
    data = numeric_array(data, f"TwoLevelAmortizedPosterior.{method}: input_dict['summary_conditions']", error=ShapeError,
                         expected=f"shape (n_datasets, G, N, d) {SAME_GROUP_SIZE}")  # fmt: skip
    return {**input_dict, "summary_conditions": data}


def _describe_net(net) -> str:
    if isinstance(net, HierarchicalNetwork):
        return f"a HierarchicalNetwork of {len(net.networks)} networks"
    return "None" if net is None else type(net).__name__


def _check_part(role: str, part) -> AmortizedPosterior:
    if not isinstance(part, AmortizedPosterior):
        raise ArgumentError(f"TwoLevelAmortizedPosterior({role}=...) must be an AmortizedPosterior, received {type(part).__name__}.")
    if part.summary_net is not None:
        raise ArgumentError(
            f"TwoLevelAmortizedPosterior({role}=...) must have no summary_net (the two-level summary_net "
            f"summarises the data), received one with {type(part.summary_net).__name__}."
        )
    return part
