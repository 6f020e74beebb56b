"""Train sbi's NPE, FMPE, NLE or NRE (PyTorch, CPU) on pre-drawn simulations and sample posteriors for given observations.

Run inside the sbi virtual environment built by ``benchmarks/environments.py``. Reads an ``.npz``
with ``theta`` (N, D), ``x`` (N, d), ``observations`` (K, d), ``prior_mean`` (D,), ``prior_cov`` (D, D)
(a Gaussian prior), ``prior_low``/``prior_high`` (a box prior) or ``prior_lognormal_loc``/
``prior_lognormal_scale`` (independent log-normals, as in Lotka-Volterra and SIR); writes ``samples`` (K, S, D) to
``--out`` and prints one JSON line with the timings.

    python sbi_npe.py --data task.npz --out samples.npz --num-samples 10000 --seed 1 [--threads 1] [--density-estimator nsf]
        [--method nle|nre] [--set-shape N D]

``--set-shape N D`` (NPE only) reads each data vector as N exchangeable draws of a D-vector
through sbi's ``PermutationInvariantEmbedding`` (a per-draw MLP, the mean over draws, an MLP;
sizes as amortflow's DeepSet: 64 hidden units, summary dimension 16), the counterpart of
amortflow's ``data_layout="set"``. The draws are z-scored per coordinate with statistics pooled
over the draws of the training data (sbi's own z-scoring of x is then off).

NLE and NRE use sbi's defaults (NLE: MAF likelihood; NRE: NRE-B with its residual classifier) and
sample each observation's posterior with sbi's vectorized slice sampler: 50 chains started by
sbi's default (resampling prior draws by their potential), 200 warm-up steps, every 10th state
kept (amortflow's NLE/NRE runs also keep 50 chains and every 10th state).
"""

import argparse
import json
import resource
import time

import numpy as np

#: sbi's MCMC settings for --method nle / nre.
MCMC_PARAMETERS = {"num_chains": 50, "thin": 10, "warmup_steps": 200, "init_strategy": "resample"}


def build_prior(data, torch, sbi_utils):
    if "prior_lognormal_loc" in data:
        loc = torch.as_tensor(data["prior_lognormal_loc"], dtype=torch.float32)
        scale = torch.as_tensor(data["prior_lognormal_scale"], dtype=torch.float32)
        return torch.distributions.Independent(torch.distributions.LogNormal(loc, scale), 1)
    if "prior_mean" in data:
        mean = torch.as_tensor(data["prior_mean"], dtype=torch.float32)
        cov = torch.as_tensor(data["prior_cov"], dtype=torch.float32)
        return torch.distributions.MultivariateNormal(mean, covariance_matrix=cov)
    low = torch.as_tensor(data["prior_low"], dtype=torch.float32)
    high = torch.as_tensor(data["prior_high"], dtype=torch.float32)
    return sbi_utils.BoxUniform(low=low, high=high)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--num-samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--density-estimator", choices=("maf", "nsf"), default="maf",
                        help="sbi's masked autoregressive flow (its default) or neural spline flow (NPE, NLE)")
    parser.add_argument("--method", choices=("npe", "nle", "nre", "fmpe"), default="npe",
                        help="fmpe: sbi's flow matching posterior estimation with its defaults (density estimator ignored)")
    parser.add_argument("--set-shape", type=int, nargs=2, default=None, metavar=("N", "D"),
                        help="NPE: data are N exchangeable draws of D values, read by a permutation-invariant embedding")
    args = parser.parse_args()
    if args.set_shape and args.method != "npe":
        parser.error("--set-shape applies to --method npe only")

    import sbi
    import torch
    from sbi import utils as sbi_utils
    from sbi.inference import FMPE, NLE, NPE, NRE

    if args.threads > 0:
        # On an oversubscribed machine torch's OpenMP threads wait on each other at every
        # operation: 2 threads trained an epoch 15x slower than 1 thread here under load.
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = np.load(args.data)
    prior = build_prior(data, torch, sbi_utils)
    theta = torch.as_tensor(data["theta"], dtype=torch.float32)
    x = torch.as_tensor(data["x"], dtype=torch.float32)
    observations = torch.as_tensor(data["observations"], dtype=torch.float32)
    density_estimator = args.density_estimator
    if args.set_shape:
        x, observations, density_estimator = _as_sets(x, observations, args, torch)

    # sbi's defaults throughout (MAF unless --density-estimator nsf, batch 200, Adam 5e-4, 10 %
    # validation, stop after 20 epochs without improvement).
    print(f"torch threads: {torch.get_num_threads()}", flush=True)
    start = time.perf_counter()
    if args.method == "nre":
        inference = NRE(prior=prior, device="cpu", show_progress_bars=True)
    elif args.method == "fmpe":
        # sbi's defaults: its MLP vector field, the same train() defaults as NPE, ODE sampling
        inference = FMPE(prior=prior, device="cpu", show_progress_bars=True)
    else:
        trainer = NPE if args.method == "npe" else NLE
        inference = trainer(prior=prior, density_estimator=density_estimator, device="cpu", show_progress_bars=True)
    estimator = inference.append_simulations(theta, x).train(show_train_summary=True)
    train_seconds = time.perf_counter() - start
    summary = inference.summary
    if args.method in ("npe", "fmpe"):
        posterior = inference.build_posterior(estimator)
    else:
        posterior = inference.build_posterior(estimator, mcmc_method="slice_np_vectorized", mcmc_parameters=MCMC_PARAMETERS)

    start = time.perf_counter()
    samples = []
    for obs in observations:
        # a set (N, D) gets its batch axis, else sbi would read its N draws as N observations
        draws = posterior.sample((args.num_samples,), x=obs[None] if args.set_shape else obs, show_progress_bars=False)
        samples.append(draws.numpy())
    sample_seconds = time.perf_counter() - start
    np.savez(args.out, samples=np.stack(samples))
    print(
        json.dumps(
            {
                "library": f"sbi {sbi.__version__} (torch {torch.__version__}, {_label(args)})",
                "train_s": train_seconds,
                "sample_s": sample_seconds,
                "epochs": int(summary["epochs_trained"][-1]),
                # training stops `stop_after_epochs` (20) epochs after the best one (FMPE: after 20
                # epochs more than 2 sd of the recent losses above the best, so this is approximate)
                "best_epoch": int(summary["epochs_trained"][-1]) - 20,
                "best_validation_loss": float(summary["best_validation_loss"][-1]),
                "torch_threads": torch.get_num_threads(),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def _as_sets(x, observations, args, torch):
    """Training data and observations as ``(K, N, D)`` sets, z-scored per coordinate (pooled over
    draws), and the density estimator with a permutation-invariant embedding of them."""
    from sbi.neural_nets import posterior_nn
    from sbi.neural_nets.embedding_nets import FCEmbedding, PermutationInvariantEmbedding

    n, d = args.set_shape
    draws = x.reshape(-1, d)
    mean, std = draws.mean(dim=0), draws.std(dim=0).clamp_min(1e-8)
    x, observations = ((v.reshape(len(v), n, d) - mean) / std for v in (x, observations))
    trial_net = FCEmbedding(input_dim=d, output_dim=64, num_layers=2, num_hiddens=64)
    embedding = PermutationInvariantEmbedding(trial_net, trial_net_output_dim=64, aggregation_fn="mean",
                                              num_hiddens=64, num_layers=2, output_dim=16)
    return x, observations, posterior_nn(model=args.density_estimator, embedding_net=embedding, z_score_x="none")


def _label(args) -> str:
    if args.method == "nre":
        return "NRE-B, MCMC"
    if args.method == "fmpe":
        return "FMPE, ODE sampling"
    embedding = ", set embedding" if args.set_shape else ""
    return f"{args.method.upper()}/{args.density_estimator.upper()}{embedding}" + (", MCMC" if args.method == "nle" else "")


if __name__ == "__main__":
    main()
