r"""A lifted (doubly non-negative) relaxation bound on the two-layer ReLU dual constraint.

For a dual point :math:`v` and data :math:`X` the dual constraint is (docs/convex_program.md §4)

.. math:: c(v) = \max\big(g(v), g(-v)\big),\qquad g(v) = \max_{\|u\|\le1}\sum_i v_i(x_i^Tu)_+ .

For one sign, the rows with :math:`v_i>0` (the set :math:`P`) get a variable
:math:`z_i = (x_i^Tu)_+`, i.e. :math:`z_i\ge0,\ z_i\ge x_i^Tu,\ z_i(z_i - x_i^Tu) = 0`; the
rows with :math:`v_i<0` are exact with linear variables :math:`y_i\ge0,\ y_i\ge x_i^Tu`
(the objective pushes them down).  The vector :math:`m = (1, u, z)` is lifted to
:math:`M = mm^T\succeq0` and the products of the non-negative quantities :math:`z` and
:math:`z - X_Pu` are kept entrywise non-negative (the doubly non-negative relaxation);
:math:`\operatorname{tr}(uu^T)\le1` and :math:`\operatorname{diag}(zz^T) =
\operatorname{diag}(z(X_Pu)^T)`.  The relaxation is solved by SCS (optional extra
``deepdual[sdp]``), and its (inexact) dual multipliers are turned into a **proven** upper
bound by weak duality with the PSD multiplier repaired by its most negative eigenvalue
times an a-priori bound on :math:`\|m\|^2` (docs/lifted.md).  Inexact or early
stopped solves only loosen the bound.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from deepdual.relu.convex_program.cells import merge_rows
from deepdual.relu.convex_program.certificate import support_spectral_bound

__all__ = ["LEVELS", "LIFTS", "LiftedBound", "RelaxationProgram", "SideBound", "lifted_bound",
           "lifted_rows", "lifted_side_bound", "relaxation_program", "repaired_dual_bound"]

#: relaxation levels, cheapest first: ``"shor"`` (PSD, complementarity of the diagonal,
#: linear constraints), ``"partial"`` (+ :math:`zz^T\ge0` and :math:`z(z-X_Pu)^T\ge0`),
#: ``"dnn"`` (+ :math:`(z-X_Pu)(z-X_Pu)^T\ge0`).
LEVELS = ("shor", "partial", "dnn")

LIFTS = ("all", "positive")

_EPS = float(np.finfo(float).eps)
_SQ2 = float(np.sqrt(2.0))


def _import_scs() -> Any:
    try:
        import scs  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the lifted relaxation bound needs SCS: install the optional extra "
                          "'sdp' (pip install 'deepdual[sdp]')") from exc
    return scs


@dataclass
class SideBound:
    """Bound on :math:`g(v) = \\max_{\\|u\\|\\le1}\\sum_iv_i(x_i^Tu)_+` for one sign."""

    upper: float                 # proven upper bound on g
    solver_value: float          # SCS's (unproven) relaxation value, with the secant constant
    status: str                  # SCS status string
    iterations: int
    time_s: float
    rows_lifted: int
    shift: float                 # max(0, -lambda_min(S)) + rounding margin used in the repair
    trace_bound: float           # a-priori bound on ||(1, u, z)||^2


@dataclass
class LiftedBound:
    """Proven upper bound on :math:`c(v) = \\max_{\\|u\\|\\le1}|v^T(Xu)_+|`."""

    upper: float
    sides: list[SideBound] = field(default_factory=list)
    spectral: float = float("inf")
    time_s: float = 0.0
    level: str = "dnn"


def _svec_index(m: int) -> np.ndarray:
    """SCS's svec position of the lower-triangle entry (i, j), i >= j (column-major)."""
    idx = np.full((m, m), -1, dtype=np.intp)
    k = 0
    for j in range(m):
        idx[j:, j] = np.arange(k, k + m - j)
        idx[j, j:] = idx[j:, j]
        k += m - j
    return idx


class _Rows:
    """Accumulates sparse constraint rows over the variables ``x = [svec(M), y]``.

    A functional is given as pairs ``(i, j, coef)`` meaning ``coef * M_ij`` (total coefficient
    of the unordered pair) and ``(k, coef)`` on the linear variables; the svec coefficient is
    ``coef`` on the diagonal and ``coef / sqrt(2)`` off it, so that ``<svec(G), svec(M)>``
    reproduces the functional.
    """

    def __init__(self, sidx: np.ndarray, n_svec: int):
        self.sidx, self.n_svec = sidx, n_svec
        self.r: list[np.ndarray] = []
        self.c: list[np.ndarray] = []
        self.v: list[np.ndarray] = []
        self.nrows = 0

    def add_pairs(self, row: np.ndarray, i: np.ndarray, j: np.ndarray, coef: np.ndarray) -> None:
        row, i, j, coef = np.broadcast_arrays(row, i, j, np.asarray(coef, dtype=float))
        row, i, j, coef = (a.reshape(-1) for a in (row, i, j, coef))
        self.r.append(row)
        self.c.append(self.sidx[i, j])
        self.v.append(np.where(i == j, coef, coef / _SQ2))

    def add_linear(self, row: np.ndarray, k: np.ndarray, coef: np.ndarray) -> None:
        row, k, coef = np.broadcast_arrays(row, k, np.asarray(coef, dtype=float))
        self.r.append(row.reshape(-1))
        self.c.append(self.n_svec + k.reshape(-1))
        self.v.append(coef.reshape(-1))

    def new(self, count: int) -> np.ndarray:
        out = np.arange(self.nrows, self.nrows + count)
        self.nrows += count
        return out

    def matrix(self, ncols: int) -> sp.csr_matrix:
        if not self.r:
            return sp.csr_matrix((self.nrows, ncols))
        return sp.csr_matrix((np.concatenate(self.v), (np.concatenate(self.r), np.concatenate(self.c))),
                             shape=(self.nrows, ncols))


@dataclass
class RelaxationProgram:
    A: sp.csc_matrix
    b: np.ndarray
    c: np.ndarray
    cone: dict
    m: int               # order of the lifted matrix
    n_svec: int
    y_bounds: np.ndarray  # 0 <= y_k <= y_bounds[k] at every true point
    x_max: float          # |x_k| <= x_max at every true point (for the coefficients' rounding)
    coef_pad: float       # absolute slack per row for coefficients that are sums of products
    const: float = 0.0    # constant term of the objective (secants of positive rows not lifted)
    extra_err: float = 0.0  # rounding bound of the secant terms (constant and linear)
    lifted: np.ndarray | None = None  # mask of the lifted rows


def lifted_rows(A: np.ndarray, v: np.ndarray, lift: str, max_lifted: int | None) -> np.ndarray:
    r"""Mask of the rows that get a lifted variable: all non-zero (``"all"``) or positive
    (``"positive"``) weights, at most ``max_lifted`` of them, largest :math:`|v_i|\|a_i\|` first."""
    cand = (v != 0) if lift == "all" else (v > 0)
    if max_lifted is not None and int(cand.sum()) > max_lifted:
        w = np.where(cand, np.abs(v) * np.linalg.norm(A, axis=1), -np.inf)
        keep = np.argsort(-w, kind="stable")[:max_lifted]
        cand = np.zeros(len(v), dtype=bool)
        cand[keep] = True
    return cand


def relaxation_program(A: np.ndarray, v: np.ndarray, level: str, lift: str,
                       max_lifted: int | None = None) -> RelaxationProgram:
    """SCS data (min c^T x, Ax + s = b, s in K) of the relaxation of max_u sum v_i (a_i^T u)_+.

    Lifted rows (:func:`lifted_rows`) get a variable z_i in the lifted matrix.  The others: a
    row with v_k < 0 is a linear variable y_k >= max(0, a_k^T u) (exact for one u, but charged
    only at the relaxation's mean u); the rows Q with v_k > 0 are replaced by their secants on
    [-||a_k||, ||a_k||], v_k (a_k^T u + ||a_k||) / 2 >= v_k (a_k^T u)_+ (a constant plus a
    linear term), or, when that is smaller in the worst case, by the constant
    ||v_Q|| ||A_Q||_2 >= v_Q^T (A_Q u)_+ (docs/convex_program.md §4)."""
    L = lifted_rows(A, v, lift, max_lifted)
    P = np.flatnonzero(L)
    N = np.flatnonzero(~L & (v < 0))
    Q = np.flatnonzero(~L & (v > 0))
    AP, AN = A[P], A[N]
    p, q, r = len(P), len(N), A.shape[1]
    m = 1 + r + p
    sidx = _svec_index(m)
    n_svec = m * (m + 1) // 2
    nx = n_svec + q
    U = 1 + np.arange(r)          # positions of u in m
    Z = 1 + r + np.arange(p)      # positions of z in m
    zero = _Rows(sidx, n_svec)
    lin = _Rows(sidx, n_svec)
    b_zero: list[np.ndarray] = []
    b_lin: list[np.ndarray] = []

    # --- zero cone: M00 = 1 ; z_i^2 = z_i a_i^T u --------------------------------------
    row = zero.new(1)
    zero.add_pairs(row, np.array([0]), np.array([0]), np.array([1.0]))
    b_zero.append(np.array([1.0]))
    rows = zero.new(p)
    zero.add_pairs(rows, Z, Z, 1.0)
    zero.add_pairs(rows[:, None], Z[:, None], U[None, :], -AP)
    b_zero.append(np.zeros(p))

    # --- non-negative cone (written as -g(M) + s = 0, s >= 0) ---------------------------
    rows = lin.new(p)                                        # z_i >= 0
    lin.add_pairs(rows, 0, Z, -1.0)
    rows = lin.new(p)                                        # z_i - a_i^T u >= 0
    lin.add_pairs(rows, 0, Z, -1.0)
    lin.add_pairs(rows[:, None], 0, U[None, :], AP)
    b_lin.append(np.zeros(2 * p))
    if q:
        k = np.arange(q)
        rows = lin.new(q)                                    # y_k >= 0
        lin.add_linear(rows, k, -1.0)
        rows = lin.new(q)                                    # y_k - a_k^T u >= 0
        lin.add_linear(rows, k, -1.0)
        lin.add_pairs(rows[:, None], 0, U[None, :], AN)
        b_lin.append(np.zeros(2 * q))
    row = lin.new(1)                                         # tr(uu^T) <= 1
    lin.add_pairs(row, U, U, 1.0)
    b_lin.append(np.array([1.0]))
    if level in ("partial", "dnn") and p > 1:
        iu, ju = np.triu_indices(p, 1)
        rows = lin.new(len(iu))                              # Z_ij >= 0
        lin.add_pairs(rows, Z[iu], Z[ju], -1.0)
        b_lin.append(np.zeros(len(iu)))
        io, jo = np.nonzero(~np.eye(p, dtype=bool))
        rows = lin.new(len(io))                              # z_i (z_j - a_j^T u) >= 0
        lin.add_pairs(rows, Z[io], Z[jo], -1.0)
        lin.add_pairs(rows[:, None], Z[io][:, None], U[None, :], AP[jo])
        b_lin.append(np.zeros(len(io)))
        if level == "dnn":
            rows = lin.new(len(iu))                          # (z_i - a_i^T u)(z_j - a_j^T u) >= 0
            lin.add_pairs(rows, Z[iu], Z[ju], -1.0)
            lin.add_pairs(rows[:, None], Z[iu][:, None], U[None, :], AP[ju])
            lin.add_pairs(rows[:, None], Z[ju][:, None], U[None, :], AP[iu])
            ia, ib = np.triu_indices(r)
            coef = AP[iu][:, ia] * AP[ju][:, ib] + np.where(ia != ib, AP[iu][:, ib] * AP[ju][:, ia], 0.0)
            lin.add_pairs(rows[:, None], U[ia][None, :], U[ib][None, :], -coef)
            b_lin.append(np.zeros(len(iu)))

    Az = zero.matrix(nx)
    Al = lin.matrix(nx)
    Apsd = sp.hstack([-sp.identity(n_svec, format="csr"), sp.csr_matrix((n_svec, q))], format="csr")
    Amat = sp.vstack([Az, Al, Apsd], format="csc")
    b = np.concatenate([np.concatenate(b_zero), np.concatenate(b_lin), np.zeros(n_svec)])
    c = np.zeros(nx)
    c[sidx[0, Z]] = -v[P] / _SQ2                               # maximize sum v_i z_i
    c[n_svec:] = -v[N]                                          # ... + sum v_k y_k (v_k < 0)
    const, extra_err = 0.0, 0.0
    spec_q = float(np.linalg.norm(v[Q])) * _spectral_upper(A[Q]) if len(Q) else 0.0
    nq = np.linalg.norm(A[Q], axis=1)
    secant_worst = float(v[Q] @ nq + np.linalg.norm(A[Q].T @ v[Q])) / 2.0
    if len(Q) and spec_q < secant_worst:                        # ... + a constant for the others
        const = spec_q * (1 + 8 * _EPS * len(Q))
    elif len(Q):                                                # ... + secants of the others
        const = float(v[Q] @ nq) / 2.0
        c[sidx[0, U]] -= (A[Q].T @ v[Q]) / 2.0 / _SQ2
        extra_err = (len(Q) + 4) * _EPS * float(np.abs(v[Q]) @ (nq + _SQ2 * np.abs(A[Q]).sum(axis=1)))
    cone = {"z": Az.shape[0], "l": Al.shape[0], "s": [m]}
    rmax = float(np.max(np.linalg.norm(A, axis=1))) if len(A) else 0.0
    x_max = _SQ2 * max(1.0, rmax * rmax) * (1 + 1e-9)
    coef_pad = (1.0 + rmax * rmax) * r * r
    return RelaxationProgram(Amat, b, c, cone, m, n_svec, np.linalg.norm(AN, axis=1), x_max, coef_pad,
                             const, extra_err * x_max, L)


def _smat(x: np.ndarray, m: int, sidx: np.ndarray) -> np.ndarray:
    """Inverse of SCS's scaled svec: off-diagonal entries divided by sqrt(2)."""
    S = x[sidx]
    S = S / _SQ2
    S[np.diag_indices(m)] *= _SQ2
    return S


def repaired_dual_bound(prog: RelaxationProgram, y: np.ndarray, trace_bound: float) -> tuple[float, float]:
    r"""Proven upper bound on :math:`\max\{-c^Tx\}` over the *true* points, from any ``y``.

    ``y`` is any vector (SCS's dual, possibly inexact); its non-negative-cone part is clipped
    at 0.  With :math:`y'` the zero- and non-negative-cone parts, :math:`A'`, :math:`b'` their
    rows, :math:`r = c + A'^Ty'` and :math:`S = \operatorname{smat}(r_{\text{svec}})`, every
    feasible :math:`x` with :math:`M = mm^T`, :math:`\|m\|^2\le T` and
    :math:`0\le y_k\le h_k` satisfies

    .. math:: -c^Tx \le b'^Ty' + \max(0, -\lambda_{\min}(S))\,T
              + \sum_k \max(0, -r_{y_k})\,h_k

    (docs/lifted.md), evaluated with margins covering the rounding of the stored
    coefficients of :math:`A'` and :math:`c` (relative error at most :math:`2\epsilon` each,
    with :math:`|x_k|\le` ``x_max`` at true points), of :math:`r`, of :math:`b'^Ty'` and of the
    eigenvalue routine.  Returns (bound, shift).
    """
    nz, nl = prog.cone["z"], prog.cone["l"]
    yz = np.asarray(y[:nz], dtype=float)
    yl = np.maximum(np.asarray(y[nz:nz + nl], dtype=float), 0.0)
    if not (np.all(np.isfinite(yz)) and np.all(np.isfinite(yl))):
        return float("inf"), float("inf")
    yp = np.concatenate([yz, yl])
    Ap = prog.A[:nz + nl]
    res = prog.c + Ap.T @ yp
    absA = abs(Ap)
    res_err = np.abs(prog.c) + absA.T @ np.abs(yp)
    kmax = int(np.max(np.diff(Ap.tocsc().indptr))) if Ap.nnz else 0
    res_err *= (kmax + 4) * _EPS * 1.01
    m, ns = prog.m, prog.n_svec
    sidx = _svec_index(m)
    S = _smat(res[:ns], m, sidx)
    E = _smat(res_err[:ns], m, sidx)
    lam = float(np.linalg.eigvalsh(S)[0])
    # eigvalsh is backward stable: computed eigenvalues are exact for S + dS, ||dS|| <= c m eps ||S||
    margin = float(np.linalg.norm(E)) + 16.0 * m * _EPS * float(np.linalg.norm(S))
    shift = max(0.0, -lam + margin)
    ry = res[ns:]
    ry_lo = ry - res_err[ns:]
    bp = prog.b[:nz + nl]
    dual = float(bp @ yp)
    dual_err = (len(yp) + 4) * _EPS * float(np.abs(bp) @ np.abs(yp))
    lin_term = float(np.maximum(0.0, -ry_lo) @ prog.y_bounds)
    # the stored rows and costs are the exact ones up to 2 eps relative per coefficient, and
    # up to 3 eps * sum |A_ia A_jb| (<= coef_pad) for the sums of two products (level "dnn")
    coef_err = 8 * _EPS * prog.x_max * (float(np.abs(yp) @ (absA @ np.ones(absA.shape[1]) + prog.coef_pad))
                                        + float(np.abs(prog.c).sum()))
    total = dual + dual_err + shift * trace_bound + lin_term + coef_err + prog.const + prog.extra_err
    return float(total * (1 + 16 * _EPS) + 16 * _EPS * abs(total)), shift


def _spectral_upper(A: np.ndarray) -> float:
    """Upper bound on ||A||_2 with a margin for the SVD's rounding (and never above ||A||_F)."""
    if A.size == 0:
        return 0.0
    fro = float(np.linalg.norm(A))
    s = float(np.linalg.norm(A, 2))
    return min(fro * (1 + 8 * _EPS * A.size), s + 32 * _EPS * (sum(A.shape)) * fro)


def lifted_side_bound(A: np.ndarray, v: np.ndarray, *, level: str = "dnn", lift: str = "all",
                      max_lifted: int | None = None, eps: float = 1e-7, max_iters: int = 20000,
                      time_limit: float | None = None,
                      verbose: bool = False, solver_options: dict | None = None) -> SideBound:
    r"""Proven upper bound on :math:`\max_{\|u\|\le1}\sum_iv_i(a_i^Tu)_+` by the lifted relaxation.

    ``A`` should have unit-norm rows (scale ``v`` instead); the bound is valid for any rows.
    Rows with ``v_i = 0`` are ignored.  Returns a :class:`SideBound`.
    """
    t0 = time.perf_counter()
    keep = v != 0
    A, v = A[keep], v[keep]
    P = v > 0
    if not np.any(P):
        return SideBound(0.0, 0.0, "trivial", 0, time.perf_counter() - t0, 0, 0.0, 0.0)
    scs = _import_scs()
    prog = relaxation_program(A, v, level, lift, max_lifted)
    lifted = prog.lifted
    trace_bound = (2.0 + _spectral_upper(A[lifted]) ** 2) * (1 + 1e-12)
    settings: dict[str, Any] = {"eps_abs": eps, "eps_rel": eps, "max_iters": int(max_iters),
                                "verbose": bool(verbose)}
    if time_limit is not None:
        settings["time_limit_secs"] = float(time_limit)
    settings.update(solver_options or {})
    solver = scs.SCS({"A": prog.A, "b": prog.b, "c": prog.c}, prog.cone, **settings)
    sol = solver.solve()
    y = np.asarray(sol["y"], dtype=float)
    upper, shift = repaired_dual_bound(prog, y, trace_bound)
    info = sol["info"]
    return SideBound(upper, prog.const - float(info.get("pobj", np.nan)), str(info.get("status")),
                     int(info.get("iter", 0)), time.perf_counter() - t0, int(lifted.sum()), shift, trace_bound)


def lifted_bound(X: Any, v: Any, *, level: str = "dnn", lift: str = "all", max_lifted: int | None = None,
                 eps: float = 1e-7, max_iters: int = 20000,
                 time_limit: float | None = None, verbose: bool = False,
                 solver_options: dict | None = None) -> LiftedBound:
    r"""Proven upper bound on :math:`c(v) = \max_{\|u\|\le1}|v^T(Xu)_+|` (docs/lifted.md).

    Parameters
    ----------
    X : array of shape (n, d)
        Data (finite).
    v : array of shape (n,)
        Dual point (finite).
    level : {"shor", "partial", "dnn"}
        Which products are kept non-negative (see :data:`LEVELS`); ``"dnn"`` is the tightest.
    lift : {"all", "positive"}
        Lift every row, or only the rows with positive weight (for each sign); the others are
        then linear, which is cheaper but much looser.
    max_lifted : int, optional
        Lift at most this many rows per sign (largest :math:`|v_i|\|x_i\|` first); the others
        are linear (rows with negative weight) or replaced by their secant (positive weight).
        Bounds the solver's cost (the lifted matrix has order 1 + rank + lifted rows).
    eps, max_iters, time_limit, verbose
        SCS's tolerances, iteration and time limits (per sign).  A loose or early-stopped
        solve still gives a proven (looser) bound.
    solver_options : dict, optional
        Further SCS settings, e.g. ``{"linear_solver": scs.LinearSolver.CPU_INDIRECT}`` or
        ``{"acceleration_lookback": 0}``.

    Returns
    -------
    LiftedBound
        ``upper`` >= c(v), never above the spectral bound of docs/convex_program.md §4.
    """
    X = np.array(X, dtype=float, copy=True)
    v = np.array(v, dtype=float, copy=True)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"X must be a non-empty 2-D array, got shape {X.shape}")
    if v.ndim != 1 or v.shape[0] != X.shape[0]:
        raise ValueError(f"v must be a 1-D array of length {X.shape[0]} (rows of X), got shape {v.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X must be finite (no NaN/inf)")
    if not np.all(np.isfinite(v)):
        raise ValueError("v must be finite (no NaN/inf)")
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    if lift not in LIFTS:
        raise ValueError(f"lift must be one of {LIFTS}, got {lift!r}")
    if not (eps > 0):
        raise ValueError(f"eps must be > 0, got {eps!r}")
    if int(max_iters) < 1:
        raise ValueError(f"max_iters must be a positive integer, got {max_iters!r}")
    if max_lifted is not None and (isinstance(max_lifted, bool) or not isinstance(max_lifted, (int, np.integer))
                                   or max_lifted < 0):
        raise ValueError(f"max_lifted must be a non-negative integer or None, got {max_lifted!r}")
    if solver_options is not None and not isinstance(solver_options, dict):
        raise TypeError(f"solver_options must be a dict or None, got {type(solver_options).__name__}")
    if time_limit is not None and not (time_limit > 0):
        raise ValueError(f"time_limit must be > 0 or None, got {time_limit!r}")
    t0 = time.perf_counter()
    spectral = support_spectral_bound(X, v)
    mr = merge_rows(X, v)
    if mr.X.shape[0] == 0:
        return LiftedBound(0.0, [], spectral, time.perf_counter() - t0, level)
    # unit rows: v_i (x_i^T u)_+ = (v_i ||x_i||) (x_i^T u / ||x_i||)_+ ; the rounding of the
    # scaling, of the merge and of the row-space reduction is covered by `slack`.
    Xm, vm = mr.X, mr.v
    slack = 64 * _EPS * float(np.abs(v) @ np.linalg.norm(X, axis=1))
    r = np.linalg.matrix_rank(Xm)
    if r < Xm.shape[1]:
        # u = Q w + u_perp, ||w|| <= ||Q||_2 ; X u_perp is bounded by ||X - X Q Q^T||
        _, _, Vt = np.linalg.svd(Xm, full_matrices=False)
        Q = Vt[:r].T
        Ar = Xm @ Q
        resid = float(np.linalg.norm(Xm - Ar @ Q.T)) * (1 + 1e-6) + 64 * _EPS * float(np.linalg.norm(Xm))
        qnorm = float(np.sqrt(1.0 + np.linalg.norm(Q.T @ Q - np.eye(r)) + 64 * _EPS * r))
        slack += float(np.linalg.norm(vm)) * resid
    else:
        Ar, qnorm = Xm, 1.0
    rn = np.linalg.norm(Ar, axis=1)
    okr = rn > 0
    # rows that vanish in the reduced space contribute at most |v_i| * resid, already in slack
    An = Ar[okr] / rn[okr, None]
    vs = vm[okr] * rn[okr]
    sides = []
    best = 0.0
    for s in (1.0, -1.0):
        sb = lifted_side_bound(An, s * vs, level=level, lift=lift, max_lifted=max_lifted, eps=eps, max_iters=max_iters,
                               time_limit=time_limit, verbose=verbose, solver_options=solver_options)
        sides.append(sb)
        best = max(best, sb.upper)
    upper = best * qnorm + slack * (1.0 + 1e-6) + 8 * _EPS * best
    return LiftedBound(min(upper, spectral), sides, spectral, time.perf_counter() - t0, level)
