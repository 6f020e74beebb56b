"""Data-parallel training with a ``tf.distribute`` strategy (e.g. ``MirroredStrategy`` over GPUs).

Each training step splits the global batch of ``B`` rows across the ``R`` replicas as evenly
as possible (replica ``r`` takes rows ``[r B // R, (r + 1) B // R)``), and replica ``r``
scales its loss by its share ``n_r / B``. For a loss that is a mean over the rows of the
batch, the replicas' scaled losses then sum to the mean over the global batch, and their
summed gradients equal the single-device gradient of the full batch:
``sum_r (n_r / B) grad mean_r = grad mean``.

Gradients are summed across replicas (``ReplicaContext.all_reduce``) *before* the optimizer
sees them. Keras 3's TensorFlow optimizers would otherwise clip (``clipnorm``,
``global_clipnorm``, ``clipvalue``) each replica's partial gradient and sum afterwards, which
is not single-device training; so the optimizer's own all-reduce is switched off while the
step runs (:func:`gradients_already_reduced`) and it clips and applies the already summed
gradient, identically on every replica.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import tensorflow as tf

from amortflow.exceptions import ArgumentError, ConfigurationError
from amortflow.trainers.seeds import network_seed_states

# The Keras 3 (TensorFlow backend) optimizer method that sums gradients across replicas.
_KERAS_ALL_REDUCE = "_all_reduce_sum_gradients"


def resolve_strategy(strategy) -> tf.distribute.Strategy | None:
    """The strategy to train with, or None for the plain single-device path.

    None means the strategy whose ``scope()`` is open (as Keras models do), if any; TensorFlow's
    default strategy (one device, no scope open) means None, so the default costs nothing.
    """
    if strategy is None:
        return tf.distribute.get_strategy() if tf.distribute.has_strategy() else None
    if not isinstance(strategy, tf.distribute.Strategy):
        raise ArgumentError(
            f"strategy must be a tf.distribute.Strategy (e.g. tf.distribute.MirroredStrategy()) or None, "
            f"received {type(strategy).__name__}."
        )
    if strategy is tf.distribute.get_strategy() and not tf.distribute.has_strategy():
        return None  # the default strategy: one device, nothing to split
    return strategy


def scope(strategy: tf.distribute.Strategy | None):
    """``strategy.scope()``, or a no-op context without a strategy."""
    return contextlib.nullcontext() if strategy is None else strategy.scope()


def check_variables(strategy: tf.distribute.Strategy, variables: list, who: str) -> None:
    """Raise when some of ``variables`` were not created under ``strategy.scope()``."""
    outside = [v.path if hasattr(v, "path") else v.name for v in variables
               if not strategy.extended.variable_created_in_scope(getattr(v, "value", v))]  # fmt: skip
    if outside:
        raise ConfigurationError(
            f"{len(outside)} weight(s) of the {who} were created outside strategy.scope() (e.g. {outside[:3]}), "
            "so they are not mirrored across the replicas. Create the amortizer under `with strategy.scope():` "
            "and do not call it before handing it to the Trainer (the Trainer builds it under the scope)."
        )


def check_optimizer(strategy: tf.distribute.Strategy, optimizer) -> None:
    """Raise when ``optimizer`` was created outside ``strategy.scope()`` or cannot be driven here."""
    own = getattr(optimizer, "_distribution_strategy", strategy)
    if own is not strategy:
        raise ConfigurationError(
            "The optimizer was created outside strategy.scope(); Keras binds an optimizer to the strategy "
            "that is current when it is created. Create it under `with strategy.scope():`, or pass a learning "
            "rate or None and let the Trainer create it."
        )
    if not hasattr(optimizer, _KERAS_ALL_REDUCE):
        raise ConfigurationError(
            f"{type(optimizer).__name__} has no {_KERAS_ALL_REDUCE} method (a Keras version this trainer was "
            "not written for); multi-replica training needs it to sum the gradients before clipping."
        )


@contextlib.contextmanager
def gradients_already_reduced(optimizer) -> Iterator[None]:
    """While tracing inside this context, ``optimizer`` applies gradients as given (no all-reduce).

    The compiled step sums the gradients itself (see the module docstring); the replacement is
    an instance attribute that only a trace inside the context sees, removed on exit.
    """
    setattr(optimizer, _KERAS_ALL_REDUCE, lambda grads_and_vars: list(grads_and_vars))
    try:
        yield
    finally:
        delattr(optimizer, _KERAS_ALL_REDUCE)


def replica_share(flat: list, replica_context) -> tuple[list, tf.Tensor]:
    """This replica's rows of the batch tensors ``flat`` and its loss weight ``n_r / B``.

    A replica whose share is empty (``B < R``) computes on row 0 with weight 0, so that it adds
    exact zeros to the sums instead of the NaN of a mean over no rows.
    """
    replicas = replica_context.num_replicas_in_sync
    replica = tf.cast(replica_context.replica_id_in_sync_group, tf.int32)
    rows = tf.shape(flat[0])[0]
    start, end = (replica * rows) // replicas, ((replica + 1) * rows) // replicas
    count = end - start
    weight = tf.cast(count, tf.float32) / tf.cast(rows, tf.float32)
    start, end = tf.where(count > 0, start, 0), tf.where(count > 0, end, 1)
    return [tensor[start:end] for tensor in flat], weight


# Replica r draws from seed + r * offset; a large prime keeps the replicas' streams apart from
# those of generators whose seeds differ by small amounts.
_REPLICA_SEED_OFFSET = 1_000_003


def separate_replica_random_streams(strategy: tf.distribute.Strategy, model) -> int:
    """Give every replica its own random stream for each ``SeedGenerator`` of ``model``.

    A ``SeedGenerator``'s state ``[seed, counter]`` is a variable, and under a strategy each
    replica holds a copy that starts equal, so without this every replica would draw the same
    dropout masks and the same noise (soft flow, MMD reference draws, shuffled ratio pairs) for
    its share of the batch: ``R`` replicas would train with ``B / R`` independent draws per step
    instead of the ``B`` of one device. Replica ``r``'s copy becomes
    ``[seed + r * 1_000_003, counter]``; each replica then advances its own copy. Computed from
    replica 0's copy, which is the one a checkpoint saves, so calling this again (every run, and
    after a restore) changes nothing and a resumed run continues the same streams.

    Returns
    -------
    int
        The number of generators whose streams were set.
    """
    states = network_seed_states(model)
    for state in states:
        variable = getattr(state, "value", state)  # the Keras variable's tf.distribute variable
        copies = getattr(variable, "values", (variable,))
        base = copies[0].read_value()
        for replica, copy in enumerate(copies[1:], start=1):
            copy.assign(base + tf.constant([replica * _REPLICA_SEED_OFFSET, 0], dtype=base.dtype))
    return len(states)
