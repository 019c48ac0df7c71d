"""Model layers built on slimops ops (one file per layer)."""

from ..gat.conv import FusedGATConv
from .gatv2_conv import FusedGATv2Conv
from .mx_linear import MXLinear, convert_linears, load_anchor_into, mx_state_dict, set_format

__all__ = ["FusedGATConv", "FusedGATv2Conv", "MXLinear", "convert_linears", "load_anchor_into", "mx_state_dict",
           "set_format"]
