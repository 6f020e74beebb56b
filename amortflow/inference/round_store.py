"""Checkpoint folder of a sequential run: every round's proposal draws and simulations, as they arrive.

Layout of ``checkpoint_path``::

    manifest.json               what the run is (method, x_obs, prior dimension) and, per round, how
                                far it got: "proposed", "simulated" or "trained"
    round_<r>.proposal.npz      the round's parameter draws from its proposal (rounds 2, 3, ...)
    round_<r>.simulations.npz   the round's raw simulations
    trainer/, trainer_atomic/   the Trainer checkpoints of the networks (see
                                :mod:`amortflow.trainers.checkpoints`; ``trainer_atomic`` is SNPE-C's
                                atomic-loss trainer of rounds 2, 3, ...)

Every file is written to a temporary name and ``os.replace``-d into place, the manifest last, so
a process killed at any moment leaves each round either at its last recorded stage or, for a
data file written but not yet recorded, one stage behind (the file is rewritten). The manifest
records each data file's SHA-256, which catches a file damaged after it was written. Each round
also records the state of the run's random generator after its proposal was drawn, so a resumed
run continues with the same seeds as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from amortflow._checks import RAW_KEYS
from amortflow.exceptions import CheckpointError
from amortflow.trainers.checkpoints import write_json_atomic

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
STAGES = ("proposed", "simulated", "trained")


def run_identity(method: str, x_obs: np.ndarray, num_params: int) -> dict:
    """What a checkpoint must agree on to be resumed: the method, ``x_obs`` (shape and SHA-256 of its bytes), ``D``."""
    x_obs = np.ascontiguousarray(x_obs, dtype=np.float32)
    return {"method": method, "x_obs_shape": list(x_obs.shape), "x_obs_sha256": _sha256(x_obs.tobytes()),
            "num_params": int(num_params)}  # fmt: skip


class RoundStore:
    """Reads and writes the checkpoint folder of one :class:`~amortflow.inference.SequentialInference` run.

    Parameters
    ----------
    folder : path
        The run's ``checkpoint_path``.
    identity : dict
        :func:`run_identity` of the run; a manifest with another raises a :class:`CheckpointError`.
    """

    def __init__(self, folder: str | os.PathLike, identity: Mapping):
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise CheckpointError(f"checkpoint_path {self.folder} exists but is not a folder.")
        self.identity = dict(identity)
        self.rounds: list[dict] = []
        if (self.folder / MANIFEST).exists():
            self.rounds = self._read_manifest()

    def trainer_folder(self) -> Path:
        """The Trainer's checkpoint folder inside the run's folder."""
        return self.folder / "trainer"

    # --- reading ----------------------------------------------------------------------------
    def _read_manifest(self) -> list[dict]:
        path = self.folder / MANIFEST
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
            saved, rounds = manifest["identity"], list(manifest["rounds"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{path} cannot be read as a sequential-run manifest ({type(exc).__name__}: {exc}); "
                                  "move the folder away to start a new run.") from exc  # fmt: skip
        for key, value in self.identity.items():
            if saved.get(key) != value:
                raise CheckpointError(
                    f"The checkpoint in {self.folder} belongs to another run: its {key} is {saved.get(key)!r}, this "
                    f"run's is {value!r}. Pass another checkpoint_path (or move the folder away) to start a new run."
                )
        for number, entry in enumerate(rounds, start=1):
            if entry.get("round") != number or entry.get("stage") not in STAGES:
                raise CheckpointError(f"{path} lists round {entry.get('round')!r} (stage {entry.get('stage')!r}) "
                                      f"where round {number} was expected; the manifest is damaged.")  # fmt: skip
        return rounds

    def entry(self, index: int) -> dict | None:
        """The manifest entry of round ``index + 1``, or None if the round never started."""
        return self.rounds[index] if index < len(self.rounds) else None

    def load_proposal(self, index: int) -> np.ndarray:
        """The proposal draws ``(N, D)`` recorded for round ``index + 1``."""
        return self._load(index, "proposal")["theta"]

    def load_simulations(self, index: int) -> dict:
        """The raw simulations (six keys) recorded for round ``index + 1``."""
        arrays = self._load(index, "simulations")
        return {key: _from_array(arrays[key]) if key in arrays else None for key in RAW_KEYS}

    def _load(self, index: int, kind: str) -> dict:
        entry = self.rounds[index]
        path = self.folder / entry[kind]["file"]
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise CheckpointError(f"{path}, recorded in {MANIFEST} for round {index + 1}, cannot be read ({exc}).") from exc
        if _sha256(content) != entry[kind]["sha256"]:
            raise CheckpointError(f"{path} does not match the SHA-256 that {MANIFEST} recorded for round {index + 1}: "
                                  "the file is damaged. Move the folder away to start a new run.")  # fmt: skip
        with np.load(io.BytesIO(content), allow_pickle=False) as data:
            return {key: data[key] for key in data.files}

    # --- writing ----------------------------------------------------------------------------
    def record_proposal(self, index: int, theta: np.ndarray, info: Mapping) -> None:
        """Save round ``index + 1``'s proposal draws; ``info`` (seeds, RNG state, acceptance) goes into the manifest."""
        self._start(index, info)
        self.rounds[index]["proposal"] = self._write(f"round_{index + 1:03d}.proposal.npz", {"theta": np.asarray(theta)})
        self._commit(index, "proposed")

    def record_simulations(self, index: int, raw: Mapping, info: Mapping) -> None:
        """Save round ``index + 1``'s raw simulations."""
        self._start(index, info)
        arrays = {key: np.asarray(raw[key]) for key in RAW_KEYS if raw.get(key) is not None}
        self.rounds[index]["simulations"] = self._write(f"round_{index + 1:03d}.simulations.npz", arrays)
        self._commit(index, "simulated")

    def record_trained(self, index: int, record: Mapping, rng_state: Mapping) -> None:
        """Mark round ``index + 1`` trained, with its history record and the run's RNG state after it."""
        self.rounds[index].update(record=dict(record), rng_after_round=rng_state)
        self._commit(index, "trained")

    def _start(self, index: int, info: Mapping) -> None:
        if index == len(self.rounds):
            self.rounds.append({"round": index + 1, "stage": None})
        self.rounds[index].update(info)

    def _write(self, name: str, arrays: Mapping[str, np.ndarray]) -> dict:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        content = buffer.getvalue()
        self.folder.mkdir(parents=True, exist_ok=True)
        path, tmp = self.folder / name, self.folder / f".{name}.tmp"
        with open(tmp, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        return {"file": name, "sha256": _sha256(content)}

    def _commit(self, index: int, stage: str) -> None:
        self.rounds[index]["stage"] = stage
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.folder / MANIFEST, {"format": FORMAT_VERSION, "identity": self.identity,
                                                   "rounds": self.rounds})  # fmt: skip


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _from_array(value: np.ndarray) -> Any:
    """A saved array back as it was: a 0-d array (a non-batchable context such as ``n_obs``) as its scalar."""
    return value.item() if value.ndim == 0 else value
