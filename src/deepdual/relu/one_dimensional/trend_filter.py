r"""Two-layer ReLU networks on one-dimensional data, squared loss: a weighted l1 trend filter.

The dual is a box-constrained QP in the ramp correlations
:math:`h_j = \sum_k V_k (u_k - u_j)_+` (group sums :math:`V = Bh`, a banded second
difference), with :math:`|h_j| \le \beta` and :math:`|h_j - h_1| \le \beta`.  Fixing
:math:`h_1 = \tau` leaves a box QP whose primal is the weighted l1 trend filter
:math:`J_\tau` (kinks cost :math:`\min(\beta, \beta \pm \tau)`, plus :math:`\tau` times the
first slope); :func:`solve_two_layer` maximizes the concave :math:`\tau \mapsto \min_g J_\tau`
by a root search on its derivative, minimizing each :math:`J_\tau` exactly by feature-sign
search (:func:`_feature_sign`, tridiagonal spline refits) warm-started by Mehrotra
interior-point iterations on the banded quasi-definite Newton system (:func:`_mehrotra`,
:func:`_ipm_start`).  Every step costs :math:`O(n)`.  Derivation and measurements:
``docs/one_dimensional.md`` §5.

References
----------
S.-J. Kim, K. Koh, S. Boyd, D. Gorinevsky, "l1 trend filtering", SIAM Review 2009
(banded interior-point methods for the same kind of dual).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from ...progress import current as current_monitor
from .splines import EPS, Grouped, group_data, spline_cost
from .certificate import c_two_layer, ramp_correlations, rounding_slack


#: default relative duality gap at which the two-layer solver stops
DEFAULT_TOL = 1e-9


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

    mon = current_monitor()
    for it in range(1, max_iter + 1):
        if mon.expired():  # solve(..., time_limit=): only a warm start, stop it
            mon.stop("one-dimensional interior-point start")
            stopped = "time_limit"
            break
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
        c = c_two_layer(self.u, V, skip=self.skip)
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
    h, _ = ramp_correlations(u, V)
    hi_ = h[1:-1].astype(float)
    # stop chasing violations below: rel * beta (a dual point scaled by 1/(1 + rel) is feasible,
    # so the certificate loses about rel relative),
    # the proven rounding bound of the correlations, and the typical rounding noise of
    # V = W(ybar - g) propagated through the ramps (sqrt(p) eps per unit of |W ybar|)
    kappa = (rel * beta + rounding_slack(u, V)
             + 4 * EPS * math.sqrt(u.size) * float(np.max(np.abs(prob.w * prob.ybar))) * (u[-1] - u[0]))
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
    mon = current_monitor()
    while it < max_iter:
        if mon.expired():  # solve(..., time_limit=): the caller certifies the current iterate
            mon.stop("one-dimensional active set")
            break
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
        keep = np.abs(gc) > 1e-12 * max(float(np.max(np.abs(gc))), EPS)
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
    scale = max(0.5 * float(np.sum(prob.w * (prob.ybar - np.average(prob.ybar, weights=prob.w)) ** 2)), EPS)
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
    grouped: Grouped
    P: float
    D: float
    info: dict = field(default_factory=dict)


def _normalize(gr: Grouped, beta: float, skip: bool) -> tuple[_Problem, float]:
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


def solve_two_layer(x: np.ndarray, y: np.ndarray, beta: float, *, skip: bool = False,
                     max_iter: int = 2000, tol: float = DEFAULT_TOL,
                     grouped: Grouped | None = None) -> _TwoLayerResult:
    r"""Optimal two-layer network (squared loss) on 1-D data, as a spline with data knots.

    The base problem's dual has one coupled coordinate, :math:`h_1 = x^TV` (the correlation
    with the linear ramp).  Fixing :math:`h_1 = \tau` leaves a box-constrained dual whose
    primal is :math:`\Phi(\tau) = \min_g J_\tau(g)` (weighted kinks plus :math:`\tau s_1`),
    solved exactly by :func:`_feature_sign`; :math:`\Phi` is concave and the optimum is
    :math:`\max_{|\tau|\le\beta}\Phi(\tau)`, found by a root search on its derivative
    (``docs/one_dimensional.md`` §5).  With ``skip`` (free linear term) :math:`\tau = 0`.
    """
    from scipy.optimize import brentq

    gr = grouped if grouped is not None else group_data(x, y)
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
    if c_two_layer(gr.u, V0, skip=skip) <= beta:
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
    if not skip and not current_monitor().expired():  # (time_limit: certify tau = 0's spline)
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
                    if current_monitor().expired():
                        raise _OutOfTime
                    return _tau_slope_derivative(prob, solve_at(t), sg)

                lo, hi = (0.0, bp) if sg > 0 else (-bp, 0.0)
                tau_star = None
                try:
                    tau_star = brentq(dfun, lo, hi, xtol=4 * EPS * bp, rtol=4 * EPS, maxiter=200)
                except _OutOfTime:  # time_limit: the best of the splines solved so far
                    current_monitor().stop("one-dimensional slope search")
                    best = sols[0.0]  # (certified by its own dual bound, like any spline)
                except ValueError:
                    # J_tau can have several minimizers (degenerate data) and the one-sided
                    # derivative depends on which one the warm-started active set returns, so
                    # the end signs seen above may not repeat; Phi is concave, so with one sign
                    # at both ends the maximum is at the end the derivative points to.  (The
                    # returned network is certified by its own exact dual gap either way.)
                    tau_star = hi if dfun(lo) > 0 and dfun(hi) > 0 else lo
                    info["tau_search"] = "endpoint (derivative of one sign at both ends)"
                if tau_star is not None:
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


class _OutOfTime(Exception):
    """Raised inside the slope search when the solve's time limit has passed."""


def _trivial_fit(gr: Grouped, skip: bool) -> np.ndarray:
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
    h, _ = ramp_correlations(prob.u, V)
    hv = h[idx].astype(float)
    return np.maximum(hv - a, -b - hv)
