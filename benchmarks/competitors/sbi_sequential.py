"""sbi 0.27's sequential methods (SNPE-C, TSNPE, SNLE) for one observation, simulating through the parent process.

Run inside the sbi virtual environment by ``benchmarks/sequential.py``, which owns the task's
simulator (amortflow, TensorFlow: not installed here). The two talk over pipes: for each round this
script writes the round's parameters to ``<workdir>/round_<r>.theta.npy`` and prints
``@@SIMULATE <r>`` on stdout; the parent writes the simulations to ``<workdir>/round_<r>.x.npy`` and
answers ``ok`` on stdin. Round 1 asks for ``@@PRIOR 1`` instead: the parent sends the prior draws
and simulations that amortflow's round 1 uses (same seed, same simulations). The data file holds
the prior's arrays (see ``sbi_npe.build_prior``) and ``x_obs``. At the end the posterior draws go
to ``<workdir>/samples.npy`` and one JSON line with the timings is printed.

Each method is written as sbi's documentation writes it (sbi's defaults throughout: MAF, batch
200, Adam 5e-4, 10 % validation, stop after 20 epochs without improvement):

* ``snpe_c``: ``NPE(prior)``; ``append_simulations(theta, x, proposal=proposal).train()``; the next
  proposal is ``build_posterior().set_default_x(x_obs)`` (round 1's proposal is the prior, so
  its loss is maximum likelihood, later rounds the atomic loss);
* ``tsnpe``: ``NPE(prior)``; ``append_simulations(theta, x).train(force_first_round_loss=True)``; the
  next proposal is ``RestrictedPrior(prior, get_density_thresholder(posterior, quantile=1e-4),
  sample_with="rejection")``;
* ``snle``: ``NLE(prior)``; ``append_simulations(theta, x).train()``; the posterior by sbi's vectorized
  slice sampler with the settings of ``sbi_npe.MCMC_PARAMETERS`` (those of the accuracy
  benchmark's NLE rows), whose draws are the next proposal and the final draws.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from sbi_npe import MCMC_PARAMETERS, build_prior


def ask_parent(kind: str, round_number: int) -> None:
    print(f"@@{kind} {round_number}", flush=True)
    answer = sys.stdin.readline().strip()
    if answer != "ok":
        raise SystemExit(f"parent answered {answer!r} to {kind} {round_number}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--method", choices=("snpe_c", "tsnpe", "snle"), required=True)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--simulations-per-round", type=int, required=True)
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import sbi
    import torch
    from sbi import utils as sbi_utils
    from sbi.inference import NLE, NPE
    from sbi.utils import RestrictedPrior, get_density_thresholder

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    work = Path(args.workdir)
    data = np.load(args.data)
    prior = build_prior(data, torch, sbi_utils)
    x_obs = torch.as_tensor(data["x_obs"], dtype=torch.float32)
    n = args.simulations_per_round
    kind = NLE if args.method == "snle" else NPE
    inference = kind(prior=prior, device="cpu", show_progress_bars=False)

    proposal, rounds, times = prior, [], {"train_s": 0.0, "propose_s": 0.0}
    for r in range(1, args.rounds + 1):
        start = time.perf_counter()
        if r == 1:
            ask_parent("PRIOR", r)
            theta = torch.as_tensor(np.load(work / f"round_{r}.theta.npy"), dtype=torch.float32)
        else:
            theta = proposal.sample((n,), show_progress_bars=False)
            np.save(work / f"round_{r}.theta.npy", theta.numpy().astype(np.float64))
            ask_parent("SIMULATE", r)
        propose_s = time.perf_counter() - start
        x = torch.as_tensor(np.load(work / f"round_{r}.x.npy"), dtype=torch.float32)
        start = time.perf_counter()
        if args.method == "snpe_c":
            estimator = inference.append_simulations(theta, x, proposal=proposal).train()
        elif args.method == "tsnpe":
            estimator = inference.append_simulations(theta, x).train(force_first_round_loss=True)
        else:
            estimator = inference.append_simulations(theta, x).train()
        train_s = time.perf_counter() - start
        start = time.perf_counter()
        if args.method == "snle":
            posterior = inference.build_posterior(estimator, mcmc_method="slice_np_vectorized",
                                                  mcmc_parameters=MCMC_PARAMETERS).set_default_x(x_obs)
            proposal = posterior
        else:
            posterior = inference.build_posterior(estimator).set_default_x(x_obs)
            if args.method == "snpe_c":
                proposal = posterior
            else:
                proposal = RestrictedPrior(prior, get_density_thresholder(posterior, quantile=1e-4),
                                           sample_with="rejection")
        build_s = time.perf_counter() - start
        times["train_s"] += train_s
        times["propose_s"] += propose_s + build_s
        rounds.append({"round": r, "epochs": int(inference.summary["epochs_trained"][-1]),
                       "best_validation_loss": float(inference.summary["best_validation_loss"][-1]),
                       "train_s": train_s, "propose_s": propose_s + build_s})
        print(json.dumps({"round_done": rounds[-1]}), flush=True)

    start = time.perf_counter()
    draws = posterior.sample((args.num_samples,), show_progress_bars=False)
    times["sample_s"] = time.perf_counter() - start
    np.save(work / "samples.npy", draws.numpy().astype(np.float64))
    print(json.dumps({"library": f"sbi {sbi.__version__} (torch {torch.__version__})", "rounds": rounds,
                      "torch_threads": torch.get_num_threads(), **times}), flush=True)


if __name__ == "__main__":
    main()
