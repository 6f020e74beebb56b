"""The record of a benchmark run: :class:`BenchmarkResult` (JSON round trip, text report) and the machine it ran on."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


@dataclasses.dataclass
class BenchmarkResult:
    """Outcome of one benchmark run (one task, one simulation budget, one trained network, one method).

    ``c2st`` holds one accuracy per observation (``observations`` lists their numbers); times
    are wall-clock seconds on this machine; ``method`` names the estimator (e.g. ``"amortflow NLE"``).
    """

    task: str
    num_simulations: int
    observations: list[int]
    c2st: list[float]
    train_seconds: float
    epochs: int
    max_epochs: int
    best_epoch: int
    simulate_seconds: float
    sample_seconds: float
    reference_seconds: float
    c2st_seconds: float
    num_posterior_samples: int
    seed: int
    settings: dict[str, Any]
    method: str = ""
    machine: dict[str, Any] = dataclasses.field(default_factory=dict)
    date: str = ""

    @property
    def c2st_mean(self) -> float:
        return float(np.mean(self.c2st))

    @property
    def c2st_sd(self) -> float:
        """Sample standard deviation over observations (0 for one observation)."""
        return float(np.std(self.c2st, ddof=1)) if len(self.c2st) > 1 else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["c2st_mean"], out["c2st_sd"] = self.c2st_mean, self.c2st_sd
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BenchmarkResult:
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})

    def save_json(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` as JSON (parent folders are created); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load_json(cls, path: str | os.PathLike) -> BenchmarkResult:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_text(self) -> str:
        """A short human-readable report."""
        per_obs = ", ".join(f"{i}: {c:.3f}" for i, c in zip(self.observations, self.c2st))
        return "\n".join(
            [
                f"{self.method} on {self.task}, {self.num_simulations} simulations (seed {self.seed})",
                f"  C2ST (0.5 is perfect): {self.c2st_mean:.3f} +- {self.c2st_sd:.3f} over "
                f"{len(self.c2st)} observations, {self.num_posterior_samples} samples each",
                f"  per observation: {per_obs}",
                f"  training: {self.train_seconds:.1f} s, {self.epochs} epochs (best {self.best_epoch}, "
                f"max {self.max_epochs}); simulation {self.simulate_seconds:.1f} s, "
                f"posterior sampling {self.sample_seconds:.1f} s",
                f"  network: {self.settings.get('network')}",
            ]
        )


@dataclasses.dataclass
class NPEBenchmarkResult(BenchmarkResult):
    """Outcome of :func:`~amortflow.benchmarks.runner.run_npe_benchmark` (neural posterior estimation)."""

    method: str = "amortflow NPE"


@dataclasses.dataclass
class NLENREBenchmarkResult(BenchmarkResult):
    """Outcome of :func:`~amortflow.benchmarks.nle_nre.run_mcmc_benchmark` (NLE or NRE, posterior by MCMC)."""

    method: str = "amortflow NLE"


def machine_info() -> dict[str, Any]:
    """CPU count, CPU model, RAM and platform of this machine (Linux ``/proc`` where available)."""
    info: dict[str, Any] = {"nproc": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["ram_gib"] = round(int(line.split()[1]) / 2**20, 1)
                break
    except OSError:
        pass
    if hasattr(os, "sched_getaffinity"):
        info["nproc"] = len(os.sched_getaffinity(0))
    return info
