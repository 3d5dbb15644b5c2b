r"""Global training of two-layer ReLU networks on arbitrary data by a convex program
(SPEC 2.8; Pilanci & Ergen, ICML 2020).  The derivations are in
``docs/convex_program.md``.

The problem
-----------
For a two-layer ReLU network :math:`f(X) = \sum_j (Xu_j)_+\alpha_j^T` the objective
:math:`\ell(f(X), Y) + \frac\beta2\sum_j(\|u_j\|^2 + \|\alpha_j\|^2)` equals, after the
rescaling :math:`u_j \to u_j/\gamma_j,\ \alpha_j \to \gamma_j\alpha_j` that balances each
neuron, :math:`\ell(f(X)) + \beta\sum_j\|u_j\|\,\|\alpha_j\|`.  With the activation
patterns :math:`D_i = \operatorname{diag}(1[Xg_i \ge 0])` (:mod:`deepdual.patterns`) and
scalar output it equals the convex program

.. math::

    \min_{v_i, w_i}\ \ell\Big(\sum_i D_i X(v_i - w_i)\Big) + \beta\sum_i(\|v_i\| + \|w_i\|)
    \quad\text{s.t.}\quad (2D_i - I)Xv_i \ge 0,\ (2D_i - I)Xw_i \ge 0,

when the patterns are *all* patterns of :math:`X` (a superset is harmless).  With a
sampled subset it is the same problem restricted to networks whose neurons have those
patterns: its optimum is then only an upper bound on the global one.

Vector output (:math:`K > 1`): one group per pattern, sign *and output*,
:math:`\beta\sum_{i,k}(\|v_{ik}\| + \|w_{ik}\|)`.  That is the exact convex form of the
problem with the penalty :math:`\beta\sum_j\|u_j\|\,\|\alpha_j\|_1` (each neuron feeds
one output).  Its networks are feasible for weight decay with a smaller or equal
objective (:math:`\|\alpha_j\|_2 \le \|\alpha_j\|_1`, and neurons sharing a direction are
merged): an upper bound.  The exact weight-decay program for :math:`K > 1` involves a
cone-constrained nuclear norm (Sahiner et al., 2021) with no tractable form.  The
network is then polished by L-BFGS on the weight-decay objective (kept only if better).
The lower bound stays proven: over a complete pattern set, the dual constraint
:math:`\max_{\|u\|\le1}\|\Lambda^T(Xu)_+\|` is bounded cell by cell
(:func:`vector_cell_bound`), for the network's residual and for the residual of the
gated relaxation :math:`\min\ell(\sum_iD_iXW_i) + \beta\sum_i\|W_i\|_*`
(:func:`gated_relaxation_dual`), whichever bound is higher; so ``certified`` stays
honest (and is rarely True for vector outputs).

Algorithm
---------
*Working set* (column generation).  The program is solved over a small set of
patterns; the dual point :math:`v = -\nabla\ell(F)` of that solution is then checked
against every pattern with the exact value (conic duality, Moreau)

.. math::

    c_{i,s}(v) = \max_{u\in K_i,\|u\|\le1} s\,v^TD_iXu
               = \min_{\mu\ge0}\|X^T(s D_iv + (2D_i - I)\mu)\|

(an NNLS, ``scipy.optimize.nnls``; any :math:`\mu\ge0` gives an upper bound).  Patterns
with :math:`c_{i,s}(v) > \beta` violate the optimality conditions of their zero groups
and join the set.

*Inner solver.*  For the squared loss, when all patterns fit a dense Newton system, a
primal–dual interior-point method (Mehrotra predictor–corrector with Nesterov–Todd
scaling, :mod:`deepdual.solvers.conic_ipm`; 20–60 iterations) with an active-set
polish of its last iterate; its iterates are strictly feasible.  Otherwise, for
moderate sizes, a primal log-barrier (interior-point) method on

.. math::

    \min\ \tau\Big(\ell(F) + \beta\sum_g t_g\Big) - \sum_g\sum_j\log\big((2D_g - I)Xz_g\big)_j
         - \sum_g\log(t_g^2 - \|z_g\|^2),

Newton's method with a feasible line search and :math:`\tau \leftarrow 4\tau`.  Its
iterates are strictly feasible, so the rebuilt network has exactly the convex
objective, and at central points :math:`v = -\nabla\ell(F)` satisfies the constraints of
the working set (barrier stationarity), so the duality gap goes to zero with
:math:`m/\tau`.  For large problems (or losses without a Hessian) an augmented
Lagrangian on the cone constraints with FISTA subproblems (Mishkin et al., 2022)
is used instead; it is accurate to a moderate gap.  It also stops as soon as the
rebuilt network's own objective is within ``tol`` of the program's lower bound (hence
at most the program's optimum plus ``tol``): on sampled pattern sets its infeasible
iterates often give networks below the sampled program's optimum.

*Stopping rule*: the duality gap.  With :math:`c(v) = \max_{i,s}c_{i,s}(v)` the scaled
point :math:`tv,\ t \le \beta/c(v)` is dual feasible and :math:`D(tv) = -\ell^*(-tv)` is
a lower bound (:meth:`Loss.best_scale`); the solver stops when
:math:`P - D \le \text{tol}\cdot|P|` for the pattern set in use.

The reported ``lower_bound`` is for the problem over *all* networks: it uses the exact
:math:`c(v)` when the pattern set is complete (exact enumeration), otherwise the exact
value from a separate enumeration when that is affordable, otherwise the proven bound
:math:`c(v) \le \max(\|X_{S_+}\|_2\|v_+\|, \|X_{S_-}\|_2\|v_-\|)` (:math:`S_\pm` the
supports of :math:`v_\pm`) — never a sampled estimate.

References
----------
M. Pilanci and T. Ergen, "Neural networks are convex regularizers: exact
polynomial-time convex optimization formulations for two-layer networks", ICML 2020.
A. Mishkin, A. Sahiner and M. Pilanci, "Fast convex optimization for two-layer ReLU
networks: equivalent model classes and cone decompositions", ICML 2022.
A. Sahiner, T. Ergen, J. Pauly and M. Pilanci, "Vector-output ReLU neural network
problems are copositive programs", ICLR 2021.
S. Boyd and L. Vandenberghe, *Convex Optimization*, 2004, ch. 11 (barrier method).
L. Vandenberghe, "The CVXOPT linear and quadratic cone program solvers", 2010.
A. Beck and M. Teboulle, "A fast iterative shrinkage-thresholding algorithm", SIAM J.
Imaging Sci. 2 (2009).
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve
from scipy.optimize import linprog, nnls
from scipy.special import expit, softmax

from .._threads import SingleThreadedBLAS as _SingleThreadedBLAS
from .._validation import check_options, check_positive
from ..losses import CrossEntropyLoss, HingeLoss, LogisticLoss, Loss, SquaredLoss
from ..network import Network
from ..objective import objective
from ..patterns import count_upper_bound, enumerate_patterns, row_space, sample_patterns, unique_patterns
from ..solution import Solution

__all__ = [
    "solve_convex",
    "cone_value",
    "pattern_values",
    "support_spectral_bound",
    "vector_cell_bound",
    "cell_spectral_values",
    "gated_relaxation_dual",
    "polish_network",
    "network_from_atoms",
    "prune_neurons",
    "CONVEX_OPTIONS",
]

CONVEX_OPTIONS = (
    "patterns", "n_patterns", "max_patterns", "certify_max_patterns", "rng", "solver", "max_iter",
    "tol", "progress", "polish",
)
SOLVERS = ("auto", "ipm", "barrier", "al")

_EPS = np.finfo(float).eps

#: number of sampled patterns when exact enumeration is too large
DEFAULT_N_PATTERNS = 100
#: exact enumeration is used when the region-count bound is at most this
DEFAULT_MAX_PATTERNS = 2000
#: sampled runs still get an exact dual constraint when the region-count bound is at most this
DEFAULT_CERTIFY_MAX_PATTERNS = 20000


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
        for k in range(K):
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
    :math:`\|X\|_2\max(\|v_+\|,\|v_-\|)`, SPEC 2.8).
    """
    v = np.asarray(v, dtype=float).reshape(-1)
    out = 0.0
    for part in (v > 0, v < 0):
        if np.any(part):
            out = max(out, _spectral_norm(X[part]) * float(np.linalg.norm(v[part])))
    return out


def _spectral_norm(A: np.ndarray) -> float:
    return 0.0 if A.size == 0 else float(np.linalg.norm(A, 2))


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


def _complete_set(Xa: np.ndarray, rs: Any, pats: np.ndarray, complete: bool, enum_limit: int
                  ) -> np.ndarray | None:
    """A complete pattern set: ``pats`` when complete, else an enumeration when the
    region-count bound is at most ``enum_limit``, else ``None``."""
    if complete:
        return pats
    if count_upper_bound(Xa.shape[0], rs.rank) <= enum_limit:
        return enumerate_patterns(Xa)
    return None


def _global_constraint(Xa: np.ndarray, rs: Any, V: np.ndarray, full: np.ndarray | None,
                       beta: float) -> tuple[float, bool, str]:
    r"""Proven upper bound on the dual constraint :math:`c(V)` over *all* two-layer networks.

    ``(value, exact, how)``.  Scalar output: the exact maximum over all patterns when
    a complete set ``full`` is given (:func:`_complete_set`); else
    :func:`support_spectral_bound`.  Vector output
    (:math:`c(V) = \max_{\|u\|\le1}\|V^T(Xu)_+\|`): over a complete (or enumerable)
    pattern set the cell-wise bound :func:`vector_cell_bound`, else the minimum of
    :math:`\sqrt{\sum_k c(v_k)^2}` (each :math:`c(v_k)` bounded as for scalar output)
    and :math:`\|V\|_2\|X\|_2`.  Singular values of ``X`` dropped as numerically zero by
    :func:`deepdual.patterns.row_space` add :math:`\|V\|_F\,s_{r+1}` (ReLU is
    1-Lipschitz), keeping every value a rigorous bound.
    """
    n, K = V.shape
    s = np.linalg.svd(Xa, compute_uv=False)
    dropped = (float(s[rs.rank]) if rs.rank < s.size else 0.0) * float(np.linalg.norm(V))
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
    val = min(float(np.linalg.norm(per)), _spectral_norm(V) * _spectral_norm(Xa))
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

    op2 = _spectral_norm(B) ** 2
    L = max(_loss_curvature(loss) * op2, np.finfo(float).tiny)
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


def polish_network(Xa: np.ndarray, Y: np.ndarray, loss: Loss, beta: float, U: np.ndarray, A: np.ndarray, *,
                   max_iter: int = 500) -> tuple[np.ndarray, np.ndarray]:
    r"""Local descent (L-BFGS) on :math:`\ell((X_aU)_+A) + \frac\beta2(\|U\|_F^2 + \|A\|_F^2)`
    from ``(U, A)``.

    Used for vector outputs, whose convex program is only an upper bound: the descent
    keeps the network's width and can only lower the objective (the caller keeps the
    better network).  The gradient is that of the network where it is differentiable
    (ReLU derivative 1[z > 0]).
    """
    from scipy.optimize import minimize

    d1, m = U.shape
    K = A.shape[1]

    def fg(x: np.ndarray) -> tuple[float, np.ndarray]:
        Uc, Ac = x[:d1 * m].reshape(d1, m), x[d1 * m:].reshape(m, K)
        Z = Xa @ Uc
        H = np.maximum(Z, 0.0)
        F = H @ Ac
        G = loss.gradient(F, Y)
        f = loss.value(F, Y) + 0.5 * beta * (float(np.vdot(Uc, Uc)) + float(np.vdot(Ac, Ac)))
        gA = H.T @ G + beta * Ac
        gU = Xa.T @ ((G @ Ac.T) * (Z > 0)) + beta * Uc
        return f, np.concatenate([gU.ravel(), gA.ravel()])

    x0 = np.concatenate([U.ravel(), A.ravel()])
    with _SingleThreadedBLAS():  # L-BFGS-B's small BLAS calls: ~30x slower with threads
        res = minimize(fg, x0, jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    x = res.x if res.fun <= fg(x0)[0] else x0
    return x[:d1 * m].reshape(d1, m), x[d1 * m:].reshape(m, K)


# ============================================================================ the program
@dataclass
class Groups:
    r"""Variables of the program over a working set of patterns.

    Group ``g`` has sign ``s[g]`` (+1 for :math:`v`, -1 for :math:`w`), pattern
    ``p[g]`` (row of ``pats``) and output ``k[g]``; its variable :math:`z_g \in \mathbb{R}^r`
    lives in row-space coordinates.
    """

    Xr: np.ndarray  # (n, r)
    pats: np.ndarray  # (P, n) bool, the working set
    K: int
    s: np.ndarray = field(init=False)
    p: np.ndarray = field(init=False)
    k: np.ndarray = field(init=False)
    Dm: np.ndarray = field(init=False)  # (P, n) float
    sg: np.ndarray = field(init=False)  # (P, n) 2D - 1
    SD: np.ndarray = field(init=False)  # (G, n) s_g D_g, per group
    SG: np.ndarray = field(init=False)  # (G, n) 2D_g - 1, per group
    E: np.ndarray = field(init=False)  # (G, K) one-hot output of each group

    def __post_init__(self) -> None:
        P = len(self.pats)
        si, pi, ki = np.meshgrid([1.0, -1.0], np.arange(P), np.arange(self.K), indexing="ij")
        self.s, self.p, self.k = si.ravel(), pi.ravel(), ki.ravel()
        self.Dm = self.pats.astype(float)
        self.sg = 2.0 * self.Dm - 1.0
        self.SD = self.s[:, None] * self.Dm[self.p]
        self.SG = self.sg[self.p]
        self.E = np.zeros((len(self.s), self.K))
        self.E[np.arange(len(self.s)), self.k] = 1.0

    @property
    def size(self) -> int:
        return len(self.s)

    def XZ(self, z: np.ndarray) -> np.ndarray:
        """:math:`Xz_g` for every group, (G, n)."""
        return z @ self.Xr.T

    def output(self, z: np.ndarray) -> np.ndarray:
        r""":math:`F = \sum_g s_gD_gXz_g e_{k_g}^T` (n, K)."""
        return (self.SD * self.XZ(z)).T @ self.E

    def relu_output(self, z: np.ndarray) -> np.ndarray:
        r"""Output of the rebuilt network, :math:`\sum_g s_g(Xz_g)_+e_{k_g}^T`."""
        return np.maximum(self.XZ(z), 0.0).T @ (self.s[:, None] * self.E)

    def constraint(self, z: np.ndarray) -> np.ndarray:
        """:math:`(2D_g - I)Xz_g`, (G, n); feasible when >= 0."""
        return self.SG * self.XZ(z)

    def adjoint(self, Gl: np.ndarray) -> np.ndarray:
        r"""Gradient of :math:`\langle G_\ell, F\rangle` in ``z``: :math:`s_gX^TD_gG_\ell e_{k_g}`, (G, r)."""
        return (self.SD * Gl.T[self.k]) @ self.Xr

    def design(self) -> np.ndarray:
        """The linear map ``z -> vec(F)`` as a dense matrix (n*K, G*r), rows ``i*K + k``."""
        n, r = self.Xr.shape
        G = self.size
        B = np.zeros((n, self.K, G, r))
        blocks = (self.s[:, None, None] * self.Dm[self.p][:, :, None]) * self.Xr[None]  # (G, n, r)
        B[:, self.k, np.arange(G), :] = np.transpose(blocks, (1, 0, 2))
        return B.reshape(n * self.K, G * r)


def _loss_curvature(loss: Loss) -> float:
    """Lipschitz constant of the loss gradient (backtracking corrects a wrong guess)."""
    if isinstance(loss, LogisticLoss):
        return 0.25  # sigma' <= 1/4
    if isinstance(loss, CrossEntropyLoss):
        return 0.5  # ||diag(p) - p p^T||_2 <= 1/2
    return 1.0


def _loss_hessian_times(loss: Loss, F: np.ndarray, Y: np.ndarray, B: np.ndarray) -> np.ndarray | None:
    r""":math:`\nabla^2\ell(F)B` for ``B`` (n*K, q) with rows ``i*K + k``; ``None`` if unknown."""
    n, K = F.shape
    if isinstance(loss, SquaredLoss):
        return B
    if isinstance(loss, LogisticLoss):
        s = expit(Y * F).reshape(-1)
        return B * (s * (1.0 - s))[:, None]
    if isinstance(loss, CrossEntropyLoss):
        Pm = softmax(F, axis=1)[:, :, None]
        B3 = B.reshape(n, K, -1)
        return (Pm * B3 - Pm * np.sum(Pm * B3, axis=1, keepdims=True)).reshape(n * K, -1)
    return None


def _loss_hessian_factor(loss: Loss, F: np.ndarray, Y: np.ndarray) -> np.ndarray:
    r"""Per-sample factors :math:`L_i` (n, K, K) with :math:`L_iL_i^T = \nabla^2_{F_i}\ell`
    (the loss Hessian is block diagonal over samples for every loss here)."""
    n, K = F.shape
    if isinstance(loss, SquaredLoss):
        return np.broadcast_to(np.eye(K), (n, K, K))
    if isinstance(loss, LogisticLoss):
        s = expit(Y * F)
        return np.sqrt(s * (1.0 - s))[:, :, None]
    if isinstance(loss, CrossEntropyLoss):
        Pm = softmax(F, axis=1)
        Hs = np.einsum("ij,jk->ijk", Pm, np.eye(K)) - Pm[:, :, None] * Pm[:, None, :]
        lam, vec = np.linalg.eigh(Hs)
        return vec * np.sqrt(np.maximum(lam, 0.0))[:, None, :]
    raise ValueError(f"no Hessian known for {loss!r}")


def _has_hessian(loss: Loss) -> bool:
    return isinstance(loss, (SquaredLoss, LogisticLoss, CrossEntropyLoss))


def _interior_direction(Xr: np.ndarray, d: np.ndarray) -> np.ndarray | None:
    r"""A unit vector strictly inside :math:`K = \{z : (2D - I)Xz \ge 0\}` (zero rows of
    ``X`` ignored), or ``None`` when :math:`K` has an empty interior.

    Tries the sum of the normalized constraint rows, else solves the LP
    :math:`\max\{s : (2D-I)_{jj}x_j^Tz/\|x_j\| \ge s,\ \|z\|_\infty \le 1\}`.  An optimal
    :math:`s \le 10^{-9}` (HiGHS's feasibility tolerance is 1e-7 on O(1) data; a margin
    this small gives no usable barrier start) counts as an empty interior.
    """
    xn = np.linalg.norm(Xr, axis=1)
    R = xn > 0
    G = ((2.0 * d - 1.0)[:, None] * Xr)[R] / xn[R, None]
    z = G.sum(axis=0)
    if np.any(z) and np.all(G @ z > 0):
        return z / np.linalg.norm(z)
    r = Xr.shape[1]
    c = np.zeros(r + 1)
    c[-1] = -1.0
    A = np.hstack([-G, np.ones((G.shape[0], 1))])
    res = linprog(c, A_ub=A, b_ub=np.zeros(G.shape[0]), bounds=[(-1.0, 1.0)] * r + [(None, 1.0)],
                  method="highs")
    if res.status != 0 or -res.fun <= 1e-9:
        return None
    z = res.x[:r]
    if not np.all(G @ z > 0):
        return None
    return z / np.linalg.norm(z)


def _soc_slack(t: np.ndarray, z: np.ndarray) -> np.ndarray:
    r""":math:`t^2 - \|z\|^2` as :math:`(t - \|z\|)(t + \|z\|)` (accurate near the boundary)."""
    nz = np.linalg.norm(z, axis=1)
    return (t - nz) * (t + nz)


def _block_cholesky(D: np.ndarray) -> np.ndarray:
    """Batched Cholesky factors of SPD blocks (G, q, q).

    Blocks that rounding made numerically indefinite (barrier Hessians near the cone
    boundary have condition numbers ~1/slack^2) get a diagonal shift of 1e-14 of their
    trace, the size of that rounding; this perturbs only the Newton direction, which
    the line search and the duality gap check anyway.
    """
    try:
        return np.linalg.cholesky(D)
    except np.linalg.LinAlgError:
        pass
    q = D.shape[1]
    ev = np.linalg.eigvalsh(D)  # (G, q) ascending
    tr = np.trace(D, axis1=1, axis2=2)
    # shift only the blocks whose smallest eigenvalue is at rounding level of the largest
    bad = ev[:, 0] <= 1e-14 * ev[:, -1]
    base = np.where(bad, np.maximum(-ev[:, 0], 0.0) + 1e-14 * tr, 0.0)
    for factor in (1.0, 10.0, 100.0, 1e4, 1e6):
        try:
            return np.linalg.cholesky(D + (factor * base)[:, None, None] * np.eye(q)[None])
        except np.linalg.LinAlgError:
            continue
    raise LinAlgError("barrier Hessian blocks are not positive definite beyond rounding")  # pragma: no cover


# ============================================================================ inner solvers
class _Barrier:
    r"""Primal log-barrier (interior-point) method for the program over a working set.

    Variables :math:`(z_g, t_g)`; minimizes
    :math:`\psi_\tau = \tau(\ell(F) + \beta\sum_gt_g) - \sum_{g,j}\log c_{gj} - \sum_g\log(t_g^2 - \|z_g\|^2)`
    with :math:`c_g = (2D_g - I)Xz_g` on the non-zero rows of ``X``, by Newton's method
    (dense Cholesky) with a feasible backtracking line search, then
    :math:`\tau \leftarrow \mu\tau`.  After centering, the gap of the program over the working
    set is at most :math:`m/\tau` with :math:`m` the barrier parameter (Boyd &
    Vandenberghe, 11.2).
    """

    warm = False
    mu = 4.0  # path step: small steps keep each centering short (~10-30 Newton steps)
    refine = 2  # iterative-refinement steps of the Woodbury solve
    restart_path = True  # on growth, restart tau (else keep it, with warm values)
    # stop centering when lambda^2/2 (a bound on psi - min psi) is below this: 1e-3 keeps
    # the iterate well inside the quadratic region (the next path step starts there) and
    # saved 10-20 % of the Newton steps against 1e-9 on the benchmark problems; the
    # duality gap, not centrality, decides convergence
    center_tol = 1e-3

    def __init__(self, Xr: np.ndarray, Y: np.ndarray, loss: Loss, beta: float, pats: np.ndarray,
                 interior: np.ndarray) -> None:
        self.Xr, self.Y, self.loss, self.beta = Xr, Y, loss, beta
        self.R = np.linalg.norm(Xr, axis=1) > 0
        self.grp = Groups(Xr, pats, Y.shape[1])
        self.interior = interior  # (P, r) unit interior directions
        self.tau: float | None = None
        self.z, self.t = self._start(np.arange(self.grp.size))
        self.tau = self._tau0()
        self.iters = 0
        self.stalled = False

    @property
    def m(self) -> float:
        return float(self.grp.size * (int(self.R.sum()) + 2))

    def _start(self, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r"""Approximately central values for groups at zero: an inactive group balances
        :math:`\tau\beta t` against its :math:`|R| + 2` barrier terms, so
        :math:`t \approx (|R| + 2)/(\tau\beta)` with :math:`z` half-way inside the cone."""
        tau = self.tau if self.tau is not None else self._tau0()
        scale = (int(self.R.sum()) + 2) / (tau * self.beta)
        z = self.interior[self.grp.p[groups]] * (0.5 * scale)
        return z, scale * np.ones(len(groups))

    def _tau0(self) -> float:
        # gap m / tau comparable to the objective of the zero network
        f = self.loss.value(np.zeros_like(self.Y), self.Y)
        return self.m / max(abs(f), np.finfo(float).tiny)

    def grow(self, pats: np.ndarray, interior: np.ndarray) -> None:
        """Append patterns; old groups keep their (feasible) values, new ones start small."""
        old = self.grp
        oz, ot = self.z, self.t
        Pold = len(old.pats)
        self.grp = Groups(self.Xr, np.vstack([old.pats, pats]), self.Y.shape[1])
        self.interior = np.vstack([self.interior, interior])
        # restart the path: at a large tau the damped Newton phase would have to remove a
        # barrier gap of order tau * (f - f*) at O(1) per step
        if self.restart_path:
            self.tau = self._tau0()
        z, t = self._start(np.arange(self.grp.size))
        keep = self.grp.p < Pold
        # groups are ordered (s, p, k): map the old ones by their labels
        old_index = {(s, p, k): g for g, (s, p, k) in enumerate(zip(old.s, old.p, old.k))}
        if self.warm:
            for g in np.flatnonzero(keep):
                j = old_index[(self.grp.s[g], self.grp.p[g], self.grp.k[g])]
                z[g], t[g] = oz[j], ot[j]
        self.z, self.t = z, t

    def f0(self, z: np.ndarray, t: np.ndarray) -> float:
        return self.loss.value(self.grp.output(z), self.Y) + self.beta * float(t.sum())

    def _psi(self, z: np.ndarray, t: np.ndarray, tau: float) -> float:
        c = self.grp.constraint(z)[:, self.R]
        w = _soc_slack(t, z)
        if np.any(c <= 0) or np.any(w <= 0) or np.any(t <= 0):
            return np.inf
        return tau * self.f0(z, t) - float(np.sum(np.log(c))) - float(np.sum(np.log(w)))

    def _newton(self, tau: float) -> tuple[np.ndarray, np.ndarray, float]:
        r"""Newton direction of :math:`\psi_\tau` and the squared decrement.

        The Hessian is block diagonal (barrier, one :math:`(r+1)\times(r+1)` block per
        group) plus :math:`\tau B^T\nabla^2\ell B` of rank at most :math:`nK`; it is solved
        densely when that is smaller, else by the Woodbury identity
        :math:`(D + UU^T)^{-1} = D^{-1} - D^{-1}U(I + U^TD^{-1}U)^{-1}U^TD^{-1}`.
        """
        grp, z, t = self.grp, self.z, self.t
        G, r = z.shape
        n, K = self.Y.shape
        F = grp.output(z)
        c = grp.constraint(z)[:, self.R]
        XR = self.Xr[self.R]
        sgR = grp.SG[:, self.R]
        zz = np.sum(z * z, axis=1)
        w = _soc_slack(t, z)
        gz = tau * grp.adjoint(self.loss.gradient(F, self.Y)) - (sgR / c) @ XR + 2.0 * z / w[:, None]
        gt = tau * self.beta - 2.0 * t / w
        g = np.concatenate([gz, gt[:, None]], axis=1)  # (G, r + 1)
        # barrier blocks
        Dblk = np.zeros((G, r + 1, r + 1))
        Dblk[:, :r, :r] = ((1.0 / c**2)[:, :, None] * XR[None]).transpose(0, 2, 1) @ XR  # sum_j x_j x_j^T / c_j^2
        Dblk[:, :r, :r] += (2.0 / w)[:, None, None] * np.eye(r)[None] \
            + 4.0 * z[:, :, None] * z[:, None, :] / (w**2)[:, None, None]
        Dblk[:, :r, r] = Dblk[:, r, :r] = -4.0 * t[:, None] * z / (w**2)[:, None]
        # d^2/dt^2 of -log(t^2 - |z|^2) is 2(t^2 + |z|^2)/w^2: written without the
        # cancellation of -2/w + 4t^2/w^2 near the cone's boundary
        Dblk[:, r, r] = 2.0 * (t**2 + zz) / w**2
        Q = G * (r + 1)
        if Q <= n * K:
            H = np.zeros((G, r + 1, G, r + 1))
            H[np.arange(G), :, np.arange(G), :] = Dblk
            H = H.reshape(Q, Q)
            B = grp.design()
            HB = _loss_hessian_times(self.loss, F, self.Y, B)
            zi = (np.arange(G)[:, None] * (r + 1) + np.arange(r)[None, :]).ravel()
            H[np.ix_(zi, zi)] += tau * (B.T @ HB)
            try:
                d = -cho_solve(cho_factor(H, check_finite=False), g.ravel(), check_finite=False)
            except (LinAlgError, ValueError):
                d = -np.linalg.lstsq(H, g.ravel(), rcond=None)[0]
            d = d.reshape(G, r + 1)
        else:
            Lf = _loss_hessian_factor(self.loss, F, self.Y)  # (n, K, K): L_i L_i^T = Hessian of sample i
            A = grp.SD[:, :, None] * self.Xr[None]  # (G, n, r)
            Lsel = Lf[:, grp.k, :].transpose(1, 0, 2)  # (G, n, K): L_i[k_g, :]
            U = np.zeros((G, r + 1, n, K))
            U[:, :r] = np.sqrt(tau) * A.transpose(0, 2, 1)[:, :, :, None] * Lsel[:, None, :, :]
            U = U.reshape(G, r + 1, n * K)
            Lb = _block_cholesky(Dblk)
            Li = np.linalg.inv(Lb)  # (G, r+1, r+1): small triangular blocks
            Dinv = Li.transpose(0, 2, 1) @ Li

            def dinv(M: np.ndarray) -> np.ndarray:  # (G, r+1, k) -> D^{-1} M blockwise
                return Dinv @ M

            Uf = U.reshape(Q, n * K)
            Yw = dinv(U).reshape(Q, n * K)
            Cap = np.eye(n * K) + Uf.T @ Yw
            try:
                cf = cho_factor(Cap, check_finite=False)
                csolve = lambda b: cho_solve(cf, b, check_finite=False)  # noqa: E731
            except (LinAlgError, ValueError):
                csolve = lambda b: np.linalg.lstsq(Cap, b, rcond=None)[0]  # noqa: E731

            def solve(b: np.ndarray) -> np.ndarray:  # (D + U U^T)^{-1} b by Woodbury
                y0 = dinv(b.reshape(G, r + 1, 1)).reshape(Q)
                return y0 - Yw @ csolve(Uf.T @ y0)

            rhs = -g.reshape(Q)
            d = solve(rhs)
            # iterative refinement: the Schur complement loses digits when tau is large
            # (Cap ~ tau); two corrections with the same factors restore them
            for _ in range(self.refine):
                Dd = np.einsum("gab,gb->ga", Dblk, d.reshape(G, r + 1)).reshape(Q)
                res = rhs - Dd - Uf @ (Uf.T @ d)
                d = d + solve(res)
            d = d.reshape(G, r + 1)
        lam2 = -float(np.vdot(g, d))
        return d[:, :r], d[:, r], lam2

    def _max_step(self, dz: np.ndarray, dt: np.ndarray) -> float:
        """Largest step in (0, 1] keeping every barrier argument positive (times 0.99)."""
        c = self.grp.constraint(self.z)[:, self.R]
        dc = self.grp.constraint(dz)[:, self.R]
        a = 1.0
        neg = dc < 0
        if np.any(neg):
            a = min(a, float(np.min(-c[neg] / dc[neg])))
        # t^2 - ||z||^2 along the step: w + b a + q a^2 > 0
        w = _soc_slack(self.t, self.z)
        b = 2.0 * (self.t * dt - np.sum(self.z * dz, axis=1))
        q = dt**2 - np.sum(dz**2, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            disc = b * b - 4.0 * q * w
            sq = np.sqrt(np.maximum(disc, 0.0))
            r1 = np.where(q != 0, (-b - sq) / (2.0 * q), np.where(b < 0, -w / b, np.inf))
            r2 = np.where(q != 0, (-b + sq) / (2.0 * q), np.inf)
        roots = np.concatenate([r1[(disc >= 0) | (q == 0)], r2[(disc >= 0) & (q != 0)]])
        roots = roots[np.isfinite(roots) & (roots > 0)]
        if roots.size:
            a = min(a, float(roots.min()))
        t_neg = dt < 0
        if np.any(t_neg):
            a = min(a, float(np.min(-self.t[t_neg] / dt[t_neg])))
        return min(1.0, 0.99 * a)

    def center(self, tau: float, budget: int) -> int:
        """Newton's method on psi_tau until the decrement is at rounding level.

        Sets ``self.stalled`` when the decrement stops falling below 1 (rounding in the
        Newton direction at large tau): the point is then as central as this precision
        allows and a larger tau would not help.
        """
        used = 0
        best, since = np.inf, 0
        self.stalled = False
        while used < budget:
            dz, dt, lam2 = self._newton(tau)
            used += 1
            # lambda^2/2 bounds psi - min psi (self-concordance): see center_tol
            if lam2 / 2.0 <= self.center_tol:
                break
            if lam2 < 0.5 * best:
                best, since = lam2, 0
            else:
                since += 1
                if since >= 8 and best < 1.0:
                    self.stalled = True
                    break
            a = self._max_step(dz, dt)
            if lam2 > 0.0625:  # outside the quadratic region (lambda > 1/4): backtrack
                p0 = self._psi(self.z, self.t, tau)
                while a > 1e-14 and not (self._psi(self.z + a * dz, self.t + a * dt, tau)
                                         <= p0 - 0.01 * a * lam2):
                    a *= 0.5
                if a <= 1e-14:
                    self.stalled = True
                    break
            self.z, self.t = self.z + a * dz, self.t + a * dt
        self.iters += used
        return used

    def solve(self, tol: float, budget: int) -> int:
        """Follow the central path until ``m / tau <= tol * |f|`` (or the budget is spent,
        or centering stalls at the precision limit)."""
        used = 0
        stalls = 0
        # the barrier gap cannot usefully go below ~1e-13 relative (rounding of psi)
        tol = max(tol, 1e-13)
        while used < budget:
            used += self.center(self.tau, budget - used)
            stalls = stalls + 1 if self.stalled else 0
            f = self.f0(self.z, self.t)
            # a stalled centering is still near the path (lambda < 1): go on, unless two
            # in a row show that the precision limit is reached
            if self.m / self.tau <= tol * abs(f) or stalls >= 2:
                break
            self.tau *= self.mu
        self.stalled = stalls >= 2
        return used

    @property
    def Z(self) -> np.ndarray:
        return self.z


class _PrimalDual:
    r"""Primal–dual interior-point method (:class:`~deepdual.solvers.conic_ipm.GroupSOCQP`:
    Mehrotra predictor–corrector, Nesterov–Todd scaling) for the squared-loss program
    over a working set; the same interface as :class:`_Barrier`.

    Group :math:`g = (s, p, k)` has base block :math:`\bar B_{pK+k} = e_k\otimes D_pX`
    (the sign is applied separately), linear constraints :math:`(2D_p - I)X_Rz_g \ge 0`
    on the non-zero rows.  A grown working set restarts the method (interior-point
    methods do not warm-start well); each run takes ~20-30 iterations.
    """

    def __init__(self, Xr: np.ndarray, Y: np.ndarray, loss: Loss, beta: float, pats: np.ndarray,
                 interior: np.ndarray) -> None:
        from .conic_ipm import GroupSOCQP

        self._cls = GroupSOCQP
        self.Xr, self.Y, self.loss, self.beta = Xr, Y, loss, beta
        self.R = np.linalg.norm(Xr, axis=1) > 0
        self.iters = 0
        self.stalled = False
        self.polished = False
        self._build(pats, interior)

    def _build(self, pats: np.ndarray, interior: np.ndarray) -> None:
        Xr, Y = self.Xr, self.Y
        n, K = Y.shape
        r = Xr.shape[1]
        self.grp = grp = Groups(Xr, pats, K)
        self.interior = interior
        P = len(pats)
        base = np.zeros((n, K, P, K, r))
        blk = pats.T.astype(float)[:, :, None] * Xr[:, None, :]  # (n, P, r): D_p X
        for k in range(K):
            base[:, k, :, k, :] = blk
        self.ipm = self._cls(Xr[self.R], grp.SG[:, self.R], base.reshape(n * K, P * K, r), grp.p * K + grp.k,
                             grp.s, Y.reshape(-1), self.beta, interior[grp.p])
        self.z = self.ipm.z.copy()
        self._calls = 0

    def grow(self, pats: np.ndarray, interior: np.ndarray) -> None:
        self._build(np.vstack([self.grp.pats, pats]), np.vstack([self.interior, interior]))

    def solve(self, tol: float, budget: int) -> int:
        r"""Interior-point iterations to the relative gap ``max(tol, 1e-6)`` (the
        normal-equation solves lose digits below that when there are many
        constraints), then the active-set polish
        (:meth:`~deepdual.solvers.conic_ipm.GroupSOCQP.polish`), kept when it lowers
        the objective; the caller's exact certificate decides whether ``tol`` is met,
        and calls again (tighter) if not."""
        # 1e-6: where the normal equations still keep the dual residual small on the
        # benchmark problems; each further call (the polished point did not close the
        # caller's gap) asks the interior-point method for 100x more
        # the first call stops where the Woodbury solve stalls (polish is much cheaper
        # than dense Newton systems); later calls may switch to dense systems
        self.ipm.allow_dense_switch = self._calls > 0
        used = self.ipm.solve(max(tol, 1e-6 * 0.01**self._calls), budget)
        self._calls += 1
        self.iters += used
        self.stalled = self.ipm.stalled
        self.z = self.ipm.z.copy()
        zp = self.ipm.polish()
        self.polished = False
        if zp is not None and self._net(zp) <= self._net(self.z):
            self.z, self.polished = zp, True
        return used

    def _net(self, z: np.ndarray) -> float:
        F = self.grp.relu_output(z)
        return self.loss.value(F, self.Y) + self.beta * float(np.linalg.norm(z, axis=1).sum())

    @property
    def Z(self) -> np.ndarray:
        return self.z


def _pd_all(P: int, r: int, n: int, K: int) -> bool:
    """Whether the primal-dual method takes all ``P`` patterns at once: its Newton
    system is dense-affordable, or a Woodbury step costs at most ``PD_MAX_COST``."""
    from .conic_ipm import GroupSOCQP

    # (taking all patterns with the Woodbury solve beyond the dense size was tried:
    # on n = 40, d = 3, 1562 patterns, the Woodbury steps broke down after 4
    # iterations; a working set that outgrows the dense size hands over to the
    # barrier method, so "auto" picks the barrier method there from the start)
    return _pd_size(2 * K * P, r) <= PD_DENSE_MAX and GroupSOCQP.step_cost(
        2 * K * P, r, n * K, P * K, n) <= PD_MAX_COST


def _pd_size(G: int, r: int) -> int:
    """Unknowns of the primal-dual method's Newton system with ``G`` groups."""
    return G * (r + 1)


#: the primal-dual method solves its Newton systems densely (Cholesky, accurate to
#: the end) up to this many unknowns (a 4000 x 4000 Cholesky is ~0.5 s on one core);
#: beyond it the Woodbury form is used, which loses digits near the optimum, so the
#: working set is kept below it when possible
PD_DENSE_MAX = 4000
#: largest Newton-step cost (flops) for which the primal-dual method is used (~0.1-0.2 s
#: per step on one core; it needs ~20-40 steps)
PD_MAX_COST = 6e9


def _network_close(net: float, low: float, tol: float) -> bool:
    """Whether a network's objective ``net`` is within ``tol`` (relative) of the lower bound ``low``."""
    return net - low <= tol * max(abs(net), np.finfo(float).tiny)


#: augmented Lagrangian schedule: penalty growth when the violation fell by less than
#: 4x in a round, per-round FISTA budget, and the factor tightening the subproblem
#: tolerance each round
AL_RHO_GROWTH = 2.0
AL_INNER_BUDGET = 5000
AL_INNER_TOL_FACTOR = 0.3


class _AugLag:
    r"""Augmented Lagrangian on the cone constraints with FISTA subproblems.

    :math:`\mathcal{L}_\rho = \ell(F(z)) + \beta\sum_g\|z_g\|
    + \frac1{2\rho}\sum_g(\|(\lambda_g - \rho G_gz_g)_+\|^2 - \|\lambda_g\|^2)`; each
    subproblem by FISTA with backtracking and adaptive restart (group soft-threshold
    prox), then :math:`\lambda_g \leftarrow (\lambda_g - \rho G_gz_g)_+`, and
    :math:`\rho \leftarrow 2\rho` (``AL_RHO_GROWTH``) when the violation fell by less
    than 4x.  The subproblem tolerance starts at :math:`10^{-2}\beta` and shrinks by
    ``AL_INNER_TOL_FACTOR`` per round; each FISTA run gets at most ``AL_INNER_BUDGET``
    iterations.
    """

    def __init__(self, Xr: np.ndarray, Y: np.ndarray, loss: Loss, beta: float, pats: np.ndarray,
                 z: np.ndarray | None = None) -> None:
        self.Xr, self.Y, self.loss, self.beta = Xr, Y, loss, beta
        self.grp = Groups(Xr, pats, Y.shape[1])
        G, r = self.grp.size, Xr.shape[1]
        self.z = np.zeros((G, r)) if z is None else z
        self.lam = np.zeros((G, Xr.shape[0]))
        self.rho = self._default_rho()
        self.L = self._lipschitz()
        self.inner_tol = 1e-2 * beta
        self.viol_prev = np.inf
        self.iters = 0
        self.feasible = False

    def _op_norm2(self) -> float:
        r""":math:`\|z \mapsto F\|^2 = \lambda_{\max}(\sum_g D_gXX^TD_g)` (per output)."""
        Xr = self.Xr
        Dm = self.grp.Dm
        n = Xr.shape[0]
        if n <= 2000:
            M = (Xr @ Xr.T) * (Dm.T @ Dm)
            return 2.0 * float(np.linalg.eigvalsh(M)[-1])
        return 2.0 * len(Dm) * _spectral_norm(Xr) ** 2

    def _default_rho(self) -> float:
        # balance the penalty's curvature rho ||X||^2 against the loss's
        xn2 = max(_spectral_norm(self.Xr) ** 2, np.finfo(float).tiny)
        return max(_loss_curvature(self.loss) * self._op_norm2() / xn2, _loss_curvature(self.loss))

    def _lipschitz(self) -> float:
        return _loss_curvature(self.loss) * self._op_norm2() + self.rho * _spectral_norm(self.Xr) ** 2

    def grow(self, pats: np.ndarray) -> None:
        old = self.grp
        oz, ol = self.z, self.lam
        Pold = len(old.pats)
        self.grp = Groups(self.Xr, np.vstack([old.pats, pats]), self.Y.shape[1])
        G = self.grp.size
        z = np.zeros((G, self.Xr.shape[1]))
        lam = np.zeros((G, self.Xr.shape[0]))
        old_index = {(s, p, k): g for g, (s, p, k) in enumerate(zip(old.s, old.p, old.k))}
        for g in np.flatnonzero(self.grp.p < Pold):
            j = old_index[(self.grp.s[g], self.grp.p[g], self.grp.k[g])]
            z[g], lam[g] = oz[j], ol[j]
        self.z, self.lam = z, lam
        self.L = max(self.L, self._lipschitz())

    def _fista(self, tol: float, budget: int) -> int:
        r"""FISTA on :math:`\mathcal{L}_\rho` from ``self.z`` until the gradient mapping is at most ``tol``.

        The products :math:`Xz_g` and the output are linear in ``z``, so the
        extrapolated point's are combined from the two last iterates' (one product
        with :math:`X` per accepted step instead of two), and the two adjoint products
        are fused into one.
        """
        grp, loss, Y, beta, rho, lam = self.grp, self.loss, self.Y, self.beta, self.rho, self.lam
        SD, SG, E, Xr = grp.SD, grp.SG, grp.E, self.Xr
        k = grp.k
        scalar = E.shape[1] == 1

        def out(XZ: np.ndarray) -> np.ndarray:
            return (SD * XZ).sum(axis=0)[:, None] if scalar else (SD * XZ).T @ E

        def smooth_at(XZ: np.ndarray, F: np.ndarray) -> tuple[float, np.ndarray]:
            Pi = np.maximum(lam - rho * (SG * XZ), 0.0)
            return loss.value(F, Y) + 0.5 / rho * float(np.vdot(Pi, Pi)), Pi

        def grad(F: np.ndarray, Pi: np.ndarray) -> np.ndarray:
            Gl = loss.gradient(F, Y)
            return (SD * (Gl.T if scalar else Gl.T[k]) - SG * Pi) @ Xr

        def prox(W: np.ndarray, tau: float) -> tuple[np.ndarray, float]:
            nrm = np.sqrt(np.einsum("ij,ij->i", W, W))
            shrink = np.maximum(1.0 - tau / np.where(nrm > 0, nrm, 1.0), 0.0)
            return W * shrink[:, None], float(np.dot(shrink, nrm))  # and sum of the new norms

        z = self.z
        XZ = z @ Xr.T
        F = out(XZ)
        fz, Pi = smooth_at(XZ, F)
        obj = fz + beta * float(np.linalg.norm(z, axis=1).sum())
        y, XZy, Fy, fy, Piy = z, XZ, F, fz, Pi
        t = 1.0
        L = self.L
        it = 0
        while it < budget:
            it += 1
            g = grad(Fy, Piy)
            while True:
                zn, reg = prox(y - g / L, beta / L)
                XZn = zn @ Xr.T
                Fn = out(XZn)
                fn, Pin = smooth_at(XZn, Fn)
                D = zn - y
                dd = float(np.vdot(D, D))
                # sufficient decrease of the quadratic model; the 1e-12 relative slack
                # absorbs rounding of f when the step is tiny
                if fn <= fy + float(np.vdot(g, D)) + 0.5 * L * dd + 1e-12 * abs(fy):
                    break
                L *= 2.0
            obj_n = fn + beta * reg
            gm = L * float(np.sqrt(dd))
            if obj_n > obj:  # adaptive restart (O'Donoghue & Candes 2015)
                t = 1.0
                y, XZy, Fy, fy, Piy = z, XZ, F, fz, Pi
                if gm <= tol:
                    break
                continue
            t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
            mom = (t - 1.0) / t_new
            y = zn + mom * (zn - z)
            XZy = XZn + mom * (XZn - XZ)
            Fy = Fn + mom * (Fn - F)
            fy, Piy = smooth_at(XZy, Fy)
            z, XZ, F, fz, Pi, obj = zn, XZn, Fn, fn, Pin, obj_n
            t = t_new
            L *= 0.95  # let the step grow again where the curvature is smaller
            if gm <= tol:
                break
        self.z, self.L = z, L
        self.iters += it
        return it

    def solve(self, tol: float, budget: int) -> int:
        """AL rounds until the gap over the working set is at most ``tol`` (or budget)."""
        used = 0
        n = self.Xr.shape[0]
        while used < budget:
            used += self._fista(self.inner_tol, min(budget - used, AL_INNER_BUDGET))
            C = self.grp.constraint(self.z)
            viol = float(np.sqrt(np.sum(np.minimum(C, 0.0) ** 2)))
            self.lam = np.maximum(self.lam - self.rho * C, 0.0)
            # gap of the program over the working set at the convex iterate (its
            # infeasibility must be small too: relative to ||X|| max ||z_g||)
            F = self.grp.output(self.z)
            V = self.loss.dual_point(F, self.Y)
            nz = np.linalg.norm(self.z, axis=1)
            primal = self.loss.value(F, self.Y) + self.beta * float(nz.sum())
            c, _ = pattern_values(self.Xr, V, self.grp.pats, self.beta)
            low = self.loss.best_scale(V, self.Y, np.inf if c <= 0 else self.beta / c)[1]
            # feasible enough: the rebuilt network (true ReLUs) has the convex objective to
            # a tenth of tol, and the convex value is not below the lower bound
            Fr = self.grp.relu_output(self.z)
            net = self.loss.value(Fr, self.Y) + self.beta * float(nz.sum())
            size = max(abs(primal), np.finfo(float).tiny)
            self.feasible = abs(net - primal) <= 0.1 * tol * size and primal - low >= -0.1 * tol * size
            if primal - low <= tol * size and self.feasible:
                break
            # or the rebuilt network itself is within tol of the program's lower bound:
            # its objective is then at most the program's optimum plus tol (relative); it
            # may be below it (its neurons need not keep the patterns)
            if _network_close(net, low, tol):
                break
            # inexact AL: tighten the subproblem tolerance geometrically (floor: 1e-13 of
            # the dual scale beta, the size rounding allows for a gradient mapping)
            self.inner_tol = max(self.inner_tol * AL_INNER_TOL_FACTOR, 1e-13 * self.beta)
            if viol > 0.25 * self.viol_prev and viol > 1e-12 * np.sqrt(n) * self.beta:
                self.L += (AL_RHO_GROWTH - 1.0) * self.rho * _spectral_norm(self.Xr) ** 2
                self.rho *= AL_RHO_GROWTH
            self.viol_prev = viol
        return used

    @property
    def Z(self) -> np.ndarray:
        return self.z


# ============================================================================ working set
@dataclass
class _Result:
    grp: Groups
    z: np.ndarray
    primal: float
    lower: float  # lower bound for the program over all patterns in `pats`
    c: float
    solver: str
    iterations: int
    rounds: int
    working_set: int
    converged: bool
    dropped_patterns: int = 0


def _ipm_cost(G: int, r: int, n: int, K: int) -> float:
    """Flops of one Newton step of :class:`_Barrier` with ``G`` groups (dense or Woodbury)."""
    Q = G * (r + 1)
    nk = n * K
    return float(min(Q**3 / 3.0 + Q * Q * nk, Q * nk * nk + nk**3 / 3.0 + G * (r + 1) ** 2 * nk))


#: largest Newton-step cost (flops) for which the interior-point method is used on a
#: complete pattern set (~0.3 s on one core); beyond it the augmented Lagrangian takes over
IPM_MAX_COST = 1e9
#: the same for sampled pattern sets, where the global bound is loose anyway and the
#: first-order method reaches a useful accuracy faster
IPM_SMALL_COST = 5e7
#: largest barrier parameter m (groups x (rows + 2)) for which the interior-point method
#: takes all patterns at once; beyond it the central path gets long and a working set
#: is used
IPM_MAX_BARRIER = 1e5
#: ... and only when there are at most this many times n + 1 patterns (the size of the
#: first working set): on n = 20, d = 3 (382 patterns) the working set was 2-3.7x faster
#: than all patterns at once (squared and logistic loss), on n = 10, d = 2 (20
#: patterns) 1.4-2.5x slower
IPM_ALL_PATTERNS_FACTOR = 4


def _solve(Xr: np.ndarray, Y: np.ndarray, pats: np.ndarray, dirs: np.ndarray | None, loss: Loss,
           beta: float, *, tol: float, solver: str, max_iter: int | None, progress: bool) -> _Result:
    r"""Working-set solution of the program over ``pats`` with the duality-gap stopping rule.

    The working set is all patterns for the augmented Lagrangian, and for the
    interior-point method when it can afford them; otherwise it starts as the ``n + 1``
    patterns most violated by the dual point of the zero network, and each round adds
    the patterns most violated by the current dual point.
    """
    n, K = Y.shape
    r = Xr.shape[1]
    P = len(pats)
    V0 = loss.dual_point(np.zeros_like(Y), Y)
    if solver == "al" or (solver == "pd" and _pd_all(P, r, n, K)) or (
            solver == "barrier" and _ipm_cost(2 * K * P, r, n, K) <= IPM_MAX_COST
            and 2 * K * P * (n + 2) <= IPM_MAX_BARRIER and P <= IPM_ALL_PATTERNS_FACTOR * (n + 1)):
        # the first-order method handles all patterns at once (matrix products); the
        # interior-point method does when its Newton systems stay small
        W = list(range(P))
    else:
        _, W = pattern_values(Xr, V0, pats, beta, max_new=min(P, max(10, n + 1)))
        if len(W) == 0:  # the zero network is optimal: keep one pattern to report on
            W = np.argsort(-np.linalg.norm(pats.astype(float) @ (V0[:, [0]] * Xr), axis=1))[:1]
        W = list(W)
    dropped = 0
    interior: dict[int, np.ndarray] = {}
    no_interior: set[int] = set()  # patterns whose cell has no interior (never join W)
    xn = np.linalg.norm(Xr, axis=1)
    nzr = xn > 0

    def interiors(idx: list[int]) -> tuple[list[int], np.ndarray]:
        nonlocal dropped
        keep, out = [], []
        for p in idx:
            if p not in interior:
                u = None
                if dirs is not None:
                    u = dirs[p]
                    m = (2.0 * pats[p] - 1.0) * (Xr @ u)
                    # strictly inside: every non-zero row on its side by more than
                    # rounding (1e3 eps of |x_j| |u|); else fall back to the LP
                    if not np.all(m[nzr] > 1e3 * _EPS * xn[nzr] * np.linalg.norm(u)):
                        u = None
                    else:
                        u = u / np.linalg.norm(u)
                if u is None:
                    u = _interior_direction(Xr, pats[p].astype(float))
                interior[p] = u if u is not None else np.full(r, np.nan)
            if np.all(np.isfinite(interior[p])):
                keep.append(p)
                out.append(interior[p])
            else:
                dropped += 1
                no_interior.add(p)
        return keep, np.array(out).reshape(-1, r)

    if max_iter is None:
        max_iter = 20000 if solver == "al" else 4000
    if solver == "pd":
        W, w_dirs = interiors(W)
        inner: Any = _PrimalDual(Xr, Y, loss, beta, pats[W], w_dirs)
    elif solver == "barrier":
        W, w_dirs = interiors(W)
        inner = _Barrier(Xr, Y, loss, beta, pats[W], w_dirs)
    else:
        inner = _AugLag(Xr, Y, loss, beta, pats[W])
    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=max_iter, desc=f"convex program ({solver})", leave=False)
        except ImportError:  # pragma: no cover
            bar = None
    # growth rounds need only a rough solution; with every pattern in the working set
    # there is no growth and the first round aims at tol
    round_tol = tol if len(W) == P else max(tol, 1e-3)
    used = rounds = 0
    converged = False
    try:
        while True:
            rounds += 1
            step = inner.solve(round_tol, max_iter - used)
            used += step
            if bar is not None:
                bar.update(step)
            z = inner.Z
            # the IPM's iterates are feasible (network output = convex output); the AL's
            # are not, and its network can even beat the program: judge the program
            F = inner.grp.output(z) if solver == "al" else inner.grp.relu_output(z)
            V = loss.dual_point(F, Y)
            primal = loss.value(F, Y) + beta * float(np.linalg.norm(z, axis=1).sum())
            others = np.setdiff1d(np.arange(P), W + sorted(no_interior))
            c_in, _ = pattern_values(Xr, V, pats[W], beta)
            c_out, new = pattern_values(Xr, V, pats[others], beta, max_new=max(5, len(W)))
            new = [int(others[i]) for i in new]
            # cells without interior cannot join (no interior start), but they still
            # count in the program's dual constraint: the lower bound stays valid
            c_no = pattern_values(Xr, V, pats[sorted(no_interior)], beta)[0] if no_interior else 0.0
            c = max(c_in, c_out, c_no)
            lower = float(loss.best_scale(V, Y, np.inf if c <= 0 else beta / c)[1])
            rel = (primal - lower) / max(abs(primal), np.finfo(float).tiny)
            if bar is not None:
                bar.set_postfix(gap=f"{rel:.1e}", patterns=len(W))
            if rel <= tol and (solver != "al" or inner.feasible):
                converged = True
                break
            if solver == "al":
                Fr = inner.grp.relu_output(z)
                if _network_close(loss.value(Fr, Y) + beta * float(np.linalg.norm(z, axis=1).sum()), lower, tol):
                    converged = True
                    break
            if used >= max_iter:
                break
            if solver == "pd" and not new and inner.stalled and not inner.polished \
                    and inner.ipm.G * inner.ipm.q > inner.ipm.dense_max \
                    and _ipm_cost(2 * K * len(W), r, n, K) <= IPM_MAX_COST:
                # the Woodbury solve stalled, the system is too large for dense steps
                # and the polish found no better point: the barrier method (slower,
                # but its refined Woodbury steps reach ~1e-9) takes over
                solver = "barrier"
                inner = _Barrier(Xr, Y, loss, beta, inner.grp.pats, inner.interior)
                continue
            if new:
                new_dirs = None
                if solver == "pd":
                    new, new_dirs = interiors(new)
                    if _pd_size(2 * K * (len(W) + len(new)), r) > PD_DENSE_MAX:
                        # beyond dense Newton systems: the barrier method (Woodbury with
                        # refinement copes with its conditioning), else the AL
                        if _ipm_cost(2 * K * (len(W) + len(new)), r, n, K) <= IPM_MAX_COST:
                            solver = "barrier"
                            inner = _Barrier(Xr, Y, loss, beta, inner.grp.pats, inner.interior)
                        else:
                            solver = "al"
                            old = inner
                            inner = _AugLag(Xr, Y, loss, beta, old.grp.pats, z=old.Z.copy())
                elif solver == "barrier":
                    new, new_dirs = interiors(new)
                    if _ipm_cost(2 * K * (len(W) + len(new)), r, n, K) > IPM_MAX_COST:
                        # the working set outgrew dense Newton: continue with the AL
                        solver = "al"
                        old = inner
                        inner = _AugLag(Xr, Y, loss, beta, old.grp.pats, z=old.Z.copy())
                if new:
                    inner.grow(pats[new]) if solver == "al" else inner.grow(pats[new], new_dirs)
                    W.extend(new)
                continue
            if round_tol <= 1e-13 or round_tol <= 0.01 * tol * 1e-3:
                break  # at the solver's precision limit without closing the gap
            round_tol = max(round_tol * 0.01, 0.1 * tol, 1e-13) if round_tol > tol else round_tol * 0.01
    finally:
        if bar is not None:
            bar.close()
    return _Result(inner.grp, inner.Z, primal, lower, c, solver, used, rounds, len(W), converged, dropped)


# ============================================================================ rebuild
def network_from_atoms(U: np.ndarray, A: np.ndarray, *, bias: bool, scalar: bool) -> Network:
    r"""Two-layer ReLU network with hidden weights ``U`` (d', m) and output weights ``A`` (m, K).

    With ``bias`` the last row of ``U`` is the hidden bias (the ones column of the
    augmented data).  An empty network (m = 0) becomes one zero neuron.
    """
    d1, m = U.shape
    K = A.shape[1]
    if m == 0:
        U, A = np.zeros((d1, 1)), np.zeros((1, K))
    if bias:
        return Network([[U[:-1], A]], "relu", biases=[[U[-1]]], scalar_output=scalar)
    return Network([[U, A]], "relu", scalar_output=scalar)


def prune_neurons(Xa: np.ndarray, U: np.ndarray, A: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    r"""Reduce a two-layer ReLU network to at most :math:`nK + 1` neurons without changing
    its output and without raising its balanced penalty :math:`\sum_j\|u_j\|\|\alpha_j\|`.

    1. Neurons with the same direction :math:`u/\|u\|` are merged (the merged output weight
       :math:`\sum_jc_j\bar\alpha_j` has norm at most :math:`\sum_jc_j`).
    2. Carathéodory: with atoms :math:`a_j = \operatorname{vec}((X\bar u_j)_+\bar\alpha_j^T)` and
       weights :math:`c_j = \|u_j\|\|\alpha_j\| > 0`, while the vectors :math:`(a_j, 1)` are
       linearly dependent (always when there are more than :math:`nK + 1`), take
       :math:`\delta \ne 0` in their null space and move :math:`c \leftarrow c - \tau\delta`
       until a weight reaches zero: :math:`\sum_jc_ja_j` and :math:`\sum_jc_j` are unchanged.

    Returns balanced ``(U, A, info)`` (:math:`\|u_j\| = \|\alpha_j\|`).
    """
    n = Xa.shape[0]
    K = A.shape[1]
    un = np.linalg.norm(U, axis=0)
    an = np.linalg.norm(A, axis=1)
    keep = (un > 0) & (an > 0)
    U, A, un = U[:, keep], A[keep], un[keep]
    info: dict[str, Any] = {"neurons_in": int(U.shape[1])}
    if U.shape[1] == 0:
        info.update(merged=0, caratheodory_steps=0, neurons_out=0)
        return U, A, info
    Ubar = U / un
    C = A * un[:, None]
    # 1. merge equal directions: unit vectors equal up to 64 eps (their rounding); a
    # cosine test would merge directions ~1e-7 apart and change the output
    used = np.zeros(len(un), dtype=bool)
    dirs, outs = [], []
    for j in range(len(un)):
        if used[j]:
            continue
        same = (~used) & (np.max(np.abs(Ubar - Ubar[:, [j]]), axis=0) <= 64 * _EPS)
        used |= same
        dirs.append(Ubar[:, j])
        outs.append(C[same].sum(axis=0))
    Ubar, C = np.stack(dirs, axis=1), np.stack(outs)
    c = np.linalg.norm(C, axis=1)
    nz = c > 0
    Ubar, C, c = Ubar[:, nz], C[nz], c[nz]
    Abar = C / c[:, None]
    info["merged"] = int(info["neurons_in"] - len(c))
    # 2. Caratheodory reduction in blocks: the current set (at most nK + 1 atoms) plus
    # the next block; the null space of [a_j; 1] over them (dimension >= the excess) is
    # used one vector at a time, each vector zeroing one weight, the remaining vectors
    # being updated to vanish at the removed index (Gaussian elimination), so one SVD
    # serves a whole block
    H = np.maximum(Xa @ Ubar, 0.0)
    atoms = (H[:, None, :] * Abar.T[None, :, :]).reshape(n * K, -1)
    limit = n * K + 1
    cols = np.arange(min(len(c), limit))
    w = c[cols].copy()
    nxt = len(cols)
    steps = 0
    while nxt < len(c):
        blk = np.arange(nxt, min(len(c), nxt + limit))
        nxt = blk[-1] + 1
        cols = np.concatenate([cols, blk])
        w = np.concatenate([w, c[blk]])
        M = np.vstack([atoms[:, cols], np.ones((1, len(cols)))])
        excess = len(cols) - limit
        if excess <= 0:
            continue
        N = np.linalg.svd(M, full_matrices=True)[2][-excess:].T  # (m, excess), M N = 0
        gone = np.zeros(len(cols), dtype=bool)
        mnorm = float(np.linalg.norm(M))
        for e in range(excess):
            delta = np.where(gone, 0.0, N[:, e])
            if np.linalg.norm(M @ delta) > 1e-13 * mnorm * np.linalg.norm(delta):
                # elimination through a small pivot lost accuracy: fresh null space of
                # the remaining columns (still `excess - e` dimensional)
                live = np.flatnonzero(~gone)
                Vt = np.linalg.svd(M[:, live], full_matrices=True)[2]
                N = np.zeros_like(N)
                N[live, e:] = Vt[-(excess - e):].T
                delta = N[:, e].copy()
            if not np.any(delta > 0):
                delta = -delta
            pos = delta > 0
            if not np.any(pos):  # pragma: no cover - a null vector vanished (rounding)
                continue
            ratios = np.where(pos, w / np.where(pos, delta, 1.0), np.inf)
            i = int(np.argmin(ratios))
            w = w - ratios[i] * delta
            w[i] = 0.0
            gone[i] = True
            rest = N[:, e + 1:]
            if rest.shape[1]:
                N[:, e + 1:] = rest - np.outer(delta, rest[i] / delta[i])
                N[i, e + 1:] = 0.0
            steps += 1
        alive = (w > 16 * _EPS * float(np.max(np.abs(w)))) & ~gone  # zero up to rounding
        cols, w = cols[alive], w[alive]
    sel = cols
    c, Ubar, Abar = w, Ubar[:, sel], Abar[sel]
    info["caratheodory_steps"] = steps
    info["neurons_out"] = int(len(c))
    s = np.sqrt(c)
    return Ubar * s[None, :], Abar * s[:, None], info


# ============================================================================ public
def _choose_patterns(Xa: np.ndarray, rs: Any, option: Any, n_patterns: int, max_patterns: int,
                     rng: Any, K: int = 1) -> tuple[np.ndarray, np.ndarray | None, bool, str]:
    """``(patterns, interior directions in row-space coordinates or None, complete, how)``.

    ``"auto"`` enumerates when ``K`` times the region-count bound is at most
    ``max_patterns`` (the program has one group per pattern, sign and output)."""
    n = Xa.shape[0]
    bound = count_upper_bound(n, rs.rank) * K
    if isinstance(option, str):
        if option not in ("auto", "exact", "sample"):
            raise ValueError(f"`patterns` must be 'auto', 'exact', 'sample' or a boolean array (P, {n}); "
                             f"got {option!r}")
        if option == "exact" or (option == "auto" and bound <= max_patterns):
            pats, dirs = enumerate_patterns(Xa, return_directions=True)
            return pats, dirs @ rs.V, True, "exact enumeration"
        pats, dirs = sample_patterns(Xa, n_patterns, rng, return_directions=True)
        return pats, dirs @ rs.V, False, f"{n_patterns} sampled"
    dirs_in = None
    if isinstance(option, tuple):
        if len(option) != 2:
            raise ValueError("`patterns` as a tuple must be (patterns (P, n), directions (P, d))")
        option, dirs_in = option
        dirs_in = np.asarray(dirs_in, dtype=float)
        if dirs_in.ndim != 2 or dirs_in.shape[1] != Xa.shape[1] or not np.all(np.isfinite(dirs_in)):
            raise ValueError(f"`patterns` directions must be a finite array of shape (P, {Xa.shape[1]}), "
                             f"got shape {dirs_in.shape}")
    arr = np.asarray(option)
    if dirs_in is not None and len(dirs_in) != len(arr):
        raise ValueError(f"`patterns`: {len(arr)} patterns but {len(dirs_in)} directions")
    if arr.ndim != 2 or arr.shape[1] != n:
        raise ValueError(f"`patterns` must be a boolean array of shape (P, {n}), got shape {arr.shape}")
    if arr.dtype != bool:
        if not np.all((arr == 0) | (arr == 1)):
            raise ValueError("`patterns` must contain only booleans or 0/1")
        arr = arr.astype(bool)
    if dirs_in is not None:
        # unique non-zero patterns, each with its direction (checked to lie strictly
        # inside its cell by the solver, which falls back to an LP otherwise)
        _, first = np.unique(arr, axis=0, return_index=True)
        first = np.sort(first[arr[first].any(axis=1)])
        return arr[first], dirs_in[first] @ rs.V, False, "user-supplied"
    return unique_patterns(arr), None, False, "user-supplied"


def _int_option(options: dict, name: str, default: int | None, minimum: int) -> int | None:
    val = options.get(name, default)
    if val is None:
        return None
    if isinstance(val, bool) or not isinstance(val, numbers.Integral) or val < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {val!r}")
    return int(val)


def solve_convex(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    scalar: bool,
    beta: float,
    depth: int,
    loss: Loss,
    rtol: float,
    bias: bool,
    **options: Any,
) -> Solution:
    r"""Two-layer ReLU network of minimal weight-decay objective via the convex program.

    Solves :math:`\min_\theta \ell(f_\theta(X), Y) + \frac\beta2(\|W_1\|_F^2 + \|W_2\|_F^2)`
    over two-layer ReLU networks of any width through the convex program of the module
    docstring, rebuilds the network (:math:`u = v/\sqrt{\|v\|},\ \alpha = \pm\sqrt{\|v\|}`),
    prunes it to at most :math:`nK + 1` neurons (:func:`prune_neurons`) and certifies it.

    Parameters
    ----------
    X : ndarray (n, d), Y : ndarray (n, K)
        Validated data; labels already canonical for ``loss``.
    scalar : bool
        Whether the network predicts 1-D output.
    beta : float > 0
    depth : int
        Must be 2.
    loss : Loss
        A smooth loss (squared, logistic, cross_entropy or a user loss with a gradient);
        the hinge loss is not supported.
    rtol : float
        ``Solution.certified`` when the relative gap is below ``rtol``.
    bias : bool
        Append a column of ones to ``X``: the hidden biases are the last entry of each
        hidden weight vector and are **penalized** like the weights (evaluate with
        ``deepdual.objective(..., penalize_biases=True)`` and certify with
        ``deepdual.certify(..., penalize_biases=True)``).  No output bias.
    **options
        patterns : {"auto", "exact", "sample"}, bool array (P, n) or tuple, default "auto"
            ``"auto"`` enumerates all patterns when the region-count bound
            :math:`2\sum_{k<r}\binom{n-1}{k}` (times ``K``) is at most ``max_patterns``,
            else samples.  A tuple ``(patterns, directions)`` also gives, for each
            pattern, a direction ``g`` (P, d; with ``bias`` P, d + 1) strictly inside its
            cell (e.g. the sampled directions of :func:`deepdual.patterns.sample_patterns`),
            which saves one small LP per pattern.
        n_patterns : int, default 100
            Number of sampled patterns.
        max_patterns : int, default 2000
        certify_max_patterns : int, default 20000
            With sampled patterns, the global lower bound still uses the exact dual
            constraint (a separate enumeration) when the region-count bound is at most this.
        rng : None, int or numpy.random.Generator
            Source of sampled patterns.  ``None`` draws fresh OS entropy; the seed drawn
            is stored in ``info["rng_seed"]`` so the run can be repeated.
        solver : {"auto", "ipm", "barrier", "al"}, default "auto"
            ``"ipm"``: primal–dual interior-point method for the squared loss (the
            barrier method for other losses); ``"barrier"``: primal log-barrier method
            (any loss with a Hessian); ``"al"``: augmented Lagrangian (first order,
            large problems).  ``"auto"`` takes the primal–dual method for the squared
            loss when all patterns fit its dense Newton system, else the barrier
            method when the loss has a Hessian and the working set is small, else the
            augmented Lagrangian.
        max_iter : int, optional
            Newton steps (``"ipm"``, ``"barrier"``, default 4000) or FISTA iterations (``"al"``, default
            20000) over all rounds.
        tol : float, default ``rtol / 2``
            Stop when the relative duality gap of the program over the pattern set is
            below ``tol`` (half of ``rtol`` leaves room for rounding in the rebuild).
        progress : bool, default False
            Show a tqdm progress bar.
        polish : {"auto", True, False}, default "auto"
            Local descent (L-BFGS on the network's weights, :func:`polish_network`) from
            the program's network, kept only if it lowers the objective.  ``"auto"``
            polishes when the program is only an upper bound: sampled pattern sets and
            vector outputs.  On sampled sets the program's optimum is often far above
            what networks of the same width reach (e.g. n = 200, d = 20, 50 patterns:
            21.96 before, 7.58 after); the polished network is at most the program's
            optimum, so ``info["restricted_lower_bound"]`` still bounds it from below up
            to the program's gap.  On complete pattern sets the program is exact and
            nothing is gained.

    Returns
    -------
    Solution
        ``lower_bound`` is proven for all networks; ``info["restricted_lower_bound"]``
        is the lower bound for the program over the pattern set.

    References
    ----------
    Pilanci & Ergen (ICML 2020); Mishkin, Sahiner & Pilanci (ICML 2022).
    """
    with _SingleThreadedBLAS():
        return _solve_convex(X, Y, scalar=scalar, beta=beta, depth=depth, loss=loss, rtol=rtol, bias=bias,
                             **options)


def _solve_convex(X: np.ndarray, Y: np.ndarray, *, scalar: bool, beta: float, depth: int, loss: Loss,
                  rtol: float, bias: bool, **options: Any) -> Solution:
    """:func:`solve_convex` (with BLAS limited to one thread)."""
    check_options(options, CONVEX_OPTIONS, "solve(..., method='convex')")
    if depth != 2:
        raise ValueError(f"`depth` must be 2 for the convex program (two-layer networks), got {depth}")
    if isinstance(loss, HingeLoss):
        raise ValueError("`loss`='hinge' is not supported by the convex program (non-smooth); "
                         "use 'squared', 'logistic' or 'cross_entropy'")
    n_patterns = _int_option(options, "n_patterns", DEFAULT_N_PATTERNS, 1)
    max_patterns = _int_option(options, "max_patterns", DEFAULT_MAX_PATTERNS, 0)
    enum_limit = _int_option(options, "certify_max_patterns", DEFAULT_CERTIFY_MAX_PATTERNS, 0)
    max_iter = _int_option(options, "max_iter", None, 1)
    tol = check_positive(options.get("tol", 0.5 * rtol), "tol")
    solver = options.get("solver", "auto")
    if solver not in SOLVERS:
        raise ValueError(f"`solver` must be one of {', '.join(map(repr, SOLVERS))}; got {solver!r}")
    if solver in ("ipm", "barrier") and not _has_hessian(loss):
        raise ValueError(f"`solver`='ipm' needs the loss's Hessian (squared, logistic, cross_entropy); "
                         f"got {loss!r}")
    progress = options.get("progress", False)
    if not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"`progress` must be True or False, got {progress!r}")
    polish = options.get("polish", "auto")
    if not (isinstance(polish, (bool, np.bool_)) or polish == "auto"):
        raise ValueError(f"`polish` must be 'auto', True or False, got {polish!r}")
    rng = options.get("rng")
    rng_seed = None
    if rng is None:
        rng_seed = int(np.random.SeedSequence().entropy % (2**63))
        rng = np.random.default_rng(rng_seed)
    elif isinstance(rng, (numbers.Integral, np.integer)) and not isinstance(rng, bool):
        rng_seed = int(rng)

    t0 = time.perf_counter()
    n, d = X.shape
    K = Y.shape[1]
    Xa = np.hstack([X, np.ones((n, 1))]) if bias else X
    rs = row_space(Xa)
    r = rs.rank
    pats, dirs, complete, how = _choose_patterns(Xa, rs, options.get("patterns", "auto"), n_patterns,
                                                 max_patterns, rng, K)
    if solver in ("auto", "ipm") and isinstance(loss, SquaredLoss):
        # the primal-dual method when all patterns fit its dense Newton system (an
        # explicit "ipm" always; it then works on a growing working set)
        if solver == "ipm" or _pd_all(len(pats), r, n, K):
            solver = "pd"
    if solver == "auto":
        cost = _ipm_cost(2 * K * min(len(pats), n + 1), r, n, K)
        small = cost <= (IPM_MAX_COST if complete else IPM_SMALL_COST)
        solver = "barrier" if _has_hessian(loss) and small else "al"
    elif solver == "ipm":
        solver = "barrier"

    if r == 0 or len(pats) == 0:
        grp = Groups(rs.Xr, pats[:0] if len(pats) else np.zeros((0, n), bool), K)
        res = _Result(grp, np.zeros((0, r)), loss.value(np.zeros_like(Y), Y), -np.inf, 0.0, solver,
                      0, 0, 0, True)
    else:
        res = _solve(rs.Xr, Y, pats, dirs, loss, beta, tol=tol, solver=solver, max_iter=max_iter,
                     progress=bool(progress))
    t_solve = time.perf_counter() - t0

    grp, z = res.grp, res.z
    convex_value = loss.value(grp.output(z), Y) + beta * float(np.linalg.norm(z, axis=1).sum()) if len(z) \
        else loss.value(np.zeros_like(Y), Y)
    viol = float(np.max(np.maximum(-grp.constraint(z), 0.0), initial=0.0)) if len(z) else 0.0
    # rebuild: group z (row-space coords) -> u = V z / sqrt|z|, alpha = s sqrt|z| e_k
    nrm = np.linalg.norm(z, axis=1) if len(z) else np.zeros(0)
    act = np.flatnonzero(nrm > 0)
    U = (rs.V @ z[act].T) / np.sqrt(nrm[act])[None, :] if len(act) else np.zeros((Xa.shape[1], 0))
    A = np.zeros((len(act), K))
    A[np.arange(len(act)), grp.k[act]] = grp.s[act] * np.sqrt(nrm[act])
    U, A, prune_info = prune_neurons(Xa, U, A)
    net = network_from_atoms(U, A, bias=bias, scalar=scalar)
    value = objective(net, X, Y, beta=beta, loss=loss, penalize_biases=bias)

    polished = None
    if polish == "auto":
        polish = K > 1 or not complete
    if polish and U.shape[1] > 0:
        # the program is an upper bound (vector outputs, sampled patterns): local descent
        # from its network, kept only if better
        U2, A2 = polish_network(Xa, Y, loss, beta, U, A)
        net2 = network_from_atoms(U2, A2, bias=bias, scalar=scalar)
        value2 = objective(net2, X, Y, beta=beta, loss=loss, penalize_biases=bias)
        if value2 < value:
            polished = float(value)
            net, value = net2, value2

    # certificate over all networks: the network's own dual point
    full = _complete_set(Xa, rs, pats, complete, enum_limit)
    V = loss.dual_point(net.forward(X), Y)
    c, exact, c_how = _global_constraint(Xa, rs, V, full, beta)
    t_dual, lower = loss.best_scale(V, Y, np.inf if c <= 0 else beta / c)
    lower = float(lower) if np.isfinite(lower) else -np.inf
    dual = t_dual * V
    dual_from = "network residual"
    if K > 1 and full is not None and len(full):
        # and the residual of the gated relaxation, whose dual constraint is the cell bound
        # iteration budget: ~1e9 flops (two products with the n x (P r) operator and P
        # small SVDs per iteration), at least 50 iterations, at most 1000
        per_iter = len(full) * r * K * (4 * n + 30 * K)
        Lam = gated_relaxation_dual(rs.Xr, Y, loss, beta, full,
                                    max_iter=int(np.clip(1e9 / max(per_iter, 1), 50, 1000)))
        c2, _, how2 = _global_constraint(Xa, rs, Lam, full, beta)
        t2, low2 = loss.best_scale(Lam, Y, np.inf if c2 <= 0 else beta / c2)
        if np.isfinite(low2) and low2 > lower:
            lower, dual, c, t_dual, c_how = float(low2), t2 * Lam, c2, t2, how2
            V = Lam
            dual_from = "gated relaxation residual"

    info: dict[str, Any] = {
        "solver": "ipm" if res.solver == "pd" else res.solver,
        "patterns": int(len(pats)),
        "patterns_complete": bool(complete),
        "patterns_how": how,
        "pattern_count_bound": int(count_upper_bound(n, r)),
        "rank": int(r),
        "iterations": int(res.iterations),
        "working_set_rounds": int(res.rounds),
        "working_set": int(res.working_set),
        "patterns_without_interior": int(res.dropped_patterns),
        "convex_objective": float(convex_value),
        "max_violation": viol,
        "restricted_objective": float(res.primal),
        "restricted_lower_bound": float(res.lower),
        "restricted_converged": bool(res.converged),
        "dual_constraint": float(c),
        "dual_constraint_exact": bool(exact),
        "dual_constraint_how": c_how,
        "dual_scale": float(t_dual),
        "dual_point": dual_from,
        "penalize_biases": bool(bias),
        "time_s": float(t_solve),
        **prune_info,
    }
    if polished is not None:
        info["objective_before_polish"] = polished
    if rng_seed is not None and not complete:
        info["rng_seed"] = rng_seed
    notes = []
    if not complete:
        notes.append(
            f"patterns {how} (not all of up to {info['pattern_count_bound']}): the program's optimum is "
            "optimal only among networks whose neurons have these patterns, an upper bound on the global "
            "optimum" + (" (the returned network was then improved by local descent)" if polished is not None
                         else "")
            + ("" if exact else "; lower_bound uses a proven upper bound on the dual constraint"))
    if K > 1:
        notes.append("vector output: solved with one output per neuron (penalty ||u|| ||alpha||_1), an upper "
                     "bound for weight decay; see docs/convex_program.md")
    if bias:
        notes.append("hidden biases are penalized: use objective(..., penalize_biases=True)")
    if not res.converged:
        notes.append(f"{res.solver} stopped (iteration budget or precision limit) before the relative gap "
                     f"over the pattern set reached tol={tol:g}")
    if notes:
        info["note"] = "; ".join(notes)
    method = "convex program (Pilanci & Ergen 2020), " + ("all patterns" if complete else how + " patterns")
    return Solution(network=net, objective=float(value), lower_bound=lower, method=method, rtol=rtol,
                    dual=dual, info=info)
