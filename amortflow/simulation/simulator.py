"""The simulator ``x ~ p(x | theta)``: a per-simulation function or a batched one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from amortflow.exceptions import ArgumentError, ShapeError
from amortflow.simulation.context import UNSET, ContextGenerator, context_args, draw_context
from amortflow.simulation.validation import (
    SeedLike,
    UserFunction,
    check_batch_dim,
    format_vector,
    resolve_rng,
    stack_per_sample,
    to_numeric,
)


class Simulator:
    """Simulates data sets from parameter vectors.

    Give exactly one of:

    * ``simulator_fun(theta, *context, rng=None)``: one simulation from one parameter
      vector ``theta`` of shape ``(D,)``; amortflow loops over the batch. Contexts are
      passed only when they exist, as ``(batchable_context[i], non_batchable_context)``.
    * ``batch_simulator_fun(params, *context, rng=None)``: the whole batch, ``params`` of
      shape ``(B, D)``, contexts as whole batches; returns ``(B, ...)``.

    A simulation may have any shape (``(N, d)`` for a set of ``N`` observations, ``(T, d)``
    for a time series); a scalar per simulation becomes ``(B, 1)``. All simulations of a
    batch must have the same shape.

    Parameters
    ----------
    simulator_fun, batch_simulator_fun : callable, optional
        See above. Functions with an ``rng`` parameter receive a ``numpy.random.Generator``.
    context_generator : ContextGenerator, optional
        Context passed to the simulator functions.

    Examples
    --------
    >>> sim = Simulator(simulator_fun=lambda theta, rng: rng.normal(theta, 1.0, size=(10, 2)))
    >>> sim(np.zeros((3, 2)), rng=0)["sim_data"].shape
    (3, 10, 2)
    """

    def __init__(
        self,
        simulator_fun: Callable | None = None,
        batch_simulator_fun: Callable | None = None,
        context_generator: ContextGenerator | None = None,
    ):
        if (simulator_fun is None) == (batch_simulator_fun is None):
            given = "both" if simulator_fun is not None else "neither"
            raise ArgumentError(f"Simulator needs exactly one of simulator_fun or batch_simulator_fun; received {given}.")
        if context_generator is not None and not isinstance(context_generator, ContextGenerator):
            raise ArgumentError(
                "Simulator(context_generator=...) must be a ContextGenerator, "
                f"received {type(context_generator).__name__}."
            )
        self.is_batched = batch_simulator_fun is not None
        if self.is_batched:
            self._fun = UserFunction(batch_simulator_fun, "batch_simulator_fun")
        else:
            self._fun = UserFunction(simulator_fun, "simulator_fun")
        self.context_generator = context_generator

    @property
    def label(self) -> str:
        """The simulator function's name as used in error messages."""
        return self._fun.label

    @property
    def uses_global_rng(self) -> bool:
        """True if some function of this simulator draws from NumPy's global state."""
        ctx = self.context_generator is not None and self.context_generator.uses_global_rng
        return ctx or not self._fun.takes_rng

    def __call__(self, params, rng: SeedLike = None, *, non_batchable_context: Any = UNSET) -> dict:
        """Simulate one data set per row of ``params``.

        Parameters
        ----------
        params : array of shape (B, D)
            Parameter vectors.
        rng : numpy.random.Generator or int, optional
            Randomness for functions with an ``rng`` parameter.
        non_batchable_context : optional, keyword-only
            Reuse this non-batchable context instead of drawing a new one.

        Returns
        -------
        dict
            ``sim_data (B, ...)`` float array, ``batchable_context`` and
            ``non_batchable_context`` (``None`` when absent).
        """
        params = np.asarray(params)
        if params.ndim != 2:
            raise ShapeError(f"Simulator expected params of shape (B, D), received shape {params.shape}.")
        rng = resolve_rng(rng)
        batch_size = params.shape[0]
        context = draw_context(self.context_generator, batch_size, rng, non_batchable_context)
        if self.is_batched:
            data = self._simulate_batched(params, context, rng)
        else:
            data = self._simulate_looped(params, context, rng)
        if data.ndim == 1:  # one number per simulation
            data = data[:, None]
        return {"sim_data": data, **context}

    def _simulate_batched(self, params: np.ndarray, context: dict, rng: np.random.Generator) -> np.ndarray:
        args = context_args(context["batchable_context"], context["non_batchable_context"])
        batch_size = params.shape[0]
        value = self._fun(params, *args, rng=rng, during=f"while simulating a batch of {batch_size}")
        data = to_numeric(value, self.label, "sim_data")
        check_batch_dim(data, batch_size, self.label, "sim_data", f"({batch_size}, ...) with one simulation per row of params")
        return data

    def _simulate_looped(self, params: np.ndarray, context: dict, rng: np.random.Generator) -> np.ndarray:
        batchable, non_batchable = context["batchable_context"], context["non_batchable_context"]
        values = []
        for i, theta in enumerate(params):
            args = context_args(None if batchable is None else batchable[i], non_batchable, batchable is not None)
            during = f"while simulating data set {i} from parameters {format_vector(theta)}"
            values.append(self._fun(theta, *args, rng=rng, during=during))
        return stack_per_sample(values, self.label, "sim_data")

    def __repr__(self) -> str:
        return f"Simulator({self.label})"
