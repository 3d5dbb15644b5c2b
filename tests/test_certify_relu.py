"""certify() for ReLU networks and the dual constraint computations behind it."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deepdual
from deepdual.dual_constraint import (
    c_enumerate,
    c_spectral_bound,
    minimize_convex_plus_power,
    relu_constraint,
    water_filling,
)

from restarts import train_once


def whitened(n, d, seed):
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, n)))
    return Q.T.copy()


def sampled_c(v, X, n_dir=20000, seed=0):
    """Test-side *lower* estimate of c(v): the max over sampled directions."""
    U = np.random.default_rng(seed).standard_normal((X.shape[1], n_dir))
    U /= np.linalg.norm(U, axis=0)
    return float(np.max(np.abs(v @ np.maximum(X @ U, 0.0))))


def random_net(rng, d, K, L, width=4, m=1, scale=0.7):
    return deepdual.Network([[rng.standard_normal((d if l == 0 else width, K if l == L - 1 else width)) * scale
                              for l in range(L)] for _ in range(m)])


# ----------------------------------------------------------------------------- c(v)
def test_enumeration_agrees_with_whitened_closed_form():
    X = whitened(5, 7, 0)
    rng = np.random.default_rng(0)
    for _ in range(5):
        v = rng.standard_normal(5)
        val, P = c_enumerate(v, X)
        exact = max(np.linalg.norm(np.maximum(v, 0)), np.linalg.norm(np.minimum(v, 0)))
        assert val == pytest.approx(exact, rel=1e-9)
        assert P >= 2**5 - 1  # all orthants but the all-negative one
    cv = relu_constraint(v, X)
    assert cv.exact and cv.method == "exact: whitened"


def test_enumeration_agrees_with_rank_one_closed_form():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(8), rng.standard_normal(3)  # mixed signs in a
    X = np.outer(a, b)
    E = 1e-4 * rng.standard_normal(X.shape)  # makes the data rank 3, so enumeration is used
    for _ in range(5):
        v = rng.standard_normal(8)
        closed = np.linalg.norm(b) * max(abs(v @ np.maximum(a, 0)), abs(v @ np.maximum(-a, 0)))
        cv = relu_constraint(v, X)
        assert cv.exact and cv.method == "exact: rank one"
        assert cv.value == pytest.approx(closed, rel=1e-12)
        # ReLU is 1-Lipschitz: |c_{X+E}(v) - c_X(v)| <= ||v|| ||E||_2
        val, _ = c_enumerate(v, X + E)
        assert abs(val - closed) <= np.linalg.norm(v) * np.linalg.norm(E, 2) * (1 + 1e-9)


def test_enumeration_is_two_sided_exact_in_the_plane():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((9, 2))
    Xn = np.linalg.norm(X, 2)
    theta = np.linspace(0, 2 * np.pi, 40001)
    U = np.vstack([np.cos(theta), np.sin(theta)])
    for _ in range(5):
        v = rng.standard_normal(9)
        val, _ = c_enumerate(v, X)
        grid = float(np.max(np.abs(v @ np.maximum(X @ U, 0.0))))
        # u -> v^T (Xu)_+ is ||v|| ||X||_2-Lipschitz; every u is within pi/40000 of the grid
        assert grid - 1e-12 <= val <= grid + np.linalg.norm(v) * Xn * np.pi / 40000 + 1e-12


def test_enumeration_above_sampled_directions_and_below_spectral_bound():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((12, 3))
    for _ in range(4):
        v = rng.standard_normal(12)
        val, _ = c_enumerate(v, X)
        assert val >= sampled_c(v, X) - 1e-12
        assert val <= c_spectral_bound(v, X) * (1 + 1e-12)


def test_vector_output_constraint():
    X = whitened(6, 8, 4)
    rng = np.random.default_rng(4)
    V = np.zeros((6, 2))
    V[:3, 0] = rng.standard_normal(3)
    V[3:, 1] = rng.standard_normal(3)
    cv = relu_constraint(V, X)  # disjoint supports: exact max_k c0(v_k)
    assert cv.exact
    assert cv.value == pytest.approx(max(max(np.linalg.norm(np.maximum(s * V[:, k], 0)) for s in (1, -1))
                                         for k in range(2)), rel=1e-12)
    Xg = rng.standard_normal((10, 3))
    Vg = rng.standard_normal((10, 3))
    cg = relu_constraint(Vg, Xg)
    U = rng.standard_normal((3, 20000))
    U /= np.linalg.norm(U, axis=0)
    sampled = np.max(np.linalg.norm(Vg.T @ np.maximum(Xg @ U, 0.0), axis=0))
    assert cg.value >= sampled - 1e-12 and not cg.exact


@pytest.mark.parametrize("kind", ["general", "whitened", "rank_one_mixed", "rank_one_pos"])
@pytest.mark.parametrize("K", [1, 2])
def test_deep_constraint_inequality_holds_for_random_networks(kind, K):
    # <V, f(X)> <= c(V) * sum_j prod_l ||W_lj||_F for every network (the deep dual constraint)
    rng = np.random.default_rng(5)
    n, d = 6, 8
    X = {"general": rng.standard_normal((n, d)), "whitened": whitened(n, d, 5),
         "rank_one_mixed": np.outer(rng.standard_normal(n), rng.standard_normal(d)),
         "rank_one_pos": np.outer(np.abs(rng.standard_normal(n)), rng.standard_normal(d))}[kind]
    for L in (2, 3, 4):
        for trial in range(20):
            V = rng.standard_normal((n, K))
            if K > 1 and trial % 2:  # disjoint column supports (the label-part dual points)
                V *= np.eye(K)[rng.integers(0, K, n)]
            net = random_net(rng, d, K, L, width=3, m=2)
            T = sum(np.prod([np.linalg.norm(W) for W in layers]) for layers in net.weights)
            cv = relu_constraint(V, X, depth=L)
            assert np.sum(V * net.forward(X)) <= cv.value * T * (1 + 1e-12) + 1e-12


# ----------------------------------------------------------------------------- reduced problems
def test_water_filling_and_branch_and_bound():
    val, r = water_filling([3.0, 1.0], 1.0)
    assert (val, r) == pytest.approx((0.5 * (2.0**2 + 1.0), 2.0))
    # a two-well function: h(x) = (x - 2)^2 / 2 ... plus a concave power; compare with a grid
    lam, p = 0.9, 0.5
    g = lambda x: (0.5 * (x - 2.0) ** 2 + 0.05 * x**4, (x - 2.0) + 0.2 * x**3)
    res = minimize_convex_plus_power(g, lam, p, 5.0)
    xs = np.linspace(0, 5, 500001)
    hs = 0.5 * (xs - 2) ** 2 + 0.05 * xs**4 + lam * xs**p
    assert res.lower <= hs.min() + 1e-12
    assert res.value == pytest.approx(hs.min(), abs=1e-9)
    assert res.value - res.lower <= 1e-12 * res.value


# ----------------------------------------------------------------------------- certificates
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), depth=st.integers(2, 4), K=st.sampled_from([1, 2]),
       kind=st.sampled_from(["general", "whitened", "rank_one", "low_rank"]),
       loss=st.sampled_from(["squared", "logistic"]), beta=st.floats(0.05, 3.0))
def test_property_lower_bound_below_objective(seed, depth, K, kind, loss, beta):
    rng = np.random.default_rng(seed)
    n, d = 6, 7
    X = {"general": rng.standard_normal((n, d)), "whitened": whitened(n, d, seed),
         "rank_one": np.outer(np.abs(rng.standard_normal(n)), rng.standard_normal(d)),
         "low_rank": rng.standard_normal((n, 2)) @ rng.standard_normal((2, d))}[kind]
    if loss == "logistic":
        K = 1
        y = np.where(rng.standard_normal(n) > 0, 1.0, -1.0)
    else:
        y = rng.standard_normal(n) if K == 1 else rng.standard_normal((n, K))
    net = random_net(rng, d, K, depth, scale=rng.uniform(0.1, 1.0))
    cert = deepdual.certify(net, X, y, beta=beta, loss=loss)
    assert cert.lower_bound <= cert.objective + 1e-12 * abs(cert.objective)
    if kind in ("rank_one", "whitened") and loss == "squared" and (K == 1 or kind == "rank_one"):
        # lower bound <= the known optimum
        sol = deepdual.solve(X, y, beta=beta, depth=depth)
        assert cert.lower_bound <= sol.objective + 1e-12 * abs(sol.objective)


def _best_trained(X, y, *, beta, depth, width, restarts, iters):
    best = None
    for r in range(restarts):
        net = train_once(X, y, beta=beta, depth=depth, width=width, seed=r, iters=iters)
        val = deepdual.objective(net, X, y, beta=beta)
        if best is None or val < best[0]:
            best = (val, net)
    return best[1]


def test_trained_two_layer_network_gets_small_gap():
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((8, 2)), rng.standard_normal(8)
    net = _best_trained(X, y, beta=0.2, depth=2, width=10, restarts=3, iters=1500)
    cert = deepdual.certify(net, X, y, beta=0.2)
    assert cert.method.startswith("residual dual, exact: cell enumeration (")
    assert cert.exact_constraint
    assert 0 <= cert.relative_gap < 1e-4


def test_trained_deep_networks_get_small_gap_on_structured_data():
    rng = np.random.default_rng(4)
    Xw = whitened(5, 7, 4)
    yw = np.abs(rng.standard_normal(5))
    net = _best_trained(Xw, yw, beta=0.3, depth=3, width=6, restarts=2, iters=800)
    cert = deepdual.certify(net, Xw, yw, beta=0.3)
    assert cert.relative_gap < 1e-4 and cert.exact_constraint
    Xr = np.outer(np.abs(rng.standard_normal(6)), rng.standard_normal(3))
    yr = rng.standard_normal(6) + 1.0
    net = _best_trained(Xr, yr, beta=0.1, depth=4, width=8, restarts=2, iters=800)
    cert = deepdual.certify(net, Xr, yr, beta=0.1)
    assert cert.relative_gap < 1e-4 and "rank-one" in cert.method


def test_constraint_modes():
    rng = np.random.default_rng(6)
    X, y = rng.standard_normal((10, 3)), rng.standard_normal(10)
    net = random_net(rng, 3, 1, 2)
    auto = deepdual.certify(net, X, y, beta=0.5)
    bound = deepdual.certify(net, X, y, beta=0.5, constraint="bound")
    exact = deepdual.certify(net, X, y, beta=0.5, constraint="exact")
    assert bound.lower_bound <= auto.lower_bound + 1e-12
    assert exact.lower_bound == pytest.approx(auto.lower_bound)
    assert bound.details["constraint_method"] == "upper bound: spectral norm" and not bound.exact_constraint
    deep = random_net(rng, 3, 1, 3)
    with pytest.raises(ValueError, match="exact"):
        deepdual.certify(deep, X, y, beta=0.5, constraint="exact")
    with pytest.raises(ValueError, match="max_patterns"):
        deepdual.certify(random_net(rng, 6, 1, 2), rng.standard_normal((40, 6)), rng.standard_normal(40), beta=0.5,
                         constraint="exact", max_patterns=100)
    with pytest.raises(TypeError, match="unknown option"):
        deepdual.certify(net, X, y, beta=0.5, constrain="auto")
    with pytest.raises(ValueError, match="constraint"):
        deepdual.certify(net, X, y, beta=0.5, constraint="sampled")


def test_biases_on_multidimensional_data():
    rng = np.random.default_rng(7)
    X, y = rng.standard_normal((8, 3)), rng.standard_normal(8) + 3.0
    W1, w2 = rng.standard_normal((3, 4)), rng.standard_normal((4, 1))
    hidden = deepdual.Network([[W1, w2]], biases=[[rng.standard_normal(4)]])
    cert = deepdual.certify(hidden, X, y, beta=0.5)
    # unpenalized hidden biases on d > 1: c_b(v) = max_j c_{X - 1 x_j^T}(v) (docs/convex_program.md §12)
    assert np.isfinite(cert.lower_bound) and cert.lower_bound <= cert.objective
    assert "unpenalized hidden biases" in cert.method
    pen = deepdual.certify(hidden, X, y, beta=0.5, penalize_biases=True)
    assert np.isfinite(pen.lower_bound) and pen.lower_bound <= pen.objective
    # output bias only: the constant predictor ybar has objective ||y - ybar||^2 / 2, which
    # is far below the bias-free optimum here; the bound must stay below it
    const = deepdual.Network([[np.zeros((3, 2)), np.zeros((2, 1))]], output_bias=[y.mean()])
    for penalize in (False, True):
        c = deepdual.certify(const, X, y, beta=0.5, penalize_biases=penalize)
        assert c.lower_bound <= c.objective + 1e-12
    c = deepdual.certify(const, X, y, beta=0.5)
    assert c.objective == pytest.approx(0.5 * np.sum((y - y.mean()) ** 2))


def test_one_dimensional_hook(monkeypatch):
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((6, 1)), rng.standard_normal(6)
    net = deepdual.Network([[rng.standard_normal((1, 3)), rng.standard_normal((3, 1))]],
                           biases=[[rng.standard_normal(3)]])
    calls = {}

    def certify_1d(network, X, Y, *, beta, loss, rtol, **options):
        calls.update(beta=beta, rtol=rtol, shape=X.shape, options=options)
        return deepdual.Certificate(1.0, 0.5, "fake 1-D")

    monkeypatch.setitem(sys.modules, "deepdual.relu.one_dimensional.solver", types.SimpleNamespace(certify_1d=certify_1d))
    cert = deepdual.certify(net, x, y, beta=0.25)
    assert cert.method == "fake 1-D" and calls["beta"] == 0.25 and calls["shape"] == (6, 1)
    monkeypatch.setitem(sys.modules, "deepdual.relu.one_dimensional.solver", None)  # module missing
    cert = deepdual.certify(net, x, y, beta=0.25)
    assert cert.lower_bound == -np.inf and "one_dimensional" in cert.method


def test_certify_solution_of_structured_problems_is_tight():
    X = whitened(5, 8, 9)
    Y = np.eye(2)[[0, 1, 1, 0, 1]]
    sol = deepdual.solve(X, Y, beta=0.4, depth=2)
    cert = deepdual.certify(sol.network, X, Y, beta=0.4)
    assert cert.certified and cert.objective == pytest.approx(sol.objective, rel=1e-14)


def test_exact_constraint_raises_for_vector_outputs_without_exact_value():
    # K = 2 on generic data: per-output enumeration is only an upper bound on c(V),
    # so constraint="exact" must refuse instead of silently returning a bound
    rng = np.random.default_rng(11)
    X, Y = rng.standard_normal((12, 2)), rng.standard_normal((12, 2))
    net = random_net(rng, 2, 2, 2)
    auto = deepdual.certify(net, X, Y, beta=0.5)
    assert not auto.exact_constraint
    with pytest.raises(ValueError, match="constraint='exact'.*K=2"):
        deepdual.certify(net, X, Y, beta=0.5, constraint="exact")
    # whitened data with generic (not class-constant) dual rows: the orthant bound is not exact
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((8, 6)))
    Xw = Q.T  # 6 x 8 with X X^T = I
    Yw = rng.standard_normal((6, 3))
    netw = random_net(rng, 8, 3, 2)
    autow = deepdual.certify(netw, Xw, Yw, beta=0.3)
    assert autow.details["constraint_method"].startswith("upper bound: whitened")
    with pytest.raises(ValueError, match="constraint='exact'"):
        deepdual.certify(netw, Xw, Yw, beta=0.3, constraint="exact")
