"""The first-order solver of the sampled convex program (deepdual.relu.convex_program.first_order;
docs/convex_program.md §7): agreement with the interior-point method and cvxpy on small
instances, the proven restricted lower bound, warm starts, the torch backend (CPU) against
numpy, the constraint-generation cell values against the full NNLS, and the memory guard."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import deepdual
from deepdual.losses import LogisticLoss, SquaredLoss
from deepdual.patterns import row_space, sample_patterns
from deepdual.relu.convex_program import first_order
from deepdual.relu.convex_program.certificate import cone_value
from deepdual.relu.convex_program.first_order import cell_value, solve_first_order


def _data(n: int, d: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.maximum(X @ rng.standard_normal(d), 0.0) - 0.5 * np.maximum(X @ rng.standard_normal(d), 0.0)
    return X, y + 0.1 * rng.standard_normal(n)


def _program(n=40, d=3, P=8, seed=0, beta=1.0):
    X, y = _data(n, d, seed)
    pats, dirs = sample_patterns(X, P, seed, return_directions=True)
    return X, y, pats, dirs, beta


def _cvxpy_optimum(X, y, beta, loss, pats):
    cp = pytest.importorskip("cvxpy")
    from references import convex_program_cvxpy

    prob, _, _ = convex_program_cvxpy(X, y, beta, loss, pats)
    prob.solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    return float(prob.value)


def test_agrees_with_interior_point_method():
    # the same sampled program: the first-order network is within 1e-6 of (or below) the
    # IPM's optimum, and its proven bound is below that optimum and within 1e-6 of the network
    X, y, pats, dirs, beta = _program()
    ipm = deepdual.solve(X, y, beta=beta, patterns=(pats, dirs), polish=False, rtol=1e-10, solver="ipm")
    opt = ipm.info["restricted_objective"]
    assert abs(opt - ipm.info["restricted_lower_bound"]) <= 1e-9 * opt
    rs = row_space(X)
    res = solve_first_order(rs.Xr, y[:, None], pats, SquaredLoss(), beta, tol=1e-7, max_iter=40000)
    assert res.converged
    assert res.lower <= opt * (1 + 1e-9)
    assert res.network_objective <= opt * (1 + 1e-6)
    assert res.network_objective - res.lower <= 1e-7 * abs(res.network_objective)
    # the rebuilt network's objective is what is reported
    F = np.maximum(X @ (rs.V @ res.z.T), 0.0) @ np.repeat([1.0, -1.0], len(pats))
    net = 0.5 * np.sum((F - y) ** 2) + beta * np.linalg.norm(res.z, axis=1).sum()
    assert net == pytest.approx(res.network_objective, rel=1e-10)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_restricted_bound_is_proven(loss):
    # every lower bound along the run is below cvxpy's optimum of the sampled program
    X, y, pats, _, beta = _program(n=30, d=3, P=6, seed=3)
    if loss == "logistic":
        y = np.where(y > np.median(y), 1.0, -1.0)
    opt = _cvxpy_optimum(X, y, beta, loss, pats)
    rs = row_space(X)
    lossf = SquaredLoss() if loss == "squared" else LogisticLoss()
    lows = []
    res = solve_first_order(rs.Xr, y[:, None], pats, lossf, beta, tol=1e-12, max_iter=3000,
                            callback=lambda it, net, low, gap: lows.append(low) and False)
    lows.append(res.lower)
    assert max(lows) <= opt + 1e-7 * abs(opt)
    # stopped on the gap: the rebuilt network is no worse than the program's optimum
    assert res.converged
    assert res.network_objective <= opt + 1e-7 * abs(opt)


def test_solve_first_order_option_and_bounds():
    X, y = _data(200, 4, 1)
    sol = deepdual.solve(X, y, beta=0.5, rng=0, n_patterns=20, solver="first_order", polish=False)
    info = sol.info
    assert info["solver"] == "first_order"
    # the gap is the network's objective against the program's proven bound (negative when
    # the network beats the sampled program: its neurons need not keep their patterns)
    gap = (info["restricted_objective"] - info["restricted_lower_bound"]) / info["restricted_objective"]
    assert info["restricted_gap"] == pytest.approx(gap, rel=1e-9, abs=1e-12)
    assert info["restricted_converged"] == (gap <= 1e-4)
    assert sol.lower_bound <= sol.objective
    assert deepdual.objective(sol.network, X, y, beta=0.5) == pytest.approx(sol.objective, rel=1e-12)
    assert {"patterns", "weights", "multipliers", "rho"} <= set(info["warm_start"])


def test_warm_start():
    # warm start from the solution at the same beta stops at the first bound evaluation;
    # from a nearby beta it converges to a valid answer
    X, y, pats, _, beta = _program(n=60, d=3, P=8, seed=2)
    rs = row_space(X)
    cold = solve_first_order(rs.Xr, y[:, None], pats, SquaredLoss(), beta, tol=1e-6, max_iter=20000)
    assert cold.converged
    again = solve_first_order(rs.Xr, y[:, None], pats, SquaredLoss(), beta, tol=1e-6, max_iter=20000,
                              z0=cold.z, multipliers=cold.multipliers, rho=cold.rho)
    assert again.converged and again.iterations == 0
    near = solve_first_order(rs.Xr, y[:, None], pats, SquaredLoss(), 1.1 * beta, tol=1e-6, max_iter=20000,
                             z0=cold.z, multipliers=cold.multipliers, rho=cold.rho)
    fresh = solve_first_order(rs.Xr, y[:, None], pats, SquaredLoss(), 1.1 * beta, tol=1e-6, max_iter=20000)
    assert near.converged and fresh.converged
    ipm = deepdual.solve(X, y, beta=1.1 * beta, patterns=pats, polish=False, rtol=1e-10, solver="ipm")
    opt = ipm.info["restricted_objective"]
    for res in (near, fresh):  # proven bounds, and networks no worse than the program's optimum
        assert res.lower <= opt * (1 + 1e-9)
        assert res.network_objective <= opt * (1 + 1e-6)
    # through solve(..., init=): the same patterns are reused
    s1 = deepdual.solve(X, y, beta=beta, patterns=pats, solver="first_order", polish=False)
    s2 = deepdual.solve(X, y, beta=1.1 * beta, init=s1, solver="first_order", polish=False)
    assert np.array_equal(s2.info["warm_start"]["patterns"], s1.info["warm_start"]["patterns"])
    with pytest.raises(ValueError, match="init"):
        deepdual.solve(X, y, beta=beta, init={"nothing": 1}, solver="first_order")


def test_torch_cpu_matches_numpy():
    pytest.importorskip("torch")
    X, y, pats, _, beta = _program(n=50, d=3, P=6, seed=4)
    rs = row_space(X)
    kw = dict(tol=1e-9, max_iter=400)
    a = solve_first_order(rs.Xr, y[:, None], pats, SquaredLoss(), beta, **kw)
    b = solve_first_order(rs.Xr, y[:, None], pats, SquaredLoss(), beta, device="cpu", **kw)
    assert a.iterations == b.iterations
    np.testing.assert_allclose(b.z, a.z, rtol=1e-6, atol=1e-6 * np.abs(a.z).max())
    assert b.network_objective == pytest.approx(a.network_objective, rel=1e-6)
    assert b.lower == pytest.approx(a.lower, rel=1e-6)
    sol = deepdual.solve(X, y, beta=beta, patterns=pats, device="cpu", polish=False)
    assert sol.info["device"] == "cpu" and sol.info["solver"] == "first_order"
    with pytest.raises(ValueError, match="device"):
        deepdual.solve(X, y, beta=beta, patterns=pats, device="no-such-device")


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(5, 60), d=st.integers(2, 5))
def test_cell_value_matches_nnls(seed, n, d):
    # constraint generation reaches the full NNLS value and is never below it
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    mask = X @ rng.standard_normal(d) >= 0
    v = rng.standard_normal(n)
    for s in (1.0, -1.0):
        exact = cone_value(X, mask.astype(float), s * v)
        got = cell_value(X, mask, s * v)
        assert got >= exact - 1e-9 * (1 + exact)
        assert got <= exact + 1e-7 * (1 + exact)
        # with its direction (and the row norms given): the same value, and a unit vector inside
        # the cell whose value a^T e bounds the cell value from below, for this v and any other
        val, e = cell_value(X, mask, s * v, xn=np.linalg.norm(X, axis=1), direction=True)
        assert val == got
        if e is not None:
            S = np.where(mask, 1.0, -1.0)
            assert np.linalg.norm(e) == pytest.approx(1.0)
            assert np.all(S * (X @ e) >= -1e-9 * np.linalg.norm(X, axis=1))
            for w in (s * v, rng.standard_normal(n)):
                a = X.T @ np.where(mask, w, 0.0)
                assert float(a @ e) <= cone_value(X, mask.astype(float), w) + 1e-7 * (1 + np.linalg.norm(a))
            # at a positive cell value the residual is the maximizer: a^T e attains it (at value
            # 0 the residual vanishes and its direction is arbitrary, only the bound above holds)
            a_sv = X.T @ np.where(mask, s * v, 0.0)
            if exact > 1e-6 * (1 + np.linalg.norm(a_sv)):
                assert float(a_sv @ e) == pytest.approx(exact, rel=1e-6, abs=1e-7)


def test_memory_guard(monkeypatch):
    X, y = _data(300, 4, 5)
    monkeypatch.setattr(first_order, "available_memory", lambda: 10_000)
    with pytest.raises(MemoryError, match="GiB.*available"):
        deepdual.solve(X, y, beta=1.0, n_patterns=20, rng=0, solver="first_order")
    with pytest.raises(MemoryError, match="n_patterns"):
        deepdual.solve(X, y, beta=1.0, n_patterns=20, rng=0)
    need = first_order.program_memory("first_order", 10**5, 50, 50, 100, 1)
    assert need < first_order.program_memory("pd", 10**5, 50, 50, 100, 1)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(5, 60), d=st.integers(2, 5))
def test_project_cone_is_the_projection(seed, n, d):
    # the projection onto K = {u : SXu >= 0} satisfies its optimality conditions: u in K,
    # and (z - u)^T (w - u) <= 0 for every w in K (tested on the cone's generators via
    # the dual: z - u = -X^T S mu with mu >= 0 and mu^T SXu = 0); checked against NNLS
    from scipy.optimize import nnls

    from deepdual.relu.convex_program.first_order import project_cone

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    mask = X @ rng.standard_normal(d) >= 0
    z = rng.standard_normal(d)
    u = project_cone(X, mask, z)
    S = np.where(mask, 1.0, -1.0)
    G = S[:, None] * X
    # full NNLS of the dual: u* = z + G^T mu*, mu* = argmin_{mu >= 0} ||z + G^T mu||
    mu, _ = nnls(G.T, -z, maxiter=100 * n)
    ustar = z + G.T @ mu
    assert u is not None
    assert np.all(G @ u >= -1e-9 * np.linalg.norm(X, axis=1) * max(np.linalg.norm(u), 1e-300))
    np.testing.assert_allclose(u, ustar, atol=1e-7 * (1 + np.linalg.norm(z)))


def test_feasible_point_and_program_gap():
    # the feasible point keeps every group in its cone; the sampled program's own gap
    # brackets the IPM's optimum: lower <= optimum <= feasible objective
    from deepdual.relu.convex_program.first_order import feasible_point, program_value

    X, y, pats, dirs, beta = _program(n=60, d=3, P=8, seed=7)
    rs = row_space(X)
    ipm = deepdual.solve(X, y, beta=beta, patterns=(pats, dirs), polish=False, rtol=1e-10, solver="ipm")
    opt = ipm.info["restricted_objective"]
    res = solve_first_order(rs.Xr, y[:, None], pats, SquaredLoss(), beta, tol=1e-7, max_iter=40000)
    assert res.lower <= opt * (1 + 1e-9)
    assert res.program_upper >= opt * (1 - 1e-9)
    assert res.program_gap >= -1e-9
    # any point, projected, is feasible, and its objective is at least the optimum
    rng = np.random.default_rng(0)
    z = rng.standard_normal((2 * len(pats), rs.Xr.shape[1]))
    u, changed = feasible_point(rs.Xr, pats, z)
    assert changed > 0
    for g in range(len(u)):
        S = np.where(pats[g % len(pats)], 1.0, -1.0)
        assert np.all(S * (rs.Xr @ u[g]) >= -1e-9 * np.abs(rs.Xr).sum(axis=1) * np.linalg.norm(u[g]))
    assert program_value(rs.Xr, pats, y[:, None], SquaredLoss(), beta, u) >= opt * (1 - 1e-9)


def test_time_limit_status():
    # a callback returning True (as the time limit does) stops the solver with status
    # "stopped"; through solve(), a tiny time limit gives status "time_limit"
    X, y, pats, dirs, beta = _program(n=80, d=3, P=10, seed=8)
    rs = row_space(X)
    res = solve_first_order(rs.Xr, y[:, None], pats, SquaredLoss(), beta, tol=1e-12, max_iter=10**6,
                            stop_check=lambda: True)
    assert res.status == "stopped" and not res.converged
    assert res.lower <= res.program_upper
    sol = deepdual.solve(X, y, beta=beta, patterns=(pats, dirs), solver="first_order", time_limit=1e-9,
                         progress=False)
    assert sol.info["status"] == "time_limit"
    assert sol.lower_bound <= sol.objective


@pytest.mark.parametrize("seed", [2, 5])
def test_projected_fista_agrees_with_interior_point_method(seed):
    # FISTA with the cone projections in the prox (feasible iterates): the same optimum as
    # the IPM to 1e-6, its proven bound below the IPM's optimum, its iterate feasible
    from deepdual.relu.convex_program.first_order import solve_projected

    X, y, pats, dirs, beta = _program(n=60, d=3, P=8, seed=seed)
    ipm = deepdual.solve(X, y, beta=beta, patterns=(pats, dirs), polish=False, rtol=1e-10, solver="ipm")
    opt = ipm.info["restricted_objective"]
    rs = row_space(X)
    res = solve_projected(rs.Xr, y[:, None], pats, SquaredLoss(), beta, tol=1e-6, max_iter=5000)
    assert res.converged
    assert res.lower <= opt * (1 + 1e-9)
    assert abs(res.convex_objective - opt) <= 1e-6 * opt
    assert res.max_violation <= 1e-9 * np.abs(rs.Xr).max() * np.abs(res.z).max()
    # feasible: the rebuilt network's objective is the program's objective
    assert res.network_objective == pytest.approx(res.convex_objective, rel=1e-9)
    # warm start from the solution: converged at the first bound evaluation
    again = solve_projected(rs.Xr, y[:, None], pats, SquaredLoss(), beta, tol=1e-6, max_iter=5000, z0=res.z)
    assert again.converged and again.iterations < res.iterations


def test_solve_with_projected_method(monkeypatch):
    # solve(..., solver="first_order") through the projected method: a feasible network
    # (its objective is the program's), the program's proven bound below it
    from deepdual.relu.convex_program import solver as cps

    monkeypatch.setattr(cps, "FO_METHOD", "projected")
    X, y, pats, dirs, beta = _program(n=80, d=3, P=10, seed=9)
    sol = deepdual.solve(X, y, beta=beta, patterns=(pats, dirs), solver="first_order", polish=False,
                         progress=False)
    info = sol.info
    assert info["solver"] == "first_order"
    assert info["restricted_lower_bound"] <= info["restricted_objective"] * (1 + 1e-12)
    assert info["max_violation"] <= 1e-9 * np.abs(X).max() * max(1.0, np.abs(y).max())
    ipm = deepdual.solve(X, y, beta=beta, patterns=(pats, dirs), polish=False, rtol=1e-10, solver="ipm")
    assert info["restricted_lower_bound"] <= ipm.info["restricted_objective"] * (1 + 1e-9)
    assert sol.objective >= ipm.info["restricted_objective"] * (1 - 1e-9)  # feasible: not below the optimum


@pytest.mark.parametrize("max_iter", [first_order.FO_CHECK_EVERY * 2, first_order.FO_CHECK_EVERY * 2 + 7])
def test_each_iterate_is_certified_once_and_bounds_bracket_the_optimum(max_iter):
    # the bound checks evaluate each iterate once (the last step's check is the round's
    # closing check, and the final feasible point is not recomputed for the same iterate):
    # strictly increasing step counts in the history; the bounds stay proven: the lower bound
    # is at most the sampled program's optimum and the feasible objective at least it
    X, y, pats, dirs, beta = _program(n=60, d=3, P=8, seed=11)
    rs = row_space(X)
    ipm = deepdual.solve(X, y, beta=beta, patterns=(pats, dirs), polish=False, rtol=1e-10, solver="ipm")
    opt = ipm.info["restricted_objective"]
    res = solve_first_order(rs.Xr, y[:, None], pats, SquaredLoss(), beta, tol=1e-12, max_iter=max_iter)
    steps = [h[0] for h in res.history]
    assert steps == sorted(set(steps))
    assert steps[-1] == max_iter and res.iterations == max_iter
    assert res.lower <= opt * (1 + 1e-9)
    assert res.program_upper >= opt * (1 - 1e-9)
