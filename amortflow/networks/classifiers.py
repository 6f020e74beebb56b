"""Classifier networks for neural ratio estimation and Bayesian model comparison.

* :class:`RatioClassifier` maps a pair ``(theta, x_summary)`` to one logit. Trained to tell
  joint pairs ``(theta, x) ~ p(theta, x)`` from marginal pairs ``~ p(theta) p(x)`` with the
  logistic loss, its optimal logit is ``log p(x | theta) / p(x)`` (Hermans, Begy & Louppe
  2020, "Likelihood-free MCMC with amortized approximate ratio estimators", ICML).
* :class:`ModelClassifier` maps data summaries to ``num_models`` outputs: softmax logits
  whose softmax approximates the posterior model probabilities (PMPs), or the concentrations
  ``alpha = softplus(logits) + 1`` of a Dirichlet over PMPs (evidential head; Radev, D'Alessandro,
  Mertens, Voss, Koethe & Buerkner 2021, "Amortized Bayesian model comparison with
  evidential deep learning", IEEE TNNLS).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from amortflow._checks import check_choice
from amortflow.exceptions import ArgumentError, ShapeError, describe_shape

_HEADS = ("softmax", "evidential")


@keras.saving.register_keras_serializable(package="amortflow")
class ClassifierMLP(keras.layers.Layer):
    """Dense hidden layers (with optional dropout) followed by a linear output of ``num_outputs`` units."""

    def __init__(
        self,
        num_outputs: int,
        hidden_units: Sequence[int] = (128, 128),
        activation: str = "swish",
        dropout: float = 0.0,
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0.0 <= dropout < 1.0:
            raise ArgumentError(f"dropout must lie in [0, 1), received {dropout!r}.")
        self.num_outputs = int(num_outputs)
        self.hidden_units = [int(u) for u in hidden_units]
        self.activation = activation
        self.dropout = float(dropout)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.hidden_layers = [
            keras.layers.Dense(u, activation=activation, kernel_regularizer=self.kernel_regularizer, name=f"hidden_{j}")
            for j, u in enumerate(self.hidden_units)
        ]
        self.dropout_layers = [keras.layers.Dropout(self.dropout) for _ in self.hidden_units] if self.dropout else []
        self.output_layer = keras.layers.Dense(self.num_outputs, name="output")

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.hidden_layers:
            layer.build(shape)
            shape = shape[:-1] + (layer.units,)
        self.output_layer.build(shape)
        self.built = True

    def call(self, inputs, training=False):
        h = inputs
        for j, layer in enumerate(self.hidden_layers):
            h = layer(h)
            if self.dropout_layers:
                h = self.dropout_layers[j](h, training=training)
        return self.output_layer(h)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_outputs": self.num_outputs,
                "hidden_units": list(self.hidden_units),
                "activation": self.activation,
                "dropout": self.dropout,
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            }
        )
        return config


def _check_rank2(name: str, value) -> None:
    if len(value.shape) != 2:
        raise ShapeError(f"{name} must have shape (B, k), received {describe_shape(value)}.")


@keras.saving.register_keras_serializable(package="amortflow")
class RatioClassifier(keras.layers.Layer):
    """MLP from concatenated ``[parameters, conditions]`` to one logit ``(B,)`` ≈ ``log p(x|theta)/p(x)``.

    Parameters
    ----------
    hidden_units : sequence of int, default (128, 128)
    activation : str, default "swish"
    dropout : float, default 0.0
        Dropout rate after each hidden layer (active in training only).
    kernel_regularizer : optional
        A Keras regularizer (or its name) for the hidden kernels.

    Examples
    --------
    >>> import numpy as np
    >>> from amortflow.networks.classifiers import RatioClassifier
    >>> clf = RatioClassifier(hidden_units=(32, 32))
    >>> tuple(clf(np.zeros((8, 2), "float32"), np.zeros((8, 5), "float32")).shape)
    (8,)
    """

    def __init__(
        self,
        hidden_units: Sequence[int] = (128, 128),
        activation: str = "swish",
        dropout: float = 0.0,
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.mlp = ClassifierMLP(1, hidden_units, activation, dropout, kernel_regularizer, name="mlp")

    def build(self, parameters_shape, conditions_shape):
        self.mlp.build((None, int(parameters_shape[-1]) + int(conditions_shape[-1])))
        self.built = True

    def call(self, parameters, conditions, training=False):
        """Return logits ``(B,)`` for pairs ``(parameters (B, D), conditions (B, k))``."""
        parameters = tf.convert_to_tensor(parameters)
        conditions = tf.convert_to_tensor(conditions, dtype=parameters.dtype)
        _check_rank2("parameters", parameters)
        _check_rank2("conditions", conditions)
        features = tf.concat([parameters, conditions], axis=-1)
        return self.mlp(features, training=training)[:, 0]

    def get_config(self):
        config = super().get_config()
        mlp = self.mlp.get_config()
        config.update({key: mlp[key] for key in ("hidden_units", "activation", "dropout", "kernel_regularizer")})
        return config


@keras.saving.register_keras_serializable(package="amortflow")
class ModelClassifier(keras.layers.Layer):
    """MLP from data summaries ``(B, k)`` to ``num_models`` outputs for model comparison.

    ``head="softmax"``: ``call`` returns logits and ``posterior_probs = softmax(logits)``.
    ``head="evidential"``: ``call`` returns Dirichlet concentrations ``alpha = softplus(logits) + 1``
    (``alpha_m >= 1``) and ``posterior_probs = alpha / sum(alpha)``, the Dirichlet mean; the total
    ``sum(alpha)`` measures how much evidence the data carry (Radev et al. 2021).

    Parameters
    ----------
    num_models : int
        Number of competing models ``M`` (>= 2).
    hidden_units : sequence of int, default (128, 128)
    activation : str, default "swish"
    dropout : float, default 0.0
    kernel_regularizer : optional
    head : {"softmax", "evidential"}, default "softmax"

    Examples
    --------
    >>> import numpy as np
    >>> from amortflow.networks.classifiers import ModelClassifier
    >>> clf = ModelClassifier(num_models=3, hidden_units=(16,), head="evidential")
    >>> alpha = clf(np.zeros((5, 4), "float32"))      # Dirichlet concentrations, all >= 1
    >>> probs = clf.posterior_probs(np.zeros((5, 4), "float32"))
    >>> tuple(alpha.shape), bool(np.allclose(np.sum(probs, axis=1), 1.0))
    ((5, 3), True)
    """

    def __init__(
        self,
        num_models: int,
        hidden_units: Sequence[int] = (128, 128),
        activation: str = "swish",
        dropout: float = 0.0,
        kernel_regularizer=None,
        head: str = "softmax",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(num_models) < 2:
            raise ArgumentError(f"ModelClassifier needs num_models >= 2, received {num_models!r}.")
        check_choice("head", head, _HEADS)
        self.num_models = int(num_models)
        self.head = head
        self.mlp = ClassifierMLP(self.num_models, hidden_units, activation, dropout, kernel_regularizer, name="mlp")

    def build(self, input_shape):
        self.mlp.build((None, int(input_shape[-1])))
        self.built = True

    def call(self, conditions, training=False):
        """Logits ``(B, M)`` (softmax head) or concentrations ``alpha (B, M)`` (evidential head)."""
        conditions = tf.convert_to_tensor(conditions)
        _check_rank2("conditions", conditions)
        logits = self.mlp(conditions, training=training)
        if self.head == "evidential":
            return tf.nn.softplus(logits) + 1.0
        return logits

    def posterior_probs(self, conditions, training=False):
        """Posterior model probabilities ``(B, M)``, rows summing to one."""
        outputs = self(conditions, training=training)
        if self.head == "evidential":
            return outputs / tf.reduce_sum(outputs, axis=-1, keepdims=True)
        return tf.nn.softmax(outputs, axis=-1)

    def get_config(self):
        config = super().get_config()
        mlp = self.mlp.get_config()
        config.update({key: mlp[key] for key in ("hidden_units", "activation", "dropout", "kernel_regularizer")})
        config.update({"num_models": self.num_models, "head": self.head})
        return config
