"""Independent reference: the two-layer ReLU convex program (docs/theory.md §2.8) written in cvxpy.

Used by the tests (as an exact oracle over all patterns) and by
``benchmarks/bench_convex.py`` (as the cvxpy peer), so both compare against the same
formulation.  Needs the ``bench`` extra (cvxpy).
"""

from __future__ import annotations

import numpy as np


def convex_program_cvxpy(X: np.ndarray, y: np.ndarray, beta: float, loss: str, pats: np.ndarray):
    r"""The program :math:`\min \ell(\sum_i D_iX(v_i - w_i), y) + \beta\sum_i(\|v_i\| + \|w_i\|)`
    s.t. :math:`(2D_i - I)Xv_i \ge 0`, :math:`(2D_i - I)Xw_i \ge 0`, for the patterns
    ``pats`` (P, n) and ``loss`` "squared" (:math:`\frac12\|\cdot\|^2`) or "logistic"
    (labels ±1).  Returns ``(problem, V, W)`` with variables of shape (d, P), unsolved."""
    import cvxpy as cp

    Dm = np.asarray(pats).astype(float).T  # (n, P)
    n, d = X.shape
    P = Dm.shape[1]
    V, W = cp.Variable((d, P)), cp.Variable((d, P))
    XV, XW = X @ V, X @ W
    F = cp.sum(cp.multiply(Dm, XV - XW), axis=1)
    S = 2 * Dm - 1
    cons = [cp.multiply(S, XV) >= 0, cp.multiply(S, XW) >= 0]
    reg = beta * (cp.sum(cp.norm(V, 2, axis=0)) + cp.sum(cp.norm(W, 2, axis=0)))
    if loss == "squared":
        data = 0.5 * cp.sum_squares(F - y)
    else:
        data = cp.sum(cp.logistic(-cp.multiply(y, F)))
    return cp.Problem(cp.Minimize(data + reg), cons), V, W
