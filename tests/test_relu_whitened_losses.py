"""Two-layer ReLU networks on whitened data under the cross-entropy loss
(deepdual.relu.whitened.losses; docs/losses.md, whitened section)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import deepdual
from deepdual.losses import CrossEntropyLoss
from deepdual.relu.whitened.losses import THEOREM, class_constant_constraint

from restarts import best_of_restarts

#: agreement with cvxpy: CLARABEL's default tolerances give ~1e-8 relative on these sizes
CVX_RTOL = 1e-6
#: the certified gap asked of the closed form (it is zero up to rounding, ~1e-15)
GAP_RTOL = 1e-6


def _whitened(rng, n, d):
    Q, _ = np.linalg.qr(rng.standard_normal((d, n)))
    return Q.T  # X X^T = I_n


def _cvxpy_atoms(cp, Y, beta, Z):
    r"""min_W ce(Z W, Y) + beta sum_a ||W_a||: two-layer networks whose neurons output the
    fixed non-negative unit vectors Z[:, a] (u_a = X^T z_a, X u_a = z_a), each with a free
    output vector W_a (balanced weight decay = beta * path norm).  Any finite atom set gives
    an upper bound on the optimum; with the class indicators among them it reaches it."""
    W = cp.Variable((Z.shape[1], Y.shape[1]))
    F = Z @ W
    ce = cp.sum(cp.log_sum_exp(F, axis=1)) - cp.sum(cp.multiply(Y, F))
    prob = cp.Problem(cp.Minimize(ce + beta * cp.sum(cp.norm(W, 2, axis=1))))
    prob.solve(solver="CLARABEL")
    return float(prob.value)


@pytest.mark.parametrize("labels, beta", [
    (np.array([0, 0, 1, 1, 1, 2]), 0.4),
    (np.array([0, 1, 2, 0, 1, 2]), 0.9),   # class 0, 1, 2 active at different thresholds
    (np.array([0, 0, 0, 2, 2, 0]), 0.6),   # an empty class (label 1 absent)
    (np.array([1, 0, 1, 1, 0, 1]), 1.2),   # K = 2, one class inactive
])
def test_agrees_with_cvxpy_over_all_subset_atoms(labels, beta):
    """The closed form equals the convex problem over a rich atom dictionary (all 2^n - 1
    normalized subset indicators and 40 random non-negative unit vectors, each with a
    free output direction) to 1e-6, and that problem never goes below the lower bound."""
    cp = pytest.importorskip("cvxpy")
    rng = np.random.default_rng(int(beta * 10) + labels.size)
    n, d = labels.size, 9
    X = _whitened(rng, n, d)
    Y = np.eye(labels.max() + 1)[labels]
    subsets = [np.array(s, float) for s in itertools.product([0, 1], repeat=n) if any(s)]
    rand = np.abs(rng.standard_normal((40, n))) * (rng.random((40, n)) < 0.7)
    Z = np.array([a / np.linalg.norm(a) for a in subsets + [r for r in rand if r.any()]]).T
    ref = _cvxpy_atoms(cp, Y, beta, Z)
    sol = deepdual.solve(X, labels, beta=beta, loss="cross_entropy")
    assert sol.method == THEOREM
    assert sol.objective == pytest.approx(ref, rel=CVX_RTOL)
    assert sol.lower_bound <= ref * (1 + 1e-9)  # weak duality against an independent feasible value
    assert sol.certified and sol.relative_gap <= GAP_RTOL


@pytest.mark.parametrize("K, n, d", [(2, 9, 12), (3, 15, 20), (5, 40, 60)])
@pytest.mark.parametrize("beta", [0.05, 0.7, 2.0, 50.0])
def test_certified_zero_gap_and_optimality_conditions(K, n, d, beta):
    """Certified to 1e-6 (the gap is rounding); the returned network's objective is
    deepdual.objective; the dual point is -grad loss(F) (Fenchel--Young equality) and
    satisfies the exact whitened constraint max_{z>=0,||z||<=1} ||V^T z|| <= beta."""
    rng = np.random.default_rng(K * 100 + n)
    X = _whitened(rng, n, d)
    labels = np.concatenate([np.arange(K), rng.integers(0, K, n - K)])
    sol = deepdual.solve(X, labels, beta=beta, loss="cross_entropy")
    assert sol.method == THEOREM
    assert sol.certified and sol.relative_gap <= GAP_RTOL
    assert sol.objective == deepdual.objective(sol.network, X, labels, beta=beta, loss="cross_entropy")
    Y = np.eye(K)[labels]
    V = sol.dual
    G = np.asarray(CrossEntropyLoss().gradient(sol.network.forward(X), Y))
    assert np.allclose(V, -G, atol=1e-10)  # stationarity: V is the network's own residual
    rows = np.array([V[labels == j][0] for j in range(K)])
    c, exact = class_constant_constraint(rows, np.bincount(labels, minlength=K))
    assert exact and c <= beta * (1 + 1e-12)
    # the constraint value is attained by a class indicator ...
    j = int(np.argmax(np.bincount(labels, minlength=K) * np.sum(rows ** 2, axis=1)))
    z = (labels == j) / np.sqrt(np.sum(labels == j))
    assert np.linalg.norm(V.T @ z) == pytest.approx(c, rel=1e-12)
    # ... and never exceeded by other non-negative unit z (it is an upper bound)
    Zs = np.abs(rng.standard_normal((2000, n))) * (rng.random((2000, n)) < 0.5)
    Zs = Zs[Zs.any(axis=1)]
    Zs /= np.linalg.norm(Zs, axis=1, keepdims=True)
    assert np.max(np.linalg.norm(Zs @ V, axis=1)) <= c * (1 + 1e-12)


def test_lower_bound_below_best_of_restarts():
    """Direct training (L-BFGS, best of restarts) never beats the lower bound, and comes
    close to the closed-form objective."""
    rng = np.random.default_rng(3)
    labels = np.array([0, 1, 2, 0, 1, 2, 2])
    X = _whitened(rng, labels.size, 10)
    Y = np.eye(3)[labels]
    beta = 0.5
    sol = deepdual.solve(X, Y, beta=beta, loss="cross_entropy")
    best = best_of_restarts(X, Y, beta=beta, depth=2, width=6, restarts=3, loss="cross_entropy", iters=300)
    assert sol.lower_bound <= best * (1 + 1e-9)
    assert best <= sol.objective * (1 + 1e-3)  # training reaches the optimum (loose: L-BFGS accuracy)


def test_integer_and_one_hot_labels_give_the_same_network_and_predict_works():
    rng = np.random.default_rng(4)
    labels = np.array([2, 0, 1, 1, 2, 0, 2, 1])
    X = _whitened(rng, labels.size, 11)
    beta = 0.3
    a = deepdual.solve(X, labels, beta=beta, loss="cross_entropy")
    b = deepdual.solve(X, np.eye(3)[labels], beta=beta, loss="cross_entropy")
    assert a.objective == pytest.approx(b.objective, rel=1e-14)
    assert a.lower_bound == pytest.approx(b.lower_bound, rel=1e-14)
    for sol in (a, b):
        F = sol.predict(X)
        assert F.shape == (labels.size, 3)  # logits, one column per class, also for integer labels
        assert np.array_equal(np.argmax(F, axis=1), labels)  # small beta: every class active
        assert sol.network.predict(X[:3]).shape == (3, 3)
    # merged (parallel=False) and wider sub-networks: same output and objective
    for opts in ({"parallel": False}, {"width": 3}, {"method": "whitened"}):
        s = deepdual.solve(X, labels, beta=beta, loss="cross_entropy", **opts)
        assert s.objective == pytest.approx(a.objective, rel=1e-12) and s.certified
        assert np.allclose(s.predict(X), a.predict(X), atol=1e-12)
    assert deepdual.solve(X, labels, beta=beta, loss="cross_entropy", parallel=False).network.n_subnetworks == 1


def test_large_beta_gives_the_zero_network():
    """beta >= sqrt(n_j (K-1)/K) for every class: f = 0 is optimal, value n log K."""
    rng = np.random.default_rng(5)
    labels = np.array([0, 1, 2, 0, 1, 2])
    X = _whitened(rng, 6, 8)
    sol = deepdual.solve(X, labels, beta=np.sqrt(2 * 2 / 3) * 1.01, loss="cross_entropy")
    assert np.allclose(sol.predict(X), 0.0)
    assert sol.objective == pytest.approx(6 * np.log(3), rel=1e-14) and sol.certified


def test_bad_input_and_uncovered_cases_still_error():
    rng = np.random.default_rng(6)
    X = _whitened(rng, 6, 9)
    labels = np.arange(6) % 3
    with pytest.raises(ValueError, match="cross_entropy"):
        deepdual.solve(X, np.array([0, 1, 2, 0, 1, 0.5]), beta=0.3, loss="cross_entropy")
    with pytest.raises(ValueError, match="cross_entropy"):
        deepdual.solve(X, np.array([0, 1, 2, 0, 1, -1]), beta=0.3, loss="cross_entropy")
    with pytest.raises(ValueError, match="beta"):
        deepdual.solve(X, labels, beta=-1.0, loss="cross_entropy")
    with pytest.raises(ValueError, match="whitened"):  # explicit method on non-whitened data
        deepdual.solve(2 * X, labels, beta=0.3, method="whitened", loss="cross_entropy")
    with pytest.raises(ValueError, match="bias"):
        deepdual.solve(X, labels, beta=0.3, method="whitened", bias=True, loss="cross_entropy")
    with pytest.raises(TypeError, match="unknown_option"):
        deepdual.solve(X, labels, beta=0.3, loss="cross_entropy", unknown_option=1)
    with pytest.raises(ValueError, match="width"):
        deepdual.solve(X, labels, beta=0.3, loss="cross_entropy", width=0)
    with pytest.raises(TypeError, match="parallel"):
        deepdual.solve(X, labels, beta=0.3, loss="cross_entropy", parallel="no")
    # depth >= 3 and the norm-constrained form are not covered: explicit errors naming the loss
    with pytest.raises(ValueError, match="cross_entropy"):
        deepdual.solve(X, labels, beta=0.3, depth=3, loss="cross_entropy")
    with pytest.raises(ValueError, match="cross_entropy"):
        deepdual.solve(X, labels, beta=0.3, method="whitened", loss="cross_entropy", formulation="norm_constrained")
    Xc = X.copy()
    deepdual.solve(X, labels, beta=0.3, loss="cross_entropy")
    assert np.array_equal(X, Xc)  # inputs not modified
