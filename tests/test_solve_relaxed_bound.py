"""``solve``'s convex-program lower bound is the max of its proven bounds: the network
residual's and ``certify``'s relaxed reduced problem over the label parts
(:func:`deepdual.relu.convex_program.solver.relaxed_label_dual`, docs/convex_program.md §4)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deepdual
from deepdual.losses import get_loss
from deepdual.patterns import enumerate_patterns
from deepdual.relu.convex_program.certificate import support_spectral_bound
from deepdual.relu.convex_program.solver import relaxed_label_dual


def _planted(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.maximum(X @ rng.standard_normal((d, 10)), 0) @ rng.standard_normal(10) + 0.1 * rng.standard_normal(n)
    return X, y


@pytest.mark.parametrize("n, d, beta, seed", [(300, 10, 1.0, 0), (150, 8, 2.0, 2), (200, 5, 1.0, 0)])
def test_solve_reports_the_max_of_its_bounds_and_never_less_than_certify_relaxed(n, d, beta, seed):
    X, y = _planted(n, d, seed)
    sol = deepdual.solve(X, y, beta=beta, progress=False, n_patterns=20, certify_max_patterns=0)
    bounds = sol.info["lower_bounds"]
    assert set(bounds) == {"network residual", "relaxed reduced problem"}
    assert sol.lower_bound == max(bounds.values())
    assert sol.info["dual_point"] == max(bounds, key=bounds.get)
    assert sol.lower_bound <= sol.objective
    # certify's relaxed reduced problem on the same network: the solve's is at least as large
    # (each label part against its own rows' norm; certify takes ||X||_2 from an SVD, the solve
    # proven upper bounds: equal up to rounding where the supports are all rows)
    cert = deepdual.certify(sol.network, X, y, beta=beta)
    relaxed = cert.details["bounds"]["relaxed reduced problem"]
    assert bounds["relaxed reduced problem"] >= relaxed * (1 - 1e-9)
    assert sol.lower_bound >= relaxed * (1 - 1e-9)
    # the reported dual point attains the bound; the relaxed one is feasible by the
    # spectral bound alone (the residual's by the branch-and-bound oracle)
    v = np.asarray(sol.dual).reshape(n, 1)
    if sol.info["dual_point"] == "relaxed reduced problem":
        assert support_spectral_bound(X, v[:, 0]) <= beta * (1 + 1e-9)
    assert get_loss("squared").dual_value(v, y.reshape(n, 1)) >= sol.lower_bound - 1e-9 * abs(sol.lower_bound)


def test_the_relaxed_bound_wins_where_the_residual_spectral_bound_is_loose():
    X, y = _planted(300, 10, 0)
    sol = deepdual.solve(X, y, beta=1.0, progress=False, n_patterns=20, certify_max_patterns=0)
    assert sol.info["dual_point"] == "relaxed reduced problem"
    assert sol.lower_bound > 2 * sol.info["lower_bounds"]["network residual"]
    # the info on the dual constraint still describes the network residual (the lazy
    # certificate re-bounds c(v) of that v from it)
    assert "spectral" in sol.info["dual_constraint_how"] or "branch and bound" in sol.info["dual_constraint_how"]


def test_lazy_certificate_keeps_the_relaxed_bound():
    from deepdual.estimators import tightened_certificate

    X, y = _planted(150, 8, 2)
    sol = deepdual.solve(X, y, beta=2.0, progress=False, n_patterns=20, certify_max_patterns=0, oracle_time=0)
    tight = tightened_certificate(sol, X, y, loss="squared", beta=2.0, bias=False, oracle_time=0.5)
    assert tight.lower_bound >= sol.lower_bound
    assert tight.lower_bound == max(tight.info["lower_bounds"].values())
    assert tight.lower_bound <= tight.objective


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), d=st.integers(2, 3), log_beta=st.floats(-1.0, 1.0),
       both_signs=st.booleans())
def test_relaxed_bound_is_below_the_cvxpy_optimum(seed, d, log_beta, both_signs):
    pytest.importorskip("cvxpy")
    from references import convex_program_cvxpy

    rng = np.random.default_rng(seed)
    n = 16
    X = rng.standard_normal((n, d))
    y = np.maximum(X @ rng.standard_normal(d), 0) + 0.3 * rng.standard_normal(n)
    if not both_signs:
        y = np.abs(y)
    beta = float(10.0**log_beta)
    prob, _, _ = convex_program_cvxpy(X, y, beta, "squared", enumerate_patterns(X))
    prob.solve()
    opt = float(prob.value)  # the global optimum over all two-layer networks (all patterns)
    low, V, c, _ = relaxed_label_dual(X, y.reshape(n, 1), beta)
    assert low <= opt * (1 + 1e-6) + 1e-8
    assert c <= beta * (1 + 1e-12)
    assert support_spectral_bound(X, V[:, 0]) <= beta * (1 + 1e-9)
    # and the solve's bound (the max with the residual's) as well
    sol = deepdual.solve(X, y, beta=beta, progress=False)
    assert low * (1 - 1e-9) <= sol.lower_bound <= opt * (1 + 1e-6) + 1e-8
