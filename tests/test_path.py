"""beta_max and the regularization path (deepdual.path): the zero network is certified
optimal just above beta_max and beaten just below it (exact cases), the interval of the
general case is proven at both ends, and the path's optimal values increase with beta."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deepdual
from deepdual.path import BetaMax, active_neurons, regularization_path


def _zero_objective(y, loss="squared"):
    lossf = deepdual.get_loss(loss)
    Y = lossf.check_labels(np.asarray(y, float).reshape(len(y), -1))
    return float(lossf.value(np.zeros_like(Y), Y))


def _relu_data(seed, n=18, d=2):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.abs(X[:, 0]) - X[:, 1] + 0.2 * rng.standard_normal(n)
    return X, y


def _check_threshold(X, y, bm, **kw):
    """Just above beta_max: the zero network, certified.  Just below: a network strictly
    better than the zero network (so zero is not optimal)."""
    zero = _zero_objective(y, kw.get("loss", "squared"))
    above = deepdual.solve(X, y, beta=bm.value * (1 + 1e-6), rtol=1e-6, **kw)
    assert above.certified
    assert above.zero_network
    assert above.objective == pytest.approx(zero, rel=1e-12)
    below = deepdual.solve(X, y, beta=bm.value * (1 - 1e-3), rtol=1e-8, **kw)
    assert below.objective < zero * (1 - 1e-9)
    assert not below.info.get("zero_network", False) or below.objective < zero


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(3, 25), d=st.integers(1, 6), K=st.integers(1, 3))
def test_linear_beta_max_is_norm_of_XtY(seed, n, d, K):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((n, K)) if K > 1 else rng.standard_normal(n)
    bm = deepdual.beta_max(X, Y, activation="linear")
    assert bm.exact and bm.lower == bm.upper == bm.value
    M = X.T @ Y.reshape(n, -1)
    assert bm.value == pytest.approx(np.linalg.norm(M, 2), rel=1e-12)
    zero = 0.5 * float(np.sum(Y**2))
    above = deepdual.solve(X, Y, beta=bm.value * (1 + 1e-6), activation="linear")
    assert above.certified and above.objective == pytest.approx(zero, rel=1e-9)
    below = deepdual.solve(X, Y, beta=bm.value * (1 - 1e-3), activation="linear")
    assert below.objective < zero


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_relu_beta_max_exact_by_enumeration(seed):
    X, y = _relu_data(seed)
    bm = deepdual.beta_max(X, y, bias=True)
    assert bm.exact and "enumeration" in bm.method
    # the direction found by the ascent attains a value no larger than the exact one
    # (a proven property), and close to it on these small problems
    Xa = np.hstack([X, np.ones((len(X), 1))])
    attained = abs(float(y @ np.maximum(Xa @ bm.direction, 0.0)))
    assert 0.9 * bm.value <= attained <= bm.value * (1 + 1e-9)
    _check_threshold(X, y, bm, bias=True)


def test_relu_beta_max_whitened_and_rank_one():
    rng = np.random.default_rng(3)
    Q = np.linalg.qr(rng.standard_normal((12, 8)))[0]
    Xw, yw = Q.T, rng.standard_normal(8)  # X X^T = I
    bm = deepdual.beta_max(Xw, yw)
    assert bm.exact and "whitened" in bm.method
    assert bm.value == pytest.approx(max(np.linalg.norm(np.maximum(yw, 0)), np.linalg.norm(np.minimum(yw, 0))),
                                     rel=1e-9)
    _check_threshold(Xw, yw, bm)
    c, a = rng.uniform(0.1, 1, 20), rng.standard_normal(4)
    Xr, yr = np.outer(c, a), rng.standard_normal(20)
    bm = deepdual.beta_max(Xr, yr)
    assert bm.exact and "rank one" in bm.method
    _check_threshold(Xr, yr, bm)


def test_relu_beta_max_logistic_loss():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((16, 2))
    y = np.where(X[:, 0] * X[:, 1] > 0, 1.0, -1.0)
    bm = deepdual.beta_max(X, y, loss="logistic", bias=True)
    assert bm.exact
    _check_threshold(X, y, bm, loss="logistic", bias=True)


def test_relu_beta_max_interval_is_proven_at_both_ends():
    # too many cells to enumerate: an interval [attained, spectral bound]
    rng = np.random.default_rng(5)
    X = rng.standard_normal((120, 8))
    y = np.maximum(X[:, 0], 0) - X[:, 1]
    bm = deepdual.beta_max(X, y, bias=True, max_patterns=100)
    assert not bm.exact and 0 < bm.lower <= bm.upper == bm.value
    Xa = np.hstack([X, np.ones((120, 1))])
    # upper end: the zero network is certified for all networks (proven bound)
    sol = deepdual.solve(X, y, beta=bm.upper * (1 + 1e-6), bias=True, rng=0, certify_max_patterns=0,
                         n_patterns=20)
    assert sol.certified and sol.zero_network
    # lower end: attained by its direction, and below it one small neuron beats zero
    u = bm.direction
    assert np.linalg.norm(u) == pytest.approx(1.0)
    h = np.maximum(Xa @ u, 0.0)
    assert float(abs(y @ h)) == pytest.approx(bm.lower, rel=1e-12)
    beta = bm.lower * (1 - 1e-3)
    s = np.sign(y @ h)
    eps = 1e-3 * bm.lower / float(h @ h)  # small enough that the quadratic term is negligible
    W1, W2 = (np.sqrt(eps) * u)[:, None], np.array([[s * np.sqrt(eps)]])
    net = deepdual.Network([[W1[:-1], W2]], "relu", biases=[[W1[-1]]])
    obj = deepdual.objective(net, X, y, beta=beta, penalize_biases=True)
    assert obj < _zero_objective(y)


@pytest.mark.parametrize("bias", [False, True])
def test_path_objective_increases_with_beta_and_starts_at_zero(bias):
    X, y = _relu_data(6, n=14)
    path = regularization_path(X, y, n_betas=6, eps=1e-2, bias=bias, rtol=1e-6)
    assert len(path) == 6 and isinstance(path.beta_max, BetaMax)
    assert np.all(np.diff(path.betas) < 0) and path.betas[0] == path.beta_max.value
    assert path.zero_network[0] and path.certified[0] and path.n_neurons[0] == 0
    assert path.n_neurons[-1] > 0
    assert np.all(path.lower_bounds <= path.objectives * (1 + 1e-9))
    # complete pattern sets: every point certified, so the optimal values are exact to
    # rtol and must be non-decreasing in beta
    assert path.certified.all()
    obj = path.objectives[::-1]  # increasing beta
    assert np.all(np.diff(obj) >= -2e-6 * obj[1:])
    # each point is the optimum solve finds on its own
    ref = deepdual.solve(X, y, beta=float(path.betas[3]), bias=bias, rtol=1e-6)
    assert path.objectives[3] == pytest.approx(ref.objective, rel=2e-6)


def test_path_on_sampled_patterns_warm_starts():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((80, 6))
    y = np.maximum(X[:, 0], 0) - X[:, 1] + 0.1 * rng.standard_normal(80)
    path = regularization_path(X, y, n_betas=4, eps=0.05, bias=True, n_patterns=30, certify_max_patterns=0,
                               rng=0)
    assert path.zero_network[0] and path.certified[0]
    assert np.all(path.lower_bounds <= path.objectives * (1 + 1e-9))
    # the first neuron's cell is in the shared set: just below beta_max the path is not stuck at zero
    assert not path.zero_network[1:].any()
    assert all(active_neurons(s) == n for s, n in zip(path.solutions, path.n_neurons))
    # user grid, sorted decreasing
    p2 = regularization_path(X, y, betas=[1.0, 10.0], bias=True, n_patterns=30, certify_max_patterns=0)
    assert list(p2.betas) == [10.0, 1.0]


def test_path_time_limit_ends_the_path():
    X, y = _relu_data(8, n=14)
    path = regularization_path(X, y, n_betas=5, bias=True, time_limit=1e-6)
    assert len(path) == 1  # the first solve stops at once and the path ends there
    assert path.solutions[0].info["status"] == "time_limit"


def test_bad_arguments():
    X, y = _relu_data(9)
    with pytest.raises(ValueError, match="depth"):
        deepdual.beta_max(X, y, depth=3)
    with pytest.raises(ValueError, match="activation"):
        deepdual.beta_max(X, y, activation="tanh")
    with pytest.raises(ValueError, match="y"):
        deepdual.beta_max(X, y[:-1])
    with pytest.raises(ValueError, match="n_betas"):
        regularization_path(X, y, n_betas=0)
    with pytest.raises(ValueError, match="eps"):
        regularization_path(X, y, eps=2.0)
    with pytest.raises(ValueError, match="betas"):
        regularization_path(X, y, betas=[1.0, -1.0])
    with pytest.raises(ValueError, match="time_limit"):
        regularization_path(X, y, time_limit=0)
    Xc = X.copy()
    deepdual.beta_max(X, y)
    np.testing.assert_array_equal(X, Xc)  # inputs are not modified
