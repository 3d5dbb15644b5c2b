"""``solve``'s ``solver="auto"`` on sampled programs that the local polish follows, at rank
above ``GRAM_AUTO_MAX_RANK`` where neither interior-point method takes the program
(``solver.first_order_for_polish``; docs/performance.md §8, "Default method at
n = 10³–5·10³"; docs/convex_program.md §10): the first-order method's early iterate,
polished, instead of the working-set augmented Lagrangian.  Properties: the returned network
is no worse than the sampled program's optimum (computed by the Gram-reduced interior-point
method on the same patterns), the bound stays proven, and without the polish ``"auto"``
still solves the program (its value is then the result)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import deepdual
from deepdual.losses import LogisticLoss, SquaredLoss
from deepdual.relu.convex_program.first_order import FO_MIN_WORK, program_memory
from deepdual.relu.convex_program.solver import (GRAM_AUTO_MAX_RANK, first_order_by_size,
                                                 first_order_for_polish, ipm_allowance)


def _planted(n: int, d: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.maximum(X @ rng.standard_normal((d, 5)), 0.0) @ rng.standard_normal(5) + 0.1 * rng.standard_normal(n)
    return X, y


# n = 120, d = 20, 100 sampled patterns: the primal-dual Newton system (200 groups x 21) is
# above its dense size and a barrier step above IPM_SMALL_COST: "auto" took the augmented
# Lagrangian here before
N, D, BETA = 120, 20, 0.1


@pytest.fixture(scope="module")
def planted():
    return _planted(N, D, 0)


@pytest.fixture(scope="module")
def auto_solution(planted):
    X, y = planted
    return deepdual.solve(X, y, beta=BETA, progress=False)


@pytest.fixture(scope="module")
def program_optimum(planted, auto_solution):
    # the sampled program on the same patterns, solved to its optimum (proven gap)
    X, y = planted
    pats = auto_solution.info["warm_start"]["patterns"]
    ref = deepdual.solve(X, y, beta=BETA, patterns=np.asarray(pats), solver="gram", polish=False, rtol=1e-8,
                         progress=False)
    assert ref.info["restricted_converged"]
    return ref


def test_auto_takes_first_order_where_the_polish_follows(auto_solution):
    assert first_order_for_polish(N, D, 100, 1, SquaredLoss())
    assert auto_solution.info["solver"] == "first_order"
    assert auto_solution.info["patterns_how"].endswith("sampled")


def test_polished_network_no_worse_than_the_sampled_optimum(auto_solution, program_optimum):
    # the network of the first-order path after the polish against the exact optimum of
    # the same sampled program (whose network the old path polished from)
    opt = program_optimum.info["restricted_objective"]
    assert auto_solution.objective <= opt * (1 + 1e-9)


def test_bound_stays_proven(auto_solution, program_optimum):
    # a proven lower bound on every network's objective: below both networks
    low = auto_solution.lower_bound
    assert np.isfinite(low) and 0 < low
    assert low <= auto_solution.objective
    assert low <= program_optimum.objective
    assert program_optimum.lower_bound <= auto_solution.objective


def test_without_the_polish_auto_still_solves_the_program(planted, program_optimum):
    # polish=False: the program's network is the result, so the program is solved (not an
    # early first-order iterate); its value is the Gram method's optimum to the tolerance
    X, y = planted
    sol = deepdual.solve(X, y, beta=BETA, polish=False, progress=False)
    assert sol.info["solver"] != "first_order"
    opt = program_optimum.info["restricted_objective"]
    assert sol.info["restricted_objective"] == pytest.approx(opt, rel=1e-5)
    assert sol.info["restricted_lower_bound"] <= opt * (1 + 1e-9)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(10, 10**4), r=st.integers(1, 80), P=st.integers(1, 400), K=st.integers(1, 3),
       logistic=st.booleans())
def test_rule_only_adds_the_polished_high_rank_programs(n, r, P, K, logistic):
    loss = LogisticLoss() if logistic else SquaredLoss()
    d = r
    # without the polish, the size rule is the one before (work or memory)
    mem = program_memory("barrier" if logistic else "pd", n, d, r, P, K)
    before = n * P * r >= FO_MIN_WORK or mem > ipm_allowance(n, d, P)
    assert first_order_by_size(n, d, r, P, K, loss, polish=False) == before
    # with it, more programs may go to the first-order method, never fewer; only scalar
    # outputs above the Gram method's rank
    now = first_order_by_size(n, d, r, P, K, loss)
    assert now >= before
    if now != before:
        assert K == 1 and r > GRAM_AUTO_MAX_RANK and first_order_for_polish(n, r, P, K, loss)
