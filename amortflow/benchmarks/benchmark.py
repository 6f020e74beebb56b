"""``Benchmark(name)``: a task wired into amortflow's simulation and configuration layers.

>>> import amortflow as af
>>> bench = af.benchmarks.Benchmark("two_moons")
>>> out = bench.generative_model(batch_size=4, rng=0)
>>> conf = bench.configurator(out)
>>> conf["parameters"].shape, conf["direct_conditions"].shape
((4, 2), (4, 2))
"""

from __future__ import annotations

import functools

import numpy as np

from amortflow.benchmarks.base import Task
from amortflow.configurators import (  # noqa: F401 - re-exported: amortflow.benchmarks names them
    LikelihoodConfigurator,
    ParameterSpaceConfigurator,
    SetDataConfigurator,
    StandardizingPosteriorConfigurator,
)
from amortflow.parameter_space import ParameterSpace
from amortflow.benchmarks.tasks import get_task
from amortflow.configuration import DefaultPosteriorConfigurator
from amortflow.exceptions import ArgumentError


#: How :attr:`Benchmark.configurator` passes the data to the networks.
DATA_LAYOUTS = ("vector", "set")


class Benchmark:
    """One benchmark task, ready for amortized inference.

    Parameters
    ----------
    name : str
        A task name from :data:`amortflow.benchmarks.TASK_NAMES`.
    standardize_data : bool, default True
        Z-score the data in :attr:`configurator` with statistics of ``n_pilot`` prior predictive
        simulations (seed ``seed``); ``False`` gives the plain ``DefaultPosteriorConfigurator``.
    n_pilot : int, default 10_000
    seed : int, default 0
    parameter_space : {"identity", "log", "logit"}, default "identity"
        The configurator passes ``g(theta)`` to the network, which then learns the posterior in
        that space (see :mod:`amortflow.parameter_space`): ``"log"`` for priors on
        positive values (Lotka-Volterra, SIR: log-normal priors, whose posteriors of rates are
        closer to Gaussian in log space), ``"logit"`` for priors on a box (uniform priors, whose
        posteriors are cut off at the box's edges). Map the network's draws back with
        :meth:`to_task_parameters`.

    Attributes
    ----------
    task : Task
        The task: prior, simulator, observations, reference posterior.
    """

    def __init__(self, name: str, *, standardize_data: bool = True, n_pilot: int = 10_000, seed: int = 0,
                 parameter_space: str = "identity", data_layout: str = "vector"):  # fmt: skip
        self.name = name
        self.task: Task = get_task(name)
        self.data_layout = self._fitting_data_layout(data_layout)
        self.standardize_data = standardize_data
        self.parameter_space = self._fitting_parameter_space(parameter_space)
        self.n_pilot = int(n_pilot)
        self.seed = int(seed)

    @functools.cached_property
    def prior(self):
        """``amortflow.simulation.Prior`` built from the task's TFP prior."""
        from amortflow.simulation import Prior

        return Prior(distribution=self.task.prior_distribution, param_names=list(self.task.param_names))

    @functools.cached_property
    def simulator(self):
        """``amortflow.simulation.Simulator`` around the task's batched numpy simulator."""
        from amortflow.simulation import Simulator

        return Simulator(batch_simulator_fun=self.task.simulate)

    @functools.cached_property
    def generative_model(self):
        """``amortflow.simulation.GenerativeModel(prior, simulator)``: raw dicts with ``sim_data (B, dim_data)``."""
        from amortflow.simulation import GenerativeModel

        return GenerativeModel(self.prior, self.simulator, name=self.name)

    @functools.cached_property
    def configurator(self):
        """Raw dict -> ``parameters``, ``direct_conditions`` (float32); with ``data_layout="set"``
        ``summary_conditions`` instead of ``direct_conditions``.

        See :class:`StandardizingPosteriorConfigurator` and :class:`SetDataConfigurator`; the pilot
        simulations run on first access.
        """
        if self.data_layout == "set":
            return self._set_configurator()
        return self._posterior_configurator(dequantized_pilot=False)

    @functools.cached_property
    def likelihood_configurator(self):
        """Raw dict -> ``observables`` (the data as :attr:`configurator` transforms them) and ``conditions``
        (the parameters), float32: the inputs of an :class:`~amortflow.amortizers.AmortizedLikelihood` (NLE).

        For tasks with integer data (``task.integer_data``) the data are dequantized first (see
        :mod:`amortflow.dequantization`), and the z-score statistics are those of the
        dequantized pilot data.
        """
        if not self.task.integer_data:
            vector = self.configurator if self.data_layout == "vector" else self._posterior_configurator(False)
            return LikelihoodConfigurator(vector)
        from amortflow.dequantization import UniformDequantization

        return UniformDequantization(LikelihoodConfigurator(self._posterior_configurator(dequantized_pilot=True)), self.seed)

    def _posterior_configurator(self, dequantized_pilot: bool):
        if not self.standardize_data:
            if self.parameter_space.is_identity:
                return DefaultPosteriorConfigurator()
            return ParameterSpaceConfigurator(self.parameter_space)
        return StandardizingPosteriorConfigurator.from_simulations(self._pilot_data(dequantized_pilot), self.parameter_space)

    def _set_configurator(self) -> SetDataConfigurator:
        set_shape = self.task.exchangeable_draws
        if not self.standardize_data:
            return SetDataConfigurator(set_shape, parameter_space=self.parameter_space)
        return SetDataConfigurator.from_simulations(self._pilot_data(), set_shape, self.parameter_space)

    def _pilot_data(self, dequantized: bool = False) -> np.ndarray:
        """``n_pilot`` prior predictive data sets (seed ``seed``), for the z-score statistics;
        ``dequantized`` adds ``U(0, 1)`` noise (from the same generator, after the simulations)."""
        rng = np.random.default_rng(self.seed)
        data = self.task.simulate(self.task.sample_prior(self.n_pilot, rng), rng)
        return data + rng.uniform(size=data.shape) if dequantized else data

    def _fitting_data_layout(self, layout: str) -> str:
        if layout not in DATA_LAYOUTS:
            raise ArgumentError(f"data_layout must be one of {DATA_LAYOUTS}, received {layout!r}.")
        if layout == "set" and self.task.exchangeable_draws is None:
            raise ArgumentError(
                f"Benchmark({self.name!r}): data_layout='set' needs data made of exchangeable draws "
                f"(task.exchangeable_draws); this task's data vector is not."
            )
        return layout

    def _fitting_parameter_space(self, kind: str) -> ParameterSpace:
        """``ParameterSpace(kind)`` for this task's prior; ArgumentError where the prior does not fit ``kind``."""
        owner = f"Benchmark({self.name!r})"
        if kind == "log" and not self.has_positive_prior():
            raise ArgumentError(f"{owner}: parameter_space='log' needs a prior confined to positive values.")
        if kind == "logit":
            if not self.has_box_prior():
                raise ArgumentError(f"{owner}: parameter_space='logit' needs a prior on a bounded box.")
            return ParameterSpace(kind, *self.prior.support_bounds())
        return ParameterSpace(kind)

    def has_positive_prior(self) -> bool:
        """True if the prior's support lies in ``theta > 0`` (every lower bound is >= 0)."""
        bounds = self.prior.support_bounds()
        return bounds is not None and bool(np.all(bounds[0] >= 0))

    def has_box_prior(self) -> bool:
        """True if the prior's support is a finite box (every bound is finite)."""
        bounds = self.prior.support_bounds()
        return bounds is not None and bool(np.all(np.isfinite(bounds[0])) and np.all(np.isfinite(bounds[1])))

    def to_task_parameters(self, draws: np.ndarray) -> np.ndarray:
        """Network-space draws to the task's parameters: ``g^{-1}`` of :attr:`parameter_space` (the identity by default)."""
        return self.parameter_space.inverse(draws)

    def observation(self, i: int) -> np.ndarray:
        """Observation ``i`` (1-based) as one data set, ``(1, dim_data)``."""
        return self.task.observation(i)[None]

    def configured_observation(self, i: int) -> dict:
        """Observation ``i`` through :attr:`configurator` (``parameters`` is ``None``), for ``amortizer.sample``."""
        return self.configurator({"sim_data": self.observation(i)})

    def true_parameters(self, i: int) -> np.ndarray:
        """``(D,)`` parameters that generated observation ``i``."""
        return self.task.true_parameters(i)

    def reference_posterior_samples(self, i: int, n_samples: int = 10_000, rng=0, **kwargs) -> np.ndarray:
        """Reference posterior samples for observation ``i``; see :meth:`Task.reference_posterior_samples`."""
        return self.task.reference_posterior_samples(i, n_samples, rng, **kwargs)

    def __repr__(self) -> str:
        return f"Benchmark({self.name!r}, D={self.task.dim_parameters}, dim_data={self.task.dim_data})"
