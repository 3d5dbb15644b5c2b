r"""Scalar problems and proven lower bounds shared by the deep (L >= 3) results.

Two facts drive every deep result (docs/theory.md §1, "Rescaling"):

1. A path ``j`` with layer norms :math:`\|W_{l,j}\|_F` has
   :math:`\frac{\beta}{2}\sum_l \|W_{l,j}\|_F^2 \ge \frac{\beta L}{2}\, t_j^{2/L}` with
   :math:`t_j = \prod_l \|W_{l,j}\|_F` (AM--GM, equality iff balanced).
2. For :math:`p = 2/L \le 1`, :math:`T \mapsto T^p` is subadditive, so
   :math:`\sum_j t_j^p \ge (\sum_j t_j)^p`.

If a dual point :math:`V` satisfies :math:`\langle V, f_\theta(X)\rangle \le c(V)\sum_j t_j` for
every network (``c`` is the *dual constraint value*), Fenchel--Young gives for every
network with :math:`T = \sum_j t_j`:

.. math:: P(\theta) \ge D(V) - c(V)\,T + \tfrac{\beta L}{2} T^{2/L} =: g_V(T).

For L = 2 the right side is linear in T and :math:`c(V) \le \beta` makes it
:math:`\ge D(V)`.  For L >= 3, :math:`g_V` is *concave* in T (linear plus concave)
and unbounded below, so we restrict to the optimum: any global minimizer has
:math:`\tfrac{\beta L}{2}T^{2/L} \le P_{\text{upper}} - \inf \ell`, i.e.
:math:`T \le T_{\max}`.  On each interval :math:`[T_i, T_{i+1}]` of a grid the concave
:math:`g_V` is minimized at an endpoint, so

.. math:: P^\star \ge \min_i \max_k \min\{g_{V_k}(T_i), g_{V_k}(T_{i+1})\}

is a *proven* lower bound on the global optimum for any finite family of dual
points :math:`V_k` (:func:`power_penalty_lower_bound`).  It becomes tight as the grid
is refined when :math:`V_k` includes the optimal dual of each budget.

:func:`power_prox` solves :math:`\min_{\sigma\ge 0} \tfrac12(\sigma - s)^2 + \lambda\sigma^p`
globally (the per-singular-value problem of deep linear and whitened networks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

__all__ = ["power_prox", "PowerProx", "power_penalty_lower_bound", "max_budget"]

_EPS = np.finfo(float).eps


@dataclass
class PowerProx:
    """Global minimizer ``sigma`` of ``phi(x) = (x - s)^2 / 2 + lam * x**p`` on ``x >= 0``,
    its value, and a proven lower bound on the minimum (``lower <= value``)."""

    sigma: float
    value: float
    lower: float


def power_prox(s: float, lam: float, p: float) -> PowerProx:
    r"""Global minimum of :math:`\varphi(x) = \tfrac12(x - s)^2 + \lambda x^p` over :math:`x \ge 0`.

    For :math:`p = 1` it is the soft threshold.  For :math:`0 < p < 1`,
    :math:`\varphi'' = 1 - \lambda p (1-p) x^{p-2}` vanishes only at
    :math:`\bar x = (\lambda p(1-p))^{1/(2-p)}`: :math:`\varphi` is concave on
    :math:`[0, \bar x]` and convex on :math:`[\bar x, \infty)`.  So the global minimum is
    either :math:`\varphi(0)` or the minimum of the convex part, which is the unique
    root of :math:`\varphi'` in :math:`[\bar x, s]` when :math:`\varphi'(\bar x) < 0` (found by
    bracketing).  On the convex part, the bracket :math:`[a, b]` left by the root finder
    gives the proven bound :math:`\varphi(x^\star) \ge \varphi(b) - |\varphi'(b)|\,(b - a)`.
    The minimizer jumps from 0 to a positive value: a hard threshold, not a soft one.
    """
    s, lam, p = float(s), float(lam), float(p)
    if not (0 < p <= 1) or lam < 0:
        raise ValueError(f"power_prox needs 0 < p <= 1 and lam >= 0, got p={p}, lam={lam}")
    phi0 = 0.5 * s * s
    if lam == 0.0:
        x = max(s, 0.0)
        v = 0.5 * (x - s) ** 2
        return PowerProx(x, v, v)
    if p == 1.0:
        x = max(s - lam, 0.0)
        v = 0.5 * (x - s) ** 2 + lam * x
        return PowerProx(x, v, v)
    if s <= 0.0:
        return PowerProx(0.0, phi0, phi0)

    def dphi(x: float) -> float:
        return x - s + lam * p * x ** (p - 1.0)

    def phi(x: float) -> float:
        return 0.5 * (x - s) ** 2 + lam * x**p

    xbar = (lam * p * (1.0 - p)) ** (1.0 / (2.0 - p))
    if xbar >= s or dphi(xbar) >= 0.0:
        # phi' is increasing on [xbar, inf) (convex part) and phi'(0+) = +inf with phi' decreasing on
        # the concave part [0, xbar]; phi'(xbar) >= 0 therefore means phi' >= 0 everywhere: minimum at 0.
        return PowerProx(0.0, phi0, phi0)
    a, b = xbar, s  # dphi(xbar) < 0 < dphi(s) = lam p s^(p-1)
    root, r = brentq(dphi, a, b, xtol=4 * _EPS * s, rtol=4 * _EPS, full_output=True)
    # a final bracket around the root: step one tolerance either side
    h = 8 * _EPS * max(root, 1.0)
    lo, hi = max(root - h, xbar), min(root + h, s)
    if dphi(lo) > 0:
        lo = xbar
    if dphi(hi) < 0:
        hi = s
    vroot = phi(root)
    # convexity on [xbar, inf): phi(x*) >= phi(root) + phi'(root)(x* - root) >= phi(root) - |phi'(root)|(hi - lo)
    lower_root = vroot - abs(dphi(root)) * (hi - lo)
    if phi0 <= vroot:
        return PowerProx(0.0, phi0, min(phi0, lower_root))
    return PowerProx(root, vroot, min(lower_root, phi0))


def max_budget(upper: float, beta: float, depth: int) -> float:
    r"""Largest :math:`T` with :math:`\tfrac{\beta L}{2}T^{2/L} \le` ``upper``: every global
    minimizer has path budget :math:`T \le` this when ``upper`` bounds
    :math:`P^\star - \inf\ell`."""
    upper = max(float(upper), 0.0)
    base = 2.0 * upper / (beta * depth)
    # a huge objective (a diverged network) gives a budget beyond float range: report inf
    with np.errstate(over="ignore"):
        return float(np.power(base, depth / 2.0))


def power_penalty_lower_bound(
    D: np.ndarray,
    c: np.ndarray,
    *,
    beta: float,
    depth: int,
    T_max: float,
    grid: np.ndarray | None = None,
    n_grid: int = 2000,
) -> float:
    r"""Proven lower bound :math:`\min_{T \in [0, T_{\max}]} \max_k g_{V_k}(T)` (see module doc).

    Parameters
    ----------
    D, c : arrays of shape (k,)
        Dual values :math:`D(V_k)` and dual-constraint values :math:`c(V_k)` (exact or
        proven upper bounds) of a family of dual points.
    beta, depth : regularization and depth L >= 2.
    T_max : float
        Bound on the optimal path budget (see :func:`max_budget`).
    grid : array, optional
        Breakpoints in ``[0, T_max]``; default mixes a uniform and a geometric grid.

    Returns
    -------
    float
        A lower bound on the global optimum (``-inf`` if no candidate is finite).
    """
    D = np.asarray(D, dtype=float).ravel()
    c = np.asarray(c, dtype=float).ravel()
    ok = np.isfinite(D) & np.isfinite(c)
    if not np.any(ok):
        return -np.inf
    D, c = D[ok], c[ok]
    L = int(depth)
    if T_max <= 0:
        return float(np.max(D))
    if not np.isfinite(T_max):
        # no finite budget: g_V is unbounded below for L >= 3 and no bound is proven
        return -np.inf if L >= 3 else float(np.max(np.where(c <= beta, D, -np.inf)))
    if grid is None:
        geo = T_max * np.logspace(-12, 0, n_grid // 2)
        grid = np.concatenate([[0.0], geo, np.linspace(0.0, T_max, n_grid // 2)])
    T = np.unique(np.clip(np.asarray(grid, dtype=float), 0.0, T_max))
    if T[0] > 0:
        T = np.concatenate([[0.0], T])
    if T[-1] < T_max:
        T = np.concatenate([T, [T_max]])
    pen = 0.5 * beta * L * T ** (2.0 / L)
    G = D[None, :] - T[:, None] * c[None, :] + pen[:, None]  # (N, k)
    per_interval = np.max(np.minimum(G[:-1], G[1:]), axis=1)
    return float(np.min(per_interval))
