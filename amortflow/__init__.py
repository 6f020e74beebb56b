"""amortflow: amortized simulation-based Bayesian inference on Keras 3 + TensorFlow.

>>> import amortflow as af
>>> prior = af.simulation.Prior(batch_prior_fun=lambda b, rng: rng.normal(size=(b, 2)))
"""

from amortflow._backend import configure_backend as _configure_backend

_configure_backend()

import logging as _logging  # noqa: E402

_logging.getLogger("amortflow").addHandler(_logging.NullHandler())

from amortflow import exceptions, defaults, utils  # noqa: E402
from amortflow import simulation, configuration, configurators, parameter_space  # noqa: E402
from amortflow import dequantization, networks, amortizers  # noqa: E402
from amortflow import inference, trainers, diagnostics  # noqa: E402
from amortflow.utils import set_seed  # noqa: E402


def __getattr__(name: str):
    """``af.benchmarks`` is imported on first use: the library does not depend on its benchmark suite."""
    if name == "benchmarks":
        import importlib

        return importlib.import_module("amortflow.benchmarks")
    raise AttributeError(f"module 'amortflow' has no attribute {name!r}")

__version__ = "0.1.0"

__all__ = [
    "amortizers",
    "benchmarks",
    "configuration",
    "configurators",
    "defaults",
    "dequantization",
    "diagnostics",
    "exceptions",
    "inference",
    "networks",
    "parameter_space",
    "set_seed",
    "simulation",
    "trainers",
    "utils",
]
