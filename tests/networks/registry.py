"""Registries of every network, driving the contract suites in tests/networks/.

Each entry maps a readable case name to a factory. Inference factories take
``(num_params, condition_dim)`` (``condition_dim`` may be None: unconditional) and return
an unbuilt network; summary factories take ``input_dim`` and return ``(network, input_shape_fn)``
as documented in their module. Modules ``registry_*.py`` add their entries on import.
"""

INFERENCE_NETWORKS: dict = {}
SUMMARY_NETWORKS: dict = {}


def register_inference(name: str):
    def decorator(factory):
        INFERENCE_NETWORKS[name] = factory
        return factory

    return decorator


def register_summary(name: str):
    def decorator(factory):
        SUMMARY_NETWORKS[name] = factory
        return factory

    return decorator


def load_all() -> None:
    """Import every ``registry_*.py`` module so that their entries are registered."""
    import importlib
    import pkgutil
    from pathlib import Path

    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name.startswith("registry_"):
            importlib.import_module(f"tests.networks.{module.name}")
