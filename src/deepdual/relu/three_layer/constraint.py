r"""The dual constraint of parallel three-layer ReLU networks (docs/three_layer.md §3–§4).

A sub-network's second-layer pre-activation, normalized by its path norm, lies in

.. math:: H = \operatorname{conv}\{\pm(Xu)_+ : \|u\| \le 1\}
          = \Big\{\sum_{D\in\mathcal D}DX(u_D - u_D') : u_D, u_D' \in K_D,\
            \sum_D \|u_D\| + \|u_D'\| \le 1\Big\},

with :math:`K_D = \{u : (2D - I)Xu \ge 0\}` over the first-layer patterns :math:`\mathcal D`.
For a dual point :math:`v` the constraint is

.. math:: c_3(v) = \max_{h\in H}\ |v^T(h)_+| \;\le\; \beta .

:func:`support_value` is the support function :math:`\sigma_H(w) = \max_{h\in H} w^Th` (the
two-layer dual constraint: exact NNLS cone projections per pattern).
:func:`second_layer_constraint` bounds :math:`c_3^+(v) = \max_{h\in H}v^T(h)_+` by branch and
bound over the set :math:`E` of positive entries of :math:`v` where :math:`h > 0`:

.. math:: c_3^+(v) = \max_{E\subseteq\{v>0\}}\ \max_{h\in H}\ v_E^Th_E - \sum_{v_i<0}|v_i|(h_i)_+ ,

a node's free entries relaxed by the chord :math:`(h_i)_+ \le (h_i + b_i)/2` on
:math:`|h_i| \le b_i = \|x_i\|`, and each node's concave maximization bounded through
:math:`-|v_i|(h_i)_+ = \min_{0\le\mu_i\le|v_i|} -\mu_ih_i`:
node value :math:`\le \min_\mu \sigma_H(a - \mu)`, so *any* :math:`\mu` in the box gives a proven
upper bound, evaluated exactly.  :math:`\mu` comes from the dual of a linear program over
a growing pool of atoms (Kelley's cutting planes).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog, nnls

__all__ = ["cone_direction", "FirstLayer", "Atom", "ConstraintResult", "second_layer_constraint", "norm_bound"]


def cone_direction(X: np.ndarray, d: np.ndarray, a: np.ndarray) -> tuple[float, np.ndarray]:
    r""":math:`\max_{u\in K_D,\|u\|\le1} a^Tu = \|\Pi_{K_D}(a)\|` and a unit maximizer.

    Moreau: :math:`\Pi_{K}(a) = a + X^T(2D - I)\mu^\star` with
    :math:`\mu^\star = \arg\min_{\mu\ge0}\|a + X^T(2D-I)\mu\|` (NNLS).  The value is the norm of a
    feasible point of that minimization, so it is never below the maximum.
    """
    A = X.T * (2.0 * d - 1.0)[None, :]
    if not np.any(a):
        return 0.0, np.zeros(X.shape[1])
    try:
        mu, _ = nnls(A, -a, maxiter=50 * max(1, A.shape[1]))
    except RuntimeError:  # pragma: no cover - iteration limit: mu = 0 is feasible
        mu = np.zeros(A.shape[1])
    p = a + A @ np.maximum(mu, 0.0)
    val = float(np.linalg.norm(p))
    return val, (p / val if val > 0 else p)


class FirstLayer:
    r"""The first-layer cones :math:`K_D` of a pattern set and the support function of :math:`H`.

    For :math:`d = 2` and ``pats=None`` the cones are the plane's sectors between consecutive
    normals :math:`\pm x_i^\perp` (complete by construction: every :math:`u` lies in a closed
    sector, on which :math:`(Xu)_+ = DXu`), and the projection onto a sector has a closed form.
    Otherwise the cones are those of ``pats`` and the projection is an NNLS (:func:`cone_direction`).
    """

    def __init__(self, X: np.ndarray, pats: np.ndarray | None = None) -> None:
        self.X = X
        self.sectors = pats is None
        if pats is None:
            if X.shape[1] != 2:
                raise ValueError("sectors need d = 2; pass the patterns otherwise")
            nz = np.linalg.norm(X, axis=1) > 0
            th = np.arctan2(X[nz, 1], X[nz, 0])
            phi = np.sort(np.mod(np.concatenate([th + np.pi / 2, th - np.pi / 2]), 2 * np.pi))
            if phi.size:
                keep = np.concatenate([[True], np.diff(phi) > 1e-15])
                phi = phi[keep]
            if phi.size == 0:
                phi = np.array([0.0, np.pi])
            nxt = np.concatenate([phi[1:], [phi[0] + 2 * np.pi]])
            mid = 0.5 * (phi + nxt)
            self.R1 = np.column_stack([np.cos(phi), np.sin(phi)])
            self.R2 = np.column_stack([np.cos(nxt), np.sin(nxt)])
            self.pats = (X @ np.vstack([np.cos(mid), np.sin(mid)]) > 0).T
            ang = np.concatenate([phi, mid])
            self.seed = np.vstack([np.cos(ang), np.sin(ang)])
        else:
            self.pats = np.asarray(pats, dtype=bool)
            self.seed = np.zeros((X.shape[1], 0))
        self.D = self.pats.astype(float)
        self.last_top = np.zeros((0, X.shape[1]))
        self.row_norms = np.linalg.norm(X, axis=1)

    def support(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        r"""Upper bound (exact up to rounding) on :math:`\sigma_H(w) = \max_{\|u\|\le1}|w^T(Xu)_+|` and a
        unit direction :math:`u` whose atom :math:`\pm(Xu)_+` attains it."""
        A = (self.D * w[None, :]) @ self.X  # rows X^T D w
        if not self.sectors:
            cheap = np.linalg.norm(A, axis=1)
            best, direction = 0.0, np.zeros(self.X.shape[1])
            for p in np.argsort(cheap)[::-1]:
                if cheap[p] <= best:
                    break
                for s in (1.0, -1.0):
                    val, u = cone_direction(self.X, self.D[p], s * A[p])
                    val = min(val, float(cheap[p]))
                    if val > best:
                        best, direction = val, u
            self.last_top = direction[None, :]
            return best, direction
        # rounding allowance for entries whose sign flips at a computed sector boundary
        slack = 8 * np.finfo(float).eps * float(np.abs(w) @ self.row_norms)
        vals, dirs = [], []
        for s in (1.0, -1.0):
            a = s * A
            na = np.linalg.norm(a, axis=1)
            c1 = self.R1[:, 0] * a[:, 1] - self.R1[:, 1] * a[:, 0]
            c2 = a[:, 0] * self.R2[:, 1] - a[:, 1] * self.R2[:, 0]
            inside = (c1 >= 0) & (c2 >= 0)
            p1 = np.einsum("ij,ij->i", a, self.R1)
            p2 = np.einsum("ij,ij->i", a, self.R2)
            # rounding allowance: the value is a norm or an inner product of O(|a|) terms
            vals.append(np.where(inside, na, np.maximum(np.maximum(p1, p2), 0.0)) + 8 * np.finfo(float).eps * na)
            unit = a / np.maximum(na, np.finfo(float).tiny)[:, None]
            dirs.append(np.where(inside[:, None], unit, np.where((p1 >= p2)[:, None], self.R1, self.R2)))
        val = np.concatenate(vals) + slack
        D = np.concatenate(dirs)
        k = int(np.argmax(val))
        self.last_top = D[np.argsort(val)[::-1][:4]]  # the best few directions (extra cuts)
        return float(val[k]), D[k]


def norm_bound(X: np.ndarray, v: np.ndarray) -> float:
    r"""Proven bound :math:`c_3(v) \le \|X\|_2\max(\|v_+\|, \|v_-\|)`, valid without patterns
    (:math:`|v^T(h)_+| \le \|v_\pm\|\,\|h\|` and :math:`\|h\| \le \|X\|_2` on :math:`H`)."""
    xn = float(np.linalg.norm(X, 2)) * (1 + 1e-12)
    return xn * max(float(np.linalg.norm(np.maximum(v, 0))), float(np.linalg.norm(np.maximum(-v, 0))))


@dataclass
class ConstraintResult:
    """Outcome of :func:`second_layer_constraint` for one sign.

    ``upper``: proven upper bound on :math:`c_3^+(v)` (valid for the pattern set used);
    ``lower``: value :math:`v^T(h)_+` of the best atom found; ``atoms``: second-layer
    pre-activations :math:`h \\in H` (each a vector of length n, with its first-layer
    decomposition) whose value exceeds the target, best first; ``exact``: the search
    finished (``upper`` is the maximum up to ``rtol``) rather than stopping early;
    ``nodes``: branch-and-bound nodes solved.
    """

    upper: float
    lower: float
    atoms: list = field(default_factory=list)
    exact: bool = True
    nodes: int = 0


class _Pool:
    """Unit first-layer directions :math:`u_j` and their atoms :math:`(Xu_j)_+` (columns), shared by
    every node of a search."""

    def __init__(self, X: np.ndarray) -> None:
        self.X = X
        self.U = np.zeros((X.shape[1], 0))
        self.H = np.zeros((X.shape[0], 0))

    def add(self, u: np.ndarray) -> None:
        h = np.maximum(self.X @ u, 0.0)
        if not np.any(h):
            return
        if self.U.shape[1] and np.min(np.linalg.norm(self.U - u[:, None], axis=0)) <= 1e-12:
            return
        self.U = np.column_stack([self.U, u])
        self.H = np.column_stack([self.H, h])

    def extend(self, U: np.ndarray) -> None:
        """Add many directions at once (no duplicate check)."""
        H = np.maximum(self.X @ U, 0.0)
        keep = np.any(H > 0, axis=0)
        self.U = np.column_stack([self.U, U[:, keep]])
        self.H = np.column_stack([self.H, H[:, keep]])


@dataclass
class Atom:
    r"""A point :math:`h = \sum_j c_j(Xu_j)_+` of :math:`H` (unit :math:`u_j`, :math:`\sum_j|c_j| \le 1`)."""

    coef: np.ndarray  # (J,)
    U: np.ndarray  # (d, J)
    h: np.ndarray  # (n,)

    @property
    def gauge(self) -> float:
        return float(np.sum(np.abs(self.coef)))

    def normalized(self) -> "Atom":
        g = self.gauge
        return Atom(self.coef / g, self.U, self.h / g) if g > 0 else self


def _node(layer: FirstLayer, U0: np.ndarray, a: np.ndarray, neg: np.ndarray, vneg: np.ndarray,
          const: float, *, threshold: float = -np.inf, max_cuts: int = 12, rtol: float = 1e-10,
          mu0: np.ndarray | None = None) -> tuple[float, Atom | None, np.ndarray]:
    r"""Proven upper bound on :math:`\text{const} + \max_{h\in H} a^Th - \sum_{i\in N}|v_i|(h_i)_+` and
    the LP's maximizer (a point of :math:`H`).

    Kelley's cutting planes on the atoms :math:`\pm(Xu)_+`, starting from the directions ``U0``
    (the parent's active atoms); stops when the bound falls to ``threshold`` (the node is
    then pruned) or the linear program is optimal over :math:`H` to ``rtol``.
    """
    nN = len(neg)
    upper = np.inf
    atom = None
    # cheap bounds first: any mu in the box bounds the node (the parent's mu, 0, |v_N|)
    cands = [np.zeros(nN), vneg] + ([np.clip(mu0, 0.0, vneg)] if mu0 is not None else [])
    mu = cands[0]
    for m in cands:
        w = a.copy()
        if nN:
            w[neg] -= m
        val = const + layer.support(w)[0]
        if val < upper:
            upper, mu = val, m
    if upper <= threshold:
        return upper, None, mu
    pool = _Pool(layer.X)
    for j in range(U0.shape[1]):
        pool.add(U0[:, j])
    pool.extend(layer.seed)
    for _ in range(max_cuts):
        J = pool.H.shape[1]
        if J:
            Hs = np.hstack([pool.H, -pool.H])  # both signs
            c = np.concatenate([-(a @ Hs), vneg])
            A_ub = np.zeros((1 + nN, 2 * J + nN))
            A_ub[0, :2 * J] = 1.0
            if nN:
                A_ub[1:, :2 * J] = Hs[neg]
                A_ub[1:, 2 * J:] = -np.eye(nN)
            b_ub = np.zeros(1 + nN)
            b_ub[0] = 1.0
            res = linprog(c, A_ub=A_ub, b_ub=b_ub, bounds=(0, None), method="highs")
            if res.status != 0:  # pragma: no cover - keep the last multipliers
                break
            lp_val = -float(res.fun)
            lam = res.x[:2 * J]
            coef = lam[:J] - lam[J:]
            keep = np.abs(coef) > 0
            atom = Atom(coef[keep], pool.U[:, keep], pool.H[:, keep] @ coef[keep])
            mu_lp = np.clip(-res.ineqlin.marginals[1:], 0.0, vneg) if nN else mu
        else:
            lp_val, mu_lp = 0.0, mu
        w = a.copy()
        if nN:
            w[neg] -= mu_lp
        sv, u = layer.support(w)
        if const + sv < upper:
            upper, mu = const + sv, mu_lp
        if upper <= threshold or sv <= lp_val + rtol * (1.0 + abs(lp_val)) or not np.any(u):
            break
        for uu in layer.last_top:
            pool.add(uu)
    return upper, atom, mu


def second_layer_constraint(layer: FirstLayer, v: np.ndarray, *, target: float | None = None,
                            rtol: float = 1e-7, max_nodes: int = 4000, stop_at: int = 0) -> ConstraintResult:
    r"""Proven upper bound on :math:`c_3^+(v) = \max_{h\in H} v^T(h)_+` by branch and bound (module docstring).

    Parameters
    ----------
    layer : FirstLayer
        Data and first-layer cones (complete set: the bound is valid for every network).
    v : array (n,)
    target : float, optional
        Nodes whose upper bound is at most ``target`` are not explored further, and atoms
        with a value above it are collected (default: compute the maximum to ``rtol``).
    rtol : float
        Stop when the best open bound is within ``rtol`` of the best value found.
    max_nodes : int
        Node budget; when exhausted the largest open bound is returned (still valid).
    stop_at : int
        Return as soon as this many atoms with value above ``target`` were found (0: never).
    """
    X = layer.X
    n = X.shape[0]
    pos = np.flatnonzero(v > 0)
    neg = np.flatnonzero(v < 0)
    if pos.size == 0:
        return ConstraintResult(0.0, 0.0)
    vneg = -v[neg]
    b = np.linalg.norm(X, axis=1) * (1 + 1e-12)
    best_val, found = 0.0, []
    floor = -np.inf if target is None else target

    def solve(inn: frozenset, out: frozenset, U0: np.ndarray, mu0: np.ndarray | None, max_cuts: int = 12
              ) -> tuple[float, Atom | None, np.ndarray]:
        a = np.zeros(n)
        free = [i for i in pos if i not in inn and i not in out]
        idx_in = list(inn)
        a[idx_in] = v[idx_in]
        a[free] = 0.5 * v[free]
        const = 0.5 * float(np.sum(v[free] * b[free]))
        return _node(layer, U0, a, neg, vneg, const, threshold=max(floor, best_val * (1 + rtol)), mu0=mu0,
                     max_cuts=max_cuts)

    counter = 0
    up, atom, mu = solve(frozenset(), frozenset(), np.zeros((X.shape[1], 0)), None)
    heap = [(-up, counter, frozenset(), frozenset(), atom, mu)]
    nodes = 1
    closed_max = 0.0  # largest bound of a node closed (pruned or a leaf)
    exact = True
    while heap:
        negup, _, inn, out, atom, mu = heapq.heappop(heap)
        up = -negup
        h = np.zeros(n)
        if atom is not None and atom.gauge > 0:
            atom = atom.normalized()
            h = atom.h
            hv = float(v @ np.maximum(h, 0.0))
            best_val = max(best_val, hv)
            if target is not None and hv > target:
                found.append((hv, atom))
                if stop_at and len(found) >= stop_at:
                    found.sort(key=lambda t: -t[0])
                    rest = max([up] + [-e[0] for e in heap])
                    return ConstraintResult(max(rest, closed_max), best_val, [f[1] for f in found], False, nodes)
        if up <= max(floor, best_val * (1 + rtol)):
            closed_max = max(closed_max, up)
            continue
        free = [i for i in pos if i not in inn and i not in out]
        if not free:
            # a leaf above the pruning level: tighten its bound with more cutting planes
            U0 = atom.U if atom is not None else np.zeros((X.shape[1], 0))
            up2, atom2, _ = solve(inn, out, U0, mu, max_cuts=200)
            up = min(up, up2)
            if atom2 is not None and atom2.gauge > 0:
                atom2 = atom2.normalized()
                hv = float(v @ np.maximum(atom2.h, 0.0))
                best_val = max(best_val, hv)
                if target is not None and hv > target:
                    found.append((hv, atom2))
            closed_max = max(closed_max, up)
            continue
        if nodes >= max_nodes:
            exact = False
            closed_max = max(closed_max, up, max([-e[0] for e in heap], default=0.0))
            break
        gap = np.array([v[i] * (0.5 * (h[i] + b[i]) - max(h[i], 0.0)) for i in free])
        i = free[int(np.argmax(gap))] if np.max(gap) > 0 else free[int(np.argmax(v[free] * b[free]))]
        U0 = atom.U if atom is not None else np.zeros((X.shape[1], 0))
        for child in ((inn | {i}, out), (inn, out | {i})):
            cu, ch, cmu = solve(*child, U0, mu)
            nodes += 1
            counter += 1
            heapq.heappush(heap, (-min(cu, up), counter, child[0], child[1], ch, cmu))
    found.sort(key=lambda t: -t[0])
    return ConstraintResult(max(closed_max, best_val), best_val, [f[1] for f in found], exact, nodes)


def ascend_atoms(layer: FirstLayer, v: np.ndarray, starts: list[np.ndarray], *, target: float,
                 max_steps: int = 8, enough: int = 4) -> list[tuple[float, Atom]]:
    r"""Heuristic search for atoms with :math:`v^T(h)_+ > ` ``target`` (no bound; the branch and bound
    certifies).  From each start pattern :math:`E_0 \subseteq \{v > 0\}` alternate
    :math:`h \leftarrow \arg\max_h \varphi(E)` (one leaf of the branch and bound) and
    :math:`E \leftarrow \{i : v_i > 0, h_i > 0\}` until :math:`E` repeats; each step does not
    decrease :math:`v^T(h)_+`."""
    X = layer.X
    n = X.shape[0]
    pos = v > 0
    neg = np.flatnonzero(v < 0)
    vneg = -v[neg]
    out: list[tuple[float, Atom]] = []
    seen: set = set()
    for E0 in starts:
        if len(out) >= enough:
            break
        E = np.asarray(E0, bool) & pos
        U0 = np.zeros((X.shape[1], 0))
        mu = None
        for _ in range(max_steps):
            key = E.tobytes()
            if key in seen:
                break
            seen.add(key)
            a = np.where(E, v, 0.0)
            _, atom, mu = _node(layer, U0, a, neg, vneg, 0.0, mu0=mu, max_cuts=20)
            if atom is None or atom.gauge <= 0:
                break
            atom = atom.normalized()
            U0 = atom.U
            val = float(v @ np.maximum(atom.h, 0.0))
            if val > target:
                out.append((val, atom))
            E = pos & (atom.h > 0)
    out.sort(key=lambda t: -t[0])
    return out
