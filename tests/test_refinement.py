"""The local polish and the pattern refinement of sampled-pattern networks
(deepdual.relu.convex_program.rebuild; docs/performance.md §8, docs/convex_program.md §10c):
the polish never ends above its start, its iterates descend, it is free of the objective's
scale (the solver polishes in scaled units) and honours a stop test (the time limit); the
default path on low-rank sampled programs (the Gram method) keeps the sampled program's
optimum and a proven bound; the refinement's start is a feasible point of its program,
its rounds are monotone, and on complete pattern sets it keeps the cvxpy optimum."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import deepdual
from deepdual.losses import SquaredLoss
from deepdual.relu.convex_program import rebuild
from deepdual.patterns import enumerate_patterns, row_space
from deepdual.relu.convex_program.rebuild import convexify, polish_budget, polish_network, refine_network


def _value(X, y, beta, U, A):
    F = np.maximum(X @ U, 0.0) @ A[:, 0]
    return 0.5 * float(np.sum((F - y) ** 2)) + 0.5 * beta * (float(np.sum(U ** 2)) + float(np.sum(A ** 2)))


def _data(n, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.maximum(X @ rng.standard_normal((d, 3)), 0.0) @ rng.standard_normal(3) + 0.1 * rng.standard_normal(n)
    return X, y


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(5, 60), d=st.integers(1, 4), m=st.integers(1, 6),
       beta=st.floats(1e-3, 10.0))
def test_polish_descends_and_never_ends_above_start(seed, n, d, m, beta):
    X, y = _data(n, d, seed)
    rng = np.random.default_rng(seed + 1)
    U, A = rng.standard_normal((d, m)), rng.standard_normal((m, 1))
    hist: list = []
    U2, A2 = polish_network(X, y[:, None], SquaredLoss(), beta, U, A, max_iter=200, history=hist)
    start = _value(X, y, beta, U, A)
    end = _value(X, y, beta, U2, A2)
    assert end <= start * (1 + 1e-12)
    # L-BFGS iterates satisfy a sufficient-decrease line search: the (scaled) trace descends
    assert all(b <= a * (1 + 1e-12) for a, b in zip(hist, hist[1:]))
    assert U2.shape == U.shape and A2.shape == A.shape


def test_polish_is_free_of_the_objective_scale():
    # objective(sqrt(c) U, sqrt(c) A; c y, c beta) = c^2 objective(U, A): the polish must go
    # as far on the tiny copy (the solver's scaled units) as on the original.  L-BFGS-B's
    # absolute tests (ftol against max(|f|, 1)) stopped it after one step there before
    X, y = _data(200, 4, 3)
    beta = 0.5
    rng = np.random.default_rng(4)
    U, A = rng.standard_normal((4, 8)), rng.standard_normal((8, 1))
    c = 2.0 ** -30
    U1, A1 = polish_network(X, y[:, None], SquaredLoss(), beta, U, A, max_iter=400)
    Uc, Ac = polish_network(X, c * y[:, None], SquaredLoss(), c * beta, np.sqrt(c) * U, np.sqrt(c) * A,
                            max_iter=400)
    start = _value(X, y, beta, U, A)
    one = _value(X, y, beta, U1, A1)
    tiny = _value(X, c * y, c * beta, Uc, Ac) / c ** 2
    assert one < 0.5 * start  # the polish does real work on these data
    # (the two runs take the same steps up to rounding, then may settle in nearby minima)
    assert tiny <= 1.05 * one


def test_polish_stop_check_and_budget():
    X, y = _data(100, 3, 5)
    rng = np.random.default_rng(6)
    U, A = rng.standard_normal((3, 5)), rng.standard_normal((5, 1))
    hist: list = []
    U2, A2 = polish_network(X, y[:, None], SquaredLoss(), 0.3, U, A, stop_check=lambda: True, history=hist)
    assert len(hist) == 1  # stopped after the first iteration
    assert _value(X, y, 0.3, U2, A2) <= _value(X, y, 0.3, U, A)
    # the budget: at least POLISH_MIN_ITER, at most POLISH_MAX_ITER, decreasing in the work per step
    assert polish_budget(10, 2, 3) == rebuild.POLISH_MAX_ITER
    assert polish_budget(10**6, 50, 200) == rebuild.POLISH_MIN_ITER
    mid = polish_budget(10**4, 50, 200)
    assert rebuild.POLISH_MIN_ITER <= mid <= rebuild.POLISH_MAX_ITER
    assert polish_budget(2 * 10**4, 50, 200) <= mid


def test_default_low_rank_sampled_program_takes_gram_and_keeps_its_optimum():
    # rank <= GRAM_AUTO_MAX_RANK, patterns sampled by solve: the Gram method at small n too;
    # its sampled-program optimum is the primal-dual method's (same patterns, same seed), the
    # polish can only lower the network, and the global bound is proven: below the best of
    # restarts of direct training
    X, y = _data(120, 3, 7)
    beta = 0.2
    sol = deepdual.solve(X, y, beta=beta, n_patterns=20, oracle_time=0, progress=False)
    ref = deepdual.solve(X, y, beta=beta, n_patterns=20, solver="ipm", polish=False, oracle_time=0,
                         progress=False)
    assert not sol.info["patterns_complete"]
    assert sol.info["solver"] == "gram" and ref.info["solver"] == "ipm"
    assert sol.info["restricted_objective"] == pytest.approx(ref.objective, rel=1e-6)
    assert sol.objective <= sol.info.get("objective_before_polish", sol.objective)
    assert sol.objective <= ref.objective * (1 + 1e-9)
    assert deepdual.objective(sol.network, X, y, beta=beta) == pytest.approx(sol.objective, rel=1e-12)
    from restarts import best_of_restarts

    best = best_of_restarts(X, y, beta=beta, depth=2, width=10, restarts=3)
    assert sol.lower_bound <= best * (1 + 1e-9)
    assert sol.lower_bound <= sol.objective


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(8, 50), d=st.integers(1, 4), m=st.integers(1, 6))
def test_convexify_is_a_feasible_point_no_worse_than_the_network(seed, n, d, m):
    X, y = _data(n, d, seed)
    rng = np.random.default_rng(seed + 2)
    U, A = rng.standard_normal((d, m)), rng.standard_normal((m, 1))
    beta = 0.7
    rs = row_space(X)
    pats, z = convexify(X, rs.V, U, A)
    P = len(pats)
    assert z.shape == (2 * P, rs.rank) and len(np.unique(pats, axis=0)) == P
    S = 2.0 * pats - 1.0  # (P, n)
    XZ = rs.Xr @ z.T  # (n, 2P)
    scale = np.abs(rs.Xr).max() * max(np.abs(z).max(), 1.0)
    assert np.all(S.T * XZ[:, :P] >= -1e-12 * scale) and np.all(S.T * XZ[:, P:] >= -1e-12 * scale)
    F = np.sum(pats.T * (XZ[:, :P] - XZ[:, P:]), axis=1)
    program = 0.5 * float(np.sum((F - y) ** 2)) + beta * float(np.linalg.norm(z, axis=1).sum())
    balanced = 0.5 * float(np.sum((np.maximum(X @ U, 0) @ A[:, 0] - y) ** 2)) + beta * float(
        np.sum(np.linalg.norm(U, axis=0) * np.abs(A[:, 0])))
    assert program <= balanced * (1 + 1e-10) + 1e-12
    assert balanced <= _value(X, y, beta, U, A) * (1 + 1e-12)


@pytest.mark.parametrize("exact_max", [0, 10**6])
def test_refinement_rounds_are_monotone(exact_max):
    # first-order rounds (exact_max = 0) and exact rounds (the Gram method)
    X, y = _data(150, 4, 11)
    beta = 0.3
    rs = row_space(X)
    rng = np.random.default_rng(12)
    U, A = rng.standard_normal((4, 6)), rng.standard_normal((6, 1))
    U, A = polish_network(X, y[:, None], SquaredLoss(), beta, U, A, max_iter=50)
    U2, A2, hist = refine_network(X, rs.V, y[:, None], SquaredLoss(), beta, U, A, rounds=3, steps=30,
                                  exact_max_patterns=exact_max)
    assert hist[0] == pytest.approx(_value(X, y, beta, U, A), rel=1e-12)
    assert len(hist) >= 2  # a half-polished start: the first round gains
    assert all(b < a for a, b in zip(hist, hist[1:]))
    assert _value(X, y, beta, U2, A2) == pytest.approx(hist[-1], rel=1e-12)
    # through solve: info["refinement"] descends and ends at the returned objective
    sol = deepdual.solve(X, y, beta=beta, n_patterns=15, refine=2, oracle_time=0, progress=False)
    base = deepdual.solve(X, y, beta=beta, n_patterns=15, oracle_time=0, progress=False)
    ref = sol.info["refinement"]
    assert all(b <= a for a, b in zip(ref, ref[1:]))
    assert ref[0] == pytest.approx(base.objective, rel=1e-9)
    assert sol.objective <= base.objective * (1 + 1e-12)
    assert sol.objective == pytest.approx(min(ref[-1], base.objective), rel=1e-9)
    assert sol.lower_bound <= sol.objective
    assert deepdual.objective(sol.network, X, y, beta=beta) == pytest.approx(sol.objective, rel=1e-12)


def test_refinement_on_a_complete_pattern_set_keeps_the_cvxpy_optimum():
    cp = pytest.importorskip("cvxpy")
    from references import convex_program_cvxpy

    X, y = _data(25, 2, 13)
    beta = 0.4
    pats = enumerate_patterns(X)
    prob, _, _ = convex_program_cvxpy(X, y, beta, "squared", pats)
    prob.solve(solver=cp.CLARABEL, tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
    sol = deepdual.solve(X, y, beta=beta, polish=True, refine=2, progress=False)
    assert sol.info["patterns_complete"] and "refinement" in sol.info
    # the global optimum: refinement cannot go below it, nor leave it
    assert sol.objective == pytest.approx(prob.value, rel=1e-6)
    assert sol.lower_bound <= prob.value * (1 + 1e-7)
    assert sol.certified


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(1, 400), d=st.integers(1, 5), m=st.integers(1, 400),
       K=st.sampled_from([1, 3]), beta=st.floats(1e-3, 10.0))
def test_weight_decay_objective_value_and_gradient(seed, n, d, m, K, beta):
    # the polish's objective in row blocks (several blocks with a shorter last one when
    # n * m is large: the block temporaries are reused across blocks and evaluations) is
    # the weight-decay objective, and its gradient matches central differences of it
    from deepdual.losses import get_loss

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    loss = get_loss("squared") if K == 1 else get_loss("cross_entropy")
    Y = rng.standard_normal((n, 1)) if K == 1 else np.eye(K)[rng.integers(0, K, n)]
    fg = rebuild.weight_decay_objective(X, Y, loss, beta, d, m)
    for _ in range(2):  # a second evaluation reuses the buffers
        x = rng.standard_normal(d * m + m * K)
        U, A = x[:d * m].reshape(d, m), x[d * m:].reshape(m, K)
        f, g = fg(x)
        H = np.maximum(X @ U, 0.0)
        want = float(loss.value(H @ A, Y)) + 0.5 * beta * (float(np.sum(U ** 2)) + float(np.sum(A ** 2)))
        assert f == pytest.approx(want, rel=1e-12, abs=1e-12)
        # central differences along random unit directions, with a step that crosses no kink
        # (|x_i^T du_j| <= h ||x_i|| < min |x_i^T u_j|): within one activation pattern the
        # objective is smooth; the tolerance adds the differences' rounding, ~eps |f| / h
        Z = np.abs(X @ U)
        h = min(1e-4, 0.5 * float(Z.min()) / max(float(np.linalg.norm(X, axis=1).max()), 1e-300))
        if h < 1e-9:  # a sample (nearly) on a kink: no clean difference quotient
            continue
        for _ in range(3):
            e = rng.standard_normal(len(x))
            e /= np.linalg.norm(e)
            num = (fg(x + h * e)[0] - fg(x - h * e)[0]) / (2 * h)
            slack = 1e-6 * (1 + abs(f)) + 100 * np.finfo(float).eps * (1 + abs(f)) / h
            assert float(g @ e) == pytest.approx(num, rel=1e-5, abs=slack)
