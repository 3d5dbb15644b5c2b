"""Two-layer ReLU networks on arbitrary data: the convex program over activation patterns.

Pilanci & Ergen (ICML 2020); derivations in ``docs/convex_program.md``.  Modules:
:mod:`.groups` (the program's groups and loss curvature), :mod:`.certificate` (dual
constraint over a pattern set), :mod:`.conic_ipm` (primal--dual interior-point method),
:mod:`.barrier` (barrier method), :mod:`.augmented_lagrangian`, :mod:`.working_set`,
:mod:`.rebuild` (network from the program's solution, local polish) and
:mod:`.solver`, the entry point.
"""

from .solver import CONVEX_OPTIONS, SOLVERS, solve_convex

__all__ = ["solve_convex", "CONVEX_OPTIONS", "SOLVERS"]
