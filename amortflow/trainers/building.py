"""The shapes of an amortizer's training inputs: recorded in checkpoints, used to build and to check.

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
from amortflow.exceptions import ConfigurationError
from amortflow.trainers.distributed import scope as distributed_scope


def input_record(batch: Mapping) -> dict:
    """JSON-able shapes of a configured batch (batch axis 2; nested dicts kept; ``None`` leaves kept)."""
    return _record_shapes(dict(batch))


def build_from_record(amortizer, record: Mapping, strategy=None) -> None:
    """Create every weight of ``amortizer`` with one loss evaluation on random inputs of ``record``'s shapes."""
    with distributed_scope(strategy):  # weights are created mirrored under a strategy
        amortizer.compute_loss(dummy_inputs(record), training=False)


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
