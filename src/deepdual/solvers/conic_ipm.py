"""Deprecated: moved to :mod:`deepdual.relu.convex_program.conic_ipm`; this path keeps working for one release."""

from .._compat import forward

__getattr__ = forward(__name__, ("deepdual.relu.convex_program.conic_ipm",))
