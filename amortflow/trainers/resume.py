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
from amortflow.trainers.building import build_from_record, input_record
from amortflow.trainers.checkpoints import Candidate
from amortflow.trainers.history import LossHistory
from amortflow.trainers.optimizers import make_optimizer, optimizer_config, optimizer_from_config
from amortflow.trainers.seeds import network_seed_states

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

    def _init_resume_state(self) -> None:
        self._run: dict | None = None  # the current or last run (plan and position)
        self._runs_started = 0
        self._resume_candidate: Candidate | None = None
        self._restored_state: dict | None = None
        self._deferred_weights: Candidate | None = None
        self._best_weights: BestWeights | None = None  # for EarlyStopper(restore_best_weights=True)
        self._input_record: dict | None = None  # shapes of the configured training inputs
        self._last_saved_step: int | None = None
        self.last_checkpoint: str | None = None
        self.nonfinite_steps = 0
        self._forward_done = False

    # --- runs -----------------------------------------------------------------------------
    def _pending_run(self) -> dict | None:
        run = self._run
        return run if run is not None and not run["finished"] else None

    def _next_run_index(self) -> int:
        pending = self._pending_run()
        return pending["index"] if pending is not None else self._runs_started

    def _select_run(self, source) -> tuple[dict, bool]:
        """The run for ``source``: the unfinished one if it has the same plan, else a new one."""
        identity = source.identity()
        pending = self._pending_run()
        if pending is not None and pending["identity"] == identity:
            logger.info(
                "Continuing the unfinished %s run at epoch %d, iteration %d (step %d).",
                source.mode, self.epoch + 1, pending["iteration"] + 1, self.step,
            )  # fmt: skip
            return pending, True
        if pending is not None:
            logger.warning(
                "The unfinished run %s is not continued: this call's plan %s differs; a new run starts.",
                pending["identity"], identity,
            )  # fmt: skip
        source.run = self._runs_started
        self._runs_started += 1
        self._resume_candidate = None  # a new run never takes the checkpoint's optimizer
        self._run = {
            "index": source.run, "identity": identity, "start_epoch": self.epoch, "start_step": self.step,
            "total_steps": source.planned_steps(), "epoch_in_run": 0, "iteration": 0, "finished": False,
            "stopper": None, "optimizer_config": None,
        }  # fmt: skip
        return self._run, False

    def _resume_optimizer(self, run: dict, optimizer):
        """The optimizer of a continued run: the one in memory, or rebuilt and restored from the checkpoint."""
        if self.optimizer is not None and self._resume_candidate is None:
            return self.optimizer  # interrupted in this process: its optimizer is still here
        if optimizer is not None:
            logger.warning("optimizer=... given for a resumed run: its slots are restored from the checkpoint.")
        config = run.get("optimizer_config")
        if optimizer is None:
            optimizer = optimizer_from_config(config) if config else make_optimizer(None, run["total_steps"], self.default_lr)
        optimizer = make_optimizer(optimizer, run["total_steps"], self.default_lr)
        self._compiled.set_optimizer(optimizer)
        self._store.restore(self._resume_candidate, {"optimizer": optimizer}, require_all=False)
        expected = self._restored_state.get("optimizer_iterations")
        if expected is not None and int(optimizer.iterations.numpy()) != expected:
            raise CheckpointError(
                f"The optimizer restored from {self._resume_candidate.prefix} is at iteration "
                f"{int(optimizer.iterations.numpy())}, but the checkpoint recorded {expected}; the optimizer "
                "does not match the one that was saved."
            )
        self._resume_candidate = None
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
        return {
            "entropy": self.seeds.entropy,
            "step": self.step,
            "epoch": self.epoch,
            "runs_started": self._runs_started,
            "run": self._run,
            "history": self.history.state(),
            "nonfinite_steps": self.nonfinite_steps,
            "amortizer": {"class": type(self.amortizer).__name__, "weights": [list(w.shape) for w in self.amortizer.weights]},
            "optimizer_iterations": None if self.optimizer is None else int(self.optimizer.iterations.numpy()),
            "buffer_capacity": None if self.replay_buffer is None else self.replay_buffer.capacity,
            "inputs": self._input_record,
        }

    def save_checkpoint(self) -> str | None:
        """Write a checkpoint now (no-op without ``checkpoint_path`` or when this step is saved already)."""
        if self._store is None or self._last_saved_step == self.step:
            return self.last_checkpoint
        if self._run is not None and self.optimizer is not None:
            self._run["optimizer_config"] = optimizer_config(self.optimizer)
        self._store.folder.mkdir(parents=True, exist_ok=True)
        self.history.append_csv(self._store.history_path)
        objects = self._model_objects()
        if self.optimizer is not None:
            objects["optimizer"] = self.optimizer
        self.last_checkpoint = self._store.save(self.step, objects, self._state_dict(), buffer=self.replay_buffer,
                                                best=self._best_weights)  # fmt: skip
        self._last_saved_step = self.step
        return self.last_checkpoint

    # --- restoring ------------------------------------------------------------------------
    def _is_built(self) -> bool:
        """True once a batch went through the amortizer here (so every weight exists)."""
        return self._forward_done

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
            if buffer is not None and self.replay_buffer is not None:
                self.replay_buffer.load(candidate.buffer_path)  # the user's buffer object (memory=...) stays
            elif buffer is not None:
                self.replay_buffer = buffer
            self._apply_state(state, candidate, history, seed)
            self._best_weights = best
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
            own = self.replay_buffer
            buffer = MemoryReplayBuffer(own.capacity if own is not None else capacity)  # a trial copy
            buffer.load(candidate.buffer_path)
        return state, history, buffer, best

    def _load_or_defer(self, candidate: Candidate, state: dict, best: BestWeights | None) -> None:
        """Load the weights now; build the networks from the recorded input shapes first if needed."""
        if not self._is_built() and state.get("inputs"):
            try:
                build_from_record(self.amortizer, state["inputs"], self.strategy)
            except Exception as exc:  # noqa: BLE001 - any failure means the record does not fit this amortizer
                raise CheckpointError(
                    f"Checkpoint {candidate.prefix} records training inputs {state['inputs']}, which this "
                    f"{type(self.amortizer).__name__} cannot take ({type(exc).__name__}: {exc})."
                ) from exc
            self._forward_done = True
            self._input_record = state["inputs"]
        if self._is_built():
            self._check_compatible(state, candidate)
            self._load_weights(candidate, state, best)
            return
        # checkpoints written before 2026-12-07 record no input shapes: load at the first batch
        self._deferred_weights = candidate
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
        if self._is_built():
            shapes = [list(w.shape) for w in self.amortizer.weights]
            if shapes != saved.get("weights"):
                raise CheckpointError(
                    f"Checkpoint {candidate.prefix} holds {len(saved.get('weights', []))} weights of other shapes "
                    f"than this amortizer's {len(shapes)}; it was written by a different network configuration."
                )

    def _apply_state(self, state: dict, candidate: Candidate, history: LossHistory, seed) -> None:
        if seed is not None and int(seed) != state["entropy"]:
            logger.info("seed=%s is replaced by the seed stored in the checkpoint (%s).", seed, state["entropy"])
        self.seeds.entropy = int(state["entropy"])
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self._runs_started = int(state["runs_started"])
        self._run = state["run"]
        self.history = history
        self.nonfinite_steps = int(state.get("nonfinite_steps", 0))
        self._input_record = state.get("inputs") or self._input_record
        history.truncate_csv(self._store.history_path)  # drop rows written after the checkpoint
        self._last_saved_step = self.step
        self._resume_candidate, self._restored_state = candidate, state
        self.last_checkpoint = candidate.prefix
        logger.info("Restored checkpoint %s (step %d, %d epochs done).", candidate.prefix, self.step, self.epoch)

    def _ensure_built(self, source) -> None:
        """Build the amortizer on one batch if the consistency check did not, then load deferred weights."""
        if not self._is_built():
            batch = next(iter(source.epoch_batches(0, 0)))
            self.amortizer.compute_loss(batch, training=False)
            self._forward_done = True
            self._input_record = input_record(batch)
        if self._deferred_weights is not None:
            candidate, self._deferred_weights = self._deferred_weights, None
            self._check_compatible(self._restored_state, candidate)
            self._load_weights(candidate, self._restored_state, self._best_weights)

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
