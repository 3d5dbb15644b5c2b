r"""The two-layer network rebuilt from the convex program's solution
(``docs/convex_program.md`` §2, §5 and §6).

:func:`network_from_atoms` builds the :class:`~deepdual.Network` from hidden and output
weights; :func:`prune_neurons` reduces it to at most :math:`nK + 1` neurons without changing
its output or raising :math:`\sum_j\|u_j\|\|\alpha_j\|` (merging equal directions, then
Carathéodory); :func:`polish_network` is the local descent (L-BFGS) on the weight-decay
objective used when the program is only an upper bound.

Part of :mod:`deepdual.relu.convex_program.solver` (the entry point, which re-exports the names).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._threads import SingleThreadedBLAS as _SingleThreadedBLAS
from ...blocks import BLOCK_ENTRIES
from ...losses import Loss
from ...network import Network
from .groups import EPS


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

    # rows in blocks of BLOCK_ENTRIES hidden activations: memory linear in n (the loss is a
    # sum over samples, so value and gradient add up block by block)
    step = max(1, BLOCK_ENTRIES // max(1, m))

    def fg(x: np.ndarray) -> tuple[float, np.ndarray]:
        Uc, Ac = x[:d1 * m].reshape(d1, m), x[d1 * m:].reshape(m, K)
        f = 0.5 * beta * (float(np.vdot(Uc, Uc)) + float(np.vdot(Ac, Ac)))
        gA, gU = beta * Ac, beta * Uc
        for a in range(0, Xa.shape[0], step):
            Xb = Xa[a:a + step]
            Z = Xb @ Uc
            H = np.maximum(Z, 0.0)
            F = H @ Ac
            G = loss.gradient(F, Y[a:a + step])
            f += loss.value(F, Y[a:a + step])
            gA = gA + H.T @ G
            gU = gU + Xb.T @ ((G @ Ac.T) * (Z > 0))
        return f, np.concatenate([gU.ravel(), gA.ravel()])

    x0 = np.concatenate([U.ravel(), A.ravel()])
    with _SingleThreadedBLAS():  # L-BFGS-B's small BLAS calls: ~30x slower with threads
        res = minimize(fg, x0, jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    x = res.x if res.fun <= fg(x0)[0] else x0
    return x[:d1 * m].reshape(d1, m), x[d1 * m:].reshape(m, K)


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
        same = (~used) & (np.max(np.abs(Ubar - Ubar[:, [j]]), axis=0) <= 64 * EPS)
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
    limit = n * K + 1
    # the (nK, m) atoms are needed only when there are more than nK + 1 of them (never
    # for large n: no (n, m) array is formed then)
    atoms = None
    if len(c) > limit:
        H = np.maximum(Xa @ Ubar, 0.0)
        atoms = (H[:, None, :] * Abar.T[None, :, :]).reshape(n * K, -1)
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
        alive = (w > 16 * EPS * float(np.max(np.abs(w)))) & ~gone  # zero up to rounding
        cols, w = cols[alive], w[alive]
    sel = cols
    c, Ubar, Abar = w, Ubar[:, sel], Abar[sel]
    info["caratheodory_steps"] = steps
    info["neurons_out"] = int(len(c))
    s = np.sqrt(c)
    return Ubar * s[None, :], Abar * s[:, None], info
