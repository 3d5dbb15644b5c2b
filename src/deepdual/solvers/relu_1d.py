r"""Exact ReLU networks with biases on one-dimensional data (SPEC 2.5).

Two layers
----------
For data :math:`x \in \mathbb{R}^n` (``X`` of shape ``(n, 1)``) and a two-layer ReLU
network with unpenalized hidden and output biases,

.. math::

    f(x) = c + \sum_j v_j (w_j x + b_j)_+ ,\qquad
    P = \ell(f(x), y) + \frac\beta2\sum_j (w_j^2 + v_j^2),

the training problem over networks of *any* width equals the finite Lasso

.. math::

    \min_{c,\, z^\pm}\ \ell\Big(c\mathbf 1 + \sum_k z^+_k (x - x_k)_+ + z^-_k (x_k - x)_+,\ y\Big)
    + \beta \sum_k (|z^+_k| + |z^-_k|)

over ramps whose kinks sit at the data points (``docs/one_dimensional.md`` proves it).
On the sorted distinct points :math:`u_1 < \dots < u_p` a fit is determined by its values
:math:`g_k`, and the smallest weight decay reaching them has the closed form

.. math::

    R(g) = \max\Big(T,\ \tfrac12\big(T + |s_1 + s_{p-1}|\big)\Big),\qquad
    T = \sum_{k=2}^{p-1} |s_k - s_{k-1}|,

with :math:`s_k` the slope between :math:`u_k` and :math:`u_{k+1}` (:func:`spline_cost`);
it is Savarese et al.'s :math:`\max(\int|f''|, |f'(-\infty) + f'(+\infty)|)` minimized over
the slopes outside the data.

Algorithm
---------
The dual is a box-constrained QP in :math:`h_j = \sum_k V_k (u_k - u_j)_+`
(the correlation of the dual point with the ramp at :math:`u_j`):

.. math::

    \max_h\ \bar y^T V - \tfrac12 V^T W^{-1} V\quad \text{s.t.}\quad
    |h_j| \le \beta,\ |h_j - h_1| \le \beta,\qquad V = Bh,

where :math:`V = Bh` (the second difference of :math:`h`) is banded.  A Mehrotra
primal--dual interior-point method solves it with one banded Cholesky factorization
per iteration (:math:`O(n)`), plus a 1x1 Schur complement for :math:`h_1`.  An
active-set *polish* then refits the spline with the identified kinks (a tridiagonal
system) and the final network is certified by the exact dual constraint of its own
residual.  The solver stops on that duality gap.

Deeper networks
---------------
For ``depth >= 3`` the solver returns the best network among those whose layers
after the first act linearly on the data (the structure of the paper's optimal
solutions).  Within that class the problem is
:math:`\min_g \ell(g) + \frac{\beta L}{2} R(g)^{2/L}`, solved by a scalar search along
the two-layer path.  Deep networks outside the class can do strictly better, and
narrow deep networks can place kinks off the data; the returned ``lower_bound`` is a
proven (Lipschitz) bound over *all* networks and is usually far from tight, so such
solutions are not certified.  See ``docs/one_dimensional.md``.

References
----------
P. Savarese, I. Evron, D. Soudry, N. Srebro, "How do infinite width bounded norm networks
look in function space?", COLT 2019.
T. Ergen, M. Pilanci, "Revealing the structure of deep neural networks via convex duality",
ICML 2021.
S.-J. Kim, K. Koh, S. Boyd, D. Gorinevsky, "l1 trend filtering", SIAM Review 2009
(banded interior-point methods for the same kind of dual).
E. Boursier, N. Flammarion, "Penalising the biases in norm regularisation enforces
sparsity", NeurIPS 2023 (the penalized-bias variant).
E. Zeger et al., "A library of mirrors: deep neural nets in low dimensions are convex
Lasso models with reflection features", 2024.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from .._validation import check_beta, check_depth, check_options, check_positive, check_targets, check_finite
from ..losses import Loss, SquaredLoss, get_loss
from ..network import Network
from ..objective import objective as _objective
from ..solution import DEFAULT_RTOL, Certificate, Solution

__all__ = [
    "solve_1d",
    "certify_1d",
    "interpolate",
    "Interpolant",
    "spline_cost",
    "spline_network",
    "SkipSolution",
]

_EPS = np.finfo(float).eps
_LD = np.longdouble
_LD_EPS = float(np.finfo(np.longdouble).eps)

#: default relative duality gap at which the two-layer solver stops
DEFAULT_TOL = 1e-9


# =============================================================================================
# Data: sorted distinct points, multiplicities, group means
# =============================================================================================


@dataclass
class _Grouped:
    """Sorted distinct inputs ``u`` with weights ``w`` (multiplicities), means ``ybar``,
    the group of every sample (``inv``) and the constant ``rss0 = 1/2 sum_i (y_i - ybar_g(i))^2``
    that duplicates add to the squared loss."""

    u: np.ndarray
    w: np.ndarray
    ybar: np.ndarray
    inv: np.ndarray
    rss0: float

    @property
    def p(self) -> int:
        return self.u.size


def _group(x: np.ndarray, y: np.ndarray) -> _Grouped:
    u, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    w = counts.astype(float)
    ybar = np.bincount(inv, y, minlength=u.size) / w
    rss0 = 0.5 * float(np.sum((y - ybar[inv]) ** 2))
    return _Grouped(u, w, ybar, inv, rss0)


def _as_1d_x(X: Any, name: str = "X") -> np.ndarray:
    """Accept ``(n,)`` or ``(n, 1)`` inputs; return a new finite float64 vector."""
    arr = np.array(X, dtype=float, copy=True) if not isinstance(X, np.ndarray) else X.astype(float, copy=True)
    if arr.ndim == 2:
        if arr.shape[1] != 1:
            raise ValueError(
                f"`{name}` must be one-dimensional data, shape (n,) or (n, 1); got shape {arr.shape}"
            )
        arr = arr[:, 0]
    elif arr.ndim != 1:
        raise ValueError(f"`{name}` must have shape (n,) or (n, 1), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"`{name}` must contain at least one point")
    check_finite(arr, name)
    return arr


# =============================================================================================
# Splines with kinks at the data: closed-form cost and a minimal network
# =============================================================================================


def _slopes(u: np.ndarray, g: np.ndarray) -> np.ndarray:
    return np.diff(g) / np.diff(u)


def spline_cost(u: Any, g: Any, *, skip: bool = False) -> float:
    r"""Smallest weight decay :math:`\min \tfrac12\sum_j(w_j^2+v_j^2)` of a two-layer ReLU
    network with free biases taking the values ``g`` at the sorted distinct points ``u``.

    .. math::

        R(g) = \max\big(T,\ \tfrac12(T + |s_1 + s_{p-1}|)\big),\qquad
        T = \sum_{k=2}^{p-1}|s_k - s_{k-1}|,

    with :math:`s_k = (g_{k+1}-g_k)/(u_{k+1}-u_k)`.  With a free linear skip term
    (``skip=True``) it is :math:`T`.  It is Savarese et al.'s representational cost
    :math:`\max(\int|f''|, |f'(-\infty)+f'(+\infty)|)` of the linear spline through
    :math:`(u_k, g_k)`, minimized over the two slopes outside :math:`[u_1, u_p]`
    (``docs/one_dimensional.md``, section 3).

    Parameters
    ----------
    u : array of shape (p,)
        Strictly increasing points.
    g : array of shape (p,)
        Values at ``u``.
    skip : bool, default False

    Returns
    -------
    float
    """
    u = np.asarray(u, dtype=float)
    g = np.asarray(g, dtype=float)
    if u.shape != g.shape or u.ndim != 1:
        raise ValueError(f"`u` and `g` must be 1-D arrays of equal length, got {u.shape} and {g.shape}")
    if u.size > 1 and not np.all(np.diff(u) > 0):
        raise ValueError("`u` must be strictly increasing")
    if u.size <= 1:
        return 0.0
    s = _slopes(u, g)
    T = float(np.sum(np.abs(np.diff(s))))
    if skip:
        return T
    S = float(s[0] + s[-1])
    return max(T, 0.5 * (T + abs(S)))


@dataclass
class _Ramps:
    """A function ``const + slope * x + sum_i z_i (o_i (x - t_i))_+`` (``o_i = +1`` right
    ramp, ``-1`` left ramp); ``slope`` is non-zero only for the skip variant."""

    t: np.ndarray
    o: np.ndarray
    z: np.ndarray
    const: float
    slope: float = 0.0

    @property
    def cost(self) -> float:
        return float(np.sum(np.abs(self.z)))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        out = np.full(x.shape, self.const) + self.slope * x
        for t, o, z in zip(self.t, self.o, self.z):
            out += z * np.maximum(o * (x - t), 0.0)
        return out


def _split_kinks(delta: np.ndarray, a_plus: float) -> np.ndarray:
    r"""Fractions :math:`\theta_k \in [0,1]` with :math:`\sum_k \theta_k\delta_k = a_+`: the part
    :math:`\theta_k\delta_k` of kink k becomes a right ramp, the rest a left ramp.  At most one
    kink is split.  Requires :math:`\sum\delta^- \le a_+ \le \sum\delta^+` (checked by caller)."""
    theta = np.zeros(delta.size)
    if a_plus >= 0:
        theta[delta < 0] = 0.0
        sel = np.nonzero(delta > 0)[0]
    else:
        theta[delta > 0] = 0.0
        sel = np.nonzero(delta < 0)[0]
    remaining = abs(a_plus)
    for k in sel:
        if remaining <= 0:
            break
        take = min(abs(delta[k]), remaining)
        theta[k] = take / abs(delta[k])
        remaining -= take
    return theta


def _min_norm_ramps(u: np.ndarray, g: np.ndarray, *, skip: bool = False, kink_tol: float = 0.0) -> _Ramps:
    r"""A cheapest ramp representation of the linear spline through ``(u, g)``.

    Slope changes :math:`|\gamma_k| \le` ``kink_tol`` are dropped (the caller evaluates the
    resulting network exactly).  Without ``skip`` the two slopes outside the data are
    chosen as in ``docs/one_dimensional.md`` §3, so the cost equals :func:`spline_cost`.
    """
    p = u.size
    if p == 1:
        return _Ramps(np.zeros(0), np.zeros(0), np.zeros(0), float(g[0]))
    s = _slopes(u, g)
    gam = np.diff(s)  # slope changes at u_2..u_{p-1}
    keep = np.abs(gam) > kink_tol
    t_int = u[1:-1][keep]
    d_int = gam[keep]
    if skip:
        # f = c + s_1 x + sum gamma_k (x - u_k)_+
        t, o, z = t_int, np.ones(t_int.size), d_int
        const = float(g[0] - s[0] * u[0])
        return _Ramps(t, o, z, const, float(s[0]))
    T = float(np.sum(np.abs(d_int)))
    S = float(s[0] + s[-1])
    a_minus, a_plus = float(s[0]), float(s[-1])
    t_all, d_all = t_int, d_int
    if abs(S) > T:
        # move both outer slopes by d/2 towards cancelling: cost (T + |S|)/2 (doc §3)
        d = -math.copysign(0.5 * (abs(S) - T), S)
        a_minus = float(s[0]) + 0.5 * d
        a_plus = float(s[-1]) + 0.5 * d
        t_all = np.concatenate([[u[0]], t_int, [u[-1]]])
        d_all = np.concatenate([[-0.5 * d], d_int, [0.5 * d]])
    # a_plus must lie in [-sum delta^-, sum delta^+]; rounding can push it out by ~eps
    P = float(np.sum(np.maximum(d_all, 0)))
    N = float(np.sum(np.maximum(-d_all, 0)))
    a_plus_c = min(max(a_plus, -N), P)
    theta = _split_kinks(d_all, a_plus_c)
    zr, zl = theta * d_all, (1.0 - theta) * d_all
    # the constant from a_+ - a_+c (rounding only) is absorbed below via const
    rmask, lmask = zr != 0, zl != 0
    t = np.concatenate([t_all[rmask], t_all[lmask]])
    o = np.concatenate([np.ones(int(rmask.sum())), -np.ones(int(lmask.sum()))])
    z = np.concatenate([zr[rmask], zl[lmask]])
    ramps = _Ramps(t, o, z, 0.0)
    # slopes of the representation: right of u_p it is sum zr, left of u_1 it is -sum zl
    ramps.const = float(g[0] - ramps(np.array([u[0]]))[0])
    return ramps


def _ramps_network(r: _Ramps, *, scalar: bool = True, penalize_biases: bool = False) -> Network:
    r"""Two-layer network computing ``r`` (without its skip slope), balanced so that each
    neuron costs exactly :math:`|z|` (or :math:`|z|\sqrt{1+t^2}` with penalized biases).

    A right ramp :math:`z(x-t)_+` becomes inner weight :math:`\sqrt{|z|}`, bias
    :math:`-t\sqrt{|z|}`, outer weight :math:`\operatorname{sign}(z)\sqrt{|z|}`; a left ramp
    negates the inner weight and bias.  With penalized biases the inner pair is
    scaled by :math:`(1+t^2)^{-1/4}` and the outer weight by :math:`(1+t^2)^{1/4}`.
    """
    k = r.z.size
    if k == 0:
        W1, b1, W2 = np.zeros((1, 1)), np.zeros(1), np.zeros((1, 1))
    else:
        a = np.sqrt(np.abs(r.z))
        if penalize_biases:
            q = (1.0 + r.t ** 2) ** 0.25
            win, vout = a / q, np.sign(r.z) * a * q
        else:
            win, vout = a, np.sign(r.z) * a
        W1 = (r.o * win).reshape(1, k)
        b1 = -r.o * r.t * win
        W2 = vout.reshape(k, 1)
    ob = None if penalize_biases else np.array([r.const])
    return Network([[W1, W2]], "relu", biases=[[b1]], output_bias=ob, scalar_output=scalar)


def spline_network(x: Any, values: Any, *, skip: bool = False) -> tuple[Network, float]:
    r"""A cheapest two-layer ReLU network (free biases) whose values at the points ``x`` are
    ``values``, and its weight decay :math:`\tfrac12\sum_j(w_j^2 + v_j^2)`.

    Its kinks lie at data points and it is linear between neighbours.  Duplicated
    ``x`` must carry equal ``values``.  With ``skip=True`` the linear part is returned
    separately (see :class:`SkipSolution`) and the cost is that of the interior kinks.

    Returns
    -------
    network : Network
    cost : float
        Equals :func:`spline_cost` of the distinct points.
    """
    xv = _as_1d_x(x, "x")
    gv = np.array(values, dtype=float, copy=True).reshape(-1)
    if gv.shape != xv.shape:
        raise ValueError(f"`values` must have one entry per point ({xv.size}), got {gv.size}")
    check_finite(gv, "values")
    u, inv = np.unique(xv, return_inverse=True)
    g = np.zeros(u.size)
    g[inv] = gv
    if not np.allclose(g[inv], gv, rtol=0, atol=0):
        raise ValueError("`values` must be equal at duplicated points of `x`")
    r = _min_norm_ramps(u, g, skip=skip)
    return _ramps_network(r), r.cost


# =============================================================================================
# Dual constraint at the data (exact), in extended precision
# =============================================================================================


def _ramp_correlations(u: np.ndarray, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""``h[j] = sum_k V_k (u_k - u_j)_+`` for j = 0..p-1 and the suffix sums
    ``S[j] = sum_{k >= j} V_k``, by the stable recursion
    :math:`h_j = h_{j+1} + (u_{j+1}-u_j) S_{j+1}` in extended precision."""
    Vl = np.asarray(V, dtype=_LD)
    S = np.cumsum(Vl[::-1])[::-1]
    d = np.diff(np.asarray(u, dtype=_LD))
    inc = d * S[1:]
    h = np.concatenate([np.cumsum(inc[::-1])[::-1], np.zeros(1, dtype=_LD)])
    return h, S


def _rounding_slack(u: np.ndarray, V: np.ndarray) -> float:
    r"""A bound on the rounding error of :func:`_ramp_correlations`: each of the ``p`` steps
    of the two cumulative sums adds at most one extended-precision rounding of a term
    bounded by :math:`\sum|V|\,(u_p - u_1)`."""
    p = u.size
    if p <= 1:
        return 0.0
    return 4.0 * p * _LD_EPS * float(np.sum(np.abs(V))) * float(u[-1] - u[0])


def _c_two_layer(u: np.ndarray, V: np.ndarray, *, skip: bool = False) -> float:
    r"""Exact dual-constraint value :math:`\sup_{s=\pm1,\,t}|\sum_k V_k (s(u_k - t))_+|` for
    group sums ``V`` with :math:`\sum_k V_k = 0` (and :math:`\sum_k V_k u_k = 0` if ``skip``).

    The correlation with a ramp is piecewise linear in its kink ``t`` with breakpoints at
    the data, so the supremum is attained at a data point: right ramps give
    :math:`h_j`, left ramps :math:`h_j - h_1` (doc §2).  Returns a value rounded *up* by
    :func:`_rounding_slack`.
    """
    if u.size <= 1:
        return 0.0
    h, _ = _ramp_correlations(u, V)
    if skip:
        c = np.max(np.abs(h))
    else:
        c = max(np.max(np.abs(h)), np.max(np.abs(h - h[0])))
    return float(c) + _rounding_slack(u, V)


def _c_lipschitz(u: np.ndarray, V: np.ndarray) -> float:
    r"""Proven bound :math:`c(V) = \int |G(t)|\,dt = \sum_k |S_{k+1}|\,(u_{k+1}-u_k)` on
    :math:`\langle V, f\rangle / \mathrm{Lip}(f)` for *every* function f when
    :math:`\sum_k V_k = 0` (summation by parts: :math:`\sum_k V_k f(u_k) = \int f'(t)G(t)dt`
    with :math:`G(t) = \sum_{u_k > t} V_k`).  A deep ReLU network's Lipschitz constant is at
    most the product of its layers' operator norms."""
    if u.size <= 1:
        return 0.0
    _, S = _ramp_correlations(u, V)
    val = np.sum(np.abs(S[1:]) * np.diff(np.asarray(u, dtype=_LD)))
    return float(val) + _rounding_slack(u, V)


def _arc_max(a: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    r"""``max |<a_i, q>|`` over unit vectors q at angles in ``[lo_i, hi_i]`` (arcs shorter than
    pi): the maximum of a linear function on an arc is at an endpoint or at the direction
    of ``±a_i`` when that lies on the arc."""
    def val(th):
        return np.abs(a[:, 0] * np.cos(th) + a[:, 1] * np.sin(th))

    best = np.maximum(val(lo), val(hi))
    phi = np.arctan2(a[:, 1], a[:, 0])
    for shift in (0.0, np.pi, -np.pi, 2 * np.pi, -2 * np.pi):
        th = phi + shift
        inside = (th >= lo) & (th <= hi)
        best = np.where(inside, np.maximum(best, np.hypot(a[:, 0], a[:, 1])), best)
    return best


def _penalized_sectors(u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""The activation cells of :math:`(w, b) \mapsto ((w u_k + b)_+)_k` on the unit circle.

    Returns ``lo, hi`` (angles of each arc), and for each arc the active set as an
    index range ``[first, last)`` in sorted order.  Neuron :math:`(w, b)` is active at
    :math:`u_k` iff :math:`w u_k + b > 0`; the boundaries are the directions orthogonal to
    :math:`(u_k, 1)`, i.e. angles :math:`\theta_k = \operatorname{atan2}(-u_k, 1) \pm \pi/2`.
    """
    p = u.size
    # boundary angles where w u_k + b = 0 with (w, b) = (cos th, sin th): th = atan2(-u_k, 1) + m*pi
    base = np.arctan2(-u, np.ones(p))  # in (-pi/2, pi/2), decreasing in u
    bd = np.sort(np.concatenate([base, base + np.pi]))  # 2p angles in (-pi/2, 3pi/2)
    lo = bd
    hi = np.concatenate([bd[1:], [bd[0] + 2 * np.pi]])
    mid = 0.5 * (lo + hi)
    w, b = np.cos(mid), np.sin(mid)
    # w > 0: active iff u_k > -b/w (a suffix); w < 0: active iff u_k < -b/w (a prefix)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -b / w
    first = np.zeros(mid.size, dtype=int)
    last = np.zeros(mid.size, dtype=int)
    pos, neg = w > 0, w < 0
    first[pos] = np.searchsorted(u, t[pos], side="right")
    last[pos] = p
    first[neg] = 0
    last[neg] = np.searchsorted(u, t[neg], side="left")
    zero = ~(pos | neg)
    last[zero & (b > 0)] = p
    return lo, hi, first, last


def _c_penalized(u: np.ndarray, V: np.ndarray) -> float:
    r"""Exact :math:`\max_{w^2+b^2 \le 1}|\sum_k V_k (w u_k + b)_+|` (penalized biases, no
    output bias).  On each of the 2p activation arcs the correlation is linear in
    :math:`(w, b)`, namely :math:`\langle a, (w,b)\rangle` with
    :math:`a = \sum_{k\ \mathrm{active}} V_k (u_k, 1)`; :func:`_arc_max` maximizes it exactly."""
    lo, hi, first, last = _penalized_sectors(u)
    Vl = np.asarray(V, dtype=_LD)
    c0 = np.concatenate([[0], np.cumsum(Vl)])
    c1 = np.concatenate([[0], np.cumsum(Vl * np.asarray(u, dtype=_LD))])
    A = np.stack([c1[last] - c1[first], c0[last] - c0[first]], axis=1).astype(float)
    m = _arc_max(A, lo, hi)
    slack = 4.0 * u.size * _LD_EPS * float(np.sum(np.abs(V)) * (1.0 + np.max(np.abs(u))))
    return float(np.max(m)) + slack


# =============================================================================================
# Interior-point method for   min 1/2 xi^T Q xi - b^T xi   s.t.  |R xi| <= e   (e > 0)
# =============================================================================================


class _BandArrowSystem:
    r"""Linear algebra for :math:`Q + R^T\Delta R` when the variables split into a *band*
    block (Q pentadiagonal there, each row of R touches at most one band variable) and a
    few dense *arrow* variables.  One banded Cholesky factorization plus an
    ``na x na`` Schur complement per Newton step: :math:`O(n)`."""

    def __init__(self, Q: sp.spmatrix, b: np.ndarray, nb: int, k: np.ndarray, alpha: np.ndarray,
                 E: np.ndarray, e: np.ndarray):
        Q = sp.csr_matrix(Q)
        self.Q, self.b, self.nb = Q, np.asarray(b, float), int(nb)
        self.n = Q.shape[0]
        self.na = self.n - self.nb
        nb, na = self.nb, self.na
        self.Qb = np.zeros((3, nb))
        if nb:
            Qbb = Q[:nb, :nb].tocsr()
            for off in range(3):
                dg = Qbb.diagonal(off)
                self.Qb[2 - off, off:] = dg
        self.Qba = Q[:nb, nb:].toarray() if na else np.zeros((nb, 0))
        self.Qaa = Q[nb:, nb:].toarray() if na else np.zeros((0, 0))
        self.k = np.asarray(k, dtype=int)
        self.alpha = np.where(self.k >= 0, np.asarray(alpha, float), 0.0)
        self.kk = np.where(self.k >= 0, self.k, 0)
        self.E = np.asarray(E, float).reshape(len(self.k), na)
        self.e = np.asarray(e, float)
        self.m = len(self.k)

    def Qmul(self, xi: np.ndarray) -> np.ndarray:
        return self.Q @ xi

    def Rmul(self, xi: np.ndarray) -> np.ndarray:
        out = self.alpha * xi[self.kk] if self.nb else np.zeros(self.m)
        if self.na:
            out = out + self.E @ xi[self.nb:]
        return out

    def Rtmul(self, y: np.ndarray) -> np.ndarray:
        out = np.empty(self.n)
        out[: self.nb] = np.bincount(self.kk, self.alpha * y, minlength=self.nb)[: self.nb] if self.nb else 0.0
        if self.na:
            out[self.nb:] = self.E.T @ y
        return out

    def factor(self, delta: np.ndarray):
        nb, na = self.nb, self.na
        da = delta * self.alpha
        if nb:
            Mb = self.Qb.copy()
            Mb[2] += np.bincount(self.kk, da * self.alpha, minlength=nb)[:nb]
            cb = sla.cholesky_banded(Mb, lower=False, check_finite=False)
        Mba = self.Qba.copy()
        for a in range(na):
            if nb:
                Mba[:, a] += np.bincount(self.kk, da * self.E[:, a], minlength=nb)[:nb]
        Maa = self.Qaa + (self.E * delta[:, None]).T @ self.E if na else None
        if nb and na:
            Z = sla.cho_solve_banded((cb, False), Mba, check_finite=False)
            S = Maa - Mba.T @ Z
            Sf = sla.cho_factor(S, check_finite=False)
        elif na:
            Sf = sla.cho_factor(Maa, check_finite=False)

        def solve(rhs: np.ndarray) -> np.ndarray:
            out = np.empty(self.n)
            if nb:
                zb = sla.cho_solve_banded((cb, False), rhs[:nb], check_finite=False)
                if na:
                    xa = sla.cho_solve(Sf, rhs[nb:] - Mba.T @ zb, check_finite=False)
                    out[nb:] = xa
                    out[:nb] = zb - Z @ xa
                else:
                    out[:nb] = zb
            else:
                out[:] = sla.cho_solve(Sf, rhs, check_finite=False)
            return out

        return solve


class _AugmentedSystem(_BandArrowSystem):
    r"""Newton systems of the two-layer dual, solved through the augmented system.

    The normal-equation matrix :math:`Q + \Sigma` with :math:`Q = B^TW^{-1}B` (a discretized
    fourth-order operator, condition number :math:`\sim p^4`) loses all accuracy when
    few constraints are active.  Instead we solve the equivalent quasi-definite system

    .. math::  \begin{pmatrix}\Sigma & -B^T\\ -B & -W\end{pmatrix}
               \begin{pmatrix}\Delta h\\ \Delta\nu\end{pmatrix} =
               \begin{pmatrix} r\\ 0\end{pmatrix}

    (:math:`\Sigma = R^T\mathrm{diag}(\delta)R` the barrier Hessian; :math:`\Delta\nu = -W^{-1}B\Delta h`),
    whose conditioning is that of :math:`B` (:math:`\sim p^2`).  Interleaving
    :math:`\nu_k` and :math:`h_k` makes it banded (3 sub- and super-diagonals); it is
    factored by banded LU with partial pivoting (LAPACK ``gbtrf``).

    The base variant couples :math:`h_1` to every left-ramp row.  Eliminating the band
    first would form the Schur complement of :math:`h_1` as a difference of huge
    barrier weights, so each system is solved in the variables :math:`h'_j = h_j - h_1`
    for the rows whose left-ramp weight dominates (a unit-triangular change of
    variables): every row then couples to :math:`h_1` only through the *smaller* of
    its two weights, and the new coupling column :math:`B(e_1 + \sum_{j\in\mathcal L}e_j)`
    is a sum of second-difference stencils, formed without cancellation of large terms.
    """

    def __init__(self, Bv: sp.csr_matrix, w: np.ndarray, ybar: np.ndarray, beta: float, *, arrow: bool):
        p = w.size
        nb = p - 2
        Q = (Bv.T @ sp.diags(1.0 / w) @ Bv).tocsr()
        b = Bv.T @ ybar
        if arrow:
            k = np.r_[-1, np.arange(nb), np.arange(nb)]
            alpha = np.r_[0.0, np.ones(nb), np.ones(nb)]
            E = np.r_[1.0, np.zeros(nb), -np.ones(nb)].reshape(-1, 1)
        else:
            k, alpha, E = np.arange(nb), np.ones(nb), np.zeros((nb, 0))
        super().__init__(Q, b, nb, k, alpha, E, np.full(len(k), beta))
        self.arrow = arrow
        self.p = p
        self.w = w
        Bb = sp.csc_matrix(Bv[:, :nb])
        self.Bb = Bb
        self.Ba = np.asarray(Bv[:, nb].toarray()).ravel() if arrow else None
        # interleaved positions: nu_0 -> 0; nu_k -> 2k-1 (k >= 1); band variable j (h_{j+2}) -> 2j+2
        self.N = p + nb
        self.pos_nu = np.r_[0, 2 * np.arange(1, p) - 1]
        self.pos_h = 2 * np.arange(nb) + 2
        self.kl = self.ku = 3
        Bc = Bb.tocoo()
        self.B_rows, self.B_cols, self.B_vals = Bc.row, Bc.col, Bc.data

    def _band_matrix(self, diag_h: np.ndarray) -> np.ndarray:
        kl, ku, N = self.kl, self.ku, self.N
        ab = np.zeros((2 * kl + ku + 1, N))

        def put(i, j, v):
            ab[kl + ku + i - j, j] = v

        put(self.pos_h, self.pos_h, diag_h)
        put(self.pos_nu, self.pos_nu, -self.w)
        pi, pj = self.pos_nu[self.B_rows], self.pos_h[self.B_cols]
        put(pi, pj, -self.B_vals)
        put(pj, pi, -self.B_vals)
        return ab

    def factor(self, delta: np.ndarray):
        nb, N = self.nb, self.N
        if self.arrow:
            dR1, dR, dL = delta[0], delta[1:nb + 1], delta[nb + 1:]
            Lset = dL > dR
            diag_h = dR + dL
        else:
            diag_h = delta
        lu, piv, info = sla.lapack.dgbtrf(self._band_matrix(diag_h), self.kl, self.ku)
        if info != 0:
            raise np.linalg.LinAlgError("banded LU failed")

        def bsolve(r):
            x, inf = sla.lapack.dgbtrs(lu, self.kl, self.ku, r, piv)
            if inf != 0:
                raise np.linalg.LinAlgError("banded solve failed")
            return x

        if not self.arrow:
            def solve(rhs):
                r = np.zeros(N)
                r[self.pos_h] = rhs
                return bsolve(r)[self.pos_h]
            return solve

        Lf = Lset.astype(float)
        bt = self.Ba + self.Bb @ Lf                      # coupling column B(e_1 + 1_L)
        c = np.zeros(N)
        c[self.pos_h] = np.where(Lset, dR, -dL)          # barrier coupling, min of the two weights
        c[self.pos_nu] = -bt
        saa = dR1 + float(np.sum(np.where(Lset, dR, dL)))
        z = bsolve(c)
        S = saa - float(c @ z)
        if not S > 0:
            raise np.linalg.LinAlgError("Schur complement not positive")

        def solve(rhs):
            r = np.zeros(N)
            r[self.pos_h] = rhs[:nb]
            ra = rhs[nb] + float(Lf @ rhs[:nb])          # P^T rhs
            x = bsolve(r)
            xa = (ra - float(c @ x)) / S
            xb = x - z * xa
            out = np.empty(nb + 1)
            out[:nb] = xb[self.pos_h] + Lf * xa          # back to h = P h'
            out[nb] = xa
            return out

        return solve


class _DenseSystem:
    """Dense linear algebra for small problems (penalized-bias variant)."""

    def __init__(self, Q: np.ndarray, b: np.ndarray, R: np.ndarray, e: np.ndarray):
        self.Qd, self.b, self.R, self.e = np.asarray(Q, float), np.asarray(b, float), np.asarray(R, float), e
        self.n, self.m = self.Qd.shape[0], self.R.shape[0]

    def Qmul(self, xi):
        return self.Qd @ xi

    def Rmul(self, xi):
        return self.R @ xi

    def Rtmul(self, y):
        return self.R.T @ y

    def factor(self, delta):
        M = self.Qd + (self.R * delta[:, None]).T @ self.R
        cf = sla.cho_factor(M, check_finite=False)
        return lambda rhs: sla.cho_solve(cf, rhs, check_finite=False)


@dataclass
class _IPMResult:
    xi: np.ndarray
    z: np.ndarray  # atom coefficients (multipliers lambda+ - lambda-)
    iterations: int
    stopped: str


def _mehrotra(system, *, mu0: float, max_iter: int, check=None) -> _IPMResult:
    r"""Mehrotra predictor--corrector for :math:`\min \tfrac12\xi^TQ\xi - b^T\xi` subject to
    :math:`-e \le R\xi \le e`, started at the strictly feasible :math:`\xi = 0`.

    Newton steps keep :math:`R\xi + s^+ = e`, :math:`-R\xi + s^- = e` exactly (they are
    linear), so every iterate is feasible.  ``check(it, xi, z)`` may stop the loop by
    returning True; it receives the atom coefficients :math:`z = \lambda^+ - \lambda^-`, the
    multipliers of the constraints (the primal Lasso variables).
    """
    e = system.e
    m = system.m
    xi = np.zeros(system.n)
    sp_, sm = e.copy(), e.copy()
    lp, lm = mu0 / sp_, mu0 / sm
    stopped = "max_iter"
    it = 0

    def maxstep(v, dv):
        neg = dv < 0
        return float(np.min(-v[neg] / dv[neg])) if np.any(neg) else np.inf

    for it in range(1, max_iter + 1):
        rd = system.Qmul(xi) - system.b + system.Rtmul(lp - lm)
        mu = (sp_ @ lp + sm @ lm) / (2 * m)
        delta = lp / sp_ + lm / sm
        try:
            solve = system.factor(delta)
        except (np.linalg.LinAlgError, ValueError):
            stopped = "factorization"
            break

        def direction(rcp, rcm):
            rhs = -rd - system.Rtmul(rcp / sp_ - rcm / sm)
            dx = solve(rhs)
            Rdx = system.Rmul(dx)
            dsp, dsm = -Rdx, Rdx
            return dx, dsp, dsm, (rcp - lp * dsp) / sp_, (rcm - lm * dsm) / sm

        dx, dsp, dsm, dlp, dlm = direction(-sp_ * lp, -sm * lm)
        a = min(1.0, maxstep(sp_, dsp), maxstep(sm, dsm), maxstep(lp, dlp), maxstep(lm, dlm))
        mu_aff = ((sp_ + a * dsp) @ (lp + a * dlp) + (sm + a * dsm) @ (lm + a * dlm)) / (2 * m)
        sigma = min(1.0, (mu_aff / mu) ** 3) if mu > 0 else 0.0
        dx, dsp2, dsm2, dlp2, dlm2 = direction(sigma * mu - sp_ * lp - dsp * dlp, sigma * mu - sm * lm - dsm * dlm)
        # fraction to the boundary 0.995: keeps slacks and multipliers strictly positive
        a = min(1.0, 0.995 * min(maxstep(sp_, dsp2), maxstep(sm, dsm2), maxstep(lp, dlp2), maxstep(lm, dlm2)))
        if not np.all(np.isfinite(dx)):
            stopped = "nonfinite"
            break
        xi = xi + a * dx
        sp_, sm = sp_ + a * dsp2, sm + a * dsm2
        lp, lm = lp + a * dlp2, lm + a * dlm2
        if check is not None and check(it, xi, lp - lm):
            stopped = "converged"
            break
    return _IPMResult(xi, lp - lm, it, stopped)


# =============================================================================================
# Two-layer, squared loss: banded dual, active-set polish
# =============================================================================================


def _second_difference(u: np.ndarray) -> sp.csr_matrix:
    r"""``B`` with :math:`V = Bh`: the group sums V of the dual point whose ramp correlations
    are :math:`h = (h_1, ..., h_{p-1})` (:math:`h_p = 0`, zero slope left of :math:`u_1`).
    :math:`V_k` is the slope change of the piecewise-linear :math:`H(t)` at :math:`u_k`."""
    p = u.size
    d = np.diff(u)
    nh = p - 1
    k = np.arange(nh)
    S = sp.coo_matrix((np.r_[-1.0 / d, 1.0 / d[:-1]], (np.r_[k, k[:-1]], np.r_[k, k[:-1] + 1])),
                      shape=(nh, nh)).tocsr()
    D = sp.diags([np.ones(nh), -np.ones(nh)], [0, -1], shape=(p, nh)).tocsr()
    return (D @ S).tocsr()


@dataclass
class _Problem:
    """A two-layer 1-D problem in normalized coordinates (u in [-1, 1], ybar scaled)."""

    u: np.ndarray
    w: np.ndarray
    ybar: np.ndarray
    beta: float
    rss0: float
    skip: bool
    B: sp.csr_matrix = None
    system: _BandArrowSystem = None

    def build(self) -> "_Problem":
        p = self.u.size
        B = _second_difference(self.u)
        nb = p - 2
        if self.skip:
            Bv = B[:, 1:]
            k = np.arange(nb)
            alpha = np.ones(nb)
            E = np.zeros((nb, 0))
        else:
            perm = np.r_[np.arange(1, p - 1), 0]
            Bv = B[:, perm]
            # rows: right ramp at u_1 (h_1), right ramps at u_2..u_{p-1} (h_j),
            # left ramps at u_2..u_{p-1} (h_j - h_1)
            k = np.r_[-1, np.arange(nb), np.arange(nb)]
            alpha = np.r_[0.0, np.ones(nb), np.ones(nb)]
            E = np.r_[1.0, np.zeros(nb), -np.ones(nb)].reshape(-1, 1)
        self.B = sp.csr_matrix(Bv)
        self.system = _AugmentedSystem(self.B, self.w, self.ybar, self.beta, arrow=not self.skip)
        return self

    def h_full(self, xi: np.ndarray) -> np.ndarray:
        """Correlations ``h_1..h_p`` (with ``h_p = 0``) from the IPM variables."""
        p = self.u.size
        h = np.zeros(p)
        nb = p - 2
        h[1:p - 1] = xi[:nb]
        if not self.skip:
            h[0] = xi[nb]
        return h

    # --- exact values at the group level ------------------------------------------------
    def primal(self, g: np.ndarray) -> float:
        fit = 0.5 * float(np.sum(self.w * (g - self.ybar) ** 2)) + self.rss0
        return fit + self.beta * spline_cost(self.u, g, skip=self.skip)

    def dual(self, V: np.ndarray) -> float:
        """Best proven dual value along the ray ``t V`` (V: group sums; equalities imposed)."""
        V = self._equalize(V)
        c = _c_two_layer(self.u, V, skip=self.skip)
        A = float(V @ self.ybar)
        Bq = float(np.sum(V * V / self.w))
        if Bq == 0.0:
            return self.rss0
        tmax = np.inf if c == 0 else self.beta / c
        t = min(max(A / Bq, 0.0), tmax)
        return self.rss0 + t * A - 0.5 * t * t * Bq

    def _equalize(self, V: np.ndarray) -> np.ndarray:
        """Project the per-sample dual point onto sum v = 0 (and x^T v = 0 with skip)."""
        V = V - self.w * (np.sum(V) / np.sum(self.w))
        if self.skip:
            xc = self.u - np.sum(self.w * self.u) / np.sum(self.w)
            den = float(np.sum(self.w * xc * xc))
            if den > 0:
                V = V - self.w * xc * (float(V @ xc) / den)
        return V

    def multiplier_fit(self, z: np.ndarray) -> np.ndarray:
        """Fit of the Lasso with the IPM multipliers as coefficients, best constant added."""
        p = self.u.size
        zr, zl = np.zeros(p), np.zeros(p)
        nb = p - 2
        if self.skip:
            zr[1:p - 1] = z
        else:
            zr[0] = z[0]
            zr[1:p - 1] = z[1:nb + 1]
            zl[1:p - 1] = z[nb + 1:]
        F = _ramp_sums(self.u, zr, zl)
        if self.skip:
            # best line added
            X1 = np.stack([np.ones(p), self.u], axis=1)
            coef = np.linalg.lstsq(X1 * np.sqrt(self.w)[:, None], np.sqrt(self.w) * (self.ybar - F), rcond=None)[0]
            return F + X1 @ coef
        return F + np.sum(self.w * (self.ybar - F)) / np.sum(self.w)


def _ramp_sums(u: np.ndarray, zr: np.ndarray, zl: np.ndarray) -> np.ndarray:
    r""":math:`F_k = \sum_j zr_j (u_k - u_j)_+ + zl_j (u_j - u_k)_+` in :math:`O(p)` (the same
    stable recursion as :func:`_ramp_correlations`, run forwards and backwards)."""
    d = np.diff(u)
    cz = np.cumsum(zr)[:-1]          # slope of the right-ramp part on (u_k, u_{k+1})
    Fr = np.concatenate([[0.0], np.cumsum(d * cz)])
    rz = np.cumsum(zl[::-1])[::-1][1:]  # minus slope of the left-ramp part on (u_k, u_{k+1})
    Fl = np.concatenate([np.cumsum((d * rz)[::-1])[::-1], [0.0]])
    return Fr + Fl


def _refit(prob: _Problem, K: np.ndarray, sig: np.ndarray, regime: str, sS: float) -> np.ndarray:
    r"""Exact minimizer of :math:`\tfrac12\|g-\bar y\|_W^2 + \beta L(g)` over linear splines with
    knots ``K`` (indices of interior points) when the cost is linear there:
    regime ``"A"``: :math:`L = \sum_j \sigma_j\gamma_j` (:math:`R = T`);
    regime ``"B"``: :math:`L = \tfrac12\sum_j\sigma_j\gamma_j + \tfrac12 s_S (s_1 + s_{p-1})`.
    In the hat-function basis the normal equations are tridiagonal."""
    u, w, yb, beta = prob.u, prob.w, prob.ybar, prob.beta
    p = u.size
    knots = np.unique(np.concatenate([[0], K, [p - 1]])).astype(int)
    sigfull = np.zeros(p)
    sigfull[K] = sig
    U = u[knots]
    nk = knots.size
    seg = np.minimum(np.searchsorted(knots, np.arange(p), side="right") - 1, nk - 2)
    th = (u - U[seg]) / (U[seg + 1] - U[seg])
    a, b = 1.0 - th, th
    diag = np.bincount(seg, w * a * a, nk) + np.bincount(seg + 1, w * b * b, nk)
    off = np.bincount(seg, w * a * b, nk - 1)
    rhs = np.bincount(seg, w * a * yb, nk) + np.bincount(seg + 1, w * b * yb, nk)
    dU = np.diff(U)
    half = 1.0 if regime == "A" else 0.5
    wint = half * sigfull[knots[1:-1]]
    cs = np.zeros(nk - 1)  # L = sum_m cs_m * slope_m
    if nk > 2:
        cs[:-1] -= wint
        cs[1:] += wint
    if regime == "B":
        cs[0] += 0.5 * sS
        cs[-1] += 0.5 * sS
    lc = np.zeros(nk)
    lc[1:] += cs / dU
    lc[:-1] -= cs / dU
    ab = np.zeros((2, nk))
    ab[0, 1:] = off
    ab[1] = diag
    c = sla.solveh_banded(ab, rhs - beta * lc, check_finite=False)
    return c[seg] * a + c[seg + 1] * b


def _polish(prob: _Problem, h: np.ndarray, *, tol: float, rounds: int = 6,
            act_tol: float = 1e-5) -> tuple[np.ndarray, float, float] | None:
    r"""Active-set refinement.  The constraints that the IPM's dual point nearly saturates
    give the kinks and their signs; :func:`_refit` solves the resulting linear system
    exactly; the exact dual constraint of the refit's residual then adds violated kinks
    and drops kinks whose slope change has the wrong sign (a primal--dual active-set
    step), for a few rounds.  Returns the best ``(g, P, D)`` found (exact values)."""
    u, beta = prob.u, prob.beta
    p = u.size
    if p <= 2:
        return None
    regimes: list[tuple[str, float]]
    if prob.skip:
        regimes = [("A", 0.0)]
    else:
        sh1 = 1.0 if h[0] >= 0 else -1.0
        if abs(h[0]) >= 0.5 * beta:
            regimes = [("B", sh1), ("A", 0.0), ("B", -sh1)]
        else:
            regimes = [("A", 0.0), ("B", sh1), ("B", -sh1)]
    best = None
    for regime, sS in regimes:
        hh = h
        keep = None
        for _ in range(rounds):
            hj = hh[1:p - 1]
            lj = hj - hh[0]
            if prob.skip:
                lj = hj
            if keep is None:
                act = (np.abs(hj) >= beta * (1 - act_tol)) | (np.abs(lj) >= beta * (1 - act_tol))
            else:
                # violated constraints join; 1e-12: ignore violations at rounding level
                act = keep | (np.abs(hj) > beta * (1 + 1e-12)) | (np.abs(lj) > beta * (1 + 1e-12))
            sgn = np.where(np.abs(hj) >= np.abs(lj), np.sign(hj), np.sign(lj))
            K = np.nonzero(act)[0] + 1
            try:
                g = _refit(prob, K, sgn[act], regime, sS)
            except (np.linalg.LinAlgError, ValueError):
                break
            if not np.all(np.isfinite(g)):
                break
            V = prob._equalize(prob.w * (prob.ybar - g))
            P = prob.primal(g)
            D = prob.dual(V)
            if best is None or P - D < best[1] - best[2]:
                best = (g, P, D)
            if P - D <= tol * max(abs(P), _EPS):
                return best
            gam = np.diff(_slopes(u, g))
            keep = np.zeros(p - 2, dtype=bool)
            keep[K - 1] = gam[K - 1] * sgn[K - 1] > 0
            hh, _ = _ramp_correlations(u, V)
            hh = hh.astype(float)
    return best


@dataclass
class _TwoLayerResult:
    g: np.ndarray            # fitted values at the distinct points (original units)
    grouped: _Grouped
    P: float                 # objective of the spline (original units, group-level)
    D: float                 # proven lower bound (original units, group-level)
    info: dict = field(default_factory=dict)


def _normalize(gr: _Grouped, beta: float, skip: bool) -> tuple[_Problem, float, float, float]:
    u = gr.u
    cx = 0.5 * (u[0] + u[-1])
    sx = 0.5 * (u[-1] - u[0])
    sy = float(np.sqrt(np.sum(gr.w * (gr.ybar - np.sum(gr.w * gr.ybar) / np.sum(gr.w)) ** 2) / np.sum(gr.w)))
    sy = sy if sy > 0 else 1.0
    # ramps scale by sx and values by sy: the problem at (u', y') has beta' = beta/(sx sy)
    prob = _Problem((u - cx) / sx, gr.w, gr.ybar / sy, beta / (sx * sy), gr.rss0 / sy ** 2, skip)
    return prob, cx, sx, sy


def _solve_two_layer(x: np.ndarray, y: np.ndarray, beta: float, *, skip: bool = False, tol: float = DEFAULT_TOL,
                     max_iter: int = 200, grouped: _Grouped | None = None) -> _TwoLayerResult:
    """Optimal fitted values of the two-layer problem (squared loss) at the distinct points."""
    gr = grouped if grouped is not None else _group(x, y)
    p = gr.p
    info: dict[str, Any] = {"distinct_points": p, "ipm_iterations": 0, "polish": False}
    # constant fit: optimal iff the centered labels are dual feasible (then R = 0 is optimal)
    if p == 1 or (skip and p == 2):
        g = _trivial_fit(gr, skip)
        P = D = gr.rss0 + 0.5 * float(np.sum(gr.w * (g - gr.ybar) ** 2))
        info["stopped"] = "closed form"
        return _TwoLayerResult(g, gr, P, D, info)
    prob, cx, sx, sy = _normalize(gr, beta, skip)
    g0 = _trivial_fit(gr, skip) / sy
    V0 = prob._equalize(prob.w * (prob.ybar - g0))
    if _c_two_layer(prob.u, V0, skip=skip) <= prob.beta:
        P = prob.primal(g0)
        info["stopped"] = "closed form (beta above the largest dual-constraint value: no kinks)"
        return _TwoLayerResult(g0 * sy, gr, P * sy ** 2, prob.dual(V0) * sy ** 2, info)
    prob.build()
    best: dict[str, Any] = {"gap": np.inf}
    scale = max(abs(prob.primal(g0)), _EPS)

    def consider(g, P, D, source):
        if P - D < best["gap"]:
            best.update(g=g, P=P, D=D, gap=P - D, source=source)

    def check(it, xi, z):
        h = prob.h_full(xi)
        V = prob.B @ xi
        D_ipm = prob.dual(V)
        F = prob.multiplier_fit(z)
        P_ipm = prob.primal(F)
        consider(F, P_ipm, D_ipm, "ipm")
        # polish once the interior-point gap is small enough to identify the kinks
        # (1e-3 relative: the support is usually stable well before that)
        if P_ipm - D_ipm <= 1e-3 * max(abs(P_ipm), _EPS):
            res = _polish(prob, h, tol=tol)
            if res is not None:
                consider(*res, "polish")
        return best["gap"] <= tol * max(abs(best["P"]), _EPS)

    # mu0: complementarity of the order of the objective per constraint
    mu0 = scale / (2 * prob.system.m)
    res = _mehrotra(prob.system, mu0=mu0, max_iter=max_iter, check=check)
    info.update(ipm_iterations=res.iterations, stopped=res.stopped, source=best.get("source"))
    info["polish"] = best.get("source") == "polish"
    return _TwoLayerResult(best["g"] * sy, gr, best["P"] * sy ** 2, best["D"] * sy ** 2, info)


def _trivial_fit(gr: _Grouped, skip: bool) -> np.ndarray:
    """Best constant (or best line with ``skip``) at the group level."""
    if skip and gr.p >= 2:
        X1 = np.stack([np.ones(gr.p), gr.u], axis=1)
        sw = np.sqrt(gr.w)
        coef = np.linalg.lstsq(X1 * sw[:, None], sw * gr.ybar, rcond=None)[0]
        return X1 @ coef
    return np.full(gr.p, np.sum(gr.w * gr.ybar) / np.sum(gr.w))
