r"""Two-layer ReLU networks on one-dimensional data with logistic, hinge and cross-entropy losses.

With free biases the training problem is the same finite Lasso over ramps at the data as
for the squared loss, with another loss:

.. math::

    \min_{c,\, z^\pm}\ \ell\Big(c\mathbf 1 + \sum_k z^+_k (x - x_k)_+ + z^-_k (x_k - x)_+,\ y\Big)
    + \beta \sum_k (|z^+_k| + |z^-_k|).

Logistic loss: proximal Newton whose steps are squared-loss solves
(:func:`_solve_logistic`); hinge loss: a sparse LP (:func:`_solve_hinge`); both certified
by the exact dual constraint of the returned network (:func:`solve_binary`).  K-class
cross-entropy: the group Lasso over vector-valued ramps at the data
(:func:`solve_cross_entropy`).  Derivation: ``docs/one_dimensional.md`` §6 (logistic and
hinge losses; cross-entropy with K outputs).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from ...losses import Loss, LogisticLoss
from ...network import Network
from ...progress import current as current_monitor
from ...solution import Solution
from .splines import Grouped, group_data, min_norm_ramps, ramps_network, ramp_slopes, spline_cost
from .certificate import c_columns, dual_bound_two_layer, equalize_dual, forward_pass, network_objective
from .trend_filter import solve_two_layer


# =============================================================================================
# Two layers, logistic and hinge losses (the same finite Lasso, another loss)
# =============================================================================================


def _dual_bound_from_point(x: np.ndarray, Y: np.ndarray, v: np.ndarray, beta: float,
                           loss: Loss) -> tuple[float, np.ndarray | None, float]:
    r"""Proven lower bound from a given per-sample dual direction ``v`` (shape (n, 1)):
    made orthogonal to the free output bias by :func:`equalize_dual` (which keeps it in
    the conjugate's domain), scaled into the exact dual constraint and by
    :meth:`Loss.best_scale`.  Returns ``(bound, point, c)``."""
    v = equalize_dual(v, x, loss, skip=False)
    u, inv = np.unique(x, return_inverse=True)
    c = c_columns(u, inv, v, "base")
    tmax = np.inf if c == 0 else beta / c
    t, D = loss.best_scale(v, Y, tmax)
    return float(D), t * v, c


def _spline_objective(gr: Grouped, g: np.ndarray, y: np.ndarray, beta: float, loss: Loss) -> float:
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
    squared-loss problem, solved exactly in :math:`O(n)` by :func:`solve_two_layer`
    (weights as multiplicities).  A backtracking (Armijo) line search on
    :math:`\ell(g) + \beta R(g)` globalizes the step (Lee, Sun & Saunders 2014).  The iterate
    is kept as a spline with a knot set (the union of the model solutions' knots), so that
    :math:`R` is evaluated on the knots only: on all points, slopes over spacings of
    :math:`10^{-8}` would carry rounding errors far above the decrease being measured.
    Stops when the certified duality gap (dual point :math:`-\nabla\ell`, exact constraint)
    is below ``tol`` relative.  Returns ``(knot positions, knot values, primal, dual point,
    lower bound, info)``.
    """
    gr = group_data(x, y)
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
    D, vv, c = dual_bound_two_layer(x, Y, g[gr.inv][:, None], beta, loss)
    it, steps = 0, []
    mon = current_monitor()
    while P - D > tol * abs(P) and it < max_iter:
        if mon.expired():  # solve(..., time_limit=): the current spline, certified below
            mon.stop("one-dimensional proximal Newton (logistic)")
            break
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
        res = solve_two_layer(u, t, beta, max_iter=2000, grouped=Grouped(u, H, t, gr.inv, 0.0))
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
        D2, vv2, c2 = dual_bound_two_layer(x, Y, g[gr.inv][:, None], beta, loss)
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

    gr = group_data(x, y)
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
    mon = current_monitor()
    left = mon.remaining()
    opts = {"time_limit": max(left, 1e-3)} if np.isfinite(left) else {}
    res = linprog(cost, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=bounds, method="highs",
                  options=opts)
    Y = y[:, None]
    if res.status == 1 and mon.expired():
        # solve(..., time_limit=): HiGHS stopped; its point (or the zero function) is certified
        # by the exact dual constraint of its own residual, never by the unfinished multipliers
        mon.stop("one-dimensional hinge linear program")
        x_lp = res.x if res.x is not None and np.all(np.isfinite(res.x)) else np.zeros(N)
        g = x_lp[og:og + p].copy()
        D, vv, c = dual_bound_two_layer(x, Y, g[gr.inv][:, None], beta, loss)
        P = _spline_objective(gr, g, y, beta, loss)
        info = {"distinct_points": p, "lp_iterations": int(getattr(res, "nit", 0) or 0), "dual_constraint": c,
                "stopped": "time_limit"}
        return u, g, P, vv, D, info
    if res.status != 0:
        raise RuntimeError(f"the hinge-loss linear program failed: {res.message}")
    g = res.x[og:og + p].copy()
    P = _spline_objective(gr, g, y, beta, loss)
    # HiGHS marginals of A_ub x <= b_ub are <= 0 (d objective / d b); a_i = -marginal in [0, 1]
    a = np.clip(-res.ineqlin.marginals, 0.0, 1.0)
    D, vv, c = _dual_bound_from_point(x, Y, (y * a)[:, None], beta, loss)
    D2, vv2, c2 = dual_bound_two_layer(x, Y, g[gr.inv][:, None], beta, loss)
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


def solve_binary(x, y, X, Y, *, scalar, beta, loss, rtol, tol, max_iter) -> Solution:
    r"""Two-layer 1-D ReLU network with unpenalized biases for the logistic or hinge loss:
    the finite Lasso over the data ramps (``docs/one_dimensional.md`` §2, any convex loss),
    solved by :func:`_solve_logistic` or :func:`_solve_hinge`; the returned network is the
    cheapest one with the optimal values at the data (:func:`min_norm_ramps`) and the
    lower bound the exact dual constraint of a dual point (§4)."""
    if isinstance(loss, LogisticLoss):
        tk, ck, P, vv, D, info = _solve_logistic(x, y, beta, loss, tol=tol, max_iter=max_iter)
        method = "one-dimensional two-layer ReLU, logistic loss: ramps at the data (proximal Newton)"
    else:
        tk, ck, P, vv, D, info = _solve_hinge(x, y, beta, loss)
        method = "one-dimensional two-layer ReLU, hinge loss: ramps at the data (sparse LP)"
    u, g = tk, ck
    ramps = min_norm_ramps(u, g)
    net = ramps_network(ramps, scalar=scalar)
    obj = network_objective(net, X, Y, beta, loss)
    if u.size > 2:
        # rounding leaves kinks ~eps/spacing where the optimum has none: drop slope changes
        # below 1e-9 of the largest slope, keeping the result only if its objective is within
        # 1e-12 relative (rounding level, far below any rtol) of the full one
        ktol = 1e-9 * float(np.max(np.abs(ramp_slopes(u, g))))
        r2 = min_norm_ramps(u, g, kink_tol=ktol)
        if r2.z.size < ramps.z.size:
            net2 = ramps_network(r2, scalar=scalar)
            obj2 = network_objective(net2, X, Y, beta, loss)
            if obj2 <= obj + 1e-12 * abs(obj):
                ramps, net, obj = r2, net2, obj2
    F = forward_pass(net, X)
    D2, vv2, c2 = dual_bound_two_layer(x, Y, F, beta, loss)
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


def solve_cross_entropy(x: np.ndarray, X: np.ndarray, Y: np.ndarray, *, scalar: bool, beta: float,
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
        c = c_columns(u, inv, v, "base") if p > 1 else 0.0
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

    mon = current_monitor()
    while P - D > tol * abs(P) and rounds < max_iter:
        if mon.expired():  # solve(..., time_limit=): the current network, certified below
            mon.stop("one-dimensional group Lasso (cross-entropy)")
            break
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
    obj = network_objective(net, X, Y, beta, loss)
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
