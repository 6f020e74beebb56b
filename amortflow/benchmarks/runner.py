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

import dataclasses
import datetime
import json
import logging
import os
import platform
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from amortflow.exceptions import ArgumentError

logger = logging.getLogger("amortflow")

#: The README's fixed-budget recipe ("A fixed simulation budget"), which every NPE run follows:
#: ``AmortizedPosterior(InvertibleNetwork(num_params=D))`` with the library's defaults,
#: ``Trainer(amortizer, generative_model=model)`` and ``train_offline(sims, epochs=300, batch_size=128)``,
#: whose default early stopping holds out 10 % of the simulations (at least 100) and ends with the
#: weights of the lowest validation loss after 20 epochs without a new one. ``epochs`` is a cap.
RECIPE_BATCH_SIZE = 128
RECIPE_MAX_EPOCHS = 300
C2ST_CLASSIFIERS = ("benchmark", "early_stopping")


@dataclasses.dataclass
class NPEBenchmarkResult:
    """Outcome of :func:`run_npe_benchmark` (one task, one simulation budget, one trained network).

    ``c2st`` holds one accuracy per observation (``observations`` lists their numbers); times
    are wall-clock seconds on this machine.
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
    method: str = "amortflow NPE"
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
    def from_dict(cls, data: Mapping[str, Any]) -> NPEBenchmarkResult:
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})

    def save_json(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` as JSON (parent folders are created); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load_json(cls, path: str | os.PathLike) -> NPEBenchmarkResult:
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


# --- settings -----------------------------------------------------------------------------
def default_settings(task_name: str, dim_parameters: int, num_simulations: int) -> dict[str, Any]:
    """The settings of an NPE run: the README recipe, the same for every task and budget.

    ``network`` holds overrides of :class:`~amortflow.networks.InvertibleNetwork`'s defaults (none:
    a run with overrides is an experiment and is labelled by its recorded settings). The arguments
    are kept so that other protocols (:mod:`~amortflow.benchmarks.mcmc_methods`) can extend them.
    """
    return {"network": {}, "batch_size": RECIPE_BATCH_SIZE, "max_epochs": RECIPE_MAX_EPOCHS}


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
        ``"early_stopping"``: the same MLP stopped on a 10 % validation split (see
        :func:`c2st_early_stopping`), minutes faster per observation when the classes are separable.
    """
    bench, config = prepare_run(task, num_simulations, num_observations, num_posterior_samples, epochs, settings,
                                c2st_classifier)  # fmt: skip

    start = time.perf_counter()
    raw = simulate_budget(bench, num_simulations, seed)
    simulate_seconds = time.perf_counter() - start

    amortizer, trainer = build_estimator(bench, config["network"], seed, progress)
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
        **times,
    )


def prepare_run(task: str, num_simulations: int, num_observations: int, num_posterior_samples: int,
                epochs: int | None, settings: Mapping[str, Any] | None, c2st_classifier: str,
                defaults: Mapping[str, Any] | None = None):  # fmt: skip
    """Check a run's arguments; return its ``Benchmark`` and settings.

    ``defaults`` replaces entries of :func:`default_settings` before the user's ``settings``
    are merged (a method's own defaults). Raises :class:`ArgumentError` on a bad argument.
    """
    from amortflow.benchmarks import Benchmark
    from amortflow.benchmarks.tasks import get_task

    for name, value in (("num_simulations", num_simulations), ("num_observations", num_observations),
                        ("num_posterior_samples", num_posterior_samples)):  # fmt: skip
        _positive(name, value)
    if c2st_classifier not in C2ST_CLASSIFIERS:
        raise ArgumentError(f"c2st_classifier must be one of {C2ST_CLASSIFIERS}, received {c2st_classifier!r}.")
    task_info = get_task(task)
    if num_observations > task_info.num_observations:
        raise ArgumentError(
            f"num_observations must be at most {task_info.num_observations} for {task}, received {num_observations}."
        )
    config = _merge({**default_settings(task, task_info.dim_parameters, num_simulations), **(defaults or {})}, settings)
    config["c2st_classifier"] = c2st_classifier
    if epochs is not None:
        config["max_epochs"] = _positive("epochs", epochs)
    return Benchmark(task, parameter_space=config.get("parameter_space", "identity")), config


def simulate_budget(bench, num_simulations: int, seed: int) -> dict:
    """The raw training simulations of a run (same ``seed`` and budget, same simulations).

    Exposed so that competitors (``benchmarks/accuracy.py --with-sbi``) train on the very same pairs.
    """
    return bench.generative_model(int(num_simulations), rng=np.random.default_rng([int(seed), int(num_simulations)]))


def build_estimator(bench, network_overrides: Mapping[str, Any] | None = None, seed: int = 1, progress: bool = False):
    """The README's amortizer and trainer for ``bench``: ``(amortizer, trainer)``.

    ``AmortizedPosterior(InvertibleNetwork(num_params=D))`` with the library's defaults
    (standardized parameters and data, prior bounds adopted from the prior's support by the
    default configurator) and ``Trainer(amortizer, generative_model=model, seed=seed)``.
    """
    import keras

    from amortflow.amortizers import AmortizedPosterior
    from amortflow.networks import InvertibleNetwork
    from amortflow.trainers import Trainer

    keras.utils.set_random_seed(int(seed))
    amortizer = AmortizedPosterior(InvertibleNetwork(num_params=bench.task.dim_parameters, **(network_overrides or {})))
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


def _train(bench, amortizer, raw: Mapping, config: Mapping, seed: int, progress: bool, configurator=None) -> dict:
    """Epoch-by-epoch offline training with one cosine-decayed Adam; keep the best validation epoch.

    ``configurator`` defaults to ``bench.configurator`` (posterior estimation's inputs).
    """
    from amortflow.trainers import Trainer
    from amortflow.trainers.optimizers import default_optimizer

    n = len(raw["prior_draws"])
    n_val = max(1, int(round(config["validation_fraction"] * n)))
    order = np.random.default_rng([seed, 7]).permutation(n)
    train_raw, val_raw = _rows(raw, order[n_val:]), _rows(raw, order[:n_val])
    trainer = Trainer(amortizer, generative_model=bench.generative_model, configurator=configurator or bench.configurator,
                      seed=int(seed), skip_checks=True, progress=progress)  # fmt: skip
    batch_size, max_epochs = int(config["batch_size"]), int(config["max_epochs"])
    steps_per_epoch = -(-(n - n_val) // batch_size)
    # One optimizer for all epochs: its cosine schedule spans the maximum run, so calling
    # train_offline once per epoch keeps one learning-rate curve (and one compiled step).
    optimizer = default_optimizer(steps_per_epoch * max_epochs, float(config["learning_rate"]))
    best, best_epoch, best_weights, epoch = np.inf, 0, None, 0
    for epoch in range(1, max_epochs + 1):
        history = trainer.train_offline(train_raw, epochs=1, batch_size=batch_size, optimizer=optimizer,
                                        validation_sims=val_raw, save_checkpoint=False)  # fmt: skip
        val_loss = float(history["val_losses"].iloc[-1]["Loss"])
        if np.isfinite(val_loss) and val_loss < best:
            best, best_epoch, best_weights = val_loss, epoch, amortizer.get_weights()
        elif epoch - best_epoch >= int(config["patience"]):
            break
    if best_weights is not None:
        amortizer.set_weights(best_weights)
    logger.info("Best validation loss %.3f at epoch %d of %d.", best, best_epoch, epoch)
    return {"epochs": epoch, "best_epoch": best_epoch, "best_val_loss": best}


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


def c2st_against_reference(
    bench, observation: int, draws: np.ndarray, seed: int, classifier: str = "benchmark"
) -> tuple[float, float, float]:
    """C2ST of ``draws (S, D)`` against ``S`` reference samples of ``observation`` (reference seed 0).

    Returns ``(c2st, seconds for the reference samples, seconds for the classifier)``.
    """
    import amortflow.diagnostics

    c2st = amortflow.diagnostics.c2st if classifier == "benchmark" else c2st_early_stopping

    draws = np.asarray(draws, dtype=np.float64)
    start = time.perf_counter()
    reference = bench.reference_posterior_samples(observation, len(draws), rng=0)
    reference_s = time.perf_counter() - start
    start = time.perf_counter()
    value = c2st(reference, draws, seed=int(seed))
    logger.info("%s observation %d: C2ST %.3f", bench.name, observation, value)
    return value, reference_s, time.perf_counter() - start


def c2st_early_stopping(samples_a, samples_b, seed: int = 1, n_folds: int = 5) -> float:
    """C2ST as :func:`amortflow.diagnostics.c2st` (z-scoring by ``samples_a``, ``MLPClassifier`` with two
    hidden layers of ``10 * dim`` ReLU units, Adam, stratified ``n_folds``-fold accuracy), except that
    each fold's classifier stops when the accuracy on 10 % of its training rows has not improved for
    10 epochs (at most 1,000 epochs).

    The benchmark's classifier runs up to 10,000 epochs; on a few thousand separable points it keeps
    memorising them for minutes per observation. Held-out accuracy is what is reported in both cases.
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neural_network import MLPClassifier

    a, b = np.asarray(samples_a, dtype=np.float64), np.asarray(samples_b, dtype=np.float64)
    mean, std = a.mean(axis=0), a.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    data = np.concatenate([(a - mean) / std, (b - mean) / std])
    target = np.r_[np.zeros(len(a)), np.ones(len(b))]
    dim = a.shape[1]
    classifier = MLPClassifier(activation="relu", hidden_layer_sizes=(10 * dim, 10 * dim), max_iter=1000,
                               solver="adam", random_state=seed, early_stopping=True, validation_fraction=0.1,
                               n_iter_no_change=10)  # fmt: skip
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return float(np.mean(cross_val_score(classifier, data, target, cv=folds, scoring="accuracy")))


def _rows(raw: Mapping, index: np.ndarray) -> dict:
    """Rows ``index`` of the batchable entries of a raw dict (others are kept as they are)."""
    n = len(raw["prior_draws"])
    out = {}
    for key, value in raw.items():
        if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == n and "non_batchable" not in key:
            out[key] = value[index]
        else:
            out[key] = value
    return out


def _merge(defaults: dict, overrides: Mapping | None) -> dict:
    out = dict(defaults)
    for key, value in (overrides or {}).items():
        if key not in out:
            raise ArgumentError(f"Unknown benchmark setting {key!r}; expected one of {sorted(out)}.")
        out[key] = {**out[key], **value} if isinstance(out[key], dict) else value
    return out


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ArgumentError(f"{name} must be a positive integer, received {value!r}.")
    return int(value)
