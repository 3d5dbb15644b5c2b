r"""The two-layer network rebuilt from the convex program's solution
(``docs/convex_program.md`` §2, §5 and §6).

:func:`network_from_atoms` builds the :class:`~deepdual.Network` from hidden and output
weights; :func:`prune_neurons` reduces it to at most :math:`nK + 1` neurons without changing
its output or raising :math:`\sum_j\|u_j\|\|\alpha_j\|` (merging equal directions, then
Carathéodory); :func:`polish_network` is the local descent (L-BFGS) on the weight-decay
objective (value and gradient: :func:`weight_decay_objective`) used when the program is only
an upper bound.

Part of :mod:`deepdual.relu.convex_program.solver` (the entry point, which re-exports the names).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..._threads import SingleThreadedBLAS as _SingleThreadedBLAS
from ...blocks import BLOCK_ENTRIES, block_entries, relu_layer_output
from ...losses import Loss
from ...network import Network
from .groups import EPS


#: the local polish's iteration budget: at least POLISH_MIN_ITER L-BFGS iterations, more
#: while they cost at most POLISH_WORK multiply-adds (n d m per gradient), at most
#: POLISH_MAX_ITER; it stops earlier when the objective fell by less than POLISH_PROGRESS_RTOL
#: (relative) over the last POLISH_WINDOW iterations.  Measured (docs/performance.md §8,
#: planted data, 100 sampled patterns, width 200): 500 iterations left the polish far from
#: its local minimum at n = 10^3, d = 10 (39.7; 37.5 after 2000) and from the exact sampled
#: optimum at n = 10^4, d = 20 (12 341; 412.9 after 3000)
POLISH_MIN_ITER = 500
POLISH_MAX_ITER = 3000
POLISH_WORK = 1.5e11
POLISH_WINDOW = 100
POLISH_PROGRESS_RTOL = 1e-4


def polish_budget(n: int, d1: int, m: int) -> int:
    r"""Iterations of the local polish of a width-``m`` network on ``n`` samples of dimension
    ``d1``: :math:`\min(\text{POLISH\_MAX\_ITER}, \max(\text{POLISH\_MIN\_ITER},
    \text{POLISH\_WORK}/(n d_1 m)))`."""
    work = max(1, n) * max(1, d1) * max(1, m)
    return int(min(POLISH_MAX_ITER, max(POLISH_MIN_ITER, POLISH_WORK // work)))


def weight_decay_objective(Xa: np.ndarray, Y: np.ndarray, loss: Loss, beta: float, d1: int,
                           m: int) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    r"""Value and gradient of :math:`\ell((X_aU)_+A, Y) + \frac\beta2(\|U\|_F^2 + \|A\|_F^2)` as
    a function of ``x = concat(U.ravel(), A.ravel())`` (``U`` (d1, m), ``A`` (m, K)), the
    objective of the local polish (:func:`polish_network`).

    The gradient is that of the network where it is differentiable:
    :math:`\nabla_A = H^TG + \beta A`, :math:`\nabla_U = X_a^T((GA^T)\circ1[X_aU > 0]) + \beta U`
    with :math:`H = (X_aU)_+` and :math:`G = \nabla\ell(HA)`.  Rows are taken in blocks
    scaled to the data (:func:`deepdual.blocks.block_entries`): memory linear in n, the loss
    being a sum over samples; the three (rows, m) block temporaries are allocated once for
    all evaluations (the same arithmetic as fresh arrays, ~10 % of an evaluation at
    n = 3·10⁴, d = 50, m = 200; docs/performance.md §8).
    """
    n, K = Xa.shape[0], Y.shape[1]
    step = max(1, block_entries(n, d1) // max(1, m))
    rows = min(step, n)
    Zbuf, Hbuf, Bbuf = np.empty((rows, m)), np.empty((rows, m)), np.empty((rows, m), dtype=bool)

    def value_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        Uc, Ac = x[:d1 * m].reshape(d1, m), x[d1 * m:].reshape(m, K)
        f = 0.5 * beta * (float(np.vdot(Uc, Uc)) + float(np.vdot(Ac, Ac)))
        g = np.empty(d1 * m + m * K)  # the gradient, (U, A) flattened, filled in place
        gU, gA = g[:d1 * m].reshape(d1, m), g[d1 * m:].reshape(m, K)
        np.multiply(Uc, beta, out=gU)
        np.multiply(Ac, beta, out=gA)
        AcT = Ac.T
        for a in range(0, n, step):
            Xb, Yb = Xa[a:a + step], Y[a:a + step]
            b = Xb.shape[0]
            Z, H, B = Zbuf[:b], Hbuf[:b], Bbuf[:b]
            np.matmul(Xb, Uc, out=Z)  # pre-activations X_b U
            np.maximum(Z, 0.0, out=H)  # hidden activations (X_b U)_+
            F = H @ Ac
            G = loss.gradient(F, Yb)
            f += loss.value(F, Yb)
            gA += H.T @ G
            np.greater(Z, 0.0, out=B)  # ReLU derivative 1[z > 0]
            np.matmul(G, AcT, out=H)  # H is spent: reused for (G A^T) * 1[Z > 0]
            np.multiply(H, B, out=H)
            gU += Xb.T @ H
        return f, g

    return value_grad


def polish_network(Xa: np.ndarray, Y: np.ndarray, loss: Loss, beta: float, U: np.ndarray, A: np.ndarray, *,
                   max_iter: int | None = None, window: int = POLISH_WINDOW,
                   progress_rtol: float = POLISH_PROGRESS_RTOL, stop_check: Any = None,
                   history: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    r"""Local descent (L-BFGS) on :math:`\ell((X_aU)_+A) + \frac\beta2(\|U\|_F^2 + \|A\|_F^2)`
    from ``(U, A)``.

    Used for vector outputs, whose convex program is only an upper bound, and for sampled
    pattern sets: the descent keeps the network's width and can only lower the objective
    (the best point evaluated is returned, never one above the start).  The gradient is that
    of the network where it is differentiable (ReLU derivative 1[z > 0]).

    Stops after ``max_iter`` iterations (default :func:`polish_budget`), when the objective
    fell by less than ``progress_rtol`` (relative) over the last ``window`` iterations, when
    L-BFGS-B converges, or when ``stop_check()`` returns True (a time limit).  ``history``,
    if given, receives the objective after each iteration.
    """
    from scipy.optimize import minimize

    d1, m = U.shape
    K = A.shape[1]
    n = Xa.shape[0]
    if max_iter is None:
        max_iter = polish_budget(n, d1, m)

    best: list = [np.inf, None]  # the best point evaluated (L-BFGS-B's line search may end above it)
    value_grad = weight_decay_objective(Xa, Y, loss, beta, d1, m)

    def fg(x: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = value_grad(x)
        if f < best[0]:
            best[0], best[1] = f, x.copy()
        return f, g

    trace: list = [] if history is None else history

    def callback(intermediate_result: Any) -> None:
        trace.append(float(intermediate_result.fun))
        k = len(trace)
        if k > window and trace[k - 1 - window] - trace[-1] <= progress_rtol * abs(trace[-1]):
            raise StopIteration
        if stop_check is not None and stop_check():
            raise StopIteration

    x0 = np.concatenate([U.ravel(), A.ravel()])
    f0 = fg(x0)[0]
    # L-BFGS-B's own tests are absolute (|f_k - f_k+1| / max(|f_k|, 1) <= ftol, gradient <=
    # gtol): on the solver's scaled units (objectives << 1) they stopped the descent far from
    # its minimum (n = 10^3, d = 10: 37.61 vs 37.55), so the objective is divided by its start
    scale = 1.0 / f0 if np.isfinite(f0) and f0 > 0 else 1.0

    def fg_scaled(x: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = fg(x)
        return f * scale, g * scale

    with _SingleThreadedBLAS():  # L-BFGS-B's small BLAS calls: ~30x slower with threads
        minimize(fg_scaled, x0, jac=True, method="L-BFGS-B", callback=callback, options={"maxiter": max_iter})
    x = best[1] if best[0] <= f0 else x0
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


# ============================================================================ refinement
#: first-order steps per refinement round (each round starts at the polished network)
REFINE_STEPS = 100


def network_patterns(Xa: np.ndarray, U: np.ndarray) -> np.ndarray:
    r"""The activation patterns :math:`1[X_au_j \ge 0]` of the neurons, as a boolean (m, n)
    array, computed in row blocks (no (n, m) float array)."""
    n, m = Xa.shape[0], U.shape[1]
    out = np.empty((m, n), dtype=bool)
    step = max(1, BLOCK_ENTRIES // max(1, m))
    for a in range(0, n, step):
        out[:, a:a + step] = (Xa[a:a + step] @ U >= 0.0).T
    return out


def convexify(Xa: np.ndarray, V: np.ndarray, U: np.ndarray, A: np.ndarray, *,
              return_directions: bool = False) -> tuple[np.ndarray, ...]:
    r"""The point of the convex program over the network's own patterns that represents the
    network (scalar output, ``docs/convex_program.md`` §2): neuron :math:`j` with pattern
    :math:`D_j = \operatorname{diag}(1[X_au_j \ge 0])` goes to the group of its pattern and
    the sign of :math:`\alpha_j`, as :math:`z = V^Tu_j|\alpha_j|` (row-space coordinates).

    Returns ``(patterns (P, n), z (2P, r))``, groups :math:`0..P-1` of sign +1 and
    :math:`P..2P-1` of sign -1; with ``return_directions`` also, per pattern, the row-space
    direction :math:`V^Tu_j` of one of its neurons (P, r) (inside its cone; strictly inside
    unless a sample lies on the neuron's kink).  The point is feasible (:math:`(2D_j - I)X_au_j \ge 0` by
    construction) and its program objective :math:`\ell(\sum_g s_gD_gX_az_g) + \beta\sum_g\|z_g\|`
    is at most the network's balanced objective :math:`\ell + \beta\sum_j\|u_j\||\alpha_j|`
    (neurons sharing a pattern and sign are summed into one group: triangle inequality;
    :math:`\|V^Tu\| \le \|u\|`), which is at most its weight-decay objective.
    """
    from ...patterns import unique_rows

    D = network_patterns(Xa, U)
    pats = unique_rows(D)
    # index of each neuron's pattern in `pats`: match on the packed bits
    packed = np.packbits(pats, axis=1)
    keys = {packed[i].tobytes(): i for i in range(len(pats))}
    inverse = np.array([keys[row.tobytes()] for row in np.packbits(D, axis=1)], dtype=int)
    P, r = len(pats), V.shape[1]
    z = np.zeros((2 * P, r))
    a = A[:, 0]
    dirs = np.zeros((P, r))
    for j in range(U.shape[1]):
        g = inverse[j] + (0 if a[j] >= 0 else P)
        z[g] += (V.T @ U[:, j]) * abs(a[j])
        dirs[inverse[j]] = V.T @ U[:, j]
    return (pats, z, dirs) if return_directions else (pats, z)


def refine_network(Xa: np.ndarray, V: np.ndarray, Y: np.ndarray, loss: Loss, beta: float, U: np.ndarray,
                   A: np.ndarray, *, rounds: int, steps: int = REFINE_STEPS, stop_check: Any = None,
                   rtol: float = 1e-6, exact_max_patterns: int = 0) -> tuple[np.ndarray, np.ndarray, list]:
    r"""Pattern refinement ("convexify the polished network"), scalar output.

    Each round (``docs/convex_program.md`` §10c): the network's own activation patterns make
    a new pattern set; the network is a feasible point of the convex program over it
    (:func:`convexify`), so the program's optimum is at most the network's objective; the
    first-order solver (``steps`` steps, warm-started there; it returns the best network
    it saw, never worse than its start) improves it, the network is rebuilt
    (:math:`u = Vz/\sqrt{\|z\|},\ \alpha = s\sqrt{\|z\|}`) and polished
    (:func:`polish_network`).  A round is kept only when it lowers the objective, so the
    objective never increases; the rounds stop after ``rounds``, when a round gains less than
    ``rtol`` (relative), or when ``stop_check()`` is true.

    Squared loss: a round whose pattern set has at most ``exact_max_patterns`` patterns solves
    the program over them to its optimum by the Gram-reduced interior-point method
    (:func:`~deepdual.relu.convex_program.gram_ipm.solve_gram`) instead of ``steps``
    first-order steps (n = 10^3, d = 10: one round 37.559 -> 37.464 against 37.582 -> 37.579;
    docs/convex_program.md §10c).

    Returns ``(U, A, history)``, ``history`` the weight-decay objective after each kept round
    (its first entry the start's).
    """
    from .first_order import solve_first_order

    def value(Uc: np.ndarray, Ac: np.ndarray) -> float:
        penalty = 0.5 * beta * (float(np.vdot(Uc, Uc)) + float(np.vdot(Ac, Ac)))
        return penalty + float(loss.value(relu_layer_output(Xa, Uc, Ac), Y))

    current = value(U, A)
    history = [current]
    if U.shape[1] == 0 or A.shape[1] != 1:
        return U, A, history
    Xr = Xa @ V
    for _ in range(rounds):
        if stop_check is not None and stop_check():
            break
        pats, z0, dirs = convexify(Xa, V, U, A, return_directions=True)
        if len(pats) <= exact_max_patterns:
            from .gram_ipm import solve_gram

            res = solve_gram(Xr, Y, pats, beta, tol=1e-8, interior=dirs)
        else:
            res = solve_first_order(Xr, Y, pats, loss, beta, tol=1e-12, max_iter=steps, z0=z0,
                                    stop_check=stop_check)
        z = res.z
        nrm = np.linalg.norm(z, axis=1)
        act = np.flatnonzero(nrm > 0)
        if len(act) == 0:
            break
        s = np.where(act < len(pats), 1.0, -1.0)
        U1 = (V @ z[act].T) / np.sqrt(nrm[act])[None, :]
        A1 = (s * np.sqrt(nrm[act]))[:, None]
        U1, A1 = polish_network(Xa, Y, loss, beta, U1, A1, stop_check=stop_check)
        new = value(U1, A1)
        if not new < current:
            break
        gain = (current - new) / max(abs(current), np.finfo(float).tiny)
        U, A, current = U1, A1, new
        history.append(current)
        if gain < rtol:
            break
    return U, A, history
