"""Dispatch of ReLU problems to the theorem that covers the data's structure."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_choice
from ..losses import Loss
from ..solution import Solution
from ..structures import is_whitened, rank_one_factors

RELU_METHODS = ("auto", "rank_one", "whitened", "one_dimensional", "convex")


def _no_structure(X: np.ndarray, depth: int) -> ValueError:
    n, d = X.shape
    hint = (
        "whiten it with deepdual.whiten(X) (needs n <= d)"
        + ("" if depth > 2 else ", or use method='convex' (the general two-layer convex program)")
    )
    return ValueError(
        f"`X` ({n}x{d}) has no structure with a known closed form for depth-{depth} ReLU networks: "
        f"it is not rank one (X = c a0^T with c >= 0) and not whitened (X X^T = I); {hint}"
    )


def solve_relu(X: np.ndarray, Y: np.ndarray, *, scalar: bool, beta: float, depth: int, loss: Loss,
               rtol: float, bias: bool, method: str, **options: Any) -> Solution:
    method = check_choice(method, "method", RELU_METHODS)
    kw = dict(scalar=scalar, beta=beta, depth=depth, loss=loss, rtol=rtol, bias=bias)
    if method == "auto":
        if bias and X.shape[1] == 1:
            method = "one_dimensional"
        elif bias:
            if depth != 2:
                raise ValueError(
                    "`bias=True` with ReLU activation is supported for 1-D data (any depth) or depth=2; "
                    f"got d={X.shape[1]}, depth={depth}"
                )
            method = "convex"
        elif rank_one_factors(X) is not None:
            method = "rank_one"
        elif is_whitened(X):
            method = "whitened"
        elif depth == 2:
            method = "convex"
        else:
            raise _no_structure(X, depth)
    if method == "rank_one":
        from .relu_rank_one import solve_rank_one

        return solve_rank_one(X, Y, **kw, **options)
    if method == "whitened":
        from .relu_whitened import solve_whitened

        return solve_whitened(X, Y, **kw, **options)
    if method == "one_dimensional":
        from .relu_1d import solve_1d

        return solve_1d(X, Y, **kw, **options)
    from .relu_convex import solve_convex

    return solve_convex(X, Y, **kw, **options)
