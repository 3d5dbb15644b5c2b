"""The primal–dual method's stall detection (relu/convex_program/conic_ipm.py,
``GroupSOCQP.solve``; docs/convex_program.md, "Stall detection").

The precision-limit test hands over (``stalled``) after 4 iterations without a 10 %
cumulative fall of the error max(gap/|f|, res/beta); steady progress of a few percent
per iteration is not a stall (diabetes, 442 x 11: the old per-step test handed a run
that was converging over to the barrier method at error 8.4).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import deepdual
from deepdual.losses import SquaredLoss
from deepdual.patterns import sample_patterns
from deepdual.relu.convex_program.conic_ipm import ipm_error
from deepdual.relu.convex_program.groups import interior_direction
from deepdual.relu.convex_program.working_set import PrimalDual

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


def _instance(seed: int, n: int = 30, d: int = 4, P: int = 12):
    """A small instance of the diabetes class: a bias column (rank d + 1), sampled patterns."""
    rng = np.random.default_rng(seed)
    X = np.hstack([rng.standard_normal((n, d)), np.ones((n, 1))])
    y = X[:, :d] @ rng.standard_normal(d) + 0.5 * np.maximum(X[:, 0], 0) + 0.3 * rng.standard_normal(n)
    pats = sample_patterns(X, P, np.random.default_rng(seed + 1))
    return X, y, np.asarray(pats, dtype=bool)


def _scripted_ipm(errors):
    """A real GroupSOCQP whose measured error follows ``errors`` (one per measurement;
    the last repeats): the stall rule is judged on the sequence alone."""
    X, y, pats = _instance(0, n=12, d=2, P=3)
    dirs = np.array([interior_direction(X, p.astype(float)) for p in pats])
    keep = np.all(np.isfinite(dirs), axis=1)
    pd = PrimalDual(X, y[:, None], SquaredLoss(), 0.1, pats[keep], dirs[keep])
    ipm = pd.ipm
    seq = iter(errors)
    last = [errors[-1]]

    def measure():
        e = next(seq, last[0])
        return 1.0, 0.0, e * ipm.beta  # f = 1, gap = 0: error = res / beta = e

    ipm._measure = measure
    ipm._step = lambda mu: True
    return ipm


def test_steady_progress_is_not_a_stall():
    """Errors falling 5 % per iteration (never 10 % in one step) reach the tolerance."""
    errors = [10.0 * 0.95**k for k in range(400)]
    ipm = _scripted_ipm(errors)
    used = ipm.solve(tol=1e-3, budget=1000)
    assert not ipm.stalled
    k_tol = next(k for k, e in enumerate(errors) if e <= 0.25e-3)  # res <= tol beta / 4
    assert used == k_tol


@pytest.mark.parametrize("plateau", [8.4, 1e-7])
def test_flat_error_is_detected_as_a_stall_within_five_iterations(plateau):
    """No progress (far from the optimum, or at the precision limit): handed over at once."""
    errors = [100.0, 30.0, 10.0] + [plateau] * 1000
    ipm = _scripted_ipm(errors)
    ipm.allow_dense_switch = False
    used = ipm.solve(tol=1e-12, budget=1000)
    assert ipm.stalled
    assert used <= 3 + 5


def test_slow_oscillating_error_is_a_stall():
    """Errors within 10 % of the last reset for 4 iterations: a stall, though each is a new best."""
    errors = [10.0, 9.9, 9.8, 9.7, 9.6, 9.5] + [9.45] * 100
    ipm = _scripted_ipm(errors)
    ipm.allow_dense_switch = False
    used = ipm.solve(tol=1e-12, budget=1000)
    assert ipm.stalled and used == 4


@settings(max_examples=5, **SETTINGS)
@given(seed=st.integers(0, 10_000), beta=st.sampled_from([1e-3, 0.05, 0.5]))
def test_primal_dual_reaches_the_sampled_programs_optimum(seed, beta):
    """The primal-dual method's objective (no local polish) is within 1e-6 of cvxpy's
    optimum of the same sampled program (bias column: rank d + 1), and above its proven
    lower bound."""
    cp = pytest.importorskip("cvxpy")
    from references import convex_program_cvxpy

    X, y, pats = _instance(seed)
    sol = deepdual.solve(X, y, beta=beta, method="convex", patterns=pats, solver="ipm", polish=False,
                         tol=1e-8)
    assert sol.info["solver"] in ("ipm", "barrier")
    prob, _, _ = convex_program_cvxpy(X, y, beta, "squared", pats)
    prob.solve(solver=cp.CLARABEL)
    assert prob.status == "optimal"
    own = deepdual.objective(sol.network, X, y, beta=beta)
    assert np.isclose(sol.objective, own, rtol=1e-9)
    assert abs(sol.objective - prob.value) <= 1e-6 * max(1.0, abs(prob.value))
    assert sol.lower_bound <= sol.objective * (1 + 1e-12)


def test_error_measure_is_the_larger_relative_error():
    assert ipm_error(2.0, 0.2, 0.05, 0.1) == pytest.approx(0.5)
    assert ipm_error(2.0, np.nan, 0.0, 0.1) == np.inf
