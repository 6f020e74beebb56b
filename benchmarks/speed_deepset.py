"""Forward+backward time of DeepSet variants on the quickstart batch (32 sets x 50 elements x 4).

The summary network is most of the quickstart's training step, so its width, depth and the
TensorFlow settings decide the step's speed. Each variant is timed alone: one XLA-compiled
function that computes the gradients of a scalar of the summaries with respect to every
weight, ``--calls`` calls per repeat, best of ``--repeats`` (robust on a shared machine).

    python benchmarks/speed_deepset.py                              # default grid
    python benchmarks/speed_deepset.py --units 64 32 --num-equiv 2 1 --threads 1 2
    python benchmarks/speed_deepset.py --units 64 --num-equiv 1 --jit true false --policy float32 mixed_bfloat16

Prints one JSON line per variant.
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


def time_variant(units: int, num_equiv: int, jit: bool, policy: str, batch: tuple, repeats: int, calls: int) -> dict:
    """Best milliseconds per forward+backward call of one DeepSet variant.

    ``policy`` is a Keras dtype policy for the DeepSet's layers, e.g. "mixed_bfloat16" (bfloat16
    matrix products, float32 weights), which oneDNN can run on AMX/AVX-512-BF16 units.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    import amortflow as af

    af.set_seed(0)
    dense = {"units": units}
    keras.config.set_dtype_policy(policy)
    try:
        net = af.networks.DeepSet(summary_dim=10, num_equiv=num_equiv, dense_s1_args=dense, dense_s2_args=dense,
                                  dense_s3_args=dense)  # fmt: skip
    finally:
        keras.config.set_dtype_policy("float32")
    x = tf.constant(np.random.default_rng(0).normal(size=batch).astype("float32"))
    net(x)

    @tf.function(jit_compile=jit)
    def grads():
        with tf.GradientTape() as tape:
            value = tf.reduce_sum(tf.square(tf.cast(net(x, training=True), tf.float32)))
        return tape.gradient(value, net.trainable_variables)

    grads()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            out = grads()
        _ = out[0].numpy()
        best = min(best, (time.perf_counter() - start) / calls)
    return {"units": units, "num_equiv": num_equiv, "jit": jit, "policy": policy, "params": int(net.count_params()),
            "fwd_bwd_ms": round(1e3 * best, 3)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--units", type=int, nargs="+", default=[64, 32])
    parser.add_argument("--num-equiv", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--jit", choices=("true", "false"), nargs="+", default=["true"])
    parser.add_argument("--policy", nargs="+", default=["float32"], help="Keras dtype policies, e.g. mixed_bfloat16")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0: TensorFlow's choice)")
    parser.add_argument("--inter-threads", type=int, default=0, help="inter-op threads (0: TensorFlow's choice)")
    parser.add_argument("--batch", type=int, nargs=3, default=[32, 50, 4])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()

    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    if args.inter_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_threads)
    for units, num_equiv, jit, policy in itertools.product(args.units, args.num_equiv, args.jit, args.policy):
        load = os.getloadavg()[0]
        result = time_variant(units, num_equiv, jit == "true", policy, tuple(args.batch), args.repeats, args.calls)
        result.update(threads=args.threads, inter_threads=args.inter_threads, load_avg_before=round(load, 2))
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
