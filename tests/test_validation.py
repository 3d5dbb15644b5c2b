"""Bad input to the public entry points raises ValueError/TypeError naming the argument;
good input is never modified; float32, integer and list inputs work."""

from __future__ import annotations

import numpy as np
import pytest

import deepdual
from deepdual import Network


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((8, 3)), rng.standard_normal(8)


@pytest.fixture
def net():
    rng = np.random.default_rng(1)
    return Network([[rng.standard_normal((3, 2)), rng.standard_normal((2, 1))]], "linear")


def _solve(X, y, **kw):
    kw.setdefault("beta", 1.0)
    kw.setdefault("activation", "linear")
    return deepdual.solve(X, y, **kw)


# ---------------------------------------------------------------------------- X and y
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_X_and_y(data, net, bad):
    X, y = data
    Xb, yb = X.copy(), y.copy()
    Xb[2, 1] = bad
    yb[3] = bad
    for fn in (lambda A, b: _solve(A, b), lambda A, b: deepdual.certify(net, A, b, beta=1.0),
               lambda A, b: deepdual.objective(net, A, b, beta=1.0), lambda A, b: deepdual.project(A, b, 1.0)):
        with pytest.raises(ValueError, match=r"`X`.*finite"):
            fn(Xb, y)
        with pytest.raises(ValueError, match=r"`y`.*finite"):
            fn(X, yb)


@pytest.mark.parametrize("X_bad", [np.ones(8), np.ones((8, 3, 1)), np.ones((0, 3)), np.ones((8, 0)), 3.0])
def test_bad_X_shapes(data, net, X_bad):
    _, y = data
    with pytest.raises(ValueError, match="`X`"):
        _solve(X_bad, y)
    with pytest.raises(ValueError, match="`X`"):
        deepdual.certify(net, X_bad, y, beta=1.0)
    with pytest.raises(ValueError, match="`X`"):
        deepdual.objective(net, X_bad, y, beta=1.0)
    with pytest.raises(ValueError, match="`X`"):
        deepdual.project(X_bad, y, 1.0)


@pytest.mark.parametrize("y_bad", [np.ones(7), np.ones((8, 2, 1)), np.ones((8, 0))])
def test_bad_y_shapes(data, net, y_bad):
    X, _ = data
    for fn in (lambda: _solve(X, y_bad), lambda: deepdual.certify(net, X, y_bad, beta=1.0),
               lambda: deepdual.objective(net, X, y_bad, beta=1.0), lambda: deepdual.project(X, y_bad, 1.0)):
        with pytest.raises(ValueError, match="`y`"):
            fn()


def test_non_numeric_arrays(data):
    X, y = data
    with pytest.raises(TypeError, match="`X`"):
        _solve("abc", y)
    with pytest.raises(TypeError, match="`X`"):
        _solve(None, y)
    with pytest.raises(TypeError, match="`y`"):
        _solve(X, np.array(["a"] * 8))
    with pytest.raises(TypeError, match="`X`"):
        _solve(X + 1j, y)
    with pytest.raises(TypeError, match="`X`"):
        _solve([[1.0, 2.0], [3.0]], [1.0, 2.0])


def test_mismatched_network_and_data(data, net):
    X, y = data
    with pytest.raises(ValueError, match="columns"):
        deepdual.certify(net, X[:, :2], y, beta=1.0)
    with pytest.raises(ValueError, match="output"):
        deepdual.certify(net, X, np.ones((8, 2)), beta=1.0)
    with pytest.raises(ValueError, match="output"):
        deepdual.objective(net, X, np.ones((8, 2)), beta=1.0)
    with pytest.raises(TypeError, match="network"):
        deepdual.certify("net", X, y, beta=1.0)
    with pytest.raises(TypeError, match="network"):
        deepdual.objective(None, X, y, beta=1.0)


# ---------------------------------------------------------------------------- beta, depth, ...
@pytest.mark.parametrize("beta,exc", [(0.0, ValueError), (-1.0, ValueError), (np.nan, ValueError),
                                      (np.inf, ValueError), ("1", TypeError), (None, TypeError),
                                      (True, TypeError), ([1.0], TypeError)])
def test_bad_beta(data, net, beta, exc):
    X, y = data
    with pytest.raises(exc, match="beta"):
        _solve(X, y, beta=beta)
    with pytest.raises(exc, match="beta"):
        deepdual.certify(net, X, y, beta=beta)
    with pytest.raises(exc, match="beta"):
        deepdual.objective(net, X, y, beta=beta)


def test_beta_numpy_scalars_accepted(data):
    X, y = data
    a = _solve(X, y, beta=np.float32(0.5)).objective
    b = _solve(X, y, beta=np.array(0.5)).objective
    c = _solve(X, y, beta=1 / 2).objective
    assert a == b == c


@pytest.mark.parametrize("depth,exc", [(1, ValueError), (0, ValueError), (-3, ValueError), (2.5, TypeError),
                                       (2.0, TypeError), ("3", TypeError), (None, TypeError), (True, TypeError)])
def test_bad_depth(data, depth, exc):
    X, y = data
    with pytest.raises(exc, match="depth"):
        _solve(X, y, depth=depth)


def test_bad_activation_loss_method_options(data):
    X, y = data
    with pytest.raises(ValueError, match="activation"):
        _solve(X, y, activation="tanh")
    with pytest.raises(TypeError, match="activation"):
        _solve(X, y, activation=None)
    with pytest.raises(ValueError, match="loss"):
        _solve(X, y, loss="l1")
    with pytest.raises(TypeError, match="loss"):
        _solve(X, y, loss=object())
    with pytest.raises(ValueError, match="method"):
        _solve(X, y, method="magic")
    with pytest.raises(TypeError, match="method"):
        _solve(X, y, method=3)
    with pytest.raises(TypeError, match="unknown option"):
        _solve(X, y, not_an_option=1)
    with pytest.raises(ValueError, match="rtol"):
        _solve(X, y, rtol=0.0)
    with pytest.raises(TypeError, match="bias"):
        _solve(X, y, bias="yes")
    with pytest.raises(ValueError, match="width"):
        _solve(X, y, width=0)
    with pytest.raises(ValueError, match="width"):
        _solve(X, y, width=2.5)
    with pytest.raises(ValueError, match="tol"):
        _solve(X, y, tol=2.0)
    with pytest.raises(ValueError, match="max_iter"):
        _solve(X, y, max_iter=0)
    with pytest.raises(ValueError, match="factorization"):
        _solve(X, y, factorization="qr")


def test_method_not_applicable(data):
    X, y = data
    with pytest.raises(ValueError, match="spectral"):
        _solve(X, y, method="spectral")  # X is not orthonormal
    with pytest.raises(ValueError, match="projection"):
        _solve(X, np.ones((8, 2)), method="projection")
    with pytest.raises(ValueError, match="depth"):
        _solve(X, y, method="fista", depth=3)
    with pytest.raises(ValueError, match="depth"):
        _solve(X, y, method="path", depth=2)
    with pytest.raises(ValueError, match="bias"):
        _solve(X, np.sign(y), loss="logistic", bias=True, depth=3)
    with pytest.raises(ValueError, match="width"):
        # the optimum has rank 2 > width 1
        _solve(np.eye(4)[:, :3], np.eye(4)[:, :2] * 5, beta=0.1, width=1)


def test_certify_options(data, net):
    X, y = data
    with pytest.raises(TypeError, match="unknown option"):
        deepdual.certify(net, X, y, beta=1.0, bogus=True)
    with pytest.raises(TypeError, match="exact"):
        deepdual.certify(net, X, y, beta=1.0, exact="sometimes")
    with pytest.raises(ValueError, match="rtol"):
        deepdual.certify(net, X, y, beta=1.0, rtol=-1)


@pytest.mark.parametrize("labels", [np.array([0, 1, 2, 1, 0, 1, 0, 1.0]), np.array([0.5] * 8)])
def test_bad_labels_for_binary_losses(data, net, labels):
    X, _ = data
    for loss in ("logistic", "hinge"):
        with pytest.raises(ValueError, match="`y`"):
            _solve(X, labels, loss=loss)
        with pytest.raises(ValueError, match="`y`"):
            deepdual.certify(net, X, labels, beta=1.0, loss=loss)
        with pytest.raises(ValueError, match="`y`"):
            deepdual.objective(net, X, labels, beta=1.0, loss=loss)


def test_single_class_logistic_with_bias_has_no_minimizer(data):
    X, _ = data
    with pytest.raises(ValueError, match="`y` has a single class"):
        _solve(X, np.ones(8), loss="logistic", bias=True)


def test_bad_labels_for_cross_entropy(data):
    X, _ = data
    with pytest.raises(ValueError, match="`y`"):
        _solve(X, np.array([0, 1, 2, 1.5, 0, 1, 0, 1]), loss="cross_entropy")
    with pytest.raises(ValueError, match="`y`"):
        _solve(X, np.full((8, 2), 0.5), loss="cross_entropy")


def test_bad_radius(data):
    X, y = data
    with pytest.raises(ValueError, match="radius"):
        deepdual.project(X, y, -1.0)
    with pytest.raises(ValueError, match="radius"):
        deepdual.project(X, y, np.nan)
    with pytest.raises(TypeError, match="radius"):
        deepdual.project(X, y, "1")
    with pytest.raises(ValueError, match="`y`"):
        deepdual.project(X, np.ones((8, 2)), 1.0)
    with pytest.raises(ValueError, match="method"):
        deepdual.project(X, y, 1.0, method="qr")


# ---------------------------------------------------------------------------- good input
@pytest.mark.parametrize("depth", [2, 3])
def test_inputs_not_modified(data, net, depth):
    X, y = data
    Y2 = np.column_stack([y, -y])
    copies = [X.copy(), y.copy(), Y2.copy()]
    W = [[w.copy() for w in ws] for ws in net.weights]
    _solve(X, y, depth=depth)
    _solve(X, Y2, depth=depth)
    _solve(X, np.sign(y), loss="logistic", depth=2)
    deepdual.certify(net, X, y, beta=1.0)
    deepdual.objective(net, X, y, beta=1.0)
    deepdual.project(X, y, 0.3)
    for a, b in zip((X, y, Y2), copies):
        np.testing.assert_array_equal(a, b)
    for ws, ws0 in zip(net.weights, W):
        for a, b in zip(ws, ws0):
            np.testing.assert_array_equal(a, b)


def test_label_arrays_not_modified_by_binary_loss(data):
    X, y = data
    y01 = (y > 0).astype(float)
    y0 = y01.copy()
    sol = _solve(X, y01, loss="logistic")
    np.testing.assert_array_equal(y01, y0)
    # {0,1} labels are the same problem as {-1,+1}
    sol2 = _solve(X, 2 * y01 - 1, loss="logistic")
    assert sol.objective == pytest.approx(sol2.objective, rel=1e-12)


@pytest.mark.parametrize("depth", [2, 3])
def test_float32_int_and_list_inputs(data, depth):
    X, y = data
    X32, y32 = X.astype(np.float32), y.astype(np.float32)
    a = _solve(X32, y32, depth=depth)
    b = _solve(X32.astype(np.float64), y32.astype(np.float64), depth=depth)
    assert a.objective == pytest.approx(b.objective, rel=1e-12)
    assert a.certified
    c = _solve(X32.tolist(), y32.tolist(), depth=depth)
    assert c.objective == pytest.approx(b.objective, rel=1e-12)
    Xi, yi = np.arange(12).reshape(6, 2) % 5, np.arange(6) % 3
    d = _solve(Xi, yi, depth=depth)
    assert np.isfinite(d.objective) and d.predict(Xi.astype(float)).shape == (6,)
    cert = deepdual.certify(a.network, X32, y32, beta=1.0)
    assert cert.objective == pytest.approx(a.objective, rel=1e-12)
