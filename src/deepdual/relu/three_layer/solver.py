r"""Parallel three-layer ReLU networks on arbitrary data (docs/three_layer.md; Ergen & Pilanci,
"Global optimality beyond two layers: training deep ReLU networks via convex programs", ICML 2021,
arXiv 2110.05518).

Architecture and objective (the paper's): sub-networks :math:`k = 1..K`,

.. math:: f(X) = \sum_k \big((XW_{1k})_+\,w_{2k}\big)_+\,w_{3k},\qquad
          \min\ \tfrac12\|f(X) - y\|^2 + \tfrac\beta2\sum_k\big(\|w_{2k}\|^2 + w_{3k}^2\big)
          \quad\text{s.t.}\quad \|W_{1k}\|_F \le 1 ,

with :math:`W_{1k}\in\mathbb R^{d\times m_1}`, :math:`w_{2k}\in\mathbb R^{m_1}`, :math:`w_{3k}\in\mathbb R`
(one output, squared loss, no biases).  It equals (docs/three_layer.md §2) the convex program

.. math:: \min_{c\ge0}\ \tfrac12\Big\|\sum_a c_a\,\varepsilon_a(h_a)_+ - y\Big\|^2 + \beta\sum_a c_a
          \quad (h_a \in H,\ \varepsilon_a = \pm1),

the paper's group-:math:`\ell_1` program over pairs of first- and second-layer activation
patterns written over its atoms.  It is solved by column generation: a non-negative
Lasso over the atoms found so far, then the dual constraint
:math:`c_3(v) = \max_{h\in H}|v^T(h)_+|` at the residual :math:`v` by branch and bound
(:mod:`deepdual.relu.three_layer.constraint`), which either returns violating atoms or
proves :math:`c_3(v) \le \bar c`; then :math:`D(sv)`, :math:`s = \min(1, \beta/\bar c)`, is a proven
lower bound over all widths.  The network is rebuilt from the atoms, so
``objective`` is the value of an actual network (:func:`three_layer_objective`).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ..._validation import check_options
from ...losses import Loss, SquaredLoss
from ...network import Network
from ...patterns import count_upper_bound, enumerate_patterns, sample_patterns
from ...solution import Solution
from .constraint import Atom, FirstLayer, ascend_atoms, norm_bound, second_layer_constraint

__all__ = ["solve_three_layer", "three_layer_objective", "network_from_atoms", "nonnegative_lasso", "first_layer",
           "THEOREM"]

THEOREM = "Three-layer convex program (Ergen & Pilanci 2021, arXiv 2110.05518)"
OPTIONS = ("architecture", "max_patterns", "n_patterns", "seed", "max_iter", "max_nodes", "time_limit")


def three_layer_objective(network: Network, X: Any, y: Any, *, beta: float) -> float:
    r"""The paper's objective :math:`\frac12\|f(X) - y\|^2 + \frac\beta2\sum_k(\|W_{2k}\|_F^2 + \|W_{3k}\|_F^2)`
    of a depth-3 network; ``ValueError`` when some :math:`\|W_{1k}\|_F > 1` (beyond rounding)."""
    if network.depth != 3:
        raise ValueError(f"`network` must have depth 3, got {network.depth}")
    for j, layers in enumerate(network.weights):
        nrm = float(np.linalg.norm(layers[0]))
        if nrm > 1 + 1e-12:  # rounding of a norm computed from unit-norm factors
            raise ValueError(f"layer 0 of sub-network {j} has norm {nrm:.6g} > 1 (the first layer is norm-constrained)")
    F = np.asarray(network.forward(X), float)
    Y = np.asarray(y, float).reshape(F.shape)
    decayed = math.fsum(float(np.sum(W ** 2)) for layers in network.weights for W in layers[1:])
    return float(0.5 * np.sum((F - Y) ** 2) + 0.5 * beta * decayed)


def nonnegative_lasso(A: np.ndarray, y: np.ndarray, beta: float, c0: np.ndarray | None = None,
                      *, max_iter: int = 1000) -> np.ndarray:
    r""":math:`\arg\min_{c\ge0}\frac12\|Ac - y\|^2 + \beta\mathbb 1^Tc` by the active-set method of
    Lawson and Hanson (1974, ch. 23) applied to the quadratic :math:`\frac12c^TMc - q^Tc`,
    :math:`M = A^TA`, :math:`q = A^Ty - \beta\mathbb 1`: solve on the support, step back to feasibility
    when a coefficient would turn negative, add the index of the most negative gradient.
    """
    m = A.shape[1]
    if m == 0:
        return np.zeros(0)
    M = A.T @ A
    q = A.T @ y - beta
    tol = 1e-12 * (1.0 + float(np.max(np.abs(q))))
    c = np.zeros(m) if c0 is None else np.maximum(np.asarray(c0, float), 0.0)
    S = c > 0
    for _ in range(max_iter):
        g = M @ c - q
        if S.any():
            idx = np.flatnonzero(S)
            _, sv, Vt = np.linalg.svd(A[:, idx], full_matrices=True)
            rank = int(np.sum(sv > 1e-10 * max(1.0, float(sv[0]) if sv.size else 1.0)))
            if rank < idx.size:
                # dependent columns on the support: move along a null direction of A_S (the
                # objective changes by beta 1^T d <= 0) until a coefficient reaches zero
                dvec = Vt[rank]
                if dvec.sum() > 0 or (dvec.sum() == 0 and not np.any(dvec < 0)):
                    dvec = -dvec
                down = dvec < 0
                t = float(np.min(c[idx][down] / -dvec[down]))
                c[idx] = np.maximum(c[idx] + t * dvec, 0.0)
                c[idx[np.argmin(np.where(down, c[idx] / np.maximum(-dvec, 1e-300), np.inf))]] = 0.0
                S = c > 0
                continue
            z = np.zeros(m)
            z[S] = np.linalg.lstsq(M[np.ix_(S, S)], q[S], rcond=None)[0]
            if np.all(z[S] > 0):
                c = z
                g = M @ c - q
            else:
                neg = S & (z <= 0)
                ratio = c[neg] / np.maximum(c[neg] - z[neg], 1e-300)
                t = float(np.min(ratio))
                c = np.maximum(c + t * (z - c), 0.0)
                c[neg & (c <= 1e-15 * (1 + np.max(c)))] = 0.0
                S = c > 0
                continue
        free = ~S
        if not free.any() or np.min(g[free]) >= -tol:
            break
        i = int(np.flatnonzero(free)[np.argmin(g[free])])
        S[i] = True
    return c


def network_from_atoms(atoms: list[tuple[float, Atom]], c: np.ndarray, d: int, *, scalar: bool) -> Network:
    r"""One sub-network per atom with :math:`c_a > 0`: :math:`h = \sum_j\gamma_j(Xu_j)_+`
    (:math:`\sum_j|\gamma_j| = 1`) becomes :math:`W_1 = [u_j\sqrt{|\gamma_j|}]`, :math:`w_2 = [\mathrm{sign}(\gamma_j)\sqrt{|\gamma_j|c}]`,
    :math:`w_3 = \varepsilon\sqrt c`, so :math:`\|W_1\|_F = 1`, the output is :math:`\varepsilon c(h)_+` and
    :math:`\frac\beta2(\|w_2\|^2 + w_3^2) = \beta c` (docs/three_layer.md §2)."""
    subnets = []
    for (eps, atom), ca in zip(atoms, c):
        if ca <= 0:
            continue
        g = np.abs(atom.coef)
        W1 = atom.U * np.sqrt(g)[None, :]
        w2 = (np.sign(atom.coef) * np.sqrt(g * ca))[:, None]
        w3 = np.array([[eps * np.sqrt(ca)]])
        subnets.append([W1, w2, w3])
    if not subnets:
        subnets = [[np.zeros((d, 1)), np.zeros((1, 1)), np.zeros((1, 1))]]
    return Network(subnets, "relu", scalar_output=scalar)


def first_layer(X: np.ndarray, options: dict) -> tuple[FirstLayer, bool, str]:
    """Complete cones (sectors for d = 2, enumerated patterns when few), else sampled patterns."""
    max_patterns = int(options.get("max_patterns", 2000))
    n, d = X.shape
    if d == 2:
        return FirstLayer(X), True, "complete (plane sectors)"
    r = int(np.linalg.matrix_rank(X))
    if count_upper_bound(n, r) <= max_patterns:
        return FirstLayer(X, enumerate_patterns(X)), True, "complete (enumerated)"
    pats = sample_patterns(X, int(options.get("n_patterns", 200)), rng=options.get("seed", 0))
    return FirstLayer(X, pats), False, f"sampled ({len(pats)} patterns)"


def solve_three_layer(X: np.ndarray, Y: np.ndarray, *, scalar: bool, beta: float, depth: int, loss: Loss,
                      rtol: float, bias: bool, **options: Any) -> Solution:
    r"""Optimal parallel three-layer ReLU network of the paper's architecture (module docstring).

    Parameters
    ----------
    X, Y : validated arrays (n, d), (n, 1)
    scalar, beta, depth, loss, rtol, bias : see :func:`deepdual.solve` (``depth=3``, squared loss,
        one output, ``bias=False``)
    architecture : {"parallel_three_layer"}, optional
        The only architecture (the paper's); accepted for explicitness.
    max_patterns : int, default 2000
        Enumerate the first-layer patterns when their count bound is at most this (``d != 2``).
    n_patterns, seed : sampled patterns otherwise (then ``certified`` is False: the sampled
        program's own bound is ``info["sampled_program_lower_bound"]``).
    max_iter : int, default 200
        Column-generation rounds.
    max_nodes : int, default 20000
        Branch-and-bound node budget of each dual-constraint evaluation.

    Returns
    -------
    Solution
        ``objective`` is :func:`three_layer_objective` of the returned network; ``info`` has
        ``patterns``, ``atoms``, ``iterations``, ``constraint_upper`` and ``nodes``.
    """
    check_options(options, OPTIONS, "solve(depth=3, method='convex')")
    arch = options.get("architecture", "parallel_three_layer")
    if arch != "parallel_three_layer":
        raise ValueError(f"`architecture` must be 'parallel_three_layer' for depth=3 with method='convex', got {arch!r}")
    if depth != 3:
        raise ValueError(f"`depth` must be 3 for the three-layer program, got {depth}")
    if bias:
        raise ValueError("`bias=True` is not covered by the three-layer program (the paper's networks have no biases)")
    if not isinstance(loss, SquaredLoss):
        raise ValueError(f"the three-layer program supports the squared loss, got {getattr(loss, 'name', loss)!r}")
    if Y.shape[1] != 1:
        raise ValueError(f"the three-layer program supports one output, got `y` with {Y.shape[1]} columns")
    max_iter = int(options.get("max_iter", 200))
    max_nodes = int(options.get("max_nodes", 20000))
    start = time.perf_counter()
    y = Y[:, 0].astype(float)
    n, d = X.shape
    layer, complete, how = first_layer(X, options)
    atoms: list[tuple[float, Atom]] = []
    cols = np.zeros((n, 0))
    c = np.zeros(0)
    v = y.copy()
    upper = np.inf
    nodes = 0
    it = 0
    exact = True
    converged = False
    for it in range(1, max_iter + 1):
        target = beta * (1 + 1e-7)  # above the Lasso's rounding: atoms in use sit at beta
        new = []
        ups = []
        exact = True
        # cheap first: pattern ascent from the current atoms' patterns and from all of {v > 0};
        # near-violators (within 5 % of beta) enter with the violators (fewer rounds)
        violated = False
        for eps in (1.0, -1.0):
            starts = [np.ones(n, bool)] + [np.maximum(a.h, 0.0) > 0 for (_, a), ca in zip(atoms, c) if ca > 0]
            got = ascend_atoms(layer, eps * v, starts, target=0.95 * beta, enough=8)[:8]
            violated = violated or any(val > target for val, _ in got)
            new += [(eps, a) for _, a in got]
        if violated:
            upper = np.inf
        else:
            new = []
            for eps in (1.0, -1.0):
                res = second_layer_constraint(layer, eps * v, target=target, max_nodes=max_nodes, stop_at=4)
                nodes += res.nodes
                ups.append(res.upper)
                exact = exact and res.exact
                new += [(eps, a) for a in res.atoms]
            upper = max(ups)
        if not new:
            converged = True
            break
        added = 0
        for eps, a in new:
            col = eps * np.maximum(a.h, 0.0)
            if cols.shape[1] and np.min(np.linalg.norm(cols - col[:, None], axis=0)) <= 1e-9 * (1 + np.linalg.norm(col)):
                continue  # already a column
            atoms.append((eps, a))
            cols = np.column_stack([cols, col])
            added += 1
        if not added:
            if upper == np.inf:  # only known columns from the ascent: let the branch and bound decide
                res = [second_layer_constraint(layer, e * v, target=target, max_nodes=max_nodes) for e in (1.0, -1.0)]
                nodes += sum(r.nodes for r in res)
                upper = max(r.upper for r in res)
                exact = all(r.exact for r in res)
            converged = True
            break
        c = nonnegative_lasso(cols, y, beta, np.concatenate([c, np.zeros(added)]))
        v = y - cols @ c
    # final dual point and its proven bound
    F = cols @ c if cols.shape[1] else np.zeros(n)
    v = y - F
    if not converged:  # max_iter: the last bound belongs to an earlier residual; bound this one
        res = [second_layer_constraint(layer, eps * v, max_nodes=max_nodes) for eps in (1.0, -1.0)]
        upper = max(r.upper for r in res)
        exact = all(r.exact for r in res)
    cbar = upper if complete else norm_bound(X, v)
    s = 1.0 if cbar <= beta else beta / cbar
    lower = float(s * (v @ y) - 0.5 * s * s * (v @ v))
    info: dict[str, Any] = {"beta": beta, "depth": 3, "architecture": "parallel_three_layer",
                            "patterns": how, "atoms": int(np.sum(c > 0)), "iterations": it,
                            "constraint_upper": float(upper), "nodes": int(nodes),
                            "time": time.perf_counter() - start}
    if not complete:
        s2 = 1.0 if upper <= beta else beta / upper
        info["sampled_program_lower_bound"] = float(s2 * (v @ y) - 0.5 * s2 * s2 * (v @ v))
    net = network_from_atoms(atoms, c, d, scalar=scalar)
    obj = three_layer_objective(net, X, Y[:, 0] if scalar else Y, beta=beta)
    sol = Solution(network=net, objective=obj, lower_bound=lower, method=THEOREM, rtol=rtol,
                   dual=v[:, None] * s, info=info)
    if not sol.certified:
        why = []
        if not complete:
            why.append("sampled first-layer patterns: the proven bound uses ||X||_2 max(||v+||, ||v-||)")
        if not exact:
            why.append("the branch and bound of the dual constraint hit its node budget")
        if it >= max_iter:
            why.append("column generation hit max_iter")
        sol.info["note"] = "not certified: " + ("; ".join(why) if why else "gap above rtol")
    return sol
