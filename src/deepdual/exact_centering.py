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

__all__ = ["center_exactly"]


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
