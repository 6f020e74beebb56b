"""Checkpoint folders: TensorFlow checkpoints of the networks and optimizer plus a JSON state file.

Layout of ``checkpoint_path``::

    checkpoint                  TF's index of the checkpoints, written last by each save
    ckpt-<step>.index, .data-*  weights, optimizer slots and iteration count, Keras' RNG state
    ckpt-<step>.state.json      counters, run plan, RNG entropy, validation history, ...
    ckpt-<step>.buffer.npz      replay buffer contents (experience replay only)
    ckpt-<step>.best.npz        weights of the lowest-validation-loss epoch so far
                                (EarlyStopper(restore_best_weights=True) only)
    history_train.csv           per-step losses, append-only; each state file says how many
                                rows belong to its checkpoint

A save writes the CSV rows, then the state file, buffer and best weights (each to a temporary
file that is then ``os.replace``-d into place), then the TF checkpoint files, then the
``checkpoint`` index, last. ``<step>`` is the trainer's global step, so every file of one
checkpoint carries the same number and a state file that does not belong to the checkpoint
is detected.

The index is only a hint: the checkpoints of a folder are the ones the index lists *and* the
``ckpt-<n>.index`` files found by scanning the folder, so a deleted or garbled index loses
nothing. Before a checkpoint counts as restored, :meth:`CheckpointStore.verify` reads every
tensor of it (TF checks each one's CRC32C: weights, optimizer slots, seeds) and compares the
weights' shapes and the optimizer's iteration count with the state file; the trainer also
checks the history rows and side files (see :mod:`amortflow.trainers.resume`). A process
killed at any moment leaves at most one unfinished checkpoint, which fails verification and
is deleted by the next save, together with any other checkpoint newer than the one restored.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tensorflow as tf

from amortflow.exceptions import CheckpointError

logger = logging.getLogger("amortflow")

CHECKPOINT_NAME = "ckpt"
STATE_SUFFIX = ".state.json"
BUFFER_SUFFIX = ".buffer.npz"
BEST_SUFFIX = ".best.npz"
HISTORY_FILE = "history_train.csv"
FORMAT_VERSION = 2  # 2: weights saved one by one (format 1 missed weights of layers held in lists)
INDEX_FILE = "checkpoint"  # TF's index of the checkpoints
VALUE_SUFFIX = ".ATTRIBUTES/VARIABLE_VALUE"  # TF's key of a variable's value in a checkpoint
_NAME = re.compile(rf"{CHECKPOINT_NAME}-(\d+)(?=$|\.)")


@dataclass
class Candidate:
    """One checkpoint of a folder: its TF prefix (``.../ckpt-<n>``) and number."""

    prefix: str
    number: int

    @property
    def state_path(self) -> Path:
        return Path(self.prefix + STATE_SUFFIX)

    @property
    def buffer_path(self) -> Path:
        return Path(self.prefix + BUFFER_SUFFIX)

    @property
    def best_path(self) -> Path:
        return Path(self.prefix + BEST_SUFFIX)


def write_json_atomic(path: Path, content: Any) -> None:
    """Write ``content`` as JSON to ``path`` via a temporary file and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(content, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class CheckpointStore:
    """Saves and finds the checkpoints of one folder.

    Parameters
    ----------
    folder : path
        The checkpoint folder (created at the first save).
    max_to_keep : int
        Number of most recent checkpoints kept; older ones are deleted with their side files.
    """

    def __init__(self, folder: str | os.PathLike, max_to_keep: int = 3):
        if isinstance(max_to_keep, bool) or not isinstance(max_to_keep, int) or max_to_keep < 1:
            raise CheckpointError(f"max_to_keep must be an int >= 1, received {max_to_keep!r}.")
        # absolute once: a relative path must not be joined twice with TF's index entries, nor
        # move when the working directory changes after the trainer was created (notebooks)
        self.folder = Path(os.path.abspath(os.path.expanduser(os.fspath(folder))))
        self.max_to_keep = max_to_keep

    @property
    def history_path(self) -> Path:
        return self.folder / HISTORY_FILE

    # --- finding ------------------------------------------------------------------------
    def candidates(self) -> list[Candidate] | None:
        """Checkpoints of the folder, newest first; None when the folder does not exist (fresh start).

        The numbers come from TF's index and from a scan for ``ckpt-<n>.index`` files; a
        missing or garbled index is reported at WARNING and the scan used alone.

        Raises
        ------
        CheckpointError
            If the folder is empty, is not a directory, or holds no checkpoint at all.
        """
        if not self.folder.exists():
            return None
        if not self.folder.is_dir():
            raise CheckpointError(f"checkpoint_path {self.folder} exists but is not a folder.")
        files = sorted(p.name for p in self.folder.iterdir())
        if not files:
            raise CheckpointError(
                f"checkpoint_path {self.folder} is an empty folder, so there is no checkpoint to resume from. "
                "Pass a path that does not exist yet to start a new run there, or remove the empty folder."
            )
        numbers = set(self._scan()) | set(self._indexed())
        if not numbers:
            raise CheckpointError(
                f"checkpoint_path {self.folder} holds no checkpoint (no 'checkpoint' index and no "
                f"'{CHECKPOINT_NAME}-<step>.index' file); found {files[:10]}. It is not an amortflow checkpoint "
                "folder, or no checkpoint was completed; use another path or remove the folder to start over."
            )
        return [self.candidate(number) for number in sorted(numbers, reverse=True)]

    def candidate(self, number: int) -> Candidate:
        """The checkpoint ``number`` of this folder."""
        return Candidate(str(self.folder / f"{CHECKPOINT_NAME}-{number}"), number)

    def _scan(self) -> list[int]:
        found = []
        for path in self.folder.glob(f"{CHECKPOINT_NAME}-*.index"):
            match = _NAME.fullmatch(path.name[: -len(".index")])
            if match:
                found.append(int(match.group(1)))
        return found

    def _indexed(self) -> list[int]:
        """Numbers listed by TF's index (a missing or unreadable index lists none, with a WARNING)."""
        index = self.folder / INDEX_FILE
        if not index.exists():
            if self._scan():
                logger.warning("%s is missing; the checkpoints were found by scanning the folder.", index)
            return []
        try:
            state = tf.train.get_checkpoint_state(str(self.folder))
        except Exception as exc:  # noqa: BLE001 - a garbled index raises parser errors of several types
            logger.warning("The checkpoint index %s is corrupt (%s); the checkpoints were found by scanning the "
                           "folder.", index, _first_line(exc))  # fmt: skip
            return []
        if state is None or not state.all_model_checkpoint_paths:
            logger.warning("The checkpoint index %s lists no checkpoint; the folder is scanned instead.", index)
            return []
        # TF returns the entries joined with the folder as it was given; only the names count
        names = [Path(prefix).name for prefix in state.all_model_checkpoint_paths]
        return [int(m.group(1)) for m in map(_NAME.fullmatch, names) if m]

    def read_state(self, candidate: Candidate) -> dict:
        """The state file of ``candidate``, checked to belong to it."""
        try:
            with open(candidate.state_path, encoding="utf-8") as handle:
                state = json.load(handle)
        except FileNotFoundError as exc:
            raise CheckpointError(f"Checkpoint {candidate.prefix} has no state file {candidate.state_path}.") from exc
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"State file {candidate.state_path} is corrupt ({exc}).") from exc
        if not isinstance(state, dict) or state.get("checkpoint_number") != candidate.number:
            found = state.get("checkpoint_number") if isinstance(state, dict) else None
            raise CheckpointError(
                f"State file {candidate.state_path} belongs to checkpoint {found!r}, not {candidate.number}."
            )
        if state.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(f"State file {candidate.state_path} has format {state.get('format_version')!r}, "
                                  f"expected {FORMAT_VERSION}.")  # fmt: skip
        return state

    @staticmethod
    def verify(candidate: Candidate, state: dict) -> None:
        """Read every tensor of ``candidate`` and compare it with its state file.

        TF checks the CRC32C of each tensor it reads, so this finds damaged weights, optimizer
        slots and seed states before anything is loaded; it also finds missing weights, weights
        of other shapes and an optimizer at another iteration than the state file records.
        """
        try:
            reader = tf.train.load_checkpoint(candidate.prefix)
            shapes = reader.get_variable_to_shape_map()
            for name in shapes:  # one at a time: a large model is not held twice in memory
                reader.get_tensor(name)
        except Exception as exc:  # noqa: BLE001 - damaged files surface as OpError, DataLossError, ...
            raise CheckpointError(
                f"The TensorFlow files of checkpoint {candidate.prefix} (.index, .data-*) are damaged or "
                f"incomplete: {type(exc).__name__}: {_first_line(exc)}"
            ) from exc
        expected = (state.get("amortizer") or {}).get("weights") or []
        for i, shape in enumerate(expected):
            found = shapes.get(f"amortizer_weight_{i:05d}/{VALUE_SUFFIX}")
            if found is None or list(found) != list(shape):
                raise CheckpointError(f"Checkpoint {candidate.prefix} lacks weight {i} of shape {shape} that its "
                                      f"state file lists (found {found}).")  # fmt: skip
        iterations = state.get("optimizer_iterations")
        if iterations is not None:
            key = f"optimizer/_iterations/{VALUE_SUFFIX}"
            saved = reader.get_tensor(key) if key in shapes else None
            if saved is None or int(saved) != int(iterations):
                raise CheckpointError(f"Checkpoint {candidate.prefix} holds an optimizer at iteration {saved}, but "
                                      f"its state file records {iterations}.")  # fmt: skip

    @staticmethod
    def restore(candidate: Candidate, objects: dict[str, Any], require_all: bool = True) -> None:
        """Load the values of ``candidate`` into ``objects`` (same names as when saved).

        ``require_all`` demands that every variable of ``objects`` gets a value (same architecture).
        """
        try:
            status = tf.train.Checkpoint(**objects).read(candidate.prefix)
            if require_all:
                status.assert_existing_objects_matched()
            status.expect_partial()
        except Exception as exc:  # noqa: BLE001 - damaged files surface as OpError, IndexError, ValueError, ...
            raise CheckpointError(
                f"Cannot restore checkpoint {candidate.prefix}: {type(exc).__name__}: {str(exc).strip()[:500]}"
            ) from exc

    # --- saving -------------------------------------------------------------------------
    def save(self, number: int, objects: dict[str, Any], state: dict, replay_buffer=None, best=None) -> str:
        """Write checkpoint ``number`` (state file, buffer and best weights, TF files, index last); return its prefix.

        Checkpoints newer than ``number`` are from a branch that was not restored (they failed
        verification, or a save was cut short) and are deleted, like those beyond ``max_to_keep``.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        candidate = self.candidate(number)
        # "buffer" stays the state file's key: checkpoints written before the rename must still restore
        files = {"buffer": replay_buffer is not None, "best": best is not None}
        header = {"checkpoint_number": number, "format_version": FORMAT_VERSION, "files": files}
        write_json_atomic(candidate.state_path, {**state, **header})
        if replay_buffer is not None:
            replay_buffer.save(candidate.buffer_path)
        if best is not None:
            best.save(candidate.best_path)
        tf.train.Checkpoint(**objects).write(candidate.prefix)
        kept = sorted((n for n in set(self._scan()) if n <= number), reverse=True)[: self.max_to_keep]
        names = [f"{CHECKPOINT_NAME}-{n}" for n in reversed(kept)]  # oldest first, as TF lists them
        tf.compat.v1.train.update_checkpoint_state(str(self.folder), names[-1], all_model_checkpoint_paths=names)
        self._remove_all_but(set(kept))
        return candidate.prefix

    def _remove_all_but(self, kept: set[int]) -> None:
        """Delete every file of the checkpoints not in ``kept`` (TF files and side files)."""
        for path in self.folder.glob(f"{CHECKPOINT_NAME}-*"):
            match = _NAME.match(path.name)
            if match and int(match.group(1)) not in kept and path.is_file():
                path.unlink(missing_ok=True)


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__

