r"""Dual points orthogonal to a free output bias, exactly.

With an unpenalized output bias :math:`b`, weak duality needs a dual point :math:`V` with
:math:`V^T\mathbf 1 = 0`: otherwise :math:`\inf_b \langle V, \mathbf 1 b^T\rangle = -\infty`.  Centering
in floating point leaves column sums of about :math:`\epsilon\sum_i|V_{ik}|`, harmless when the
dual is used at scale :math:`t \le 1`, but the squared loss's dual :math:`D(tV) = t\langle V,
Y\rangle - \frac{t^2}2\|V\|^2` is maximized at any scale up to :math:`\beta/c(V)`, and when
:math:`c(V)` is itself at rounding level (a network whose residual is constant) the scale
reaches :math:`10^{16}` and the rounding of the sum becomes an :math:`O(1)` *invalid* bound.
:func:`center_exactly` makes every column sum exactly zero in exact arithmetic of the stored
doubles (``math.fsum`` is correctly rounded, so a zero ``fsum`` certifies an exact zero).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["center_exactly", "center_rows_and_columns_exactly"]


def center_exactly(V: np.ndarray) -> np.ndarray:
    r"""A copy of ``V`` (n, K) whose every column sums to exactly 0 (exact arithmetic on the
    stored doubles), within :math:`8n\epsilon\max|V_{:k}|` of the floating-point centering.

    Each centered column is rounded to a grid of step :math:`q = 2^e` with
    :math:`n\max|V_{:k}| \le 2^{52} q`, so its entries are integers times ``q`` whose sum is
    computed exactly in int64; that sum is removed, one unit per entry, from the largest
    entries, and the integers
    are mapped back (exact: products of integers below :math:`2^{53}` with a power of two).
    A column too small for the grid (``q`` would be subnormal) is set to 0, which is always
    orthogonal to the bias."""
    V = np.array(V, dtype=float, copy=True)
    V -= V.mean(axis=0, keepdims=True)
    n = V.shape[0]
    for k in range(V.shape[1]):
        col = V[:, k]
        m = float(np.max(np.abs(col))) if n else 0.0
        if m == 0.0:
            continue
        e = math.frexp(m * n)[1] - 52  # n * max|col| < 2^(e + 52)
        q = math.ldexp(1.0, e)
        if q < np.finfo(float).tiny:
            col[:] = 0.0
            continue
        ints = np.rint(col / q).astype(np.int64)
        S = int(ints.sum())  # |S| <= n/2 + 1: each entry moved by <= q/2, the float sum by ~q/4
        if S:  # spread over the largest entries: each moves by at most ceil(|S|/n) units
            order = np.argsort(-np.abs(ints), kind="stable")
            per, rem = divmod(abs(S), n)
            sgn = 1 if S > 0 else -1
            ints -= sgn * per
            ints[order[:rem]] -= sgn
        col[:] = ints.astype(float) * q
    return V


def center_rows_and_columns_exactly(V: np.ndarray) -> np.ndarray:
    r"""A copy of ``V`` (n, K) whose every row *and* every column sums to exactly 0.

    The cross-entropy loss needs dual points with zero row sums (its conjugate is finite only
    when :math:`Y - V` has rows in the probability simplex), and a free output bias needs zero
    column sums (:func:`center_exactly`).  Centering one after the other in floating point
    leaves the first sums at rounding level; an exact double centering is an integer matrix
    with zero margins times a power of two:

    1. doubly center in floating point, :math:`V - \bar V_{i\cdot} - \bar V_{\cdot k} + \bar V`;
    2. round the first :math:`K - 1` columns to a grid :math:`q\mathbb Z`
       (:math:`nK\max|V| \le 2^{52}q`) and make each column's integer sum exactly 0, as in
       :func:`center_exactly`;
    3. set the last column to minus the sum of the others, in integers (so every row sum is
       exactly 0, and the last column's sum is minus the sum of zero column sums: exactly 0).

    Every entry moves by at most about :math:`(K + 8n)\epsilon\max|V|` from the floating-point
    double centering, and the integers stay below :math:`2^{53}`, so mapping back is exact.
    With ``K = 1`` the only such matrix is 0."""
    V = np.array(V, dtype=float, copy=True)
    if V.ndim != 2:
        raise ValueError(f"`V` must be a 2-D array, got shape {V.shape}")
    n, K = V.shape
    if n == 0 or K == 0:
        return V
    if K == 1:
        return np.zeros_like(V)
    V -= V.mean(axis=1, keepdims=True)
    V -= V.mean(axis=0, keepdims=True)
    m = float(np.max(np.abs(V)))
    if m == 0.0 or not np.isfinite(m):
        return np.zeros_like(V) if m == 0.0 else V
    e = math.frexp(m * n * K)[1] - 52  # n K max|V| < 2^(e + 52)
    q = math.ldexp(1.0, e)
    if q < np.finfo(float).tiny:
        return np.zeros_like(V)
    ints = np.rint(V[:, :-1] / q).astype(np.int64)
    for k in range(K - 1):
        col = ints[:, k]
        S = int(col.sum())
        if S:
            order = np.argsort(-np.abs(col), kind="stable")
            per, rem = divmod(abs(S), n)
            sgn = 1 if S > 0 else -1
            col -= sgn * per
            col[order[:rem]] -= sgn
    last = -ints.sum(axis=1)
    out = np.empty_like(V)
    out[:, :-1] = ints.astype(float) * q
    out[:, -1] = last.astype(float) * q
    return out
