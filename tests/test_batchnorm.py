"""BatchNorm before the last layer (docs/theory.md §2.7): closed form, weak duality, neural collapse.

References the closed form against (i) its own proven dual bound, (ii) best-of-restarts
direct training of the same BN network on the same objective, (iii) PyTorch's
``BatchNorm1d`` for the normalization convention.
"""

from __future__ import annotations

import numpy as np
import pytest

import deepdual
from deepdual.relu.batchnorm.solver import (
    BatchNormNetwork,
    batchnorm_dual,
    batchnorm_objective,
    certify_batchnorm,
    neural_collapse_metrics,
    simplex_etf_gram,
    solve_batchnorm,
    train_batchnorm,
)


def _huber(t, beta):
    t = np.asarray(t, float)
    return np.where(t <= beta, 0.5 * t**2, beta * t - 0.5 * beta**2)


def _balanced(K, per, d, seed):
    rng = np.random.default_rng(seed)
    lab = np.repeat(np.arange(K), per)
    X = rng.standard_normal((K, d))[lab] + 0.8 * rng.standard_normal((lab.size, d))
    return X, np.eye(K)[lab]


def _random_bn_net(rng, d, K, depth, relu_after_bn):
    dims = [d] + list(rng.integers(1, 6, size=depth - 1)) + [K]
    Ws = [rng.standard_normal((dims[l], dims[l + 1])) for l in range(depth)]
    m = dims[-2]
    return BatchNormNetwork(Ws, 2 * rng.standard_normal(m), rng.standard_normal(m),
                            rng.standard_normal(K), relu_after_bn=relu_after_bn)


# ------------------------------------------------------------------ closed form and its bound
@pytest.mark.parametrize("n,d,K,depth,relu", [
    (8, 10, 3, 2, True),     # n <= d, full row rank
    (8, 10, 3, 4, False),    # deeper, no ReLU after BN
    (9, 8, 1, 2, True),      # n = d + 1: rank(C X) = n - 1 still holds; scalar output
    (15, 3, 4, 3, True),     # n > d: random ReLU features route
])
def test_closed_form_is_certified_and_equals_huber_formula(n, d, K, depth, relu):
    rng = np.random.default_rng(n + 10 * d + depth)
    X = rng.standard_normal((n, d))
    y = rng.standard_normal(n) if K == 1 else rng.standard_normal((n, K))
    beta = 0.4
    sol = solve_batchnorm(X, y, beta=beta, depth=depth, relu_after_bn=relu, rng=1)
    CY = y.reshape(n, -1) - y.reshape(n, -1).mean(axis=0)
    expected = float(np.sum(_huber(np.linalg.svd(CY, compute_uv=False), beta)))
    # objective is evaluated on the built network; 1e-10 covers rounding of the SVD and lstsq
    assert sol.objective == pytest.approx(expected, rel=1e-10)
    assert sol.lower_bound == pytest.approx(expected, rel=1e-10)
    assert sol.certified and sol.gap <= 1e-10 * expected
    assert sol.network.depth == depth
    assert batchnorm_objective(sol.network, X, y, beta=beta) == pytest.approx(sol.objective, rel=1e-14)
    # optimal output: 1 ybar^T + sum_k (sigma_k - beta)_+ u_k v_k^T
    U, s, Vt = np.linalg.svd(CY, full_matrices=False)
    F = CY.mean(axis=0) + y.reshape(n, -1).mean(axis=0) + (U * np.maximum(s - beta, 0)) @ Vt
    np.testing.assert_allclose(sol.network.forward(X), F, atol=1e-9)
    assert sol.predict(X).shape == ((n,) if K == 1 else (n, K))


def test_dual_point_is_feasible_and_optimal():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((12, 4))
    Y = rng.standard_normal((12, 3))
    beta = 0.7
    dual = batchnorm_dual(X, Y, beta=beta)
    Lam = dual.Lambda
    assert np.abs(Lam.sum(axis=0)).max() <= 1e-12  # centered columns (rounding only)
    assert np.linalg.norm(Lam, 2) <= beta * (1 + 1e-14)
    assert dual.value == pytest.approx(np.sum(_huber(dual.sigma, beta)), rel=1e-12)
    # dual-feasible perturbations never give a larger dual value (concave, maximized at Lam)
    for _ in range(20):
        P = Lam + 0.05 * rng.standard_normal(Lam.shape)
        P -= P.mean(axis=0)
        P *= min(1.0, beta / np.linalg.norm(P, 2))
        assert np.vdot(P, Y) - 0.5 * np.vdot(P, P) <= dual.value + 1e-12


@pytest.mark.parametrize("seed", range(6))
def test_lower_bound_below_every_random_bn_network(seed):
    rng = np.random.default_rng(100 + seed)
    n, d, K = int(rng.integers(3, 12)), int(rng.integers(1, 6)), int(rng.integers(1, 4))
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((n, K))
    beta = float(rng.uniform(0.05, 2.0))
    for depth in (2, 3, 4):
        for relu in (True, False):
            net = _random_bn_net(rng, d, K, depth, relu)
            cert = certify_batchnorm(net, X, Y, beta=beta)
            assert cert.lower_bound <= cert.objective
            assert cert.gap >= 0


def test_perturbing_the_optimum_never_improves_it():
    X, Y = _balanced(3, 4, 5, seed=7)
    beta = 0.3
    sol = solve_batchnorm(X, Y, beta=beta, depth=3, rng=0)
    rng = np.random.default_rng(0)
    net0 = sol.network
    for eps in (1e-6, 1e-3, 1e-1):
        for _ in range(10):
            net = BatchNormNetwork(
                [W + eps * rng.standard_normal(W.shape) for W in net0.weights],
                net0.gamma + eps * rng.standard_normal(net0.gamma.shape),
                net0.alpha + eps * rng.standard_normal(net0.alpha.shape),
                net0.output_bias + eps * rng.standard_normal(net0.output_bias.shape),
            )
            # 1e-12 relative: rounding of two evaluations of the same objective
            assert batchnorm_objective(net, X, Y, beta=beta) >= sol.objective * (1 - 1e-12)


def test_large_beta_gives_the_constant_predictor():
    X, Y = _balanced(3, 3, 10, seed=1)
    n, K = Y.shape
    beta = 1.01 * np.sqrt(n / K)  # above every singular value of the centered one-hot labels
    sol = solve_batchnorm(X, Y, beta=beta, depth=3)
    assert sol.info["rank"] == 0 and sol.certified
    np.testing.assert_allclose(sol.network.forward(X), np.tile(Y.mean(axis=0), (n, 1)), atol=1e-14)
    assert sol.objective == pytest.approx(0.5 * np.sum((Y - Y.mean(axis=0)) ** 2), rel=1e-14)


# ------------------------------------------------------------------ direct training
@pytest.fixture(scope="module")
def trained_cases():
    pytest.importorskip("torch")
    cases = []
    for (n_per, K, d, depth, beta, seed) in [(2, 3, 8, 2, 0.3, 0), (4, 3, 3, 3, 0.3, 1)]:
        X, Y = _balanced(K, n_per, d, seed)
        Y = Y[np.random.default_rng(seed).permutation(len(Y))]  # arbitrary labels, unbalanced mix ok
        sol = solve_batchnorm(X, Y, beta=beta, depth=depth, rng=0)
        net, info = train_batchnorm(X, Y, beta=beta, depth=depth, width=K + 1, hidden_width=12,
                                    restarts=6, iters=300, seed=seed)
        cases.append((X, Y, beta, sol, net, info))
    return cases


def test_training_never_beats_the_closed_form(trained_cases):
    for X, Y, beta, sol, net, info in trained_cases:
        best = info["best"]
        # never below the optimum beyond rounding (1e-9 relative: float64 objective sums)
        assert min(info["objectives"]) >= sol.objective * (1 - 1e-9)
        assert best >= sol.lower_bound * (1 - 1e-9)
        # ...and training does reach it: the closed form is the global minimum, not just a bound
        assert best <= sol.objective * (1 + 1e-5)
        # the trained network is evaluated by the same numpy objective
        assert batchnorm_objective(net, X, Y, beta=beta) == pytest.approx(best, rel=1e-12)


def test_trained_hidden_gram_matches_theorem(trained_cases):
    # Theorem part 3: at every global minimizer (C H)(C H)^T = sum_k (sigma_k - beta)_+ u_k u_k^T
    for X, Y, beta, sol, net, info in trained_cases:
        H = net.hidden(X)
        CH = H - H.mean(axis=0)
        dual = batchnorm_dual(X, Y, beta=beta)
        G = (dual.U * np.maximum(dual.sigma - beta, 0)) @ dual.U.T
        # training stops ~1e-6 relative from the optimum; the Gram error is O(sqrt) of that
        assert np.abs(CH @ CH.T - G).max() <= 5e-3 * np.abs(G).max()
        H0 = sol.hidden()
        CH0 = H0 - H0.mean(axis=0)
        np.testing.assert_allclose(CH0 @ CH0.T, G, atol=1e-10 * np.abs(G).max())


# ------------------------------------------------------------------ neural collapse
@pytest.mark.parametrize("K,per,d,depth", [(3, 3, 10, 2), (4, 5, 6, 3), (5, 4, 3, 4), (2, 6, 4, 3)])
def test_optimum_is_a_simplex_etf_for_balanced_one_hot_labels(K, per, d, depth):
    X, Y = _balanced(K, per, d, seed=K * per)
    n = K * per
    beta = 0.25 * np.sqrt(n / K)
    sol = solve_batchnorm(X, Y, beta=beta, depth=depth, rng=0)
    assert sol.certified
    m = sol.neural_collapse(Y)
    cos = np.asarray(m["cosines"])
    off = ~np.eye(K, dtype=bool)
    np.testing.assert_allclose(cos[off], -1.0 / (K - 1), atol=1e-8)
    norms = np.asarray(m["mean_norms"])
    # predicted norm of every centered class mean: sqrt(s (K-1)/n), s = sqrt(n/K) - beta
    np.testing.assert_allclose(norms, np.sqrt((np.sqrt(n / K) - beta) * (K - 1) / n), rtol=1e-8)
    assert m["norm_spread"] <= 1e-8 and m["max_cos_error"] <= 1e-8
    assert m["nc1"] <= 1e-16  # every sample of a class has the same feature vector
    assert m["nc3"] <= 1e-8   # classifier columns are parallel to the centered class means
    np.testing.assert_allclose(cos, simplex_etf_gram(K), atol=1e-8)
    # self-duality: classifier column c equals sqrt(n/K) times the centered class mean c
    H = sol.hidden()
    lab = np.argmax(Y, axis=1)
    mu = np.stack([H[lab == c].mean(axis=0) for c in range(K)]) - H.mean(axis=0)
    np.testing.assert_allclose(sol.network.weights[-1], np.sqrt(n / K) * mu.T, atol=1e-10)


def test_unbalanced_classes_are_not_an_etf():
    # the metrics can fail: with class sizes (6, 2, 2) the optimum is not a simplex ETF
    rng = np.random.default_rng(5)
    lab = np.array([0] * 6 + [1] * 2 + [2] * 2)
    Y = np.eye(3)[lab]
    X = rng.standard_normal((10, 12))
    sol = solve_batchnorm(X, Y, beta=0.2, depth=2)
    m = sol.neural_collapse(lab)
    assert m["nc1"] <= 1e-16
    assert m["max_cos_error"] > 1e-2


def test_neural_collapse_metrics_on_a_constructed_etf():
    K = 4
    E = np.eye(K) - 1.0 / K  # rows: a simplex ETF
    lab = np.repeat(np.arange(K), 3)
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((7, 7)))
    H = 2.0 + E[lab] @ Q[:K]  # shifted and rotated, each class collapsed
    m = neural_collapse_metrics(H, lab)
    assert m["max_cos_error"] <= 1e-12 and m["norm_spread"] <= 1e-12 and m["nc1"] <= 1e-20
    noisy = neural_collapse_metrics(H + 0.1 * rng.standard_normal(H.shape), lab)
    assert noisy["nc1"] > 1e-4 and noisy["max_cos_error"] > 1e-4


# ------------------------------------------------------------------ conventions
def test_normalization_matches_torch_batchnorm1d():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    n, d, K = 9, 4, 2
    X = rng.standard_normal((n, d))
    net = _random_bn_net(rng, d, K, 3, True)
    m = net.bn_width
    # torch refuses eps = 0 in training mode; 1e-300 changes sqrt(var + eps) by far below rounding
    bn = torch.nn.BatchNorm1d(m, eps=1e-300, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.copy_(torch.as_tensor(net.gamma / np.sqrt(n)))  # gamma_torch = gamma / sqrt(n)
        bn.bias.copy_(torch.as_tensor(net.alpha))
    Z = torch.as_tensor(net.pre_bn(X))
    bn.train()
    H_torch = torch.relu(bn(Z)).detach().numpy()
    np.testing.assert_allclose(net.hidden(X, mode="train"), H_torch, rtol=1e-10, atol=1e-12)
    # eval mode with the stored training statistics
    net.fit_statistics(X)
    with torch.no_grad():
        bn.running_mean.copy_(torch.as_tensor(net.running_mean_))
        bn.running_var.copy_(torch.as_tensor(net.running_norm_**2 / n))
    bn.eval()
    Xn = rng.standard_normal((5, d))
    H_eval = torch.relu(bn(torch.as_tensor(net.pre_bn(Xn)))).detach().numpy()
    np.testing.assert_allclose(net.hidden(Xn, mode="eval"), H_eval, rtol=1e-10, atol=1e-12)


def test_predict_uses_training_statistics():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((6, 9))
    y = rng.standard_normal(6)
    sol = solve_batchnorm(X, y, beta=0.1)
    np.testing.assert_allclose(sol.predict(X), sol.network.forward(X, mode="train")[:, 0], atol=1e-12)
    # a single held-out point has no batch statistics of its own: eval mode still works
    assert sol.predict(X[:1]).shape == (1,)
    np.testing.assert_allclose(sol.predict(X[:1]), sol.predict(X)[:1], atol=1e-12)
    assert deepdual.solve_batchnorm is solve_batchnorm


# ------------------------------------------------------------------ bad input
def test_bad_input():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 7))
    y = rng.standard_normal(5)
    X0, y0 = X.copy(), y.copy()
    with pytest.raises(ValueError, match="beta"):
        solve_batchnorm(X, y, beta=0.0)
    with pytest.raises(TypeError, match="beta"):
        solve_batchnorm(X, y, beta="1")
    with pytest.raises(ValueError, match="depth"):
        solve_batchnorm(X, y, beta=1.0, depth=1)
    with pytest.raises(ValueError, match="at least 2 rows"):
        solve_batchnorm(X[:1], y[:1], beta=1.0)
    with pytest.raises(ValueError, match="y"):
        solve_batchnorm(X, y[:4], beta=1.0)
    with pytest.raises(ValueError, match="finite"):
        solve_batchnorm(np.where(X > 1, np.nan, X), y, beta=1.0)
    with pytest.raises(ValueError, match="loss"):
        solve_batchnorm(X, y, beta=1.0, loss="logistic")
    with pytest.raises(TypeError, match="unknown option"):
        solve_batchnorm(X, y, beta=1.0, tol=1e-3)
    with pytest.raises(ValueError, match="n_features"):
        solve_batchnorm(X, y, beta=1.0, n_features=0)
    with pytest.raises(ValueError, match="rtol"):
        solve_batchnorm(X, y, beta=1.0, rtol=2.0)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)
    # depth 2 on n > d + 1 generic data: the directions are not in range(C X)
    Xt = rng.standard_normal((12, 3))
    with pytest.raises(ValueError, match="range"):
        solve_batchnorm(Xt, rng.standard_normal(12), beta=0.1, depth=2)
    # a repeated row with a different label: no network separates the two copies
    Xp = np.vstack([Xt, Xt[:1]])
    yp = np.concatenate([rng.standard_normal(12), [5.0]])
    with pytest.raises(ValueError, match="positive multiples"):
        solve_batchnorm(Xp, yp, beta=0.1, depth=3)
    with pytest.raises(ValueError, match="gamma"):
        BatchNormNetwork([np.ones((2, 3)), np.ones((3, 1))], np.ones(2), np.ones(3))
    with pytest.raises(TypeError, match="BatchNormNetwork"):
        batchnorm_objective(deepdual.Network([[np.ones((2, 3)), np.ones((3, 1))]]), X[:, :2], y, beta=1.0)
    with pytest.raises(ValueError, match="fit_statistics"):
        BatchNormNetwork([np.ones((7, 3)), np.ones((3, 1))], np.ones(3), np.ones(3)).predict(X)


# ------------------------------------------------------------------ reproduce
def test_reproduce_quick_writes_files(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    from deepdual.reproduce import load

    mod = load("neural-collapse")
    res = mod.run(tmp_path, quick=True, seed=0, progress=False)
    assert (tmp_path / "neural_collapse.png").stat().st_size > 0
    assert (tmp_path / "neural_collapse.json").stat().st_size > 0
    assert res["closed_form"]["certified"]
    assert res["closed_form"]["etf"]["max_cos_error"] <= 1e-8
    assert res["training"]["best"] >= res["closed_form"]["lower_bound"] * (1 - 1e-9)
