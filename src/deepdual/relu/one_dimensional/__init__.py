"""ReLU networks with biases on one-dimensional data (``docs/one_dimensional.md``).

Modules: :mod:`.splines` (grouping, spline cost, minimal-norm ramps), :mod:`.certificate`
(exact dual constraint), :mod:`.trend_filter` (two layers, squared loss), :mod:`.losses`
(logistic, hinge, cross-entropy), :mod:`.biases` (penalized biases), :mod:`.deep`
(depth >= 3), :mod:`.reflections` (deep narrow networks as Lasso models, arXiv 2403.01046), and
:mod:`.solver`, the entry point.
"""

from .solver import certify_1d, solve_1d
from .splines import Interpolant, interpolate, spline_cost, spline_network

__all__ = ["solve_1d", "certify_1d", "interpolate", "Interpolant", "spline_cost", "spline_network"]
