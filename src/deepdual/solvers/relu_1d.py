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
The dual is a box-constrained QP in the ramp correlations
:math:`h_j = \sum_k V_k (u_k - u_j)_+` (group sums :math:`V = Bh`, a banded second
difference), with the constraints :math:`|h_j| \le \beta`, :math:`|h_j - h_1| \le \beta`.
Fixing the one coupled coordinate :math:`h_1 = \tau` leaves a box QP whose primal is a
weighted l1 trend filter :math:`J_\tau` (kinks cost :math:`\min(\beta, \beta\pm\tau)`, plus
:math:`\tau` times the first slope); the optimum is :math:`\max_\tau \min_g J_\tau`, concave
in :math:`\tau`, found by a root search on its derivative.  Each :math:`J_\tau` is minimized
exactly by a primal active-set method (feature-sign search) whose steps are tridiagonal
spline refits, warm-started by a few Mehrotra interior-point iterations that solve the
quasi-definite augmented (banded) Newton system.  Every step costs :math:`O(n)`.  The final
network is certified by the exact dual constraint of its own residual, and the solver
stops on that duality gap (``docs/one_dimensional.md`` §5).

Deeper networks
---------------
For ``depth >= 3`` (option ``architecture="linear_on_data"``, the only one accepted)
the solver returns the best network among those whose layers after the first act
linearly on the data (the structure of the paper's optimal solutions).  Within that class the problem is
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
from scipy.special import expit

from .._threads import SingleThreadedBLAS
from .._validation import check_beta, check_finite, check_options, check_positive, check_targets
from ..losses import CrossEntropyLoss, HingeLoss, Loss, LogisticLoss, SquaredLoss, get_loss
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


def _compensated_cumsum(a: np.ndarray) -> np.ndarray:
    r"""Cumulative sums with Kahan compensation, vectorized over blocks of about
    :math:`\sqrt n` entries (the loop runs over positions within a block), then block offsets
    by the same routine.  Every partial sum errs by at most about :math:`4\epsilon\sum|a|`
    (Kahan's bound :math:`2\epsilon + O(n\epsilon^2)` per level, plus one addition of the
    offset), independently of n to first order."""
    n = a.size
    if n <= 64:
        out = np.empty_like(a)
        acc = a.dtype.type(0)
        comp = a.dtype.type(0)
        for i in range(n):
            yv = a[i] - comp
            t = acc + yv
            comp = (t - acc) - yv
            acc = t
            out[i] = acc
        return out
    bs = max(1, math.isqrt(n))
    nblk = -(-n // bs)
    pad = np.zeros(nblk * bs, dtype=a.dtype)
    pad[:n] = a
    blocks = pad.reshape(nblk, bs)
    within = np.empty_like(blocks)
    acc = np.zeros(nblk, dtype=a.dtype)
    comp = np.zeros(nblk, dtype=a.dtype)
    for j in range(bs):
        yv = blocks[:, j] - comp
        t = acc + yv
        comp = (t - acc) - yv
        acc = t
        within[:, j] = acc
    offsets = np.concatenate([np.zeros(1, dtype=a.dtype), _compensated_cumsum(within[:, -1])[:-1]])
    return (within + offsets[:, None]).reshape(-1)[:n]


def _ramp_correlations(u: np.ndarray, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""``h[j] = sum_k V_k (u_k - u_j)_+`` for j = 0..p-1 and the suffix sums
    ``S[j] = sum_{k >= j} V_k``, from :math:`h_j = h_{j+1} + (u_{j+1}-u_j) S_{j+1}` in
    extended precision with compensated summation (:func:`_rounding_slack` bounds the
    error)."""
    Vl = np.asarray(V, dtype=_LD)
    S = _compensated_cumsum(Vl[::-1])[::-1]
    d = np.diff(np.asarray(u, dtype=_LD))
    inc = d * S[1:]
    h = np.concatenate([_compensated_cumsum(inc[::-1])[::-1], np.zeros(1, dtype=_LD)])
    return h, S


def _rounding_slack(u: np.ndarray, V: np.ndarray) -> float:
    r"""A bound on the rounding error of :func:`_ramp_correlations`: the suffix sums err by at
    most :math:`6\epsilon\sum|V|` (two compensated levels), the products
    :math:`\Delta_k S_{k+1}` by one more rounding, and the second sum by at most
    :math:`6\epsilon\sum_k\Delta_k|S_{k+1}| \le 6\epsilon(u_p - u_1)\sum|V|`;
    :math:`\epsilon` is the extended-precision unit roundoff.  Doubled for safety."""
    if u.size <= 1:
        return 0.0
    return 2.0 * 16.0 * _LD_EPS * float(np.sum(np.abs(V))) * float(u[-1] - u[0])


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


class _BoxSystem:
    r"""Newton systems of the box-constrained two-layer dual in the correlations
    :math:`h_2, \dots, h_{p-1}` (with :math:`h_1` fixed), :math:`|h_j| \le \beta`.

    The normal-equation matrix :math:`Q + \Sigma` with :math:`Q = B^TW^{-1}B` (a discretized
    fourth-order operator, condition number :math:`\sim p^4`) loses all accuracy when
    few constraints are active, so each Newton system is solved through the equivalent
    quasi-definite augmented system

    .. math::  \begin{pmatrix}\Sigma & -B^T\\ -B & -W\end{pmatrix}
               \begin{pmatrix}\Delta h\\ \Delta\nu\end{pmatrix} =
               \begin{pmatrix} r\\ 0\end{pmatrix},

    (:math:`\Sigma` the diagonal barrier Hessian), whose conditioning is that of :math:`B`.
    Interleaving :math:`\nu_k` and :math:`h_k` makes it banded (3 sub- and super-diagonals);
    it is factored by banded LU with partial pivoting (LAPACK ``gbtrf``): :math:`O(p)`.
    """

    def __init__(self, B: sp.csr_matrix, w: np.ndarray, b: np.ndarray, beta: float):
        p = w.size
        nb = B.shape[1]
        self.Q = (B.T @ sp.diags(1.0 / w) @ B).tocsr()
        self.b = np.asarray(b, float)
        self.n = self.m = nb
        self.e = np.full(nb, beta)
        self.w = w
        self.N = p + nb
        # interleaved positions: nu_0 -> 0, nu_k -> 2k-1 (k >= 1), h-variable j -> 2j+2
        self.pos_nu = np.r_[0, 2 * np.arange(1, p) - 1]
        self.pos_h = 2 * np.arange(nb) + 2
        self.kl = self.ku = 3
        Bc = B.tocoo()
        self.B_rows, self.B_cols, self.B_vals = Bc.row, Bc.col, Bc.data

    def Qmul(self, xi):
        return self.Q @ xi

    def Rmul(self, xi):
        return xi

    def Rtmul(self, y):
        return y

    def factor(self, delta: np.ndarray):
        kl, ku, N = self.kl, self.ku, self.N
        if not hasattr(self, "_ab0"):
            ab = np.zeros((2 * kl + ku + 1, N))
            ab[kl + ku, self.pos_nu] = -self.w
            pi, pj = self.pos_nu[self.B_rows], self.pos_h[self.B_cols]
            ab[kl + ku + pi - pj, pj] = -self.B_vals
            ab[kl + ku + pj - pi, pi] = -self.B_vals
            self._ab0 = ab
        ab = self._ab0.copy()
        ab[kl + ku, self.pos_h] = delta
        lu, piv, info = sla.lapack.dgbtrf(ab, kl, ku, overwrite_ab=True)
        if info != 0:
            raise np.linalg.LinAlgError("banded LU failed")

        def solve(rhs):
            r = np.zeros(N)
            r[self.pos_h] = rhs
            x, inf = sla.lapack.dgbtrs(lu, kl, ku, r, piv)
            if inf != 0:
                raise np.linalg.LinAlgError("banded solve failed")
            return x[self.pos_h]

        return solve


@dataclass
class _IPMResult:
    xi: np.ndarray
    z: np.ndarray  # atom coefficients (multipliers lambda+ - lambda-)
    iterations: int
    stopped: str


def _mehrotra(system, *, mu0: float, max_iter: int, check=None) -> _IPMResult:
    r"""Mehrotra predictor--corrector for :math:`\min \tfrac12\xi^TQ\xi - b^T\xi` subject to
    :math:`-e \le R\xi \le e`, started at the strictly feasible :math:`\xi = 0`.

    Newton steps keep :math:`R\xi + s^+ = e` and :math:`-R\xi + s^- = e` (they are linear),
    so the iterates stay feasible up to rounding.  ``check(it, xi, z)`` may stop the loop
    by returning True; ``z = lambda+ - lambda-`` are the multipliers of the constraints
    (the coefficients of the primal Lasso).
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
        if not (np.all(np.isfinite(dx)) and np.isfinite(a)):
            stopped = "nonfinite"
            break
        xi = xi + a * dx
        sp_, sm = sp_ + a * dsp2, sm + a * dsm2
        lp, lm = lp + a * dlp2, lm + a * dlm2
        if check is not None and check(it, xi, lp - lm):
            stopped = "check"
            break
    return _IPMResult(xi, lp - lm, it, stopped)


# =============================================================================================
# Two-layer, squared loss
# =============================================================================================


def _second_difference(u: np.ndarray) -> sp.csr_matrix:
    r"""``B`` with :math:`V = Bh`: the group sums V of the dual point whose ramp correlations
    are :math:`h = (h_1, ..., h_{p-1})` (:math:`h_p = 0`, zero slope left of :math:`u_1`).
    :math:`V_k` is the slope change at :math:`u_k` of the piecewise-linear
    :math:`H(t) = \sum_k V_k (u_k - t)_+`, and :math:`(B^Tg)_j` is the slope change of
    ``g`` at :math:`u_j` (interior j) or its first slope (j = 1)."""
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
    """A two-layer 1-D problem (squared loss, group level): distinct points ``u``, weights
    ``w``, mean labels ``ybar`` (scaled by a power of two), ``rss0`` the tie constant."""

    u: np.ndarray
    w: np.ndarray
    ybar: np.ndarray
    beta: float
    rss0: float
    skip: bool

    @property
    def p(self) -> int:
        return self.u.size

    def equalize(self, V: np.ndarray) -> np.ndarray:
        """Project the per-sample dual point onto sum v = 0 (and x^T v = 0 with skip)."""
        V = V - self.w * (np.sum(V) / np.sum(self.w))
        if self.skip:
            xc = self.u - np.sum(self.w * self.u) / np.sum(self.w)
            den = float(np.sum(self.w * xc * xc))
            if den > 0:
                V = V - self.w * xc * (float(V @ xc) / den)
        return V

    def dual(self, V: np.ndarray) -> float:
        """Best proven dual value along the ray ``t V`` (V: group sums; equalities imposed).

        Per sample the dual point is :math:`v_i = y_i - \\bar y_{g(i)} + tV_g/w_g`, whose value
        is ``rss0 + t V.ybar - t^2/2 sum V^2/w``; feasible for ``t <= beta / c(V)``."""
        V = self.equalize(V)
        c = _c_two_layer(self.u, V, skip=self.skip)
        A = float(V @ self.ybar)
        Bq = float(np.sum(V * V / self.w))
        if Bq == 0.0:
            return self.rss0
        tmax = np.inf if c == 0 else self.beta / c
        t = min(max(A / Bq, 0.0), tmax)
        return self.rss0 + t * A - 0.5 * t * t * Bq


@dataclass
class _KnotSpline:
    """A linear spline with knots at ``u[knots]`` (first and last point included)."""

    knots: np.ndarray
    c: np.ndarray

    def values(self, u: np.ndarray) -> np.ndarray:
        return np.interp(u, u[self.knots], self.c)

    def slopes(self, u: np.ndarray) -> np.ndarray:
        return np.diff(self.c) / np.diff(u[self.knots])

    def kinks(self, u: np.ndarray) -> np.ndarray:
        """Slope changes at the interior knots."""
        return np.diff(self.slopes(u))

    def on(self, u: np.ndarray, knots: np.ndarray) -> "_KnotSpline":
        """The same function with values at a superset of knots."""
        return _KnotSpline(knots, np.interp(u[knots], u[self.knots], self.c))


def _tau_weights(beta: float, tau: float) -> tuple[float, float]:
    """Costs of positive and negative kinks when the dual coordinate h_1 is fixed at tau."""
    return min(beta, beta + tau), min(beta, beta - tau)


def _tau_objective(prob: _Problem, sp_: _KnotSpline, tau: float) -> float:
    r""":math:`J_\tau(g) = \tfrac12\|g-\bar y\|_W^2 + \tau s_1(g) + \sum_j a\gamma_j^+ + b\gamma_j^-`."""
    a, b = _tau_weights(prob.beta, tau)
    g = sp_.values(prob.u)
    s = sp_.slopes(prob.u)
    gam = np.diff(s)
    fit = 0.5 * float(np.sum(prob.w * (g - prob.ybar) ** 2)) + prob.rss0
    return fit + tau * float(s[0]) + a * float(np.sum(np.maximum(gam, 0))) + b * float(np.sum(np.maximum(-gam, 0)))


def _refit(prob: _Problem, K: np.ndarray, theta: np.ndarray, tau: float) -> _KnotSpline:
    r"""Minimizer of :math:`J_\tau` over linear splines with interior knots ``K`` when the
    kink at ``K[m]`` has sign ``theta[m]`` (so the cost is linear):
    :math:`\tfrac12\|g-\bar y\|_W^2 + \tau s_1 + \sum_m c_m\theta_m\gamma_m`.  In the
    hat-function basis the normal equations are tridiagonal and well conditioned
    (:math:`W` plus a rank-deficient penalty of the knot values)."""
    u, w, yb = prob.u, prob.w, prob.ybar
    p = u.size
    a, b = _tau_weights(prob.beta, tau)
    knots = np.concatenate([[0], np.asarray(K, dtype=int), [p - 1]])
    U = u[knots]
    nk = knots.size
    seg = np.minimum(np.searchsorted(knots, np.arange(p), side="right") - 1, nk - 2)
    th = (u - U[seg]) / (U[seg + 1] - U[seg])
    lo, hi = 1.0 - th, th
    diag = np.bincount(seg, w * lo * lo, nk) + np.bincount(seg + 1, w * hi * hi, nk)
    off = np.bincount(seg, w * lo * hi, nk - 1)
    rhs = np.bincount(seg, w * lo * yb, nk) + np.bincount(seg + 1, w * hi * yb, nk)
    dU = np.diff(U)
    wt = np.where(np.asarray(theta) > 0, a, b) * np.asarray(theta, dtype=float)
    cs = np.zeros(nk - 1)  # linear cost = sum_m cs_m * slope_m
    if nk > 2:
        cs[:-1] -= wt
        cs[1:] += wt
    cs[0] += tau
    lc = np.zeros(nk)
    lc[1:] += cs / dU
    lc[:-1] -= cs / dU
    ab = np.zeros((2, nk))
    ab[0, 1:] = off
    ab[1] = diag
    c = sla.solveh_banded(ab, rhs - lc, check_finite=False)
    return _KnotSpline(knots, c)


@dataclass
class _TauSolution:
    spline: _KnotSpline
    theta: np.ndarray
    tau: float
    J: float
    iterations: int
    kkt: bool


def _kkt_violators(prob: _Problem, sp_: _KnotSpline, tau: float,
                   rel: float = 1e-12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Interior indices whose ramp correlation leaves [-b, a] (one per run, the worst),
    their signs, and the correlations h."""
    u, beta = prob.u, prob.beta
    a, b = _tau_weights(beta, tau)
    g = sp_.values(u)
    V = prob.w * (prob.ybar - g)
    V = V - prob.w * (np.sum(V) / np.sum(prob.w))
    h, _ = _ramp_correlations(u, V)
    hi_ = h[1:-1].astype(float)
    # stop chasing violations below: rel * beta (a dual point scaled by 1/(1 + rel) is feasible,
    # so the certificate loses about rel relative),
    # the proven rounding bound of the correlations, and the typical rounding noise of
    # V = W(ybar - g) propagated through the ramps (sqrt(p) eps per unit of |W ybar|)
    kappa = (rel * beta + _rounding_slack(u, V)
             + 4 * _EPS * math.sqrt(u.size) * float(np.max(np.abs(prob.w * prob.ybar))) * (u[-1] - u[0]))
    viol = np.maximum(hi_ - a, -b - hi_)
    bad = viol > kappa
    bad[sp_.knots[1:-1] - 1] = False
    if not bad.any():
        return np.zeros(0, int), np.zeros(0), h
    idx = np.nonzero(bad)[0]
    # one index per run of consecutive violators: the most violated (a smooth bump of the
    # correlation over a run usually asks for one kink; more come back as violations)
    runs = np.split(idx, np.nonzero(np.diff(idx) > 1)[0] + 1)
    pick = np.array([r[np.argmax(viol[r])] for r in runs])
    signs = np.where(hi_[pick] > 0, 1.0, -1.0)
    return pick + 1, signs, h


def _feature_sign(prob: _Problem, tau: float, K0: np.ndarray, theta0: np.ndarray, *,
                  max_iter: int = 2000, kkt_tol: float = 1e-12) -> _TauSolution:
    r"""Exact minimizer of :math:`J_\tau` by a primal active-set method (feature-sign search,
    Lee et al. 2007).

    The iterate is a spline whose kinks have the signs ``theta``.  Each step solves the
    problem with the current knots and signs (:func:`_refit`, linear cost).  If a kink of
    that solution has the wrong sign, the step goes to the best sign change along the
    segment (the true objective is convex along it and equals the linearized one up to
    the first sign change, so it decreases) and the kinks that reach zero leave.  If all
    signs agree, the exact dual correlations either prove optimality or give new kinks
    (the most violated point of each run of violations) with the sign of the violation.
    """
    u = prob.u
    p = u.size

    def on(sp_: _KnotSpline, K: np.ndarray) -> _KnotSpline:
        knots = np.concatenate([[0], K, [p - 1]]).astype(int)
        return _KnotSpline(knots, np.interp(u[knots], u[sp_.knots], sp_.c))

    cur = _refit(prob, np.zeros(0, int), np.zeros(0), tau)
    Jcur = _tau_objective(prob, cur, tau)
    K = np.asarray(K0, dtype=int)
    theta = np.asarray(theta0, dtype=float)
    order = np.argsort(K)
    K, theta = K[order], theta[order]
    single = False  # after a multi-point addition failed: add one violator at a time
    added = np.zeros(0, int)
    it, kkt = 0, False
    while it < max_iter:
        it += 1
        new = _refit(prob, K, theta, tau)
        old = on(cur, K)
        gn, go = new.kinks(u), old.kinks(u)
        go[~np.isin(K, cur.knots[1:-1])] = 0.0  # no knot there: the kink is exactly zero
        bad = theta * gn < 0
        if not bad.any():
            cur, Jcur = new, _tau_objective(prob, new, tau)
            addK, adds, _ = _kkt_violators(prob, cur, tau, kkt_tol)
            if addK.size == 0:
                kkt = True
                break
            if single:
                # one violator with the sign of its violation: its refit sign is then correct
                # (the reduced objective decreases in that direction), so the step makes progress
                pick = np.argmax(np.abs(_kkt_violation_size(prob, cur, tau, addK)))
                addK, adds = addK[pick:pick + 1], adds[pick:pick + 1]
                single = False
            added = addK
            K = np.concatenate([K, addK])
            theta = np.concatenate([theta, adds])
            order = np.argsort(K)
            K, theta = K[order], theta[order]
            continue
        stuck = bad & (go == 0)
        if stuck.any():
            # new kinks whose refit sign disagrees with their violation (several added at
            # once interact): drop them; if that leaves none of the batch, add singly next
            K, theta = K[~stuck], theta[~stuck]
            if not np.isin(added, K).any():
                single = True
            continue
        # aggressive trial: drop every wrong-signed kink and refit (a few rounds); accepted
        # only if sign-consistent and strictly better, so J still decreases strictly and no
        # (knots, signs) configuration repeats: finite termination is kept
        Kt, tht = K[~bad], theta[~bad]
        for _ in range(4):
            trial = _refit(prob, Kt, tht, tau)
            badt = tht * trial.kinks(u) < 0
            if not badt.any():
                break
            Kt, tht = Kt[~badt], tht[~badt]
        if not badt.any():
            Jt = _tau_objective(prob, trial, tau)
            if Jt < Jcur:
                cur, Jcur, K, theta = trial, Jt, Kt, tht
                continue
        tb = go[bad] / (go[bad] - gn[bad])
        bestJ, bestt = Jcur, 0.0
        for t in np.unique(np.concatenate([tb[(tb > 0) & (tb < 1)], [1.0]])):
            Jt = _tau_objective(prob, _KnotSpline(new.knots, old.c + t * (new.c - old.c)), tau)
            if Jt < bestJ:
                bestJ, bestt = Jt, float(t)
            elif Jt > bestJ:
                break  # J is convex along the segment
        if bestt == 0.0:
            break  # rounding stall; the caller certifies what it gets
        trial = _KnotSpline(new.knots, old.c + bestt * (new.c - old.c))
        gc = trial.kinks(u)
        # kinks at zero leave: the one(s) whose sign change was chosen, and any at the
        # rounding level of an interpolated kink (1e-12 relative)
        keep = np.abs(gc) > 1e-12 * max(float(np.max(np.abs(gc))), _EPS)
        hit = np.nonzero(bad)[0][tb == bestt]
        keep[hit] = False
        K, theta = K[keep], np.sign(gc[keep])
        cur = on(trial, K)
        Jcur = _tau_objective(prob, cur, tau)
    return _TauSolution(cur, theta, tau, Jcur, it, kkt)


def _ipm_start(prob: _Problem, tau: float = 0.0, *, max_iter: int = 40) -> tuple[np.ndarray, np.ndarray, int]:
    r"""Kinks and signs from a few interior-point iterations on the box-constrained dual of
    :math:`J_\tau`: :math:`\max \bar y^TV - \tfrac12 V^TW^{-1}V` with :math:`h_1 = \tau` and
    :math:`-b \le h_j \le a` (interior j).  Only a warm start for :func:`_feature_sign`;
    stops once the multipliers' objective is within 1e-3 of the dual value (relative;
    enough to place most kinks) or the gap stops halving."""
    p = prob.p
    a, b = _tau_weights(prob.beta, tau)
    Bfull = _second_difference(prob.u)
    B, B1 = Bfull[:, 1:], np.asarray(Bfull[:, 0].toarray()).ravel()
    mid, half = 0.5 * (a - b), 0.5 * (a + b)
    V0 = B @ np.full(B.shape[1], mid) + B1 * tau        # V at the box centre
    system = _BoxSystem(B, prob.w, B.T @ (prob.ybar - V0 / prob.w), half)
    scale = max(0.5 * float(np.sum(prob.w * (prob.ybar - np.average(prob.ybar, weights=prob.w)) ** 2)), _EPS)
    state = {"best": np.inf, "z": None, "h": None, "stall": 0}

    def check(it, xi, z):
        V = V0 + B @ xi
        D = float(V @ prob.ybar) - 0.5 * float(np.sum(V * V / prob.w))
        zr = np.zeros(p)
        zr[1:p - 1] = z
        F = _ramp_sums(prob.u, zr, np.zeros(p))
        F = F + _wls_line(prob.u, prob.w, prob.ybar - F, tau)
        s1 = (F[1] - F[0]) / (prob.u[1] - prob.u[0])
        P = (0.5 * float(np.sum(prob.w * (F - prob.ybar) ** 2)) + tau * s1
             + a * float(np.sum(np.maximum(z, 0))) + b * float(np.sum(np.maximum(-z, 0))))
        gap = (P - D) / scale
        if gap < state["best"] * 0.5:
            state["stall"] = 0
        else:
            state["stall"] += 1
        if gap < state["best"]:
            state.update(best=gap, z=z.copy(), h=mid + xi)
        # 1e-3: enough to place most kinks; 4 iterations without halving the gap: stalled
        return gap <= 1e-3 or state["stall"] >= 4

    res = _mehrotra(system, mu0=scale / (2 * system.m), max_iter=max_iter, check=check)
    z = state["z"] if state["z"] is not None else res.z
    h = state["h"] if state["h"] is not None else mid + res.xi
    zmax = float(np.max(np.abs(z))) if z.size else 0.0
    # kinks: multipliers above 1e-6 of the largest whose bound is nearly active (1e-3 of the box)
    near = np.where(z > 0, h >= a - 1e-3 * half, h <= -b + 1e-3 * half)
    sel = (np.abs(z) > 1e-6 * zmax) & near
    # the interior-point iterate smears an isolated kink over neighbouring points: keep the
    # local maxima of |z| (kinks dropped here come back as violations)
    az = np.abs(z)
    left = np.r_[-np.inf, az[:-1]]
    right = np.r_[az[1:], -np.inf]
    sel &= (az >= left) & (az >= right)
    K = np.nonzero(sel)[0] + 1
    return K, np.sign(z[sel]), res.iterations


def _wls_line(u: np.ndarray, w: np.ndarray, r: np.ndarray, tau: float = 0.0) -> np.ndarray:
    r"""The line :math:`c_0 + c_1 u` minimizing :math:`\tfrac12\|c_0 + c_1u - r\|_W^2 + \tau c_1`,
    evaluated at ``u``."""
    um = np.average(u, weights=w)
    rm = np.average(r, weights=w)
    xc = u - um
    den = float(np.sum(w * xc * xc))
    slope = (float(np.sum(w * xc * (r - rm))) - tau) / den if den > 0 else 0.0
    return rm + slope * xc


@dataclass
class _TwoLayerResult:
    """Optimal two-layer fit: a spline with knots ``tk`` (original units, data points) and
    values ``ck``; ``g`` its values at the distinct points; exact ``P`` and proven ``D``."""

    tk: np.ndarray
    ck: np.ndarray
    g: np.ndarray
    grouped: _Grouped
    P: float
    D: float
    info: dict = field(default_factory=dict)


def _normalize(gr: _Grouped, beta: float, skip: bool) -> tuple[_Problem, float]:
    r"""Scale the labels by a power of two near their spread (exact in floating point):
    values scale by ``sy``, so the scaled problem has :math:`\beta' = \beta/s_y` and objective
    :math:`P/s_y^2`.  The inputs are left alone: every algorithm below uses only
    differences of ``u``, and an affine map of ``u`` would round, which near-interpolating
    splines (slopes ~ 1/spacing) amplify."""
    spread = float(np.sqrt(np.average((gr.ybar - np.average(gr.ybar, weights=gr.w)) ** 2, weights=gr.w)))
    sy = 2.0 ** round(math.log2(spread)) if spread > 0 else 1.0
    return _Problem(gr.u, gr.w, gr.ybar / sy, beta / sy, gr.rss0 / sy ** 2, skip), sy


def _tau_slope_derivative(prob: _Problem, sol: _TauSolution, side: float) -> float:
    r"""One-sided derivative of :math:`\Phi(\tau) = \min_g J_\tau(g)` at ``sol.tau``:
    :math:`s_1 - \sum\gamma^-` for :math:`\tau > 0` (or ``side > 0`` at 0),
    :math:`s_1 + \sum\gamma^+` for :math:`\tau < 0` (envelope theorem)."""
    s = sol.spline.slopes(prob.u)
    gam = np.diff(s)
    if side > 0:
        return float(s[0] - np.sum(np.maximum(-gam, 0)))
    return float(s[0] + np.sum(np.maximum(gam, 0)))


def _solve_two_layer(x: np.ndarray, y: np.ndarray, beta: float, *, skip: bool = False,
                     max_iter: int = 2000, tol: float = DEFAULT_TOL,
                     grouped: _Grouped | None = None) -> _TwoLayerResult:
    r"""Optimal two-layer network (squared loss) on 1-D data, as a spline with data knots.

    The base problem's dual has one coupled coordinate, :math:`h_1 = x^TV` (the correlation
    with the linear ramp).  Fixing :math:`h_1 = \tau` leaves a box-constrained dual whose
    primal is :math:`\Phi(\tau) = \min_g J_\tau(g)` (weighted kinks plus :math:`\tau s_1`),
    solved exactly by :func:`_feature_sign`; :math:`\Phi` is concave and the optimum is
    :math:`\max_{|\tau|\le\beta}\Phi(\tau)`, found by a root search on its derivative
    (``docs/one_dimensional.md`` §5).  With ``skip`` (free linear term) :math:`\tau = 0`.
    """
    from scipy.optimize import brentq

    gr = grouped if grouped is not None else _group(x, y)
    p = gr.p
    info: dict[str, Any] = {"distinct_points": p}
    base = _Problem(gr.u, gr.w, gr.ybar, beta, gr.rss0, skip)
    if p == 1 or (skip and p == 2):
        g = _trivial_fit(gr, skip)
        P = gr.rss0 + 0.5 * float(np.sum(gr.w * (g - gr.ybar) ** 2))
        info.update(stopped="closed form", tau=0.0)
        return _TwoLayerResult(gr.u.copy(), g.copy(), g, gr, P, P, info)
    # no kinks at all is optimal iff the residual of the best constant (line with skip) is
    # dual feasible: then return it exactly
    g0 = _trivial_fit(gr, skip)
    V0 = base.equalize(gr.w * (gr.ybar - g0))
    if _c_two_layer(gr.u, V0, skip=skip) <= beta:
        P = gr.rss0 + 0.5 * float(np.sum(gr.w * (g0 - gr.ybar) ** 2))
        info.update(stopped="closed form (no kinks)", tau=0.0, kinks=0)
        return _TwoLayerResult(gr.u[[0, -1]].copy(), g0[[0, -1]].copy(), g0, gr, P, base.dual(V0), info)
    prob, sy = _normalize(gr, beta, skip)
    if p > 2:
        K0, th0, ipm_it = _ipm_start(prob, 0.0)
    else:
        K0, th0, ipm_it = np.zeros(0, int), np.zeros(0), 0
    info["ipm_iterations"] = ipm_it
    # the active-set method stops when no correlation exceeds its bound by more than
    # tol/10 of beta: the certificate's relative gap is then about tol or less
    kkt_tol = min(0.1 * tol, 1e-3)
    sols = {0.0: _feature_sign(prob, 0.0, K0, th0, max_iter=max_iter, kkt_tol=kkt_tol)}
    best = sols[0.0]
    if not skip:
        dplus = _tau_slope_derivative(prob, best, +1)
        dminus = _tau_slope_derivative(prob, best, -1)
        if dplus > 0 or dminus < 0:
            sg = 1.0 if dplus > 0 else -1.0
            bp = prob.beta
            last = {"sol": best}

            def solve_at(t, K0=None, th0=None):
                s0 = last["sol"]
                if K0 is None:
                    K0, th0 = s0.spline.knots[1:-1], s0.theta
                sol = _feature_sign(prob, t, K0, th0, max_iter=max_iter, kkt_tol=kkt_tol)
                last["sol"] = sol
                return sol

            Ke, the, ite = _ipm_start(prob, sg * bp) if p > 2 else (np.zeros(0, int), np.zeros(0), 0)
            info["ipm_iterations"] += ite
            end = solve_at(sg * bp, Ke, the)
            dend = _tau_slope_derivative(prob, end, sg)
            if sg * dend >= 0:
                best = end
            else:
                # Phi' is continuous and monotone on (0, beta): a root exists; 4 eps: machine precision
                def dfun(t):
                    return _tau_slope_derivative(prob, solve_at(t), sg)

                lo, hi = (0.0, bp) if sg > 0 else (-bp, 0.0)
                tau_star = brentq(dfun, lo, hi, xtol=4 * _EPS * bp, rtol=4 * _EPS, maxiter=200)
                best = solve_at(tau_star)
    info.update(tau=best.tau * sy, active_set_iterations=best.iterations, kkt=best.kkt)
    # back to original units
    knots = best.spline.knots
    tk = gr.u[knots]
    ck = best.spline.c * sy
    g = np.interp(gr.u, tk, ck)
    fit = gr.rss0 + 0.5 * float(np.sum(gr.w * (g - gr.ybar) ** 2))
    P = fit + beta * spline_cost(tk, ck, skip=skip)
    D = base.dual(gr.w * (gr.ybar - g))
    info["kinks"] = int(knots.size - 2)
    return _TwoLayerResult(tk, ck, g, gr, P, D, info)


def _trivial_fit(gr: _Grouped, skip: bool) -> np.ndarray:
    """Best constant (or best line with ``skip``) at the group level."""
    if skip and gr.p >= 2:
        return _wls_line(gr.u, gr.w, gr.ybar)
    return np.full(gr.p, np.average(gr.ybar, weights=gr.w))


def _ramp_sums(u: np.ndarray, zr: np.ndarray, zl: np.ndarray) -> np.ndarray:
    r""":math:`F_k = \sum_j zr_j (u_k - u_j)_+ + zl_j (u_j - u_k)_+` in :math:`O(p)` (slopes on
    each segment accumulated forwards for right ramps, backwards for left ramps)."""
    d = np.diff(u)
    cz = np.cumsum(zr)[:-1]
    Fr = np.concatenate([[0.0], np.cumsum(d * cz)])
    rz = np.cumsum(zl[::-1])[::-1][1:]
    Fl = np.concatenate([np.cumsum((d * rz)[::-1])[::-1], [0.0]])
    return Fr + Fl


def _kkt_violation_size(prob: _Problem, sp_: _KnotSpline, tau: float, idx: np.ndarray) -> np.ndarray:
    """How far the ramp correlations at interior indices ``idx`` leave [-b, a]."""
    a, b = _tau_weights(prob.beta, tau)
    g = sp_.values(prob.u)
    V = prob.w * (prob.ybar - g)
    V = V - prob.w * (np.sum(V) / np.sum(prob.w))
    h, _ = _ramp_correlations(prob.u, V)
    hv = h[idx].astype(float)
    return np.maximum(hv - a, -b - hv)


# =============================================================================================
# Networks, objectives and certificates
# =============================================================================================


def _network_objective(net: Network, X: np.ndarray, Y: np.ndarray, beta: float, loss: Loss, *,
                       penalize_biases: bool = False) -> float:
    """:func:`deepdual.objective`, evaluated in row chunks when ``n x width`` is large (same
    formula; only the memory of the forward pass differs)."""
    width = sum(W.shape[1] for layers in net.weights for W in layers[:-1])
    if X.shape[0] * max(width, 1) <= 4_000_000:
        return _objective(net, X, Y, beta=beta, loss=loss, penalize_biases=penalize_biases)
    step = max(1, 4_000_000 // max(width, 1))
    F = np.concatenate([net.forward(X[i:i + step]) for i in range(0, X.shape[0], step)])
    return float(loss.value(F, Y)) + 0.5 * beta * net.squared_norm(include_biases=penalize_biases)


def _forward(net: Network, X: np.ndarray) -> np.ndarray:
    width = sum(W.shape[1] for layers in net.weights for W in layers[:-1])
    step = max(1, 4_000_000 // max(width, 1))
    return np.concatenate([net.forward(X[i:i + step]) for i in range(0, X.shape[0], step)])


def _equalize_dual(v: np.ndarray, x: np.ndarray, loss: Loss, *, skip: bool) -> np.ndarray | None:
    r"""Make the dual point orthogonal to the free output bias (:math:`\sum_i v_i = 0`, per output
    column) and, with ``skip``, to the free linear term (:math:`x^Tv = 0`).

    Squared loss: orthogonal projection (its conjugate is finite everywhere).  Losses
    whose conjugate domain is a box containing 0 per entry (logistic, hinge): shrink the
    entries of the larger-sum sign toward 0, which stays in the domain.  Returns None
    when no such correction is available (skip with such a loss)."""
    v = np.array(v, dtype=float, copy=True)
    if isinstance(loss, SquaredLoss):
        v -= v.mean(axis=0, keepdims=True)
        if skip:
            xc = x - x.mean()
            den = float(xc @ xc)
            if den > 0:
                v -= np.outer(xc, xc @ v) / den
        return v
    if skip:
        return None
    for k in range(v.shape[1]):
        col = v[:, k]
        s = col.sum()
        pos, neg = col[col > 0].sum(), -col[col < 0].sum()
        if s > 0 and pos > 0:
            col[col > 0] *= 1.0 - s / pos
        elif s < 0 and neg > 0:
            col[col < 0] *= 1.0 - (-s) / neg
    return v


def _c_columns(u: np.ndarray, inv: np.ndarray, v: np.ndarray, kind: str) -> float:
    """Dual-constraint value of a per-sample dual point with K columns (group sums first)."""
    p = u.size
    Vs = [np.bincount(inv, v[:, k], minlength=p) for k in range(v.shape[1])]
    if kind == "lipschitz":
        if len(Vs) == 1:
            return _c_lipschitz(u, Vs[0])
        # int ||G(t)|| dt with G the vector of suffix sums
        Ss = [(_ramp_correlations(u, V)[1][1:]).astype(float) for V in Vs]
        G = np.sqrt(np.sum(np.square(Ss), axis=0))
        return float(np.sum(G * np.diff(u))) + sum(_rounding_slack(u, V) for V in Vs)
    if kind == "penalized":
        if len(Vs) != 1:
            raise ValueError("penalized-bias certificates support one output column")
        return _c_penalized(u, Vs[0])
    if len(Vs) == 1:
        return _c_two_layer(u, Vs[0], skip=(kind == "skip"))
    H = np.array([_ramp_correlations(u, V)[0].astype(float) for V in Vs])  # (K, p)
    slack = sum(_rounding_slack(u, V) for V in Vs)
    c = np.max(np.linalg.norm(H, axis=0))
    if kind != "skip":
        c = max(c, np.max(np.linalg.norm(H - H[:, :1], axis=0)))
    return float(c) + slack


def _best_dual(v: np.ndarray, Y: np.ndarray, loss: Loss, tmax: float, *, out_bias_penalty: float = 0.0):
    r"""``max_{0 <= t <= tmax} D(t v) - t^2 pen`` with ``pen = out_bias_penalty`` (the
    penalized output bias term :math:`(\sum v)^2/(2\beta)`)."""
    if out_bias_penalty == 0.0:
        return loss.best_scale(v, Y, tmax)
    from scipy.optimize import minimize_scalar

    tmax = float(min(tmax, 1e300))
    if not getattr(loss, "unbounded_dual_scale", False):
        tmax = min(tmax, 1.0)

    def f(t):
        return loss.dual_value(t * v, Y) - t * t * out_bias_penalty

    if isinstance(loss, SquaredLoss):
        A = float(np.vdot(v, Y))
        Bq = float(np.vdot(v, v)) + 2.0 * out_bias_penalty
        t = min(max(A / Bq, 0.0), tmax) if Bq > 0 else 0.0
        return t, f(t)
    res = minimize_scalar(lambda t: -f(t), bounds=(0.0, tmax), method="bounded",
                          options={"xatol": 1e-12 * max(tmax, 1e-300)})
    cands = [(0.0, f(0.0)), (tmax, f(tmax)), (float(res.x), f(float(res.x)))]
    cands = [c for c in cands if np.isfinite(c[1])]
    return max(cands, key=lambda c: c[1])


def _dual_bound_two_layer(x: np.ndarray, Y: np.ndarray, F: np.ndarray, beta: float, loss: Loss, *,
                          kind: str = "base") -> tuple[float, np.ndarray | None, float]:
    r"""Proven lower bound on the two-layer optimum from the residual direction of ``F``:
    the dual point :math:`v = -\nabla\ell(F)` made orthogonal to the free terms, scaled
    into the exactly computed dual constraint, best scale by :meth:`Loss.best_scale`.
    ``kind`` is ``"base"`` (free biases), ``"skip"`` (free linear term too) or
    ``"penalized"`` (penalized biases incl. the output bias).  Returns ``(bound, point, c)``."""
    v = loss.dual_point(F, Y)
    if kind != "penalized":
        v = _equalize_dual(v, x, loss, skip=(kind == "skip"))
        if v is None:
            return -np.inf, None, np.inf
    u, inv = np.unique(x, return_inverse=True)
    c = _c_columns(u, inv, v, kind)
    tmax = np.inf if c == 0 else beta / c
    pen = float(np.sum(v.sum(axis=0) ** 2)) / (2 * beta) if kind == "penalized" else 0.0
    t, D = _best_dual(v, Y, loss, tmax, out_bias_penalty=pen)
    return float(D), t * v, c


@SingleThreadedBLAS()  # small dense Newton/working-set systems (deepdual._threads)
def certify_1d(network: Network, X: np.ndarray, Y: np.ndarray, *, beta: float, loss: Any = "squared",
               rtol: float = DEFAULT_RTOL, penalize_biases: bool = False, constraint: str = "auto",
               n_scales: int = 60, max_patterns: Any = None) -> Certificate:
    r"""Weak-duality certificate of a ReLU network (with or without biases) on 1-D data.

    Two layers: the dual constraint :math:`\sup_{w,b}|v^T(wx+b)_+|/|w|` is attained by a
    ramp with its kink at a data point (both orientations), so it is computed *exactly*
    from cumulative sums (``docs/one_dimensional.md`` §2); the bound is valid for every
    two-layer network with free biases of any width.  With ``penalize_biases`` the
    constraint :math:`\sup_{w^2+b^2\le1}|v^T(wx+b)_+|` is computed exactly on the 2p
    activation arcs and the output bias is taken as penalized too.

    Depth :math:`L \ge 3`: a deep network's output is Lipschitz with constant at most
    :math:`\prod_l\|W_{l}\|_F` per sub-network, and summation by parts gives
    :math:`|v^Tf(x)| \le \mathrm{Lip}(f)\int|G|`, :math:`G(t) = \sum_{x_i>t}v_i`; with the
    AM--GM power penalty this yields a *proven but usually loose* bound
    (:func:`deepdual.bounds.power_penalty_lower_bound`), never an exact one.

    Parameters
    ----------
    network : Network
        ReLU network with input dimension 1.
    X : array of shape (n, 1)
    Y : array of shape (n, K)
        Canonical labels (see :meth:`Loss.check_labels`).
    beta : float
    loss : str or Loss
    rtol : float
    penalize_biases : bool, default False
    constraint : {"auto", "exact", "bound"}
        Accepted for compatibility with :func:`deepdual.certify`: the two-layer constraint
        is always exact here (cheap); ``"exact"`` raises for depth >= 3, where only the
        Lipschitz bound is available.
    n_scales : int, default 60
        Number of dual scalings in the depth >= 3 bound.
    max_patterns : ignored (no activation cells to enumerate in 1-D).

    Returns
    -------
    Certificate
    """
    from .._validation import check_choice

    check_choice(constraint, "constraint", ("auto", "exact", "bound"))
    if isinstance(n_scales, bool) or not isinstance(n_scales, (int, np.integer)) or n_scales < 2:
        raise ValueError(f"`n_scales` must be an integer >= 2, got {n_scales!r}")
    lossf = get_loss(loss)
    beta = check_beta(beta)
    if not isinstance(network, Network):
        raise TypeError(f"`network` must be a deepdual.Network, got {type(network).__name__}")
    if network.activation != "relu":
        raise ValueError(f"`network` must be a ReLU network, got activation={network.activation!r}")
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != 1:
        raise ValueError(f"`X` must have shape (n, 1) for one-dimensional certificates, got {X.shape}")
    Y = np.asarray(Y, dtype=float).reshape(X.shape[0], -1)
    x = X[:, 0]
    F = _forward(network, X)
    obj = _network_objective(network, X, Y, beta, lossf, penalize_biases=penalize_biases)
    L = network.depth
    if L == 2:
        kind = "penalized" if penalize_biases else "base"
        D, vv, c = _dual_bound_two_layer(x, Y, F, beta, lossf, kind=kind)
        method = ("exact: 1-D penalized biases (activation arcs)" if penalize_biases
                  else "exact: 1-D ramps with kinks at the data")
        return Certificate(obj, D, method, exact_constraint=True, dual=vv, rtol=rtol,
                           details={"c": c, "depth": 2})
    if constraint == "exact":
        raise ValueError(f"`constraint='exact'` is not available for depth-{L} networks on 1-D data "
                         "(only the proven Lipschitz bound is); use constraint='auto'")
    from ..bounds import max_budget, power_penalty_lower_bound

    v = _equalize_dual(lossf.dual_point(F, Y), x, lossf, skip=False)
    if v is None:
        return Certificate(obj, -np.inf, "none", exact_constraint=False, rtol=rtol,
                           details={"note": "no dual point orthogonal to the output bias"})
    u, inv = np.unique(x, return_inverse=True)
    c = _c_columns(u, inv, v, "lipschitz")
    upper = obj - lossf.minimum(Y)
    T_max = max_budget(upper, beta, L)
    # a family of scalings t v: each gives a valid (D, c) pair; the bound takes the best
    # per budget interval.  Scales above 1 only for losses whose conjugate allows them.
    tmax = 1.0 if not getattr(lossf, "unbounded_dual_scale", False) else np.inf
    t_hi = min(tmax, max(1.0, 4.0 * beta / max(c, _EPS)))
    ts = np.concatenate([[0.0], np.geomspace(1e-6, 1.0, int(n_scales))]) * t_hi
    ts = np.unique(np.concatenate([ts, [min(t_hi, beta / max(c, _EPS))]]))
    Ds = np.array([lossf.dual_value(t * v, Y) for t in ts])
    lb = power_penalty_lower_bound(Ds, ts * c, beta=beta, depth=L, T_max=T_max)
    return Certificate(obj, lb, f"upper bound: Lipschitz constant (depth {L})", exact_constraint=False,
                       dual=v, rtol=rtol, details={"c_lipschitz": c, "depth": L, "T_max": T_max})


# =============================================================================================
# Two layers, logistic and hinge losses (the same finite Lasso, another loss)
# =============================================================================================


def _dual_bound_from_point(x: np.ndarray, Y: np.ndarray, v: np.ndarray, beta: float,
                           loss: Loss) -> tuple[float, np.ndarray | None, float]:
    r"""Proven lower bound from a given per-sample dual direction ``v`` (shape (n, 1)):
    made orthogonal to the free output bias by :func:`_equalize_dual` (which keeps it in
    the conjugate's domain), scaled into the exact dual constraint and by
    :meth:`Loss.best_scale`.  Returns ``(bound, point, c)``."""
    v = _equalize_dual(v, x, loss, skip=False)
    u, inv = np.unique(x, return_inverse=True)
    c = _c_columns(u, inv, v, "base")
    tmax = np.inf if c == 0 else beta / c
    t, D = loss.best_scale(v, Y, tmax)
    return float(D), t * v, c


def _spline_objective(gr: _Grouped, g: np.ndarray, y: np.ndarray, beta: float, loss: Loss) -> float:
    r""":math:`\ell(g_{\mathrm{group}(i)}) + \beta R(g)`: the objective of the cheapest network
    taking the values ``g`` at the distinct points (:func:`spline_cost`)."""
    return float(loss.value(g[gr.inv][:, None], y[:, None])) + beta * spline_cost(gr.u, g)


def _solve_logistic(x: np.ndarray, y: np.ndarray, beta: float, loss: Loss, *, tol: float,
                    max_iter: int) -> tuple[np.ndarray, np.ndarray, float, np.ndarray | None, float, dict]:
    r"""Two-layer 1-D problem with the logistic loss by a proximal Newton method.

    At values :math:`g` (per distinct point) the loss is replaced by its second-order model
    with the group gradient :math:`G_k = \sum_{x_i=u_k}\partial_f\ell_i` and curvature
    :math:`H_k = \sum_{x_i=u_k}\sigma(y_if_i)\sigma(-y_if_i)`; the model problem
    :math:`\min_{g'}\tfrac12\sum_kH_k(g'_k - g_k + G_k/H_k)^2 + \beta R(g')` is the weighted
    squared-loss problem, solved exactly in :math:`O(n)` by :func:`_solve_two_layer`
    (weights as multiplicities).  A backtracking (Armijo) line search on
    :math:`\ell(g) + \beta R(g)` globalizes the step (Lee, Sun & Saunders 2014).  The iterate
    is kept as a spline with a knot set (the union of the model solutions' knots), so that
    :math:`R` is evaluated on the knots only: on all points, slopes over spacings of
    :math:`10^{-8}` would carry rounding errors far above the decrease being measured.
    Stops when the certified duality gap (dual point :math:`-\nabla\ell`, exact constraint)
    is below ``tol`` relative.  Returns ``(knot positions, knot values, primal, dual point,
    lower bound, info)``.
    """
    gr = _group(x, y)
    npos, nneg = int(np.sum(y > 0)), int(np.sum(y < 0))
    if npos == 0 or nneg == 0:
        raise ValueError("`y` has a single class: with biases the logistic objective has no minimizer "
                         "(its infimum, 0, is approached by an ever larger output bias)")
    Y = y[:, None]
    u = gr.u

    def objective(K: np.ndarray, g: np.ndarray) -> float:
        return float(loss.value(g[gr.inv][:, None], Y)) + beta * spline_cost(u[K], g[K])

    K = np.unique([0, gr.p - 1])
    g = np.full(gr.p, math.log(npos / nneg))  # the best constant
    P = objective(K, g)
    D, vv, c = _dual_bound_two_layer(x, Y, g[gr.inv][:, None], beta, loss)
    it, steps = 0, []
    while P - D > tol * abs(P) and it < max_iter:
        it += 1
        F = g[gr.inv]
        grad = loss.gradient(F[:, None], Y)[:, 0]
        s = expit(y * F)
        G = np.bincount(gr.inv, grad, minlength=gr.p)
        H = np.bincount(gr.inv, s * (1.0 - s), minlength=gr.p)
        # curvature floor 1e-12 of the largest: keeps the model strictly convex at points the
        # fit separates by ~28 logits (the step is then a scaled-gradient step there)
        H = np.maximum(H, 1e-12 * float(H.max()))
        t = g - G / H
        res = _solve_two_layer(u, t, beta, max_iter=2000, grouped=_Grouped(u, H, t, gr.inv, 0.0))
        Knew = np.searchsorted(u, res.tk)
        KU = np.union1d(K, Knew)
        d = res.g - g
        delta = float(G @ d) + beta * (spline_cost(res.tk, res.ck) - spline_cost(u[K], g[K]))
        if not delta < 0:  # no descent left at rounding level
            break
        alpha = 1.0
        while alpha > 1e-10:
            if alpha == 1.0:  # the model solution itself (exact knots, no rounding residue)
                Kn, gn = Knew, res.g.copy()
            else:
                Kn, gn = KU, g + alpha * d
            Pn = objective(Kn, gn)
            if Pn <= P + 1e-4 * alpha * delta:  # Armijo constant 1e-4 (standard)
                break
            alpha *= 0.5
        else:
            break
        steps.append(alpha)
        K, g, P = Kn, gn, Pn
        D2, vv2, c2 = _dual_bound_two_layer(x, Y, g[gr.inv][:, None], beta, loss)
        if D2 > D:
            D, vv, c = D2, vv2, c2
    info = {"distinct_points": gr.p, "newton_iterations": it, "step_sizes": steps, "dual_constraint": c}
    return u[K], g[K], P, vv, D, info


def _solve_hinge(x: np.ndarray, y: np.ndarray, beta: float, loss: Loss
                 ) -> tuple[np.ndarray, np.ndarray, float, np.ndarray | None, float, dict]:
    r"""Two-layer 1-D problem with the hinge loss as a sparse linear program (HiGHS).

    Variables: values :math:`g_k` at the distinct points, slopes :math:`s_k` between them,
    right-ramp coefficients :math:`r_k` (kinks :math:`u_1..u_{p-1}`), left-ramp coefficients
    :math:`l_k` (kinks :math:`u_2..u_p`), split into positive and negative parts, and
    hinge slacks :math:`\xi_i`:

    .. math::

        \min\ \sum_i\xi_i + \beta\sum_k(|r_k| + |l_k|)\quad\text{s.t.}\quad
        g_{k+1} - g_k = (u_{k+1}-u_k)s_k,\ \ s_k - s_{k-1} = r_k + l_k,\ \
        s_1 = r_1 - \sum_{k\ge2} l_k,\ \ \xi_i \ge 1 - y_ig_{k(i)},\ \xi\ge0,

    the finite Lasso of ``docs/one_dimensional.md`` §2 with the slope of
    :math:`c + \sum_k r_k(x-u_k)_+ + l_k(u_k-x)_+` on each segment written out
    (:math:`O(n)` non-zeros; the free constant is :math:`g_1`).  The multipliers
    :math:`a_i\in[0,1]` of the margin constraints are the hinge dual point
    :math:`v_i = y_ia_i` (the conjugate's domain), certified by the exact constraint.
    """
    from scipy.optimize import linprog

    gr = _group(x, y)
    u, p, n = gr.u, gr.p, x.size
    d = np.diff(u)
    m = p - 1
    # variable blocks: g (p), s (m), xi (n), r+ r- (m each), l+ l- (m each)
    og, os_, ox = 0, p, p + m
    orp, orm, olp, olm = ox + n, ox + n + m, ox + n + 2 * m, ox + n + 3 * m
    N = ox + n + 4 * m
    cost = np.zeros(N)
    cost[ox:ox + n] = 1.0
    cost[orp:] = beta
    rows, cols, vals = [], [], []
    r = 0
    k = np.arange(m)
    # g_{k+1} - g_k - d_k s_k = 0
    rows += [r + k, r + k, r + k]
    cols += [og + k + 1, og + k, os_ + k]
    vals += [np.ones(m), -np.ones(m), -d]
    r += m
    # s_k - s_{k-1} - r_k - l_k = 0 for k = 1..m-1 (r_k: kink u_{k+1} in 1-based terms; l_{k-1}: same kink)
    kk = np.arange(1, m)
    for off, sg in ((os_, 1.0), (os_ - 1, -1.0), (orp, -1.0), (orm, 1.0), (olp - 1, -1.0), (olm - 1, 1.0)):
        rows.append(r + kk - 1)
        cols.append(off + kk)
        vals.append(np.full(kk.size, sg))
    r += kk.size
    if m > 0:
        # s_0 - r_0 + sum_j l_j = 0 (one dense row; the dual simplex HiGHS picks handles it
        # better than a sparse chain of suffix-sum variables, measured at n = 10^4)
        rows += [np.array([r]), np.array([r]), np.array([r]), np.full(m, r), np.full(m, r)]
        cols += [np.array([os_]), np.array([orp]), np.array([orm]), olp + k, olm + k]
        vals += [np.ones(1), -np.ones(1), np.ones(1), np.ones(m), -np.ones(m)]
        r += 1
    A_eq = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, N))
    b_eq = np.zeros(r)
    # -y_i g_{k(i)} - xi_i <= -1
    i = np.arange(n)
    A_ub = sp.csr_matrix((np.concatenate([-y, -np.ones(n)]), (np.r_[i, i], np.r_[og + gr.inv, ox + i])),
                         shape=(n, N))
    b_ub = -np.ones(n)
    bounds = [(None, None)] * (p + m) + [(0, None)] * (n + 4 * m)
    res = linprog(cost, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=bounds, method="highs")
    if res.status != 0:
        raise RuntimeError(f"the hinge-loss linear program failed: {res.message}")
    g = res.x[og:og + p].copy()
    Y = y[:, None]
    P = _spline_objective(gr, g, y, beta, loss)
    # HiGHS marginals of A_ub x <= b_ub are <= 0 (d objective / d b); a_i = -marginal in [0, 1]
    a = np.clip(-res.ineqlin.marginals, 0.0, 1.0)
    D, vv, c = _dual_bound_from_point(x, Y, (y * a)[:, None], beta, loss)
    D2, vv2, c2 = _dual_bound_two_layer(x, Y, g[gr.inv][:, None], beta, loss)
    if D2 > D:
        D, vv, c = D2, vv2, c2
    # knots: the ramps the LP uses (a vertex has exact zeros elsewhere; 1e-12 relative
    # drops rounding residue of an interior solution) -- the spline is linear in between
    zk = np.zeros(p)
    zk[:m] += np.abs(res.x[orp:orp + m] - res.x[orm:orm + m])
    zk[1:] += np.abs(res.x[olp:olp + m] - res.x[olm:olm + m])
    K = np.union1d([0, p - 1], np.nonzero(zk > 1e-12 * float(np.max(zk, initial=0.0)))[0])
    info = {"distinct_points": p, "lp_iterations": int(getattr(res, "nit", 0)), "dual_constraint": c}
    return u[K], g[K], P, vv, D, info


def _solve_binary(x, y, X, Y, *, scalar, beta, loss, rtol, tol, max_iter) -> Solution:
    r"""Two-layer 1-D ReLU network with unpenalized biases for the logistic or hinge loss:
    the finite Lasso over the data ramps (``docs/one_dimensional.md`` §2, any convex loss),
    solved by :func:`_solve_logistic` or :func:`_solve_hinge`; the returned network is the
    cheapest one with the optimal values at the data (:func:`_min_norm_ramps`) and the
    lower bound the exact dual constraint of a dual point (§4)."""
    if isinstance(loss, LogisticLoss):
        tk, ck, P, vv, D, info = _solve_logistic(x, y, beta, loss, tol=tol, max_iter=max_iter)
        method = "one-dimensional two-layer ReLU, logistic loss: ramps at the data (proximal Newton)"
    else:
        tk, ck, P, vv, D, info = _solve_hinge(x, y, beta, loss)
        method = "one-dimensional two-layer ReLU, hinge loss: ramps at the data (sparse LP)"
    u, g = tk, ck
    ramps = _min_norm_ramps(u, g)
    net = _ramps_network(ramps, scalar=scalar)
    obj = _network_objective(net, X, Y, beta, loss)
    if u.size > 2:
        # rounding leaves kinks ~eps/spacing where the optimum has none: drop slope changes
        # below 1e-9 of the largest slope, keeping the result only if its objective is within
        # 1e-12 relative (rounding level, far below any rtol) of the full one
        ktol = 1e-9 * float(np.max(np.abs(_slopes(u, g))))
        r2 = _min_norm_ramps(u, g, kink_tol=ktol)
        if r2.z.size < ramps.z.size:
            net2 = _ramps_network(r2, scalar=scalar)
            obj2 = _network_objective(net2, X, Y, beta, loss)
            if obj2 <= obj + 1e-12 * abs(obj):
                ramps, net, obj = r2, net2, obj2
    F = _forward(net, X)
    D2, vv2, c2 = _dual_bound_two_layer(x, Y, F, beta, loss)
    if D2 > D:
        D, vv, info["dual_constraint"] = D2, vv2, c2
    info.update(neurons=int(ramps.z.size), knots=ramps.t.copy(), spline_objective=P, tol=tol,
                note="kinks at data points; lower bound = exact dual constraint of a dual point")
    return Solution(network=net, objective=obj, lower_bound=D, method=method, rtol=rtol, dual=vv, info=info)


# =============================================================================================
# Multiclass cross-entropy: group Lasso over vector-valued ramps
# =============================================================================================


class _VectorRamps:
    r"""Ramp operators on sorted distinct points ``u`` (shape (p,)) for K-column
    coefficients, all in :math:`O(pK)` by cumulative sums.

    ``forward(Zr, Zl)`` is :math:`F_j = \sum_k Z^r_k(u_j-u_k)_+ + Z^l_k(u_k-u_j)_+`
    (rows of F, shape (p, K)); ``adjoint(G)`` returns the correlations
    :math:`H^r_k = \sum_j G_j(u_j-u_k)_+` and :math:`H^l_k = \sum_j G_j(u_k-u_j)_+`."""

    def __init__(self, u: np.ndarray) -> None:
        self.u = u
        self.uc = u[:, None]

    def forward(self, Zr: np.ndarray, Zl: np.ndarray) -> np.ndarray:
        uc = self.uc
        right = uc * np.cumsum(Zr, axis=0) - np.cumsum(uc * Zr, axis=0)
        sl = np.cumsum(Zl[::-1], axis=0)[::-1]
        sul = np.cumsum((uc * Zl)[::-1], axis=0)[::-1]
        return right + sul - uc * sl

    def adjoint(self, G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        uc = self.uc
        sg = np.cumsum(G[::-1], axis=0)[::-1]
        sug = np.cumsum((uc * G)[::-1], axis=0)[::-1]
        pg = np.cumsum(G, axis=0)
        pug = np.cumsum(uc * G, axis=0)
        return sug - uc * sg, uc * pg - pug


def _ce_grouped_loss(F: np.ndarray, w: np.ndarray, C: np.ndarray) -> float:
    r""":math:`\sum_j w_j\operatorname{lse}(F_j) - \langle C_j, F_j\rangle` (``C`` the class counts
    per distinct point): the cross-entropy of the samples, grouped by their input."""
    mx = F.max(axis=1)
    lse = mx + np.log(np.exp(F - mx[:, None]).sum(axis=1))
    return float(w @ lse - np.vdot(C, F))


def _ce_grouped_grad(F: np.ndarray, w: np.ndarray, C: np.ndarray) -> np.ndarray:
    from scipy.special import softmax

    return w[:, None] * softmax(F, axis=1) - C


def _ce_best_bias(G: np.ndarray, w: np.ndarray, C: np.ndarray, b: np.ndarray, *, iters: int = 50) -> np.ndarray:
    r"""Minimize the grouped cross-entropy over the free output bias: :math:`\min_b \sum_j w_j
    \operatorname{lse}(G_j + b) - \langle C_j, G_j + b\rangle`, a smooth convex problem in K
    variables, by damped Newton steps (the Hessian :math:`\sum_j w_j(\operatorname{diag}p_j - p_jp_j^T)`
    is singular along :math:`\mathbf 1`, which does not change the loss; adding
    :math:`\mathbf 1\mathbf 1^T` fixes that direction).  At the minimizer the column sums of
    the residual :math:`C - w\,\mathrm{softmax}` vanish: the free bias's dual condition."""
    from scipy.special import softmax

    K = b.size
    n = float(np.sum(w))
    counts = C.sum(axis=0)
    f = _ce_grouped_loss(G + b, w, C)
    for _ in range(iters):
        Pm = softmax(G + b, axis=1)
        g = (w[:, None] * Pm).sum(axis=0) - counts
        # stop when the gradient is at rounding level of the class counts (1e-13 n)
        if np.max(np.abs(g)) <= 1e-13 * n:
            break
        H = (Pm.T * w) @ Pm
        H = np.diag((w[:, None] * Pm).sum(axis=0)) - H + np.ones((K, K)) / K
        step = np.linalg.solve(H, -g)
        step -= step.mean()
        a = 1.0
        while a > 1e-12:
            fn = _ce_grouped_loss(G + b + a * step, w, C)
            if fn <= f + 1e-4 * a * float(g @ step):  # Armijo constant 1e-4 (standard)
                break
            a *= 0.5
        else:
            break
        b, f = b + a * step, fn
    return b


def _ce_balance(P: np.ndarray, counts: np.ndarray) -> np.ndarray:
    r"""Rows of ``P`` in the probability simplex, moved within each row so that the column
    sums equal ``counts`` exactly (up to rounding) while every row stays in the simplex.

    With column sums :math:`s` and :math:`\sum_k s_k = \sum_k c_k`, every excess class
    (:math:`s_k > c_k`) keeps the fraction :math:`1-\theta_k`, :math:`\theta_k = (s_k-c_k)/s_k`,
    of its entries, and the mass removed from a row goes to the deficit classes in
    proportion to their deficits :math:`d_j = c_j - s_j`; class j then gains
    :math:`\tfrac{d_j}{\sum d}\sum_k\theta_ks_k = d_j`.  Entries stay in [0, 1] and row sums
    are unchanged."""
    P = P.copy()
    s = P.sum(axis=0)
    diff = s - counts
    exc = diff > 0
    if not np.any(exc):
        return P
    theta = np.zeros_like(s)
    theta[exc] = diff[exc] / s[exc]
    moved = P[:, exc] * theta[exc]
    P[:, exc] -= moved
    d = np.where(diff < 0, -diff, 0.0)
    if d.sum() > 0:
        P += np.outer(moved.sum(axis=1), d / d.sum())
    return P


def _ce_restricted_newton(A: np.ndarray, w: np.ndarray, C: np.ndarray, bs: float, Z: np.ndarray, b: np.ndarray,
                          *, iters: int = 200, gtol: float = 1e-13) -> tuple[np.ndarray, np.ndarray]:
    r"""Minimize :math:`\ell(AZ + \mathbf 1b^T) + \beta_s\sum_g\|Z_g\|` over a working set of atoms
    (columns of ``A``, rows of ``Z``) by damped Newton steps on the rows that are non-zero,
    where the objective is smooth (Hessian of :math:`\|z\|`: :math:`(I - \hat z\hat z^T)/\|z\|`).

    A step that would carry a row through zero (:math:`\langle z, z + \Delta z\rangle < 0`) is
    cut at the crossing and that row is set to zero when this does not raise the objective
    (feature-sign search, Lee et al. 2007, for groups); zero rows stay zero here and the
    caller's optimality check re-adds them if needed.  Dense: :math:`O(p m^2K^2 + (mK)^3)`
    per step for m atoms."""
    from scipy.special import softmax

    p = A.shape[0]
    K = C.shape[1]
    Z = Z.copy()

    def obj(Zc, bc):
        return _ce_grouped_loss(A @ Zc + bc, w, C) + bs * float(np.sum(np.linalg.norm(Zc, axis=1)))

    f = obj(Z, b)
    for _ in range(iters):
        act = np.nonzero(np.linalg.norm(Z, axis=1) > 0)[0]
        m = act.size
        Aa, Za = A[:, act], Z[act]
        M = np.concatenate([Aa, np.ones((p, 1))], axis=1)  # (p, m+1)
        F = Aa @ Za + b
        Pm = softmax(F, axis=1)
        G = w[:, None] * Pm - C
        nz = np.linalg.norm(Za, axis=1)
        Zh = Za / nz[:, None]
        grad = np.concatenate([(Aa.T @ G + bs * Zh).ravel(), G.sum(axis=0)])
        # Hessian of the loss: sum_j M_ja M_jb w_j (diag p_j - p_j p_j^T), ordered (atom, class)
        WP = w[:, None] * Pm
        H4 = np.zeros((m + 1, K, m + 1, K))
        for k in range(K):
            H4[:, k, :, k] = M.T @ (WP[:, [k]] * M)
        MW = (M[:, :, None] * (np.sqrt(w)[:, None] * Pm)[:, None, :]).reshape(p, -1)
        H = H4.reshape((m + 1) * K, (m + 1) * K) - MW.T @ MW
        for g in range(m):
            sl = slice(g * K, (g + 1) * K)
            H[sl, sl] += bs * (np.eye(K) - np.outer(Zh[g], Zh[g])) / nz[g]
        # the bias direction 1 (all classes) is flat and the gradient is orthogonal to it: fix it
        sb = slice(m * K, (m + 1) * K)
        H[sb, sb] += np.ones((K, K)) / K * max(float(w.sum()), 1.0)
        H += 1e-14 * np.trace(H) / H.shape[0] * np.eye(H.shape[0])  # rounding-level ridge
        try:
            step = -np.linalg.solve(H, grad)
        except np.linalg.LinAlgError:
            step = -np.linalg.lstsq(H, grad, rcond=None)[0]
        dec = float(grad @ step)
        if not dec < 0 or -dec < gtol * max(abs(f), 1.0):  # Newton decrement at rounding level
            break
        dZ, db = step[:m * K].reshape(m, K), step[m * K:]
        # rows the full step carries through zero: crossing at a_g = -|z|^2 / <z, dz>
        zd = np.einsum("ik,ik->i", Za, dZ)
        cross = zd < -nz ** 2
        if np.any(cross):
            ag = -nz[cross] ** 2 / zd[cross]
            a0 = float(ag.min())
            g0 = act[np.nonzero(cross)[0][int(np.argmin(ag))]]
            Zt = Z.copy()
            Zt[act] = Za + a0 * dZ
            Zt[g0] = 0.0
            ft = obj(Zt, b + a0 * db)
            if ft <= f:
                Z, b, f = Zt, b + a0 * db, ft
                continue
            amax = a0
        else:
            amax = 1.0
        a = amax
        while a > 1e-12 * amax:
            Zn = Z.copy()
            Zn[act] = Za + a * dZ
            fn = obj(Zn, b + a * db)
            if fn <= f + 1e-4 * a * dec:  # Armijo constant 1e-4 (standard)
                break
            a *= 0.5
        else:
            break
        Z, b, f = Zn, b + a * db, fn
    return Z, b


def _solve_cross_entropy(x: np.ndarray, X: np.ndarray, Y: np.ndarray, *, scalar: bool, beta: float,
                         loss: Loss, rtol: float, tol: float, max_iter: int) -> Solution:
    r"""Two-layer 1-D ReLU network with free biases and K outputs under the cross-entropy.

    The problem equals the group Lasso over vector-valued ramps at the data
    (``docs/one_dimensional.md`` §6, "Cross-entropy"):

    .. math:: \min_{b,\,z}\ \ell\Big(\mathbf 1b^T + \sum_k (x-u_k)_+z_k^{+T} + (u_k-x)_+z_k^{-T}\Big)
              + \beta\sum_k(\|z^+_k\|_2 + \|z^-_k\|_2).

    Solved on the inputs rescaled to [0, 1] by a working-set method: the correlations of
    the gradient with all 2p atoms cost :math:`O(pK)` by cumulative sums
    (:class:`_VectorRamps`); atoms whose correlation norm exceeds beta join the set; the
    restricted problem is solved by :func:`_ce_restricted_newton`; the free output bias is
    re-optimized exactly (:func:`_ce_best_bias`) before each certificate.  (FISTA with
    adaptive restart stalls on this dictionary, a discrete double integral with a Gram
    spectrum decaying like :math:`k^{-4}`.)  Stops when the duality gap of the dual point :math:`V = Y - \operatorname{softmax}(F)` (column sums
    made exactly zero by :func:`_ce_balance`), scaled into the exact vector dual constraint
    :math:`c(V) = \max_{t,\pm}\|\sum_iV_i(\pm(x_i-t))_+\|_2` (attained at the data), is
    below ``tol`` relative.

    References
    ----------
    H. Lee, A. Battle, R. Raina, A. Ng, "Efficient sparse coding algorithms", NIPS 2007
    (feature-sign search).  M. Yuan, Y. Lin, "Model selection and estimation in regression
    with grouped variables", JRSS-B 2006 (group Lasso).
    """
    K = Y.shape[1]
    u, inv, counts_pts = np.unique(x, return_inverse=True, return_counts=True)
    p = u.size
    w = counts_pts.astype(float)
    C = np.zeros((p, K))
    np.add.at(C, inv, Y)
    counts = C.sum(axis=0)
    if np.any(counts == 0):
        raise ValueError(f"`y` has no sample of class {int(np.argmin(counts))} (of {K}): with a free output bias "
                         "the cross-entropy objective has no minimizer (that class's output bias runs to -inf)")
    # rescale the inputs to [0, 1]: a ramp (x - t)_+ is s (x' - t')_+, so the penalty becomes beta/s
    s = float(u[-1] - u[0]) if p > 1 else 1.0
    us = (u - u[0]) / s
    bs = beta / s
    ops = _VectorRamps(us)

    def fit(Zr, Zl, b):
        return ops.forward(Zr, Zl) + b

    def primal(Zr, Zl, b):
        return _ce_grouped_loss(fit(Zr, Zl, b), w, C) + bs * float(
            np.sum(np.linalg.norm(Zr, axis=1)) + np.sum(np.linalg.norm(Zl, axis=1)))

    def certificate(Zr, Zl, b):
        """Proven lower bound from the residual of the current fit (sample-level dual point)."""
        from scipy.special import softmax

        Pm = _ce_balance(softmax(fit(Zr, Zl, b), axis=1)[inv], counts)  # per sample; column sums = counts
        v = Y - Pm
        c = _c_columns(u, inv, v, "base") if p > 1 else 0.0
        tmax = np.inf if c == 0 else beta / c
        t, D = loss.best_scale(v, Y, tmax)
        return float(D), t * v, c, None

    Zr, Zl = np.zeros((p, K)), np.zeros((p, K))
    b = _ce_best_bias(np.zeros((p, K)), w, C, np.zeros(K))
    D, vv, c, _ = certificate(Zr, Zl, b)
    P = primal(Zr, Zl, b)
    # working set: atoms (side 0 = right ramp at u_k, 1 = left ramp at u_k) and their rows
    atoms: list[tuple[int, int]] = []
    Zw = np.zeros((0, K))
    rounds = newton = 0

    def dense(at):
        cols = [np.maximum(us - us[k], 0.0) if sd == 0 else np.maximum(us[k] - us, 0.0) for sd, k in at]
        return np.stack(cols, axis=1) if cols else np.zeros((p, 0))

    def unpack(at, Zc):
        Zr_, Zl_ = np.zeros((p, K)), np.zeros((p, K))
        for (sd, k), z in zip(at, Zc):
            (Zr_ if sd == 0 else Zl_)[k] += z
        return Zr_, Zl_

    while P - D > tol * abs(P) and rounds < max_iter:
        rounds += 1
        G = _ce_grouped_grad(fit(Zr, Zl, b), w, C)
        hr, hl = ops.adjoint(G)
        nrm = np.stack([np.linalg.norm(hr, axis=1), np.linalg.norm(hl, axis=1)])  # (2, p)
        for sd, k in atoms:
            nrm[sd, k] = -np.inf
        # the right ramp at u_p and the left ramp at u_1 vanish on the data
        nrm[0, p - 1] = nrm[1, 0] = -np.inf
        viol = nrm - bs
        # violations above 1e-9 bs (rounding level of the correlations) join, local maxima first
        cand = np.argwhere(viol > 1e-9 * bs)
        if cand.size:
            pad = np.pad(viol, ((0, 0), (1, 1)), constant_values=-np.inf)
            peak = (viol >= pad[:, :-2]) & (viol >= pad[:, 2:]) & (viol > 1e-9 * bs)
            if np.any(peak):
                cand = np.argwhere(peak)
            cand = cand[np.argsort(-viol[cand[:, 0], cand[:, 1]])[:10]]
            hs = (hr, hl)
            new = [(int(sd), int(k)) for sd, k in cand]
            init = np.array([-hs[sd][k] / np.linalg.norm(hs[sd][k]) for sd, k in new])
            # tiny start along the descent direction (1e-8 of the largest row, or absolute)
            scale = 1e-8 * max(float(np.max(np.linalg.norm(Zw, axis=1), initial=0.0)), 1e-3)
            atoms += new
            Zw = np.concatenate([Zw, scale * init])
        if not atoms:
            break
        A = dense(atoms)
        Zw, b = _ce_restricted_newton(A, w, C, bs, Zw, b)
        newton += 1
        # drop rows at rounding level, and rows whose removal does not raise the objective
        nz = np.linalg.norm(Zw, axis=1)
        fcur = _ce_grouped_loss(A @ Zw + b, w, C) + bs * float(nz.sum())
        keep = nz > 1e-12 * max(float(nz.max(initial=0.0)), 1e-300)
        for g in np.nonzero(keep & (nz < 1e-3 * float(nz.max(initial=0.0))))[0]:
            Zt = Zw.copy()
            Zt[g] = 0.0
            ft = _ce_grouped_loss(A @ Zt + b, w, C) + bs * float(np.sum(np.linalg.norm(Zt, axis=1)))
            if ft <= fcur:
                keep[g], Zw, fcur = False, Zt, ft
        atoms = [a for a, k in zip(atoms, keep) if k]
        Zw = Zw[keep]
        Zr, Zl = unpack(atoms, Zw)
        b = _ce_best_bias(ops.forward(Zr, Zl), w, C, b)
        P = primal(Zr, Zl, b)
        D2, vv2, c2, _ = certificate(Zr, Zl, b)
        if D2 > D:
            D, vv, c = D2, vv2, c2
        if not cand.size and P - D > tol * abs(P) and newton > 3 * max(len(atoms), 1) + 20:
            break  # no violators left and Newton cannot improve: stop (reported gap is honest)
    it, restarts = newton, rounds
    # the network: one neuron per non-zero atom, z = z_s / s in the original units
    nr, nl = np.linalg.norm(Zr, axis=1), np.linalg.norm(Zl, axis=1)
    kr, kl = np.nonzero(nr > 0)[0], np.nonzero(nl > 0)[0]
    t = np.concatenate([u[kr], u[kl]])
    o = np.concatenate([np.ones(kr.size), -np.ones(kl.size)])
    Z = np.concatenate([Zr[kr], Zl[kl]]) / s
    net = _vector_ramps_network(t, o, Z, b, scalar)
    obj = _network_objective(net, X, Y, beta, loss)
    D2, vv2, c2, _ = certificate(Zr, Zl, b)
    if D2 > D:
        D, vv, c = D2, vv2, c2
    info = {"distinct_points": p, "newton_solves": it, "rounds": restarts, "dual_constraint": c,
            "neurons": int(Z.shape[0]), "knots": t.copy(), "tol": tol,
            "note": "kinks at data points; lower bound = exact vector dual constraint of the balanced residual"}
    return Solution(network=net, objective=obj, lower_bound=D,
                    method="one-dimensional two-layer ReLU, cross-entropy: vector ramps at the data "
                           "(group Lasso, active-set Newton)",
                    rtol=rtol, dual=vv, info=info)


def _vector_ramps_network(t: np.ndarray, o: np.ndarray, Z: np.ndarray, b: np.ndarray, scalar: bool) -> Network:
    r"""Balanced two-layer network computing :math:`b + \sum_i (o_i(x - t_i))_+ z_i`: inner weight
    :math:`o_i\sqrt{\|z_i\|}`, bias :math:`-o_it_i\sqrt{\|z_i\|}`, outer row
    :math:`z_i/\sqrt{\|z_i\|}`, so each neuron's weight decay is :math:`\|z_i\|` (§1)."""
    K = b.size
    m = Z.shape[0]
    if m == 0:
        return Network([[np.zeros((1, 1)), np.zeros((1, K))]], "relu", biases=[[np.zeros(1)]],
                       output_bias=b.copy(), scalar_output=scalar)
    a = np.sqrt(np.linalg.norm(Z, axis=1))
    W1 = (o * a).reshape(1, m)
    b1 = -o * t * a
    W2 = Z / a[:, None]
    return Network([[W1, W2]], "relu", biases=[[b1]], output_bias=b.copy(), scalar_output=scalar)


# =============================================================================================
# Public entry points
# =============================================================================================


@dataclass(repr=False)
class SkipSolution(Solution):
    r"""Solution of the variant with a free (unpenalized) linear skip term,

    .. math:: f(x) = a\,x + \mathrm{network}(x),\qquad
              P = \ell(f(x), y) + \frac\beta2\sum_j(w_j^2 + v_j^2).

    :class:`~deepdual.Network` has no skip connection, and representing :math:`a x` by ReLU
    units would cost :math:`\beta|a|` (it is not free under weight decay), so the slope is
    kept here: :meth:`predict` adds it, and :attr:`objective` equals
    ``deepdual.objective(network, X, y - slope * x, beta=beta)``.
    """

    slope: float = 0.0

    def predict(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        out = self.network.predict(X)
        lin = self.slope * X[:, 0]
        return out + (lin if out.ndim == 1 else lin[:, None])


_OPTIONS = ("penalize_biases", "skip", "tol", "max_iter", "n_grid", "architecture")

#: depth >= 3 architectures the solver optimizes over (see ``docs/one_dimensional.md`` §7)
_ARCHITECTURES = ("linear_on_data",)


@SingleThreadedBLAS()  # small dense Newton/working-set systems (deepdual._threads)
def solve_1d(X: np.ndarray, Y: np.ndarray, *, scalar: bool, beta: float, depth: int, loss: Loss,
             rtol: float, bias: bool, penalize_biases: bool = False, skip: bool = False,
             tol: float | None = None, max_iter: int = 2000, n_grid: int = 24,
             architecture: str = "linear_on_data", **options: Any) -> Solution:
    r"""Globally optimal ReLU network with biases on one-dimensional data (SPEC 2.5).

    Called by :func:`deepdual.solve` for ``X`` of shape ``(n, 1)`` with ``bias=True``.

    Two layers (default): exact optimum over networks of any width with unpenalized
    hidden and output biases, by the banded dual / active-set algorithm of this module;
    certified by the exact dual constraint of the returned network's residual (stops
    when the relative gap is below ``tol``).  Its kinks lie at data points.

    Options
    -------
    skip : bool
        Add a free linear term :math:`a x` (returns a :class:`SkipSolution`).
    penalize_biases : bool
        Penalize every bias like a weight (the two-layer program on :math:`X = [x, 1]`);
        the output bias is penalized too, matching ``objective(..., penalize_biases=True)``.
        Kinks may then lie *between* data points.  Solved exactly as a cone program over
        the 2p activation arcs by a working-set barrier method (no external solver).
    tol : float, optional
        Target relative duality gap (default 1e-9; ``rtol/10`` for the cross-entropy): the
        active-set method stops once no ramp correlation exceeds its bound by more than
        ``tol/10`` of beta; the reported gap is the exact certificate of the returned
        network (usually far below ``tol``).
    max_iter : int
        Iteration cap of the active-set method.
    n_grid : int
        Depth >= 3: number of two-layer solves in the scalar search.
    architecture : {"linear_on_data"}, default "linear_on_data"
        Depth >= 3 only: the class of networks optimized over.  ``"linear_on_data"``: parallel
        (or standard) ReLU networks with unpenalized biases and weight decay on every layer
        whose layers after the first act linearly on the data (every pre-activation of
        layers 2..L-1 is >= 0 at every data point).  Its optimum has kinks only at data
        points and is computed exactly up to a proven class bound (``info["class_lower_bound"]``).
        It is *not* the optimum over unconstrained deep networks (those can do better, with
        kinks off the data), so such solutions are never reported as certified.  Other
        architectures (unconstrained weight decay; the paper's norm-constrained parallel
        networks) raise ``ValueError``: no exact solver or proof is available for them
        (``docs/one_dimensional.md`` §7).

    Depth >= 3 returns the best network whose deeper layers act linearly on the data (the
    structure of the paper's optimal solutions); see the module docstring and
    ``docs/one_dimensional.md`` for what is and is not proven.  The squared loss is
    supported everywhere; the logistic and hinge losses (one output) for two layers with
    free biases (no ``skip``/``penalize_biases``): the same finite Lasso, solved by
    proximal Newton over the squared solver (logistic) or a sparse LP (hinge), certified by
    the exact dual constraint (:func:`_solve_binary`); the K-class cross-entropy (two
    layers, free biases) as the group Lasso over vector ramps at the data
    (:func:`_solve_cross_entropy`).  Other losses raise ``ValueError``
    (:func:`certify_1d` accepts any loss).
    """
    check_options(options, _OPTIONS, "solve(method='one_dimensional')")
    if X.shape[1] != 1:
        raise ValueError(f"`X` must be one-dimensional data (shape (n, 1)) for the 1-D solver, got shape {X.shape}")
    if not bias:
        raise ValueError("the one-dimensional ReLU solver needs `bias=True` (without biases a ReLU network on "
                         "1-D data is positively homogeneous; use method='rank_one')")
    multiclass = isinstance(loss, CrossEntropyLoss)
    if Y.shape[1] != 1 and not multiclass:
        raise ValueError(f"`y` must have a single output column for the 1-D solver, got {Y.shape[1]} columns")
    binary = isinstance(loss, (LogisticLoss, HingeLoss))
    if not isinstance(loss, SquaredLoss) and not ((binary or multiclass) and depth == 2 and not penalize_biases
                                                   and not skip):
        raise ValueError(f"the one-dimensional solver supports loss='squared', and 'logistic'/'hinge'/"
                         f"'cross_entropy' for depth=2 without `skip`/`penalize_biases`; got "
                         f"loss={getattr(loss, 'name', loss)!r}, depth={depth}; "
                         "certify other losses with deepdual.certify")
    for name, val in (("penalize_biases", penalize_biases), ("skip", skip)):
        if not isinstance(val, (bool, np.bool_)):
            raise TypeError(f"`{name}` must be True or False, got {val!r}")
    if penalize_biases and skip:
        raise ValueError("`penalize_biases` and `skip` cannot be combined")
    # cross-entropy (first-order solver): stop at rtol/10 unless `tol` is given
    tol_default = tol is None
    tol = check_positive(DEFAULT_TOL if tol is None else tol, "tol")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"`max_iter` must be a positive integer, got {max_iter!r}")
    if not isinstance(architecture, str) or architecture not in _ARCHITECTURES:
        raise ValueError(f"`architecture` must be one of {_ARCHITECTURES} (depth >= 3 on 1-D data), got "
                         f"{architecture!r}; unconstrained deep networks and the paper's norm-constrained "
                         "architecture have no exact solver (see docs/one_dimensional.md §7)")
    if multiclass:
        return _solve_cross_entropy(X[:, 0], X, Y, scalar=scalar, beta=beta, loss=loss, rtol=rtol,
                                    tol=rtol / 10 if tol_default else tol, max_iter=max_iter)
    x, y = X[:, 0], Y[:, 0]
    if depth >= 3:
        if penalize_biases or skip:
            raise ValueError("`penalize_biases` and `skip` are two-layer options (depth=2)")
        return _solve_deep(x, y, X, Y, scalar=scalar, beta=beta, depth=depth, loss=loss, rtol=rtol,
                           max_iter=max_iter, n_grid=n_grid)
    if binary:
        return _solve_binary(x, y, X, Y, scalar=scalar, beta=beta, loss=loss, rtol=rtol, tol=tol,
                             max_iter=max_iter)
    if penalize_biases:
        return _solve_penalized(x, y, X, Y, scalar=scalar, beta=beta, loss=loss, rtol=rtol, tol=tol,
                                max_iter=max_iter)
    res = _solve_two_layer(x, y, beta, skip=skip, max_iter=max_iter, tol=tol)
    ramps = _min_norm_ramps(res.tk, res.ck, skip=skip)
    net = _ramps_network(ramps, scalar=scalar)
    target = Y - ramps.slope * X if skip else Y
    obj = _network_objective(net, X, target, beta, loss)
    F = _forward(net, X) + (ramps.slope * X if skip else 0.0)
    D, vv, c = _dual_bound_two_layer(x, Y, F, beta, loss, kind="skip" if skip else "base")
    lower = max(D, res.D)
    info = dict(res.info)
    info.update(neurons=int(ramps.z.size), knots=res.tk[1:-1].copy(), spline_objective=res.P,
                dual_constraint=c, tol=tol,
                note="kinks at data points; lower bound = exact dual constraint of the residual")
    method = "one-dimensional two-layer ReLU: ramps at the data (banded dual + active set)"
    if skip:
        return SkipSolution(network=net, objective=obj, lower_bound=lower, method=method + ", free linear term",
                            rtol=rtol, dual=vv, info=info, slope=float(ramps.slope))
    return Solution(network=net, objective=obj, lower_bound=lower, method=method, rtol=rtol, dual=vv, info=info)


class Interpolant(NamedTuple):
    """Result of :func:`interpolate`: the network and its weight decay
    :math:`\\tfrac12\\sum_j(w_j^2 + v_j^2)` (the representational cost)."""

    network: Network
    cost: float


def interpolate(x: Any, y: Any) -> Interpolant:
    r"""Minimum-norm ReLU interpolant of 1-D data (the limit :math:`\beta \to 0`).

    Among two-layer ReLU networks with free biases and any width that pass through every
    point :math:`(x_i, y_i)`, returns one with the smallest :math:`\tfrac12\sum_j(w_j^2+v_j^2)`:
    the linear spline through the points, extended outside :math:`[\min x, \max x]` by the
    slopes that minimize the cost.  The cost is

    .. math:: R = \max\Big(T,\ \tfrac12\big(T + |s_1 + s_{p-1}|\big)\Big),

    with :math:`s_k` the slopes between neighbours and :math:`T` the total variation of the
    slopes: Savarese et al.'s :math:`\max(\int|f''|, |f'(-\infty)+f'(+\infty)|)` minimized
    over the two outer slopes (``docs/one_dimensional.md`` §3).  Inside the hull the
    interpolant is the linear spline; it is unique there up to the known non-uniqueness
    between two data points where the discrete curvature keeps its sign.

    Parameters
    ----------
    x : array of shape (n,) or (n, 1)
    y : array of shape (n,)
        Duplicated ``x`` must have equal ``y``.

    Returns
    -------
    Interpolant
        ``(network, cost)``; ``deepdual.objective(network, x, y, beta=b) == b * cost``.

    Examples
    --------
    >>> import deepdual
    >>> net, cost = deepdual.interpolate([0.0, 1.0], [0.0, 1.0])
    >>> round(cost, 12)  # one ramp (x)_+ suffices: cheaper than the line x (cost 2)
    1.0
    """
    xv = _as_1d_x(x, "x")
    yv, _ = check_targets(y, xv.size, "y")
    if yv.shape[1] != 1:
        raise ValueError(f"`y` must be one-dimensional, got shape {yv.shape}")
    yv = yv[:, 0]
    u, inv = np.unique(xv, return_inverse=True)
    g = np.full(u.size, np.nan)
    g[inv] = yv
    if not np.array_equal(g[inv], yv):
        k = int(np.nonzero(g[inv] != yv)[0][0])
        others = np.unique(yv[inv == inv[k]])
        raise ValueError(f"`y` must agree at duplicated x: x = {float(xv[k])!r} has y values {others[:4].tolist()}; "
                         "no function interpolates them (average them, or use deepdual.solve with beta > 0)")
    r = _min_norm_ramps(u, g)
    return Interpolant(_ramps_network(r, scalar=True), r.cost)


# =============================================================================================
# Penalized biases: two-layer program on [x, 1] (working set of activation arcs + barrier)
# =============================================================================================


def _signed_arc_max(a: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    r"""``max <a_i, q>`` (signed) over unit vectors q at angles in ``[lo_i, hi_i]`` (arcs
    shorter than pi): a linear function on an arc is largest at an endpoint or at the
    direction of ``a_i`` when that lies on the arc."""
    v = np.maximum(a[:, 0] * np.cos(lo) + a[:, 1] * np.sin(lo), a[:, 0] * np.cos(hi) + a[:, 1] * np.sin(hi))
    phi = np.arctan2(a[:, 1], a[:, 0])
    na = np.hypot(a[:, 0], a[:, 1])
    for shift in (0.0, 2 * np.pi, -2 * np.pi):
        th = phi + shift
        v = np.where((th >= lo) & (th <= hi), np.maximum(v, na), v)
    return v


class _ArcBarrier:
    r"""Primal log-barrier (path-following Newton) method for the cone program

    .. math:: \min\ \tfrac12\sum_k w_k(F_k - y_k)^2 + \beta\sum_g t_g + \tfrac\beta2 b^2,\quad
              F = b + \sum_g \sigma_g(\alpha_g g^{\rm lo}_g + \gamma_g g^{\rm hi}_g),

    :math:`\alpha_g, \gamma_g \ge 0`, :math:`t_g \ge \|\alpha_g e^{\rm lo}_g + \gamma_g e^{\rm hi}_g\|`
    over a working set of groups g (arc, sign).  Barrier
    :math:`-\sum\log\alpha - \sum\log\gamma - \sum\log(t^2 - s^TM_gs)` of degree
    :math:`\nu = 4G`; the iterate for parameter τ is within :math:`\nu/\tau` of the optimum
    over the working set.  Dense Newton in :math:`3G + 1` unknowns, the G epigraph variables
    eliminated by a Schur complement (a Cholesky of order :math:`2G + 1`; G stays small)."""

    def __init__(self, w: np.ndarray, y: np.ndarray, beta: float):
        self.w, self.y, self.beta = w, y, beta
        self.cols = np.zeros((y.size, 0))
        self.cosang = np.zeros(0)
        self.S = np.zeros((0, 2))
        self.T = np.zeros(0)
        self.b = float(np.sum(w * y) / (np.sum(w) + beta))  # best output bias alone
        self.H0 = np.zeros((1, 1))

    @property
    def G(self) -> int:
        return self.cosang.size

    def add(self, cols: np.ndarray, cosang: np.ndarray, init: float) -> None:
        k = cosang.size
        self.cols = np.concatenate([self.cols, cols], axis=1)
        self.cosang = np.concatenate([self.cosang, cosang])
        S = np.full((k, 2), init)
        q2 = S[:, 0] ** 2 + S[:, 1] ** 2 + 2 * cosang * S[:, 0] * S[:, 1]
        self.S = np.concatenate([self.S, S])
        self.T = np.concatenate([self.T, 2.0 * np.sqrt(q2) + init])  # strictly inside the cone
        Jb = np.concatenate([self.cols, np.ones((self.y.size, 1))], axis=1)
        self.H0 = Jb.T @ (self.w[:, None] * Jb)  # the loss is quadratic: constant Hessian

    def output(self, S=None, b=None) -> np.ndarray:
        S = self.S if S is None else S
        return self.cols @ S.reshape(-1) + (self.b if b is None else b)

    def primal(self, S=None, T=None, b=None) -> float:
        S = self.S if S is None else S
        T = self.T if T is None else T
        b = self.b if b is None else b
        r = self.output(S, b) - self.y
        return 0.5 * float(np.sum(self.w * r * r)) + self.beta * float(np.sum(T)) + 0.5 * self.beta * b * b

    def _phi(self, S, T):
        return T * T - (S[:, 0] ** 2 + S[:, 1] ** 2 + 2 * self.cosang * S[:, 0] * S[:, 1])

    def _fb(self, tau, S, T, b, r=None) -> float:
        """Barrier function; ``r`` is the residual ``output(S, b) - y`` when already known."""
        phi = self._phi(S, T)
        if np.any(S <= 0) or np.any(T <= 0) or np.any(phi <= 0):
            return np.inf
        if r is None:
            P = self.primal(S, T, b)
        else:
            P = 0.5 * float(np.sum(self.w * r * r)) + self.beta * float(np.sum(T)) + 0.5 * self.beta * b * b
        return tau * P - float(np.sum(np.log(S))) - float(np.sum(np.log(phi)))

    def newton(self, tau: float, max_iter: int = 50) -> int:
        # Newton system in (s, T, b); the epigraph variables T_g enter only their own group's
        # barrier term, so their Hessian block is diagonal and they are eliminated by a Schur
        # complement: a Cholesky of order 2G + 1 instead of 3G + 1 (the unknowns s, b are
        # ordered like the columns of H0, so the loss Hessian is added as one block)
        G = self.G
        N = 2 * G + 1
        c = self.cosang
        e0, e1 = 2 * np.arange(G), 2 * np.arange(G) + 1
        dia = np.arange(2 * G)
        wy = self.w
        it = 0
        dec_prev = np.inf
        r = self.output() - self.y
        for it in range(1, max_iter + 1):
            S, T, b = self.S, self.T, self.b
            wr = wy * r
            s = S.reshape(-1)
            phi = self._phi(S, T)
            Ms = np.stack([S[:, 0] + c * S[:, 1], c * S[:, 0] + S[:, 1]], axis=1)
            gs = -2 * Ms / phi[:, None]        # grad of log(phi) w.r.t. s, per group
            gt = 2 * T / phi                   # grad of log(phi) w.r.t. T
            # gradient of tau*P - sum log s - sum log phi
            grs = np.empty(N)
            grs[:2 * G] = tau * (self.cols.T @ wr) - 1.0 / s - gs.reshape(-1)
            grs[N - 1] = tau * (np.sum(wr) + self.beta * b)
            grt = tau * self.beta - gt
            # Hessian of -log(phi): grad(phi) grad(phi)^T / phi^2 - hess(phi) / phi
            hst = gs * gt[:, None]             # (G, 2) coupling s_g -- T_g
            H = tau * self.H0
            H[N - 1, N - 1] += tau * self.beta
            H[dia, dia] += 1.0 / s ** 2
            # s-block of the barrier minus the Schur term hst hst^T / htt, in the cancellation-
            # free form (2/phi) (M - 2 Ms Ms^T / (T^2 + s^T M s)), M = [[1, c], [c, 1]]
            den = 0.5 * (T * T + (S[:, 0] * Ms[:, 0] + S[:, 1] * Ms[:, 1]))
            htt = 4.0 * den / (phi * phi)      # = gt^2 - 2/phi, without its cancellation
            f = 2.0 / phi
            b00 = f * (1.0 - Ms[:, 0] * Ms[:, 0] / den)
            b11 = f * (1.0 - Ms[:, 1] * Ms[:, 1] / den)
            b01 = f * (c - Ms[:, 0] * Ms[:, 1] / den)
            H[e0, e0] += b00
            H[e1, e1] += b11
            H[e0, e1] += b01
            H[e1, e0] += b01
            rhs = grs.copy()
            rhs[:2 * G] -= (hst * (grt / htt)[:, None]).reshape(-1)
            # Jacobi scaling; the barrier Hessian is positive definite, a tiny ridge only
            # guards against rounding when Cholesky fails
            dg = np.sqrt(np.diag(H))
            Hs = H / dg[:, None] / dg[None, :]
            ridge = 0.0
            while True:
                try:
                    cf = sla.cho_factor(Hs if ridge == 0.0 else Hs + ridge * np.eye(N), lower=True,
                                        check_finite=False)
                    break
                except np.linalg.LinAlgError:
                    ridge = max(ridge * 100, 1e-14)
            d = -sla.cho_solve(cf, rhs / dg, check_finite=False) / dg
            dS, db = d[:2 * G].reshape(G, 2), d[N - 1]
            dT = -(grt + np.sum(hst * dS, axis=1)) / htt
            dec = -float(grs @ d) - float(grt @ dT)
            if dec / 2 <= 1e-8:  # Newton decrement: the barrier problem is solved to rounding
                break
            # rounding stall: below 1e-3 the decrement of a self-concordant barrier falls
            # quadratically (next <= ~dec^2); if it does not even fall tenfold, the gradient
            # (a difference of two terms of size tau*|grad P|) is rounding noise -- at large
            # tau this is where the iteration used to spin until max_iter.  The certificate
            # of the returned network is computed exactly afterwards, so stopping here can
            # only cost accuracy that was not attainable anyway.
            if dec < 1e-3 and dec > 0.1 * dec_prev:
                break
            dec_prev = dec
            dr = self.cols @ d[:2 * G] + db
            if dec < 0.25 and np.isfinite(self._fb(tau, S + dS, T + dT, b + db, r + dr)):
                # Newton decrement below 1/2: the full step is in the region of quadratic
                # convergence of the self-concordant barrier function (Boyd & Vandenberghe,
                # 9.6.4); accepting it avoids comparing function values of size tau*P,
                # whose rounding would stall the line search at large tau
                self.S, self.T, self.b = S + dS, T + dT, b + db
                r = r + dr
                continue
            f0 = self._fb(tau, S, T, b, r)
            step = 1.0
            while step > 1e-10:  # Armijo backtracking; below 1e-10 the step is rounding noise
                fs = self._fb(tau, S + step * dS, T + step * dT, b + step * db, r + step * dr)
                if fs <= f0 - 0.25 * step * dec:
                    break
                step *= 0.5
            else:
                break
            self.S, self.T, self.b = S + step * dS, T + step * dT, b + step * db
            r = r + step * dr
        return it

    def solve(self, gap: float, tau0: float, mu: float = 10.0) -> tuple[int, float]:
        tau, its = tau0, 0
        while True:
            its += self.newton(tau)
            if 4.0 * self.G / tau <= gap:
                return its, tau
            tau *= mu


def _solve_penalized(x, y, X, Y, *, scalar, beta, loss, rtol, tol, max_iter=2000) -> Solution:
    r"""Two-layer ReLU network on 1-D data with *all* biases penalized (output bias included):

    .. math:: \min\ \tfrac12\|f(x) - y\|^2 + \tfrac\beta2\Big(\sum_j w_j^2 + b_j^2 + v_j^2 + b_o^2\Big).

    A neuron with unit direction :math:`(w, b)` and outer weight z costs :math:`\beta|z|`
    (balanced).  The circle of directions splits into 2p activation arcs; on an arc a
    neuron's response on the data is linear in its vector :math:`q = |z|(w, b)`, and two
    neurons of one arc and sign merge into one (norms are subadditive).  Writing
    :math:`q = \alpha e_{\rm lo} + \gamma e_{\rm hi}` (:math:`\alpha, \gamma \ge 0`, the arc's
    end directions), the problem is the exact cone program

    .. math:: \min\ \tfrac12\Big\|\sum_{S,\sigma}\sigma D_S[u,1]q_{S\sigma} + b_o - \bar y\Big\|_W^2
              + \beta\sum_{S,\sigma}\|q_{S\sigma}\| + \tfrac\beta2 b_o^2

    (the two-layer convex program of SPEC 2.8 on :math:`X = [x, 1]`, whose 2p patterns are
    these arcs, plus the penalized output bias).  It is solved over a *working set* of
    (arc, sign) groups by :class:`_ArcBarrier`, seeded with the arcs next to the knots of
    the free-bias optimum; groups whose exact optimality condition
    :math:`\max_{q\in\text{arc},\|q\|\le1}\sigma a_S^Tq \le \beta` fails
    (:func:`_signed_arc_max`, all 2p arcs in O(p)) join the set, local maxima along the
    circle first.  The result is certified by the exact dual constraint
    :math:`\max_{w^2+b^2\le1}|v^T(wx+b)_+|` of its residual (:func:`_c_penalized`).
    Kinks :math:`-b/w` may lie between data points: a kink at t costs
    :math:`\sqrt{1+t^2}` per unit slope change (Boursier & Flammarion 2023).
    """
    gr = _group(x, y)
    u, w, yb = gr.u, gr.w, gr.ybar
    p = u.size
    lo, hi, first, last = _penalized_sectors(u)
    arcs = np.nonzero(last > first)[0]  # the arc with no active point is useless
    lo, hi, first, last = lo[arcs], hi[arcs], first[arcs], last[arcs]
    # split arcs wider than pi/2 into equal pieces (same activation set): the end directions
    # of an arc near pi (one distinct point) are nearly opposite and their cone degenerates
    pieces = np.maximum(np.ceil((hi - lo) / (0.5 * np.pi)).astype(int), 1)
    rep = np.repeat(np.arange(lo.size), pieces)
    off = np.arange(rep.size) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    width = (hi - lo)[rep] / pieces[rep]
    lo, hi = lo[rep] + off * width, lo[rep] + (off + 1) * width
    first, last = first[rep], last[rep]
    Elo = np.stack([np.cos(lo), np.sin(lo)], axis=1)
    Ehi = np.stack([np.cos(hi), np.sin(hi)], axis=1)
    cosang = np.cos(hi - lo)
    A = np.stack([u, np.ones(p)], axis=1)
    inner = _ArcBarrier(w, yb, beta)
    inW = np.zeros((lo.size, 2), dtype=bool)
    added: list[list[int]] = []
    init = 1e-3 * max(float(np.max(np.abs(yb))), 1e-300)  # small interior start for new groups

    def add(groups: np.ndarray) -> None:
        cols = np.zeros((p, 2 * len(groups)))
        for i, (j, s) in enumerate(groups):
            sl = slice(first[j], last[j])
            sg = 1.0 if s == 0 else -1.0
            cols[sl, 2 * i] = sg * np.maximum(A[sl] @ Elo[j], 0.0)
            cols[sl, 2 * i + 1] = sg * np.maximum(A[sl] @ Ehi[j], 0.0)
        inW[groups[:, 0], groups[:, 1]] = True
        added.extend(groups.tolist())
        inner.add(cols, cosang[groups[:, 0]], init)

    def run(gap_rel: float, tau0: float | None) -> float | None:
        if inner.G == 0:  # only the output bias: already optimal (closed form)
            return None
        P = max(inner.primal(), 1e-300)
        t0 = 4.0 * inner.G / (0.1 * P)
        return inner.solve(gap_rel * P, t0 if tau0 is None else max(t0, tau0))[1] / 1e3

    # seed: the arcs on both sides of each knot of the free-bias optimum (same orientation, sign)
    res = _solve_two_layer(x, y, beta, grouped=gr)
    rr = _min_norm_ramps(res.tk, res.ck)
    kidx = np.searchsorted(u, rr.t)
    right = np.cos(0.5 * (lo + hi)) > 0
    seed = set()
    for k, o, z in zip(kidx, rr.o, rr.z):
        js = (np.nonzero(right & ((first == k) | (first == k + 1)))[0] if o > 0
              else np.nonzero(~right & ((last == k + 1) | (last == k)))[0])
        seed.update((int(j), 0 if z > 0 else 1) for j in js)
    tau = None
    if seed:
        add(np.array(sorted(seed), dtype=int))
        tau = run(1e-4, None)
    rounds, tight = 0, False
    # rough rounds: relative barrier gap 1e-4, violations above 1e-3 beta; then a tight round
    while rounds < max_iter:
        V = w * (yb - inner.output())
        c0 = np.concatenate([[0], np.cumsum(V)])
        c1 = np.concatenate([[0], np.cumsum(V * u)])
        a = np.stack([c1[last] - c1[first], c0[last] - c0[first]], axis=1)
        viol = np.stack([_signed_arc_max(a, lo, hi), _signed_arc_max(-a, lo, hi)], axis=1) - beta
        viol[inW] = -np.inf
        thr = beta * (0.1 * tol if tight else 1e-3)
        cand = np.argwhere(viol > thr)
        if cand.size == 0:
            if tight:
                break
            tight = True
        else:
            # local maxima along the circle first (neighbouring arcs are nearly collinear)
            peak = (viol > thr) & (viol >= np.roll(viol, 1, axis=0)) & (viol >= np.roll(viol, -1, axis=0))
            if np.any(peak):
                cand = np.argwhere(peak)
            add(cand[np.argsort(-viol[cand[:, 0], cand[:, 1]])[:8]])
            tight = False
        tau = run(0.1 * tol if tight else 1e-4, tau)
        rounds += 1
    S = inner.S
    Wg = np.array(added, dtype=int).reshape(-1, 2)
    q = S[:, [0]] * Elo[Wg[:, 0]] + S[:, [1]] * Ehi[Wg[:, 0]]
    sg = np.where(Wg[:, 1] == 0, 1.0, -1.0)
    full = [(s, qq) for s, qq in zip(sg, q)]
    net = _arc_network(full, inner.b, scalar)
    obj_v = _network_objective(net, X, Y, beta, loss, penalize_biases=True)
    D, vv, c = _dual_bound_two_layer(x, Y, _forward(net, X), beta, loss, kind="penalized")
    # the barrier keeps every group strictly positive; drop the negligible ones (below 1e-9
    # of the largest neuron: barrier residue) when that does not raise the objective.  The
    # lower bound is a bound on the optimum, so the better of the two dual points is kept
    # (the full network's residual is the accurate dual point: its tiny groups sit where
    # their dual constraints are tight)
    qn = np.linalg.norm(q, axis=1) if q.size else np.zeros(0)
    keep = qn > 1e-9 * max(float(qn.max()) if qn.size else 0.0, _EPS)
    if not np.all(keep):
        net2 = _arc_network([g for g, k in zip(full, keep) if k], inner.b, scalar)
        obj2 = _network_objective(net2, X, Y, beta, loss, penalize_biases=True)
        if obj2 <= obj_v:
            D2, vv2, c2 = _dual_bound_two_layer(x, Y, _forward(net2, X), beta, loss, kind="penalized")
            net, obj_v = net2, obj2
            if D2 > D:
                D, vv, c = D2, vv2, c2
    info = {"distinct_points": p, "dual_constraint": c, "neurons": int(net.weights[0][0].shape[1]),
            "working_set": inner.G, "rounds": rounds, "tol": tol,
            "note": "penalized biases incl. output bias; kinks may lie between data points"}
    return Solution(network=net, objective=obj_v, lower_bound=D, method="one-dimensional two-layer ReLU, penalized "
                    "biases (cone program over activation arcs, working-set barrier method)", rtol=rtol, dual=vv,
                    info=info)


def _arc_network(groups: list, bo: float, scalar: bool) -> Network:
    r"""Balanced network of the neurons ``(sign, q)``: inner pair :math:`\sqrt{|q|}\,\hat q`,
    outer weight :math:`\pm\sqrt{|q|}`, output bias ``bo`` (all biases penalized)."""
    if not groups:
        return Network([[np.zeros((1, 1)), np.zeros((1, 1))]], "relu", biases=[[np.zeros(1)]],
                       output_bias=np.array([bo]), scalar_output=scalar)
    q = np.array([g[1] for g in groups])
    sg = np.array([g[0] for g in groups], dtype=float)
    nq = np.linalg.norm(q, axis=1)
    a = np.sqrt(nq)
    qh = q / nq[:, None]
    k = len(groups)
    return Network([[(qh[:, 0] * a).reshape(1, k), (sg * a).reshape(k, 1)]], "relu", biases=[[qh[:, 1] * a]],
                   output_bias=np.array([bo]), scalar_output=scalar)


# =============================================================================================
# Depth L >= 3
# =============================================================================================


def _deep_network(r: _Ramps, depth: int, u: np.ndarray, scalar: bool) -> Network:
    r"""Standard depth-L network ``[1 -> k -> 1 -> ... -> 1]`` computing the ramps ``r``.

    Layer 1 holds the ramps, layer 2 sums them (its bias keeps the pre-activation
    non-negative on ten hull widths around the data, so this ReLU acts as the identity
    there), layers 3..L-1 are scalars; all layers balanced at norm :math:`R^{1/L}` with
    :math:`R = \sum|z_i|`, so the weight decay is :math:`\tfrac{\beta L}{2}R^{2/L}`."""
    L = depth
    k = r.z.size
    R = r.cost
    if k == 0 or R == 0:
        Ws = [np.zeros((1, 1))] + [np.zeros((1, 1)) for _ in range(L - 1)]
        bs = [np.zeros(1) for _ in range(L - 1)]
        return Network([Ws], "relu", biases=[bs], output_bias=np.array([r.const]), scalar_output=scalar)
    rho = R ** (1.0 / L)
    alpha = rho / math.sqrt(R)
    a = np.sqrt(np.abs(r.z))
    W1 = (alpha * r.o * a).reshape(1, k)
    b1 = -alpha * r.o * r.t * a
    W2 = (alpha * np.sign(r.z) * a).reshape(k, 1)
    # psi = sum z_i ramp_i; layer-2 pre-activation is (rho^2/R) psi + b2; keep it >= 0 on
    # [u_1 - 10 w, u_p + 10 w] (w the hull width): its minimum there is at a knot or an end
    width = max(float(u[-1] - u[0]), 1.0)
    pts = np.concatenate([[u[0] - 10 * width, u[-1] + 10 * width], r.t])
    psi = _Ramps(r.t, r.o, r.z, 0.0)(pts)
    b2 = max(0.0, -float(np.min(psi)) * alpha * alpha) + alpha * alpha * max(float(np.max(np.abs(psi))), 1.0) * 1e-3
    Ws = [W1, W2] + [np.full((1, 1), rho) for _ in range(L - 2)]
    bs = [b1, np.array([b2])] + [np.zeros(1) for _ in range(L - 3)]
    out_bias = r.const - rho ** (L - 2) * b2
    return Network([Ws], "relu", biases=[bs], output_bias=np.array([out_bias]), scalar_output=scalar)


def _solve_deep(x, y, X, Y, *, scalar, beta, depth, loss, rtol, max_iter, n_grid) -> Solution:
    r"""Depth :math:`L \ge 3` on 1-D data: the best network whose layers after the first act
    linearly on the data (as in the paper's optimal solutions, whose deeper layers carry
    non-negative aligned vectors).  On the data such a network equals a two-layer one with
    :math:`R_2 \le \prod_l\|W_l\|_F`, so by AM--GM the class optimum is

    .. math:: \min_r\ h(r) + \tfrac{\beta L}{2} r^{2/L},\qquad h(r) = \min\{\ell(g): R(g) \le r\},

    a scalar search along the two-layer path (:math:`h(r(\beta')) = \ell(g_{\beta'})`): a
    geometric grid of :math:`\beta'` plus a bounded Brent refinement around the best point.
    Two proven lower bounds are reported: over the class (two-layer dual points with
    their exact constraints) and over *all* deep networks (Lipschitz bound, loose).
    """
    from scipy.optimize import minimize_scalar

    from ..bounds import max_budget, power_penalty_lower_bound

    L = depth
    gr = _group(x, y)
    u = gr.u
    penalty = lambda r: 0.5 * beta * L * r ** (2.0 / L)  # noqa: E731
    fit0 = gr.rss0 + 0.5 * float(np.sum(gr.w * (gr.ybar - np.average(gr.ybar, weights=gr.w)) ** 2))
    V0 = gr.w * (gr.ybar - np.average(gr.ybar, weights=gr.w))
    bmax = _c_two_layer(u, V0) if gr.p > 1 else 0.0
    evals: dict[float, dict] = {}

    def two_layer(bp: float) -> dict:
        if bp in evals:
            return evals[bp]
        res = _solve_two_layer(x, y, bp, max_iter=max_iter, grouped=gr)
        R = spline_cost(res.tk, res.ck)
        fit = res.P - bp * R
        e = dict(res=res, R=R, fit=fit, J=fit + penalty(R), beta2=bp)
        evals[bp] = e
        return e

    cands = [dict(res=None, R=0.0, fit=fit0, J=fit0, beta2=np.inf)]
    if bmax > 0:
        grid = bmax * np.geomspace(1e-6, 1.0, max(int(n_grid), 4))
        for bp in grid:
            cands.append(two_layer(float(bp)))
        best = min(cands, key=lambda e: e["J"])
        if np.isfinite(best["beta2"]):
            i = int(np.argmin(np.abs(np.log(grid) - np.log(best["beta2"]))))
            lo_, hi_ = np.log(grid[max(i - 1, 0)]), np.log(grid[min(i + 1, grid.size - 1)])
            if hi_ > lo_:
                opt = minimize_scalar(lambda s: two_layer(float(np.exp(s)))["J"], bounds=(lo_, hi_),
                                      method="bounded", options={"xatol": 1e-6})
                cands.append(two_layer(float(np.exp(opt.x))))
        # the interpolating end of the path (beta' -> 0)
        ip = interpolate(x, np.interp(x, u, gr.ybar))
        cands.append(dict(res=None, R=ip.cost, fit=gr.rss0, J=gr.rss0 + penalty(ip.cost), beta2=0.0, interp=ip))
    best = min(cands, key=lambda e: e["J"])
    if best.get("interp") is not None:
        ramps = _min_norm_ramps(u, gr.ybar)
    elif best["res"] is None:
        ramps = _Ramps(np.zeros(0), np.zeros(0), np.zeros(0), float(np.average(gr.ybar, weights=gr.w)))
    else:
        ramps = _min_norm_ramps(best["res"].tk, best["res"].ck)
    net = _deep_network(ramps, L, u, scalar)
    obj = _network_objective(net, X, Y, beta, loss)
    # proven lower bounds from the two-layer dual points met along the way
    Vs = [V0] + [gr.w * (gr.ybar - e["res"].g) for e in evals.values()]
    Ds, c2, cl = [], [], []
    for V in Vs:
        V = V - gr.w * (np.sum(V) / np.sum(gr.w))
        A = float(V @ gr.ybar)
        Bq = float(np.sum(V * V / gr.w))
        for t in np.linspace(0.0, 1.0, 21)[1:]:
            Ds.append(gr.rss0 + t * A - 0.5 * t * t * Bq)
            c2.append(t * _c_two_layer(u, V))
            cl.append(t * _c_lipschitz(u, V))
    T_max = max_budget(obj - 0.0, beta, L)
    lb_all = power_penalty_lower_bound(np.array(Ds), np.array(cl), beta=beta, depth=L, T_max=T_max)
    lb_class = power_penalty_lower_bound(np.array(Ds), np.array(c2), beta=beta, depth=L, T_max=T_max)
    lb_all = max(lb_all, 0.0)
    info = dict(two_layer_beta=best["beta2"], path_budget=best["R"], two_layer_solves=len(evals),
                class_lower_bound=lb_class, class_gap=obj - lb_class, neurons=int(ramps.z.size),
                knots=ramps.t.copy(),
                note=("optimal among networks whose layers after the first are linear on the data "
                      "(the paper's structure); deeper networks outside that class can do better, so "
                      "lower_bound is the proven Lipschitz bound over all networks (usually loose); "
                      "see docs/one_dimensional.md"))
    info["architecture"] = "linear_on_data"
    return Solution(network=net, objective=obj, lower_bound=lb_all,
                    method=f"one-dimensional deep ReLU (L={L}): two-layer spline path with power penalty",
                    rtol=rtol, dual=None, info=info)
