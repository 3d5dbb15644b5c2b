r"""Deep (depth L >= 3) ReLU networks on one-dimensional data, ``architecture="linear_on_data"``.

Among networks whose layers after the first act linearly on the data (the structure of the
paper's optimal solutions), the training problem is
:math:`\min_g \ell(g) + \frac{\beta L}{2} R(g)^{2/L}` with :math:`R` the two-layer spline cost;
:func:`solve_deep` solves it by a scalar search along the two-layer path and builds the
standard depth-L network (:func:`_deep_network`).  The returned ``lower_bound`` is a proven
(Lipschitz) bound over *all* networks, usually far from tight, so these solutions are not
certified.  Derivation and what is and is not proven: ``docs/one_dimensional.md`` §7.

References
----------
T. Ergen, M. Pilanci, "Revealing the structure of deep neural networks via convex duality",
ICML 2021.
"""

from __future__ import annotations

import math

import numpy as np

from ...network import Network
from ...progress import current as current_monitor
from ...solution import Solution
from .splines import Ramps, group_data, min_norm_ramps, interpolate, spline_cost
from .certificate import c_lipschitz_bound, c_two_layer, network_objective
from .trend_filter import solve_two_layer


# =============================================================================================
# Depth L >= 3
# =============================================================================================


def _deep_network(r: Ramps, depth: int, u: np.ndarray, scalar: bool) -> Network:
    r"""Standard depth-L network ``[1 -> k -> 1 -> ... -> 1]`` computing the ramps ``r``.

    Layer 1 holds the ramps, layer 2 sums them (its bias keeps the pre-activation
    non-negative on ten hull widths around the data, so this ReLU acts as the identity
    there), layers 3..L-1 are scalars; all layers balanced at norm :math:`R^{1/L}` with
    :math:`R = \sum|z_i|`, so the weight decay is :math:`\tfrac{\beta L}{2}R^{2/L}`."""
    L = depth
    k = r.z.size
    R = r.cost
    if k == 0 or R == 0:
        Ws = [np.zeros((1, 1))] + [np.zeros((1, 1)) for _ in range(L - 1)]
        bs = [np.zeros(1) for _ in range(L - 1)]
        return Network([Ws], "relu", biases=[bs], output_bias=np.array([r.const]), scalar_output=scalar)
    rho = R ** (1.0 / L)
    alpha = rho / math.sqrt(R)
    a = np.sqrt(np.abs(r.z))
    W1 = (alpha * r.o * a).reshape(1, k)
    b1 = -alpha * r.o * r.t * a
    W2 = (alpha * np.sign(r.z) * a).reshape(k, 1)
    # psi = sum z_i ramp_i; layer-2 pre-activation is (rho^2/R) psi + b2; keep it >= 0 on
    # [u_1 - 10 w, u_p + 10 w] (w the hull width): its minimum there is at a knot or an end
    width = max(float(u[-1] - u[0]), 1.0)
    pts = np.concatenate([[u[0] - 10 * width, u[-1] + 10 * width], r.t])
    psi = Ramps(r.t, r.o, r.z, 0.0)(pts)
    b2 = max(0.0, -float(np.min(psi)) * alpha * alpha) + alpha * alpha * max(float(np.max(np.abs(psi))), 1.0) * 1e-3
    Ws = [W1, W2] + [np.full((1, 1), rho) for _ in range(L - 2)]
    bs = [b1, np.array([b2])] + [np.zeros(1) for _ in range(L - 3)]
    out_bias = r.const - rho ** (L - 2) * b2
    return Network([Ws], "relu", biases=[bs], output_bias=np.array([out_bias]), scalar_output=scalar)


def solve_deep(x, y, X, Y, *, scalar, beta, depth, loss, rtol, max_iter, n_grid) -> Solution:
    r"""Depth :math:`L \ge 3` on 1-D data: the best network whose layers after the first act
    linearly on the data (as in the paper's optimal solutions, whose deeper layers carry
    non-negative aligned vectors).  On the data such a network equals a two-layer one with
    :math:`R_2 \le \prod_l\|W_l\|_F`, so by AM--GM the class optimum is

    .. math:: \min_r\ h(r) + \tfrac{\beta L}{2} r^{2/L},\qquad h(r) = \min\{\ell(g): R(g) \le r\},

    a scalar search along the two-layer path (:math:`h(r(\beta')) = \ell(g_{\beta'})`): a
    geometric grid of :math:`\beta'` plus a bounded Brent refinement around the best point.
    Two proven lower bounds are reported: over the class (two-layer dual points with
    their exact constraints) and over *all* deep networks (Lipschitz bound, loose).
    """
    from scipy.optimize import minimize_scalar

    from ...bounds import max_budget, power_penalty_lower_bound

    L = depth
    gr = group_data(x, y)
    u = gr.u
    penalty = lambda r: 0.5 * beta * L * r ** (2.0 / L)  # noqa: E731
    fit0 = gr.rss0 + 0.5 * float(np.sum(gr.w * (gr.ybar - np.average(gr.ybar, weights=gr.w)) ** 2))
    V0 = gr.w * (gr.ybar - np.average(gr.ybar, weights=gr.w))
    bmax = c_two_layer(u, V0) if gr.p > 1 else 0.0
    evals: dict[float, dict] = {}

    def two_layer(bp: float) -> dict:
        if bp in evals:
            return evals[bp]
        res = solve_two_layer(x, y, bp, max_iter=max_iter, grouped=gr)
        R = spline_cost(res.tk, res.ck)
        fit = res.P - bp * R
        e = dict(res=res, R=R, fit=fit, J=fit + penalty(R), beta2=bp)
        evals[bp] = e
        return e

    cands = [dict(res=None, R=0.0, fit=fit0, J=fit0, beta2=np.inf)]
    if bmax > 0:
        grid = bmax * np.geomspace(1e-6, 1.0, max(int(n_grid), 4))
        mon = current_monitor()
        for bp in grid:
            if mon.expired():  # solve(..., time_limit=): the best network of the grid so far
                mon.stop("one-dimensional depth search")
                break
            cands.append(two_layer(float(bp)))
        best = min(cands, key=lambda e: e["J"])
        if np.isfinite(best["beta2"]) and not mon.expired():
            i = int(np.argmin(np.abs(np.log(grid) - np.log(best["beta2"]))))
            lo_, hi_ = np.log(grid[max(i - 1, 0)]), np.log(grid[min(i + 1, grid.size - 1)])
            if hi_ > lo_:
                opt = minimize_scalar(lambda s: two_layer(float(np.exp(s)))["J"], bounds=(lo_, hi_),
                                      method="bounded", options={"xatol": 1e-6})
                cands.append(two_layer(float(np.exp(opt.x))))
        # the interpolating end of the path (beta' -> 0)
        ip = interpolate(x, np.interp(x, u, gr.ybar))
        cands.append(dict(res=None, R=ip.cost, fit=gr.rss0, J=gr.rss0 + penalty(ip.cost), beta2=0.0, interp=ip))
    best = min(cands, key=lambda e: e["J"])
    if best.get("interp") is not None:
        ramps = min_norm_ramps(u, gr.ybar)
    elif best["res"] is None:
        ramps = Ramps(np.zeros(0), np.zeros(0), np.zeros(0), float(np.average(gr.ybar, weights=gr.w)))
    else:
        ramps = min_norm_ramps(best["res"].tk, best["res"].ck)
    net = _deep_network(ramps, L, u, scalar)
    obj = network_objective(net, X, Y, beta, loss)
    # proven lower bounds from the two-layer dual points met along the way
    Vs = [V0] + [gr.w * (gr.ybar - e["res"].g) for e in evals.values()]
    Ds, c2, cl = [], [], []
    for V in Vs:
        V = V - gr.w * (np.sum(V) / np.sum(gr.w))
        A = float(V @ gr.ybar)
        Bq = float(np.sum(V * V / gr.w))
        for t in np.linspace(0.0, 1.0, 21)[1:]:
            Ds.append(gr.rss0 + t * A - 0.5 * t * t * Bq)
            c2.append(t * c_two_layer(u, V))
            cl.append(t * c_lipschitz_bound(u, V))
    T_max = max_budget(obj - 0.0, beta, L)
    lb_all = power_penalty_lower_bound(np.array(Ds), np.array(cl), beta=beta, depth=L, T_max=T_max)
    lb_class = power_penalty_lower_bound(np.array(Ds), np.array(c2), beta=beta, depth=L, T_max=T_max)
    lb_all = max(lb_all, 0.0)
    info = dict(two_layer_beta=best["beta2"], path_budget=best["R"], two_layer_solves=len(evals),
                class_lower_bound=lb_class, class_gap=obj - lb_class, neurons=int(ramps.z.size),
                knots=ramps.t.copy(),
                note=("optimal among networks whose layers after the first are linear on the data "
                      "(the paper's structure); deeper networks outside that class can do better, so "
                      "lower_bound is the proven Lipschitz bound over all networks (usually loose); "
                      "see docs/one_dimensional.md"))
    info["architecture"] = "linear_on_data"
    return Solution(network=net, objective=obj, lower_bound=lb_all,
                    method=f"one-dimensional deep ReLU (L={L}): two-layer spline path with power penalty",
                    rtol=rtol, dual=None, info=info)


# =============================================================================================
# Architectures of arXiv 2403.01046 (Lasso models with reflection features)
# =============================================================================================


def solve_deep_architecture(X, Y, *, scalar, beta, depth, loss, rtol, architecture, penalize_biases=False,
                            skip=False) -> Solution:
    r"""``solve(x, y, depth=L, bias=True, architecture=...)`` for the architectures of
    Zeger et al. (arXiv 2403.01046) whose training problem the paper proves to be a Lasso;
    today ``"deep_narrow"`` (sums of width-one ReLU chains, penalty
    :math:`\frac\beta L\sum|w|^L`), solved by
    :func:`deepdual.relu.one_dimensional.reflections.solve_deep_narrow` and certified within
    that architecture (``docs/one_dimensional.md`` §10)."""
    from .reflections import ARCHITECTURE, solve_deep_narrow

    if architecture != ARCHITECTURE:
        raise ValueError(f"`architecture` must be {ARCHITECTURE!r} here, got {architecture!r}")
    if depth < 3:
        raise ValueError(f"architecture={ARCHITECTURE!r} needs depth >= 3, got depth={depth}: at depth 2 its "
                         "l_L penalty is weight decay, solved by the default two-layer solver")
    if penalize_biases or skip:
        raise ValueError(f"`penalize_biases` and `skip` are not options of architecture={ARCHITECTURE!r} "
                         "(its biases are free)")
    return solve_deep_narrow(X[:, 0], Y[:, 0], X, Y, scalar=scalar, beta=beta, depth=depth, loss=loss, rtol=rtol)
