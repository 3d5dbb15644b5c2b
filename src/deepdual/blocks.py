r"""Row blocks: products with many columns computed a block of rows at a time.

A two-layer ReLU network's hidden layer :math:`(XU)_+` has :math:`n \times m` entries;
for large :math:`n` it is never formed whole.  Rows are independent, so every row of
a result computed block by block is the same product as in one piece (up to the
rounding of the matrix-product kernel), and only one :math:`b \times m` temporary,
:math:`b m \approx` :data:`BLOCK_ENTRIES`, is alive at a time (docs/performance.md §8).
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["BLOCK_ENTRIES", "MIN_BLOCK_ENTRIES", "BLOCK_DATA_FRACTION", "MEMORY_FACTOR", "MEMORY_FLOOR",
           "data_bytes", "block_entries", "memory_budget", "row_norms", "row_blocks", "rows_with_ones",
           "relu_layer_output", "ScaledDesign"]

#: entries of one (rows x width) float temporary (2 MB in float64); a few are alive at a
#: time, so their total is a constant next to the data at large n (docs/performance.md §8)
BLOCK_ENTRIES = 2**18

#: a row-block temporary holds at most this share of the data (X plus the masks, in bytes):
#: the solvers keep up to ~10 temporaries alive, so together they stay a fraction of the
#: data at every n instead of a constant that exceeds small data (docs/performance.md §8)
BLOCK_DATA_FRACTION = 1 / 32
#: ... but at least this many entries (128 kB in float64): below it the per-block overhead
#: costs time (first-order solver at n = 1e4, d = 10, 50 patterns: 2^15 entries as fast as
#: 2^17, 2^14 ~10-20 % and 2^13 ~50 % more CPU time).  2^14, not 2^15: it binds only for
#: small data (n (d + P) / 32 < 2^14 entries, solves of seconds), where the blocks' share
#: is largest; it keeps n = 1e4, d = 10 within 3 (X + masks) (default solve at d = 10:
#: ~17 % more CPU time; docs/performance.md §8)
MIN_BLOCK_ENTRIES = 2**14

#: the large path's peak memory target, in sizes of X plus the activation masks (issue 15)
MEMORY_FACTOR = 3
#: the budget is never below this many bytes: small problems (a few thousand samples) keep
#: their optional extras (e.g. the branch-and-bound oracle after a sampled solve), whose
#: memory does not shrink with the data; it is below 3x the data of every size of issue
#: 15's target (n >= 1e4), so there the budget is exactly ``MEMORY_FACTOR`` times the data
MEMORY_FLOOR = 4 * 2**20


def data_bytes(n: int, d: int, n_patterns: int) -> int:
    r"""Bytes of the data of issue 15's memory target: :math:`8nd + nP` (X in float64, one
    boolean per pattern and sample)."""
    return int(8 * n * d + n * n_patterns)


def memory_budget(n: int, d: int, n_patterns: int) -> int:
    r"""Bytes a solve on ``n`` samples, ``d`` features and ``n_patterns`` activation masks
    may hold at its peak: :math:`\max(` :data:`MEMORY_FACTOR` :math:`\times (8nd + nP),`
    :data:`MEMORY_FLOOR` :math:`)` (X in float64, one boolean per pattern and sample).
    Optional work that does not fit (e.g. the branch-and-bound oracle after the solve) is
    skipped and the solution's ``info`` says so; the proven bound it would have tightened
    stays proven."""
    return int(max(MEMORY_FACTOR * data_bytes(n, d, n_patterns), MEMORY_FLOOR))


def block_entries(n: int, d: int, n_patterns: int = 0, cap: int | None = None) -> int:
    r"""Entries of one float64 row-block temporary for data of ``n`` samples, ``d`` features
    and ``n_patterns`` masks: :data:`BLOCK_DATA_FRACTION` of :func:`data_bytes` (in float64
    entries), clipped to [:data:`MIN_BLOCK_ENTRIES`, ``cap``] (``cap`` defaults to
    :data:`BLOCK_ENTRIES`).  Smaller blocks change only the order of sums (and the time),
    never a result's validity."""
    top = BLOCK_ENTRIES if cap is None else int(cap)
    want = int(BLOCK_DATA_FRACTION * data_bytes(n, d, n_patterns) / 8)
    return max(1, min(top, max(MIN_BLOCK_ENTRIES, want)))


def row_norms(X: np.ndarray) -> np.ndarray:
    r""":math:`\|x_i\|` for every row of ``X`` (n,), without the (n, d) temporary of
    ``numpy.linalg.norm(X, axis=1)`` (a full copy of the data: 4 MB at n = 1e4, d = 50)."""
    if isinstance(X, ScaledDesign):
        return X.row_norms()
    X = np.asarray(X, dtype=float)
    return np.sqrt(np.einsum("ij,ij->i", X, X))


def row_blocks(n: int, width: int, entries: int | None = None) -> Iterator[slice]:
    """Slices ``a:b`` covering ``range(n)`` with ``(b - a) * width <= entries`` (at least one
    row).  ``entries`` defaults to ``block_entries(n, width)``: a block holds
    :data:`BLOCK_DATA_FRACTION` of the whole (n, width) result, between
    :data:`MIN_BLOCK_ENTRIES` and :data:`BLOCK_ENTRIES` entries."""
    size = max(1, int(block_entries(n, width) if entries is None else entries) // max(1, int(width)))
    for a in range(0, int(n), size):
        yield slice(a, min(a + size, int(n)))


def rows_with_ones(X: np.ndarray, rows: slice, ones_column: bool = True) -> np.ndarray:
    r"""The rows ``X[rows]`` of :math:`[X\ \mathbf 1]` (a column of ones appended when
    ``ones_column``): a (b, d + 1) temporary with the same values as the rows of
    ``np.hstack([X, np.ones((n, 1))])``, so products with it are those of the whole augmented
    matrix's rows, without its (n, d + 1) copy (docs/performance.md §8)."""
    if not ones_column:
        return X[rows]
    blk = X[rows]
    out = np.empty((blk.shape[0], blk.shape[1] + 1), dtype=np.result_type(blk, float))
    out[:, :-1] = blk
    out[:, -1] = 1.0
    return out


class ScaledDesign:
    r"""The scaled design matrix :math:`X_a = [X\ \mathbf 1]\,2^{-k}` (or :math:`X2^{-k}`
    without ``ones_column``) as an implicit operator over the caller's ``X`` (n, d): its
    (n, d + 1) copy is never formed (docs/performance.md §8, memory).

    A product by a power of two is exact (barring underflow below ~1e-308), so every value
    below is that of the materialized array ``scaled_data(X, ones_column, k)`` up to the
    order of the sums:

    * ``Xa @ u`` = :math:`X(2^{-k}u_{1:d}) + 2^{-k}u_{d+1}` (``u`` of shape (d + 1,) or
      (d + 1, m));
    * ``Xa.T @ w`` = :math:`2^{-k}[X^Tw;\ \mathbf 1^Tw]` (``w`` of shape (n,) or (n, m));
    * ``Xa[rows]`` (a slice, integer indices or a boolean mask of rows): a new block
      :math:`[X_{rows}\ \mathbf 1]2^{-k}`, bitwise the rows of the materialized array;
    * :meth:`row_norms`, :meth:`gram` (:math:`X_a^TX_a`, accumulated over row blocks),
      ``max``/``min`` and ``np.asarray(Xa)`` (the materialized array, as a fallback).

    ``shape`` and ``nbytes`` are those of the materialized array.
    """

    ndim = 2
    dtype = np.dtype(float)

    def __init__(self, X: np.ndarray, k: int, ones_column: bool = True) -> None:
        X = np.asarray(X)
        if X.ndim != 2 or X.dtype != np.float64:
            raise TypeError(f"`X` must be a float64 array of shape (n, d); got {X.dtype} of shape {X.shape}")
        self.X, self.k, self.ones_column = X, int(k), bool(ones_column)
        self.scale = float(np.ldexp(1.0, -self.k))
        n, d = X.shape
        self.shape = (n, d + int(self.ones_column))

    @property
    def nbytes(self) -> int:
        return 8 * self.shape[0] * self.shape[1]

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice | np.ndarray) -> np.ndarray:
        if isinstance(rows, tuple):
            raise TypeError("ScaledDesign is indexed by rows only (a slice, indices or a boolean mask)")
        if not isinstance(rows, slice):
            # selected rows: gathered a block at a time into the result (no (rows, d)
            # temporary of the caller's X beside it)
            idx = np.asarray(rows)
            idx = np.flatnonzero(idx) if idx.dtype == bool else idx.reshape(-1)
            n, da = len(idx), self.shape[1]
            out = np.empty((n, da))
            for part in row_blocks(n, da, MIN_BLOCK_ENTRIES):
                out[part] = rows_with_ones(self.X, idx[part], self.ones_column)
            return np.multiply(out, self.scale, out=out)
        if self.ones_column:
            out = rows_with_ones(self.X, rows)
            return np.multiply(out, self.scale, out=out)
        return np.multiply(self.X[rows], self.scale)

    def __matmul__(self, u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=float)
        d = self.X.shape[1]
        if u.shape[0] != self.shape[1]:
            raise ValueError(f"matmul: ScaledDesign of shape {self.shape} times an operand of shape {u.shape}")
        out = self.X @ (u[:d] * self.scale)
        if self.ones_column:
            out += u[d] * self.scale
        return out

    @property
    def T(self) -> "_TransposedDesign":
        return _TransposedDesign(self)

    def row_norms(self) -> np.ndarray:
        r""":math:`\|x_{a,i}\|` for every row (n,), from row blocks (no (n, d + 1) copy)."""
        n = self.shape[0]
        out = np.empty(n)
        for rows in row_blocks(n, self.shape[1], block_entries(n, self.shape[1])):
            blk = self[rows]
            out[rows] = np.sqrt(np.einsum("ij,ij->i", blk, blk))
        return out

    def gram(self) -> np.ndarray:
        r""":math:`X_a^TX_a` ((d + 1) x (d + 1)), accumulated over row blocks."""
        n, da = self.shape
        G = np.zeros((da, da))
        for rows in row_blocks(n, da, block_entries(n, da)):
            blk = self[rows]
            G += blk.T @ blk
        return G

    def max(self, axis: None = None, out: None = None, initial: float | None = None) -> float:
        """The largest entry (``np.max(Xa)``, ``initial`` as numpy's)."""
        if axis is not None or out is not None:
            raise TypeError("ScaledDesign.max reduces over all entries only")
        top = float(np.max(self.X)) if self.X.size else -np.inf
        top = max(top, 1.0) * self.scale if self.ones_column else top * self.scale
        return top if initial is None else max(top, float(initial))

    def min(self, axis: None = None, out: None = None, initial: float | None = None) -> float:
        """The smallest entry (``np.min(Xa)``, ``initial`` as numpy's)."""
        if axis is not None or out is not None:
            raise TypeError("ScaledDesign.min reduces over all entries only")
        low = float(np.min(self.X)) if self.X.size else np.inf
        low = min(low, 1.0) * self.scale if self.ones_column else low * self.scale
        return low if initial is None else min(low, float(initial))

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        n, d = self.X.shape
        out = np.empty(self.shape)
        np.multiply(self.X, self.scale, out=out[:, :d])
        if self.ones_column:
            out[:, d] = self.scale
        return out if dtype is None else out.astype(dtype, copy=False)


class _TransposedDesign:
    """``ScaledDesign.T``: products :math:`X_a^Tw` only."""

    def __init__(self, design: ScaledDesign) -> None:
        self.design = design
        self.shape = design.shape[::-1]

    def __matmul__(self, w: np.ndarray) -> np.ndarray:
        D = self.design
        w = np.asarray(w, dtype=float)
        if w.shape[0] != D.shape[0]:
            raise ValueError(f"matmul: ScaledDesign.T of shape {self.shape} times an operand of shape {w.shape}")
        d = D.X.shape[1]
        out = np.empty((D.shape[1],) + w.shape[1:])
        out[:d] = D.X.T @ w
        if D.ones_column:
            out[d] = w.sum(axis=0)
        out *= D.scale
        return out


def relu_layer_output(X: np.ndarray, U: np.ndarray, A: np.ndarray) -> np.ndarray:
    r"""The two-layer output :math:`(XU)_+A` of shape (n, K), in row blocks.

    Parameters
    ----------
    X : array (n, d) or ScaledDesign
    U : array (d, m)
        Hidden weights.
    A : array (m, K)
        Output weights.
    """
    n, K = X.shape[0], A.shape[1]
    out = np.empty((n, K), dtype=np.result_type(X.dtype, U, A, float))  # (X may be a ScaledDesign)
    for rows in row_blocks(n, U.shape[1], block_entries(n, X.shape[1])):
        out[rows] = np.maximum(X[rows] @ U, 0.0) @ A
    return out
