"""deepdual.Network: shapes, evaluation, persistence and PyTorch interop."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import deepdual
from deepdual import Network


def _net(rng, d=3, K=1, depth=3, m=2, width=4, activation="relu", biases=False, scalar=None):
    weights, bs = [], []
    for _ in range(m):
        dims = [d] + [width] * (depth - 1) + [K]
        weights.append([rng.standard_normal((dims[l], dims[l + 1])) for l in range(depth)])
        bs.append([rng.standard_normal(width) for _ in range(depth - 1)])
    ob = rng.standard_normal(K) if biases else None
    return Network(weights, activation, biases=bs if biases else None, output_bias=ob, scalar_output=scalar)


@pytest.mark.parametrize("K", [1, 3])
@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_predict_shapes(K, activation):
    rng = np.random.default_rng(0)
    net = _net(rng, K=K, activation=activation)
    X = rng.standard_normal((7, 3))
    assert net.forward(X).shape == (7, K)
    assert net.predict(X).shape == ((7,) if K == 1 else (7, K))
    assert net(X).shape == net.predict(X).shape
    assert net.depth == 3 and net.n_subnetworks == 2 and net.input_dim == 3 and net.n_outputs == K
    assert net.widths == [[3, 4, 4, K], [3, 4, 4, K]]
    # a 2-D single-column output when asked
    assert _net(rng, K=1, scalar=False).predict(X).shape == (7, 1)


def test_forward_matches_definition():
    """f(X) = sum_j A_{L-1,j} W_{L,j} (+ b) with A_l = sigma(A_{l-1} W_l + b_l)."""
    rng = np.random.default_rng(1)
    net = _net(rng, biases=True)
    X = rng.standard_normal((5, 3))
    out = net.output_bias.copy()
    for j in range(2):
        A = X
        for l in range(2):
            A = np.maximum(A @ net.weights[j][l] + net.biases[j][l], 0)
        out = out + A @ net.weights[j][2]
    np.testing.assert_allclose(net.forward(X), out, rtol=1e-14)
    lin = Network(net.weights, "linear")
    M = sum(np.linalg.multi_dot(ws) for ws in net.weights)
    np.testing.assert_allclose(lin.forward(X), X @ M, rtol=1e-12)


def test_squared_norm_and_objective():
    rng = np.random.default_rng(2)
    net = _net(rng, biases=True)
    X, y = rng.standard_normal((6, 3)), rng.standard_normal(6)
    sq = sum(np.sum(W**2) for ws in net.weights for W in ws)
    assert net.squared_norm() == pytest.approx(sq, rel=1e-14)
    P = deepdual.objective(net, X, y, beta=0.7)
    assert P == pytest.approx(0.5 * np.sum((net.predict(X) - y) ** 2) + 0.35 * sq, rel=1e-14)
    Pb = deepdual.objective(net, X, y, beta=0.7, penalize_biases=True)
    assert Pb > P


@pytest.mark.parametrize("biases", [False, True])
def test_save_load_roundtrip(tmp_path, biases):
    rng = np.random.default_rng(3)
    net = _net(rng, K=2, biases=biases, activation="linear")
    path = tmp_path / "net.npz"
    net.save(path)
    back = Network.load(path)
    X = rng.standard_normal((4, 3))
    np.testing.assert_array_equal(back.forward(X), net.forward(X))
    assert back.activation == "linear" and back.widths == net.widths
    assert back.scalar_output == net.scalar_output
    for a, b in zip(net.weights, back.weights):
        for Wa, Wb in zip(a, b):
            np.testing.assert_array_equal(Wa, Wb)


def test_save_refuses_to_overwrite(tmp_path):
    rng = np.random.default_rng(4)
    net = _net(rng)
    path = tmp_path / "a.npz"
    net.save(path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite"):
        _net(np.random.default_rng(5)).save(path)
    assert path.read_bytes() == before
    _net(np.random.default_rng(5)).save(path, overwrite=True)
    assert path.read_bytes() != before
    # the suffix is added when missing
    net.save(tmp_path / "b")
    assert (tmp_path / "b.npz").exists()


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        Network.load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros(3))
    with pytest.raises(ValueError, match="not a deepdual network"):
        Network.load(bad)


def test_solution_network_roundtrip(tmp_path):
    rng = np.random.default_rng(6)
    X, y = rng.standard_normal((10, 3)), rng.standard_normal(10)
    sol = deepdual.solve(X, y, beta=0.5, activation="linear", depth=3)
    sol.network.save(tmp_path / "s.npz")
    back = Network.load(tmp_path / "s.npz")
    assert deepdual.objective(back, X, y, beta=0.5) == sol.objective
    assert back.predict(X).shape == (10,)


@pytest.mark.parametrize("activation", ["relu", "linear"])
@pytest.mark.parametrize("biases", [False, True])
def test_torch_roundtrip(activation, biases):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    net = _net(rng, K=2, activation=activation, biases=biases)
    X = rng.standard_normal((9, 3))
    mod = net.to_torch()
    with torch.no_grad():
        out = mod(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(out, net.forward(X), rtol=1e-12, atol=1e-12)
    back = Network.from_torch(mod)
    np.testing.assert_allclose(back.forward(X), net.forward(X), rtol=1e-12, atol=1e-12)
    assert back.activation == activation
    back2 = Network.from_torch(mod.state_dict())  # also from a state dict
    assert back2.widths == net.widths


def test_torch_missing_names_the_extra(monkeypatch):
    rng = np.random.default_rng(8)
    net = _net(rng)
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"deepdual\[torch\]"):
        net.to_torch()
    with pytest.raises(ImportError, match=r"deepdual\[torch\]"):
        Network.from_torch({})


def test_constructor_validation():
    W = np.ones((2, 3))
    w = np.ones((3, 1))
    with pytest.raises(TypeError, match="weights"):
        Network(np.ones((2, 2)))
    with pytest.raises(ValueError, match="at least one"):
        Network([])
    with pytest.raises(ValueError, match="at least 2 layers"):
        Network([[W]])
    with pytest.raises(ValueError, match="rows"):
        Network([[W, np.ones((4, 1))]])
    with pytest.raises(ValueError, match="layers"):
        Network([[W, w], [W, np.ones((3, 3)), np.ones((3, 1))]])
    with pytest.raises(ValueError, match="K"):
        Network([[W, w], [W, np.ones((3, 2))]])
    with pytest.raises(ValueError, match="activation"):
        Network([[W, w]], "tanh")
    with pytest.raises(ValueError, match="finite"):
        Network([[W * np.nan, w]])
    with pytest.raises(ValueError, match="biases"):
        Network([[W, w]], biases=[[np.ones(2)]])
    with pytest.raises(ValueError, match="output_bias"):
        Network([[W, w]], output_bias=np.ones(2))
    net = Network([[W, w]])
    with pytest.raises(ValueError, match="columns"):
        net.predict(np.ones((3, 5)))
    with pytest.raises(ValueError, match=r"`X`.*finite"):
        net.predict(np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="`X`"):
        net.predict(np.ones((0, 2)))


def test_constructor_copies_inputs():
    W = np.ones((2, 3))
    w = np.ones((3, 1))
    net = Network([[W, w]], "linear")
    W[0, 0] = 100.0
    assert net.weights[0][0][0, 0] == 1.0
    X = np.ones((2, 2))
    X0 = X.copy()
    net.predict(X)
    np.testing.assert_array_equal(X, X0)


def test_float32_weights_and_inputs():
    net = Network([[np.ones((2, 3), dtype=np.float32), np.ones((3, 1), dtype=np.float32)]], "linear")
    out = net.predict(np.ones((4, 2), dtype=np.float32))
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, 6.0)
