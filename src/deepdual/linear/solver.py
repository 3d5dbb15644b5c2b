r"""Globally optimal regularized *linear* networks (docs/theory.md §2.1--2.3).

A linear network of depth :math:`L` computes :math:`f(X) = XM` with the end-to-end
weight :math:`M = \sum_j W_{1,j}\cdots W_{L,j}` (d x K).  Weight decay only sees the
factors, and rescaling (AM--GM) turns it into a penalty on :math:`M`:

* **two layers** (:math:`L = 2`): :math:`\min_\theta P(\theta) = \min_M \ell(XM) + \beta\|M\|_*`
  (nuclear norm; the Euclidean norm for one output).  Convex.  Its dual is
  :math:`\max_\Lambda -\ell^*(-\Lambda)` s.t. :math:`\|X^T\Lambda\|_2 \le \beta` (spectral norm).

  - one output, squared loss: closed form through the projection
    :math:`u^\star = \mathcal{P}_{X,\beta}(y)` (method ``"projection"``);
  - :math:`X^TX = I` or :math:`XX^T = I`, squared loss: singular-value soft threshold
    (method ``"spectral"``);
  - otherwise: accelerated proximal gradient (FISTA with restart) stopped on the
    duality gap (method ``"fista"``).

* **deep** (:math:`L \ge 3`): :math:`\min_M \ell(XM) + \tfrac{\beta L}{2}\sum_i\sigma_i(M)^{2/L}`
  for one path; non-convex.

  - :math:`X^TX = I` or :math:`XX^T = I`, squared loss: separable over singular values,
    each solved globally by :func:`deepdual.bounds.power_prox` (method ``"spectral"``);
  - one output (any loss): a provably global one-dimensional search along the path
    of group-lasso solutions :math:`M(r) = \arg\min \ell(XM) + r\|M\|` with the interval
    lower bound of :func:`deepdual.bounds.power_penalty_lower_bound` (method ``"path"``);
  - cross-entropy with two classes: exactly the logistic problem on the margin with
    data :math:`\sqrt2 X` (:func:`two_class_margin`), solved by the one-output search
    (certified like the one-output case);
  - several outputs, general data: the same search along the nuclear-norm path plus
    a proximal-gradient polish; the lower bound uses
    :math:`\sum_i\sigma_i^p \ge (\sum_i\sigma_i)^p` and is usually *not* tight when the
    optimum has rank > 1, so such results are honestly reported uncertified
    (method ``"prox"``).

Every lower bound is proven; the derivations are in ``docs/linear.md``.

References
----------
.. [1] T. Ergen and M. Pilanci, "Revealing the Structure of Deep Neural Networks via
   Convex Duality", ICML 2021 (arXiv:2002.09773), sections 2--3.
.. [2] A. Beck and M. Teboulle, "A fast iterative shrinkage-thresholding algorithm for
   linear inverse problems", SIAM J. Imaging Sci. 2(1), 2009.
.. [3] B. O'Donoghue and E. Candes, "Adaptive restart for accelerated gradient
   schemes", Found. Comput. Math. 15, 2015.
.. [4] Y. Nesterov, "Smooth minimization of non-smooth functions", Math. Program. 103,
   2005 (smoothing of the hinge loss).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from scipy.optimize import brentq, minimize_scalar

from .._validation import check_choice, check_options
from ..bounds import max_budget, power_penalty_lower_bound, power_prox
from ..losses import CrossEntropyLoss, HingeLoss, LogisticLoss, Loss, SquaredLoss
from ..network import Network
from ..objective import objective
from ..projection import Factorization, pow2, secular_mu, factorize, project_factored
from ..solution import Solution
from ..structures import has_orthonormal_columns, is_whitened
from .factored import factored_lbfgs
from .newton import group_logistic_newton, newton_affordable
from ..progress import current as current_monitor

__all__ = ["solve_linear", "LINEAR_METHODS"]

#: values of ``method`` accepted for ``activation="linear"``
LINEAR_METHODS = ("auto", "projection", "spectral", "fista", "path", "prox")
_OPTIONS = ("width", "tol", "max_iter", "max_points", "factorization")

_EPS = np.finfo(float).eps
_TINY = np.finfo(float).tiny


# ====================================================================== small linear algebra
def spectral_norm(A: np.ndarray) -> float:
    r"""Largest singular value (the Euclidean norm for a vector or a single column/row).

    For a matrix with a short side of at most 256, :math:`\sqrt{\lambda_{\max}(A^TA)}` of the
    small Gram matrix, inflated by ``2 (n + k) eps`` (``n`` the long side: the rounding
    bound of the Gram matrix's dot products and of the eigenvalue) so that rounding does
    not make it an underestimate in the dual-constraint values built from it; otherwise
    LAPACK's SVD.
    """
    A = np.asarray(A, dtype=float)
    if A.ndim == 1 or min(A.shape) == 1:
        return float(np.linalg.norm(A))
    k = min(A.shape)
    if k <= 256:
        big = float(np.max(np.abs(A))) if A.size else 0.0
        if not big > 0 or not np.isfinite(big):
            return 0.0 if big == 0 else float(np.linalg.norm(A, 2))
        a = pow2(big)  # exact rescaling: the Gram matrix neither overflows nor underflows
        As = A / a
        G = As.T @ As if A.shape[1] == k else As @ As.T
        top = float(np.linalg.eigvalsh(G)[-1])
        return a * math.sqrt(max(top, 0.0)) * (1.0 + 2 * (max(A.shape) + k) * _EPS)
    return float(np.linalg.norm(A, 2))


def nuclear_norm(A: np.ndarray) -> float:
    """Sum of singular values (the Euclidean norm for a vector or a single column/row)."""
    A = np.asarray(A, dtype=float)
    if A.ndim == 1 or min(A.shape) == 1:
        return float(np.linalg.norm(A))
    return float(np.linalg.svd(A, compute_uv=False).sum())


def schatten_power(A: np.ndarray, p: float) -> float:
    r""":math:`\sum_i \sigma_i(A)^p`."""
    A = np.asarray(A, dtype=float)
    if A.ndim == 1 or min(A.shape) == 1:
        return float(np.linalg.norm(A)) ** p
    return float(np.sum(np.linalg.svd(A, compute_uv=False) ** p))


def prox_nuclear(Z: np.ndarray, tau: float) -> np.ndarray:
    r"""Singular-value soft threshold :math:`\arg\min_W \tau\|W\|_* + \tfrac12\|W - Z\|_F^2`.

    For a single column it is the group soft threshold :math:`(1 - \tau/\|z\|)_+ z`.
    """
    if min(Z.shape) == 1:
        nz = float(np.linalg.norm(Z))
        return Z * max(1.0 - tau / nz, 0.0) if nz > 0 else np.zeros_like(Z)
    U, s, Vt = np.linalg.svd(Z, full_matrices=False)
    s = np.maximum(s - tau, 0.0)
    return (U * s) @ Vt


def prox_schatten(Z: np.ndarray, tau: float, p: float) -> np.ndarray:
    r"""Global :math:`\arg\min_W \tau\sum_i\sigma_i(W)^p + \tfrac12\|W - Z\|_F^2` (0 < p <= 1).

    The penalty is unitarily invariant, so by von Neumann's trace inequality the
    minimizer shares the singular vectors of ``Z`` and each singular value is the
    scalar :func:`~deepdual.bounds.power_prox`.
    """
    U, s, Vt = np.linalg.svd(Z, full_matrices=False)
    s = np.array([power_prox(si, tau, p).sigma for si in s])
    return (U * s) @ Vt


# ====================================================================== dual points
def _is_binary(loss: Loss) -> bool:
    return isinstance(loss, (LogisticLoss, HingeLoss))


def zero_sum_dual(loss: Loss, V: np.ndarray, Y: np.ndarray) -> np.ndarray | None:
    r"""A dual point :math:`V'` near ``V`` with :math:`\mathbf 1^TV' = 0`, or ``None``.

    An unpenalized intercept ``b`` adds :math:`-\langle \mathbf 1^T V, b\rangle` to the
    Fenchel--Young bound, which is unbounded below unless every column of ``V`` sums
    to zero.  Squared loss: subtract the column means.  Logistic/hinge (``V = a y`` with
    :math:`a\in[0,1]^n`): :math:`a' = \mathrm{clip}(a - \theta y, 0, 1)` with the scalar
    :math:`\theta` that makes :math:`\sum_i y_i a'_i = 0` (monotone in :math:`\theta`), which keeps
    :math:`-V'` in the conjugate's domain.  Other losses: ``None``.
    """
    if isinstance(loss, SquaredLoss):
        return V - V.mean(axis=0)
    if _is_binary(loss) and V.shape[1] == 1:
        y = Y[:, 0]
        a = np.clip(V[:, 0] * y, 0.0, 1.0)
        if not np.any(a):
            return np.zeros_like(V)
        if np.all(y > 0) or np.all(y < 0):
            return np.zeros_like(V)  # only a = 0 sums to zero with one-signed labels

        def g(th: float) -> float:
            return float(np.sum(y * np.clip(a - th * y, 0.0, 1.0)))

        # g decreases from #(y=+1) at th=-2 to -#(y=-1) at th=2 (a in [0,1])
        th = brentq(g, -2.0, 2.0, xtol=1e-15, rtol=4 * _EPS)
        return (np.clip(a - th * y, 0.0, 1.0) * y)[:, None]
    return None


def scaled_dual(loss: Loss, X: np.ndarray, Y: np.ndarray, V: np.ndarray, beta: float,
                *, intercept: bool = False, fast: bool = False) -> tuple[np.ndarray, float, float]:
    r"""Scale a dual candidate into :math:`\{\|X^T\Lambda\|_2 \le \beta\}` and the loss's domain.

    Returns ``(Lambda, D(Lambda), ||X^T Lambda||_2)`` with :math:`\Lambda = tV` and
    ``t`` maximizing :math:`D(tV)` over :math:`0 \le t \le \beta/\|X^TV\|_2`
    (:meth:`~deepdual.losses.Loss.best_scale`).  :math:`D(\Lambda)` is then a proven lower
    bound for every two-layer linear network (weak duality, ``docs/linear.md``).
    With ``fast=True`` (non-squared losses) ``t = min(1, beta/c, domain limit)``: for
    :math:`V = -\nabla\ell(F)` the scale 1 makes Fenchel--Young tight, so near an optimum it
    is the maximizer, and it avoids a scalar search.
    """
    if intercept:
        V0 = zero_sum_dual(loss, V, Y)
        if V0 is None:
            return np.zeros_like(V), float(loss.minimum(Y)), 0.0
        V = V0
    c = spectral_norm(X.T @ V)
    t_max = beta / c if c > 0 else np.inf
    if fast and not isinstance(loss, SquaredLoss):
        lim = getattr(loss, "dual_scale_limit", None)
        t = min(1.0, t_max, float(lim(V, Y)) if callable(lim) else 1.0)
        if np.isfinite(t):
            D = float(loss.dual_value(t * V, Y))
            if np.isfinite(D):
                return t * V, D, float(t * c)
    t, D = loss.best_scale(V, Y, t_max)
    return t * V, float(D), float(t * c)


# ====================================================================== FISTA
class SmoothedHinge:
    r"""Moreau envelope :math:`h_\gamma` of the hinge loss (Nesterov smoothing).

    Per sample with :math:`z = y f`: :math:`0` if :math:`z \ge 1`, :math:`(1-z)^2/(2\gamma)` if
    :math:`1-\gamma \le z \le 1`, :math:`1 - z - \gamma/2` otherwise.  Its gradient
    :math:`-y\,\mathrm{clip}((1-z)/\gamma, 0, 1)` is :math:`1/\gamma`-Lipschitz, and
    :math:`-\nabla h_\gamma` always lies in the hinge conjugate's domain, so it is a valid dual
    point for the *unsmoothed* problem.  :math:`0 \le h - h_\gamma \le \gamma/2` per sample.
    """

    def __init__(self, gamma: float) -> None:
        self.gamma = float(gamma)
        self.lipschitz = 1.0 / self.gamma

    def value(self, F: np.ndarray, Y: np.ndarray) -> float:
        z = Y * F
        g = self.gamma
        v = np.where(z >= 1.0, 0.0, np.where(z >= 1.0 - g, (1.0 - z) ** 2 / (2 * g), 1.0 - z - 0.5 * g))
        return float(np.sum(v))

    def gradient(self, F: np.ndarray, Y: np.ndarray) -> np.ndarray:
        return -Y * np.clip((1.0 - Y * F) / self.gamma, 0.0, 1.0)


def hinge_active_set(X: np.ndarray, Y: np.ndarray, beta: float, F: np.ndarray, gamma: float,
                      intercept: bool = False, above: float = 0.0):
    r"""Exact solution of :math:`\min_{w,b} \sum_i (1 - y_i(x_i^Tw + b))_+ + \beta\|w\|` on a guessed active set.

    With :math:`Z = \mathrm{diag}(y)X` and the margins :math:`z` of a smoothed solution, guess
    :math:`I_- = \{z_i < 1 - \gamma\}` (loss linear, multiplier :math:`a_i = 1`), :math:`I_+ = \{z_i > 1\}`
    (:math:`a_i = 0`) and :math:`I_0` (the rest: margin exactly 1, :math:`a_i \in [0, 1]`).  With
    :math:`c = Z_{I_-}^T\mathbf 1`, :math:`A = Z_{I_0}` and :math:`\rho = \beta/\|w\|`, the optimality
    conditions are :math:`\rho w = c + A^Ta_0` and :math:`Aw + b\,y_{I_0} = \mathbf 1` (plus
    :math:`y_{I_-}^T\mathbf 1 + y_{I_0}^Ta_0 = 0` for the intercept).  For fixed :math:`\rho` they are
    linear in :math:`(a_0, \rho b)`:

    .. math:: \begin{pmatrix} AA^T & y_{I_0} \\ y_{I_0}^T & 0\end{pmatrix}
              \begin{pmatrix} a_0 \\ \rho b\end{pmatrix} =
              \begin{pmatrix} \rho\mathbf 1 - Ac \\ -y_{I_-}^T\mathbf 1\end{pmatrix}

    (without the intercept: the first block only), so :math:`a_0` and :math:`g = c + A^Ta_0` are
    affine in :math:`\rho`, and :math:`\|g(\rho)\| = \beta` is a quadratic equation; then
    :math:`w = g/\rho`.  Nothing here needs to be right: the caller evaluates the primal
    exactly and scales the dual into the feasible set, so a wrong guess only fails to
    close the gap.  ``above`` widens :math:`I_0` to margins up to :math:`1 + \text{above}` (for
    an exact solution, whose margins at the kink are 1 only up to rounding).
    Returns ``(w, b, V)`` or ``(None, None, None)``.
    """
    y = Y[:, 0]
    z = y * F[:, 0]
    Z = X * y[:, None]
    neg = z < 1.0 - gamma
    act = (z >= 1.0 - gamma) & (z <= 1.0 + above)
    m = int(np.sum(act))
    if m == 0:
        return None, None, None
    c = Z[neg].sum(axis=0) if np.any(neg) else np.zeros(X.shape[1])
    A = Z[act]
    if intercept:
        ya = y[act]
        Kmat = np.block([[A @ A.T, ya[:, None]], [ya[None, :], np.zeros((1, 1))]])
        rhs0 = np.concatenate([-(A @ c), [-float(np.sum(y[neg]))]])
        rhs1 = np.concatenate([np.ones(m), [0.0]])
    else:
        Kmat = A @ A.T
        rhs0, rhs1 = -(A @ c), np.ones(m)
    sol = np.linalg.lstsq(Kmat, np.column_stack([rhs0, rhs1]), rcond=None)[0]
    x0, x1 = sol[:, 0], sol[:, 1]
    g0 = c + A.T @ x0[:m]
    g1 = A.T @ x1[:m]
    qa, qb, qc = float(g1 @ g1), 2.0 * float(g0 @ g1), float(g0 @ g0) - beta * beta
    disc = qb * qb - 4.0 * qa * qc
    if qa <= 0 or disc < 0:
        return None, None, None
    rho = (-qb + math.sqrt(disc)) / (2.0 * qa)
    if not rho > 0:
        return None, None, None
    w = (g0 + rho * g1) / rho
    b = float(x0[m] + rho * x1[m]) / rho if intercept else None
    a = neg.astype(float)
    a[act] = np.clip(x0[:m] + rho * x1[:m], 0.0, 1.0)
    return w[:, None], (None if b is None else np.array([b])), (a * y)[:, None]


def hinge_min_norm_dual(X: np.ndarray, Y: np.ndarray, F: np.ndarray, tol: float,
                        intercept: bool = False) -> np.ndarray | None:
    r"""Hinge dual point whose kink multipliers minimize :math:`\|X^T\Lambda\|_2`.

    With the margins :math:`z = y\circ F`, take :math:`a_i = 1` where :math:`z_i < 1 - \text{tol}`,
    :math:`a_i = 0` where :math:`z_i > 1 + \text{tol}`, and on the kink rows :math:`I_0`

    .. math:: a_0 \in \arg\min_{0 \le a_0 \le 1}\ \|c + Z_{I_0}^Ta_0\|_2^2
              \quad(\text{and } y_{I_0}^Ta_0 = -y_{I_-}^T\mathbf 1 \text{ with an intercept}),

    :math:`Z = \mathrm{diag}(y)X`, :math:`c = Z_{I_-}^T\mathbf 1`.  This is the dual of a network
    whose end-to-end weight is zero (or tiny), where the stationarity equations of
    :func:`hinge_active_set` degenerate (:math:`\rho = \beta/\|w\| = \infty`): there the optimal
    dual is any :math:`\Lambda = a\circ y` with :math:`a` as above and
    :math:`\|X^T\Lambda\| \le \beta`, and the minimum-norm one is feasible whenever any is.  The
    intercept equation is imposed by a heavily weighted row of a bounded least-squares
    problem (scipy's ``lsq_linear``); the caller's :func:`zero_sum_dual` makes it exact and
    :func:`scaled_dual` scales into the feasible set, so the point gives a proven bound
    whatever its accuracy.  Returns :math:`\Lambda` (n, 1) or ``None`` without kink rows.
    """
    from scipy.optimize import lsq_linear

    y = Y[:, 0]
    z = y * F[:, 0]
    neg = z < 1.0 - tol
    act = (z >= 1.0 - tol) & (z <= 1.0 + tol)
    if not np.any(act):
        return None
    Z = X * y[:, None]
    c = Z[neg].sum(axis=0) if np.any(neg) else np.zeros(X.shape[1])
    A = Z[act].T  # (d, m)
    rhs = -c
    if intercept:
        w = 1e3 * (1.0 + float(np.abs(A).max(initial=0.0)))
        A = np.vstack([A, w * y[act][None, :]])
        rhs = np.append(rhs, -w * float(np.sum(y[neg])))
    res = lsq_linear(A, rhs, bounds=(0.0, 1.0), method="bvls" if A.shape[1] <= 500 else "trf")
    a = neg.astype(float)
    a[act] = np.clip(res.x, 0.0, 1.0)
    return (a * y)[:, None]


@dataclass
class FistaResult:
    """Best primal iterate, best dual point and their values for ``l(XW + 1b) + beta ||W||_*``."""

    W: np.ndarray
    b: np.ndarray | None
    primal: float
    dual: np.ndarray
    dual_value: float
    n_iter: int
    converged: bool
    algorithm: str = "fista"
    stalled: bool = False  # stopped before the budget: the quasi-Newton phase stalled (see fista_nuclear)

    @property
    def gap(self) -> float:
        return self.primal - self.dual_value


def _joint_norm2(X: np.ndarray, intercept: bool) -> float:
    """``||[X, 1]||_2^2`` (or ``||X||_2^2``): the curvature of ``(W, b) -> XW + 1b``."""
    A = np.hstack([X, np.ones((X.shape[0], 1))]) if intercept else X
    return spectral_norm(A) ** 2


def fista_nuclear(X: np.ndarray, Y: np.ndarray, loss: Loss, beta: float, *, W0: np.ndarray | None = None,
                  b0: np.ndarray | None = None, intercept: bool = False, tol: float = 1e-8,
                  max_iter: int = 20000, check_every: int = 10, newton: bool = True) -> FistaResult:
    r"""Accelerated proximal gradient for :math:`\min_{W,b}\ \ell(XW + \mathbf 1 b^T) + \beta\|W\|_*`.

    FISTA [2]_ with backtracking (starting from ``loss.lipschitz * ||X||^2`` when the
    loss declares its gradient's Lipschitz constant) and the gradient restart of
    O'Donoghue--Candes [3]_; the prox is the singular-value soft threshold (group soft
    threshold for one output).  Every ``check_every`` iterations the dual point
    :math:`-\nabla\ell(F)` is scaled into the dual feasible set (:func:`scaled_dual`) and the
    solver **stops when the duality gap is at most** ``tol * |primal|``.  The hinge
    loss is replaced by its Moreau envelope with parameter :math:`\gamma` decreasing by 10
    each time the smoothed problem is solved (continuation [4]_); gaps are always
    measured on the true loss.

    With several outputs and a smooth loss (``newton=True``), 300 FISTA steps are
    followed by L-BFGS on the factored problem (:func:`~deepdual.linear.factored.factored_lbfgs`),
    whose result counts only through the same gap test.
    With one output and the logistic loss (``newton=True``, data small enough for
    :func:`~deepdual.linear.newton.newton_affordable`) the damped Newton method
    :func:`~deepdual.linear.newton.group_logistic_newton` runs first, stopped by the same
    duality-gap test: its step count does not grow with the conditioning of ``X`` (raw
    data with columns in different units), FISTA's does.  FISTA continues from its best
    point if it has not closed the gap.

    Returns the best primal iterate and the best dual point found.
    """
    d, K = X.shape[1], Y.shape[1]
    W = np.zeros((d, K)) if W0 is None else np.array(W0, dtype=float).reshape(d, K)
    b = (np.zeros(K) if b0 is None else np.array(b0, dtype=float).reshape(K)) if intercept else None
    norm2 = max(_joint_norm2(X, intercept), _TINY)
    hinge = isinstance(loss, HingeLoss)

    state = {"P": np.inf, "W": W.copy(), "b": None if b is None else b.copy(),
             "D": -np.inf, "V": np.zeros_like(Y), "it": 0}

    def evaluate(Wc, bc, F, fsm, gamma):
        P = float(loss.value(F, Y)) + beta * nuclear_norm(Wc)
        V = -np.asarray(fsm.gradient(F, Y), dtype=float)
        Lam, D, _ = scaled_dual(loss, X, Y, V, beta, intercept=intercept, fast=True)
        if P - D <= 100 * tol * max(abs(P), _TINY):
            # close to the end: the best scale (a scalar search) is worth its cost
            Lam2, D2, _ = scaled_dual(loss, X, Y, V, beta, intercept=intercept)
            if D2 > D:
                Lam, D = Lam2, D2
        if P < state["P"]:
            state.update(P=P, W=Wc.copy(), b=None if bc is None else bc.copy())
        if D > state["D"]:
            state.update(D=D, V=Lam)
        gap_ok = state["P"] - state["D"] <= tol * max(abs(state["P"]), _TINY)
        smooth_ok = False
        if gamma is not None:
            Ps = float(fsm.value(F, Y)) + beta * nuclear_norm(Wc)
            Ds = D - 0.5 * gamma * float(np.vdot(Lam, Lam))
            # a stage of the continuation ends once the smoothed problem is solved to a
            # precision matching its own bias (~gamma per sample), never below tol / 4
            smooth_ok = Ps - Ds <= max(0.25 * tol, 1e-3 * gamma) * max(abs(P), _TINY)
            if smooth_ok and K == 1:
                Wh, bh, Vh = hinge_active_set(X, Y, beta, F, gamma, intercept)
                if Wh is not None:
                    Fh = X @ Wh if bh is None else X @ Wh + bh
                    Ph = float(loss.value(Fh, Y)) + beta * nuclear_norm(Wh)
                    if Ph < state["P"]:
                        state.update(P=Ph, W=Wh.copy(), b=bh)
                    Lh, Dh, _ = scaled_dual(loss, X, Y, Vh, beta, intercept=intercept)
                    if Dh > state["D"]:
                        state.update(D=Dh, V=Lh)
                    gap_ok = state["P"] - state["D"] <= tol * max(abs(state["P"]), _TINY)
        return gap_ok, smooth_ok

    def run(fsm, gamma, W, b, iters):
        lip = getattr(fsm, "lipschitz", None)
        known = lip is not None and np.isfinite(lip) and lip > 0
        L = (lip if known else 1.0) * norm2
        Wp, bp = W.copy(), None if b is None else b.copy()
        Zw, Zb = W.copy(), None if b is None else b.copy()
        theta = 1.0
        mon = current_monitor()
        for k in range(1, iters + 1):
            mon.tick()  # progress bar; the time limit is checked after each gap evaluation below
            if not known:
                L *= 0.9  # let the step grow again; backtracking restores sufficient decrease
            F = X @ Zw if Zb is None else X @ Zw + Zb
            fz = float(fsm.value(F, Y))
            G = np.asarray(fsm.gradient(F, Y), dtype=float)
            gW = X.T @ G
            gb = None if Zb is None else G.sum(axis=0)
            for _ in range(100):  # at most 100 doublings of L (a factor 2^100)
                Wn = prox_nuclear(Zw - gW / L, beta / L)
                bn = None if Zb is None else Zb - gb / L
                Fn = X @ Wn if bn is None else X @ Wn + bn
                fn = float(fsm.value(Fn, Y))
                dW = Wn - Zw
                q = fz + float(np.vdot(gW, dW)) + 0.5 * L * float(np.vdot(dW, dW))
                if bn is not None:
                    db = bn - Zb
                    q += float(np.vdot(gb, db)) + 0.5 * L * float(np.vdot(db, db))
                # sufficient decrease up to rounding of the function values
                if fn <= q + 8 * _EPS * max(abs(fz), abs(fn)):
                    break
                L *= 2.0
            # gradient restart: momentum only while it points downhill
            prod = float(np.vdot(Zw - Wn, Wn - Wp))
            if bn is not None:
                prod += float(np.vdot(Zb - bn, bn - bp))
            if prod > 0:
                theta = 1.0
                Zw, Zb = Wn.copy(), None if bn is None else bn.copy()
            else:
                tn = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * theta * theta))
                mom = (theta - 1.0) / tn
                Zw = Wn + mom * (Wn - Wp)
                Zb = None if bn is None else bn + mom * (bn - bp)
                theta = tn
            Wp, bp = Wn, bn
            if k % check_every == 0 or k == iters:
                gap_ok, smooth_ok = evaluate(Wn, bn, Fn, fsm, gamma)
                if gap_ok or smooth_ok:
                    return Wn, bn, k, gap_ok
                if mon.expired():
                    # solve(..., time_limit=): stop with the best point and the best dual point
                    # evaluated so far (its bound is proven whatever the iterate)
                    mon.stop("nuclear-norm FISTA")
                    return Wn, bn, k, False
        return Wp, bp, iters, False

    left = int(max_iter)
    algorithm = "fista"
    stalled = False
    if newton and K == 1 and isinstance(loss, LogisticLoss) and newton_affordable(*X.shape):
        def stop(w, bb, Fv):
            return evaluate(w[:, None], None if bb is None else np.array([bb]), Fv[:, None], loss, None)[0]

        wn, bn, used, done = group_logistic_newton(
            X, Y[:, 0], beta, w0=W[:, 0], b0=None if b is None else float(b[0]), intercept=intercept,
            max_iter=min(200, left), stop=stop)
        state["it"] += used
        left -= used
        algorithm = "newton"
        if done:
            return FistaResult(state["W"], state["b"], state["P"], state["V"], state["D"], state["it"],
                               bool(state["P"] - state["D"] <= tol * max(abs(state["P"]), _TINY)), algorithm)
        W, b = state["W"].copy(), None if state["b"] is None else np.array(state["b"], dtype=float).reshape(K)
        algorithm = "newton+fista"
    smooth = not hinge and getattr(loss, "lipschitz", None) is not None
    if newton and K > 1 and smooth and not intercept and left > 0:
        # several outputs, smooth loss: a short FISTA phase, then L-BFGS on the factored problem
        W, b, used, converged = run(loss, None, W, b, min(300, left))
        state["it"] += used
        left -= used
        if converged or left <= 0 or current_monitor().expired():
            return FistaResult(state["W"], state["b"], state["P"], state["V"], state["D"], state["it"],
                               bool(converged), algorithm)
        algorithm = "fista+lbfgs"
        # columns in different units: a second L-BFGS run in Jacobi-scaled variables from the best point
        passes = (False, True) if column_scale_spread(X) > 100 else (False,)
        for precondition in passes:
            lbfgs_budget = max(min(left, 3000), 1)
            Wf, used = factored_lbfgs(X, Y, loss, beta, state["W"], max_iter=lbfgs_budget,
                                      precondition=precondition)
            state["it"] += used
            left -= used
            if evaluate(Wf, None, X @ Wf, loss, None)[0]:
                return FistaResult(state["W"], state["b"], state["P"], state["V"], state["D"], state["it"], True,
                                   algorithm)
            if left <= 0 or current_monitor().expired():
                break
        # L-BFGS ends when its line search stalls or its budget is spent: a last short FISTA phase at most
        stalled = left > 1000
        left = min(left, 1000)
        W = state["W"].copy()
        algorithm = "fista+lbfgs+fista"
    if hinge:
        gammas = [10.0 ** (-k) for k in range(0, 13)]
    else:
        gammas = [None]
    converged = False
    for gamma in gammas:
        fsm = SmoothedHinge(gamma) if gamma is not None else loss
        W, b, used, converged = run(fsm, gamma, W, b, left)
        state["it"] += used
        left -= used
        if converged or left <= 0 or current_monitor().expired():
            break
    return FistaResult(state["W"], state["b"], state["P"], state["V"], state["D"], state["it"],
                       bool(state["P"] - state["D"] <= tol * max(abs(state["P"]), _TINY)), algorithm, stalled)


def extreme_scale(A: np.ndarray) -> float:
    """A power of two near ``max |A|`` when it lies outside ``[2^-64, 2^64]`` (products would over- or
    underflow), else 1."""
    big = float(np.max(np.abs(A))) if A.size else 0.0
    return pow2(big) if big > 0 and (big > 2.0 ** 64 or big < 2.0 ** -64) else 1.0


def column_scale_spread(X: np.ndarray) -> float:
    """Ratio of the largest to the smallest nonzero column norm of ``X`` (1 for standardized data)."""
    norms = np.linalg.norm(X, axis=0)
    norms = norms[norms > 0]
    return float(norms.max() / norms.min()) if norms.size else 1.0


def unconverged_note(algorithm: str, n_iter: int, rel_gap: float, tol: float, X: np.ndarray,
                     stalled: bool = False) -> str:
    """Why an iterative solve stopped before closing its gap, and what would help."""
    spread = column_scale_spread(X)
    why = ("L-BFGS on the factored problem stalled (its line search made no progress) and 1000 more "
           "FISTA steps did not close the gap" if stalled else "the max_iter budget")
    note = (f"{algorithm} stopped after {n_iter} iterations ({why}) with relative gap "
            f"{rel_gap:.2e} > tol={tol:g}")
    if spread > 100:
        note += (f"; the columns of X differ in scale by a factor {spread:.1e}, which slows first-order methods: "
                 "standardize the columns of X (e.g. sklearn StandardScaler; this changes the problem, since "
                 "the penalty is on the weights) or raise max_iter")
    else:
        note += "; raise max_iter (or rtol) to close the gap"
    return note


# ====================================================================== networks from M
def _check_width(width: Any, needed: int, K: int) -> int:
    if width is None:
        return max(needed, 1)
    if isinstance(width, bool) or not isinstance(width, (numbers.Integral, np.integer)) or int(width) < 1:
        raise ValueError(f"option `width` must be a positive integer, got {width!r}")
    width = int(width)
    if width < needed:
        raise ValueError(
            f"option `width`={width} is below the rank {needed} of the optimal end-to-end weight; "
            f"use width >= {needed} (or leave it unset)"
        )
    return width


def _rank_factors(M: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD of M restricted to its numerical rank (LAPACK convention, as in matrix_rank)."""
    U, s, Vt = np.linalg.svd(M, full_matrices=False)
    tol = max(M.shape) * _EPS * (s[0] if s.size else 0.0)
    r = int(np.sum(s > tol)) if s.size and s[0] > 0 else 0
    return U[:, :r], s[:r], Vt[:r]


def network_from_end_to_end(M: np.ndarray, depth: int, *, width: Any = None, scalar: bool = True,
                            output_bias: np.ndarray | None = None) -> Network:
    r"""Balanced linear network of depth ``L`` whose product is ``M`` (d x K), with minimal penalty.

    With the thin SVD :math:`M = U\,\mathrm{diag}(\sigma)V^T` of rank ``r``, every layer carries
    :math:`\sigma_k^{1/L}`: :math:`W_1 = U\mathrm{diag}(\sigma^{1/L})`, :math:`W_l = \mathrm{diag}(\sigma^{1/L})`,
    :math:`W_L = \mathrm{diag}(\sigma^{1/L})V^T`, so :math:`\sum_l\|W_l\|_F^2 = L\sum_k\sigma_k^{2/L}` (the
    minimum over factorizations).  For one output (rank one) the ``width`` hidden units
    of every layer share the path equally: :math:`W_1 = t\,v\rho^T`, :math:`W_l = t\rho\rho^T`,
    :math:`W_L = t\rho\,\mathrm{sign}`, :math:`\rho = \mathbf 1/\sqrt{\text{width}}`,
    :math:`t = \|M\|^{1/L}` (the talk's aligned rank-one layers).  For several outputs,
    extra units beyond the rank are zero.
    """
    d, K = M.shape
    U, s, Vt = _rank_factors(M)
    r = s.size
    L = int(depth)
    if K == 1:
        m = _check_width(1 if width is None else width, min(r, 1), K)
        if r == 0:
            layers = [np.zeros((d, m))] + [np.zeros((m, m)) for _ in range(L - 2)] + [np.zeros((m, 1))]
        else:
            t = s[0] ** (1.0 / L)
            rho = np.full(m, 1.0 / math.sqrt(m))
            layers = [t * np.outer(U[:, 0], rho)] + [t * np.outer(rho, rho) for _ in range(L - 2)]
            layers.append(t * np.outer(rho, Vt[0]))
    else:
        m = _check_width(width, r, K)
        root = s ** (1.0 / L)
        W1 = np.zeros((d, m))
        W1[:, :r] = U * root
        mid = np.zeros((m, m))
        mid[:r, :r] = np.diag(root)
        WL = np.zeros((m, K))
        WL[:r] = root[:, None] * Vt
        layers = [W1] + [mid.copy() for _ in range(L - 2)] + [WL]
    return Network([layers], "linear", output_bias=output_bias, scalar_output=scalar)


# ====================================================================== closed forms
def _solve_projection(X, Y, beta, fac: Factorization):
    """Two layers, one output, squared loss: ``u* = P_{X,beta}(y)``, ``M = (X^TX + mu I)^-1 X^T y``."""
    y = Y[:, 0]
    res = project_factored(fac, y, beta)
    u = res.u[:, None]
    Lam, D, c = scaled_dual(SquaredLoss(), X, Y, u, beta)
    info = {"mu": res.mu, "inside": res.inside, "factorization": fac.method,
            "dual_constraint": c, "rank": int(np.linalg.norm(res.M) > 0)}
    return res.M[:, None], Lam, D, info


def spectral_structure(X: np.ndarray) -> str | None:
    if has_orthonormal_columns(X):
        return "orthonormal"
    if is_whitened(X):
        return "whitened"
    return None


def solve_spectral(X, Y, beta, depth, structure):
    r"""Squared loss with :math:`X^TX = I` (``B = X^TY``) or :math:`XX^T = I` (``B = Y``):
    each singular value :math:`b_k` of ``B`` maps to ``power_prox(b_k, beta L / 2, 2 / L)``."""
    L = depth
    lam, p = 0.5 * beta * L, 2.0 / L
    if structure == "orthonormal":
        B = X.T @ Y
        const = 0.5 * (float(np.vdot(Y, Y)) - float(np.vdot(B, B)))
    else:
        B = Y
        const = 0.0
    Ub, sb, Vbt = np.linalg.svd(B, full_matrices=False)
    pp = [power_prox(float(sk), lam, p) for sk in sb]
    sig = np.array([q.sigma for q in pp])
    N = (Ub * sig) @ Vbt
    M = N if structure == "orthonormal" else X.T @ N
    schatten_lower = const + float(sum(q.lower for q in pp))
    info = {"structure": structure, "singular_values_data": sb, "singular_values": sig,
            "rank": int(np.sum(sig > 0)), "constant": const}
    return M, schatten_lower, info


# ====================================================================== deep: path search
@dataclass
class PathPoint:
    r"""One point of the path :math:`r \mapsto M(r) = \arg\min \ell(XM) + r\|M\|`.

    ``s`` is the path budget :math:`\|M\|` (nuclear norm for several outputs), ``upper``
    the deep objective of the balanced network built from ``M``, and ``(D, c)`` a dual
    candidate: :math:`\ell(XM') \ge D - c\|M'\|` for every ``M'``.
    """

    r: float
    s: float
    M: np.ndarray
    upper: float
    D: float
    c: float
    dual: np.ndarray | None
    coef: np.ndarray | None = None  # M = V coef when M is not formed yet (SquaredPathOracle, wide X)


class SquaredPathOracle:
    r"""Exact path for one output and the squared loss: :math:`u = \mathcal P_{X,r}(y)`, ``M(r)``.

    Every evaluation runs in the SVD coordinates of one factorization
    :math:`X = U\mathrm{diag}(s)V^T` (rank ``k``): with :math:`z = U^Ty`, the residual norm
    :math:`\|y_\perp\|^2 = \|y - Uz\|^2` (both computed once, O(nd)) and the root
    :math:`\mu` of the secular equation (O(k) per step),

    * :math:`\tilde m = s\odot z/(s^2+\mu)` (:math:`M = V\tilde m`), :math:`w = \mu z/(s^2+\mu)` (:math:`U^Tu`);
    * budget :math:`\|M\| = \|\tilde m\|`, residual :math:`\|u\|^2 = \|w\|^2 + \|y_\perp\|^2`;
    * dual value :math:`D = y^Tu - \tfrac12\|u\|^2 = z^Tw + \|y_\perp\|^2 - \tfrac12\|u\|^2`
      and constraint :math:`c = \|X^Tu\| = \|s\odot w\|`;

    so a point costs O(k + dk) instead of four O(nd) products.  These values rely on
    the factorization being exact; :meth:`exact_candidates` recomputes ``D``, ``c`` and
    the upper bound of all evaluated points *from their* ``M`` *and* ``X`` (two blocked
    matrix products), so the certificate does not depend on the factorization's accuracy.
    Quantities are computed for ``X/a`` and ``y/b`` with powers of two ``a ~ s_max``,
    ``b ~ max|y|`` (exact rescaling, as in :func:`deepdual.projection.project_factored`).
    """

    def __init__(self, X: np.ndarray, Y: np.ndarray, lam: float, p: float, fac: Factorization) -> None:
        self.X, self.y, self.lam, self.p, self.fac = X, Y[:, 0], lam, p, fac
        y = self.y
        Xty = X.T @ y
        self.r_max = float(np.linalg.norm(Xty))
        self.has_zero = True  # r = 0 (least squares) is a valid point
        self.uses_warm = False  # each point is a closed form: no warm start
        s = fac.s
        ymax = float(np.max(np.abs(y))) if y.size else 0.0
        self._empty = s.size == 0 or ymax == 0.0
        if self._empty:
            return
        a, b = pow2(float(s[0])), pow2(ymax)
        self._a, self._b = a, b
        self._sn = s / a
        self._s2 = self._sn * self._sn
        yn = y / b
        # z = U^T y/b; with U not formed (Gram path), diag(1/s) V^T (X^T y) / b reuses X^T y
        self._z = fac.left_solve(yn) if fac.U is not None else (fac.Vt @ (Xty / b)) / s
        self._sz_norm = float(np.linalg.norm(self._sn * self._z))
        perp = yn - fac.left_apply(self._z)
        self._yp2 = float(perp @ perp)

    def zero_point(self) -> PathPoint:
        """``M = 0`` (every ``r >= ||X^T y||``), with the dual candidate ``u = y``."""
        y = self.y
        D = 0.5 * float(y @ y)
        return PathPoint(self.r_max, 0.0, np.zeros((self.X.shape[1], 1)), D, D, self.r_max, y[:, None].copy())

    def __call__(self, r: float, warm: np.ndarray | None = None) -> PathPoint:
        if self._empty:
            pt = self.zero_point()
            pt.r = float(r)
            return pt
        a, b = self._a, self._b
        sn, s2, z = self._sn, self._s2, self._z
        rn = (float(r) / a) / b
        if self._sz_norm <= rn:  # y inside the cylinder: M = 0
            pt = self.zero_point()
            pt.r = float(r)
            return pt
        mu = secular_mu(sn, z, rn)
        den = s2 + mu
        mt = sn * z / den  # V^T M (scaled by a / b)
        w = mu * z / den  # U^T u / b
        u2 = float(w @ w) + self._yp2
        s_budget = (b / a) * float(np.linalg.norm(mt))
        D = b * b * (float(z @ w) + self._yp2 - 0.5 * u2)
        c = b * a * float(np.linalg.norm(sn * w))
        upper = 0.5 * b * b * u2 + self.lam * s_budget**self.p
        if self.fac.Vt is None:
            # wide X, V not formed: M = V coef costs O(nd); exact_candidates forms all M's in one product
            return PathPoint(float(r), s_budget, None, upper, D, c, None, (b / a) * mt)
        M = (b / a) * (self.fac.Vt.T @ mt)
        return PathPoint(float(r), s_budget, M[:, None], upper, D, c, None)

    def exact_candidates(self, points: list[PathPoint], block: int = 64) -> None:
        r"""Recompute ``s``, ``upper``, ``D``, ``c`` and the dual ``u = y - XM`` of ``points``
        in place from their ``M`` and ``X`` (blocks of ``block`` points: two matrix products each).

        Any ``u`` gives a valid candidate (:math:`\ell(XM') \ge D(u) - \|X^Tu\|\|M'\|`),
        so the values used for the lower bound are exact up to the rounding of these products.
        """
        todo = [q for q in points if q.dual is None]
        X, y = self.X, self.y
        # at most ~1e7 entries (80 MB) in the n x block residual matrix, whatever n
        block = max(1, min(int(block), 10_000_000 // max(X.shape[0], 1)))
        for i in range(0, len(todo), block):
            chunk = todo[i:i + block]
            lazy = [j for j, q in enumerate(chunk) if q.M is None]
            if lazy:
                Ml = self.fac.right_apply(np.column_stack([chunk[j].coef for j in lazy]))
                for col, j in enumerate(lazy):
                    chunk[j].M = Ml[:, col:col + 1].copy()
                    chunk[j].coef = None
            Ms = np.column_stack([q.M[:, 0] for q in chunk])
            Uall = y[:, None] - X @ Ms
            Cs = np.linalg.norm(X.T @ Uall, axis=0)
            for j, q in enumerate(chunk):
                u = Uall[:, j]
                uu = float(u @ u)
                q.s = float(np.linalg.norm(Ms[:, j]))
                q.D = float(y @ u) - 0.5 * uu
                q.c = float(Cs[j])
                q.upper = 0.5 * uu + self.lam * q.s**self.p
                q.dual = u[:, None].copy()


class _PathTimeLimit(Exception):
    """Raised inside the path search's scalar minimization when the time limit has passed."""


class LossPathOracle:
    r"""Path for any loss and any number of outputs: ``M(r)`` by :func:`fista_nuclear`."""

    def __init__(self, X, Y, loss: Loss, lam: float, p: float, *, tol: float, max_iter: int) -> None:
        self.X, self.Y, self.loss, self.lam, self.p = X, Y, loss, lam, p
        self.tol, self.max_iter = tol, max_iter
        V0 = loss.dual_point(np.zeros_like(Y), Y)
        self.V0 = V0
        self.r_max = spectral_norm(X.T @ V0)
        self.has_zero = False

    def zero_point(self) -> PathPoint:
        Y, loss = self.Y, self.loss
        M = np.zeros((self.X.shape[1], Y.shape[1]))
        ell0 = float(loss.value(np.zeros_like(Y), Y))
        return PathPoint(self.r_max, 0.0, M, ell0, float(loss.dual_value(self.V0, Y)), self.r_max, self.V0)

    def __call__(self, r: float, warm: np.ndarray | None = None) -> PathPoint:
        if r >= self.r_max:
            return self.zero_point()
        res = fista_nuclear(self.X, self.Y, self.loss, r, W0=warm, tol=self.tol, max_iter=self.max_iter)
        M = res.W
        s = nuclear_norm(M)
        upper = float(self.loss.value(self.X @ M, self.Y)) + self.lam * schatten_power(M, self.p)
        c = spectral_norm(self.X.T @ res.dual)
        return PathPoint(float(r), s, M, upper, res.dual_value, c, res.dual)


@dataclass
class PathSearch:
    """Result of :func:`path_search`."""

    best: PathPoint
    upper: float
    lower: float
    T_max: float
    points: list[PathPoint] = field(default_factory=list)
    rounds: int = 0


def interval_lower_bound(points: list[PathPoint], extras: list[tuple[float, float]], T_max: float,
                         lam: float, p: float) -> tuple[float, np.ndarray, list[tuple[int, int]]]:
    r"""Proven :math:`\min_{T\in[0,T_{\max}]}\max_k g_k(T)` on the grid of the points' budgets.

    Points are taken in the order of decreasing ``r``, along which the budget
    :math:`s = \|M(r)\|` increases; the nodes are the distinct values of the running
    maximum of ``s`` (so rounding or solver noise cannot unsort them), cut at
    :math:`T_{\max}`.  The points mapped to one node form its group (several when the
    path stalls, e.g. at a kink where ``M(r)`` stays put over a range of ``r``, or once
    the loss has reached its infimum).  Each interval :math:`[T_i, T_{i+1}]` takes the best
    candidate of the two groups and the ``extras`` ``(D, c)``, a concave :math:`g_k` being
    minimized at an end point; every candidate is valid on every interval, so the
    result is a proven bound whatever the grouping.  Returns the bound, the
    per-interval bounds and, per interval, the indices (into ``points``) of the
    points adjacent in ``r`` across it (between whose radii a refinement bisects).
    """
    order = sorted(range(len(points)), key=lambda i: (-points[i].r, points[i].s))
    nodes: list[float] = [0.0]
    groups: list[list[int]] = [[order[0]]]
    top = 0.0
    for i in order[1:]:
        top = max(top, points[i].s)
        if top >= T_max:
            nodes.append(T_max)
            groups.append([i])
            break
        if top <= nodes[-1]:
            groups[-1].append(i)
        else:
            nodes.append(top)
            groups.append([i])
    else:
        nodes.append(T_max)
        groups.append([groups[-1][-1]])
    ext = [(float(e[0]), float(e[1])) for e in extras if math.isfinite(e[0]) and math.isfinite(e[1])]
    bounds = np.empty(len(nodes) - 1)
    pairs: list[tuple[int, int]] = []
    # plain floats: each interval has a handful of candidates, far below numpy's per-call overhead
    cand = [(float(q.D), float(q.c)) for q in points]
    for k in range(len(nodes) - 1):
        a, b = nodes[k], nodes[k + 1]
        pa, pb = lam * a**p, lam * b**p
        best = -math.inf
        for D, c in [cand[i] for i in groups[k] + groups[k + 1]] + ext:
            # g(T) = D - c T + lam T^p is concave: its minimum over [a, b] is at an end point
            va, vb = D - c * a + pa, D - c * b + pb
            if math.isfinite(va) and math.isfinite(vb) and min(va, vb) > best:
                best = min(va, vb)
        bounds[k] = best
        pairs.append((groups[k][-1], groups[k + 1][0]))
    return float(np.min(bounds)), bounds, pairs


def path_search(oracle, *, lam: float, p: float, beta: float, depth: int, min_loss: float, tol: float,
                max_points: int, n_init: int = 48, polish: Callable[[PathPoint], PathPoint | None] | None = None
                ) -> PathSearch:
    r"""Provably global minimization of :math:`h(M) = \ell(XM) + \lambda\|M\|^p` (:math:`\lambda = \beta L/2`,
    :math:`p = 2/L`) along the path ``oracle(r)``, with a proven lower bound.

    1. Evaluate the path on a geometric grid of radii in :math:`(0, r_{\max}]` (and ``r = 0``
       when the oracle has it); every point is both a primal candidate (upper bound) and
       a dual candidate :math:`(D_k, c_k)`.
    2. Lower bound (see ``docs/linear.md``): every network with path budget ``T`` has
       :math:`P \ge g_k(T) = D_k - c_kT + \lambda T^p`, concave in ``T``; the optimum has
       :math:`T \le T_{\max}` (:func:`~deepdual.bounds.max_budget`), so the minimum over the
       grid intervals of the best end-point value is a proven bound.
    3. Refine: bisect (in :math:`\log r`) every interval whose bound is more than
       ``tol * |upper|`` below the upper bound, and polish the upper bound with a bounded
       scalar minimizer in :math:`\log r` around the best point; stop when no interval is
       left or ``max_points`` points have been evaluated.
    """
    L = depth
    pts: list[PathPoint] = []
    r_max = oracle.r_max

    uses_warm = getattr(oracle, "uses_warm", True)

    def nearest_M(r: float) -> np.ndarray | None:
        if not pts or not uses_warm:
            return None
        lr = math.log(max(r, 1e-300))
        j = min(range(len(pts)), key=lambda i: abs(math.log(max(pts[i].r, 1e-300)) - lr))
        return pts[j].M

    def add(r: float) -> PathPoint:
        pt = oracle(r, nearest_M(r))
        pts.append(pt)
        return pt

    def upper() -> float:
        return min(pt.upper for pt in pts)

    def t_max() -> float:
        return max_budget(upper() - min_loss, beta, L)

    zero = oracle.zero_point()
    pts.append(zero)
    extras = [(float(min_loss), 0.0)]  # ell >= inf ell, c = 0
    # time_limit (deepdual.progress): stop adding points; the interval bound over the
    # points evaluated so far stays a proven lower bound
    mon = current_monitor()
    if r_max > 0:
        for r in r_max * np.logspace(0, -8, n_init)[1:]:
            if mon.expired():
                break
            pt = add(float(r))
            if not oracle.has_zero and (pt.s >= t_max() or pt.c * t_max() <= 0.1 * tol * max(abs(upper()), _TINY)):
                break
        if oracle.has_zero:
            add(0.0)
        else:
            # extend towards r = 0 until the budget passes T_max or the path has settled:
            # a candidate with c * T_max below the tolerance is tight for every larger budget
            # once the loss has reached its infimum (then D ~ inf l and g ~ D + lam T^p)
            last = min(pts, key=lambda q: q.r)
            r = last.r
            while (last.s < t_max() and last.c * t_max() > 0.1 * tol * max(abs(upper()), _TINY)
                   and r > r_max * 1e-14 and len(pts) < max_points and not mon.expired()):
                r *= 0.1
                last = add(r)

    def refine_upper() -> None:
        by_r = sorted(pts, key=lambda q: q.r)
        j = min(range(len(by_r)), key=lambda i: by_r[i].upper)
        lo_r = by_r[j - 1].r if j > 0 else by_r[j].r
        hi_r = by_r[j + 1].r if j + 1 < len(by_r) else by_r[j].r
        if hi_r <= 0 or hi_r <= lo_r:
            return
        lo_r = max(lo_r, hi_r * 1e-16)
        a, b = math.log(lo_r), math.log(hi_r)
        if b - a < 1e-13:
            return
        # locate the minimizer to ~1e-10 in log r (1e-6 when every evaluation is a FISTA
        # solve): h is smooth there, so the value is exact to ~1e-20 (~1e-12) relative
        cheap = isinstance(oracle, SquaredPathOracle)
        if len(pts) >= max_points or mon.expired():
            return
        def value(x: float) -> float:
            if mon.expired():
                raise _PathTimeLimit
            return add(math.exp(x)).upper

        try:
            minimize_scalar(value, bounds=(a, b), method="bounded",
                            options={"xatol": 1e-10 if cheap else 1e-6, "maxiter": 60 if cheap else 25})
        except _PathTimeLimit:  # the points evaluated so far stay (each a proven bound)
            return

    rounds = 0
    if r_max > 0:
        refine_upper()
        while len(pts) < max_points and not mon.report(upper()):
            rounds += 1
            U = upper()
            Tm = t_max()
            lb, per, pairs = interval_lower_bound(pts, extras, Tm, lam, p)
            atol = tol * max(abs(U), _TINY)
            bad = [k for k in np.argsort(per) if per[k] < U - atol]
            if not bad:
                break
            new_r: list[float] = []
            for k in bad:
                i, j = pairs[k]
                ra, rb = pts[i].r, pts[j].r
                hi, lo = max(ra, rb), min(ra, rb)
                if i == j or hi == lo:
                    rn = hi * 0.1 if hi > 0 else None
                elif lo <= 0:
                    rn = hi * 0.25
                elif hi / lo > 1 + 1e-12:
                    rn = math.sqrt(hi * lo)
                else:
                    rn = None  # cannot split further in floating point
                if rn is not None and rn > 0 and not any(q.r == rn for q in pts):
                    new_r.append(rn)
                if len(new_r) >= 64 or len(pts) + len(new_r) >= max_points:
                    break
            if not new_r:
                break
            for rn in sorted(set(new_r), reverse=True):
                if mon.expired():  # inside a round too: one point may cost seconds (FISTA)
                    break
                add(rn)
            if rounds % 4 == 1:
                refine_upper()
    exact = getattr(oracle, "exact_candidates", None)
    if exact is not None:
        # the search ran on cheap values; the bound and the choice of the best point use exact ones
        exact(pts)
    if mon.expired():
        mon.stop("deep linear path search")
    if polish is not None and not mon.expired():
        best = min(pts, key=lambda q: q.upper)
        extra = polish(best)
        if extra is not None:
            pts.append(extra)
    U = upper()
    Tm = t_max()
    lb_local, _, _ = interval_lower_bound(pts, extras, Tm, lam, p) if r_max > 0 else (float(zero.upper), None, None)
    lb = lb_local
    if r_max > 0:
        # the shared routine over *all* candidates (when small enough to hold in memory)
        nodes = np.array([q.s for q in pts if q.s < Tm])
        Ds = np.array([q.D for q in pts] + [e[0] for e in extras])
        cs = np.array([q.c for q in pts] + [e[1] for e in extras])
        if nodes.size * Ds.size <= 4_000_000:
            lb = max(lb, power_penalty_lower_bound(Ds, cs, beta=beta, depth=L, T_max=Tm, grid=nodes))
    best = min(pts, key=lambda q: q.upper)
    return PathSearch(best, U, float(lb), Tm, pts, rounds)


def _polish_schatten(X, Y, loss: Loss, lam: float, p: float, max_iter: int):
    r"""Monotone proximal gradient on :math:`\ell(XM) + \lambda\sum_i\sigma_i(M)^p` (non-convex; a local
    improvement of a starting point, using the exact global prox :func:`prox_schatten`)."""
    norm2 = max(spectral_norm(X) ** 2, _TINY)
    lip = getattr(loss, "lipschitz", None) or 1.0

    def polish(start: PathPoint) -> PathPoint | None:
        M = start.M.copy()
        F = X @ M
        f = float(loss.value(F, Y))
        obj = f + lam * schatten_power(M, p)
        L = lip * norm2
        for _ in range(max_iter):
            G = X.T @ np.asarray(loss.gradient(F, Y), dtype=float)
            for _ in range(60):
                Mn = prox_schatten(M - G / L, lam / L, p)
                Fn = X @ Mn
                fn = float(loss.value(Fn, Y))
                dM = Mn - M
                if fn <= f + float(np.vdot(G, dM)) + 0.5 * L * float(np.vdot(dM, dM)) + 8 * _EPS * abs(f):
                    break
                L *= 2.0
            objn = fn + lam * schatten_power(Mn, p)
            if objn > obj:
                break
            step = float(np.linalg.norm(Mn - M))
            M, F, f, obj = Mn, Fn, fn, objn
            # stationary to rounding level of M
            if step <= 1e-13 * max(float(np.linalg.norm(M)), _TINY):
                break
        if obj >= start.upper:
            return None
        V = loss.dual_point(F, Y)
        return PathPoint(start.r, nuclear_norm(M), M, obj, float(loss.dual_value(V, Y)), spectral_norm(X.T @ V), V)

    return polish


# ====================================================================== two classes
def two_class_margin(loss: Loss, X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    r"""Cross-entropy with two classes as the logistic loss on the margin (exact reduction).

    With one-hot :math:`Y` (n, 2) and :math:`y = Y_{:,1} - Y_{:,0} \in \{\pm1\}`, the cross-entropy of
    :math:`F = XM` is the logistic loss of the margin :math:`F_{:,1} - F_{:,0} = X\delta`,
    :math:`\delta = m_1 - m_0`.  For every ``M`` and ``0 < p <= 1``,
    :math:`\sum_i\sigma_i(M)^p \ge \|M\|_*^p \ge \|M\|_F^p \ge (\|\delta\|/\sqrt2)^p`
    (:math:`\|m_0\|^2 + \|m_1\|^2 \ge \|m_1 - m_0\|^2/2`), with equality for the rank-one
    :math:`M = [-v, v]/\sqrt2`, :math:`v = \delta/\sqrt2`.  Hence

    .. math:: \min_M \mathrm{CE}(XM, Y) + \lambda\textstyle\sum_i\sigma_i(M)^p
              = \min_v \ell_{\log}(\sqrt2\,Xv, y) + \lambda\|v\|^p ,

    and every lower bound of the right-hand problem is one of the left.  Returns
    ``(sqrt(2) X, y[:, None])`` when ``loss`` is the cross-entropy with two classes, else ``None``.
    """
    if not isinstance(loss, CrossEntropyLoss) or Y.shape[1] != 2:
        return None
    y = Y[:, 1] - Y[:, 0]
    if not np.all(np.abs(y) == 1.0):  # labels must be one-hot (canonical); anything else: no reduction
        return None
    return math.sqrt(2.0) * X, y[:, None]


# ====================================================================== the deep search, shared with certify
@dataclass
class DeepSearch:
    """Result of :func:`deep_linear_search`: the path search, the best end-to-end weight and the reduction used."""

    path: PathSearch
    M: np.ndarray
    reduction: str | None


def deep_search_defaults(loss: Loss, K: int, rtol: float) -> dict[str, Any]:
    """The budgets :func:`solve_linear` gives :func:`deep_linear_search` by default (``certify`` reuses them)."""
    squared = isinstance(loss, SquaredLoss)
    return {"tol": rtol / 10.0, "max_iter": 20000,
            "max_points": 3000 if squared and K == 1 else (400 if K == 1 else 80)}


def deep_linear_search(X: np.ndarray, Y: np.ndarray, loss: Loss, beta: float, depth: int, *, tol: float,
                       max_iter: int, max_points: int, factorization: Factorization | None = None) -> DeepSearch:
    r"""The provably global search of ``docs/linear.md`` §2 for a deep (``depth >= 3``) linear network.

    * squared loss, one output: the exact secular path :class:`SquaredPathOracle`;
    * two-class cross-entropy: the logistic problem on the margin (:func:`two_class_margin`);
    * otherwise the path :class:`LossPathOracle` of two-layer solutions (FISTA, or Newton for
      the logistic loss), plus a Schatten-prox polish for several outputs.

    ``solve`` and ``certify`` both call it with the same budgets
    (:func:`deep_search_defaults`), so a network that ``solve`` certified is certified
    again by ``certify``: the lower bound is a deterministic function of ``(X, Y, beta, depth)``.
    """
    L = int(depth)
    K = Y.shape[1]
    lam, p = 0.5 * beta * L, 2.0 / L
    inner_iter = max(max_iter // 4, 200)
    margin = two_class_margin(loss, X, Y)
    if margin is not None:
        Xl, yl = margin
        logistic = LogisticLoss()
        oracle = LossPathOracle(Xl, yl, logistic, lam, p, tol=tol / 10.0, max_iter=inner_iter)
        ps = path_search(oracle, lam=lam, p=p, beta=beta, depth=L, min_loss=float(logistic.minimum(yl)), tol=tol,
                         max_points=max(max_points, 400))
        v = ps.best.M[:, 0]
        return DeepSearch(ps, np.column_stack([-v, v]) / math.sqrt(2.0), "two-class margin (logistic)")
    if isinstance(loss, SquaredLoss) and K == 1:
        oracle = SquaredPathOracle(X, Y, lam, p, factorization if factorization is not None else factorize(X))
    else:
        oracle = LossPathOracle(X, Y, loss, lam, p, tol=tol / 10.0, max_iter=inner_iter)
    polish = _polish_schatten(X, Y, loss, lam, p, max_iter=2000) if K > 1 else None
    ps = path_search(oracle, lam=lam, p=p, beta=beta, depth=L, min_loss=float(loss.minimum(Y)), tol=tol,
                     max_points=max_points, polish=polish)
    return DeepSearch(ps, ps.best.M, None)


# ====================================================================== dispatcher
def _centered(X: np.ndarray, Y: np.ndarray):
    xm, ym = X.mean(axis=0), Y.mean(axis=0)
    return X - xm, Y - ym, xm, ym


def solve_linear(X: np.ndarray, Y: np.ndarray, *, scalar: bool, beta: float, depth: int, loss: Loss,
                 rtol: float, bias: bool, method: str = "auto", **options: Any) -> Solution:
    r"""Globally optimal linear network of depth ``depth`` for ``(X, Y)`` (see the module doc).

    Parameters
    ----------
    X : ndarray (n, d), Y : ndarray (n, K)
        Validated float64 data (labels canonical for ``loss``).
    scalar : bool
        Whether predictions come back 1-D (only when K = 1).
    beta : float
        Weight decay, :math:`P = \ell + \frac\beta2\sum\|W\|_F^2`.
    depth : int >= 2
    loss : Loss
    rtol : float
        Relative duality gap for ``certified``; iterative methods stop at ``tol``
        (default ``rtol / 10``).
    bias : bool
        Unpenalized output bias.  Exact for the squared loss (centering); for
        logistic/hinge two-layer problems an intercept in FISTA with a zero-sum dual.
    method : {"auto", "projection", "spectral", "fista", "path", "prox"}
    **options
        ``width`` (hidden units per layer: default 1 for one output, the rank otherwise),
        ``tol``, ``max_iter`` (FISTA iterations), ``max_points`` (path evaluations),
        ``factorization`` ("auto", "svd", "gram"; for the projection and the squared-loss path),
        or a precomputed :class:`deepdual.projection.Factorization` of ``X`` (used when
        ``bias=False``; e.g. by the sufficient-statistics solver, whose compressed data
        :math:`\Lambda^{1/2}V^T` comes factored).

    Returns
    -------
    Solution
    """
    check_options(options, _OPTIONS, "solve(activation='linear')")
    method = check_choice(method, "method", LINEAR_METHODS)
    width = options.get("width")
    if width is not None:
        _check_width(width, 0, 1)
    tol = options.get("tol", rtol / 10.0)
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not (0 < float(tol) < 1):
        raise ValueError(f"option `tol` must be a number in (0, 1), got {tol!r}")
    tol = float(tol)
    max_iter = options.get("max_iter", 20000)
    if isinstance(max_iter, bool) or not isinstance(max_iter, (numbers.Integral, np.integer)) or max_iter < 1:
        raise ValueError(f"option `max_iter` must be a positive integer, got {max_iter!r}")
    max_iter = int(max_iter)
    factorization = options.get("factorization", "auto")
    given_fac: Factorization | None = None
    if isinstance(factorization, Factorization):
        if tuple(factorization.shape) != X.shape:
            raise ValueError(f"option `factorization` factors a {factorization.shape} matrix, but `X` is {X.shape}")
        given_fac, factorization = factorization, "auto"
    factorization = check_choice(factorization, "factorization", ("auto", "svd", "gram"))

    n, d = X.shape
    K = Y.shape[1]
    L = int(depth)
    squared = isinstance(loss, SquaredLoss)
    a, b = extreme_scale(X), (extreme_scale(Y) if squared else 1.0)
    if a != 1.0 or b != 1.0:
        # exact change of units by powers of two (docs/linear.md §5): with X' = X/a, Y' = Y/b (labels of
        # classification losses cannot scale: b = 1) and beta' = beta b^(2/L - 2) a^(-2/L), the network
        # with every layer times (b/a)^(1/L) and output bias times b has objective b^2 P'
        rest = {k: v for k, v in options.items() if not (k == "factorization" and isinstance(v, Factorization))}
        sol = solve_linear(X / a, Y / b, scalar=scalar, beta=beta * b ** (2.0 / L - 2.0) * a ** (-2.0 / L), depth=L,
                           loss=loss, rtol=rtol, bias=bias, method=method, **rest)
        f = (b / a) ** (1.0 / L)
        ob = sol.network.output_bias
        net = Network([[W * f for W in sub] for sub in sol.network.weights], "linear",
                      output_bias=None if ob is None else ob * b, scalar_output=sol.network.scalar_output)
        info = dict(sol.info, rescaled_by={"X": a, "y": b})
        return Solution(network=net, objective=objective(net, X, Y, beta=beta, loss=loss),
                        lower_bound=sol.lower_bound * b * b, method=sol.method, rtol=rtol,
                        dual=None if sol.dual is None else np.asarray(sol.dual) * b, info=info)
    scalar = bool(scalar) and K == 1
    max_points = options.get("max_points", deep_search_defaults(loss, K, rtol)["max_points"])
    if isinstance(max_points, bool) or not isinstance(max_points, (numbers.Integral, np.integer)) or max_points < 4:
        raise ValueError(f"option `max_points` must be an integer >= 4, got {max_points!r}")
    max_points = int(max_points)

    # ---------------------------------------------------------------- intercept
    intercept = False
    Xs, Ys, xm, ym = X, Y, None, None
    if bias:
        if squared:
            Xs, Ys, xm, ym = _centered(X, Y)
        elif L == 2 and _is_binary(loss):
            intercept = True
            if isinstance(loss, LogisticLoss) and abs(float(np.sum(Y))) == Y.shape[0]:
                raise ValueError(
                    "`y` has a single class: with bias=True the logistic objective has no minimizer "
                    "(its infimum, the regularizer-free value 0, is approached as the bias grows)"
                )
        else:
            raise ValueError(
                "`bias=True` for linear networks is supported with the squared loss (any depth) "
                f"and with the logistic/hinge losses at depth 2; got loss={getattr(loss, 'name', loss)!r}, "
                f"depth={L}"
            )

    structure = spectral_structure(Xs) if squared else None

    def factor(A: np.ndarray) -> Factorization:
        # a given factorization is of X, so it is used only when the data were not centered
        return given_fac if given_fac is not None and A is X else factorize(A, factorization)

    # ---------------------------------------------------------------- choose the method
    if method == "auto":
        if squared and L == 2 and K == 1:
            method = "projection"
        elif squared and structure is not None:
            method = "spectral"
        elif L == 2:
            method = "fista"
        elif K == 1:
            method = "path"
        else:
            method = "prox"
    if method == "projection" and not (squared and L == 2 and K == 1):
        raise ValueError("method='projection' needs the squared loss, depth=2 and one output")
    if method == "spectral" and (not squared or structure is None):
        raise ValueError(
            "method='spectral' needs the squared loss and X with orthonormal columns (X^T X = I) "
            "or orthonormal rows (X X^T = I)" + ("" if not bias else " after centering (bias=True)")
        )
    if method == "fista" and L != 2:
        raise ValueError("method='fista' solves the convex two-layer problem; use depth=2 (or method='path'/'prox')")
    if method in ("path", "prox") and L == 2:
        raise ValueError(f"method={method!r} is for depth >= 3; depth=2 is convex (use 'auto' or 'fista')")
    if method == "path" and K != 1:
        raise ValueError("method='path' needs one output; use method='prox' for several outputs")
    if method == "prox" and K == 1:
        method = "path"
    if intercept and method != "fista":
        raise ValueError("an intercept with a non-squared loss is only supported by method='fista'")

    info: dict[str, Any] = {"structure": structure or "general", "bias": bool(bias)}
    lower = -np.inf
    dual = None

    if method == "projection":
        fac = factor(Xs)
        M, dual, lower, extra = _solve_projection(Xs, Ys, beta, fac)
        info.update(extra)
        name = "two-layer linear: projection u* = P_{X,beta}(y) (closed form)"
    elif method == "spectral":
        M, schatten_lower, extra = solve_spectral(Xs, Ys, beta, L, structure)
        info.update(extra)
        if L == 2:
            dual, lower, c = scaled_dual(loss, Xs, Ys, Ys - Xs @ M, beta)
            info["dual_constraint"] = c
            name = f"two-layer linear: singular-value soft threshold ({structure} X, closed form)"
        else:
            lower = schatten_lower
            dual = Ys - Xs @ M
            name = f"deep linear: Schatten-2/L power prox ({structure} X, closed form)"
    elif method == "fista":
        res = fista_nuclear(Xs, Ys, loss, beta, intercept=intercept, tol=tol, max_iter=max_iter)
        M, dual, lower = res.W, res.dual, res.dual_value
        info.update(n_iter=res.n_iter, converged=res.converged, rank=_rank_factors(M)[1].size,
                    algorithm=res.algorithm)
        if intercept:
            ym = res.b  # output bias straight from the solver
            xm = np.zeros(d)
        if not res.converged:
            info["note"] = unconverged_note(res.algorithm, res.n_iter, res.gap / max(abs(res.primal), _TINY), tol, X,
                                            res.stalled)
        name = ("two-layer linear: group-lasso Newton, duality-gap stop" if res.algorithm == "newton"
                else "two-layer linear: nuclear-norm FISTA, duality-gap stop")
    else:  # path / prox
        search = deep_linear_search(Xs, Ys, loss, beta, L, tol=tol, max_iter=max_iter, max_points=max_points,
                                    factorization=factor(Xs) if squared and K == 1 else None)
        ps = search.path
        M, lower = search.M, ps.lower
        info.update(r=ps.best.r, n_points=len(ps.points), rounds=ps.rounds, T_max=ps.T_max,
                    path_upper=ps.upper, rank=_rank_factors(M)[1].size)
        if search.reduction is not None:
            dual = np.asarray(loss.dual_point(Xs @ M, Ys), dtype=float)
            info["reduction"] = search.reduction
            name = ("deep linear, two-class cross-entropy = logistic on the margin: global secular-path search "
                    "with interval lower bound")
        elif K == 1:
            dual = ps.best.dual
            name = "deep linear: global secular-path search with interval lower bound"
        else:
            dual = ps.best.dual
            name = "deep linear: nuclear-norm path + Schatten prox polish (lower bound via sum sigma^p >= (sum sigma)^p)"
            info["note"] = ("several outputs on general data: the lower bound relaxes sum_i sigma_i^p to "
                            "(sum_i sigma_i)^p and is tight only for a rank-one optimum")

    # ---------------------------------------------------------------- network and its objective
    out_bias = None
    if bias:
        out_bias = (ym - xm @ M) if not intercept else ym
    net = network_from_end_to_end(M, L, width=width, scalar=scalar, output_bias=out_bias)
    obj = objective(net, X, Y, beta=beta, loss=loss)
    if not np.isfinite(lower):
        info.setdefault("note", "no lower bound proven")
    if dual is not None and scalar:
        dual = np.asarray(dual)[:, 0]
    return Solution(network=net, objective=obj, lower_bound=float(lower), method=name, rtol=rtol,
                    dual=dual, info=info)
