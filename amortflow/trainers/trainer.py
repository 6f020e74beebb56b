"""The Trainer: connects a generative model, a configurator and an amortizer, and trains it.

Every training mode is a data source (:mod:`amortflow.trainers.sources`) feeding the same
compiled step (:mod:`amortflow.trainers.step`); the loop, checkpoints and diagnostics live
in :mod:`~amortflow.trainers.loop`, :mod:`~amortflow.trainers.resume` and
:mod:`~amortflow.trainers.diagnose`. Everything a run changes is one
:class:`~amortflow.trainers.state.TrainingState`, ``trainer.state``.

Epochs and resuming
-------------------
``epochs`` is the length of a run (one ``train_*`` call). Epoch numbers in the history are
global: a second run after a 10-epoch run counts epochs 11, 12, ... A trainer created with
the ``checkpoint_path`` of a run that was interrupted (killed, or stopped by an error)
restores the networks, the history, the counters and the random streams; the next
``train_*`` call *with the same mode and plan* (same ``epochs``, ``iterations_per_epoch``,
``batch_size``, ...) continues that run where its last checkpoint left it, with the optimizer
state and the learning-rate schedule at the right step. E.g. after a kill during epoch 5 of
``train_online(epochs=10, ...)``, calling ``train_online(epochs=10, ...)`` again trains the rest
of epoch 5 and epochs 6..10. A call with another mode or plan starts a new run.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from amortflow._checks import positive_int
from amortflow.defaults import (
    DEFAULT_LEARNING_RATE,
    DEFAULT_SHUFFLE_BUFFER,
    PER_CALL_SETTINGS,
    TRAINER_SETTINGS,
    merge_settings,
)
from amortflow.exceptions import ArgumentError, ConfigurationError
from amortflow.networks.inference.base import inference_networks_of
from amortflow.trainers.arrays import as_float32, num_rows
from amortflow.trainers.buffers import MemoryReplayBuffer, as_replay_buffer, deprecated_memory_argument
from amortflow.trainers.building import input_record
from amortflow.trainers.checkpoints import CheckpointStore
from amortflow.trainers.diagnose import DiagnosticsMixin
from amortflow.trainers.distributed import scope as distributed_scope
from amortflow.trainers.loop import LoopMixin
from amortflow.trainers.options import TrainOptions
from amortflow.trainers.resume import ResumeMixin
from amortflow.trainers.seeds import SeedTree, Stream
from amortflow.trainers.sources import (
    OfflineSource,
    OnlineSource,
    PresimulationSource,
    ReplaySource,
    RoundsSource,
)
from amortflow.trainers.state import TrainingState
from amortflow.trainers.step import CompiledStep
from amortflow.trainers.streaming_mode import StreamingMixin
from amortflow.trainers.validation_split import hold_out_shards, hold_out_simulations

logger = logging.getLogger("amortflow")

CHECK_BATCH_SIZE = 2


class Trainer(LoopMixin, ResumeMixin, DiagnosticsMixin, StreamingMixin):
    """Train an amortizer on simulations: online, with experience replay, in rounds, offline, from disk or streamed.

    Parameters
    ----------
    amortizer : Amortizer
        E.g. :class:`~amortflow.amortizers.AmortizedPosterior`; needs ``compute_loss(input_dict, training)``.
    generative_model : callable, optional
        ``model(batch_size, rng=...) -> raw dict``; needed by online, replay and round training.
    configurator : callable, optional
        Raw dict -> configured dict. Default: ``amortizer.default_configurator(generative_model)``.
    checkpoint_path : path, optional
        Folder for checkpoints (made absolute now, so a relative path keeps meaning the same
        folder). If it holds checkpoints, the trainer verifies them and restores the newest
        intact one, weights included, before the constructor returns (see the module docstring
        and ``docs/architecture.md``); if it does not exist, a new run starts there.
    max_to_keep : int, default 3
        Checkpoints kept.
    default_lr : float, default 5e-4
        Initial learning rate of the default optimizer (cosine decay to 0).
    skip_checks : bool, default False
        Skip the consistency check (one small batch through model -> configurator -> loss).
    replay_buffer : bool or MemoryReplayBuffer, default False
        A replay buffer that online training also fills (``True``: capacity 1000); used by
        :meth:`train_experience_replay`. ``memory=`` (BayesFlow 1's name) still works, with a
        ``DeprecationWarning``.
    seed : int, optional
        Seed of every random stream of the trainer (simulations, shuffling, validation).
    strategy : tf.distribute.Strategy, optional
        Train data-parallel on the strategy's replicas, e.g. ``tf.distribute.MirroredStrategy()``
        over the GPUs of a machine: each global batch of ``batch_size`` is split across the
        replicas and each replica's loss is scaled by its share, so that an update equals the
        single-device update on the whole batch (up to floating point). Create the amortizer
        (and any optimizer you pass) under ``strategy.scope()``; the Trainer builds the networks
        and creates its optimizers under it. With a strategy, ``jit_compile="auto"`` does not
        use XLA and ``True`` is refused (XLA compiles for one device). Default: the strategy
        whose scope is open, if any, else one device (the plain path). See
        ``docs/scale_out.md``, "Multi-device training".
    **kwargs
        ``steps_per_call`` (16), ``jit_compile`` ("auto": XLA for runs of at least
        ``min_xla_steps`` (1000) steps, falling back to the plain graph when XLA cannot compile
        the step or more than ``max_xla_shapes`` (8) input shapes occur), ``prefetch``
        (2 chunks; 0 simulates in the training thread), ``progress`` (True),
        ``checkpoint_every`` (None: once per epoch; N: also after every N steps, at the end of
        the compiled call that reaches them), ``max_nonfinite_in_a_row`` (10). ``progress``,
        ``prefetch``, ``steps_per_call``, ``checkpoint_every`` and ``max_nonfinite_in_a_row``
        may also be passed to ``train_*`` for one run.

    Examples
    --------
    >>> trainer = Trainer(amortizer=amortizer, generative_model=model)          # doctest: +SKIP
    >>> history = trainer.train_online(epochs=10, iterations_per_epoch=1000, batch_size=32,
    ...                                validation_sims=200)                      # doctest: +SKIP
    """

    def __init__(
        self,
        amortizer,
        generative_model: Callable | None = None,
        configurator: Callable | None = None,
        checkpoint_path: str | os.PathLike | None = None,
        max_to_keep: int = 3,
        default_lr: float = DEFAULT_LEARNING_RATE,
        skip_checks: bool = False,
        replay_buffer: bool | MemoryReplayBuffer = False,
        seed: int | None = None,
        strategy: tf.distribute.Strategy | None = None,
        **kwargs: Any,
    ):
        if not hasattr(amortizer, "compute_loss"):
            raise ArgumentError(f"amortizer must have a compute_loss method; received {type(amortizer).__name__}.")
        self.amortizer = amortizer
        self.generative_model = generative_model
        self._run_lock = threading.Lock()  # one train_* call at a time (see loop.one_run_at_a_time)
        self.default_lr = float(default_lr)
        replay_buffer = deprecated_memory_argument(kwargs, replay_buffer)
        self.settings = merge_settings(TRAINER_SETTINGS, kwargs, closed_for="Trainer")
        self.configurator = configurator if configurator is not None else self._default_configurator()
        self.seeds = SeedTree(seed)
        #: Everything the trainer's runs change (see :class:`~amortflow.trainers.state.TrainingState`).
        self.state = TrainingState(replay_buffer=as_replay_buffer(replay_buffer))
        self._compiled = CompiledStep(
            amortizer, self.settings["jit_compile"], self.settings["max_xla_shapes"], self.settings["min_xla_steps"],
            strategy=strategy,
        )
        self.strategy = self._compiled.strategy  # resolved once, by the step that runs on it
        self._store = None if checkpoint_path is None else CheckpointStore(checkpoint_path, max_to_keep)
        candidates = None if self._store is None else self._store.candidates()
        if not skip_checks and generative_model is not None:
            self.check_consistency()
        if candidates:
            self._restore(candidates, seed)

    # --- the run state, read through the trainer (it lives in self.state) -------------------
    step = property(lambda self: self.state.step, doc="Training steps of all runs so far.")
    epoch = property(lambda self: self.state.epoch, doc="Epochs of all runs so far.")
    history = property(lambda self: self.state.history, doc="The :class:`LossHistory` of all runs.")
    optimizer = property(lambda self: self.state.optimizer, doc="The optimizer of the last run.")
    replay_buffer = property(lambda self: self.state.replay_buffer, doc="The replay buffer, or None.")
    nonfinite_steps = property(lambda self: self.state.nonfinite_steps, doc="Updates skipped for NaN/inf.")
    last_checkpoint = property(lambda self: self.state.last_checkpoint, doc="Newest checkpoint prefix, or None.")

    @property
    def checkpoint_path(self):
        """The checkpoint folder (a ``pathlib.Path``) or None."""
        return None if self._store is None else self._store.folder

    # --- configuration and checks ---------------------------------------------------------
    def _default_configurator(self) -> Callable:
        make = getattr(self.amortizer, "default_configurator", None)
        if make is None:
            raise ConfigurationError(
                f"{type(self.amortizer).__name__} has no default_configurator(); pass configurator=... to the Trainer."
            )
        return make(self.generative_model)

    def configure(self, raw: Mapping) -> dict:
        """Configured (float32) network inputs of a raw simulation dict."""
        return as_float32(self.configurator(raw), who="configurator")

    def check_consistency(self, batch_size: int = CHECK_BATCH_SIZE) -> float:
        """Run one small batch through generative model -> configurator -> amortizer loss.

        Returns the loss; raises a :class:`ConfigurationError` naming the stage that failed.
        """
        if self.generative_model is None:
            raise ConfigurationError("check_consistency needs a generative_model.")
        stage = "the generative model"
        try:
            raw = self.generative_model(batch_size, rng=self.seeds.rng(Stream.CHECK, 0))
            stage = "the configurator"
            conf = self.configure(raw)
            num_rows(conf, "the configurator's output")
            self.state.input_record = input_record(conf)
            stage = "the amortizer's compute_loss"
            with distributed_scope(self.strategy):  # the first call creates the weights: mirrored under a strategy
                loss = self.amortizer.compute_loss(conf, training=False)
            self.state.built = True
        except Exception as exc:
            raise ConfigurationError(
                f"Consistency check failed at {stage} ({type(exc).__name__}: {exc}). The check runs "
                f"{batch_size} simulations through generative model -> configurator -> amortizer.compute_loss."
            ) from exc
        value = float(np.mean(np.asarray(loss if not isinstance(loss, Mapping) else sum(loss.values()))))
        if not np.isfinite(value):
            logger.warning("Consistency check: the untrained amortizer's loss is %s on a pilot batch.", value)
        logger.info("Consistency check passed (loss of an untrained network on %d simulations: %.3f).", batch_size, value)
        return value

    # --- training modes -------------------------------------------------------------------
    # Each mode checks its arguments, builds its data source for a run index and hands both to
    # the loop (LoopMixin._train); the arguments they share travel as one TrainOptions.
    def train_online(self, epochs: int, iterations_per_epoch: int, batch_size: int, save_checkpoint: bool = True,
                     optimizer=None, reuse_optimizer: bool = False, early_stopping=False, validation_sims=None,
                     **kwargs) -> dict:  # fmt: skip
        """Train on fresh simulations in every step (``epochs x iterations_per_epoch`` steps).

        Parameters
        ----------
        epochs, iterations_per_epoch, batch_size : int
        save_checkpoint : bool, default True
            Checkpoint after every epoch (needs ``checkpoint_path``).
        optimizer : None, keras Optimizer, LearningRateSchedule or float
            None: Adam, cosine decay from ``default_lr`` to 0 over the run, clipping at norm 1.
            For None or a float, a later run gives the previous run's optimizer a new one's state
            in place (:func:`~amortflow.trainers.optimizers.renew_in_place`), so that the compiled
            step is not traced again.
        reuse_optimizer : bool, default False
            Continue with the optimizer (and its schedule position) of the previous run.
        early_stopping : bool, dict or EarlyStopper, default False
            Stop when the validation loss stops improving (needs ``validation_sims``);
            ``{"restore_best_weights": True}`` also ends the run with the weights of its lowest
            validation loss (see :class:`EarlyStopper`).
        validation_sims : int or raw dict, optional
            Simulations (simulated once per run, or given) to compute a validation loss on after each epoch.
        **kwargs
            Per-call settings: ``checkpoint_every``, ``progress``, ``steps_per_call``, ``prefetch``,
            ``max_nonfinite_in_a_row``.

        Returns
        -------
        dict
            ``{"train_losses": DataFrame, "val_losses": DataFrame}`` of all runs so far.
        """
        model = self._require_model("train_online")
        epochs, iterations = positive_int("epochs", epochs), positive_int("iterations_per_epoch", iterations_per_epoch)
        batch_size = positive_int("batch_size", batch_size)

        def source(run: int) -> OnlineSource:
            return OnlineSource(model, self.configure, epochs=epochs, iterations_per_epoch=iterations,
                                batch_size=batch_size, seeds=self.seeds, run=run,
                                replay_buffer=self.state.replay_buffer)  # fmt: skip

        options = TrainOptions(save_checkpoint=save_checkpoint, optimizer=optimizer, reuse_optimizer=reuse_optimizer,
                               early_stopping=early_stopping, validation_sims=validation_sims, overrides=kwargs)
        return self._train(source, options)

    def train_experience_replay(self, epochs: int, iterations_per_epoch: int, batch_size: int,
                                buffer_capacity: int = 1000, save_checkpoint: bool = True, optimizer=None,
                                reuse_optimizer: bool = False, early_stopping=False, validation_sims=None,
                                **kwargs) -> dict:  # fmt: skip
        """Experience replay: each step simulates ``batch_size`` new simulations into a replay
        buffer of ``buffer_capacity`` and trains on ``batch_size`` drawn from it.

        The trainer's ``replay_buffer`` is used when it exists (its capacity wins). Other
        arguments as in :meth:`train_online`.
        """
        model = self._require_model("train_experience_replay")
        epochs, iterations = positive_int("epochs", epochs), positive_int("iterations_per_epoch", iterations_per_epoch)
        batch_size = positive_int("batch_size", batch_size)
        if self.state.replay_buffer is None:
            self.state.replay_buffer = MemoryReplayBuffer(capacity=positive_int("buffer_capacity", buffer_capacity))
        buffer = self.state.replay_buffer

        def source(run: int) -> ReplaySource:
            return ReplaySource(model, self.configure, epochs=epochs, iterations_per_epoch=iterations,
                                batch_size=batch_size, seeds=self.seeds, run=run, replay_buffer=buffer)  # fmt: skip

        options = TrainOptions(save_checkpoint=save_checkpoint, optimizer=optimizer, reuse_optimizer=reuse_optimizer,
                               early_stopping=early_stopping, validation_sims=validation_sims, overrides=kwargs)
        return self._train(source, options)

    def train_rounds(self, rounds: int, sim_per_round: int, epochs: int, batch_size: int, save_checkpoint: bool = True,
                     optimizer=None, reuse_optimizer: bool = False, early_stopping=False, validation_sims=None,
                     **kwargs) -> dict:  # fmt: skip
        """Round-based training: each round simulates ``sim_per_round`` and trains ``epochs`` epochs
        on all simulations so far (``rounds x epochs`` epochs in total, one schedule over all).

        With a ``checkpoint_path``, each round's simulations are saved in its ``rounds/`` folder,
        so that a resumed run does not simulate them again.
        """
        model = self._require_model("train_rounds")
        cache = None if self._store is None or not save_checkpoint else self._store.folder / "rounds"
        rounds, per_round = positive_int("rounds", rounds), positive_int("sim_per_round", sim_per_round)
        epochs, batch_size = positive_int("epochs", epochs), positive_int("batch_size", batch_size)

        def source(run: int) -> RoundsSource:
            return RoundsSource(model, self.configure, rounds=rounds, sim_per_round=per_round, epochs=epochs,
                                batch_size=batch_size, seeds=self.seeds, run=run, cache_dir=cache)  # fmt: skip

        options = TrainOptions(save_checkpoint=save_checkpoint, optimizer=optimizer, reuse_optimizer=reuse_optimizer,
                               early_stopping=early_stopping, validation_sims=validation_sims, overrides=kwargs)
        return self._train(source, options)

    def train_offline(self, simulations_dict: Mapping, epochs: int, batch_size: int, save_checkpoint: bool = True,
                      optimizer=None, reuse_optimizer: bool = False, early_stopping="auto", validation_sims=None,
                      **kwargs) -> dict:  # fmt: skip
        """Train on a raw simulation dict held in memory, reshuffled every epoch, until the validation loss stops falling.

        The dict is configured once up front when the configurator is row-wise (checked),
        otherwise batch by batch. ``ceil(n / batch_size)`` steps per epoch; ``epochs`` is an upper bound.

        Parameters
        ----------
        early_stopping : "auto", bool, dict or EarlyStopper, default "auto"
            ``"auto"`` and ``True``: stop after 20 epochs without a new lowest validation loss and
            end with the weights of the lowest (:class:`EarlyStopper`'s defaults). Without
            ``validation_sims``, 10 % of the simulations (at least 100; see
            :mod:`amortflow.trainers.validation_split`) are held out for it, which ``"auto"`` does
            only when at least 200 single-model simulations are given (else it trains all
            ``epochs``, and says so in the log) and ``True`` insists on. ``False``: all ``epochs``.
            ``"auto"`` also trains all ``epochs``, on all the simulations, for a network whose
            loss does not measure convergence (``ConsistencyModel``).
        Others
            As in :meth:`train_online`.
        """
        if not isinstance(simulations_dict, Mapping):
            raise ArgumentError(f"simulations_dict must be a raw simulation dict, received {type(simulations_dict).__name__}.")
        epochs, batch_size = positive_int("epochs", epochs), positive_int("batch_size", batch_size)
        split_rng = self.seeds.rng(Stream.VALIDATION, self.state.next_run_index(), 1)
        early_stopping = self._early_stopping_for_networks(early_stopping)
        train, validation_sims, early_stopping = hold_out_simulations(simulations_dict, early_stopping, validation_sims,
                                                                      split_rng)  # fmt: skip

        def source(run: int) -> OfflineSource:
            return OfflineSource(train, self.configure, epochs=epochs, batch_size=batch_size, seeds=self.seeds, run=run)

        options = TrainOptions(save_checkpoint=save_checkpoint, optimizer=optimizer, reuse_optimizer=reuse_optimizer,
                               early_stopping=early_stopping, validation_sims=validation_sims, overrides=kwargs)
        return self._train(source, options)

    def train_from_presimulation(self, path: str | os.PathLike, epochs: int, batch_size: int,
                                 shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER, save_checkpoint: bool = True,
                                 optimizer=None, reuse_optimizer: bool = False, early_stopping="auto",
                                 validation_sims=None, **kwargs) -> dict:  # fmt: skip
        """Stream the shards of :func:`~amortflow.simulation.presimulate_and_save` from disk.

        Each epoch visits the shards in a new random order and mixes their simulations in a
        shuffle buffer of ``shuffle_buffer`` simulations: at most that many plus one shard are
        in memory, so data larger than RAM works. ``ceil(n / batch_size)`` steps per epoch.

        ``early_stopping`` works as in :meth:`train_offline`; without ``validation_sims`` whole
        shards holding 10 % of the simulations (at least 100, at most 10,000) are held out, which
        ``"auto"`` does only where that leaves at least as many to train on.
        """
        epochs, batch_size = positive_int("epochs", epochs), positive_int("batch_size", batch_size)
        early_stopping = self._early_stopping_for_networks(early_stopping)
        shards, validation_sims, early_stopping = hold_out_shards(
            path, early_stopping, validation_sims, self.seeds.rng(Stream.VALIDATION, self.state.next_run_index(), 1)
        )

        def source(run: int) -> PresimulationSource:
            return PresimulationSource(path, self.configure, epochs=epochs, batch_size=batch_size,
                                       shuffle_buffer=shuffle_buffer, seeds=self.seeds, run=run, shards=shards)  # fmt: skip

        options = TrainOptions(save_checkpoint=save_checkpoint, optimizer=optimizer, reuse_optimizer=reuse_optimizer,
                               early_stopping=early_stopping, validation_sims=validation_sims, overrides=kwargs)
        return self._train(source, options)

    def _early_stopping_for_networks(self, early_stopping):
        """``early_stopping``, except ``"auto"`` is off for a network whose loss is no convergence signal.

        A consistency model's loss compares neighbouring noise levels, not the fit to the
        posterior (:attr:`~amortflow.networks.inference.base.InferenceNetwork.loss_signals_convergence`),
        so ``"auto"`` trains all ``epochs`` with it; an explicit ``True`` or stopper is obeyed.
        """
        blind = sorted({type(net).__name__ for net in inference_networks_of(self.amortizer)
                        if not net.loss_signals_convergence})  # fmt: skip
        if not blind:
            return early_stopping
        if early_stopping == "auto":
            logger.info("No early stopping: the loss of %s does not measure convergence, so training runs all its "
                        "epochs (early_stopping=True would stop on it anyway).", ", ".join(blind))  # fmt: skip
            return False
        if early_stopping not in (False, None):
            logger.warning("Early stopping on the validation loss of %s, which does not measure convergence: "
                           "training may stop long before the network fits.", ", ".join(blind))  # fmt: skip
        return early_stopping

    def _require_model(self, who: str) -> Callable:
        if self.generative_model is None:
            raise ArgumentError(f"{who} simulates during training and needs Trainer(generative_model=...).")
        return self.generative_model

    def call_settings(self, overrides: Mapping) -> dict:
        """The trainer's settings with per-call ``overrides`` (only the per-call ones are allowed)."""
        unknown = sorted(set(overrides) - set(PER_CALL_SETTINGS))
        if unknown:
            raise ArgumentError(f"Unknown training argument(s) {unknown}; accepted: {list(PER_CALL_SETTINGS)}.")
        return {**self.settings, **overrides}

