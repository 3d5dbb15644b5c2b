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
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    if s.size == 0 or s[0] == 0.0:
        return None
    tol = (max(n, d) * _EPS * 100) if rtol is None else rtol
    if s.size > 1 and s[1] > tol * s[0]:
        return None
    c = U[:, 0].copy()
    a0 = s[0] * Vt[0]
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


def is_whitened(X: np.ndarray, *, atol: float | None = None) -> bool:
    r"""True when :math:`XX^T = I_n` up to ``atol`` (entrywise)."""
    n, d = X.shape
    if n > d:
        return False
    tol = 100 * d * _EPS if atol is None else atol
    return bool(np.max(np.abs(X @ X.T - np.eye(n))) <= tol)


def has_orthonormal_columns(X: np.ndarray, *, atol: float | None = None) -> bool:
    r"""True when :math:`X^TX = I_d` up to ``atol`` (entrywise)."""
    n, d = X.shape
    if d > n:
        return False
    tol = 100 * n * _EPS if atol is None else atol
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
