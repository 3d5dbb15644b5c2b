"""The Gram-reduced interior-point method for the squared-loss sampled program
(deepdual.relu.convex_program.gram_ipm; docs/convex_program.md §10b): same optimum as
cvxpy (Clarabel) and as the primal-dual IPM, every cone row satisfied, a proven lower bound
below the cvxpy optimum, the memory estimate, warm starts, bad input."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import deepdual
from deepdual.patterns import row_space, sample_patterns
from deepdual.relu.convex_program import gram_ipm, solver as solver_mod
from deepdual.relu.convex_program import first_order
from deepdual.relu.convex_program.gram_ipm import gram_matrix, gram_memory, solve_gram

cp = pytest.importorskip("cvxpy")


def _data(seed: int, n: int, d: int, *, dup: int = 0, rank: int | None = None):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if rank is not None:  # rank-deficient data
        X = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, d))
    if dup:  # duplicate rows
        X[-dup:] = X[:dup]
    y = np.maximum(X @ rng.standard_normal((d, 4)), 0.0) @ rng.standard_normal(4) + 0.1 * rng.standard_normal(n)
    return X, y


def _program(X, y, beta, P, seed):
    pats, dirs = sample_patterns(X, P, seed, return_directions=True)
    rs = row_space(X)
    return rs.Xr, pats, dirs @ rs.V


def _cvxpy(Xr, y, pats, beta) -> float:
    P, r = len(pats), Xr.shape[1]
    V, W = cp.Variable((P, r)), cp.Variable((P, r))
    Dm = pats.astype(float)
    S = 2.0 * Dm - 1.0
    F = sum(cp.multiply(Dm[p], Xr @ (V[p] - W[p])) for p in range(P))
    cons = [cp.multiply(S[p], Xr @ V[p]) >= 0 for p in range(P)] + [cp.multiply(S[p], Xr @ W[p]) >= 0
                                                                      for p in range(P)]
    obj = 0.5 * cp.sum_squares(F - y) + beta * (cp.sum(cp.norm(V, 2, axis=1)) + cp.sum(cp.norm(W, 2, axis=1)))
    prob = cp.Problem(cp.Minimize(obj), cons)
    prob.solve(solver="CLARABEL")
    return float(prob.value)


def _check(Xr, y, pats, beta, res, ref):
    """Optimum to 1e-6 of the reference, feasible on every row, proven bound below it."""
    P = len(pats)
    z = res.z
    assert abs(res.convex_objective - ref) <= 1e-6 * abs(ref)
    assert res.lower <= ref + 1e-7 * abs(ref)  # (cvxpy solves to ~1e-8)
    assert res.lower <= res.convex_objective
    # every cone row of every group (not only the working rows)
    S = np.where(pats, 1.0, -1.0)
    xn = np.linalg.norm(Xr, axis=1)
    for g in range(2 * P):
        m = S[g % P] * (Xr @ z[g])
        assert np.all(m >= -1e-10 * xn * np.linalg.norm(z[g]))
    # feasible: the network (true ReLUs) has the program's objective
    assert res.network_objective == pytest.approx(res.convex_objective, rel=1e-9)
    # and the objective is recomputed from the data, not from the Gram matrix
    F = sum(pats[p] * (Xr @ (z[p] - z[P + p])) for p in range(P))
    val = 0.5 * float(np.sum((F - y) ** 2)) + beta * float(np.linalg.norm(z, axis=1).sum())
    assert val == pytest.approx(res.convex_objective, rel=1e-12)


@pytest.mark.parametrize("seed,n,d,P,kw", [
    (0, 40, 1, 6, {}),
    (1, 50, 2, 10, {}),
    (2, 60, 3, 15, {"dup": 10}),
    (3, 80, 4, 20, {"rank": 2}),
    (4, 120, 5, 20, {"dup": 20}),
    (5, 150, 5, 25, {}),
])
def test_same_optimum_as_cvxpy(seed, n, d, P, kw):
    X, y = _data(seed, n, d, **kw)
    beta = 0.1 * np.sqrt(n)
    Xr, pats, dirs = _program(X, y, beta, P, seed)
    ref = _cvxpy(Xr, y, pats, beta)
    # the row working set (not all rows from the start) and all rows
    for all_rows in (False, True):
        res = solve_gram(Xr, y[:, None], pats, beta, tol=1e-9, interior=dirs, all_rows=all_rows)
        assert res.converged and res.status == "optimal"
        _check(Xr, y, pats, beta, res, ref)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), d=st.integers(1, 5), beta=st.floats(0.05, 5.0))
def test_property_optimum_and_bound(seed, d, beta):
    X, y = _data(seed, 50, d)
    Xr, pats, dirs = _program(X, y, beta, 8, seed)
    ref = _cvxpy(Xr, y, pats, beta)
    res = solve_gram(Xr, y[:, None], pats, beta, tol=1e-9, interior=dirs, all_rows=False)
    _check(Xr, y, pats, beta, res, ref)


def test_without_directions_and_duplicate_patterns():
    """No interior directions: an LP finds them; a pattern whose cone has no interior
    (all-true pattern on data with rows x and -x) stays at 0 and still counts in the bound."""
    X, y = _data(7, 60, 3)
    X = np.vstack([X, -X[:5]])
    y = np.concatenate([y, y[:5]])
    beta = 0.5
    Xr, pats, _ = _program(X, y, beta, 10, 7)
    pats = np.vstack([pats, np.ones(len(X), dtype=bool)])
    ref = _cvxpy(Xr, y, pats, beta)
    res = solve_gram(Xr, y[:, None], pats, beta, tol=1e-9)
    _check(Xr, y, pats, beta, res, ref)
    P = len(pats)
    assert np.all(res.z[[P - 1, 2 * P - 1]] == 0.0)


def test_same_optimum_as_primal_dual_through_solve():
    X, y = _data(11, 300, 4)
    pats, dirs = sample_patterns(X, 30, 3, return_directions=True)
    kw = dict(beta=1.0, patterns=(pats, dirs), polish=False, tol=1e-9, progress=False)
    a = deepdual.solve(X, y, solver="ipm", **kw)
    b = deepdual.solve(X, y, solver="gram", **kw)
    assert b.info["solver"] == "gram" and b.info["status"] == "optimal"
    assert b.info["restricted_objective"] == pytest.approx(a.info["restricted_objective"], rel=1e-6)
    assert b.objective == pytest.approx(a.objective, rel=1e-6)
    # each method's proven bound is below the other's feasible objective
    assert b.info["restricted_lower_bound"] <= a.info["restricted_objective"] * (1 + 1e-12)
    assert a.info["restricted_lower_bound"] <= b.info["restricted_objective"] * (1 + 1e-12)
    assert b.info["max_violation"] <= 1e-10
    assert b.lower_bound <= b.objective


def test_auto_takes_gram_for_large_sampled_squared(monkeypatch):
    X, y = _data(12, 200, 3)
    monkeypatch.setattr(solver_mod, "FO_MIN_WORK", 1)  # "large" for this small problem
    sol = deepdual.solve(X, y, beta=1.0, patterns="sample", n_patterns=20, polish=False, progress=False)
    assert sol.info["solver"] == "gram"
    # logistic loss: not the squared loss, the first-order method
    yb = np.sign(y - np.median(y))
    sol = deepdual.solve(X, yb, beta=1.0, loss="logistic", patterns="sample", n_patterns=20, polish=False,
                         progress=False, max_iter=50)
    assert sol.info["solver"] == "first_order"


def test_gram_matrix_matches_dense():
    X, y = _data(13, 70, 3)
    Xr, pats, _ = _program(X, y, 1.0, 7, 13)
    F = np.hstack([pats[p][:, None] * Xr for p in range(len(pats))])
    Q, b = gram_matrix(Xr, pats, y)
    np.testing.assert_allclose(Q, F.T @ F, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b, F.T @ y, rtol=1e-12, atol=1e-12)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), n=st.integers(5, 300), d=st.integers(1, 5), steps=st.integers(1, 5))
def test_incremental_gram_matches_from_scratch(seed, n, d, steps):
    """GramState (column generation): after patterns are added, removed and reordered over
    several calls, its Q and b equal gram_matrix's from scratch to rounding, and Q is
    exactly symmetric."""
    rng = np.random.default_rng(seed)
    X, y = _data(seed, n, d, dup=min(3, n // 3))
    Xr, pats, _ = _program(X, y, 1.0, 40, seed)
    state = gram_ipm.GramState()
    idx = rng.choice(len(pats), size=min(len(pats), 5), replace=False)
    for _ in range(steps + 1):
        Q, b = state.gram(Xr, pats[idx], y)
        Q0, b0 = gram_matrix(Xr, pats[idx], y)
        scale = max(1.0, float(np.abs(Q0).max()))
        np.testing.assert_allclose(Q, Q0, rtol=0, atol=1e-12 * scale * n)
        np.testing.assert_allclose(b, b0, rtol=0, atol=1e-12 * max(1.0, float(np.abs(b0).max())) * n)
        assert np.array_equal(Q, Q.T)
        keep = rng.permutation(idx)[: max(1, len(idx) - int(rng.integers(0, 3)))]
        extra = rng.choice(len(pats), size=int(rng.integers(0, 6)), replace=True)
        idx = np.unique(np.concatenate([keep, extra]))
        idx = rng.permutation(idx)
    assert state.computed + state.copied >= len(idx)
    # other data reset the state
    Q, b = state.gram(2.0 * Xr, pats[idx], y)
    np.testing.assert_allclose(Q, gram_matrix(2.0 * Xr, pats[idx], y)[0], rtol=0,
                               atol=1e-11 * n * max(1.0, np.abs(Q).max()))


def test_state_solves_reach_the_cold_optimum():
    """A sequence of solves with a GramState (incremental Q, kept row working sets) reaches
    the same proven optimum as cold solves of the same pattern sets."""
    X, y = _data(21, 500, 4)
    Xr, pats, dirs = _program(X, y, 1.0, 60, 21)
    state = gram_ipm.GramState()
    rng = np.random.default_rng(0)
    idx = np.arange(20)
    for _ in range(3):
        warm = solve_gram(Xr, y[:, None], pats[idx], 1.0, tol=1e-7, interior=dirs[idx], state=state)
        cold = solve_gram(Xr, y[:, None], pats[idx], 1.0, tol=1e-7, interior=dirs[idx])
        assert warm.converged and cold.converged
        assert warm.convex_objective == pytest.approx(cold.convex_objective, rel=2e-7)
        assert warm.lower <= cold.convex_objective and cold.lower <= warm.convex_objective
        assert set(state.rows) == {p.tobytes() for p in pats[idx]}
        idx = np.concatenate([rng.permutation(idx)[3:], np.setdiff1d(np.arange(len(pats)), idx)[:10]])


def test_warm_start_rows():
    """A solve at a nearby beta started from the previous row working sets: the same
    optimum as a cold solve, in no more rounds."""
    X, y = _data(14, 400, 5)
    Xr, pats, dirs = _program(X, y, 1.0, 20, 14)
    cold1 = solve_gram(Xr, y[:, None], pats, 1.0, tol=1e-8, interior=dirs, all_rows=False)
    cold2 = solve_gram(Xr, y[:, None], pats, 1.2, tol=1e-8, interior=dirs, all_rows=False)
    warm2 = solve_gram(Xr, y[:, None], pats, 1.2, tol=1e-8, interior=dirs, all_rows=False,
                       rows0=cold1.multipliers["rows"])
    assert warm2.converged
    assert warm2.convex_objective == pytest.approx(cold2.convex_objective, rel=1e-6)
    assert warm2.rounds <= cold2.rounds
    # through solve(..., init=)
    kw = dict(patterns=(pats, dirs @ row_space(X).V.T), solver="gram", polish=False, tol=1e-8, progress=False)
    s1 = deepdual.solve(X, y, beta=1.0, **kw)
    s2 = deepdual.solve(X, y, beta=1.2, init=s1, **kw)
    assert s2.info["restricted_objective"] == pytest.approx(cold2.convex_objective, rel=1e-6)


def test_memory_estimate_and_guard(monkeypatch):
    # (P r)^2, not n P r: ten times the samples adds only a few vectors of length n
    a, b = gram_memory(10**4, 50, 100), gram_memory(10**5, 50, 100)
    assert a >= 2 * 8 * (50 * 100) ** 2
    assert b - a <= 64 * 9 * 10**4
    # the estimate bounds the measured peak of a solve (tracemalloc), beyond its inputs
    X, y = _data(15, 3000, 6)
    Xr, pats, dirs = _program(X, y, 1.0, 30, 15)
    tracemalloc.start()
    solve_gram(Xr, y[:, None], pats, 1.0, tol=1e-6, interior=dirs)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak <= gram_memory(3000, Xr.shape[1], 30)
    # the guard: a clear MemoryError before any work
    monkeypatch.setattr(first_order, "available_memory", lambda: 10**6)
    with pytest.raises(MemoryError, match="gram"):
        deepdual.solve(X, y, beta=1.0, patterns=(pats, dirs @ row_space(X).V.T), solver="gram", progress=False)


def test_bad_input():
    X, y = _data(16, 40, 2)
    Xr, pats, dirs = _program(X, y, 1.0, 5, 16)
    with pytest.raises(ValueError, match="Y"):
        solve_gram(Xr, y, pats, 1.0, tol=1e-6)
    with pytest.raises(ValueError, match="rows0"):
        solve_gram(Xr, y[:, None], pats, 1.0, tol=1e-6, rows0=[np.array([0])], all_rows=False)
    with pytest.raises(ValueError, match="gram"):
        deepdual.solve(X, np.sign(y), beta=1.0, loss="logistic", patterns="sample", n_patterns=5, solver="gram",
                       progress=False)
    with pytest.raises(ValueError, match="gram"):
        deepdual.solve(X, np.c_[y, y], beta=1.0, patterns="sample", n_patterns=5, solver="gram", progress=False)
    assert gram_ipm.GRAM_MAX_UNKNOWNS > 0


def test_time_limit_keeps_a_feasible_point_and_a_proven_bound():
    X, y = _data(17, 600, 5)
    pats, dirs = sample_patterns(X, 40, 17, return_directions=True)
    sol = deepdual.solve(X, y, beta=1.0, patterns=(pats, dirs), solver="gram", polish=False, tol=1e-12,
                         time_limit=1e-3, progress=False)
    info = sol.info
    assert info["solver"] == "gram" and info["status"] == "time_limit"
    assert info["max_violation"] <= 1e-10  # feasible on every row
    assert info["restricted_lower_bound"] <= info["restricted_objective"]
    full = deepdual.solve(X, y, beta=1.0, patterns=(pats, dirs), solver="gram", polish=False, tol=1e-9,
                          progress=False)
    assert info["restricted_lower_bound"] <= full.info["restricted_objective"] * (1 + 1e-9)
    assert info["restricted_objective"] >= full.info["restricted_lower_bound"] * (1 - 1e-9)


def test_first_order_warm_started_from_gram():
    """The Gram method's solution warm-starts the first-order solver (its weights; the row
    sets are not multipliers): it starts at the optimum and stays there."""
    X, y = _data(18, 300, 4)
    pats, dirs = sample_patterns(X, 20, 18, return_directions=True)
    kw = dict(beta=1.0, patterns=(pats, dirs), progress=False, polish=False)
    a = deepdual.solve(X, y, solver="gram", tol=1e-9, **kw)
    b = deepdual.solve(X, y, solver="first_order", init=a, max_iter=50, **kw)
    assert b.info["restricted_objective"] == pytest.approx(a.info["restricted_objective"], rel=1e-6)


@pytest.mark.parametrize("bias,k", [(False, 0), (True, 3), (True, -2)])
def test_design_gives_the_iterates_of_its_array(bias, k):
    """On the implicit design X_a = [X 1] 2^-k (blocks.ScaledDesign, read by row blocks) the
    method takes the same path as on the materialized array: the same rounds, iterations
    and working rows, the same point to rounding, the same proven bound and gap."""
    from deepdual.blocks import ScaledDesign

    X, y = _data(31, 700, 4)
    D = ScaledDesign(X, k, bias)
    Xa = np.asarray(D)
    pats, dirs = sample_patterns(Xa, 25, 31, return_directions=True)
    beta = 0.5 * 2.0 ** (-k)
    a = solve_gram(Xa, y[:, None], pats, beta, tol=1e-8, interior=dirs, all_rows=False)
    b = solve_gram(D, y[:, None], pats, beta, tol=1e-8, interior=dirs, all_rows=False)
    assert a.converged and b.converged
    assert (a.rounds, a.iterations) == (b.rounds, b.iterations)
    assert all(np.array_equal(j, i) for j, i in zip(a.multipliers["rows"], b.multipliers["rows"]))
    np.testing.assert_allclose(b.z, a.z, rtol=0, atol=1e-9 * np.abs(a.z).max())
    assert b.convex_objective == pytest.approx(a.convex_objective, rel=1e-12)
    assert b.lower == pytest.approx(a.lower, rel=1e-10)
    gap_a = (a.convex_objective - a.lower) / a.convex_objective
    gap_b = (b.convex_objective - b.lower) / b.convex_objective
    assert gap_b <= 1e-8 and gap_a == pytest.approx(gap_b, abs=1e-12)
    assert b.max_violation <= 1e-12 * np.abs(Xa).max() * np.abs(b.z).max() * 10


def test_state_knows_a_design_and_its_array_as_the_same_data():
    """GramState recognises data by value (gram_ipm.data_fingerprint), without a copy: a
    design and its materialized array are the same data (the Gram columns are copied, none
    recomputed), other values (another scale, other labels) reset it."""
    from deepdual.blocks import ScaledDesign

    X, y = _data(32, 300, 3)
    D = ScaledDesign(X, 1, True)
    pats = sample_patterns(np.asarray(D), 12, 32)
    state = gram_ipm.GramState()
    Q1, b1 = state.gram(D, pats, y)
    assert state.computed == 12 and state.copied == 0
    # (no (n, .) array kept: the data are known by their fingerprint)
    assert not any(isinstance(v, np.ndarray) and len(X) in v.shape for v in vars(state).values())
    Q2, b2 = state.gram(np.asarray(D), pats, y)
    assert state.computed == 12 and state.copied == 12
    assert np.array_equal(Q1, Q2) and np.array_equal(b1, b2)
    assert gram_ipm.data_fingerprint(D, y) == gram_ipm.data_fingerprint(np.asarray(D), y)
    for other, yo in ((ScaledDesign(X, 2, True), y), (D, y + 1.0)):
        Q3, _ = state.gram(other, pats, yo)
        assert (state.computed, state.copied) == (12, 0)  # reset: recomputed from scratch
        np.testing.assert_allclose(Q3, gram_matrix(np.asarray(other), pats, yo)[0], rtol=1e-12,
                                   atol=1e-12 * np.abs(Q3).max())


def test_solve_at_full_column_rank_runs_on_the_design(monkeypatch):
    """solve(solver="gram") at full column rank hands the method the implicit design (V = I,
    never materialized during the solve) and reaches the optimum of the same sampled
    program as the method on the row-space array; the warm start (init=) still works."""
    from deepdual.blocks import ScaledDesign

    X, y = _data(33, 800, 4)
    rs = row_space(X)
    pats, dirs = sample_patterns(X, 25, 33, return_directions=True)
    ref = solve_gram(rs.Xr, y[:, None], pats, 1.0, tol=1e-9, interior=dirs @ rs.V)
    real, seen = solver_mod.solve_gram, {}
    materialize = ScaledDesign.__array__

    def watched(self, *args, **kwargs):
        assert not seen.get("solving"), "the Gram method materialized X_a"
        return materialize(self, *args, **kwargs)

    def spy(Xr, *args, **kwargs):
        seen["Xr"], seen["solving"] = Xr, True
        try:
            return real(Xr, *args, **kwargs)
        finally:
            seen["solving"] = False

    monkeypatch.setattr(solver_mod, "solve_gram", spy)
    monkeypatch.setattr(ScaledDesign, "__array__", watched)
    kw = dict(patterns=(pats, dirs), solver="gram", polish=False, tol=1e-9, progress=False)
    s1 = deepdual.solve(X, y, beta=1.0, **kw)
    assert isinstance(seen["Xr"], ScaledDesign) and np.shares_memory(seen["Xr"].X, X)
    assert s1.info["solver"] == "gram" and s1.info["restricted_converged"]
    assert s1.info["restricted_objective"] == pytest.approx(ref.convex_objective, rel=1e-7)
    assert s1.info["restricted_lower_bound"] <= ref.convex_objective * (1 + 1e-12)
    assert ref.lower <= s1.info["restricted_objective"] * (1 + 1e-12)
    assert s1.lower_bound <= s1.objective
    # warm start at a nearby beta: the optimum of a cold solve, in no more rounds
    cold = deepdual.solve(X, y, beta=1.2, **kw)
    warm = deepdual.solve(X, y, beta=1.2, init=s1, **kw)
    assert warm.info["restricted_objective"] == pytest.approx(cold.info["restricted_objective"], rel=1e-7)
    assert warm.info["working_set_rounds"] <= cold.info["working_set_rounds"]
