r"""Global training of two-layer ReLU networks on arbitrary data by a convex program
(SPEC 2.8; Pilanci & Ergen, ICML 2020).

The problem
-----------
For a two-layer ReLU network :math:`f(X) = \sum_j (Xu_j)_+\alpha_j^T` the objective
:math:`\ell(f(X), Y) + \frac\beta2\sum_j(\|u_j\|^2 + \|\alpha_j\|^2)` is, after the
rescaling :math:`u_j \to u_j/\gamma,\ \alpha_j \to \gamma\alpha_j`, equal to
:math:`\ell(f(X)) + \beta\sum_j\|u_j\|\,\|\alpha_j\|`.  With the activation patterns
:math:`D_i = \operatorname{diag}(1[Xg_i \ge 0])` (:mod:`deepdual.patterns`) and scalar
output it equals the convex program

.. math::

    \min_{v_i, w_i}\ \ell\Big(\sum_i D_i X(v_i - w_i)\Big) + \beta\sum_i(\|v_i\| + \|w_i\|)
    \quad\text{s.t.}\quad (2D_i - I)Xv_i \ge 0,\ (2D_i - I)Xw_i \ge 0,

when the patterns are *all* patterns of :math:`X` (a superset is harmless).  With a
sampled subset it is the same problem restricted to networks whose neurons have those
patterns: its optimum is then only an upper bound on the global one.

Vector output (:math:`K > 1`): the program is solved with one group per pattern, sign
*and output*, i.e. :math:`\beta\sum_{i,k}(\|v_{ik}\| + \|w_{ik}\|)`.  That is the exact
convex form of the problem with the *path* penalty :math:`\beta\sum_j\|u_j\|\,\|\alpha_j\|_1`
(every neuron feeds one output), whose networks are feasible for weight decay with
:math:`\|\alpha_j\|_2 \le \|\alpha_j\|_1`: an upper bound.  The exact weight-decay
program for :math:`K > 1` needs a cone-constrained nuclear norm (Sahiner et al., 2021)
that has no tractable form; the lower bound below is still proven, so ``certified``
stays honest.  See ``docs/convex_program.md``.

Algorithm
---------
Augmented Lagrangian on the cone constraints :math:`G_a z_a \ge 0`
(:math:`G_a = (2D_a - I)X`) with multipliers :math:`\lambda_a \ge 0` and penalty
:math:`\rho`:

.. math::

    \mathcal{L}_\rho = \ell(F(z)) + \beta\sum_a\|z_a\|
        + \frac1{2\rho}\sum_a\big(\|(\lambda_a - \rho G_a z_a)_+\|^2 - \|\lambda_a\|^2\big),

each subproblem solved by FISTA with backtracking and adaptive restart (the
group-lasso prox is the group soft-threshold), then
:math:`\lambda_a \leftarrow (\lambda_a - \rho G_a z_a)_+`.

Stopping rule: the duality gap.  At any iterate the network
:math:`u_a = z_a/\sqrt{\|z_a\|},\ \alpha_a = \pm\sqrt{\|z_a\|}` has objective
:math:`P` and :math:`v = -\nabla\ell(f(X))` is a dual candidate.  For every pattern
and sign (Pilanci & Ergen, eq. (8); conic duality)

.. math::

    \max_{u\in K_a,\|u\|\le1} s_a v^TD_aXu = \min_{\mu\ge0}\|X^T(s_aD_av + (2D_a - I)\mu)\|,

so *any* :math:`\mu \ge 0` gives an upper bound; the AL multipliers give a cheap one
and an NNLS (``scipy.optimize.nnls``) the exact value.  With
:math:`c(v) = \max_a(\cdot)`, the scaled point :math:`tv,\ t \le \beta/c(v)` is dual
feasible and :math:`D(tv) = -\ell^*(-tv)` is a lower bound.  The solver stops when
:math:`P - D \le \text{tol}\cdot|P|` for the pattern set in use.

The reported ``lower_bound`` is for the problem over *all* networks: it uses
the exact :math:`c(v)` when the pattern set is complete (exact enumeration) and
otherwise the proven upper bound
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
A. Beck and M. Teboulle, "A fast iterative shrinkage-thresholding algorithm", SIAM J.
Imaging Sci. 2 (2009).
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import nnls

from .._validation import check_options, check_positive
from ..losses import CrossEntropyLoss, HingeLoss, LogisticLoss, Loss, SquaredLoss
from ..network import Network
from ..objective import objective
from ..patterns import count_upper_bound, enumerate_patterns, row_space, sample_patterns, unique_patterns
from ..solution import Solution

__all__ = [
    "solve_convex",
    "ConvexProgram",
    "relu_constraint_bound",
    "network_from_atoms",
    "prune_neurons",
    "CONVEX_OPTIONS",
]

CONVEX_OPTIONS = (
    "patterns", "n_patterns", "max_patterns", "rng", "max_iter", "tol", "rho", "progress", "polish",
)

_EPS = np.finfo(float).eps

#: default number of sampled patterns when exact enumeration is too large
DEFAULT_N_PATTERNS = 100
#: exact enumeration is used when the region-count bound is at most this
DEFAULT_MAX_PATTERNS = 2000


# ---------------------------------------------------------------------------- helpers
def _lipschitz(loss: Loss) -> float:
    """Lipschitz constant of the gradient of the loss in F (backtracking corrects a
    wrong guess for user losses)."""
    if isinstance(loss, SquaredLoss):
        return 1.0
    if isinstance(loss, LogisticLoss):
        return 0.25  # sigma'(t) <= 1/4
    if isinstance(loss, CrossEntropyLoss):
        return 0.5  # ||diag(p) - p p^T||_2 <= 1/2
    return 1.0


def _spectral_norm(A: np.ndarray) -> float:
    if A.size == 0:
        return 0.0
    return float(np.linalg.norm(A, 2))


def scalar_constraint_upper_bound(X: np.ndarray, v: np.ndarray) -> float:
    r"""Proven upper bound on :math:`c(v) = \max_{\|u\|\le1}|v^T(Xu)_+|`.

    :math:`v^T(Xu)_+ \le v_+^T(X_{S_+}u)_+ \le \|v_+\|\,\|X_{S_+}\|_2` and likewise for
    :math:`-v`, with :math:`S_\pm` the supports of :math:`v_\pm` (a refinement of
    :math:`\|X\|_2\max(\|v_+\|,\|v_-\|)`).
    """
    v = np.asarray(v, dtype=float).reshape(-1)
    pos, neg = v > 0, v < 0
    a = _spectral_norm(X[pos]) * float(np.linalg.norm(v[pos])) if np.any(pos) else 0.0
    b = _spectral_norm(X[neg]) * float(np.linalg.norm(v[neg])) if np.any(neg) else 0.0
    return max(a, b)


def _cone_support(Xr: np.ndarray, d: np.ndarray, sv: np.ndarray) -> float:
    r""":math:`\max_{u\in K,\|u\|\le1} sv^TDXu = \min_{\mu\ge0}\|X^T(sDv + (2D-I)\mu)\|` by NNLS.

    Returns the NNLS residual: the value at a feasible :math:`\mu`, hence never below
    the true maximum (a valid upper bound even if NNLS stops early).
    """
    sgn = 2.0 * d - 1.0
    A = Xr.T * sgn[None, :]  # columns (2D - I) X rows
    b = -(Xr.T @ (d * sv))
    if not np.any(b):
        return 0.0
    try:
        mu, _ = nnls(A, b, maxiter=50 * A.shape[1])
    except RuntimeError:  # pragma: no cover - iteration limit; mu = 0 is feasible
        return float(np.linalg.norm(b))
    # recompute the residual from mu (>= 0 by construction) rather than trusting nnls's
    return float(np.linalg.norm(A @ np.maximum(mu, 0.0) - b))


def relu_constraint_bound(
    Xr: np.ndarray,
    V: np.ndarray,
    patterns: np.ndarray | None,
    *,
    complete: bool,
    mu: np.ndarray | None = None,
    target: float = 0.0,
) -> tuple[float, str]:
    r"""Proven upper bound on the dual constraint value of ``V`` (n, K).

    :math:`c(V) = \max_{\|u\|\le1}\|V^T(Xu)_+\|_2` over all neurons when ``complete``
    (``patterns`` then contains every region pattern), else over the pattern set only
    (the *restricted* value, used for the solver's stopping rule).

    Scalar (``K = 1``): exact, the maximum over patterns and signs of the NNLS value
    (evaluated lazily: the cheap bound with multipliers ``mu`` (2, P, n) or ``mu = 0``
    orders the candidates, and NNLS runs only while a candidate could exceed the
    current maximum or ``target``).  ``K > 1``: the minimum of
    :math:`\sqrt{\sum_k c(v_k)^2}` and, for complete sets, :math:`\max_i\|V^TD_iX\|_2`,
    both proven bounds.

    Returns ``(value, how)``.
    """
    n, K = V.shape
    if K > 1:
        per = [relu_constraint_bound(Xr, V[:, [k]], patterns, complete=complete,
                                     mu=None if mu is None else mu[..., k], target=0.0)[0]
               for k in range(K)]
        val = float(np.linalg.norm(per))
        how = "sqrt of per-output exact values" if complete else "sqrt of per-output values"
        if patterns is not None and len(patterns):
            spec = max(_spectral_norm(Xr.T @ (p[:, None] * V)) for p in patterns.astype(float))
            if spec < val:
                val, how = spec, "max over patterns of ||V^T D X||_2"
        return val, how
    v = V[:, 0]
    if mu is not None and mu.ndim == 4:
        mu = mu[..., 0]
    if patterns is None or len(patterns) == 0:
        return 0.0, "no patterns"
    Dm = patterns.astype(float)  # (P, n)
    P = len(Dm)
    sgn = 2.0 * Dm - 1.0
    # cheap bounds: mu feasible (>= 0) -> ||X^T(s D v + (2D - I) mu)|| >= exact value
    cheap = np.empty((2, P))
    for s_idx, s in enumerate((1.0, -1.0)):
        M = s * Dm * v[None, :]
        if mu is not None:
            M = M + sgn * np.maximum(mu[s_idx], 0.0)
        C0 = np.linalg.norm((s * Dm * v[None, :]) @ Xr, axis=1)
        Cm = np.linalg.norm(M @ Xr, axis=1)
        cheap[s_idx] = np.minimum(C0, Cm)
    order = np.argsort(cheap, axis=None)[::-1]
    best = 0.0
    for flat in order:
        s_idx, p = divmod(int(flat), P)
        if cheap[s_idx, p] <= max(best, 0.0):
            break
        exact = _cone_support(Xr, Dm[p], (1.0 if s_idx == 0 else -1.0) * v)
        best = max(best, min(exact, cheap[s_idx, p]))
    return best, ("exact (all patterns, NNLS)" if complete else "restricted to the pattern set (NNLS)")


# ---------------------------------------------------------------------------- program
@dataclass
class ConvexProgram:
    r"""The convex program over a fixed pattern set, in reduced coordinates.

    Variables ``Z`` of shape (r, 2, P, K): ``Z[:, 0, i, k]`` is :math:`v_{ik}`,
    ``Z[:, 1, i, k]`` is :math:`w_{ik}`; ``Xr`` (n, r) is ``X`` in its row space.
    """

    Xr: np.ndarray
    Y: np.ndarray
    patterns: np.ndarray  # (P, n) bool
    loss: Loss
    beta: float
    Dm: np.ndarray = field(init=False)  # (n, P) float
    sg: np.ndarray = field(init=False)  # (n, 1, P, 1) signs 2D - 1

    def __post_init__(self) -> None:
        self.Dm = self.patterns.T.astype(float)
        self.sg = (2.0 * self.Dm - 1.0)[:, None, :, None]

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.Xr.shape[1], 2, self.patterns.shape[0], self.Y.shape[1])

    def xz(self, Z: np.ndarray) -> np.ndarray:
        """:math:`Xz` for every atom, shape (n, 2, P, K)."""
        r = Z.shape[0]
        n = self.Xr.shape[0]
        return (self.Xr @ Z.reshape(r, -1)).reshape((n,) + Z.shape[1:])

    def output(self, XZ: np.ndarray) -> np.ndarray:
        r""":math:`F = \sum_i D_iX(v_i - w_i)` (n, K)."""
        return np.einsum("np,npk->nk", self.Dm, XZ[:, 0] - XZ[:, 1])

    def relu_output(self, XZ: np.ndarray) -> np.ndarray:
        r"""Output of the rebuilt network :math:`\sum_i (Xv_i)_+ - (Xw_i)_+`."""
        R = np.maximum(XZ, 0.0)
        return (R[:, 0] - R[:, 1]).sum(axis=1)

    def constraint(self, XZ: np.ndarray) -> np.ndarray:
        """:math:`(2D_i - I)Xz` for every atom, (n, 2, P, K); feasible when >= 0."""
        return self.sg * XZ

    def adjoint(self, H: np.ndarray) -> np.ndarray:
        """:math:`X^T H` per atom: (n, 2, P, K) -> (r, 2, P, K)."""
        n = H.shape[0]
        return (self.Xr.T @ H.reshape(n, -1)).reshape((self.Xr.shape[1],) + H.shape[1:])

    def output_adjoint(self, Gl: np.ndarray) -> np.ndarray:
        """Gradient of :math:`\\langle G, F\\rangle` with respect to ``XZ``: (n, 2, P, K)."""
        H = self.Dm[:, :, None] * Gl[:, None, :]
        return np.stack([H, -H], axis=1)

    def group_norms(self, Z: np.ndarray) -> np.ndarray:
        return np.sqrt(np.sum(Z * Z, axis=0))

    def network_value(self, XZ: np.ndarray, Z: np.ndarray) -> float:
        """Objective of the rebuilt network (any Z, feasible or not)."""
        return self.loss.value(self.relu_output(XZ), self.Y) + self.beta * float(self.group_norms(Z).sum())

    def convex_value(self, XZ: np.ndarray, Z: np.ndarray) -> float:
        return self.loss.value(self.output(XZ), self.Y) + self.beta * float(self.group_norms(Z).sum())


@dataclass
class _ALState:
    Z: np.ndarray
    Lam: np.ndarray  # (n, 2, P, K) multipliers >= 0
    rho: float
    L: float
    inner_tol: float | None = None
    iters: int = 0
    outer: int = 0
    history: list = field(default_factory=list)


def _fista_subproblem(prog: ConvexProgram, st: _ALState, *, tol: float, max_iter: int) -> int:
    r"""Minimize the augmented Lagrangian in Z by FISTA (backtracking, adaptive restart).

    Stops when the gradient-mapping norm :math:`L\|y - z^+\|` drops below ``tol`` or
    after ``max_iter`` iterations.  Returns the iterations used.
    """
    beta, rho, Lam = prog.beta, st.rho, st.Lam
    loss, Y = prog.loss, prog.Y

    def smooth(XZ: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        F = prog.output(XZ)
        Pi = np.maximum(Lam - rho * prog.constraint(XZ), 0.0)
        val = loss.value(F, Y) + 0.5 / rho * float(np.vdot(Pi, Pi))
        return val, F, Pi

    def grad(F: np.ndarray, Pi: np.ndarray) -> np.ndarray:
        H = prog.output_adjoint(loss.gradient(F, Y)) - prog.sg * Pi
        return prog.adjoint(H)

    def prox(W: np.ndarray, tau: float) -> np.ndarray:
        nrm = prog.group_norms(W)
        with np.errstate(divide="ignore", invalid="ignore"):
            shrink = np.where(nrm > tau, 1.0 - tau / np.where(nrm > 0, nrm, 1.0), 0.0)
        return W * shrink[None]

    Z = st.Z
    XZ = prog.xz(Z)
    fz, F, Pi = smooth(XZ)
    obj_z = fz + beta * float(prog.group_norms(Z).sum())
    Yv, XY, fy, Fy, Piy = Z, XZ, fz, F, Pi
    t = 1.0
    L = st.L
    it = 0
    while it < max_iter:
        it += 1
        g = grad(Fy, Piy)
        while True:
            Zn = prox(Yv - g / L, beta / L)
            XZn = prog.xz(Zn)
            fn, Fn, Pin = smooth(XZn)
            D = Zn - Yv
            # sufficient-decrease test of the quadratic upper model (relative slack of
            # 1e-12 absorbs rounding in f when the step is tiny)
            if fn <= fy + float(np.vdot(g, D)) + 0.5 * L * float(np.vdot(D, D)) + 1e-12 * abs(fy):
                break
            L *= 2.0
        obj_n = fn + beta * float(prog.group_norms(Zn).sum())
        gm = L * float(np.sqrt(np.vdot(D, D)))
        if obj_n > obj_z:  # adaptive restart (O'Donoghue & Candes): drop the momentum
            t = 1.0
            Yv, XY, fy, Fy, Piy = Z, XZ, fz, F, Pi
            if gm <= tol:
                break
            continue
        t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        mom = (t - 1.0) / t_new
        Yv = Zn + mom * (Zn - Z)
        XY = XZn + mom * (XZn - XZ)  # X is linear: no extra product
        Z, XZ, fz, F, Pi, obj_z = Zn, XZn, fn, Fn, Pin, obj_n
        fy, Fy, Piy = smooth(XY)
        t = t_new
        L *= 0.95  # let the step grow again when the local curvature is smaller
        if gm <= tol:
            break
    st.Z = Z
    st.L = L
    st.iters += it
    return it


@dataclass
class _Gap:
    primal: float
    lower: float
    c: float
    how: str

    @property
    def rel(self) -> float:
        return (self.primal - self.lower) / max(abs(self.primal), np.finfo(float).tiny)


def _gap(prog: ConvexProgram, Z: np.ndarray, XZ: np.ndarray, mu: np.ndarray | None, *, complete: bool) -> _Gap:
    """Network objective at Z and the lower bound of the (pattern-set) dual."""
    F = prog.relu_output(XZ)
    primal = prog.loss.value(F, prog.Y) + prog.beta * float(prog.group_norms(Z).sum())
    V = prog.loss.dual_point(F, prog.Y)
    mu_in = None if mu is None else np.moveaxis(mu, 0, 2)  # (n, 2, P, K) -> (2, P, n, K)
    c, how = relu_constraint_bound(prog.Xr, V, prog.patterns, complete=complete, mu=mu_in)
    tmax = np.inf if c <= 0 else prog.beta / c
    _, low = prog.loss.best_scale(V, prog.Y, tmax)
    return _Gap(primal, float(low), c, how)


def _lipschitz_estimate(prog: ConvexProgram, rho: float) -> float:
    r"""Upper estimate of the gradient's Lipschitz constant of the smooth AL part:
    :math:`L_\ell\|A\|^2 + \rho\|X\|^2` with
    :math:`\|A\|^2 = 2\lambda_{\max}(\sum_i D_iXX^TD_i)` (two signs per pattern)."""
    Xr = prog.Xr
    n = Xr.shape[0]
    M = (Xr @ Xr.T) * (prog.Dm @ prog.Dm.T)
    lam = float(np.linalg.eigvalsh(M)[-1]) if n <= 2000 else float(np.linalg.norm(Xr, 2) ** 2 * prog.Dm.shape[1])
    xnorm2 = float(np.linalg.norm(Xr, 2) ** 2)
    return max(_lipschitz(prog.loss) * 2.0 * lam + rho * xnorm2, np.finfo(float).tiny)


def _solve_program(prog: ConvexProgram, st: _ALState, *, tol: float, max_iter: int,
                   complete: bool, bar: Any = None) -> _Gap:
    r"""Augmented-Lagrangian rounds on ``prog`` from the warm start ``st`` until the
    relative duality gap over ``prog``'s patterns is at most ``tol``."""
    n = prog.Xr.shape[0]
    scale = prog.beta * np.sqrt(max(1, prog.Y.shape[1]))
    inner_tol = st.inner_tol if st.inner_tol is not None else 1e-2 * scale
    gap = None
    viol_prev = np.inf
    budget_end = st.iters + max_iter
    while st.iters < budget_end:
        used = _fista_subproblem(prog, st, tol=inner_tol, max_iter=budget_end - st.iters)
        if bar is not None:
            bar.update(used)
        st.outer += 1
        XZ = prog.xz(st.Z)
        C = prog.constraint(XZ)
        viol = float(np.sqrt(np.sum(np.minimum(C, 0.0) ** 2)))
        st.Lam = np.maximum(st.Lam - st.rho * C, 0.0)
        gap = _gap(prog, st.Z, XZ, st.Lam, complete=complete)
        st.history.append((st.iters, gap.primal, gap.lower, viol, st.rho))
        if gap.rel <= tol:
            break
        # inexact AL: tighten the subproblem tolerance geometrically; the floor is
        # the gradient-mapping size rounding allows (1e-13 of the dual scale beta)
        inner_tol = max(inner_tol * 0.3, 1e-13 * scale)
        if viol > 0.25 * viol_prev and viol > 1e-10 * np.sqrt(n) * scale:
            st.rho *= 2.0
            st.L += st.rho * float(np.linalg.norm(prog.Xr, 2) ** 2)
        viol_prev = viol
    st.inner_tol = inner_tol
    if gap is None:
        XZ = prog.xz(st.Z)
        gap = _gap(prog, st.Z, XZ, st.Lam, complete=complete)
    return gap


def _pattern_scores(Xr: np.ndarray, V: np.ndarray, pats: np.ndarray, beta: float, *,
                    max_new: int) -> tuple[float, np.ndarray]:
    r"""Exact dual-constraint maximum over ``pats`` and the most violating patterns.

    Evaluates the NNLS value of each pattern (both signs, every output) in decreasing
    order of the cheap bound :math:`\|X^TD_iv\|` (an upper bound, :math:`\mu = 0`), while
    a pattern could still beat the running maximum or exceed ``beta`` (until
    ``max_new`` violators are found).  Returns ``(c, violators)`` where ``c`` is the
    exact maximum over all patterns for scalar output (for K > 1 the per-output
    maximum; the caller combines outputs) and ``violators`` the indices of patterns
    with value > beta, most violating first.
    """
    n, K = V.shape
    Dm = pats.astype(float)
    cheap = np.zeros(len(pats))
    for k in range(K):
        cheap = np.maximum(cheap, np.linalg.norm(Dm @ (V[:, [k]] * Xr), axis=1))
    order = np.argsort(cheap)[::-1]
    best = 0.0
    found: list[tuple[float, int]] = []
    for p in order:
        bound = cheap[p]
        if bound <= best and (bound <= beta or len(found) >= max_new):
            break
        val = 0.0
        for k in range(K):
            for s in (1.0, -1.0):
                val = max(val, _cone_support(Xr, Dm[p], s * V[:, k]))
        val = min(val, bound)
        best = max(best, val)
        if val > beta * (1.0 + 1e-12):  # above beta beyond rounding of the NNLS residual
            found.append((val, int(p)))
    found.sort(reverse=True)
    return best, np.array([p for _, p in found[:max_new]], dtype=np.intp)


def _loss_hessian_times(loss: Loss, F: np.ndarray, Y: np.ndarray, B: np.ndarray) -> np.ndarray | None:
    r""":math:`\nabla^2\ell(F)\,B` for ``B`` of shape (n*K, Q) (rows ordered ``i*K + k``);
    ``None`` for losses without a known Hessian."""
    n, K = F.shape
    if isinstance(loss, SquaredLoss):
        return B
    if isinstance(loss, LogisticLoss):
        from scipy.special import expit

        s = expit(Y * F).reshape(-1)
        return B * (s * (1.0 - s))[:, None]
    if isinstance(loss, CrossEntropyLoss):
        from scipy.special import softmax

        Pm = softmax(F, axis=1)[:, :, None]
        B3 = B.reshape(n, K, -1)
        return (Pm * B3 - Pm * np.sum(Pm * B3, axis=1, keepdims=True)).reshape(n * K, -1)
    return None


def _null_space(A: np.ndarray, r: int) -> np.ndarray:
    """Orthonormal basis (r, q) of the null space of ``A`` (m, r); rank by the LAPACK rule."""
    if A.shape[0] == 0:
        return np.eye(r)
    _, s, Vt = np.linalg.svd(A, full_matrices=True)
    tol = max(A.shape) * _EPS * (s[0] if s.size else 0.0)
    rank = int(np.sum(s > tol))
    return Vt[rank:].T.copy()


def _polish(prog: ConvexProgram, Z: np.ndarray, *, max_rounds: int = 20, max_newton: int = 60,
            max_dim: int = 4000) -> np.ndarray | None:
    r"""Active-set Newton refinement of an approximate solution ``Z``.

    The support (non-zero groups) and, for each group, the constraint rows at zero
    (:math:`J_g`: :math:`(G_gz_g)_j = 0`) are read off ``Z``.  On that face the problem is
    smooth in the null-space coordinates :math:`z_g = N_gy_g`
    (:math:`G_{g,J_g}N_g = 0`):

    .. math:: \min_y\ \ell\Big(\sum_g s_gD_gXN_gy_g\Big) + \beta\sum_g\|y_g\|,

    solved by damped Newton.  Then the face is corrected as in an active-set method:
    a row that became negative joins :math:`J_g`; a row whose KKT multiplier
    (:math:`G_{g,J}^T\lambda = s_gX^TD_g\nabla\ell + \beta z_g/\|z_g\|`) is negative leaves
    it; a group whose norm vanishes is dropped.  Returns the refined ``Z`` (exactly on
    the face, to rounding) or ``None`` when the Hessian is unavailable, the problem is
    too large (``max_dim`` free coordinates) or the active set does not settle.
    Optimality is *not* assumed: the caller verifies it with the duality gap.
    """
    loss, Y, beta = prog.loss, prog.Y, prog.beta
    Xr = prog.Xr
    n, r = Xr.shape
    K = Y.shape[1]
    nrm = prog.group_norms(Z)
    total = float(nrm.sum())
    if total == 0.0:
        return None
    # groups below 1e-9 of the total norm are at the AL's rounding level: start without them
    idx = [tuple(g) for g in np.argwhere(nrm > 1e-9 * total)]
    xn = np.linalg.norm(Xr, axis=1)
    XZ = prog.xz(Z)
    C = prog.constraint(XZ)
    # a row is at zero when its value is below 1e-6 of ||x_j|| ||z_g|| (the AL's
    # feasibility level); mistakes are corrected by the active-set rounds below
    J = {g: (C[:, g[0], g[1], g[2]] <= 1e-6 * xn * nrm[g]) & (xn > 0) for g in idx}
    z = {g: Z[:, g[0], g[1], g[2]].copy() for g in idx}
    Zout = None
    for _ in range(max_rounds):
        Ns, cols = {}, {}
        for g in list(idx):
            p = g[1]
            G = (prog.sg[:, 0, p, 0])[:, None] * Xr
            N = _null_space(G[J[g]], r)
            if N.shape[1] == 0:
                idx.remove(g)
                continue
            Ns[g] = N
        if not idx:
            return None
        Q = sum(Ns[g].shape[1] for g in idx)
        if Q > max_dim:
            return None
        B = np.zeros((n * K, Q))
        off = 0
        sl = {}
        for g in idx:
            s, p, k = g
            sign = 1.0 if s == 0 else -1.0
            blk = sign * prog.Dm[:, p][:, None] * (Xr @ Ns[g])  # (n, q)
            q = blk.shape[1]
            B[k::K, off:off + q] = blk
            sl[g] = slice(off, off + q)
            off += q
        yv = np.concatenate([Ns[g].T @ z[g] for g in idx])
        for g in idx:  # a group with no mass on its face restarts from the face's centre
            if np.linalg.norm(yv[sl[g]]) == 0.0:
                yv[sl[g]] = Ns[g].T @ (Ns[g] @ np.ones(Ns[g].shape[1])) * 1e-8 + 1e-12

        def phi(yy: np.ndarray) -> tuple[float, np.ndarray]:
            F = (B @ yy).reshape(n, K)
            return loss.value(F, Y) + beta * sum(np.linalg.norm(yy[sl[g]]) for g in idx), F

        val, F = phi(yv)
        ok = False
        for _it in range(max_newton):
            Gl = loss.gradient(F, Y).reshape(-1)
            grad = B.T @ Gl
            HB = _loss_hessian_times(loss, F, Y, B)
            if HB is None:
                return None
            H = B.T @ HB
            for g in idx:
                yg = yv[sl[g]]
                ng = float(np.linalg.norm(yg))
                u = yg / ng
                grad[sl[g]] += beta * u
                H[sl[g], sl[g]] += beta * (np.eye(len(yg)) - np.outer(u, u)) / ng
            # Levenberg shift of 1e-14 of the scale keeps Cholesky defined when the
            # atoms are linearly dependent (non-unique optimum); it does not move the
            # minimizer beyond rounding
            shift = 1e-14 * max(1.0, float(np.trace(H)) / max(1, Q))
            try:
                Lc = np.linalg.cholesky(H + shift * np.eye(Q))
                step = -np.linalg.solve(Lc.T, np.linalg.solve(Lc, grad))
            except np.linalg.LinAlgError:
                step = -np.linalg.lstsq(H, grad, rcond=None)[0]
            dec = -float(grad @ step)  # Newton decrement squared
            # converged when the predicted decrease is at rounding level of the objective
            if dec <= 1e-15 * max(abs(val), 1e-300) * 10:
                ok = True
                break
            t = 1.0
            while t > 1e-12:
                ynew = yv + t * step
                vnew, Fnew = phi(ynew)
                if vnew <= val - 1e-4 * t * dec:
                    break
                t *= 0.5
            else:
                ok = True  # no decrease possible at working precision
                break
            yv, val, F = ynew, vnew, Fnew
        if not ok:
            return None
        # back to full coordinates; update the face
        changed = False
        Gl = loss.gradient(F, Y)
        for g in list(idx):
            yg = yv[sl[g]]
            ng = float(np.linalg.norm(yg))
            s, p, k = g
            if ng <= 1e-12 * total:
                idx.remove(g)
                changed = True
                continue
            zg = Ns[g] @ yg
            z[g] = zg
            sgn = prog.sg[:, 0, p, 0]
            cg = sgn * (Xr @ zg)
            # rows that became negative beyond rounding (64 eps of the row scale)
            bad = (cg < -64 * _EPS * xn * ng) & ~J[g]
            if np.any(bad):
                J[g][np.argmin(np.where(bad, cg / np.maximum(xn, 1e-300), np.inf))] = True
                changed = True
                continue
            rows = np.flatnonzero(J[g])
            if len(rows):
                sign = 1.0 if s == 0 else -1.0
                rhs = sign * Xr.T @ (prog.Dm[:, p] * Gl[:, k]) + beta * zg / ng
                A = (sgn[rows, None] * Xr[rows]).T  # (r, |J|)
                lam = np.linalg.lstsq(A, rhs, rcond=None)[0]
                # multipliers below -1e-9 beta are negative beyond the accuracy of lstsq
                if np.any(lam < -1e-9 * beta * max(1.0, float(np.max(xn)))):
                    J[g][rows[np.argmin(lam)]] = False
                    changed = True
        if not changed:
            Zout = np.zeros_like(Z)
            for g in idx:
                Zout[:, g[0], g[1], g[2]] = z[g]
            return Zout
    return Zout


def _solve_working_set(Xr: np.ndarray, Y: np.ndarray, pats: np.ndarray, loss: Loss, beta: float, *,
                       tol: float, max_iter: int, rho: float | None, complete: bool,
                       progress: bool, polish: bool) -> tuple[ConvexProgram, _ALState, _Gap, dict]:
    r"""Working-set (column generation) solution of the program over ``pats``.

    The program is solved over a small set :math:`W` of patterns (the others fixed at
    zero) by the augmented Lagrangian and refined by :func:`_polish`; then the dual
    point :math:`v` of that solution is checked against *every* pattern (exact NNLS
    values).  Patterns whose value exceeds :math:`\beta` (the optimality conditions of
    their zero groups fail) join :math:`W`.  The loop ends when the duality gap over
    all patterns is at most ``tol`` relative, or the iteration budget is spent.
    """
    n, K = Y.shape
    P = len(pats)
    V0 = loss.dual_point(np.zeros_like(Y), Y)
    _, first = _pattern_scores(Xr, V0, pats, beta, max_new=max(10, min(P, 2 * n)))
    if len(first) == 0:  # the zero network is optimal for the full program
        first = np.argsort(-np.linalg.norm(pats.astype(float) @ (V0[:, [0]] * Xr), axis=1))[:1]
    W = np.sort(first)
    r = Xr.shape[1]
    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=max_iter, desc="convex program", leave=False)
        except ImportError:  # pragma: no cover
            bar = None
    rounds = polished = 0
    gap = None
    st = None
    # the AL works to a moderate gap; polishing then reaches rounding level.  1e-4 is
    # where the AL has identified the support in our tests; it shrinks when polishing fails
    al_tol = max(tol, 1e-4)
    try:
        while True:
            rounds += 1
            prog = ConvexProgram(Xr, Y, pats[W], loss, beta)
            if st is None:
                rho0 = rho if rho is not None else _default_rho(prog)
                st = _ALState(Z=np.zeros(prog.shape), Lam=np.zeros((n,) + prog.shape[1:]), rho=rho0,
                              L=_lipschitz_estimate(prog, rho0))
            remaining = max_iter - st.iters
            if remaining <= 0:
                break
            _solve_program(prog, st, tol=al_tol, max_iter=remaining, complete=False, bar=bar)
            Zc = st.Z
            if polish:
                Zp = _polish(prog, st.Z)
                if Zp is not None:
                    Zc = Zp
            XZ = prog.xz(Zc)
            F = prog.relu_output(XZ)
            V = loss.dual_point(F, Y)
            primal = loss.value(F, Y) + beta * float(prog.group_norms(Zc).sum())
            c_all, new = _pattern_scores(Xr, V, pats, beta, max_new=max(10, len(W)))
            new = np.setdiff1d(new, W)
            if K == 1:
                tmax = np.inf if c_all <= 0 else beta / c_all
                low = float(loss.best_scale(V, Y, tmax)[1])
                cand = _Gap(primal, low, c_all, "exact (NNLS)")
            else:
                full = ConvexProgram(Xr, Y, pats, loss, beta)
                Zfull = np.zeros(full.shape)
                Zfull[:, :, W, :] = Zc
                cand = _gap(full, Zfull, full.xz(Zfull), None, complete=False)
            if Zc is not st.Z and (gap is None or cand.primal <= _Gap.__dict__.get("x", np.inf)):
                pass
            use_polished = Zc is not st.Z
            if use_polished:
                polished += 1
                st.Z = Zc
            gap = cand
            if bar is not None:
                bar.set_postfix(gap=f"{gap.rel:.2e}", patterns=len(W))
            if gap.rel <= tol:
                break
            if len(new) == 0:
                al_tol = max(al_tol * 0.01, 1e-15)
                continue
            # grow W: warm start with zeros for the new patterns
            W_new = np.sort(np.concatenate([W, new]))
            pos = np.searchsorted(W_new, W)
            Z = np.zeros((r, 2, len(W_new), K))
            Z[:, :, pos, :] = st.Z
            Lam = np.zeros((n, 2, len(W_new), K))
            Lam[:, :, pos, :] = st.Lam
            st.Z, st.Lam = Z, Lam
            W = W_new
            prog_new = ConvexProgram(Xr, Y, pats[W], loss, beta)
            st.L = max(st.L, _lipschitz_estimate(prog_new, st.rho))
    finally:
        if bar is not None:
            bar.close()
    prog = ConvexProgram(Xr, Y, pats[W], loss, beta)
    if gap is None:
        gap = _gap(prog, st.Z, prog.xz(st.Z), None, complete=False)
    return prog, st, gap, {"working_set_rounds": rounds, "working_set": int(len(W)), "polished": polished}


def _default_rho(prog: ConvexProgram) -> float:
    r"""Initial AL penalty: the loss curvature per unit of :math:`\|X\|^2`, times the
    number of patterns sharing a row (so the constraint and loss terms are balanced)."""
    Xr = prog.Xr
    xnorm2 = float(np.linalg.norm(Xr, 2) ** 2)
    lip = _lipschitz_estimate(prog, 0.0)
    return max(lip / max(xnorm2, np.finfo(float).tiny), _lipschitz(prog.loss))


# ---------------------------------------------------------------------------- rebuild
def network_from_atoms(
    U: np.ndarray, A: np.ndarray, *, bias: bool, scalar: bool
) -> Network:
    r"""Network with hidden weights ``U`` (d', m) and output weights ``A`` (m, K).

    With ``bias`` the last row of ``U`` is the hidden bias (the ones column of the
    augmented data).  An empty network (m = 0) becomes one zero neuron.
    """
    d1, m = U.shape
    K = A.shape[1]
    if m == 0:
        U, A, m = np.zeros((d1, 1)), np.zeros((1, K)), 1
    if bias:
        W1, b = U[:-1], U[-1]
        return Network([[W1, A]], "relu", biases=[[b]], scalar_output=scalar)
    return Network([[U, A]], "relu", scalar_output=scalar)


def prune_neurons(Xa: np.ndarray, U: np.ndarray, A: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    r"""Reduce a two-layer network to at most :math:`nK + 1` neurons without changing
    its output or its (balanced) penalty (Caratheodory).

    Steps: (1) merge neurons with the same direction :math:`u/\|u\|` (the merged output
    weight :math:`\sum c_j\alpha_j` has norm :math:`\le\sum c_j\|\alpha_j\|`, so the penalty
    can only drop); (2) with atoms :math:`a_j = \operatorname{vec}((X\bar u_j)_+\bar\alpha_j^T)`
    and weights :math:`c_j = \|u_j\|\|\alpha_j\| > 0`, while the vectors
    :math:`(a_j, 1)` are linearly dependent take :math:`\delta` in their null space
    and move :math:`c \leftarrow c - \tau\delta` until a weight reaches zero: the output
    :math:`\sum c_ja_j` and the penalty :math:`\beta\sum c_j` are unchanged.

    Returns balanced ``(U, A, info)``.
    """
    n = Xa.shape[0]
    K = A.shape[1]
    un = np.linalg.norm(U, axis=0)
    an = np.linalg.norm(A, axis=1)
    keep = (un > 0) & (an > 0)
    U, A, un, an = U[:, keep], A[keep], un[keep], an[keep]
    m0 = U.shape[1]
    info: dict[str, Any] = {"neurons_in": int(m0)}
    if m0 == 0:
        info["neurons_out"] = 0
        return U, A, info
    Ubar = U / un
    C = A * un[:, None]  # output weights of the unit-direction neurons
    # (1) merge equal directions: cosine within 64 eps of 1 (rounding of unit vectors)
    merged_dirs: list[np.ndarray] = []
    merged_C: list[np.ndarray] = []
    used = np.zeros(m0, dtype=bool)
    G = Ubar.T @ Ubar
    for j in range(m0):
        if used[j]:
            continue
        same = (~used) & (G[j] >= 1.0 - 64 * _EPS)
        used |= same
        merged_dirs.append(Ubar[:, j])
        merged_C.append(C[same].sum(axis=0))
    Ubar = np.stack(merged_dirs, axis=1)
    C = np.stack(merged_C)
    c = np.linalg.norm(C, axis=1)
    nz = c > 0
    Ubar, C, c = Ubar[:, nz], C[nz], c[nz]
    Abar = C / c[:, None]  # unit output directions
    info["merged"] = int(m0 - len(c))
    # (2) Caratheodory reduction
    H = np.maximum(Xa @ Ubar, 0.0)  # (n, m)
    atoms = (H[:, None, :] * Abar.T[None, :, :]).reshape(n * K, -1)
    limit = n * K + 1
    steps = 0
    while len(c) > limit:
        Mx = np.vstack([atoms, np.ones((1, len(c)))])
        _, _, Vt = np.linalg.svd(Mx, full_matrices=True)
        delta = Vt[-1]
        if not np.any(delta > 0):
            delta = -delta
        pos = delta > 0
        tau = float(np.min(c[pos] / delta[pos]))
        c = c - tau * delta
        # the blocking weight is exactly zero; entries below rounding of c are zero too
        drop = c <= 16 * _EPS * np.max(np.abs(c))
        drop[np.argmin(np.where(pos, c, np.inf))] = True
        c, Ubar, Abar, atoms = c[~drop], Ubar[:, ~drop], Abar[~drop], atoms[:, ~drop]
        steps += 1
    info["caratheodory_steps"] = steps
    info["neurons_out"] = int(len(c))
    s = np.sqrt(c)
    return Ubar * s[None, :], Abar * s[:, None], info


# ---------------------------------------------------------------------------- public
def _choose_patterns(Xa: np.ndarray, option: Any, n_patterns: int, max_patterns: int,
                     rng: Any) -> tuple[np.ndarray, bool, str]:
    n = Xa.shape[0]
    rs = row_space(Xa)
    bound = count_upper_bound(n, rs.rank)
    if isinstance(option, str):
        if option not in ("auto", "exact", "sample"):
            raise ValueError(f"`patterns` must be 'auto', 'exact', 'sample' or a boolean array (P, n); got {option!r}")
        if option == "exact" or (option == "auto" and bound <= max_patterns):
            return enumerate_patterns(Xa), True, "exact enumeration"
        return sample_patterns(Xa, n_patterns, rng), False, f"{n_patterns} sampled"
    arr = np.asarray(option)
    if arr.ndim != 2 or arr.shape[1] != n:
        raise ValueError(f"`patterns` must be a boolean array of shape (P, {n}), got shape {arr.shape}")
    if arr.dtype != bool:
        if not np.all((arr == 0) | (arr == 1)):
            raise ValueError("`patterns` must contain only 0/1 or booleans")
        arr = arr.astype(bool)
    return unique_patterns(arr), False, "user-supplied"


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
    prunes it to at most :math:`n + 1` neurons and certifies it.

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
        Any smooth loss (squared, logistic, cross_entropy or a user loss with a
        gradient); the hinge loss is not supported.
    rtol : float
        Target relative duality gap.
    bias : bool
        Append a column of ones to ``X``: the hidden biases are the last entry of each
        hidden weight vector and are **penalized** like the weights (evaluate with
        ``deepdual.objective(..., penalize_biases=True)``).  No output bias.
    **options
        patterns : {"auto", "exact", "sample"} or bool array (P, n), default "auto"
            ``"auto"`` enumerates all patterns when the region-count bound is at most
            ``max_patterns``, else samples ``n_patterns``.
        n_patterns : int, default 100
        max_patterns : int, default 2000
        rng : None, int or numpy.random.Generator
            Source of sampled patterns.  ``None`` draws fresh entropy; the seed used is
            stored in ``info["rng_seed"]`` so the run can be repeated.
        max_iter : int, default 20000
            Budget of FISTA iterations over all augmented-Lagrangian rounds.
        tol : float, default ``rtol / 2``
            Stop when the relative duality gap of the program over the pattern set is
            below ``tol`` (half of ``rtol`` leaves room for the pruning step).
        rho : float, optional
            Initial augmented-Lagrangian penalty (default: the loss's curvature).
        progress : bool, default False
            Show a tqdm progress bar.

    Returns
    -------
    Solution
        ``lower_bound`` is proven for all networks (exact dual constraint when the
        patterns were enumerated, else a spectral upper bound on it);
        ``info["restricted_lower_bound"]`` is the bound for the pattern set only.

    References
    ----------
    Pilanci & Ergen (ICML 2020); Mishkin, Sahiner & Pilanci (ICML 2022).
    """
    check_options(options, CONVEX_OPTIONS, "solve(..., method='convex')")
    if depth != 2:
        raise ValueError(f"`depth` must be 2 for the convex program (two-layer networks), got {depth}")
    if isinstance(loss, HingeLoss):
        raise ValueError("`loss`='hinge' is not supported by the convex solver (non-smooth); "
                         "use 'squared', 'logistic' or 'cross_entropy'")
    n_patterns = options.get("n_patterns", DEFAULT_N_PATTERNS)
    if isinstance(n_patterns, bool) or not isinstance(n_patterns, numbers.Integral) or n_patterns < 1:
        raise ValueError(f"`n_patterns` must be an integer >= 1, got {n_patterns!r}")
    max_patterns = options.get("max_patterns", DEFAULT_MAX_PATTERNS)
    if isinstance(max_patterns, bool) or not isinstance(max_patterns, numbers.Integral) or max_patterns < 0:
        raise ValueError(f"`max_patterns` must be an integer >= 0, got {max_patterns!r}")
    max_iter = options.get("max_iter", 20000)
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise ValueError(f"`max_iter` must be an integer >= 1, got {max_iter!r}")
    tol = check_positive(options.get("tol", 0.5 * rtol), "tol")
    rho = options.get("rho")
    if rho is not None:
        rho = check_positive(rho, "rho")
    progress = bool(options.get("progress", False))
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
    pats, complete, how = _choose_patterns(Xa, options.get("patterns", "auto"), int(n_patterns),
                                           int(max_patterns), rng)
    ws_info: dict[str, Any] = {}
    if rs.rank == 0 or len(pats) == 0:
        prog = ConvexProgram(rs.Xr, Y, pats, loss, beta)
        st = _ALState(Z=np.zeros(prog.shape), Lam=np.zeros((n,) + prog.shape[1:]), rho=1.0, L=1.0)
        restricted = _gap(prog, st.Z, prog.xz(st.Z), None, complete=complete)
    else:
        prog, st, restricted, ws_info = _solve_working_set(
            rs.Xr, Y, pats, loss, beta, tol=tol, max_iter=int(max_iter), rho=rho, complete=complete,
            progress=progress, polish=bool(options.get("polish", True)))
    t_solve = time.perf_counter() - t0

    XZ = prog.xz(st.Z)
    convex_value = prog.convex_value(XZ, st.Z)
    viol = float(np.max(np.maximum(-prog.constraint(XZ), 0.0), initial=0.0))
    # rebuild: atom z (reduced coords) -> u = V z / sqrt|z|, alpha = +-sqrt|z| e_k
    Zf = st.Z.reshape(rs.rank, 2, -1, K)
    norms = prog.group_norms(st.Z)  # (2, P, K)
    idx = np.argwhere(norms > 0)
    U = np.zeros((Xa.shape[1], len(idx)))
    A = np.zeros((len(idx), K))
    for j, (s, p, k) in enumerate(idx):
        z = Zf[:, s, p, k]
        nz = norms[s, p, k]
        U[:, j] = rs.V @ z / np.sqrt(nz)
        A[j, k] = (1.0 if s == 0 else -1.0) * np.sqrt(nz)
    U, A, prune_info = prune_neurons(Xa, U, A)
    net = network_from_atoms(U, A, bias=bias, scalar=scalar)
    value = objective(net, X, Y, beta=beta, loss=loss, penalize_biases=bias)

    # certificate for all networks (proven): dual point from the network's residual
    F = net.forward(X)
    V = loss.dual_point(F, Y)
    if complete:
        if K == 1:
            c = _pattern_scores(rs.Xr, V, pats, beta, max_new=0)[0]
            c_how = "exact (all patterns, NNLS)"
        else:
            c, c_how = relu_constraint_bound(rs.Xr, V, pats, complete=True)
    elif K == 1:
        c, c_how = scalar_constraint_upper_bound(rs.Xr, V[:, 0]), "upper bound: spectral norm on supports"
    else:
        per = [scalar_constraint_upper_bound(rs.Xr, V[:, k]) for k in range(K)]
        c = min(float(np.linalg.norm(per)), _spectral_norm(V) * _spectral_norm(rs.Xr))
        c_how = "upper bound: spectral norms"
    tmax = np.inf if c <= 0 else beta / c
    t_dual, lower = loss.best_scale(V, Y, tmax)
    lower = float(min(lower, value)) if np.isfinite(lower) else -np.inf

    info: dict[str, Any] = {
        "patterns": int(len(pats)),
        "patterns_complete": bool(complete),
        "patterns_how": how,
        "pattern_count_bound": int(count_upper_bound(n, rs.rank)),
        "rank": int(rs.rank),
        "iterations": int(st.iters),
        "outer_iterations": int(st.outer),
        "rho": float(st.rho),
        "convex_objective": float(convex_value),
        "max_violation": viol,
        "restricted_objective": float(restricted.primal),
        "restricted_lower_bound": float(restricted.lower),
        "restricted_relative_gap": float(restricted.rel),
        "dual_constraint": float(c),
        "dual_constraint_how": c_how,
        "dual_scale": float(t_dual),
        "penalize_biases": bool(bias),
        "time_s": float(t_solve),
        **ws_info,
        **prune_info,
    }
    if rng_seed is not None:
        info["rng_seed"] = rng_seed
    notes = []
    if not complete:
        notes.append(
            f"patterns {how} (not all {info['pattern_count_bound']} possible): the network is optimal "
            "only over neurons with these patterns, an upper bound on the global optimum; "
            "lower_bound uses a proven upper bound on the dual constraint"
        )
    if K > 1:
        notes.append("vector output: solved with one output per neuron (path penalty with ||alpha||_1), "
                     "an upper bound for weight decay; see docs/convex_program.md")
    if bias:
        notes.append("hidden biases are penalized (use objective(..., penalize_biases=True))")
    if restricted.rel > tol:
        notes.append(f"stopped at max_iter with relative gap {restricted.rel:.2e} over the pattern set")
    if notes:
        info["note"] = "; ".join(notes)
    method = "convex program (Pilanci & Ergen 2020)" + ("" if complete else ", sampled patterns")
    return Solution(network=net, objective=float(value), lower_bound=float(lower), method=method,
                    rtol=rtol, dual=t_dual * V, info=info)
