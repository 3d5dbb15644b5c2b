"""Deprecated: moved to :mod:`deepdual.relu.convex_program.solver`; this path keeps working for one release."""

from .._compat import forward

__getattr__ = forward(__name__, ("deepdual.relu.convex_program.solver", "deepdual.relu.convex_program.groups", "deepdual.relu.convex_program.certificate", "deepdual.relu.convex_program.barrier", "deepdual.relu.convex_program.augmented_lagrangian", "deepdual.relu.convex_program.working_set", "deepdual.relu.convex_program.rebuild"))
