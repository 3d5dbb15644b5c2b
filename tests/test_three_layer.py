"""Parallel three-layer ReLU networks (docs/three_layer.md; Ergen & Pilanci, arXiv 2110.05518).

References: cvxpy on the same convex program (all second-layer sign patterns, first-layer
sectors found on a fine grid of directions), and many-restart full-batch L-BFGS training of
the same architecture (unit-norm first layers), which must never beat the certified bound.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deepdual
from deepdual.relu.three_layer.constraint import FirstLayer, second_layer_constraint
from deepdual.relu.three_layer.solver import nonnegative_lasso, three_layer_objective
from restarts import lbfgs_minimize


def data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 2)), rng.standard_normal(n)


def grid_patterns(X: np.ndarray, m: int = 20000) -> np.ndarray:
    """First-layer patterns 1[X u > 0] over a fine grid of directions (independent of the solver)."""
    ang = np.linspace(0, 2 * np.pi, m, endpoint=False) + 1e-7
    P = (X @ np.vstack([np.cos(ang), np.sin(ang)]) > 0).T
    P = np.unique(P, axis=0)
    return P[P.any(axis=1)]


def cvxpy_program(X: np.ndarray, y: np.ndarray, beta: float) -> float:
    """The convex program over (second-layer pattern E, sign, first-layer pattern D, sign) groups."""
    cp = pytest.importorskip("cvxpy")
    sp = pytest.importorskip("scipy.sparse")
    n, d = X.shape
    pats = grid_patterns(X).astype(float)
    P = len(pats)
    # one block: 2P groups (pattern, sign sigma) of d variables; g = sum sigma D X q
    M = np.hstack([s * (Dp[:, None] * X) for s in (1.0, -1.0) for Dp in pats])  # (n, 2P d)
    C = sp.block_diag([(2 * Dp - 1)[:, None] * X for s in (1.0, -1.0) for Dp in pats])  # cones
    Es = [np.array(e, float) for e in itertools.product((0, 1), repeat=n)]
    blocks = [(eps, E) for E in Es for eps in (1.0, -1.0)]
    B = len(blocks)
    G = 2 * P
    z = cp.Variable(B * G * d)
    F = sp.hstack([sp.csr_matrix(eps * E[:, None] * M) for eps, E in blocks])
    cones = sp.block_diag([C] * B)
    second = sp.block_diag([sp.csr_matrix((2 * E - 1)[:, None] * M) for _, E in blocks])
    norms = cp.norm(cp.reshape(z, (d, B * G), order="F"), 2, axis=0)
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(F @ z - y) + beta * cp.sum(norms)),
                      [cones @ z >= 0, second @ z >= 0])
    prob.solve(solver=cp.CLARABEL)
    return float(prob.value)


def train_three_layer(X, y, *, beta, K, m1, seed, iters=300):
    """Full-batch L-BFGS on the paper's objective, W1 = V / ||V||_F (unit norm); returns a Network."""
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(seed)
    Xt = torch.as_tensor(X)
    yt = torch.as_tensor(y)
    d = X.shape[1]
    V = torch.randn(K, d, m1, generator=g, dtype=torch.float64).requires_grad_()
    w2 = (torch.randn(K, m1, generator=g, dtype=torch.float64) / np.sqrt(m1)).requires_grad_()
    w3 = torch.randn(K, generator=g, dtype=torch.float64).requires_grad_()

    def parts():
        W1 = V / V.flatten(1).norm(dim=1)[:, None, None]
        h = torch.relu(torch.einsum("nd,kdm->knm", Xt, W1))
        a = torch.relu(torch.einsum("knm,km->kn", h, w2))
        return W1, (a * w3[:, None]).sum(0)

    def obj():
        _, f = parts()
        return 0.5 * ((f - yt) ** 2).sum() + 0.5 * beta * ((w2 ** 2).sum() + (w3 ** 2).sum())

    lbfgs_minimize(obj, [V, w2, w3], iters)
    W1, _ = parts()
    W1 = W1.detach().numpy()
    return deepdual.Network([[W1[k], w2.detach().numpy()[k][:, None], w3.detach().numpy()[[k]][:, None]]
                             for k in range(K)], "relu", scalar_output=True)


def test_matches_cvxpy_on_the_same_program():
    X, y = data(5, 0)
    beta = 0.4
    sol = deepdual.solve(X, y, beta=beta, depth=3, method="convex", formulation="norm_constrained")
    assert sol.certified
    ref = cvxpy_program(X, y, beta)
    assert abs(sol.objective - ref) <= 1e-5 * (1 + ref)
    assert sol.lower_bound <= ref * (1 + 1e-7)


@pytest.fixture(scope="module")
def solved():
    X, y = data(8, 1)
    return X, y, deepdual.solve(X, y, beta=0.5, depth=3, method="convex", formulation="norm_constrained")


def test_network_attains_the_program_value(solved):
    X, y, sol = solved
    assert sol.certified and sol.network.depth == 3
    assert abs(three_layer_objective(sol.network, X, y, beta=0.5) - sol.objective) <= 1e-10 * (1 + sol.objective)
    for W1, w2, w3 in sol.network.weights:
        assert np.linalg.norm(W1) <= 1 + 1e-12 and w2.shape[1] == 1 and w3.shape == (1, 1)
    # the network records its formulation: deepdual.objective reports the paper's objective, and
    # plain weight decay on the same weights adds beta/2 ||W1k||^2 = beta/2 per sub-network
    assert sol.network.problem["formulation"] == "norm_constrained"
    assert deepdual.objective(sol.network, X, y, beta=0.5) == pytest.approx(sol.objective, rel=1e-12)
    plain = sol.network.copy()
    plain.problem = None
    wd = deepdual.objective(plain, X, y, beta=0.5)
    assert wd == pytest.approx(sol.objective + 0.25 * len(sol.network.weights), rel=1e-9)


def test_restarts_never_beat_the_certified_bound(solved):
    X, y, sol = solved
    beta = 0.5
    vals = [three_layer_objective(train_three_layer(X, y, beta=beta, K=4, m1=3, seed=s, iters=200), X, y, beta=beta)
            for s in range(20)]
    assert min(vals) >= sol.lower_bound * (1 - 1e-9)
    assert min(vals) <= sol.objective * (1 + 1e-3)  # training reaches it: the comparison is not vacuous


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), J=st.integers(1, 4))
def test_constraint_bound_above_every_atom(seed, J):
    """The branch-and-bound upper bound on max_h v^T (h)_+ is never below the value of a random h in H."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((6, 2))
    v = rng.standard_normal(6)
    res = second_layer_constraint(FirstLayer(X), v)
    U = rng.standard_normal((2, J))
    U /= np.linalg.norm(U, axis=0)
    gam = rng.standard_normal(J)
    gam /= np.abs(gam).sum()
    h = np.maximum(X @ U, 0.0) @ gam
    assert float(v @ np.maximum(h, 0.0)) <= res.upper * (1 + 1e-12) + 1e-15
    assert res.lower <= res.upper * (1 + 1e-12) + 1e-15


def test_nonnegative_lasso_kkt():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((6, 15))
    A[:, 5:10] = A[:, :5] * 2.0  # dependent columns
    y = rng.standard_normal(6)
    c = nonnegative_lasso(A, y, 0.3)
    g = A.T @ (A @ c - y) + 0.3
    assert np.all(c >= 0)
    assert np.max(np.abs(g[c > 0]), initial=0.0) <= 1e-10
    assert np.min(g[c == 0], initial=0.0) >= -1e-10


def test_bad_input():
    X, y = data(6, 2)
    with pytest.raises(ValueError, match="bias"):
        deepdual.solve(X, y, beta=0.5, depth=3, method="convex", formulation="norm_constrained", bias=True)
    with pytest.raises(ValueError, match="squared"):
        deepdual.solve(X, np.sign(y), beta=0.5, depth=3, method="convex", formulation="norm_constrained", loss="logistic")
    with pytest.raises(ValueError, match="one output"):
        deepdual.solve(X, np.column_stack([y, y]), beta=0.5, depth=3, method="convex", formulation="norm_constrained")
    with pytest.raises((ValueError, TypeError), match="nonsense"):
        deepdual.solve(X, y, beta=0.5, depth=3, method="convex", formulation="norm_constrained", nonsense=1)
    with pytest.raises(ValueError, match="architecture"):
        deepdual.solve(X, y, beta=0.5, depth=3, method="convex", formulation="norm_constrained", architecture="standard")


def test_certify_three_layer(solved):
    from deepdual.relu.three_layer.certificate import certify_three_layer

    X, y, sol = solved
    cert = certify_three_layer(sol.network, X, y, beta=0.5)
    assert cert.certified and cert.exact_constraint
    net = train_three_layer(X, y, beta=0.5, K=2, m1=2, seed=0, iters=50)
    cert = certify_three_layer(net, X, y, beta=0.5)
    # a proven bound on the optimum: below the certified optimum, and the gap is the network's
    assert cert.lower_bound <= sol.objective * (1 + 1e-9)
    assert cert.objective >= sol.lower_bound * (1 - 1e-9)


def test_certify_routes_to_the_three_layer_constraint(solved, tmp_path):
    """deepdual.certify of a recorded three-layer network (and of any depth-3 network with
    formulation="norm_constrained") uses the exact three-layer dual constraint; the record
    survives Network.save / Network.load."""
    X, y, sol = solved
    sol.network.save(tmp_path / "net.npz")
    loaded = deepdual.Network.load(tmp_path / "net.npz")
    assert loaded.problem == sol.network.problem
    cert = deepdual.certify(loaded, X, y)
    assert cert.certified and cert.exact_constraint and "second-layer patterns" in cert.method
    assert cert.objective == pytest.approx(sol.objective, rel=1e-12)
    net = train_three_layer(X, y, beta=0.5, K=2, m1=2, seed=1, iters=50)
    cert = deepdual.certify(net, X, y, beta=0.5, formulation="norm_constrained")
    assert cert.exact_constraint and cert.lower_bound <= sol.objective * (1 + 1e-9)
    assert cert.objective == pytest.approx(three_layer_objective(net, X, y, beta=0.5), rel=1e-12)
    # the weight-decay certificate of the same weights is a different (weaker-class) statement
    assert "second-layer patterns" not in deepdual.certify(net, X, y, beta=0.5).method
    with pytest.raises(ValueError, match="formulation"):
        deepdual.certify(net, X, y, beta=0.5, formulation="unit_norm")
    big = deepdual.Network([[2 * W1, w2, w3] for W1, w2, w3 in net.weights], "relu")
    with pytest.raises(ValueError, match="norm"):  # ||W1k|| > 1 is outside the formulation
        deepdual.certify(big, X, y, beta=0.5, formulation="norm_constrained")


def test_stopped_early_still_bounds(solved):
    X, y, sol = solved
    early = deepdual.solve(X, y, beta=0.5, depth=3, method="convex", formulation="norm_constrained", max_iter=2)
    assert not early.certified and "max_iter" in early.info["note"]
    assert early.lower_bound <= sol.objective * (1 + 1e-9)
    assert early.objective >= sol.lower_bound * (1 - 1e-9)


def test_enumerated_and_sampled_patterns_beyond_the_plane():
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((7, 3)), rng.standard_normal(7)
    sol = deepdual.solve(X, y, beta=0.5, depth=3, method="convex", formulation="norm_constrained")
    assert sol.info["patterns"].startswith("complete") and sol.certified
    assert abs(three_layer_objective(sol.network, X, y, beta=0.5) - sol.objective) <= 1e-10 * (1 + sol.objective)
    # sampled first-layer patterns: the sampled program's own bound closes, the global one is the norm bound
    Xs, ys = rng.standard_normal((7, 4)), rng.standard_normal(7)
    smp = deepdual.solve(Xs, ys, beta=1.0, depth=3, method="convex", formulation="norm_constrained", max_patterns=10, n_patterns=10)
    assert smp.info["patterns"].startswith("sampled") and not smp.certified
    assert smp.lower_bound <= smp.info["sampled_program_lower_bound"] <= smp.objective * (1 + 1e-9)
    assert smp.info["sampled_program_lower_bound"] >= smp.objective * (1 - 1e-6)
