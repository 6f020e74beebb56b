"""Neural ratio estimation: a classifier whose logit approximates ``log r(x, theta) = log p(x | theta) / p(x)``.

Pairs ``(theta, x)`` from the joint ``p(theta, x)`` (the simulations) are contrasted with pairs
from the product of marginals ``p(theta) p(x)``, made by pairing each ``x`` with the
``theta`` of other simulations in the batch. Losses (``d = logit``):

* ``"nre_a"`` (Hermans, Begy & Louppe 2020, ICML): binary cross-entropy with the joint and the
  ``K = num_contrastive`` marginal pairs weighted equally,
  ``L = E_joint[softplus(-d)] + mean_k E_marginal[softplus(d_k)]``; optimum ``d = log r``.
* ``"nre_b"`` (Durkan, Murray & Papamakarios 2020, ICML): softmax over the true ``theta`` and
  ``K - 1`` contrastive ones, ``L = -E[d_1 - logsumexp(d_1..K)]``; optimum ``d = log r + c(x)``,
  an unknown data-dependent constant (harmless for MCMC on one ``x_obs``).
* ``"nre_c"`` (Miller, Weniger & Forré 2022, NeurIPS, "Contrastive neural ratio estimation"):
  ``K + 1`` classes; class 0 = all ``K`` candidates marginal, class ``k`` = candidate ``k`` joint.
  With ``gamma = K p(y=k) / p(y=0)`` and ``w = gamma / K`` the classifier is
  ``q(y=k) = w e^{d_k} / (1 + w sum_j e^{d_j})``, ``q(y=0) = 1 / (1 + w sum_j e^{d_j})``, and
  ``L = -gamma/(1+gamma) E[log q(y=1)] - 1/(1+gamma) E[log q(y=0)]``. The class-0 term fixes
  the normalization: the optimum is ``d = log r`` exactly (no constant) for finite ``gamma``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import keras
import tensorflow as tf

from amortflow._checks import check_choice, positive_int
from amortflow.amortizers.base import (
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
)
from amortflow.amortizers.base import to_numpy as as_numpy
from amortflow.amortizers.entry_points import checked
from amortflow.exceptions import ArgumentError, ConfigurationError, ShapeError, describe_shape

_LOSSES = ("nre_a", "nre_b", "nre_c")


@keras.saving.register_keras_serializable(package="amortflow")
class AmortizedRatio(Amortizer):
    """Amortized likelihood-to-evidence ratio ``r(x, theta) = p(x | theta) / p(x)``.

    Parameters
    ----------
    classifier_net : keras layer, optional
        ``classifier_net(parameters (B, D), conditions (B, k)) -> logits (B,)``; default
        :class:`amortflow.networks.RatioClassifier()`.
    summary_net : keras layer, optional
        Summarizes ``summary_conditions``; conditions are ``[summaries, direct_conditions]``.
    num_contrastive : int, default 1
        ``K``: marginal pairs per joint pair (``"nre_a"``), or candidates per classification
        problem (``"nre_b"``, ``"nre_c"``; ``"nre_b"`` needs ``K >= 2``). Batches with ``B > K``
        get ``K`` distinct partners per row; shorter ones (at least 2) reuse their ``B - 1`` others.
    loss : {"nre_a", "nre_b", "nre_c"}, default "nre_a"
        See the module docstring.
    gamma : float, default 1.0
        Odds of "some candidate is joint" versus "all marginal" in ``"nre_c"``.
    seed : int, default 0
        Seed of the in-batch shuffling that builds marginal pairs.
    standardize : bool, default True
        Standardize the parameters and conditions per feature with statistics that the Trainer
        estimates from the training data (see :mod:`amortflow.amortizers.standardization`).
    """

    def __init__(
        self,
        classifier_net=None,
        summary_net=None,
        num_contrastive: int = 1,
        loss: str = "nre_a",
        gamma: float = 1.0,
        seed: int = 0,
        standardize: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if classifier_net is None:
            from amortflow.networks.classifiers import RatioClassifier

            classifier_net = RatioClassifier()
        self.classifier_net = maybe_deserialize(classifier_net)
        self.summary_net = maybe_deserialize(summary_net)
        check_choice("loss", loss, _LOSSES)
        self.num_contrastive = positive_int("num_contrastive", num_contrastive)
        if loss == "nre_b" and self.num_contrastive < 2:
            raise ArgumentError(f"loss='nre_b' needs num_contrastive >= 2, received {num_contrastive!r}.")
        if not (isinstance(gamma, (int, float)) and gamma > 0 and math.isfinite(gamma)):
            raise ArgumentError(f"gamma must be a finite number > 0, received {gamma!r}.")
        self.loss = loss
        self.gamma = float(gamma)
        self.seed = int(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self._init_standardization(standardize)

    STANDARDIZED_KEYS = ("parameters", "summary_conditions", "direct_conditions")

    # --- logits ---------------------------------------------------------------------------
    def conditions(self, input_dict: Mapping, training: bool = False) -> tf.Tensor:
        """The classifier's data features ``[summary_net(summary_conditions), direct_conditions]`` (B, k)."""
        condition, _ = self.summarize(input_dict, training)
        if condition is None:
            raise ConfigurationError(
                "AmortizedRatio needs data: give 'summary_conditions' (with a summary_net) and/or "
                f"'direct_conditions'; received keys {sorted(k for k in input_dict if input_dict[k] is not None)}."
            )
        return condition

    def logits(self, parameters, conditions, training: bool = False) -> tf.Tensor:
        """Classifier logits ``(B,)`` for parameter rows and condition rows."""
        parameters = self._standardized("parameters", as_matrix(parameters, "parameters"))
        logits = self.classifier_net(parameters, conditions, training=training)
        return tf.reshape(logits, (-1,))

    @checked("ratio.call")
    def call(self, input_dict, training=False):
        """Logits ``d(theta, x)`` ``(B,)`` of the given pairs (``= log_ratio`` as a tensor)."""
        check_input_dict("AmortizedRatio", input_dict, ("parameters",))
        self._remember_inputs(input_dict)
        return self.logits(input_dict["parameters"], self.conditions(input_dict, training), training)

    # --- loss ----------------------------------------------------------------------------
    def _contrastive_indices(self, batch_size, training: bool = True) -> list[tf.Tensor]:
        """``K`` index vectors pairing row ``i`` with ``theta`` of another row (never ``i`` itself).

        A random permutation ``pi`` orders the batch; row ``i`` (at position ``pos_i``) gets
        ``pi[(pos_i + s_k) mod B]`` with shift ``s_k = 1 + (k - 1) mod (B - 1)`` for ``k = 1..K``:
        ``s_k = k`` when ``B > K``, so the partners are distinct from ``i`` and from each other; a
        shorter batch (an epoch's last one) cycles through its ``B - 1`` other rows instead of
        pairing a row with itself, which would teach the classifier that joint pairs are marginal.
        Training draws a new permutation per call; otherwise the permutation is fixed by ``seed``,
        so that a validation loss changes only with the weights. (With fresh pairs, NRE-B's
        validation loss on SIR moved by up to 0.02 between epochs, more than it improved over its
        last 30 epochs, so early stopping kept the epoch with the luckiest pairs.)
        """
        seed = self.seed_generator if training else self.seed
        order = keras.random.shuffle(tf.range(batch_size), seed=seed)
        position = tf.argsort(order)
        others = tf.maximum(batch_size - 1, 1)
        return [tf.gather(order, (position + 1 + k % others) % batch_size) for k in range(self.num_contrastive)]

    def compute_loss(self, input_dict, training=False):
        """The classification loss selected by ``loss`` (scalar tensor); see the module docstring."""
        check_input_dict("AmortizedRatio", input_dict, ("parameters",))
        self._remember_inputs(input_dict)
        parameters = as_matrix(input_dict["parameters"], "parameters")
        conditions = self.conditions(input_dict, training)
        batch_size = tf.shape(parameters)[0]
        if parameters.shape[0] == 1:
            raise ShapeError(
                "AmortizedRatio contrasts each simulation with the parameters of other simulations in "
                f"its batch and needs at least 2; received parameters {describe_shape(parameters)}."
            )
        joint = self.logits(parameters, conditions, training)
        shuffled = [tf.gather(parameters, idx) for idx in self._contrastive_indices(batch_size, training)]
        marginal = tf.stack([self.logits(theta, conditions, training) for theta in shuffled], axis=-1)  # (B, K)
        loss = self._classification_loss(joint, marginal)
        # A one-row batch inside a compiled step (shape unknown above) has no marginal pair: no signal.
        return loss * tf.cast(batch_size > 1, loss.dtype)

    def _classification_loss(self, joint, marginal) -> tf.Tensor:
        if self.loss == "nre_a":
            return tf.reduce_mean(tf.nn.softplus(-joint)) + tf.reduce_mean(tf.nn.softplus(marginal))
        candidates = tf.concat([joint[:, None], marginal[:, :-1]], axis=-1)  # true theta first
        if self.loss == "nre_b":
            return -tf.reduce_mean(joint - tf.reduce_logsumexp(candidates, axis=-1))
        return self._nre_c_loss(joint, candidates, marginal)

    def _nre_c_loss(self, joint, candidates, marginal) -> tf.Tensor:
        log_w = math.log(self.gamma / self.num_contrastive)
        zeros = tf.zeros_like(joint)[:, None]
        log_norm_joint = tf.reduce_logsumexp(tf.concat([zeros, log_w + candidates], axis=-1), axis=-1)
        log_norm_marginal = tf.reduce_logsumexp(tf.concat([zeros, log_w + marginal], axis=-1), axis=-1)
        log_q_joint = log_w + joint - log_norm_joint  # log q(y = 1 | true theta in slot 1)
        log_q_marginal = -log_norm_marginal  # log q(y = 0 | all candidates marginal)
        p_joint = self.gamma / (1.0 + self.gamma)
        return -tf.reduce_mean(p_joint * log_q_joint + (1.0 - p_joint) * log_q_marginal)

    # --- queries -------------------------------------------------------------------------
    @checked("ratio.log_ratio")
    def log_ratio(self, input_dict, batch_size: int | None = None, to_numpy: bool = True):
        """``log r(x, theta) ~ log p(x | theta) - log p(x)`` per pair, shape ``(B,)``.

        Exact in the optimum for ``"nre_a"`` and ``"nre_c"``; up to a constant in ``x`` for ``"nre_b"``.
        """
        check_input_dict("AmortizedRatio.log_ratio", input_dict, ("parameters",))
        self._remember_inputs(input_dict)
        n = count_datasets(input_dict, ("parameters", "summary_conditions", "direct_conditions"))
        step = datasets_per_call(batch_size)
        pieces = []
        for start, stop in chunk_ranges(n, step):
            chunk = slice_inputs(input_dict, start, stop, ("parameters", "summary_conditions", "direct_conditions"))
            pieces.append(self.logits(chunk["parameters"], self.conditions(chunk)))
        result = tf.concat(pieces, axis=0)
        return as_numpy(result) if to_numpy else result

    def log_ratio_tensor(self, parameters, conditions) -> tf.Tensor:
        """Graph-safe logits for precomputed ``conditions`` (B, k) (see :meth:`conditions`)."""
        return self.logits(parameters, conditions)

    # --- integration -----------------------------------------------------------------------
    def default_configurator(self, generative_model=None):
        """The :class:`~amortflow.configuration.DefaultPosteriorConfigurator` (same keys as posterior estimation)."""
        from amortflow.configuration import DefaultPosteriorConfigurator

        return DefaultPosteriorConfigurator()

    def _build_from_record(self, record: Mapping) -> None:
        inputs = dummy_inputs(record)
        self.logits(inputs["parameters"], self.conditions(inputs))

    def get_config(self) -> dict[str, Any]:
        config = self._base_config()
        config.update(
            {
                "classifier_net": keras.saving.serialize_keras_object(self.classifier_net),
                "summary_net": maybe_serialize(self.summary_net),
                "num_contrastive": self.num_contrastive,
                "loss": self.loss,
                "gamma": self.gamma,
                "seed": self.seed,
            }
        )
        return config
