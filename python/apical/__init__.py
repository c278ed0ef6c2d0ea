"""apical: spiking two-compartment neurons that learn MNIST with local rules.

Guerguiev, Lillicrap & Richards, "Towards deep learning with segregated dendrites"
(eLife 2017), simulated by the apical Rust library. See docs/python.md.
"""

from ._apical import (
    ApicalError,
    ConfigError,
    Model,
    __version__,
)
from ._mnist import fetch_mnist

__all__ = [
    "ApicalError",
    "ConfigError",
    "Model",
    "fetch_mnist",
    "__version__",
]
