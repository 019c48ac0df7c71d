"""slimops model layers (one file per layer)."""

from .gat_conv import FusedGATConv

__all__ = ["FusedGATConv"]
