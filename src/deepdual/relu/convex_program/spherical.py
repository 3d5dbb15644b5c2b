r"""Branch and bound in *direction space* for the dual constraint of two-layer ReLU networks
on low-dimensional data (``docs/convex_program.md`` §11b).

For :math:`v\in\mathbb{R}^n`, :math:`g(v) = \max_{\|u\|\le1} f(u)`,
:math:`f(u) = \sum_iv_i(x_i^Tu)_+`; :math:`f` is positively homogeneous, so
:math:`g(v) = \max(0, \max_{\|u\|=1}f(u))`.  The unit sphere is covered by the ``2d``
faces of the cube (gnomonic charts :math:`u\propto\pm e_k + \sum_{j\ne k}s_je_j`,
:math:`s\in[-1,1]^{d-1}`), and the search splits square boxes of the charts.  A box lies in
the spherical cap :math:`\{u: \angle(u,u_0)\le\delta\}` of its centre direction
:math:`u_0` and the largest angle :math:`\delta` to its corners (the angle to :math:`u_0`
is quasi-convex on the cone over the box, so its maximum is at a corner).

**Cap bound (a proof).**  With :math:`\theta_i = \angle(x_i,u_0)`, a row with
:math:`\cos\theta_i\ge\sin\delta` is positive on the whole cap, one with
:math:`\cos\theta_i\le-\sin\delta` negative; the others (*undecided*) satisfy
:math:`l_i\le x_i^Tu\le h_i` with :math:`h_i = \|x_i\|\cos(\max(0,\theta_i-\delta))`,
:math:`l_i = \|x_i\|\cos(\min(\pi,\theta_i+\delta))`.  On the cap

.. math:: f(u) \le w^TXu + \sum_{i\ \rm undecided,\ v_i>0} v_i\frac{h_i(-l_i)}{h_i-l_i},

with :math:`w_i = v_i` (positive rows), :math:`0` (negative rows), :math:`v_ih_i/(h_i-l_i)`
(undecided, :math:`v_i > 0`: the secant of :math:`(t)_+` on :math:`[l_i,h_i]`) and
:math:`v_i\lambda_i`, any :math:`\lambda_i\in[0,1]` (undecided, :math:`v_i\le0`: since
:math:`(t)_+\ge\lambda t`).  The maximum of the linear function :math:`b^Tu`,
:math:`b = X^Tw`, over the cap is closed form: :math:`\|b\|` if
:math:`\angle(b,u_0)\le\delta`, else :math:`(b^Tu_0)\cos\delta + \|b_\perp\|\sin\delta`.
The :math:`\lambda_i` are refined by a few projected subgradient steps (every iterate is a
valid bound; the smallest is kept).  Rounding: :math:`\delta` is enlarged by
:math:`10^{-9}\delta + 10^{-12}`, the intervals by :math:`10^{-12}\|x_i\|`, and every bound
carries :math:`64\epsilon\sum_i|v_i|\|x_i\|`.

Feasible values: :math:`f` at every box centre (exact evaluation) and cell ascent
(:func:`~.oracle.cell_ascent`) from the best centres.  The search is best first in batches
(the boxes with the largest bounds are split into :math:`2^{d-1}` children each, bounded
all at once with numpy).  It is anytime: the bound is the largest of the incumbent, the
open boxes' bounds and the bounds of the boxes closed so far.  Cost grows like
:math:`\delta^{-(d-1)}` near the maximizers, so this pays for small :math:`d` (measured
in ``docs/convex_program.md`` §15).
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Callable

import numpy as np

from .cells import OracleResult, cell_ascent, collect_violator, merge_rows

__all__ = ["dual_constraint_sphere", "cap_bounds", "cap_bounds_rows"]

_EPS = np.finfo(float).eps


def _chart_directions(face: np.ndarray, S: np.ndarray, d: int) -> np.ndarray:
    """Points :math:`\\pm e_k + \\sum_{j\\ne k}s_je_j` of the charts (not normalized)."""
    m = len(face)
    P = np.empty((m, d))
    k = face // 2
    sgn = np.where(face % 2 == 0, 1.0, -1.0)
    for j in range(d):
        P[:, j] = 0.0
    rows = np.arange(m)
    P[rows, k] = sgn
    # the other coordinates, in order
    for c in range(d - 1):
        j = np.where(c < k, c, c + 1)
        P[rows, j] = S[:, c]
    return P


def _caps(face: np.ndarray, S: np.ndarray, r: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit centre directions and enlarged cap radii of the boxes (centre ``S``, half width ``r``)."""
    P0 = _chart_directions(face, S, d)
    U0 = P0 / np.linalg.norm(P0, axis=1)[:, None]
    delta = np.zeros(len(face))
    if d > 1:
        for signs in itertools.product((-1.0, 1.0), repeat=d - 1):
            Pc = _chart_directions(face, S + r[:, None] * np.array(signs)[None, :], d)
            dot = np.einsum("ij,ij->i", Pc, U0)
            perp = np.linalg.norm(Pc - dot[:, None] * U0, axis=1)
            delta = np.maximum(delta, np.arctan2(perp, dot))
    return U0, delta * (1 + 1e-9) + 1e-12


def cap_bounds(X: np.ndarray, v: np.ndarray, norms: np.ndarray, U0: np.ndarray, delta: np.ndarray,
               refine: int = 4) -> tuple[np.ndarray, np.ndarray]:
    r"""Proven upper bounds on :math:`\max f` over the caps :math:`(u_0, \delta)` and
    :math:`f(u_0)` (module docstring).

    Parameters
    ----------
    X : ndarray (n, d)
        Rows (non-zero).
    v : ndarray (n,)
    norms : ndarray (n,)
        Row norms.
    U0 : ndarray (m, d)
        Unit centres.
    delta : ndarray (m,)
        Cap radii (already enlarged for rounding).
    refine : int
        Projected subgradient steps on the :math:`\lambda_i` of undecided rows with
        :math:`v_i\le0`.

    Returns
    -------
    (bounds, values) : ndarrays (m,)
        ``bounds`` without the rounding slack (added by the caller).
    """
    T = X @ U0.T                                      # (n, m): x_i^T u_0
    C = T / norms[:, None]
    sd = np.sin(np.minimum(delta, np.pi))[None, :]
    cd = np.cos(np.minimum(delta, np.pi))[None, :]
    vals = v @ np.maximum(T, 0.0)
    pos = C >= sd
    und = (C > -sd) & ~pos
    Sn = np.sqrt(np.maximum(1.0 - C * C, 0.0))
    h = np.where(C >= cd, 1.0, C * cd + Sn * sd)
    lo = np.where(C <= -cd, -1.0, C * cd - Sn * sd)
    h = (np.minimum(h, 1.0) + 1e-12) * norms[:, None]
    lo = (np.maximum(lo, -1.0) - 1e-12) * norms[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(und, h / (h - lo), 0.0)
    frac = np.clip(frac, 0.0, 1.0)
    vpos = (v > 0)[:, None]
    W = np.where(pos, v[:, None], 0.0) + np.where(und, v[:, None] * frac, 0.0)
    kappa = np.where(und & vpos, v[:, None] * frac * (-lo), 0.0).sum(axis=0)
    negund = und & ~vpos
    best = _lin_cap(X.T @ W, U0, sd[0], cd[0]) + kappa
    if refine > 0 and np.any(negund):
        cols = np.flatnonzero(negund.any(axis=0))
        Xc = X
        lam = frac[:, cols].copy()
        Wc = W[:, cols]
        nu = negund[:, cols]
        vv = v[:, None]
        inv2 = 1.0 / np.maximum((v * norms) ** 2, 1e-300)
        kneg = np.maximum(nu.sum(axis=0), 1)
        sdc, cdc, Uc = sd[0, cols], cd[0, cols], U0[cols]
        for it in range(refine):
            B = Xc.T @ Wc                                  # (d, mc)
            um = _lin_argmax(B, Uc, sdc, cdc)              # (mc, d)
            # subgradient of the cap maximum in lambda_i: v_i x_i^T u_max; Gauss-Newton-like
            # step for ||b_perp|| (sin(delta) ||b_perp|| is the part that lambda can reduce)
            g = vv * (Xc @ um.T)
            bu = np.einsum("dm,md->m", B, Uc)
            perp = np.linalg.norm(B - Uc.T * bu[None, :], axis=0)
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = np.where(sdc > 0, perp / sdc, 0.0) / kneg
            lam = np.where(nu, np.clip(lam - g * inv2[:, None] * scale[None, :], 0.0, 1.0), lam)
            Wc = np.where(nu, vv * lam, Wc)
            cand = _lin_cap(Xc.T @ Wc, Uc, sdc, cdc) + kappa[cols]
            best[cols] = np.minimum(best[cols], cand)
    return best, vals


def cap_bounds_rows(X: np.ndarray, v: np.ndarray, norms: np.ndarray, U0: np.ndarray, delta: np.ndarray,
                    bdec: np.ndarray, box: np.ndarray, rows: np.ndarray, refine: int = 4
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""Cap bounds of :func:`cap_bounds` for boxes that *inherit their parent's decided rows*
    (``docs/convex_program.md`` §11b): a row positive (negative) on the parent's cap is
    positive (negative) on the whole parent box, hence on the child box, where its term
    :math:`v_i(x_i^Tu)_+` is exactly :math:`v_ix_i^Tu` (0).  Box ``j`` carries
    ``bdec[j]`` :math:`= \sum_{\rm decided\ positive}v_ix_i` and the parent's undecided
    rows (the pairs ``(box[l], rows[l])``, ``box`` sorted); only those are examined, so a
    small box costs the few rows that cross it instead of all :math:`n`.  The bound holds
    on the box (not on the whole cap): that is all the search needs.

    Returns
    -------
    (bounds, values, bdec_new, undecided) :
        ``bounds`` (m,) without the rounding slack; ``values`` :math:`f` at the centres
        (in floating point: used only to pick points that are then evaluated exactly);
        ``bdec_new`` (m, d) with the rows decided positive in this box added;
        ``undecided`` (L,) bool, the pairs still undecided (the children's rows).
    """
    m = len(U0)
    d = X.shape[1]
    sdb = np.sin(np.minimum(delta, np.pi))
    cdb = np.cos(np.minimum(delta, np.pi))
    Xr = X[rows]
    vr = v[rows]
    nr = norms[rows]
    t = np.einsum("ld,ld->l", Xr, U0[box])
    C = t / nr
    sd = sdb[box]
    pos = C >= sd
    und = (C > -sd) & ~pos
    vals = np.einsum("md,md->m", bdec, U0) + np.bincount(box, vr * np.maximum(t, 0.0), minlength=m)
    # the undecided pairs only: secant intervals of the row's t = x_i^T u on the cap
    ui = np.flatnonzero(und)
    bu, Cu, sdu, cdu = box[ui], C[ui], sd[ui], cdb[box[ui]]
    nru, vu, Xu = nr[ui], vr[ui], Xr[ui]
    Sn = np.sqrt(np.maximum(1.0 - Cu * Cu, 0.0))
    h = np.where(Cu >= cdu, 1.0, Cu * cdu + Sn * sdu)
    lo = np.where(Cu <= -cdu, -1.0, Cu * cdu - Sn * sdu)
    h = (np.minimum(h, 1.0) + 1e-12) * nru
    lo = (np.maximum(lo, -1.0) - 1e-12) * nru
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.clip(h / (h - lo), 0.0, 1.0)
    frac = np.where(np.isfinite(frac), frac, 0.0)
    vpos = vu > 0
    kappa = np.bincount(bu, np.where(vpos, vu * frac * (-lo), 0.0), minlength=m)
    pi = np.flatnonzero(pos)
    bnew = bdec + _segment_sums(box[pi], Xr[pi] * vr[pi, None], m)
    pu = np.flatnonzero(vpos)
    Bpos = bnew + _segment_sums(bu[pu], Xu[pu] * (vu[pu] * frac[pu])[:, None], m)
    ni = np.flatnonzero(~vpos)
    bn, xn, vn = bu[ni], Xu[ni], vu[ni]
    lam = frac[ni]
    B = Bpos + _segment_sums(bn, xn * (vn * lam)[:, None], m)
    best = _lin_cap(B.T, U0, sdb, cdb) + kappa
    if refine > 0 and len(ni):
        cols = np.unique(bn)
        kneg = np.maximum(np.bincount(bn, minlength=m), 1)
        inv2 = 1.0 / np.maximum((vn * nru[ni]) ** 2, 1e-300)
        for _ in range(refine):
            um = np.zeros((m, d))
            um[cols] = _lin_argmax(B[cols].T, U0[cols], sdb[cols], cdb[cols])
            g = vn * np.einsum("ld,ld->l", xn, um[bn])
            bdot = np.einsum("md,md->m", B, U0)
            perp = np.linalg.norm(B - U0 * bdot[:, None], axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = np.where(sdb > 0, perp / sdb, 0.0) / kneg
            lam = np.clip(lam - g * inv2 * scale[bn], 0.0, 1.0)
            B = Bpos + _segment_sums(bn, xn * (vn * lam)[:, None], m)
            cand = _lin_cap(B[cols].T, U0[cols], sdb[cols], cdb[cols]) + kappa[cols]
            best[cols] = np.minimum(best[cols], cand)
    return best, vals, bnew, und


def _segment_sums(box: np.ndarray, M: np.ndarray, m: int) -> np.ndarray:
    """Row sums of ``M`` grouped by the sorted ``box`` ids, as an (m, d) array."""
    out = np.zeros((m, M.shape[1]))
    if len(box):
        starts = np.flatnonzero(np.r_[True, box[1:] != box[:-1]])
        out[box[starts]] = np.add.reduceat(M, starts, axis=0)
    return out


def _lin_cap(B: np.ndarray, U0: np.ndarray, sd: np.ndarray, cd: np.ndarray) -> np.ndarray:
    r""":math:`\max_{\angle(u,u_0)\le\delta}b^Tu` for the columns ``b`` of ``B``."""
    bu = np.einsum("dm,md->m", B, U0)
    perp = np.linalg.norm(B - U0.T * bu[None, :], axis=0)
    nb = np.linalg.norm(B, axis=0)
    inside = perp * cd <= bu * sd            # angle(b, u0) <= delta
    return np.where(inside, nb, bu * cd + perp * sd)


def _lin_argmax(B: np.ndarray, U0: np.ndarray, sd: np.ndarray, cd: np.ndarray) -> np.ndarray:
    bu = np.einsum("dm,md->m", B, U0)
    Pp = B - U0.T * bu[None, :]
    perp = np.linalg.norm(Pp, axis=0)
    nb = np.linalg.norm(B, axis=0)
    inside = perp * cd <= bu * sd
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.where(perp > 0, Pp / perp, 0.0).T
        ub = np.where(nb > 0, B / nb, 0.0).T
    return np.where(inside[:, None], ub, cd[:, None] * U0 + sd[:, None] * e)


class _Tree:
    """Boxes of one side (piece ``k``, sign ``s``)."""

    def __init__(self, X: np.ndarray, v: np.ndarray, k: int, s: float, Xfull: np.ndarray):
        self.X, self.v, self.k, self.s, self.Xfull = X, v, k, s, Xfull
        self.norms = np.linalg.norm(X, axis=1)
        self.d = X.shape[1]
        # rounding of b = sum_i w_i x_i (at most n terms, plus one addition per level of the
        # inherited sums), of ||b|| and of the closed form: (d + 2)(n + 64) eps sum |v_i| ||x_i||
        self.slack = (self.d + 2) * (len(v) + 64) * _EPS * float(np.abs(v) @ self.norms) + 1e-300
        self.face = np.zeros(0, dtype=np.intp)
        self.S = np.zeros((0, max(self.d - 1, 0)))
        self.r = np.zeros(0)
        self.b = np.zeros(0)
        # inherited decided rows (cap_bounds_rows): per box sum_{decided positive} v_i x_i and
        # its undecided rows, the segment pool[st : st + ln]
        self.bdec = np.zeros((0, self.d))
        self.st = np.zeros(0, dtype=np.int64)
        self.ln = np.zeros(0, dtype=np.int64)
        self.pool = np.arange(len(v), dtype=np.int64)
        self.root = True
        pos = v > 0
        self.spectral = (float(np.linalg.norm(X[pos], 2) * np.linalg.norm(v[pos])) * (1 + 1e-12) + self.slack
                         if np.any(pos) else 0.0)

    def keep(self, mask: np.ndarray) -> None:
        """Keep the boxes in ``mask`` (their row segments stay in the pool)."""
        self.face, self.S, self.r, self.b = self.face[mask], self.S[mask], self.r[mask], self.b[mask]
        self.bdec, self.st, self.ln = self.bdec[mask], self.st[mask], self.ln[mask]

    def append(self, face, S, r, b, bdec, rows, lens) -> None:
        """Add boxes whose undecided rows are ``rows`` (concatenated, ``lens`` each)."""
        live = int(self.ln.sum())
        if len(self.pool) > 4 * (live + len(rows)) + 10**6:  # compact the pool
            self.pool, self.st = _gather(self.pool, self.st, self.ln)
        st = len(self.pool) + np.cumsum(lens) - lens
        self.pool = np.concatenate([self.pool, rows])
        self.face = np.concatenate([self.face, face])
        self.S = np.vstack([self.S, S])
        self.r = np.concatenate([self.r, r])
        self.b = np.concatenate([self.b, b])
        self.bdec = np.vstack([self.bdec, bdec])
        self.st = np.concatenate([self.st, st])
        self.ln = np.concatenate([self.ln, lens])

    def top(self) -> float:
        if self.root:
            return self.spectral
        return float(self.b.max()) if len(self.b) else -np.inf

    def initial(self, grid: int) -> tuple:
        d = self.d
        g = np.linspace(-1 + 1 / grid, 1 - 1 / grid, grid)
        if d == 1:
            S = np.zeros((1, 0))
            r = np.zeros(1)
        else:
            S = np.array(list(itertools.product(g, repeat=d - 1)))
            r = np.full(len(S), 1.0 / grid)
        face = np.repeat(np.arange(2 * d), len(S))
        return face, np.tile(S, (2 * d, 1)), np.tile(r, 2 * d)


def _gather(pool: np.ndarray, st: np.ndarray, ln: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The segments ``pool[st[j] : st[j] + ln[j]]`` concatenated, and their new starts."""
    offs = np.cumsum(ln) - ln
    idx = np.arange(int(ln.sum())) - np.repeat(offs, ln) + np.repeat(st, ln)
    return pool[idx], offs


def dual_constraint_sphere(
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
    log: Callable[[float, int, int, float, float], None] | None = None,
    log_every: float = 5.0,
    batch: int | None = None,
    refine: int = 4,
    **unused: Any,
) -> OracleResult:
    r"""Direction-space branch and bound for :math:`c(v)`; same contract as
    :func:`~.oracle.dual_constraint_bb` (``upper`` is a proven bound at every moment).

    ``batch`` boxes are split per step (default: about :math:`10^6/(n2^{d-1})`); ``refine``
    is the number of subgradient steps on the multipliers of undecided rows with
    :math:`v_i\le0` (module docstring).  ``nodes`` counts bounded boxes.
    """
    t0 = time.perf_counter()
    X = np.asarray(X, dtype=float)
    v = np.asarray(v, dtype=float).reshape(-1)
    mats = [X] if pieces is None else [np.asarray(P, dtype=float) for P in pieces]
    d = mats[0].shape[1]
    trees: list[_Tree] = []
    for k, M in enumerate(mats):
        pc = merge_rows(M, v)
        for s in ((1.0,) if one_sided else (1.0, -1.0)):
            if len(pc.v) and np.any(s * pc.v > 0):
                trees.append(_Tree(pc.X, s * pc.v, k, s, M))
    inc: dict[str, Any] = {"val": 0.0, "u": np.zeros(d), "tree": None}
    violators: dict[bytes, tuple] = {}
    history: list[tuple[float, float, float]] = []
    closed_max = 0.0
    nodes = 0
    children = 2 ** max(d - 1, 0)

    def offer(tree: _Tree, u: np.ndarray, ascend: bool = True) -> None:
        if ascend:
            val, uu, _ = cell_ascent(tree.X, tree.v, u)
        else:
            uu = u / np.linalg.norm(u)
            val = float(tree.v @ np.maximum(tree.X @ uu, 0.0))
        if val > inc["val"]:
            inc.update(val=val, u=uu, tree=tree)
        if collect_above is not None and val > collect_above:
            collect_violator(violators, val, uu, tree.Xfull, tree.s, tree.k)

    def upper() -> float:
        top = max((t.top() for t in trees), default=0.0)
        return max(inc["val"], closed_max, top)

    last_log = -np.inf

    def record(force: bool = False) -> None:
        nonlocal last_log
        t = time.perf_counter() - t0
        U, L = upper(), inc["val"]
        if not history or history[-1][1] != L or history[-1][2] != U:
            history.append((t, L, U))
        if log is not None and (force or t - last_log >= log_every):
            last_log = t
            log(t, nodes, int(sum(len(tr.b) + tr.root for tr in trees)), L, U)

    def bound_boxes(tree: _Tree, face: np.ndarray, S: np.ndarray, r: np.ndarray, parent: np.ndarray,
                    bdec: np.ndarray, st: np.ndarray, ln: np.ndarray) -> tuple:
        """Bounds of the boxes (inheriting ``bdec`` and the row segments ``st``, ``ln``), the
        sums of their decided rows and their undecided rows (``rows``, ``lens``)."""
        nonlocal nodes
        out = np.empty(len(face))
        bnew = np.empty((len(face), d))
        rows_out, lens_out = [], []
        cum = np.cumsum(ln)
        a = 0
        while a < len(face):
            # chunks of about 5e5 (box, row) pairs: arrays of 4 MB, about 60 MB at the peak
            e = max(a + 1, int(np.searchsorted(cum, (cum[a - 1] if a else 0) + 500_000, side="right")))
            sl = slice(a, e)
            U0, delta = _caps(face[sl], S[sl], r[sl], d)
            rows, _ = _gather(tree.pool, st[sl], ln[sl])
            box = np.repeat(np.arange(e - a), ln[sl])
            b, vals, bn, und = cap_bounds_rows(tree.X, tree.v, tree.norms, U0, delta, bdec[sl], box, rows,
                                               refine=refine)
            out[sl] = np.minimum(b + tree.slack, parent[sl])
            bnew[sl] = bn
            rows_out.append(rows[und])
            lens_out.append(np.bincount(box[und], minlength=e - a))
            j = int(np.argmax(vals))
            if vals[j] > inc["val"]:
                offer(tree, U0[j], ascend=True)
            if collect_above is not None and len(violators) < max_collect:
                # local maxima (cell ascent) from the best centres above the threshold
                cand = np.flatnonzero(vals > collect_above)
                cand = cand[np.argsort(-vals[cand])][:max_collect - len(violators)]
                for jj in cand:
                    offer(tree, U0[jj], ascend=True)
            a = e
        nodes += len(face)
        return out, bnew, np.concatenate(rows_out), np.concatenate(lens_out)

    def prune(tree: _Tree) -> None:
        nonlocal closed_max
        # (a bound within its own rounding slack of the incumbent cannot be refined further)
        keep = tree.b > inc["val"] * (1 + rtol) + tree.slack
        if not np.all(keep):
            closed_max = max(closed_max, float(tree.b[~keep].max()))
            tree.keep(keep)

    # exactness is to rtol plus the rounding slack of the bounds (docs/convex_program.md §11b)
    slack_max = max((t.slack for t in trees), default=0.0)
    status = "optimal"
    record(force=True)
    while True:
        U, L = upper(), inc["val"]
        if U - L <= rtol * U + slack_max or not any(t.root or len(t.b) for t in trees):
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
        tree = max(trees, key=lambda t: t.top())
        if tree.root:
            face, S, r = tree.initial(4 if d <= 3 else 2)
            m0 = len(face)
            b, bn, rows, lens = bound_boxes(tree, face, S, r, np.full(m0, tree.spectral), np.zeros((m0, d)),
                                            np.zeros(m0, dtype=np.int64), np.full(m0, len(tree.v), dtype=np.int64))
            tree.root = False
            tree.pool = np.zeros(0, dtype=np.int64)
            tree.append(face, S, r, b, bn, rows, lens)
            for t in trees:
                if not t.root:
                    prune(t)
            record()
            continue
        # about 1e6 (box, row) pairs per step (the open boxes' mean number of undecided rows)
        mean_rows = float(tree.ln.mean()) if len(tree.ln) else float(len(tree.v))
        nb = batch if batch is not None else max(1, int(1e6 // (max(mean_rows, 1.0) * children)))
        nb = min(nb, len(tree.b))
        # the nb boxes with the largest bounds
        sel = np.argpartition(-tree.b, nb - 1)[:nb] if nb < len(tree.b) else np.arange(len(tree.b))
        if d == 1:  # single directions: bounds are exact already
            closed_max = max(closed_max, float(tree.b[sel].max()))
            rest = np.ones(len(tree.b), dtype=bool)
            rest[sel] = False
            tree.keep(rest)
            continue
        rest = np.ones(len(tree.b), dtype=bool)
        rest[sel] = False
        pf, pS, pr, pb = tree.face[sel], tree.S[sel], tree.r[sel], tree.b[sel]
        pbd, pst, pln = tree.bdec[sel], tree.st[sel], tree.ln[sel]
        offs = np.array(list(itertools.product((-0.5, 0.5), repeat=d - 1)))
        cf = np.repeat(pf, children)
        cr = np.repeat(pr / 2, children)
        cS = (pS[:, None, :] + pr[:, None, None] * offs[None, :, :]).reshape(-1, d - 1)
        cb, cbd, crows, clens = bound_boxes(tree, cf, cS, cr, np.repeat(pb, children), np.repeat(pbd, children, axis=0),
                                            np.repeat(pst, children), np.repeat(pln, children))
        tree.keep(rest)
        tree.append(cf, cS, cr, cb, cbd, crows, clens)
        for t in trees:
            if not t.root:
                prune(t)
        record()
    U, L = upper(), inc["val"]
    exact = U - L <= max(rtol, 1e-7) * U + slack_max or U <= 0
    if status == "optimal" and not exact:
        status = "finished (bound and value differ by more than rtol)"
    record(force=True)
    tree = inc["tree"]
    u = inc["u"]
    if tree is not None:
        pat = tree.Xfull @ u >= 0
        sgn, k = tree.s, tree.k
    else:
        pat, sgn, k = np.zeros(X.shape[0], dtype=bool), 1.0, 0
    viol = sorted(violators.values(), key=lambda x: -x[0])[:max_collect]
    return OracleResult(upper=float(U), lower=float(L), u=u, sign=float(sgn), piece=int(k), pattern=pat,
                        exact=bool(exact), nodes=nodes, time_s=time.perf_counter() - t0, status=status,
                        history=history, violators=viol, search="directions")
