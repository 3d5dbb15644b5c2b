r"""Exact ReLU networks with biases on one-dimensional data (docs/theory.md §2.5).

Two layers
----------
For data :math:`x \in \mathbb{R}^n` (``X`` of shape ``(n, 1)``) and a two-layer ReLU
network with unpenalized hidden and output biases,

.. math::

    f(x) = c + \sum_j v_j (w_j x + b_j)_+ ,\qquad
    P = \ell(f(x), y) + \frac\beta2\sum_j (w_j^2 + v_j^2),

the training problem over networks of *any* width equals the finite Lasso

.. math::

    \min_{c,\, z^\pm}\ \ell\Big(c\mathbf 1 + \sum_k z^+_k (x - x_k)_+ + z^-_k (x_k - x)_+,\ y\Big)
    + \beta \sum_k (|z^+_k| + |z^-_k|)

over ramps whose kinks sit at the data points (``docs/one_dimensional.md`` proves it).
On the sorted distinct points :math:`u_1 < \dots < u_p` a fit is determined by its values
:math:`g_k`, and the smallest weight decay reaching them has the closed form

.. math::

    R(g) = \max\Big(T,\ \tfrac12\big(T + |s_1 + s_{p-1}|\big)\Big),\qquad
    T = \sum_{k=2}^{p-1} |s_k - s_{k-1}|,

with :math:`s_k` the slope between :math:`u_k` and :math:`u_{k+1}` (:func:`spline_cost`);
it is Savarese et al.'s :math:`\max(\int|f''|, |f'(-\infty) + f'(+\infty)|)` minimized over
the slopes outside the data.

Algorithm
---------
The dual is a box-constrained QP in the ramp correlations
:math:`h_j = \sum_k V_k (u_k - u_j)_+` (group sums :math:`V = Bh`, a banded second
difference), with the constraints :math:`|h_j| \le \beta`, :math:`|h_j - h_1| \le \beta`.
Fixing the one coupled coordinate :math:`h_1 = \tau` leaves a box QP whose primal is a
weighted l1 trend filter :math:`J_\tau` (kinks cost :math:`\min(\beta, \beta\pm\tau)`, plus
:math:`\tau` times the first slope); the optimum is :math:`\max_\tau \min_g J_\tau`, concave
in :math:`\tau`, found by a root search on its derivative.  Each :math:`J_\tau` is minimized
exactly by a primal active-set method (feature-sign search) whose steps are tridiagonal
spline refits, warm-started by a few Mehrotra interior-point iterations that solve the
quasi-definite augmented (banded) Newton system.  Every step costs :math:`O(n)`.  The final
network is certified by the exact dual constraint of its own residual, and the solver
stops on that duality gap (``docs/one_dimensional.md`` §5).

Deeper networks
---------------
For ``depth >= 3`` (option ``architecture="linear_on_data"``, the only one accepted)
the solver returns the best network among those whose layers after the first act
linearly on the data (the structure of the paper's optimal solutions).  Within that class the problem is
:math:`\min_g \ell(g) + \frac{\beta L}{2} R(g)^{2/L}`, solved by a scalar search along
the two-layer path.  Deep networks outside the class can do strictly better, and
narrow deep networks can place kinks off the data; the returned ``lower_bound`` is a
proven (Lipschitz) bound over *all* networks and is usually far from tight, so such
solutions are not certified.  See ``docs/one_dimensional.md``.

Modules
-------
This module is the entry point (:func:`solve_1d`, the dispatcher over the variants below)
and re-exports the public names; the mathematics lives in sibling modules:

* :mod:`~deepdual.relu.one_dimensional.splines`: grouping of the data, spline cost, minimal
  networks, :func:`interpolate` (``docs/one_dimensional.md`` §2-3);
* :mod:`~deepdual.relu.one_dimensional.certificate`: exact dual constraint at the data and
  :func:`certify_1d` (§4);
* :mod:`~deepdual.relu.one_dimensional.trend_filter`: two layers, squared loss (§5);
* :mod:`~deepdual.relu.one_dimensional.losses`: logistic, hinge and cross-entropy losses (§6);
* :mod:`~deepdual.relu.one_dimensional.biases`: penalized biases (§6);
* :mod:`~deepdual.relu.one_dimensional.deep`: depth >= 3 (§7).

References
----------
P. Savarese, I. Evron, D. Soudry, N. Srebro, "How do infinite width bounded norm networks
look in function space?", COLT 2019.
T. Ergen, M. Pilanci, "Revealing the structure of deep neural networks via convex duality",
ICML 2021.
S.-J. Kim, K. Koh, S. Boyd, D. Gorinevsky, "l1 trend filtering", SIAM Review 2009
(banded interior-point methods for the same kind of dual).
E. Boursier, N. Flammarion, "Penalising the biases in norm regularisation enforces
sparsity", NeurIPS 2023 (the penalized-bias variant).
E. Zeger et al., "A library of mirrors: deep neural nets in low dimensions are convex
Lasso models with reflection features", 2024.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._threads import SingleThreadedBLAS
from ..._validation import check_options, check_positive
from ...losses import CrossEntropyLoss, HingeLoss, Loss, LogisticLoss, SquaredLoss
from ...losses import get_loss
from ...solution import DEFAULT_RTOL, Certificate, Solution, is_certified
from .splines import min_norm_ramps, ramps_network
from .certificate import dual_bound_two_layer, forward_pass, network_objective
from .trend_filter import DEFAULT_TOL, solve_two_layer
from .losses import solve_binary, solve_cross_entropy
from .biases import solve_penalized
from .deep import solve_deep
from .units import rescale_solution, unit_scales

# names defined in the sibling modules, importable from here (public API and the private
# helpers tests/test_relu_1d.py reaches as ``relu_1d.<name>``)
from .splines import Interpolant, interpolate, spline_cost, spline_network  # noqa: F401
from .certificate import c_columns, compensated_cumsum, penalized_sectors  # noqa: F401
from .certificate import residual_certificate_1d
from .biases import ArcBarrier  # noqa: F401

__all__ = [
    "solve_1d",
    "certify_1d",
    "interpolate",
    "Interpolant",
    "spline_cost",
    "spline_network",
    "SkipSolution",
]


# =============================================================================================
# Public entry points
# =============================================================================================


@dataclass(repr=False)
class SkipSolution(Solution):
    r"""Solution of the variant with a free (unpenalized) linear skip term,

    .. math:: f(x) = a\,x + \mathrm{network}(x),\qquad
              P = \ell(f(x), y) + \frac\beta2\sum_j(w_j^2 + v_j^2).

    :class:`~deepdual.Network` has no skip connection, and representing :math:`a x` by ReLU
    units would cost :math:`\beta|a|` (it is not free under weight decay), so the slope is
    kept here: :meth:`predict` adds it, and :attr:`objective` equals
    ``deepdual.objective(network, X, y - slope * x, beta=beta)``.
    """

    slope: float = 0.0

    def predict(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        out = self.network.predict(X)
        lin = self.slope * X[:, 0]
        return out + (lin if out.ndim == 1 else lin[:, None])


#: largest max|x| accepted with penalized biases: beyond it the arc program (angles of the
#: directions orthogonal to (x_k, 1)) is inaccurate in double precision; measured: certified at
#: 1e5, breaks down between 1e6 and 1e7 (docs/one_dimensional.md §8)
PENALIZED_MAX_X = 2.0 ** 20

_OPTIONS = ("penalize_biases", "skip", "tol", "max_iter", "n_grid", "architecture")

#: depth >= 3 architectures the solver optimizes over (see ``docs/one_dimensional.md`` §7)
_ARCHITECTURES = ("linear_on_data", "deep_narrow")


@SingleThreadedBLAS()  # small dense Newton/working-set systems (deepdual._threads)
def solve_1d(X: np.ndarray, Y: np.ndarray, *, scalar: bool, beta: float, depth: int, loss: Loss,
             rtol: float, bias: bool, penalize_biases: bool = False, skip: bool = False,
             tol: float | None = None, max_iter: int = 2000, n_grid: int = 24,
             architecture: str = "linear_on_data", **options: Any) -> Solution:
    r"""Globally optimal ReLU network with biases on one-dimensional data (docs/theory.md §2.5).

    Called by :func:`deepdual.solve` for ``X`` of shape ``(n, 1)`` with ``bias=True``.

    Two layers (default): exact optimum over networks of any width with unpenalized
    hidden and output biases, by the banded dual / active-set algorithm of this module;
    certified by the exact dual constraint of the returned network's residual (stops
    when the relative gap is below ``tol``).  Its kinks lie at data points.

    Options
    -------
    skip : bool
        Add a free linear term :math:`a x` (returns a :class:`SkipSolution`).
    penalize_biases : bool
        Penalize every bias like a weight (the two-layer program on :math:`X = [x, 1]`);
        the output bias is penalized too, matching ``objective(..., penalize_biases=True)``.
        Kinks may then lie *between* data points.  Solved exactly as a cone program over
        the 2p activation arcs by a working-set barrier method (no external solver).
    tol : float, optional
        Target relative duality gap (default 1e-9; ``rtol/10`` for the cross-entropy): the
        active-set method stops once no ramp correlation exceeds its bound by more than
        ``tol/10`` of beta; the reported gap is the exact certificate of the returned
        network (usually far below ``tol``).
    max_iter : int
        Iteration cap of the active-set method.
    n_grid : int
        Depth >= 3: number of two-layer solves in the scalar search.
    architecture : {"linear_on_data", "deep_narrow"}, default "linear_on_data"
        Depth >= 3 only: the class of networks optimized over.  ``"linear_on_data"``: parallel
        (or standard) ReLU networks with unpenalized biases and weight decay on every layer
        whose layers after the first act linearly on the data (every pre-activation of
        layers 2..L-1 is >= 0 at every data point).  Its optimum has kinks only at data
        points and is computed exactly up to a proven class bound (``info["class_lower_bound"]``).
        It is *not* the optimum over unconstrained deep networks (those can do better, with
        kinks off the data), so such solutions are never reported as certified.  Other
        architectures (unconstrained weight decay; the paper's norm-constrained parallel
        networks) raise ``ValueError``: no exact solver or proof is available for them
        (``docs/one_dimensional.md`` §7).  ``"deep_narrow"``: the deep narrow networks of
        arXiv 2403.01046 (sums of width-one chains) with the paper's penalty
        :math:`\frac\beta L\sum|w|^L` (not weight decay), solved exactly as a Lasso and
        certified within that architecture (``docs/one_dimensional.md`` §10).

    Depth >= 3 returns the best network whose deeper layers act linearly on the data (the
    structure of the paper's optimal solutions); see the module docstring and
    ``docs/one_dimensional.md`` for what is and is not proven.  The squared loss is
    supported everywhere; the logistic and hinge losses (one output) for two layers with
    free biases (no ``skip``/``penalize_biases``): the same finite Lasso, solved by
    proximal Newton over the squared solver (logistic) or a sparse LP (hinge), certified by
    the exact dual constraint (:func:`solve_binary`); the K-class cross-entropy (two
    layers, free biases) as the group Lasso over vector ramps at the data
    (:func:`solve_cross_entropy`).  Other losses raise ``ValueError``
    (:func:`certify_1d` accepts any loss).
    """
    check_options(options, _OPTIONS, "solve(method='one_dimensional')")
    if X.shape[1] != 1:
        raise ValueError(f"`X` must be one-dimensional data (shape (n, 1)) for the 1-D solver, got shape {X.shape}")
    if not bias:
        raise ValueError("the one-dimensional ReLU solver needs `bias=True` (without biases a ReLU network on "
                         "1-D data is positively homogeneous; use method='rank_one')")
    multiclass = isinstance(loss, CrossEntropyLoss)
    if Y.shape[1] != 1 and not multiclass:
        raise ValueError(f"`y` must have a single output column for the 1-D solver, got {Y.shape[1]} columns")
    binary = isinstance(loss, (LogisticLoss, HingeLoss))
    if not isinstance(loss, SquaredLoss) and not ((binary or multiclass) and depth == 2 and not penalize_biases
                                                   and not skip):
        raise ValueError(f"the one-dimensional solver supports loss='squared', and 'logistic'/'hinge'/"
                         f"'cross_entropy' for depth=2 without `skip`/`penalize_biases`; got "
                         f"loss={getattr(loss, 'name', loss)!r}, depth={depth}; "
                         "certify other losses with deepdual.certify")
    for name, val in (("penalize_biases", penalize_biases), ("skip", skip)):
        if not isinstance(val, (bool, np.bool_)):
            raise TypeError(f"`{name}` must be True or False, got {val!r}")
    if penalize_biases and skip:
        raise ValueError("`penalize_biases` and `skip` cannot be combined")
    # cross-entropy (first-order solver): stop at rtol/10 unless `tol` is given
    tol_default = tol is None
    tol = check_positive(DEFAULT_TOL if tol is None else tol, "tol")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"`max_iter` must be a positive integer, got {max_iter!r}")
    if not isinstance(architecture, str) or architecture not in _ARCHITECTURES:
        raise ValueError(f"`architecture` must be one of {_ARCHITECTURES} (depth >= 3 on 1-D data), got "
                         f"{architecture!r}; unconstrained deep networks and the paper's norm-constrained "
                         "architecture have no exact solver (see docs/one_dimensional.md §7)")
    if architecture == "deep_narrow":  # arXiv 2403.01046, l_L penalty (deep.py, docs §10)
        from .deep import solve_deep_architecture

        return solve_deep_architecture(X, Y, scalar=scalar, beta=beta, depth=depth, loss=loss, rtol=rtol,
                                       architecture=architecture, penalize_biases=penalize_biases, skip=skip)
    tol = rtol / 10 if (multiclass and tol_default) else tol
    kw = dict(scalar=scalar, depth=depth, loss=loss, rtol=rtol, penalize_biases=penalize_biases, skip=skip,
              tol=tol, max_iter=max_iter, n_grid=n_grid)
    if penalize_biases:  # not scale-equivariant (units.py): solved in the given units
        xmax = float(np.max(np.abs(X)))
        if xmax > PENALIZED_MAX_X:
            raise ValueError(f"`X` has max|x| = {xmax:.3g}: with penalize_biases=True the problem is not "
                             "invariant to the units of x (a bias costs like a weight), and the cone program "
                             "over activation arcs loses its precision beyond max|x| ~ "
                             f"{PENALIZED_MAX_X:.3g}; rescale x (which changes the problem) or use free "
                             "biases (penalize_biases=False, unit-invariant; docs/one_dimensional.md §8)")
        sol = _solve_in_units(X, Y, beta=beta, **kw)
        if not sol.certified and xmax > 2.0 ** 10:
            msg = (f"max|x| = {xmax:.3g}: the penalized-bias cone program loses precision for large x "
                   "(not unit-invariant, so it is not rescaled; docs/one_dimensional.md §8)")
            sol.info["note"] = f"{sol.info['note']}; {msg}" if sol.info.get("note") else msg
        return sol
    # free biases: solve in units where max|x| and max|y| are about 1, map back exactly (units.py)
    units = unit_scales(X[:, 0], Y, depth=depth, scale_labels=isinstance(loss, SquaredLoss))
    if units.identity:
        return _solve_in_units(X, Y, beta=beta, **kw)
    beta_s = units.beta_scaled(beta)
    if not (np.isfinite(beta_s) and beta_s >= np.finfo(float).tiny) and units.b != 1.0:
        # labels of extreme size (e.g. subnormal): scale x only
        units = dataclasses.replace(units, b=1.0)
        beta_s = units.beta_scaled(beta)
    if not (np.isfinite(beta_s) and beta_s >= np.finfo(float).tiny):
        raise ValueError(f"`beta` = {beta!r} is out of range for data of this size (max|x| ~ {units.a:.3g}"
                         + (f", max|y| ~ {units.b:.3g}" if units.b != 1.0 else "")
                         + f"): the problem in unit scale has beta = {beta_s:.3g}")
    scaled = _solve_in_units(units.to_units(X), Y / units.b, beta=beta_s, **kw)
    sol = rescale_solution(scaled, units, objective=np.nan)
    target = Y - sol.slope * X if skip else Y
    sol.objective = network_objective(sol.network, X, target, beta, loss)  # in the given units
    if not np.isfinite(sol.objective):
        raise ValueError(f"the optimal objective overflows float64 for labels of this size (max|y| ~ "
                         f"{units.b:.3g}; it is {units.objective:.3g} times {scaled.objective:.6g}): rescale `y`")
    x = X[:, 0]
    offset = float(np.max(np.abs(x))) / max(float(np.ptp(x)), np.finfo(float).tiny)
    if offset > 1e6:
        msg = (f"x lies far from 0 relative to its spread (max|x| / range = {offset:.3g}): the network "
               "computes w x + b with cancellation, so its objective in double precision is accurate to "
               f"about {offset * np.finfo(float).eps:.1g} relative (the bound is proven); subtract a "
               "constant from x for an accurate network (docs/one_dimensional.md §8)")
        sol.info["note"] = f"{sol.info['note']}; {msg}" if sol.info.get("note") else msg
    return sol


def _solve_in_units(X: np.ndarray, Y: np.ndarray, *, scalar: bool, beta: float, depth: int, loss: Loss,
                    rtol: float, penalize_biases: bool, skip: bool, tol: float, max_iter: int,
                    n_grid: int) -> Solution:
    """The 1-D solver for validated options (the variants of :func:`solve_1d`)."""
    multiclass = isinstance(loss, CrossEntropyLoss)
    binary = isinstance(loss, (LogisticLoss, HingeLoss))
    if multiclass:
        return solve_cross_entropy(X[:, 0], X, Y, scalar=scalar, beta=beta, loss=loss, rtol=rtol,
                                    tol=tol, max_iter=max_iter)
    x, y = X[:, 0], Y[:, 0]
    if depth >= 3:
        if penalize_biases or skip:
            raise ValueError("`penalize_biases` and `skip` are two-layer options (depth=2)")
        return solve_deep(x, y, X, Y, scalar=scalar, beta=beta, depth=depth, loss=loss, rtol=rtol,
                           max_iter=max_iter, n_grid=n_grid)
    if binary:
        return solve_binary(x, y, X, Y, scalar=scalar, beta=beta, loss=loss, rtol=rtol, tol=tol,
                             max_iter=max_iter)
    if penalize_biases:
        return solve_penalized(x, y, X, Y, scalar=scalar, beta=beta, loss=loss, rtol=rtol, tol=tol,
                                max_iter=max_iter)
    res = solve_two_layer(x, y, beta, skip=skip, max_iter=max_iter, tol=tol)
    ramps = min_norm_ramps(res.tk, res.ck, skip=skip)
    net = ramps_network(ramps, scalar=scalar)
    target = Y - ramps.slope * X if skip else Y
    obj = network_objective(net, X, target, beta, loss)
    F = forward_pass(net, X) + (ramps.slope * X if skip else 0.0)
    D, vv, c = dual_bound_two_layer(x, Y, F, beta, loss, kind="skip" if skip else "base")
    lower = max(D, res.D)
    info = dict(res.info)
    info.update(neurons=int(ramps.z.size), knots=res.tk[1:-1].copy(), spline_objective=res.P,
                dual_constraint=c, tol=tol,
                note="kinks at data points; lower bound = exact dual constraint of the residual")
    method = "one-dimensional two-layer ReLU: ramps at the data (banded dual + active set)"
    if skip:
        return SkipSolution(network=net, objective=obj, lower_bound=lower, method=method + ", free linear term",
                            rtol=rtol, dual=vv, info=info, slope=float(ramps.slope))
    return Solution(network=net, objective=obj, lower_bound=lower, method=method, rtol=rtol, dual=vv, info=info)


# =============================================================================================
# Certificates of given networks
# =============================================================================================


def _optimum_bound(X: np.ndarray, Y: np.ndarray, beta: float, loss: Loss, penalize_biases: bool,
                   depth: int) -> tuple[float, np.ndarray | None] | None:
    """Proven lower bound and dual point of :func:`solve_1d` over the class a network with
    biases of this depth belongs to (depth >= 3: its proven Lipschitz bound over all deep
    networks, squared loss); None where the solver does not apply (other losses, several
    squared-loss outputs, penalized biases with other losses or depths, large x)."""
    if not isinstance(loss, (SquaredLoss, LogisticLoss, HingeLoss, CrossEntropyLoss)):
        return None
    if (Y.shape[1] != 1 and not isinstance(loss, CrossEntropyLoss)) or (
            penalize_biases and not isinstance(loss, SquaredLoss)) or (
            depth > 2 and (penalize_biases or not isinstance(loss, SquaredLoss))):
        return None
    try:
        sol = solve_1d(X, Y, scalar=Y.shape[1] == 1, beta=beta, depth=depth, loss=loss, rtol=DEFAULT_RTOL,
                       bias=True, penalize_biases=penalize_biases)
    except ValueError:  # e.g. penalized biases beyond the arc program's range
        return None
    lb = float(sol.lower_bound)
    return (lb, sol.dual) if np.isfinite(lb) else None


def certify_1d(network: Any, X: np.ndarray, Y: np.ndarray, *, beta: float, loss: Any = "squared",
               rtol: float = DEFAULT_RTOL, penalize_biases: bool = False, constraint: str = "auto",
               n_scales: int = 60, max_patterns: Any = None) -> Certificate:
    r"""Weak-duality certificate of a ReLU network (with or without biases) on 1-D data.

    The bound of the network's own dual point
    (:func:`~deepdual.relu.one_dimensional.certificate.residual_certificate_1d`: exact dual
    constraint for two layers, proven Lipschitz bound for depth >= 3) and, when that leaves
    the gap open, the proven bound of :func:`solve_1d` for the same class: the optimum's
    dual (two layers; squared, logistic, hinge, cross-entropy, penalized biases with the
    squared loss) or the solver's all-network Lipschitz bound (depth >= 3, squared loss),
    whichever is larger; ``details["bounds"]`` lists both.  Valid for every network of the
    class, so also for this one.  This matters for the hinge loss, whose subgradient at
    margins exactly 1 is not the optimal dual (``docs/one_dimensional.md`` §8).  Parameters
    as for :func:`residual_certificate_1d`.
    """
    cert = residual_certificate_1d(network, X, Y, beta=beta, loss=loss, rtol=rtol,
                                   penalize_biases=penalize_biases, constraint=constraint,
                                   n_scales=n_scales, max_patterns=max_patterns)
    if is_certified(cert.objective, cert.lower_bound, rtol):
        return cert
    lossf = get_loss(loss)
    Xa = np.asarray(X, dtype=float)
    Ya = np.asarray(Y, dtype=float).reshape(Xa.shape[0], -1)
    opt = _optimum_bound(Xa, Ya, float(beta), lossf, bool(penalize_biases), network.depth)
    if opt is None:
        return cert
    details = dict(cert.details or {})
    details["bounds"] = dict(details.get("bounds", {}), solve_1d=opt[0])
    if opt[0] <= cert.lower_bound:
        return dataclasses.replace(cert, details=details)
    how = ", dual of the optimum (solve_1d)" if network.depth == 2 else ", the solver's two-layer duals (solve_1d)"
    return dataclasses.replace(cert, lower_bound=opt[0], method=cert.method + how,
                               dual=opt[1] if network.depth == 2 else cert.dual, details=details)
