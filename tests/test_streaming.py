"""Tall data through sufficient statistics: accumulation (chunks, dask), the
compressed equivalent data set, the dask path of deepdual.solve against the
in-memory path (1e-10 relative), predictions on dask input, and float32 input."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import deepdual
from deepdual.stats import SufficientStats, accumulate, from_arrays

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")

# streaming and in-memory answers (objective, lower bound) must agree to this relative
# accuracy (issue 7); both are O(eps * cond(X)^2) from the exact answer for the
# well-conditioned data here
AGREE = 1e-10
# Deep (L >= 3) optima come from a 1-D search over ||M||: the objective is smooth at the
# minimizer, so a value accurate to ~1e-14 pins the minimizer (and the predictions) only
# to ~sqrt(1e-14) = 1e-7 relative
DEEP_PRED = 1e-7


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


needs_linear = pytest.mark.skipif(not _has("deepdual.linear.solver"), reason="solvers.linear not available yet")
needs_rank_one = pytest.mark.skipif(not _has("deepdual.relu.rank_one.solver"),
                                    reason="solvers.relu_rank_one not available yet")


@pytest.fixture(scope="module")
def client():
    """A small in-process dask cluster (one worker, two threads)."""
    c = distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None)
    yield c
    c.close()


def _chunks(X, y, size):
    for i in range(0, X.shape[0], size):
        yield X[i:i + size], y[i:i + size]


# --------------------------------------------------------------------- statistics
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_accumulate_matches_direct_products(dtype):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((503, 7)).astype(dtype)
    Y = rng.standard_normal((503, 2)).astype(dtype)
    st = accumulate(_chunks(X, Y, 64))
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    assert st.n == 503 and st.d == 7 and st.K == 2 and st.scalar is False
    assert np.allclose(st.gram, X64.T @ X64, rtol=1e-13, atol=1e-11)
    assert np.allclose(st.cross, X64.T @ Y64, rtol=1e-13, atol=1e-11)
    assert np.allclose(st.yy, Y64.T @ Y64, rtol=1e-13, atol=1e-11)
    # order of chunks and merging do not matter
    parts = [from_arrays(a, b) for a, b in _chunks(X, Y, 100)]
    st2 = parts[3]
    for p in parts[:3][::-1] + parts[4:]:
        st2.merge(p)
    assert np.allclose(st2.gram, st.gram, rtol=1e-13, atol=1e-11)


def test_compressed_data_set_is_equivalent():
    r"""1/2||XM - Y||^2 = 1/2||X~M - Y~||^2 + c0 for every M (stats module docstring)."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((400, 6))
    X[:, 5] = X[:, 0] - X[:, 1]  # rank deficient: compression keeps 5 rows
    Y = rng.standard_normal((400, 3))
    st = accumulate(_chunks(X, Y, 77))
    comp = st.compress()
    assert comp.X.shape == (5, 6) and comp.Y.shape == (5, 3) and comp.c0 >= 0
    for _ in range(5):
        M = rng.standard_normal((6, 3))
        direct = 0.5 * np.sum((X @ M - Y) ** 2)
        assert 0.5 * np.sum((comp.X @ M - comp.Y) ** 2) + comp.c0 == pytest.approx(direct, rel=1e-12)
        assert st.loss_linear(M) == pytest.approx(direct, rel=1e-12)


def test_extreme_scales_are_exact():
    """Power-of-two scaling: statistics of 2^k X equal those of X scaled exactly, even where
    X^T X itself would overflow in float64."""
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((200, 4)), rng.standard_normal(200)
    k = 520  # 2^1040 * n overflows float64
    big = accumulate(_chunks(np.ldexp(X, k), np.ldexp(y, -k), 50))
    ref = accumulate(_chunks(X, y, 50))
    cb, cr = big.compress(), ref.compress()
    assert np.all(np.isfinite(cb.X))
    assert np.allclose(cb.X, np.ldexp(cr.X, k), rtol=1e-13, atol=0)
    assert np.allclose(cb.Y, np.ldexp(cr.Y, -k), rtol=1e-12, atol=0)
    assert cb.c0 == pytest.approx(np.ldexp(cr.c0, -2 * k), rel=1e-12)


def test_rank_one_detection():
    rng = np.random.default_rng(3)
    c = np.abs(rng.standard_normal(300))
    c[:5] = 0.0  # zero rows are allowed
    a0 = rng.standard_normal(5)
    y = rng.standard_normal(300)
    for sign in (1.0, -1.0):
        st = accumulate(_chunks(sign * np.outer(c, a0), y, 64))
        comp = st.rank_one()
        assert comp is not None
        # X~ = ||c|| a0^T with a0 oriented so that c >= 0; Y~ = c^T y / ||c||
        assert np.allclose(comp.X[0], sign * np.linalg.norm(c) * a0, rtol=1e-12)
        assert comp.Y[0, 0] == pytest.approx(c @ y / np.linalg.norm(c), rel=1e-12)
        assert comp.c0 == pytest.approx(0.5 * (y @ y - (c @ y) ** 2 / (c @ c)), rel=1e-12)
    mixed = np.outer(c * np.where(np.arange(300) == 150, -1, 1), a0)
    assert accumulate(_chunks(mixed, y, 64)).rank_one() is None
    noisy = np.outer(c, a0) + 1e-6 * rng.standard_normal((300, 5))
    assert accumulate(_chunks(noisy, y, 64)).rank_one() is None


def test_accumulate_rejects_bad_chunks():
    with pytest.raises(ValueError, match="empty"):
        accumulate([])
    with pytest.raises(TypeError, match="pairs"):
        accumulate([np.ones((3, 2))])
    with pytest.raises(ValueError, match="finite"):
        accumulate([(np.array([[1.0, np.nan]]), np.ones(1))])
    with pytest.raises(ValueError, match="expected"):
        accumulate([(np.ones((3, 2)), np.ones(3)), (np.ones((3, 3)), np.ones(3))])


def test_from_dask_matches_numpy(client):
    from deepdual.stats import from_dask

    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((1000, 6)), rng.standard_normal(1000)
    st = from_dask(da.from_array(X, chunks=(97, 3)), da.from_array(y, chunks=250))
    assert st.n == 1000 and st.scalar is True
    assert np.allclose(st.gram, X.T @ X, rtol=1e-13, atol=1e-10)
    assert np.allclose(st.cross[:, 0], X.T @ y, rtol=1e-13, atol=1e-10)


# --------------------------------------------------------------------- solving
def _agree(a: float, b: float) -> bool:
    return abs(a - b) <= AGREE * max(abs(a), abs(b))


def _compare(sol_s, sol_m, X, *, pred_rtol=AGREE):
    assert _agree(sol_s.objective, sol_m.objective), (sol_s.objective, sol_m.objective)
    assert _agree(sol_s.lower_bound, sol_m.lower_bound), (sol_s.lower_bound, sol_m.lower_bound)
    assert sol_s.method == sol_m.method
    assert sol_s.certified == sol_m.certified
    Fs, Fm = sol_s.network.forward(X), sol_m.network.forward(X)
    assert np.linalg.norm(Fs - Fm) <= pred_rtol * np.linalg.norm(Fm)


@needs_linear
@pytest.mark.parametrize("depth", [2, 3])
def test_dask_linear_scalar_matches_in_memory(client, depth):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((2000, 8))
    y = X @ rng.standard_normal(8) + rng.standard_normal(2000)
    beta = 40.0
    sol_m = deepdual.solve(X, y, beta=beta, depth=depth, activation="linear")
    sol_s = deepdual.solve(da.from_array(X, chunks=(256, 8)), da.from_array(y, chunks=256), beta=beta,
                           depth=depth, activation="linear")
    _compare(sol_s, sol_m, X, pred_rtol=AGREE if depth == 2 else DEEP_PRED)
    assert sol_s.certified and sol_s.info["streaming"] and sol_s.info["compressed_rows"] == 8
    # the objective reported is the full-data objective of the returned network
    assert _agree(sol_s.objective, deepdual.objective(sol_s.network, X, y, beta=beta))
    # predictions on dask input: lazy, same values
    pred = sol_s.network.predict(da.from_array(X, chunks=(300, 8)))
    assert hasattr(pred, "compute") and pred.shape == (2000,)
    assert np.allclose(pred.compute(), sol_s.predict(X), rtol=1e-14, atol=1e-14)


@needs_linear
@pytest.mark.parametrize("depth", [2, 3])
def test_dask_linear_vector_orthonormal_matches_in_memory(client, depth):
    """Vector output with X^T X = I: the closed forms of docs/theory.md §2.2/2.3 (structure preserved
    by the compression, whose X~ is then an orthogonal d x d matrix)."""
    rng = np.random.default_rng(6)
    X, _ = np.linalg.qr(rng.standard_normal((600, 5)))
    Y = X @ rng.standard_normal((5, 3)) * 4 + 0.1 * rng.standard_normal((600, 3))
    beta = 1.0
    sol_m = deepdual.solve(X, Y, beta=beta, depth=depth, activation="linear")
    sol_s = deepdual.solve(da.from_array(X, chunks=(128, 5)), Y, beta=beta, depth=depth, activation="linear")
    _compare(sol_s, sol_m, X, pred_rtol=AGREE if depth == 2 else DEEP_PRED)
    pred = sol_s.network.predict(da.from_array(X, chunks=(128, 5)))
    assert pred.shape == (600, 3)
    assert np.allclose(pred.compute(), sol_m.predict(X), rtol=1e-10, atol=1e-12)


@needs_linear
def test_chunked_generator_and_float32(client):
    """accumulate() from a generator + solve_stats; float32 input is computed in float64."""
    from deepdual.streaming import solve_stats

    rng = np.random.default_rng(7)
    X = rng.standard_normal((1500, 6)).astype(np.float32)
    y = (X @ rng.standard_normal(6).astype(np.float32) + 0.5 * rng.standard_normal(1500)).astype(np.float32)
    beta = 25.0
    sol_m = deepdual.solve(X.astype(np.float64), y.astype(np.float64), beta=beta, activation="linear")
    sol_32 = deepdual.solve(X, y, beta=beta, activation="linear")  # in-memory, float32 input
    assert sol_32.objective == sol_m.objective  # validated to the same float64 arrays
    assert all(W.dtype == np.float64 for Ws in sol_32.network.weights for W in Ws)
    sol_s = solve_stats(accumulate(_chunks(X, y, 200)), beta=beta, activation="linear")
    _compare(sol_s, sol_m, X.astype(np.float64))
    sol_d = deepdual.solve(da.from_array(X, chunks=(300, 6)), da.from_array(y, chunks=300), beta=beta,
                           activation="linear")
    _compare(sol_d, sol_m, X.astype(np.float64))


@needs_rank_one
@pytest.mark.parametrize("depth", [2, 4])
def test_dask_rank_one_relu_matches_in_memory(client, depth):
    rng = np.random.default_rng(8)
    c = np.abs(rng.standard_normal(1200))
    X = np.outer(c, rng.standard_normal(6))
    y = 1.5 * c + 0.3 * rng.standard_normal(1200)
    beta = 2.0
    sol_m = deepdual.solve(X, y, beta=beta, depth=depth, activation="relu")
    sol_s = deepdual.solve(da.from_array(X, chunks=(200, 6)), da.from_array(y, chunks=200), beta=beta,
                           depth=depth, activation="relu")
    _compare(sol_s, sol_m, X, pred_rtol=AGREE if depth == 2 else DEEP_PRED)
    assert sol_s.info["compressed_rows"] == 1
    assert _agree(sol_s.objective, deepdual.objective(sol_s.network, X, y, beta=beta))


def test_unsupported_streaming_cases_raise_before_computing(client):
    rng = np.random.default_rng(9)
    X = da.from_array(rng.standard_normal((100, 3)), chunks=(25, 3))
    y = da.from_array(np.where(rng.random(100) < 0.5, 1.0, -1.0), chunks=25)
    with pytest.raises(ValueError, match="loss='squared'"):
        deepdual.solve(X, y, beta=1.0, activation="linear", loss="logistic")
    with pytest.raises(ValueError, match="bias=False"):
        deepdual.solve(X, y, beta=1.0, activation="linear", bias=True)
    with pytest.raises(ValueError, match="rank-one"):
        deepdual.solve(X, y, beta=1.0, activation="relu")
    with pytest.raises(ValueError, match="method"):
        deepdual.solve(X, y, beta=1.0, activation="relu", method="whitened")
