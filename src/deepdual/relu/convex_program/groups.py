r"""The variables of the convex program over a working set of activation patterns, and
the loss-Hessian helpers shared by its solvers.

Group :math:`g = (s, p, k)` (sign, pattern, output) carries :math:`z_g \in \mathbb{R}^r`
in row-space coordinates; :class:`Groups` applies the linear maps
:math:`z \mapsto F = \sum_g s_gD_gXz_ge_{k_g}^T`, its adjoint, the cone constraints
:math:`(2D_g - I)Xz_g \ge 0` and the rebuilt network's output
(``docs/convex_program.md`` §2 and §5).  Also: the curvature, Hessian products and
per-sample Hessian factors of the smooth losses (Newton systems, §6) and a strictly
interior direction of a pattern's cell (interior-point starts, §6).

Part of :mod:`deepdual.relu.convex_program.solver` (the entry point, which re-exports the names).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog
from scipy.special import expit, softmax

from ...losses import CrossEntropyLoss, LogisticLoss, Loss, SquaredLoss

EPS = np.finfo(float).eps
#: a cell counts as having a usable interior when some unit direction is inside it by
#: more than this margin on every (normalized) constraint row: HiGHS's feasibility
#: tolerance is 1e-7 on O(1) data, and thinner cells (nearly rank-one data: margins
#: 1e-13-1e-11) give interior-point starts with multipliers mu / s ~ 1e11 mu that the
#: primal-dual method cannot recover from (docs/convex_program.md §6)
INTERIOR_MARGIN = 1e-9


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


def loss_curvature(loss: Loss) -> float:
    """Lipschitz constant of the loss gradient (backtracking corrects a wrong guess)."""
    if isinstance(loss, LogisticLoss):
        return 0.25  # sigma' <= 1/4
    if isinstance(loss, CrossEntropyLoss):
        return 0.5  # ||diag(p) - p p^T||_2 <= 1/2
    return 1.0


def loss_hessian_times(loss: Loss, F: np.ndarray, Y: np.ndarray, B: np.ndarray) -> np.ndarray | None:
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


def loss_hessian_factor(loss: Loss, F: np.ndarray, Y: np.ndarray) -> np.ndarray:
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


def has_hessian(loss: Loss) -> bool:
    return isinstance(loss, (SquaredLoss, LogisticLoss, CrossEntropyLoss))


def interior_direction(Xr: np.ndarray, d: np.ndarray) -> np.ndarray | None:
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
    if res.status != 0 or -res.fun <= INTERIOR_MARGIN:
        return None
    z = res.x[:r]
    if not np.all(G @ z > 0):
        return None
    return z / np.linalg.norm(z)
