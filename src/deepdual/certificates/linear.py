"""Deprecated: moved to :mod:`deepdual.linear.certificate`; this path keeps working for one release."""

from .._compat import forward

__getattr__ = forward(__name__, ("deepdual.linear.certificate", "deepdual.linear.solver"))
