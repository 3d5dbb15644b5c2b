r"""Weak-duality certificates for ReLU networks of any depth (trained or not).

For a network :math:`\theta` with objective :math:`P(\theta)` we return a *proven* lower bound
on the global optimum :math:`P^\star` over parallel ReLU networks of the same depth and any
width, so ``P(theta) - lower_bound`` bounds the network's suboptimality.  Several bounds
are computed and the largest is reported (``details["bounds"]`` lists all):

``residual``
    The network's dual point :math:`V = -\nabla\ell(F)` and its dual constraint value
    :math:`c(V)` (:func:`deepdual.dual_constraint.relu_constraint`: exact on whitened,
    rank-one and small-rank data, otherwise the spectral-norm bound; for :math:`K > 1` on
    whitened data the non-negative-orthant Perron bound
    :func:`deepdual.dual_constraint.c_nonneg_orthant`, exact for class-constant dual rows
    such as the cross-entropy optimum of ``solve``).  Depth 2:
    :math:`P^\star \ge \max_{0\le t\le\beta/c(V)} D(tV)` (:meth:`Loss.best_scale`).  Depth
    :math:`L \ge 3`: :math:`P(\theta') \ge D(tV) - t\,c(V)\,T + \frac{\beta L}{2}T^{2/L}` for every network
    with path budget :math:`T`; minimized over :math:`T \le T_{\max}` and maximized over a grid of
    scales :math:`t` (:func:`deepdual.bounds.power_penalty_lower_bound`).
``rank-one reduced problem``
    On data :math:`X = c a_0^T`, :math:`c \ge 0` (squared loss, or one output): the exact
    optimum's proven lower bound (:mod:`deepdual.relu.rank_one.solver`).
``relaxed reduced problem``
    Squared loss: :math:`\min_T W(T) + \frac{\beta L}{2}(T/\|X\|_2)^{2/L}` with the water-filling
    function of the label parts (or of the singular values of :math:`Y`)
    (:func:`deepdual.dual_constraint.relaxed_squared_bound`): exact at depth 2 on
    whitened data with scalar or one-hot labels, and at depth :math:`\ge 3` when one label
    part dominates.
``two-part split``
    Squared loss, at most two label parts (e.g. scalar labels of both signs), depth
    :math:`\ge 3`, any data: :math:`\sum_p\min_s\frac12(s-a_p)^2+\frac{\beta L}{2}(s/\|X\|_2)^{2/L}`
    (:func:`deepdual.relu.whitened.solver.two_part_bound`, docs/relu.md §2.3); exact on
    whitened data.

Biases.  Networks with biases on one-dimensional data are certified by
:func:`deepdual.relu.one_dimensional.solver.certify_1d` (the 1-D theory).  For :math:`d > 1`, penalized
first-layer biases are absorbed by augmenting :math:`X` with a ones column
(:math:`(XW + 1b^T)_+ = ([X, 1][W; b^T])_+` with the same norm); an output bias is handled
exactly (unpenalized: :math:`V` is centered so that :math:`\langle V, 1b^T\rangle = 0`;
penalized: :math:`D(V) - \|V^T1\|^2/(2\beta)` by Fenchel--Young).  Other biases on
:math:`d > 1` data have no known dual constraint: ``lower_bound = -inf``.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from .._validation import check_choice, check_options
from ..bounds import max_budget, power_penalty_lower_bound
from ..exact_centering import center_exactly, center_rows_and_columns_exactly
from ..dual_constraint import (
    CONSTRAINT_MODES,
    DEFAULT_MAX_PATTERNS,
    ConstraintValue,
    label_parts,
    relaxed_squared_bound,
    relu_constraint,
)
from ..losses import CrossEntropyLoss, Loss, SquaredLoss
from ..network import Network
from ..objective import objective
from ..solution import Certificate
from ..structures import is_whitened, rank_one_factors

__all__ = ["certify_relu", "OPTIONS"]

OPTIONS = ("constraint", "max_patterns", "penalize_biases", "n_scales", "time_limit", "progress")

#: seconds given to the branch-and-bound dual-constraint oracle by default (depth 2, one
#: output, data whose arrangement is too large to enumerate; docs/convex_program.md §11)
DEFAULT_ORACLE_TIME = 2.0
#: largest total size (floats) of the recentred copies of X for unpenalized hidden biases
MAX_BIAS_PIECES_SIZE = 2.5e7


def _present(b: Any) -> bool:
    """Whether a bias parameter exists.  The certified class is set by the architecture
    (which bias parameters the network has), never by their values: a network whose
    biases happen to be zero belongs to the class with biases, whose optimum can be
    far below the bias-free one (issue 14, item 8)."""
    return b is not None


def _scale_limit(loss: Loss, V: np.ndarray, Y: np.ndarray) -> float:
    lim = getattr(loss, "dual_scale_limit", None)
    if callable(lim):
        return float(lim(V, Y))
    return np.inf if getattr(loss, "unbounded_dual_scale", False) else 1.0


def _best_scale(dual, loss: Loss, V: np.ndarray, Y: np.ndarray, t_max: float, quad: float) -> tuple[float, float]:
    """Maximize the concave ``t -> D(tV) - quad t^2`` on ``[0, t_max]`` (``quad = 0``: Loss.best_scale)."""
    if quad == 0.0:
        return loss.best_scale(V, Y, t_max)
    t_max = min(float(t_max), _scale_limit(loss, V, Y))
    d0 = dual(0.0 * V)
    if not t_max > 0:
        return 0.0, d0
    if not np.isfinite(t_max):
        t_max = 1.0
        while t_max < 1e300 and dual(2 * t_max * V) > dual(t_max * V):
            t_max *= 2
        t_max *= 2
    res = minimize_scalar(lambda t: -dual(t * V), bounds=(0.0, t_max), method="bounded",
                          options={"xatol": 1e-12 * t_max})
    cands = [(0.0, d0), (t_max, dual(t_max * V)), (float(res.x), -float(res.fun))]
    return max((c for c in cands if np.isfinite(c[1])), key=lambda c: c[1])


def _certify_1d(network: Network, X: np.ndarray, Y: np.ndarray, *, beta: float, loss: Loss, rtol: float,
                options: dict) -> Certificate:
    try:
        from .one_dimensional.solver import certify_1d
    except ImportError:
        certify_1d = None
    if certify_1d is None:
        obj = objective(network, X, Y, beta=beta, loss=loss,
                        penalize_biases=bool(options.get("penalize_biases", False)))
        return Certificate(obj, -np.inf, "none: the 1-D certificate for networks with biases "
                           "(deepdual.relu.one_dimensional.solver.certify_1d) is not available", exact_constraint=False,
                           rtol=rtol)
    return certify_1d(network, X, Y, beta=beta, loss=loss, rtol=rtol, **options)


def _oracle_constraint(V0: np.ndarray, Xe: np.ndarray, Y: np.ndarray, cv: ConstraintValue, *, free_biases: bool,
                       time_limit: float | None, progress: bool, dual: Any, loss: Loss, beta: float, quad: float,
                       obj: float) -> ConstraintValue:
    r""":math:`c(v)` by the branch-and-bound oracle (docs/convex_program.md §11), or
    :math:`c_b(v) = \max_jc_{X - 1x_j^T}(v)` with unpenalized hidden biases (§12); the
    smaller of its proven bound and ``cv`` is returned."""
    from .convex_program.oracle import dual_constraint_bb, recentred_pieces

    if V0.shape[1] > 1:
        # K > 1: c(V) = max_u ||V^T (Xu)_+|| <= sqrt(sum_k c(v_k)^2), each c(v_k) by the oracle
        # (docs/convex_program.md §14); never above the spectral bounds it replaces
        K = V0.shape[1]
        vals, nodes, exact_all = [], 0, True
        for k in range(K):
            r = dual_constraint_bb(Xe, V0[:, k], time_limit=None if time_limit is None else time_limit / K,
                                   rtol=1e-9)
            vals.append(r.upper)
            nodes += r.nodes
            exact_all &= r.exact
        val = float(np.linalg.norm(vals))
        if val < cv.value:
            return ConstraintValue(val, False, "upper bound: sqrt(sum_k c(v_k)^2), each c(v_k) by branch and bound "
                                   f"over row signs ({nodes} nodes{'' if exact_all else ', time limit'})")
        return cv
    v = V0[:, 0]
    log = None
    if progress:
        import sys

        print(f"{'time':>9}  {'nodes':>7}  {'objective':>14}  {'bound':>14}  {'gap':>9}   c(v) in [lower, upper]",
              file=sys.stderr)

        def log(t: float, nodes: int, open_: int, lo: float, up: float) -> None:
            low = _best_scale(dual, loss, V0, Y, beta / up if up > 0 else np.inf, quad)[1]
            gap = (obj - low) / abs(obj) if obj != 0 else obj - low
            print(f"{t:8.1f}s  {nodes:7d}  {obj:14.8g}  {low:14.8g}  {gap:9.2e}   [{lo:.6g}, {up:.6g}]",
                  file=sys.stderr)

    if free_biases and len(np.unique(Xe, axis=0)) * Xe.size > MAX_BIAS_PIECES_SIZE:
        # one recentred copy of X per distinct row would not fit in memory: no bound
        return ConstraintValue(np.inf, False, "none: unpenalized hidden biases on data too large for the "
                               f"recentred oracle (n^2 d > {MAX_BIAS_PIECES_SIZE:.0e}; docs/convex_program.md §12)")
    pieces = recentred_pieces(Xe) if free_biases else None
    res = dual_constraint_bb(Xe, v, pieces=pieces, time_limit=time_limit, rtol=1e-9, log=log)
    what = "unpenalized hidden biases: max over data-point recentrings, " if free_biases else ""
    how = (f"{what}exact: branch and bound over {res.search} ({res.nodes} nodes)" if res.exact else
           f"{what}upper bound: branch and bound over {res.search} ({res.nodes} nodes, {res.status}, "
           f"attained {res.lower:.6g})")
    if res.upper < cv.value:
        return ConstraintValue(float(res.upper), bool(res.exact), how)
    return cv


def certify_relu(network: Network, X: np.ndarray, Y: np.ndarray, *, beta: float, loss: Loss, rtol: float,
                 **options: Any) -> Certificate:
    r"""Objective of a ReLU ``network`` and a proven lower bound on the global optimum.

    Parameters
    ----------
    network : Network with ``activation="relu"``
    X, Y : validated arrays (n, d), (n, K) (canonical labels for ``loss``)
    beta, loss, rtol : see :func:`deepdual.certify`
    constraint : {"auto", "exact", "bound"}, default "auto"
        How the dual constraint :math:`c(V)` of the residual is computed:
        exact where known (``"exact"`` raises ``ValueError`` if no exact method applies),
        or always the spectral-norm bound (``"bound"``; the structure-specific reduced
        problems are then skipped, except the spectral-norm relaxed bound).
    max_patterns : int, default 20000
        Largest region-count bound for exact cell enumeration (depth 2).
    penalize_biases : bool, default False
        Whether the network's biases are penalized (:math:`\frac\beta2\|b\|^2`).
    n_scales : int, default 200
        Number of dual scales in the depth-:math:`\ge 3` interval bound.

    Returns
    -------
    Certificate
        ``method`` names the bound and how the constraint was evaluated, e.g.
        ``"residual dual, exact: cell enumeration (37 patterns)"``; ``details["bounds"]``
        lists every bound computed.
    """
    check_options(options, OPTIONS, "certify (ReLU network)")
    constraint = check_choice(options.get("constraint", "auto"), "constraint", CONSTRAINT_MODES)
    max_patterns = options.get("max_patterns", DEFAULT_MAX_PATTERNS)
    if isinstance(max_patterns, bool) or not isinstance(max_patterns, numbers.Integral) or max_patterns < 1:
        raise ValueError(f"`max_patterns` must be an integer >= 1, got {max_patterns!r}")
    penalize = options.get("penalize_biases", False)
    if not isinstance(penalize, (bool, np.bool_)):
        raise TypeError(f"`penalize_biases` must be True or False, got {penalize!r}")
    n_scales = options.get("n_scales", 200)
    if isinstance(n_scales, bool) or not isinstance(n_scales, numbers.Integral) or n_scales < 2:
        raise ValueError(f"`n_scales` must be an integer >= 2, got {n_scales!r}")
    time_limit = options.get("time_limit", DEFAULT_ORACLE_TIME)
    if time_limit is not None and (isinstance(time_limit, bool) or not isinstance(time_limit, numbers.Real)
                                   or not np.isfinite(time_limit) or time_limit <= 0):
        raise ValueError(f"`time_limit` must be a positive number of seconds or None, got {time_limit!r}")
    progress = options.get("progress", False)
    if progress is not None and not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"`progress` must be True or False, got {progress!r}")
    n, d = X.shape
    L = network.depth
    hidden = [(j, l) for j in range(network.n_subnetworks) for l in range(L - 1)
              if network.biases is not None and _present(network.biases[j][l])]
    out_bias = network.output_bias if _present(network.output_bias) else None
    if (hidden or out_bias is not None) and d == 1:
        return _certify_1d(network, X, Y, beta=beta, loss=loss, rtol=rtol, options=options)
    obj = objective(network, X, Y, beta=beta, loss=loss, penalize_biases=bool(penalize))

    # ---- reduce to a bias-free network on (possibly augmented) data
    Xe = X
    weights = [list(layers) for layers in network.weights]
    free_biases = bool(hidden) and not penalize and L == 2 and Y.shape[1] == 1
    if hidden and not free_biases:
        if not penalize or any(l != 0 for _, l in hidden):
            why = "unpenalized" if not penalize else "penalized beyond the first layer"
            return Certificate(obj, -np.inf,
                               f"none: hidden-layer biases ({why}) on d = {d} > 1 data: no dual constraint is "
                               "known (certify 1-D data, or penalized first-layer biases only)",
                               exact_constraint=False, rtol=rtol)
        Xe = np.hstack([X, np.ones((n, 1))])
        for j in range(network.n_subnetworks):
            b = network.biases[j][0] if network.biases is not None else None
            b = np.zeros(weights[j][0].shape[1]) if b is None else b
            weights[j][0] = np.vstack([weights[j][0], b[None, :]])
    F = network.forward(X)
    V0 = np.asarray(loss.dual_point(F, Y), dtype=float)
    quad = 0.0
    if out_bias is not None:
        if penalize:
            # (beta/2)||b||^2 - <V^T 1, b> >= -||V^T 1||^2 / (2 beta)   (Fenchel--Young)
            quad = 1.0 / (2.0 * beta)
        else:
            # <V, 1 b^T> = 0 for every b, exactly (deepdual.exact_centering); the cross-entropy
            # loss also needs zero row sums, exactly, after that centering
            V0 = (center_rows_and_columns_exactly(V0) if isinstance(loss, CrossEntropyLoss)
                  else center_exactly(V0))
    if free_biases:
        # unpenalized hidden biases: a neuron with u = 0 outputs a constant, so 1^T v = 0 is
        # needed (docs/convex_program.md §12); the output-bias term is then zero too
        V0 = center_exactly(V0)  # exactly (deepdual.exact_centering)

    def dual(V: np.ndarray) -> float:
        val = float(loss.dual_value(V, Y))
        if quad:
            s = V.sum(axis=0)
            val -= quad * float(s @ s)
        return val

    bounds: dict[str, float] = {}
    details: dict[str, Any] = {"depth": L, "bounds": bounds}

    # ---- 1. the network's own dual point
    if free_biases:
        cv = ConstraintValue(np.inf, False, "none")
    else:
        cv = relu_constraint(V0, Xe, depth=L, constraint=constraint, max_patterns=max_patterns)
    if L == 2 and constraint != "bound" and (free_biases or not cv.exact):
        cv = _oracle_constraint(V0, Xe, Y, cv, free_biases=free_biases, time_limit=time_limit,
                                progress=bool(progress), dual=dual, loss=loss, beta=beta, quad=quad, obj=obj)
    details["constraint"] = cv.value
    details["constraint_method"] = cv.method
    best = (-np.inf, "none", False, None)
    if L == 2:
        t_max = beta / cv.value if cv.value > 0 else np.inf
        t, val = _best_scale(dual, loss, V0, Y, t_max, quad)
        details["scale"] = t
        bounds["residual"] = val
        best = (val, f"residual dual, {cv.method}", cv.exact, t * V0)
    else:
        inf_loss = float(loss.minimum(Y)) if hasattr(loss, "minimum") else 0.0
        T_max = max_budget(obj - inf_loss, beta, L)
        t_star, _ = _best_scale(dual, loss, V0, Y, np.inf, quad)
        if t_star > 0:
            ts = np.unique(np.concatenate([t_star * np.linspace(0.0, 1.0, n_scales // 2),
                                           t_star * np.logspace(-6, 0, n_scales - n_scales // 2)]))
            Ds = np.array([dual(t * V0) for t in ts])
            val = power_penalty_lower_bound(Ds, ts * cv.value, beta=beta, depth=L, T_max=T_max)
        else:
            val = dual(0.0 * V0)
        details["T_max"] = T_max
        bounds["residual"] = val
        best = (val, f"residual dual, interval bound over path budgets, {cv.method}", cv.exact, None)

    # ---- 2./3. structure-specific reduced problems (bias-free networks only)
    if not hidden and out_bias is None:
        p = 2.0 / L
        if constraint != "bound":
            fac = rank_one_factors(X)
            if fac is not None:  # any loss, any K (docs/losses.md)
                from .rank_one.solver import solve_reduced

                err = float(np.linalg.norm(X - np.outer(fac.c, fac.a0)))  # distance to exact rank one
                _, red = solve_reduced(fac, Y, beta=beta, depth=L, loss=loss, err=err)
                bounds["rank-one reduced problem"] = red.lower
                if red.lower > best[0]:
                    best = (red.lower, "exact: rank-one reduced problem (Ergen & Pilanci 2021)", True, None)
        if isinstance(loss, SquaredLoss):
            parts = label_parts(Y)
            kind = "label parts"
            if parts is None:
                parts = np.linalg.svd(Y, compute_uv=False)
                kind = "singular values of Y"
            xn = float(np.linalg.norm(X, 2))
            if xn > 0:
                red = relaxed_squared_bound(parts, 0.5 * beta * L * xn ** (-p), p)
                bounds["relaxed reduced problem"] = red.lower
                white = is_whitened(X) and constraint != "bound"
                if red.lower > best[0]:
                    how = "exact constraint (whitened)" if white else "spectral-norm bound"
                    best = (red.lower, f"relaxed reduced problem over {kind}, {how}",
                            white and kind == "label parts", None)
                if L >= 3 and kind == "label parts" and len(parts) <= 2:
                    # any data, any depth (docs/relu.md §2.3, two-part theorem)
                    from .whitened.solver import two_part_bound

                    # ||X||_2 from an SVD carries a relative error of order max(n, d) eps
                    x_up = xn * (1 + 8 * max(X.shape) * np.finfo(float).eps + 1e-12)
                    split = two_part_bound(parts, beta=beta, depth=L, x_norm=x_up)
                    bounds["two-part split"] = split
                    if split > best[0]:
                        best = (split, f"two-part split bound over label parts (depth {L})", white, None)
            else:  # X = 0: every network outputs 0
                val = float(loss.value(np.zeros_like(Y), Y))
                bounds["zero data"] = val
                best = max(best, (val, "exact: X = 0", True, None), key=lambda b: b[0])
    lower, method, exact, dual_point = best
    return Certificate(objective=obj, lower_bound=float(lower), method=method, exact_constraint=bool(exact),
                       dual=dual_point, rtol=rtol, details=details)
