"""Final validation loss of the quickstart model for DeepSet variants (is a leaner DeepSet as good?).

Trains the quickstart configuration (theta ~ N(0, I_4), x_n ~ N(theta, I_4), n_obs = 50,
InvertibleNetwork(num_params=4, num_coupling_layers=4), batch 32, online, default optimizer)
with a DeepSet of the given width and number of equivariant modules, then evaluates the
loss (negative log posterior density, nats) on one fixed validation set of ``--val-sets``
simulations drawn with its own seed, the same for every variant and training seed.

    python benchmarks/speed_deepset_validation.py --units 64 32 --num-equiv 2 1 --seeds 1 2 3 \\
        --epochs 1 --iterations 1000

Prints one JSON line per (variant, seed) and a summary line per variant.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import amortflow as af  # noqa: E402

NUM_PARAMS, N_OBS, VALIDATION_SEED = 4, 50, 2026


def prior(batch_size, rng):
    return rng.normal(size=(batch_size, NUM_PARAMS))


def simulator(theta, rng):
    return theta[:, None, :] + rng.normal(size=(theta.shape[0], N_OBS, NUM_PARAMS))


def train_and_validate(units: int, num_equiv: int, seed: int, args) -> dict:
    """Train one variant with one seed; return its loss on the fixed validation set."""
    af.set_seed(seed)
    model = af.simulation.GenerativeModel(prior, simulator, prior_is_batched=True, simulator_is_batched=True)
    dense = {"units": units}
    summary = af.networks.DeepSet(summary_dim=10, num_equiv=num_equiv, dense_s1_args=dense, dense_s2_args=dense,
                                  dense_s3_args=dense)  # fmt: skip
    amortizer = af.amortizers.AmortizedPosterior(
        af.networks.InvertibleNetwork(num_params=NUM_PARAMS, num_coupling_layers=4), summary
    )
    trainer = af.trainers.Trainer(amortizer, model, seed=seed, jit_compile=True, progress=False)
    start = time.perf_counter()
    trainer.train_online(epochs=args.epochs, iterations_per_epoch=args.iterations, batch_size=32)
    wall = time.perf_counter() - start
    validation = trainer.configure(model(args.val_sets, rng=np.random.default_rng(VALIDATION_SEED)))
    loss = float(amortizer.compute_loss(validation))
    return {"units": units, "num_equiv": num_equiv, "seed": seed, "steps": args.epochs * args.iterations,
            "val_sets": args.val_sets, "val_loss": round(loss, 4), "train_wall_s": round(wall, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--units", type=int, nargs="+", default=[64, 32])
    parser.add_argument("--num-equiv", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--val-sets", type=int, default=5000)
    args = parser.parse_args()

    for units, num_equiv in itertools.product(args.units, args.num_equiv):
        losses = []
        for seed in args.seeds:
            result = train_and_validate(units, num_equiv, seed, args)
            losses.append(result["val_loss"])
            print(json.dumps(result), flush=True)
        print(json.dumps({"summary": True, "units": units, "num_equiv": num_equiv, "steps": args.epochs * args.iterations,
                          "seeds": args.seeds, "mean_val_loss": round(float(np.mean(losses)), 4),
                          "val_losses": losses}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
