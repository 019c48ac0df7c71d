"""Graph data sets read from local files (no downloads): :mod:`slimops.data.planetoid`, :mod:`slimops.data.synthetic`."""

from .planetoid import Graph, load_planetoid
from .synthetic import synthetic_graph

__all__ = ["Graph", "load_planetoid", "synthetic_graph"]
