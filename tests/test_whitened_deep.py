"""Weight decay on whitened data at any depth: the two-part theorem (docs/relu.md §2.3).

With at most two non-zero label parts (scalar labels of both signs, two classes) every
depth-L ReLU network on any data has P >= sum_p min_s (s - a_p)^2/2 + (beta L/2)(s/||X||_2)^(2/L);
on whitened data the per-part closed form attains it, so ``solve`` is certified at every depth.
Three or more parts stay open (uncertified).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deepdual
from deepdual.relu.whitened.solver import sign_split_bound, two_part_bound

from restarts import best_of_restarts, train_once


def whitened(n: int, d: int, seed: int) -> np.ndarray:
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, n)))
    return Q.T.copy()


def part_value(a: float, beta: float, L: int) -> float:
    """min_s (s - a)^2/2 + (beta L/2) s^(2/L) on a fine grid (an upper estimate of the minimum)."""
    s = np.linspace(0.0, a, 400001)
    return float(np.min(0.5 * (s - a) ** 2 + 0.5 * beta * L * s ** (2 / L)))


def signed_parts(y: np.ndarray) -> np.ndarray:
    return np.array([np.linalg.norm(np.maximum(y, 0)), np.linalg.norm(np.maximum(-y, 0))])


@pytest.mark.parametrize("L", [3, 4, 5, 6])
def test_solve_certified_with_both_signs_at_every_depth(L):
    X = whitened(4, 6, 0)
    y = np.array([1.5, -1.2, 0.8, -0.9])
    sol = deepdual.solve(X, y, beta=0.1, depth=L)
    assert sol.certified and "note" not in sol.info
    assert sol.lower_bound == sol.info["two_part_bound"]
    assert abs(sol.objective - sum(part_value(a, 0.1, L) for a in signed_parts(y))) < 1e-8
    # the relaxed (shared-budget) bound alone would not certify: both parts are active
    assert all(p["coefficient"] > 0 for p in sol.info["parts"])
    cert = deepdual.certify(sol.network, X, y, beta=0.1)
    assert cert.certified and "two-part" in cert.method
    assert cert.details["bounds"]["two-part split"] > cert.details["bounds"]["relaxed reduced problem"]


@pytest.mark.parametrize("L", [4, 5])
def test_solve_certified_with_two_classes_or_two_columns(L):
    X = whitened(5, 7, 1)
    Y = np.zeros((5, 2))
    Y[[0, 2, 4], 0] = 1.0  # two classes, one-hot
    Y[[1, 3], 1] = 1.0
    sol = deepdual.solve(X, Y, beta=0.2, depth=L)
    assert sol.certified
    assert abs(sol.objective - part_value(np.sqrt(3), 0.2, L) - part_value(np.sqrt(2), 0.2, L)) < 1e-8
    Z = np.zeros((5, 3))  # a positive part in column 0, a negative part in column 2
    Z[[0, 1], 0] = [1.1, 0.7]
    Z[[2, 4], 2] = [-0.9, -1.3]
    sol = deepdual.solve(X, Z, beta=0.2, depth=L)
    assert sol.certified and deepdual.certify(sol.network, X, Z, beta=0.2).certified


def test_three_parts_stay_uncertified():
    X = whitened(5, 7, 2)
    Y = np.zeros((5, 2))
    Y[:, 0] = [1.6, -1.4, 0.0, 1.2, 0.0]
    Y[[2, 4], 1] = [1.5, 1.3]
    sol = deepdual.solve(X, Y, beta=0.2, depth=4)
    assert sum(p["coefficient"] > 0 for p in sol.info["parts"]) == 3
    assert not sol.certified and "can be beaten" in sol.info["note"]
    assert sol.lower_bound < sol.objective
    cert = deepdual.certify(sol.network, X, Y, beta=0.2)
    assert "two-part split" not in cert.details["bounds"]
    with pytest.raises(ValueError, match="part_norms"):
        two_part_bound(np.array([1.0, 2.0, 3.0]), beta=1.0, depth=4, x_norm=1.0)
    with pytest.raises(ValueError, match="depth"):
        two_part_bound(np.array([1.0]), beta=1.0, depth=1, x_norm=1.0)
    with pytest.raises(ValueError, match="part_norms"):
        two_part_bound(np.array([1.0, np.nan]), beta=1.0, depth=4, x_norm=1.0)
    with pytest.raises(ValueError, match="beta"):
        two_part_bound(np.array([1.0]), beta=0.0, depth=4, x_norm=1.0)
    with pytest.raises(ValueError, match="x_norm"):
        two_part_bound(np.array([1.0]), beta=1.0, depth=4, x_norm=-1.0)


@pytest.mark.parametrize("L", [4, 5])
def test_restarts_reach_but_never_beat_the_certified_optimum(L):
    X = whitened(4, 6, 3)
    y = np.array([2.0, -1.6, 1.1, -2.2])
    beta = 0.3
    sol = deepdual.solve(X, y, beta=beta, depth=L)
    assert sol.certified
    # init scale 2: deep ReLU training from small weights mostly stalls at the zero network
    best = min(deepdual.objective(train_once(X, y, beta=beta, depth=L, width=w, m=m, seed=1000 * w + r, iters=600,
                                             init_scale=2.0), X, y, beta=beta)
               for w, m in ((2, 2), (4, 1), (3, 2)) for r in range(3))
    assert best >= sol.lower_bound * (1 - 1e-9)
    # training gets close (deep ReLU training stalls slightly above; the zero network has 6.3)
    assert best <= sol.objective * (1 + 2e-3)


def test_bound_below_trained_networks_on_general_data():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((8, 3))
    y = rng.standard_normal(8) * 2
    beta = 0.2
    best = best_of_restarts(X, y, beta=beta, depth=4, width=6, m=1, restarts=3, iters=400)
    assert two_part_bound(signed_parts(y), beta=beta, depth=4, x_norm=np.linalg.norm(X, 2)) <= best
    # two classes (one-hot), depth 5
    Y = np.zeros((8, 2))
    Y[np.arange(8), np.arange(8) % 2] = 2.0
    best2 = best_of_restarts(X, Y, beta=beta, depth=5, width=5, m=1, restarts=3, iters=400)
    assert two_part_bound(np.linalg.norm(Y, axis=0), beta=beta, depth=5, x_norm=np.linalg.norm(X, 2)) <= best2
    # the depth-3 name is the same bound
    assert sign_split_bound(signed_parts(y), beta=beta, x_norm=2.0) == two_part_bound(
        signed_parts(y), beta=beta, depth=3, x_norm=2.0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), n=st.integers(2, 7), d=st.integers(1, 5), width=st.integers(1, 5),
       m=st.integers(1, 3), L=st.integers(3, 6), K=st.integers(1, 2), beta=st.floats(0.01, 2.0),
       scale=st.floats(0.1, 3.0))
def test_bound_below_every_network(seed, n, d, width, m, L, K, beta, scale):
    """Random networks (any data), and perturbations of the optimal chains (whitened data), never go below."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if K == 1:
        Y = rng.standard_normal(n) * scale
        parts = signed_parts(Y)
    else:  # two classes with real-valued positive labels
        Y = np.zeros((n, 2))
        cls = rng.integers(0, 2, n)
        Y[np.arange(n), cls] = np.abs(rng.standard_normal(n)) * scale
        parts = np.linalg.norm(Y, axis=0)
    weights = [[rng.standard_normal((d, width)) * scale] + [rng.standard_normal((width, width)) for _ in range(L - 2)]
               + [rng.standard_normal((width, K))] for _ in range(m)]
    net = deepdual.Network(weights, "relu", scalar_output=K == 1)
    bound = two_part_bound(parts, beta=beta, depth=L, x_norm=np.linalg.norm(X, 2))
    assert bound <= deepdual.objective(net, X, Y, beta=beta) * (1 + 1e-12)
    if n <= d and np.linalg.matrix_rank(X) == n:
        Xw = deepdual.whiten(X)
        sol = deepdual.solve(Xw, Y, beta=beta, depth=L)
        assert sol.certified
        assert abs(deepdual.objective(sol.network, Xw, Y, beta=beta) - sol.objective) <= 1e-9 * (1 + sol.objective)
        for eps in (1e-3, 1e-1):
            noisy = [[W + eps * rng.standard_normal(W.shape) for W in layers] for layers in sol.network.weights]
            val = deepdual.objective(deepdual.Network(noisy, "relu", scalar_output=K == 1), Xw, Y, beta=beta)
            assert sol.lower_bound <= val * (1 + 1e-12)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 10**6), L=st.integers(2, 8), s=st.floats(1e-3, 1e3), t=st.floats(1e-3, 1e3),
       scale=st.floats(-3.0, 3.0))
def test_lemma_d_on_nonnegative_gram_matrices(seed, L, s, t, scale):
    """docs/relu.md §2.3 Lemma D: k tr(G^(1/k)) + f^T G^-1 f >= L (s^p + t^p) for f = (s, -t), G_12 >= 0."""
    rng = np.random.default_rng(seed)
    A = np.abs(rng.standard_normal((2, int(rng.integers(2, 4))))) * 10.0 ** scale
    G = A @ A.T
    lam, U = np.linalg.eigh(G)
    if lam[0] <= 1e-10 * lam[1]:
        return
    k, p = L - 1, 2.0 / L
    f = np.array([s, -t])
    q = U.T @ f
    left = float(np.sum(k * lam ** (1.0 / k) + q ** 2 / lam))
    assert left >= L * (s ** p + t ** p) * (1 - 1e-10)
    # equality at the per-part chains: G = diag(s^(2k/L), t^(2k/L)), so the inequality is sharp
    D = np.array([s, t]) ** (2 * k / L)
    eq = float(np.sum(k * D ** (1.0 / k) + f ** 2 / D))
    assert eq == pytest.approx(L * (s ** p + t ** p), rel=1e-12)


def test_two_sample_networks_respect_the_gram_bound():
    """Random two-sample networks on I_2: sum ||W_l||^2 >= L (||f_+||^p + ||f_-||^p) (steps 3-7 of the proof)."""
    rng = np.random.default_rng(11)
    worst = np.inf
    for _ in range(3000):
        L = int(rng.integers(2, 7))
        m = int(rng.integers(1, 5))
        Ws = [rng.standard_normal((2, m))] + [rng.standard_normal((m, m)) for _ in range(L - 2)] + \
             [rng.standard_normal((m, 1))]
        A = Ws[0]
        for W in Ws[1:]:
            A = np.maximum(A, 0) @ W
        f = A[:, 0]
        cost = sum(float(np.sum(W ** 2)) for W in Ws)
        rhs = L * (np.linalg.norm(np.maximum(f, 0)) ** (2 / L) + np.linalg.norm(np.maximum(-f, 0)) ** (2 / L))
        worst = min(worst, cost / rhs if rhs > 0 else np.inf)
    assert worst >= 1 - 1e-12


#: (depth, part norm a, (r, c, u, v, w)) with beta = 1: docs/relu.md §2.3, "Three or more parts"
COUNTEREXAMPLES = [
    (3, 2.0, (0.88, 0.68, 1.11, 1.00, 0.49)),
    (4, 2.6, (0.92, 0.91, 1.29, 1.19, 0.50)),
    (5, 3.0, (0.86, 0.99, 1.31, 1.23, 0.46)),
]


@pytest.mark.parametrize("L, a, params", COUNTEREXAMPLES)
def test_three_parts_counterexample_beats_the_per_part_value(L, a, params):
    """Parts (1,+), (1,-), (2,+): a width-2 network whose third sample uses both chains is
    below the per-part closed form's proven lower bound, so that form is not optimal."""
    from deepdual.bounds import power_prox

    r, c, u, v, w = params
    X = whitened(3, 5, 4)
    Y = np.array([[a, 0.0], [-a, 0.0], [0.0, a]])
    layers = [X.T @ np.array([[r, 0.0], [0.0, r], [c, c]])] + [u * np.eye(2) for _ in range(L - 2)] \
        + [np.array([[v, w], [-v, w]])]
    net = deepdual.Network([layers], "relu")
    val = deepdual.objective(net, X, Y, beta=1.0)
    # the same objective by hand: the third sample's column-1 output cancels exactly
    h = np.maximum(X @ layers[0], 0)
    for W in layers[1:-1]:
        h = np.maximum(h @ W, 0)
    F = h @ layers[-1]
    assert abs(F[2, 0]) < 1e-12 and F[2, 1] > F[0, 1] > 0
    by_hand = 0.5 * np.sum((F - Y) ** 2) + 0.5 * sum(np.sum(W ** 2) for W in layers)
    assert val == pytest.approx(by_hand, rel=1e-12)
    per_part_lower = 3 * power_prox(a, 0.5 * L, 2.0 / L).lower  # proven lower bound of the per-part value
    assert val < per_part_lower - 0.2
    sol = deepdual.solve(X, Y, beta=1.0, depth=L)
    assert not sol.certified and sol.objective >= per_part_lower - 1e-9
    # every proven bound stays below the counterexample (weak duality is not violated)
    assert sol.lower_bound <= val
    assert deepdual.certify(net, X, Y, beta=1.0).lower_bound <= val


def test_one_hot_three_classes_counterexample_at_depth_5():
    """One-hot K = 3, depth 5: a width-2 trunk separated by the last two layers outputs exactly
    diag(s1, s1, s3) and beats the per-part closed form (docs/relu.md §2.3)."""
    from deepdual.bounds import power_prox

    L, a = 5, 3.0
    r, c, u, q, t, v, w = 1.13, 0.91, 1.45, 0.92, 0.65, 1.13, 0.64
    X = whitened(3, 6, 5)
    Y = a * np.eye(3)
    layers = [X.T @ np.array([[r, 0.0], [0.0, r], [c, c]])] + [u * np.eye(2) for _ in range(L - 3)] + [
        np.array([[q, -q, t], [-q, q, t]]), np.array([[v, 0.0, -w], [0.0, v, -w], [0.0, 0.0, w * q / t]])]
    net = deepdual.Network([layers], "relu")
    F = net.forward(X)
    assert np.max(np.abs(F - np.diag(np.diag(F)))) < 1e-12 and np.all(np.diag(F) > 0)
    val = deepdual.objective(net, X, Y, beta=1.0)
    per_part_lower = 3 * power_prox(a, 0.5 * L, 2.0 / L).lower
    assert val < per_part_lower - 0.09
    sol = deepdual.solve(X, Y, beta=1.0, depth=L)
    assert not sol.certified and sol.lower_bound <= val
    assert deepdual.certify(net, X, Y, beta=1.0).lower_bound <= val


#: one-hot K = 6, depth 4, a = 2.7, beta = 1: a searched network (widths 12, 8, 12), rounded to 2 decimals
ONE_HOT_6_DEPTH_4 = [
    np.array([
        [0.00, 0.00, 0.43, 0.00, 0.00, 0.22, 0.63, 0.00, 0.00, 0.64, 0.00, 0.54],
        [0.43, 0.00, 0.00, 0.00, 0.00, 0.00, 0.63, 0.00, 0.36, 0.64, 0.46, 0.00],
        [0.43, 0.38, 0.00, 0.00, 0.00, 0.00, 0.00, 0.81, 0.36, 0.00, 0.46, 0.00],
        [0.43, 0.00, 0.00, 0.36, 0.83, 0.00, 0.00, 0.00, 0.36, 0.00, 0.46, 0.00],
        [0.00, 0.00, 0.43, 0.35, 0.83, 0.22, 0.00, 0.00, 0.00, 0.00, 0.00, 0.54],
        [0.00, 0.38, 0.43, 0.00, 0.00, 0.22, 0.00, 0.81, 0.00, 0.00, 0.00, 0.54],
    ]),
    np.array([
        [0.17, 0.63, -0.22, 0.17, 0.00, 0.17, 0.02, 0.18],
        [-0.10, 0.12, 0.13, -0.10, 0.00, 0.49, -0.01, 0.03],
        [0.17, -0.21, 0.65, 0.17, 0.00, 0.17, 0.02, -0.06],
        [-0.09, 0.11, 0.12, 0.45, 0.00, -0.09, 0.05, 0.03],
        [-0.21, 0.26, 0.28, 1.05, 0.00, -0.21, 0.11, 0.08],
        [0.08, -0.11, 0.33, 0.08, 0.00, 0.08, 0.01, -0.03],
        [0.81, 0.20, 0.21, -0.16, 0.00, -0.16, -0.02, 0.06],
        [-0.21, 0.26, 0.27, -0.21, 0.00, 1.04, -0.02, 0.07],
        [0.14, 0.52, -0.18, 0.14, 0.00, 0.14, 0.01, 0.15],
        [0.82, 0.21, 0.21, -0.16, 0.00, -0.16, -0.02, 0.06],
        [0.18, 0.67, -0.23, 0.18, 0.00, 0.18, 0.02, 0.19],
        [0.21, -0.27, 0.82, 0.21, 0.00, 0.21, 0.02, -0.08],
    ]),
    np.array([
        [0.10, 0.20, -0.50, 0.35, 0.27, 0.35, -0.16, -0.02, -0.16, -0.50, 0.35, 0.74],
        [-0.11, -0.22, 0.56, 0.56, -0.30, -0.39, 0.18, 0.02, 0.17, -0.39, 0.56, 0.18],
        [0.16, 0.33, -0.41, -0.41, 0.45, 0.58, 0.18, 0.03, 0.18, 0.58, -0.41, 0.18],
        [0.10, 0.20, 0.35, -0.50, 0.27, -0.50, 0.74, -0.02, -0.16, 0.35, 0.35, -0.16],
        [0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00],
        [-0.14, -0.29, 0.35, 0.35, -0.39, 0.35, -0.16, 0.10, 0.73, 0.35, -0.50, -0.16],
        [0.01, 0.02, 0.04, -0.05, 0.03, -0.05, 0.08, 0.00, -0.02, 0.04, 0.04, -0.02],
        [-0.03, -0.06, 0.16, 0.16, -0.09, -0.11, 0.05, 0.01, 0.05, -0.11, 0.16, 0.05],
    ]),
    np.array([
        [0.17, -0.05, 0.05, -0.05, 0.17, -0.10],
        [0.36, -0.10, 0.11, -0.10, 0.36, -0.21],
        [0.19, -0.36, 0.62, 0.62, -0.18, -0.18],
        [-0.18, 0.62, 0.62, -0.36, 0.19, -0.18],
        [0.48, -0.14, 0.15, -0.14, 0.48, -0.28],
        [0.62, -0.18, -0.18, 0.19, -0.36, 0.62],
        [-0.09, -0.09, -0.09, 0.56, 0.56, -0.09],
        [-0.01, -0.01, 0.08, -0.01, -0.01, 0.08],
        [-0.09, -0.09, 0.56, -0.09, -0.09, 0.56],
        [-0.36, 0.19, -0.18, -0.18, 0.62, 0.62],
        [-0.18, 0.62, -0.36, 0.62, -0.18, 0.19],
        [0.56, 0.56, -0.09, -0.09, -0.09, -0.09],
    ]),
]


def test_one_hot_six_classes_counterexample_at_depth_4():
    """One-hot K = 6 at depth 4 (docs/relu.md §2.3): each sample uses two of four shared trunk
    chains (6 = C(4, 2) pairs), and the network beats the per-part closed form."""
    from deepdual.bounds import power_prox

    L, a = 4, 2.7
    X = whitened(6, 9, 6)
    Y = a * np.eye(6)
    layers = [X.T @ ONE_HOT_6_DEPTH_4[0]] + [W.copy() for W in ONE_HOT_6_DEPTH_4[1:]]
    net = deepdual.Network([layers], "relu")
    val = deepdual.objective(net, X, Y, beta=1.0)
    per_part_lower = 6 * power_prox(a, 0.5 * L, 2.0 / L).lower
    assert val < per_part_lower - 0.2
    sol = deepdual.solve(X, Y, beta=1.0, depth=L)
    assert not sol.certified and sol.lower_bound <= val
    assert deepdual.certify(net, X, Y, beta=1.0).lower_bound <= val
