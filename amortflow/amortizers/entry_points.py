"""The public inference methods of the amortizers and how each checks its input and output.

:func:`checked` decorates a method (``sample``, ``log_posterior``, ``log_likelihood``,
``log_ratio``, ``posterior_probs``, ``call``): its input goes through the checks of
:mod:`amortflow.amortizers.input_checks` chosen by :data:`ENTRY_POINTS` before any
TensorFlow op, its output through :func:`~amortflow.amortizers.input_checks.check_output`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import tensorflow as tf

from amortflow._checks import check_choice
from amortflow.amortizers.base import check_input_dict
from amortflow.amortizers.input_checks import NONFINITE_CHOICES, check_array, check_inputs, check_output
from amortflow.exceptions import ConfigurationError


@dataclass(frozen=True)
class EntryPoint:
    """How one public method's input is checked: ``check(amortizer, owner, inputs, values, nonfinite)``."""

    check: Callable
    allow_neg_inf: bool = False  # log densities may be -inf (zero density)
    drops: bool = True  # offers nonfinite="drop"


def _conditions(amortizer, owner, inputs, values, nonfinite):
    return check_inputs(amortizer, owner, inputs, values=values, nonfinite=nonfinite)


def _with_parameters(amortizer, owner, inputs, values, nonfinite):
    return check_inputs(amortizer, owner, inputs, row_keys=("parameters",), values=values, nonfinite=nonfinite)


def _log_posterior(amortizer, owner, inputs, values, nonfinite):
    return check_inputs(amortizer, owner, inputs, row_keys=("parameters",), draws_key="parameters",
                        values=values, nonfinite=nonfinite)  # fmt: skip


def _likelihood(amortizer, owner, inputs, values, nonfinite):
    return check_inputs(amortizer, owner, inputs, keys=(), row_keys=("observables", "conditions"),
                        values=values, nonfinite=nonfinite)  # fmt: skip


def _likelihood_conditions(amortizer, owner, conditions, values, nonfinite):
    if isinstance(conditions, Mapping):
        conditions = check_input_dict(owner, conditions, ("conditions",))["conditions"]
    if conditions is None:
        raise ConfigurationError(f"{owner} needs conditions (B, D); received None.")
    return check_array(amortizer, owner, "conditions", conditions, values=values)


ENTRY_POINTS = {
    "posterior.call": EntryPoint(_with_parameters, drops=False),
    "posterior.log_posterior": EntryPoint(_log_posterior, allow_neg_inf=True),
    "posterior.sample": EntryPoint(_conditions),
    "likelihood.call": EntryPoint(_likelihood, drops=False),
    "likelihood.log_likelihood": EntryPoint(_likelihood, allow_neg_inf=True),
    "likelihood.sample": EntryPoint(_likelihood_conditions, drops=False),
    "ratio.call": EntryPoint(_with_parameters, drops=False),
    "ratio.log_ratio": EntryPoint(_with_parameters, allow_neg_inf=True),
    "model_comparison.call": EntryPoint(_conditions, drops=False),
    "model_comparison.posterior_probs": EntryPoint(_conditions),
}


def check_nonfinite_choice(nonfinite: str) -> str:
    """``nonfinite`` if it is ``"raise"`` or ``"drop"``, else an :class:`ArgumentError`."""
    return check_choice("nonfinite", nonfinite, NONFINITE_CHOICES)


def checked(entry_point: str):
    """Decorate a public method ``method(self, inputs, ...)``: check ``inputs`` first, the output last.

    A ``call`` method (also the training forward pass) skips the value checks with
    ``training=True``: non-finite training batches are the trainer's to skip. Other calls leave
    the record of trained shapes as it was. Methods that can
    drop non-finite set elements get the keyword argument ``nonfinite="raise" | "drop"``.
    """
    spec = ENTRY_POINTS[entry_point]

    def decorate(method):
        is_call = method.__name__ == "call"

        @functools.wraps(method)
        def wrapper(self, inputs, *args, **kwargs):
            nonfinite = check_nonfinite_choice(kwargs.pop("nonfinite", "raise")) if spec.drops else "raise"
            if not tf.executing_eagerly():  # a trace (training): shapes are symbolic, values unknown
                return method(self, inputs, *args, **kwargs)
            owner = f"{type(self).__name__}.{'__call__' if is_call else method.__name__}"
            training = bool(kwargs.get("training", args[0] if is_call and args else False))
            inputs = spec.check(self, owner, inputs, not training, nonfinite)
            # A query does not widen the record of trained shapes (only a first call without one sets it).
            trained = None if training or not getattr(self, "_input_axes", None) else dict(self._input_axes)
            try:
                result = method(self, inputs, *args, **kwargs)
            finally:
                if trained is not None:
                    self._input_axes = trained
            return result if training else check_output(owner, result, spec.allow_neg_inf)

        if spec.drops:
            _add_nonfinite_parameter(wrapper, method)
        return wrapper

    return decorate


def _add_nonfinite_parameter(wrapper, method) -> None:
    """Show ``nonfinite`` in the signature and the docstring of a decorated method."""
    signature = inspect.signature(method)
    extra = inspect.Parameter("nonfinite", inspect.Parameter.KEYWORD_ONLY, default="raise", annotation="str")
    params = [p for p in signature.parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
    wrapper.__signature__ = signature.replace(parameters=[*params, extra])
    wrapper.__doc__ = (method.__doc__ or "") + (
        "\n\n        Inputs are checked first (:mod:`amortflow.amortizers.input_checks`); "
        "``nonfinite=\"drop\"`` drops set elements holding NaN or inf instead of raising.\n"
    )
