"""Accuracy benchmark of neural posterior estimation (NPE) on one SBI benchmark task.

:func:`run_npe_benchmark` follows the protocol of Lueckmann et al. (2021), "Benchmarking
Simulation-Based Inference", AISTATS:

1. simulate the budget of ``N`` pairs ``(theta, x)`` from the task's prior and simulator (seeded);
2. train ONE amortized posterior offline on them (90 % training, 10 % validation; the weights
   of the epoch with the lowest validation loss are kept, training stops after ``patience``
   epochs without improvement - the same rule as sbi's NPE);
3. for observations ``1..K`` draw ``S`` samples from the trained network and ``S`` reference
   samples, and score them with the classifier two-sample test (C2ST, 0.5 = indistinguishable).

The paper uses ``S = 10,000``; fewer samples make the classifier cheaper and its accuracy
noisier (standard error about ``sqrt(0.25 / (2 S))`` near 0.5), see ``num_posterior_samples``.

>>> result = run_npe_benchmark("gaussian_linear", num_simulations=10_000)   # doctest: +SKIP
>>> print(result.to_text())                                                 # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from amortflow.benchmarks.protocol import C2ST_CLASSIFIERS, c2st_against_reference, prepare_run, simulate_budget
from amortflow.benchmarks.result import NPEBenchmarkResult, machine_info
from amortflow.benchmarks.tasks import get_task
from amortflow.exceptions import ArgumentError

logger = logging.getLogger("amortflow")

#: The README's fixed-budget recipe ("A fixed simulation budget"), which every NPE run follows:
#: ``AmortizedPosterior(InvertibleNetwork(num_params=D))`` with the library's defaults,
#: ``Trainer(amortizer, generative_model=model)`` and ``train_offline(sims, epochs=300, batch_size=128)``,
#: whose default early stopping holds out 10 % of the simulations (at least 100) and ends with the
#: weights of the lowest validation loss after 20 epochs without a new one. ``epochs`` is a cap.
RECIPE_BATCH_SIZE = 128
RECIPE_MAX_EPOCHS = 300


#: The inference networks a run can put in the README recipe's place of ``InvertibleNetwork``, each
#: built as ``Network(num_params=D)`` with the library's defaults: name -> (class name, result label).
INFERENCE_NETS = {
    "invertible": ("InvertibleNetwork", "amortflow NPE"),
    "flow_matching": ("FlowMatching", "amortflow NPE/FM"),
    "consistency": ("ConsistencyModel", "amortflow NPE/CM"),
}

__all__ = ["C2ST_CLASSIFIERS", "INFERENCE_NETS", "NPEBenchmarkResult", "build_estimator", "c2st_against_reference", "default_settings",
           "run_npe_benchmark", "simulate_budget", "train_as_readme"]


# --- settings -----------------------------------------------------------------------------
def default_settings(task_name: str, dim_parameters: int, num_simulations: int) -> dict[str, Any]:
    """The settings of an NPE run: the README recipe, the same for every task and budget.

    ``network`` holds overrides of :class:`~amortflow.networks.InvertibleNetwork`'s defaults (none:
    a run with overrides is an experiment and is labelled by its recorded settings). The arguments
    are kept so that other protocols (:mod:`~amortflow.benchmarks.mcmc_methods`) can extend them.
    """
    return {"network": {}, "batch_size": RECIPE_BATCH_SIZE, "max_epochs": RECIPE_MAX_EPOCHS}


# --- the run --------------------------------------------------------------------------------
def run_npe_benchmark(
    task: str,
    num_simulations: int,
    num_observations: int = 10,
    epochs: int | None = None,
    seed: int = 1,
    num_posterior_samples: int = 10_000,
    settings: Mapping[str, Any] | None = None,
    progress: bool = False,
    c2st_classifier: str = "benchmark",
    inference_net: str = "invertible",
) -> NPEBenchmarkResult:
    """Train NPE on ``num_simulations`` simulations of ``task`` and score it by C2ST on observations.

    Parameters
    ----------
    task : str
        A name from :data:`amortflow.benchmarks.TASK_NAMES`.
    num_simulations : int
        Simulation budget (training + validation).
    num_observations : int, default 10
        Observations ``1..num_observations`` are scored, all with the same trained network.
    epochs : int, optional
        Maximum number of epochs (default from :func:`default_settings`); early stopping may end sooner.
    seed : int, default 1
        Seeds simulations, network initialisation, training, posterior sampling and the C2ST classifier.
    num_posterior_samples : int, default 10_000
        Samples per observation from the network and from the reference posterior (10,000 in the paper).
    settings : dict, optional
        Overrides of :func:`default_settings` (``network`` is merged key by key).
    progress : bool, default False
        Show the trainer's progress bars.
    c2st_classifier : {"benchmark", "early_stopping"}, default "benchmark"
        ``"benchmark"``: :func:`amortflow.diagnostics.c2st` (the paper's MLP, up to 10,000 epochs);
        ``"early_stopping"``: the same MLP stopped on a 10 % validation split (``c2st(...,
        early_stopping=True)``), minutes faster per observation when the classes are separable.
    inference_net : {"invertible", "flow_matching", "consistency"}, default "invertible"
        The network of the recipe (:data:`INFERENCE_NETS`): the default coupling flow, or
        ``FlowMatching(num_params=D)`` / ``ConsistencyModel(num_params=D)`` with their defaults.
        The simulations depend on ``seed`` and the budget only, so runs with different networks
        are paired.
    """
    if inference_net not in INFERENCE_NETS:
        raise ArgumentError(f"inference_net must be one of {sorted(INFERENCE_NETS)}, received {inference_net!r}.")
    task_info = get_task(task)
    defaults = default_settings(task, task_info.dim_parameters, num_simulations)
    bench, config = prepare_run(task, num_simulations, num_observations, num_posterior_samples, epochs, settings,
                                c2st_classifier, defaults=defaults)  # fmt: skip
    config["inference_net"] = INFERENCE_NETS[inference_net][0]

    start = time.perf_counter()
    raw = simulate_budget(bench, num_simulations, seed)
    simulate_seconds = time.perf_counter() - start

    amortizer, trainer = build_estimator(bench, config["network"], seed, progress, inference_net)
    start = time.perf_counter()
    trained = train_as_readme(trainer, raw, config)
    train_seconds = time.perf_counter() - start
    logger.info("%s: trained on %d simulations in %.1f s (%d epochs).", task, num_simulations, train_seconds,
                trained["epochs"])  # fmt: skip

    observations = list(range(1, num_observations + 1))
    c2st_values, times = _score(bench, amortizer, trainer.configurator, observations, num_posterior_samples, seed,
                                c2st_classifier)  # fmt: skip
    return NPEBenchmarkResult(
        task=task,
        num_simulations=num_simulations,
        observations=observations,
        c2st=c2st_values,
        train_seconds=train_seconds,
        epochs=trained["epochs"],
        max_epochs=config["max_epochs"],
        best_epoch=trained["best_epoch"],
        simulate_seconds=simulate_seconds,
        num_posterior_samples=num_posterior_samples,
        seed=int(seed),
        settings=config,
        machine=machine_info(),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        method=INFERENCE_NETS[inference_net][1],
        **times,
    )


def build_estimator(bench, network_overrides: Mapping[str, Any] | None = None, seed: int = 1, progress: bool = False,
                    inference_net: str = "invertible"):  # fmt: skip
    """The README's amortizer and trainer for ``bench``: ``(amortizer, trainer)``.

    ``AmortizedPosterior(InvertibleNetwork(num_params=D))`` with the library's defaults
    (standardized parameters and data, prior bounds adopted from the prior's support by the
    default configurator) and ``Trainer(amortizer, generative_model=model, seed=seed)``;
    ``inference_net`` swaps the network for another of :data:`INFERENCE_NETS`. The global seed is
    set first, so a network's default ``seed=None`` (its training noise) is drawn reproducibly.
    """
    import keras

    import amortflow.networks
    from amortflow.amortizers import AmortizedPosterior
    from amortflow.trainers import Trainer

    keras.utils.set_random_seed(int(seed))
    network = getattr(amortflow.networks, INFERENCE_NETS[inference_net][0])
    amortizer = AmortizedPosterior(network(num_params=bench.task.dim_parameters, **(network_overrides or {})))
    trainer = Trainer(amortizer=amortizer, generative_model=bench.generative_model, seed=int(seed), progress=progress)
    return amortizer, trainer


def train_as_readme(trainer, raw: Mapping, config: Mapping) -> dict:
    """``trainer.train_offline(raw, epochs=max_epochs, batch_size=batch_size)`` with its default early stopping.

    Returns ``{"epochs": trained epochs, "best_epoch": epoch of the lowest validation loss}``.
    """
    history = trainer.train_offline(raw, epochs=int(config["max_epochs"]), batch_size=int(config["batch_size"]),
                                    save_checkpoint=False)  # fmt: skip
    losses = history["val_losses"]
    best_epoch = int(losses["Epoch"].iloc[int(np.argmin(losses["Loss"].to_numpy()))]) if len(losses) else trainer.epoch
    return {"epochs": trainer.epoch, "best_epoch": best_epoch}


def _score(bench, amortizer, configurator, observations: list[int], n_samples: int, seed: int,
           classifier: str) -> tuple[list[float], dict]:  # fmt: skip
    values, times = [], {"sample_seconds": 0.0, "reference_seconds": 0.0, "c2st_seconds": 0.0}
    for i in observations:
        start = time.perf_counter()
        conf = configurator({"sim_data": bench.observation(i)})
        draws = amortizer.sample(conf, n_samples, seed=int(seed) * 1000 + i, squeeze=True)
        times["sample_seconds"] += time.perf_counter() - start
        value, reference_s, c2st_s = c2st_against_reference(bench, i, draws, seed, classifier)
        values.append(value)
        times["reference_seconds"] += reference_s
        times["c2st_seconds"] += c2st_s
    return values, times
