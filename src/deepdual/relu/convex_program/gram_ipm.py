r"""Gram-reduced primal–dual interior-point method for the squared-loss sampled program at
large :math:`n` (``docs/convex_program.md`` §10b).

The program over a fixed set of :math:`P` patterns (scalar output, squared loss) is

.. math::

    \min_{z}\ \tfrac12\Big\|\sum_p D_pX(z_p - z_{P+p}) - y\Big\|^2 + \beta\sum_{g<2P}\|z_g\|
    \quad\text{s.t.}\quad S_pXz_g \ge 0\ (p = g \bmod P),\qquad S_p = 2D_p - I .

**Gram reduction.**  With :math:`F = [D_1X, \dots, D_PX]` (:math:`n\times Pr`, ``X`` in
row-space coordinates) and :math:`\delta_p = z_p - z_{P+p}` the data term is
:math:`\tfrac12\delta^TQ\delta - b^T\delta + \tfrac12\|y\|^2` with
:math:`Q = F^TF` (blocks :math:`X^TD_pD_qX`) and :math:`b = F^Ty`, computed once in row
blocks.  Nothing else of the data term depends on :math:`n`.

**Newton system.**  The Mehrotra predictor–corrector with Nesterov–Todd scaling of
:mod:`~deepdual.relu.convex_program.conic_ipm` (same cone, same steps) needs
:math:`(D + \mathcal{H})\Delta x = h`, :math:`D` block diagonal (one :math:`(r+1)^2`
block per group), :math:`\mathcal{H}` the data Hessian, which acts on
:math:`\delta(\Delta x)` only.  With :math:`E_g = D_g^{-1}`,
:math:`H_p = (E_p)_{zz} + (E_{P+p})_{zz} = L_pL_p^T`, :math:`c = (E h)_{z,p} - (E h)_{z,P+p}`:

.. math:: (I + HQ)\,\delta = c \iff \delta = c - Lw,\quad (I + L^TQL)\,w = L^TQc,\qquad
          \Delta x_g = E_g\big(h_g - s_g(0, (Q\delta)_p)\big),

one Cholesky of the :math:`Pr\times Pr` matrix :math:`I + L^TQL` (eigenvalues
:math:`\ge 1`) per iteration, :math:`O((Pr)^3)` instead of :math:`O(n(Pr)^2)`, followed by
iterative refinement on the full system.

**Row working set.**  Each group has :math:`n` cone rows but few are near-active.  The
method runs on a subset :math:`J_p` of rows per pattern (the smallest margins of the
interior direction at the start); the solution is checked on all :math:`n` rows in
blocks, the most violated rows join, and the program is solved again.  The restricted
program is a relaxation, so its solution, once feasible on all rows, is optimal; a point
still infeasible after the last round is made feasible by the exact cone projection
(:func:`~deepdual.relu.convex_program.first_order.feasible_point`).

**Proven bound.**  For :math:`v = y - F(z)` computed from all rows and any
:math:`\mu \ge 0`, :math:`c_g(v) \le \|s_gX^TD_pv + X^TS_p\mu\|` (§4); the method's
multipliers of the rows :math:`J_p` are such a :math:`\mu` (zero elsewhere), and the cells
that could set the maximum get their exact value by constraint generation
(:func:`~deepdual.relu.convex_program.first_order.cell_value`).  Then
:meth:`~deepdual.losses.Loss.best_scale` gives a proven lower bound on the sampled
program, valid whatever rows were used.

References
----------
L. Vandenberghe, "The CVXOPT linear and quadratic cone program solvers", 2010.
S. Mehrotra, "On the implementation of a primal-dual interior point method", SIAM J.
Optim. 2 (1992).
M. Pilanci and T. Ergen, ICML 2020 (the convex program).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve
from scipy.linalg.blas import dsyrk

from ...blocks import row_norms
from ...losses import SquaredLoss
from ...progress import current as current_monitor
from .conic_ipm import bmv, ipm_error, lin_max_step, mehrotra_step, soc_det, soc_div, soc_max_step, soc_nt_scaling
from .first_order import FirstOrderResult, cell_value, feasible_point
from .groups import INTERIOR_MARGIN, interior_direction

__all__ = ["GramSOCP", "GramState", "data_fingerprint", "gram_matrix", "solve_gram", "gram_memory",
           "GRAM_MAX_UNKNOWNS"]

_TINY = np.finfo(float).tiny

#: largest P * r for which the Gram-reduced method is used (the Pr x Pr matrices: 2 of
#: them, 8 (Pr)^2 bytes each; one Cholesky of (Pr)^3/3 flops per iteration)
GRAM_MAX_UNKNOWNS = 6000
#: rows per pattern in the first row working set (times r), and rows added per violating
#: group and round (times r)
GRAM_ROWS0 = 4
GRAM_ROWS_ADD = 2
#: row-generation rounds before the remaining violators are projected
GRAM_MAX_ROUNDS = 12
#: interior-point tolerance of the first round (the row set is still growing)
GRAM_FIRST_TOL = 1e-3
#: entries per row-block temporary of the passes over the data (2 MB), and of the blocks
#: of F = [D_1X, ..., D_PX] in the Gram matrix's rank-k updates (at least 256 rows)
GRAM_BLOCK_ENTRIES = 2**18
GRAM_UPDATE_ENTRIES = 2**18


def gram_memory(n: int, r: int, P: int, m: int | None = None) -> int:
    """Estimated peak bytes of :func:`solve_gram` beyond its inputs: two (Pr)^2 matrices
    (Q and the Newton matrix), the row-block temporaries, per-group arrays over ``m``
    working rows (default 8 r + 64) and a few vectors of length n."""
    Pr = P * r
    m = 8 * r + 64 if m is None else m
    G = 2 * P
    q = r + 1
    return int(2 * 8 * Pr * Pr + 3 * 8 * max(GRAM_UPDATE_ENTRIES, 256 * Pr) + 8 * GRAM_BLOCK_ENTRIES * 4
               + 8 * P * m * r + 8 * 6 * G * m + 8 * 8 * G * q * q + 8 * 4 * n + 8 * 3 * Pr * r)


# ============================================================================ helpers
def _blocks(n: int, width: int, entries: int = GRAM_BLOCK_ENTRIES) -> list[tuple[int, int]]:
    b = max(1, entries // max(1, width))
    return [(a, min(n, a + b)) for a in range(0, n, b)]


def gram_matrix(Xr: np.ndarray, pats: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""``(Q, b)``: :math:`Q = F^TF` and :math:`b = F^Ty`, :math:`F = [D_1X, \dots, D_PX]`
    (``Q`` (Pr, Pr) with blocks :math:`X^TD_pD_qX`), accumulated over row blocks by a
    symmetric rank-k update (BLAS ``dsyrk``; :math:`n(Pr)^2` flops, memory
    :math:`(Pr)^2` plus one block)."""
    n, r = Xr.shape
    P = len(pats)
    Pr = P * r
    Q = np.zeros((Pr, Pr), order="F")
    b = np.zeros(Pr)
    # blocks of at least 256 rows: each update reads and writes all of Q (memory traffic
    # 16 (Pr)^2 bytes), so short updates would be bound by memory, not by flops
    for a, e in _blocks(n, 1, max(256, GRAM_UPDATE_ENTRIES // Pr)):
        Fb = (pats[:, a:e].T[:, :, None] * Xr[a:e][:, None, :]).reshape(e - a, Pr)  # (rows, Pr)
        # C := Fb^T Fb + C on the upper triangle (Fb^T is Fortran-contiguous: no copy)
        Q = dsyrk(1.0, Fb.T, beta=1.0, c=Q, trans=0, lower=0, overwrite_c=1)
        b += Fb.T @ y[a:e]
    for c0 in range(0, Pr, 256):  # the lower triangle from the upper, in column blocks
        c1 = min(Pr, c0 + 256)
        Q[c1:, c0:c1] = Q[c0:c1, c1:].T
        Q[c0:c1, c0:c1] = np.triu(Q[c0:c1, c0:c1]) + np.triu(Q[c0:c1, c0:c1], 1).T
    return Q.T, b  # symmetric: the transpose is the C-ordered view of the same array


def data_fingerprint(Xr: Any, y: np.ndarray) -> tuple:
    r"""``(shape of Xr, shape of y, digest)``: a BLAKE2b digest of the values of ``Xr`` (an
    array or a :class:`~deepdual.blocks.ScaledDesign`, read in row blocks of
    :data:`GRAM_BLOCK_ENTRIES` entries: no copy of the data) and of ``y``, as float64.
    Equal values give equal fingerprints (a design and its materialized array included);
    different values collide with probability about :math:`2^{-256}`.  One pass over the
    data (:math:`O(nr)`, beside the Gram matrix's :math:`O(n(Pr)^2)`)."""
    n, r = Xr.shape
    h = hashlib.blake2b(digest_size=32)
    for a, e in _blocks(n, r):
        h.update(np.ascontiguousarray(Xr[a:e], dtype=float).tobytes())
    yv = np.ascontiguousarray(y, dtype=float)
    h.update(yv.tobytes())
    return (tuple(Xr.shape), yv.shape, h.digest())


class GramState:
    r"""What :func:`solve_gram` keeps between calls on the same data whose pattern set changes
    (column generation, ``docs/convex_program.md`` §13): the Gram matrix and vector per
    pattern and the final row working set of each pattern.

    :meth:`gram` returns :math:`Q = F^TF`, :math:`b = F^Ty` for a new pattern list: blocks
    :math:`X^TD_pD_qX` of two surviving patterns are copied, only the columns of the new
    patterns are computed (against all patterns, :math:`n\,Pr\,P_{\rm new}r` flops instead
    of :math:`n(Pr)^2/2`), rows and columns of removed patterns are dropped.  Different data
    (``Xr``, ``y``) reset the state.

    The data are recognised by :func:`data_fingerprint` (shapes and a BLAKE2b digest of the
    values, read a row block at a time), not by a copy: ``Xr`` may be the implicit design
    :class:`~deepdual.blocks.ScaledDesign` over the caller's X, and a design and its
    materialized array with the same values are the same data.
    """

    def __init__(self) -> None:
        #: :func:`data_fingerprint` of the (Xr, y) the state was computed for
        self.data: tuple | None = None
        self.keys: list[bytes] = []
        self.Q: np.ndarray | None = None
        self.b: np.ndarray | None = None
        #: pattern key -> its final working rows (indices into the data)
        self.rows: dict[bytes, np.ndarray] = {}
        #: Gram columns computed / copied (patterns), over all calls
        self.computed = 0
        self.copied = 0

    def gram(self, Xr: np.ndarray, pats: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(Q, b)`` of :func:`gram_matrix` for ``pats``, updated from the last call's."""
        n, r = Xr.shape
        pats = np.ascontiguousarray(pats, dtype=bool)
        data = data_fingerprint(Xr, y)
        if data != self.data:
            self.__init__()
            self.data = data
        keys = [p.tobytes() for p in pats]
        P = len(keys)
        Pr = P * r
        pos = {k: i for i, k in enumerate(self.keys)}
        old = np.array([pos.get(k, -1) for k in keys], dtype=np.intp)
        surv = np.flatnonzero(old >= 0)
        new = np.flatnonzero(old < 0)
        ar = np.arange(r)
        Q = np.empty((Pr, Pr))
        b = np.empty(Pr)
        if len(surv):
            oc = (old[surv][:, None] * r + ar).ravel()
            sc = (surv[:, None] * r + ar).ravel()
            Q[np.ix_(sc, sc)] = self.Q[np.ix_(oc, oc)]
            b[sc] = self.b[oc]
        if len(new):
            nc = (new[:, None] * r + ar).ravel()
            C = np.zeros((Pr, len(nc)))
            bn = np.zeros(len(nc))
            for a, e in _blocks(n, 1, max(256, GRAM_UPDATE_ENTRIES // Pr)):
                Fb = (pats[:, a:e].T[:, :, None] * Xr[a:e][:, None, :]).reshape(e - a, Pr)
                Fn = Fb[:, nc]
                C += Fb.T @ Fn
                bn += Fn.T @ y[a:e]
            Q[:, nc] = C
            Q[nc, :] = C.T
            Cn = C[nc]
            Q[np.ix_(nc, nc)] = 0.5 * (Cn + Cn.T)
            b[nc] = bn
        self.keys, self.Q, self.b = keys, Q, b
        self.computed += len(new)
        self.copied += len(surv)
        return Q, b


# ============================================================================ the method
class GramSOCP:
    r"""Mehrotra predictor–corrector with Nesterov–Todd scaling (as
    :class:`~deepdual.relu.convex_program.conic_ipm.GroupSOCQP`) for the Gram-reduced
    program of the module docstring over row working sets.

    Parameters
    ----------
    Q : (Pr, Pr), b : (Pr,), yy : float
        Data term :math:`\tfrac12\delta^TQ\delta - b^T\delta + \tfrac12 yy`.
    A : (P, m, r)
        Signed working rows of each pattern (:math:`S_{p,jj}x_j`, padded by repetition).
    beta : float
    interior : (P, r)
        Unit directions strictly inside each pattern's cone (start).
    active : (2P,) bool, optional
        Groups in the program (the others are fixed at 0: patterns without interior).
    """

    step_fraction = 0.99
    refine = 2

    def __init__(self, Q: np.ndarray, b: np.ndarray, yy: float, A: np.ndarray, beta: float,
                 interior: np.ndarray, active: np.ndarray | None = None) -> None:
        P, m, r = A.shape
        self.Q, self.b, self.yy, self.A, self.beta = Q, b, float(yy), A, float(beta)
        self.P, self.m, self.r, self.G, self.q = P, m, r, 2 * P, r + 1
        self.sgn = np.repeat([1.0, -1.0], P)
        self.on = np.ones(2 * P, dtype=bool) if active is None else np.asarray(active, dtype=bool)
        self.iters = 0
        self.stalled = False
        self._start(interior)

    # ---------------------------------------------------------------- operators
    def delta(self, z: np.ndarray) -> np.ndarray:
        return z[:self.P] - z[self.P:]

    def data_grad(self, z: np.ndarray) -> np.ndarray:
        """Gradient of the data term in z (G, r)."""
        g = (self.Q @ self.delta(z).ravel() - self.b).reshape(self.P, self.r)
        return np.concatenate([g, -g])

    def data_value(self, z: np.ndarray) -> float:
        d = self.delta(z).ravel()
        return 0.5 * float(d @ (self.Q @ d)) - float(self.b @ d) + 0.5 * self.yy

    def constraint(self, z: np.ndarray) -> np.ndarray:
        """Slacks of the working rows (G, m)."""
        P = self.P
        return np.concatenate([self.A @ z[:P, :, None], self.A @ z[P:, :, None]])[:, :, 0]

    def rows_adjoint(self, w: np.ndarray) -> np.ndarray:
        r""":math:`A_p^Tw_g` (G, r)."""
        P = self.P
        At = self.A.transpose(0, 2, 1)
        return np.concatenate([At @ w[:P, :, None], At @ w[P:, :, None]])[:, :, 0]

    # ---------------------------------------------------------------- start
    def _start(self, interior: np.ndarray) -> None:
        G, m = self.G, self.m
        f0 = 0.5 * self.yy
        deg = int(self.on.sum()) * (m + 1)
        a = 10.0 * max(f0, _TINY) / (1.5 * self.beta * max(deg, 1))
        x = np.zeros((G, self.q))
        x[:, 1:] = a * np.concatenate([interior, interior])
        x[:, 0] = 2.0 * a
        x[~self.on] = 0.0
        x[~self.on, 0] = 2.0 * a  # fixed groups: t only (z = 0), kept at its value
        mu = 1.5 * a * self.beta
        self.x = x
        self.sl = self.constraint(x[:, 1:])
        self.sl[~self.on] = a  # dummy slacks of fixed groups (their rows are not used)
        self.ll = mu / np.maximum(self.sl, np.quantile(self.sl, 0.25, axis=1)[:, None])
        Js = x.copy()
        Js[:, 1:] *= -1.0
        self.lq = mu * Js / soc_det(x)[:, None]
        self._rescale(x, self.lq, first=True)

    def _rescale(self, s: np.ndarray, lam: np.ndarray, first: bool = False) -> None:
        q = self.q
        eta, wbar, v = soc_nt_scaling(s, lam)
        J = np.eye(q)
        J[1:, 1:] *= -1.0
        Jv = v.copy()
        Jv[:, 1:] *= -1.0
        Wt = eta[:, None, None] * (2.0 * v[:, :, None] * v[:, None, :] - J[None])
        Wti = (2.0 * Jv[:, :, None] * Jv[:, None, :] - J[None]) / eta[:, None, None]
        Jl = lam.copy()
        Jl[:, 1:] *= -1.0
        self.ell_q = eta[:, None] * (2.0 * v * np.einsum("gi,gi->g", v, lam)[:, None] - Jl)
        if first:
            self.W, self.Winv = Wt, Wti
        else:
            self.W, self.Winv = Wt @ self.W, self.Winv @ Wti

    # ---------------------------------------------------------------- linear algebra
    def _factor(self, WinvT: np.ndarray, wl: np.ndarray):
        r"""Solver of :math:`(D + \mathcal{H})d = h` by the Gram reduction (docs/convex_program.md
        §10b): with :math:`x_v, x_w` the two groups of a pattern, :math:`S = D_v + D_w` and the
        parallel sum :math:`K = D_vS^{-1}D_w = (D_v^{-1} + D_w^{-1})^{-1}`, the difference
        :math:`\hat\delta = x_v - x_w` solves :math:`(K + \hat Q)\hat\delta = D_wS^{-1}h_v -
        D_vS^{-1}h_w` (:math:`\hat Q` the data Hessian on the z-parts; the t-part is
        eliminated per pattern, leaving one :math:`Pr\times Pr` Cholesky of
        :math:`Q + \tilde K`), and :math:`x_v = S^{-1}(h_v + h_w + D_w\hat\delta)`,
        :math:`x_w = x_v - \hat\delta`.  No inverse of a single :math:`D_g` is formed (they
        range from rounding level to ~1/gap near the optimum)."""
        q, P, r = self.q, self.P, self.r
        D = WinvT.transpose(0, 2, 1) @ WinvT
        Ag = np.concatenate([self.A, self.A])
        D[:, 1:, 1:] += (Ag.transpose(0, 2, 1) * wl[:, None, :]) @ Ag
        del Ag  # (2P, m, r): not alive beside the Pr x Pr matrix M below
        off = ~self.on
        D[off] = np.eye(q)[None]  # fixed groups: decoupled (their Q rows are zero, rhs 0)
        Dv, Dw = D[:P], D[P:]
        S = Dv + Dw
        try:
            Rs = np.linalg.cholesky(S)
        except np.linalg.LinAlgError:
            return None
        Rsi = np.linalg.inv(Rs)
        Yv, Yw = Rsi @ Dv, Rsi @ Dw
        K = Yv.transpose(0, 2, 1) @ Yw
        K = 0.5 * (K + K.transpose(0, 2, 1))
        Sinv = Rsi.transpose(0, 2, 1) @ Rsi
        ktt = K[:, 0, 0]
        ktz = K[:, 0, 1:]
        Kt = K[:, 1:, 1:] - ktz[:, :, None] * ktz[:, None, :] / ktt[:, None, None]  # t eliminated
        Pr = P * r
        M = self.Q.copy()
        M4 = M.reshape(P, r, P, r)
        idx = np.arange(P)
        M4[idx, :, idx, :] += Kt
        try:
            # (M is symmetric: its transpose is the Fortran-ordered view LAPACK factors in
            # place; a C-ordered M would be copied)
            cf = cho_factor(M.T, lower=False, check_finite=False, overwrite_a=True)
        except (LinAlgError, ValueError):
            return None
        del M, M4

        def once(h: np.ndarray) -> np.ndarray:
            hv, hw = h[:P], h[P:]
            rhs = bmv(Dw, bmv(Sinv, hv)) - bmv(Dv, bmv(Sinv, hw))  # (P, q)
            rz = rhs[:, 1:] - ktz * (rhs[:, 0] / ktt)[:, None]
            dz = cho_solve(cf, rz.ravel(), check_finite=False).reshape(P, r)
            dt = (rhs[:, 0] - np.einsum("pi,pi->p", ktz, dz)) / ktt
            dlt = np.concatenate([dt[:, None], dz], axis=1)
            xv = bmv(Sinv, hv + hw + bmv(Dw, dlt))
            return np.concatenate([xv, xv - dlt])

        def apply(d: np.ndarray) -> np.ndarray:
            out = bmv(D, d)
            Qd = (self.Q @ (d[:P, 1:] - d[P:, 1:]).ravel()).reshape(P, r)
            out[:P, 1:] += Qd
            out[P:, 1:] -= Qd
            return out

        def solve(h: np.ndarray) -> np.ndarray:
            d = once(h)
            for _ in range(self.refine):
                d = d + once(h - apply(d))
            return d

        return solve

    # ---------------------------------------------------------------- iteration
    def residual(self) -> np.ndarray:
        rx = -self.lq.copy()
        rx[:, 0] += self.beta
        z = self.x[:, 1:]
        rx[:, 1:] += self.data_grad(z) - self.rows_adjoint(self.ll)
        rx[~self.on] = 0.0
        return rx

    def objective(self) -> float:
        return self.data_value(self.x[:, 1:]) + self.beta * float(self.x[self.on, 0].sum())

    def gap(self) -> float:
        on = self.on
        return float(np.vdot(self.sl[on], self.ll[on]) + np.vdot(self.ell_q[on], self.ell_q[on]))

    def _state(self) -> tuple:
        return tuple(a.copy() for a in (self.x, self.sl, self.ll, self.lq, self.ell_q, self.W, self.Winv))

    def _restore(self, st: tuple) -> None:
        self.x, self.sl, self.ll, self.lq, self.ell_q, self.W, self.Winv = st

    def _measure(self) -> tuple[float, float, float]:
        rx = self.residual()
        f = self.objective()
        res = float(np.max(np.abs(rx[:, 0]) + np.linalg.norm(rx[:, 1:], axis=1)))
        return f, self.gap(), res

    def solve(self, tol: float, budget: int) -> int:
        """Iterate until the relative gap is below ``tol / 2`` and every group's dual
        residual below ``tol * beta / 4``, the budget is spent, the time limit passes, or
        the iterates stop improving (the best iterate is kept; ``self.stalled``)."""
        used = 0
        deg = int(self.on.sum()) * (self.m + 1)
        mon = current_monitor()
        best, best_state, since = np.inf, None, 0
        self.stalled = False
        while True:
            f, gap, res = self._measure()
            err = ipm_error(f, gap, res, self.beta)
            if err < best:
                since = 0 if err < 0.9 * best else since + 1
                best, best_state = err, self._state()
            else:
                since += 1
            if gap <= 0.5 * tol * max(abs(f), _TINY) and res <= 0.25 * tol * self.beta:
                break
            if since >= 4 or not np.isfinite(err):
                self.stalled = True
                break
            if used >= budget or mon.tick():
                break
            used += 1
            if not self._step(gap / max(deg, 1)):
                self.stalled = True
                break
        if best_state is not None:
            f, gap, res = self._measure()
            err = ipm_error(f, gap, res, self.beta)
            if not err <= best:
                self._restore(best_state)
        self.iters += used
        return used

    def _step(self, mu: float) -> bool:
        sl, ll = self.sl, self.ll
        on = self.on
        rx = self.residual()
        dl = np.sqrt(sl / ll)
        ell_l = np.sqrt(sl * ll)
        ell_q, Winv = self.ell_q, self.Winv
        det_q = soc_det(ell_q)
        WinvT = Winv.transpose(0, 2, 1)
        kkt = self._factor(WinvT, ll / sl)
        if kkt is None:
            return False

        def direction(dsl: np.ndarray, dsq: np.ndarray):
            wl = (dsl / ell_l) / dl
            qq = soc_div(ell_q, dsq, det_q)
            rhs = bmv(Winv, qq) - rx
            rhs[:, 1:] += self.rows_adjoint(wl)
            rhs[~on] = 0.0
            dx = kkt(rhs)
            dx[~on] = 0.0
            dsl_ = self.constraint(dx[:, 1:])
            dst = bmv(WinvT, dx)
            out = [dx, dsl_, wl - (ll / sl) * dsl_, dst, qq - dst]
            for a in out[1:]:
                a[~on] = 0.0
            return out

        a, (dx, dsl_, dll, dst, dlt) = mehrotra_step(direction, ell_l, ell_q, mu, self._max_step,
                                                     self.step_fraction)
        if not a > 1e-12:
            return False
        self.x = self.x + a * dx
        self.sl = self.sl + a * dsl_
        self.ll = self.ll + a * dll
        self.lq = self.lq + a * bmv(Winv, dlt)
        self._rescale(ell_q + a * dst, ell_q + a * dlt)
        return True

    def _max_step(self, dsl, dll, dst, dlt) -> float:
        on = self.on
        det = soc_det(self.ell_q[on])
        return min(lin_max_step(self.sl[on], dsl[on]), lin_max_step(self.ll[on], dll[on]),
                   soc_max_step(self.ell_q[on], dst[on], det), soc_max_step(self.ell_q[on], dlt[on], det))

    @property
    def z(self) -> np.ndarray:
        z = self.x[:, 1:].copy()
        z[~self.on] = 0.0
        return z

    @property
    def multipliers(self) -> np.ndarray:
        """Multipliers of the working rows (G, m), zero for fixed groups."""
        ll = self.ll.copy()
        ll[~self.on] = 0.0
        return ll


# ============================================================================ row working set
def _smallest(vals: np.ndarray, idx: np.ndarray, k: int, best_v: np.ndarray | None, best_i: np.ndarray | None):
    """Merge a block of per-column values (rows, C) into the k smallest per column."""
    if best_v is not None:
        vals = np.concatenate([best_v, vals])
        idx = np.concatenate([best_i, idx])
    if len(vals) > k:
        sel = np.argpartition(vals, k - 1, axis=0)[:k]
        vals = np.take_along_axis(vals, sel, axis=0)
        idx = np.take_along_axis(idx, sel, axis=0)
    return vals, idx


def initial_rows(Xr: np.ndarray, pats: np.ndarray, U: np.ndarray, k: int) -> list[np.ndarray]:
    r"""Per pattern, the ``k`` rows with the smallest margin :math:`|x_j^Tu_p|/\|x_j\|` at
    the unit interior direction ``u_p`` (non-zero rows only), in row blocks."""
    n = Xr.shape[0]
    P = len(pats)
    bv = bi = None
    for a, e in _blocks(n, P):
        xn = np.linalg.norm(Xr[a:e], axis=1)
        M = np.abs(Xr[a:e] @ U.T) / np.where(xn > 0, xn, np.nan)[:, None]
        M = np.where(np.isnan(M), np.inf, M)
        idx = np.broadcast_to(np.arange(a, e)[:, None], M.shape)
        bv, bi = _smallest(M, idx, k, bv, bi)
    return [np.unique(bi[np.isfinite(bv[:, p]), p]) for p in range(P)]


def violated_rows(Xr: np.ndarray, pats: np.ndarray, z: np.ndarray, k: int) -> tuple[list[np.ndarray], np.ndarray]:
    r"""Rows violated by each group (most violated first, at most ``k`` per group, by
    :math:`S_px_j^Tz_g/(\|x_j\|\|z_g\|) < -10^{-12}`) and the largest violation of each
    group, one pass in row blocks."""
    n = Xr.shape[0]
    P = len(pats)
    G = 2 * P
    nz = np.linalg.norm(z, axis=1)
    act = np.flatnonzero(nz > 0)
    worst = np.zeros(G)
    out: list[np.ndarray] = [np.zeros(0, dtype=np.intp) for _ in range(G)]
    if len(act) == 0:
        return out, worst
    pa = act % P
    bv = bi = None
    for a, e in _blocks(n, len(act)):
        xn = np.linalg.norm(Xr[a:e], axis=1)
        S = np.where(pats[pa, a:e].T, 1.0, -1.0)
        M = S * (Xr[a:e] @ z[act].T) / (np.maximum(xn, _TINY)[:, None] * nz[act][None, :])
        M[xn == 0] = 0.0
        worst[act] = np.maximum(worst[act], np.max(-M, axis=0, initial=0.0))
        idx = np.broadcast_to(np.arange(a, e)[:, None], M.shape)
        bv, bi = _smallest(M, idx, k, bv, bi)
    for j, g in enumerate(act):
        sel = bv[:, j] < -1e-12
        out[g] = bi[sel, j][np.argsort(bv[sel, j])]
    return out, worst


def _pad(Xr: np.ndarray, pats: np.ndarray, rows: list[np.ndarray]) -> np.ndarray:
    """Signed working rows (P, m, r), each pattern's set padded by repeating its first row."""
    P = len(pats)
    r = Xr.shape[1]
    m = max(1, max(len(j) for j in rows))
    A = np.empty((P, m, r))
    for p, j in enumerate(rows):
        if len(j) == 0:
            j = np.array([0])
        jj = np.concatenate([j, np.full(m - len(j), j[0])])
        A[p] = np.where(pats[p, jj], 1.0, -1.0)[:, None] * Xr[jj]
    return A


# ============================================================================ driver
def _objective(Xr: np.ndarray, pats: np.ndarray, y: np.ndarray, beta: float, z: np.ndarray) -> float:
    F, _ = _outputs(Xr, pats, z)
    return 0.5 * float(np.sum((F - y) ** 2)) + beta * float(np.linalg.norm(z, axis=1).sum())


def _violation(Xr: np.ndarray, pats: np.ndarray, z: np.ndarray) -> float:
    r"""Largest cone violation :math:`\max_{g,j}(-S_{p,jj}x_j^Tz_g)_+` (row blocks)."""
    n = Xr.shape[0]
    P = len(pats)
    out = 0.0
    for a, e in _blocks(n, 2 * P):
        XZ = Xr[a:e] @ z.T
        S2 = np.tile(np.where(pats[:, a:e].T, 1.0, -1.0), 2)
        out = max(out, float(np.max(np.maximum(-S2 * XZ, 0.0), initial=0.0)))
    return out


def _outputs(Xr: np.ndarray, pats: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Program output :math:`\sum_gs_gD_pXz_g` and the network's output
    :math:`\sum_gs_g(Xz_g)_+` (n,), in row blocks."""
    n = Xr.shape[0]
    P = len(pats)
    F = np.empty(n)
    Fr = np.empty(n)
    for a, e in _blocks(n, 2 * P):
        XZ = Xr[a:e] @ z.T
        F[a:e] = np.einsum("ij,ji->i", XZ[:, :P] - XZ[:, P:], pats[:, a:e])
        Fr[a:e] = (np.maximum(XZ[:, :P], 0.0) - np.maximum(XZ[:, P:], 0.0)).sum(axis=1)
    return F, Fr


def program_bound(Xr: np.ndarray, pats: np.ndarray, y: np.ndarray, beta: float, z: np.ndarray,
                  mu_rows: list[np.ndarray] | None = None, mu: np.ndarray | None = None,
                  A: np.ndarray | None = None) -> tuple[float, float]:
    r"""Proven lower bound on the sampled program and the bound ``c`` on its dual constraint
    at :math:`v = y - F(z)` (squared loss): per group the smaller of
    :math:`\|s_gX^TD_pv\|` and :math:`\|s_gX^TD_pv + A_p^T\mu_g\|` (``mu`` (G, m) >= 0 on the
    signed working rows ``A`` (P, m, r)), and the exact cell value (constraint generation)
    for the groups that could set the maximum."""
    n, r = Xr.shape
    P = len(pats)
    F, _ = _outputs(Xr, pats, z)
    v = y - F
    Ab = np.zeros((P, r))
    for a, e in _blocks(n, P):
        Ab += (pats[:, a:e] * v[None, a:e]) @ Xr[a:e]
    Ab = np.concatenate([Ab, -Ab])
    cheap = np.linalg.norm(Ab, axis=1)
    if mu is not None and A is not None:
        At = np.concatenate([A, A]).transpose(0, 2, 1)
        cheap = np.minimum(cheap, np.linalg.norm(Ab + (At @ mu[:, :, None])[:, :, 0], axis=1))
    c = 0.0
    for g in np.argsort(-cheap):
        if cheap[g] <= c:
            break
        s = 1.0 if g < P else -1.0
        c = max(c, min(float(cheap[g]), cell_value(Xr, pats[g % P], s * v)))
    loss = SquaredLoss()
    lower = float(loss.best_scale(v[:, None], y[:, None], np.inf if c <= 0 else beta / c)[1])
    return lower, c


def solve_gram(Xr: np.ndarray, Y: np.ndarray, pats: np.ndarray, beta: float, *, tol: float,
               interior: np.ndarray | None = None, max_iter: int | None = None,
               all_rows: bool | None = None, max_rounds: int = GRAM_MAX_ROUNDS,
               gram: tuple[np.ndarray, np.ndarray] | None = None, rows0: list | None = None,
               state: GramState | None = None, log: Any = None) -> FirstOrderResult:
    r"""Solve the squared-loss sampled program by the Gram-reduced interior-point method with
    a row working set (module docstring).

    Parameters
    ----------
    Xr : (n, r) array or blocks.ScaledDesign
        Data in row-space coordinates; at full column rank the implicit design
        :math:`X_a = [X\ \mathbf 1]2^{-k}` itself (:math:`V = I`; read a block of rows at a
        time, never copied whole: docs/convex_program.md §10b).
    Y : (n, 1)
    pats : (P, n) bool
    beta : float > 0
    tol : float
        Relative gap of the returned **feasible** point to the proven lower bound.
    interior : (P, r), optional
        Directions strictly inside each pattern's cone (e.g. the sampling directions);
        an LP finds one where a direction is missing or not inside by ``INTERIOR_MARGIN``.
    max_iter : int, optional
        Interior-point iterations over all rounds (default 400).
    all_rows : bool, optional
        Every row in the working set from the start (default: when :math:`n\le 8r`).
    gram : (Q, b), optional
        A precomputed :func:`gram_matrix` of the same data and patterns.
    rows0 : list of P index arrays, optional
        Rows to start the working sets with (warm start: ``result.multipliers["rows"]`` of a
        previous solve on the same data and patterns, e.g. along a path in ``beta``).
    state : GramState, optional
        Kept between calls on the same data with changing pattern sets (column generation):
        the Gram matrix is updated incrementally (only the new patterns' columns are
        computed) and surviving patterns start with their last working rows; updated on
        return.

    Returns
    -------
    FirstOrderResult
        ``z`` (2P, r) feasible on all rows; ``lower`` the proven bound, ``program_upper`` =
        ``network_objective`` = ``convex_objective`` the objective of ``z``.
    """
    t0 = time.perf_counter()
    n, r = Xr.shape
    P = len(pats)
    if Y.shape != (n, 1):
        raise ValueError(f"`Y` must have shape ({n}, 1) (scalar output, squared loss); got {Y.shape}")
    y = np.ascontiguousarray(Y[:, 0], dtype=float)
    pats = np.ascontiguousarray(pats, dtype=bool)
    budget = 400 if max_iter is None else int(max_iter)
    xn = row_norms(Xr)  # (no (n, r) temporary; Xr may be a blocks.ScaledDesign)
    nzr = xn > 0
    # interior directions (unit), patterns without a usable interior are fixed at 0
    U = np.zeros((P, r))
    ok = np.zeros(P, dtype=bool)
    Xd = None
    for p in range(P):
        u = None
        if interior is not None and np.all(np.isfinite(interior[p])) and np.linalg.norm(interior[p]) > 0:
            u = interior[p] / np.linalg.norm(interior[p])
            m_ = np.where(pats[p], 1.0, -1.0) * (Xr @ u)
            if not np.all(m_[nzr] > INTERIOR_MARGIN * xn[nzr]):
                u = None
        if u is None:  # (an LP over all rows: a design is materialized once for it)
            Xd = np.asarray(Xr) if Xd is None else Xd
            u = interior_direction(Xd, pats[p].astype(float))
        if u is not None and np.all(np.isfinite(u)):
            U[p], ok[p] = u / np.linalg.norm(u), True
    del Xd
    active = np.concatenate([ok, ok])
    keys = [p.tobytes() for p in pats] if state is not None else None
    if gram is None and state is not None:
        gram = state.gram(Xr, pats, y)
    Q, b = gram_matrix(Xr, pats, y) if gram is None else gram
    if not np.all(ok):  # patterns fixed at 0 (no interior): decoupled from the others
        offc = np.repeat(~ok, r)
        Q, b = Q.copy(), b.copy()
        Q[offc, :] = 0.0
        Q[:, offc] = 0.0
        b[offc] = 0.0
    yy = float(y @ y)
    t_gram = time.perf_counter() - t0
    if all_rows is None:
        all_rows = n <= 8 * r + 64
    if all_rows:
        rows = [np.flatnonzero(nzr) for _ in range(P)]
    else:
        rows = initial_rows(Xr, pats, U, min(n, GRAM_ROWS0 * r + 8))
        if rows0 is not None:
            if len(rows0) != P:
                raise ValueError(f"`rows0` must hold {P} index arrays (one per pattern), got {len(rows0)}")
            rows = [np.union1d(j, np.asarray(j0, dtype=np.intp)) for j, j0 in zip(rows, rows0)]
            if any(len(j) and (j.min() < 0 or j.max() >= n) for j in rows):
                raise ValueError(f"`rows0` must hold row indices in [0, {n})")
        if state is not None:  # surviving patterns: their last working rows
            rows = [j if k not in state.rows else np.union1d(j, state.rows[k]) for j, k in zip(rows, keys)]
    history: list = []
    used = rounds = 0
    status = "optimal"
    mon = current_monitor()
    best_lower, best_c = -np.inf, np.inf
    best_z, best_obj = np.zeros((2 * P, r)), 0.5 * yy  # the zero network is feasible
    ipm_tol = min(0.1 * tol, 1e-6)
    while True:
        rounds += 1
        if rows is not None:  # (None: the same rows, the same method continues, tighter)
            last_rows = rows
            A = _pad(Xr, pats, rows)
            ipm = GramSOCP(Q, b, yy, A, beta, U, active)
        used += ipm.solve(ipm_tol if rounds > 1 else max(ipm_tol, GRAM_FIRST_TOL), budget - used)
        z = ipm.z
        f_ipm = ipm.objective()
        # proven lower bound at the restricted solution (any v, any mu >= 0: valid for the
        # full program; the rows' multipliers make it tight at the restricted optimum)
        low, c = program_bound(Xr, pats, y, beta, z, mu=ipm.multipliers, A=A)
        if low > best_lower:
            best_lower, best_c = low, c
        viol, worst = violated_rows(Xr, pats, z, GRAM_ROWS_ADD * r + 4)
        # a feasible point: groups too small to matter (penalty below 1e-3 tol of the
        # objective over all groups) set to 0, the other violators projected onto their cones
        small = beta * np.linalg.norm(z, axis=1) <= 1e-3 * tol * abs(f_ipm) / (2 * P)
        zf = z.copy()
        zf[(worst > 0) & small] = 0.0
        zf, changed = feasible_point(Xr, pats, zf)
        obj = _objective(Xr, pats, y, beta, zf)
        if obj < best_obj:
            best_z, best_obj = zf, obj
        gap = (best_obj - best_lower) / max(abs(best_obj), _TINY)
        grow = [g for g in range(2 * P) if len(viol[g]) and not small[g]]
        if log is not None:
            nzf = np.linalg.norm(zf, axis=1)
            log(f"round {rounds}: {ipm.iters} iterations, restricted objective {f_ipm:.10g}, rows {A.shape[1]}, "
                f"violating groups {sum(len(v) > 0 for v in viol)} ({len(grow)} to grow, {changed} projected), "
                f"worst {worst.max(initial=0):.2e}, feasible {obj:.10g}, lower {low:.10g}, gap {gap:.2e}, "
                f"groups above 1e-6 max {int(np.sum(nzf > 1e-6 * nzf.max()))}, "
                f"{time.perf_counter() - t0:.1f} s")
        history.append((rounds, ipm.iters, A.shape[1], len(grow), time.perf_counter() - t0, best_obj, best_lower))
        if gap <= tol:
            break
        if not grow or rounds >= max_rounds or used >= budget or mon.expired():
            status = "stopped" if mon.expired() else (
                "iteration_limit" if used >= budget or rounds >= max_rounds else "precision_limit")
            if not grow and ipm_tol > 1e-10 and used < budget and not mon.expired():
                # feasible on every row but the gap is open: the same method, tighter
                ipm_tol = min(ipm_tol, 0.1 * tol) * 0.01 if rounds > 1 else ipm_tol
                status, rows = "optimal", None
                continue
            break
        new_rows = [set(j.tolist()) for j in last_rows]
        for g in grow:
            new_rows[g % P].update(viol[g].tolist())
        rows = [np.array(sorted(s), dtype=np.intp) for s in new_rows]
    z = best_z
    F, Fr = _outputs(Xr, pats, z)
    pen = beta * float(np.linalg.norm(z, axis=1).sum())
    obj = 0.5 * float(np.sum((F - y) ** 2)) + pen
    net = 0.5 * float(np.sum((Fr - y) ** 2)) + pen
    viol_abs = _violation(Xr, pats, z)
    gap = (obj - best_lower) / max(abs(obj), _TINY)
    converged = gap <= tol
    if log is not None:
        log(f"final: objective {obj:.10g}, lower {best_lower:.10g}, gap {gap:.2e}, "
            f"gram {t_gram:.1f} s, total {time.perf_counter() - t0:.1f} s")
    if converged:
        status = "optimal"
    lower, c = best_lower, best_c
    worst = np.array([viol_abs])
    if state is not None:
        state.rows = {k: j for k, j in zip(keys, last_rows)}
    return FirstOrderResult(z=z, multipliers={"rows": last_rows}, rho=0.0, convex_objective=obj, network_objective=net,
                            lower=lower, c=c, max_violation=float(worst.max(initial=0.0)), iterations=used,
                            rounds=rounds, converged=converged, multiplier_bytes=0, history=history,
                            status=status, program_upper=obj)
