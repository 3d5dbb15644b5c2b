r"""Branch and bound over row signs for the dual constraint of two-layer ReLU networks
on general data (``docs/convex_program.md`` §11).

For :math:`v\in\mathbb{R}^n` the dual constraint is
:math:`c(v) = \max_{\|u\|\le1}|v^T(Xu)_+| = \max(g(v), g(-v))` with

.. math:: g(v) = \max_{\|u\|\le1}\ \sum_i v_i\,(x_i^Tu)_+ .

Rows with :math:`v_i \le 0` make the objective concave; only the rows with
:math:`v_i > 0` need branching.  A *node* fixes the sign of :math:`x_i^Tu` for some rows
and carries valid intervals :math:`l_i \le x_i^Tu \le h_i` on its region.  Its upper
bound is the value of a *dual feasible point* :math:`w` (any :math:`w` gives a proven
bound, so an inexact solver never invalidates it):

.. math:: g_{\rm node} \le \|X^Tw\| + \sum_{i\ \rm free,\ v_i>0}
          \max\big(v_i(l_i)_+ - w_il_i,\ v_i(h_i)_+ - w_ih_i\big),

with :math:`w_i \ge v_i` on rows fixed to :math:`x_i^Tu\ge0`, :math:`w_i\le0` on rows
fixed to :math:`x_i^Tu \le 0`, and :math:`v_i\le w_i\le0` on the other rows with
:math:`v_i\le0`.  Leaves (every sign fixed) are the cells of the arrangement, whose exact
value is the non-negative least squares of :func:`~.certificate.cone_value`.  Feasible
values (lower bounds on :math:`c(v)`) come from local ascent over cells.  The search is
best first and *anytime*: at every moment ``upper`` is a proven bound on :math:`c(v)`.

Unpenalized hidden biases (§12): with :math:`1^Tv = 0`,
:math:`c_b(v) = \max_j c_{X - 1x_j^T}(v)`; pass the recentred matrices as ``pieces``.
"""

from __future__ import annotations

import heapq
import itertools
import time
from typing import Any, Callable

import numpy as np
from scipy.optimize import Bounds, lsq_linear, minimize, nnls

from ..._threads import SingleThreadedBLAS
from .cells import MergedRows, OracleResult, cell_ascent, collect_violator, merge_rows
from .spherical import dual_constraint_sphere

__all__ = ["OracleResult", "dual_constraint_bb", "cell_ascent", "recentred_pieces"]

_EPS = np.finfo(float).eps
#: data with at most this many columns use the direction-space search (measured: §15; at
#: d = 5, 6 it proves smaller bounds than the row-sign search after 2 s and 10 s on every
#: instance tried: diabetes PCA-5 17.2 vs 63.1 and 5.2 vs 42.7, PCA-6 45.9 vs 56.8 and 15.8
#: vs 41.1, wine PCA-6, breast cancer PCA-6; at d = 7 it is behind after 10 s; docs/performance.md §16)
SPHERE_MAX_D = 6


def recentred_pieces(X: np.ndarray) -> list[np.ndarray]:
    r"""The matrices :math:`X - 1x_j^T` for the distinct rows :math:`x_j` (§12)."""
    rows = np.unique(X, axis=0)
    return [X - r[None, :] for r in rows]


class _Side:
    """One tree: piece ``k``, sign ``s`` (maximizes :math:`s\\,v^T(X_ku)_+`)."""

    def __init__(self, piece: MergedRows, k: int, s: float):
        self.p, self.k, self.s = piece, k, s
        self.v = s * piece.v
        self.pos = self.v > 0
        self.X = piece.X
        self.n = len(self.v)
        # rounding slack of every computed bound: |fl(X^T w)| and the recentring differ from
        # exact arithmetic by a few ulps of sum |w_i| ||x_i||
        self.slack = 64 * _EPS * float(np.abs(self.v) @ piece.norms) + 1e-300

    def rounding(self, w: np.ndarray) -> float:
        r"""Rounding slack of a bound evaluated at ``w``: each coordinate of :math:`X^Tw` is a
        sum of :math:`n` products (recursive summation errs by at most
        :math:`n\epsilon\sum_i|w_i||x_{ij}|`), so :math:`\|\Delta X^Tw\| \le
        (n + 8)\epsilon\sum_i|w_i|\|x_i\|`; the sum of the :math:`n` terms
        :math:`\varphi_i \le (|w_i| + |v_i|)\|x_i\|` errs by as much again; plus the fixed
        slack of :math:`v` (the recentring)."""
        return 2 * (self.n + 8) * _EPS * float((np.abs(w) + np.abs(self.v)) @ self.p.norms) + self.slack

    # intervals l <= x_i^T u <= h from the ball and the fixed rows (one at a time)
    def intervals(self, fixed: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        nr = self.p.norms
        lo, hi = -nr.copy(), nr.copy()
        sign = np.zeros(self.n, dtype=np.int8)
        n2 = nr ** 2
        for j, sj in fixed:
            sign[j] = sj
            col = self.X @ self.X[j] * sj      # s_j x_i^T x_j
            # max x_i^T u s.t. s_j x_j^T u >= 0, ||u|| <= 1  <=  ||x_i + mu s_j x_j||, mu >= 0
            # (+ a margin for the rounding of this formula)
            red = np.sqrt(np.maximum(n2 - col ** 2 / n2[j], 0.0)) + 64 * _EPS * nr
            hi = np.where(col < 0, np.minimum(hi, red), hi)
            lo = np.where(col > 0, np.maximum(lo, -red), lo)
        for j, sj in fixed:
            if sj > 0:
                lo[j] = max(lo[j], 0.0)
            else:
                hi[j] = min(hi[j], 0.0)
        if len(fixed) >= 2:
            # only rows with v_i > 0 need intervals (the others are exact in bound())
            rows = np.flatnonzero((sign == 0) & (lo < 0) & (hi > 0) & self.pos)
            if len(rows):
                h2, l2 = self._cone_extent(fixed, rows)
                hi[rows] = np.minimum(hi[rows], h2)
                lo[rows] = np.maximum(lo[rows], -l2)
        # implied signs (not branched): x_i^T u >= -tau or <= tau on the whole node with
        # tau tiny; bound() then fixes their dual value and adds v_i tau (no constraint is used)
        tau = 1e-9 * nr
        sign = np.where((sign == 0) & (lo >= -tau), 2, sign).astype(np.int8)
        sign = np.where((sign == 0) & (hi <= tau), -2, sign).astype(np.int8)
        return lo, hi, sign

    def _cone_extent(self, fixed: tuple, rows: np.ndarray, iters: int = 30) -> tuple[np.ndarray, np.ndarray]:
        r"""Upper bounds on :math:`\max x_i^Tu` and :math:`\max -x_i^Tu` over the node's cone
        :math:`\{s_jx_j^Tu \ge 0\ (j\ \text{fixed})\}` and the unit ball, for ``rows``.

        Conic duality: :math:`\max_{u\in K,\|u\|\le1}c^Tu = \min_{\mu\ge0}\|c + A\mu\|`,
        :math:`A = [s_jx_j]`; every :math:`\mu \ge 0` gives a valid bound, so a few batched
        projected-gradient (FISTA) steps on all rows at once suffice.
        """
        idx = np.array([j for j, _ in fixed])
        sg = np.array([sj for _, sj in fixed], dtype=float)
        A = self.X[idx] * sg[:, None]                    # (k, d), rows s_j x_j
        C = np.vstack([self.X[rows], -self.X[rows]])     # (2m, d)
        G = A @ A.T                                       # (k, k)
        B = C @ A.T                                       # (2m, k): c^T a_j
        L = float(np.linalg.eigvalsh(G)[-1]) if len(G) else 0.0
        mu = np.zeros_like(B)
        if L > 0:
            y, mu_old, t = mu, mu, 1.0
            for _ in range(iters):
                mu_new = np.maximum(y - (B + y @ G) / L, 0.0)
                t_new = 0.5 * (1 + np.sqrt(1 + 4 * t * t))
                y = mu_new + ((t - 1) / t_new) * (mu_new - mu_old)
                mu_old, t = mu_new, t_new
            mu = mu_old
        R = C + mu @ A
        val2 = np.einsum("ij,ij->i", R, R)
        an = np.linalg.norm(A, axis=1)
        err = np.linalg.norm(C, axis=1) + mu @ an
        # thin cones make this ill-conditioned (multipliers ~ 1/angle): rows whose bound is not
        # yet decided get the exact NNLS (any clipped multiplier is still a valid bound)
        At = A.T
        for i in np.flatnonzero(val2 > 1e-18 * np.einsum("ij,ij->i", C, C)):
            try:
                m_i, _ = nnls(At, -C[i], maxiter=50 * max(1, At.shape[1]))
            except RuntimeError:  # pragma: no cover
                continue
            m_i = np.maximum(m_i, 0.0)
            r_i = C[i] + m_i @ A
            if float(r_i @ r_i) < val2[i]:
                val2[i], err[i] = float(r_i @ r_i), float(np.linalg.norm(C[i]) + m_i @ an)
        # |fl(c + A mu) - (c + A mu)| <= (k + 2) eps (|c| + sum mu_j |a_j|) per entry
        val = np.sqrt(val2) + 4 * (len(idx) + 2) * _EPS * np.sqrt(C.shape[1]) * err
        m = len(rows)
        return val[:m], val[m:]

    def bound(self, lo: np.ndarray, hi: np.ndarray, sign: np.ndarray, w0: np.ndarray | None,
              maxiter: int, prune_at: float = -np.inf) -> tuple[float, np.ndarray]:
        r"""Proven upper bound on the node's maximum and its dual point ``w``.

        :math:`B(w) = \|X^Tw\| + \sum_{\rm free}\varphi_i(w_i)` is a valid bound at every
        ``w`` in the boxes; it is minimized approximately (L-BFGS-B, warm started at the
        parent's ``w0``) and evaluated exactly at the point returned.
        """
        v, X, n = self.v, self.X, self.n
        free = (sign == 0) & self.pos
        lb, ub, extra = self.boxes(lo, hi, sign)
        lb[free], ub[free] = -np.inf, np.inf
        # phi_i(w) = max(-w l, v h - w h), kink a* = v h / (h - l), phi* = -a* l (free rows)
        with np.errstate(divide="ignore", invalid="ignore"):
            astar = np.where(free, v * hi / (hi - lo), 0.0)

        def B(w: np.ndarray) -> float:
            w = np.clip(w, lb, ub)
            phi = np.maximum(-w * lo, v * hi - w * hi)
            return float(np.linalg.norm(X.T @ w)) + float(phi[free].sum()) + extra

        w = np.where(free, astar, 0.0) if w0 is None else np.asarray(w0, dtype=float)
        w = np.clip(w, lb, ub)
        if w0 is not None:  # the parent's point is feasible here too: prune without solving
            b0 = B(w) + self.rounding(w)
            if b0 <= prune_at:
                return b0, w
        w = self._solve_subset(w, lb < ub, lb, ub, free, lo, hi, astar, maxiter)
        w = np.clip(w, lb, ub)
        return B(w) + self.rounding(w), w

    def _solve_subset(self, w: np.ndarray, A: np.ndarray, lb: np.ndarray, ub: np.ndarray, free: np.ndarray,
                      lo: np.ndarray, hi: np.ndarray, astar: np.ndarray, maxiter: int) -> np.ndarray:
        """Minimize B over the rows in ``A`` (the others fixed) by L-BFGS-B (split variables
        :math:`w = a^* + y - q` on free rows make the objective smooth)."""
        X = self.X
        ai = np.flatnonzero(A)
        if len(ai) == 0:
            return w
        c0 = X[~A].T @ w[~A]
        XA = X[ai]
        fA = free[ai]
        fi = np.flatnonzero(fA)
        m, nf = len(ai), len(fi)
        lbA, ubA = lb[ai].copy(), ub[ai].copy()
        lbA[fi], ubA[fi] = 0.0, np.inf
        cost_y = np.zeros(m)
        cost_y[fi] = -lo[ai][fi]
        cost_q = hi[ai][fi]
        aA = astar[ai][fi]

        def w_of(z: np.ndarray) -> np.ndarray:
            wa = z[:m].copy()
            wa[fi] += aA - z[m:]
            return wa

        def fun(z: np.ndarray) -> tuple[float, np.ndarray]:
            g = c0 + XA.T @ w_of(z)
            ng = float(np.linalg.norm(g))
            gw = XA @ g / ng if ng > 0 else np.zeros(m)
            return ng + float(cost_y @ z[:m] + cost_q @ z[m:]), np.concatenate([gw + cost_y, -gw[fi] + cost_q])

        z0 = np.zeros(m + nf)
        wa0 = w[ai]
        z0[:m] = wa0
        dd = wa0[fi] - aA
        z0[fi] = np.maximum(dd, 0.0)
        z0[m:] = np.maximum(-dd, 0.0)
        lbz = np.concatenate([lbA, np.zeros(nf)])
        ubz = np.concatenate([ubA, np.full(nf, np.inf)])
        z0 = np.clip(z0, lbz, ubz)
        res = minimize(fun, z0, jac=True, method="L-BFGS-B", bounds=Bounds(lbz, ubz),
                       options={"maxiter": maxiter, "ftol": 1e-15, "gtol": 1e-12, "maxcor": 20})
        z = np.clip(res.x, lbz, ubz) if res.fun <= fun(z0)[0] else z0
        out = w.copy()
        out[ai] = w_of(z)
        return out

    def boxes(self, lo: np.ndarray, hi: np.ndarray, sign: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        r"""Boxes of the dual values :math:`w_i` and the constant of the implied rows.

        Branched :math:`x_i^Tu\ge0`: :math:`w_i\ge v_i`; branched :math:`\le0`:
        :math:`w_i\le0`; unknown with :math:`v_i\le0`: :math:`v_i\le w_i\le0` (exact:
        :math:`v_i(t)_+ = \min_{v_i\le w\le0}wt`); implied :math:`t\ge-\tau`:
        :math:`v_i(t)_+\le v_it + (v_i)_+\tau` (:math:`w_i = v_i`); implied :math:`t\le\tau`:
        :math:`v_i(t)_+\le(v_i)_+\tau` (:math:`w_i = 0`)."""
        v = self.v
        lb = np.where(sign == 1, v, np.where(sign == -1, -np.inf, np.minimum(v, 0.0)))
        ub = np.where(sign == 1, np.inf, 0.0)
        lb = np.where(sign == 2, v, np.where(sign == -2, 0.0, lb))
        ub = np.where(sign == 2, v, np.where(sign == -2, 0.0, ub))
        vp = np.maximum(v, 0.0)
        extra = float(vp[sign == 2] @ np.maximum(-lo[sign == 2], 0.0) + vp[sign == -2] @ np.maximum(hi[sign == -2], 0.0))
        return lb, ub, extra

    def leaf_bound(self, lo: np.ndarray, hi: np.ndarray, sign: np.ndarray) -> tuple[float, np.ndarray]:
        r"""Exact bound when no row with :math:`v_i > 0` is unknown: :math:`\min\|X^Tw\|` over the
        boxes, a bounded least-squares problem solved by BVLS (finite active set)."""
        lb, ub, extra = self.boxes(lo, hi, sign)
        X = self.X
        var = lb < ub
        w = np.where(var, 0.0, lb)
        w = np.clip(w, lb, ub)
        if np.any(var):
            b = -(X[~var].T @ w[~var])
            try:
                res = lsq_linear(X[var].T, b, bounds=(lb[var], ub[var]), method="bvls", lsmr_tol=None,
                                 max_iter=None)
                w[var] = np.clip(res.x, lb[var], ub[var])
            except (ValueError, np.linalg.LinAlgError):  # pragma: no cover - keep the feasible start
                pass
        return float(np.linalg.norm(X.T @ w)) + extra + self.rounding(w), w


# ----------------------------------------------------------------------------- main
def dual_constraint_bb(
    X: np.ndarray,
    v: np.ndarray,
    *,
    pieces: list[np.ndarray] | None = None,
    time_limit: float | None = None,
    rtol: float = 1e-8,
    stop_above: float | None = None,
    stop_below: float | None = None,
    collect_above: float | None = None,
    max_collect: int = 20,
    max_nodes: int | None = None,
    min_nodes: int = 0,
    min_collect: int = 0,
    one_sided: bool = False,
    maxiter: int = 60,
    log: Callable[[float, int, int, float, float], None] | None = None,
    log_every: float = 5.0,
    method: str = "auto",
) -> OracleResult:
    r"""Branch and bound for :math:`c(v) = \max_k\max_{\|u\|\le1}|v^T(X_ku)_+|`.

    Parameters
    ----------
    X : ndarray (n, d)
        The data (used when ``pieces`` is None: one piece ``X``).
    v : ndarray (n,)
        The dual point.
    pieces : list of ndarray (n, d), optional
        Several data matrices (e.g. :func:`recentred_pieces` for hidden biases); the
        maximum is over all of them.
    time_limit : float, optional
        Seconds; the search then stops and returns its proven bound.
    rtol : float, default 1e-8
        Stop when ``upper - lower <= rtol * upper`` (``exact``).
    stop_above, stop_below : float, optional
        Stop as soon as a feasible value exceeds ``stop_above`` (a violated constraint is
        found; after at least ``min_nodes`` nodes and ``min_collect`` collected violators,
        to collect more of them) or the proven bound is at most ``stop_below`` (the
        constraint holds).
    collect_above : float, optional
        Record every distinct cell found with value above this (``violators``).
    one_sided : bool, default False
        Bound :math:`g(v) = \max_u v^T(Xu)_+` only (no absolute value).
    log : callable, optional
        Called as ``log(time_s, nodes, open_nodes, lower, upper)`` at the start, every
        ``log_every`` seconds and at the end (a MIP solver's progress log).

    method : {"auto", "rows", "sphere"}
        ``"rows"``: branch and bound over row signs (this module); ``"sphere"``: over
        boxes of directions (:func:`~.spherical.dual_constraint_sphere`, §11b); ``"auto"``:
        ``"sphere"`` when the data have at most ``SPHERE_MAX_D`` columns.

    Returns
    -------
    OracleResult
        ``upper`` is always a proven upper bound.
    """
    if method not in ("auto", "rows", "sphere"):
        raise ValueError(f"method must be 'auto', 'rows' or 'sphere'; got {method!r}")
    d = np.shape(X)[1] if pieces is None else np.shape(pieces[0])[1]
    if method == "sphere" or (method == "auto" and d <= SPHERE_MAX_D):
        with SingleThreadedBLAS():
            return dual_constraint_sphere(X, v, pieces=pieces, time_limit=time_limit, rtol=rtol,
                                          stop_above=stop_above, stop_below=stop_below,
                                          collect_above=collect_above, max_collect=max_collect,
                                          max_nodes=max_nodes, min_nodes=min_nodes, min_collect=min_collect,
                                          one_sided=one_sided, log=log, log_every=log_every)
    with SingleThreadedBLAS():
        return _bb(X, v, pieces=pieces, time_limit=time_limit, rtol=rtol, stop_above=stop_above,
                   stop_below=stop_below, collect_above=collect_above, max_collect=max_collect,
                   max_nodes=max_nodes, min_nodes=min_nodes, min_collect=min_collect, one_sided=one_sided,
                   maxiter=maxiter, log=log, log_every=log_every)


def _bb(X: np.ndarray, v: np.ndarray, *, pieces: Any, time_limit: float | None, rtol: float,
        stop_above: float | None, stop_below: float | None, collect_above: float | None, max_collect: int,
        max_nodes: int | None, min_nodes: int, one_sided: bool, maxiter: int, log: Any, log_every: float,
        min_collect: int = 0) -> OracleResult:
    t0 = time.perf_counter()
    X = np.asarray(X, dtype=float)
    v = np.asarray(v, dtype=float).reshape(-1)
    mats = [X] if pieces is None else [np.asarray(P, dtype=float) for P in pieces]
    d = mats[0].shape[1]
    sides: list[_Side] = []
    for k, M in enumerate(mats):
        pc = merge_rows(M, v)
        for s in ((1.0,) if one_sided else (1.0, -1.0)):
            sides.append(_Side(pc, k, s))

    inc = {"val": 0.0, "u": np.zeros(d), "side": sides[0] if sides else None}
    violators: dict[bytes, tuple] = {}
    history: list[tuple[float, float, float]] = []
    heap: list = []
    counter = itertools.count()
    closed_max = 0.0  # largest bound of a pruned or finished node
    nodes = 0

    def offer(side: _Side, u: np.ndarray) -> None:
        val, uu, pat = cell_ascent(side.X, side.v, u)
        if val > inc["val"]:
            inc.update(val=val, u=uu, side=side)
        if collect_above is not None and val > collect_above:
            collect_violator(violators, val, uu, side.p.Xfull, side.s, side.k)

    def upper() -> float:
        top = -heap[0][0] if heap else 0.0
        return max(inc["val"], closed_max, top)

    def push(side: _Side, fixed: tuple, bound: float, w: np.ndarray) -> None:
        nonlocal closed_max
        if bound <= inc["val"] * (1 + rtol):
            closed_max = max(closed_max, bound)
            return
        heapq.heappush(heap, (-bound, next(counter), side, fixed, w.astype(np.float32)))

    def process(side: _Side, fixed: tuple, parent_bound: float, w0: np.ndarray | None) -> None:
        """Bound the node ``fixed`` (with its own intervals) and push or close it."""
        nonlocal closed_max, nodes
        nodes += 1
        lo, hi, sign = side.intervals(fixed)
        free = (sign == 0) & side.pos
        if not np.any(free):  # no row with v_i > 0 is unknown: exact (BVLS)
            b, w = side.leaf_bound(lo, hi, sign)
            b = min(parent_bound, b)
            g = side.X.T @ w
            ng = float(np.linalg.norm(g))
            if ng > 0:
                offer(side, g / ng)
            if b <= inc["val"] * (1 + 1e-9) + side.slack or not np.any(sign == 0):
                closed_max = max(closed_max, b)
                return
            push(side, fixed, b, w)
            return
        b, w = side.bound(lo, hi, sign, w0, maxiter, prune_at=inc["val"] * (1 + rtol))
        b = min(b, parent_bound)
        g = side.X.T @ w
        ng = float(np.linalg.norm(g))
        if ng > 0:
            offer(side, g / ng)
        push(side, fixed, b, w)

    # roots: the spectral bound of each side caps its tree (docs/convex_program.md §4); they
    # are queued unprocessed (w = None) so that the bound is valid from the start even with
    # many pieces, and bounded when first popped
    for side in sides:
        if not np.any(side.pos):
            continue
        spec = float(np.linalg.norm(side.X[side.pos], 2) * np.linalg.norm(side.v[side.pos])) * (1 + 1e-12)
        heapq.heappush(heap, (-(spec + side.slack), next(counter), side, (), None))

    last_log = -np.inf
    status = "optimal"

    def record(force: bool = False) -> None:
        nonlocal last_log
        t = time.perf_counter() - t0
        U, L = upper(), inc["val"]
        if not history or history[-1][1] != L or history[-1][2] != U:
            history.append((t, L, U))
        if log is not None and (force or t - last_log >= log_every):
            last_log = t
            log(t, nodes, len(heap), L, U)

    record(force=True)
    while heap:
        U, L = upper(), inc["val"]
        if U - L <= rtol * U:
            break
        if stop_above is not None and L > stop_above and nodes >= min_nodes and len(violators) >= min_collect:
            status = "stopped: violation found"
            break
        if stop_below is not None and U <= stop_below:
            status = "stopped: bound below threshold"
            break
        if time_limit is not None and time.perf_counter() - t0 >= time_limit:
            status = "time limit"
            break
        if max_nodes is not None and nodes >= max_nodes:
            status = "node limit"
            break
        negb, _, side, fixed, w = heapq.heappop(heap)
        bnode = -negb
        if bnode <= inc["val"] * (1 + rtol):
            closed_max = max(closed_max, bnode)
            continue
        if w is None:  # an unprocessed root
            process(side, fixed, bnode, None)
            record()
            continue
        lo, hi, sign = side.intervals(fixed)
        free = (sign == 0) & side.pos
        w = np.asarray(w, dtype=float)
        g = side.X.T @ w
        ng = float(np.linalg.norm(g))
        t = side.X @ (g / ng) if ng > 0 else np.zeros(side.n)
        if np.any(free):
            fi = np.flatnonzero(free)
            lf, hf, vf, tf = lo[fi], hi[fi], side.v[fi], np.clip(t[fi], lo[fi], hi[fi])
            excess = vf * hf * (tf - lf) / (hf - lf) - vf * np.maximum(tf, 0.0)
            amb = vf * np.minimum(hf, -lf)
            j = int(fi[np.argmax(excess + 1e-9 * amb)])
        else:  # only rows with v_i <= 0 are unfixed: split the most ambiguous one
            fi = np.flatnonzero(sign == 0)
            j = int(fi[np.argmin(np.abs(t[fi]) / side.p.norms[fi])])
        for sj in (1, -1):
            process(side, fixed + ((j, sj),), bnode, w)
        record()
    else:
        status = "optimal"
    if not heap and status not in ("optimal",):
        status = "optimal"
    U, L = upper(), inc["val"]
    exact = U - L <= max(rtol, 1e-7) * U or U <= 0
    if status == "optimal" and not exact:
        status = "finished (bound and value differ by more than rtol)"
    record(force=True)
    side = inc["side"]
    u = inc["u"]
    if side is not None:
        pat = side.p.Xfull @ u >= 0
        sgn, k = side.s, side.k
    else:
        pat, sgn, k = np.zeros(X.shape[0], dtype=bool), 1.0, 0
    viol = sorted(violators.values(), key=lambda x: -x[0])[:max_collect]
    return OracleResult(upper=float(U), lower=float(L), u=u, sign=float(sgn), piece=int(k), pattern=pat,
                        exact=bool(exact), nodes=nodes, time_s=time.perf_counter() - t0, status=status,
                        history=history, violators=viol)
