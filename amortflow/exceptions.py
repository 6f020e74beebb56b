"""Errors raised by amortflow.

Every message names what went wrong in the user's terms: the function or key,
the shape (or value) received and the shape expected.
"""

from __future__ import annotations


class AmortflowError(Exception):
    """Base class of all amortflow errors."""


class SimulationError(AmortflowError):
    """A prior, context generator or simulator failed or returned invalid values (NaN, inf, non-numeric)."""


class ShapeError(AmortflowError, ValueError):
    """An array has a shape other than the one expected."""


class ConfigurationError(AmortflowError, ValueError):
    """A configurator could not turn simulations into network inputs, or an argument is invalid."""


class CheckpointError(AmortflowError):
    """A checkpoint folder is missing, empty, corrupt or does not match the amortizer."""


class ModelFileError(AmortflowError, OSError):
    """A saved amortizer (``.keras`` file) is missing, truncated, corrupt or not a Keras archive."""


class TrainerBusyError(AmortflowError, RuntimeError):
    """A ``train_*`` call started while another one was running on the same Trainer (e.g. in another thread)."""


class NonFiniteLossError(AmortflowError, FloatingPointError):
    """Training produced too many NaN or inf losses in a row."""


class ArgumentError(AmortflowError, ValueError):
    """An argument has an invalid value."""


def describe_shape(value) -> str:
    """Return a short description of ``value``'s shape and type for error messages."""
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"shape {tuple(shape)} ({getattr(value, 'dtype', type(value).__name__)})"
    return f"a {type(value).__name__}"


class DataError(AmortflowError, ValueError):
    """A folder of presimulated shards is missing, corrupt, or inconsistent with its manifest."""


class SamplingError(AmortflowError, RuntimeError):
    """Sampling could not deliver the requested draws (e.g. too few posterior draws inside the prior's bounds)."""


class NonFiniteInputError(AmortflowError, ValueError):
    """An inference input (observation, condition or parameter) holds NaN or inf values."""


class NonFiniteOutputError(AmortflowError, ArithmeticError):
    """A network returned NaN or inf for finite inputs (overflow, usually far outside the training data)."""
