r"""Deep ReLU networks on rank-one data (SPEC 2.4; Ergen & Pilanci 2021, rank-one theorem).

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
  bound.

``Solution.lower_bound`` is the proven lower bound of the reduced problem, hence of
the training problem over all networks of any width.

References
----------
T. Ergen and M. Pilanci, "Revealing the structure of deep neural networks via convex
duality", ICML 2021 (rank-one theorem).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .._validation import check_options
from ..bounds import power_prox
from ..dual_constraint import ReducedResult, minimize_convex_plus_power
from ..losses import Loss, SquaredLoss
from ..network import Network
from ..objective import objective
from ..solution import Solution
from ..structures import RankOne, rank_one_factors

__all__ = ["solve_rank_one", "solve_reduced", "aligned_path", "supports", "THEOREM"]

THEOREM = "Theorem (rank-one data, Ergen & Pilanci 2021)"
OPTIONS = ("width",)


def supports(Y: np.ndarray, loss: Loss) -> bool:
    """Whether the rank-one closed form covers these labels and loss (squared loss, or one output)."""
    return isinstance(loss, SquaredLoss) or Y.shape[1] == 1


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


def _zero_path(d: int, K: int, L: int, width: int) -> list[np.ndarray]:
    dims = [d] + [width] * (L - 1) + [K]
    return [np.zeros((dims[l], dims[l + 1])) for l in range(L)]


def _check_width(width: Any) -> int:
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise ValueError(f"`width` must be an integer >= 1, got {width!r}")
    return int(width)


def solve_reduced(factors: RankOne, Y: np.ndarray, *, beta: float, depth: int, loss: Loss
                  ) -> tuple[np.ndarray, ReducedResult]:
    r"""Globally solve :math:`\min_\kappa \ell(c\kappa^T) + \lambda\|\kappa\|^{2/L}`.

    Returns ``(kappa, result)`` where ``result.value`` is the reduced problem's value at
    ``kappa`` and ``result.lower`` a proven lower bound on its minimum (hence on the
    training problem's optimum).  Raises ``ValueError`` for vector outputs with a
    loss other than the squared loss.
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
        raise ValueError(
            f"the rank-one closed form supports vector outputs (K = {K}) only for the squared loss; "
            f"got loss {getattr(loss, 'name', type(loss).__name__)!r}"
        )

    def g_signed(sign: float):
        def g(k: float) -> tuple[float, float]:
            F = (sign * k) * c[:, None]
            return float(loss.value(F, Y)), sign * float(c @ np.asarray(loss.gradient(F, Y)).ravel())

        return g

    g0 = float(loss.value(np.zeros_like(Y), Y))
    try:
        g_inf = float(loss.minimum(Y))
    except AttributeError:  # duck-typed loss without `minimum`: every built-in loss is >= 0
        g_inf = 0.0
    if not np.isfinite(g_inf):
        raise ValueError("the rank-one reduced problem needs a loss bounded below (loss.minimum(Y) is -inf)")
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


def solve_rank_one(X: np.ndarray, Y: np.ndarray, *, scalar: bool, beta: float, depth: int, loss: Loss,
                   rtol: float, bias: bool, **options: Any) -> Solution:
    r"""Globally optimal depth-``depth`` ReLU network on rank-one data :math:`X = c a_0^T`, :math:`c \ge 0`.

    Minimizes :math:`\ell(f(X), Y) + \frac\beta2\sum_{j,l}\|W_{l,j}\|_F^2` over parallel ReLU
    networks of any width (see the module docstring for the theorem and its proof).

    Parameters
    ----------
    X, Y : validated arrays (n, d), (n, K)
    scalar, beta, depth, loss, rtol, bias : see :func:`deepdual.solve`
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
        ``bias=True``; ``X`` not rank one or with a mixed-sign left factor; vector output
        with a non-squared loss.
    """
    check_options(options, OPTIONS, "solve(method='rank_one')")
    width = _check_width(options.get("width", 1))
    if bias:
        raise ValueError("`bias=True` is not covered by the rank-one theorem (it assumes no biases); "
                         "use bias=False, or method='one_dimensional' for 1-D data")
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
    kappa, red = solve_reduced(factors, Y, beta=beta, depth=L, loss=loss)
    A = float(np.linalg.norm(factors.a0))
    kn = float(np.linalg.norm(kappa))
    if kn > 0:
        tau = (kn / A) ** (1.0 / L)
        layers = aligned_path(factors.a0 / A, kappa / kn, [tau] * L, width)
    else:
        tau = 0.0
        layers = _zero_path(d, K, L, width)
    net = Network([layers], "relu", scalar_output=scalar)
    obj = objective(net, X, Y, beta=beta, loss=loss)
    F = net.forward(X)
    info = {
        "theorem": "rank-one data X = c a0^T, c >= 0: f = c kappa^T, reduced problem "
                   "min_kappa loss(c kappa^T) + (beta L/2)(||kappa||/||a0||)^(2/L)",
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
