"""What every amortizer shares: input checks, the network condition, chunking and save/load building.

The condition of an inference network or classifier is

``condition = concat([summary_net(summary_conditions), direct_conditions], axis=-1)``

where either part may be absent (then the condition is the other one, or ``None``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from amortflow._checks import positive_int, take_rows
from amortflow.amortizers.standardization import adapt_standardizers, make_standardizers
from amortflow.defaults import DEFAULT_SAMPLING_MAX_ROWS
from amortflow.exceptions import ArgumentError, ConfigurationError, ShapeError, describe_shape

#: Keys holding per-data-set conditions (sliced together when work is chunked over data sets).
CONDITION_KEYS = ("summary_conditions", "direct_conditions")

#: At most this many data sets go through a summary network at once (memory of set-valued data).
MAX_DATASETS_PER_CHUNK = 1024

#: Show a progress bar automatically from this many network calls on.
AUTO_PROGRESS_MIN_CHUNKS = 10


def check_input_dict(owner: str, input_dict: Any, required: tuple[str, ...] = ()) -> Mapping:
    """Raise unless ``input_dict`` is a mapping that holds every key in ``required`` (not None)."""
    if not isinstance(input_dict, Mapping):
        raise ConfigurationError(
            f"{owner} expects a dict of configured inputs, received {type(input_dict).__name__}."
        )
    missing = [key for key in required if input_dict.get(key) is None]
    if missing:
        raise ConfigurationError(
            f"{owner} needs the key(s) {missing} in its input dict; received keys {sorted(input_dict)}."
        )
    return input_dict


def as_float(value, name: str, min_rank: int = 1) -> tf.Tensor:
    """Convert ``value`` to a float32 tensor with at least ``min_rank`` axes (ShapeError otherwise)."""
    tensor = tf.convert_to_tensor(value)
    if not tensor.dtype.is_floating:
        tensor = tf.cast(tensor, tf.float32)
    elif tensor.dtype != tf.float32:
        tensor = tf.cast(tensor, tf.float32)
    if tensor.shape.rank is None or tensor.shape.rank < min_rank:
        raise ShapeError(f"{name} must have at least {min_rank} axes, received {describe_shape(value)}.")
    return tensor


def as_matrix(value, name: str) -> tf.Tensor:
    """``(B, k)`` float32 tensor; a vector ``(B,)`` becomes ``(B, 1)``."""
    tensor = as_float(value, name, min_rank=1)
    if tensor.shape.rank == 1:
        return tensor[:, None]
    if tensor.shape.rank != 2:
        raise ShapeError(f"{name} must have shape (B, k), received {describe_shape(value)}.")
    return tensor


def leading_dim(value) -> int | None:
    """The (static) first dimension of an array or tensor, or None if unknown."""
    shape = getattr(value, "shape", None)
    if shape is None or len(shape) == 0:
        return None
    first = shape[0]
    return None if first is None else int(first)


def count_datasets(input_dict: Mapping, keys: tuple[str, ...] = CONDITION_KEYS) -> int:
    """Number of data sets in ``input_dict``: the first axis of its conditions (1 when it has none)."""
    sizes = {key: leading_dim(input_dict.get(key)) for key in keys if input_dict.get(key) is not None}
    known = {size for size in sizes.values() if size is not None}
    if len(known) > 1:
        raise ShapeError(f"The conditions disagree on the number of data sets: {sizes}.")
    return known.pop() if known else 1


def slice_inputs(input_dict: Mapping, start: int, stop: int, keys: tuple[str, ...] = CONDITION_KEYS) -> dict:
    """The data sets ``start:stop`` of the ``keys`` of ``input_dict`` (None stays None)."""
    return {key: take_rows(input_dict.get(key), slice(start, stop)) for key in keys}


def plan_chunks(n_datasets: int, n_samples: int, batch_size: int | None, max_rows: int) -> tuple[int, int]:
    """Data sets and draws per network call so that one call handles at most ``max_rows`` rows.

    Returns ``(datasets_per_chunk, draws_per_chunk)``. ``batch_size`` caps the data sets per call.
    """
    draws = min(n_samples, max_rows)
    datasets = max(1, min(max_rows // draws, MAX_DATASETS_PER_CHUNK))
    if batch_size is not None:
        datasets = min(datasets, positive_int("batch_size", batch_size))
    return min(datasets, n_datasets), draws


def datasets_per_call(batch_size: int | None, default: int = MAX_DATASETS_PER_CHUNK) -> int:
    """Data sets per network call of a density query: ``batch_size`` or ``default``."""
    return default if batch_size is None else positive_int("batch_size", batch_size)


def chunk_ranges(total: int, size: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` pairs covering ``range(total)`` in steps of ``size``."""
    for start in range(0, total, size):
        yield start, min(start + size, total)


def progress_bar(total: int, n_chunks: int, progress: bool | None, desc: str):
    """A tqdm bar over ``total`` units; ``progress=None`` shows it only for many chunks."""
    show = n_chunks >= AUTO_PROGRESS_MIN_CHUNKS if progress is None else bool(progress)
    return tqdm(total=total, desc=desc, disable=not show, leave=False)


class SeedStream:
    """Independent int seeds for successive network calls, reproducible from one ``seed``.

    With ``seed=None`` every call gets ``None`` (Keras' global seed generator).
    """

    def __init__(self, seed: int | None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ArgumentError(f"seed must be an int or None, received {seed!r}.")
        self._rng = None if seed is None else np.random.default_rng(int(seed))

    def __call__(self) -> int | None:
        return None if self._rng is None else int(self._rng.integers(0, 2**31 - 1))


def _record_shapes(value) -> Any:
    """JSON-able record of a (nested) input dict: shapes with batch axis 2 and unknown axes 1."""
    if isinstance(value, Mapping):
        return {key: _record_shapes(item) for key, item in value.items()}
    shape = getattr(value, "shape", None)
    if shape is None or len(shape) == 0:
        return None
    return [2] + [1 if dim is None else int(dim) for dim in list(shape)[1:]]


def _record_axes(value) -> list | None:
    """The axes after the batch axis of an array or tensor; None where unknown (a trace's free axis)."""
    shape = getattr(value, "shape", None)
    if shape is None or len(shape) == 0:
        return None
    return [None if dim is None else int(dim) for dim in list(shape)[1:]]


def merge_axes(old: list | None, new: list | None) -> list | None:
    """Axes seen so far merged with ``new``: an axis seen with two sizes becomes None ("varies")."""
    if old is None:
        return new
    if new is None or len(new) != len(old):
        return old  # a rank other than the training one is refused by the input checks, not recorded
    return [a if a == b else None for a, b in zip(old, new)]


def axes_from_record(record: Mapping | None) -> dict:
    """Trained axes from an older build config that holds only :func:`_record_shapes`' record.

    That record wrote unknown axes as 1, so only the rank and the feature (last) axis are trusted.
    """
    axes = {}
    for key, shape in (record or {}).items():
        if isinstance(shape, list) and len(shape) >= 2:
            axes[key] = [None] * (len(shape) - 2) + [int(shape[-1])]
    return axes


def stack_sequences(value: Any) -> Any:
    """``value`` with every list, tuple or number inside a (nested) dict as a numpy array.

    A list of data sets is data, not structure: Keras would read it as nested inputs.
    """
    if isinstance(value, Mapping):
        return {key: stack_sequences(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, int, float, complex)):  # numbers too: Keras refuses them as inputs
        try:
            return np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise ShapeError(
                f"An input {type(value).__name__} could not be stacked into one array ({exc}); data sets of "
                "different sizes need one call each."
            ) from exc
    return value


def dummy_inputs(record: Any, seed: int = 0) -> Any:
    """Random float32 inputs with the recorded shapes (see :func:`_record_shapes`)."""
    rng = np.random.default_rng(seed)

    def make(item):
        if isinstance(item, Mapping):
            return {key: make(value) for key, value in item.items()}
        return None if item is None else rng.normal(size=item).astype("float32")

    return make(record)


def maybe_deserialize(value):
    """Deserialize a nested Keras object config; pass objects and None through."""
    if isinstance(value, Mapping) and "class_name" in value:
        return keras.saving.deserialize_keras_object(value)
    return value


def maybe_serialize(value):
    """Serialize a Keras object (or registered function) for ``get_config``; keep None and strings."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return keras.saving.serialize_keras_object(value)


class Amortizer(keras.Model):
    """Base class of all amortizers (a Keras ``Model`` holding the networks).

    Subclasses set the ``summary_net`` attribute (a layer or None), implement
    ``compute_loss(input_dict, training=False)`` and the hook
    ``_build_from_record(record)``, which runs one forward pass on dummy inputs with the
    recorded shapes so that every nested weight exists before a ``.keras`` file's weights
    are loaded into it.

    Subclasses that standardize (see :mod:`amortflow.amortizers.standardization`) call
    :meth:`_init_standardization` with the input keys they standardize, after creating
    their networks (so that ``standardize=False`` keeps the weight order of the networks).
    """

    #: Input keys standardized when ``standardize=True`` (set by each subclass).
    STANDARDIZED_KEYS: tuple[str, ...] = ()

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._input_record = None  # JSON string: shapes of the inputs seen first
        self.standardize = False
        self.standardizers = {}
        # The axes after the batch axis of every input seen (None: varies), for the inference-time
        # checks of amortflow.amortizers.input_checks; saved with the build config.
        self._input_axes = {}

    def __call__(self, *args, **kwargs):
        # Lists and tuples of data sets become arrays before Keras reads them as nested inputs.
        if args:
            args = (stack_sequences(args[0]), *args[1:])
        return super().__call__(*args, **kwargs)

    # --- standardization ------------------------------------------------------------------
    def _init_standardization(self, standardize: bool) -> None:
        if not isinstance(standardize, bool):
            raise ArgumentError(f"standardize must be True or False, received {standardize!r}.")
        self.standardize = standardize
        self.standardizers = make_standardizers(self.STANDARDIZED_KEYS, standardize)

    def _standardized(self, key: str, tensor):
        """``tensor`` through the standardizer of ``key`` (unchanged without one)."""
        layer = self.standardizers.get(key)
        return tensor if layer is None else layer(tensor)

    def _standardization_log_det(self, key: str):
        """``log |det du/dv|`` of the standardizer of ``key`` (0.0 without one)."""
        layer = self.standardizers.get(key)
        return 0.0 if layer is None else layer.log_det_forward()

    def _unstandardized(self, key: str, values: np.ndarray) -> np.ndarray:
        """Standardized draws ``values`` back in the user's units (numpy)."""
        layer = self.standardizers.get(key)
        if layer is None or not layer.built:  # never saw this key: still the identity
            return values
        return (values * layer.std.numpy() + layer.mean.numpy()).astype(values.dtype, copy=False)

    @property
    def standardization_pending(self) -> bool:
        """True when a standardizer that has seen inputs has no statistics yet (see :meth:`adapt_standardization`)."""
        return any(layer.built and not layer.is_adapted for layer in self.standardizers.values())

    def adapt_standardization(self, input_dict: Mapping) -> list[str]:
        """Estimate the standardization statistics from configured training inputs.

        Each standardizer not adapted yet takes the mean and standard deviation of its key's
        features in ``input_dict`` (the Trainer passes a pilot of its first batches). Returns the
        keys adapted; adapted statistics are never overwritten (they are part of the model).
        """
        return adapt_standardizers(self.standardizers, input_dict)

    # --- building (for .keras loading) --------------------------------------------------
    def build(self, input_shape=None):
        # Nested networks build themselves on first use; nothing to create here.
        self.built = True

    def _remember_inputs(self, input_dict: Mapping) -> None:
        """Record the shapes of the first inputs, merged key by key with earlier records."""
        record = json.loads(self._input_record) if self._input_record else {}
        for key, value in _record_shapes(dict(input_dict)).items():
            if record.get(key) is None and value is not None:
                record[key] = value
        self._input_record = json.dumps(record)
        for key, value in dict(input_dict).items():
            if value is not None and not isinstance(value, Mapping):
                self._input_axes[key] = merge_axes(self._input_axes.get(key), _record_axes(value))
        self.built = True  # the networks exist once they have seen inputs (for saving)

    @property
    def trained_shapes(self) -> dict[str, tuple]:
        """Shapes of the inputs seen in training, ``{key: (None, *axes)}``; None marks an axis that varies.

        E.g. ``{"summary_conditions": (None, None, 2), "parameters": (None, 3)}`` for sets of
        varying size with 2 features and 3 parameters. Saved in the ``.keras`` file.
        """
        return {key: (None, *axes) for key, axes in self._input_axes.items() if axes is not None}

    def get_build_config(self):
        if not self._input_record:
            return None
        return {"input_record": json.loads(self._input_record), "input_axes": dict(self._input_axes)}

    def build_from_config(self, config):
        record = (config or {}).get("input_record")
        if record:
            self._input_record = json.dumps(record)
            self._input_axes = dict((config or {}).get("input_axes") or axes_from_record(record))
            self._build_from_record(record)
        self.built = True

    def _build_from_record(self, record: Mapping) -> None:
        raise NotImplementedError

    # --- conditions ----------------------------------------------------------------------
    def summarize(self, input_dict: Mapping, training: bool = False):
        """Return ``(condition, summary_outputs)``; each may be ``None``.

        ``condition = concat([summary_net(summary_conditions), direct_conditions])``.
        """
        summary_conditions = input_dict.get("summary_conditions")
        summary_outputs = None
        parts = []
        if self.summary_net is not None:
            if summary_conditions is None:
                raise ConfigurationError(
                    f"{type(self).__name__} has a summary_net, so input_dict['summary_conditions'] is required; "
                    f"received keys {sorted(k for k in input_dict if input_dict[k] is not None)}."
                )
            summary_inputs = self._standardized("summary_conditions", as_float(summary_conditions, "summary_conditions"))
            summary_outputs = self.summary_net(summary_inputs, training=training)
            parts.append(summary_outputs)
        elif summary_conditions is not None:
            raise ConfigurationError(
                f"input_dict['summary_conditions'] has {describe_shape(summary_conditions)}, but "
                f"{type(self).__name__} has no summary_net. Pass summary_net=..., or give fixed-size "
                "conditions as 'direct_conditions' (B, k)."
            )
        direct = input_dict.get("direct_conditions")
        if direct is not None:
            parts.append(self._standardized("direct_conditions", as_matrix(direct, "direct_conditions")))
        if not parts:
            return None, None
        return (parts[0] if len(parts) == 1 else tf.concat(parts, axis=-1)), summary_outputs

    # --- configuration ------------------------------------------------------------------
    def _base_config(self) -> dict:
        config = super().get_config()
        config["name"] = self.name
        if self.STANDARDIZED_KEYS:
            config["standardize"] = self.standardize
        return config

    @classmethod
    def from_config(cls, config):
        # A file saved before amortizers standardized (2026-12-07) has no "standardize" entry and
        # no statistics among its weights: it loads as it was saved, unstandardized.
        if cls.STANDARDIZED_KEYS and "standardize" not in config:
            config = {**config, "standardize": False}
        return cls(**config)

    @staticmethod
    def _default_max_rows() -> int:
        return DEFAULT_SAMPLING_MAX_ROWS


def n_chunks(n_datasets: int, n_samples: int, datasets_per_chunk: int, draws_per_chunk: int) -> int:
    """Number of network calls of a chunked sampling run."""
    return math.ceil(n_datasets / datasets_per_chunk) * math.ceil(n_samples / draws_per_chunk)


def to_numpy(value) -> np.ndarray:
    """A tensor or array as a numpy array."""
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)
