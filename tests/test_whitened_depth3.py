"""Depth 3, one output, weight decay: the sign-split lower bound (docs/relu.md §2.3, two-part theorem at L = 3).

The bound holds for every depth-3 ReLU network on every data set; on whitened data it
equals the per-part closed form, so ``solve`` is certified there.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deepdual
from deepdual.relu.whitened.solver import sign_split_bound

from restarts import best_of_restarts


def whitened(n: int, d: int, seed: int) -> np.ndarray:
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, n)))
    return Q.T.copy()


def part_norms(y: np.ndarray) -> np.ndarray:
    return np.array([np.linalg.norm(np.maximum(y, 0)), np.linalg.norm(np.maximum(-y, 0))])


def grid_value(a: float, beta: float) -> float:
    """min_s (s - a)^2/2 + (3 beta/2) s^(2/3) on a fine grid (an upper estimate of the minimum)."""
    s = np.linspace(0.0, a, 400001)
    return float(np.min(0.5 * (s - a) ** 2 + 1.5 * beta * s ** (2 / 3)))


def test_solve_certified_with_both_signs():
    X = whitened(4, 6, 0)
    y = np.array([1.5, -1.2, 0.8, -0.9])
    sol = deepdual.solve(X, y, beta=0.1, depth=3)
    assert sol.certified and "note" not in sol.info
    a = part_norms(y)
    assert abs(sol.objective - sum(grid_value(t, 0.1) for t in a)) < 1e-8
    assert sol.lower_bound == sol.info["two_part_bound"]
    # depth 4 is certified by the same theorem (tests/test_whitened_deep.py)
    sol4 = deepdual.solve(X, y, beta=0.1, depth=4)
    assert sol4.certified and "note" not in sol4.info


def test_restarts_reach_but_never_beat_the_certified_optimum():
    X = whitened(6, 8, 3)
    y = np.array([2.0, -1.6, 1.1, -2.2, 0.4, -0.3])
    beta = 0.4
    sol = deepdual.solve(X, y, beta=beta, depth=3)
    assert sol.certified
    best = min(best_of_restarts(X, y, beta=beta, depth=3, width=w, m=m, restarts=4, iters=400, seed=w)
               for w, m in ((2, 2), (4, 1), (6, 1)))
    assert best >= sol.lower_bound * (1 - 1e-9)
    assert best <= sol.objective * (1 + 1e-4)  # training finds it: the comparison is not vacuous


def test_bound_holds_for_trained_networks_on_general_data():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((8, 3))
    y = rng.standard_normal(8)
    beta = 0.2
    bound = sign_split_bound(part_norms(y), beta=beta, x_norm=np.linalg.norm(X, 2))
    best = best_of_restarts(X, y, beta=beta, depth=3, width=6, m=1, restarts=4, iters=400)
    assert bound <= best


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), n=st.integers(2, 7), d=st.integers(1, 5), width=st.integers(1, 5),
       m=st.integers(1, 3), beta=st.floats(0.01, 2.0), scale=st.floats(0.1, 3.0))
def test_bound_below_every_network(seed, n, d, width, m, beta, scale):
    """Random depth-3 networks, and random perturbations of the optimal chains, never go below."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = rng.standard_normal(n) * scale
    weights = [[rng.standard_normal((d, width)) * scale, rng.standard_normal((width, width)),
                rng.standard_normal((width, 1))] for _ in range(m)]
    net = deepdual.Network(weights, "relu", scalar_output=True)
    bound = sign_split_bound(part_norms(y), beta=beta, x_norm=np.linalg.norm(X, 2))
    assert bound <= deepdual.objective(net, X, y, beta=beta) * (1 + 1e-12)
    # on whitened data the solver's own network attains the bound
    if n <= d:
        Xw = deepdual.whiten(X) if np.linalg.matrix_rank(X) == n else None
        if Xw is not None:
            sol = deepdual.solve(Xw, y, beta=beta, depth=3)
            assert sol.certified
            assert abs(deepdual.objective(sol.network, Xw, y, beta=beta) - sol.objective) <= 1e-9 * (1 + sol.objective)
            for eps in (1e-3, 1e-1):
                noisy = [[W + eps * rng.standard_normal(W.shape) for W in layers] for layers in sol.network.weights]
                val = deepdual.objective(deepdual.Network(noisy, "relu", scalar_output=True), Xw, y, beta=beta)
                assert sol.lower_bound <= val * (1 + 1e-12)


def test_certify_uses_the_sign_split_bound():
    X = whitened(4, 6, 0)
    y = np.array([1.5, -1.2, 0.8, -0.9])
    sol = deepdual.solve(X, y, beta=0.1, depth=3)
    cert = deepdual.certify(sol.network, X, y, beta=0.1)
    assert cert.certified and "two-part split" in cert.method
    # on general data it is one of the bounds, never above the network's objective
    rng = np.random.default_rng(2)
    Xg, yg = rng.standard_normal((10, 3)), rng.standard_normal(10)
    best = best_of_restarts(Xg, yg, beta=0.3, depth=3, width=6, m=1, restarts=2, iters=300)
    cert = deepdual.certify(deepdual.Network([[rng.standard_normal((3, 4)), rng.standard_normal((4, 4)),
                                               rng.standard_normal((4, 1))]], "relu", scalar_output=True),
                            Xg, yg, beta=0.3)
    assert cert.details["bounds"]["two-part split"] <= best
