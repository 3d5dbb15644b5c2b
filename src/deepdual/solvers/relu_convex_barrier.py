"""Deprecated: moved to :mod:`deepdual.relu.convex_program.barrier`; this path keeps working for one release."""

from .._compat import forward

__getattr__ = forward(__name__, ("deepdual.relu.convex_program.barrier",))
