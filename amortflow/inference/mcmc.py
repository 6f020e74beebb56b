"""MCMC for posteriors from neural likelihoods (NLE) and ratios (NRE).

Target: ``log p(theta | x_obs) = log p(theta) + log q(x_obs | theta) + const``, with
``log q`` the surrogate log likelihood (:class:`~amortflow.amortizers.AmortizedLikelihood`) or the
log ratio ``log r(x_obs, theta) = log p(x_obs | theta) - log p(x_obs)``
(:class:`~amortflow.amortizers.AmortizedRatio`); both give the same posterior.

Many chains run vectorized in one TensorFlow Probability graph. By default they start from
prior draws resampled by their likelihood (sampling-importance-resampling, Rubin 1988): of
``M`` prior draws, ``num_chains`` are drawn (with replacement) with probabilities proportional
to ``q(x_obs | theta)``, so the chains start where the posterior has its mass and, for a
multimodal posterior, in every mode roughly in proportion to its mass, which local kernels
cannot restore by moving between well-separated modes. The chains move in unconstrained space:
a ``tfp.mcmc.TransformedTransitionKernel`` with the prior's default event-space bijector keeps
every state inside the prior's support (a uniform box, a half-line, ...). Kernels: ``"nuts"``
(No-U-Turn, Hoffman & Gelman 2014) and ``"hmc"`` with dual-averaging step-size adaptation during
burn-in, ``"slice"`` (Neal 2003) and ``"rwm"`` (random-walk Metropolis); for the last two, half
of the burn-in is a pilot run whose spread within chains sets the proposal scale (``2.38 /
sqrt(D)`` times the per-axis posterior sd, Gelman et al. 1996; within chains, so that chains in
different modes do not make it the distance between the modes).
Convergence: rank-normalized split R-hat and effective sample size (Vehtari et al. 2021, from
:mod:`amortflow.diagnostics.metrics.convergence`); the reported ESS is
the smaller of the ESS for means and for variances, because HMC's fixed trajectory length can
resonate with the posterior's scale and mix variances poorly (NUTS, the default, avoids that).
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from amortflow._checks import check_choice, positive_int
from amortflow.diagnostics.metrics.convergence import effective_sample_size, split_rhat
from amortflow.exceptions import ArgumentError, SamplingError
from amortflow.inference.targets import make_log_likelihood_fn, resolve_prior

logger = logging.getLogger("amortflow")

KERNELS = ("nuts", "hmc", "slice", "rwm")
INITS = ("resample", "prior")
_INIT_BLOCK = 1000

#: Warn when any parameter's rank-normalized split R-hat exceeds this (Vehtari et al. 2021 recommend 1.01-1.05).
DEFAULT_RHAT_THRESHOLD = 1.05


@dataclass
class MCMCResult:
    """Draws and diagnostics of :func:`sample_posterior_mcmc`.

    Attributes
    ----------
    draws : numpy.ndarray
        ``(num_results * num_chains, D)`` pooled posterior draws.
    chains : numpy.ndarray
        ``(num_results, num_chains, D)`` draws per chain.
    r_hat : numpy.ndarray
        ``(D,)`` rank-normalized split R-hat, ``max(bulk, tail)`` (Vehtari et al. 2021; 1 at
        convergence, NaN with fewer than 4 results).
    ess : numpy.ndarray
        ``(D,)`` effective sample size of the pooled draws (the smaller of the ESS for the mean
        and for the variance, so it bounds the Monte Carlo error of both).
    acceptance_rate : float
        Mean acceptance probability after burn-in (1 for slice sampling).
    kernel : str
    step_size : numpy.ndarray
        Final step size (NUTS/HMC: scalar after adaptation; slice/RWM: per-axis, unconstrained space).
    """

    draws: np.ndarray
    chains: np.ndarray
    r_hat: np.ndarray
    ess: np.ndarray
    acceptance_rate: float
    kernel: str
    step_size: np.ndarray

    @property
    def converged(self) -> bool:
        """True when every R-hat is below :data:`DEFAULT_RHAT_THRESHOLD`."""
        return bool(np.all(self.r_hat < DEFAULT_RHAT_THRESHOLD))


def sample_posterior_mcmc(
    target,
    x_obs,
    prior,
    *,
    num_chains: int = 8,
    num_results: int = 1000,
    num_burnin: int = 500,
    kernel: str = "nuts",
    step_size: float | None = None,
    num_leapfrog_steps: int = 8,
    thinning: int = 1,
    seed: int | None = None,
    jit_compile: bool = False,
    rhat_threshold: float = DEFAULT_RHAT_THRESHOLD,
    cell_points: int = 0,
    init: str = "resample",
    num_init_candidates: int = 10_000,
    nonfinite: str = "raise",
) -> MCMCResult:
    """Sample ``p(theta | x_obs) ∝ p(theta) q(x_obs | theta)`` with vectorized MCMC chains.

    Parameters
    ----------
    target : AmortizedLikelihood, AmortizedRatio, AmortizedPosteriorLikelihood or callable
        The trained amortizer, or ``log_likelihood_fn(theta (C, D), x_obs) -> (C,)`` in TensorFlow.
    x_obs : array or dict
        One observed data set (see :mod:`amortflow.inference.targets` for the conventions).
    prior : amortflow.simulation.Prior or tfp.distributions.Distribution
        The prior; it needs a TFP distribution (its density and support bijector).
    num_chains, num_results, num_burnin : int
        Chains run in parallel; draws kept per chain; burn-in (adaptation) steps per chain.
    kernel : {"nuts", "hmc", "slice", "rwm"}
    step_size : float, optional
        Initial step size in unconstrained space (default: from the prior's spread).
    num_leapfrog_steps : int, default 8
        HMC only.
    thinning : int, default 1
        Keep every ``thinning``-th state.
    seed : int, optional
        Makes the run repeatable.
    jit_compile : bool, default False
        Compile the sampler with XLA (slower first call, faster long runs).
    rhat_threshold : float
        Log a warning when some R-hat exceeds it.
    cell_points : int, default 0
        For a likelihood trained on dequantized integer data: average its density over each
        observation's unit cell with this many points (see
        :func:`~amortflow.inference.targets.make_log_likelihood_fn`).
    init : {"resample", "prior"}, default "resample"
        Chain starts: prior draws resampled by likelihood (see the module docstring), or plain
        prior draws.
    num_init_candidates : int, default 10000
        ``M``, the prior draws ``init="resample"`` chooses from (one likelihood evaluation each).
    nonfinite : {"raise", "drop"}, default "raise"
        ``x_obs`` holding NaN or inf raises a :class:`~amortflow.exceptions.NonFiniteInputError`;
        ``"drop"`` drops the observations (set elements) that hold them.

    Returns
    -------
    MCMCResult
    """
    check_choice("kernel", kernel, KERNELS)
    check_choice("init", init, INITS)
    num_chains = positive_int("num_chains", num_chains)
    num_results = positive_int("num_results", num_results)
    if num_results < 2:
        raise ArgumentError(f"num_results must be >= 2 (R-hat and ESS compare draws), received {num_results!r}.")
    num_burnin = int(num_burnin)
    if num_burnin < 0:
        raise ArgumentError(f"num_burnin must be >= 0, received {num_burnin!r}.")
    thinning = positive_int("thinning", thinning)
    distribution = resolve_prior(prior)
    log_likelihood, _ = make_log_likelihood_fn(target, x_obs, cell_points=cell_points, nonfinite=nonfinite)
    bijector = distribution.experimental_default_event_space_bijector()
    dtype = distribution.dtype

    def target_log_prob(theta):
        value = distribution.log_prob(theta) + tf.cast(log_likelihood(theta), dtype)
        # NaN (a network overflow far out in the tails) would stall a chain; treat as -inf.
        return tf.where(tf.math.is_nan(value), tf.constant(-np.inf, dtype), value)

    seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=(3, 2)).astype("int32")
    if init == "resample":
        candidates = positive_int("num_init_candidates", num_init_candidates)
        init = _resampled_prior_draws(distribution, log_likelihood, num_chains, candidates, seeds[0])
    else:
        init = distribution.sample(num_chains, seed=tf.constant(seeds[0]))
    scale = _unconstrained_scale(distribution, bijector, seeds[1])
    with _quiet_tfp_diagnostics():
        runner = _Runner(target_log_prob, bijector, kernel, num_leapfrog_steps, thinning, jit_compile)
        if kernel in ("nuts", "hmc"):
            initial_step = step_size if step_size is not None else 0.1 * float(np.min(scale))
            states, accept, final_step = runner.run(init, initial_step, num_results, num_burnin, seeds[2])
        else:
            initial_step = np.full(scale.shape, step_size) if step_size is not None else 0.5 * scale
            states, accept, final_step = _run_with_pilot(runner, init, initial_step, num_results, num_burnin, seeds[2])
        return _result(states, accept, kernel, final_step, rhat_threshold)


def _resampled_prior_draws(distribution, log_likelihood, num_chains: int, num_candidates: int, seed) -> tf.Tensor:
    """``num_chains`` of ``num_candidates`` prior draws, drawn with probability ∝ likelihood.

    With replacement, so that the expected share of chains in each mode is the mode's share of
    the importance weights however few candidates carry weight (a narrow posterior); a start
    drawn twice costs nothing, the two chains part at their first step.
    """
    candidates = distribution.sample(num_candidates, seed=tf.constant(seed))
    log_w = np.concatenate([  # in blocks: each candidate is one row per observation (and per cell point)
        np.asarray(log_likelihood(candidates[start : start + _INIT_BLOCK]), dtype=np.float64).reshape(-1)
        for start in range(0, num_candidates, _INIT_BLOCK)
    ])
    log_w = np.where(np.isnan(log_w), -np.inf, log_w)
    if not np.any(np.isfinite(log_w)):
        raise SamplingError(
            f"The log likelihood is -inf or NaN at all {num_candidates} prior draws tried as chain starts: "
            "check that x_obs is the data the network was trained on (same configurator/shape), or pass "
            "init='prior' to start from plain prior draws."
        )
    weights = np.exp(log_w - np.max(log_w))
    rng = np.random.default_rng(np.asarray(seed, dtype=np.int64))
    return tf.gather(candidates, rng.choice(num_candidates, size=num_chains, p=weights / weights.sum()))


def _unconstrained_scale(distribution, bijector, seed) -> np.ndarray:
    """Per-axis standard deviation of prior draws in unconstrained space (a scale for first steps)."""
    draws = bijector.inverse(distribution.sample(1000, seed=tf.constant(seed)))
    sd = np.std(np.asarray(draws, dtype=np.float64), axis=0)
    return np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)


def _run_with_pilot(runner, init, initial_step, num_results, num_burnin, seed):
    """Slice / RWM: a pilot half of the burn-in sets the per-axis proposal scale from the spread within chains."""
    pilot_steps = num_burnin // 2
    state = init
    step = np.asarray(initial_step, dtype=np.float64)
    if pilot_steps > 0:
        pilot, _, _ = runner.run(init, step, pilot_steps, 0, seed)
        unconstrained = np.asarray(runner.bijector.inverse(pilot[-max(1, pilot_steps // 2) :]))
        # the spread *within* chains, pooled: chains that sit in different modes of a multimodal
        # posterior would make the spread across chains the distance between the modes, a
        # proposal that every chain then rejects almost always
        sd = np.sqrt(np.mean(np.var(unconstrained, axis=0), axis=0))
        factor = 2.38 / math.sqrt(unconstrained.shape[-1]) if runner.kernel == "rwm" else 1.0
        step = np.where(sd > 0, factor * sd, step)
        state = pilot[-1]
    return runner.run(state, step, num_results, num_burnin - pilot_steps, seed[::-1].copy())


class _Runner:
    """Builds the TFP kernel and runs ``tfp.mcmc.sample_chain`` in a ``tf.function``."""

    def __init__(self, target_log_prob, bijector, kernel, num_leapfrog_steps, thinning, jit_compile):
        self.target_log_prob = target_log_prob
        self.bijector = bijector
        self.kernel = kernel
        self.num_leapfrog_steps = int(num_leapfrog_steps)
        self.thinning = thinning
        self.jit_compile = jit_compile

    def _kernel(self, step_size, num_burnin):
        dtype = step_size.dtype
        if self.kernel == "nuts":
            inner = tfp.mcmc.NoUTurnSampler(self.target_log_prob, step_size=step_size)
        elif self.kernel == "hmc":
            inner = tfp.mcmc.HamiltonianMonteCarlo(self.target_log_prob, step_size, self.num_leapfrog_steps)
        elif self.kernel == "slice":
            inner = tfp.mcmc.SliceSampler(self.target_log_prob, step_size=step_size, max_doublings=5)
        else:
            inner = tfp.mcmc.RandomWalkMetropolis(
                self.target_log_prob, new_state_fn=tfp.mcmc.random_walk_normal_fn(scale=step_size)
            )
        kernel = tfp.mcmc.TransformedTransitionKernel(inner, bijector=self.bijector)
        if self.kernel in ("nuts", "hmc") and num_burnin > 0:
            kernel = tfp.mcmc.DualAveragingStepSizeAdaptation(
                kernel, num_adaptation_steps=max(1, int(0.8 * num_burnin)), target_accept_prob=tf.cast(0.8, dtype)
            )
        return kernel

    def run(self, init, step_size, num_results, num_burnin, seed):
        """``(states (num_results, C, D), acceptance (num_results, C), final step size)`` as numpy."""
        init = tf.convert_to_tensor(init)
        step = tf.constant(step_size, dtype=init.dtype)
        kernel = self._kernel(step, num_burnin)

        def trace_fn(_, results):
            return _find(results, "is_accepted", tf.constant(True)), _find(results, "step_size", step)

        @tf.function(jit_compile=self.jit_compile, autograph=False)
        def run_chain(state, stateless_seed):
            return tfp.mcmc.sample_chain(
                num_results=num_results,
                current_state=state,
                kernel=kernel,
                num_burnin_steps=num_burnin,
                num_steps_between_results=self.thinning - 1,
                trace_fn=trace_fn,
                seed=stateless_seed,
            )

        states, (accepted, steps) = run_chain(init, tf.constant(seed, dtype=tf.int32))
        accepted = np.asarray(accepted, dtype=np.float64)
        return np.asarray(states), accepted.reshape(accepted.shape[0], -1), np.asarray(steps)[-1]


def _find(results, name: str, default):
    """The field ``name`` of the innermost kernel results that have it.

    Walks ``inner_results`` (adaptation, transformed kernels) and ``accepted_results``
    (Metropolis-Hastings wrappers such as HMC's).
    """
    found = default
    while results is not None:
        if hasattr(results, name):
            found = getattr(results, name)
        nxt = getattr(results, "inner_results", None)
        results = nxt if nxt is not None else getattr(results, "accepted_results", None)
    return found


@contextlib.contextmanager
def _quiet_tfp_diagnostics():
    """Silence TFP's first-use warning that TensorFloat-32 is enabled "for NVIDIA Ampere+ GPUs",
    which only matters where such a GPU computes, for the duration of the block."""
    with warnings.catch_warnings():
        if not tf.config.list_physical_devices("GPU"):
            warnings.filterwarnings("ignore", message="TensorFloat-32", category=UserWarning)
        yield


#: A chain "mixes on its own" when its two halves agree (split R-hat of the one chain below this)
#: and it holds at least ``_MIN_CHAIN_ESS`` effective draws of every parameter.
_CHAIN_RHAT = 1.1
_MIN_CHAIN_ESS = 20.0


def _chains_mix_alone(states: np.ndarray) -> bool:
    """True when at least 90 % of the chains of ``states (n, C, D)`` look converged each on its own.

    Per chain: the rank-normalized split R-hat of its two halves and its own ESS. Chains stuck
    where they started fail the ESS test (their draws are almost perfectly autocorrelated);
    chains that explore one mode each pass both, and then a large pooled R-hat means they
    disagree about where the mass is.
    """
    if states.shape[0] < 8:
        return False
    mixes = [
        np.all((split_rhat(chain) < _CHAIN_RHAT) & (effective_sample_size(chain) >= _MIN_CHAIN_ESS))
        for chain in np.split(states, states.shape[1], axis=1)
    ]
    return bool(np.mean(mixes) >= 0.9)


def _effective_sample_size(states: np.ndarray) -> np.ndarray:
    """Conservative ESS per parameter: the smaller of the ESS of ``theta`` and of ``(theta - mean)^2``.

    The first governs the error of posterior means, the second that of variances; HMC with a
    fixed trajectory can mix the mean well (antithetic chains) but the variance badly.
    """
    centred_sq = np.square(states - states.mean(axis=(0, 1)))
    return np.minimum(effective_sample_size(states), effective_sample_size(centred_sq))


def _result(states, accepted, kernel, step_size, rhat_threshold) -> MCMCResult:
    if not np.all(np.isfinite(states)):
        raise SamplingError(
            "MCMC produced non-finite states: the target log density is probably NaN/inf at the prior draws "
            "(check that x_obs has the shape the amortizer was trained on)."
        )
    r_hat = split_rhat(states) if states.shape[0] >= 4 else np.full(states.shape[-1], np.nan)
    ess = _effective_sample_size(states)
    if np.any(r_hat > rhat_threshold):
        advice = (
            "The chains each mix on their own but disagree with each other: they probably sit in different "
            "modes of a multimodal posterior, which running longer will not fix; the share of chains per mode "
            "comes from their starts (init='resample' starts them in proportion to the modes' mass)."
            if _chains_mix_alone(states)
            else "Run longer (num_burnin, num_results), use more chains or another kernel."
        )
        logger.warning(
            "MCMC (%s) has not converged: max R-hat %.3f > %.2f (per parameter: %s). %s",
            kernel, float(np.nanmax(r_hat)), rhat_threshold, np.round(r_hat, 3).tolist(), advice,
        )  # fmt: skip
    return MCMCResult(
        draws=states.reshape(-1, states.shape[-1]),
        chains=states,
        r_hat=r_hat,
        ess=ess,
        acceptance_rate=float(np.mean(accepted)),
        kernel=kernel,
        step_size=np.asarray(step_size),
    )
