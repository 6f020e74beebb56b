"""Saving a trainer's complete state in checkpoints and resuming it (a mixin of :class:`Trainer`).

Saved per checkpoint: the amortizer's weights, the optimizer (slots and iteration count, so
the learning-rate schedule continues at the right step), Keras' global RNG state, the step
and epoch counters, the plan and position of the current run, the seed entropy of every
random stream (see :mod:`~amortflow.trainers.seeds`), the early-stopping state, the loss
history and the replay buffer, and the shapes of the training inputs (so that a trainer
without a generative model can build the networks and load the weights at construction).

A restore first *verifies* a checkpoint completely: its state file, every tensor of its TF
files (weights, optimizer slots, seed states; CRC32C), the weights' shapes and the optimizer's
iteration count against the state file, its replay-buffer and best-weights files, and the
training-history rows (count, bytes and CRC32). Only then are the weights loaded. A checkpoint
that fails is skipped with a WARNING naming it and why, and the next older one is tried.
"""

from __future__ import annotations

import logging

from amortflow.exceptions import CheckpointError
from amortflow.trainers.best_weights import BestWeights
from amortflow.trainers.buffers import MemoryReplayBuffer
from amortflow.trainers.building import build_for_checkpoint
from amortflow.trainers.checkpoints import Candidate
from amortflow.trainers.history import LossHistory
from amortflow.trainers.optimizers import make_optimizer, optimizer_config, optimizer_from_config
from amortflow.trainers.seeds import network_seed_states
from amortflow.trainers.state import RunPlan

logger = logging.getLogger("amortflow")


def _keras_seed_state():
    """The state variable of Keras' global seed generator (used by unseeded ``keras.random`` calls)."""
    try:
        from keras.src.random.seed_generator import global_seed_generator
    except ImportError:  # private Keras module; without it only this state is not checkpointed
        return None
    return global_seed_generator().state


class ResumeMixin:
    """Checkpoint saving and restoring for :class:`~amortflow.trainers.Trainer`."""

    # --- runs -----------------------------------------------------------------------------
    def _select_run(self, make_source) -> tuple:
        """``(source, run, resumed)``: the unfinished run if its plan is this call's, else a new run."""
        state = self.state
        pending = state.pending_run()
        source = make_source(state.next_run_index())
        identity = source.identity()
        if pending is not None and pending.identity == identity:
            logger.info(
                "Continuing the unfinished %s run at epoch %d, iteration %d (step %d).",
                source.mode, state.epoch + 1, pending.iteration + 1, state.step,
            )  # fmt: skip
            return source, pending, True
        if pending is not None:
            logger.warning(
                "The unfinished run %s is not continued: this call's plan %s differs; a new run starts.",
                pending.identity, identity,
            )  # fmt: skip
            source = make_source(state.runs_started)  # a new run's data are seeded with its own index
        state.runs_started += 1
        state.resume_candidate = None  # a new run never takes the checkpoint's optimizer
        state.run = RunPlan(index=source.run, identity=identity, start_epoch=state.epoch, start_step=state.step,
                            total_steps=source.planned_steps())  # fmt: skip
        return source, state.run, False

    def _resume_optimizer(self, run: RunPlan, optimizer):
        """The optimizer of a continued run: the one in memory, or rebuilt and restored from the checkpoint."""
        state = self.state
        if state.optimizer is not None and state.resume_candidate is None:
            return state.optimizer  # interrupted in this process: its optimizer is still here
        if optimizer is not None:
            logger.warning("optimizer=... given for a resumed run: its slots are restored from the checkpoint.")
        config = run.optimizer_config
        if optimizer is None:
            optimizer = optimizer_from_config(config) if config else make_optimizer(None, run.total_steps, self.default_lr)
        optimizer = make_optimizer(optimizer, run.total_steps, self.default_lr)
        self._compiled.set_optimizer(optimizer)
        self._store.restore(state.resume_candidate, {"optimizer": optimizer}, require_all=False)
        expected = state.restored_state.get("optimizer_iterations")
        if expected is not None and int(optimizer.iterations.numpy()) != expected:
            raise CheckpointError(
                f"The optimizer restored from {state.resume_candidate.prefix} is at iteration "
                f"{int(optimizer.iterations.numpy())}, but the checkpoint recorded {expected}; the optimizer "
                "does not match the one that was saved."
            )
        state.resume_candidate = None
        return optimizer

    # --- saving -------------------------------------------------------------------------
    def _model_objects(self) -> dict:
        """Everything of the model a checkpoint holds: weights, Keras' global seed, the networks' seeds."""
        return {**self._weight_objects(), **self._network_seed_objects()}

    def _weight_objects(self) -> dict:
        # Every weight is saved under its position in ``amortizer.weights``, not through the
        # object graph: Keras 3 keeps sub-layers held in Python lists (coupling layers, equivariant
        # modules) in containers that tf.train.Checkpoint does not follow, so
        # ``Checkpoint(amortizer=...)`` silently saved only some weights. The shapes in the state
        # file make sure the positions mean the same weights when restoring.
        objects = {f"amortizer_weight_{i:05d}": weight for i, weight in enumerate(self.amortizer.weights)}
        seed_state = _keras_seed_state()
        if seed_state is not None:
            objects["keras_seed"] = seed_state
        return objects

    def _network_seed_objects(self) -> dict:
        # The states of the amortizer's own random generators (dropout, soft-flow noise, ...):
        # Keras keeps them out of ``weights``, yet a resumed run must continue their streams
        # instead of replaying the draws of its first steps.
        states = network_seed_states(self.amortizer)
        return {f"amortizer_seed_state_{i:05d}": state for i, state in enumerate(states)}

    def _state_dict(self) -> dict:
        """The checkpoint's state file: the JSON-able part of :class:`TrainingState` (plus what checks it)."""
        state = self.state
        return {
            "entropy": self.seeds.entropy,
            "step": state.step,
            "epoch": state.epoch,
            "runs_started": state.runs_started,
            "run": None if state.run is None else state.run.to_dict(),
            "history": state.history.state(),
            "nonfinite_steps": state.nonfinite_steps,
            "amortizer": {"class": type(self.amortizer).__name__, "weights": [list(w.shape) for w in self.amortizer.weights]},
            "optimizer_iterations": None if state.optimizer is None else int(state.optimizer.iterations.numpy()),
            "buffer_capacity": None if state.replay_buffer is None else state.replay_buffer.capacity,
            "inputs": state.input_record,
        }

    def save_checkpoint(self) -> str | None:
        """Write a checkpoint now (no-op without ``checkpoint_path`` or when this step is saved already)."""
        state = self.state
        if self._store is None or state.last_saved_step == state.step:
            return state.last_checkpoint
        if state.run is not None and state.optimizer is not None:
            state.run.optimizer_config = optimizer_config(state.optimizer)
        self._store.folder.mkdir(parents=True, exist_ok=True)
        state.history.append_csv(self._store.history_path)
        objects = self._model_objects()
        if state.optimizer is not None:
            objects["optimizer"] = state.optimizer
        state.last_checkpoint = self._store.save(state.step, objects, self._state_dict(), replay_buffer=state.replay_buffer,
                                                 best=state.best_weights)  # fmt: skip
        state.last_saved_step = state.step
        return state.last_checkpoint

    # --- restoring ------------------------------------------------------------------------
    def _restore(self, candidates: list[Candidate], seed) -> None:
        """Restore the newest candidate that verifies; skip the others with a WARNING that names them."""
        errors = []
        for candidate in candidates:
            try:
                state, history, buffer, best = self._verify(candidate)
                self._load_or_defer(candidate, state, best)
            except CheckpointError as exc:
                errors.append(f"  {candidate.prefix}: {exc}")
                logger.warning("Checkpoint %s cannot be restored (%s); trying an older one.", candidate.prefix, exc)
                continue
            if buffer is not None and self.state.replay_buffer is not None:
                self.state.replay_buffer.load(candidate.buffer_path)  # the user's buffer object (replay_buffer=...) stays
            elif buffer is not None:
                self.state.replay_buffer = buffer
            self._apply_state(state, candidate, history, seed)
            self.state.best_weights = best
            if errors:
                logger.warning("Resumed from %s, the newest intact checkpoint; skipped the newer one(s):\n%s\nThey "
                               "are deleted by the next save.", candidate.prefix, "\n".join(errors))  # fmt: skip
            return
        raise CheckpointError(
            f"No checkpoint in {self._store.folder} could be restored:\n" + "\n".join(errors)
            + f"\nIf only {self._store.history_path.name} is damaged and the loss history of the earlier steps may "
            "be lost, move that file aside: the newest checkpoint then resumes with those rows as NaN. Otherwise "
            "pass another checkpoint_path (or move this folder away) to start a new run."
        )

    def _verify(self, candidate: Candidate) -> tuple:
        """Check every part of ``candidate`` without changing the trainer; return what restoring needs."""
        state = self._store.read_state(candidate)
        self._check_compatible(state, candidate)
        self._store.verify(candidate, state)
        history = LossHistory.restore(state["history"], self._store.history_path)
        files = state.get("files") or {}
        best = BestWeights.load(candidate.best_path) if files.get("best") or candidate.best_path.is_file() else None
        buffer = None
        capacity = state.get("buffer_capacity")
        if capacity is not None and (files.get("buffer") or candidate.buffer_path.is_file()):
            own = self.state.replay_buffer
            buffer = MemoryReplayBuffer(own.capacity if own is not None else capacity)  # a trial copy
            buffer.load(candidate.buffer_path)
        return state, history, buffer, best

    def _load_or_defer(self, candidate: Candidate, state: dict, best: BestWeights | None) -> None:
        """Load the weights now; build the networks from the recorded input shapes first if needed."""
        if not self.state.built and state.get("inputs"):
            build_for_checkpoint(self.amortizer, self.state, state["inputs"], candidate.prefix, self.strategy)
        if self.state.built:
            self._check_compatible(state, candidate)
            self._load_weights(candidate, state, best)
            return
        # checkpoints written before 2026-12-07 record no input shapes: load at the first batch
        self.state.deferred_weights = candidate
        logger.warning(
            "Checkpoint %s records no input shapes, so the networks cannot be built before they see a batch: "
            "their weights are loaded at the next train_* call (or pass generative_model=... to the Trainer to "
            "load them now). Until then the amortizer holds untrained weights.", candidate.prefix,
        )  # fmt: skip

    def _check_compatible(self, state: dict, candidate: Candidate) -> None:
        saved = state.get("amortizer", {})
        if saved.get("class") != type(self.amortizer).__name__:
            raise CheckpointError(
                f"Checkpoint {candidate.prefix} holds a {saved.get('class')}, not a {type(self.amortizer).__name__}."
            )
        if self.state.built:
            shapes = [list(w.shape) for w in self.amortizer.weights]
            if shapes != saved.get("weights"):
                raise CheckpointError(
                    f"Checkpoint {candidate.prefix} holds {len(saved.get('weights', []))} weights of other shapes "
                    f"than this amortizer's {len(shapes)}; it was written by a different network configuration."
                )

    def _apply_state(self, saved: dict, candidate: Candidate, history: LossHistory, seed) -> None:
        if seed is not None and int(seed) != saved["entropy"]:
            logger.info("seed=%s is replaced by the seed stored in the checkpoint (%s).", seed, saved["entropy"])
        self.seeds.entropy = int(saved["entropy"])
        state = self.state
        state.step, state.epoch = int(saved["step"]), int(saved["epoch"])
        state.runs_started = int(saved["runs_started"])
        state.run = RunPlan.from_dict(saved["run"])
        state.history = history
        state.nonfinite_steps = int(saved.get("nonfinite_steps", 0))
        state.input_record = saved.get("inputs") or state.input_record
        history.truncate_csv(self._store.history_path)  # drop rows written after the checkpoint
        state.last_saved_step = state.step
        state.resume_candidate, state.restored_state = candidate, saved
        state.last_checkpoint = candidate.prefix
        logger.info("Restored checkpoint %s (step %d, %d epochs done).", candidate.prefix, state.step, state.epoch)

    def _load_deferred_weights(self) -> None:
        """Load the weights of an old checkpoint (no recorded input shapes) once the networks are built."""
        state = self.state
        if state.deferred_weights is not None:
            candidate, state.deferred_weights = state.deferred_weights, None
            self._check_compatible(state.restored_state, candidate)
            self._load_weights(candidate, state.restored_state, state.best_weights)

    def _load_weights(self, candidate: Candidate, state: dict, best: BestWeights | None) -> None:
        """Load ``candidate``'s weights; a finished run that restored its best epoch gets those back."""
        self._store.restore(candidate, self._weight_objects())
        # optional: checkpoints written before 2026-12-04 do not hold them (the streams restart then)
        self._store.restore(candidate, self._network_seed_objects(), require_all=False)
        run = state.get("run") or {}
        if best is not None and run.get("finished") and (run.get("stopper") or {}).get("restore_best_weights"):
            best.restore_into(self.amortizer)
            logger.info("The finished run restored the weights of epoch %d (validation loss %.3f); so does this "
                        "resume.", best.epoch, best.loss)  # fmt: skip
