"""Deep ReLU networks on whitened data X X^T = I (docs/theory.md §2.6)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deepdual
from deepdual.dual_constraint import relu_constraint
from deepdual.relu.whitened.solver import THEOREM, norm_constrained_objective

from restarts import best_of_restarts


def whitened(n: int, d: int, seed: int) -> np.ndarray:
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, n)))
    return Q.T.copy()


def huber(t, beta):
    t = np.asarray(t, dtype=float)
    return np.where(t <= beta, 0.5 * t**2, beta * t - 0.5 * beta**2)


def test_two_layer_scalar_closed_form_and_cvxpy():
    cp = pytest.importorskip("cvxpy")
    X = whitened(6, 9, 0)
    y = np.array([1.5, -0.4, 2.0, -1.7, 0.3, -0.2])
    beta = 0.8
    sol = deepdual.solve(X, y, beta=beta, depth=2)
    assert sol.method == THEOREM and sol.certified
    a_pos, a_neg = np.linalg.norm(np.maximum(y, 0)), np.linalg.norm(np.maximum(-y, 0))
    assert sol.objective == pytest.approx(float(huber(a_pos, beta) + huber(a_neg, beta)), rel=1e-13)
    # independent convex form on whitened data: min 1/2||f - y||^2 + beta(||f_+|| + ||f_-||), f = p - q
    p, q = cp.Variable(6, nonneg=True), cp.Variable(6, nonneg=True)
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(p - q - y) + beta * (cp.norm(p) + cp.norm(q))))
    prob.solve(solver="CLARABEL")
    assert sol.objective == pytest.approx(prob.value, rel=1e-7)
    # the certificate is a dual-feasible point: exact constraint value <= beta
    cv = relu_constraint(sol.dual, X)
    assert cv.exact and cv.value <= beta * (1 + 1e-12)


def test_two_layer_matches_general_convex_program():
    pytest.importorskip("deepdual.relu.convex_program.solver")
    X = whitened(5, 7, 1)
    y = np.array([1.0, -2.0, 0.5, 1.5, -0.3])
    beta = 0.5
    sol = deepdual.solve(X, y, beta=beta, depth=2)
    conv = deepdual.solve(X, y, beta=beta, depth=2, method="convex")
    assert sol.objective == pytest.approx(conv.objective, rel=1e-5)


def test_one_hot_two_layer_and_dual():
    cp = pytest.importorskip("cvxpy")
    X = whitened(7, 10, 2)
    lab = np.array([0, 1, 2, 0, 1, 1, 1])
    Y = np.eye(3)[lab]
    beta = 1.2
    sol = deepdual.solve(X, Y, beta=beta, depth=2)
    assert sol.certified
    counts = np.bincount(lab)
    assert sol.objective == pytest.approx(float(np.sum(huber(np.sqrt(counts), beta))), rel=1e-13)
    # the dual certificate lambda_j = min(||y_j||, beta) y_j/||y_j|| ...
    V = sol.dual
    np.testing.assert_allclose(V, Y * np.minimum(np.sqrt(counts), beta) / np.sqrt(counts), atol=1e-15)
    # ... is feasible for the vector-output dual constraint (exact on whitened data)
    cv = relu_constraint(V, X)
    assert cv.exact and cv.value <= beta * (1 + 1e-12)
    # and the value equals the nuclear-norm relaxation (a lower bound for ReLU networks)
    F = cp.Variable(Y.shape)
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(F - Y) + beta * cp.normNuc(F)))
    prob.solve(solver="CLARABEL")
    assert sol.objective == pytest.approx(prob.value, rel=1e-6)


@pytest.mark.parametrize("depth,m,width", [(2, 1, 6), (3, 2, 3), (3, 1, 6), (4, 1, 8)])
def test_scalar_two_signs_never_beaten_by_restarts(depth, m, width):
    X = whitened(4, 6, 3)
    y = np.array([1.5, -1.2, 0.8, -0.9])
    beta = 0.1
    sol = deepdual.solve(X, y, beta=beta, depth=depth)
    best = best_of_restarts(X, y, beta=beta, depth=depth, width=width, m=m, restarts=3, iters=400)
    assert sol.objective <= best * (1 + 1e-8)
    assert best <= sol.objective * (1 + 1e-2)  # training gets near it: the comparison is not vacuous
    if depth == 2:
        assert sol.certified


def test_one_hot_deep_never_beaten_by_restarts():
    X = whitened(4, 6, 4)
    Y = np.eye(2)[[0, 1, 1, 0]]
    beta = 0.1
    sol = deepdual.solve(X, Y, beta=beta, depth=3)
    best = min(best_of_restarts(X, Y, beta=beta, depth=3, width=w, m=m, restarts=3, iters=400)
               for w, m in ((3, 2), (6, 1)))
    assert sol.objective <= best * (1 + 1e-8)
    assert best <= sol.objective * (1 + 1e-4)  # training finds it: the comparison is not vacuous


def test_deep_certified_exactly_when_one_part():
    X = whitened(5, 8, 5)
    rng = np.random.default_rng(5)
    y = np.abs(rng.standard_normal(5)) + 0.1
    for depth in (3, 4):
        sol = deepdual.solve(X, y, beta=0.3, depth=depth)
        assert sol.certified and "note" not in sol.info
        # value: min_s (s - ||y||)^2/2 + (beta L/2) s^(2/L), checked on a fine grid
        s = np.linspace(0, np.linalg.norm(y), 200001)
        h = 0.5 * (s - np.linalg.norm(y)) ** 2 + 0.15 * depth * s ** (2 / depth)
        assert sol.objective <= h.min() + 1e-12
        assert sol.objective >= h.min() - 1e-6
    # two parts are proven at every depth; three parts are not (test_whitened_deep.py)
    y2 = np.zeros((5, 2))
    y2[:, 0] = 2 * y * np.array([1, -1, 1, 0, 0])
    y2[3:, 1] = 2 * y[3:]
    sol = deepdual.solve(X, y2, beta=0.3, depth=4)
    assert not sol.certified and "not certified" in sol.info["note"]
    assert sol.lower_bound < sol.objective


def test_norm_constrained_form():
    X = whitened(6, 8, 6)
    y = np.array([2.0, -1.0, 0.5, 1.2, -0.1, -2.2])
    beta, t = 0.6, 1.4
    for depth in (2, 3, 5):
        sol = deepdual.solve(X, y, beta=beta, depth=depth, formulation="norm_constrained", trunk_norm=t)
        assert sol.certified and sol.info["formulation"] == "norm_constrained"
        be = beta / t ** (depth - 2)
        a = [np.linalg.norm(np.maximum(y, 0)), np.linalg.norm(np.maximum(-y, 0))]
        assert sol.objective == pytest.approx(float(np.sum(huber(a, be))), rel=1e-13)
        assert sol.objective == pytest.approx(
            norm_constrained_objective(sol.network, X, y, beta=beta, trunk_norm=t), rel=1e-14)
        for layers in sol.network.weights:
            for W in layers[: depth - 2]:
                assert np.linalg.norm(W) <= t * (1 + 1e-12)
        assert sol.info["objective_weight_decay"] >= sol.objective - 1e-12


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), depth=st.integers(3, 5), t=st.floats(0.3, 2.0))
def test_norm_constrained_lower_bound_below_feasible_networks(seed, depth, t):
    X = whitened(4, 6, seed)
    rng = np.random.default_rng(seed)
    y = rng.standard_normal(4)
    sol = deepdual.solve(X, y, beta=0.5, depth=depth, formulation="norm_constrained", trunk_norm=t)
    for _ in range(3):
        layers = [rng.standard_normal((6 if l == 0 else 3, 1 if l == depth - 1 else 3)) for l in range(depth)]
        for l in range(depth - 2):  # scale the trunk onto the constraint set
            layers[l] *= t * rng.uniform(0.2, 1.0) / np.linalg.norm(layers[l])
        net = deepdual.Network([layers])
        val = norm_constrained_objective(net, X, y, beta=0.5, trunk_norm=t)
        assert val >= sol.lower_bound - 1e-12 * abs(sol.lower_bound)


@pytest.mark.parametrize("loss", ["logistic", "hinge"])
def test_margin_losses_two_layer_vs_cvxpy(loss):
    cp = pytest.importorskip("cvxpy")
    X = whitened(7, 9, 7)
    y = np.array([1, 1, -1, 1, -1, 1, 1.0])
    beta = 0.7
    sol = deepdual.solve(X, y, beta=beta, depth=2, loss=loss)
    assert sol.certified
    p, q = cp.Variable(7, nonneg=True), cp.Variable(7, nonneg=True)
    margin = cp.multiply(y, p - q)
    data = cp.sum(cp.logistic(-margin)) if loss == "logistic" else cp.sum(cp.pos(1 - margin))
    prob = cp.Problem(cp.Minimize(data + beta * (cp.norm(p) + cp.norm(q))))
    prob.solve(solver="CLARABEL")
    assert sol.objective == pytest.approx(prob.value, rel=1e-6)


@pytest.mark.parametrize("width", [1, 2])
def test_structure_of_weights(width):
    X = whitened(6, 9, 8)
    Y = np.eye(3)[[0, 1, 2, 0, 1, 1]]
    sol = deepdual.solve(X, Y, beta=0.2, depth=4, width=width)
    dirs = []
    for j, layers in enumerate(sol.network.weights):
        norms = [np.linalg.norm(W) for W in layers]
        np.testing.assert_allclose(norms, norms[0], rtol=1e-12)  # balanced
        for W in layers:
            s = np.linalg.svd(W, compute_uv=False)
            assert s[1:].max(initial=0.0) <= 1e-12 * s[0]  # rank one
        for W in layers[1:-1]:
            assert np.all(W >= 0)  # phi's non-negative
        u = np.linalg.svd(layers[0])[0][:, 0]
        k = int(np.argmax(np.abs(layers[-1]).sum(axis=0)))
        target = X.T @ Y[:, k] / np.linalg.norm(Y[:, k])  # phi_0 = X^T y_k / ||y_k||
        assert abs(u @ target) == pytest.approx(1.0, abs=1e-12)
        dirs.append(u)
    G = np.abs(np.array(dirs) @ np.array(dirs).T)
    np.testing.assert_allclose(G, np.eye(len(dirs)), atol=1e-12)  # one sub-network per class, orthogonal


def test_parallel_false_same_objective():
    X = whitened(5, 7, 9)
    Y = np.eye(2)[[0, 1, 1, 0, 1]]
    a = deepdual.solve(X, Y, beta=0.1, depth=3)
    b = deepdual.solve(X, Y, beta=0.1, depth=3, parallel=False)
    assert b.network.n_subnetworks == 1
    assert b.objective == pytest.approx(a.objective, rel=1e-14)
    np.testing.assert_allclose(b.network.forward(X), a.network.forward(X), atol=1e-13)


def test_rejections():
    X = whitened(4, 6, 10)
    y = np.array([1.0, -1.0, 0.5, 2.0])
    rng = np.random.default_rng(10)
    with pytest.raises(ValueError, match="not whitened"):
        deepdual.solve(rng.standard_normal((4, 6)), y, beta=1.0, depth=3, method="whitened")
    with pytest.raises(ValueError, match="at most one non-zero"):
        deepdual.solve(X, rng.standard_normal((4, 2)), beta=1.0, depth=2, method="whitened")
    with pytest.raises(ValueError, match="bias"):
        deepdual.solve(X, y, beta=1.0, depth=2, method="whitened", bias=True)
    with pytest.raises(ValueError, match="depth 2"):
        deepdual.solve(X, np.sign(y), beta=1.0, depth=3, loss="logistic", method="whitened")
    with pytest.raises(ValueError, match="formulation"):
        deepdual.solve(X, y, beta=1.0, depth=3, formulation="paper")
    with pytest.raises(ValueError, match="parallel"):
        deepdual.solve(X, y, beta=1.0, depth=3, formulation="norm_constrained", parallel=False)
    with pytest.raises(ValueError, match="trunk_norm"):
        deepdual.solve(X, y, beta=1.0, depth=3, formulation="norm_constrained", trunk_norm=-1.0)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), depth=st.integers(2, 5), beta=st.floats(0.01, 3.0),
       onehot=st.booleans())
def test_property_bounds(seed, depth, beta, onehot):
    X = whitened(5, 7, seed)
    rng = np.random.default_rng(seed)
    y = np.eye(3)[rng.integers(0, 3, 5)] if onehot else rng.standard_normal(5)
    sol = deepdual.solve(X, y, beta=beta, depth=depth)
    assert sol.lower_bound <= sol.objective + 1e-12 * abs(sol.objective)
    if depth == 2:
        assert sol.certified
    # the certificate of the returned network never exceeds its objective either
    cert = deepdual.certify(sol.network, X, y, beta=beta)
    assert cert.lower_bound <= cert.objective + 1e-12 * abs(cert.objective)
    assert cert.objective == pytest.approx(sol.objective, rel=1e-13)
