"""Deprecated: moved to :mod:`deepdual.linear`; this path keeps working for one release."""

from .._compat import forward

__getattr__ = forward(__name__, ("deepdual.linear", "deepdual.relu"))
