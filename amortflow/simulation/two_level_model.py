"""A two-level generative model: a :class:`TwoLevelPrior` and a simulator of every group's data.

``x_g ~ p(x | theta_g, phi)`` for each group ``g``: data ``(B, G, N, d)``. The group size ``N`` may
vary between batches through the simulator's non-batchable context (one ``N`` per batch, all groups
of a batch the same size; ragged groups are not supported).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from amortflow._checks import SAME_GROUP_SIZE, shaped_array
from amortflow.exceptions import ArgumentError, SimulationError
from amortflow.simulation.context import ContextGenerator, context_args, draw_context
from amortflow.simulation.prior import check_batch_size
from amortflow.simulation.two_level_prior import TwoLevelPrior
from amortflow.simulation.validation import SeedLike, UserFunction, resolve_rng

#: The keys of a two-level raw simulation dict (see docs/architecture.md).
TWO_LEVEL_RAW_KEYS = (
    "hyper_prior_draws",
    "local_prior_draws",
    "shared_prior_draws",
    "prior_non_batchable_context",
    "sim_non_batchable_context",
    "sim_batchable_context",
    "sim_data",
)


class TwoLevelGenerativeModel:
    """Draws hyper, local (and shared) parameters from a :class:`TwoLevelPrior`, then each group's data.

    Parameters
    ----------
    prior : TwoLevelPrior
    simulator : callable
        Batched: ``simulator(local (B, G, L), [shared (B, S),] *context, rng=) -> (B, G, N, d)``
        (or ``(B, G, N)`` for one feature). ``shared`` is passed only when the prior has shared
        parameters; ``context`` holds the contexts of ``context_generator`` that exist
        (batchable, non-batchable), as for :class:`~amortflow.simulation.Simulator`.
    context_generator : ContextGenerator, optional
        E.g. ``ContextGenerator(non_batchable_context_fun=lambda rng: int(rng.integers(5, 20)))``
        for a group size ``N`` that changes between batches.
    skip_test : bool, default False
        Skip the pilot run of two simulations that checks the shapes at construction.
    name : str, default "anonymous"
        Used in log messages.

    Notes
    -----
    A call returns a raw dict with :data:`TWO_LEVEL_RAW_KEYS`: ``hyper_prior_draws (B, H)``,
    ``local_prior_draws (B, G, L)``, ``shared_prior_draws (B, S)`` or None,
    ``prior_non_batchable_context`` (the number of groups ``G``), ``sim_non_batchable_context``,
    ``sim_batchable_context`` (None when absent) and ``sim_data (B, G, N, d)``.
    """

    def __init__(
        self,
        prior: TwoLevelPrior,
        simulator: Callable,
        *,
        context_generator: ContextGenerator | None = None,
        skip_test: bool = False,
        name: str = "anonymous",
    ):
        if not isinstance(prior, TwoLevelPrior):
            raise ArgumentError(f"TwoLevelGenerativeModel(prior=...) must be a TwoLevelPrior, received {type(prior).__name__}.")
        if context_generator is not None and not isinstance(context_generator, ContextGenerator):
            raise ArgumentError(
                "TwoLevelGenerativeModel(context_generator=...) must be a ContextGenerator, "
                f"received {type(context_generator).__name__}."
            )
        if not callable(simulator):
            raise ArgumentError(f"TwoLevelGenerativeModel(simulator=...) must be callable, received {type(simulator).__name__}.")
        self.prior = prior
        self._simulator = UserFunction(simulator, "simulator")
        self.context_generator = context_generator
        self.name = str(name)
        if not skip_test:
            self(2, rng=np.random.default_rng(0))

    @property
    def uses_global_rng(self) -> bool:
        """True if some user function draws from NumPy's global state instead of an ``rng`` keyword."""
        context = self.context_generator is not None and self.context_generator.uses_global_rng
        return self.prior.uses_global_rng or not self._simulator.takes_rng or context

    def __call__(self, batch_size: int, rng: SeedLike = None, *, num_groups: int | None = None) -> dict:
        """Simulate ``batch_size`` data sets (``num_groups`` fixes ``G`` for this batch); see the class docstring."""
        batch_size = check_batch_size(batch_size)
        rng = resolve_rng(rng)
        params = self.prior(batch_size, rng, num_groups=num_groups)
        context = draw_context(self.context_generator, batch_size, rng)
        data = self._simulate(params, context, rng)
        return {
            "hyper_prior_draws": params["hyper_prior_draws"],
            "local_prior_draws": params["local_prior_draws"],
            "shared_prior_draws": params["shared_prior_draws"],
            "prior_non_batchable_context": params["num_groups"],
            "sim_non_batchable_context": context["non_batchable_context"],
            "sim_batchable_context": context["batchable_context"],
            "sim_data": data,
        }

    def _simulate(self, params: dict, context: dict, rng: np.random.Generator) -> np.ndarray:
        local, shared = params["local_prior_draws"], params["shared_prior_draws"]
        args = (local,) + (() if shared is None else (shared,))
        args += context_args(context["batchable_context"], context["non_batchable_context"])
        value = self._simulator(*args, rng=rng, during=f"while simulating {local.shape[1]} groups of {len(local)} data sets")
        batch, groups = local.shape[:2]
        return shaped_array(value, f"{self._simulator.label} returned 'sim_data', which", rank=4, leading=(batch, groups),
                            error=SimulationError, expected=f"({batch}, {groups}, N, d) (batch, groups, observations, "
                            f"features; or ({batch}, {groups}, N) for one feature), {SAME_GROUP_SIZE}")  # fmt: skip

    def __repr__(self) -> str:
        return f"TwoLevelGenerativeModel(name={self.name!r}, prior={self.prior!r}, simulator={self._simulator.label})"
