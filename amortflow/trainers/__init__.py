"""Training amortizers: one compiled step fed by interchangeable data sources.

>>> trainer = af.trainers.Trainer(amortizer=amortizer, generative_model=model)      # doctest: +SKIP
>>> history = trainer.train_online(epochs=10, iterations_per_epoch=1000, batch_size=32,
...                                validation_sims=200)                              # doctest: +SKIP

Modes: :meth:`Trainer.train_online`, :meth:`Trainer.train_experience_replay`,
:meth:`Trainer.train_rounds`, :meth:`Trainer.train_offline`,
:meth:`Trainer.train_from_presimulation`. Checkpoints resume interrupted runs exactly;
see :mod:`amortflow.trainers.trainer` for the epoch semantics.
"""

from amortflow.trainers.buffers import MemoryReplayBuffer
from amortflow.trainers.checkpoints import CheckpointStore
from amortflow.trainers.early_stopping import EarlyStopper
from amortflow.trainers.history import LossHistory
from amortflow.trainers.options import TrainOptions
from amortflow.trainers.optimizers import current_learning_rate, default_optimizer, make_optimizer
from amortflow.trainers.sources import ShuffleBuffer
from amortflow.trainers.state import RunPlan, TrainingState
from amortflow.trainers.step import CompiledStep
from amortflow.trainers.trainer import Trainer

__all__ = [
    "CheckpointStore",
    "CompiledStep",
    "EarlyStopper",
    "LossHistory",
    "MemoryReplayBuffer",
    "RunPlan",
    "ShuffleBuffer",
    "TrainOptions",
    "Trainer",
    "TrainingState",
    "current_learning_rate",
    "default_optimizer",
    "make_optimizer",
]
