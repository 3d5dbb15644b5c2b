r"""Detection of the data structures under which closed forms exist.

* **rank one**: :math:`X = c\,a_0^T` with :math:`c \ge 0` (or :math:`c \le 0`, the same case with
  :math:`a_0 \to -a_0`) — docs/theory.md §2.4;
* **whitened**: :math:`XX^T = I_n` (so :math:`n \le d`) — docs/theory.md §2.6;
* **one-dimensional**: :math:`d = 1` — docs/theory.md §2.5;
* **orthonormal columns**: :math:`X^TX = I_d` (vector-output linear closed form, docs/theory.md §2.2).

Tolerances are relative to the data's scale and to machine precision: a singular
value counts as zero below ``max(n, d) * eps * s_max * 100`` (the LAPACK rank
threshold with a safety factor of 100 for data written to text and read back);
``XX^T = I`` holds when every entry of ``XX^T - I`` is below ``100 * d * eps``
(the rounding error of an inner product of length d of unit-norm rows, times a
safety factor).

Cost: the rank-one test is O(nd) (a few passes over ``X``: a pivot search and one blocked
residual pass, see :func:`_rank_one_pivot`); an SVD is needed only when
:math:`\sigma_2/\sigma_1` lies within a small factor of the tolerance.  The whitening test
needs the n x n product :math:`XX^T`; :func:`whitened_gram` returns it so that it is formed
once per solve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RankOne", "rank_one_factors", "is_whitened", "whitened_gram", "has_orthonormal_columns", "detect_structure"]

_EPS = np.finfo(float).eps


@dataclass
class RankOne:
    r"""Factors of rank-one data :math:`X = c\,a_0^T` with :math:`c \ge 0`, :math:`\|c\| = 1`.

    ``residual``, when set, is a proven upper bound on :math:`\|X - c\,a_0^T\|_2` (computed with
    the factors, rounding included), so solvers need not form :math:`X - c\,a_0^T` again.
    """

    c: np.ndarray  # (n,), non-negative, unit norm
    a0: np.ndarray  # (d,)
    residual: float | None = None


#: doubles per block of the residual pass (512 KiB): a block stays in cache
_BLOCK_ELEMENTS = 65536


def _residual_pass(X: np.ndarray, c: np.ndarray, a: np.ndarray, *, stop_above: float = np.inf
                   ) -> tuple[float, float, float]:
    r"""One blocked pass over ``X``: :math:`(\|R\|_F^2, \max|R_{ij}|, \|X\|_F^2)` with :math:`R = X - ca^T`.

    Each block of rows is copied into a cache-sized buffer and updated in place by the BLAS
    rank-one update ``dger`` (no n x d temporary).  The pass stops early, returning
    ``max|R| = inf`` sums of the rows seen, as soon as ``max|R_{ij}| > stop_above``.
    """
    from scipy.linalg import blas

    n, d = X.shape
    rows = max(1, _BLOCK_ELEMENTS // d)
    buf = np.empty((min(rows, n), d))
    r2 = x2 = rmax = 0.0
    for b in range(0, n, rows):
        Xb = X[b:b + rows]
        bb = buf[:Xb.shape[0]]
        np.copyto(bb, Xb)
        flat = bb.ravel()
        x2 += float(flat @ flat)
        # bb.T is the Fortran-ordered (d, rows) view: dger updates it to bb - c_b a^T in place
        blas.dger(-1.0, a, c[b:b + rows], a=bb.T, overwrite_a=1)
        r2 += float(flat @ flat)
        rmax = max(rmax, float(bb.max()), -float(bb.min()))
        if rmax > stop_above:
            return r2, np.inf, x2
    return r2, rmax, x2


def rank_one_factors(X: np.ndarray, *, rtol: float | None = None, require_sign: bool = True) -> RankOne | None:
    r"""Return :class:`RankOne` if ``X`` is rank one (with a one-signed ``c`` if
    ``require_sign``), else ``None``.

    "Rank one" means :math:`\sigma_2 \le \tau\sigma_1` with :math:`\tau` = ``rtol`` (default
    ``max(n, d) * eps * 100``, module docstring).  The decision is made in O(nd) by
    :func:`_rank_one_pivot` (three passes over ``X``, no SVD) whenever it can be proven either
    way; only data with :math:`\sigma_2` within a small factor of :math:`\tau\sigma_1` fall back
    to an SVD, so the answer always agrees with the SVD-based definition.
    """
    n, d = X.shape
    tol = (max(n, d) * _EPS * 100) if rtol is None else rtol
    if X.size == 0:
        return None
    quick = _rank_one_pivot(X, tol)
    if quick is False:
        return None
    if quick is None:
        U, s, Vt = np.linalg.svd(X, full_matrices=False)
        if s.size == 0 or s[0] == 0.0:
            return None
        if s.size > 1 and s[1] > tol * s[0]:
            return None
        c = U[:, 0].copy()
        a0 = s[0] * Vt[0]
        residual = None
    else:
        c, a0, residual = quick
    # c's entries must share one sign; entries below the rounding level count as zero
    ctol = tol * np.max(np.abs(c))
    if require_sign:
        if np.all(c >= -ctol):
            pass
        elif np.all(c <= ctol):
            c, a0 = -c, -a0
        else:
            return None
        c0 = c
        c = np.maximum(c, 0.0)
        c /= np.linalg.norm(c)
        if residual is not None:
            # X - c a0^T = (X - c0 a0^T) + (c0 - c) a0^T: add the (rounding-level) change of c
            residual += float(np.linalg.norm(c0 - c)) * float(np.linalg.norm(a0)) * (1 + 1e-12)
    return RankOne(c, a0, residual)


def _rank_one_pivot(X: np.ndarray, tol: float):
    r"""O(nd) test deciding ``sigma_2 <= tol * sigma_1`` without an SVD (cross approximation).

    Let :math:`p = X_{ij}` be an entry of largest modulus, :math:`\tilde c = X_{:,j}/p`
    (so :math:`|\tilde c_k| \le 1`, :math:`\tilde c_i = 1`), :math:`a = X_{i,:}` and
    :math:`R = X - \tilde c\,a^T` (the Schur complement of the pivot).

    * **accept**: :math:`\tilde c a^T` has rank one, so :math:`\sigma_2 \le \|R\|_2 \le \|R\|_F`,
      and :math:`\sigma_1 \ge \|\tilde c a^T\|_2 - \|R\|_2 \ge \|\tilde c\|\|a\| - \|R\|_F`.
      Hence :math:`\|R\|_F \le \tau(\|\tilde c\|\|a\| - \|R\|_F)` proves rank one.
    * **reject**: :math:`R_{kl} = \det S/p` for the 2 x 2 submatrix :math:`S` of rows
      :math:`i, k` and columns :math:`j, l`; :math:`|\det S| = \sigma_1(S)\sigma_2(S)`,
      :math:`\sigma_1(S) \le \|S\|_F \le 2|p|` (every entry is at most :math:`|p|`) and
      :math:`\sigma_2(S) \le \sigma_2(X)` (interlacing for submatrices).  So
      :math:`\max|R_{kl}| \le 2\sigma_2` (the maximal-volume bound of Goreinov & Tyrtyshnikov
      for rank one), and :math:`\max|R_{kl}| > 2\tau\|X\|_F \ge 2\tau\sigma_1` proves
      :math:`\sigma_2 > \tau\sigma_1`.

    Rounding: each computed entry of :math:`R` is within :math:`2\epsilon(|X_{kl}| + |\tilde c_k a_l|)
    \le 4\epsilon|p|` of the exact one, so :math:`\|R\|_F` moves by at most
    :math:`4\epsilon|p|\sqrt{nd}` and :math:`\max|R|` by :math:`4\epsilon|p|`; sums of squares
    carry a relative error below :math:`nd\,\epsilon`.  Both tests include these margins, so
    each decision is proven for the exact ``X``.

    Returns ``(c, a0, residual)`` with ``c`` unit, :math:`X \approx c a_0^T` and ``residual``
    :math:`\ge \|X - ca_0^T\|_2`; ``False`` (not rank one) or ``None`` (undecided: use the SVD).

    References
    ----------
    S. A. Goreinov and E. E. Tyrtyshnikov, "The maximal-volume concept in approximation by
    low-rank matrices", Contemporary Mathematics 280, 2001.
    """
    n, d = X.shape
    if n >= 2 and d >= 2:
        # cheap rejection first (most data are far from rank one): sigma_2 of the first rows
        # is a lower bound on sigma_2(X) (interlacing) and sigma_1(X) <= ||X||_F; LAPACK's
        # singular values are accurate to a few eps ||S||_2 (margin 16 m eps ||S||_F)
        S = X[:8]
        sS = np.linalg.svd(S, compute_uv=False)
        if sS.size > 1:
            # ravel(order="K") is a view for C- and Fortran-ordered X (no n x d temporary)
            flat = X.ravel(order="K")
            xf = float(np.sqrt(flat @ flat))
            margin = 16 * max(S.shape) * _EPS * float(np.linalg.norm(S))
            if sS[1] - margin > tol * xf * (1 + 2 * n * d * _EPS) * (1 + 1e-12):
                return False
    # pivot: an entry of largest modulus, found on X's memory in its own order (no copy)
    if X.flags.c_contiguous:
        flat, order = X.ravel(), "C"
    elif X.flags.f_contiguous:
        flat, order = X.T.ravel(), "F"
    else:
        flat, order = X.ravel(), "C"
    kmax, kmin = int(np.argmax(flat)), int(np.argmin(flat))
    k = kmax if abs(float(flat[kmax])) >= abs(float(flat[kmin])) else kmin
    i, j = np.unravel_index(k, X.shape, order=order)
    i, j = int(i), int(j)
    p = float(X[i, j])
    if p == 0.0:
        return False  # X = 0 has no rank-one factorization (sigma_1 = 0)
    ct = X[:, j] / p
    a = np.array(X[i], dtype=float)
    cn, an = float(np.linalg.norm(ct)), float(np.linalg.norm(a))
    ap = abs(p)
    # reject early on the first block with a large entry: sigma_1 <= ||X||_F <= sqrt(nd) |p|
    stop = 2.0 * tol * np.sqrt(n * d) * ap * (1 + 1e-12) + 4 * _EPS * ap
    r2, rmax, x2 = _residual_pass(X, ct, a, stop_above=stop)
    if not np.isfinite(rmax):
        return False
    sum_err = 1 + 2 * n * d * _EPS  # relative error of a sum of n d squares (computed in float64)
    R_hi = np.sqrt(r2 * sum_err) + 4 * _EPS * ap * np.sqrt(n * d)
    # the computed norms ||c~||, ||a|| carry relative errors below (n + d) eps
    if R_hi <= tol * (cn * an * (1 - 4 * (n + d) * _EPS) - R_hi):
        return ct / cn, cn * a, float(R_hi)
    if rmax - 4 * _EPS * ap > 2.0 * tol * np.sqrt(x2 * sum_err) * (1 + 1e-12):
        return False
    return None


def whitened_gram(X: np.ndarray, *, atol: float | None = None) -> np.ndarray | None:
    r""":math:`G = XX^T` when :math:`XX^T = I_n` up to ``atol`` (entrywise), else ``None``.

    The test of :func:`is_whitened`, returning the Gram matrix so that a solver needing it
    (e.g. for a bound on :math:`\|X\|_2`) does not form the O(n^2 d) product again.
    """
    n, d = X.shape
    if n > d:
        return None
    tol = 100 * d * _EPS if atol is None else atol
    # the diagonal of X X^T (row norms, O(nd)) rules out most data before the O(n^2 d) product
    if np.max(np.abs(np.einsum("ij,ij->i", X, X) - 1.0)) > tol:
        return None
    G = X @ X.T
    # G_ii is within tol <= 1/2 of 1 whenever it is kept, so G_ii - 1 and (G_ii - 1) + 1 are exact
    G[np.diag_indices(n)] -= 1.0
    dev = float(np.max(np.abs(G)))
    G[np.diag_indices(n)] += 1.0
    return G if dev <= tol else None


def is_whitened(X: np.ndarray, *, atol: float | None = None) -> bool:
    r"""True when :math:`XX^T = I_n` up to ``atol`` (entrywise)."""
    return whitened_gram(X, atol=atol) is not None


def has_orthonormal_columns(X: np.ndarray, *, atol: float | None = None) -> bool:
    r"""True when :math:`X^TX = I_d` up to ``atol`` (entrywise)."""
    n, d = X.shape
    if d > n:
        return False
    tol = 100 * n * _EPS if atol is None else atol
    # the diagonal of X^T X (column norms, O(nd)) rules out most data before the O(n d^2) product
    if np.max(np.abs(np.einsum("ij,ij->j", X, X) - 1.0)) > tol:
        return False
    return bool(np.max(np.abs(X.T @ X - np.eye(d))) <= tol)


def detect_structure(X: np.ndarray) -> str:
    """One of ``"one_dimensional"``, ``"rank_one"``, ``"whitened"``, ``"general"``."""
    if X.shape[1] == 1:
        return "one_dimensional"
    if rank_one_factors(X) is not None:
        return "rank_one"
    if is_whitened(X):
        return "whitened"
    return "general"
