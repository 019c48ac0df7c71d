"""Multi-format QAT (``slimops.slicescale.qat``): prepare, set_format, export_anchor, strip."""

from .slicescale.qat import QATLinear, Scheduler, export_anchor, prepare, set_format, strip

__all__ = ["QATLinear", "Scheduler", "export_anchor", "prepare", "set_format", "strip"]
