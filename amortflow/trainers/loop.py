"""The training loop shared by every mode (a mixin of :class:`~amortflow.trainers.Trainer`).

The loop takes chunks from the mode's source (produced ahead in a background thread), runs
each through the compiled step, records the losses, counts skipped non-finite steps, updates
the progress bar, and at the end of each epoch validates, checks early stopping and writes
a checkpoint (optionally also every ``checkpoint_every`` steps).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import tensorflow as tf

from amortflow.defaults import DEFAULT_VALIDATION_BATCH_SIZE
from amortflow.exceptions import ArgumentError, NonFiniteLossError, TrainerBusyError
from amortflow.networks.inference.base import inference_networks_of
from amortflow.trainers.arrays import flatten, map_arrays, num_rows, take_rows, unstack_index
from amortflow.trainers.best_weights import BestWeights
from amortflow.trainers.building import check_like_training, ensure_built
from amortflow.trainers.distributed import scope as distributed_scope
from amortflow.trainers.distributed import separate_replica_random_streams
from amortflow.trainers.early_stopping import EarlyStopper
from amortflow.trainers.options import TrainOptions
from amortflow.trainers.optimizers import builds_own_optimizer, current_learning_rate, make_optimizer, renew_in_place
from amortflow.trainers.prefetch import Prefetcher
from amortflow.trainers.progress import EpochProgress
from amortflow.trainers.seeds import Stream
from amortflow.trainers.sources import BatchSource, Chunk
from amortflow.trainers.state import RunPlan

logger = logging.getLogger("amortflow")

NONFINITE_BATCH_FILE = "nonfinite_batch.npz"


def one_run_at_a_time(method):
    """Refuse a second ``train_*`` call while one runs on the same trainer.

    Two runs interleaving on one trainer would mix their steps, counters and history rows
    (and race on the weights); a clear error is better than a silently wrong history.
    """

    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        lock = self.__dict__.setdefault("_run_lock", threading.Lock())
        if not lock.acquire(blocking=False):
            raise TrainerBusyError(
                f"This Trainer is already training (in another thread); {method.__name__} cannot run at the same time. "
                "Wait for the other train_* call to return, or give each thread its own Trainer and amortizer."
            )
        try:
            return method(self, *args, **kwargs)
        finally:
            lock.release()

    return guarded


class LoopMixin:
    """The run loop of :class:`~amortflow.trainers.Trainer`."""

    @one_run_at_a_time
    def _train(self, make_source: Callable[[int], BatchSource], options: TrainOptions) -> dict:
        """One run: ``make_source(run_index)`` gives its data; ``options`` how to train on it."""
        settings = self.call_settings(options.overrides)
        if options.early_stopping and options.validation_sims is None:
            raise ArgumentError("early_stopping needs validation_sims (the validation loss decides when to stop).")
        state = self.state
        source, run, resumed = self._select_run(make_source)
        with distributed_scope(self.strategy):  # weights and optimizer slots are created mirrored under a strategy
            ensure_built(self.amortizer, state, source)
            for network in inference_networks_of(self.amortizer):
                network.plan_training(run.total_steps)  # e.g. a consistency model's schedule length
            self._load_deferred_weights()
            self._adapt_standardization(source)
            if self.strategy is not None:
                separate_replica_random_streams(self.strategy, self.amortizer)
            if resumed:
                previous = state.optimizer
                opt = self._resume_optimizer(run, options.optimizer)
                own = state.optimizer_is_own if opt is previous else builds_own_optimizer(options.optimizer)
            else:
                opt, own = self._new_optimizer(options.optimizer, options.reuse_optimizer, run.total_steps)
            self._compiled.set_optimizer(opt, planned_steps=run.total_steps)
        state.optimizer, state.optimizer_is_own = opt, own
        stopper = _make_stopper(options.early_stopping, run.stopper if resumed else None)
        if not resumed:
            state.best_weights = None
        validation = self._validation_batches(options.validation_sims, run.index)
        state.nonfinite_in_a_row = 0
        checkpointing = bool(options.save_checkpoint) and self._store is not None
        self._loop(source, run, stopper, validation, settings, checkpointing)
        self._restore_best_weights(stopper)
        return state.history.as_dict()

    def _adapt_standardization(self, source: BatchSource) -> None:
        """Before an amortizer's first step: its standardization statistics from a pilot of the training data.

        Restored or earlier-trained amortizers keep theirs (``standardization_pending`` is False).
        """
        if not getattr(self.amortizer, "standardization_pending", False):
            return
        pilot = source.pilot(source.pilot_rows)
        if pilot is None:
            return
        features, n_simulations = pilot
        keys = self.amortizer.adapt_standardization(features)
        logger.info("Standardization statistics of %s estimated from %d simulations (%s).", ", ".join(keys),
                    n_simulations, source.mode)  # fmt: skip

    def _restore_best_weights(self, stopper: EarlyStopper | None) -> None:
        """At the end of a run with ``restore_best_weights``: back to the lowest-validation-loss epoch."""
        best = self.state.best_weights
        if stopper is None or not stopper.restore_best_weights or best is None or best.epoch == self.state.epoch:
            return
        with distributed_scope(self.strategy):
            best.restore_into(self.amortizer)
        logger.info("Restored the weights of epoch %d (validation loss %.3f), the lowest of the run; the last "
                    "epoch, %d, ended with %.3f.", best.epoch, best.loss, self.state.epoch,
                    self.state.history.last_validation)  # fmt: skip

    def _new_optimizer(self, optimizer, reuse_optimizer: bool, total_steps: int) -> tuple:
        """The run's optimizer and whether the trainer built it (so that the next run may renew it)."""
        state = self.state
        if reuse_optimizer and state.optimizer is not None:
            if optimizer is not None:
                logger.warning("reuse_optimizer=True: the optimizer argument is ignored.")
            return state.optimizer, state.optimizer_is_own
        if reuse_optimizer:
            logger.info("reuse_optimizer=True but there is no previous optimizer; a new one is created.")
        fresh = make_optimizer(optimizer, total_steps, self.default_lr)
        if not builds_own_optimizer(optimizer):
            return fresh, False
        # The previous run's optimizer, given a new one's state, keeps the compiled step's trace
        # (a new object would be traced again: seconds per run). Not under a strategy, whose
        # mirrored slots are not copied here.
        previous = state.optimizer if state.optimizer_is_own and self.strategy is None else None
        if previous is not None and renew_in_place(previous, fresh, list(self.amortizer.trainable_variables)):
            return previous, True
        return fresh, True

    # --- the loop -------------------------------------------------------------------------
    def _loop(self, source: BatchSource, run: RunPlan, stopper, validation, settings: dict, checkpointing: bool) -> None:
        every = settings["checkpoint_every"]
        since_checkpoint, bar = 0, None

        def produce():
            for chunk in source.chunks(run.epoch_in_run, run.iteration, int(settings["steps_per_call"])):
                if chunk.data is not None and not source.finalizes:
                    # numpy -> tensor copies happen here, in the producer thread, off the step's path
                    chunk.data = map_arrays(tf.convert_to_tensor, chunk.data)
                yield chunk

        prefetch = int(settings["prefetch"])
        with Prefetcher(produce, max_ahead=max(prefetch, 1), enabled=prefetch > 0) as chunks:
            try:
                for chunk in chunks:
                    if bar is None:
                        bar = self._open_bar(source, run, chunk, settings["progress"])
                    chunk = source.finalize(chunk)
                    if chunk.n_steps:
                        self._train_chunk(chunk, run, bar, settings["max_nonfinite_in_a_row"], source.mode)
                        since_checkpoint += chunk.n_steps
                    if chunk.epoch_end:
                        bar.close()
                        bar = None
                        stop = self._end_epoch(chunk, run, stopper, validation, source)
                        if checkpointing:
                            self.save_checkpoint()
                            since_checkpoint = 0
                        if stop:
                            return
                    elif checkpointing and every and since_checkpoint >= every:
                        self.save_checkpoint()
                        since_checkpoint = 0
            finally:
                if bar is not None:
                    bar.close()
        run.finished = True

    def _open_bar(self, source: BatchSource, run: RunPlan, chunk: Chunk, enabled: bool) -> EpochProgress:
        self.state.history.start_epoch()
        epoch = run.start_epoch + chunk.epoch + 1
        return EpochProgress(epoch, source.steps_in_epoch(chunk.epoch), chunk.first_iteration, enabled)

    def _train_chunk(self, chunk: Chunk, run: RunPlan, bar: EpochProgress, max_bad: int, mode: str) -> None:
        # the device stops at the max_bad-th non-finite step in a row: no step runs after the error's
        losses, finite = self._compiled.train(chunk.data, self.state.nonfinite_in_a_row, max_bad)
        if self.state.history.loss_names is None:
            self.state.history.loss_names = list(self._compiled.loss_names or ["Loss"])
        first_step, ran = self.state.step, len(finite)
        self.state.history.add_steps(run.start_epoch + chunk.epoch + 1, chunk.first_iteration + 1, losses, skipped=~finite)
        self.state.step += ran
        run.epoch_in_run, run.iteration = chunk.epoch, chunk.first_iteration + ran
        if not finite.all():
            self._count_nonfinite(finite, chunk, run, first_step, max_bad, mode)
        else:
            self.state.nonfinite_in_a_row = 0
        bar.update(ran, run.iteration, float(losses[-1, 0]), self.state.history.running_mean,
                   current_learning_rate(self.state.optimizer))  # fmt: skip

    def _count_nonfinite(self, finite: np.ndarray, chunk: Chunk, run: RunPlan, first_step: int, max_bad: int, mode: str):
        for i, ok in enumerate(finite):
            if ok:
                self.state.nonfinite_in_a_row = 0
                continue
            self.state.nonfinite_in_a_row += 1
            self.state.nonfinite_steps += 1
            step, iteration = first_step + i + 1, chunk.first_iteration + i + 1
            epoch = run.start_epoch + chunk.epoch + 1
            logger.warning("Non-finite loss or gradient at step %d (epoch %d, iteration %d): update skipped.",
                           step, epoch, iteration)  # fmt: skip
            if self.state.nonfinite_in_a_row >= max_bad:
                saved = self._save_bad_batch(unstack_index(chunk.data, i))
                raise NonFiniteLossError(
                    f"{self.state.nonfinite_in_a_row} non-finite (NaN/inf) losses or gradients in a row in the {mode} run, "
                    f"the last at step {step} (epoch {epoch}, iteration {iteration}); their updates were skipped, "
                    "so the weights are those after the last finite step. Last good checkpoint: "
                    f"{self.state.last_checkpoint or 'none (no checkpoint_path)'}."
                    + (f" The offending batch was saved to {saved}." if saved else "")
                    + " Look for NaN/inf in the simulations or the configured inputs, or lower the learning rate; "
                    "max_nonfinite_in_a_row sets the limit."
                )

    def _save_bad_batch(self, batch) -> Path | None:
        if self._store is None:
            return None
        self._store.folder.mkdir(parents=True, exist_ok=True)
        path = self._store.folder / NONFINITE_BATCH_FILE
        _, flat = flatten(batch)
        np.savez(path, **{"/".join(key): np.asarray(value) for key, value in flat.items()})
        return path

    def _end_epoch(self, chunk: Chunk, run: RunPlan, stopper, validation, source: BatchSource) -> bool:
        run.epoch_in_run, run.iteration = chunk.epoch + 1, 0
        self.state.epoch = epoch = run.start_epoch + run.epoch_in_run
        stop = False
        if validation is not None:
            values = self._validate(validation)
            self.state.history.add_validation(epoch, values)
            names = self.state.history.loss_names or ["Loss"]
            extras = "".join(f", {name}: {value:.3f}" for name, value in zip(names[1:], values[1:]))
            logger.info("Validation, Epoch: %d, Loss: %.3f%s", epoch, values[0], extras)
            if stopper is not None:
                stop = stopper.update(values[0])
                run.stopper = stopper.get_state()
                if stopper.restore_best_weights and stopper.is_lowest:
                    self.state.best_weights = BestWeights.capture(self.amortizer, epoch, values[0])
                if stop:
                    logger.info("Early stopping after epoch %d: no improvement of the validation loss by more "
                                "than %g for %d epochs.", epoch, stopper.tolerance, stopper.patience)  # fmt: skip
        if stop or run.epoch_in_run >= source.num_epochs():
            run.finished = True
        return stop

    # --- validation -------------------------------------------------------------------------
    def _validation_batches(self, validation_sims, run_index: int) -> list | None:
        """The run's validation set, configured, in evaluation batches ``[(batch, size), ...]``."""
        if validation_sims is None:
            return None
        if isinstance(validation_sims, Mapping):
            raw = validation_sims
        else:
            if isinstance(validation_sims, bool) or not isinstance(validation_sims, (int, np.integer)) or validation_sims < 1:
                raise ArgumentError(f"validation_sims must be a positive int or a raw dict, received {validation_sims!r}.")
            model = self._require_model("validation_sims=<int>")
            raw = model(int(validation_sims), rng=self.seeds.rng(Stream.VALIDATION, run_index))
        conf = self.configure(raw)
        # checked now, not after the first epoch: a validation set that does not fit fails before any step
        check_like_training(conf, self.state.input_record, "The configured validation_sims")
        n, size = num_rows(conf, "validation simulations"), DEFAULT_VALIDATION_BATCH_SIZE
        return [(take_rows(conf, slice(a, min(a + size, n))), min(a + size, n) - a) for a in range(0, n, size)]

    def _validate(self, batches: list) -> np.ndarray:
        """Mean losses over the validation set (each batch's mean weighted by its size)."""
        total = sum(self._compiled.evaluate(batch) * size for batch, size in batches)
        return np.asarray(total, dtype=np.float64) / sum(size for _, size in batches)


def _make_stopper(early_stopping, saved_state: dict | None) -> EarlyStopper | None:
    if saved_state is not None:
        return EarlyStopper.from_state(saved_state)
    if early_stopping is False or early_stopping is None:
        return None
    if early_stopping is True:
        return EarlyStopper()
    if isinstance(early_stopping, EarlyStopper):
        return early_stopping
    if isinstance(early_stopping, Mapping):
        return EarlyStopper(**early_stopping)
    raise ArgumentError(f"early_stopping must be a bool, a dict of EarlyStopper arguments or an EarlyStopper, "
                        f"received {early_stopping!r}.")  # fmt: skip
