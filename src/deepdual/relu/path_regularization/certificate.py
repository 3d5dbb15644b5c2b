r"""Certificate of any path-regularized parallel ReLU network of depth 2 or 3 (docs/path_regularization.md §4).

For a network with first-layer width at most :math:`m_1` (and second-layer width at most :math:`m_2`)
per sub-network, objective :math:`\frac12\|f - y\|^2 + \beta R(\theta)` and residual :math:`v = y - f`:
every network of that class has :math:`\langle v, f'\rangle \le \sqrt{m_2}\,c(v)\,R(\theta')`, so with
:math:`\bar c \ge \sqrt{m_2}\,c(v)` and :math:`s = \min(1, \beta/\bar c)`,
:math:`D(sv) = s\langle v, y\rangle - \frac{s^2}2\|v\|^2` is a proven lower bound on the optimum over
the class.  :math:`c(v)` is computed exactly over complete first-layer patterns (never sampled);
otherwise the pattern-free bound :math:`\sqrt{m_1}\|X\|_2\max(\|v_+\|, \|v_-\|)` is used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...losses import Loss, SquaredLoss
from ...network import Network
from ...solution import Certificate
from .program import deep_norm_bound, norm_bound, path_constraint, path_widths, pattern_set
from .solver import path_objective

__all__ = ["certify_path"]


def certify_path(network: Network, X: np.ndarray, Y: np.ndarray, *, beta: float, loss: Loss, rtol: float,
                 max_patterns: int = 2000, max_blocks: int = 2_000_000, time_limit: float | None = None,
                 progress: Any = None) -> Certificate:
    r"""Objective (path regularizer) and proven lower bound over networks of the same depth and widths
    (module docstring).  Depth 2 or 3 (exact constraint over complete patterns); depth :math:`\ge 4`: the
    proven bound :func:`deep_norm_bound` (loose).  One output, squared loss, no biases.  ``time_limit`` and
    ``progress`` (passed by the command line for every ReLU network) are not used: the enumeration
    always runs to completion (``max_blocks`` bounds its size)."""
    if network.activation != "relu":
        raise ValueError(f"the path-regularized certificate covers ReLU networks, got activation={network.activation!r}")
    if network.has_biases:
        raise ValueError("the path-regularized certificate covers networks without biases")
    if not isinstance(loss, SquaredLoss):
        raise ValueError(f"the path-regularized certificate supports the squared loss, got {getattr(loss, 'name', loss)!r}")
    if Y.shape[1] != 1:
        raise ValueError(f"the path-regularized certificate supports one output, got `y` with {Y.shape[1]} columns")
    y = Y[:, 0]
    obj = path_objective(network, X, y, beta=beta)
    v = y - np.asarray(network.forward(X), float)[:, 0]
    if network.depth >= 4:  # no exact program here: the proven layer-norm bound (docs/path_regularization.md §4)
        widths = [max(sub[l].shape[1] for sub in network.weights) for l in range(network.depth - 1)]
        cbar = deep_norm_bound(X, v, widths)
        s = 1.0 if cbar <= beta else beta / cbar
        lower = float(s * (v @ y) - 0.5 * s * s * (v @ v))
        return Certificate(objective=obj, lower_bound=lower, exact_constraint=False, dual=(s * v)[:, None],
                           method="upper bound: ||X||_2 prod_l sqrt(m_l) max(||v+||, ||v-||) (depth >= 4)",
                           rtol=rtol, details={"constraint_upper": float(cbar), "regularization": "path",
                                               "widths": tuple(widths)})
    m1, m2 = path_widths(network)
    outer = network.depth == 3
    pset, complete, how = pattern_set(X, m1, max_patterns=max_patterns)
    res = None
    if complete:
        try:
            res = path_constraint(pset, v, outer_relu=outer, max_blocks=max_blocks)
        except ValueError:  # too many blocks to enumerate: the pattern-free bound below
            res = None
    if res is not None:
        cbar = float(np.sqrt(m2)) * res.upper
        method = f"exact: path-regularized program, widths m1={m1}, m2={m2}, {how} first-layer patterns"
        exact = True
    else:
        cbar = float(np.sqrt(m2)) * norm_bound(X, v, m1, outer_relu=outer)
        method = "upper bound: sqrt(m1 m2) ||X||_2 max(||v+||, ||v-||) (patterns not enumerable)"
        exact = False
    s = 1.0 if cbar <= beta else beta / cbar
    lower = float(s * (v @ y) - 0.5 * s * s * (v @ v))
    return Certificate(objective=obj, lower_bound=lower, method=method, exact_constraint=exact,
                       dual=(s * v)[:, None], rtol=rtol,
                       details={"constraint_upper": float(cbar), "regularization": "path",
                                "widths": (m1, m2) if outer else (m1,),
                                "class": f"parallel networks of depth {network.depth} with first-layer width <= {m1}"
                                         + (f" and second-layer width <= {m2}" if outer else "")})
