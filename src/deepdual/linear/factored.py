r"""Quasi-Newton descent on the factored two-layer problem (a polish for the nuclear-norm solver).

By the variational form of the nuclear norm (``docs/linear.md`` §1),

.. math:: \min_M\ \ell(XM) + \beta\|M\|_* \;=\; \min_{A\in\mathbb R^{d\times m},\,C\in\mathbb R^{m\times K}}
          \ \ell(XAC) + \frac\beta2\big(\|A\|_F^2 + \|C\|_F^2\big)

whenever ``m`` is at least the rank of a minimizer (``m = min(d, K)`` always is).  The
right-hand side is smooth, so L-BFGS applies; its iteration count depends far less on the
conditioning of ``X`` and on the flatness of the loss (cross-entropy on separable data)
than proximal gradient's.  It is not convex, so nothing here is trusted: the caller
evaluates the end-to-end weight :math:`M = AC` and its dual point like any other iterate and
keeps them only if they are better.

References
----------
S. Burer and R. D. C. Monteiro, "A nonlinear programming algorithm for solving
semidefinite programs via low-rank factorization", Math. Program. 95, 2003.
D. C. Liu and J. Nocedal, "On the limited memory BFGS method for large scale
optimization", Math. Program. 45, 1989.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from ..losses import Loss

__all__ = ["factored_lbfgs"]


def factored_lbfgs(X: np.ndarray, Y: np.ndarray, loss: Loss, beta: float, W0: np.ndarray, *,
                   max_iter: int, precondition: bool = False) -> tuple[np.ndarray, int]:
    r"""L-BFGS on :math:`\ell(XAC) + \frac\beta2(\|A\|_F^2 + \|C\|_F^2)` from the balanced factors of ``W0``.

    With ``precondition=True`` the variables are :math:`\tilde A = DA` with :math:`D` the column
    norms of ``X`` over their median (an exact change of variables: the same problem, but
    L-BFGS, which is not invariant under it, sees the loss's curvature balanced across
    columns in different units).

    Returns the end-to-end weight :math:`AC` (d x K) and the number of iterations.
    """
    d, K = W0.shape
    m = min(d, K)
    U, s, Vt = np.linalg.svd(W0, full_matrices=False)
    root = np.sqrt(s)
    A0, C0 = U * root, root[:, None] * Vt
    if not np.any(s):
        # the zero matrix is a saddle of the factored problem: start from a small random pair
        rng = np.random.default_rng(0)
        A0 = 1e-3 * rng.standard_normal((d, m))
        C0 = 1e-3 * rng.standard_normal((m, K))
    split = d * m
    D = np.ones(d)
    if precondition:
        D = np.linalg.norm(X, axis=0)
        pos = D[D > 0]
        D = D / float(np.median(pos)) if pos.size else np.ones(d)
        D[D == 0] = 1.0
    A0 = A0 * D[:, None]

    def fun(z: np.ndarray) -> tuple[float, np.ndarray]:
        A = z[:split].reshape(d, m) / D[:, None]
        C = z[split:].reshape(m, K)
        F = X @ (A @ C)
        G = X.T @ np.asarray(loss.gradient(F, Y), dtype=float)
        val = float(loss.value(F, Y)) + 0.5 * beta * (float(np.vdot(A, A)) + float(np.vdot(C, C)))
        gA = G @ C.T + beta * A
        gC = A.T @ G + beta * C
        return val, np.concatenate([(gA / D[:, None]).ravel(), gC.ravel()])

    # no tolerance-based stop: the iterations run until the line search stalls at rounding
    # level or the budget is spent (the caller measures the duality gap)
    res = minimize(fun, np.concatenate([A0.ravel(), C0.ravel()]), jac=True, method="L-BFGS-B",
                   options={"maxiter": int(max_iter), "gtol": 0.0, "ftol": 0.0, "maxcor": 30})
    A = res.x[:split].reshape(d, m) / D[:, None]
    C = res.x[split:].reshape(m, K)
    return A @ C, int(res.nit)
