"""Accuracy benchmark of neural likelihood (NLE) and ratio (NRE) estimation on one SBI benchmark task.

Same protocol as :func:`~amortflow.benchmarks.runner.run_npe_benchmark` (same simulations for a
seed and budget, 90/10 split, best validation epoch kept, same references and C2ST; the shared
steps are in :mod:`~amortflow.benchmarks.protocol`), except the
network learns the likelihood ``q(x | theta)`` (NLE, a conditional coupling flow over the
z-scored data) or the ratio ``r(x, theta) = p(x | theta) / p(x)`` (NRE, a classifier of
dependent against shuffled pairs), and the posterior draws come from MCMC on
``p(theta) q(x_obs | theta)`` (:func:`amortflow.inference.sample_posterior_mcmc`) for each
observation. As in the benchmark paper, these methods pay at inference time: one MCMC run per
observation instead of one network pass.

Both networks see the parameters z-scored with the prior's mean and standard deviation
(:mod:`~amortflow.benchmarks.standardized_parameters`); NLE's flow sees integer data (SIR's
counts, bernoulli_glm_raw's bins) dequantized (:mod:`amortflow.dequantization`).

>>> result = run_mcmc_benchmark("two_moons", 10_000, method="nle")   # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from amortflow.benchmarks.protocol import (
    c2st_against_reference,
    merge_benchmark_settings,
    prepare_run,
    simulate_budget,
    train_with_early_stopping,
)
from amortflow.benchmarks.result import NLENREBenchmarkResult, machine_info
from amortflow.benchmarks.standardized_parameters import StandardizedParameters
from amortflow.dequantization import UniformDequantization, cell_log_likelihood_fn, unit_cell_points
from amortflow.exceptions import ArgumentError

logger = logging.getLogger("amortflow")

#: Result label per method.
METHODS = {"nle": "amortflow NLE", "nre": "amortflow NRE"}

#: Tasks whose likelihood flow (NLE) uses spline couplings, as measured on 2026-12-03; the others
#: get affine ones. NLE's flow has 4 coupling layers (5 for ``D >= 5``) on every task.
LIKELIHOOD_SPLINE_TASKS = frozenset({"two_moons", "gaussian_mixture", "slcp", "slcp_distractors",
                                     "inverse_kinematics"})  # fmt: skip

#: NRE's loss and classifier (:class:`~amortflow.amortizers.AmortizedRatio`,
#: :class:`~amortflow.networks.classifiers.RatioClassifier`). NRE-B with ``K = 10`` candidates
#: (sbi's default) and three 128-unit layers: against NRE-A with two 64-unit layers, C2ST on
#: 5 observations at 10^4 simulations fell from 0.848 to 0.754 on sir, 0.655 to 0.552 on
#: two_moons and 0.849 to 0.809 on slcp (2026-12-03).
DEFAULT_RATIO = {"loss": "nre_b", "num_contrastive": 10, "hidden_units": (128, 128, 128)}

#: MCMC per observation: random-walk Metropolis with pilot-tuned proposals in the prior's
#: unconstrained space, ``num_chains`` chains, every ``thinning``-th state kept after burn-in.
DEFAULT_MCMC = {"kernel": "rwm", "num_chains": 50, "num_burnin": 1000, "thinning": 10, "jit_compile": True}


def run_mcmc_benchmark(
    task: str,
    num_simulations: int,
    method: str = "nle",
    num_observations: int = 10,
    epochs: int | None = None,
    seed: int = 1,
    num_posterior_samples: int = 10_000,
    settings: Mapping[str, Any] | None = None,
    mcmc: Mapping[str, Any] | None = None,
    progress: bool = False,
    c2st_classifier: str = "benchmark",
) -> NLENREBenchmarkResult:
    """Train NLE or NRE on ``num_simulations`` simulations of ``task``; score MCMC draws by C2ST.

    Parameters
    ----------
    task, num_simulations, num_observations, epochs, seed, num_posterior_samples, progress, c2st_classifier
        As in :func:`~amortflow.benchmarks.runner.run_npe_benchmark`.
    method : {"nle", "nre"}
    settings : dict, optional
        Overrides of :func:`protocol_settings` (``network`` sets NLE's
        flow; NRE's ``ratio`` entry overrides :data:`DEFAULT_RATIO`). The networks see the parameters
        z-scored with the prior's mean and standard deviation (recorded as ``parameter_scaling``).
    mcmc : dict, optional
        Overrides of :data:`DEFAULT_MCMC`; ``num_results`` per chain follows from
        ``num_posterior_samples / num_chains``.
    """
    if method not in METHODS:
        raise ArgumentError(f"method must be one of {sorted(METHODS)}, received {method!r}.")
    # NLE models the flat data vector and NRE's classifier reads it whole: no set summary network.
    defaults = {**protocol_settings(bench_dim_parameters(task), num_simulations),
                **({"ratio": dict(DEFAULT_RATIO)} if method == "nre" else {})}
    bench, config = prepare_run(task, num_simulations, num_observations, num_posterior_samples, epochs, settings,
                                c2st_classifier, defaults=defaults)  # fmt: skip
    if config["parameter_space"] != "identity":
        raise ArgumentError("NLE/NRE sample theta by MCMC under the task's own prior; parameter_space must be 'identity'.")
    config["network"].update(_likelihood_network(task, bench.task.dim_parameters, settings))
    config["mcmc"] = merge_benchmark_settings(DEFAULT_MCMC, mcmc)
    config["parameter_scaling"] = "prior z-score"

    start = time.perf_counter()
    raw = simulate_budget(bench, num_simulations, seed)
    simulate_seconds = time.perf_counter() - start
    amortizer, configurator = _make_amortizer(bench, method, config, seed)
    start = time.perf_counter()
    trained = train_with_early_stopping(bench, amortizer, raw, config, seed, progress, configurator=configurator)
    train_seconds = time.perf_counter() - start
    logger.info("%s %s: trained on %d simulations in %.1f s (%d epochs).", task, method.upper(), num_simulations,
                train_seconds, trained["epochs"])  # fmt: skip

    observations = list(range(1, num_observations + 1))
    values, times = _score(bench, amortizer, configurator, observations, num_posterior_samples, seed, config)
    return NLENREBenchmarkResult(
        task=task, num_simulations=num_simulations, observations=observations, c2st=values,
        train_seconds=train_seconds, epochs=trained["epochs"], max_epochs=config["max_epochs"],
        best_epoch=trained["best_epoch"], simulate_seconds=simulate_seconds,
        num_posterior_samples=num_posterior_samples, seed=int(seed), settings=config, method=METHODS[method],
        machine=machine_info(), date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **times,
    )  # fmt: skip


def bench_dim_parameters(task: str) -> int:
    from amortflow.benchmarks.tasks import get_task

    return get_task(task).dim_parameters


def protocol_settings(dim_parameters: int, num_simulations: int) -> dict[str, Any]:
    """Training settings of the NLE/NRE protocol (the same for every task).

    Conditioners of 64 units up to 2 x 10^4 simulations (128 above); batch size 64 up to 2,000
    simulations, 128 above; at most 300 epochs up to 2 x 10^4 simulations, 60 above; 10 % held out
    for validation, stopping after 20 epochs without a lower validation loss (sbi's rule).
    """
    return {
        "network": {"num_coupling_layers": default_coupling_layers(dim_parameters), "coupling_design": "affine",
                    "units": 64 if num_simulations <= 20_000 else 128, "dropout": 0.0, "spline_domain": None},
        "batch_size": 64 if num_simulations <= 2_000 else 128,
        "max_epochs": 300 if num_simulations <= 20_000 else 60,
        "patience": 20,
        "validation_fraction": 0.1,
        "learning_rate": 5e-4,
        "parameter_space": "identity",
    }  # fmt: skip


def default_coupling_layers(dim_parameters: int) -> int:
    """Coupling layers of the likelihood flow of NLE benchmark runs: 4, or 5 for ``D >= 5``."""
    return 5 if dim_parameters >= 5 else 4


def coupling_settings(net_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``coupling_settings`` of an NLE benchmark flow: the conditioners' width and, if set, their dropout
    rate and the spline box ``[-b, b]^2`` (``spline_domain = b``)."""
    settings: dict[str, Any] = {"dense_args": {"units": int(net_cfg["units"])}}
    if net_cfg.get("dropout"):
        settings.update(dropout=True, dropout_prob=float(net_cfg["dropout"]))
    # Only flows with spline couplings take a box (an affine-only flow rejects the key).
    if net_cfg.get("spline_domain") and net_cfg.get("coupling_design", "spline") != "affine":
        half_width = float(net_cfg["spline_domain"])
        settings["default_domain"] = (-half_width, half_width, -half_width, half_width)
    return settings


def _likelihood_network(task: str, dim_parameters: int, settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """NLE's own flow choices, where the user's ``settings["network"]`` does not set them.

    NLE's flow models the data given theta: splines for the tasks in :data:`LIKELIHOOD_SPLINE_TASKS`,
    affine couplings elsewhere, no dropout.
    """
    requested = (settings or {}).get("network") or {}
    defaults = {
        "coupling_design": "spline" if task in LIKELIHOOD_SPLINE_TASKS else "affine",
        "num_coupling_layers": default_coupling_layers(dim_parameters),
        "dropout": 0.0,
    }
    return {key: requested.get(key, value) for key, value in defaults.items()}


def _make_amortizer(bench, method: str, config: Mapping, seed: int):
    """The untrained amortizer and the configurator that feeds it (parameters z-scored, see
    :mod:`~amortflow.benchmarks.standardized_parameters`)."""
    import keras

    from amortflow.amortizers import AmortizedLikelihood, AmortizedRatio
    from amortflow.networks import InvertibleNetwork
    from amortflow.networks.classifiers import RatioClassifier

    keras.utils.set_random_seed(int(seed))
    net_cfg = config["network"]
    if method == "nre":
        ratio = config["ratio"]
        classifier = RatioClassifier(hidden_units=tuple(int(u) for u in ratio["hidden_units"]))
        amortizer = AmortizedRatio(classifier, loss=ratio["loss"], num_contrastive=int(ratio["num_contrastive"]))
        return amortizer, StandardizedParameters.from_prior(bench.configurator, bench.task, "parameters", seed)
    # No data-based ActNorm initialisation: the configurator already z-scores the data with
    # pilot statistics, and entries that are nearly constant (SIR's day-0 count) would make
    # a standard deviation estimated from a few hundred rows zero.
    flow = InvertibleNetwork(
        num_params=bench.task.dim_data,
        num_coupling_layers=net_cfg["num_coupling_layers"],
        coupling_design=net_cfg["coupling_design"],
        coupling_settings=coupling_settings(net_cfg),
    )
    configurator = StandardizedParameters.from_prior(bench.likelihood_configurator, bench.task, "conditions", seed)
    return AmortizedLikelihood(flow), configurator


def _score(bench, amortizer, configurator: StandardizedParameters, observations: list[int], n_samples: int, seed: int,
           config: Mapping):  # fmt: skip
    from amortflow.inference import sample_posterior_mcmc

    mcmc = dict(config["mcmc"])
    num_results = -(-n_samples // int(mcmc["num_chains"]))
    values, times = [], {"sample_seconds": 0.0, "reference_seconds": 0.0, "c2st_seconds": 0.0}
    for i in observations:
        start = time.perf_counter()
        target = configurator.on_task_scale(_network_log_likelihood(bench, amortizer, configurator.configurator, i))
        result = sample_posterior_mcmc(target, None, bench.prior, num_results=num_results,
                                       seed=int(seed) * 1000 + i, **mcmc)  # fmt: skip
        times["sample_seconds"] += time.perf_counter() - start
        draws = result.draws[:n_samples]
        value, reference_s, c2st_s = c2st_against_reference(bench, i, draws, seed, config["c2st_classifier"])
        values.append(value)
        times["reference_seconds"] += reference_s
        times["c2st_seconds"] += c2st_s
    return values, times


def _network_log_likelihood(bench, amortizer, data_configurator, i: int):
    """Observation ``i``'s log-likelihood (NLE) or log-ratio (NRE) as a function of network-scale parameters.

    Dequantized (integer) data: the flow's density averaged over the observation's unit cell.
    """
    from amortflow.inference.targets import make_log_likelihood_fn

    if isinstance(data_configurator, UniformDequantization):
        points = unit_cell_points(np.reshape(bench.observation(i), -1), seed=i)  # one data vector (d,)
        configured = data_configurator.configurator({"sim_data": points})["observables"]
        return cell_log_likelihood_fn(lambda x, theta: amortizer.log_prob_rows(x, theta)[0], configured)
    x_obs = bench.configured_observation(i)["direct_conditions"][0]  # (d,): the data as the network sees them
    return make_log_likelihood_fn(amortizer, x_obs)[0]
