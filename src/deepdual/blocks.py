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

__all__ = ["BLOCK_ENTRIES", "MEMORY_FACTOR", "MEMORY_SLACK", "memory_budget", "row_blocks", "relu_layer_output"]

#: entries of one (rows x width) float temporary (2 MB in float64); a few are alive at a
#: time, so their total is a constant next to the data at large n (docs/performance.md §8)
BLOCK_ENTRIES = 2**18

#: the large path's peak memory target, in sizes of X plus the activation masks (issue 15)
MEMORY_FACTOR = 3
#: bytes allowed on top of ``MEMORY_FACTOR`` times the data: row-block temporaries and
#: small arrays, which do not grow with n
MEMORY_SLACK = 16 * 2**20


def memory_budget(n: int, d: int, n_patterns: int) -> int:
    r"""Bytes a solve on ``n`` samples, ``d`` features and ``n_patterns`` activation masks
    may hold at its peak: :data:`MEMORY_FACTOR` :math:`\times (8nd + nP)` plus
    :data:`MEMORY_SLACK` (X in float64, one boolean per pattern and sample)."""
    return int(MEMORY_FACTOR * (8 * n * d + n * n_patterns) + MEMORY_SLACK)


def row_blocks(n: int, width: int, entries: int | None = None) -> Iterator[slice]:
    """Slices ``a:b`` covering ``range(n)`` with ``(b - a) * width <= entries`` (at least one
    row; ``entries`` defaults to :data:`BLOCK_ENTRIES`)."""
    size = max(1, int(BLOCK_ENTRIES if entries is None else entries) // max(1, int(width)))
    for a in range(0, int(n), size):
        yield slice(a, min(a + size, int(n)))


def relu_layer_output(X: np.ndarray, U: np.ndarray, A: np.ndarray) -> np.ndarray:
    r"""The two-layer output :math:`(XU)_+A` of shape (n, K), in row blocks.

    Parameters
    ----------
    X : array (n, d)
    U : array (d, m)
        Hidden weights.
    A : array (m, K)
        Output weights.
    """
    n, K = X.shape[0], A.shape[1]
    out = np.empty((n, K), dtype=np.result_type(X, U, A, float))
    for rows in row_blocks(n, U.shape[1]):
        out[rows] = np.maximum(X[rows] @ U, 0.0) @ A
    return out
