"""Sequential-inference benchmark: amortflow's ``SequentialInference`` against sbi 0.27 in one protocol.

For a task, observations ``1..K``, a total budget ``B`` and a method, each observation is its own
run: ``--rounds`` rounds (10) of ``B / rounds`` simulations, the library's defaults as its guide
tells a user to write them, then ``S`` posterior draws scored by C2ST against the task's reference
posterior (:func:`amortflow.benchmarks.protocol.c2st_against_reference`, the classifier of the
accuracy benchmark). One JSON file per task, budget, method and seed in
``benchmarks/sequential_results/`` (rewritten after every observation, so an interrupted run keeps
what it scored).

* ``amortflow-<m>`` (``m`` in snpe_c, tsnpe, snle), as docs/sequential.md writes it:
  ``SequentialInference(bench.generative_model, AmortizedPosterior(InvertibleNetwork(num_params=D)),
  x_obs, method=m, seed=s)`` (SNLE: ``AmortizedLikelihood(InvertibleNetwork(num_params=d))``) and
  ``run(rounds=10, simulations_per_round=B // 10, epochs=100, batch_size=128)``.
* ``sbi-<m>``: ``competitors/sbi_sequential.py`` in sbi's environment, with sbi's defaults; its
  simulations are made here, by the same simulator, and its round 1 gets the very prior draws and
  simulations of amortflow's round 1 for the same seed (:func:`first_round`, checked against
  amortflow's run when both run).

Observation ``i`` of seed ``s`` runs with seed ``100 s + i``.

    python benchmarks/sequential.py --task two_moons --budget 1000 --observations 5 --methods amortflow-snpe_c sbi-snpe_c
    python benchmarks/sequential.py --table      # the markdown table of all result files
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
RESULTS = HERE / "sequential_results"
LOGS = HERE / "results"
SBI_SCRIPT = HERE / "competitors" / "sbi_sequential.py"
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

METHODS = tuple(f"{lib}-{m}" for lib in ("amortflow", "sbi") for m in ("snpe_c", "tsnpe", "snle"))
#: What docs/sequential.md passes to ``run``.
EPOCHS, BATCH_SIZE = 100, 128


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task")
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--observations", type=int, default=5, help="observations 1..K, each its own run")
    parser.add_argument("--only-observations", type=int, nargs="+", default=None,
                        help="run these of 1..K only (added to the file's earlier ones)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=["amortflow-snpe_c", "sbi-snpe_c"])
    parser.add_argument("--c2st", choices=["benchmark", "early_stopping"], default="early_stopping")
    parser.add_argument("--sbi-threads", type=int, default=1)
    parser.add_argument("--table", action="store_true", help="print the markdown table of all result files")
    return parser.parse_args(argv)


def run_seed(seed: int, observation: int) -> int:
    return 100 * int(seed) + int(observation)


def first_round(bench, n: int, seed: int) -> dict:
    """Round 1 of ``SequentialInference(..., seed=seed)``: its raw prior simulations.

    The inference's generator ``default_rng(seed)`` draws the Trainer's seed first and round 1's
    simulation seed second; round 1 is ``generative_model(n, rng=default_rng(that seed))``.
    """
    rng = np.random.default_rng(seed)
    rng.integers(0, 2**31 - 1)
    return bench.generative_model(n, rng=np.random.default_rng(int(rng.integers(0, 2**31 - 1))))


def run_amortflow(bench, method: str, observation: int, args) -> dict:
    import keras

    import amortflow as af

    seed = run_seed(args.seed, observation)
    keras.utils.set_random_seed(seed)
    if method == "snle":
        data_dim = int(np.prod(bench.task.observation(observation).shape))
        amortizer = af.amortizers.AmortizedLikelihood(af.networks.InvertibleNetwork(num_params=data_dim))
    else:
        amortizer = af.amortizers.AmortizedPosterior(af.networks.InvertibleNetwork(num_params=bench.task.dim_parameters))
    x_obs = bench.task.observation(observation)
    inference = af.inference.SequentialInference(bench.generative_model, amortizer, x_obs, method=method, seed=seed,
                                                 trainer_kwargs={"progress": False})  # fmt: skip
    start = time.perf_counter()
    inference.run(rounds=args.rounds, simulations_per_round=args.budget // args.rounds, epochs=EPOCHS,
                  batch_size=BATCH_SIZE, progress=False)  # fmt: skip
    run_s = time.perf_counter() - start
    start = time.perf_counter()
    draws = inference.sample(args.samples, seed=seed)
    sample_s = time.perf_counter() - start
    expected = first_round(bench, args.budget // args.rounds, seed)["prior_draws"]
    same_first = bool(np.array_equal(np.asarray(inference._rounds[0]["prior_draws"]), expected))
    history = [dict(vars(r)) for r in inference.history]
    return {"draws": draws, "run_s": run_s, "sample_s": sample_s, "simulate_s": None,
            "epochs": sum(r["epochs"] for r in history), "rounds": history, "first_round_as_sbi": same_first}


def run_sbi(bench, method: str, observation: int, args) -> dict:
    from accuracy import _prior_arrays
    from environments import build

    from amortflow.inference.proposal_simulation import simulate_at

    seed = run_seed(args.seed, observation)
    n = args.budget // args.rounds
    LOGS.mkdir(parents=True, exist_ok=True)
    log_path = LOGS / f"sbi-seq-{method}_{bench.name}_{args.budget}_obs{observation}_seed{args.seed}.log"
    simulate_s = 0.0
    with tempfile.TemporaryDirectory() as tmp, open(log_path, "w") as log:
        work = Path(tmp)
        np.savez(work / "data.npz", x_obs=bench.task.observation(observation), **_prior_arrays(bench))
        cmd = [str(build("sbi")), str(SBI_SCRIPT), "--data", str(work / "data.npz"), "--workdir", str(work),
               "--method", method, "--rounds", str(args.rounds), "--simulations-per-round", str(n),
               "--num-samples", str(args.samples), "--seed", str(seed), "--threads", str(args.sbi_threads)]  # fmt: skip
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
        info = None
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if line.startswith("@@"):
                kind, r = line[2:].split()
                t0 = time.perf_counter()
                if kind == "PRIOR":  # amortflow's round 1 of this seed
                    raw = first_round(bench, n, seed)
                    np.save(work / "round_1.theta.npy", np.asarray(raw["prior_draws"], dtype=np.float64))
                else:
                    theta = np.load(work / f"round_{r}.theta.npy").astype(np.float32)
                    raw = simulate_at(bench.generative_model, theta, np.random.default_rng([seed, int(r)]))
                np.save(work / f"round_{r}.x.npy", np.asarray(raw["sim_data"], dtype=np.float64).reshape(len(raw["sim_data"]), -1))
                simulate_s += time.perf_counter() - t0
                proc.stdin.write("ok\n")
                proc.stdin.flush()
            elif line.startswith('{"library"'):
                info = json.loads(line)
        proc.wait()
        wall = time.perf_counter() - start
        if proc.returncode != 0 or info is None:
            raise SystemExit(f"sbi run failed ({proc.returncode}), log {log_path}")
        draws = np.load(work / "samples.npy")
    return {"draws": draws, "run_s": wall - info["sample_s"], "sample_s": info["sample_s"], "simulate_s": simulate_s,
            "epochs": sum(r["epochs"] for r in info["rounds"]), "rounds": info["rounds"], "library": info["library"],
            "torch_threads": info["torch_threads"]}  # fmt: skip


def result_path(label: str, task: str, budget: int, seed: int, k: int, samples: int) -> Path:
    return RESULTS / f"{task}_{budget}_{label}_seed{seed}_K{k}_S{samples}.json"


def run(args) -> None:
    from amortflow.benchmarks import Benchmark
    from amortflow.benchmarks.protocol import c2st_against_reference
    from amortflow.benchmarks.result import BenchmarkResult, machine_info

    bench = Benchmark(args.task)
    wanted = args.only_observations or list(range(1, args.observations + 1))
    for label in args.methods:
        library, method = label.split("-", 1)
        path = result_path(label, args.task, args.budget, args.seed, args.observations, args.samples)
        done = json.loads(path.read_text()) if path.exists() else None
        per_obs = {} if done is None else {int(k): v for k, v in done["settings"]["per_observation"].items()}
        for i in wanted:
            load = os.getloadavg()[0]
            out = (run_amortflow if library == "amortflow" else run_sbi)(bench, method, i, args)
            value, ref_s, c2st_s = c2st_against_reference(bench, i, out.pop("draws"), args.seed, args.c2st)
            per_obs[i] = {"c2st": value, "reference_s": ref_s, "c2st_s": c2st_s,
                          "load_average": [round(load, 1), round(os.getloadavg()[0], 1)], **out}  # fmt: skip
            print(f"{label} {args.task} {args.budget} obs {i}: C2ST {value:.3f}, run {out['run_s']:.0f} s", flush=True)
            observations = sorted(per_obs)
            settings = {"rounds": args.rounds, "simulations_per_round": args.budget // args.rounds, "epochs": EPOCHS,
                        "batch_size": BATCH_SIZE, "c2st_classifier": args.c2st, "run_seeds": "100 * seed + observation",
                        "complete": observations == list(range(1, args.observations + 1)),
                        "per_observation": {str(k): per_obs[k] for k in observations}}  # fmt: skip
            result = BenchmarkResult(
                task=args.task, num_simulations=args.budget, observations=observations,
                c2st=[per_obs[k]["c2st"] for k in observations],
                train_seconds=sum(per_obs[k]["run_s"] for k in observations),
                epochs=sum(per_obs[k]["epochs"] for k in observations), max_epochs=EPOCHS, best_epoch=0,
                simulate_seconds=sum(per_obs[k]["simulate_s"] or 0.0 for k in observations),
                sample_seconds=sum(per_obs[k]["sample_s"] for k in observations),
                reference_seconds=sum(per_obs[k]["reference_s"] for k in observations),
                c2st_seconds=sum(per_obs[k]["c2st_s"] for k in observations),
                num_posterior_samples=args.samples, seed=args.seed, settings=settings, method=label,
                machine=machine_info(), date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            )  # fmt: skip
            result.save_json(path)


# --- the table ---------------------------------------------------------------------------------
def load_results() -> list:
    from amortflow.benchmarks.result import BenchmarkResult

    return [BenchmarkResult.load_json(p) for p in sorted(RESULTS.glob("*.json"))]


def paired(a, b) -> str:
    """``mean(a - b) ± sd / sqrt(K)`` over the observations both scored, and the verdict at two standard errors."""
    common = sorted(set(a.observations) & set(b.observations))
    d = np.array([a.c2st[a.observations.index(i)] - b.c2st[b.observations.index(i)] for i in common])
    if len(d) < 2:
        return "-"
    se = float(d.std(ddof=1) / np.sqrt(len(d)))
    verdict = "ahead" if d.mean() < -2 * se else ("behind" if d.mean() > 2 * se else "level")
    return f"{d.mean():+.3f} ± {se:.3f} ({verdict}, K={len(d)})"


def amortized(task: str, budget: int, observations: list[int]):
    """amortflow's amortized NPE result (benchmarks/accuracy_results) of this task and budget, K = 10, S = 1,000."""
    from amortflow.benchmarks.result import BenchmarkResult

    path = HERE / "accuracy_results" / f"{task}_{budget}_amortflow_seed1_K10_S1000.json"
    if not path.exists():
        return None
    r = BenchmarkResult.load_json(path)
    keep = [i for i in observations if i in r.observations]
    r.c2st = [r.c2st[r.observations.index(i)] for i in keep]
    r.observations = keep
    return r


def table(results: list) -> str:
    rows = ["| task | budget | method | obs. | C2ST mean ± sd | wall s per obs. | amortflow − sbi (same method) "
            "| − amortized NPE (same obs.) |", "|---|---|---|---|---|---|---|---|"]
    by_key = {(r.task, r.num_simulations, r.method): r for r in results}
    for r in sorted(results, key=lambda r: (r.task, r.num_simulations, r.method)):
        library, method = r.method.split("-", 1)
        other = by_key.get((r.task, r.num_simulations, f"sbi-{method}")) if library == "amortflow" else None
        npe = amortized(r.task, r.num_simulations, r.observations)
        wall = np.mean([v["run_s"] + v["sample_s"] for v in r.settings["per_observation"].values()])
        rows.append(f"| {r.task} | {r.num_simulations} | {r.method} | {','.join(map(str, r.observations))} | "
                    f"{r.c2st_mean:.3f} ± {r.c2st_sd:.3f} | {wall:.0f} | {paired(r, other) if other else '-'} | "
                    f"{paired(r, npe) if npe else '-'} |")  # fmt: skip
    npe_rows = []
    for task, budget in sorted({(r.task, r.num_simulations) for r in results}):
        npe = amortized(task, budget, [1, 2, 3, 4, 5])
        if npe:
            npe_rows.append(f"| {task} | {budget} | amortflow amortized NPE (accuracy_results, K=10 run) | "
                            f"{','.join(map(str, npe.observations))} | {npe.c2st_mean:.3f} ± {npe.c2st_sd:.3f} | - | - | - |")  # fmt: skip
    return "\n".join(rows + npe_rows)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.table:
        print(table(load_results()))
        return 0
    if not args.task:
        raise SystemExit("--task is required (or --table)")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("amortflow").setLevel(logging.INFO)  # one line per round, to watch a long run
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "commands.txt", "a") as log:
        log.write("python benchmarks/sequential.py " + " ".join(sys.argv[1:] if argv is None else argv) + "\n")
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
