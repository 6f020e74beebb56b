"""The arguments every ``train_*`` method shares, as one typed object: :class:`TrainOptions`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TrainOptions:
    """How one ``train_*`` call trains, whatever its data source.

    Attributes
    ----------
    save_checkpoint : bool
        Checkpoint after every epoch (needs the trainer's ``checkpoint_path``).
    optimizer : None, keras Optimizer, LearningRateSchedule or float
        None: Adam, cosine decay from ``default_lr`` to 0 over the run, clipping at norm 1.
    reuse_optimizer : bool
        Continue with the optimizer (and its schedule position) of the previous run.
    early_stopping : bool, "auto", dict or EarlyStopper
        Stop when the validation loss stops improving (see :class:`EarlyStopper`).
    validation_sims : int, raw dict or None
        The run's validation set, or how many simulations to simulate for it.
    overrides : dict
        Per-call settings (``checkpoint_every``, ``progress``, ``steps_per_call``, ``prefetch``,
        ``max_nonfinite_in_a_row``), checked against ``PER_CALL_SETTINGS``.
    """

    save_checkpoint: bool = True
    optimizer: Any = None
    reuse_optimizer: bool = False
    early_stopping: Any = False
    validation_sims: Any = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
