"""The prior ``p(theta)``: a per-draw function, a batched function, or a TFP distribution."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from amortflow.exceptions import ArgumentError, ShapeError, SimulationError
from amortflow.simulation import tfp_prior
from amortflow.simulation.context import UNSET, ContextGenerator, context_args, draw_context
from amortflow.simulation.validation import (
    SeedLike,
    UserFunction,
    check_batch_dim,
    format_vector,
    nonfinite_rows,
    resolve_rng,
    stack_per_sample,
    to_numeric,
)


def check_batch_size(batch_size: Any) -> int:
    """Return ``batch_size`` as an int >= 1 or raise an :class:`ArgumentError`."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ArgumentError(f"batch_size must be a positive integer, received {batch_size!r}.")
    return int(batch_size)


class Prior:
    """Draws parameter vectors ``theta ~ p(theta)``, optionally given context.

    Give exactly one source:

    * ``prior_fun(*context, rng=None)`` returns one draw: a scalar (one parameter) or a
      vector ``(D,)``; amortflow loops over the batch. Contexts are passed only when they
      exist, in the order ``(batchable_context[i], non_batchable_context)``.
    * ``batch_prior_fun(batch_size, *context, rng=None)`` returns ``(B, D)`` (or ``(B,)``
      for one parameter); contexts are whole batches.
    * ``distribution``: a TensorFlow Probability distribution with ``event_shape (D,)``
      (or a univariate one with ``batch_shape (D,)``, or a scalar one). It also gives
      :meth:`log_prob` and :meth:`support_bounds`.

    Functions that have an ``rng`` parameter receive a ``numpy.random.Generator``;
    others should draw from ``np.random`` (then only ``np.random.seed`` makes them repeatable).

    Parameters
    ----------
    prior_fun, batch_prior_fun : callable, optional
        See above.
    distribution : tfp.distributions.Distribution, optional
        See above. Stored normalized to ``event_shape (D,)`` as :attr:`distribution`.
    context_generator : ContextGenerator, optional
        Context for the prior functions (not allowed with ``distribution``).
    param_names : sequence of str, optional
        Names of the ``D`` parameters; default ``theta_1, ..., theta_D``.

    Examples
    --------
    >>> prior = Prior(batch_prior_fun=lambda b, rng: rng.normal(size=(b, 2)))
    >>> out = prior(batch_size=5, rng=0)
    >>> out["prior_draws"].shape, prior.param_names
    ((5, 2), ['theta_1', 'theta_2'])
    """

    def __init__(
        self,
        prior_fun: Callable | None = None,
        batch_prior_fun: Callable | None = None,
        distribution: Any = None,
        context_generator: ContextGenerator | None = None,
        param_names: Sequence[str] | None = None,
    ):
        given = [n for n, v in (("prior_fun", prior_fun), ("batch_prior_fun", batch_prior_fun),
                                ("distribution", distribution)) if v is not None]  # fmt: skip
        if len(given) != 1:
            raise ArgumentError(
                "Prior needs exactly one of prior_fun, batch_prior_fun or distribution; "
                f"received {', '.join(given) if given else 'none'}."
            )
        if context_generator is not None and not isinstance(context_generator, ContextGenerator):
            raise ArgumentError(
                f"Prior(context_generator=...) must be a ContextGenerator, received {type(context_generator).__name__}."
            )
        if distribution is not None and context_generator is not None:
            raise ArgumentError("Prior(distribution=...) cannot use a context_generator: a distribution takes no context.")
        self.context_generator = context_generator
        self.distribution = None if distribution is None else tfp_prior.normalize_distribution(distribution)
        self.is_batched = prior_fun is None
        self._fun = None
        if prior_fun is not None:
            self._fun = UserFunction(prior_fun, "prior_fun")
        elif batch_prior_fun is not None:
            self._fun = UserFunction(batch_prior_fun, "batch_prior_fun")
        self._dim = None if self.distribution is None else int(self.distribution.event_shape[0])
        self._param_names = None if param_names is None else [str(n) for n in param_names]
        if self._dim is not None:
            self._check_names(self._dim)

    # --- drawing -----------------------------------------------------------------------
    def __call__(self, batch_size: int, rng: SeedLike = None, *, non_batchable_context: Any = UNSET) -> dict:
        """Draw a batch of parameters.

        Parameters
        ----------
        batch_size : int
            Number of draws ``B``.
        rng : numpy.random.Generator or int, optional
            Randomness for functions with an ``rng`` parameter and for distributions.
        non_batchable_context : optional, keyword-only
            Reuse this non-batchable context instead of drawing a new one.

        Returns
        -------
        dict
            ``prior_draws (B, D)`` float array, ``batchable_context`` and
            ``non_batchable_context`` (``None`` when absent).
        """
        batch_size = check_batch_size(batch_size)
        rng = resolve_rng(rng)
        context = draw_context(self.context_generator, batch_size, rng, non_batchable_context)
        if self.distribution is not None:
            draws = tfp_prior.sample(self.distribution, batch_size, rng)
        elif self.is_batched:
            draws = self._draw_batched(batch_size, context, rng)
        else:
            draws = self._draw_looped(batch_size, context, rng)
        self._check_draws(draws)
        return {"prior_draws": draws, **context}

    def _draw_batched(self, batch_size: int, context: dict, rng: np.random.Generator) -> np.ndarray:
        args = context_args(context["batchable_context"], context["non_batchable_context"])
        value = self._fun(batch_size, *args, rng=rng, during=f"while drawing {batch_size} parameter vectors")
        draws = to_numeric(value, self._fun.label, "prior_draws")
        check_batch_dim(draws, batch_size, self._fun.label, "prior_draws", f"({batch_size}, D)")
        return self._as_matrix(draws, draws.shape[1:])

    def _draw_looped(self, batch_size: int, context: dict, rng: np.random.Generator) -> np.ndarray:
        batchable, non_batchable = context["batchable_context"], context["non_batchable_context"]
        values = []
        for i in range(batch_size):
            args = context_args(None if batchable is None else batchable[i], non_batchable, batchable is not None)
            values.append(self._fun(*args, rng=rng, during=f"while drawing parameter vector {i}"))
        draws = stack_per_sample(values, self._fun.label, "prior_draws")
        return self._as_matrix(draws, draws.shape[1:])

    def _as_matrix(self, draws: np.ndarray, one_draw_shape: tuple) -> np.ndarray:
        if draws.ndim == 1:  # one parameter: scalars per draw
            return draws[:, None]
        if draws.ndim > 2:
            raise ShapeError(
                f"{self._fun.label} returned 'prior_draws' of shape {draws.shape} (one draw has shape "
                f"{one_draw_shape}); expected one draw to be a scalar or a vector (D,), the batch (B, D)."
            )
        return draws

    def _check_draws(self, draws: np.ndarray) -> None:
        label = self._fun.label if self._fun is not None else f"distribution {self.distribution.name!r}"
        if self._dim is not None and draws.shape[1] != self._dim:
            raise ShapeError(
                f"{label} returned 'prior_draws' of shape {draws.shape}; expected (B, {self._dim}) "
                f"as in earlier draws (D={self._dim})."
            )
        if self._dim is None:
            self._check_names(draws.shape[1])
            self._dim = draws.shape[1]
        bad = np.flatnonzero(nonfinite_rows(draws))
        if bad.size:
            raise SimulationError(
                f"{label} returned NaN or inf in 'prior_draws' for {bad.size} of {len(draws)} draws "
                f"(e.g. draw {bad[0]}: {format_vector(draws[bad[0]])}); expected finite parameters."
            )

    def _check_names(self, dim: int) -> None:
        if self._param_names is not None and len(self._param_names) != dim:
            raise ShapeError(
                f"Prior(param_names=...) has {len(self._param_names)} names {self._param_names}, "
                f"but the prior draws D={dim} parameters."
            )

    # --- properties ----------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Number of parameters ``D`` (draws two pilot vectors if not yet known)."""
        if self._dim is None:
            self(2, rng=np.random.default_rng(0))
        return self._dim

    @property
    def param_names(self) -> list[str]:
        """Parameter names, by default ``["theta_1", ..., "theta_D"]``."""
        if self._param_names is None:
            return [f"theta_{i + 1}" for i in range(self.dim)]
        return list(self._param_names)

    @property
    def uses_global_rng(self) -> bool:
        """True if some function of this prior draws from NumPy's global state."""
        own = self._fun is not None and not self._fun.takes_rng
        return own or (self.context_generator is not None and self.context_generator.uses_global_rng)

    # --- density and support ------------------------------------------------------------
    def log_prob(self, theta) -> np.ndarray:
        """Log prior density ``log p(theta)`` for ``theta`` of shape ``(D,)`` or ``(B, D)``.

        Raises
        ------
        NotImplementedError
            If the prior is a function: its density is unknown to amortflow.
        """
        if self.distribution is None:
            raise NotImplementedError(
                f"Prior.log_prob needs Prior(distribution=...); this prior is {self._fun.label}, "
                "whose density amortflow cannot know. Build the prior from a TFP distribution."
            )
        return tfp_prior.log_prob(self.distribution, theta)

    def support_bounds(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(lower, upper)`` arrays of shape ``(D,)`` (``-inf``/``inf`` if unbounded), or ``None`` if unknown.

        Derived from the distribution's default event-space bijector (see
        :func:`amortflow.simulation.tfp_prior.support_bounds`); ``None`` for function priors.
        """
        return None if self.distribution is None else tfp_prior.support_bounds(self.distribution)

    def estimate_means_and_stds(self, n_draws: int = 1000, rng: SeedLike = None) -> tuple[np.ndarray, np.ndarray]:
        """Monte Carlo estimate of the prior mean and standard deviation of each parameter.

        Returns
        -------
        means, stds : numpy.ndarray
            Each of shape ``(D,)``; the standard error of each mean is ``std / sqrt(n_draws)``.
        """
        if check_batch_size(n_draws) < 2:
            raise ArgumentError(f"estimate_means_and_stds needs n_draws >= 2, received {n_draws}.")
        draws = self(n_draws, rng=rng)["prior_draws"]
        return draws.mean(axis=0), draws.std(axis=0, ddof=1)

    def __repr__(self) -> str:
        source = self._fun.label if self._fun is not None else f"distribution={self.distribution.name!r}"
        return f"Prior({source}, D={self._dim})"

