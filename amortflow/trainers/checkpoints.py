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
file that is then ``os.replace``-d into place), then the TF checkpoint, whose ``checkpoint``
index file TF writes last. A process killed at any moment therefore leaves the index pointing to a
checkpoint whose files are all complete; files of an unfinished save are ignored (and
overwritten by the next save). ``<step>`` is the trainer's global step, so every file of one
checkpoint carries the same number and a state file that does not belong to the
checkpoint is detected.
"""

from __future__ import annotations

import json
import logging
import os
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
        self.folder = Path(folder)
        self.max_to_keep = max_to_keep

    @property
    def history_path(self) -> Path:
        return self.folder / HISTORY_FILE

    # --- finding ------------------------------------------------------------------------
    def candidates(self) -> list[Candidate] | None:
        """Checkpoints of the folder, newest first; None when the folder does not exist (fresh start).

        Raises
        ------
        CheckpointError
            If the folder is empty, is not a directory, or has no readable checkpoint index.
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
        try:
            state = tf.train.get_checkpoint_state(str(self.folder))
        except Exception as exc:  # noqa: BLE001 - a garbled index raises parser errors of several types
            raise CheckpointError(f"The checkpoint index {self.folder / 'checkpoint'} is corrupt ({exc}).") from exc
        if state is None or not state.all_model_checkpoint_paths:
            raise CheckpointError(
                f"checkpoint_path {self.folder} holds no checkpoint index (the 'checkpoint' file written by "
                f"every save); found {files[:10]}. It is not an amortflow checkpoint folder, or no "
                "checkpoint was completed; use another path or remove the folder to start over."
            )
        prefixes = list(state.all_model_checkpoint_paths)
        found = []
        for prefix in reversed(prefixes):
            path = Path(prefix)
            prefix = str(path if path.is_absolute() else self.folder / path)
            found.append(Candidate(prefix, _number(prefix)))
        return found

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
    def save(self, number: int, objects: dict[str, Any], state: dict, buffer=None, best=None) -> str:
        """Write checkpoint ``number`` (state file, buffer and best weights first, TF index last); return its prefix."""
        self.folder.mkdir(parents=True, exist_ok=True)
        candidate = Candidate(str(self.folder / f"{CHECKPOINT_NAME}-{number}"), number)
        write_json_atomic(candidate.state_path, {**state, "checkpoint_number": number, "format_version": FORMAT_VERSION})
        if buffer is not None:
            buffer.save(candidate.buffer_path)
        if best is not None:
            best.save(candidate.best_path)
        manager = tf.train.CheckpointManager(
            tf.train.Checkpoint(**objects), str(self.folder), max_to_keep=self.max_to_keep, checkpoint_name=CHECKPOINT_NAME
        )
        prefix = manager.save(checkpoint_number=number)
        self._remove_stale_side_files({Path(p).name for p in manager.checkpoints})
        return prefix

    def _remove_stale_side_files(self, kept: set[str]) -> None:
        for suffix in (STATE_SUFFIX, BUFFER_SUFFIX, BEST_SUFFIX):
            for path in self.folder.glob(f"{CHECKPOINT_NAME}-*{suffix}"):
                if path.name[: -len(suffix)] not in kept:
                    path.unlink(missing_ok=True)


def _number(prefix: str) -> int:
    try:
        return int(Path(prefix).name.rsplit("-", 1)[1])
    except (IndexError, ValueError) as exc:
        raise CheckpointError(f"Unexpected checkpoint name {prefix!r}; expected '{CHECKPOINT_NAME}-<step>'.") from exc
