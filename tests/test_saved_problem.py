"""A network carries its problem (loss, beta, bias convention) and is certified in the class
its architecture sets (issue 14, items 6, 8 and 14).

* ``solve`` records the problem on its network, ``Network.save``/``load`` keep it, and
  ``certify`` uses it by default, so ``certify(solve(...).network)`` reports the solve's
  objective; a contradicting argument is refused with a ``ValueError`` naming it.
* The certified class is set by which bias parameters exist, not by their values: a
  network whose biases are zero is in the class with biases, so its lower bound may never
  exceed the objective of any network of that class (false-certificate property tests).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deepdual
from deepdual.problem import PROBLEM_KEYS, check_problem, problem_from_json, problem_to_json

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _data_1d(n=12, seed=0):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-1, 1, n))[:, None]
    return x, np.sin(3 * x[:, 0]) + 0.1 * rng.standard_normal(n)


# ============================================================================ items 6 and 14
def _cases():
    rng = np.random.default_rng(1)
    x, y = _data_1d()
    X = rng.standard_normal((12, 3))
    yl = (y > 0).astype(float)
    return [
        ("1-D free biases, squared", x, y, dict(beta=0.1, bias=True)),
        ("1-D free biases, logistic", x, yl, dict(beta=0.1, bias=True, loss="logistic")),
        ("1-D free biases, hinge", x, yl, dict(beta=0.1, bias=True, loss="hinge")),
        ("1-D penalized biases", x, y, dict(beta=0.1, bias=True, penalize_biases=True)),
        ("1-D depth 3", x, y, dict(beta=0.1, bias=True, depth=3)),
        ("d = 3, penalized hidden biases (convex program)", X, X @ [1.0, -1.0, 0.5], dict(beta=0.5, bias=True)),
        ("linear with bias", X, X @ [1.0, -1.0, 0.5] + 2.0, dict(beta=0.5, bias=True, activation="linear")),
        ("no biases", X, X @ [1.0, -1.0, 0.5], dict(beta=0.5)),
    ]


@pytest.mark.parametrize("name, X, y, kw", _cases(), ids=[c[0] for c in _cases()])
def test_round_trip_reports_the_solved_objective(tmp_path, name, X, y, kw):
    """certify(solution.network) with no arguments, before and after save/load, certifies
    the problem that was solved: the same objective, a finite proven bound."""
    sol = deepdual.solve(X, y, **kw)
    net = sol.network
    assert set(net.problem) <= set(PROBLEM_KEYS)
    assert net.problem["beta"] == kw["beta"]
    assert net.problem["loss"] == kw.get("loss", "squared")
    assert ("penalize_biases" in net.problem) == net.has_biases
    net.save(tmp_path / "net.npz")
    loaded = deepdual.Network.load(tmp_path / "net.npz")
    assert loaded.problem == net.problem and loaded.copy().problem == net.problem
    for n in (net, loaded):
        cert = deepdual.certify(n, X, y)
        assert cert.objective == pytest.approx(sol.objective, rel=1e-12, abs=1e-14)
        assert np.isfinite(cert.lower_bound)
        assert cert.lower_bound <= cert.objective * (1 + 1e-12) + 1e-14
        if X.shape[1] == 1:  # 1-D: certify is as strong as solve (it falls back on the optimum's dual)
            assert cert.lower_bound >= sol.lower_bound - 1e-9 * abs(sol.lower_bound)
        if sol.certified and kw.get("depth", 2) == 2:
            # the problem is the same, so certify closes the gap too (for the hinge loss the
            # residual's subgradient at margins exactly 1 is not the optimal dual; certify then
            # uses the dual of the optimum, a bound for the whole class)
            assert cert.relative_gap < 1e-5
    # the stored values, spelt out, agree; the objective with the other bias convention differs
    explicit = deepdual.certify(loaded, X, y, beta=kw["beta"], loss=kw.get("loss", "squared"))
    assert explicit.objective == cert.objective


def test_contradicting_arguments_are_refused():
    x, y = _data_1d()
    yl = (y > 0).astype(float)
    net = deepdual.solve(x, yl, beta=0.1, bias=True, loss="logistic").network
    with pytest.raises(ValueError, match="`loss`"):
        deepdual.certify(net, x, yl, loss="squared")
    with pytest.raises(ValueError, match="`beta`"):
        deepdual.certify(net, x, yl, beta=0.2)
    with pytest.raises(ValueError, match="`penalize_biases`"):
        deepdual.certify(net, x, yl, penalize_biases=True)
    # equal values are not contradictions (the Loss object, beta as an integer-valued float...)
    deepdual.certify(net, x, yl, beta=0.1, loss=deepdual.LogisticLoss(), penalize_biases=False)
    # forgetting the problem makes another one certifiable, and inputs are not modified
    other = net.copy()
    other.problem = None
    c = deepdual.certify(other, x, yl, beta=0.2, loss="logistic")
    assert c.objective > deepdual.certify(net, x, yl).objective
    assert net.problem == {"beta": 0.1, "loss": "logistic", "penalize_biases": False}


def test_beta_is_required_without_a_record():
    x, y = _data_1d()
    net = deepdual.Network([[np.ones((1, 2)), np.ones((2, 1))]])
    with pytest.raises(TypeError, match="`beta`"):
        deepdual.certify(net, x, y)
    assert deepdual.certify(net, x, y, beta=1.0).objective == pytest.approx(
        deepdual.objective(net, x, y, beta=1.0))


def test_problem_validation_and_json():
    assert check_problem(None) is None
    rec = {"loss": "hinge", "beta": 0.1, "penalize_biases": True}
    assert problem_from_json(problem_to_json(rec)) == rec
    assert problem_from_json(problem_to_json({"beta": 1 / 3}))["beta"] == 1 / 3  # exact round trip
    with pytest.raises(ValueError, match="unknown key"):
        check_problem({"lr": 0.1})
    with pytest.raises(ValueError, match=r"problem\['loss'\]"):
        check_problem({"loss": "huber"})
    with pytest.raises(ValueError, match=r"problem\['beta'\]"):
        check_problem({"beta": -1.0})
    with pytest.raises(TypeError, match=r"problem\['penalize_biases'\]"):
        check_problem({"penalize_biases": "yes"})
    with pytest.raises(TypeError, match="problem"):
        deepdual.Network([[np.ones((1, 2)), np.ones((2, 1))]], problem=[("beta", 1.0)])
    with pytest.raises(ValueError, match="JSON"):
        problem_from_json("{not json")


def test_corrupt_problem_in_file(tmp_path):
    net = deepdual.Network([[np.ones((1, 2)), np.ones((2, 1))]], problem={"beta": 2.0})
    net.save(tmp_path / "a.npz")
    with np.load(tmp_path / "a.npz") as f:
        arrays = dict(f)
    arrays["problem"] = np.array('{"beta": -3}')
    np.savez(tmp_path / "b.npz", **arrays)
    with pytest.raises(ValueError, match="beta"):
        deepdual.Network.load(tmp_path / "b.npz")
    # files written before the problem was stored still load (problem unknown)
    del arrays["problem"]
    np.savez(tmp_path / "c.npz", **arrays)
    assert deepdual.Network.load(tmp_path / "c.npz").problem is None


def test_user_loss_is_not_recorded():
    class MyLoss(deepdual.SquaredLoss):
        name = "mine"

    x, y = _data_1d()
    sol = deepdual.solve(x, y, beta=0.5, activation="linear", loss=MyLoss())
    assert "loss" not in sol.network.problem and sol.network.problem["beta"] == 0.5


# ============================================================================ item 8
def _relu_net(draw, d, with_hidden, with_out, zero):
    m = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    W1, W2 = rng.standard_normal((d, m)), rng.standard_normal((m, 1))
    b = np.zeros(m) if zero else rng.standard_normal(m)
    ob = np.zeros(1) if zero else rng.standard_normal(1)
    return deepdual.Network([[W1, W2]], biases=[[b]] if with_hidden else None,
                            output_bias=ob if with_out else None)


@st.composite
def one_dim_problem(draw):
    n = draw(st.integers(3, 10))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = rng.uniform(-1, 1, n)[:, None]
    const = draw(st.booleans())
    y = np.full(n, draw(st.floats(-5, 5))) if const else rng.standard_normal(n)
    beta = draw(st.floats(1e-2, 10.0))
    zero = draw(st.booleans())
    with_hidden, with_out = draw(st.sampled_from([(True, True), (True, False), (False, True)]))
    return x, y, beta, _relu_net(draw, 1, with_hidden, with_out, zero)


@SETTINGS
@given(one_dim_problem())
def test_1d_bound_never_exceeds_the_class_optimum(problem):
    """A 1-D network with bias parameters (zero or not) is certified against networks with
    biases: its lower bound is at most solve(bias=True)'s objective, the objective of a
    network of that class (an output bias alone is emulated by a hidden unit with a large
    bias, at vanishing cost, so both sub-classes have the same infimum)."""
    x, y, beta, net = problem
    cert = deepdual.certify(net, x, y, beta=beta)
    sol = deepdual.solve(x, y, beta=beta, bias=True)
    best = sol.objective
    assert cert.lower_bound <= best + 1e-9 * max(1.0, abs(best))
    # and it is as strong as the optimum's (certify uses its dual when the network's is weaker)
    assert cert.lower_bound >= sol.lower_bound - 1e-12 * max(1.0, abs(best))
    assert cert.lower_bound <= cert.objective + 1e-9 * max(1.0, abs(cert.objective))


@st.composite
def general_problem(draw):
    n, d = draw(st.integers(3, 8)), draw(st.integers(2, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    X = rng.standard_normal((n, d))
    y = rng.standard_normal(n) + draw(st.floats(-5, 5))
    beta = draw(st.floats(1e-2, 10.0))
    zero = draw(st.booleans())
    with_hidden, with_out = draw(st.sampled_from([(True, True), (True, False), (False, True)]))
    return X, y, beta, _relu_net(draw, d, with_hidden, with_out, zero), with_hidden, with_out


@SETTINGS
@given(general_problem(), st.booleans())
def test_general_bound_never_exceeds_a_feasible_network(problem, penalize):
    """On d > 1 data the bound of a network with bias parameters (zero or not) never exceeds
    the objective of a simple network of its class: a constant fit c, which costs nothing
    through an unpenalized output bias, and ``beta |c|`` through one hidden unit with a
    (penalized or not) bias."""
    X, y, beta, net, with_hidden, with_out = problem
    cert = deepdual.certify(net, X, y, beta=beta, penalize_biases=penalize)
    cs = np.linspace(min(y.min(), 0.0), max(y.max(), 0.0), 401)
    rss = 0.5 * ((y[:, None] - cs[None, :]) ** 2).sum(axis=0)
    fits = []
    if with_out:  # f = c by the output bias: free, or (beta/2) c^2 when penalized
        fits.append(rss + (0.5 * beta * cs ** 2 if penalize else 0.0))
    if with_hidden:  # f = v (0 x + b)_+ with v b = c: (beta/2)(v^2 + [penalized] b^2) -> beta |c| or 0
        fits.append(rss + (beta * np.abs(cs) if penalize else 0.0))
    feasible = float(np.min(fits))
    assert cert.lower_bound <= feasible + 1e-9 * max(1.0, feasible)
    # the network itself is feasible too
    assert cert.lower_bound <= cert.objective + 1e-9 * max(1.0, abs(cert.objective))


@SETTINGS
@given(st.integers(0, 2**31), st.floats(1e-2, 10.0), st.floats(-5, 5))
def test_linear_zero_output_bias_is_in_the_bias_class(seed, beta, shift):
    """A linear network with a zero output bias is certified against linear networks with a
    bias: its bound is at most the constant fit's objective."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((8, 2))
    y = rng.standard_normal(8) + shift
    net = deepdual.Network([[rng.standard_normal((2, 2)), rng.standard_normal((2, 1))]], "linear",
                           output_bias=np.zeros(1))
    cert = deepdual.certify(net, X, y, beta=beta)
    assert cert.lower_bound <= 0.5 * float(np.sum((y - y.mean()) ** 2)) * (1 + 1e-9) + 1e-12


def test_constant_labels_zero_biases_not_certified_above_zero():
    """The reported instance: constant y on [-1, 1] and a network whose biases are zero.
    Networks with biases fit it exactly at vanishing cost, so no positive bound is valid."""
    x = np.linspace(-1, 1, 20)[:, None]
    y = np.full(20, 3.0)
    net = deepdual.Network([[np.ones((1, 4)), np.ones((4, 1))]], biases=[[np.zeros(4)]], output_bias=[0.0])
    cert = deepdual.certify(net, x, y, beta=1.0)
    assert cert.lower_bound <= 1e-12 and not cert.certified
    assert deepdual.solve(x, y, beta=1.0, bias=True).objective <= 1e-12


def test_summary_uses_the_recorded_problem():
    """Solution.summary / deepdual.summarize certify with the recorded loss and beta (a
    logistic solution used to be certified with the squared loss by default)."""
    x, y = _data_1d()
    yl = (y > 0).astype(float)
    sol = deepdual.solve(x, yl, beta=0.1, bias=True, loss="logistic")
    for rep in (sol.summary(x, yl), sol.summary(x, yl, beta=0.1), deepdual.summarize(sol.network, x, yl)):
        assert rep.certificate["objective"] == pytest.approx(sol.objective, rel=1e-12)
        assert rep.certificate["lower_bound"] <= sol.objective * (1 + 1e-12)
    with pytest.raises(ValueError, match="`loss`"):
        deepdual.summarize(sol.network, x, yl, loss="squared")


@SETTINGS
@given(st.integers(1, 30), st.integers(1, 3), st.floats(-250, 250), st.integers(0, 2**31))
def test_center_exactly(n, K, log_scale, seed):
    """Column sums exactly 0 (math.fsum is correctly rounded, so 0.0 means exactly 0), within
    8 n eps max|V| of the floating-point centering."""
    import math

    from deepdual.exact_centering import center_exactly

    rng = np.random.default_rng(seed)
    V = (rng.standard_normal((n, K)) + rng.standard_normal(K)) * 10.0 ** log_scale
    C = center_exactly(V)
    assert all(math.fsum(C[:, k]) == 0.0 for k in range(K))
    ref = V - V.mean(axis=0)
    assert np.all(np.abs(C - ref) <= 8 * n * np.finfo(float).eps * np.abs(V).max(axis=0) + 1e-300)


@pytest.mark.parametrize("d", [1, 2])
def test_constant_residual_gives_no_false_bound(d):
    """A network whose units are all inactive fits constant labels with its output bias: the
    centered residual is rounding noise, its dual constraint ~1e-16, the squared loss's best
    dual scale ~1e16; a rounding residue of the column sum then gave lower bound 1.27 for an
    optimum of 0 (found by test_1d_bound_never_exceeds_the_class_optimum)."""
    x = np.array([[0.27392337], [-0.46042657], [-0.91805295]])
    X = x if d == 1 else np.hstack([x, x ** 2])
    y = np.full(3, -1.0)
    W1 = np.full((d, 1), 0.61716011)
    net = deepdual.Network([[W1, np.array([[-0.15323826]])]], biases=[[np.array([-0.55084025])]],
                           output_bias=[-0.26317854])
    cert = deepdual.certify(net, X, y, beta=1.0)
    assert cert.lower_bound <= 1e-12
