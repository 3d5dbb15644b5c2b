"""Linear networks: the two-layer projection, nuclear-norm and deep linear theorems.

Derivations: ``docs/linear.md``.  :func:`solve_linear` computes the global optimum,
:func:`certify_linear` a weak-duality certificate for any linear network.
"""

from .certificate import certify_linear
from .solver import LINEAR_METHODS, solve_linear

__all__ = ["solve_linear", "certify_linear", "LINEAR_METHODS"]
