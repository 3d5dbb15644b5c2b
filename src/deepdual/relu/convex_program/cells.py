r"""Shared pieces of the dual-constraint oracles (``docs/convex_program.md`` §11): the result
type, cell ascent (feasible values of :math:`f(u) = v^T(Xu)_+` from exact cell maxima) and the
merging of duplicate and zero rows (exact: the terms of identical rows add)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import nnls

__all__ = ["OracleResult", "cell_ascent", "MergedRows", "merge_rows", "collect_violator"]


@dataclass
class OracleResult:
    r"""Result of :func:`dual_constraint_bb`.

    ``upper`` is a proven upper bound on :math:`c(v)` (exact when ``exact``), ``lower``
    the value :math:`|v^T(X_ku)_+|` attained by the unit direction ``u`` on piece
    ``piece`` with sign ``sign`` (so :math:`\text{sign}\cdot v^T(X_ku)_+ = \text{lower}`),
    ``pattern`` its activation pattern :math:`1[X_ku \ge 0]`.  ``violators`` lists
    ``(value, sign, piece, pattern, u)`` of distinct cells found with value above the
    ``collect_above`` threshold, best first.  ``history`` holds ``(time_s, lower, upper)``;
    ``search`` names the tree (``"row signs"`` or ``"directions"``; ``nodes`` counts its
    nodes or boxes).
    """

    upper: float
    lower: float
    u: np.ndarray
    sign: float
    piece: int
    pattern: np.ndarray
    exact: bool
    nodes: int
    time_s: float
    status: str
    history: list = field(default_factory=list)
    violators: list = field(default_factory=list)
    search: str = "row signs"


def cell_ascent(X: np.ndarray, v: np.ndarray, u: np.ndarray, *, max_steps: int = 20
                ) -> tuple[float, np.ndarray, np.ndarray]:
    r"""Local ascent of :math:`f(u) = v^T(Xu)_+` over the cells of the arrangement.

    From ``u``: pattern :math:`D = 1[Xu\ge0]`, exact maximum of :math:`v^TDXu` over the
    cell :math:`K_D\cap\{\|u\|\le1\}` by NNLS (its maximizer is
    :math:`\Pi_{K_D}(a)/\|\Pi_{K_D}(a)\|`, :math:`a = X^TDv`), repeated while the value
    rises.  Returns ``(f(u*), u*, pattern)`` with ``f`` evaluated directly at the
    returned unit vector (a feasible value, never above :math:`g(v)`).
    """
    def f(z: np.ndarray) -> float:
        return float(v @ np.maximum(X @ z, 0.0))

    nu = float(np.linalg.norm(u))
    best_u = u / nu if nu > 0 else np.zeros(X.shape[1])
    best = f(best_u)
    seen: set[bytes] = set()
    for _ in range(max_steps):
        d = (X @ best_u >= 0)
        key = np.packbits(d).tobytes()
        if key in seen:
            break
        seen.add(key)
        sgn = 2.0 * d - 1.0
        A = X.T * sgn[None, :]
        b = -(X.T @ (d * v))
        if not np.any(b):
            break
        try:
            mu, _ = nnls(A, b, maxiter=50 * max(1, A.shape[1]))
        except RuntimeError:  # pragma: no cover
            break
        r = A @ mu - b
        nr = float(np.linalg.norm(r))
        if nr <= 0:
            break
        z = r / nr
        val = f(z)
        if val <= best * (1 + 1e-13) + 1e-300:
            break
        best, best_u = val, z
    return best, best_u, (X @ best_u >= 0)


@dataclass
class MergedRows:
    """Distinct non-zero rows of ``Xfull`` with their summed weights (``idx``: row -> merged row, -1 zero)."""

    X: np.ndarray          # merged distinct non-zero rows
    v: np.ndarray          # merged weights
    idx: np.ndarray        # original row -> merged row (-1: zero row)
    norms: np.ndarray
    Xfull: np.ndarray


def merge_rows(X: np.ndarray, v: np.ndarray) -> MergedRows:
    """Drop zero rows and merge identical rows (their terms add: exact)."""
    norms = np.linalg.norm(X, axis=1)
    nz = norms > 0
    idx = np.full(X.shape[0], -1, dtype=np.intp)
    if not np.any(nz):
        return MergedRows(np.zeros((0, X.shape[1])), np.zeros(0), idx, np.zeros(0), X)
    U, inv = np.unique(X[nz], axis=0, return_inverse=True)
    inv = np.asarray(inv).reshape(-1)
    vm = np.zeros(len(U))
    np.add.at(vm, inv, v[nz])
    idx[nz] = inv
    return MergedRows(U, vm, idx, np.linalg.norm(U, axis=1), X)


def collect_violator(violators: dict, val: float, u: np.ndarray, Xfull: np.ndarray, s: float, k: int) -> None:
    """Keep the direction ``u`` (value ``val``, sign ``s``, piece ``k``) as the violator of its
    full-data activation pattern ``Xfull @ u >= 0`` when it beats the one already kept; both
    searches of the oracle (row signs, directions) collect violating patterns this way."""
    full = Xfull @ u >= 0
    key = bytes([s > 0]) + int(k).to_bytes(4, "little") + np.packbits(full).tobytes()
    if key not in violators or violators[key][0] < val:
        violators[key] = (val, s, k, full, u.copy())
