r"""Deep ReLU networks on rank-one data (docs/theory.md §2.4; Ergen & Pilanci 2021, rank-one theorem).

Let :math:`X = c\,a_0^T` with :math:`c \ge 0` and :math:`\|c\| = 1` (data with :math:`c \le 0`
are the same case with :math:`a_0 \to -a_0`).  Since :math:`(c\,a^T)_+ = c\,(a)_+` for
:math:`c \ge 0`, every layer of every sub-network keeps the form :math:`A_{l,j} = c\,h_{l,j}^T`
with :math:`h_{l,j} = (W_{l,j}^T h_{l-1,j})_+`, :math:`h_{0,j} = a_0`, and the output of any
parallel ReLU network of any width is

.. math:: f(X) = c\,\kappa^T,\qquad \kappa = \sum_j W_{L,j}^T h_{L-1,j} \in \mathbb{R}^K,
          \qquad \|\kappa\| \le \|a_0\|\sum_j t_j,\ t_j = \prod_l\|W_{l,j}\|_F .

With AM--GM (:math:`\frac\beta2\sum_l\|W_{l,j}\|_F^2 \ge \frac{\beta L}{2}t_j^{2/L}`) and the
subadditivity of :math:`T \mapsto T^{2/L}`, every network satisfies
:math:`P(\theta) \ge \ell(c\kappa^T) + \lambda\|\kappa\|^{2/L}` with
:math:`\lambda = \frac{\beta L}{2}\|a_0\|^{-2/L}`, so

.. math:: P^\star = \min_{\kappa\in\mathbb{R}^K}\ \ell(c\,\kappa^T) + \lambda\,\|\kappa\|^{2/L}

(*reduced problem*), and the bound is attained by one path of rank-one, aligned,
balanced layers

.. math:: W_1 = \frac{a_0}{\|a_0\|}\varphi_1^T,\quad W_l = \frac{\varphi_{l-1}}{\|\varphi_{l-1}\|}\varphi_l^T,
          \quad W_L = \frac{\varphi_{L-1}}{\|\varphi_{L-1}\|}\,\tau\,\hat\kappa^T,

with non-negative :math:`\varphi_l` of norm :math:`\tau = (\|\kappa^\star\|/\|a_0\|)^{1/L}` and
:math:`\hat\kappa = \kappa^\star/\|\kappa^\star\|` (``width`` sets the length of the
:math:`\varphi`'s, uniform vectors).  The reduced problem is solved globally:

* squared loss: :math:`\tfrac12\|c\kappa^T - Y\|^2 = \tfrac12\|\kappa - Y^Tc\|^2 + \text{const}`, so
  :math:`\kappa^\star` is radial along :math:`Y^Tc` with length
  :func:`deepdual.bounds.power_prox` (:math:`\|Y^Tc\|, \lambda, 2/L`) -- a soft threshold for
  :math:`L = 2`, a jump for :math:`L \ge 3`;
* other losses with one output (logistic, hinge, ...): :math:`\kappa \mapsto \ell(c\kappa)` is
  convex and the penalty concave on each half-line; branch and bound with convex
  minorants (:func:`deepdual.dual_constraint.minimize_convex_plus_power`) on
  :math:`\kappa \ge 0` and :math:`\kappa \le 0` gives the global minimum with a proven lower
  bound;
* other losses with several outputs (cross-entropy, user losses): :func:`_reduced_vector`
  -- for :math:`L = 2` a group lasso in :math:`\kappa` (FISTA stopped on the conjugate
  duality gap), for :math:`L \ge 3` a cutting-plane search over the path budget with
  convex ball-constrained inner problems; the lower bound comes from dual points
  :math:`V` with the exact rank-one constraint :math:`c(V) = \|a_0\|\,\|V^Tc\|`
  (derivation in ``docs/losses.md``, "ReLU networks on rank-one data").

``Solution.lower_bound`` is the proven lower bound of the reduced problem, hence of
the training problem over all networks of any width.

References
----------
T. Ergen and M. Pilanci, "Revealing the structure of deep neural networks via convex
duality", ICML 2021 (rank-one theorem).
A. Beck and M. Teboulle, "A fast iterative shrinkage-thresholding algorithm for linear
inverse problems", SIAM J. Imaging Sci. 2(1), 2009 (FISTA).
B. O'Donoghue and E. Candes, "Adaptive restart for accelerated gradient schemes",
Found. Comput. Math. 15, 2015.
J. E. Kelley, "The cutting-plane method for solving convex programs", J. SIAM 8(4), 1960.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..._validation import check_options
from ...bounds import max_budget, power_prox
from ...dual_constraint import ReducedResult, minimize_convex_plus_power
from ...losses import Loss, SquaredLoss
from ...network import Network
from ...objective import regularizer
from ...solution import Solution
from ...structures import RankOne, rank_one_factors

__all__ = ["solve_rank_one", "solve_reduced", "aligned_path", "path_output", "supports", "THEOREM"]

THEOREM = "Theorem (rank-one data, Ergen & Pilanci 2021)"
OPTIONS = ("width",)


def supports(Y: np.ndarray, loss: Loss) -> bool:
    """Whether the rank-one reduction covers these labels and loss: always (any convex loss,
    any number of outputs; see the module docstring)."""
    return True


def aligned_path(u: np.ndarray, out: np.ndarray, norms: Sequence[float], width: int = 1) -> list[np.ndarray]:
    r"""Layers of one rank-one, aligned path with Frobenius norms ``norms``.

    With :math:`e = \mathbf 1/\sqrt{m}` (non-negative, unit; :math:`m` = ``width``):
    :math:`W_1 = u\,(\rho_1 e)^T`, :math:`W_l = e\,(\rho_l e)^T`, :math:`W_L = e\,(\rho_L\,\hat w)^T`.
    For an input row :math:`x` the output is :math:`(\prod_l\rho_l)\,(x^Tu)_+\,\hat w`.

    Parameters
    ----------
    u : (d,) unit first-layer direction
    out : (K,) unit output direction :math:`\hat w`
    norms : L layer norms :math:`\rho_l`
    width : hidden width m
    """
    L = len(norms)
    e = np.full(width, 1.0 / np.sqrt(width))
    layers = [np.outer(u, norms[0] * e)]
    for l in range(1, L - 1):
        layers.append(np.outer(e, norms[l] * e))
    layers.append(np.outer(e, norms[-1] * np.asarray(out, dtype=float)))
    return layers


def zero_path(d: int, K: int, L: int, width: int) -> list[np.ndarray]:
    dims = [d] + [width] * (L - 1) + [K]
    return [np.zeros((dims[l], dims[l + 1])) for l in range(L)]


def check_width(width: Any) -> int:
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise ValueError(f"`width` must be an integer >= 1, got {width!r}")
    return int(width)


# ------------------------------------------------------------------ vector outputs, any loss
#: relative accuracy of the reduced problem's inner solves, far below any sensible
#: ``rtol`` so that the reported gap is the solver's, not the inner problems'
_INNER_RTOL = 1e-12


def _loss_floor(loss: Loss, Y: np.ndarray) -> float:
    r""":math:`\inf_F \ell(F; Y)`; ``ValueError`` if it is :math:`-\infty` (no budget bound exists)."""
    try:
        g_inf = float(loss.minimum(Y))
    except AttributeError:  # duck-typed loss without `minimum`: every built-in loss is >= 0
        g_inf = 0.0
    if not np.isfinite(g_inf):
        raise ValueError("the rank-one reduced problem needs a loss bounded below (loss.minimum(Y) is -inf)")
    return g_inf


class _Along:
    r""":math:`g(\kappa) = \ell(c\kappa^T; Y)` and :math:`\nabla g(\kappa) = \nabla\ell(c\kappa^T)^Tc`
    (``c`` unit), with the dual point :math:`V = -\nabla\ell(c\kappa^T)` and its values."""

    def __init__(self, c: np.ndarray, Y: np.ndarray, loss: Loss) -> None:
        self.c, self.Y, self.loss = c, Y, loss

    def value(self, k: np.ndarray) -> float:
        return float(self.loss.value(np.outer(self.c, k), self.Y))

    def grad(self, k: np.ndarray) -> np.ndarray:
        return np.asarray(self.loss.gradient(np.outer(self.c, k), self.Y), dtype=float).T @ self.c

    def dual(self, k: np.ndarray) -> np.ndarray:
        return np.asarray(self.loss.dual_point(np.outer(self.c, k), self.Y), dtype=float)


def _fista(g: _Along, prox, x0: np.ndarray, gap, tol: float, max_iter: int = 50_000
           ) -> np.ndarray:
    r"""Accelerated proximal gradient (FISTA, Beck & Teboulle 2009) for :math:`g` plus the term whose prox is ``prox``
    with adaptive restart (O'Donoghue & Candes 2015) and backtracking when the loss has
    no ``lipschitz`` constant; stops when ``gap(x) <= tol``."""
    lip = getattr(g.loss, "lipschitz", None)
    Lk = float(lip) if lip else 1.0  # ||c|| = 1, so the loss's constant is g's
    x = y = np.array(x0, dtype=float)
    t = 1.0
    for it in range(max_iter):
        gy, fy = g.grad(y), g.value(y)
        for _ in range(60):  # a non-smooth user loss may never pass: then the gap stays open
            xn = prox(y - gy / Lk, 1.0 / Lk)
            d = xn - y
            # sufficient-decrease test of the quadratic upper model; the slack covers
            # rounding in loss values of size |fy|
            if lip or g.value(xn) <= fy + gy @ d + 0.5 * Lk * (d @ d) + 1e-14 * abs(fy):
                break
            Lk *= 2.0
        if (y - xn) @ (xn - x) > 0:  # momentum points uphill: restart
            t, y = 1.0, xn
        else:
            tn = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
            y = xn + ((t - 1.0) / tn) * (xn - x)
            t = tn
        x = xn
        if it % 10 == 0 and gap(x) <= tol:
            break
    return x


def _group_lasso(g: _Along, lam: float, x0: np.ndarray, tol: float) -> np.ndarray:
    r""":math:`\operatorname{argmin}_\kappa g(\kappa) + \lambda\|\kappa\|` (group soft threshold prox),
    stopped on the duality gap :math:`g(\kappa) + \lambda\|\kappa\| - D(tV)` with
    :math:`V = -\nabla\ell`, :math:`t = \min(1, \lambda/\|V^Tc\|)`."""

    def prox(z: np.ndarray, step: float) -> np.ndarray:
        zn = float(np.linalg.norm(z))
        return z * max(0.0, 1.0 - step * lam / zn) if zn > 0 else z

    def gap(k: np.ndarray) -> float:
        V = g.dual(k)
        r = float(np.linalg.norm(V.T @ g.c))
        t = min(1.0, lam / r) if r > 0 else 1.0
        return g.value(k) + lam * float(np.linalg.norm(k)) - float(g.loss.dual_value(t * V, g.Y))

    if gap(np.zeros_like(x0)) <= tol:  # kappa = 0 optimal (||grad g(0)|| <= lam)
        return np.zeros_like(x0)
    return _fista(g, prox, x0, gap, tol)


def _ball(g: _Along, s: float, x0: np.ndarray, tol: float, max_iter: int = 50_000) -> np.ndarray:
    r""":math:`\operatorname{argmin}_{\|\kappa\|\le s} g(\kappa)` by projected FISTA, stopped on the
    gap :math:`\kappa^T\nabla g(\kappa) + s\|\nabla g(\kappa)\|` (:math:`= g(\kappa) - D(V) + s\|V^Tc\|`,
    Fenchel--Young with equality at :math:`V = -\nabla\ell`)."""

    def prox(z: np.ndarray, step: float) -> np.ndarray:
        zn = float(np.linalg.norm(z))
        return z * (s / zn) if zn > s else z

    def gap(k: np.ndarray) -> float:
        gr = g.grad(k)
        return float(k @ gr + s * np.linalg.norm(gr))

    return _fista(g, prox, prox(x0, 1.0), gap, tol, max_iter)


def _envelope_min(D: np.ndarray, slope: np.ndarray, mu: float, p: float, T_max: float) -> tuple[float, float]:
    r"""Exact :math:`\min_{0\le T\le T_{\max}} \max_i (D_i - s_iT) + \mu T^p` and its minimizer.

    On each piece of the upper envelope of the lines the function is affine plus concave,
    hence concave, so its minimum over the piece is at an end: a crossing of two lines,
    0 or :math:`T_{\max}`.  All crossings are candidates (a superset of the envelope's
    breakpoints)."""
    Di, Dj = np.meshgrid(D, D, indexing="ij")
    si, sj = np.meshgrid(slope, slope, indexing="ij")
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = (Di - Dj) / (si - sj)
    cand = np.concatenate([[0.0, T_max], cross[np.isfinite(cross) & (cross > 0) & (cross < T_max)]])
    vals = np.max(D[None, :] - cand[:, None] * slope[None, :], axis=1) + mu * cand**p
    i = int(np.argmin(vals))
    return float(vals[i]), float(cand[i])


def _reduced_vector(factors: RankOne, Y: np.ndarray, *, beta: float, depth: int, loss: Loss,
                    err: float = 0.0, rtol: float = 1e-9) -> tuple[np.ndarray, ReducedResult]:
    r"""Reduced problem :math:`\min_\kappa g(\kappa) + \lambda\|\kappa\|^{2/L}` for any convex loss
    and any number of outputs, :math:`g(\kappa) = \ell(c\kappa^T)` (derivation: ``docs/losses.md``,
    "Rank-one ReLU, any loss").

    Lower bound: for any :math:`V`, Fenchel--Young and the exact rank-one dual constraint
    give, for every network with path budget :math:`T = \sum_j t_j`,
    :math:`P \ge D(V) - c(V)\,T + \frac{\beta L}{2}T^{2/L}` with
    :math:`c(V) = \|a_0\|\,\|V^Tc\| + \epsilon\|V\|_F` (:math:`\epsilon` = ``err`` bounds
    :math:`\|X - ca_0^T\|_2`; ReLU is 1-Lipschitz).

    * :math:`L = 2`: FISTA with the group soft threshold; the bound is :math:`D(tV)` at the
      best feasible scale :math:`t \le \beta/c(V)`.
    * :math:`L \ge 3`: the penalty is concave in :math:`\|\kappa\|`; with
      :math:`G(T) = \min_{\|\kappa\|\le\|a_0\|T} g(\kappa)` (convex), :math:`P^\star = \min_T G(T) +
      \frac{\beta L}{2}T^{2/L}`.  Each inner solve at a budget :math:`T_i` gives a feasible
      :math:`\kappa_i` (upper bound) and a dual point :math:`V_i` whose line
      :math:`D(V_i) - c(V_i)T` minorizes :math:`G` and touches it at :math:`T_i`; the exact
      minimum of (upper envelope of the lines) + penalty (:func:`_envelope_min`) is a
      proven lower bound.  New budgets are placed at that minimizer (a cutting-plane
      method) until the gap is below ``rtol``.

    Returns ``(kappa, ReducedResult(norm, value, lower, iterations))``.
    """
    c = factors.c
    A = float(np.linalg.norm(factors.a0))
    K = Y.shape[1]
    L = int(depth)
    p = 2.0 / L
    g = _Along(c, Y, loss)
    zero = np.zeros(K)
    g0 = g.value(zero)
    scale = max(abs(g0), np.finfo(float).tiny)

    def cval(V: np.ndarray) -> float:
        return A * float(np.linalg.norm(V.T @ c)) + err * float(np.linalg.norm(V))

    if L == 2:
        lam = beta / A
        kappa = _group_lasso(g, lam, zero, _INNER_RTOL * scale)
        value = g.value(kappa) + lam * float(np.linalg.norm(kappa))
        V = g.dual(kappa)
        cv = cval(V)
        _, lower = loss.best_scale(V, Y, beta / cv if cv > 0 else np.inf)
        return kappa, ReducedResult(float(np.linalg.norm(kappa)), value, float(min(lower, value)))

    mu = 0.5 * beta * L  # penalty in the path budget T = ||kappa|| / ||a0||
    g_inf = _loss_floor(loss, Y)
    T_max = max_budget(g0 - g_inf, beta, L)
    Ds: list[float] = []
    slopes: list[float] = []
    done: dict[float, np.ndarray] = {}
    best = (g0, zero)

    def add(T: float) -> None:
        nonlocal best
        near = min(done, key=lambda t: abs(t - T), default=None)
        warm = zero if near is None else done[near]
        # a few thousand steps per cut: any V gives a valid line, an inexact inner solve
        # only makes it less tight, and a budget picked again resumes from here
        k = _ball(g, A * T, warm, _INNER_RTOL * scale, max_iter=2000) if T > 0 else zero
        done[T] = k
        h = g.value(k) + mu * (float(np.linalg.norm(k)) / A) ** p
        if h < best[0]:
            best = (h, k)
        V = g.dual(k)
        Ds.append(float(loss.dual_value(V, Y)))
        slopes.append(cval(V))

    for T in (0.0, *(T_max * np.array([1e-4, 1e-3, 1e-2, 0.1, 0.3, 0.6, 1.0]))):
        add(float(T))
    it = 0
    lower = -np.inf
    for it in range(1, 400):
        D, sl = np.array(Ds), np.array(slopes)
        ok = np.isfinite(D)
        lower, T_lb = _envelope_min(D[ok], sl[ok], mu, p, T_max)
        if best[0] - lower <= rtol * max(abs(best[0]), scale):
            break
        near = min(done, key=lambda t: abs(t - T_lb))
        if abs(near - T_lb) <= 1e-14 * max(T_max, 1e-300):
            # the same budget again: resume its inner solve, unless it has converged
            kn = done[near]
            gr = g.grad(kn)
            if float(kn @ gr + A * near * np.linalg.norm(gr)) <= _INNER_RTOL * scale:
                break  # no better cut at this resolution: report the gap as it is
            T_lb = near
        add(T_lb)
    # beyond T_max every network costs more than kappa = 0 (see max_budget)
    lower = min(lower, g0)
    value, kappa = best
    return kappa, ReducedResult(float(np.linalg.norm(kappa)), float(value), float(min(lower, value)), it)


def solve_reduced(factors: RankOne, Y: np.ndarray, *, beta: float, depth: int, loss: Loss,
                  err: float = 0.0, rtol: float = 1e-9) -> tuple[np.ndarray, ReducedResult]:
    r"""Globally solve :math:`\min_\kappa \ell(c\kappa^T) + \lambda\|\kappa\|^{2/L}`.

    Returns ``(kappa, result)`` where ``result.value`` is the reduced problem's value at
    ``kappa`` and ``result.lower`` a proven lower bound on its minimum (hence on the
    training problem's optimum).  Squared loss: closed form; one output: branch and
    bound in :math:`\kappa`; vector outputs with any other loss: :func:`_reduced_vector`,
    whose bound also covers data within ``err`` (:math:`\ge\|X - ca_0^T\|_2`) of rank one and
    whose cutting-plane search (:math:`L \ge 3`) stops at relative gap ``rtol``.
    """
    c, a0 = factors.c, factors.a0
    A = float(np.linalg.norm(a0))
    L = int(depth)
    p = 2.0 / L
    lam = 0.5 * beta * L * A ** (-p)
    K = Y.shape[1]
    if isinstance(loss, SquaredLoss):
        z = Y.T @ c  # (K,)
        zn = float(np.linalg.norm(z))
        const = 0.5 * float(np.sum((Y - np.outer(c, z)) ** 2))  # part of Y outside span(c)
        pp = power_prox(zn, lam, p)
        kappa = (pp.sigma / zn) * z if zn > 0 and pp.sigma > 0 else np.zeros(K)
        return kappa, ReducedResult(float(np.linalg.norm(kappa)), const + pp.value, const + pp.lower)
    if K != 1:
        return _reduced_vector(factors, Y, beta=beta, depth=L, loss=loss, err=err, rtol=rtol)

    def g_signed(sign: float):
        def g(k: float) -> tuple[float, float]:
            F = (sign * k) * c[:, None]
            return float(loss.value(F, Y)), sign * float(c @ np.asarray(loss.gradient(F, Y)).ravel())

        return g

    g0 = float(loss.value(np.zeros_like(Y), Y))
    g_inf = _loss_floor(loss, Y)
    # any minimizer has lam |kappa|^p <= h(0) - inf g
    k_max = (max(g0 - g_inf, 0.0) / lam) ** (1.0 / p)
    best: tuple[float, ReducedResult] | None = None
    lower = np.inf
    for sign in (1.0, -1.0):
        res = minimize_convex_plus_power(g_signed(sign), lam, p, k_max)
        lower = min(lower, res.lower)
        if best is None or res.value < best[1].value:
            best = (sign * res.x, res)
    assert best is not None
    kappa = np.array([best[0]])
    return kappa, ReducedResult(abs(best[0]), best[1].value, float(lower), best[1].iterations)


def path_output(X: np.ndarray, u: np.ndarray, out: np.ndarray, norms: Sequence[float]) -> np.ndarray:
    r"""Output of the network :func:`aligned_path` ``(u, out, norms, width)`` on ``X``, any width:
    :math:`(\prod_l\rho_l)\,(Xu)_+\,\hat w^T` (one matrix-vector product).

    Exact identity: with :math:`e = \mathbf 1/\sqrt m \ge 0` and :math:`e^Te = 1`, layer 1 gives
    :math:`(Xu\,\rho_1e^T)_+ = \rho_1(Xu)_+e^T` and each further hidden layer
    :math:`(\rho_{1..l-1}(Xu)_+e^Te\,\rho_le^T)_+ = \rho_{1..l}(Xu)_+e^T` (positive homogeneity
    of the ReLU); the last layer maps :math:`e^T \mapsto e^Te\,\rho_L\hat w^T`.
    """
    scale = float(np.prod(np.asarray(norms, dtype=float)))
    return np.outer(scale * np.maximum(X @ u, 0.0), np.asarray(out, dtype=float))


def solve_rank_one(X: np.ndarray, Y: np.ndarray, *, scalar: bool, beta: float, depth: int, loss: Loss,
                   rtol: float, bias: bool, factors: RankOne | None = None, **options: Any) -> Solution:
    r"""Globally optimal depth-``depth`` ReLU network on rank-one data :math:`X = c a_0^T`, :math:`c \ge 0`.

    Minimizes :math:`\ell(f(X), Y) + \frac\beta2\sum_{j,l}\|W_{l,j}\|_F^2` over parallel ReLU
    networks of any width (see the module docstring for the theorem and its proof).

    Parameters
    ----------
    X, Y : validated arrays (n, d), (n, K)
    scalar, beta, depth, loss, rtol, bias : see :func:`deepdual.solve`
    factors : RankOne, optional
        ``rank_one_factors(X)`` of this very ``X`` when the caller has already computed it
        (the dispatcher does); computed here otherwise.
    width : int, default 1
        Hidden width of the returned path (its :math:`\varphi_l` are uniform non-negative
        vectors; the objective does not depend on it).

    Returns
    -------
    Solution
        ``info`` holds ``kappa`` (the output coefficient, :math:`f = c\kappa^T`), ``c``,
        ``a0``, ``layer_norm`` (:math:`\tau`, every layer's Frobenius norm) and
        ``reduced_value``.

    Raises
    ------
    ValueError
        ``bias=True``; ``X`` not rank one or with a mixed-sign left factor.
    """
    check_options(options, OPTIONS, "solve(method='rank_one')")
    width = check_width(options.get("width", 1))
    if bias:
        raise ValueError("`bias=True` is not covered by the rank-one theorem (it assumes no biases); "
                         "use bias=False, or method='one_dimensional' for 1-D data")
    if factors is None:
        factors = rank_one_factors(X)
    if factors is None:
        s = np.linalg.svd(X, compute_uv=False)
        if rank_one_factors(X, require_sign=False) is not None:
            raise ValueError(
                "`X` is rank one, X = c a0^T, but c has entries of both signs; the rank-one theorem "
                "needs c >= 0 (or c <= 0). Use method='convex' (depth 2) or deepdual.certify for a trained network"
            )
        ratio = float(s[1] / s[0]) if s.size > 1 and s[0] > 0 else float("nan")
        raise ValueError(
            f"`X` is not rank one: second/first singular value = {ratio:.3g} (method='rank_one' needs "
            "X = c a0^T with c >= 0)"
        )
    L = int(depth)
    n, d = X.shape
    K = Y.shape[1]
    # ||X - c a0^T||_F >= ||X - c a0^T||_2: rounding-level distance to exact rank one, which
    # the vector-output bound accounts for (ReLU is 1-Lipschitz)
    if factors.residual is not None:
        err = factors.residual  # proven bound from the detector's own residual pass
    else:
        err = float(np.linalg.norm(X - np.outer(factors.c, factors.a0)))
    # the cutting-plane search (vector outputs, L >= 3) stops well inside the requested rtol
    kappa, red = solve_reduced(factors, Y, beta=beta, depth=L, loss=loss, err=err, rtol=min(1e-9, 1e-2 * rtol))
    A = float(np.linalg.norm(factors.a0))
    kn = float(np.linalg.norm(kappa))
    if kn > 0:
        tau = (kn / A) ** (1.0 / L)
        layers = aligned_path(factors.a0 / A, kappa / kn, [tau] * L, width)
        F = path_output(X, factors.a0 / A, kappa / kn, [tau] * L)
    else:
        tau = 0.0
        layers = zero_path(d, K, L, width)
        F = np.zeros((n, K))
    net = Network([layers], "relu", scalar_output=scalar)
    # = deepdual.objective(net, X, Y): F is the network's output on X (path_output), evaluated
    # with one product X u instead of L layer products and two more validated copies of X
    obj = float(loss.value(F, Y)) + regularizer(net, beta)
    info = {
        "theorem": "rank-one data X = c a0^T, c >= 0 (any convex loss, any K): f = c kappa^T, reduced "
                   "problem min_kappa loss(c kappa^T) + (beta L/2)(||kappa||/||a0||)^(2/L)",
        "kappa": kappa,
        "c": factors.c,
        "a0": factors.a0,
        "layer_norm": tau,
        "reduced_value": red.value,
        "reduced_lower_bound": red.lower,
        "branch_and_bound_iterations": red.iterations,
        "beta": beta,
        "depth": L,
        "loss": getattr(loss, "name", type(loss).__name__),
        "width": width,
    }
    return Solution(network=net, objective=obj, lower_bound=float(red.lower), method=THEOREM, rtol=rtol,
                    dual=np.asarray(loss.dual_point(F, Y)), info=info)
