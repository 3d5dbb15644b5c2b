r"""The convex program of path-regularized parallel ReLU networks (docs/path_regularization.md).

Architecture (depth :math:`L \in \{2, 3\}`, one output): sub-networks :math:`k = 1..K`,

.. math:: f(X) = \sum_k \big((XW_{1k})_+\,W_{2k}\big)_+\,w_{3k}\quad(L = 3),\qquad
          f(X) = \sum_k (XW_{1k})_+\,w_{2k}\quad(L = 2),

with :math:`W_{1k}\in\mathbb R^{d\times m_1}` (a fixed width :math:`m_1`) and, at :math:`L = 3`,
:math:`W_{2k}\in\mathbb R^{m_1\times m_2}`, regularized by the :math:`\ell_2` path norm of each
sub-network (Neyshabur et al. 2015; Ergen & Pilanci, arXiv 2110.09548)

.. math:: R(\theta) = \sum_k \Big(\sum_{\text{paths } p \text{ of } k}\ \prod_{w\in p} w^2\Big)^{1/2},
          \qquad P = \tfrac12\|f(X) - y\|^2 + \beta R(\theta).

Normalizing every hidden neuron's incoming path norm to one (positive homogeneity), an
:math:`L = 3` sub-network with :math:`m_2 = 1` produces :math:`t\,(h)_+` at cost :math:`|t|`, where
:math:`h = \sum_{j=1}^{m_1}\sigma_jD_jXu_j` with first-layer patterns :math:`D_j`, signs
:math:`\sigma_j`, :math:`u_j\in K_{D_j} = \{u : (2D_j - I)Xu \ge 0\}` and :math:`\|U\|_F \le 1`.
With a second-layer pattern :math:`E` (:math:`(h)_+ = Eh` when :math:`(2E - I)h \ge 0`) the
problem is the group program

.. math:: \min\ \tfrac12\Big\|\sum_{T,E,\varepsilon}\varepsilon E\sum_j\sigma_jD_jXu^{TE\varepsilon}_j - y\Big\|^2
          + \beta\sum_{T,E,\varepsilon}\|U^{TE\varepsilon}\|_F
          \quad\text{s.t.}\ U^{TE\varepsilon}\in C_{T,E},

over multisets :math:`T` of :math:`m_1` signed first-layer patterns, all :math:`E` and
:math:`\varepsilon = \pm1`, with the polyhedral cones

.. math:: C_{T,E} = \{U : (2D_j - I)Xu_j \ge 0\ \forall j,\ (2E - I)\textstyle\sum_j\sigma_jD_jXu_j \ge 0\}.

Its dual constraint is :math:`c(v) = \max_{T,E,\varepsilon}\|\Pi_{C_{T,E}}(G)\|` with
:math:`G_j = \varepsilon\sigma_jX^TD_jEv`; :func:`path_constraint` computes it exactly by
enumeration (every block bounded first by the cone of the first layer alone, then Moreau's
decomposition by NNLS: :math:`\|G + A^T\mu\|` for any :math:`\mu \ge 0` is an upper bound).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import lsq_linear, nnls

from ...network import Network
from ...objective import path_norm, path_regularizer

__all__ = ["path_norm", "path_regularizer", "PatternSet", "PathAtom", "ConstraintSearch",
           "path_constraint", "norm_bound", "deep_norm_bound", "network_from_path_atoms", "path_widths", "pattern_set"]


def path_widths(network: Network) -> tuple[int, int]:
    """Largest first-layer width :math:`m_1` and (depth 3) second-layer width :math:`m_2` over the
    sub-networks (1 for depth 2)."""
    m1 = max(sub[0].shape[1] for sub in network.weights)
    m2 = max(sub[1].shape[1] for sub in network.weights) if network.depth == 3 else 1
    return int(m1), int(m2)


@dataclass
class PathAtom:
    r"""One sub-network direction: :math:`U` (d, m1) with :math:`\|U\|_F \le 1`, signs :math:`\sigma`, the
    output sign :math:`\varepsilon` and its column :math:`\varepsilon(h)_+` (or :math:`\varepsilon h` at depth 2)."""

    U: np.ndarray
    sigma: np.ndarray
    eps: float
    column: np.ndarray


class PatternSet:
    r"""First-layer patterns :math:`D` (rows of ``pats``, each with its closed cone :math:`K_D`), the signed
    neuron types :math:`(D, \sigma)` and the multisets :math:`T` of ``m1`` types."""

    def __init__(self, X: np.ndarray, pats: np.ndarray, m1: int, rays: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.X = X
        pats = np.asarray(pats, bool)
        keep = np.any(pats, axis=1)  # an inactive neuron is u = 0 in any cone
        self.pats = pats[keep]
        # d = 2 sectors: the cone of pattern p is spanned by the unit rays R1[p], R2[p] (counter-clockwise)
        self.rays = None if rays is None else (rays[0][keep], rays[1][keep])
        P = len(self.pats)
        self.types = [(p, s) for p in range(P) for s in (1.0, -1.0)]
        self.tuples = np.array(list(itertools.combinations_with_replacement(range(len(self.types)), m1)), int)
        self.m1 = m1

    def cone_matrix(self, T: np.ndarray, E: np.ndarray | None) -> np.ndarray:
        r"""Rows :math:`A` with :math:`C_{T,E} = \{\mathrm{vec}(U) : A\,\mathrm{vec}(U) \ge 0\}` (``vec`` stacks the columns)."""
        X = self.X
        n, d = X.shape
        m = len(T)
        rows = []
        for j, t in enumerate(T):
            p, _ = self.types[t]
            block = np.zeros((n, d * m))
            block[:, j * d:(j + 1) * d] = (2.0 * self.pats[p] - 1.0)[:, None] * X
            rows.append(block)
        if E is not None:
            coupling = np.zeros((n, d * m))
            for j, t in enumerate(T):
                p, s = self.types[t]
                coupling[:, j * d:(j + 1) * d] = s * self.pats[p][:, None] * X
            rows.append((2.0 * E - 1.0)[:, None] * coupling)
        return np.vstack(rows)


def _cone_projection(A: np.ndarray, g: np.ndarray) -> tuple[float, np.ndarray]:
    r""":math:`\|\Pi_C(g)\|` for :math:`C = \{x : Ax \ge 0\}` and the projection: :math:`g + A^T\mu^\star`,
    :math:`\mu^\star = \arg\min_{\mu\ge0}\|g + A^T\mu\|` (Moreau).  The returned norm is that of a
    feasible :math:`\mu`, never below the maximum of :math:`g^Tx` over :math:`C\cap\{\|x\|\le1\}`."""
    if not np.any(g):
        return 0.0, np.zeros_like(g)
    try:
        mu, _ = nnls(A.T, -g, maxiter=50 * max(1, A.shape[0]))
    except RuntimeError:  # pragma: no cover - iteration limit: mu = 0 is feasible
        mu = np.zeros(A.shape[0])
    mu = np.maximum(mu, 0.0)
    p = g + A.T @ mu
    if not _optimal(A, g, mu, p):
        # scipy's nnls occasionally stops at a non-optimal point (its bound stays valid but loose):
        # the bounded-variable least squares of Stark & Parker solves the same problem
        mu2 = np.maximum(lsq_linear(A.T, -g, bounds=(0.0, np.inf), method="bvls", tol=1e-15).x, 0.0)
        p2 = g + A.T @ mu2
        if np.linalg.norm(p2) < np.linalg.norm(p):
            p = p2
    return float(np.linalg.norm(p)), p


def _optimal(A: np.ndarray, g: np.ndarray, mu: np.ndarray, p: np.ndarray) -> bool:
    r"""KKT of the NNLS: :math:`Ap \ge 0` (p in the cone) and :math:`\mu^TAp = 0` (complementarity)."""
    Ap = A @ p
    tol = 1e-10 * float(np.linalg.norm(g)) * (1.0 + float(np.max(np.abs(A), initial=0.0)))
    return bool(np.min(Ap, initial=0.0) >= -tol and abs(float(mu @ Ap)) <= tol * (1.0 + float(np.sum(mu))))


def _sector_norms(W: np.ndarray, R1: np.ndarray, R2: np.ndarray) -> np.ndarray:
    r""":math:`\|\Pi_K(w)\|` for the plane sector :math:`K` spanned by the unit rays ``R1``, ``R2``
    (counter-clockwise, angle below :math:`\pi`), for ``W`` of shape (P, ..., 2) with rays (P, 2):
    :math:`\|w\|` inside, else :math:`\max(w^TR_1, w^TR_2, 0)`; plus a rounding allowance."""
    shape = (W.shape[0],) + (1,) * (W.ndim - 2) + (2,)
    r1, r2 = R1.reshape(shape), R2.reshape(shape)
    c1 = r1[..., 0] * W[..., 1] - r1[..., 1] * W[..., 0]
    c2 = W[..., 0] * r2[..., 1] - W[..., 1] * r2[..., 0]
    nw = np.linalg.norm(W, axis=-1)
    p1 = np.sum(W * r1, axis=-1)
    p2 = np.sum(W * r2, axis=-1)
    val = np.where((c1 >= 0) & (c2 >= 0), nw, np.maximum(np.maximum(p1, p2), 0.0))
    return val + 8 * np.finfo(float).eps * nw


@dataclass
class ConstraintSearch:
    """Outcome of :func:`path_constraint`: ``upper`` (proven bound on :math:`c(v)` over the pattern
    set), ``atoms`` (the maximizers with value above ``target``, best first), ``evaluated`` (NNLS
    solved) and ``candidates`` (blocks considered)."""

    upper: float
    atoms: list
    evaluated: int
    candidates: int


def path_constraint(pset: PatternSet, v: np.ndarray, *, outer_relu: bool = True, target: float | None = None,
                    max_atoms: int = 4, max_blocks: int = 2_000_000, skip_dominated: bool = True) -> ConstraintSearch:
    r"""Exact :math:`c(v) = \max_{T,E,\varepsilon}\max_{U\in C_{T,E},\|U\|_F\le1}\varepsilon v^TE\sum_j\sigma_jD_jXu_j`
    (module docstring; ``outer_relu=False``: depth 2, no :math:`E`), by enumeration with pruning.

    Second-layer patterns dominated within a multiset :math:`T` are skipped (docs/path_regularization.md §4;
    ``skip_dominated=False`` enumerates all :math:`2^n`, for tests): :math:`E_i` branches only at samples
    where :math:`T` has active neurons of both signs.

    Every block :math:`(T, E, \varepsilon)` is bounded by :math:`\|G\|` (its value with the cones
    dropped); blocks are solved by NNLS in decreasing order of that bound until the bound is
    below the best value found (and, with ``target``, below ``target``).  The result is an upper
    bound up to a rounding allowance of :math:`8\epsilon\|G\|`.
    """
    X = pset.X
    n, d = X.shape
    pats = pset.pats.astype(float)
    # a[p, e] = X^T D_p (E v) for every pattern p and second-layer pattern e
    if outer_relu:
        if n > 16:
            raise ValueError(f"the exact path-regularized program indexes 2^n second-layer patterns; n = {n} "
                             "is too large (at most 16)")
        Es = np.array(list(itertools.product((0.0, 1.0), repeat=n)))  # (2^n, n)
    else:
        Es = np.ones((1, n))
    EV = Es * v[None, :]  # (nE, n)
    A = np.einsum("pi,ei,ik->pek", pats, EV, X)  # (P, nE, d)
    slack = 8 * np.finfo(float).eps
    T = pset.tuples
    pidx = np.array([pset.types[t][0] for t in range(len(pset.types))])
    sg = np.array([pset.types[t][1] for t in range(len(pset.types))])
    # the blocks (T, E): pairs of a multiset index and a second-layer pattern index (row of Es, whose
    # index is the binary number E_1 E_2 ... E_n)
    if outer_relu and skip_dominated:
        # dominated second-layer patterns: where every active neuron of T has sigma = +1, h_i >= 0 on
        # the whole block, and E_i = 0 only adds h_i = 0 (a sub-block of E_i = 1 with the same
        # value); likewise E_i = 1 where every active neuron has sigma = -1, and E_i is irrelevant
        # where none is active (h_i = 0).  Only samples with active neurons of both signs branch.
        act = pats[pidx[T]] > 0  # (nT, m1, n)
        pos = np.any(act & (sg[T] > 0)[:, :, None], axis=1)
        neg = np.any(act & (sg[T] < 0)[:, :, None], axis=1)
        free = pos & neg
        weights = 2 ** np.arange(n - 1, -1, -1)
        counts = 2 ** free.sum(axis=1)
        if 2 * int(counts.sum()) > max_blocks:
            raise ValueError(f"the exact path-regularized program has {2 * int(counts.sum())} pattern blocks, "
                             f"above max_blocks={max_blocks}: reduce n, d or the width m1")
        tis, eis = [], []
        for ti in range(len(T)):
            codes = np.array([int((pos[ti] & ~neg[ti]) @ weights)])
            for w in weights[free[ti]]:
                codes = np.concatenate([codes, codes + w])
            tis.append(np.full(codes.size, ti))
            eis.append(codes)
        pair_t, pair_e = np.concatenate(tis), np.concatenate(eis)
    else:
        if T.shape[0] * len(Es) * 2 > max_blocks:
            raise ValueError(f"the exact path-regularized program has {T.shape[0] * len(Es) * 2} pattern blocks, "
                             f"above max_blocks={max_blocks}: reduce n, d or the width m1")
        pair_t, pair_e = np.repeat(np.arange(len(T)), len(Es)), np.tile(np.arange(len(Es)), len(T))
    # block bound: the coupling constraint dropped, each neuron in its own cone:
    # sqrt(sum_j ||Pi_{K_j}(eps sigma_j a_{p_j, e})||^2): closed form on the plane's sectors, else
    # one NNLS per pattern, sign and E (any feasible multiplier bounds the projection's norm)
    sq = np.empty((2, len(pset.types), len(Es)))  # [eps, type, e]
    for k, eps in enumerate((1.0, -1.0)):
        W = eps * sg[:, None, None] * A[pidx]  # (types, nE, d)
        if pset.rays is not None:
            sq[k] = _sector_norms(W, pset.rays[0][pidx], pset.rays[1][pidx]) ** 2
        elif W.shape[0] * W.shape[1] <= 200_000:
            cones = [(2.0 * pats[p] - 1.0)[:, None] * X for p in range(len(pats))]
            sq[k] = [[(_cone_projection(cones[pidx[t]], W[t, e])[0] * (1 + slack)
                       + slack * float(np.linalg.norm(W[t, e]))) ** 2 for e in range(W.shape[1])]
                     for t in range(W.shape[0])]
        else:
            sq[k] = np.sum(W * W, axis=-1)
    bound = np.sqrt(np.stack([np.sum(sq[k][T[pair_t], pair_e[:, None]], axis=1) for k in range(2)]))  # (2, pairs)
    order = np.argsort(bound, axis=None)[::-1]
    flat = bound.ravel()
    best = 0.0
    found: list[tuple[float, PathAtom]] = []
    evaluated = 0
    upper_open = 0.0
    for pos in order:
        b = float(flat[pos]) * (1 + slack)
        level = max(best, target if target is not None else -np.inf)
        if b <= level:
            upper_open = b
            break
        k, pi = np.unravel_index(pos, bound.shape)
        ti, ei = pair_t[pi], pair_e[pi]
        eps = 1.0 - 2.0 * k
        Tt = T[ti]
        E = Es[ei] if outer_relu else None
        G = np.concatenate([eps * sg[t] * A[pidx[t], ei] for t in Tt])
        val, p = _cone_projection(pset.cone_matrix(Tt, E), G)
        evaluated += 1
        val += slack * float(np.linalg.norm(G))
        best = max(best, val)
        if target is not None and val > target and np.linalg.norm(p) > 0:
            U = (p / np.linalg.norm(p)).reshape(len(Tt), d).T
            sig = sg[Tt]
            h = np.maximum(X @ U, 0.0) @ sig
            col = eps * (np.maximum(h, 0.0) if outer_relu else h)
            actual = float(v @ col)  # the network's value (the bound val is never below it)
            if actual > target and not any(np.allclose(col, a.column, rtol=1e-9, atol=1e-12) for _, a in found):
                found.append((actual, PathAtom(U, sig, eps, col)))
        if target is not None and len(found) >= max_atoms:
            # enough violators: the bound returned is then only the best value (not a proof)
            upper_open = np.inf
            break
    upper = max(best, upper_open) if upper_open != np.inf else np.inf
    candidates = int(bound.size)
    found.sort(key=lambda t: -t[0])
    return ConstraintSearch(upper=float(upper), atoms=[a for _, a in found[:max_atoms]], evaluated=evaluated,
                            candidates=candidates)


def norm_bound(X: np.ndarray, v: np.ndarray, m1: int, *, outer_relu: bool = True) -> float:
    r"""Pattern-free proven bound :math:`c(v) \le \sqrt{m_1}\|X\|_2\max(\|v_+\|, \|v_-\|)` (:math:`\|v\|`
    at depth 2): :math:`\|h\| \le \sum_j\|(Xu_j)_+\| \le \|X\|_2\sum_j\|u_j\| \le \sqrt{m_1}\|X\|_2\|U\|_F`."""
    xn = float(np.linalg.norm(X, 2)) * (1 + 1e-12) * np.sqrt(m1)
    if not outer_relu:
        return xn * float(np.linalg.norm(v))
    return xn * max(float(np.linalg.norm(np.maximum(v, 0))), float(np.linalg.norm(np.maximum(-v, 0))))


def deep_norm_bound(X: np.ndarray, v: np.ndarray, widths: list[int]) -> float:
    r"""Proven bound for any depth :math:`L`: :math:`v^Tf_k \le \bar c\,\rho_k` with
    :math:`\bar c = \|X\|_2\prod_{l=1}^{L-1}\sqrt{m_l}\,\max(\|v_+\|, \|v_-\|)` for every sub-network of
    hidden widths at most ``widths`` :math:`= (m_1, \dots, m_{L-1})` (docs/path_regularization.md §4: with
    unit incoming path norms a layer-:math:`l` neuron has norm at most :math:`\|X\|_2\prod_{i<l}\sqrt{m_i}`,
    and a non-negative vector :math:`a` has :math:`|v^Ta| \le \max(\|v_+\|, \|v_-\|)\|a\|`)."""
    xn = float(np.linalg.norm(X, 2)) * (1 + 1e-12) * float(np.sqrt(np.prod(np.asarray(widths, float))))
    return xn * max(float(np.linalg.norm(np.maximum(v, 0))), float(np.linalg.norm(np.maximum(-v, 0))))


def network_from_path_atoms(atoms: list[PathAtom], c: np.ndarray, d: int, *, depth: int, m2: int = 1,
                            scalar: bool = True, m1: int | None = None) -> Network:
    r"""One sub-network per atom with :math:`c_a > 0`.  Depth 3: :math:`W_1 = U`,
    :math:`W_2 = [\sigma, \dots, \sigma]` (:math:`m_2` equal columns), :math:`w_3 = (\varepsilon c/m_2)\mathbb 1`:
    output :math:`\varepsilon c(h)_+`, path norm :math:`c\|U\|_F/\sqrt{m_2}`.  Depth 2:
    :math:`W_1 = U`, :math:`w_2 = \varepsilon c\sigma`: output :math:`\varepsilon ch`, path norm :math:`c\|U\|_F`."""
    subnets = []
    for atom, ca in zip(atoms, c):
        if ca <= 0:
            continue
        if depth == 3:
            W2 = np.repeat(atom.sigma[:, None], m2, axis=1)
            w3 = np.full((m2, 1), atom.eps * ca / m2)
            subnets.append([atom.U.copy(), W2, w3])
        else:
            subnets.append([atom.U.copy(), (atom.eps * ca * atom.sigma)[:, None]])
    if not subnets:
        m1 = m1 if m1 is not None else (atoms[0].U.shape[1] if atoms else 1)
        zero = [np.zeros((d, m1))] + ([np.zeros((m1, m2)), np.zeros((m2, 1))] if depth == 3 else [np.zeros((m1, 1))])
        subnets = [zero]
    return Network(subnets, "relu", scalar_output=scalar)


def pattern_set(X: np.ndarray, m1: int, *, max_patterns: int = 2000, n_patterns: int = 200,
                seed: Any = 0) -> tuple[PatternSet, bool, str]:
    """First-layer patterns: complete (plane sectors for d = 2, enumerated when their count bound is at
    most ``max_patterns``), else ``n_patterns`` sampled ones.  Returns ``(PatternSet, complete, description)``."""
    from ...patterns import count_upper_bound, enumerate_patterns, sample_patterns
    from ..three_layer.constraint import FirstLayer

    n, d = X.shape
    if d == 2:
        layer = FirstLayer(X)
        cross = layer.R1[:, 0] * layer.R2[:, 1] - layer.R1[:, 1] * layer.R2[:, 0]
        rays = (layer.R1, layer.R2) if np.all(cross > 1e-12) else None  # sectors narrower than pi
        return PatternSet(X, layer.pats, m1, rays), True, "complete (plane sectors)"
    r = int(np.linalg.matrix_rank(X))
    if count_upper_bound(n, r) <= max_patterns:
        return PatternSet(X, np.asarray(enumerate_patterns(X), bool), m1), True, "complete (enumerated)"
    pats = np.asarray(sample_patterns(X, n_patterns, rng=seed), bool)
    return PatternSet(X, pats, m1), False, f"sampled ({len(pats)} patterns)"
