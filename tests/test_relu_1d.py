"""One-dimensional data (docs/theory.md §2.5): exact two-layer optima, interpolation, variants, depth.

References used here are independent of the solver: cvxpy on a dense Lasso over all
ramps at the data points (or over a fine grid of kinks), closed-form costs worked out by
hand, exhaustive grids of kinks for the dual constraint, and best-of-restarts training
(tests/restarts.py) for the deep case.
"""

from __future__ import annotations

import numpy as np
import pytest

import deepdual
from deepdual.relu.one_dimensional import solver as r1

cp = pytest.importorskip("cvxpy")


def _cvx_lasso(x, y, beta, *, skip=False):
    """min 1/2||c + a x + A+ z+ + A- z- - y||^2 + beta (|z+| + |z-|) over ramps at the data."""
    u = np.unique(x)
    Ap = np.maximum(x[:, None] - u[None, :], 0.0)
    Am = np.maximum(u[None, :] - x[:, None], 0.0)
    zp, zm, c = cp.Variable(u.size), cp.Variable(u.size), cp.Variable()
    fit = Ap @ zp + Am @ zm + c
    if skip:
        a = cp.Variable()
        fit = fit + a * x
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(fit - y) + beta * (cp.norm1(zp) + cp.norm1(zm))))
    prob.solve(solver="CLARABEL", tol_gap_rel=1e-12, tol_gap_abs=1e-14, tol_feas=1e-12)
    return prob.value


def _instance(seed, n=None):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 30)) if n is None else n
    x = np.round(rng.uniform(-2.0, 2.0, n), 1)  # ties on purpose, unsorted
    y = np.sin(2 * x) + 0.3 * rng.standard_normal(n)
    beta = float(10 ** rng.uniform(-2.5, 0.5))
    return x, y, beta


# --------------------------------------------------------------------------- two layers
@pytest.mark.parametrize("seed", range(6))
def test_two_layer_matches_cvxpy_and_is_certified(seed):
    x, y, beta = _instance(seed)
    X = x.reshape(-1, 1)
    sol = deepdual.solve(X, y, beta=beta, bias=True)
    ref = _cvx_lasso(x, y, beta)
    assert sol.objective == pytest.approx(ref, rel=1e-6)
    # the reported objective is the objective of the returned network
    assert deepdual.objective(sol.network, X, y, beta=beta) == pytest.approx(sol.objective, rel=1e-12, abs=1e-15)
    assert sol.certified
    assert sol.relative_gap <= 1e-6
    assert sol.lower_bound <= ref * (1 + 1e-9) + 1e-12


@pytest.mark.parametrize("seed", range(3))
def test_skip_variant_matches_cvxpy(seed):
    x, y, beta = _instance(100 + seed)
    X = x.reshape(-1, 1)
    sol = deepdual.solve(X, y, beta=beta, bias=True, skip=True)
    assert isinstance(sol, r1.SkipSolution)
    assert sol.objective == pytest.approx(_cvx_lasso(x, y, beta, skip=True), rel=1e-6)
    assert deepdual.objective(sol.network, X, y - sol.slope * x, beta=beta) == pytest.approx(sol.objective, rel=1e-12)
    assert np.allclose(sol.predict(X), sol.network.predict(X) + sol.slope * x)
    assert sol.certified
    # a free linear term can only help
    assert sol.objective <= deepdual.solve(X, y, beta=beta, bias=True).objective * (1 + 1e-12)


def test_kinks_at_data_and_linear_between_neighbours():
    x, y, beta = _instance(7, n=25)
    X = x.reshape(-1, 1)
    sol = deepdual.solve(X, y, beta=0.05, bias=True)
    W1, b1 = sol.network.weights[0][0][0], sol.network.biases[0][0]
    used = W1 != 0
    knots = -b1[used] / W1[used]
    scale = np.ptp(x)
    assert np.all(np.min(np.abs(knots[:, None] - np.unique(x)[None, :]), axis=1) <= 1e-12 * scale)
    u = np.unique(x)
    f = lambda t: sol.predict(np.asarray(t, float).reshape(-1, 1))  # noqa: E731
    for lam in (0.25, 0.5, 0.8):
        mid = lam * u[:-1] + (1 - lam) * u[1:]
        assert np.allclose(f(mid), lam * f(u[:-1]) + (1 - lam) * f(u[1:]), atol=1e-10)


def test_unsorted_and_duplicates_equal_sorted_and_grouped():
    x, y, beta = _instance(11, n=20)
    a = deepdual.solve(x.reshape(-1, 1), y, beta=beta, bias=True)
    order = np.argsort(x)[::-1]
    b = deepdual.solve(x[order].reshape(-1, 1), y[order], beta=beta, bias=True)
    assert a.objective == pytest.approx(b.objective, rel=1e-10)
    assert np.allclose(a.predict(x.reshape(-1, 1)), b.predict(x.reshape(-1, 1)), atol=1e-9)
    # duplicates with equal labels contribute like one point of double weight
    x2, y2 = np.concatenate([x, x[:3]]), np.concatenate([y, y[:3]])
    c = deepdual.solve(x2.reshape(-1, 1), y2, beta=beta, bias=True)
    assert c.objective == pytest.approx(_cvx_lasso(x2, y2, beta), rel=1e-6)


def test_large_beta_gives_the_constant_exactly():
    x, y, _ = _instance(3, n=12)
    sol = deepdual.solve(x.reshape(-1, 1), y, beta=1e6, bias=True)
    assert sol.objective == pytest.approx(0.5 * np.sum((y - y.mean()) ** 2), rel=1e-12)
    assert sol.certified


def test_larger_instance_certified():
    rng = np.random.default_rng(5)
    x = rng.uniform(-3, 3, 20000)
    y = np.sin(3 * x) + 0.3 * rng.standard_normal(x.size)
    sol = deepdual.solve(x.reshape(-1, 1), y, beta=1.0, bias=True)
    assert sol.relative_gap <= 1e-9
    assert sol.info["neurons"] < 200


# --------------------------------------------------------------------------- dual constraint
def test_dual_constraint_attained_at_data_knots():
    """sup over all kinks t and both orientations equals the max over data knots."""
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, 15)
    v = rng.standard_normal(15)
    v -= v.mean()
    u, inv = np.unique(x, return_inverse=True)
    c = r1.c_columns(u, inv, v[:, None], "base")
    t = np.linspace(-3, 3, 200001)
    right = np.abs(np.maximum(x[None, :] - t[:, None], 0) @ v)
    left = np.abs(np.maximum(t[:, None] - x[None, :], 0) @ v)
    grid = max(right.max(), left.max())
    assert grid <= c * (1 + 1e-12)
    assert grid >= c * (1 - 1e-4)


def test_penalized_dual_constraint_matches_fine_circle():
    rng = np.random.default_rng(2)
    x = rng.uniform(-2, 3, 12)
    v = rng.standard_normal(12)
    u, inv = np.unique(x, return_inverse=True)
    c = r1.c_columns(u, inv, v[:, None], "penalized")
    th = np.linspace(0, 2 * np.pi, 400001)
    vals = np.abs(np.maximum(np.cos(th)[:, None] * x[None, :] + np.sin(th)[:, None], 0) @ v)
    assert vals.max() <= c * (1 + 1e-12)
    assert vals.max() >= c * (1 - 1e-6)


def test_compensated_cumsum_exact_on_integers():
    rng = np.random.default_rng(0)
    a = rng.integers(-2**40, 2**40, 5000).astype(np.longdouble)
    assert np.array_equal(r1.compensated_cumsum(a), np.cumsum(a))


# --------------------------------------------------------------------------- interpolation
@pytest.mark.parametrize("xs, ys, cost", [
    ([0.0, 1.0], [0.0, 1.0], 1.0),            # (x)_+ through both points: one unit
    ([-1.0, 0.0, 1.0], [1.0, 0.0, 1.0], 2.0),  # |x|
    ([0.0, 1.0, 2.0], [0.0, 1.0, 2.0], 1.0),   # a line: slope change 0, outer slopes shared
    ([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 1.0, 0.0], 2.0),
    ([5.0], [3.0], 0.0),
])
def test_interpolant_cost_closed_form(xs, ys, cost):
    net, c = deepdual.interpolate(xs, ys)
    assert c == pytest.approx(cost, abs=1e-12)
    assert np.allclose(net.predict(np.array(xs).reshape(-1, 1)), ys, atol=1e-12)
    assert 0.5 * net.squared_norm() == pytest.approx(cost, abs=1e-12)


def test_interpolant_is_the_spline_and_has_minimum_norm():
    rng = np.random.default_rng(4)
    x = rng.uniform(-2, 2, 9)
    y = rng.standard_normal(9)
    net, cost = deepdual.interpolate(x, y)
    u = np.sort(x)
    assert np.allclose(net.predict(x.reshape(-1, 1)), y, atol=1e-10)
    mid = 0.3 * u[:-1] + 0.7 * u[1:]
    assert np.allclose(net.predict(mid.reshape(-1, 1)), np.interp(mid, u, y[np.argsort(x)]), atol=1e-10)
    # minimum norm: the LP min sum|z| s.t. exact fit over all data ramps
    Ap = np.maximum(x[:, None] - u[None, :], 0.0)
    Am = np.maximum(u[None, :] - x[:, None], 0.0)
    zp, zm, c = cp.Variable(u.size), cp.Variable(u.size), cp.Variable()
    prob = cp.Problem(cp.Minimize(cp.norm1(zp) + cp.norm1(zm)), [Ap @ zp + Am @ zm + c == y])
    prob.solve(solver="CLARABEL")
    assert cost == pytest.approx(prob.value, rel=1e-6)
    # Savarese et al.: R(f) = max(int |f''|, |f'(-inf) + f'(+inf)|) of the returned function
    t = np.array([u[0] - 1.0, u[0] - 0.5, u[-1] + 0.5, u[-1] + 1.0])
    f = net.predict(t.reshape(-1, 1))
    left, right = (f[1] - f[0]) / 0.5, (f[3] - f[2]) / 0.5
    W1, b1, W2 = net.weights[0][0][0], net.biases[0][0], net.weights[0][1][:, 0]
    tv = np.sum(np.abs(W1 * W2))  # every ramp contributes |w v| to int |f''|; kinks are distinct
    assert cost == pytest.approx(max(tv, abs(left + right)), rel=1e-10)


def test_interpolant_duplicates():
    net, cost = deepdual.interpolate([0.0, 1.0, 1.0, 2.0], [0.0, 1.0, 1.0, 0.0])
    assert cost == pytest.approx(2.0)
    with pytest.raises(ValueError, match="`y`"):
        deepdual.interpolate([0.0, 1.0, 1.0], [0.0, 1.0, 2.0])


def test_small_beta_approaches_interpolant():
    rng = np.random.default_rng(6)
    x = rng.uniform(-1, 1, 10)
    y = rng.standard_normal(10)
    _, cost = deepdual.interpolate(x, y)
    for beta in (1e-6, 1e-8):
        sol = deepdual.solve(x.reshape(-1, 1), y, beta=beta, bias=True)
        assert np.max(np.abs(sol.predict(x.reshape(-1, 1)) - y)) <= 1e3 * beta * max(cost, 1.0)
        assert sol.objective / beta == pytest.approx(cost, rel=1e-3)


# --------------------------------------------------------------------------- penalized biases
def _cvx_penalized_grid(x, y, beta, ts):
    """Upper bound: kinks restricted to the grid ``ts`` (weights sqrt(1 + t^2)), constant neuron,
    penalized output bias."""
    Ap = np.maximum(x[:, None] - ts[None, :], 0.0)
    Am = np.maximum(ts[None, :] - x[:, None], 0.0)
    wt = np.sqrt(1 + ts ** 2)
    zp, zm, c0, bo = cp.Variable(ts.size), cp.Variable(ts.size), cp.Variable(), cp.Variable()
    obj = (0.5 * cp.sum_squares(Ap @ zp + Am @ zm + c0 + bo - y)
           + beta * (wt @ cp.abs(zp) + wt @ cp.abs(zm) + cp.abs(c0)) + 0.5 * beta * cp.square(bo))
    prob = cp.Problem(cp.Minimize(obj))
    prob.solve(solver="CLARABEL")
    return prob.value


@pytest.mark.parametrize("seed", range(2))
def test_penalized_biases_certified_and_below_grid(seed):
    rng = np.random.default_rng(seed)
    x = np.round(rng.uniform(-2, 3, 12), 1)
    y = np.sin(2 * x) + 0.3 * rng.standard_normal(12)
    beta = 0.2
    X = x.reshape(-1, 1)
    sol = deepdual.solve(X, y, beta=beta, bias=True, penalize_biases=True)
    assert sol.certified and sol.relative_gap <= 1e-6
    assert sol.network.output_bias is not None
    assert deepdual.objective(sol.network, X, y, beta=beta, penalize_biases=True) == pytest.approx(sol.objective, rel=1e-12)
    grid = _cvx_penalized_grid(x, y, beta, np.linspace(-6, 7, 1301))
    assert sol.objective <= grid * (1 + 1e-6)
    assert sol.objective >= grid * (1 - 1e-3)  # a fine grid is nearly optimal
    # penalizing the biases can only cost more than the free-bias optimum
    assert sol.objective >= deepdual.solve(X, y, beta=beta, bias=True).objective * (1 - 1e-9)


def _cvx_penalized_arcs(x, y, beta):
    """The exact cone program of the penalized-bias problem (one neuron per activation arc and
    sign, q = alpha e_lo + gamma e_hi), solved by cvxpy/CLARABEL: the reference the core
    solver must match."""
    u, inv = np.unique(x, return_inverse=True)
    w = np.bincount(inv).astype(float)
    yb = np.bincount(inv, y) / w
    rss0 = 0.5 * float(np.sum((y - yb[inv]) ** 2))
    lo, hi, first, last = r1.penalized_sectors(u)
    arcs = np.nonzero(last > first)[0]
    Elo = np.stack([np.cos(lo[arcs]), np.sin(lo[arcs])], axis=1)
    Ehi = np.stack([np.cos(hi[arcs]), np.sin(hi[arcs])], axis=1)
    A = np.stack([u, np.ones(u.size)], axis=1)
    act = np.zeros((u.size, arcs.size))
    for j, S in enumerate(arcs):
        act[first[S]:last[S], j] = 1.0
    Ga, Gh = act * np.maximum(A @ Elo.T, 0.0), act * np.maximum(A @ Ehi.T, 0.0)
    m = arcs.size
    ap, gp, am, gm = (cp.Variable(m, nonneg=True) for _ in range(4))
    bo = cp.Variable()
    F = Ga @ (ap - am) + Gh @ (gp - gm) + bo
    Qp = cp.multiply(ap[:, None], Elo) + cp.multiply(gp[:, None], Ehi)
    Qm = cp.multiply(am[:, None], Elo) + cp.multiply(gm[:, None], Ehi)
    obj = (0.5 * cp.sum(cp.multiply(w, cp.square(F - yb))) + beta * (cp.sum(cp.norm(Qp, 2, axis=1))
           + cp.sum(cp.norm(Qm, 2, axis=1))) + 0.5 * beta * cp.square(bo))
    prob = cp.Problem(cp.Minimize(obj))
    prob.solve(solver="CLARABEL", tol_gap_rel=1e-11, tol_gap_abs=1e-13, tol_feas=1e-11, max_iter=500)
    return prob.value + rss0


@pytest.mark.parametrize("seed", range(5))
def test_penalized_biases_match_cvxpy_cone_program(seed):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(4, 40))
    x = rng.uniform(-3, 3, n)
    if seed % 2 == 0:
        x = np.round(x, 1)  # ties, unsorted
    y = np.cos(1.5 * x) + 0.3 * rng.standard_normal(n)
    beta = float(10 ** rng.uniform(-2.5, 0.5))
    X = x.reshape(-1, 1)
    sol = deepdual.solve(X, y, beta=beta, bias=True, penalize_biases=True)
    ref = _cvx_penalized_arcs(x, y, beta)
    assert sol.objective == pytest.approx(ref, rel=1e-6)
    assert sol.certified and sol.relative_gap <= 1e-6
    assert deepdual.objective(sol.network, X, y, beta=beta, penalize_biases=True) == pytest.approx(sol.objective,
                                                                                                   rel=1e-12)
    # order and duplicates do not matter
    perm = rng.permutation(n)
    sol2 = deepdual.solve(X[perm], y[perm], beta=beta, bias=True, penalize_biases=True)
    assert sol2.objective == pytest.approx(sol.objective, rel=1e-8)


@pytest.mark.parametrize("x, y", [([1.0], [2.0]), ([1.0, 1.0, 1.0], [0.0, 1.0, 2.0]), ([0.0, 1.0], [0.0, 0.0]),
                                  ([-1.0, 0.0, 1.0], [5.0, -3.0, 2.0]), ([0.0, 100.0], [1.0, -1.0])])
def test_penalized_biases_edge_cases_certified(x, y):
    # one distinct point: its two activation arcs have length pi (their end directions are
    # opposite), and a neuron along (1, 1)/sqrt(2) beats the quadratic output-bias penalty
    X, y = np.array(x).reshape(-1, 1), np.array(y)
    for beta in (0.01, 10.0):
        sol = deepdual.solve(X, y, beta=beta, bias=True, penalize_biases=True)
        assert sol.certified and sol.relative_gap <= 1e-6
    if len(x) == 1:  # closed form check of the first case: output bias alone is not optimal
        only_bias = 0.5 * 0.01 * 4.0 / 1.01
        assert deepdual.solve(X, y, beta=0.01, bias=True, penalize_biases=True).objective < only_bias * 0.9


def test_penalized_biases_do_not_import_cvxpy(monkeypatch):
    import builtins
    import sys

    real_import = builtins.__import__

    def guarded(name, *args, **kwargs):
        if name == "cvxpy" or name.startswith("cvxpy."):
            raise ImportError("cvxpy is blocked in this test")
        return real_import(name, *args, **kwargs)

    for mod in [m for m in sys.modules if m == "cvxpy" or m.startswith("cvxpy.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(builtins, "__import__", guarded)
    x = np.array([0.3, -1.0, 2.0, 0.3, 1.1, -0.4])
    y = np.array([1.0, 0.0, -1.0, 0.5, 0.2, 0.7])
    sol = deepdual.solve(x.reshape(-1, 1), y, beta=0.1, bias=True, penalize_biases=True)
    assert sol.certified
    assert "cvxpy" not in sys.modules


def test_penalized_biases_put_a_kink_between_data_points():
    # y = |x| sampled away from 0: with penalized biases a kink at t costs sqrt(1 + t^2) per unit
    # slope, cheapest at t = 0, where there is no data point
    x = np.array([-2.0, -1.0, 1.0, 2.0])
    y = np.abs(x)
    sol = deepdual.solve(x.reshape(-1, 1), y, beta=0.01, bias=True, penalize_biases=True)
    assert sol.certified
    W1, b1, W2 = sol.network.weights[0][0][0], sol.network.biases[0][0], sol.network.weights[0][1][:, 0]
    big = np.abs(W1 * W2) > 1e-3
    knots = -b1[big] / W1[big]
    assert np.any(np.min(np.abs(knots[:, None] - x[None, :]), axis=1) > 0.5)


# --------------------------------------------------------------------------- certificates
def test_certify_1d_valid_for_arbitrary_networks():
    x, y, beta = _instance(21, n=15)
    X, Y = x.reshape(-1, 1), y.reshape(-1, 1)
    opt = deepdual.solve(X, y, beta=beta, bias=True).objective
    rng = np.random.default_rng(0)
    for _ in range(5):
        k = 6
        net = deepdual.Network([[rng.standard_normal((1, k)), rng.standard_normal((k, 1))]], "relu",
                               biases=[[rng.standard_normal(k)]], output_bias=rng.standard_normal(1))
        cert = r1.certify_1d(net, X, Y, beta=beta)
        assert cert.exact_constraint
        assert cert.lower_bound <= opt * (1 + 1e-9)
        assert cert.objective == pytest.approx(deepdual.objective(net, X, y, beta=beta))
    opt_net = deepdual.solve(X, y, beta=beta, bias=True).network
    cert = r1.certify_1d(opt_net, X, Y, beta=beta)
    assert cert.certified and cert.relative_gap <= 1e-6


def test_certify_1d_logistic_loss_is_a_valid_bound():
    rng = np.random.default_rng(3)
    x = rng.uniform(-2, 2, 20)
    lab = np.where(np.sin(2 * x) > 0, 1.0, -1.0)
    X, Y = x.reshape(-1, 1), lab.reshape(-1, 1)
    k = 5
    net = deepdual.Network([[rng.standard_normal((1, k)), rng.standard_normal((k, 1))]], "relu",
                           biases=[[rng.standard_normal(k)]], output_bias=np.zeros(1))
    cert = r1.certify_1d(net, X, Y, beta=0.1, loss="logistic")
    assert np.isfinite(cert.lower_bound)
    assert cert.lower_bound <= cert.objective


# --------------------------------------------------------------------------- depth >= 3
def test_deep_class_solution_and_bounds():
    pytest.importorskip("torch")
    from restarts import best_of_restarts

    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(-2, 2, 8))
    y = np.sin(2 * x) + 0.2 * rng.standard_normal(8)
    X = x.reshape(-1, 1)
    beta = 0.1
    sol = deepdual.solve(X, y, beta=beta, depth=3, bias=True)
    assert deepdual.objective(sol.network, X, y, beta=beta) == pytest.approx(sol.objective, rel=1e-10)
    # first-layer kinks at data points
    W1, b1 = sol.network.weights[0][0][0], sol.network.biases[0][0]
    knots = -b1[W1 != 0] / W1[W1 != 0]
    assert np.all(np.min(np.abs(knots[:, None] - x[None, :]), axis=1) <= 1e-10)
    # optimal within its class (proven class bound), and the all-network bound is valid
    assert sol.info["class_lower_bound"] <= sol.objective
    assert sol.objective - sol.info["class_lower_bound"] <= 1e-4 * sol.objective
    trained = best_of_restarts(X, y, beta=beta, depth=3, width=8, restarts=3, bias=True, iters=400)
    assert sol.lower_bound <= trained
    assert sol.lower_bound <= sol.objective
    cert = r1.certify_1d(sol.network, X, y.reshape(-1, 1), beta=beta)
    assert not cert.exact_constraint and cert.lower_bound <= sol.objective


def _train_linear_deeper(x, y, *, beta, depth, width=8, restarts=6, iters=300):
    """Best of random restarts of direct training of the architecture ``linear_on_data``:
    on the data such a network equals one whose first layer is ReLU and whose deeper layers
    are affine (free biases shift every deeper pre-activation to be >= 0 on the data at no
    cost), so that is what is trained here (float64, full-batch L-BFGS, weight decay on all
    layers, biases free).  Returns the best objective."""
    torch = pytest.importorskip("torch")
    X = torch.tensor(x, dtype=torch.float64)[:, None]
    Y = torch.tensor(y, dtype=torch.float64)
    best = np.inf
    for seed in range(restarts):
        g = torch.Generator().manual_seed(seed)
        dims = [1] + [width] * (depth - 1) + [1]
        Ws = [(torch.randn(dims[l], dims[l + 1], generator=g, dtype=torch.float64) / np.sqrt(dims[l])).requires_grad_()
              for l in range(depth)]
        bs = [(0.5 * torch.randn(dims[l + 1], generator=g, dtype=torch.float64)).requires_grad_() for l in range(depth)]

        def objective():
            h = torch.relu(X @ Ws[0] + bs[0])
            for W, b in zip(Ws[1:], bs[1:]):
                h = h @ W + b
            return 0.5 * ((h[:, 0] - Y) ** 2).sum() + 0.5 * beta * sum((W ** 2).sum() for W in Ws)

        opt = torch.optim.LBFGS(Ws + bs, max_iter=iters, tolerance_grad=1e-12, tolerance_change=1e-15,
                                history_size=50, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            val = objective()
            val.backward()
            return val

        opt.step(closure)
        with torch.no_grad():
            val = float(objective())
        if np.isfinite(val):
            best = min(best, val)
    return best


@pytest.mark.parametrize("depth", [3, 4])
def test_deep_solver_matches_training_of_the_same_architecture(depth):
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, 8)
    y = np.sin(2 * x) + 0.2 * rng.standard_normal(8)
    beta = 0.1
    sol = deepdual.solve(x.reshape(-1, 1), y, beta=beta, depth=depth, bias=True)
    trained = _train_linear_deeper(x, y, beta=beta, depth=depth)
    # no restart beats the class optimum (beyond its proven class gap) ...
    assert trained >= sol.info["class_lower_bound"] * (1 - 1e-9)
    # ... and the best restart reaches it: the solver is not just a bound
    assert sol.objective <= trained * (1 + 1e-4)
    assert not sol.certified  # not proven over unconstrained deep networks (docs §7.4)


# --------------------------------------------------------------------------- bad input
def test_bad_input():
    X = np.arange(5.0).reshape(-1, 1)
    y = np.sin(np.arange(5.0))
    with pytest.raises(ValueError, match="bias"):
        deepdual.solve(np.random.default_rng(0).random((5, 2)), y, beta=1.0, bias=True, depth=3)
    with pytest.raises(ValueError, match="`X`"):
        deepdual.solve(np.array([[0.0], [np.nan]]), [1.0, 2.0], beta=1.0, bias=True)
    with pytest.raises(ValueError, match="bias=True"):
        deepdual.solve(X, y, beta=1.0, method="one_dimensional")
    with pytest.raises(ValueError, match="`y`"):
        deepdual.solve(X, np.ones((5, 2)), beta=1.0, bias=True)
    with pytest.raises(ValueError, match="squared"):
        deepdual.solve(X, (y > 0).astype(float), beta=1.0, bias=True, loss="logistic", depth=3)
    with pytest.raises(TypeError, match="unknown option"):
        deepdual.solve(X, y, beta=1.0, bias=True, foo=1)
    with pytest.raises(ValueError, match="cannot be combined"):
        deepdual.solve(X, y, beta=1.0, bias=True, skip=True, penalize_biases=True)
    with pytest.raises(TypeError, match="`skip`"):
        deepdual.solve(X, y, beta=1.0, bias=True, skip="yes")
    with pytest.raises(ValueError, match="`tol`"):
        deepdual.solve(X, y, beta=1.0, bias=True, tol=0.0)
    for arch in ("standard", "paper", None):
        with pytest.raises(ValueError, match="`architecture`"):
            deepdual.solve(X, y, beta=1.0, bias=True, depth=3, architecture=arch)
    assert deepdual.solve(X, y, beta=1.0, bias=True, depth=3).info["architecture"] == "linear_on_data"
    with pytest.raises(ValueError, match="`x`"):
        deepdual.interpolate(np.ones((3, 2)), [1.0, 2.0, 3.0])
    x_before = X.copy()
    deepdual.solve(X, y, beta=1.0, bias=True)
    assert np.array_equal(X, x_before)


def test_depth4_fold_network_has_off_data_kinks_and_beats_the_data_kink_class():
    """Zeger et al. (2024): a narrow depth-4 network folds the line (|x| from two units) and
    places kinks at reflections of data points; here it beats the proven lower bound of
    every network whose deeper layers are linear on the data (docs §7.5)."""
    x = np.array([-3.0, -1.5, 0.0, 1.0, 2.0, 3.0])
    trap = lambda t: np.maximum(1 - np.maximum(np.abs(t) - 1, 0), 0)  # noqa: E731
    y = trap(x)
    r = 2 ** 0.25
    a = c = r / np.sqrt(2)
    e = s = r
    net = deepdual.Network(
        [[np.array([[a, -a]]), np.array([[c], [c]]), np.array([[-e]]), np.array([[s]])]], "relu",
        biases=[[np.zeros(2), np.array([-a * c]), np.array([a * c * e])]], output_bias=np.zeros(1))
    t = np.linspace(-4, 4, 801)
    assert np.allclose(net.predict(t.reshape(-1, 1)), trap(t), atol=1e-12)
    # its kinks: -2, -1 (reflections of the data points 2, 1 about 0) and 1, 2
    fine = np.linspace(-4, 4, 80001)
    f = net.predict(fine.reshape(-1, 1))
    slope = np.diff(f) / np.diff(fine)
    kinks = fine[1:-1][np.abs(np.diff(slope)) > 1e-6]
    for k in (-2.0, -1.0):
        assert np.min(np.abs(kinks - k)) < 1e-3 and np.min(np.abs(x - k)) >= 0.5
    beta = 1e-3
    cls = deepdual.solve(x.reshape(-1, 1), y, beta=beta, depth=4, bias=True)
    P_fold = deepdual.objective(net, x.reshape(-1, 1), y, beta=beta)
    assert P_fold == pytest.approx(2 * np.sqrt(2) * beta, rel=1e-12)
    assert P_fold < cls.info["class_lower_bound"]
    assert cls.lower_bound <= P_fold  # the all-network bound stays valid


def test_spline_network_and_cost_helpers():
    u = np.array([-1.0, 0.0, 0.5, 2.0])
    g = np.array([1.0, -1.0, 0.0, 3.0])
    net, cost = r1.spline_network(u[::-1], g[::-1])
    assert cost == pytest.approx(r1.spline_cost(u, g))
    assert np.allclose(net.predict(u.reshape(-1, 1)), g)
    s = np.diff(g) / np.diff(u)
    T = np.abs(np.diff(s)).sum()
    assert r1.spline_cost(u, g) == pytest.approx(max(T, 0.5 * (T + abs(s[0] + s[-1]))))
    assert r1.spline_cost(u, g, skip=True) == pytest.approx(T)
    with pytest.raises(ValueError, match="increasing"):
        r1.spline_cost(u[::-1], g)


# --------------------------------------------------------------------------- logistic, hinge
def _cvx_lasso_binary(x, y, beta, loss):
    """min loss(c + A+ z+ + A- z-) + beta (|z+| + |z-|) over all 2n ramps at the data (cvxpy)."""
    Ap = np.maximum(x[:, None] - x[None, :], 0.0)
    Am = np.maximum(x[None, :] - x[:, None], 0.0)
    zp, zm, c = cp.Variable(x.size), cp.Variable(x.size), cp.Variable()
    f = Ap @ zp + Am @ zm + c
    fit = cp.sum(cp.logistic(-cp.multiply(y, f))) if loss == "logistic" else cp.sum(cp.pos(1 - cp.multiply(y, f)))
    prob = cp.Problem(cp.Minimize(fit + beta * (cp.norm1(zp) + cp.norm1(zm))))
    # tight tolerances make CLARABEL flag the (degenerate) hinge LP as inaccurate; its
    # defaults (1e-8) already agree with the LP optimum to ~1e-9
    tight = dict(tol_gap_rel=1e-12, tol_gap_abs=1e-14, tol_feas=1e-12) if loss == "logistic" else {}
    prob.solve(solver="CLARABEL", **tight)
    return prob.value


def _binary_instance(seed, n=None):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(6, 30)) if n is None else n
    x = np.round(rng.uniform(-2.0, 2.0, n), 1)  # ties on purpose (possibly with both labels), unsorted
    y = np.where(np.sin(2 * x) + 0.5 * rng.standard_normal(n) > 0, 1.0, -1.0)
    y[:2] = [1.0, -1.0]  # both classes present
    beta = float(10 ** rng.uniform(-2, 0.5))
    return x, y, beta


@pytest.mark.parametrize("loss", ["logistic", "hinge"])
@pytest.mark.parametrize("seed", range(4))
def test_binary_losses_match_cvxpy_and_are_certified(loss, seed):
    x, y, beta = _binary_instance(seed)
    X = x.reshape(-1, 1)
    sol = deepdual.solve(X, y, beta=beta, bias=True, loss=loss)
    ref = _cvx_lasso_binary(x, y, beta, loss)
    assert sol.objective == pytest.approx(ref, rel=1e-6)
    assert deepdual.objective(sol.network, X, y, beta=beta, loss=loss) == pytest.approx(sol.objective, rel=1e-12)
    assert sol.certified and sol.relative_gap <= 1e-6
    assert sol.lower_bound <= ref * (1 + 1e-7)
    # certify_1d re-derives a bound from the network alone (its gradient as dual point): valid,
    # and tight for the smooth logistic loss (the hinge subgradient need not be the optimal dual)
    cert = r1.certify_1d(sol.network, X, y.reshape(-1, 1), beta=beta, loss=loss)
    assert cert.lower_bound <= sol.objective * (1 + 1e-12)
    if loss == "logistic":
        assert cert.relative_gap <= 1e-6


@pytest.mark.parametrize("loss", ["logistic", "hinge"])
def test_binary_losses_kinks_at_data_and_labels_01(loss):
    rng = np.random.default_rng(5)
    x = rng.uniform(-2, 2, 40)
    y = np.where(np.sin(3 * x) + 0.3 * rng.standard_normal(40) > 0, 1.0, 0.0)  # {0, 1} labels
    X = x.reshape(-1, 1)
    sol = deepdual.solve(X, y, beta=0.05, bias=True, loss=loss)
    sol_pm = deepdual.solve(X, 2 * y - 1, beta=0.05, bias=True, loss=loss)
    assert sol.objective == pytest.approx(sol_pm.objective, rel=1e-9)
    W1, b1 = sol.network.weights[0][0][0], sol.network.biases[0][0]
    knots = -b1 / W1
    assert knots.size >= 1
    assert np.all(np.min(np.abs(knots[:, None] - x[None, :]), axis=1) <= 1e-12 * (1 + np.abs(knots)))
    # unsorted input, permuted: same optimum
    perm = rng.permutation(40)
    sol_p = deepdual.solve(X[perm], y[perm], beta=0.05, bias=True, loss=loss)
    assert sol_p.objective == pytest.approx(sol.objective, rel=1e-9)


@pytest.mark.parametrize("loss", ["logistic", "hinge"])
def test_binary_losses_errors(loss):
    X = np.linspace(-1, 1, 10).reshape(-1, 1)
    with pytest.raises(ValueError, match="y"):
        deepdual.solve(X, np.arange(10) % 3, beta=0.1, bias=True, loss=loss)
    y = np.where(X[:, 0] > 0, 1.0, -1.0)
    with pytest.raises(ValueError, match="depth=2"):
        deepdual.solve(X, y, beta=0.1, bias=True, loss=loss, depth=3)
    with pytest.raises(ValueError, match="skip"):
        deepdual.solve(X, y, beta=0.1, bias=True, loss=loss, skip=True)


def test_logistic_one_class_is_rejected_hinge_is_exact():
    X = np.linspace(-1, 1, 8).reshape(-1, 1)
    with pytest.raises(ValueError, match="single class"):
        deepdual.solve(X, np.ones(8), beta=0.1, bias=True, loss="logistic")
    sol = deepdual.solve(X, np.ones(8), beta=0.1, bias=True, loss="hinge")
    assert sol.objective == pytest.approx(0.0, abs=1e-12) and sol.certified


def test_logistic_lower_bound_below_restarts_training():
    pytest.importorskip("torch")
    from restarts import best_of_restarts

    x, y, beta = _binary_instance(11, n=16)
    X = x.reshape(-1, 1)
    sol = deepdual.solve(X, y, beta=beta, bias=True, loss="logistic")
    val = best_of_restarts(X, y, beta=beta, depth=2, width=12, restarts=4, bias=True, loss="logistic",
                           iters=300)
    assert sol.lower_bound <= val * (1 + 1e-9)
    # training reaches the optimum only approximately; it must not beat it
    assert sol.objective <= val * (1 + 1e-9)


# --------------------------------------------------------------------------- cross-entropy, K outputs
def _cvx_group_lasso_ce(x, Y, beta):
    """min CE(1 b^T + A+ Z+ + A- Z-) + beta sum_k (||Z+_k|| + ||Z-_k||) over all 2n vector
    ramps at the data (cvxpy, exponential cone via log_sum_exp)."""
    n, K = Y.shape
    Ap = np.maximum(x[:, None] - x[None, :], 0.0)
    Am = np.maximum(x[None, :] - x[:, None], 0.0)
    Zp, Zm, b = cp.Variable((n, K)), cp.Variable((n, K)), cp.Variable((1, K))
    F = Ap @ Zp + Am @ Zm + np.ones((n, 1)) @ b
    fit = cp.sum(cp.log_sum_exp(F, axis=1)) - cp.sum(cp.multiply(Y, F))
    pen = cp.sum(cp.norm(Zp, 2, axis=1)) + cp.sum(cp.norm(Zm, 2, axis=1))
    prob = cp.Problem(cp.Minimize(fit + beta * pen))
    prob.solve(solver="CLARABEL", tol_gap_rel=1e-12, tol_gap_abs=1e-14, tol_feas=1e-12)
    return prob.value


def _ce_instance(seed, n=None, K=3):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 25)) if n is None else n
    x = np.round(rng.uniform(-2.0, 2.0, n), 1)  # ties on purpose (possibly with two labels), unsorted
    lab = np.floor(K * (0.5 + 0.4 * np.sin(2 * x) + 0.15 * rng.standard_normal(n))).clip(0, K - 1).astype(int)
    lab[:K] = np.arange(K)  # every class present
    beta = float(10 ** rng.uniform(-2, 0.3))
    return x, lab, beta


@pytest.mark.parametrize("seed", range(4))
def test_cross_entropy_matches_cvxpy_and_is_certified(seed):
    x, lab, beta = _ce_instance(seed)
    X = x.reshape(-1, 1)
    Y = np.eye(3)[lab]
    sol = deepdual.solve(X, lab, beta=beta, bias=True, loss="cross_entropy")
    ref = _cvx_group_lasso_ce(x, Y, beta)
    assert sol.objective == pytest.approx(ref, rel=1e-6)
    assert deepdual.objective(sol.network, X, Y, beta=beta, loss="cross_entropy") == pytest.approx(
        sol.objective, rel=1e-12)
    assert sol.certified and sol.relative_gap <= 1e-6
    assert sol.lower_bound <= ref * (1 + 1e-7)
    # the returned dual point is feasible: column sums zero, exact vector constraint <= beta
    u, inv = np.unique(x, return_inverse=True)
    assert np.allclose(sol.dual.sum(axis=0), 0.0, atol=1e-10)
    assert r1.c_columns(u, inv, sol.dual, "base") <= beta * (1 + 1e-9)
    # certify_1d re-derives a bound from the network alone: valid
    cert = r1.certify_1d(sol.network, X, Y, beta=beta, loss="cross_entropy")
    assert cert.lower_bound <= sol.objective * (1 + 1e-12)


def test_cross_entropy_kinks_at_data_integer_vs_one_hot_and_permutation():
    rng = np.random.default_rng(7)
    x = rng.uniform(-2, 2, 50)
    lab = np.floor(3 * (0.5 + 0.45 * np.sin(3 * x))).clip(0, 2).astype(int)
    X = x.reshape(-1, 1)
    sol = deepdual.solve(X, lab, beta=0.05, bias=True, loss="cross_entropy")
    sol_oh = deepdual.solve(X, np.eye(3)[lab], beta=0.05, bias=True, loss="cross_entropy")
    assert sol.certified and sol_oh.certified
    assert sol.objective == pytest.approx(sol_oh.objective, rel=1e-9)
    W1, b1 = sol.network.weights[0][0][0], sol.network.biases[0][0]
    knots = -b1 / W1
    assert knots.size >= 1 and sol.network.weights[0][1].shape[1] == 3
    assert np.all(np.min(np.abs(knots[:, None] - x[None, :]), axis=1) <= 1e-12 * (1 + np.abs(knots)))
    perm = rng.permutation(50)
    sol_p = deepdual.solve(X[perm], lab[perm], beta=0.05, bias=True, loss="cross_entropy")
    assert sol_p.objective == pytest.approx(sol.objective, rel=1e-7)


def test_cross_entropy_errors():
    X = np.linspace(-1, 1, 9).reshape(-1, 1)
    lab = np.arange(9) % 3
    with pytest.raises(ValueError, match="depth=2"):
        deepdual.solve(X, lab, beta=0.1, bias=True, loss="cross_entropy", depth=3)
    with pytest.raises(ValueError, match="skip"):
        deepdual.solve(X, lab, beta=0.1, bias=True, loss="cross_entropy", skip=True)
    with pytest.raises(ValueError, match="class 1"):
        deepdual.solve(X, 2 * (np.arange(9) % 2), beta=0.1, bias=True, loss="cross_entropy")


def test_cross_entropy_lower_bound_below_restarts_training():
    pytest.importorskip("torch")
    from restarts import best_of_restarts

    x, lab, beta = _ce_instance(11, n=16)
    X = x.reshape(-1, 1)
    Y = np.eye(3)[lab]
    sol = deepdual.solve(X, lab, beta=beta, bias=True, loss="cross_entropy")
    val = best_of_restarts(X, Y, beta=beta, depth=2, width=12, restarts=4, bias=True, loss="cross_entropy",
                           iters=300)
    assert sol.lower_bound <= val * (1 + 1e-9)
    assert sol.objective <= val * (1 + 1e-9)


def test_penalized_newton_stops_on_rounding_stall(monkeypatch):
    # n = 30, beta = 1e-3: at barrier parameters ~1e11 the gradient is rounding noise; the
    # centering used to spin to its cap of 50 Newton iterations there (measured), it must
    # now detect the stall, and the result must stay certified
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, 30)
    y = np.sin(3 * x) + 0.3 * rng.standard_normal(30)
    its = []
    orig = r1.ArcBarrier.newton

    def counting(self, tau, max_iter=50):
        it = orig(self, tau, max_iter)
        its.append(it)
        return it

    monkeypatch.setattr(r1.ArcBarrier, "newton", counting)
    sol = deepdual.solve(x.reshape(-1, 1), y, beta=1e-3, bias=True, penalize_biases=True)
    assert its and max(its) < 50
    assert sol.certified and sol.relative_gap <= 1e-8
