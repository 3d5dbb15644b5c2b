r"""Where the zero network stops being optimal (:math:`\beta_{\max}`), and the
regularization path below it (``docs/regularization_path.md``).

:math:`\beta_{\max}`
--------------------
For a convex loss :math:`\ell` and two-layer networks, let :math:`v_0 = -\nabla\ell(0)`
(the dual point of the zero network; :math:`v_0 = Y` for the squared loss) and

.. math:: c(V) = \max_{\|u\|\le 1}\|V^T\sigma(Xu)\|
          \qquad(\sigma(t) = t_+ \text{ for ReLU},\ \sigma(t) = t \text{ for linear}).

The zero network is optimal **exactly** when :math:`\beta \ge \beta_{\max} = c(v_0)`:

* if :math:`\beta \ge c(v_0)`, :math:`v_0` is dual feasible and its dual value is
  :math:`-\ell^*(-v_0) = \ell(0)` (Fenchel–Young is tight at :math:`v_0 = -\nabla\ell(0)`),
  the objective of the zero network: weak duality (docs/theory.md §1) proves it optimal;
* if :math:`\beta < c(v_0)`, take :math:`u` attaining :math:`c(v_0)` and
  :math:`a = V_0^T\sigma(Xu)/\|V_0^T\sigma(Xu)\|`; the network
  :math:`\sqrt{\varepsilon}\,\sigma(X\sqrt{\varepsilon}u)a^T` has objective
  :math:`\ell(0) - \varepsilon(c(v_0) - \beta) + O(\varepsilon^2)`, below :math:`\ell(0)`.

This is the analogue of the Lasso's :math:`\lambda_{\max} = \|X^Ty\|_\infty`.
For linear networks :math:`c(v_0) = \|X^TV_0\|_2` (the spectral norm; the Euclidean norm
of :math:`X^Ty` for one output), exact.  For ReLU networks :math:`c(v_0)` is computed
exactly where :func:`deepdual.dual_constraint.relu_constraint` can (rank-one and
whitened data, complete cell enumeration for small rank); otherwise :func:`beta_max`
returns an interval: ``upper`` is the proven spectral bound (the zero network is
*proven* optimal for :math:`\beta \ge` ``upper``), ``lower`` is the largest value
:math:`\|V_0^T(Xu)_+\|` found over sampled and locally improved directions :math:`u`, a
value that is *attained*, so the zero network is proven *not* optimal for
:math:`\beta <` ``lower``.  Nothing here is a sampled estimate passed off as a bound.

Regularization path
-------------------
:func:`regularization_path` solves along a decreasing geometric grid
:math:`\beta_{\max}, \dots, \varepsilon\beta_{\max}` (like scikit-learn's ``lasso_path``),
warm-starting each solve: for the convex program, every solve uses one pattern set
(sampled once) enlarged by the activation patterns of the previous solution's neurons,
so the working set of the next solve starts where the last one ended.  The optimal
value :math:`P^\star(\beta)` is non-decreasing in :math:`\beta` (a pointwise minimum of
non-decreasing functions).

References
----------
M. Pilanci and T. Ergen, "Neural networks are convex regularizers", ICML 2020.
J. Friedman, T. Hastie and R. Tibshirani, "Regularization paths for generalized linear
models via coordinate descent", J. Stat. Softw. 33 (2010) (:math:`\lambda_{\max}`, paths).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._validation import check_X_y
from .dual_constraint import DEFAULT_MAX_PATTERNS, relu_constraint
from .losses import get_loss
from .network import ACTIVATIONS
from .solution import DEFAULT_RTOL, Solution

__all__ = ["BetaMax", "beta_max", "RegularizationPath", "regularization_path"]

#: random directions tried for the attained lower bound on c(v0) (each then improved by
#: a few ascent steps)
DEFAULT_N_DIRECTIONS = 200
#: ascent steps per direction
_ASCENT_STEPS = 30


@dataclass(frozen=True)
class BetaMax:
    r"""The smallest weight decay at which the zero network is optimal (see the module).

    Attributes
    ----------
    value : float
        Proven: the zero network is optimal for every :math:`\beta \ge` ``value``
        (equals ``upper``).
    lower : float
        Proven: the zero network is *not* optimal for :math:`\beta <` ``lower`` (a value
        :math:`\|V_0^T\sigma(Xu)\|` attained by the direction ``direction``).
    upper : float
        Same as ``value``.
    exact : bool
        ``value`` is :math:`c(v_0)` itself (``lower`` then equals it up to rounding or is
        set to it).
    method : str
        How ``upper`` was obtained.
    direction : ndarray of shape (d,) or (d + 1,) with ``bias``
        Hidden weights (unit norm) of the first neuron to leave zero below ``lower``.
    """

    value: float
    lower: float
    upper: float
    exact: bool
    method: str
    direction: np.ndarray | None = field(default=None, repr=False)

    def __float__(self) -> float:
        return float(self.value)

    def __repr__(self) -> str:
        if self.exact:
            return f"BetaMax(value={self.value:.10g}, exact, method={self.method!r})"
        return (f"BetaMax(value={self.value:.10g}, interval=[{self.lower:.10g}, {self.upper:.10g}], "
                f"method={self.method!r})")


def _check_depth2(depth: Any) -> None:
    if isinstance(depth, bool) or not isinstance(depth, numbers.Integral) or depth != 2:
        raise ValueError(f"`depth` must be 2 (beta_max is derived for two-layer networks), got {depth!r}")


def _augment(X: np.ndarray, bias: Any) -> np.ndarray:
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"`bias` must be True or False, got {bias!r}")
    return np.hstack([X, np.ones((X.shape[0], 1))]) if bias else X


def _attained(Xa: np.ndarray, V: np.ndarray, n_directions: int, rng: np.random.Generator
              ) -> tuple[float, np.ndarray]:
    r"""Largest :math:`\|V^T(X_au)_+\|` over unit directions: ``V``'s own directions
    :math:`\pm X_a^Tv_k`, Gaussian directions, each improved by ascent steps
    :math:`u \leftarrow X_a^TD\,VV^TDX_au` (normalized; :math:`D = \operatorname{diag}(1[X_au > 0])`,
    the gradient of :math:`\frac12\|V^TDX_au\|^2` on the current cell).  Every value is
    attained by its direction, so the maximum is a lower bound on :math:`c(V)`."""
    d = Xa.shape[1]
    cands = [Xa.T @ V[:, k] for k in range(V.shape[1])]
    cands = cands + [-c for c in cands]
    U = np.column_stack(cands + [rng.standard_normal(d) for _ in range(n_directions)])
    nrm = np.linalg.norm(U, axis=0)
    U = U[:, nrm > 0] / nrm[nrm > 0]

    def value(U: np.ndarray) -> np.ndarray:
        return np.linalg.norm(V.T @ np.maximum(Xa @ U, 0.0), axis=0)

    best_val, best_u = 0.0, np.zeros(d)
    vals = value(U)
    for _ in range(_ASCENT_STEPS):
        i = int(np.argmax(vals))
        if vals[i] > best_val:
            best_val, best_u = float(vals[i]), U[:, i].copy()
        Z = Xa @ U
        H = np.maximum(Z, 0.0)
        G = Xa.T @ ((Z > 0) * (V @ (V.T @ H)))  # ascent direction per column
        gn = np.linalg.norm(G, axis=0)
        ok = gn > 0
        if not np.any(ok):
            break
        Un = U.copy()
        Un[:, ok] = G[:, ok] / gn[ok]
        vn = value(Un)
        better = vn > vals
        if not np.any(better):
            break
        U[:, better], vals[better] = Un[:, better], vn[better]
    i = int(np.argmax(vals))
    if vals[i] > best_val:
        best_val, best_u = float(vals[i]), U[:, i].copy()
    return best_val, best_u


def beta_max(
    X: Any,
    y: Any,
    *,
    activation: str = "relu",
    loss: Any = "squared",
    bias: bool = False,
    depth: int = 2,
    max_patterns: int = DEFAULT_MAX_PATTERNS,
    n_directions: int = DEFAULT_N_DIRECTIONS,
    rng: Any = 0,
) -> BetaMax:
    r"""The weight decay :math:`\beta_{\max} = c(-\nabla\ell(0))` above which the zero
    network is the optimal two-layer network (module docstring).

    Parameters
    ----------
    X : array of shape (n, d)
    y : array of shape (n,) or (n, K)
    activation : {"relu", "linear"}
    loss : str or Loss, default "squared"
    bias : bool, default False
        Append a column of ones (the convex program's penalized hidden biases,
        ``solve(..., bias=True)`` on data of more than one dimension).
    depth : int
        Must be 2.
    max_patterns : int
        Largest region-count bound for which the activation cells are enumerated (exact
        value); above it the interval is returned.
    n_directions : int
        Random directions tried for the attained lower end of the interval.
    rng : None, int or numpy.random.Generator, default 0

    Returns
    -------
    BetaMax
        ``value`` (proven: zero is optimal for :math:`\beta \ge` ``value``), ``lower``
        (proven: zero is not optimal below it), ``exact``.

    Examples
    --------
    >>> import numpy as np, deepdual
    >>> X = np.random.default_rng(0).standard_normal((30, 4)); y = X[:, 0]
    >>> bm = deepdual.beta_max(X, y, activation="linear")
    >>> bool(bm.exact), bool(np.isclose(bm.value, np.linalg.norm(X.T @ y)))
    (True, True)
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"`activation` must be one of {', '.join(map(repr, ACTIVATIONS))}; got {activation!r}")
    _check_depth2(depth)
    for name, val, lo in (("max_patterns", max_patterns, 0), ("n_directions", n_directions, 0)):
        if isinstance(val, bool) or not isinstance(val, numbers.Integral) or val < lo:
            raise ValueError(f"`{name}` must be an integer >= {lo}, got {val!r}")
    lossf = get_loss(loss)
    X, Y, _ = check_X_y(X, y)
    Y = lossf.check_labels(Y)
    Xa = _augment(X, bias)
    V0 = lossf.dual_point(np.zeros_like(Y), Y)
    if activation == "linear":
        M = Xa.T @ V0
        val = float(np.linalg.norm(M, 2)) if M.shape[1] > 1 else float(np.linalg.norm(M))
        if M.shape[1] > 1:
            u = np.linalg.svd(M, full_matrices=False)[0][:, 0] if val > 0 else np.zeros(Xa.shape[1])
        else:
            u = M[:, 0] / val if val > 0 else np.zeros(Xa.shape[1])
        return BetaMax(val, val, val, True, "exact: ||X^T V0||_2 (linear)", u)
    cv = relu_constraint(V0, Xa, depth=2, constraint="auto", max_patterns=int(max_patterns))
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    low, u = _attained(Xa, V0, int(n_directions), gen)
    upper = float(cv.value)
    low = min(low, upper)  # (equal up to rounding when the value is exact)
    if cv.exact:
        return BetaMax(upper, upper, upper, True, cv.method, u)
    return BetaMax(upper, low, upper, False, cv.method + "; lower: attained by sampled directions", u)


# ============================================================================ path
@dataclass
class RegularizationPath:
    """Solutions along a decreasing grid of weight decays (:func:`regularization_path`).

    Attributes
    ----------
    betas : ndarray (m,)
        Decreasing.
    objectives, lower_bounds, gaps : ndarray (m,)
        Objective, proven lower bound and absolute gap of each solution.
    certified : ndarray of bool (m,)
    n_neurons : ndarray of int (m,)
        Hidden neurons with a non-zero weight (network sparsity).
    zero_network : ndarray of bool (m,)
        Whether the returned network is the zero network.
    solutions : list of Solution
    beta_max : BetaMax
    """

    betas: np.ndarray
    objectives: np.ndarray
    lower_bounds: np.ndarray
    gaps: np.ndarray
    certified: np.ndarray
    n_neurons: np.ndarray
    zero_network: np.ndarray
    solutions: list[Solution]
    beta_max: BetaMax

    def __len__(self) -> int:
        return len(self.betas)


def active_neurons(sol: Solution) -> int:
    """Hidden neurons of ``sol.network`` whose incoming and outgoing weights are non-zero
    (summed over sub-networks; first hidden layer)."""
    count = 0
    for layers in sol.network.weights:
        W1, W2 = layers[0], layers[1]
        live = (np.linalg.norm(W1, axis=0) > 0) & (np.linalg.norm(W2, axis=1) > 0)
        count += int(live.sum())
    return count


def _neuron_patterns(sol: Solution, Xa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Activation patterns ``1[X_a u_j >= 0]`` of the network's first-layer neurons and the
    directions ``u_j`` (rows), for warm-starting the next solve's pattern set."""
    U = np.hstack([layers[0] for layers in sol.network.weights])
    if sol.network.biases is not None and Xa.shape[1] == U.shape[0] + 1:
        b = np.concatenate([(bs[0] if bs[0] is not None else np.zeros(layers[0].shape[1]))
                            for layers, bs in zip(sol.network.weights, sol.network.biases)])
        U = np.vstack([U, b[None, :]])
    if U.shape[0] != Xa.shape[1]:
        return np.zeros((0, Xa.shape[0]), bool), np.zeros((0, Xa.shape[1]))
    U = U[:, np.linalg.norm(U, axis=0) > 0]
    Z = Xa @ U
    # only neurons strictly inside their cell give a usable interior direction
    inside = np.all(np.abs(Z) > 1e-9 * np.linalg.norm(Xa, axis=1)[:, None] * np.linalg.norm(U, axis=0), axis=0)
    U, Z = U[:, inside], Z[:, inside]
    return (Z > 0).T, U.T


def resolved_method(X: np.ndarray, *, activation: str, depth: int, bias: bool, method: str, loss_name: str,
                    K: int) -> str:
    """The solver :func:`deepdual.solve` picks for ``method="auto"`` (made explicit so that
    the convex program's options, e.g. a shared pattern set, go only to it): on 1-D data
    with ``bias`` the exact 1-D solver (squared loss, one output) or the convex program on
    ``[x, 1]``; rank-one and whitened data their closed forms; else the convex program
    at depth 2.  Other methods and activations are returned unchanged."""
    from .structures import is_whitened, rank_one_factors

    if method != "auto" or activation != "relu":
        return method
    d = X.shape[1]
    if bias and d == 1:
        return "one_dimensional" if (loss_name == "squared" and K == 1) else "convex"
    if bias:
        return "convex"
    if rank_one_factors(X) is not None:
        return "rank_one"
    if is_whitened(X):
        return "whitened"
    return "convex" if depth == 2 else "auto"


def regularization_path(
    X: Any,
    y: Any,
    *,
    betas: Any = None,
    n_betas: int = 10,
    eps: float = 1e-2,
    activation: str = "relu",
    loss: Any = "squared",
    bias: bool = False,
    depth: int = 2,
    rtol: float = DEFAULT_RTOL,
    warm_start: bool = True,
    rng: Any = 0,
    progress: Any = None,
    time_limit: float | None = None,
    **options: Any,
) -> RegularizationPath:
    r"""Optimal two-layer networks along a decreasing grid of :math:`\beta` (like
    scikit-learn's ``lasso_path``), with warm starts.

    Parameters
    ----------
    X : array (n, d)
    y : array (n,) or (n, K)
    betas : array-like, optional
        The grid (sorted decreasing here); default ``n_betas`` values geometrically from
        :math:`\beta_{\max}` (the proven ``upper`` value of :func:`beta_max`) down to
        ``eps`` times it.
    n_betas : int, default 10
    eps : float in (0, 1), default 1e-2
    activation, loss, bias, depth, rtol
        As in :func:`deepdual.solve` (``depth`` must be 2).
    warm_start : bool, default True
        Convex program on sampled patterns: every solve uses the same sampled pattern
        set, enlarged by the patterns of the previous solution's neurons (complete
        pattern sets are exact and need no warm start); when the first-order solver ran
        (its ``info["warm_start"]``), the next solve starts from that solution's weights
        and multipliers on its patterns (``init=``).
    rng : None, int or Generator, default 0
        Source of the sampled patterns (and of :func:`beta_max`'s directions).
    progress : bool or None
        A bar over the grid (see :mod:`deepdual.progress`).
    time_limit : float, optional
        Seconds for the whole path: the solve in progress stops at it and the path
        ends there (later points are not computed).
    **options
        Passed to :func:`deepdual.solve`.

    Returns
    -------
    RegularizationPath
    """
    from .api import solve
    from .progress import check_time_limit, monitoring

    _check_depth2(depth)
    time_limit = check_time_limit(time_limit)
    if isinstance(n_betas, bool) or not isinstance(n_betas, numbers.Integral) or n_betas < 1:
        raise ValueError(f"`n_betas` must be an integer >= 1, got {n_betas!r}")
    if not (isinstance(eps, numbers.Real) and 0 < eps < 1):
        raise ValueError(f"`eps` must be a number in (0, 1), got {eps!r}")
    if not isinstance(warm_start, (bool, np.bool_)):
        raise TypeError(f"`warm_start` must be True or False, got {warm_start!r}")
    Xv, Yv, _ = check_X_y(X, y)
    bm = beta_max(Xv, y, activation=activation, loss=loss, bias=bias, rng=rng)
    if betas is None:
        top = bm.value if bm.value > 0 else 1.0
        grid = np.geomspace(top, top * eps, int(n_betas)) if n_betas > 1 else np.array([top])
    else:
        grid = np.asarray(betas, dtype=float).ravel()
        if grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid <= 0):
            raise ValueError("`betas` must be a non-empty array of positive finite numbers")
        grid = np.sort(grid)[::-1]
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    Xa = _augment(Xv, bias)
    lossf = get_loss(loss)
    K = lossf.check_labels(Yv).shape[1]
    method = resolved_method(Xv, activation=activation, depth=2, bias=bool(bias),
                             method=options.get("method", "auto"), loss_name=getattr(lossf, "name", ""), K=K)
    base = None  # (patterns, directions) shared by the solves on sampled patterns
    if method == "convex" and warm_start and options.get("patterns", "auto") in ("auto", "sample"):
        from .patterns import count_upper_bound, row_space, sample_patterns
        from .relu.convex_program.solver import DEFAULT_MAX_PATTERNS as CP_MAX_PATTERNS, DEFAULT_N_PATTERNS

        bound = count_upper_bound(Xa.shape[0], row_space(Xa).rank) * K
        if options.get("patterns") == "sample" or bound > options.get("max_patterns", CP_MAX_PATTERNS):
            pats, dirs = sample_patterns(Xa, int(options.get("n_patterns", DEFAULT_N_PATTERNS)), gen,
                                         return_directions=True)
            if bm.direction is not None and np.any(bm.direction):
                # the cell of the direction attaining beta_max's lower end: the first neuron
                # to enter below beta_max lives there
                u = bm.direction
                pats, dirs = np.vstack([pats, (Xa @ u > 0)[None, :]]), np.vstack([dirs, u[None, :]])
            # in np.unique order (the solver's own order for a boolean pattern array), so
            # that a first-order solution's stored patterns match when it warm-starts the next
            pats, first = np.unique(pats, axis=0, return_index=True)
            base = (pats, dirs[first])
            options = {k: v for k, v in options.items() if k not in ("patterns", "n_patterns")}
    sols: list[Solution] = []
    with monitoring(progress=progress, time_limit=time_limit, desc="regularization path") as mon:
        for b in grid:
            opts = dict(options)
            prev_state = sols[-1].info.get("warm_start") if sols else None
            if warm_start and isinstance(prev_state, dict) and "patterns" not in options:
                # the first-order solver's state (weights, multipliers, its pattern set):
                # the next solve starts from the previous solution itself
                opts["init"] = sols[-1]
            elif base is not None:
                pats, dirs = base
                if sols:
                    npats, ndirs = _neuron_patterns(sols[-1], Xa)
                    if len(npats):
                        pats, dirs = np.vstack([pats, npats]), np.vstack([dirs, ndirs])
                opts["patterns"] = (pats, dirs)
            if method == "convex" and "rng" not in opts:
                opts["rng"] = gen
            sol = solve(Xv, Yv if Yv.shape[1] > 1 else Yv[:, 0], beta=float(b), depth=2,
                        activation=activation, loss=loss, bias=bias, rtol=rtol, progress=False, **opts)
            sols.append(sol)
            mon.tick()
            mon.report(sol.objective, sol.lower_bound, sol.relative_gap, beta=f"{b:.3g}")
            if mon.expired():
                mon.stop("regularization path")
                break
    m = len(sols)
    return RegularizationPath(
        betas=grid[:m],
        objectives=np.array([s.objective for s in sols]),
        lower_bounds=np.array([s.lower_bound for s in sols]),
        gaps=np.array([s.gap for s in sols]),
        certified=np.array([s.certified for s in sols], dtype=bool),
        n_neurons=np.array([active_neurons(s) for s in sols], dtype=int),
        zero_network=np.array([bool(s.info.get("zero_network", active_neurons(s) == 0)) for s in sols],
                              dtype=bool),
        solutions=sols,
        beta_max=bm,
    )
