r"""The dual constraint of the convex program and the proven lower bound
(``docs/convex_program.md`` §4 and §5).

For a dual point :math:`v` the constraint is :math:`c(v) = \max_{\|u\|\le1}|v^T(Xu)_+| \le \beta`;
over the cell of pattern :math:`D_i` its value is the conic projection
:math:`c_{i,s}(v) = \min_{\mu\ge0}\|X^T(sD_iv + (2D_i - I)\mu)\|` (an NNLS,
:func:`cone_value`, :func:`pattern_values`).  Without a complete pattern set the proven
bound :func:`support_spectral_bound` is used.  Vector outputs: the cell-wise bound
:func:`vector_cell_bound` and the dual point of the gated relaxation
(:func:`gated_relaxation_dual`).  :func:`global_constraint` picks the bound that is
valid over *all* two-layer networks.

Part of :mod:`deepdual.relu.convex_program.solver` (the entry point, which re-exports the names).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import nnls

from ...dual_constraint import spectral_norm_bound
from ...losses import Loss
from ...patterns import count_upper_bound, enumerate_patterns
from .groups import loss_curvature


# ============================================================================ dual constraint
def cone_value(Xr: np.ndarray, d: np.ndarray, sv: np.ndarray) -> float:
    r"""Upper bound, exact to NNLS accuracy, on :math:`\max_{u\in K,\|u\|\le1} sv^TDXu`.

    With :math:`K = \{u : (2D - I)Xu \ge 0\}` and :math:`D = \operatorname{diag}(d)`, conic
    duality gives :math:`\max_{u\in K,\|u\|\le1} a^Tu = \|\Pi_K(a)\| = \min_{\mu\ge0}\|a + X^T(2D-I)\mu\|`
    with :math:`a = X^TD(sv)`.  The residual is recomputed from the NNLS solution clipped
    to :math:`\mu \ge 0`: the value of a feasible point, hence never below the maximum.
    ``Xr`` is ``X`` in row-space coordinates (n, r).
    """
    sgn = 2.0 * d - 1.0
    A = Xr.T * sgn[None, :]  # (r, n): columns (2D - I)_jj x_j
    b = -(Xr.T @ (d * sv))
    if not np.any(b):
        return 0.0
    try:
        mu, _ = nnls(A, b, maxiter=50 * max(1, A.shape[1]))
    except RuntimeError:  # pragma: no cover - iteration limit: mu = 0 is feasible
        return float(np.linalg.norm(b))
    return float(np.linalg.norm(A @ np.maximum(mu, 0.0) - b))


def pattern_values(Xr: np.ndarray, V: np.ndarray, pats: np.ndarray, beta: float, *,
                   max_new: int = 0) -> tuple[float, np.ndarray]:
    r"""Exact :math:`\max_{i,s,k} c_{i,s}(v_k)` over ``pats`` and the violating patterns.

    NNLS values (:func:`cone_value`) are evaluated in decreasing order of the cheap
    upper bound :math:`\|X^TD_iv_k\|` (:math:`\mu = 0`) and only while a pattern could
    still beat the running maximum, or exceed ``beta`` while fewer than ``max_new``
    violators were found; so the maximum is exact and the work small.

    Returns ``(c, violators)``: ``c`` is the maximum (exact up to NNLS accuracy, never
    below it), ``violators`` the indices of patterns with value > ``beta``, most
    violating first (at most ``max_new``).
    """
    n, K = V.shape
    if len(pats) == 0:
        return 0.0, np.zeros(0, dtype=np.intp)
    Dm = pats.astype(float)
    cheap = np.zeros(len(pats))
    for k in range(K):
        cheap = np.maximum(cheap, np.linalg.norm(Dm @ (V[:, [k]] * Xr), axis=1))
    order = np.argsort(cheap)[::-1]
    best = 0.0
    found: list[tuple[float, int]] = []
    for p in order:
        bound = float(cheap[p])
        if bound <= best and (bound <= beta or len(found) >= max_new):
            break
        val = 0.0
        # per output, mu = 0 bounds both signs' cone values by ||X^T D_p v_k||: outputs
        # whose bound cannot raise val need no NNLS (K = 10, digits: most of them)
        cheap_k = np.linalg.norm(Xr.T @ (Dm[p][:, None] * V), axis=0) if K > 1 else np.array([bound])
        for k in np.argsort(cheap_k)[::-1]:
            if cheap_k[k] <= val:
                break
            for s in (1.0, -1.0):
                val = max(val, cone_value(Xr, Dm[p], s * V[:, k]))
        val = min(val, bound)
        best = max(best, val)
        # above beta beyond the NNLS residual's rounding (a few ulps of beta)
        if val > beta * (1.0 + 1e-12):
            found.append((val, int(p)))
    found.sort(reverse=True)
    return best, np.array([p for _, p in found[:max_new]], dtype=np.intp)


def support_spectral_bound(X: np.ndarray, v: np.ndarray) -> float:
    r"""Proven upper bound on :math:`c(v) = \max_{\|u\|\le1}|v^T(Xu)_+|` for any data.

    :math:`v^T(Xu)_+ \le v_+^T(X_{S_+}u)_+ \le \|v_+\|\,\|X_{S_+}\|_2` and likewise for
    :math:`-v`, with :math:`S_\pm` the supports of :math:`v_\pm` (a refinement of
    :math:`\|X\|_2\max(\|v_+\|,\|v_-\|)`, docs/theory.md §2.8).  The norms
    :math:`\|X_{S_\pm}\|_2` are bounded by :func:`deepdual.dual_constraint.spectral_norm_bound`:
    on many rows through the blocked :math:`d\times d` Gram matrix with a proven rounding
    margin, never copying :math:`X_{S_\pm}` (docs/convex_program.md §4).
    """
    v = np.asarray(v, dtype=float).reshape(-1)
    out = 0.0
    for part in (v > 0, v < 0):
        if np.any(part):
            out = max(out, spectral_norm_bound(X, part) * float(np.linalg.norm(v[part])))
    return out


def spectral_norm_upper(A: np.ndarray) -> float:
    r"""Upper bound on :math:`\|A\|_2` (:func:`deepdual.dual_constraint.spectral_norm_bound`)."""
    return spectral_norm_bound(A)


def cell_spectral_values(Xr: np.ndarray, V: np.ndarray, pats: np.ndarray) -> np.ndarray:
    r""":math:`\|V^TD_iX\|_2` for every pattern (rows of ``pats``), computed in batches."""
    out = np.empty(len(pats))
    step = max(1, int(2e6 // max(1, Xr.shape[1] * V.shape[1] * Xr.shape[0])))
    for a in range(0, len(pats), step):
        Dm = pats[a:a + step].astype(float)
        M = np.einsum("pn,nr,nk->prk", Dm, Xr, V, optimize=True)
        out[a:a + step] = np.linalg.norm(M, ord=2, axis=(1, 2))
    return out


def vector_cell_bound(Xr: np.ndarray, V: np.ndarray, pats: np.ndarray) -> float:
    r"""Proven upper bound on :math:`c(V) = \max_{\|u\|\le1}\|V^T(Xu)_+\|` over the cells
    of a **complete** pattern set.

    On the cell :math:`K_i` of pattern :math:`D_i`, :math:`(Xu)_+ = D_iXu` and

    .. math:: \max_{u\in K_i,\|u\|\le1}\|V^TD_iXu\| \le b_i = \min\Big(\|V^TD_iX\|_2,\
              \Big(\sum_k\max_{s=\pm1}c_{i,s}(v_k)^2\Big)^{1/2}\Big),

    the first by the operator norm (dropping the cone), the second output by output
    with the exact per-cell values :math:`c_{i,s}(v_k)` of :func:`cone_value` (NNLS,
    never below the true maximum).  Returns :math:`\max_ib_i`: the cells are visited in
    decreasing order of :math:`\|V^TD_iX\|_2` and the NNLS values are computed only
    while a cell could still raise the maximum, so the value is the exact
    :math:`\max_ib_i` at a fraction of the cost.
    """
    if len(pats) == 0:
        return 0.0
    spec = cell_spectral_values(Xr, V, pats)
    best = 0.0
    for i in np.argsort(spec)[::-1]:
        if spec[i] <= best:
            break
        d = pats[i].astype(float)
        per = [max(cone_value(Xr, d, V[:, k]), cone_value(Xr, d, -V[:, k])) for k in range(V.shape[1])]
        best = max(best, min(float(spec[i]), float(np.linalg.norm(per))))
    return best


def complete_set(Xa: np.ndarray, rs: Any, pats: np.ndarray, complete: bool, enum_limit: int
                  ) -> np.ndarray | None:
    """A complete pattern set: ``pats`` when complete, else an enumeration when the
    region-count bound is at most ``enum_limit``, else ``None``."""
    if complete:
        return pats
    if count_upper_bound(Xa.shape[0], rs.rank) <= enum_limit:
        return enumerate_patterns(Xa)
    return None


def global_constraint(Xa: np.ndarray, rs: Any, V: np.ndarray, full: np.ndarray | None,
                       beta: float) -> tuple[float, bool, str]:
    r"""Proven upper bound on the dual constraint :math:`c(V)` over *all* two-layer networks.

    ``(value, exact, how)``.  Scalar output: the exact maximum over all patterns when
    a complete set ``full`` is given (:func:`complete_set`); else
    :func:`support_spectral_bound`.  Vector output
    (:math:`c(V) = \max_{\|u\|\le1}\|V^T(Xu)_+\|`): over a complete (or enumerable)
    pattern set the cell-wise bound :func:`vector_cell_bound`, else the minimum of
    :math:`\sqrt{\sum_k c(v_k)^2}` (each :math:`c(v_k)` bounded as for scalar output)
    and :math:`\|V\|_2\|X\|_2`.  Singular values of ``X`` dropped as numerically zero by
    :func:`deepdual.patterns.row_space` add :math:`\|V\|_F\,s_{r+1}` (ReLU is
    1-Lipschitz), keeping every value a rigorous bound.
    """
    n, K = V.shape
    dropped = 0.0
    if rs.rank < min(Xa.shape):  # singular values dropped by row_space (full rank: none, no SVD)
        s = np.linalg.svd(Xa, compute_uv=False)
        dropped = float(s[rs.rank]) * float(np.linalg.norm(V))
    Xr = rs.Xr
    if full is not None:
        if K == 1:
            return pattern_values(Xr, V, full, beta)[0] + dropped, True, \
                f"exact: all {len(full)} activation patterns (NNLS)"
        val = vector_cell_bound(Xr, V, full)
        return val + dropped, False, (f"upper bound: max over all {len(full)} cells of "
                                      "min(||V^T D X||_2, per-output exact values)")
    if K == 1:
        return support_spectral_bound(Xa, V[:, 0]), False, "upper bound: spectral norm on the sign supports"
    per = [support_spectral_bound(Xa, V[:, k]) for k in range(K)]
    val = min(float(np.linalg.norm(per)), spectral_norm_upper(V) * spectral_norm_upper(Xa))
    return val, False, "upper bound: spectral norms"


def gated_relaxation_dual(Xr: np.ndarray, Y: np.ndarray, loss: Loss, beta: float, pats: np.ndarray, *,
                          max_iter: int = 1000, tol: float = 1e-7) -> np.ndarray:
    r"""Dual point :math:`\Lambda = -\nabla\ell(F)` of the *gated relaxation* of the
    vector-output problem, solved by FISTA with singular-value thresholding.

    The relaxation, over a complete pattern set :math:`\{D_i\}`,

    .. math:: \min_{W_i\in\mathbb{R}^{r\times K}}\ \ell\Big(\sum_iD_iXW_i\Big) + \beta\sum_i\|W_i\|_*,

    is below the weight-decay optimum (any network gives :math:`W_i = \sum_{j\in i}u_j\alpha_j^T`
    with :math:`\|W_i\|_* \le \sum_{j\in i}\|u_j\|\|\alpha_j\|`; the cone constraints are
    dropped), and its dual constraint is :math:`\max_i\|\Lambda^TD_iX\|_2 \le \beta`.  Its
    residual is therefore a good direction for the proven bound of
    :func:`vector_cell_bound`; the bound itself is recomputed exactly by the caller, so
    the accuracy of this solve affects only the tightness, never the validity.
    Stops when the relaxation's own duality gap is below ``tol`` (relative) or after
    ``max_iter`` iterations.
    """
    n, K = Y.shape
    Dm = pats.astype(float)  # (P, n)
    P, r = len(pats), Xr.shape[1]

    B = (Dm[:, :, None] * Xr[None]).transpose(1, 0, 2).reshape(n, P * r)  # [D_1X ... D_PX]

    def fwd(W: np.ndarray) -> np.ndarray:  # (P, r, K) -> (n, K)
        return B @ W.reshape(P * r, K)

    def adj(Gl: np.ndarray) -> np.ndarray:  # (n, K) -> (P, r, K)
        return (B.T @ Gl).reshape(P, r, K)

    def svt(W: np.ndarray, thr: float) -> tuple[np.ndarray, float]:
        U, sv, Vt = np.linalg.svd(W, full_matrices=False)
        sv = np.maximum(sv - thr, 0.0)
        return np.einsum("pij,pj,pjk->pik", U, sv, Vt), float(sv.sum())

    op2 = spectral_norm_upper(B) ** 2
    L = max(loss_curvature(loss) * op2, np.finfo(float).tiny)
    W = np.zeros((P, r, K))
    Z, t, nuc = W, 1.0, 0.0
    obj = loss.value(np.zeros((n, K)), Y)
    for it in range(max_iter):
        F = fwd(Z)
        Gz = adj(loss.gradient(F, Y))
        while True:  # backtracking on L
            Wn, nuc_n = svt(Z - Gz / L, beta / L)
            Fn = fwd(Wn)
            Dd = Wn - Z
            if loss.value(Fn, Y) <= loss.value(F, Y) + float(np.vdot(Gz, Dd)) + 0.5 * L * float(np.vdot(Dd, Dd)) \
                    + 1e-12 * abs(loss.value(F, Y)):  # rounding slack of f, as in the AL's FISTA
                break
            L *= 2.0
        obj_n = loss.value(Fn, Y) + beta * nuc_n
        if obj_n > obj:  # adaptive restart
            Z, t = W, 1.0
            continue
        t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        Z = Wn + ((t - 1.0) / t_new) * (Wn - W)
        W, obj, t = Wn, obj_n, t_new
        if it % 50 == 49:
            Lam = loss.dual_point(fwd(W), Y)
            c = float(np.max(cell_spectral_values(Xr, Lam, pats)))
            low = loss.best_scale(Lam, Y, np.inf if c <= 0 else beta / c)[1]
            if obj - low <= tol * max(abs(obj), np.finfo(float).tiny):
                break
    return loss.dual_point(fwd(W), Y)
