"""Accuracy benchmark: C2ST of amortflow's NPE (and optionally sbi's NPE) on the SBI benchmark tasks.

For every task and simulation budget: simulate, train one network offline, score it by C2ST
against reference posterior samples on observations 1..K (see
:func:`amortflow.benchmarks.runner.run_npe_benchmark`). Each run writes one JSON file to
``benchmarks/results/``; afterwards ``benchmarks/ACCURACY_RESULTS.md`` is regenerated from ALL
JSON files there (so runs made at different times end up in one table).

    python benchmarks/accuracy.py --tasks gaussian_linear two_moons --budgets 10000 --with-sbi
    python benchmarks/accuracy.py --tasks two_moons --budgets 10000 --methods npe nle nre
    python benchmarks/accuracy.py --table-only          # only rebuild the markdown table

``--with-sbi`` trains sbi's NPE (MAF, PyTorch CPU; environment from ``benchmarks/environments.py``)
on the SAME simulations and scores its samples the same way.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
#: One JSON file per run, committed: the table below is regenerated from all of them.
RESULTS = HERE / "accuracy_results"
#: Logs of the sbi subprocess (git-ignored): its per-epoch progress, to watch a long run.
LOGS = HERE / "results"
TABLE = HERE / "ACCURACY_RESULTS.md"
SBI_SCRIPT = HERE / "competitors" / "sbi_npe.py"
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing amortflow

#: Method label of sbi's NPE by density estimator (files: ``..._sbi_...`` and ``..._sbi-nsf_...``).
SBI_METHODS = {"maf": "sbi NPE", "nsf": "sbi NPE/NSF"}
#: File name part of amortflow's NPE runs by ``--network`` (the coupling flow keeps ``amortflow``).
NETWORK_FILE_NAMES = {"invertible": "amortflow", "flow_matching": "amortflow-fm", "consistency": "amortflow-cm"}


def sbi_method(method: str, density_estimator: str) -> tuple[str, str]:
    """(result label, file name part) of an sbi run: NPE by density estimator, or NLE / NRE."""
    if method == "npe":
        return SBI_METHODS[density_estimator], "sbi" if density_estimator == "maf" else f"sbi-{density_estimator}"
    if method == "fmpe":
        return "sbi FMPE", "sbi-fmpe"
    return f"sbi {method.upper()}", f"sbi-{method}"

#: sbibm's NPE C2ST at 10^4 simulations, mean over its observations 1-10, as "2021 / rerun":
#: the 2021 paper's NPE (neural spline flow; z-scored C2ST on 10,000 draws; sbi-benchmark/results,
#: benchmarking_sbi/results/supplement_hyperparameters_snpe.csv, rows NPE-NSF, commit 2a49a57) and
#: the rerun with sbi 0.23 on 1,000 draws like ours (benchmarking_sbi_023/results/re-sbibm_sbi_023.csv,
#: column C2ST_1K, commit 8693d6d; it has no sir and lotka_volterra). Their classifier trains up to
#: 10,000 epochs where ours stops early, and their observations are sbibm's, not ours.
REFERENCE_NPE_1E4 = {
    "bernoulli_glm": "0.678 / 0.692",
    "bernoulli_glm_raw": "0.765 / 0.795",
    "gaussian_linear": "0.552 / 0.541",
    "gaussian_linear_uniform": "0.553 / 0.546",
    "gaussian_mixture": "0.661 / 0.510",
    "lotka_volterra": "0.997 / -",
    "sir": "0.680 / -",
    "slcp": "0.901 / 0.863",
    "slcp_distractors": "0.970 / 0.954",
    "two_moons": "0.606 / 0.521",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["gaussian_linear", "two_moons"])
    parser.add_argument("--budgets", nargs="+", type=int, default=[1000, 10_000, 100_000])
    parser.add_argument("--observations", type=int, default=10, help="observations 1..K per run (default 10)")
    parser.add_argument("--samples", type=int, default=10_000, help="posterior/reference samples per observation")
    parser.add_argument("--epochs", type=int, default=None, help="maximum epochs (default: from the budget)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--methods", nargs="+", choices=("npe", "nle", "nre"), default=["npe"],
                        help="amortflow's methods: NPE, and NLE / NRE with MCMC per observation")
    parser.add_argument("--network", choices=("invertible", "flow_matching", "consistency"), default="invertible",
                        help="NPE's inference network in the README recipe: the default coupling flow, or "
                             "FlowMatching / ConsistencyModel(num_params=D) with their defaults (files: "
                             "..._amortflow-fm_..., ..._amortflow-cm_...)")
    parser.add_argument("--with-sbi", action="store_true", help="also run sbi's NPE on the same simulations")
    parser.add_argument("--sbi-tasks", nargs="+", default=["gaussian_linear"], help="tasks for --with-sbi")
    parser.add_argument("--c2st", choices=["benchmark", "early_stopping"], default="benchmark",
                        help="C2ST classifier: the paper's (slow when separable) or stopped on a validation split")
    parser.add_argument("--sbi-threads", type=int, default=0,
                        help="torch threads for sbi (0: torch's default, all cores; 1 is much faster on a loaded machine)")
    parser.add_argument("--sbi-density-estimator", choices=sorted(SBI_METHODS), default="maf",
                        help="sbi's density estimator: maf (its default) or nsf (spline flow, as in the benchmark paper)")
    parser.add_argument("--sbi-method", choices=("npe", "nle", "nre", "fmpe"), default="npe",
                        help="sbi's method: NPE (default), NLE / NRE with its slice-sampling MCMC per observation, "
                             "or FMPE (flow matching, its defaults)")
    parser.add_argument("--sbi-set-summary", action="store_true",
                        help="sbi NPE reads the data of tasks with exchangeable draws (slcp) as a set, through its "
                             "permutation-invariant embedding, as amortflow does (files: ..._sbi[-nsf]-set_...)")
    parser.add_argument("--sbi-only", action="store_true", help="with --with-sbi: skip amortflow's runs")
    parser.add_argument("--table-only", action="store_true", help="only regenerate the markdown table")
    return parser.parse_args(argv)


def result_path(method: str, task: str, budget: int, seed: int, observations: int, samples: int) -> Path:
    """One file per task, budget, method, seed, number of observations K and samples per observation S.

    K is part of the name so that a run on 10 observations does not overwrite one on 5.
    """
    return RESULTS / f"{task}_{budget}_{method}_seed{seed}_K{observations}_S{samples}.json"


def run_amortflow(task: str, budget: int, method: str, args) -> None:
    """amortflow's ``method`` ("npe", "nle" or "nre") on ``task`` at ``budget`` simulations."""
    from amortflow.benchmarks.nle_nre import run_mcmc_benchmark
    from amortflow.benchmarks.runner import run_npe_benchmark

    load_before = os.getloadavg()[0]
    common = {"num_observations": args.observations, "epochs": args.epochs, "seed": args.seed,
              "num_posterior_samples": args.samples, "c2st_classifier": args.c2st}  # fmt: skip
    if method == "npe":
        result = run_npe_benchmark(task, budget, inference_net=args.network, **common)
    else:
        result = run_mcmc_benchmark(task, budget, method=method, **common)
    result.settings["load_average"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
    name = NETWORK_FILE_NAMES[args.network] if method == "npe" else f"amortflow-{method}"
    result.save_json(result_path(name, task, budget, args.seed, args.observations, args.samples))
    print(result.to_text(), flush=True)


def _prior_arrays(bench) -> dict:
    """Prior parameters for ``sbi_npe.py``: a box (``prior_low/high``), independent log-normals
    (``prior_lognormal_loc/scale``) or a Gaussian (``prior_mean/cov``)."""
    from amortflow.benchmarks.tasks._priors import LogNormalPriorTask

    if isinstance(bench.task, LogNormalPriorTask):
        return {"prior_lognormal_loc": np.asarray(bench.task.prior_loc, dtype=float),
                "prior_lognormal_scale": np.asarray(bench.task.prior_scale, dtype=float)}  # fmt: skip
    bounds = bench.prior.support_bounds()
    if bounds is not None and np.isfinite(bounds[0]).all() and np.isfinite(bounds[1]).all():
        return {"prior_low": bounds[0], "prior_high": bounds[1]}
    dist = bench.task.prior_distribution
    try:
        return {"prior_mean": np.asarray(dist.mean()), "prior_cov": np.asarray(dist.covariance())}
    except NotImplementedError as exc:
        raise SystemExit(f"--with-sbi: the prior of {bench.name} is neither a box, log-normal nor a Gaussian") from exc


def run_sbi(task: str, budget: int, args) -> None:
    """sbi's NPE (or NLE / NRE, ``--sbi-method``) on the simulations amortflow trains on, scored like amortflow's."""
    from amortflow.benchmarks import Benchmark
    from amortflow.benchmarks.protocol import c2st_against_reference, simulate_budget
    from amortflow.benchmarks.result import BenchmarkResult, machine_info

    sys.path.insert(0, str(HERE))
    from environments import build

    load_before = os.getloadavg()[0]
    bench = Benchmark(task)
    raw = simulate_budget(bench, budget, args.seed)
    observations = list(range(1, args.observations + 1))
    with tempfile.TemporaryDirectory() as tmp:
        data, out = Path(tmp) / "data.npz", Path(tmp) / "samples.npz"
        np.savez(data, theta=raw["prior_draws"], x=raw["sim_data"],
                 observations=np.stack([bench.task.observation(i) for i in observations]), **_prior_arrays(bench))  # fmt: skip
        cmd = [str(build("sbi")), str(SBI_SCRIPT), "--data", str(data), "--out", str(out),
               "--num-samples", str(args.samples), "--seed", str(args.seed), "--threads", str(args.sbi_threads),
               "--density-estimator", args.sbi_density_estimator, "--method", args.sbi_method]  # fmt: skip
        LOGS.mkdir(parents=True, exist_ok=True)
        label, name = sbi_method(args.sbi_method, args.sbi_density_estimator)
        if args.sbi_set_summary:
            if args.sbi_method != "npe" or bench.task.exchangeable_draws is None:
                raise SystemExit(f"--sbi-set-summary: NPE on a task whose data are exchangeable draws only ({task}).")
            cmd += ["--set-shape", *(str(v) for v in bench.task.exchangeable_draws)]
            label, name = f"{label} (set embedding)", f"{name}-set"
        log_path = LOGS / f"{name}_{task}_{budget}_seed{args.seed}.log"
        start = time.perf_counter()
        with open(log_path, "w") as log:  # streamed, so a long training can be watched
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, text=True, check=False)
        wall = time.perf_counter() - start
        output = log_path.read_text()
        if proc.returncode != 0:
            raise SystemExit(f"sbi run failed ({proc.returncode}), log {log_path}:\n{output[-3000:]}")
        # sbi prints its own training messages on stdout; the timings are the last JSON line
        info = json.loads([line for line in output.splitlines() if line.startswith("{")][-1])
        samples = np.load(out)["samples"]
    values, ref_s, c2st_s = [], 0.0, 0.0
    for i, draws in zip(observations, samples):
        value, r, c = c2st_against_reference(bench, i, draws, args.seed, args.c2st)
        values.append(value)
        ref_s, c2st_s = ref_s + r, c2st_s + c
    result = BenchmarkResult(
        task=task, num_simulations=budget, observations=observations, c2st=values,
        train_seconds=info["train_s"], epochs=info.get("epochs") or 0, max_epochs=0,
        best_epoch=info.get("best_epoch") or 0,
        simulate_seconds=0.0, sample_seconds=info["sample_s"], reference_seconds=ref_s, c2st_seconds=c2st_s,
        num_posterior_samples=args.samples, seed=args.seed,
        settings={"library": info["library"], "sbi_method": args.sbi_method,
                  "density_estimator": "mlp vector field" if args.sbi_method == "fmpe" else args.sbi_density_estimator,
                  "set_embedding": bool(args.sbi_set_summary),
                  "subprocess_wall_s": wall,
                  "peak_rss_mb": info.get("peak_rss_mb"), "c2st_classifier": args.c2st,
                  "torch_threads": info.get("torch_threads"), "best_validation_loss": info.get("best_validation_loss"),
                  "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)]},
        method=label, machine=machine_info(),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )  # fmt: skip
    result.save_json(result_path(name, task, budget, args.seed, args.observations, args.samples))
    print(result.to_text(), flush=True)


# --- the markdown table -----------------------------------------------------------------------
TABLE_HEADER = [
    "| task | simulations | method | seed | obs. | S | C2ST mean ± sd | classifier | train s | epochs (best) "
    "| load avg. (start, end) | date | sbibm NPE @10^4 (2021 / rerun) |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
]


def table_rows(results: list) -> list[str]:
    """One markdown row per result (see :data:`TABLE_HEADER`)."""
    rows = []
    for r in results:
        published = REFERENCE_NPE_1E4.get(r.task, "") if r.num_simulations == 10_000 else ""
        epochs = f"{r.epochs} ({r.best_epoch})" if r.epochs else "-"
        load = r.settings.get("load_average")
        load = f"{load[0]}, {load[1]}" if load else "-"
        method = r.method
        if r.settings.get("torch_threads"):
            method += f" ({r.settings['torch_threads']} torch thread{'s' if r.settings['torch_threads'] > 1 else ''})"
        rows.append(
            f"| {r.task} | {r.num_simulations} | {method} | {r.seed} | {len(r.c2st)} | {r.num_posterior_samples} | "
            f"{r.c2st_mean:.3f} ± {r.c2st_sd:.3f} | {r.settings.get('c2st_classifier', 'benchmark')} | "
            f"{r.train_seconds:.0f} | {epochs} | {load} | {r.date[:10]} | {published} |"
        )
    return rows


def paired_rows(results: list) -> list[str]:
    """amortflow NPE (its newest run) against every other method on the same task, budget, seed, S and
    observations.

    The difference ``amortflow NPE - other`` is taken per observation and reported as mean ±
    standard error over the observations (sd / sqrt(K)).
    """
    rows = []
    key = lambda r: (r.task, r.num_simulations, r.seed, r.num_posterior_samples)  # noqa: E731
    # the newest amortflow run of a key: older ones may be from an earlier network of the task
    newest_last = sorted((r for r in results if r.method == "amortflow NPE"), key=lambda r: r.date)
    ours = {key(r): r for r in newest_last}
    for other in results:
        mine = ours.get(key(other))
        if other.method == "amortflow NPE" or mine is None:
            continue
        # observations both runs scored (observation i's draws and reference do not depend on K)
        common = sorted(set(mine.observations) & set(other.observations))
        if not common:
            continue
        diff = np.asarray([mine.c2st[mine.observations.index(i)] - other.c2st[other.observations.index(i)]
                           for i in common])  # fmt: skip
        se = float(np.std(diff, ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("nan")
        mean = float(diff.mean())
        verdict = "yes (lower)" if mean <= 0 else ("within noise (< 2 SE)" if mean < 2 * se else "no (higher)")
        mine_mean = float(np.mean([mine.c2st[mine.observations.index(i)] for i in common]))
        other_mean = float(np.mean([other.c2st[other.observations.index(i)] for i in common]))
        rows.append(f"| {other.task} | {other.num_simulations} | {other.seed} | {other.method} | {len(diff)} | "
                    f"{other.num_posterior_samples} | {mine_mean:.3f} | {other_mean:.3f} | "
                    f"{mean:+.3f} ± {se:.3f} | {verdict} |")  # fmt: skip
    return rows


PAIRED_HEADER = [
    "| task | simulations | seed | compared with | obs. | S | amortflow NPE C2ST | its C2ST "
    "| difference (amortflow - it) | amortflow NPE no worse? |",
    "|---|---|---|---|---|---|---|---|---|---|",
]


def load_results() -> list:
    """All results in :data:`RESULTS`, sorted by task, budget, amortflow first."""
    from amortflow.benchmarks.result import BenchmarkResult

    results = [BenchmarkResult.load_json(p) for p in sorted(RESULTS.glob("*.json"))]
    results.sort(key=lambda r: (r.task, r.num_simulations, r.num_posterior_samples, r.method != "amortflow NPE", r.method))
    return results


def write_table(command: str | None = None) -> Path:
    results = load_results()
    machines = dict.fromkeys(f"{m.get('nproc')} CPU cores ({m.get('cpu')}), {m.get('ram_gib')} GiB RAM"
                             for m in (r.machine for r in results))  # fmt: skip
    commands = (RESULTS / "commands.txt").read_text().splitlines() if (RESULTS / "commands.txt").exists() else []
    dates = sorted(r.date[:10] for r in results)
    lines = [
        "# Accuracy: C2ST of neural posterior estimation on the SBI benchmark tasks",
        "",
        "Commands, in the order they were run (each run writes one JSON file per task and method to "
        "`benchmarks/accuracy_results/`; this file is regenerated from all of them by "
        "`python benchmarks/accuracy.py --table-only`):",
        "",
        *[f"    {line}" for line in dict.fromkeys(commands or [command or "python benchmarks/accuracy.py"])],
        "",
        f"Machines: {'; '.join(machines) or '-'}. The load average at the start and end of each run is in "
        f"the table: the runs with loads above 2 shared the machine with other jobs (at `nice -n 19`), so "
        f"their wall times are upper bounds. Dates: {dates[0] if dates else '-'} to {dates[-1] if dates else '-'}.",
        "",
        "Protocol: for each task and seed (`--seed`, default 1) the budget of simulations is drawn once "
        "(`simulate_budget`) and every method of that seed trains on exactly those pairs (the seed also "
        "sets the network initialisation, the batch order and the C2ST folds; observations and reference "
        "draws do not depend on it); one trained network per method serves all "
        "observations 1..K (`obs.`); for each observation `S` posterior draws are scored against `S` "
        "reference draws (the same reference draws for both methods) by C2ST (0.5 = indistinguishable "
        "from the reference posterior). The paper uses K = 10 and S = 10,000. C2ST is reported as the mean "
        "± sd over the observations. Train s = wall time of training (amortflow: incl. graph compilation and "
        "the per-epoch validation; sbi: `append_simulations(...).train()`). Epochs: run (best).",
        "",
        *TABLE_HEADER,
        *table_rows(results),
        "",
        "Paired comparison: same simulations, observations and reference draws; the difference is taken "
        "per observation over the observations both runs scored (`obs.`; means over those), mean ± "
        "standard error:",
        "",
        *PAIRED_HEADER,
        *paired_rows(results),
        "",
        "Notes:",
        "",
        "- `classifier = early_stopping`: the benchmark's C2ST MLP (z-scored by the reference samples, two hidden "
        "layers of 10·dim ReLU units, Adam, 5-fold stratified cross-validated accuracy) stopped when the "
        "accuracy on 10 % of each fold's training rows has not improved for 10 epochs "
        "(`amortflow.diagnostics.c2st(..., early_stopping=True)`). The paper's classifier runs up to 10,000 "
        "epochs and took over 2 minutes per observation here on 1,000-2,000 samples (2 shared cores), "
        "which did not fit the time available. `classifier = benchmark` is `amortflow.diagnostics.c2st`.",
        "- With `S` below 10,000 (and the early-stopped classifier) the C2ST has less power to detect "
        "small differences, so values sit somewhat closer to 0.5 than the paper's protocol would give; "
        "amortflow and sbi rows of the same task are scored identically on the same simulations and "
        "the same reference samples, so they compare directly. Standard error of one accuracy near 0.5: "
        "sqrt(0.25 / (2 S)) (0.016 at S = 1,000, 0.005 at S = 10,000).",
        "- sbi: version 0.27 with torch 2.13 (CPU), `NPE(prior, density_estimator=\"maf\")` (sbi's default; "
        "rows `sbi NPE/NSF`: `density_estimator=\"nsf\"`, a spline flow like amortflow's on the multimodal "
        "tasks, `--sbi-density-estimator nsf`) and sbi's "
        "default training (batch 200, Adam 5e-4, 10 % validation, stop after 20 epochs without "
        "improvement, gradient clipping at 5), given the raw data (sbi z-scores it itself). It ran with "
        "ONE torch thread (`--sbi-threads 1`): on this oversubscribed machine torch's default (2 OpenMP "
        "threads) trained an epoch of gaussian_linear in 80-150 s against 5-10 s with one thread, because "
        "its threads wait on each other at every operation when the other core is busy.",
        "- Rows `(set embedding)` (`--sbi-set-summary`, slcp only): sbi's NPE reading slcp's four points "
        "as a set, through its `PermutationInvariantEmbedding` (per-point MLP 2 x 64 to 64, mean, MLP 2 x 64 "
        "to 16), with the points z-scored per coordinate (pooled over points) instead of sbi's z-scoring; "
        "the counterpart of amortflow's DeepSet on slcp (below).",
        "- sbi NLE / NRE (`--sbi-method nle|nre`): sbi's `NLE` (MAF likelihood) and `NRE` (NRE-B, its "
        "residual classifier) with their default training on the same simulations; posteriors by sbi's "
        "vectorized slice sampler, 50 chains (initialised by resampling prior draws by their potential), 200 "
        "warm-up steps, every 10th state kept.",
        "- amortflow NLE / NRE (`--methods nle nre`, `amortflow.benchmarks.nle_nre`): the same simulations, "
        "split, epochs rule and network width; NLE is a conditional coupling flow over the z-scored data given "
        "theta, NRE a ratio classifier (since 2026-12-03 NRE-B: each pair against 9 shuffled candidates, "
        "3 x 128 units; NRE-A with 2 x 64 units before); both see theta z-scored "
        "with the prior's mean and sd, and NLE trains on dequantized data (x + U[0, 1)) where the data are "
        "integers (sir, bernoulli_glm_raw), scoring an observation by the flow's density averaged over its "
        "unit cell (both since 2026-12-03; the 2026-12-01 NLE/NRE rows were replaced); posterior draws by "
        "random-walk Metropolis on prior x surrogate (50 chains from prior draws, since 2026-12-04 resampled "
        "in proportion to the surrogate likelihood (two_moons and slcp rows), proposal scale tuned on half "
        "of 1,000 burn-in steps, every 10th state kept), one MCMC run per observation, so their sampling time "
        "is per observation, unlike NPE's.",
        "- `OPENBLAS_NUM_THREADS=1` (where the command shows it) keeps the C2ST classifier (scikit-learn, "
        "OpenBLAS) on one thread: with the default 2 threads on the oversubscribed machine one observation "
        "at S = 10,000 did not finish in 25 minutes. It changes speed, not results.",
        "- amortflow training: 90 % / 10 % train/validation split of the budget, Adam with cosine decay from "
        "5e-4 over the epoch cap (300 epochs at 10^4 simulations since 2026-12-01 11:00 UTC, 100 before), "
        "weights of the best validation epoch kept, stop after 20 epochs without "
        "improvement (sbi's rule); for lotka_volterra (log-normal prior) the flow learns the "
        "posterior of log theta and its draws are exponentiated (`Benchmark(parameter_space=\"log\")`; sbi "
        "gets its default, the raw parameters with the log-normal prior), as it did for sir until "
        "2026-12-04 (affine couplings; since then sir uses spline couplings on its raw parameters); "
        "gaussian_linear_uniform learned the posterior of logit((theta - low) / (high - low)) with affine "
        "couplings in the K = 5 runs of 2026-12-03 and used 3 spline layers on the raw parameters after "
        "that, 4 with conditioner dropout 0.2 since 2026-12-04; coupling flows with 4-5 layers "
        "of 64 units (affine, or rational-quadratic splines for two_moons, gaussian_mixture, slcp, "
        "slcp_distractors, inverse_kinematics, gaussian_linear_uniform and sir; slcp_distractors' coupling "
        "conditioners with dropout 0.2 since 2026-12-04, like gaussian_linear_uniform's, and "
        "lotka_volterra's at budgets up to 2,000 simulations since that night), "
        "gaussian_mixture's splines on the box [-3, 3]^2 (after the first ActNorm) instead of [-5, 5]^2, "
        "and slcp's four points read as a set through a DeepSet (summary dimension 16; "
        "`Benchmark(data_layout=\"set\")`) instead of as one 8-vector, in the rows dated 2026-12-04 "
        "from 22:50 UTC on (the earlier rows of these two tasks that were not rerun keep the earlier "
        "networks); "
        "first ActNorm initialised from prior draws; data z-scored with statistics of a 10,000-simulation "
        "pilot run (`Benchmark.configurator`); posterior draws outside a bounded prior support are "
        "rejected (as in sbi). TensorFlow used its default threads.",
        "",
        "sbibm NPE @10^4: sbibm's own NPE results, mean over its observations 1-10 (see "
        "`REFERENCE_NPE_1E4` for the files): first the 2021 paper's NPE (neural spline flow, z-scored "
        "C2ST on 10,000 draws; Lueckmann et al. (2021), \"Benchmarking Simulation-Based Inference\", "
        "AISTATS), then sbibm's rerun with sbi 0.23 scored on 1,000 draws like these rows (no sir and "
        "lotka_volterra). Their classifier trains up to 10,000 epochs and their observations are sbibm's "
        "files, ours are generated from fixed seeds, so compare levels, not digits.",
        "",
    ]
    TABLE.write_text("\n".join(lines))
    return TABLE


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("amortflow").setLevel(logging.INFO)
    command = "python benchmarks/accuracy.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if not args.table_only:
        RESULTS.mkdir(parents=True, exist_ok=True)
        with open(RESULTS / "commands.txt", "a") as log:
            log.write(command + "\n")
        for task in args.tasks:
            for budget in args.budgets:
                for method in [] if args.sbi_only else args.methods:
                    run_amortflow(task, budget, method, args)
                if args.with_sbi and task in args.sbi_tasks:
                    run_sbi(task, budget, args)
                write_table(command)
    print(f"Table written to {write_table(command)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
