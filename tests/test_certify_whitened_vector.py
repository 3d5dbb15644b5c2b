"""``certify`` on whitened data with vector outputs: the non-negative-orthant Perron bound
on :math:`c(V) = \\max_{z\\ge0,\\|z\\|\\le1}\\|V^Tz\\|` (deepdual.dual_constraint.c_nonneg_orthant;
docs/relu.md §2.1)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import deepdual
from deepdual.dual_constraint import c_nonneg_orthant, c_spectral_bound, relu_constraint
from deepdual.network import Network
from deepdual.relu.whitened.losses import class_constant_constraint

#: the certified relative gap asked of certify(solve(...).network); the closed forms are
#: optimal up to rounding (~1e-15), so anything above this is a real failure
GAP_RTOL = 1e-6
#: rounding slack when comparing two computations of the same maximum (values are O(1))
ROUND = 1e-9


def _whitened(rng, n, d):
    Q, _ = np.linalg.qr(rng.standard_normal((d, n)))
    return Q.T  # X X^T = I_n


def _brute_force(V):
    r"""Exact :math:`\max_{z\ge0,\|z\|\le1}\|V^Tz\|` for small ``n``: a maximizer with support
    :math:`S` (:math:`z_S > 0`) is, by the KKT conditions on the sphere restricted to that face,
    an eigenvector of :math:`M_{SS}` (:math:`M = VV^T`) with eigenvalue :math:`z^TMz`; enumerate
    all supports and keep the eigenpairs with a one-signed eigenvector."""
    n = V.shape[0]
    M = V @ V.T
    best = 0.0
    for r in range(1, n + 1):
        for S in itertools.combinations(range(n), r):
            w, U = np.linalg.eigh(M[np.ix_(S, S)])
            for lam, u in zip(w, U.T):
                if np.all(u > -1e-12) or np.all(u < 1e-12):
                    best = max(best, float(lam))
    return np.sqrt(max(best, 0.0))


def _random_dual(rng, n, K, kind):
    if kind == "gaussian":
        return rng.standard_normal((n, K))
    if kind == "nonneg":  # VV^T >= 0: the bound is exact (lambda_max of M itself)
        return np.abs(rng.standard_normal((n, K)))
    if kind == "sparse":
        return rng.standard_normal((n, K)) * (rng.random((n, K)) < 0.4)
    if kind == "class_constant":  # dense rows, constant on classes
        labels = rng.integers(0, K, n)
        return rng.standard_normal((K, K))[labels]
    raise AssertionError(kind)


# ------------------------------------------------------------------ the bound itself
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kind", ["gaussian", "nonneg", "sparse", "class_constant"])
def test_bound_is_an_upper_bound_on_the_exact_maximum(seed, kind):
    """The Perron bound is >= the exact maximum (support enumeration, n = 6) and >= ||V^T z||
    for 3000 random non-negative unit z; when it reports exact it equals the maximum."""
    rng = np.random.default_rng(100 * seed + len(kind))
    n, K = 6, int(rng.integers(2, 5))
    V = _random_dual(rng, n, K, kind)
    cv = c_nonneg_orthant(V)
    exact = _brute_force(V)
    assert cv.value >= exact - ROUND
    Z = np.abs(rng.standard_normal((3000, n))) * (rng.random((3000, n)) < 0.6)
    Z = Z[np.any(Z > 0, axis=1)]
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    assert cv.value >= np.max(np.linalg.norm(Z @ V, axis=1)) - ROUND
    # the attained value is a feasible point's value: a lower bound on the maximum
    assert cv.details["attained"] <= exact + ROUND
    if cv.exact:
        assert cv.value == pytest.approx(exact, rel=1e-9, abs=1e-12)
    if kind == "nonneg":
        assert cv.exact


def test_bound_can_be_loose_but_is_never_below():
    """A case where (V V^T)_+ drops negative entries inside a block: still an upper bound,
    flagged as not exact, and strictly above the exact maximum."""
    V = np.array([[1.0, 0.0], [0.6, 0.8], [0.6, -0.8]])  # rows 2 and 3 negatively correlated
    cv = c_nonneg_orthant(V)
    exact = _brute_force(V)
    assert not cv.exact
    assert cv.value >= exact - ROUND
    assert cv.value > exact + 1e-3


def test_class_constant_rows_match_the_gershgorin_bound():
    """For class-constant rows the Perron bound is never above the compressed Gershgorin bound
    of relu_whitened_losses.class_constant_constraint, and equal to it (and exact) when classes
    are negatively correlated."""
    rng = np.random.default_rng(7)
    for _ in range(20):
        K = int(rng.integers(2, 5))
        labels = np.concatenate([np.arange(K), rng.integers(0, K, 6)])
        counts = np.bincount(labels, minlength=K)
        R = rng.standard_normal((K, K))
        V = R[labels]
        g, g_exact = class_constant_constraint(R, counts)
        cv = c_nonneg_orthant(V)
        assert cv.value <= g * (1 + 1e-12)
        if g_exact:
            assert cv.exact and cv.value == pytest.approx(g, rel=1e-12)
    # the cross-entropy optimum's rows: r_j = q_j/(K-1) (K e_j - 1), pairwise negative
    K, q = 3, np.array([0.2, 0.3, 0.25])
    R = (q / (K - 1))[:, None] * (K * np.eye(K) - 1)
    labels = np.array([0, 0, 1, 1, 1, 2, 2, 0])
    cv = c_nonneg_orthant(R[labels])
    assert cv.exact
    counts = np.bincount(labels)
    assert cv.value == pytest.approx(np.max(np.sqrt(counts) * np.linalg.norm(R, axis=1)), rel=1e-12)


def test_rounding_noise_does_not_merge_orthogonal_classes():
    """Rows r_j e_j (squared-loss residual at the optimum) plus 1e-15 noise: the tiny positive
    cross-correlations are dropped (and paid for), so the value is exact and equals
    max_j sqrt(n_j) |r_j| to rounding, while staying above the exact maximum."""
    rng = np.random.default_rng(5)
    labels = np.array([0, 0, 1, 1, 1, 2])
    V = np.diag([0.3, 0.2, 0.5])[labels] + 1e-15 * rng.standard_normal((6, 3))
    cv = c_nonneg_orthant(V)
    assert cv.exact and cv.details["n_blocks"] == 3
    assert cv.value >= _brute_force(V) - 1e-15
    assert cv.value == pytest.approx(max(0.3 * np.sqrt(2), 0.2 * np.sqrt(3), 0.5), rel=1e-10)


def test_relu_constraint_uses_it_only_when_better():
    """On whitened data relu_constraint returns min(spectral bounds, Perron bound)."""
    rng = np.random.default_rng(3)
    X = _whitened(rng, 7, 10)
    for _ in range(10):
        V = rng.standard_normal((7, 3))
        cv = relu_constraint(V, X)
        assert cv.value <= c_spectral_bound(V, X) * (1 + 1e-12)
        assert cv.value <= c_nonneg_orthant(V).value * (1 + 1e-12)
        assert cv.value >= _brute_force(V) - ROUND


# ------------------------------------------------------------------ certify
@pytest.mark.parametrize("n, K, beta, seed", [(8, 3, 0.5, 0), (12, 4, 0.3, 1), (9, 2, 0.8, 2), (10, 3, 1.6, 3)])
def test_certify_certifies_the_cross_entropy_optimum(n, K, beta, seed):
    """certify(solve(...).network) reproduces solve's certificate (gap <= 1e-6) with an exact
    constraint (class-constant dual rows, negatively correlated classes)."""
    rng = np.random.default_rng(seed)
    X = _whitened(rng, n, n + 3)
    y = np.concatenate([np.arange(K), rng.integers(0, K, n - K)])
    sol = deepdual.solve(X, y, beta=beta, loss="cross_entropy")
    assert sol.certified
    cert = deepdual.certify(sol.network, X, y, beta=beta, loss="cross_entropy")
    assert cert.objective == pytest.approx(sol.objective, rel=1e-12)
    assert cert.lower_bound <= sol.objective + 1e-12 * abs(sol.objective)
    assert cert.objective - cert.lower_bound <= GAP_RTOL * abs(cert.objective)
    assert cert.certified and cert.exact_constraint
    assert "non-negative-orthant" in cert.method


@pytest.mark.parametrize("seed", range(3))
def test_certify_certifies_the_squared_one_hot_optimum(seed):
    """Squared loss with one-hot labels on whitened data: certify of solve's network is certified."""
    rng = np.random.default_rng(10 + seed)
    n, K, beta = 9, 3, 0.7
    X = _whitened(rng, n, 12)
    Y = np.eye(K)[np.concatenate([np.arange(K), rng.integers(0, K, n - K)])]
    sol = deepdual.solve(X, Y, beta=beta, loss="squared")
    assert sol.certified
    cert = deepdual.certify(sol.network, X, Y, beta=beta, loss="squared")
    assert cert.lower_bound <= sol.objective + 1e-12 * abs(sol.objective)
    assert cert.objective - cert.lower_bound <= GAP_RTOL * abs(cert.objective)
    assert cert.certified


@pytest.mark.parametrize("loss", ["cross_entropy", "squared"])
def test_random_networks_get_valid_lower_bounds(loss):
    """For random and perturbed networks the lower bound never exceeds the certified optimum
    (the objective of solve's network) nor the network's own objective."""
    rng = np.random.default_rng(42 if loss == "squared" else 43)
    n, d, K, beta = 8, 11, 3, 0.5
    X = _whitened(rng, n, d)
    y = np.concatenate([np.arange(K), rng.integers(0, K, n - K)])
    Y = np.eye(K)[y]
    labels = y if loss == "cross_entropy" else Y
    opt = deepdual.solve(X, labels, beta=beta, loss=loss)
    assert opt.certified
    for trial in range(12):
        m = int(rng.integers(1, 8))
        scale = float(rng.choice([0.1, 1.0, 3.0]))
        net = Network([[scale * rng.standard_normal((d, m)), scale * rng.standard_normal((m, K))]], "relu")
        cert = deepdual.certify(net, X, labels, beta=beta, loss=loss)
        assert cert.lower_bound <= opt.objective + 1e-9 * abs(opt.objective)
        assert cert.lower_bound <= cert.objective
    # perturbations of the optimum: lower bounds close to, but not above, the optimum
    for eps in (1e-1, 1e-3):
        subnets = [[W + eps * rng.standard_normal(W.shape) for W in layers] for layers in opt.network.weights]
        cert = deepdual.certify(Network(subnets, "relu"), X, labels, beta=beta, loss=loss)
        assert cert.lower_bound <= opt.objective + 1e-9 * abs(opt.objective)
        assert cert.objective >= opt.objective - 1e-9 * abs(opt.objective)
