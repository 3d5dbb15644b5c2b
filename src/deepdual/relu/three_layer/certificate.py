r"""Certificate of any parallel three-layer ReLU network of the paper's architecture
(docs/three_layer.md §3): objective :math:`\frac12\|f - y\|^2 + \frac\beta2\sum_k(\|W_{2k}\|_F^2 + \|W_{3k}\|_F^2)`
with :math:`\|W_{1k}\|_F \le 1`, and the proven lower bound :math:`D(sv)` at the network's residual
:math:`v = y - f`, :math:`s = \min(1, \beta/\bar c)`, :math:`\bar c \ge c_3(v)` from the exact branch and bound.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._validation import check_positive
from ...losses import Loss, SquaredLoss
from ...network import Network
from ...solution import DEFAULT_RTOL, Certificate
from .constraint import norm_bound, second_layer_constraint
from .solver import first_layer, three_layer_objective

__all__ = ["certify_three_layer"]


def certify_three_layer(network: Network, X: Any, y: Any, *, beta: float, rtol: float = DEFAULT_RTOL,
                        loss: Loss | None = None, max_nodes: int = 20000, max_patterns: int = 2000,
                        time_limit: float | None = None, progress: Any = None) -> Certificate:
    r"""Objective and proven lower bound for a depth-3 network with one output (module docstring).

    With complete first-layer patterns (plane sectors for :math:`d = 2`, enumerated when at most
    ``max_patterns``) the dual constraint is computed exactly by branch and bound; otherwise the
    pattern-free bound :math:`\|X\|_2\max(\|v_+\|, \|v_-\|)` is used (valid, loose).
    :func:`deepdual.certify` calls it for networks recorded with ``formulation="norm_constrained"``.
    ``time_limit`` and ``progress`` (passed by the command line) are not used: ``max_nodes`` bounds
    the search, and the bound is proven wherever it stops.
    """
    beta = check_positive(beta, "beta")
    if loss is not None and not isinstance(loss, SquaredLoss):
        raise ValueError(f"the three-layer certificate supports the squared loss, got {getattr(loss, 'name', loss)!r}")
    if network.activation != "relu" or network.depth != 3 or network.has_biases:
        raise ValueError("the three-layer certificate (formulation='norm_constrained') covers ReLU networks of "
                         f"depth 3 without biases, got activation={network.activation!r}, depth={network.depth}")
    X = np.asarray(X, dtype=float)
    yv = np.asarray(y, dtype=float).reshape(len(X), -1)
    if yv.shape[1] != 1:
        raise ValueError(f"`y` must have one output for the three-layer certificate, got {yv.shape[1]} columns")
    obj = three_layer_objective(network, X, yv[:, 0], beta=beta)
    v = yv[:, 0] - np.asarray(network.predict(X), dtype=float).reshape(-1)
    layer, complete, patterns = first_layer(X, {"max_patterns": max_patterns})
    if complete:
        res = [second_layer_constraint(layer, s * v, max_nodes=max_nodes) for s in (1.0, -1.0)]
        cbar = max(r.upper for r in res)  # proven even when the node budget stops the search
        exact = all(r.exact for r in res)
        how = f"exact: branch and bound over second-layer patterns ({patterns} first-layer patterns)"
    else:
        exact = False
        cbar = norm_bound(X, v)
        how = "upper bound: ||X||_2 max(||v+||, ||v-||)"
    s = 1.0 if cbar <= beta else beta / cbar
    lower = float(s * (v @ yv[:, 0]) - 0.5 * s * s * (v @ v))
    return Certificate(objective=obj, lower_bound=lower, method=how, exact_constraint=exact,
                       dual=s * v[:, None], rtol=rtol, details={"constraint_upper": float(cbar)})
