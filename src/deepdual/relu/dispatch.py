"""Dispatch of ReLU problems to the theorem that covers the data's structure."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_choice
from ..losses import Loss
from ..solution import Solution
from ..structures import rank_one_factors, whitened_gram

RELU_METHODS = ("auto", "rank_one", "whitened", "one_dimensional", "convex")


def _rank_one_supports(Y: np.ndarray, loss: Loss) -> bool:
    from .rank_one.solver import supports

    return supports(Y, loss)


def _whitened_supports(Y: np.ndarray, loss: Loss, depth: int, formulation: Any) -> bool:
    from .whitened.solver import supports

    return supports(Y, loss, depth, formulation)


def _no_structure(X: np.ndarray, depth: int) -> ValueError:
    """The error for data without a closed-form structure: says which structure is missing
    (with the measured deviation) and what to do instead."""
    n, d = X.shape
    sv = np.linalg.svd(X, compute_uv=False)
    ratio = float(sv[1] / sv[0]) if sv.size > 1 and sv[0] > 0 else 0.0
    if rank_one_factors(X, require_sign=False) is not None:
        rank_one = "rank one, X = c a0^T, but c has entries of both signs (the theorem needs c >= 0)"
    else:
        rank_one = f"not rank one (sigma_2/sigma_1 = {ratio:.3g})"
    if n > d:
        white = f"not whitened (X X^T = I_n is impossible with n = {n} > d = {d} samples)"
        fix = "undersample to n <= d and whiten with deepdual.whiten(X)"
    else:
        dev = float(np.max(np.abs(X @ X.T - np.eye(n))))
        white = f"not whitened (max |X X^T - I| = {dev:.3g})"
        fix = "whiten it with deepdual.whiten(X) (n <= d, rank n)"
    alt = ("use method='convex' (the general two-layer convex program)" if depth == 2 else
           "use depth=2 with method='convex', or train a network and bound its suboptimality with "
           "deepdual.certify(network, X, y, beta=...)")
    if depth == 3:
        alt += ("; method='convex' with formulation='norm_constrained' solves the paper's parallel "
                "three-layer networks (unit-norm first layers, docs/three_layer.md)")
    if d == 1:
        alt += "; for 1-D data, bias=True uses the one-dimensional theorem (method='one_dimensional')"
    return ValueError(
        f"`X` ({n}x{d}) has no structure with a known closed form for depth-{depth} ReLU networks: "
        f"it is {rank_one} and {white}; {fix}, or {alt}"
    )


def solve_relu(X: np.ndarray, Y: np.ndarray, *, scalar: bool, beta: float, depth: int, loss: Loss,
               rtol: float, bias: bool, method: str, **options: Any) -> Solution:
    method = check_choice(method, "method", RELU_METHODS)
    kw = dict(scalar=scalar, beta=beta, depth=depth, loss=loss, rtol=rtol, bias=bias)
    regularization = options.pop("regularization", "weight_decay")
    if regularization == "path":  # path-regularized parallel networks (docs/path_regularization.md)
        if method not in ("auto", "convex"):
            raise ValueError(f"`method` must be 'auto' or 'convex' for regularization='path', got {method!r}")
        seed = options.pop("random_state", None)
        if seed is not None:
            options.setdefault("seed", seed)
        from .path_regularization.solver import solve_path

        return solve_path(X, Y, **kw, **options)
    if regularization != "weight_decay":
        raise ValueError(f"`regularization` must be 'weight_decay' or 'path', got {regularization!r}")
    factors = gram = None  # structure found by the dispatch, passed on so it is computed once
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
        elif (factors := rank_one_factors(X)) is not None and (depth > 2 or _rank_one_supports(Y, loss)):
            # (depth > 2 with unsupported labels/loss: the solver raises the specific error)
            method = "rank_one"
        elif (gram := whitened_gram(X)) is not None and (
                depth > 2 or _whitened_supports(Y, loss, depth, options.get("formulation"))):
            method = "whitened"
        elif depth == 2:
            method = "convex"
        else:
            raise _no_structure(X, depth)
    if method not in ("convex", "auto"):
        # `random_state` seeds sampled activation patterns: only the convex programs sample
        # (the CLI passes it for every ReLU solve); the closed forms are deterministic
        options.pop("random_state", None)
    elif depth == 3 and "random_state" in options:  # the three-layer program calls it `seed`
        seed = options.pop("random_state")
        if seed is not None:
            options.setdefault("seed", seed)
    if method == "rank_one":
        from .rank_one.solver import solve_rank_one

        return solve_rank_one(X, Y, **kw, factors=factors, **options)
    if method == "whitened":
        from .whitened.solver import solve_whitened

        return solve_whitened(X, Y, **kw, gram=gram, **options)
    if method == "one_dimensional":
        from .one_dimensional.solver import solve_1d

        return solve_1d(X, Y, **kw, **options)
    if depth == 3 and method == "convex":  # parallel three-layer networks (docs/three_layer.md)
        formulation = options.pop("formulation", None)
        if formulation != "norm_constrained":
            raise ValueError(
                "`formulation` must be 'norm_constrained' for depth=3 with method='convex': the "
                "three-layer convex program (Ergen & Pilanci, arXiv 2110.05518) is exact for unit-norm "
                "first-layer columns with weight decay on the last two layers, not for weight decay on "
                f"all layers (docs/three_layer.md); got {formulation!r}. For weight decay, train a network "
                "and bound it with deepdual.certify(network, X, y, beta=...)")
        from .three_layer.solver import solve_three_layer

        return solve_three_layer(X, Y, **kw, **options)
    from .convex_program.solver import solve_convex

    return solve_convex(X, Y, **kw, **options)
