"""The O(nd) rank-one detector (`structures.rank_one_factors` / `_rank_one_pivot`) agrees with
the SVD-based definition sigma_2 <= tol * sigma_1 (tol = 100 max(n, d) eps)."""

import numpy as np
import pytest

from deepdual.structures import _rank_one_pivot, _residual_pass, rank_one_factors

EPS = np.finfo(float).eps


def _tol(X):
    return 100 * max(X.shape) * EPS


def _svd_rank_one(X, tol=None):
    """The definition: sigma_1 > 0 and sigma_2 <= tol sigma_1."""
    tol = _tol(X) if tol is None else tol
    s = np.linalg.svd(X, compute_uv=False)
    return bool(s[0] > 0 and (s.size == 1 or s[1] <= tol * s[0]))


def _with_singular_values(rng, n, d, s):
    U, _ = np.linalg.qr(rng.standard_normal((n, len(s))))
    V, _ = np.linalg.qr(rng.standard_normal((d, len(s))))
    return (U * s) @ V.T


def _check_factors(X, f, *, signed=True):
    assert f is not None
    if signed:
        assert np.all(f.c >= 0)
    assert np.linalg.norm(f.c) == pytest.approx(1.0, rel=1e-12)
    err2 = np.linalg.norm(X - np.outer(f.c, f.a0), 2)
    assert err2 <= 1e-12 * np.linalg.norm(X)
    if f.residual is not None:  # a proven upper bound on ||X - c a0^T||_2
        assert f.residual >= err2


@pytest.mark.parametrize("n,d", [(1, 1), (1, 5), (7, 1), (40, 9), (300, 60), (9, 400)])
@pytest.mark.parametrize("scale", [1.0, 2.0**-300, 1e-120, 1e150, 3.7])
def test_accepts_exact_rank_one_any_scale(n, d, scale):
    rng = np.random.default_rng(n * d)
    c = np.abs(rng.standard_normal(n)) + 0.1
    a0 = rng.standard_normal(d)
    X = scale * np.outer(c, a0)
    assert _svd_rank_one(X)
    f = rank_one_factors(X)
    _check_factors(X, f)
    # c <= 0 is the same case with a0 -> -a0
    _check_factors(-X, rank_one_factors(-X))
    # Fortran-ordered and non-contiguous inputs give the same decision
    _check_factors(X, rank_one_factors(np.asfortranarray(X)))
    Xs = np.repeat(X, 2, axis=1)[:, ::2]
    _check_factors(Xs, rank_one_factors(Xs))


@pytest.mark.parametrize("seed", range(4))
def test_mixed_sign_c(seed):
    rng = np.random.default_rng(seed)
    n, d = 50, 8
    c = rng.standard_normal(n)
    c[0], c[1] = 1.0, -1.0  # both signs present
    X = np.outer(c, rng.standard_normal(d)) * 10.0 ** rng.integers(-50, 50)
    assert rank_one_factors(X) is None  # the theorem needs c >= 0
    f = rank_one_factors(X, require_sign=False)
    _check_factors(X, f, signed=False)
    assert np.any(f.c > 0) and np.any(f.c < 0)


def test_zero_rows_and_columns():
    rng = np.random.default_rng(3)
    c = np.abs(rng.standard_normal(30))
    a0 = rng.standard_normal(6)
    c[[0, 7, 29]] = 0.0
    a0[[0, 5]] = 0.0
    X = np.outer(c, a0)
    _check_factors(X, rank_one_factors(X))
    assert np.all(rank_one_factors(X).c[[0, 7, 29]] == 0.0)
    # a single non-zero entry is rank one; the zero matrix is not (sigma_1 = 0)
    E = np.zeros((5, 4))
    E[2, 3] = -2.5
    _check_factors(E, rank_one_factors(E))
    assert rank_one_factors(np.zeros((5, 4))) is None
    assert rank_one_factors(np.zeros((5, 4)), require_sign=False) is None


@pytest.mark.parametrize("n,d", [(60, 12), (500, 40), (12, 200)])
@pytest.mark.parametrize("ratio", [1e-3, 0.5, 1.5, 3.0, 10.0, 1e3, 1e6])
def test_second_singular_value_around_the_tolerance(n, d, ratio):
    """sigma_2 / sigma_1 = ratio * tol: accepted iff ratio <= 1, exactly as the SVD definition
    (tiny sigma_2 above the tolerance is rejected)."""
    rng = np.random.default_rng(int(ratio * 7) + n)
    tol = 100 * max(n, d) * EPS
    X = _with_singular_values(rng, n, d, [1.0, ratio * tol])
    expected = _svd_rank_one(X)
    assert expected == (ratio <= 1)
    assert (rank_one_factors(X, require_sign=False) is not None) == expected
    # the O(nd) test alone never contradicts the definition (it may leave the case undecided)
    quick = _rank_one_pivot(X, tol)
    if quick is False:
        assert not expected
    elif quick is not None:
        assert expected
        c, a0, residual = quick
        assert residual >= np.linalg.norm(X - np.outer(c, a0), 2)


@pytest.mark.parametrize("seed", range(20))
def test_random_low_rank_agrees_with_svd(seed):
    rng = np.random.default_rng(100 + seed)
    n, d = rng.integers(1, 40, size=2)
    k = int(rng.integers(1, 4))
    s = np.sort(10.0 ** rng.uniform(-18, 0, size=k))[::-1]
    s[0] = 1.0
    X = _with_singular_values(rng, n, d, s[: min(k, n, d)]) * 10.0 ** rng.integers(-100, 100)
    assert (rank_one_factors(X, require_sign=False) is not None) == _svd_rank_one(X)
    quick = _rank_one_pivot(X, _tol(X))
    if quick is False:
        assert not _svd_rank_one(X)
    elif quick is not None:
        assert _svd_rank_one(X)


@pytest.mark.parametrize("seed", range(10))
def test_pivot_residual_bound(seed):
    """The rejection rule's lemma: with the largest-modulus pivot, max |R| <= 2 sigma_2(X)."""
    rng = np.random.default_rng(seed)
    n, d = 30, 12
    X = _with_singular_values(rng, n, d, [1.0, 10.0 ** -rng.uniform(0, 8), 10.0 ** -rng.uniform(4, 12)])
    i, j = np.unravel_index(np.argmax(np.abs(X)), X.shape)
    c = X[:, j] / X[i, j]
    r2, rmax, x2 = _residual_pass(X, c, X[i].copy())
    R = X - np.outer(c, X[i])
    s = np.linalg.svd(X, compute_uv=False)
    # entries of R carry rounding up to 4 eps |p| (cancellation), as the detector assumes
    p = abs(X[i, j])
    assert abs(rmax - np.max(np.abs(R))) <= 8 * EPS * p
    assert abs(np.sqrt(r2) - np.linalg.norm(R)) <= 8 * EPS * p * np.sqrt(n * d)
    assert x2 == pytest.approx(np.sum(X**2), rel=1e-12)
    assert rmax <= 2 * s[1] * (1 + 1e-10)


@pytest.mark.parametrize("depth", [2, 3, 5])
@pytest.mark.parametrize("width", [1, 3])
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_rank_one_solver_objective_is_the_networks(depth, width, loss):
    """The solver evaluates the objective analytically (path_output); it must be the network's."""
    import deepdual

    rng = np.random.default_rng(depth * 10 + width)
    c = np.abs(rng.standard_normal(40))
    c[3] = 0.0
    X = np.outer(c, rng.standard_normal(6))
    y = 2 * c + 0.3 * rng.standard_normal(40)
    if loss == "logistic":
        y = np.where(y > np.median(y), 1.0, -1.0)
    sol = deepdual.solve(X, y, beta=0.5, depth=depth, loss=loss, width=width)
    assert sol.method.startswith("Theorem (rank-one")
    ref = deepdual.objective(sol.network, X, y, beta=0.5, loss=loss)
    assert sol.objective == pytest.approx(ref, rel=1e-12)
    F = sol.network.forward(X)
    assert np.allclose(sol.info["kappa"][None, :] * sol.info["c"][:, None], F, rtol=1e-10, atol=1e-12 * np.abs(F).max())


@pytest.mark.parametrize("kw", [{}, {"formulation": "norm_constrained", "trunk_norm": 0.7}, {"parallel": False},
                                {"width": 2}])
@pytest.mark.parametrize("depth", [2, 3])
def test_whitened_solver_objective_is_the_networks(kw, depth):
    import deepdual
    from deepdual.relu.whitened.solver import norm_constrained_objective

    rng = np.random.default_rng(depth)
    Q, _ = np.linalg.qr(rng.standard_normal((30, 12)))
    X = Q.T  # X X^T = I
    y = rng.standard_normal(12)
    sol = deepdual.solve(X, y, beta=0.3, depth=depth, **kw)
    assert "whiten" in sol.method.lower()
    if kw.get("formulation") == "norm_constrained":
        ref = norm_constrained_objective(sol.network, X, y, beta=0.3, trunk_norm=kw["trunk_norm"])
    else:
        ref = deepdual.objective(sol.network, X, y, beta=0.3)
    assert sol.objective == pytest.approx(ref, rel=1e-12)
