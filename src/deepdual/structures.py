r"""Detection of the data structures under which closed forms exist.

* **rank one**: :math:`X = c\,a_0^T` with :math:`c \ge 0` (or :math:`c \le 0`, the same case with
  :math:`a_0 \to -a_0`) — SPEC 2.4;
* **whitened**: :math:`XX^T = I_n` (so :math:`n \le d`) — SPEC 2.6;
* **one-dimensional**: :math:`d = 1` — SPEC 2.5;
* **orthonormal columns**: :math:`X^TX = I_d` (vector-output linear closed form, SPEC 2.2).

Tolerances are relative to the data's scale and to machine precision: a singular
value counts as zero below ``max(n, d) * eps * s_max * 100`` (the LAPACK rank
threshold with a safety factor of 100 for data written to text and read back);
``XX^T = I`` holds when every entry of ``XX^T - I`` is below ``100 * d * eps``
(the rounding error of an inner product of length d of unit-norm rows, times a
safety factor).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RankOne", "rank_one_factors", "is_whitened", "has_orthonormal_columns", "detect_structure"]

_EPS = np.finfo(float).eps


@dataclass
class RankOne:
    r"""Factors of rank-one data :math:`X = c\,a_0^T` with :math:`c \ge 0`, :math:`\|c\| = 1`."""

    c: np.ndarray  # (n,), non-negative, unit norm
    a0: np.ndarray  # (d,)


def rank_one_factors(X: np.ndarray, *, rtol: float | None = None, require_sign: bool = True) -> RankOne | None:
    """Return :class:`RankOne` if ``X`` is rank one (with a one-signed ``c`` if
    ``require_sign``), else ``None``."""
    n, d = X.shape
    tol = (max(n, d) * _EPS * 100) if rtol is None else rtol
    quick = _rank_one_quick(X, tol)
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
    else:
        c, a0 = quick
    # c's entries must share one sign; entries below the rounding level count as zero
    ctol = tol * np.max(np.abs(c))
    if require_sign:
        if np.all(c >= -ctol):
            pass
        elif np.all(c <= ctol):
            c, a0 = -c, -a0
        else:
            return None
        c = np.maximum(c, 0.0)
        c /= np.linalg.norm(c)
    return RankOne(c, a0)


def _rank_one_quick(X: np.ndarray, tol: float):
    r"""O(nd) test deciding most cases of ``sigma_2 <= tol * sigma_1`` without an SVD.

    With :math:`\hat r` the largest row of ``X`` and :math:`E = X(I - \hat r\hat r^T)`:

    * :math:`\sigma_2 \le \|E\|_2 \le \|E\|_F` (:math:`X\hat r\hat r^T` is a rank-one
      approximation), so :math:`\|E\|_F \le` ``tol`` :math:`\|X\hat r\| \le` ``tol`` :math:`\sigma_1`
      proves rank one; then :math:`c = X\hat r/\|X\hat r\|`, :math:`a_0 = X^Tc`.
    * if :math:`\sigma_2 \le \tau\sigma_1` (:math:`\tau` = ``tol``), writing
      :math:`X = \sigma_1 uv^T + R` with :math:`\|R\|_2 = \sigma_2`, the largest row has norm
      :math:`\ge \sigma_1/\sqrt n`, its angle to :math:`v` satisfies
      :math:`\sigma_1\sin\theta \le \tau\sigma_1\sqrt n/(1 - \tau\sqrt n)`, and
      :math:`\|E\|_F \le \sigma_1\sin\theta + \sqrt{k}\,\sigma_2`.  So a larger
      :math:`\|E\|_F` proves that ``X`` is *not* rank one.

    Returns ``(c, a0)``, ``False`` (not rank one) or ``None`` (undecided: use the SVD).
    """
    n, d = X.shape
    if tol * np.sqrt(n) >= 0.5 or X.size == 0:
        return None
    norms = np.einsum("ij,ij->i", X, X)
    i = int(np.argmax(norms))
    if norms[i] == 0.0:
        return None
    r = X[i] / np.sqrt(norms[i])
    xr = X @ r
    nxr2 = float(xr @ xr)
    fro2 = float(norms.sum())
    k = min(n, d)
    bound = tol * np.sqrt(fro2) * (np.sqrt(n) / (1 - tol * np.sqrt(n)) + np.sqrt(k)) * (1 + 1e-8)
    # Pythagoras, ||E||_F^2 = ||X||_F^2 - ||X r||^2, without forming E; both sums carry a
    # rounding error below (n + d) eps ||X||_F^2 each, so a margin of 4 (n + d) eps
    # ||X||_F^2 keeps the "not rank one" decision exact
    if fro2 - nxr2 > bound**2 + 4 * (n + d) * _EPS * fro2:
        return False
    # accurate when E is small; row blocks keep the temporary small (memory-bound step)
    E = float(np.sqrt(sum(float(np.sum((X[b:b + 2048] - np.outer(xr[b:b + 2048], r)) ** 2))
                          for b in range(0, n, 2048))))
    nxr = np.sqrt(nxr2)
    if E <= tol * nxr:
        c = xr / nxr
        return c, X.T @ c
    if E > bound:
        return False
    return None


def is_whitened(X: np.ndarray, *, atol: float | None = None) -> bool:
    r"""True when :math:`XX^T = I_n` up to ``atol`` (entrywise)."""
    n, d = X.shape
    if n > d:
        return False
    tol = 100 * d * _EPS if atol is None else atol
    # the diagonal of X X^T (row norms, O(nd)) rules out most data before the O(n^2 d) product
    if np.max(np.abs(np.einsum("ij,ij->i", X, X) - 1.0)) > tol:
        return False
    return bool(np.max(np.abs(X @ X.T - np.eye(n))) <= tol)


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
