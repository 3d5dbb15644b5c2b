"""Memory of the large path (issue 15, docs/performance.md §8).

* outside the first-order solver, the traced peak of a default ``solve`` on the large path is
  at most ``MEMORY_FACTOR`` (3) times X plus the activation masks (``memory_budget``; its
  floor ``MEMORY_FLOOR`` is below that at these sizes); the first-order solver's own peak
  stays within the estimate its memory guard uses;
* row-block temporaries scale with the data (``blocks.block_entries``): at n = 1e4 the
  first-order solver holds no (n, P) float array and no fixed 1-2 MB blocks, and the
  branch-and-bound oracle after the solve, whose memory does not shrink with the data, is
  skipped when it does not fit the budget, with a note in ``info``;
* no n x n array: the peak of a solve with n >> d is far below 8 n^2 bytes;
* X is validated without a copy when it already is C-contiguous float64 (a read-only view:
  inputs are never modified);
* the memory guard raises ``MemoryError`` with a clear message before any work starts;
* ``DualNetRegressor.fit`` samples its patterns without (n, P) float arrays, frees its
  (n, d + 1) bias-column copy before the solve, and chooses the same patterns as before;
* at full column rank the first-order solve reads the implicit X_a over the caller's X
  (``blocks.ScaledDesign``): no (n, r) copy of the data is alive or formed during it.
"""
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import deepdual
from deepdual._validation import check_matrix
from deepdual.blocks import (BLOCK_DATA_FRACTION, BLOCK_ENTRIES, MEMORY_FACTOR, MEMORY_FLOOR, MIN_BLOCK_ENTRIES,
                             block_entries, data_bytes, memory_budget, row_blocks, row_norms)
from deepdual.patterns import first_unique_nonzero, row_space, sample_patterns, unique_rows
from deepdual.relu.convex_program import first_order
from deepdual.relu.convex_program import solver as convex_solver


def _planted(n, d, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.maximum(X @ rng.standard_normal((d, 10)), 0.0) @ rng.standard_normal(10) + 0.1 * rng.standard_normal(n)
    return X, y


def test_peak_of_the_large_path_is_three_times_the_data(monkeypatch):
    n, d = 20_000, 10
    X, y = _planted(n, d)
    real = convex_solver.solve_first_order
    seen = {"outside": 0, "fo_above_entry": 0, "P": 0, "r": 0}

    def measured(Xr, Y, pats, *args, **kwargs):
        # the solver's own peak is measured (and checked) separately: reset around it
        cur, peak = tracemalloc.get_traced_memory()
        seen["outside"] = max(seen["outside"], peak)
        tracemalloc.reset_peak()
        res = real(Xr, Y, pats, *args, **kwargs)
        seen["fo_above_entry"] = tracemalloc.get_traced_memory()[1] - cur
        seen["P"], seen["r"] = len(pats), Xr.shape[1]
        tracemalloc.reset_peak()
        return res

    monkeypatch.setattr(convex_solver, "solve_first_order", measured)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        # the first-order path explicitly: "auto" may take the Gram-reduced interior-point
        # method at this size (docs/convex_program.md §10b), whose memory is not what this checks
        sol = deepdual.solve(X, y, beta=0.01 * n, max_iter=3, progress=False, solver="first_order")
        seen["outside"] = max(seen["outside"], tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()
    assert sol.info["solver"] == "first_order" and seen["P"] > 0
    P = seen["P"]
    data = X.nbytes + n * P
    # what the solution keeps of the solver for a warm start (its sparse multipliers, up to
    # 16 n P bytes: docs/performance.md §8) comes on top of the budget
    kept = sol.info["multiplier_bytes"]
    assert memory_budget(n, d, P) == max(MEMORY_FACTOR * data, MEMORY_FLOOR) == MEMORY_FACTOR * data
    assert seen["outside"] - base <= memory_budget(n, d, P) + kept
    # the first-order solver stays within (twice) the estimate its memory guard uses
    assert seen["fo_above_entry"] <= 2 * first_order.first_order_memory(n, seen["r"], P)
    # and apart from the multipliers it keeps, it holds no (n, P) float array and stays
    # within 3x the data (row blocks of block_entries, a fraction of the data: 5.9 MB here;
    # with the former fixed 1 MB blocks 12.5 MB, above 3 x 3.6 MB)
    assert seen["fo_above_entry"] - kept < min(8 * n * P, MEMORY_FACTOR * data)
    assert np.isfinite(sol.objective) and sol.lower_bound <= sol.objective


@pytest.mark.parametrize("options", [{"solver": "first_order"}, {"n_patterns": 10}])
def test_no_n_by_n_array_when_n_is_much_larger_than_d(options):
    # structure detection (rank one, whitened), pattern sampling, the solver (first-order, or
    # the default interior-point method on a small pattern set), the rebuild and the
    # certificate: nothing of size n^2 (one n x n float array is 512 MB here, the data 0.2 MB)
    n, d = 8000, 3
    X, y = _planted(n, d, seed=1)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        sol = deepdual.solve(X, y, beta=0.01 * n, max_iter=3, progress=False, oracle_time=0.5, **options)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 8 * n * n / 4
    assert sol.lower_bound <= sol.objective


def test_validation_does_not_copy_float64_data():
    X = np.random.default_rng(0).standard_normal((50, 3))
    V = check_matrix(X, copy=False)
    assert np.shares_memory(V, X) and not V.flags.writeable
    assert X.flags.writeable  # the caller's array is unchanged
    with pytest.raises(ValueError):
        V[0, 0] = 1.0
    # the default still returns a new array the caller may modify
    C = check_matrix(X)
    assert not np.shares_memory(C, X) and C.flags.writeable
    # other layouts and dtypes are converted (a copy), never viewed
    for other in (np.asfortranarray(X), X[:, ::2], X.astype(np.float32), X.tolist()):
        W = check_matrix(other, copy=False)
        assert W.dtype == np.float64 and not np.shares_memory(W, X)
    with pytest.raises(ValueError, match="finite"):
        check_matrix(np.array([[1.0, np.nan]]), copy=False)


def test_solve_and_forward_leave_the_input_untouched():
    X, y = _planted(300, 3, seed=2)
    X0, y0 = X.copy(), y.copy()
    sol = deepdual.solve(X, y, beta=3.0, progress=False)
    F = sol.network.forward(X)
    assert np.array_equal(X, X0) and np.array_equal(y, y0) and X.flags.writeable
    assert F.shape == (300, 1) and F.flags.writeable


def test_memory_guard_before_any_work(monkeypatch):
    X, y = _planted(400, 4, seed=3)
    monkeypatch.setattr(first_order, "available_memory", lambda: 10_000)

    def no_work(*args, **kwargs):  # pragma: no cover - must not be reached
        raise AssertionError("the SVD ran before the memory check")

    monkeypatch.setattr(convex_solver, "row_space", no_work)
    with pytest.raises(MemoryError, match=r"needs about .*GiB.*available.*n_patterns"):
        deepdual.solve(X, y, beta=1.0, progress=False)


@settings(max_examples=40, deadline=None)
@given(P=st.integers(1, 30), n=st.integers(1, 40), dup=st.integers(0, 10), seed=st.integers(0, 10**6))
def test_first_unique_nonzero_matches_unique_rows(P, n, dup, seed):
    # the indices sample_patterns keeps: unique_rows without the all-False row, same order
    rng = np.random.default_rng(seed)
    D = rng.random((P, n)) < rng.uniform(0, 1)
    if dup:
        D = np.concatenate([D, D[rng.integers(0, P, dup)]])
    U, idx = unique_rows(D, return_index=True)
    keep = U.any(axis=1)
    got = first_unique_nonzero(D)
    assert np.array_equal(got, idx[keep])
    assert np.array_equal(D[got], U[keep])


def test_sample_patterns_reuses_the_row_space():
    X, _ = _planted(500, 4, seed=4)
    rs = row_space(X)
    a = sample_patterns(X, 30, 0, return_directions=True)
    b = sample_patterns(X, 30, 0, return_directions=True, rs=rs)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    with pytest.raises(ValueError, match="rs"):
        sample_patterns(X[:10], 5, 0, rs=rs)


class _ReachedSolve(Exception):
    pass


def _fit_until_solve(monkeypatch, X, y, **params):
    """Fit a DualNetRegressor up to its call of ``solve`` (stubbed): the traced peak of the
    estimator's own work (validation, zero-network test, pattern sampling), the traced memory
    still live when ``solve`` is entered, and the options passed."""
    from deepdual import DualNetRegressor
    from deepdual import estimators

    seen = {}

    def stub(Xs, Ys, **opts):
        cur, peak = tracemalloc.get_traced_memory()
        seen.update(live=cur, peak=peak, opts=opts, X=Xs)
        raise _ReachedSolve

    monkeypatch.setattr(estimators, "solve", stub)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        with pytest.raises(_ReachedSolve):
            DualNetRegressor(random_state=0, **params).fit(X, y)
    finally:
        tracemalloc.stop()
    seen["live"] -= base
    seen["peak"] -= base
    return seen


def test_fit_samples_patterns_without_n_by_P_float_arrays(monkeypatch):
    # the estimator samples its patterns itself (for warm starts); their signs and margins
    # are formed in row blocks: its peak stays below ONE (n, P) float array (it held two, and
    # a structured copy of the masks for np.unique, before: docs/performance.md §8)
    n, d, P = 20_000, 3, 100
    X, y = _planted(n, d, seed=5)
    seen = _fit_until_solve(monkeypatch, X, y, n_patterns=P)
    pats, dirs = seen["opts"]["patterns"]
    assert pats.shape[1] == n and len(pats) > P // 2
    assert seen["peak"] < 8 * n * P


def test_fit_frees_its_bias_column_copy_before_the_solve(monkeypatch):
    # the (n, d + 1) data with the bias column are built once for the zero-network test and
    # the sampling and are not alive when the solver (which builds its own) is entered; the
    # caller's X is passed on without a copy
    n, d = 20_000, 30
    X, y = _planted(n, d, seed=6)
    seen = _fit_until_solve(monkeypatch, X, y, n_patterns=20)
    assert np.shares_memory(seen["X"], X)
    assert seen["live"] < 8 * n * (d + 1)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(5, 400), d=st.integers(1, 6), P=st.integers(1, 40), ties=st.booleans(),
       seed=st.integers(0, 10**6))
def test_fit_patterns_match_the_unblocked_formula(n, d, P, ties, seed):
    # the blocked signs and margins choose the same patterns and directions as the direct
    # formula: (X_a g > 0), min_i |x_i^T g| > 1e-9 |g| max_i |x_i|, np.unique over rows
    from deepdual import DualNetRegressor

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if ties:
        X = np.round(X, 1)
        X[: n // 3] = X[0]
    Xa = np.hstack([X, np.ones((n, 1))])
    opts = {"n_patterns": P, "rng": seed, "patterns": "sample"}
    assert DualNetRegressor()._choose_patterns(X, True, 1, opts)  # the ones column added block by block
    got_p, got_d = opts["patterns"]
    _, dirs = sample_patterns(Xa, P, seed, return_directions=True)
    Z = Xa @ dirs.T
    keep = (np.abs(Z).min(axis=0) > 1e-9 * np.linalg.norm(dirs, axis=1) * np.linalg.norm(Xa, axis=1).max()) \
        & (Z > 0).any(axis=0)
    pats, dirs = (Z > 0).T[keep], dirs[keep]
    _, first = np.unique(pats, axis=0, return_index=True)
    first = np.sort(first)
    assert np.array_equal(got_p, pats[first]) and np.array_equal(got_d, dirs[first])


@pytest.mark.parametrize("shape", [(6000, 13), (20_000, 4), (3000, 60)])
def test_row_space_lean_svd_agrees_with_numpy(shape):
    # the tall-matrix path of row_space (the SVD of the blocked QR's d x d factor, no (n, d)
    # copy) against numpy.linalg.svd of X: the same singular values to rounding, the same
    # right singular vectors up to sign (distinct singular values here), the same X_r
    from deepdual.patterns import LEAN_SVD_ENTRIES, _right_singular

    rng = np.random.default_rng(shape[0])
    X = rng.standard_normal(shape)
    X[:, -1] = 1.0  # a bias column, as the convex program appends
    assert X.size >= LEAN_SVD_ENTRIES and shape[0] >= 2 * shape[1]
    _, s0, Vt0 = np.linalg.svd(X, full_matrices=False)
    s, Vt = _right_singular(X)
    sign = np.sign(np.sum(Vt * Vt0, axis=1))
    assert np.allclose(s, s0, rtol=1e-12, atol=0) and np.max(np.abs(Vt * sign[:, None] - Vt0)) <= 1e-10
    assert np.allclose(Vt @ Vt.T, np.eye(shape[1]), rtol=0, atol=1e-13)
    rs = row_space(X)
    assert rs.rank == shape[1]
    sign = np.sign(np.sum(rs.V.T * Vt0, axis=1))  # row_space fixes its own signs (signed_columns)
    assert np.allclose(rs.Xr * sign, X @ Vt0.T, rtol=0, atol=1e-10 * np.abs(X).max() * shape[1])


@settings(max_examples=15, deadline=None)
@given(n=st.integers(200, 3000), d=st.integers(1, 12), k=st.integers(1, 12), rows=st.integers(1, 400),
       scale=st.floats(-20, 20), seed=st.integers(0, 2**31 - 1))
def test_triangular_factor_is_a_qr_of_the_data(n, d, k, rows, scale, seed):
    # the blocked QR's factor R satisfies R^T R = X^T X (to rounding) and is upper triangular,
    # for any block size, rank (k < d: rank deficient) and scale; its singular values are X's
    from deepdual.patterns import triangular_factor

    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((n, min(k, d))) @ rng.standard_normal((min(k, d), d))) * 2.0 ** scale
    X.setflags(write=False)
    R = triangular_factor(X, rows=rows)
    assert R.shape == (d, d) and np.array_equal(R, np.triu(R))
    G = X.T @ X
    assert np.allclose(R.T @ R, G, rtol=0, atol=1e-12 * n * np.abs(G).max() + 1e-300)
    s0 = np.linalg.svd(X, compute_uv=False)
    s = np.linalg.svd(R, compute_uv=False)
    assert np.allclose(s, s0, rtol=0, atol=1e-12 * max(n, d) * s0[0] + 1e-300)


def test_triangular_factor_rejects_wide_data():
    from deepdual.patterns import triangular_factor

    with pytest.raises(ValueError, match="`X`"):
        triangular_factor(np.ones((3, 5)))


def test_row_space_of_tall_data_holds_one_copy_at_most():
    # resident peak of row_space on tall data, in a fresh process: the blocked QR holds one
    # row block besides X, then X_r (one (n, r) array) is the result (the SVD of a Fortran
    # copy held two (n, d) buffers, 2.0x X; numpy.linalg.svd three, 3.0x X measured)
    import subprocess
    import sys

    code = (
        "import resource, numpy as np\n"
        "from deepdual.patterns import row_space\n"
        "X = np.random.default_rng(0).standard_normal((200_000, 12))\n"
        "row_space(X[:100])\n"
        "r0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
        "rs = row_space(X)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - r0) / X.nbytes)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "OPENBLAS_NUM_THREADS": "1"})
    assert float(out.stdout.strip().splitlines()[-1]) <= 1.25


def test_scaled_data_is_bitwise_the_hstack_ldexp():
    """``scaled_data`` builds [X, 1] 2^-k in one array with the same bits as the two-copy
    ``np.ldexp(np.hstack([X, 1]), -k)`` it replaces (ldexp by a power of two is exact)."""
    from deepdual.relu.convex_program.solver import scaled_data

    rng = np.random.default_rng(3)
    X = rng.standard_normal((57, 4)) * np.exp(rng.uniform(-30, 30, size=(57, 4)))
    X.setflags(write=False)
    before = X.copy()
    for k in (-7, 0, 5, 40):
        for bias in (True, False):
            ref = np.ldexp(np.hstack([X, np.ones((57, 1))]) if bias else X, -k)
            got = scaled_data(X, bias, k)
            assert got.shape == ref.shape and got.flags.writeable
            assert np.array_equal(got.view(np.uint64), ref.view(np.uint64))
    assert np.array_equal(X, before)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 10**7), d=st.integers(1, 200), P=st.integers(0, 500), cap=st.sampled_from([None, 2**13, 2**17]))
def test_block_entries_scale_with_the_data(n, d, P, cap):
    # a row-block temporary holds BLOCK_DATA_FRACTION of X plus the masks (float64 entries),
    # never fewer than MIN_BLOCK_ENTRIES nor more than the cap; the budget is 3x the data
    # above its floor
    e = block_entries(n, d, P, cap)
    top = BLOCK_ENTRIES if cap is None else cap
    assert 1 <= e <= top
    want = BLOCK_DATA_FRACTION * data_bytes(n, d, P) / 8
    assert e <= max(MIN_BLOCK_ENTRIES, want) + 1
    assert e >= min(top, MIN_BLOCK_ENTRIES, int(want)) or e == min(top, MIN_BLOCK_ENTRIES)
    assert block_entries(2 * n, d, P, cap) >= e  # monotone in n
    assert memory_budget(n, d, P) == max(MEMORY_FACTOR * data_bytes(n, d, P), MEMORY_FLOOR)
    # default row blocks: a fraction of the whole (n, width) result, covering every row once
    sl = list(row_blocks(min(n, 5000), d))
    assert sl[0].start == 0 and sl[-1].stop == min(n, 5000)
    assert all((s.stop - s.start) * d <= max(block_entries(min(n, 5000), d), d) for s in sl)


def test_row_norms_agree_with_numpy():
    X = np.random.default_rng(7).standard_normal((300, 7)) * 1e3
    assert np.allclose(row_norms(X), np.linalg.norm(X, axis=1), rtol=1e-14, atol=0)


def _fo_problem(n, d, P, seed=0):
    X, y = _planted(n, d, seed)
    Xa = np.hstack([X, np.ones((n, 1))]) / 8  # the scale of the solver's units
    rs = row_space(Xa)
    pats = sample_patterns(Xa, P, 0, rs=rs)
    return X, rs, pats, (y / np.abs(y).max())[:, None]


def test_first_order_working_memory_scales_with_the_data():
    # n = 1e4, d = 10, 50 patterns (the default fit path's size): one (n, P) float array is
    # 4 MB, 3.1x the data (X 0.8 MB + masks 0.5 MB).  The solver's traced peak above its
    # entry, apart from the multipliers it returns (n x 2P, stored sparse when smaller; kept
    # for warm starts), stays below one such array: row blocks of MIN_BLOCK_ENTRIES entries
    # (256 kB; they were 1 MB fixed, ~12 MB in all), no (n, r) temporary in the row norms of
    # the cell values, no copy of the masked rows
    from deepdual.losses import SquaredLoss

    n, d, P = 10_000, 10, 50
    X, rs, pats, Y = _fo_problem(n, d, P)
    assert block_entries(n, rs.rank, len(pats), first_order.FO_BLOCK_ENTRIES) == MIN_BLOCK_ENTRIES
    tracemalloc.start()
    try:
        cur = tracemalloc.get_traced_memory()[0]
        res = first_order.solve_first_order(rs.Xr, Y, pats, SquaredLoss(), 1.0, tol=1e-4, max_iter=4)
        peak = tracemalloc.get_traced_memory()[1] - cur
    finally:
        tracemalloc.stop()
    data = X.nbytes + pats.nbytes
    assert peak - res.multiplier_bytes < 8 * n * len(pats)
    assert peak - res.multiplier_bytes < 3 * data
    # the sampled masks are Fortran-ordered, so the solver views their (n, P) transpose (no
    # copy), and its row-block temporaries are reused in place: apart from the multipliers
    # its working memory is below X + masks (1.15x measured; 2.4x with the copy)
    assert pats.flags.f_contiguous
    assert peak - res.multiplier_bytes < 1.5 * data
    # the multipliers: single precision with 16-bit indices, at most 6 bytes per non-zero
    # (and never above the dense float32 block, 4 bytes per entry)
    nnz = sum(0 if s is None else (np.count_nonzero(s) if isinstance(s, np.ndarray) else len(s[1]))
              for s in res.multipliers.data)
    assert res.multiplier_bytes <= min(6 * nnz + 8 * 2 * n * len(pats) // 2**16 + 8 * len(res.multipliers.data),
                                       4 * 2 * n * len(pats))
    assert np.isfinite(res.lower) and res.lower <= res.network_objective * (1 + 1e-12)


def test_oracle_after_the_solve_is_skipped_when_it_does_not_fit_and_says_so():
    # at n = 1e4 the branch-and-bound oracle (~1.7 kB per sample, 17 MB) does not fit
    # 3x the data (3.9 MB): it is skipped, info says so, the spectral bound stays proven
    # (on the grid of docs/performance.md §8 it never improved on it there within its 2 s);
    # small data keep it (the budget's floor)
    n, d = 10_000, 10
    X, y = _planted(n, d, seed=8)
    sol = deepdual.solve(X, y, beta=0.01 * n, solver="first_order", max_iter=3, polish=False, progress=False)
    assert "branch and bound skipped" in sol.info["dual_constraint_how"]
    assert "memory budget" in sol.info["dual_constraint_how"]
    assert sol.lower_bound <= sol.objective
    Xs, ys = _planted(300, 3, seed=9)
    small = deepdual.solve(Xs, ys, beta=3.0, solver="first_order", max_iter=3, polish=False, progress=False,
                           n_patterns=5, certify_max_patterns=0)
    assert "skipped" not in small.info["dual_constraint_how"]
    assert small.lower_bound <= small.objective


def test_estimator_patterns_reach_the_solver_without_a_copy(monkeypatch):
    # DualNetRegressor passes unique non-zero patterns with their directions: the solver
    # uses them as a read-only view (no second copy of the masks; the caller's array is
    # never written)
    from deepdual.relu.convex_program import solver as sv

    X, y = _planted(2000, 3, seed=10)
    rs = row_space(np.hstack([X, np.ones((2000, 1))]))
    pats, dirs = sample_patterns(np.hstack([X, np.ones((2000, 1))]), 20, 0, return_directions=True, rs=rs)
    got, gdirs, complete, how = sv._choose_patterns(np.hstack([X, np.ones((2000, 1))]), rs, (pats, dirs), 20,
                                                    0, None)
    assert np.shares_memory(got, pats) and not got.flags.writeable and pats.flags.writeable
    assert how == "user-supplied" and np.array_equal(got, pats) and not complete
    # duplicates and an all-zero row are still removed (then a copy)
    dup = np.concatenate([pats, pats[:3], np.zeros((1, 2000), bool)])
    ddir = np.concatenate([dirs, dirs[:3], dirs[:1]])
    got2, _, _, _ = sv._choose_patterns(np.hstack([X, np.ones((2000, 1))]), rs, (dup, ddir), 20, 0, None)
    assert np.array_equal(got2, pats) and not np.shares_memory(got2, dup)


# ---------------------------------------------------------------- spectral norm without a copy
def _norm_input(kind, n, d, scale_exp, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if kind == "ill":  # condition number up to 1e12
        X *= np.logspace(0, -12, d)[None, :]
    elif kind == "duplicate":  # a few rows repeated many times
        X = np.tile(X[: max(1, n // 50)], (50, 1))[:n]
        X = np.vstack([X, rng.standard_normal((n - X.shape[0], d))]) if X.shape[0] < n else X
    elif kind == "rank_one":
        X = np.outer(rng.standard_normal(n), rng.standard_normal(d))
    elif kind == "spiky":  # one huge row, the rest tiny
        X[0] *= 1e8
    return np.ldexp(X, scale_exp)  # exact: scales by 2^e (1e-150 ~ 2^-498, 1e150 ~ 2^498)


def _reference_norm(X, rows):
    A = X[rows]
    return float(np.linalg.norm(A, 2)) if A.size else 0.0


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(["random", "ill", "duplicate", "rank_one", "spiky"]),
       n=st.integers(8, 3000), d=st.integers(1, 12), scale_exp=st.sampled_from([0, -498, 498, -900, 900]),
       frac=st.floats(0.05, 1.0), seed=st.integers(0, 2**16))
def test_gram_spectral_norm_bound_is_a_tight_upper_bound(kind, n, d, scale_exp, frac, seed):
    from deepdual import dual_constraint

    X = _norm_input(kind, n, d, scale_exp, seed)
    rows = np.random.default_rng(seed + 1).random(n) < frac
    ref = _reference_norm(X, rows)
    with pytest.MonkeyPatch.context() as mp:  # the Gram route at every size
        mp.setattr(dual_constraint, "GRAM_NORM_MIN_ENTRIES", 1)
        mp.setattr(dual_constraint, "GRAM_NORM_MIN_ROWS_PER_COL", 0)
        X0 = X.copy()
        got = dual_constraint.spectral_norm_bound(X, rows)
        got_all = dual_constraint.spectral_norm_bound(X)
    assert np.array_equal(X, X0)
    # the reference SVD has its own rounding (a few ulps of sigma_max): 4 ulps of slack
    assert got >= ref * (1 - 8 * np.finfo(float).eps)
    assert got <= ref * (1 + 1e-9) or (ref == 0.0 and got == 0.0)
    ref_all = _reference_norm(X, np.ones(n, dtype=bool))
    assert ref_all * (1 - 8 * np.finfo(float).eps) <= got_all <= ref_all * (1 + 1e-9)


@pytest.mark.parametrize("scale_exp", [0, -498, 498])
@pytest.mark.parametrize("kind", ["random", "ill", "duplicate"])
def test_gram_spectral_norm_bound_over_many_blocks(kind, scale_exp):
    from deepdual.dual_constraint import GRAM_NORM_MIN_ENTRIES, spectral_norm_bound

    n, d = 40_000, 8
    X = _norm_input(kind, n, d, scale_exp, 3)
    rows = X[:, 0] > 0
    assert rows.sum() * d >= GRAM_NORM_MIN_ENTRIES and len(list(row_blocks(n, d))) > 4  # the blocked route
    ref = _reference_norm(X, rows)
    got = spectral_norm_bound(X, rows)
    assert ref * (1 - 8 * np.finfo(float).eps) <= got <= ref * (1 + 1e-9)


def test_spectral_bounds_hold_no_copy_of_the_support_rows():
    """support_spectral_bound (after the solve) and the estimator's zero-network check
    (c_spectral_bound) bound the spectral norms through the blocked Gram matrix: no (n_S, d)
    copy (here 4 MB) and no full SVD of X."""
    from deepdual.dual_constraint import c_spectral_bound
    from deepdual.relu.convex_program.certificate import support_spectral_bound

    rng = np.random.default_rng(0)
    n, d = 50_000, 20
    X = rng.standard_normal((n, d))
    v = rng.standard_normal(n)
    copy_bytes = 8 * (n // 2) * d
    tracemalloc.start()
    try:
        got = support_spectral_bound(X, v)
        peak_support = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        c0 = c_spectral_bound(v, X)
        peak_zero = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak_support < copy_bytes / 4 and peak_zero < copy_bytes / 4
    ref = max(np.linalg.norm(X[v > 0], 2) * np.linalg.norm(v[v > 0]),
              np.linalg.norm(X[v < 0], 2) * np.linalg.norm(v[v < 0]))
    assert ref * (1 - 1e-14) <= got <= ref * (1 + 1e-9)
    ref0 = np.linalg.norm(X, 2) * max(np.linalg.norm(np.maximum(v, 0)), np.linalg.norm(np.minimum(v, 0)))
    assert ref0 * (1 - 1e-14) <= c0 <= ref0 * (1 + 1e-9)


@pytest.mark.parametrize("n, d, r", [(10_000, 10, 10), (10_000, 10, 11), (50_000, 10, 10), (100_000, 10, 10),
                                     (100_000, 10, 11), (10_000, 50, 10)])
def test_auto_gram_rule_keeps_issue_15_grid_within_three_times_the_data(n, d, r):
    # issue 15's sizes (n > IPM_FLOOR_MAX_SAMPLES): the Gram method's whole path must fit
    # 3 (X + masks); its estimate (two (Pr)^2 matrices, the copies of X, the masks) does not
    # at P = 100, so "auto" keeps the first-order path; small data keep the 128 MiB floor
    P = 100
    assert n > convex_solver.IPM_FLOOR_MAX_SAMPLES
    assert convex_solver.ipm_allowance(n, d, P) == memory_budget(n, d, P)
    assert convex_solver.gram_path_memory(n, d, r, P) > memory_budget(n, d, P)
    assert not convex_solver.gram_fits(n, d, r, P)
    small = convex_solver.IPM_FLOOR_MAX_SAMPLES
    assert convex_solver.ipm_allowance(small, d, P) == max(memory_budget(small, d, P), convex_solver.IPM_MEMORY_FLOOR)
    assert convex_solver.gram_fits(small, d, r, P)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 10**7), d=st.integers(1, 100), r=st.integers(1, 60), P=st.integers(1, 300))
def test_gram_fits_only_within_the_budget_above_the_small_data_floor(n, d, r, P):
    fits = convex_solver.gram_fits(n, d, min(r, d + 1), P)
    need = convex_solver.gram_path_memory(n, d, min(r, d + 1), P)
    if n > convex_solver.IPM_FLOOR_MAX_SAMPLES:
        assert fits == (need <= memory_budget(n, d, P))
    else:
        assert fits == (need <= max(memory_budget(n, d, P), convex_solver.IPM_MEMORY_FLOOR))


def test_auto_takes_first_order_when_the_gram_path_does_not_fit(monkeypatch):
    # the same low-rank sampled squared-loss program: the Gram method while the data are
    # "small" (its memory under the floor), the first-order method once they count as large
    # (the Gram path is then above 3 (X + masks)); solver="gram" stays available explicitly
    n, d = 6000, 3
    X, y = _planted(n, d, seed=11)
    kw = dict(beta=0.01 * n, n_patterns=20, polish=False, oracle_time=0, progress=False, max_iter=5)
    assert n > convex_solver.IPM_FLOOR_MAX_SAMPLES and not convex_solver.gram_fits(n, d, d, 20)
    large = deepdual.solve(X, y, **kw)
    assert large.info["solver"] == "first_order"
    monkeypatch.setattr(convex_solver, "IPM_FLOOR_MAX_SAMPLES", n)  # the same data counted as small
    assert convex_solver.gram_fits(n, d, d, 20)
    small = deepdual.solve(X, y, **kw)
    assert small.info["solver"] == "gram"
    monkeypatch.undo()
    explicit = deepdual.solve(X, y, solver="gram", **kw)
    assert explicit.info["solver"] == "gram"
    for sol in (small, large, explicit):
        assert sol.lower_bound <= sol.objective
    # the Gram method solves the sampled program (its proven gap is tiny), the first-order
    # method's objective is an upper bound of the same program: never below its proven bound
    assert large.info["restricted_objective"] >= small.info["restricted_lower_bound"] * (1 - 1e-9)


def test_first_order_warm_start_leaves_the_given_multipliers_untouched():
    # a warm start reads the previous solve's multipliers; its block-by-block update works on
    # a new list, so the earlier result (e.g. a Solution's info["warm_start"]) is unchanged
    from deepdual.losses import SquaredLoss

    X, rs, pats, Y = _fo_problem(3000, 4, 20)
    first = first_order.solve_first_order(rs.Xr, Y, pats, SquaredLoss(), 0.5, tol=1e-6, max_iter=30)
    kept = list(first.multipliers.data)
    values = [None if s is None else first.multipliers.ops.unpack(s, (0, 0)).copy() for s in kept]
    second = first_order.solve_first_order(rs.Xr, Y, pats, SquaredLoss(), 0.4, tol=1e-6, max_iter=30,
                                           z0=first.z, multipliers=first.multipliers, rho=first.rho)
    assert second.multipliers is not first.multipliers
    assert all(a is b for a, b in zip(first.multipliers.data, kept))
    for s, v in zip(first.multipliers.data, values):
        assert (s is None and v is None) or np.array_equal(first.multipliers.ops.unpack(s, (0, 0)), v)
    assert second.lower <= second.network_objective * (1 + 1e-12)


def _numpy_ops():
    from deepdual.losses import SquaredLoss

    X, rs, pats, Y = _fo_problem(50, 2, 3)
    return first_order.solve_first_order(rs.Xr, Y, pats, SquaredLoss(), 1.0, tol=1e-3, max_iter=1).multipliers.ops


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 700), G=st.integers(1, 400), dens=st.floats(0.0, 1.0), seed=st.integers(0, 2**31 - 1))
def test_multiplier_storage_round_trips_in_single_precision(rows, G, dens, seed):
    # pack/unpack of a non-negative block: exactly its float32 rounding (so >= 0, as every
    # bound computed from the multipliers requires), in at most min(6 nnz, 4 size) bytes
    rng = np.random.default_rng(seed)
    a = np.where(rng.random((rows, G)) < dens, rng.exponential(size=(rows, G)) * 10.0 ** rng.integers(-30, 30), 0.0)
    ops = _numpy_ops()  # the numpy backend's storage, as the solver uses it
    stored = ops.pack(a)
    got = ops.unpack(stored, a.shape)
    if not np.any(a):
        assert stored is None and got is None
        return
    assert got.dtype == np.float64 and got.shape == a.shape
    assert np.array_equal(got, a.astype(np.float32).astype(float)) and np.all(got >= 0)
    assert ops.stored_bytes(stored) <= min(6 * np.count_nonzero(a) + 8 * (a.size // 2**16 + 1), 4 * a.size)


@settings(max_examples=40, deadline=None)
@given(P=st.integers(1, 40), n=st.integers(1, 3000), seed=st.integers(0, 2**31 - 1))
def test_mask_rows_and_packed_rows_agree_with_numpy(P, n, seed):
    from deepdual.patterns import mask_rows, packed_rows

    rng = np.random.default_rng(seed)
    D = rng.random((P, n)) < rng.random()
    idx = rng.permutation(P)[:rng.integers(0, P + 1)]
    M = mask_rows(D, idx)
    assert M.flags.f_contiguous and np.array_equal(M, D[idx])
    for arr in (D, np.asfortranarray(D), M):
        assert np.array_equal(packed_rows(arr), np.packbits(arr, axis=1))
    assert np.array_equal(first_unique_nonzero(np.asfortranarray(D)), first_unique_nonzero(D))
    F = np.asfortranarray(D)
    assert mask_rows(F, np.arange(P)) is F  # all rows in order: no copy


def test_default_path_at_a_mid_size_instance_stays_within_three_times_the_data():
    # solve() with default options (but a short step budget) at n = 12 000, d = 10, 100
    # sampled patterns: "auto" takes the first-order method (the Gram method's (Pr)^2 path
    # does not fit 3 (X + masks) above IPM_FLOOR_MAX_SAMPLES), and the whole call's traced
    # peak, multipliers, polish and certificate included, stays within 3 (X + masks)
    # (2.5x measured).  One (n, P) float64 array alone would be 8nP = 4.4x the data, so none
    # is ever alive.
    n, d = 12_000, 10
    X, y = _planted(n, d, seed=21)
    deepdual.solve(X[:300], y[:300], beta=3.0, progress=False)  # lazy imports outside the trace
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        sol = deepdual.solve(X, y, beta=0.01 * n, progress=False, max_iter=25)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    P = sol.info["patterns"]
    data = X.nbytes + n * P
    assert sol.info["solver"] == "first_order" and P == 100
    assert 8 * n * P > MEMORY_FACTOR * data
    assert peak <= MEMORY_FACTOR * data
    assert sol.lower_bound <= sol.objective


@settings(max_examples=20, deadline=None)
@given(n=st.sampled_from([40, 3000, 9000]), d=st.integers(1, 12), P=st.integers(1, 30), seed=st.integers(0, 10**6))
def test_row_space_with_ones_column_is_that_of_the_augmented_copy(n, d, P, seed):
    # the bias column added a block of rows at a time gives the same row space (same bits:
    # the same QR buffers, the same products row by row) and the same sampled patterns as
    # the (n, d + 1) copy, also without forming X_r whole
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.exp(rng.uniform(-3, 3, d))
    Xa = np.hstack([X, np.ones((n, 1))])
    ref, got = row_space(Xa), row_space(X, ones_column=True)
    assert np.array_equal(ref.V, got.V)
    np.testing.assert_allclose(got.Xr, ref.Xr, rtol=0, atol=1e-12 * np.abs(ref.Xr).max())
    lean = row_space(X, ones_column=True, with_Xr=False)
    assert lean.Xr is None and np.array_equal(lean.V, ref.V)
    a = sample_patterns(Xa, P, seed, return_directions=True, rs=ref)
    b = sample_patterns(X, P, seed, return_directions=True, rs=lean, ones_column=True)
    assert np.array_equal(a[1], b[1]) and a[1].shape[1] == d + 1
    # the signs agree wherever the margin is above the rounding of the products
    margin = np.abs(Xa @ a[1].T).T > 1e-12 * np.abs(Xa).sum(axis=1) * np.abs(a[1]).sum(axis=1)[:, None]
    assert np.array_equal(a[0][margin], b[0][margin])
    with pytest.raises(ValueError, match="rs"):
        sample_patterns(X, P, seed, rs=ref)  # d + 1 columns in rs, but no ones column asked for



def test_first_order_at_full_column_rank_forms_no_copy_of_the_data(monkeypatch):
    # at full column rank the first-order solver works on the implicit X_a over the caller's
    # X (blocks.ScaledDesign, V = I): neither X_a nor X_r = X_a V (each 8 n (d + 1) bytes) is
    # alive when it starts, nor formed during the solve (docs/performance.md §8, session 9)
    # (an (n, r) copy at the start is 6.4 MB of live memory here, above the 1.04 MB allowed)
    from deepdual.blocks import ScaledDesign

    n, d, P = 20_000, 40, 20
    X, y = _planted(n, d, seed=7)
    real = convex_solver.solve_first_order
    seen = {}

    def measured(Xr, Y, pats, *args, **kwargs):
        cur, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        seen["solving"] = True
        try:
            res = real(Xr, Y, pats, *args, **kwargs)
        finally:
            seen["solving"] = False
        seen.update(design=Xr, live=cur - seen["base"], above=tracemalloc.get_traced_memory()[1] - cur,
                    kept=res.multiplier_bytes, P=len(pats))
        return res

    materialize = ScaledDesign.__array__

    def watched(self, *args, **kwargs):
        assert not seen.get("solving"), "the first-order solve materialized X_a"
        return materialize(self, *args, **kwargs)

    monkeypatch.setattr(ScaledDesign, "__array__", watched)
    # (warm-up: the modules the path imports lazily are not charged)
    deepdual.solve(X[:500], y[:500], beta=5.0, n_patterns=P, max_iter=2, progress=False, solver="first_order")
    monkeypatch.setattr(convex_solver, "solve_first_order", measured)
    tracemalloc.start()
    try:
        seen["base"] = tracemalloc.get_traced_memory()[0]
        sol = deepdual.solve(X, y, beta=0.01 * n, n_patterns=P, max_iter=20, progress=False, solver="first_order")
    finally:
        tracemalloc.stop()
    assert sol.info["solver"] == "first_order" and sol.info["rank"] == d  # (no bias column by default)
    assert isinstance(seen["design"], ScaledDesign) and np.shares_memory(seen["design"].X, X)
    copy = 8 * n * d
    # live at the start: the masks, the labels and small arrays; an (n, r) copy would add 6.4 MB
    assert seen["live"] < n * seen["P"] + 4 * 8 * n < copy
    # during the solve (above: X_a never materialized): row-block temporaries (a fraction of
    # the data), a few n-vectors and the multipliers it keeps: less than one copy of the data
    # beside the multipliers (X_r formed inside would add 6.4 MB here), and within its memory
    # guard's estimate less the X_r it counts
    assert seen["above"] - seen["kept"] < copy
    assert seen["above"] <= first_order.first_order_memory(n, d, seen["P"]) - copy
    # the warm start is in X_a's coordinates and restarts the same solve
    again = deepdual.solve(X, y, beta=0.01 * n, n_patterns=P, max_iter=1, progress=False, solver="first_order",
                           init=sol)
    assert again.info["solver"] == "first_order" and np.isfinite(again.lower_bound)
    assert again.lower_bound <= again.objective


def test_gram_method_at_full_column_rank_forms_no_copy_and_stays_within_its_estimate(monkeypatch):
    # at full column rank the Gram method, like the first-order method, reads the implicit
    # X_a over the caller's X (V = I): no (n, r) copy is alive when it starts (one is 6.4 MB
    # here), and solver.gram_path_memory(..., implicit=True) -- what "auto" checks against
    # 3 (X + masks) -- bounds the traced peak of the whole call, the method's own peak within
    # gram_ipm.gram_memory (docs/convex_program.md §10b)
    from deepdual.blocks import ScaledDesign
    from deepdual.relu.convex_program import gram_ipm

    n, d, P = 20_000, 40, 20
    X, y = _planted(n, d, seed=8)
    real = convex_solver.solve_gram
    seen = {}

    def measured(Xr, Y, pats, *args, **kwargs):
        cur, _ = tracemalloc.get_traced_memory()
        seen["outside"] = tracemalloc.get_traced_memory()[1] - seen["base"]
        tracemalloc.reset_peak()
        res = real(Xr, Y, pats, *args, **kwargs)
        seen.update(design=Xr, live=cur - seen["base"], above=tracemalloc.get_traced_memory()[1] - cur,
                    P=len(pats), r=Xr.shape[1])
        return res

    deepdual.solve(X[:500], y[:500], beta=5.0, n_patterns=P, progress=False, solver="gram")  # (lazy imports)
    monkeypatch.setattr(convex_solver, "solve_gram", measured)
    tracemalloc.start()
    try:
        seen["base"] = tracemalloc.get_traced_memory()[0]
        sol = deepdual.solve(X, y, beta=0.01 * n, n_patterns=P, progress=False, solver="gram")
        peak = tracemalloc.get_traced_memory()[1] - seen["base"]
    finally:
        tracemalloc.stop()
    assert sol.info["solver"] == "gram" and sol.info["rank"] == d and seen["P"] == P
    assert isinstance(seen["design"], ScaledDesign) and np.shares_memory(seen["design"].X, X)
    copy = 8 * n * d
    assert seen["live"] < n * P + 4 * 8 * n < copy  # the masks, the labels, small arrays
    assert seen["above"] <= gram_ipm.gram_memory(n, d, P)
    est = convex_solver.gram_path_memory(n, d, d, P, implicit=True)
    assert max(peak, seen["outside"]) <= est
    assert sol.lower_bound <= sol.objective
