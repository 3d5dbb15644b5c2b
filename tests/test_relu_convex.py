"""Two-layer ReLU networks on arbitrary data: the convex program (docs/theory.md §2.8).

References used here, all independent of the solver:
* cvxpy (Clarabel) on the same convex program with the exactly enumerated patterns;
* best of many L-BFGS restarts of the non-convex network (tests/restarts.py);
* brute-force sampling of activation patterns (for the enumeration);
* random networks (for the validity of the lower bound).
"""

import numpy as np
import pytest

import deepdual
from deepdual.patterns import count_upper_bound, enumerate_patterns, row_space, sample_patterns, unique_patterns
from deepdual.relu.convex_program.solver import cone_value, prune_neurons


def _cvxpy_optimum(X, y, beta, loss="squared", bias=False):
    """The convex program over all enumerated patterns, solved by Clarabel."""
    cp = pytest.importorskip("cvxpy")
    if bias:
        X = np.hstack([X, np.ones((len(X), 1))])
    from references import convex_program_cvxpy

    prob, _, _ = convex_program_cvxpy(X, y, beta, loss, enumerate_patterns(X))
    prob.solve(solver=cp.CLARABEL)
    assert prob.status == "optimal"
    return prob.value


def _random_network(rng, d, K, width, bias=False):
    W1 = rng.standard_normal((d, width)) * rng.uniform(0.1, 2.0)
    W2 = rng.standard_normal((width, K)) * rng.uniform(0.1, 2.0)
    b = [[rng.standard_normal(width)]] if bias else None
    return deepdual.Network([[W1, W2]], "relu", biases=b, scalar_output=K == 1)


# ----------------------------------------------------------------------------- patterns
@pytest.mark.parametrize("n,d", [(6, 2), (9, 3), (12, 4)])
def test_enumeration_is_complete_and_counts_regions(n, d):
    rng = np.random.default_rng(n)
    X = rng.standard_normal((n, d))
    P, G = enumerate_patterns(X, return_directions=True)
    # general position: exactly the Zaslavsky count (minus the empty pattern, if any)
    assert len(P) in (count_upper_bound(n, d), count_upper_bound(n, d) - 1)
    # every pattern met by 200k random directions is enumerated
    S = unique_patterns((X @ rng.standard_normal((d, 200_000)) >= 0).T)
    assert {r.tobytes() for r in S} <= {r.tobytes() for r in P}
    # each returned direction lies strictly inside its region
    M = X @ G.T
    assert np.all((M > 0).T == P) and np.all(M != 0)


def test_enumeration_degenerate_data_is_a_superset():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((9, 3))
    X[3] = 2 * X[1]          # parallel rows
    X[4] = -X[2]             # anti-parallel rows
    X[5] = 0.0               # a zero row (its pattern entry is irrelevant)
    X[6] = X[0] + X[1]       # three rows in a plane
    X[8] = X[7]              # duplicate
    P = enumerate_patterns(X)
    S = unique_patterns((X @ rng.standard_normal((3, 400_000)) >= 0).T)
    keep = np.arange(9) != 5
    assert {r.tobytes() for r in S[:, keep]} <= {r.tobytes() for r in P[:, keep]}


def test_sampled_patterns_are_reproducible_and_realized():
    X = np.random.default_rng(0).standard_normal((30, 6))
    P1, G1 = sample_patterns(X, 40, 7, return_directions=True)
    P2 = sample_patterns(X, 40, 7)
    np.testing.assert_array_equal(P1, P2)
    assert len(P1) == 40
    np.testing.assert_array_equal((X @ G1.T >= 0).T, P1)


def test_cone_value_matches_brute_force():
    # max over u in the cone, |u| <= 1, of s v^T D X u: NNLS value vs. dense sampling of u
    rng = np.random.default_rng(1)
    X = rng.standard_normal((7, 2))
    v = rng.standard_normal(7)
    rs = row_space(X)
    P = enumerate_patterns(X)
    ang = np.linspace(0, 2 * np.pi, 200_001)
    U = np.stack([np.cos(ang), np.sin(ang)])  # unit circle in row-space coordinates
    XU = rs.Xr @ U
    step = ang[1] - ang[0]
    for p in P:
        inside = np.all((2 * p[:, None] - 1) * XU >= 0, axis=0)
        grid_err = 2 * step * np.linalg.norm(rs.Xr.T @ (p * v))  # the grid misses a vertex by < step
        for s in (1.0, -1.0):
            val = cone_value(rs.Xr, p.astype(float), s * v)
            best = max(0.0, float(np.max(s * v @ (p[:, None] * XU[:, inside])))) if inside.any() else 0.0
            assert val >= best - 1e-12                     # an upper bound ...
            assert val <= best + grid_err + 1e-12          # ... and exact (up to the grid)


# ----------------------------------------------------------------------------- exactness
@pytest.mark.parametrize("n,d,beta,loss,bias", [
    (8, 2, 0.1, "squared", False),
    (8, 3, 0.5, "squared", False),
    (10, 2, 0.05, "squared", True),
    (9, 2, 0.3, "logistic", False),
    (8, 2, 0.2, "logistic", True),
])
def test_matches_cvxpy_on_all_patterns(n, d, beta, loss, bias):
    rng = np.random.default_rng(10 * n + d)
    X = rng.standard_normal((n, d))
    y = rng.standard_normal(n) if loss == "squared" else np.where(rng.standard_normal(n) > 0, 1.0, -1.0)
    sol = deepdual.solve(X, y, beta=beta, loss=loss, bias=bias, method="convex")
    ref = _cvxpy_optimum(X, y, beta, loss, bias)
    assert sol.info["patterns_complete"]
    assert sol.certified, sol
    assert sol.objective == pytest.approx(ref, rel=1e-6)
    # the lower bound is proven: never above the optimum (cvxpy's value to its own accuracy)
    assert sol.lower_bound <= ref * (1 + 1e-8)
    # the rebuilt network has exactly the convex objective and at most n + 1 neurons
    obj = deepdual.objective(sol.network, X, y, beta=beta, loss=loss, penalize_biases=bias)
    assert obj == pytest.approx(sol.objective, rel=1e-12)
    assert obj == pytest.approx(sol.info["convex_objective"], rel=1e-9)
    assert sol.network.widths[0][1] <= n + 1


def test_never_beaten_by_many_restarts_of_direct_training():
    from restarts import best_of_restarts

    rng = np.random.default_rng(3)
    n, d, beta = 8, 2, 0.2
    X = rng.standard_normal((n, d))
    y = np.abs(X[:, 0]) - 0.5 * X[:, 1] + 0.1 * rng.standard_normal(n)
    sol = deepdual.solve(X, y, beta=beta)  # general data: dispatched to the convex program
    assert "convex program" in sol.method and sol.certified
    best = best_of_restarts(X, y, beta=beta, depth=2, width=n + 1, restarts=8, seed=1)
    assert best >= sol.objective * (1 - 1e-6), (best, sol.objective)
    # a good training run gets close: the optimum is attained by a network
    assert best <= sol.objective * 1.05


def test_lower_bound_below_random_networks():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((10, 3))
    y = rng.standard_normal(10)
    for bias in (False, True):
        sol = deepdual.solve(X, y, beta=0.4, bias=bias, method="convex")
        vals = [deepdual.objective(_random_network(rng, 3, 1, w, bias), X, y, beta=0.4, penalize_biases=bias)
                for w in (1, 3, 20) for _ in range(30)]
        assert sol.lower_bound <= min(vals)
        assert sol.lower_bound <= sol.objective


def test_certify_of_the_solution_network_closes_the_gap():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((9, 2))
    y = rng.standard_normal(9)
    sol = deepdual.solve(X, y, beta=0.3, bias=True, method="convex")
    cert = deepdual.certify(sol.network, X, y, beta=0.3, penalize_biases=True)
    assert cert.objective == pytest.approx(sol.objective, rel=1e-12)
    assert cert.certified, cert


def test_huge_beta_gives_the_zero_network():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((8, 2))
    y = rng.standard_normal(8)
    beta = 10.0 * np.linalg.norm(X, 2) * np.linalg.norm(y)  # above c(y): zero is optimal
    sol = deepdual.solve(X, y, beta=beta, method="convex")
    assert sol.objective == pytest.approx(0.5 * y @ y, rel=1e-6)
    assert sol.certified


# ----------------------------------------------------------------------------- sampled / vector
def test_sampled_patterns_are_reproducible_and_honest():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((30, 6))
    y = np.maximum(X[:, 0], 0) - X[:, 1]
    a = deepdual.solve(X, y, beta=1.0, n_patterns=20, rng=3)
    b = deepdual.solve(X, y, beta=1.0, n_patterns=20, rng=3)
    assert not a.info["patterns_complete"] and "upper bound" in a.info["note"]
    assert a.objective == b.objective
    # rng=None draws a seed and records it: re-running with it repeats the result
    c = deepdual.solve(X, y, beta=1.0, n_patterns=20)
    d = deepdual.solve(X, y, beta=1.0, n_patterns=20, rng=c.info["rng_seed"])
    assert c.objective == d.objective
    # the program over the sampled patterns is solved to its own gap
    assert a.info["restricted_converged"]
    assert a.info["restricted_objective"] - a.info["restricted_lower_bound"] <= 1e-6 * a.objective
    # the global lower bound is still proven
    vals = [deepdual.objective(_random_network(rng, 6, 1, 10), X, y, beta=1.0) for _ in range(30)]
    assert a.lower_bound <= min(vals + [a.objective])


def test_vector_output_is_an_upper_bound_with_valid_lower_bound():
    rng = np.random.default_rng(9)
    X = rng.standard_normal((10, 2))
    Y = np.column_stack([np.abs(X[:, 0]), X[:, 1] - X[:, 0]])
    sol = deepdual.solve(X, Y, beta=0.3, method="convex")
    assert sol.predict(X).shape == (10, 2)
    obj = deepdual.objective(sol.network, X, Y, beta=0.3)
    assert obj == pytest.approx(sol.objective, rel=1e-12)
    # one output per neuron (l1 path penalty) is feasible for weight decay: no worse
    assert obj <= sol.info["convex_objective"] * (1 + 1e-9)
    vals = [deepdual.objective(_random_network(rng, 2, 2, 8), X, Y, beta=0.3) for _ in range(50)]
    assert sol.lower_bound <= min(vals + [obj])
    assert "vector output" in sol.info["note"]


def test_vector_cell_bound_is_above_sampled_directions():
    # max_{|u|<=1} ||V^T (Xu)_+|| sampled at many unit u (an underestimate of the true
    # maximum) never exceeds the proven cell bound over a complete pattern set
    from deepdual.relu.convex_program.solver import vector_cell_bound

    rng = np.random.default_rng(21)
    for n, d, K in ((8, 2, 2), (10, 3, 3)):
        X = rng.standard_normal((n, d))
        V = rng.standard_normal((n, K))
        rs = row_space(X)
        bound = vector_cell_bound(rs.Xr, V, enumerate_patterns(X))
        U = rng.standard_normal((d, 20000))
        U /= np.linalg.norm(U, axis=0)
        sampled = np.max(np.linalg.norm(V.T @ np.maximum(X @ U, 0.0), axis=0))
        assert sampled <= bound * (1 + 1e-12)
        # and it is not trivially loose: within the operator-norm bound
        assert bound <= np.linalg.norm(V, 2) * np.linalg.norm(X, 2) * (1 + 1e-12)


def test_vector_output_lower_bound_below_restarts_and_random_networks():
    from restarts import best_of_restarts

    rng = np.random.default_rng(9)
    X = rng.standard_normal((10, 2))
    Y = np.column_stack([np.abs(X[:, 0]), X[:, 1] - X[:, 0]])
    beta = 0.3
    sol = deepdual.solve(X, Y, beta=beta, method="convex")
    obj = deepdual.objective(sol.network, X, Y, beta=beta)
    assert obj == pytest.approx(sol.objective, rel=1e-12)
    # local polishing of the program's network can only help
    assert sol.objective <= sol.info.get("objective_before_polish", np.inf)
    assert np.isfinite(sol.lower_bound) and sol.lower_bound <= sol.objective
    best = best_of_restarts(X, Y, beta=beta, depth=2, width=12, restarts=8, seed=1)
    assert sol.lower_bound <= best
    vals = [deepdual.objective(_random_network(rng, 2, 2, w), X, Y, beta=beta) for w in (1, 4, 16) for _ in range(30)]
    assert sol.lower_bound <= min(vals)
    # the gated relaxation's residual gives a better bound than the network's own here
    assert sol.info["dual_point"] == "gated relaxation residual"
    # the reported dual point is feasible for the proven constraint and attains the bound
    from deepdual.losses import get_loss

    assert get_loss("squared").dual_value(sol.dual, Y) == pytest.approx(sol.lower_bound, rel=1e-9)


def test_cross_entropy_runs_and_bounds():
    rng = np.random.default_rng(11)
    X = rng.standard_normal((12, 2))
    lab = np.digitize(X[:, 0], [-0.4, 0.4])
    sol = deepdual.solve(X, lab, beta=0.2, loss="cross_entropy", method="convex")
    obj = deepdual.objective(sol.network, X, lab, beta=0.2, loss="cross_entropy")
    assert obj == pytest.approx(sol.objective, rel=1e-12)
    assert sol.lower_bound <= obj


def test_augmented_lagrangian_agrees_with_interior_point():
    rng = np.random.default_rng(12)
    X = rng.standard_normal((8, 2))
    y = rng.standard_normal(8)
    ipm = deepdual.solve(X, y, beta=0.3, method="convex", solver="ipm")
    al = deepdual.solve(X, y, beta=0.3, method="convex", solver="al", rtol=1e-4)
    assert al.info["solver"] == "al"
    # first order: accurate to its stopping gap, certified at that tolerance
    assert al.objective == pytest.approx(ipm.objective, rel=1e-4)
    assert al.certified
    assert al.lower_bound <= ipm.objective * (1 + 1e-9)


# ----------------------------------------------------------------------------- pruning
def test_prune_keeps_output_and_penalty():
    rng = np.random.default_rng(13)
    n, d, m = 10, 3, 200
    X = rng.standard_normal((n, d))
    U, A = rng.standard_normal((d, m)), rng.standard_normal((m, 1))
    U[:, 5] = 3.0 * U[:, 4]  # a repeated direction is merged
    U2, A2, info = prune_neurons(X, U, A)
    F1, F2 = np.maximum(X @ U, 0) @ A, np.maximum(X @ U2, 0) @ A2
    pen1 = np.sum(np.linalg.norm(U, axis=0) * np.abs(A[:, 0]))
    pen2 = 0.5 * (np.sum(U2**2) + np.sum(A2**2))  # balanced: equals sum |u||a|
    np.testing.assert_allclose(F2, F1, rtol=1e-10, atol=1e-10 * np.abs(F1).max())
    assert pen2 <= pen1 * (1 + 1e-12)
    assert U2.shape[1] <= n + 1 and info["merged"] >= 1


# ----------------------------------------------------------------------------- errors
def test_bad_input():
    rng = np.random.default_rng(14)
    X, y = rng.standard_normal((8, 2)), rng.standard_normal(8)
    with pytest.raises(ValueError, match="depth"):  # (depth 3: the three-layer program)
        deepdual.solve(X, y, beta=1.0, depth=4, method="convex")
    with pytest.raises(ValueError, match="hinge"):
        deepdual.solve(X, np.sign(y), beta=1.0, loss="hinge", method="convex")
    with pytest.raises(TypeError, match="unknown option"):
        deepdual.solve(X, y, beta=1.0, method="convex", n_pattern=3)
    with pytest.raises(ValueError, match="patterns"):
        deepdual.solve(X, y, beta=1.0, method="convex", patterns=np.ones((3, 5), bool))
    with pytest.raises(ValueError, match="n_patterns"):
        deepdual.solve(X, y, beta=1.0, method="convex", n_patterns=0)
    with pytest.raises(ValueError, match="solver"):
        deepdual.solve(X, y, beta=1.0, method="convex", solver="newton")
    Xc = X.copy()
    deepdual.solve(X, y, beta=1.0, method="convex")
    np.testing.assert_array_equal(X, Xc)  # inputs are not modified


def _two_relu_data(seed: int, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian X and a noisy difference of two ReLUs of its first coordinates."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, np.maximum(X[:, 0], 0) - np.maximum(X[:, 1], 0) + 0.1 * rng.standard_normal(n)


def test_sampled_patterns_network_at_most_program_optimum():
    # first-order solver on a sampled pattern set: it stops when its rebuilt network is
    # proven within tol of the sampled program's optimum (or below it: the network's
    # neurons need not keep the sampled patterns); the optimum is cvxpy's
    cp = pytest.importorskip("cvxpy")
    from references import convex_program_cvxpy

    X, y = _two_relu_data(21, 40, 5)
    beta = 0.5
    pats = sample_patterns(X, 12, 3)
    sol = deepdual.solve(X, y, beta=beta, method="convex", patterns=pats, solver="al", rtol=1e-4)
    prob, _, _ = convex_program_cvxpy(X, y, beta, "squared", pats)
    prob.solve(solver=cp.CLARABEL)
    assert prob.status == "optimal"
    # the program's values are honest (a feasible point's value above the optimum, a proven
    # bound below it), and "converged" only when that gap is within tol (test_al_status.py)
    info = sol.info
    assert info["restricted_lower_bound"] <= prob.value * (1 + 1e-7) <= info["restricted_objective"] * (1 + 2e-7)
    assert info["restricted_converged"] == (info["restricted_gap"] <= 0.5e-4)
    assert info["status"] in ("optimal", "network_bound_reached")
    obj = deepdual.objective(sol.network, X, y, beta=beta)
    assert obj == pytest.approx(sol.objective, rel=1e-12)
    # tol = rtol / 2; 1e-7 absorbs Clarabel's own accuracy
    assert obj <= prob.value * (1 + 0.5e-4 + 1e-7)
    assert sol.lower_bound <= obj


# ----------------------------------------------------------------------------- primal-dual method
def test_nesterov_todd_scaling_identities():
    # W lam = W^{-1} s (the scaled point), W^{-2} s = lam, the Jordan division inverts
    # the Jordan product, and the step to the boundary lands on the boundary
    from deepdual.relu.convex_program.conic_ipm import _soc_apply_W, soc_det, soc_div, _soc_hessian, soc_prod
    from deepdual.relu.convex_program.conic_ipm import soc_max_step, soc_nt_scaling

    rng = np.random.default_rng(30)
    G, q = 7, 4
    s, lam = rng.standard_normal((G, q)), rng.standard_normal((G, q))
    s[:, 0] = np.linalg.norm(s[:, 1:], axis=1) + rng.uniform(1e-3, 1.0, G)
    lam[:, 0] = np.linalg.norm(lam[:, 1:], axis=1) + rng.uniform(1e-3, 1.0, G)
    eta, wbar, v = soc_nt_scaling(s, lam)
    ell = _soc_apply_W(eta, v, lam)
    np.testing.assert_allclose(ell, _soc_apply_W(eta, v, s, inverse=True), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.einsum("gab,gb->ga", _soc_hessian(eta, wbar), s), lam, rtol=1e-9, atol=1e-12)
    d = rng.standard_normal((G, q))
    np.testing.assert_allclose(soc_prod(ell, soc_div(ell, d, soc_det(ell))), d, rtol=1e-9, atol=1e-12)
    dx = rng.standard_normal((G, q)) * 5
    a = soc_max_step(s, dx)
    assert np.isfinite(a) and a > 0
    on = s + a * dx
    assert np.min(soc_det(on)) == pytest.approx(0.0, abs=1e-9 * np.max(on[:, 0] ** 2))
    assert np.all(soc_det(s + 0.99 * a * dx) > 0) and np.all(s[:, 0] + 0.99 * a * dx[:, 0] > 0)


@pytest.mark.parametrize("n,d,beta,bias", [(10, 2, 0.1, False), (12, 3, 0.4, False), (10, 2, 0.05, True)])
def test_primal_dual_matches_cvxpy_to_1e7(n, d, beta, bias):
    rng = np.random.default_rng(40 + n + d)
    X = rng.standard_normal((n, d))
    y = np.abs(X[:, 0]) - X[:, 1] + 0.1 * rng.standard_normal(n)
    sol = deepdual.solve(X, y, beta=beta, bias=bias, method="convex", solver="ipm")
    assert sol.info["solver"] == "ipm" and sol.info["patterns_complete"]
    ref = _cvxpy_optimum(X, y, beta, "squared", bias)
    # Clarabel's own accuracy is ~1e-8 relative
    assert abs(sol.objective - ref) <= 1e-7 * abs(ref), (sol.objective, ref)
    assert sol.lower_bound <= ref * (1 + 1e-9)
    assert sol.certified and sol.relative_gap <= 1e-7
    # strictly feasible iterates: the network's objective is the convex objective
    assert sol.objective == pytest.approx(sol.info["convex_objective"], rel=1e-10)
    # the old primal barrier method is still reachable and agrees
    old = deepdual.solve(X, y, beta=beta, bias=bias, method="convex", solver="barrier")
    assert old.info["solver"] == "barrier"
    assert old.objective == pytest.approx(sol.objective, rel=1e-6)


def test_primal_dual_kkt_at_the_returned_network():
    # dual feasibility and complementary slackness of the returned network, checked
    # with the exact cone values: every pattern has c_{i,s}(v) <= beta for v = y - f(X),
    # and every neuron's own cell attains beta (its group is non-zero only where the
    # dual constraint is tight)
    rng = np.random.default_rng(41)
    n, d, beta = 12, 2, 0.2
    X = rng.standard_normal((n, d))
    y = np.abs(X[:, 0]) - X[:, 1] + 0.1 * rng.standard_normal(n)
    sol = deepdual.solve(X, y, beta=beta, method="convex", solver="ipm")
    v = y - sol.predict(X).ravel()
    rs = row_space(X)
    vals = [cone_value(rs.Xr, p.astype(float), s * v) for p in enumerate_patterns(X) for s in (1.0, -1.0)]
    assert max(vals) <= beta * (1 + 1e-7)
    (W1, W2), = sol.network.weights
    for j in range(W1.shape[1]):
        u, a = W1[:, j], float(W2[j, 0])
        act = X @ u >= 0
        # v^T D X u sign(alpha) = beta |u| (tight), and |u| = |alpha| (balanced)
        assert np.sign(a) * v @ (act * (X @ u)) == pytest.approx(beta * np.linalg.norm(u), rel=1e-6)
        assert abs(a) == pytest.approx(np.linalg.norm(u), rel=1e-9)
    assert sol.info["max_violation"] <= 1e-12 * np.abs(X).max() * np.abs(W1).max()


def test_primal_dual_solves_a_sampled_program_to_cvxpy():
    # sampled patterns: the primal-dual method solves the sampled program itself (its
    # network is feasible, so its objective is the program's), to Clarabel's optimum
    cp = pytest.importorskip("cvxpy")
    from references import convex_program_cvxpy

    X, y = _two_relu_data(42, 60, 6)
    beta = 0.5
    pats, dirs = sample_patterns(X, 15, 5, return_directions=True)
    sol = deepdual.solve(X, y, beta=beta, method="convex", patterns=(pats, dirs), polish=False)
    assert sol.info["solver"] == "ipm" and sol.info["restricted_converged"]
    prob, _, _ = convex_program_cvxpy(X, y, beta, "squared", pats)
    prob.solve(solver=cp.CLARABEL)
    assert prob.status == "optimal"
    assert abs(sol.objective - prob.value) <= 1e-7 * prob.value, (sol.objective, prob.value)
    assert sol.objective == pytest.approx(sol.info["convex_objective"], rel=1e-10)
    # the program's own proven lower bound is below cvxpy's optimum and closes the gap
    low = sol.info["restricted_lower_bound"]
    assert low <= prob.value * (1 + 1e-9)
    assert sol.info["restricted_objective"] - low <= 1e-6 * sol.objective
    # the same patterns without directions (interior points by LP) give the same program
    sol2 = deepdual.solve(X, y, beta=beta, method="convex", patterns=pats, polish=False)
    assert sol2.objective == pytest.approx(sol.objective, rel=1e-7)
    assert sol.lower_bound <= sol.objective and not sol.certified
    # default on sampled sets: local descent from the program's network, kept only if
    # better -- never above the program's optimum, and never below the global bound
    pol = deepdual.solve(X, y, beta=beta, method="convex", patterns=(pats, dirs))
    assert pol.info["restricted_objective"] == pytest.approx(prob.value, rel=1e-7)
    assert pol.objective <= prob.value * (1 + 1e-9)
    assert pol.objective == pytest.approx(deepdual.objective(pol.network, X, y, beta=beta), rel=1e-12)
    assert pol.lower_bound <= pol.objective
    if pol.objective < sol.objective:
        assert pol.info["objective_before_polish"] == pytest.approx(sol.objective, rel=1e-7)
        assert "local descent" in pol.info["note"]


def test_polish_option():
    rng = np.random.default_rng(44)
    X, y = rng.standard_normal((8, 2)), rng.standard_normal(8)
    with pytest.raises(ValueError, match="polish"):
        deepdual.solve(X, y, beta=0.5, method="convex", polish="yes")
    # complete pattern set: "auto" does not polish (the program is exact)
    sol = deepdual.solve(X, y, beta=0.5, method="convex")
    assert sol.info["patterns_complete"] and "objective_before_polish" not in sol.info and sol.certified


def test_patterns_with_directions_bad_input():
    rng = np.random.default_rng(43)
    X, y = rng.standard_normal((8, 2)), rng.standard_normal(8)
    pats, dirs = sample_patterns(X, 4, 0, return_directions=True)
    with pytest.raises(ValueError, match="directions"):
        deepdual.solve(X, y, beta=1.0, method="convex", patterns=(pats, dirs[:, :1]))
    with pytest.raises(ValueError, match="directions"):
        deepdual.solve(X, y, beta=1.0, method="convex", patterns=(pats, dirs[:2]))
    with pytest.raises(ValueError, match="tuple"):
        deepdual.solve(X, y, beta=1.0, method="convex", patterns=(pats, dirs, dirs))


def test_oracle_runs_after_a_sampled_solve_at_low_rank_beyond_the_strict_memory_budget():
    # n = 3000, rank 3: the oracle's ~5 MB exceed 3x the data (~1.3 MB), but at low rank it is admitted
    # (ORACLE_LOW_RANK_SLACK) because it changes the proven bound materially there
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 3))
    y = np.maximum(X @ rng.standard_normal(3), 0) - np.maximum(X @ rng.standard_normal(3), 0) \
        + 0.3 * rng.standard_normal(3000)
    with_oracle = deepdual.solve(X, y, beta=1.0, progress=False)
    spectral = deepdual.solve(X, y, beta=1.0, progress=False, oracle_time=0)
    how = with_oracle.info["dual_constraint_how"]
    assert "branch and bound over row signs" in how and "skipped" not in how, how
    assert with_oracle.lower_bound <= with_oracle.objective * (1 + 1e-12)
    # the same network's dual point, a smaller proven c(v): a larger bound
    assert with_oracle.info["dual_constraint"] <= spectral.info["dual_constraint"] * (1 + 1e-12)
    assert with_oracle.lower_bound > 10 * spectral.lower_bound
