"""Lifted (doubly non-negative) relaxation bound on the dual constraint c(v)
(docs/lifted.md): a proven upper bound, checked against complete enumeration of
the hyperplane arrangement on random, tied, duplicated and rank-deficient data, with exact and
early-stopped SCS solves and with arbitrary (garbage) dual multipliers."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("scs")

from deepdual.patterns import enumerate_patterns  # noqa: E402
from deepdual.relu.convex_program.certificate import cone_value, support_spectral_bound  # noqa: E402
from deepdual.relu.convex_program.lifted import (  # noqa: E402
    lifted_bound,
    relaxation_program,
    repaired_dual_bound,
)


def g_enumerated(X: np.ndarray, v: np.ndarray) -> float:
    """max_{||u||<=1} sum v_i (x_i^T u)_+ : max over all cells of the exact NNLS cell value."""
    return max(cone_value(X, p.astype(float), v) for p in enumerate_patterns(X))


def c_enumerated(X: np.ndarray, v: np.ndarray) -> float:
    return max(g_enumerated(X, v), g_enumerated(X, -v))


def check_valid(X, v, **kw):
    ref = c_enumerated(X, v)
    res = lifted_bound(X, v, **kw)
    assert res.upper >= ref - 1e-12 * max(1.0, ref)
    assert res.upper <= support_spectral_bound(X, v) * (1 + 1e-12)
    for side, s in zip(res.sides, (1.0, -1.0)):
        assert side.upper >= g_enumerated(X, s * v) - 1e-12
    return ref, res


@pytest.mark.parametrize("seed", range(4))
def test_dnn_bound_valid_and_tight_on_random_data(seed):
    rng = np.random.default_rng(seed)
    n, d = [(10, 2), (12, 3), (9, 3), (14, 2)][seed]
    X = rng.standard_normal((n, d))
    v = rng.standard_normal(n)
    ref, res = check_valid(X, v, level="dnn")
    # a converged DNN solve is far tighter than the spectral bound on these sizes
    assert res.upper <= ref + 0.5 * (res.spectral - ref)


@pytest.mark.parametrize("seed", range(3))
def test_levels_are_nested(seed):
    """More products kept non-negative can only lower the relaxation value (up to SCS's tolerance)."""
    rng = np.random.default_rng(10 + seed)
    X = rng.standard_normal((10, 3))
    v = rng.standard_normal(10)
    vals = {lev: lifted_bound(X, v, level=lev, eps=1e-8) for lev in ("shor", "partial", "dnn")}
    for s in range(2):
        sh, pa, dn = (vals[lev].sides[s].solver_value for lev in ("shor", "partial", "dnn"))
        assert pa <= sh + 1e-4 * max(1.0, abs(sh))
        assert dn <= pa + 1e-4 * max(1.0, abs(pa))
    ref = c_enumerated(X, v)
    for r in vals.values():
        assert r.upper >= ref


def test_partial_lifting_is_valid_and_between():
    """Lifting fewer rows (the rest linear or secant) stays a proof; lifting all is tightest here."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((12, 2))
    v = rng.standard_normal(12)
    ref = c_enumerated(X, v)
    full = lifted_bound(X, v).upper
    for k in (0, 2, 6):
        part = lifted_bound(X, v, max_lifted=k).upper
        assert part >= ref
        assert part >= full - 1e-4 * full


@pytest.mark.parametrize("max_iters", [1, 5, 25])
@pytest.mark.parametrize("lift", ["all", "positive"])
def test_early_stopped_solver_still_proves_a_bound(max_iters, lift):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((11, 3))
    v = rng.standard_normal(11)
    check_valid(X, v, max_iters=max_iters, lift=lift)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), n=st.integers(2, 9), d=st.integers(1, 3),
       dup=st.booleans(), integer=st.booleans(), rank_def=st.booleans(),
       level=st.sampled_from(["shor", "partial", "dnn"]), iters=st.sampled_from([3, 40, 20000]),
       max_lifted=st.sampled_from([None, 0, 1, 3]))
def test_property_valid_bound(seed, n, d, dup, integer, rank_def, level, iters, max_lifted):
    rng = np.random.default_rng(seed)
    if integer:     # ties: many rows on the same hyperplanes, parallel/anti-parallel rows
        X = rng.integers(-2, 3, size=(n, d)).astype(float)
    else:
        X = rng.standard_normal((n, d))
    if rank_def and d > 1:
        X[:, -1] = X[:, 0] * 2.0 - (X[:, 1] if d > 2 else 0.0)
    if dup:
        X = np.vstack([X, X[: max(1, n // 2)]])
    v = rng.integers(-3, 4, size=len(X)).astype(float) if integer else rng.standard_normal(len(X))
    check_valid(X, v, level=level, max_iters=iters, max_lifted=max_lifted)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), scale=st.sampled_from([1e-3, 1.0, 10.0]),
       level=st.sampled_from(["shor", "partial", "dnn"]), lift=st.sampled_from(["all", "positive"]),
       max_lifted=st.sampled_from([None, 0, 2]))
def test_repaired_bound_holds_for_arbitrary_multipliers(seed, scale, level, lift, max_lifted):
    """The weak-duality repair is a proof for *any* multipliers, not only SCS's."""
    rng = np.random.default_rng(seed)
    n, d = 7, 2
    A = rng.standard_normal((n, d))
    A /= np.linalg.norm(A, axis=1, keepdims=True)
    v = rng.standard_normal(n)
    prog = relaxation_program(A, v, level, lift, max_lifted)
    y = scale * rng.standard_normal(prog.A.shape[0])
    T = 2.0 + (float(np.linalg.norm(A[prog.lifted], 2)) ** 2 * (1 + 1e-9) if prog.lifted.any() else 0.0)
    bound, shift = repaired_dual_bound(prog, y, T)
    assert shift >= 0
    assert bound >= g_enumerated(A, v) - 1e-12


def test_trivial_and_zero_cases():
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert lifted_bound(X, np.zeros(2)).upper == 0.0
    assert lifted_bound(np.zeros((3, 2)), np.ones(3)).upper == 0.0
    # one-signed v: one side is exactly 0 (rows with v_i <= 0 only)
    res = lifted_bound(X, np.array([1.0, 2.0]))
    assert res.sides[1].upper == 0.0
    assert res.upper >= np.sqrt(5.0) - 1e-12      # attained at u = (1, 2)/sqrt(5)


def test_inputs_not_modified_and_bad_input():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 2))
    v = rng.standard_normal(6)
    X0, v0 = X.copy(), v.copy()
    lifted_bound(X, v, max_iters=50)
    assert np.array_equal(X, X0) and np.array_equal(v, v0)
    with pytest.raises(ValueError, match="v must"):
        lifted_bound(X, v[:3])
    with pytest.raises(ValueError, match="X must"):
        lifted_bound(X[0], v)
    with pytest.raises(ValueError, match="X must be finite"):
        lifted_bound(np.where(X > 0, np.nan, X), v)
    with pytest.raises(ValueError, match="v must be finite"):
        lifted_bound(X, np.full(6, np.inf))
    with pytest.raises(ValueError, match="level"):
        lifted_bound(X, v, level="sdp")
    with pytest.raises(ValueError, match="lift"):
        lifted_bound(X, v, lift="some")
    with pytest.raises(ValueError, match="max_iters"):
        lifted_bound(X, v, max_iters=0)
    with pytest.raises(ValueError, match="max_lifted"):
        lifted_bound(X, v, max_lifted=-1)
    with pytest.raises(TypeError, match="solver_options"):
        lifted_bound(X, v, solver_options=[("eps_abs", 1.0)])
    with pytest.raises(ValueError, match="time_limit"):
        lifted_bound(X, v, time_limit=-1.0)


def test_missing_scs_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "scs", None)
    rng = np.random.default_rng(1)
    with pytest.raises(ImportError, match="sdp"):
        lifted_bound(rng.standard_normal((5, 2)), rng.standard_normal(5))
