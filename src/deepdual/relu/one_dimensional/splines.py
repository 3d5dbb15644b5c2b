r"""Linear splines with kinks at one-dimensional data: their cost and a minimal network.

On the sorted distinct points :math:`u_1 < \dots < u_p` (:func:`group_data`: multiplicities and
group means) a fit is determined by its values :math:`g_k`, and the smallest weight decay
of a two-layer ReLU network with free biases reaching them is

.. math::

    R(g) = \max\Big(T,\ \tfrac12\big(T + |s_1 + s_{p-1}|\big)\Big),\qquad
    T = \sum_{k=2}^{p-1} |s_k - s_{k-1}|

(:func:`spline_cost`, :math:`s_k` the slopes between neighbours).  :func:`min_norm_ramps`
returns ramps attaining it, :func:`spline_network` / :func:`ramps_network` the network,
and :func:`interpolate` the minimum-norm interpolant (the limit :math:`\beta \to 0`).
Everything here is shared by the other ``relu_1d*`` modules (also the floating-point
constants).  Derivation: ``docs/one_dimensional.md`` §2 (kinks at the data suffice) and
§3 (the cost of a spline and the minimum-norm interpolant).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..._validation import check_finite, check_targets
from ...network import Network


EPS = np.finfo(float).eps
LONG_DOUBLE = np.longdouble
LONG_DOUBLE_EPS = float(np.finfo(np.longdouble).eps)


# =============================================================================================
# Data: sorted distinct points, multiplicities, group means
# =============================================================================================


@dataclass
class Grouped:
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


def group_data(x: np.ndarray, y: np.ndarray) -> Grouped:
    u, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    w = counts.astype(float)
    ybar = np.bincount(inv, y, minlength=u.size) / w
    rss0 = 0.5 * float(np.sum((y - ybar[inv]) ** 2))
    return Grouped(u, w, ybar, inv, rss0)


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


def ramp_slopes(u: np.ndarray, g: np.ndarray) -> np.ndarray:
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
    s = ramp_slopes(u, g)
    T = float(np.sum(np.abs(np.diff(s))))
    if skip:
        return T
    S = float(s[0] + s[-1])
    return max(T, 0.5 * (T + abs(S)))


@dataclass
class Ramps:
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


def min_norm_ramps(u: np.ndarray, g: np.ndarray, *, skip: bool = False, kink_tol: float = 0.0) -> Ramps:
    r"""A cheapest ramp representation of the linear spline through ``(u, g)``.

    Slope changes :math:`|\gamma_k| \le` ``kink_tol`` are dropped (the caller evaluates the
    resulting network exactly).  Without ``skip`` the two slopes outside the data are
    chosen as in ``docs/one_dimensional.md`` §3, so the cost equals :func:`spline_cost`.
    """
    p = u.size
    if p == 1:
        return Ramps(np.zeros(0), np.zeros(0), np.zeros(0), float(g[0]))
    s = ramp_slopes(u, g)
    gam = np.diff(s)  # slope changes at u_2..u_{p-1}
    keep = np.abs(gam) > kink_tol
    t_int = u[1:-1][keep]
    d_int = gam[keep]
    if skip:
        # f = c + s_1 x + sum gamma_k (x - u_k)_+
        t, o, z = t_int, np.ones(t_int.size), d_int
        const = float(g[0] - s[0] * u[0])
        return Ramps(t, o, z, const, float(s[0]))
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
    ramps = Ramps(t, o, z, 0.0)
    # slopes of the representation: right of u_p it is sum zr, left of u_1 it is -sum zl
    ramps.const = float(g[0] - ramps(np.array([u[0]]))[0])
    return ramps


def ramps_network(r: Ramps, *, scalar: bool = True, penalize_biases: bool = False) -> Network:
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
    r = min_norm_ramps(u, g, skip=skip)
    return ramps_network(r), r.cost


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
    r = min_norm_ramps(u, g)
    return Interpolant(ramps_network(r, scalar=True), r.cost)
