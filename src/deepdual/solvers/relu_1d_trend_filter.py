"""Deprecated: moved to :mod:`deepdual.relu.one_dimensional.trend_filter`; this path keeps working for one release."""

from .._compat import forward

__getattr__ = forward(__name__, ("deepdual.relu.one_dimensional.trend_filter",))
