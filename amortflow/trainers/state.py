"""The one object that holds a training run's state: :class:`TrainingState` (``trainer.state``).

Everything a :class:`~amortflow.trainers.Trainer` learns or counts while it trains lives
here, not in attributes spread over the trainer's mixins: the global step and epoch, the loss
history, the plan and position of the current run (:class:`RunPlan`), the replay buffer, the
optimizer, the best-weights snapshot, the shapes of the training inputs and the bookkeeping
of checkpoints. A checkpoint is this object written to disk (see
:mod:`~amortflow.trainers.resume`); the loop (:mod:`~amortflow.trainers.loop`) advances it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from amortflow.trainers.best_weights import BestWeights
from amortflow.trainers.buffers import MemoryReplayBuffer
from amortflow.trainers.checkpoints import Candidate
from amortflow.trainers.history import LossHistory


@dataclass
class RunPlan:
    """One ``train_*`` call: its plan (what a resumed call must repeat) and how far it got.

    Attributes
    ----------
    index : int
        The run's number on this trainer (part of every seed key of its data).
    identity : dict
        The source's plan (mode, epochs, batch size, ...); a call with another plan starts a new run.
    start_epoch, start_step : int
        The trainer's global epoch and step when the run started.
    total_steps : int
        Planned steps of the whole run (the length of the default learning-rate schedule).
    epoch_in_run, iteration : int
        Position: 0-based epoch within the run and iteration within that epoch.
    finished : bool
        The run ended (all epochs done or stopped early).
    stopper : dict or None
        The early stopper's state (:meth:`EarlyStopper.get_state`).
    optimizer_config : dict or None
        How to rebuild the run's optimizer on resume (:func:`~amortflow.trainers.optimizers.optimizer_config`).
    """

    index: int
    identity: dict
    start_epoch: int
    start_step: int
    total_steps: int
    epoch_in_run: int = 0
    iteration: int = 0
    finished: bool = False
    stopper: dict | None = None
    optimizer_config: dict | None = None

    def to_dict(self) -> dict:
        """JSON-able form, as stored in a checkpoint's state file."""
        return asdict(self)

    @classmethod
    def from_dict(cls, saved: Mapping[str, Any] | None) -> RunPlan | None:
        """The plan a checkpoint stored (``None`` stays ``None``; unknown keys are ignored)."""
        if saved is None:
            return None
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in saved.items() if key in names})


@dataclass
class TrainingState:
    """Everything a trainer's runs change: counters, history, current run, buffer, optimizer, checkpoints.

    Attributes
    ----------
    step, epoch : int
        Global counters over all runs (epochs of a second run continue after the first's).
    history : LossHistory
        Losses of every step and validation losses of every epoch so far.
    run : RunPlan or None
        The current or last run.
    runs_started : int
        Runs started on this trainer (the next run's index).
    replay_buffer : MemoryReplayBuffer or None
        Filled by online training and used by experience replay.
    optimizer : keras Optimizer or None
        The optimizer of the last run.
    optimizer_is_own : bool
        The trainer built that optimizer (``optimizer=None`` or a learning rate), so a new run may
        renew it in place (:func:`~amortflow.trainers.optimizers.renew_in_place`) instead of
        replacing it.
    nonfinite_steps : int
        Steps whose update was skipped because of a NaN/inf loss or gradient.
    nonfinite_in_a_row : int
        Non-finite steps since the last finite one (the run stops at ``max_nonfinite_in_a_row``).
    best_weights : BestWeights or None
        Weights of the run's lowest validation loss (``EarlyStopper(restore_best_weights=True)``).
    input_record : dict or None
        Shapes of the configured training inputs (see :mod:`~amortflow.trainers.building`).
    built : bool
        A batch went through the amortizer here, so every weight exists.
    last_checkpoint : str or None
        Prefix of the newest checkpoint written or restored.
    last_saved_step : int or None
        Step of that checkpoint (a second save at the same step is skipped).
    resume_candidate : Candidate or None
        The restored checkpoint, until a continued run took its optimizer.
    restored_state : dict or None
        The restored checkpoint's state file.
    deferred_weights : Candidate or None
        A checkpoint whose weights wait for the first batch (old checkpoints without input shapes).
    """

    history: LossHistory = field(default_factory=LossHistory)
    step: int = 0
    epoch: int = 0
    run: RunPlan | None = None
    runs_started: int = 0
    replay_buffer: MemoryReplayBuffer | None = None
    optimizer: Any = None
    optimizer_is_own: bool = False
    nonfinite_steps: int = 0
    nonfinite_in_a_row: int = 0
    best_weights: BestWeights | None = None
    input_record: dict | None = None
    built: bool = False
    last_checkpoint: str | None = None
    last_saved_step: int | None = None
    resume_candidate: Candidate | None = None
    restored_state: dict | None = None
    deferred_weights: Candidate | None = None

    def pending_run(self) -> RunPlan | None:
        """The current run if it is unfinished (a matching ``train_*`` call continues it), else None."""
        run = self.run
        return run if run is not None and not run.finished else None

    def next_run_index(self) -> int:
        """The index the next ``train_*`` call's data is seeded with: the pending run's, else a new one."""
        pending = self.pending_run()
        return pending.index if pending is not None else self.runs_started
