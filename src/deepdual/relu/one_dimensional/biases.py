r"""Two-layer ReLU networks on one-dimensional data with penalized biases.

Penalizing every bias like a weight is the two-layer program on :math:`X = [x, 1]`:
a neuron is a direction :math:`(w, b)` on the unit circle, and its activation pattern on
the data is constant on each of the 2p arcs between the directions orthogonal to some
:math:`(u_k, 1)`.  On an arc the correlation :math:`\sum_k V_k (w u_k + b)_+` is linear in
:math:`(w, b)`, so the dual constraint is an exact maximum over arcs
(:func:`_signed_arc_max`), and the primal is a cone program over the arcs, solved by a
working set of arcs and a barrier method (:class:`ArcBarrier`, :func:`solve_penalized`;
no external solver).  Kinks may lie between data points.  Derivation:
``docs/one_dimensional.md`` §6 (penalized biases).

References
----------
E. Boursier, N. Flammarion, "Penalising the biases in norm regularisation enforces
sparsity", NeurIPS 2023.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from ...network import Network
from ...progress import current as current_monitor
from ...solution import Solution
from .splines import EPS, group_data, min_norm_ramps
from .certificate import dual_bound_two_layer, forward_pass, network_objective, penalized_sectors
from .trend_filter import solve_two_layer


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


class ArcBarrier:
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


def solve_penalized(x, y, X, Y, *, scalar, beta, loss, rtol, tol, max_iter=2000) -> Solution:
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

    (the two-layer convex program of docs/theory.md §2.8 on :math:`X = [x, 1]`, whose 2p patterns are
    these arcs, plus the penalized output bias).  It is solved over a *working set* of
    (arc, sign) groups by :class:`ArcBarrier`, seeded with the arcs next to the knots of
    the free-bias optimum; groups whose exact optimality condition
    :math:`\max_{q\in\text{arc},\|q\|\le1}\sigma a_S^Tq \le \beta` fails
    (:func:`_signed_arc_max`, all 2p arcs in O(p)) join the set, local maxima along the
    circle first.  The result is certified by the exact dual constraint
    :math:`\max_{w^2+b^2\le1}|v^T(wx+b)_+|` of its residual (:func:`_c_penalized`).
    Kinks :math:`-b/w` may lie between data points: a kink at t costs
    :math:`\sqrt{1+t^2}` per unit slope change (Boursier & Flammarion 2023).
    """
    gr = group_data(x, y)
    u, w, yb = gr.u, gr.w, gr.ybar
    p = u.size
    lo, hi, first, last = penalized_sectors(u)
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
    inner = ArcBarrier(w, yb, beta)
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
    res = solve_two_layer(x, y, beta, grouped=gr)
    rr = min_norm_ramps(res.tk, res.ck)
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
    mon = current_monitor()
    while rounds < max_iter:
        if mon.expired():  # solve(..., time_limit=): the current network, certified below
            mon.stop("one-dimensional penalized-bias working set")
            break
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
    obj_v = network_objective(net, X, Y, beta, loss, penalize_biases=True)
    D, vv, c = dual_bound_two_layer(x, Y, forward_pass(net, X), beta, loss, kind="penalized")
    # the barrier keeps every group strictly positive; drop the negligible ones (below 1e-9
    # of the largest neuron: barrier residue) when that does not raise the objective.  The
    # lower bound is a bound on the optimum, so the better of the two dual points is kept
    # (the full network's residual is the accurate dual point: its tiny groups sit where
    # their dual constraints are tight)
    qn = np.linalg.norm(q, axis=1) if q.size else np.zeros(0)
    keep = qn > 1e-9 * max(float(qn.max()) if qn.size else 0.0, EPS)
    if not np.all(keep):
        net2 = _arc_network([g for g, k in zip(full, keep) if k], inner.b, scalar)
        obj2 = network_objective(net2, X, Y, beta, loss, penalize_biases=True)
        if obj2 <= obj_v:
            D2, vv2, c2 = dual_bound_two_layer(x, Y, forward_pass(net2, X), beta, loss, kind="penalized")
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
