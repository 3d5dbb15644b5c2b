"""Deprecated: moved to :mod:`deepdual.relu.one_dimensional.solver`; this path keeps working for one release."""

from .._compat import forward

__getattr__ = forward(__name__, ("deepdual.relu.one_dimensional.solver", "deepdual.relu.one_dimensional.splines", "deepdual.relu.one_dimensional.certificate", "deepdual.relu.one_dimensional.trend_filter", "deepdual.relu.one_dimensional.losses", "deepdual.relu.one_dimensional.biases", "deepdual.relu.one_dimensional.deep"))
