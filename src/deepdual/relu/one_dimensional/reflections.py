r"""Deep narrow ReLU networks on 1-D data as Lasso models (``architecture="deep_narrow"``).

Zeger, Wang, Mishkin, Ergen, Candès & Pilanci (arXiv 2403.01046, "A library of mirrors")
train *deep narrow* networks on one-dimensional data: a sum of ``m`` width-one ReLU chains

.. math:: f(x) = \xi + \sum_{j=1}^m \alpha_j\, a_{L-1,j}(x),\qquad a_{0,j} = x,\quad
          a_{l,j} = (w_{l,j}\,a_{l-1,j} + b_{l,j})_+ ,

with the :math:`\ell_L` penalty :math:`\frac\beta L\sum_j\big(|\alpha_j|^L + \sum_{l<L}
|w_{l,j}|^L\big)` on every weight (biases and :math:`\xi` free), and prove the training
problem equals a Lasso :math:`\min_{\xi,z}\frac12\|\xi\mathbf 1 + Az - y\|^2+\beta\|z\|_1`
over an explicit dictionary ``A`` (:func:`paper_dictionary`: ramps for L = 2, nested ramps
for L = 3, and for L = 4 features whose first breakpoint is the *reflection*
:math:`2a_k - a_j` of a data point about another).

What this module computes (derivation: ``docs/one_dimensional.md`` §10):

* AM--GM turns the penalty of a chain into :math:`\beta|z|`, :math:`z = \alpha\prod_l|w_l|`,
  times a *unit-weight* chain; every unit-weight chain, for every depth :math:`L \ge 3`, is a
  clipped ramp :math:`\pm\min((x-a)_+, b-a)` + const (kinks ``a <= b`` anywhere, possibly
  infinite) -- so for :math:`L \ge 3` all depths have the *same* optimum, and it is the Lasso
  over clipped ramps between data points, whose fitted spline costs
  :math:`\tfrac\beta2\,\mathrm{TV}` of its slope sequence padded with zeros
  (:func:`clip_cost`).  The paper's L = 3 and L = 4 dictionaries (reflections included) reach
  the same optimum (tests compare with cvxpy on :func:`paper_dictionary`): the reflection
  features are optimal alternatives, never strictly better.
* Exact dual constraint :math:`\sup_{\text{units}}|v^Th| = \max_k h_k - \min_k h_k` over the
  ramp correlations (:func:`c_deep_narrow`), hence a proven weak-duality bound for every
  network of this architecture (:func:`certify_deep_narrow`).
* :func:`solve_deep_narrow`: the padded trend filter by a feature-sign search over knots with
  exact tridiagonal spline refits, certified by the exact constraint;
  :func:`deep_narrow_network` builds the chains (balanced, so
  ``objective(network, ..., regularization="l_L")`` equals the Lasso value).

References
----------
E. Zeger, Y. Wang, A. Mishkin, T. Ergen, E. Candès, M. Pilanci, "A library of mirrors: deep
neural nets in low dimensions are convex Lasso models with reflection features",
arXiv:2403.01046.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import scipy.linalg as sla

from ...losses import Loss, SquaredLoss, get_loss
from ...network import Network
from ...objective import objective as _objective
from ...solution import DEFAULT_RTOL, Certificate, Solution
from .certificate import equalize_dual, ramp_correlations, rounding_slack
from .splines import group_data

__all__ = ["ARCHITECTURE", "REGULARIZATION", "paper_dictionary", "unit_chain", "c_deep_narrow", "clip_cost",
           "min_norm_clips", "deep_narrow_network", "is_deep_narrow", "solve_deep_narrow",
           "certify_deep_narrow", "reflection_points"]

#: the paper's name of the architecture (``solve(..., architecture=ARCHITECTURE)``)
ARCHITECTURE = "deep_narrow"
#: the paper's penalty :math:`\frac\beta L\|\tilde\theta\|_L^L` (``objective(..., regularization=...)``)
REGULARIZATION = "l_L"


# =============================================================================================
# The paper's dictionary (recursive definition), for reference solves and figures
# =============================================================================================


def unit_chain(x: np.ndarray, signs: tuple[int, ...], breaks: tuple[float, ...]) -> np.ndarray:
    r"""A unit-weight ReLU chain: :math:`g_1 = (s_1(x - t))_+`,
    :math:`g_l = (s_l(g_{l-1}(x) - g_{l-1}(a_l)))_+` with ``breaks = (t, a_2, ..., a_{L-1})``:
    layer ``l`` thresholds at the value of the previous layer at the point ``a_l``."""
    x = np.asarray(x, dtype=float)
    pts = [x] + [np.array([float(a)]) for a in breaks[1:]]
    vals = [np.maximum(signs[0] * (p - breaks[0]), 0.0) for p in pts]
    for l in range(1, len(signs)):
        c = vals[l][0]
        vals = [np.maximum(signs[l] * (v - c), 0.0) for v in vals]
    return vals[0]


def paper_dictionary(x: Any, depth: int) -> tuple[np.ndarray, list[tuple]]:
    r"""The dictionary of arXiv 2403.01046 for deep narrow ReLU networks, depth 2, 3 or 4.

    Columns are indexed by signs :math:`s\in\{\pm1\}^{L-1}`, data indices
    :math:`j\in[n]^{L-1}` and, for L = 4, :math:`k\in\{0,1\}`: the unit chain of
    :func:`unit_chain` with first breakpoint :math:`a_{j_1}` (k = 0) or its reflection
    :math:`2a_{j_2} - a_{j_1}` about :math:`a_{j_2}` (k = 1) and layer-``l`` thresholds at
    :math:`a_{j_l}`.  Size :math:`2^{L-1}n^{L-1}` (doubled for L = 4): small ``n`` only.

    Returns
    -------
    A : array (n, N)
    labels : list of (signs, first breakpoint, thresholds points, reflected)
    """
    x = np.asarray(x, dtype=float).ravel()
    if depth not in (2, 3, 4):
        raise ValueError(f"`depth` must be 2, 3 or 4 (the paper's deep narrow dictionaries), got {depth!r}")
    n = x.size
    if n == 0 or not np.all(np.isfinite(x)):
        raise ValueError("`x` must be a non-empty finite vector")
    if 2 ** (depth - 1) * n ** (depth - 1) * (2 if depth == 4 else 1) > 2_000_000:
        raise ValueError(f"the paper's depth-{depth} dictionary of n = {n} points is too large to form")
    cols, labels = [], []
    for s in itertools.product((1, -1), repeat=depth - 1):
        for j in itertools.product(range(n), repeat=depth - 1):
            for k in ((0, 1) if depth == 4 else (0,)):
                t = 2 * x[j[1]] - x[j[0]] if k else x[j[0]]
                cols.append(unit_chain(x, s, (t,) + tuple(x[list(j[1:])])))
                labels.append((s, float(t), tuple(float(a) for a in x[list(j[1:])]), bool(k)))
    return np.column_stack(cols), labels


def reflection_points(x: Any) -> np.ndarray:
    r"""The reflections :math:`2a_k - a_j` of the data about each other (j != k, distinct values)."""
    u = np.unique(np.asarray(x, dtype=float).ravel())
    r = (2 * u[None, :] - u[:, None])[~np.eye(u.size, dtype=bool)]
    return np.setdiff1d(np.unique(r), u)


# =============================================================================================
# Exact dual constraint and the cost of a spline
# =============================================================================================


def c_deep_narrow(u: np.ndarray, V: np.ndarray) -> float:
    r"""Exact :math:`\sup|\sum_k V_k h(u_k)|` over unit-weight chains of any depth ``L >= 3``,
    for group sums ``V`` with :math:`\sum V = 0`: every such chain is a clipped ramp
    :math:`\pm\min((x-a)_+, b-a)` + const, whose correlation :math:`h(a) - h(b)` is piecewise
    linear in ``a``, ``b`` with breakpoints at the data, so the supremum is
    :math:`\max_k h_k - \min_k h_k` over the ramp correlations (with :math:`h_p = 0`).
    Rounded up by twice :func:`rounding_slack`."""
    if u.size <= 1:
        return 0.0
    h, _ = ramp_correlations(u, V)
    c = float(np.max(h) - np.min(h))
    return math.nextafter(c, math.inf) + 2.0 * rounding_slack(u, V)


def _slopes(u: np.ndarray, g: np.ndarray) -> np.ndarray:
    return np.diff(g) / np.diff(u)


def clip_cost(u: Any, g: Any) -> float:
    r"""Least :math:`\sum|z|` of clipped ramps (plus a free constant) equal to ``g`` at ``u``
    (sorted, distinct): half the total variation of the slope sequence padded with zeros,
    :math:`\tfrac12(|s_1| + \sum_k|s_{k+1}-s_k| + |s_{p-1}|)`."""
    u, g = np.asarray(u, float), np.asarray(g, float)
    if u.size <= 1:
        return 0.0
    s = np.concatenate([[0.0], _slopes(u, g), [0.0]])
    return 0.5 * float(np.sum(np.abs(np.diff(s))))


def min_norm_clips(u: np.ndarray, g: np.ndarray, *, tol: float = 0.0) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    r"""Decompose the spline through ``(u, g)`` into clipped ramps of least :math:`\sum|z|`.

    Returns ``(const, a, b, z)`` with ``g = const + sum_i z_i min((u - a_i)_+, b_i - a_i)`` at
    the data: the positive and negative parts of the slope sequence are each cut into
    intervals by a last-in-first-out stack (every increase opens an interval, every decrease
    closes the newest), so :math:`\sum|z|` is :func:`clip_cost`.  Slope changes below ``tol``
    times the largest slope are treated as rounding (the previous slope is kept)."""
    if u.size <= 1:
        return float(g[0]) if g.size else 0.0, np.zeros(0), np.zeros(0), np.zeros(0)
    s = _slopes(u, g)
    if tol > 0:  # slope changes below tol * max|s| are rounding: keep the previous slope
        eps = tol * float(np.max(np.abs(s)))
        for j in range(s.size):
            prev = s[j - 1] if j else 0.0
            if abs(s[j] - prev) <= eps:
                s[j] = prev
        if abs(s[-1]) <= eps:
            s[-1] = 0.0
    A, B, Z = [], [], []
    for sign in (1.0, -1.0):
        q = np.concatenate([np.maximum(sign * s, 0.0), [0.0]])
        stack: list[list[float]] = []  # [start segment, amount]
        prev = 0.0
        for j, qj in enumerate(q):
            if qj > prev:
                stack.append([j, qj - prev])
            elif qj < prev:
                drop = prev - qj
                while drop > 0 and stack:
                    start, amt = stack[-1]
                    take = min(amt, drop)
                    A.append(u[int(start)])
                    B.append(u[j])
                    Z.append(sign * take)
                    drop -= take
                    if take >= amt:
                        stack.pop()
                    else:
                        stack[-1][1] = amt - take
            prev = qj
    return float(g[0]), np.asarray(A), np.asarray(B), np.asarray(Z)


# =============================================================================================
# Networks of the architecture
# =============================================================================================


def deep_narrow_network(const: float, a: np.ndarray, b: np.ndarray, z: np.ndarray, depth: int,
                        scalar: bool = True) -> Network:
    r"""Parallel width-one chains computing ``const + sum z_i min((x - a_i)_+, b_i - a_i)``.

    Chain ``i``: :math:`g_1 = (x - a)_+`, :math:`g_2 = (b - a - g_1)_+`, layers 3..L-1 pass
    :math:`g_2 \ge 0` on, output :math:`-z\,g_2` (the constant :math:`z(b-a)` goes to the output
    bias).  Balanced: every weight has modulus :math:`\rho = |z|^{1/L}` and layer-``l`` biases
    are scaled by :math:`\rho^l`, so the chain costs :math:`\frac\beta L\cdot L\rho^L = \beta|z|`."""
    L = int(depth)
    if L < 3:
        raise ValueError(f"`depth` must be >= 3 for deep narrow chains, got {depth!r}")
    keep = z != 0
    a, b, z = a[keep], b[keep], z[keep]
    out_bias = float(const) + float(np.sum(z * (b - a)))
    if z.size == 0:
        return Network([[np.zeros((1, 1)) for _ in range(L)]], "relu", biases=[[np.zeros(1)] * (L - 1)],
                       output_bias=np.array([float(const)]), scalar_output=scalar)
    Ws, bs = [], []
    for ai, bi, zi in zip(a, b, z):
        rho = abs(zi) ** (1.0 / L)
        w = [1.0, -1.0] + [1.0] * (L - 3)
        c = [-ai, bi - ai] + [0.0] * (L - 3)
        Ws.append([np.array([[rho * wl]]) for wl in w] + [np.array([[-np.sign(zi) * rho]])])
        bs.append([np.array([rho ** (l + 1) * cl]) for l, cl in enumerate(c)])
    return Network(Ws, "relu", biases=bs, output_bias=np.array([out_bias]), scalar_output=scalar)


def is_deep_narrow(network: Network) -> bool:
    """Whether ``network`` has the architecture: ReLU, 1-D input, one output, depth >= 3, every
    sub-network a chain of 1x1 weights."""
    return (network.activation == "relu" and network.depth >= 3 and network.input_dim == 1
            and network.n_outputs == 1
            and all(W.shape == (1, 1) for layers in network.weights for W in layers))


# =============================================================================================
# Solver: padded trend filter, banded barrier method on the box dual + exact refits
# =============================================================================================


def _fit_knots(u: np.ndarray, wts: np.ndarray, y: np.ndarray, knots: np.ndarray, sig: np.ndarray,
               lam: float) -> np.ndarray:
    r"""Exact minimizer of :math:`\frac12\|g-y\|_W^2 + \lambda\sum_r \sigma_r\,(\tilde Dg)_{k_r}` over
    splines with kinks (padded slope changes) only at ``knots`` (flat outside them): ``g`` is
    linear between consecutive knots, so the unknowns are its values ``G`` at the knots and the
    normal equations are tridiagonal."""
    m = knots.size
    if m < 2:
        c = float(np.sum(wts * y) / np.sum(wts))
        return np.full(u.size, c)
    uk = u[knots]
    # g = P G: linear interpolation between knots, constant outside
    pos = np.clip(np.searchsorted(uk, u, side="right") - 1, 0, m - 2)
    lam_i = np.clip((u - uk[pos]) / (uk[pos + 1] - uk[pos]), 0.0, 1.0)
    # normal matrix P^T W P (tridiagonal) and right-hand side
    main = np.zeros(m)
    off = np.zeros(m - 1)
    np.add.at(main, pos, wts * (1 - lam_i) ** 2)
    np.add.at(main, pos + 1, wts * lam_i ** 2)
    np.add.at(off, pos, wts * lam_i * (1 - lam_i))
    rhs = np.zeros(m)
    np.add.at(rhs, pos, wts * (1 - lam_i) * y)
    np.add.at(rhs, pos + 1, wts * lam_i * y)
    # penalty: theta_r = (G_{r+1} - G_r)/dU_r, (Dg)_{k_r} = theta_r - theta_{r-1} (theta_0 = theta_m = 0)
    # lam sum_r sig_r (theta_r - theta_{r-1}) = lam sum_r theta_r (sig_r - sig_{r+1})
    cvec = sig[:-1] - sig[1:]
    dU = np.diff(uk)
    grad_lin = np.zeros(m)
    grad_lin[:-1] -= lam * cvec / dU
    grad_lin[1:] += lam * cvec / dU
    rhs = rhs - grad_lin
    ab = np.zeros((2, m))
    ab[0, 1:] = off
    ab[1] = main + 1e-300
    try:
        G = sla.solveh_banded(ab, rhs, check_finite=False)
    except np.linalg.LinAlgError:
        full = np.diag(main) + np.diag(off, 1) + np.diag(off, -1)
        G = np.linalg.lstsq(full, rhs, rcond=None)[0]
    return G[pos] * (1 - lam_i) + G[pos + 1] * lam_i


def _lasso_value(gr, g: np.ndarray, beta: float) -> float:
    return gr.rss0 + 0.5 * float(np.sum(gr.w * (g - gr.ybar) ** 2)) + beta * clip_cost(gr.u, g)


def _group_bound(gr, g: np.ndarray, beta: float) -> float:
    """Proven lower bound from the residual of the spline values ``g`` (squared loss)."""
    r = gr.ybar[gr.inv] - g[gr.inv]
    return _residual_bound(gr, r, beta)


def _residual_bound(gr, r: np.ndarray, beta: float) -> float:
    """Squared loss, grouped data: ``v = t (r - mean r)`` exactly centred, scaled into
    ``c(v) <= beta``; the within-tie sum of squares ``rss0`` is added (a constant of every fit)."""
    from ...exact_centering import center_exactly

    v = center_exactly(r.reshape(-1, 1))[:, 0]
    V = np.bincount(gr.inv, v, minlength=gr.p)
    c = c_deep_narrow(gr.u, V)
    A = math.fsum(v * gr.ybar[gr.inv])
    Bq = math.fsum(v * v)
    t = max(A / Bq, 0.0) if Bq > 0 else 0.0
    if c > 0:
        t = min(t, beta / c)
    return gr.rss0 + t * A - 0.5 * t * t * Bq


def solve_deep_narrow(x: np.ndarray, y: np.ndarray, X: np.ndarray, Y: np.ndarray, *, scalar: bool, beta: float,
                      depth: int, loss: Loss, rtol: float, max_iter: int = 100_000) -> Solution:
    r"""Optimal deep narrow ReLU network (arXiv 2403.01046) of depth ``L >= 3`` under the
    :math:`\ell_L` penalty (module docstring): the Lasso over clipped ramps, i.e. the padded
    trend filter :math:`\min_g \frac12\|g - y\|^2 + \frac\beta2\,\|\tilde Dg\|_1`.

    Algorithm: feature-sign search in the knot parametrization (:func:`_feature_sign`): exact
    tridiagonal refits, every refit O(n); the returned network is certified by the exact
    constraint of its residual (:func:`certify_deep_narrow`).
    """
    if not isinstance(loss, SquaredLoss):
        raise ValueError(f"architecture='{ARCHITECTURE}' supports loss='squared' only, got "
                         f"{getattr(loss, 'name', loss)!r}")
    L = int(depth)
    gr = group_data(x, y)
    u, wts, yb, p = gr.u, gr.w, gr.ybar, gr.p
    info: dict[str, Any] = {"architecture": ARCHITECTURE, "regularization": REGULARIZATION, "depth": L,
                            "certificate_scope": "within the architecture (deep narrow chains, l_L penalty)"}
    if p <= 1:
        g = np.full(p, float(np.average(yb, weights=wts)))
        iters = 0
    else:
        # normalized units: x' = (x - x0)/a, y' = (y - y0)/b, lam' = beta / (2 a b)
        x0, a = float(u[0]), float(u[-1] - u[0])
        y0 = float(np.average(yb, weights=wts))
        bsc = max(float(np.max(np.abs(yb - y0))), np.finfo(float).tiny)
        un = (u - x0) / a
        yn = (yb - y0) / bsc
        lam = beta / (2.0 * a * bsc)
        Dband = _tri_dtilde(un)
        g, knots, iters = _feature_sign(un, wts, yn, Dband, lam, max_steps=max_iter)
        g = bsc * g + y0
    if p > 1 and knots.size >= 2:
        # g is linear between its knots and constant outside: decompose the knot spline exactly
        # (no slopes recomputed from rounded neighbouring values)
        const, aa, bb, zz = min_norm_clips(u[knots], g[knots])
    else:
        const, aa, bb, zz = float(g[0]), np.zeros(0), np.zeros(0), np.zeros(0)
    net = deep_narrow_network(const, aa, bb, zz, L, scalar)
    obj = _objective(net, X, Y, beta=beta, regularization=REGULARIZATION)
    cert = certify_deep_narrow(net, X, Y, beta=beta, rtol=rtol)
    info.update(lasso_value=_lasso_value(gr, g, beta), refits=iters, neurons=int(np.count_nonzero(zz)),
                kinks=np.unique(np.concatenate([aa, bb])) if zz.size else np.zeros(0),
                note=("certificate within the deep narrow architecture under the paper's l_L penalty "
                      "(beta/L) sum |w|^L, not over networks with weight decay; for L >= 3 every depth has "
                      "this optimum (docs/one_dimensional.md §10)"))
    return Solution(network=net, objective=obj, lower_bound=cert.lower_bound,
                    method=f"one-dimensional deep narrow ReLU (L={L}, l_L penalty): Lasso over clipped ramps "
                           "(arXiv 2403.01046), certificate within the architecture",
                    rtol=rtol, dual=cert.dual, info=info)


def _signed_dual(u: np.ndarray, wts: np.ndarray, y: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Ramp correlations ``h`` of the centred residual sums (the dual ``w = h + const``), in
    double precision (they only choose the knots; the certificate recomputes them exactly)."""
    V = wts * (y - g)
    V = V - np.sum(V) * wts / np.sum(wts)
    S = np.cumsum(V[::-1])[::-1]
    inc = np.diff(u) * S[1:]
    return np.concatenate([np.cumsum(inc[::-1])[::-1], [0.0]])


def _feature_sign(u: np.ndarray, wts: np.ndarray, y: np.ndarray, T: np.ndarray, lam: float, *,
                  max_steps: int) -> tuple[np.ndarray, np.ndarray, int]:
    r"""Feature-sign search (Lee, Battle, Raina & Ng 2007) for the padded trend filter
    :math:`\min_g\frac12\|g-y\|_W^2 + \lambda\|\tilde Dg\|_1`, in the knot parametrization.

    For knots ``K`` with signs ``sigma`` the refit (:func:`_fit_knots`) makes the dual
    :math:`w = h + c` equal :math:`\lambda\sigma` on ``K``; the most violating point
    (:math:`|h_j + c| > \lambda`) joins with the sign of :math:`h_j + c`; a refit that flips the
    sign of a knot's slope change is cut back to the first zero crossing (a line segment
    along which the objective decreases), where that knot leaves.  Every step lowers the
    objective, so the search ends after finitely many steps at the optimum.  Returns the fit,
    the knots (``g`` is linear between them and constant outside) and the number of refits."""
    knots = np.zeros(0, dtype=int)
    sig = np.zeros(0)
    g = np.full(u.size, float(np.sum(wts * y) / np.sum(wts)))
    steps = 0
    while steps < max_steps:
        h = _signed_dual(u, wts, y, g)
        c = float(np.median(lam * sig - h[knots])) if knots.size else -0.5 * (np.max(h) + np.min(h))
        viol = np.abs(h + c) - lam
        if knots.size:
            viol[knots] = -np.inf
        j = int(np.argmax(viol))
        if viol[j] <= 1e-10 * lam:
            break
        if knots.size == 0:  # the first two knots: the extreme correlations
            j2 = int(np.argmin(h)) if h[j] + c > 0 else int(np.argmax(h))
            cand = np.array(sorted({j, j2}))
            csig = np.sign(h[cand] + c)
        else:  # the worst point of every run of violators (several knots per refit)
            pos = viol > 1e-10 * lam
            runs = np.flatnonzero(np.diff(np.concatenate([[0], pos.astype(int), [0]])))
            new = [int(a + np.argmax(viol[a:b])) for a, b in zip(runs[::2], runs[1::2])]
            cand = np.append(knots, new)
            csig = np.append(sig, np.sign(h[new] + c))
        order = np.argsort(cand)
        cand, csig = cand[order], csig[order]
        while True:
            steps += 1
            g_new = _fit_knots(u, wts, y, cand, csig, lam)
            d_new = _tri_mul(T, g_new)[cand]
            bad = csig * d_new < 0
            if not np.any(bad) or steps >= max_steps:
                g, knots, sig = g_new, cand, csig
                break
            d_old = _tri_mul(T, g)[cand]
            # first crossing of a sign-consistent old value to the wrong sign
            with np.errstate(divide="ignore", invalid="ignore"):
                tcross = np.where(bad, d_old / (d_old - d_new), np.inf)
            tcross[~np.isfinite(tcross) | (tcross < 0)] = 0.0
            tcross[~bad] = np.inf
            i = int(np.argmin(tcross))
            t = float(min(max(tcross[i], 0.0), 1.0))
            g = (1 - t) * g + t * g_new
            keep = np.ones(cand.size, bool)
            keep[i] = False
            cand, csig = cand[keep], csig[keep]
            if cand.size < 2:
                cand, csig = np.zeros(0, dtype=int), np.zeros(0)
                g = _fit_knots(u, wts, y, cand, csig, lam)
                knots, sig = cand, csig
                break
    return g, knots, steps


def _tri_dtilde(u: np.ndarray) -> np.ndarray:
    """``D~`` as a (3, p) array of its sub, main and super diagonals ``[lo, di, up]``
    (``lo[k] = D[k, k-1]``, ``up[k] = D[k, k+1]``)."""
    p = u.size
    inv = 1.0 / np.diff(u)
    lo, di, up = np.zeros(p), np.zeros(p), np.zeros(p)
    # row k = s_k - s_{k-1}; s_k = inv_k (g_{k+1} - g_k)
    di[:-1] -= inv  # s_k in row k: -inv_k g_k
    up[:-1] += inv  # +inv_k g_{k+1}
    di[1:] -= inv   # -s_{k-1} in row k: -inv_{k-1} g_k
    lo[1:] += inv   # +inv_{k-1} g_{k-1}
    return np.vstack([lo, di, up])


def _tri_mul(T: np.ndarray, v: np.ndarray) -> np.ndarray:
    out = T[1] * v
    out[1:] += T[0, 1:] * v[:-1]
    out[:-1] += T[2, :-1] * v[1:]
    return out


def _tri_tmul(T: np.ndarray, v: np.ndarray) -> np.ndarray:
    out = T[1] * v
    out[:-1] += T[0, 1:] * v[1:]
    out[1:] += T[2, :-1] * v[:-1]
    return out


# =============================================================================================
# Certificate of any deep narrow network
# =============================================================================================


def certify_deep_narrow(network: Network, X: np.ndarray, Y: np.ndarray, *, beta: float, loss: Any = "squared",
                        rtol: float = DEFAULT_RTOL) -> Certificate:
    r"""Objective (with the :math:`\ell_L` penalty) and proven lower bound for a network of the
    deep narrow architecture.

    Weak duality: for :math:`v = -\nabla\ell(F)` made orthogonal to the constant (the free
    output bias) and scaled so that :math:`c(v) \le \beta` (:func:`c_deep_narrow`, exact),
    every network of the architecture has :math:`P \ge -\ell^*(-v)`: AM--GM gives
    :math:`\frac\beta L\sum|w|^L \ge \beta\sum_j|z_j|` and :math:`|v^Tf| \le c(v)\sum|z_j|`.
    The bound holds over deep narrow chains of every depth ``>= 3`` and width; it is not a
    bound over networks with weight decay or other architectures."""
    if not isinstance(network, Network) or not is_deep_narrow(network):
        raise ValueError("`network` must be a deep narrow ReLU network (1-D input, one output, depth >= 3, "
                         "every sub-network a chain of 1x1 weights) for regularization='l_L'")
    lossf = get_loss(loss)
    x = X[:, 0]
    F = network.forward(X)
    obj = float(lossf.value(F, Y)) + network_l_l(network, beta)
    v = lossf.dual_point(F, Y)
    v = equalize_dual(v, x, lossf, skip=False)
    details = {"architecture": ARCHITECTURE, "regularization": REGULARIZATION,
               "scope": "within the architecture: deep narrow ReLU chains of any depth >= 3 and width"}
    if v is None:
        return Certificate(objective=obj, lower_bound=-np.inf, method="deep narrow (l_L): no dual point",
                           exact_constraint=True, dual=None, rtol=rtol, details=details)
    u, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    V = np.bincount(inv, v[:, 0], minlength=u.size)
    c = c_deep_narrow(u, V)
    if u.size > 1 and counts.max() > 1:
        # group sums of tied samples are rounded to double: each errs by at most
        # (m_k - 1) eps sum_k |v|, which moves every correlation by at most that times the hull width
        c += 2.0 * float(counts.max()) * np.finfo(float).eps * float(np.sum(np.abs(v))) * float(u[-1] - u[0])
    tmax = np.inf if c == 0 else beta / c
    t, D = lossf.best_scale(v, Y, tmax)
    return Certificate(objective=obj, lower_bound=float(D),
                       method="exact: deep narrow clipped-ramp constraint (l_L penalty, within the architecture)",
                       exact_constraint=True, dual=t * v, rtol=rtol, details=details)


def network_l_l(network: Network, beta: float) -> float:
    r""":math:`\frac\beta L\sum_{j,l}\sum|W_{l,j}|^L` with ``L`` the network's depth."""
    L = network.depth
    return beta / L * math.fsum(float(np.sum(np.abs(W) ** L)) for layers in network.weights for W in layers)
