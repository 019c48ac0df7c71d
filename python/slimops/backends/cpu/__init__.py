from . import mx  # noqa: F401
