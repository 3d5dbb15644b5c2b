r"""Weak-duality certificates for *any* linear network (any depth, widths, parallel paths).

A linear network computes :math:`f(X) = XM + \mathbf 1b^T` with :math:`M = \sum_j M_j`,
:math:`M_j = W_{1,j}\cdots W_{L,j}`.  For any dual point :math:`\Lambda` (with
:math:`\mathbf 1^T\Lambda = 0` when the network has biases), Fenchel--Young gives

.. math:: \ell(f(X)) \ge D(\Lambda) - \langle\Lambda, XM\rangle \ge D(\Lambda) - c\,\|M\|_*,
   \qquad c = \|X^T\Lambda\|_2,\quad D(\Lambda) = -\ell^*(-\Lambda).

* **Two layers**: :math:`\frac\beta2\sum\|W\|_F^2 \ge \beta\sum_j\|M_j\|_* \ge \beta\|M\|_*`, so
  :math:`c \le \beta` makes :math:`D(\Lambda)` a lower bound on every network's objective.
  The certificate takes :math:`\Lambda = t(-\nabla\ell(F))` with the best
  :math:`t \le \beta / c` (and, for the squared loss where it is cheap, also the exact
  optimal dual; the larger bound is kept).
* **Depth L >= 3**: with the path budget :math:`T = \sum_j\prod_l\|W_{l,j}\|_F \ge \|M\|_*`,
  :math:`P \ge D - cT + \frac{\beta L}2T^{2/L}` for every network, and
  :func:`deepdual.bounds.power_penalty_lower_bound` turns a family of candidates into a
  proven bound on the global optimum.  Candidates: scalings :math:`t\Lambda` of the
  network's own residual dual, plus (squared loss, orthonormal X) the Schatten-2/L
  closed form, plus -- when these leave the gap open -- the duals of the solver's own
  global path search, run with the solver's budgets (so ``certify`` reproduces every
  bound ``solve`` reports).

See ``docs/linear.md`` for the proofs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_options
from ..bounds import max_budget, power_penalty_lower_bound
from ..losses import HingeLoss, Loss, SquaredLoss
from ..network import Network
from ..objective import objective
from ..projection import factorize, project_factored
from ..solution import Certificate
from .solver import (
    hinge_active_set,
    hinge_min_norm_dual,
    nuclear_norm,
    schatten_power,
    SmoothedHinge,
    deep_linear_search,
    deep_search_defaults,
    extreme_scale,
    solve_spectral,
    spectral_structure,
    scaled_dual,
    spectral_norm,
    zero_sum_dual,
)

__all__ = ["certify_linear", "path_budget"]

_TINY = np.finfo(float).tiny


def path_budget(network: Network) -> float:
    r""":math:`T = \sum_j \prod_l \|W_{l,j}\|_F`, an upper bound on :math:`\|M\|_*` (Hoelder)."""
    return float(sum(np.prod([np.linalg.norm(W) for W in layers]) for layers in network.weights))


def _end_to_end(network: Network) -> np.ndarray:
    r"""End-to-end weight :math:`M = \sum_j W_{1,j}\cdots W_{L,j}` of a linear network."""
    M = None
    for layers in network.weights:
        P = layers[0]
        for W in layers[1:]:
            P = P @ W
        M = P if M is None else M + P
    return np.asarray(M, dtype=float)


def _exact_two_layer_dual(X: np.ndarray, Y: np.ndarray, beta: float):
    """Optimal dual of the two-layer squared-loss problem where it is a closed form, else None."""
    loss = SquaredLoss()
    if Y.shape[1] == 1:
        res = project_factored(factorize(X), Y[:, 0], beta)
        return scaled_dual(loss, X, Y, res.u[:, None], beta)
    structure = spectral_structure(X)
    if structure is None:
        return None
    M, _, _ = solve_spectral(X, Y, beta, 2, structure)
    return scaled_dual(loss, X, Y, Y - X @ M, beta)


def _dual_directions(loss: Loss, X: np.ndarray, F: np.ndarray, Y: np.ndarray, *, deep: bool, radius: float,
                     intercept: bool) -> list[np.ndarray]:
    r"""Dual directions built from the network's output ``F``.

    * the residual :math:`-\nabla\ell(F)`;
    * hinge loss (whose subgradient at a kink is a poor dual): the gradients
      :math:`-\nabla h_\gamma(F)` of its Moreau envelopes, :math:`\gamma = 10^{-6..0}`, and the
      multipliers of the samples at the kink solved from stationarity with ``radius``
      (:math:`\beta` for two layers, :math:`\beta T^{2/L-1}` for depth L), all in the conjugate's domain;
    * deep networks: :math:`V_0 = -\nabla\ell(0)` (tight at budget 0) and the segment
      between it and the residual.
    """
    V = loss.dual_point(F, Y)
    dirs = [V]
    if isinstance(loss, HingeLoss) and Y.shape[1] == 1:
        dirs += [-SmoothedHinge(g).gradient(F, Y) for g in 10.0 ** np.arange(-6, 1)]
        if radius > 0 and np.isfinite(radius):
            for tol in (1e-10, 1e-8, 1e-6, 1e-4):
                # margins within tol of 1 count as "at the kink"
                _, _, Vk = hinge_active_set(X, Y, radius, F, tol, intercept, above=tol)
                if Vk is not None:
                    dirs.append(Vk)
        # a zero (or tiny) network: the kink multipliers of least ||X^T Lambda||
        for tol in (1e-10, 1e-6):
            Vm = hinge_min_norm_dual(X, Y, F, tol, intercept)
            if Vm is not None:
                dirs.append(Vm)
    if deep:
        V0 = loss.dual_point(np.zeros_like(F), Y)
        dirs.append(V0)
        dirs += [(1 - a) * V0 + a * V for a in np.linspace(0.1, 0.9, 9)]
    return dirs


def certify_linear(network: Network, X: np.ndarray, Y: np.ndarray, *, beta: float, loss: Loss,
                   rtol: float, **options: Any) -> Certificate:
    r"""Objective of a linear ``network`` and a proven lower bound on the global optimum.

    Parameters
    ----------
    network : Network
        ``activation="linear"``, any depth, widths and number of parallel paths.
    X : ndarray (n, d), Y : ndarray (n, K)
        Validated data, labels canonical for ``loss``.
    beta : float
    loss : Loss
    rtol : float
    **options
        ``exact`` : {"auto", True, False}, default "auto".  Also use dual points of the
        exact optimum: "auto" uses the closed forms (squared loss) and, at depth >= 3 when
        the network's own duals leave the gap above ``rtol``, runs the solver's global
        path search (:func:`~deepdual.linear.solver.deep_linear_search`) with the solver's
        budgets, so that every network ``solve`` certified is certified again; True runs
        that search always; False: only duals built from the network itself.

    Returns
    -------
    Certificate
        ``method`` names the case; ``details`` holds the dual constraint value, the
        path budget and ``T_max`` (deep).
    """
    check_options(options, ("exact",), "certify(linear network)")
    exact = options.get("exact", "auto")
    if not (isinstance(exact, (bool, np.bool_)) or exact == "auto"):
        raise TypeError(f"option `exact` must be 'auto', True or False, got {exact!r}")
    if network.activation != "linear":
        raise ValueError(f"certify_linear needs a linear network, got activation={network.activation!r}")
    L = network.depth
    no_hidden = network.biases is None or all(b is None for row in network.biases for b in row)
    a, b = extreme_scale(X), (extreme_scale(Y) if isinstance(loss, SquaredLoss) else 1.0)
    if no_hidden and (a != 1.0 or b != 1.0):
        # as in solve (docs/linear.md §5): X/a, Y/b, beta b^(2/L-2) a^(-2/L), every layer times (a/b)^(1/L),
        # output bias / b; objective and bound scale by b^2
        f = (a / b) ** (1.0 / L)
        ob = network.output_bias
        scaled = Network([[W * f for W in sub] for sub in network.weights], "linear",
                         output_bias=None if ob is None else ob / b, scalar_output=network.scalar_output)
        cert = certify_linear(scaled, X / a, Y / b, beta=beta * b ** (2.0 / L - 2.0) * a ** (-2.0 / L), loss=loss,
                              rtol=rtol, **options)
        details = dict(cert.details, rescaled_by={"X": a, "y": b})
        return Certificate(objective=objective(network, X, Y, beta=beta, loss=loss),
                           lower_bound=cert.lower_bound * b * b, method=cert.method, exact_constraint=True,
                           dual=None if cert.dual is None else np.asarray(cert.dual) * b, rtol=rtol, details=details)
    P = objective(network, X, Y, beta=beta, loss=loss)
    F = network.forward(X)
    intercept = network.has_biases
    squared = isinstance(loss, SquaredLoss)
    K = Y.shape[1]
    if intercept and squared:
        # an unpenalized bias: the problem equals the one on centered data, whose duals
        # are orthogonal to 1 (as the bias requires)
        Xs, Ys = X - X.mean(axis=0), Y - Y.mean(axis=0)
    else:
        Xs, Ys = X, Y
    details: dict[str, Any] = {"path_budget": path_budget(network), "biases": bool(intercept)}
    T_net = details["path_budget"]
    radius = beta if L == 2 else (beta * T_net ** (2.0 / L - 1.0) if T_net > 0 else np.inf)
    dirs = _dual_directions(loss, X, F, Y, deep=L > 2, radius=radius, intercept=intercept)

    if L == 2:
        lb, dual, c = -np.inf, None, np.nan
        for V in dirs:
            Lam, D, cc = scaled_dual(loss, X, Y, V, beta, intercept=intercept)
            if D > lb:
                lb, dual, c = D, Lam, cc
        details["dual_constraint"] = c
        method = "two-layer linear: residual dual scaled into ||X^T Lambda||_2 <= beta"
        if exact is not False and squared:
            ex = _exact_two_layer_dual(Xs, Ys, beta)
            if ex is not None and ex[1] > lb:
                dual, lb = ex[0], ex[1]
                details["dual_constraint"] = ex[2]
                method = "two-layer linear: exact optimal dual (closed form), ||X^T Lambda||_2 <= beta"
        return Certificate(objective=P, lower_bound=float(lb), method=method, exact_constraint=True,
                           dual=dual, rtol=rtol, details=details)

    # ------------------------------------------------------------------ depth >= 3
    lam, p = 0.5 * beta * L, 2.0 / L
    min_loss = float(loss.minimum(Y))
    Ds: list[float] = [min_loss]
    cs: list[float] = [0.0]
    grid: list[float] = []
    lim = getattr(loss, "dual_scale_limit", None)
    for V in dirs:
        Vz = zero_sum_dual(loss, V, Y) if intercept else V
        if Vz is None or not np.any(Vz):
            continue
        c1 = spectral_norm(X.T @ Vz)
        t_lim = float(lim(Vz, Y)) if callable(lim) else (np.inf if loss.unbounded_dual_scale else 1.0)
        t_hi = min(2.0, t_lim)
        # scales: a uniform grid plus a dense cluster at t = 1 (the tangent candidate
        # of an optimal network)
        ts = np.concatenate([np.linspace(0.0, t_hi, 41), 1.0 - np.logspace(-10, -1, 10),
                             1.0 + np.logspace(-10, -1, 10)])
        for t in np.unique(ts[(ts >= 0) & (ts <= t_hi)]):
            D = float(loss.dual_value(t * Vz, Y))
            if np.isfinite(D):
                Ds.append(D)
                cs.append(float(t * c1))
    kinds = ["duals from the network's residual"]
    schatten_lb = -np.inf
    if exact is not False and squared:
        structure = spectral_structure(Xs)
        if structure is not None:
            _, schatten_lb, _ = solve_spectral(Xs, Ys, beta, L, structure)
            kinds.append(f"Schatten-2/L closed form ({structure} X)")

    def interval_bound(upper: float) -> tuple[float, float]:
        T_max = max_budget(upper - min_loss, beta, L)
        base = np.concatenate([[0.0], T_max * np.logspace(-12, 0, 1000), np.linspace(0.0, T_max, 1000)])
        if 0 < T_net < T_max:
            base = np.concatenate([base, T_net * (1 - np.logspace(-9, -1, 40)),
                                   T_net * (1 + np.logspace(-9, -1, 40)), [T_net]])
        grid_arr = np.concatenate([base, np.asarray(grid, dtype=float)])
        grid_arr = grid_arr[(grid_arr >= 0) & (grid_arr <= T_max)]
        bound = power_penalty_lower_bound(np.array(Ds), np.array(cs), beta=beta, depth=L, T_max=T_max,
                                          grid=grid_arr)
        return max(bound, schatten_lb), T_max

    lb, T_max = interval_bound(P)
    closed = P - lb <= rtol * max(abs(P), _TINY)
    # the search that solve() runs, with solve()'s budgets: whatever solve() certified is certified here
    # (its lower bound is a deterministic function of the problem); "auto" runs it only when the
    # network's own duals leave the gap open
    # every network has P >= l(XM) + lam sum_i sigma_i(M)^p while the search's bound is at most
    # l(XM) + lam (sum_i sigma_i(M))^p (docs/linear.md §3b): when the difference exceeds the
    # tolerance, the search cannot certify this network and is skipped (never for one output)
    M_net = _end_to_end(network)
    relax = lam * (schatten_power(M_net, p) - nuclear_norm(M_net) ** p) if K > 1 else 0.0
    hopeless = relax > 2.0 * rtol * max(abs(P), _TINY)
    if hopeless:
        details["search"] = "not run: the rank of the network's end-to-end map alone leaves a gap above rtol"
    if exact is True or (exact == "auto" and not closed and not hopeless):
        if intercept and not squared:
            details["search"] = "not run: the deep search has no intercept for this loss"
        else:
            budgets = deep_search_defaults(loss, K, rtol)
            search = deep_linear_search(Xs, Ys, loss, beta, L, **budgets)
            ps = search.path
            Ds.extend(q.D for q in ps.points)
            cs.extend(q.c for q in ps.points)
            grid.extend(q.s for q in ps.points)
            lb, T_max = interval_bound(min(P, ps.upper))
            lb = max(lb, ps.lower)
            kinds.append("the solver's global path search" + (f" ({search.reduction})" if search.reduction else ""))
            details.update(search_points=len(ps.points), search_upper=ps.upper)
    details.update(T_max=T_max, n_candidates=len(Ds))
    method = f"deep linear (L={L}): interval bound over the path budget with " + ", ".join(kinds)
    return Certificate(objective=P, lower_bound=float(lb), method=method, exact_constraint=True,
                       dual=None, rtol=rtol, details=details)
