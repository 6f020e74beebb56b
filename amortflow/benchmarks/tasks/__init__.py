"""The benchmark tasks, one module each, and the registry that finds them by name.

>>> from amortflow.benchmarks.tasks import get_task, TASK_NAMES
>>> task = get_task("two_moons")
>>> task.sample_prior(3, rng=0).shape
(3, 2)
"""

from __future__ import annotations

from amortflow.benchmarks.base import Task
from amortflow.benchmarks.tasks.bernoulli_glm import BernoulliGLM
from amortflow.benchmarks.tasks.bernoulli_glm_raw import BernoulliGLMRaw
from amortflow.benchmarks.tasks.gaussian_linear import GaussianLinear
from amortflow.benchmarks.tasks.gaussian_linear_uniform import GaussianLinearUniform
from amortflow.benchmarks.tasks.gaussian_mixture import GaussianMixture
from amortflow.benchmarks.tasks.inverse_kinematics import InverseKinematics
from amortflow.benchmarks.tasks.lotka_volterra import LotkaVolterra
from amortflow.benchmarks.tasks.sir import SIR
from amortflow.benchmarks.tasks.slcp import SLCP
from amortflow.benchmarks.tasks.slcp_distractors import SLCPDistractors
from amortflow.benchmarks.tasks.two_moons import TwoMoons
from amortflow.exceptions import ArgumentError

#: Task classes by name, in the order of Lueckmann et al. (2021), then inverse kinematics.
TASKS: dict[str, type[Task]] = {
    cls.name: cls
    for cls in (
        GaussianLinear,
        GaussianLinearUniform,
        SLCP,
        SLCPDistractors,
        BernoulliGLM,
        BernoulliGLMRaw,
        GaussianMixture,
        TwoMoons,
        SIR,
        LotkaVolterra,
        InverseKinematics,
    )
}
TASK_NAMES: tuple[str, ...] = tuple(TASKS)


def get_task(name: str) -> Task:
    """A new instance of the task called ``name`` (see :data:`TASK_NAMES`)."""
    if name not in TASKS:
        raise ArgumentError(f"Unknown benchmark task {name!r}; expected one of {', '.join(TASK_NAMES)}.")
    return TASKS[name]()


__all__ = [
    "TASKS",
    "TASK_NAMES",
    "BernoulliGLM",
    "BernoulliGLMRaw",
    "GaussianLinear",
    "GaussianLinearUniform",
    "GaussianMixture",
    "InverseKinematics",
    "LotkaVolterra",
    "SIR",
    "SLCP",
    "SLCPDistractors",
    "Task",
    "TwoMoons",
    "get_task",
]
