"""deepdual.whiten and deepdual.Whitener."""

from __future__ import annotations

import numpy as np
import pytest

import deepdual
from deepdual.structures import is_whitened


def data(n=5, d=8, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d))


@pytest.mark.parametrize("method,shape", [("zca", (5, 8)), ("pca", (5, 5))])
def test_rows_orthonormal_and_consistent_map(method, shape):
    X = data()
    Xw, T = deepdual.whiten(X, method=method, return_transform=True)
    assert Xw.shape == shape
    np.testing.assert_allclose(Xw @ Xw.T, np.eye(5), atol=1e-14)
    assert is_whitened(Xw)
    np.testing.assert_allclose(X @ T, Xw, atol=1e-12)
    # held-out rows are mapped by the same linear map as the Whitener
    Xt = data(3, 8, 1)
    w = deepdual.Whitener(method=method).fit(X)
    np.testing.assert_allclose(w.transform(Xt), Xt @ T, atol=1e-14)
    np.testing.assert_allclose(w.transform(X), Xw, atol=1e-14)


def test_zca_is_inverse_sqrt_gram_and_nearest_orthonormal():
    X = data(4, 7, 2)
    Xw = deepdual.whiten(X)
    w, Q = np.linalg.eigh(X @ X.T)
    np.testing.assert_allclose(Xw, (Q / np.sqrt(w)) @ Q.T @ X, atol=1e-12)
    # polar factor: no matrix with orthonormal rows is closer to X
    rng = np.random.default_rng(2)
    dist = np.linalg.norm(X - Xw)
    for _ in range(50):
        Z = np.linalg.qr(rng.standard_normal((7, 4)))[0].T
        assert np.linalg.norm(X - Z) >= dist - 1e-12


def test_transform_of_training_rows_is_exactly_whitened():
    # ill-conditioned rows: X @ T has orthonormality errors ~ cond * eps, the stored
    # polar factor does not
    rng = np.random.default_rng(3)
    U = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    V = np.linalg.qr(rng.standard_normal((12, 6)))[0]
    X = (U * np.logspace(0, -7, 6)) @ V.T
    w = deepdual.Whitener().fit(X)
    Xw = w.transform(X)
    assert np.max(np.abs(Xw @ Xw.T - np.eye(6))) < 1e-13
    np.testing.assert_allclose(X @ w.transform_, Xw, atol=1e-6)  # same map, rounding amplified


def test_then_solve_detects_whitened():
    X = data(4, 6, 4)
    y = np.array([1.0, -1.0, 2.0, 0.5])
    sol = deepdual.solve(deepdual.whiten(X), y, beta=0.5, depth=3)
    assert "whitened" in sol.method


def test_inverse_transform_and_params():
    X = data(4, 6, 5)
    for method in ("zca", "pca"):
        w = deepdual.Whitener(method=method)
        Xw = w.fit_transform(X)
        np.testing.assert_allclose(w.inverse_transform(Xw), X, atol=1e-12)
    w = deepdual.Whitener(rcond=1e-10)
    assert w.get_params() == {"method": "zca", "rcond": 1e-10}
    w.set_params(method="pca")
    assert w.method == "pca"
    with pytest.raises(ValueError, match="no parameter"):
        w.set_params(center=True)
    sklearn = pytest.importorskip("sklearn")
    from sklearn.base import clone

    assert clone(w).get_params() == w.get_params()
    del sklearn


def test_errors_and_no_mutation():
    with pytest.raises(ValueError, match="n = 6 rows > d = 4"):
        deepdual.whiten(data(6, 4))
    X = data(4, 6, 6)
    X[3] = X[0] + X[1]  # rank 3 < n = 4
    with pytest.raises(ValueError, match="rank deficient"):
        deepdual.whiten(X)
    with pytest.raises(ValueError, match="not fitted"):
        deepdual.Whitener().transform(X)
    w = deepdual.Whitener().fit(data(4, 6, 7))
    with pytest.raises(ValueError, match="6 columns"):
        w.transform(data(2, 5))
    with pytest.raises(ValueError, match="method"):
        deepdual.whiten(data(), method="svd")
    with pytest.raises(ValueError, match="finite"):
        deepdual.whiten(np.full((2, 3), np.nan))
    X = data(3, 5, 8)
    X0 = X.copy()
    deepdual.whiten(X)
    np.testing.assert_array_equal(X, X0)
