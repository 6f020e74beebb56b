"""Building an amortizer's networks, and the shapes of its training inputs that let a trainer do so.

The networks of an amortizer exist once one batch went through it: the trainer's consistency
check, the first batch of a run (:func:`ensure_built`), or a checkpoint's recorded input
shapes (:func:`build_for_checkpoint`). Which of these happened is ``TrainingState.built``.

A trainer restored without a generative model (or with ``skip_checks=True``) has seen no batch,
so the amortizer's weights do not exist yet and a checkpoint's values have nowhere to go. The
checkpoint therefore records the shapes of the configured training inputs; one forward pass
on random inputs of those shapes creates every weight, and the saved values are then loaded
at once, so that ``amortizer.sample`` right after ``Trainer(...)`` uses the trained networks.
The same record checks validation data before the first step of a run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amortflow.amortizers.base import _record_shapes, dummy_inputs
from amortflow.exceptions import CheckpointError, ConfigurationError
from amortflow.trainers.distributed import scope as distributed_scope


def input_record(batch: Mapping) -> dict:
    """JSON-able shapes of a configured batch (batch axis 2; nested dicts kept; ``None`` leaves kept)."""
    return _record_shapes(dict(batch))


def build_from_record(amortizer, record: Mapping, strategy=None) -> None:
    """Create every weight of ``amortizer`` with one loss evaluation on random inputs of ``record``'s shapes."""
    with distributed_scope(strategy):  # weights are created mirrored under a strategy
        amortizer.compute_loss(dummy_inputs(record), training=False)


def ensure_built(amortizer, state, source) -> None:
    """Build ``amortizer`` on the first batch of ``source`` unless it is built already (``state.built``)."""
    if state.built:
        return
    batch = next(iter(source.epoch_batches(0, 0)))
    amortizer.compute_loss(batch, training=False)
    state.built = True
    state.input_record = input_record(batch)


def build_for_checkpoint(amortizer, state, record: Mapping, prefix: str, strategy=None) -> None:
    """Build ``amortizer`` from a checkpoint's input ``record`` so that its weights can be loaded now.

    Raises a :class:`CheckpointError` naming the checkpoint when the record does not fit the amortizer.
    """
    try:
        build_from_record(amortizer, record, strategy)
    except Exception as exc:  # noqa: BLE001 - any failure means the record does not fit this amortizer
        raise CheckpointError(
            f"Checkpoint {prefix} records training inputs {dict(record)}, which this "
            f"{type(amortizer).__name__} cannot take ({type(exc).__name__}: {exc})."
        ) from exc
    state.built = True
    state.input_record = dict(record)


def check_like_training(batch: Mapping, record: Mapping | None, who: str) -> None:
    """Raise a :class:`ConfigurationError` unless ``batch`` has the keys, ranks and feature sizes of ``record``.

    The middle axes (set size, time steps) may differ, as they may between training batches.
    """
    if record is None:
        return
    problems = list(_differences(input_record(batch), record, ""))
    if problems:
        raise ConfigurationError(
            f"{who} do not fit the training inputs: " + "; ".join(problems)
            + ". Simulate them with the same generative model and configurator as the training data."
        )


def _differences(found: Any, expected: Any, path: str):
    if isinstance(expected, Mapping) or isinstance(found, Mapping):
        if not (isinstance(expected, Mapping) and isinstance(found, Mapping)):
            yield f"'{path}' is {_describe(found)}, expected {_describe(expected)}"
            return
        for key in sorted(set(expected) | set(found)):
            yield from _differences(found.get(key), expected.get(key), f"{path}/{key}" if path else key)
        return
    if (found is None) != (expected is None):
        yield f"'{path}' is {_describe(found)}, expected {_describe(expected)}"
    elif found is not None and (len(found) != len(expected) or found[-1:] != expected[-1:]):
        yield f"'{path}' has shape {_shape(found)}, expected {_shape(expected)}"


def _shape(record: list) -> str:
    return "(B" + "".join(f", {d}" for d in record[1:]) + ")"


def _describe(record: Any) -> str:
    if record is None:
        return "absent (None)"
    if isinstance(record, Mapping):
        return f"a dict of {sorted(record)}"
    return f"an array of shape {_shape(record)}"
