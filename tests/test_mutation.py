"""Mutation checks: every public entry point re-validates its inputs and never modifies them.

Two properties, over the whole public surface (solve, certify, objective, project,
Network methods, train, the estimators, summarize, from_torch):

1. A :class:`~deepdual.Network` whose attributes were changed after construction (shapes
   that no longer chain, NaN or infinite entries, wrong bias lengths, an unknown
   activation) is refused with a ``ValueError``/``TypeError`` naming the network and the
   offending entry -- never numpy's raw matmul message, never a certificate full of NaN.
2. Inputs come back bit-for-bit unchanged (they are passed read-only, so an in-place write
   raises) and results do not share memory with them.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deepdual
from deepdual import Network

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _network(rng, *, activation="relu", depth=2, m=1, K=1, d=3, biases=False, output_bias=False):
    widths = [[d, *rng.integers(2, 5, size=depth - 1).tolist(), K] for _ in range(m)]
    W = [[rng.standard_normal((w[l], w[l + 1])) for l in range(depth)] for w in widths]
    b = [[rng.standard_normal(w[l + 1]) for l in range(depth - 1)] for w in widths] if biases else None
    ob = rng.standard_normal(K) if output_bias else None
    return Network(W, activation, biases=b, output_bias=ob)


def _mutate(net: Network, kind: str, rng) -> str:
    """Change ``net`` in place the way a user could; return the name of the broken entry."""
    j = int(rng.integers(net.n_subnetworks))
    if kind == "rows":  # a layer l >= 1 whose rows no longer match the previous layer's columns
        l = int(rng.integers(1, net.depth))
        W = net.weights[j][l]
        net.weights[j][l] = np.vstack([W, np.ones((1, W.shape[1]))])
        return f"network.weights[{j}][{l}]"
    if kind in ("nan", "inf"):
        l = int(rng.integers(net.depth))
        W = net.weights[j][l]
        W[tuple(rng.integers(s) for s in W.shape)] = np.nan if kind == "nan" else -np.inf
        return f"network.weights[{j}][{l}]"
    if kind == "bias_nan":
        l = int(rng.integers(net.depth - 1))
        net.biases[j][l][0] = np.nan
        return f"network.biases[{j}][{l}]"
    if kind == "bias_length":
        l = int(rng.integers(net.depth - 1))
        net.biases[j][l] = np.zeros(net.biases[j][l].size + 1)
        return f"network.biases[{j}][{l}]"
    if kind == "output_bias":
        net.output_bias = np.zeros(net.n_outputs + 2)
        return "network.output_bias"
    if kind == "list":  # not an array any more
        net.weights[j][0] = net.weights[j][0].tolist()
        return f"network.weights[{j}][0]"
    if kind == "activation":
        net.activation = "tanh"
        return "network.activation"
    raise AssertionError(kind)


def _entry_points(X, y, tmp_path):
    """Every public function or method that takes a network, as ``name -> call(net)``."""
    return {
        "certify": lambda net: deepdual.certify(net, X, y, beta=0.5),
        "objective": lambda net: deepdual.objective(net, X, y, beta=0.5),
        "predict": lambda net: net.predict(X),
        "forward": lambda net: net.forward(X),
        "hidden": lambda net: net.hidden(X, 0),
        "squared_norm": lambda net: net.squared_norm(),
        "copy": lambda net: net.copy(),
        "save": lambda net: net.save(tmp_path / "net.npz", overwrite=True),
        "summarize": lambda net: deepdual.summarize(net, X, y, beta=0.5),
    }


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1),
       kind=st.sampled_from(["rows", "nan", "inf", "bias_nan", "bias_length", "output_bias", "list",
                             "activation"]),
       activation=st.sampled_from(["relu", "linear"]), depth=st.integers(2, 3), m=st.integers(1, 2),
       K=st.integers(1, 2))
def test_mutated_network_is_refused_by_every_entry_point(tmp_path_factory, seed, kind, activation, depth, m, K):
    rng = np.random.default_rng(seed)
    net = _network(rng, activation=activation, depth=depth, m=m, K=K, biases=True, output_bias=True)
    X, y = rng.standard_normal((6, 3)), rng.standard_normal((6, K))
    broken = _mutate(net, kind, rng)
    for name, call in _entry_points(X, y, tmp_path_factory.mktemp("m")).items():
        with pytest.raises((ValueError, TypeError)) as exc:
            call(net)
        msg = str(exc.value)
        assert f"`{broken}`" in msg, (name, msg)
        assert "matmul" not in msg and "operands could not be broadcast" not in msg, (name, msg)


def test_issue_examples_name_the_entry():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 2)), rng.standard_normal(8)
    net = Network([[rng.standard_normal((2, 4)), rng.standard_normal((4, 1))]], "relu")
    net.weights[0][1] = rng.standard_normal((3, 1))
    with pytest.raises(ValueError, match=re.escape("`network.weights[0][1]` has shape (3, 1)")) as exc:
        deepdual.certify(net, X, y, beta=1.0)
    assert "layer 1 has 4 units" in str(exc.value)
    net = Network([[rng.standard_normal((2, 4)), rng.standard_normal((4, 1))]], "relu")
    net.weights[0][0][1, 2] = np.nan
    for call in (lambda: deepdual.certify(net, X, y, beta=1.0), lambda: deepdual.objective(net, X, y, beta=1.0)):
        with pytest.raises(ValueError, match=r"`network\.weights\[0\]\[0\]`.*NaN"):
            call()


def test_mutated_init_is_refused_by_train():
    pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((6, 3)), rng.standard_normal(6)
    net = _network(rng, depth=2)
    net.weights[0][1][0, 0] = np.inf
    with pytest.raises(ValueError, match=re.escape("`init.weights[0][1]`")):
        deepdual.train(X, y, beta=1.0, init=net, epochs=1, optimizer="lbfgs", progress=False)
    with pytest.raises(ValueError, match=re.escape("`network.weights[0][1]`")):
        net.to_torch()


def test_validate_accepts_valid_changes():
    # replacing a layer by a consistent one is fine: validate checks consistency, not identity
    rng = np.random.default_rng(2)
    net = _network(rng, depth=3, biases=True)
    X = rng.standard_normal((4, 3))
    net.weights[0][1] = 2.0 * net.weights[0][1]
    assert net.validate() is net
    out = net.predict(X)
    ref = Network(net.weights, net.activation, biases=net.biases).predict(X)
    np.testing.assert_array_equal(out, ref)


# ----------------------------------------------------------------------------- inputs unchanged
def _frozen(a):
    a = np.array(a)
    a.setflags(write=False)
    return a


def _snapshot(net: Network):
    return ([W.copy() for layers in net.weights for W in layers],
            None if net.biases is None else [None if b is None else b.copy() for row in net.biases for b in row],
            None if net.output_bias is None else net.output_bias.copy(), net.activation, net.scalar_output)


def _assert_same(net: Network, snap) -> None:
    ws, bs, ob, act, scalar = snap
    for a, b in zip([W for layers in net.weights for W in layers], ws, strict=True):
        np.testing.assert_array_equal(a, b)
    if bs is not None:
        for a, b in zip([b for row in net.biases for b in row], bs, strict=True):
            np.testing.assert_array_equal(a, b)
    if ob is not None:
        np.testing.assert_array_equal(net.output_bias, ob)
    assert (net.activation, net.scalar_output) == (act, scalar)


def _arrays(result):
    """Every ndarray reachable from a result (network weights, predictions, ...)."""
    if isinstance(result, np.ndarray):
        yield result
    elif isinstance(result, Network):
        for layers in result.weights:
            yield from layers
        for row in result.biases or []:
            yield from (b for b in row if b is not None)
        if result.output_bias is not None:
            yield result.output_bias
    elif hasattr(result, "network") and isinstance(result.network, Network):
        yield from _arrays(result.network)


def _check_unchanged_and_unshared(result, inputs):
    for arr in _arrays(result):
        for name, inp in inputs.items():
            assert not np.shares_memory(arr, inp), f"a result shares memory with `{name}`"


LAYOUTS = {
    "float64": lambda a: a,
    "float32": lambda a: a.astype(np.float32),
    "fortran": lambda a: np.asfortranarray(a),
    "strided": lambda a: np.repeat(a, 2, axis=0)[::2],
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_functions_do_not_modify_or_alias_their_inputs(layout, tmp_path):
    rng = np.random.default_rng(3)
    X0 = rng.standard_normal((10, 3))
    y0 = np.maximum(X0 @ rng.standard_normal(3), 0.0) + 0.1 * rng.standard_normal(10)
    X, y = _frozen(LAYOUTS[layout](X0.copy())), _frozen(y0.copy())
    Xc, yc = X.copy(), y.copy()
    inputs = {"X": X, "y": y}
    net = _network(rng, depth=3, biases=True, output_bias=True)
    snap = _snapshot(net)
    calls = {
        "solve linear": lambda: deepdual.solve(X, y, beta=0.5, activation="linear", depth=3),
        "solve relu": lambda: deepdual.solve(X, y, beta=0.5),
        "solve 1-D bias": lambda: deepdual.solve(X[:, :1], y, beta=0.5, bias=True),
        "certify": lambda: deepdual.certify(net, X, y, beta=0.5),
        "objective": lambda: deepdual.objective(net, X, y, beta=0.5, penalize_biases=True),
        "project": lambda: deepdual.project(X, y, 0.3),
        "predict": lambda: net.predict(X),
        "forward": lambda: net.forward(X),
        "hidden": lambda: net.hidden(X, 0, 0),
        "copy": lambda: net.copy(),
        "save": lambda: net.save(tmp_path / "n.npz", overwrite=True),
        "summarize": lambda: deepdual.summarize(net, X, y, beta=0.5),
    }
    for name, call in calls.items():
        result = call()
        np.testing.assert_array_equal(X, Xc, err_msg=name)
        np.testing.assert_array_equal(y, yc, err_msg=name)
        _assert_same(net, snap)
        _check_unchanged_and_unshared(result, inputs)
        if isinstance(result, Network):
            _check_unchanged_and_unshared(result, {f"net {i}": W for i, W in enumerate(_arrays(net))})


def test_network_constructor_and_copy_do_not_alias():
    rng = np.random.default_rng(4)
    W1, W2, b, ob = (_frozen(rng.standard_normal(s)) for s in [(3, 4), (4, 2), (4,), (2,)])
    net = Network([[W1, W2]], "relu", biases=[[b]], output_bias=ob)
    for given_arr in (W1, W2, b, ob):
        for own in _arrays(net):
            assert not np.shares_memory(given_arr, own)
    twin = net.copy()
    for a in _arrays(twin):
        for o in _arrays(net):
            assert not np.shares_memory(a, o)
    twin.weights[0][0][0, 0] += 1.0
    assert net.weights[0][0][0, 0] == W1[0, 0]


def test_torch_and_training_do_not_modify_inputs():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    X, y = _frozen(rng.standard_normal((8, 3))), _frozen(rng.standard_normal(8))
    Xc, yc = X.copy(), y.copy()
    net = _network(rng, depth=2, biases=True, output_bias=True)
    snap = _snapshot(net)
    mod = net.to_torch()
    _assert_same(net, snap)
    with torch.no_grad():
        mod.subnets[0][0].weight.mul_(3.0)  # the module owns its parameters
    _assert_same(net, snap)
    before = {k: v.clone() for k, v in mod.state_dict().items()}
    back = Network.from_torch(mod)
    for k, v in mod.state_dict().items():
        assert torch.equal(v, before[k])
    back.weights[0][0][0, 0] += 1.0  # and the loaded network owns its arrays
    for k, v in mod.state_dict().items():
        assert torch.equal(v, before[k])
    res = deepdual.train(X, y, beta=0.5, init=net, optimizer="lbfgs", epochs=2, progress=False)
    _assert_same(net, snap)
    np.testing.assert_array_equal(X, Xc)
    np.testing.assert_array_equal(y, yc)
    _check_unchanged_and_unshared(res.network, {"X": X, "y": y})


def test_estimators_do_not_modify_inputs():
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(6)
    X = _frozen(rng.standard_normal((16, 2)))
    y = _frozen(X[:, 0] - 0.5 * X[:, 1])
    labels = _frozen((y > 0).astype(int))
    Xc, yc, lc = X.copy(), y.copy(), labels.copy()
    reg = deepdual.DualNetRegressor(beta=0.5, activation="linear").fit(X, y)
    pred = reg.predict(X)
    clf = deepdual.DualNetClassifier(beta=0.5, activation="linear").fit(X, labels)
    proba = clf.predict_proba(X)
    clf.predict(X)
    np.testing.assert_array_equal(X, Xc)
    np.testing.assert_array_equal(y, yc)
    np.testing.assert_array_equal(labels, lc)
    for out in (pred, proba, *_arrays(reg.network_), *_arrays(clf.network_)):
        assert not np.shares_memory(out, X) and not np.shares_memory(out, y)
