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


# ----------------------------------------------------------------------------- what the notes say
def test_bias_convention_matches_help_and_notes(capsys):
    """--help, README and the notes agree with the code: unpenalized biases on 1-D data and
    for linear networks, penalized hidden biases for ReLU depth 2 on d > 1."""
    from deepdual import cli

    rng = np.random.default_rng(10)
    beta = 0.5
    for d, activation, penalized in [(1, "relu", False), (3, "linear", False), (1, "linear", False),
                                     (3, "relu", True)]:
        X, y = rng.standard_normal((12, d)), rng.standard_normal(12)
        sol = deepdual.solve(X, y, beta=beta, bias=True, activation=activation)
        assert sol.network.has_biases
        assert sol.objective == pytest.approx(
            deepdual.objective(sol.network, X, y, beta=beta, penalize_biases=penalized), rel=1e-12)
        assert bool(sol.info.get("penalize_biases", False)) == penalized
        if penalized:
            assert "penalized" in sol.info["note"] and sol.network.output_bias is None
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["solve", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "unpenalized on 1-D data" in help_text and "penalized hidden biases for ReLU depth 2" in help_text


def test_format_count_is_short_and_close():
    from hypothesis import given
    from hypothesis import strategies as st

    from deepdual.patterns import format_count

    @given(st.integers(0, 10**400))
    def check(c):
        s = format_count(c)
        if c < 10**6:
            assert s == str(c)
            return
        assert len(s) <= 16 and s.startswith("about ")
        mant, exp = s[len("about "):].split("e+")
        # the two leading digits, truncated: c / 10**exp in [mant, mant + 0.1)
        lo = round(float(mant) * 10) * 10 ** (int(exp) - 1)
        assert lo <= c < lo + 10 ** (int(exp) - 1)

    check()


def test_sampled_pattern_note_has_no_huge_integer():
    import re

    rng = np.random.default_rng(11)
    X, y = rng.standard_normal((60, 12)), rng.standard_normal(60)
    sol = deepdual.solve(X, y, beta=1.0, n_patterns=8, rng=0, polish=False)
    assert not sol.info["patterns_complete"]
    note = sol.info["note"]
    assert "about " in note and not re.search(r"\d{8,}", note), note


def test_zero_network_is_reported():
    """At a beta above beta_max the optimum is the zero network, and the solution says so."""
    rng = np.random.default_rng(12)
    X, y = rng.standard_normal((10, 3)), rng.standard_normal(10)
    for activation in ("relu", "linear"):
        sol = deepdual.solve(X, y, beta=1e4, activation=activation)
        assert sol.certified and sol.zero_network and "zero network" in sol.info["note"]
        assert "zero network" in repr(sol) and sol.as_dict()["zero_network"] is True
        # the zero network's objective is 0.5 ||y||^2: certified against the proven lower bound
        assert sol.lower_bound <= 0.5 * y @ y <= sol.lower_bound * (1 + 1e-6)
        small = deepdual.solve(X, y, beta=0.1, activation=activation)
        assert not small.zero_network and "zero network" not in small.info.get("note", "")


def test_negligible_weights_are_recognized_as_the_zero_network():
    """A solver may return negligible, not zero, weights (interior-point methods): the zero
    network is then reported when it is itself certified against the proven lower bound."""
    from deepdual.losses import get_loss
    from deepdual.solution import Solution, mark_zero_network

    rng = np.random.default_rng(13)
    X, y = rng.standard_normal((10, 3)), rng.standard_normal(10)
    net = Network([[1e-9 * rng.standard_normal((3, 2)), 1e-9 * rng.standard_normal((2, 1))]], "relu")
    p0 = 0.5 * float(y @ y)
    for lower, expected in [(p0 * (1 - 1e-9), True), (p0 * 0.9, False)]:
        sol = Solution(network=net, objective=deepdual.objective(net, X, y, beta=1.0), lower_bound=lower,
                       method="test")
        mark_zero_network(sol, y.reshape(-1, 1), get_loss("squared"), 1.0)
        assert sol.zero_network is expected
        assert ("negligible" in sol.info.get("note", "")) is expected
