"""Deprecated: moved to :mod:`deepdual.relu.rank_one.solver`; this path keeps working for one release."""

from .._compat import forward

__getattr__ = forward(__name__, ("deepdual.relu.rank_one.solver",))
