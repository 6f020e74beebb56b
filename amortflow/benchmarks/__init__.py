"""The SBI benchmark tasks with reference posteriors (Lueckmann et al., 2021, plus inverse kinematics).

>>> import amortflow as af
>>> bench = af.benchmarks.Benchmark("gaussian_linear")      # doctest: +SKIP
>>> model, configurator = bench.generative_model, bench.configurator   # doctest: +SKIP
>>> x_obs = bench.task.observation(1)                                    # doctest: +SKIP
>>> reference = bench.task.reference_posterior_samples(1, n_samples=10_000)   # doctest: +SKIP

Observations are generated from fixed seeds (the original benchmark's files cannot be
downloaded here), so they differ from sbibm's observation by observation; the models are
the same. Slow reference samples are cached under ``~/.cache/amortflow/reference``
(``$AMORTFLOW_CACHE_DIR`` moves it).

Modules by job: :mod:`~amortflow.benchmarks.tasks` and :mod:`~amortflow.benchmarks.base` (the
tasks), :mod:`~amortflow.benchmarks.benchmark` (a task wired to the library),
:mod:`~amortflow.benchmarks.reference` and :mod:`~amortflow.benchmarks.reference_smc` (reference
posteriors by tempered SMC), :mod:`~amortflow.benchmarks.protocol` (what the accuracy protocols
share), :mod:`~amortflow.benchmarks.runner` (NPE, the README recipe),
:mod:`~amortflow.benchmarks.nle_nre` (NLE and NRE with MCMC) and
:mod:`~amortflow.benchmarks.result` (the record of a run). The configurators and
:class:`~amortflow.parameter_space.ParameterSpace` live in the library proper
(:mod:`amortflow.configurators`, :mod:`amortflow.parameter_space`).
"""

from amortflow.benchmarks.base import Task
from amortflow.benchmarks.benchmark import DATA_LAYOUTS, Benchmark, SetDataConfigurator, StandardizingPosteriorConfigurator
from amortflow.benchmarks.cache import reference_cache_dir
from amortflow.diagnostics.metrics.convergence import split_rhat
from amortflow.benchmarks.reference import (
    PosteriorModel,
    ReferenceSamplingError,
    SamplerResult,
    rejection_sample,
    sample_posterior,
)
from amortflow.benchmarks.tasks import TASK_NAMES, TASKS, get_task
from amortflow.parameter_space import PARAMETER_SPACES, ParameterSpace  # general tools, re-exported here

__all__ = [
    "DATA_LAYOUTS",
    "PARAMETER_SPACES",
    "ParameterSpace",
    "TASKS",
    "TASK_NAMES",
    "Benchmark",
    "PosteriorModel",
    "ReferenceSamplingError",
    "SamplerResult",
    "SetDataConfigurator",
    "StandardizingPosteriorConfigurator",
    "Task",
    "get_task",
    "reference_cache_dir",
    "rejection_sample",
    "sample_posterior",
    "split_rhat",
]
