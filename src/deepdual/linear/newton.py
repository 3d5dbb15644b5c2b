r"""Damped Newton method for the group-lasso logistic problem :math:`\min_{w,b}\ \ell(Xw + b\mathbf 1) + \beta\|w\|`.

This is the two-layer linear problem with one output and the logistic loss
(``docs/linear.md`` §1c).  The objective is convex, and away from :math:`w = 0` it is
twice differentiable:

.. math:: \nabla_w = X^Tg + \beta\,\frac{w}{\|w\|},\qquad
          \nabla^2_w = X^T\mathrm{diag}(h)X + \frac{\beta}{\|w\|}\Big(I - \frac{ww^T}{\|w\|^2}\Big),

with :math:`g_i = -y_i\sigma(-z_i)`, :math:`h_i = \sigma(z_i)\sigma(-z_i)`, :math:`z_i = y_i f_i`
(plus the row and column of the unpenalized intercept :math:`b`).  When
:math:`\|X^T\nabla\ell(0)\| > \beta` the minimizer has :math:`w \neq 0`; the method starts at a point
with a smaller objective than every point with :math:`w = 0` (a one-dimensional line
search along :math:`-X^T\nabla\ell(0)`) and decreases the objective at every step (Armijo
backtracking), so its iterates never reach the kink at :math:`w = 0`.

Unlike first-order methods, whose iteration count grows with the condition number of
:math:`X` (raw data whose columns have units differing by :math:`10^4` need more than
:math:`10^5` proximal-gradient steps), Newton's method is invariant under linear changes of
the smooth part's variables; the Newton system is solved after a diagonal (Jacobi)
scaling, an exact change of variables that only improves its rounding.  Nothing here
is trusted: the caller stops on a proven duality gap.

References
----------
S. Boyd and L. Vandenberghe, *Convex Optimization*, Cambridge University Press, 2004, §9.5
(damped Newton method with backtracking line search).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve, eigh
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_expit

from ..projection import pow2

__all__ = ["group_logistic_newton", "newton_affordable"]

_EPS = np.finfo(float).eps


def newton_affordable(n: int, d: int) -> bool:
    """Whether a Newton step (an ``n x d`` weighted Gram matrix and a ``d x d`` solve) is cheap enough."""
    return d <= 2000 and n * d * d <= 4e9


def _value(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float, beta: float) -> float:
    return float(-np.sum(log_expit(y * (X @ w + b)))) + beta * float(np.linalg.norm(w))


def _first_point(X: np.ndarray, y: np.ndarray, beta: float, b: float) -> np.ndarray | None:
    """A point along :math:`-X^T\\nabla\\ell(0)` with a smaller objective than ``w = 0``, or None if ``w = 0`` is optimal."""
    g0 = -y * expit(-y * b)
    q = -(X.T @ g0)
    nq = float(np.linalg.norm(q))
    if not nq > beta:
        return None
    u = q / nq
    Xu = X @ u

    def phi(t: float) -> float:
        return float(-np.sum(log_expit(y * (t * Xu + b)))) + beta * t

    # phi is convex with phi'(0) = beta - nq < 0: bracket its minimizer by doubling
    hi = 1.0 / max(float(np.max(np.abs(Xu))), 1e-300)
    while hi < 1e300 and phi(2.0 * hi) < phi(hi):
        hi *= 2.0
    res = minimize_scalar(phi, bounds=(0.0, 2.0 * hi), method="bounded", options={"xatol": 1e-6 * hi})
    t = float(res.x)
    if not (t > 0 and phi(t) < phi(0.0)):
        t = hi if phi(hi) < phi(0.0) else 0.0
    return t * u if t > 0 else None


def _newton_direction(H: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """Solve ``H d = -grad`` after Jacobi scaling (an exact change of variables); PSD-safe."""
    dg = np.sqrt(np.maximum(np.diag(H), 0.0))
    dg[dg == 0] = 1.0
    Hs = H / dg[:, None] / dg[None, :]
    gs = grad / dg
    # a relative ridge at rounding level keeps the factorization defined when H is singular
    Hs[np.diag_indices_from(Hs)] += 1e-13 * Hs.shape[0]
    try:
        ds = cho_solve(cho_factor(Hs, check_finite=False), -gs, check_finite=False)
    except LinAlgError:
        ev, Q = eigh(Hs, check_finite=False)
        ev = np.maximum(ev, 1e-13 * max(float(ev[-1]), 1e-300))
        ds = -(Q @ ((Q.T @ gs) / ev))
    return ds / dg


def group_logistic_newton(X: np.ndarray, y: np.ndarray, beta: float, *, w0: np.ndarray | None = None,
                          b0: float | None = None, intercept: bool = False, max_iter: int = 200,
                          stop: Callable[[np.ndarray, float | None, np.ndarray], bool] | None = None
                          ) -> tuple[np.ndarray, float | None, int, bool]:
    r"""Damped Newton method for :math:`\min_{w,b} \sum_i\log(1+e^{-y_i(x_i^Tw + b)}) + \beta\|w\|`.

    Parameters
    ----------
    X : ndarray (n, d)
    y : ndarray (n,)
        Labels in {-1, +1}.
    beta : float > 0
    w0, b0 : optional warm start (used when its objective beats the first point's).
    intercept : bool
        Whether ``b`` is a variable (unpenalized); otherwise ``b = 0``.
    max_iter : int
        Newton steps at most.
    stop : callable ``(w, b, F) -> bool``, optional
        Called after every step with the current iterate and its output ``F = Xw + b``;
        the method returns when it is true (the caller's duality-gap test).

    Returns
    -------
    w, b, n_iter, stopped
        The last iterate (``b`` is None without intercept), the number of Newton steps
        and whether ``stop`` returned true (or ``w = 0`` is optimal).
    """
    big = float(np.max(np.abs(X))) if X.size else 0.0
    if big > 0 and (big > 2.0 ** 64 or big < 2.0 ** -64):
        # exact change of variables w' = a w, X' = X / a, beta' = beta / a (a a power of two), so
        # that the weighted Gram matrix neither overflows nor underflows
        a = pow2(big)
        user_stop = stop

        def scaled_stop(ws: np.ndarray, bs: float | None, F: np.ndarray) -> bool:
            return user_stop(ws / a, bs, F) if user_stop is not None else False

        ws, bs, k, done = group_logistic_newton(
            X / a, y, beta / a, w0=None if w0 is None else np.asarray(w0, dtype=float) * a, b0=b0,
            intercept=intercept, max_iter=max_iter, stop=scaled_stop if stop is not None else None)
        return ws / a, bs, k, done
    n, d = X.shape
    b = 0.0
    if intercept:
        npos = int(np.sum(y > 0))
        b = math.log(npos / (n - npos)) if 0 < npos < n else 0.0
    w = _first_point(X, y, beta, b)
    if w is None:
        w = np.zeros(d)
        F = np.full(n, b)
        done = stop(w, b if intercept else None, F) if stop is not None else True
        return w, (b if intercept else None), 0, bool(done)
    if w0 is not None and np.any(w0):
        bw = float(b0) if (intercept and b0 is not None) else b
        if _value(X, y, w0, bw, beta) < _value(X, y, w, b, beta):
            w, b = np.array(w0, dtype=float), bw
    f = _value(X, y, w, b, beta)
    A = np.hstack([X, np.ones((n, 1))]) if intercept else X
    for k in range(1, max_iter + 1):
        F = X @ w + b
        z = y * F
        s = expit(-z)
        g = -y * s
        h = s * expit(z)
        nw = float(np.linalg.norm(w))
        u = w / nw
        grad = A.T @ g
        grad[:d] += beta * u
        H = A.T @ (h[:, None] * A)
        H[:d, :d] += (beta / nw) * (np.eye(d) - np.outer(u, u))
        step = _newton_direction(H, grad)
        slope = float(grad @ step)
        if not slope < 0:
            return w, (b if intercept else None), k - 1, False
        t = 1.0
        for _ in range(60):
            wn = w + t * step[:d]
            bn = b + t * step[d] if intercept else 0.0
            fn = _value(X, y, wn, bn, beta)
            if fn <= f + 1e-4 * t * slope:
                break
            t *= 0.5
        else:
            return w, (b if intercept else None), k - 1, False
        if not np.any(wn):
            return w, (b if intercept else None), k - 1, False
        w, b, f = wn, bn, fn
        if stop is not None and stop(w, b if intercept else None, X @ w + b):
            return w, (b if intercept else None), k, True
        if t * float(np.linalg.norm(step)) <= 4 * _EPS * (float(np.linalg.norm(w)) + abs(b)):
            # the step is below rounding: nothing more to gain
            return w, (b if intercept else None), k, False
    return w, (b if intercept else None), max_iter, False
