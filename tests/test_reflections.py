"""Deep narrow ReLU networks on 1-D data as Lasso models (arXiv 2403.01046), architecture="deep_narrow".

References: cvxpy on the paper's own dictionary (reflection features included) and the best of
20 restarts of full-batch float64 L-BFGS training of the same architecture under the same
l_L penalty.  docs/one_dimensional.md §10.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import deepdual
from deepdual.exact_centering import center_exactly
from deepdual.relu.one_dimensional import reflections as R
from restarts import lbfgs_minimize


def _data(seed, n, ties=False):
    rng = np.random.default_rng(seed)
    x = np.round(rng.uniform(-2, 2, n), 3)
    if ties:
        x[:2] = x[2:4]
    y = np.sin(2 * x) + 0.3 * rng.standard_normal(n)
    return x, y


def _cvxpy_lasso(A, y, beta):
    cp = pytest.importorskip("cvxpy")
    z, xi = cp.Variable(A.shape[1]), cp.Variable()
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(A @ z + xi - y) + beta * cp.norm1(z)))
    prob.solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    return prob.value, z.value


@pytest.mark.parametrize("seed,n,beta,ties", [(0, 6, 0.1, False), (1, 7, 0.02, True), (2, 6, 1.0, False)])
def test_solver_matches_cvxpy_on_the_papers_dictionary(seed, n, beta, ties):
    x, y = _data(seed, n, ties)
    for L in (3, 4):
        sol = deepdual.solve(x[:, None], y, beta=beta, depth=L, bias=True, architecture="deep_narrow")
        A, labels = R.paper_dictionary(x, L)
        ref, _ = _cvxpy_lasso(A, y, beta)
        assert sol.certified
        assert sol.lower_bound <= sol.objective
        assert abs(sol.objective - ref) <= 1e-6 * abs(ref)
        # the reference is a feasible Lasso point: never below the proven bound
        assert ref >= sol.lower_bound - 1e-9 * abs(ref)


def test_reflection_features_are_in_the_dictionary_and_never_strictly_needed():
    x, y = _data(5, 6)
    beta = 0.05
    A, labels = R.paper_dictionary(x, 4)
    refl = np.array([lab[3] for lab in labels])
    assert refl.sum() == refl.size // 2
    # some reflection feature has its first kink off the data, at 2 a_k - a_j
    firsts = np.array([lab[1] for lab in labels])[refl]
    assert np.any(~np.isin(firsts, x))
    assert set(np.round(R.reflection_points(x), 9)) >= set(np.round(firsts[~np.isin(firsts, x)], 9))
    full, _ = _cvxpy_lasso(A, y, beta)
    data_only, _ = _cvxpy_lasso(A[:, ~refl], y, beta)
    three, _ = _cvxpy_lasso(R.paper_dictionary(x, 3)[0], y, beta)
    # same optimum with or without the reflections, and at depth 3 (docs §10)
    assert abs(full - data_only) <= 1e-6 * full
    assert abs(full - three) <= 1e-6 * full


@pytest.mark.parametrize("L", [3, 4, 5])
def test_reconstruction_objective_equals_lasso_value_and_kinks_at_data(L):
    x, y = _data(7, 25)
    X = x[:, None].copy()
    sol = deepdual.solve(X, y, beta=0.03, depth=L, bias=True, architecture="deep_narrow")
    assert np.array_equal(X[:, 0], x)  # input not modified
    net = sol.network
    assert R.is_deep_narrow(net) and net.depth == L
    lasso = sol.info["lasso_value"]
    obj = deepdual.objective(net, X, y, beta=0.03, regularization="l_L")
    assert abs(obj - lasso) <= 1e-9 * abs(lasso)
    assert abs(sol.objective - obj) <= 1e-12 * abs(obj)
    # every chain is balanced: |w| equal over its layers (AM-GM equality)
    for layers in net.weights:
        mods = np.array([abs(W[0, 0]) for W in layers])
        assert np.allclose(mods, mods[0], rtol=1e-12)
    # kinks: first layer at -b/w, second where g1 reaches its threshold; all at data points
    for layers, bs in zip(net.weights, net.biases):
        w1, b1, w2, b2 = layers[0][0, 0], bs[0][0], layers[1][0, 0], bs[1][0]
        t = -b1 / w1
        t2 = t + np.sign(w1) * (-b2 / w2) / abs(w1)
        assert np.min(np.abs(x - t)) <= 1e-9 and np.min(np.abs(x - t2)) <= 1e-9


def test_all_depths_at_least_three_share_the_optimum_and_it_beats_two_layers():
    x, y = _data(11, 20)
    vals = [deepdual.solve(x[:, None], y, beta=0.1, depth=L, bias=True, architecture="deep_narrow").objective
            for L in (3, 4, 6)]
    assert max(vals) - min(vals) <= 1e-9 * vals[0]
    two = deepdual.solve(x[:, None], y, beta=0.1, bias=True)  # L = 2: l_2 penalty is weight decay
    assert vals[0] <= two.objective + 1e-12


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 9))
def test_exact_constraint_bounds_every_unit_chain(seed, n):
    """c(v) is the max over the paper's L = 3 dictionary (exact) and bounds random chains of
    depth 3-5 with real breakpoints (a falsification check; the proof is in docs §10)."""
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-1, 1, n))
    v = center_exactly(rng.standard_normal((n, 1)))[:, 0]
    c = R.c_deep_narrow(x, v)
    A, _ = R.paper_dictionary(x, 3)
    best = float(np.max(np.abs(v @ A)))  # float matmul: compare up to its rounding
    assert best * (1 - 1e-12) <= c <= best + 1e-9 * (1 + best)
    for _ in range(30):
        L = int(rng.integers(3, 6))
        signs = tuple(int(s) for s in rng.choice([-1, 1], L - 1))
        breaks = (float(rng.uniform(-2, 2)),) + tuple(float(a) for a in rng.uniform(-2, 2, L - 2))
        h = R.unit_chain(x, signs, breaks)
        assert abs(float(v @ h)) <= c * (1 + 1e-12)


def test_clip_decomposition_has_the_least_cost():
    rng = np.random.default_rng(4)
    u = np.sort(rng.uniform(-1, 1, 12))
    g = rng.standard_normal(12)
    const, a, b, z = R.min_norm_clips(u, g)
    rebuilt = const + sum(zi * np.minimum(np.maximum(u - ai, 0), bi - ai) for ai, bi, zi in zip(a, b, z))
    assert np.allclose(rebuilt, g, atol=1e-12)
    assert abs(np.sum(np.abs(z)) - R.clip_cost(u, g)) <= 1e-12 * np.sum(np.abs(z))
    # half the padded total variation of the slopes is a lower bound for any clip decomposition:
    # a clip changes the padded slope sequence at two places by |z|
    s = np.concatenate([[0], np.diff(g) / np.diff(u), [0]])
    assert np.isclose(R.clip_cost(u, g), 0.5 * np.sum(np.abs(np.diff(s))))


def _train_deep_narrow(x, y, *, beta, depth, m, seed, iters=300):
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(int(seed))
    xt = torch.as_tensor(x, dtype=torch.float64)[:, None]
    yt = torch.as_tensor(y, dtype=torch.float64)
    W = torch.randn(m, depth, generator=g, dtype=torch.float64).requires_grad_()
    B = 0.5 * torch.randn(m, depth - 1, generator=g, dtype=torch.float64)
    # first-layer kinks inside the data's range
    lo, hi = float(np.min(x)), float(np.max(x))
    B[:, 0] = -W.detach()[:, 0] * (lo + (hi - lo) * torch.rand(m, generator=g, dtype=torch.float64))
    B.requires_grad_()
    xi = torch.zeros(1, dtype=torch.float64, requires_grad=True)

    def obj():
        a = xt.expand(-1, m)
        for l in range(depth - 1):
            a = torch.relu(a * W[:, l] + B[:, l])
        f = a @ W[:, depth - 1] + xi
        return 0.5 * ((f - yt) ** 2).sum() + beta / depth * (W.abs() ** depth).sum()

    lbfgs_minimize(obj, [W, B, xi], iters)
    Wn, Bn = W.detach().numpy(), B.detach().numpy()
    return deepdual.Network([[np.array([[Wn[j, l]]]) for l in range(depth)] for j in range(m)], "relu",
                            biases=[[np.array([Bn[j, l]]) for l in range(depth - 1)] for j in range(m)],
                            output_bias=xi.detach().numpy().copy())


@pytest.mark.parametrize("L", [3, 4])
def test_training_of_the_same_architecture_never_beats_the_certified_bound(L):
    pytest.importorskip("torch")
    x, y = _data(5, 7)
    beta = 0.1
    sol = deepdual.solve(x[:, None], y, beta=beta, depth=L, bias=True, architecture="deep_narrow")
    assert sol.certified
    best = np.inf
    for seed in range(20):
        net = _train_deep_narrow(x, y, beta=beta, depth=L, m=6, seed=seed)
        val = deepdual.objective(net, x[:, None], y, beta=beta, regularization="l_L")
        assert val >= sol.lower_bound - 1e-9 * abs(sol.lower_bound)
        cert = deepdual.certify(net, x[:, None], y, beta=beta, regularization="l_L")
        assert cert.lower_bound <= sol.objective + 1e-9 and abs(cert.objective - val) <= 1e-12 * val
        best = min(best, val)
    assert best <= sol.objective * (1 + 1e-3)


def test_certify_uses_the_recorded_penalty_and_refuses_contradictions(tmp_path):
    x, y = _data(8, 15)
    sol = deepdual.solve(x[:, None], y, beta=0.2, depth=4, bias=True, architecture="deep_narrow")
    assert sol.network.problem["regularization"] == "l_L"
    assert "architecture" in sol.method or "within the architecture" in sol.method
    path = tmp_path / "net.npz"
    sol.network.save(path)
    net = deepdual.Network.load(path)
    cert = deepdual.certify(net, x[:, None], y)
    assert cert.certified and abs(cert.objective - sol.objective) <= 1e-12 * sol.objective
    with pytest.raises(ValueError, match="regularization"):
        deepdual.certify(net, x[:, None], y, regularization="weight_decay")
    # the weight-decay objective of the same network is a different number
    wd = deepdual.objective(net, x[:, None], y, beta=0.2, regularization="weight_decay")
    assert wd != pytest.approx(sol.objective, rel=1e-6)


def test_bad_input():
    x, y = _data(9, 10)
    X = x[:, None]
    with pytest.raises(ValueError, match="deep_narrow"):
        deepdual.solve(X, y, beta=0.1, depth=3, bias=True, architecture="mirror")
    with pytest.raises(ValueError, match="depth >= 3"):
        deepdual.solve(X, y, beta=0.1, depth=2, bias=True, method="one_dimensional", architecture="deep_narrow")
    with pytest.raises(ValueError, match="squared"):
        deepdual.solve(X, np.sign(y), beta=0.1, depth=3, bias=True, loss="logistic", architecture="deep_narrow")
    with pytest.raises(ValueError, match="beta"):
        deepdual.solve(X, y, beta=-1.0, depth=3, bias=True, architecture="deep_narrow")
    with pytest.raises(ValueError):
        deepdual.solve(np.where(np.arange(10) == 3, np.nan, x)[:, None], y, beta=0.1, depth=3, bias=True,
                       architecture="deep_narrow")
    wide = deepdual.Network([[np.ones((1, 2)), np.ones((2, 2)), np.ones((2, 1))]], "relu")
    with pytest.raises(ValueError, match="deep narrow"):
        deepdual.certify(wide, X, y, beta=0.1, regularization="l_L")
    with pytest.raises(ValueError, match="regularization"):
        deepdual.objective(wide, X, y, beta=0.1, regularization="l3")
    with pytest.raises(ValueError, match="penalize_biases"):
        deepdual.objective(wide, X, y, beta=0.1, regularization="l_L", penalize_biases=True)
    with pytest.raises(ValueError, match="depth"):
        R.paper_dictionary(x, 5)


@pytest.mark.parametrize("beta", [1e-3, 1.0])
def test_thousand_points_certified_and_certify_accepts_cli_options(beta):
    rng = np.random.default_rng(12)
    x = rng.uniform(-2, 2, 1000)
    y = np.sin(3 * x) + 0.3 * rng.standard_normal(1000)
    x[:10] = x[10:20]  # ties
    sol = deepdual.solve(x[:, None], y, beta=beta, depth=4, bias=True, architecture="deep_narrow")
    assert sol.certified and sol.lower_bound <= sol.objective
    assert abs(sol.objective - sol.info["lasso_value"]) <= 1e-9 * sol.objective
    cert = deepdual.certify(sol.network, x[:, None], y, time_limit=5, progress=False)
    assert cert.certified and cert.lower_bound <= sol.objective + 1e-12 * sol.objective


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 8), logbeta=st.floats(-3, 1), ties=st.booleans())
def test_solver_matches_cvxpy_on_clipped_ramps_property(seed, n, logbeta, ties):
    """Random small data (ties allowed): the certified solver equals cvxpy on the Lasso over all
    clipped ramps and ramps between data points (docs §10.2), and its bound is below cvxpy's value."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.uniform(-1, 1, n), 2)
    if ties and n >= 3:
        x[0] = x[1]
    y = rng.standard_normal(n)
    beta = 10.0 ** logbeta
    u = np.unique(x)
    cols = [np.minimum(np.maximum(x - a, 0), b - a) for i, a in enumerate(u) for b in u[i + 1:]]
    cols += [np.maximum(x - a, 0) for a in u] + [np.maximum(a - x, 0) for a in u]
    ref, _ = _cvxpy_lasso(np.column_stack(cols), y, beta)
    sol = deepdual.solve(x[:, None], y, beta=beta, depth=3, bias=True, architecture="deep_narrow")
    assert sol.certified
    assert abs(sol.objective - ref) <= 1e-6 * max(abs(ref), 1e-12)
    assert sol.lower_bound <= ref + 1e-9 * abs(ref)
