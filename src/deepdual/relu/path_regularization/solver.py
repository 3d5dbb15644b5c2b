r"""Globally optimal path-regularized parallel ReLU networks on small data (docs/path_regularization.md;
Ergen & Pilanci, "Path regularization: a convexity and sparsity inducing regularization for parallel
ReLU networks", arXiv 2110.09548).

Solves :math:`\min\ \frac12\|f(X) - y\|^2 + \beta R(\theta)` over parallel networks of depth 2 or 3 with
first-layer width :math:`m_1` (and second-layer width :math:`m_2`) per sub-network and any number of
sub-networks, through the convex program of :mod:`deepdual.relu.path_regularization.program` written
over its atoms: a non-negative Lasso over the atoms found so far (column generation), priced by the
exact dual constraint :math:`c(v)` (enumeration of the pattern blocks), with the proven lower bound
:math:`D(sv) = s\langle v, y\rangle - \frac{s^2}2\|v\|^2`, :math:`s = \min(1, \beta'/\bar c)`.
At depth 3 the width :math:`m_2` only rescales the weight: the problem equals the :math:`m_2 = 1` problem
with :math:`\beta' = \beta/\sqrt{m_2}` (docs/path_regularization.md §3).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..._validation import check_options
from ...losses import Loss, SquaredLoss
from ...network import Network
from ...solution import Solution
from ..three_layer.solver import nonnegative_lasso
from .program import PathAtom, network_from_path_atoms, norm_bound, path_constraint, path_regularizer, pattern_set

__all__ = ["solve_path", "path_objective", "check_widths", "THEOREM"]

THEOREM = "Path-regularized parallel ReLU networks: convex program (Ergen & Pilanci, arXiv 2110.09548)"
OPTIONS = ("widths", "max_patterns", "n_patterns", "seed", "max_iter", "max_blocks")


def path_objective(network: Network, X: Any, y: Any, *, beta: float) -> float:
    r""":math:`\frac12\|f(X) - y\|^2 + \beta R(\theta)` with the path regularizer :math:`R`
    (:func:`deepdual.relu.path_regularization.program.path_regularizer`)."""
    F = np.asarray(network.forward(X), float)
    Y = np.asarray(y, float).reshape(F.shape)
    return float(0.5 * np.sum((F - Y) ** 2) + beta * path_regularizer(network))


def check_widths(widths: Any, depth: int) -> tuple[int, int]:
    """``widths`` = ``(m1,)`` at depth 2, ``(m1, m2)`` at depth 3 (positive integers); returns ``(m1, m2)``."""
    default = (2,) if depth == 2 else (2, 1)
    widths = default if widths is None else widths
    if isinstance(widths, (int, np.integer)):
        widths = (int(widths),) + ((1,) if depth == 3 else ())
    if (not isinstance(widths, (tuple, list)) or len(widths) != depth - 1
            or not all(isinstance(m, (int, np.integer)) and not isinstance(m, bool) and m >= 1 for m in widths)):
        raise ValueError(f"`widths` must be {depth - 1} positive integer(s) (the hidden widths of each "
                         f"sub-network) for depth={depth}, got {widths!r}")
    m1 = int(widths[0])
    m2 = int(widths[1]) if depth == 3 else 1
    return m1, m2


def solve_path(X: np.ndarray, Y: np.ndarray, *, scalar: bool, beta: float, depth: int, loss: Loss,
               rtol: float, bias: bool, **options: Any) -> Solution:
    r"""Optimal path-regularized parallel network (module docstring).

    Parameters
    ----------
    X, Y : validated arrays (n, d), (n, 1)
    scalar, beta, depth, loss, rtol, bias : see :func:`deepdual.solve` (depth 2 or 3, squared
        loss, one output, ``bias=False``)
    widths : tuple of int, default (2,) at depth 2 and (2, 1) at depth 3
        Hidden widths :math:`(m_1[, m_2])` of every sub-network (the number of sub-networks is free).
    max_patterns, n_patterns, seed : first-layer patterns: complete (d = 2 sectors, or enumerated
        when at most ``max_patterns``), else ``n_patterns`` sampled (then ``certified`` is False and
        ``info["sampled_program_lower_bound"]`` is the sampled program's own proven bound).
    max_iter : int, default 100
        Column-generation rounds.
    max_blocks : int, default 2_000_000
        Largest number of pattern blocks :math:`(T, E)` the exact dual constraint may enumerate.

    Returns
    -------
    Solution
        ``objective`` is the path-regularized objective of the returned network
        (:func:`path_objective`); the network records ``regularization="path"`` so that
        :func:`deepdual.objective` and :func:`deepdual.certify` use the same regularizer.
    """
    check_options(options, OPTIONS, "solve(regularization='path')")
    if depth not in (2, 3):
        raise ValueError(f"`depth` must be 2 or 3 for regularization='path' (the exact program is "
                         f"implemented for these depths, docs/path_regularization.md), got {depth}")
    if bias:
        raise ValueError("`bias=True` is not covered by the path-regularized program (networks without biases)")
    if not isinstance(loss, SquaredLoss):
        raise ValueError(f"regularization='path' supports the squared loss, got {getattr(loss, 'name', loss)!r}")
    if Y.shape[1] != 1:
        raise ValueError(f"regularization='path' supports one output, got `y` with {Y.shape[1]} columns")
    m1, m2 = check_widths(options.get("widths"), depth)
    max_iter = int(options.get("max_iter", 100))
    max_blocks = int(options.get("max_blocks", 2_000_000))
    start = time.perf_counter()
    y = Y[:, 0].astype(float)
    n, d = X.shape
    outer = depth == 3
    beta_eff = beta / np.sqrt(m2)
    pset, complete, how = pattern_set(X, m1, max_patterns=int(options.get("max_patterns", 2000)),
                                      n_patterns=int(options.get("n_patterns", 200)), seed=options.get("seed", 0))
    atoms: list[PathAtom] = []
    cols = np.zeros((n, 0))
    c = np.zeros(0)
    v = y.copy()
    upper = np.inf
    evaluated = 0
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        target = beta_eff * (1 + 1e-7)  # above the Lasso's rounding: atoms in use sit at beta'
        res = path_constraint(pset, v, outer_relu=outer, target=target, max_blocks=max_blocks)
        evaluated += res.evaluated
        added = 0
        for a in res.atoms:
            if cols.shape[1] and np.min(np.linalg.norm(cols - a.column[:, None], axis=0)) <= 1e-9 * (
                    1 + np.linalg.norm(a.column)):
                continue
            atoms.append(a)
            cols = np.column_stack([cols, a.column])
            added += 1
        if not res.atoms or not added:
            upper = res.upper if not res.atoms else np.inf
            converged = not res.atoms
            break
        c = nonnegative_lasso(cols, y, beta_eff, np.concatenate([c, np.zeros(added)]))
        v = y - cols @ c
    F = cols @ c if cols.shape[1] else np.zeros(n)
    v = y - F
    if not np.isfinite(upper):  # bound the final residual exactly (no early stop)
        res = path_constraint(pset, v, outer_relu=outer, max_blocks=max_blocks)
        evaluated += res.evaluated
        upper = res.upper
    cbar = upper if complete else norm_bound(X, v, m1, outer_relu=outer)
    s = 1.0 if cbar <= beta_eff else beta_eff / cbar
    lower = float(s * (v @ y) - 0.5 * s * s * (v @ v))
    net = network_from_path_atoms(atoms, c, d, depth=depth, m2=m2, scalar=scalar, m1=m1)
    obj = path_objective(net, X, y, beta=beta)
    info: dict[str, Any] = {"beta": beta, "depth": depth, "regularization": "path",
                            "widths": (m1, m2) if depth == 3 else (m1,), "patterns": how,
                            "atoms": int(np.sum(c > 0)), "iterations": it, "constraint_upper": float(upper),
                            "blocks_evaluated": int(evaluated), "converged": bool(converged),
                            "time": time.perf_counter() - start}
    if not complete:
        s2 = 1.0 if upper <= beta_eff else beta_eff / upper
        info["sampled_program_lower_bound"] = float(s2 * (v @ y) - 0.5 * s2 * s2 * (v @ v))
    sol = Solution(network=net, objective=obj, lower_bound=lower, method=THEOREM, rtol=rtol,
                   dual=(s * v)[:, None], info=info)
    if not sol.certified:
        why = []
        if not complete:
            why.append("sampled first-layer patterns: the proven bound uses sqrt(m1) ||X||_2 max(||v+||, ||v-||)")
        if not converged:
            why.append("column generation hit max_iter" if it >= max_iter else
                       "column generation stalled (the violating atoms were already columns)")
        sol.info["note"] = "not certified: " + ("; ".join(why) if why else "gap above rtol")
    return sol
