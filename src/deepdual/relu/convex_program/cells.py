r"""Shared pieces of the dual-constraint oracles (``docs/convex_program.md`` §11): the result
type, cell ascent (feasible values of :math:`f(u) = v^T(Xu)_+` from exact cell maxima) and the
merging of duplicate and zero rows (exact: the terms of identical rows add)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import nnls

__all__ = ["OracleResult", "cell_ascent", "MergedRows", "merge_rows", "collect_violator", "violated_cells"]


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


def violated_cells(X: np.ndarray, v: np.ndarray, above: float, rng: np.random.Generator, *,
                   n_directions: int = 10000, max_cells: int = 50, max_ascents: int | None = None,
                   seeds: np.ndarray | None = None, block_entries: int = 2**20) -> list[tuple]:
    r"""Cells whose value :math:`\max_{u\in K_D,\|u\|\le1}\pm v^TD Xu` exceeds ``above``,
    found by screening directions and cell ascent (a *search*, never a bound).

    :math:`f_\pm(u) = \pm v^T(Xu)_+` is evaluated at ``n_directions`` random unit vectors
    (one matrix product per block of ``block_entries`` entries); from the best directions
    of each sign, one per distinct starting pattern, and from every row of ``seeds`` (on
    its larger side), :func:`cell_ascent` climbs to a local maximum over the cells (an
    exact cell maximum).
    Used by column generation to price many violated patterns at once
    (``docs/convex_program.md`` §13); the oracle's proven bound is separate.

    Returns
    -------
    list of ``(value, sign, pattern, u)``
        Distinct violated cells (``sign * v^T(Xu)_+ = value > above`` at the unit vector
        ``u``, ``pattern = Xu >= 0``), largest value first, at most ``max_cells`` per sign.
    """
    X = np.asarray(X, dtype=float)
    v = np.asarray(v, dtype=float).reshape(-1)
    n, d = X.shape
    if n == 0 or d == 0 or not np.any(v):
        return []
    S = np.zeros((d, 0)) if seeds is None else np.asarray(seeds, dtype=float).reshape(-1, d).T
    U = np.hstack([S, rng.standard_normal((d, max(int(n_directions), 0)))])
    nrm = np.linalg.norm(U, axis=0)
    n_seeds = int(np.count_nonzero(nrm[:S.shape[1]] > 0))
    U = U[:, nrm > 0] / nrm[nrm > 0]
    F = np.empty(U.shape[1])
    step = max(1, block_entries // max(n, 1))
    for a in range(0, U.shape[1], step):
        F[a:a + step] = v @ np.maximum(X @ U[:, a:a + step], 0.0)
    max_ascents = 4 * max_cells if max_ascents is None else max_ascents
    found: dict[bytes, tuple] = {}

    def climb(s: float, u0: np.ndarray) -> None:
        val, u, pat = cell_ascent(X, s * v, u0)
        if val > above:
            key = bytes([s > 0]) + np.packbits(pat).tobytes()
            if key not in found or found[key][0] < val:
                found[key] = (val, s, pat, u)

    for j in range(n_seeds):  # every seed climbs, on the side where it is larger
        if F[j] != 0:
            climb(float(np.sign(F[j])), U[:, j])
    for s in (1.0, -1.0):
        order = np.argsort(-s * F[n_seeds:])[:max_ascents] + n_seeds
        starts: set[bytes] = set()
        n_s = len(found)
        for j in order:
            if len(found) - n_s >= max_cells:
                break
            key0 = np.packbits(X @ U[:, j] >= 0).tobytes()
            if key0 in starts:
                continue
            starts.add(key0)
            climb(s, U[:, j])
    # at most max_cells per sign (seeds included): the largest values
    out = []
    for s in (1.0, -1.0):
        out += sorted((c for c in found.values() if c[1] == s), key=lambda c: -c[0])[:max_cells]
    return sorted(out, key=lambda c: -c[0])
