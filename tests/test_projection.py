"""Projection onto the elliptic cylinder {u : ||X^T u|| <= r} (docs/theory.md §2.1): optimality
conditions checked directly (KKT) on every hard case, plus cvxpy on ordinary ones."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import deepdual
from deepdual.projection import factorize, project, project_factored


def _kkt(X, y, r, res, tol=1e-10):
    r"""KKT of min 1/2||u - y||^2 s.t. ||X^T u|| <= r, in the form the module returns:
    u = y - X M with X^T u = mu M, mu >= 0, and ||X^T u|| = r unless y is inside."""
    u, M, mu = res.u, res.M, res.mu
    Xtu = X.T @ u
    scale = np.linalg.norm(X, 2) * np.linalg.norm(y) + np.finfo(float).tiny
    # primal feasibility
    assert np.linalg.norm(Xtu) <= r * (1 + tol) + tol * scale
    if res.inside:
        np.testing.assert_array_equal(u, y)
        assert mu == 0.0 and not np.any(M)
        return
    # stationarity: u = y - X lambda with lambda = M
    assert np.linalg.norm(u - (y - X @ M)) <= tol * np.linalg.norm(y)
    # complementarity: the constraint is active
    assert abs(np.linalg.norm(Xtu) - r) <= tol * max(r, scale)
    if r > 0:
        # lambda = M is a non-negative multiple of X^T u: X^T u = mu M
        assert mu > 0
        assert np.linalg.norm(Xtu - mu * M) <= tol * max(np.linalg.norm(Xtu), scale)


def _case(rng, n, d, rank=None):
    if rank is None:
        X = rng.standard_normal((n, d))
    else:
        X = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, d))
    y = rng.standard_normal(n)
    return X, y


@pytest.mark.parametrize("n,d,rank", [(20, 4, None), (5, 12, None), (10, 6, 3), (8, 8, 2), (1, 3, None), (6, 1, None)])
@pytest.mark.parametrize("frac", [0.0, 1e-12, 0.3, 0.999999, 1.0, 2.0])
def test_kkt_hard_cases(n, d, rank, frac):
    rng = np.random.default_rng(n * 100 + d)
    X, y = _case(rng, n, d, rank)
    r = frac * np.linalg.norm(X.T @ y)
    res = project(X, y, r, return_info=True)
    _kkt(X, y, r, res)
    # the plain call returns the same vector
    np.testing.assert_allclose(project(X, y, r), res.u, rtol=0, atol=0)


def test_inside_returns_y_exactly():
    rng = np.random.default_rng(1)
    X, y = _case(rng, 10, 3)
    r = 1.5 * np.linalg.norm(X.T @ y)
    res = project(X, y, r, return_info=True)
    assert res.inside and res.mu == 0.0
    np.testing.assert_array_equal(res.u, y)


def test_y_orthogonal_to_range_is_inside():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((9, 3))
    Q, _ = np.linalg.qr(np.hstack([X, rng.standard_normal((9, 1))]))
    y = 5.0 * Q[:, 3]  # orthogonal to range(X)
    for r in (0.0, 1e-3, 1.0):
        res = project(X, y, r, return_info=True)
        # ||X^T y|| is rounding-level: inside for r > 0; for r = 0 the projection onto null(X^T) is y
        np.testing.assert_allclose(res.u, y, rtol=0, atol=1e-13 * np.linalg.norm(y))


def test_radius_zero_is_projection_onto_null_space():
    rng = np.random.default_rng(3)
    X, y = _case(rng, 12, 4)
    u = project(X, y, 0.0)
    U, _, _ = np.linalg.svd(X, full_matrices=False)
    np.testing.assert_allclose(u, y - U @ (U.T @ y), atol=1e-13 * np.linalg.norm(y))
    assert np.linalg.norm(X.T @ u) <= 1e-12 * np.linalg.norm(X) * np.linalg.norm(y)


def test_zero_data_and_zero_labels():
    y = np.arange(5.0)
    np.testing.assert_array_equal(project(np.zeros((5, 3)), y, 0.0), y)
    np.testing.assert_array_equal(project(np.ones((5, 3)), np.zeros(5), 1.0), np.zeros(5))


@pytest.mark.parametrize("a", [1e150, 1e-150, 1.0])
@pytest.mark.parametrize("b", [1e150, 1e-150, 1.0])
@pytest.mark.parametrize("method", ["svd", "gram", "auto"])
def test_extreme_scales(a, b, method):
    """P_{aX, abr}(by) = b P_{X,r}(y): no overflow or underflow at 1e+-150."""
    rng = np.random.default_rng(4)
    X, y = _case(rng, 24, 4)
    r = 0.4 * np.linalg.norm(X.T @ y)
    ref = project(X, y, r, method="svd", return_info=True)
    res = project(a * X, b * y, r * a * b, method=method, return_info=True)
    assert np.all(np.isfinite(res.u)) and np.all(np.isfinite(res.M))
    np.testing.assert_allclose(res.u / b, ref.u, rtol=1e-11, atol=1e-13 * np.linalg.norm(y))
    np.testing.assert_allclose(res.M * a / b, ref.M, rtol=1e-10, atol=1e-13 * np.linalg.norm(ref.M))


def test_gram_and_svd_paths_agree():
    rng = np.random.default_rng(5)
    X, y = _case(rng, 60, 5)
    r = 0.5 * np.linalg.norm(X.T @ y)
    fg, fs = factorize(X, "gram"), factorize(X, "svd")
    assert fg.method == "gram" and fs.method == "svd"
    assert factorize(X, "auto").method == "gram"  # tall and well conditioned
    ug, us = project_factored(fg, y, r), project_factored(fs, y, r)
    np.testing.assert_allclose(ug.u, us.u, rtol=1e-12, atol=1e-13 * np.linalg.norm(y))
    np.testing.assert_allclose(ug.M, us.M, rtol=1e-10)
    _kkt(X, y, r, ug)


def test_auto_falls_back_to_svd_when_ill_conditioned():
    rng = np.random.default_rng(6)
    X, y = _case(rng, 50, 4)
    X[:, 3] = X[:, 2] + 1e-7 * X[:, 3]  # cond ~ 1e7: the Gram matrix would lose ~14 digits
    fac = factorize(X, "auto")
    assert fac.method == "svd"
    r = 0.5 * np.linalg.norm(X.T @ y)
    _kkt(X, y, r, project(X, y, r, return_info=True))


def test_repeated_singular_values():
    rng = np.random.default_rng(7)
    Q, _ = np.linalg.qr(rng.standard_normal((10, 4)))
    X = 3.0 * Q
    y = rng.standard_normal(10)
    r = 0.25 * np.linalg.norm(X.T @ y)
    res = project(X, y, r, return_info=True)
    _kkt(X, y, r, res)
    # closed form for X = 3Q: u = y - (1 - r/||X^T y||) Q Q^T y
    z = Q.T @ y
    np.testing.assert_allclose(res.u, y - (1 - r / np.linalg.norm(3 * z)) * (Q @ z), atol=1e-13 * np.linalg.norm(y))


def test_M_solves_penalized_least_squares():
    """M = (X^T X + mu I)^-1 X^T y minimizes 1/2||XM - y||^2 + r||M||: its subgradient
    condition X^T(y - XM) = r M/||M|| holds."""
    rng = np.random.default_rng(8)
    X, y = _case(rng, 15, 6)
    r = 0.3 * np.linalg.norm(X.T @ y)
    res = project(X, y, r, return_info=True)
    M = res.M
    g = X.T @ (y - X @ M)
    np.testing.assert_allclose(g, r * M / np.linalg.norm(M), rtol=1e-10, atol=1e-12 * r)


def test_agrees_with_cvxpy():
    cp = pytest.importorskip("cvxpy")
    rng = np.random.default_rng(9)
    for n, d, rank in [(12, 4, None), (5, 9, None), (10, 6, 2)]:
        X, y = _case(rng, n, d, rank)
        r = 0.35 * np.linalg.norm(X.T @ y)
        u = cp.Variable(n)
        prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(u - y)), [cp.norm(X.T @ u, 2) <= r])
        with warnings.catch_warnings():
            # at these tolerances CLARABEL may flag "optimal_inaccurate"; the values below
            # are what we check
            warnings.simplefilter("ignore", UserWarning)
            prob.solve(solver="CLARABEL", tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
        assert prob.status in ("optimal", "optimal_inaccurate")
        ours = project(X, y, r)
        val = 0.5 * np.sum((ours - y) ** 2)
        assert abs(val - prob.value) <= 1e-7 * prob.value
        np.testing.assert_allclose(ours, u.value, atol=1e-4 * np.linalg.norm(y))


def test_inputs_not_modified_and_lists_accepted():
    rng = np.random.default_rng(10)
    X, y = _case(rng, 7, 3)
    X0, y0 = X.copy(), y.copy()
    u = project(X, y, 0.1)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_allclose(project(X.tolist(), y.tolist(), 0.1), u)
    assert u.shape == (7,)
    np.testing.assert_allclose(project(X.astype(np.float32), y.astype(np.float32), 0.1),
                               project(X.astype(np.float32).astype(float), y.astype(np.float32).astype(float), 0.1))


def test_public_name():
    assert deepdual.project is project


def test_gram_factorization_does_not_form_u():
    # the Gram path keeps X instead of U = X V / s; U^T y and U w cost O(nd) and agree with U
    rng = np.random.default_rng(11)
    X, y = _case(rng, 80, 6)
    fac = factorize(X, "gram")
    assert fac.U is None and fac.X is X
    w = rng.standard_normal(fac.rank)
    z, Uw = fac.left_solve(y), fac.left_apply(w)
    U = fac.left()
    np.testing.assert_allclose(U.T @ U, np.eye(fac.rank), atol=1e-12)
    np.testing.assert_allclose(z, U.T @ y, rtol=1e-12, atol=1e-12 * np.linalg.norm(y))
    np.testing.assert_allclose(Uw, U @ w, rtol=1e-12, atol=1e-12 * np.linalg.norm(w))
    np.testing.assert_allclose((U * fac.s) @ fac.Vt, X, atol=1e-12 * np.abs(X).max())


@pytest.mark.parametrize("r_frac", [0.0, 0.3, 0.9])
def test_wide_gram_path_agrees_with_svd(r_frac):
    # wide X (d >= 4n): eigenvectors of X X^T, V = X^T U / s never formed
    rng = np.random.default_rng(12)
    X, y = _case(rng, 8, 50)
    fac = factorize(X, "auto")
    assert fac.method == "gram" and fac.Vt is None and fac.X is X
    r = r_frac * np.linalg.norm(X.T @ y)
    ug, us = project_factored(fac, y, r), project_factored(factorize(X, "svd"), y, r)
    np.testing.assert_allclose(ug.u, us.u, rtol=1e-10, atol=1e-12 * np.linalg.norm(y))
    np.testing.assert_allclose(ug.M, us.M, rtol=1e-9, atol=1e-12 * np.linalg.norm(us.M))
    _kkt(X, y, r, ug)
    Vt = fac.right()
    np.testing.assert_allclose(Vt @ Vt.T, np.eye(fac.rank), atol=1e-12)
    np.testing.assert_allclose((fac.U * fac.s) @ Vt, X, atol=1e-12 * np.abs(X).max())
