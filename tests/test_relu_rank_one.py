"""Deep ReLU networks on rank-one data X = c a0^T, c >= 0 (docs/theory.md §2.4)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deepdual
from deepdual.relu.rank_one.solver import THEOREM

from restarts import best_of_restarts


def rank_one_data(seed: int, n: int = 7, d: int = 4, K: int | None = None, sign: float = 1.0):
    rng = np.random.default_rng(seed)
    c = np.abs(rng.standard_normal(n)) + 0.1
    a0 = rng.standard_normal(d)
    X = sign * np.outer(c, a0)
    y = rng.standard_normal(n) + 1.0 if K is None else rng.standard_normal((n, K)) + 0.5
    return X, y, c, a0


def test_two_layer_soft_threshold_and_cvxpy():
    cp = pytest.importorskip("cvxpy")
    X, y, c, a0 = rank_one_data(0)
    beta = 0.7
    sol = deepdual.solve(X, y, beta=beta, depth=2)
    assert sol.method == THEOREM and sol.certified
    # closed form: kappa = sign(c^T y) (|c^T y| - beta/||a0||)_+ with unit c
    # with unit c the scale moves into a0: X = (c/||c||)(||c|| a0)^T
    cu, A = c / np.linalg.norm(c), np.linalg.norm(c) * np.linalg.norm(a0)
    z = cu @ y
    kappa = np.sign(z) * max(abs(z) - beta / A, 0.0)
    np.testing.assert_allclose(sol.info["kappa"][0], kappa, rtol=1e-12, atol=1e-14)
    # independent: the 1-D convex problem in kappa, solved by cvxpy
    k = cp.Variable()
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(k * cu - y) + beta * cp.abs(k) / A))
    prob.solve(solver="CLARABEL")
    assert sol.objective == pytest.approx(prob.value, rel=1e-7)
    assert sol.lower_bound <= sol.objective + 1e-12


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_never_beaten_by_restarts(depth):
    X, y, _, _ = rank_one_data(1, n=6, d=3)
    beta = 0.1
    sol = deepdual.solve(X, y, beta=beta, depth=depth)
    assert sol.certified
    # width 8: narrower deep nets on rank-one data often start with a dead path
    best = best_of_restarts(X, y, beta=beta, depth=depth, width=8, m=1, restarts=3, iters=300)
    # the closed form is the global optimum: no training run beats it (up to 1e-8 relative) ...
    assert sol.objective <= best * (1 + 1e-8)
    # ... and training reaches it, so the comparison is not vacuous
    assert best <= sol.objective * (1 + 1e-6)


def test_logistic_matches_restarts_and_is_certified():
    X, y, _, _ = rank_one_data(2, n=6, d=3)
    y = np.where(np.arange(6) % 3 == 0, -1.0, 1.0)
    beta = 0.05
    sol = deepdual.solve(X, y, beta=beta, depth=3, loss="logistic")
    assert sol.certified and sol.info["kappa"][0] != 0
    best = best_of_restarts(X, y, beta=beta, depth=3, width=8, restarts=3, loss="logistic", iters=300)
    assert sol.objective <= best * (1 + 1e-8)
    assert best <= sol.objective * (1 + 1e-6)
    # the reduced problem's minimizer: a 1-D grid never finds a smaller value
    c = sol.info["c"]
    lam = 0.5 * beta * 3 * np.linalg.norm(sol.info["a0"]) ** (-2 / 3)
    grid = np.linspace(-10, 10, 20001)
    h = np.logaddexp(0, -y[None, :] * grid[:, None] * c[None, :]).sum(axis=1) + lam * np.abs(grid) ** (2 / 3)
    assert sol.info["reduced_value"] <= h.min() + 1e-12


def test_hinge_two_layer_vs_cvxpy():
    cp = pytest.importorskip("cvxpy")
    X, _, c, a0 = rank_one_data(3, n=8, d=3)
    y = np.where(np.arange(8) % 4 == 0, -1.0, 1.0)
    beta = 0.5
    sol = deepdual.solve(X, y, beta=beta, depth=2, loss="hinge")
    cu, A = c / np.linalg.norm(c), np.linalg.norm(c) * np.linalg.norm(a0)
    k = cp.Variable()
    prob = cp.Problem(cp.Minimize(cp.sum(cp.pos(1 - cp.multiply(y, k * cu))) + beta * cp.abs(k) / A))
    prob.solve(solver="CLARABEL")
    assert sol.objective == pytest.approx(prob.value, rel=1e-7, abs=1e-9)
    assert sol.certified


def test_vector_output_radial():
    X, Y, c, a0 = rank_one_data(4, n=6, d=3, K=3)
    beta = 0.2
    sol = deepdual.solve(X, Y, beta=beta, depth=3)
    assert sol.certified
    kappa = sol.info["kappa"]
    cu = c / np.linalg.norm(c)
    z = Y.T @ cu
    # kappa is radial along Y^T c
    assert abs(kappa @ z) == pytest.approx(np.linalg.norm(kappa) * np.linalg.norm(z), rel=1e-12)
    # every output is c kappa^T
    np.testing.assert_allclose(sol.network.forward(X), np.outer(cu, kappa), atol=1e-12)
    best = best_of_restarts(X, Y, beta=beta, depth=3, width=8, restarts=2, iters=300)
    assert sol.objective <= best * (1 + 1e-8)
    assert best <= sol.objective * (1 + 1e-6)


def test_deep_jump_to_zero():
    X, y, _, _ = rank_one_data(5)
    # large beta: the jump threshold puts kappa at 0 and the network at zero
    sol = deepdual.solve(X, y, beta=50.0, depth=4)
    assert sol.info["kappa"][0] == 0.0
    assert sol.objective == pytest.approx(0.5 * y @ y, rel=1e-14)
    assert sol.certified


@pytest.mark.parametrize("width", [1, 3])
def test_structure_of_weights(width):
    X, y, _, a0 = rank_one_data(6, n=6, d=4)
    sol = deepdual.solve(X, y, beta=0.1, depth=5, width=width)
    (layers,) = sol.network.weights
    norms = [np.linalg.norm(W) for W in layers]
    np.testing.assert_allclose(norms, norms[0], rtol=1e-12)  # balanced
    for W in layers:
        s = np.linalg.svd(W, compute_uv=False)
        assert s[1:].max(initial=0.0) <= 1e-12 * s[0]  # rank one
    # first layer: column space along a0 (cosine 1) with a non-negative phi_1
    u, _, vt = np.linalg.svd(layers[0])
    cos = abs(u[:, 0] @ a0) / np.linalg.norm(a0)
    assert cos == pytest.approx(1.0, abs=1e-12)
    for l in range(len(layers) - 1):
        # alignment: the output direction of layer l is the input direction of layer l+1
        _, _, vt_l = np.linalg.svd(layers[l])
        u_next, _, _ = np.linalg.svd(layers[l + 1])
        assert abs(vt_l[0] @ u_next[:, 0]) == pytest.approx(1.0, abs=1e-12)
    # W_1 = (a0/||a0||) phi_1^T with phi_1 >= 0, and hidden layers phi phi^T/||phi|| >= 0
    u = sol.info["a0"] / np.linalg.norm(sol.info["a0"])
    assert abs(u @ a0) == pytest.approx(np.linalg.norm(a0), rel=1e-12)
    phi1 = layers[0].T @ u
    assert np.all(phi1 >= 0)
    np.testing.assert_allclose(layers[0], np.outer(u, phi1), atol=1e-13)
    for W in layers[1:-1]:
        assert np.all(W >= 0)


def test_negative_c_is_flipped():
    X, y, _, _ = rank_one_data(7, sign=-1.0)
    sol = deepdual.solve(X, y, beta=0.3, depth=3)
    assert sol.method == THEOREM and sol.certified
    assert np.all(sol.info["c"] >= 0)


def test_rejections():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((6, 3))
    y = rng.standard_normal(6)
    with pytest.raises(ValueError, match="not rank one"):
        deepdual.solve(X, y, beta=1.0, depth=3, method="rank_one")
    Xm = np.outer(rng.standard_normal(6), rng.standard_normal(3))  # mixed-sign c
    with pytest.raises(ValueError, match="both signs"):
        deepdual.solve(Xm, y, beta=1.0, depth=3, method="rank_one")
    Xr, yr, _, _ = rank_one_data(9)
    with pytest.raises(ValueError, match="bias"):
        deepdual.solve(Xr, yr, beta=1.0, depth=3, method="rank_one", bias=True)
    with pytest.raises(ValueError, match="logistic"):
        deepdual.solve(Xr, yr, beta=1.0, depth=3, loss="logistic")  # real labels are not {-1,+1}
    with pytest.raises(TypeError, match="unknown option"):
        deepdual.solve(Xr, yr, beta=1.0, depth=3, widht=2)
    with pytest.raises(ValueError, match="width"):
        deepdual.solve(Xr, yr, beta=1.0, depth=3, width=0)


def test_input_not_modified():
    X, y, _, _ = rank_one_data(10)
    X0, y0 = X.copy(), y.copy()
    deepdual.solve(X, y, beta=0.5, depth=3)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), depth=st.integers(2, 5), beta=st.floats(0.01, 5.0),
       K=st.sampled_from([None, 2]))
def test_property_bound_below_objective_and_any_network(seed, depth, beta, K):
    X, y, _, _ = rank_one_data(seed, n=5, d=3, K=K)
    sol = deepdual.solve(X, y, beta=beta, depth=depth)
    assert sol.lower_bound <= sol.objective + 1e-12 * abs(sol.objective)
    assert sol.relative_gap <= 1e-9
    # the optimum lower-bounds every network: random ones never go below it
    rng = np.random.default_rng(seed)
    Kout = 1 if K is None else K
    for _ in range(3):
        w = 3
        layers = [rng.standard_normal((3 if l == 0 else w, Kout if l == depth - 1 else w)) * 0.7
                  for l in range(depth)]
        net = deepdual.Network([layers])
        assert deepdual.objective(net, X, y, beta=beta) >= sol.lower_bound - 1e-12 * abs(sol.lower_bound)


# ------------------------------------------------------------------ vector outputs, any loss
def _vector_case(name: str, seed: int = 3, n: int = 12, d: int = 4):
    """Rank-one data with labels that depend on c (so the optimum is far from kappa = 0)."""
    rng = np.random.default_rng(seed)
    c = np.abs(rng.standard_normal(n))
    a0 = rng.standard_normal(d)
    X = np.outer(c, a0)
    if name == "cross_entropy":
        lab = np.digitize(c, np.quantile(c, [0.33, 0.66]))
        lab[:2] = (lab[:2] + 1) % 3  # not separable along c
        Y = np.eye(3)[lab]
    else:
        Y = np.outer(c, rng.standard_normal(3)) + 0.3 * rng.standard_normal((n, 3))
    return X, Y, c, a0


def _beta(loss, X, Y, c, a0, frac):
    """A fraction of the smallest beta with the zero network optimal: ||a0|| ||grad g(0)||."""
    G0 = loss.gradient(np.zeros_like(Y), Y)
    return frac * np.linalg.norm(a0) * np.linalg.norm(G0.T @ c)


@pytest.mark.parametrize("name", ["cross_entropy", "squared"])
@pytest.mark.parametrize("frac", [0.02, 0.3, 0.8])
def test_vector_output_any_loss_two_layer_vs_cvxpy(name, frac):
    r"""L = 2, K = 3: min_k loss(c k^T) + (beta/||a0||) ||k|| (the reduced problem, convex)
    solved by cvxpy agrees to 1e-6 relative, and the gap is certified."""
    cp = pytest.importorskip("cvxpy")
    from deepdual.losses import get_loss

    X, Y, c, a0 = _vector_case(name)
    loss = get_loss(name)
    beta = _beta(loss, X, Y, c, a0, frac)
    k = cp.Variable((1, 3))
    F = c[:, None] @ k
    data = (cp.sum(cp.log_sum_exp(F, axis=1)) - cp.sum(cp.multiply(Y, F)) if name == "cross_entropy"
            else 0.5 * cp.sum_squares(F - Y))
    prob = cp.Problem(cp.Minimize(data + beta / np.linalg.norm(a0) * cp.norm(k)))
    prob.solve(solver=cp.CLARABEL, tol_gap_abs=1e-11, tol_gap_rel=1e-11, tol_feas=1e-11)
    ref = loss.value(c[:, None] @ k.value, Y) + beta / np.linalg.norm(a0) * np.linalg.norm(k.value)
    sol = deepdual.solve(X, Y, beta=beta, loss=name)
    assert sol.method == THEOREM
    assert sol.certified and sol.relative_gap <= 1e-9
    assert sol.objective == pytest.approx(ref, rel=1e-6)
    assert sol.lower_bound <= ref * (1 + 1e-9)
    assert sol.objective == pytest.approx(deepdual.objective(sol.network, X, Y, beta=beta, loss=name), rel=1e-12)
    # optimality of the reduced problem in the solver's unit-c scaling (X = u A^T, u = c/||c||,
    # A = ||c|| a0): kappa = 0, or grad g(kappa) = -(beta/||A||) kappa/||kappa||
    kap, u = sol.info["kappa"], c / np.linalg.norm(c)
    gk = loss.gradient(np.outer(u, kap), Y).T @ u
    lam = beta / (np.linalg.norm(c) * np.linalg.norm(a0))
    if np.linalg.norm(kap) > 0:
        np.testing.assert_allclose(gk, -lam * kap / np.linalg.norm(kap), atol=1e-6 * lam)
    else:
        assert np.linalg.norm(gk) <= lam


@pytest.mark.parametrize("depth", [2, 3])
def test_vector_cross_entropy_never_beaten_by_restarts(depth):
    """K = 3 cross-entropy: the certified optimum is never beaten by direct training, and
    its lower bound sits below the best of the restarts."""
    from deepdual.losses import get_loss

    X, Y, c, a0 = _vector_case("cross_entropy", n=9)
    beta = _beta(get_loss("cross_entropy"), X, Y, c, a0, 0.1)
    sol = deepdual.solve(X, Y, beta=beta, depth=depth, loss="cross_entropy")
    assert sol.method == THEOREM and sol.certified
    best = best_of_restarts(X, Y, beta=beta, depth=depth, width=6, restarts=3, loss="cross_entropy", iters=300)
    assert sol.lower_bound <= best * (1 + 1e-9)
    assert sol.objective <= best * (1 + 1e-6)


def test_vector_cross_entropy_deep_zero_network():
    """Deep (L = 4), large beta: the concave penalty makes kappa = 0 optimal (a jump);
    the lower bound proves it."""
    from deepdual.losses import get_loss

    X, Y, c, a0 = _vector_case("cross_entropy", n=9)
    beta = _beta(get_loss("cross_entropy"), X, Y, c, a0, 0.6)
    sol = deepdual.solve(X, Y, beta=beta, depth=4, loss="cross_entropy")
    assert sol.certified
    assert np.linalg.norm(sol.info["kappa"]) == 0.0
    assert sol.objective == pytest.approx(9 * np.log(3), rel=1e-12)


@pytest.mark.parametrize("depth", [2, 4])
def test_vector_cross_entropy_bound_below_random_networks_and_certify(depth):
    """The lower bound is below the objective of random networks of any width, and
    deepdual.certify uses the same reduced problem (any loss) to certify the solution."""
    from deepdual.losses import get_loss

    X, Y, c, a0 = _vector_case("cross_entropy", n=9, seed=5)
    beta = _beta(get_loss("cross_entropy"), X, Y, c, a0, 0.15)
    sol = deepdual.solve(X, Y, beta=beta, depth=depth, loss="cross_entropy")
    assert sol.certified
    rng = np.random.default_rng(depth)
    for m in (1, 3):
        subs = [[rng.standard_normal((4 if l == 0 else 5, 3 if l == depth - 1 else 5)) * 0.4
                 for l in range(depth)] for _ in range(m)]
        P = deepdual.objective(deepdual.Network(subs), X, Y, beta=beta, loss="cross_entropy")
        assert P >= sol.lower_bound
    cert = deepdual.certify(sol.network, X, Y, beta=beta, loss="cross_entropy")
    assert cert.certified and "rank one" in cert.method.replace("-", " ")  # residual (L = 2) or reduced
    assert cert.lower_bound == pytest.approx(sol.lower_bound, rel=1e-8)


@pytest.mark.parametrize("name", ["cross_entropy", "squared"])
def test_mixed_sign_c_two_layer_vector_vs_cvxpy(name):
    r"""Mixed-sign c, L = 2 (docs/losses.md): f = c_+ k_+^T + c_- k_-^T and each neuron feeds
    one of the two, so P* = min loss(c_+ k_+^T + c_- k_-^T) + (beta/||a0||)(||k_+|| + ||k_-||)
    (cvxpy).  `solve` takes the exact two-layer convex program there: same value, certified."""
    cp = pytest.importorskip("cvxpy")
    from deepdual.losses import get_loss

    rng = np.random.default_rng(11)
    n = 10
    c = rng.standard_normal(n)
    a0 = rng.standard_normal(4)
    X = np.outer(c, a0)
    loss = get_loss(name)
    if name == "cross_entropy":
        Y = np.eye(3)[np.digitize(c, np.quantile(c, [0.33, 0.66]))]
    else:
        Y = np.outer(c, rng.standard_normal(3)) + 0.3 * rng.standard_normal((n, 3))
    beta = 0.5
    cpos, cneg = np.maximum(c, 0), np.maximum(-c, 0)
    kp, km = cp.Variable((1, 3)), cp.Variable((1, 3))
    F = cpos[:, None] @ kp + cneg[:, None] @ km
    data = (cp.sum(cp.log_sum_exp(F, axis=1)) - cp.sum(cp.multiply(Y, F)) if name == "cross_entropy"
            else 0.5 * cp.sum_squares(F - Y))
    prob = cp.Problem(cp.Minimize(data + beta / np.linalg.norm(a0) * (cp.norm(kp) + cp.norm(km))))
    prob.solve(solver=cp.CLARABEL, tol_gap_abs=1e-11, tol_gap_rel=1e-11, tol_feas=1e-11)
    Fv = np.outer(cpos, kp.value) + np.outer(cneg, km.value)
    ref = loss.value(Fv, Y) + beta / np.linalg.norm(a0) * (np.linalg.norm(kp.value) + np.linalg.norm(km.value))
    sol = deepdual.solve(X, Y, beta=beta, loss=name)
    assert sol.certified
    assert sol.objective == pytest.approx(ref, rel=1e-6)
    assert sol.lower_bound <= ref * (1 + 1e-9)
