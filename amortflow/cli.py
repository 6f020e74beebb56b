"""The ``amortflow`` command line.

    amortflow quickstart --out DIR          train the quickstart model, write its diagnostic plots
    amortflow benchmark TASK --simulations N [--method nle]  train NPE (or NLE / NRE) on a
                                            benchmark task, report C2ST and time
"""

from __future__ import annotations

import argparse
import logging
import sys

from amortflow._checks import positive_int
from amortflow.exceptions import ArgumentError


class _OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        self.exit(2, f"amortflow: error: {message} (see 'amortflow --help')\n")


def _positive_int(text: str) -> int:
    """argparse ``type=``: :func:`amortflow._checks.positive_int` of the text, as an argparse error."""
    try:
        return positive_int("the value", int(text))
    except (ValueError, ArgumentError):  # ArgumentError is a ValueError; int() raises one for "abc"
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="amortflow",
        description="Amortized simulation-based Bayesian inference on Keras 3 + TensorFlow.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineParser)

    quick = commands.add_parser(
        "quickstart",
        help="train the quickstart model (Gaussian means) and write its diagnostic plots",
        description="Train an amortized posterior for the means of a 4-D Gaussian (50 observations per "
        "data set; DeepSet + invertible network, online training) and write loss, latent-space, SBC, "
        "recovery and z-score/contraction plots, the trained amortizer and a summary to --out.",
    )
    quick.add_argument("--out", required=True, help="folder to write plots, model and summary to")
    quick.add_argument("--epochs", type=_positive_int, default=10, help="training epochs (default 10)")
    quick.add_argument("--iterations", type=_positive_int, default=1000, help="iterations per epoch (default 1000)")
    quick.add_argument("--batch-size", type=_positive_int, default=32, help="simulations per step (default 32)")
    quick.add_argument("--seed", type=int, default=2024, help="random seed (default 2024)")

    bench = commands.add_parser(
        "benchmark",
        help="train NPE on a standard SBI benchmark task and report C2ST and wall time",
        description="Simulate N training pairs of a benchmark task, train a neural posterior estimator "
        "offline, and report the C2ST accuracy against reference posterior samples on the task's "
        "observations (0.5 is perfect) and the training time.",
    )
    bench.add_argument("task", help="task name, e.g. gaussian_linear, two_moons, slcp (see amortflow.benchmarks.TASKS)")
    bench.add_argument("--simulations", type=_positive_int, default=10_000, help="training simulations (default 10000)")
    bench.add_argument("--observations", type=_positive_int, default=10, help="observations to evaluate (1-10, default 10)")
    bench.add_argument("--epochs", type=_positive_int, default=None, help="training epochs (default: chosen from the budget)")
    bench.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    bench.add_argument("--method", choices=("npe", "nle", "nre"), default="npe",
                       help="npe (default); nle or nre draw each posterior by MCMC")
    bench.add_argument("--out", default=None, help="optional JSON file for the results")
    return parser


def _run_quickstart(args: argparse.Namespace) -> int:
    from amortflow.quickstart import run_quickstart

    written = run_quickstart(
        args.out, epochs=args.epochs, iterations_per_epoch=args.iterations, batch_size=args.batch_size, seed=args.seed
    )
    print(f"Diagnostic plots written to {written['losses'].parent.resolve()}:")
    for name, path in written.items():
        print(f"  {name:20s} {path}")
    return 0


def _run_benchmark(args: argparse.Namespace) -> int:
    from amortflow.benchmarks import TASKS
    from amortflow.benchmarks.nle_nre import run_mcmc_benchmark
    from amortflow.benchmarks.runner import run_npe_benchmark

    if args.task not in TASKS:
        print(f"amortflow: error: unknown task {args.task!r}; choose one of {', '.join(sorted(TASKS))}", file=sys.stderr)
        return 2
    if args.observations > 10:
        print(f"amortflow: error: --observations must be between 1 and 10, received {args.observations}", file=sys.stderr)
        return 2
    common = {"num_simulations": args.simulations, "num_observations": args.observations, "epochs": args.epochs,
              "seed": args.seed}  # fmt: skip
    if args.method == "npe":
        result = run_npe_benchmark(args.task, **common)
    else:
        result = run_mcmc_benchmark(args.task, method=args.method, **common)
    print(result.to_text())
    if args.out:
        result.save_json(args.out)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    # amortflow's own INFO lines (shape report, validation losses) are the point of the CLI;
    # other libraries stay at WARNING.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("amortflow").setLevel(logging.INFO)
    handlers = {"quickstart": _run_quickstart, "benchmark": _run_benchmark}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
