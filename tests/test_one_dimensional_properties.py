"""Units, symmetries and size of the 1-D solvers (issue 14, item 3 and "Also").

With free (unpenalized) biases the optimum satisfies (docs/one_dimensional.md §8)

    P*(a x, b y, beta a^(2/L) b^(2-2/L)) = b^2 P*(x, y, beta)        (squared loss)
    P*(a x, y, beta a^(2/L))             = P*(x, y, beta)            (logistic, hinge, CE)

and is invariant under permutations of the samples, the reflection x -> -x and (free
biases) translations x -> x + t.  The tests check these with the solvers' *proven* bounds:
the lower bound of one problem, mapped by the law, never exceeds the objective of the other,
and the certified objectives agree.  Sizes from 1e-200 to 1e200 (x) and 1e-150 to 1e150 (y)
are solved without overflow or failure.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import deepdual

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

LOSSES = {"squared": {}, "logistic": {"loss": "logistic"}, "hinge": {"loss": "hinge"},
          "cross_entropy": {"loss": "cross_entropy"}, "skip": {"skip": True}}


def _labels(kind, z):
    if kind in ("logistic", "hinge"):
        y = (z > np.median(z)).astype(float)
        return y
    if kind == "cross_entropy":
        return np.digitize(z, np.quantile(z, [1 / 3, 2 / 3]))
    return z


@st.composite
def problems(draw, kinds=tuple(LOSSES)):
    kind = draw(st.sampled_from(kinds))
    n = draw(st.integers(4, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = rng.uniform(-1, 1, n)
    if draw(st.booleans()):
        x = np.round(x, 1)  # repeated points
    z = np.sin(3 * x) + 0.3 * rng.standard_normal(n)
    y = _labels(kind, z)
    if kind in ("logistic", "hinge") and np.ptp(y) == 0:
        y[0] = 1 - y[0]
    beta = 10.0 ** draw(st.floats(-2, 0.5))
    return kind, x, y, beta


def _solve(kind, x, y, beta, **kw):
    return deepdual.solve(x[:, None], y, beta=beta, bias=True, **LOSSES[kind], **kw)


def _agree(s1, s2, factor, rtol=1e-6):
    """Objectives of two problems whose optima are related by P2* = factor * P1*: each proven
    bound (mapped by the law) is below the other's objective, and both are certified."""
    assert s1.certified and s2.certified, (s1, s2)
    tiny = 1e-12 * max(1.0, abs(s1.objective)) * factor
    assert factor * s1.lower_bound <= s2.objective * (1 + 1e-12) + tiny
    assert s2.lower_bound <= factor * s1.objective * (1 + 1e-12) + tiny
    assert s2.objective == pytest.approx(factor * s1.objective, rel=2 * rtol, abs=tiny)


@SETTINGS
@given(problems(), st.floats(-200, 200), st.floats(-150, 150))
def test_scale_equivariance_two_layers(problem, log_a, log_b):
    kind, x, y, beta = problem
    a = 10.0 ** log_a
    b = 10.0 ** log_b if kind in ("squared", "skip") else 1.0
    assume(1e-290 < beta * a * b < 1e290)
    # the weights scale like (b/a)^(1/2) and the objective squares them: keep that in range
    assume(1e-290 < b / a < 1e290)
    s1 = _solve(kind, x, y, beta)
    s2 = _solve(kind, a * x, b * y if b != 1.0 else y, beta * a * b)
    _agree(s1, s2, b * b)
    if kind in ("squared", "skip"):
        # the loss is strictly convex in the fit: ||F - F*|| <= sqrt(2 gap) for each solution
        F1, F2 = s1.predict(x[:, None]), s2.predict((a * x)[:, None]) / b
        assert np.all(np.isfinite(F2))
        bound = np.sqrt(2 * max(s1.gap, 0)) + np.sqrt(2 * max(s2.gap, 0)) / b + 1e-9 * np.linalg.norm(y)
        assert np.linalg.norm(F2 - F1) <= bound * (1 + 1e-6)
        if kind == "skip":
            assert s2.slope * a / b == pytest.approx(s1.slope, rel=1e-5, abs=1e-6 * np.abs(y).max())
    # the network found in the scaled units certifies there too
    cert = deepdual.certify(s2.network, (a * x)[:, None], b * y if b != 1.0 else y) if kind != "skip" else None
    if cert is not None:
        assert cert.objective == pytest.approx(s2.objective, rel=1e-12)
        assert cert.lower_bound <= b * b * s1.objective * (1 + 1e-12) + 1e-300


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # ~0.6 s a solve
@given(problems(kinds=("squared",)), st.integers(-30, 30), st.integers(-20, 20))
def test_scale_equivariance_deep(problem, ka, kb):
    """Depth 3 (the 'linear on the data' class, not certified): with a = 2^(3 ka), b = 2^(3 kb)
    the problems are the same up to exact scalings, so the objectives agree to rounding."""
    _, x, y, beta = problem
    a, b = 2.0 ** (3 * ka), 2.0 ** (3 * kb)
    s1 = _solve("squared", x, y, beta, depth=3)
    s2 = _solve("squared", a * x, b * y, beta * a ** (2 / 3) * b ** (4 / 3), depth=3)
    assert s2.objective == pytest.approx(b * b * s1.objective, rel=1e-9)
    assert s2.lower_bound == pytest.approx(b * b * s1.lower_bound, rel=1e-9, abs=1e-12 * b * b)
    assert s2.lower_bound <= s2.objective * (1 + 1e-12)


@SETTINGS
@given(problems(), st.randoms(use_true_random=False), st.booleans(), st.floats(-3, 3))
def test_permutation_reflection_translation(problem, rnd, penalize, shift):
    kind, x, y, beta = problem
    kw = {}
    if penalize and kind == "squared":
        kw = {"penalize_biases": True}
    s1 = _solve(kind, x, y, beta, **kw)
    perm = list(range(x.size))
    rnd.shuffle(perm)
    s2 = _solve(kind, x[perm], y[perm], beta, **kw)
    _agree(s1, s2, 1.0)
    s3 = _solve(kind, -x, y, beta, **kw)  # reflection: (w, b) -> (-w, b)
    _agree(s1, s3, 1.0)
    if not kw and kind != "skip":  # translation: b -> b - w t (free biases only)
        s4 = _solve(kind, x + shift, y, beta)
        _agree(s1, s4, 1.0, rtol=1e-5)


@pytest.mark.parametrize("kind", ["logistic", "hinge", "cross_entropy", "squared", "skip"])
@pytest.mark.parametrize("a", [1e50, 1e-50, 1e200, 1e-200, 1e300])
def test_reported_sizes(kind, a):
    """The reported failures (logistic ZeroDivisionError, hinge HiGHS model error, CE blaming
    weights[0][1] at 1e200) are solved and certified, with no warning."""
    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(-1, 1, 15))
    y = _labels(kind, np.sin(3 * x) + 0.1 * rng.standard_normal(15))
    ref = _solve(kind, x, y, 0.1)
    with np.errstate(all="raise"):
        sol = _solve(kind, a * x, y, 0.1 * a)
    _agree(ref, sol, 1.0)
    assert all(np.all(np.isfinite(W)) for layers in sol.network.weights for W in layers)


def test_penalized_biases_refuse_huge_x():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 10)[:, None]
    y = np.sin(3 * x[:, 0])
    with pytest.raises(ValueError, match="penalize_biases"):
        deepdual.solve(1e8 * x, y, beta=0.1, bias=True, penalize_biases=True)
    # tiny x are fine (the problem tends to the constant fit)
    sol = deepdual.solve(1e-200 * x, y, beta=0.1, bias=True, penalize_biases=True)
    assert sol.certified


def test_beta_out_of_range_is_named():
    x = np.linspace(-1, 1, 8)[:, None] * 1e200
    with pytest.raises(ValueError, match="`beta`"):
        deepdual.solve(x, np.sin(np.arange(8.0)), beta=1e-200, bias=True)


def test_label_overflow_is_named():
    x = np.linspace(-1, 1, 8)[:, None]
    with pytest.raises(ValueError, match="overflow"):
        deepdual.solve(x, 1e200 * np.sin(np.arange(8.0)), beta=1e-3, bias=True)


@pytest.mark.parametrize("kind", ["squared", "logistic", "hinge", "cross_entropy"])
@pytest.mark.parametrize("a", [1.0, 1e-157, 1e-300, 1e155, 1e300])
def test_certify_bound_valid_at_any_size(kind, a):
    """certify's bound never exceeds the optimum at any size of x.  (Found by the scale test:
    at x ~ 1e-157 the K-column dual constraint squared entries into subnormal numbers and
    came out 2.7e-10 too small, so the bound exceeded the optimum by that much.)"""
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, 9)
    y = _labels(kind, np.sin(3 * x) + 0.3 * rng.standard_normal(9))
    ref = _solve(kind, x, y, 0.5)  # unit scale
    sol = _solve(kind, a * x, y, 0.5 * a)
    cert = deepdual.certify(sol.network, (a * x)[:, None], y)
    assert cert.objective == pytest.approx(sol.objective, rel=1e-15)
    # cross-entropy: the loss's conjugate accepts dual rows summing to 1 within 1e-9 (losses.py),
    # and the output-bias correction of the dual point moves row sums by ~1e-13, so its bound can
    # exceed the optimum by ~1e-13 relative (the same at every size); other losses: rounding
    slack = 1e-11 if kind == "cross_entropy" else 1e-14
    assert cert.lower_bound <= ref.objective * (1 + slack)
    assert cert.lower_bound <= cert.objective * (1 + slack)
    assert cert.relative_gap < 1e-6


@pytest.mark.parametrize("kind", ["squared", "logistic", "hinge", "cross_entropy", "skip"])
@pytest.mark.parametrize("t", [1e3, -1e6, 1e6])
def test_large_offset(kind, t):
    """x far from 0 relative to its spread (x + t): solved in exactly shifted units (x - x_min
    is exact by Sterbenz's lemma), certified, same optimum as the unshifted data.  (Before:
    the hinge LP ended at relative gap 1.6e-3 for t = 1e6, and 0.98 for t = 1e9.)"""
    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(-1, 1, 15))
    y = _labels(kind, np.sin(3 * x) + 0.1 * rng.standard_normal(15))
    ref = _solve(kind, x, y, 0.1)
    sol = _solve(kind, x + t, y, 0.1)
    assert sol.certified and sol.info["input_shift"] != 0.0
    # x + t is rounded (to 1e-10 for t = 1e6): the optima agree to that order
    assert sol.objective == pytest.approx(ref.objective, rel=1e-8)
    assert sol.lower_bound <= sol.objective * (1 + 1e-9)


def test_logistic_degenerate_tau_search():
    """Found by the scale test at unit scale: a proximal Newton step's weighted trend filter
    saw the tau-derivative change sign once and not on re-evaluation (several minimizers),
    and the root search raised 'f(a) and f(b) must have different signs'."""
    x = np.array([0.21412623, -0.12113116, 0.29379664, -0.56236217, 0.19837017, 0.81552882, 0.82561328])
    y = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0])
    sol = _solve("logistic", x, y, 0.01)
    assert sol.certified
    cert = deepdual.certify(sol.network, x[:, None], y)
    assert cert.lower_bound <= sol.objective * (1 + 1e-12) and cert.relative_gap < 1e-6
