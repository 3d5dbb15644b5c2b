"""Loading PyTorch models: exact round trips, standard ``nn.Sequential`` MLPs, clear refusals.

A state dict carries no forward pass.  Every test here checks that a loaded network
computes exactly what the torch module computes (or that loading is refused with a
message naming the problem), never a silently different function.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deepdual
from deepdual import Network
from deepdual import cli

torch = pytest.importorskip("torch")
nn = torch.nn

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _random_network(rng, *, activation, depth, m, K, hidden_bias, output_bias, d=3):
    widths = [[d, *rng.integers(1, 5, size=depth - 1).tolist(), K] for _ in range(m)]
    weights = [[rng.standard_normal((w[l], w[l + 1])) for l in range(depth)] for w in widths]
    biases = None
    if hidden_bias:  # some hidden layers may have no bias at all (absent, not zero)
        biases = [[rng.standard_normal(w[l + 1]) if rng.random() < 0.7 else None for l in range(depth - 1)]
                  for w in widths]
    ob = rng.standard_normal(K) if output_bias else None
    return Network(weights, activation, biases=biases, output_bias=ob)


def _torch_out(module, X):
    module = module.double().eval()
    with torch.no_grad():
        out = module(torch.as_tensor(X, dtype=torch.float64)).numpy()
    return out.reshape(X.shape[0], -1)


# ----------------------------------------------------------------------------- round trips
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), activation=st.sampled_from(["relu", "linear"]),
       depth=st.integers(2, 4), m=st.integers(1, 3), K=st.integers(1, 2),
       hidden_bias=st.booleans(), output_bias=st.booleans(), scalar=st.booleans())
def test_to_torch_state_dict_round_trip_is_exact(seed, activation, depth, m, K, hidden_bias, output_bias,
                                                  scalar):
    rng = np.random.default_rng(seed)
    net = _random_network(rng, activation=activation, depth=depth, m=m, K=K, hidden_bias=hidden_bias,
                          output_bias=output_bias)
    if K == 1:
        net.scalar_output = scalar
    X = rng.standard_normal((7, 3))
    mod = net.to_torch()
    for source in (mod, mod.state_dict()):
        back = Network.from_torch(source)
        assert back.activation == activation
        assert back.scalar_output == net.scalar_output
        assert back.widths == net.widths
        present = [[b is not None for b in row] for row in (net.biases or [])]
        assert [[b is not None for b in row] for row in (back.biases or [])] == (
            present if any(map(any, present)) else [])
        assert (back.output_bias is None) == (net.output_bias is None)
        assert back.predict(X).shape == net.predict(X).shape
        np.testing.assert_array_equal(back.predict(X), net.predict(X))
    # the same dict saved and loaded by torch (what the CLI reads)
    buf = __import__("io").BytesIO()
    torch.save(mod.state_dict(), buf)
    buf.seek(0)
    back = Network.from_torch(torch.load(buf, weights_only=True))
    np.testing.assert_array_equal(back.predict(X), net.predict(X))


def test_linear_network_state_dict_stays_linear():
    # the audit's instance: a linear network used to come back as a ReLU network
    rng = np.random.default_rng(0)
    net = _random_network(rng, activation="linear", depth=3, m=1, K=1, hidden_bias=False, output_bias=False)
    X = rng.standard_normal((20, 3))
    back = Network.from_torch(net.to_torch().state_dict())
    assert back.activation == "linear"
    np.testing.assert_array_equal(back.predict(X), net.predict(X))


def test_trained_module_state_dict_round_trip():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((15, 3)), rng.standard_normal(15)
    for activation in ("linear", "relu"):
        res = deepdual.train(X, y, beta=0.5, depth=3, width=4, activation=activation, optimizer="lbfgs",
                             epochs=2, progress=False, bias=True)
        back = Network.from_torch(res.module.state_dict())
        assert back.activation == activation
        np.testing.assert_array_equal(back.predict(X), res.network.predict(X))


def test_state_dict_without_recorded_activation_is_refused():
    rng = np.random.default_rng(2)
    net = _random_network(rng, activation="linear", depth=2, m=2, K=1, hidden_bias=True, output_bias=True)
    sd = net.to_torch().state_dict()
    old = {k: v for k, v in sd.items() if not k.startswith("deepdual_")}  # as written by older versions
    with pytest.raises(ValueError, match=r"activation='relu' or activation='linear'"):
        Network.from_torch(old)
    X = rng.standard_normal((5, 3))
    np.testing.assert_array_equal(Network.from_torch(old, activation="linear").predict(X), net.predict(X))


def test_contradicting_activation_is_refused():
    rng = np.random.default_rng(3)
    net = _random_network(rng, activation="relu", depth=2, m=1, K=1, hidden_bias=False, output_bias=False)
    mod = net.to_torch()
    for source in (mod, mod.state_dict()):
        with pytest.raises(ValueError, match="contradicts"):
            Network.from_torch(source, activation="linear")
        assert Network.from_torch(source, activation="relu").activation == "relu"
    with pytest.raises(ValueError, match="activation"):
        Network.from_torch(mod, activation="tanh")


def test_load_state_dict_updates_the_module_flags():
    rng = np.random.default_rng(4)
    lin = _random_network(rng, activation="linear", depth=2, m=1, K=1, hidden_bias=False, output_bias=False)
    relu = Network([[-W for W in lin.weights[0]]], "relu", scalar_output=False)
    mod = relu.to_torch()
    mod.load_state_dict(lin.to_torch().state_dict())
    X = rng.standard_normal((6, 3))
    assert mod.activation == "linear" and mod.scalar_output is True
    np.testing.assert_allclose(_torch_out(mod, X)[:, 0], lin.predict(X), rtol=1e-13, atol=1e-13)


# ----------------------------------------------------------------------------- nn.Sequential
def _sequential(rng, *, d, hidden, K, activation, bias, extras=False):
    torch.manual_seed(int(rng.integers(2**31)))
    mods = []
    widths = [d, *hidden, K]
    for l in range(len(widths) - 1):
        mods.append(nn.Linear(widths[l], widths[l + 1], bias=bias))
        if l < len(widths) - 2:
            if activation == "relu":
                mods.append(nn.ReLU())
            elif extras:
                mods.append(nn.Identity())
            if extras:
                mods.append(nn.Dropout(0.3))
    return nn.Sequential(*mods)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), activation=st.sampled_from(["relu", "linear"]),
       hidden=st.lists(st.integers(1, 6), min_size=1, max_size=3), K=st.integers(1, 3),
       bias=st.booleans(), extras=st.booleans())
def test_sequential_module_and_state_dict_load_exactly(seed, activation, hidden, K, bias, extras):
    rng = np.random.default_rng(seed)
    d = int(rng.integers(1, 5))
    seq = _sequential(rng, d=d, hidden=hidden, K=K, activation=activation, bias=bias, extras=extras)
    X = rng.standard_normal((9, d))
    ref = _torch_out(seq, X)  # eval mode: Dropout is the identity
    net = Network.from_torch(seq)
    assert net.activation == activation
    assert net.widths == [[d, *hidden, K]]
    assert net.has_biases == bias
    np.testing.assert_allclose(net.forward(X), ref, rtol=1e-13, atol=1e-13)
    sd = seq.state_dict()
    adjacent = activation == "linear" and not extras
    if adjacent:  # nothing between the Linear layers: inferred linear
        np.testing.assert_allclose(Network.from_torch(sd).forward(X), ref, rtol=1e-13, atol=1e-13)
    else:
        with pytest.raises(ValueError, match="activation="):
            Network.from_torch(sd)
    np.testing.assert_allclose(Network.from_torch(sd, activation=activation).forward(X), ref,
                               rtol=1e-13, atol=1e-13)


def test_sequential_issue_example_certifies_its_own_objective():
    rng = np.random.default_rng(5)
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
    X, y = rng.standard_normal((25, 10)), rng.standard_normal(25)
    beta = 0.3
    net = Network.from_torch(seq)
    assert (net.biases[0][0] is not None) and net.output_bias is not None
    cert = deepdual.certify(net, X, y, beta=beta)
    seq = seq.double()
    with torch.no_grad():
        f = seq(torch.as_tensor(X)).numpy()[:, 0]
        sq = sum(float((mod.weight ** 2).sum()) for mod in seq if isinstance(mod, nn.Linear))
    # deepdual's objective: summed squared loss + beta/2 * weights (biases unpenalized)
    assert cert.objective == pytest.approx(0.5 * np.sum((f - y) ** 2) + 0.5 * beta * sq, rel=1e-12)
    assert cert.lower_bound <= cert.objective


def test_flatten_on_the_input_is_the_identity():
    torch.manual_seed(5)
    seq = nn.Sequential(nn.Flatten(), nn.Linear(4, 6), nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 3))
    X = np.random.default_rng(10).standard_normal((7, 4))
    net = Network.from_torch(seq)
    np.testing.assert_allclose(net.forward(X), _torch_out(seq, X), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(Network.from_torch(seq.state_dict(), activation="relu").forward(X),
                               _torch_out(seq, X), rtol=1e-13, atol=1e-13)


def test_nested_sequential_and_prefixed_state_dict():
    torch.manual_seed(1)
    inner = nn.Sequential(nn.Linear(4, 5), nn.ReLU())
    seq = nn.Sequential(inner, nn.Linear(5, 3), nn.ReLU(), nn.Linear(3, 2))
    X = np.random.default_rng(6).standard_normal((8, 4))
    net = Network.from_torch(seq)
    assert net.depth == 3 and net.activation == "relu"
    np.testing.assert_allclose(net.forward(X), _torch_out(seq, X), rtol=1e-13, atol=1e-13)

    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 1))

        def forward(self, x):
            return self.body(x)

    w = Wrapper()
    net = Network.from_torch(w.state_dict(), activation="relu")  # keys 'body.0.weight', 'body.2.weight'
    np.testing.assert_allclose(net.forward(X), _torch_out(w, X), rtol=1e-13, atol=1e-13)
    with pytest.raises(TypeError, match="Wrapper"):  # the forward pass of a custom module is unknown
        Network.from_torch(w)


@pytest.mark.parametrize("layers, match", [
    (lambda: [nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)], r"'1' \(Tanh\)"),
    (lambda: [nn.Linear(3, 4), nn.ReLU(), nn.BatchNorm1d(4), nn.Linear(4, 1)], r"'2' \(BatchNorm1d\)"),
    (lambda: [nn.Conv1d(1, 2, 3), nn.ReLU(), nn.Linear(2, 1)], r"'0' \(Conv1d\)"),
    (lambda: [nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1), nn.ReLU()], "after the last Linear"),
    (lambda: [nn.ReLU(), nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)], "before the first Linear"),
    (lambda: [nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4), nn.Linear(4, 1)], "not after layer '2'"),
    (lambda: [nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1), nn.Sigmoid()], "loss='logistic'"),
    (lambda: [nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.Softmax(dim=1)], "loss='cross_entropy'"),
    (lambda: [nn.Linear(3, 4), nn.Sigmoid(), nn.Linear(4, 1)], r"'1' \(Sigmoid\) cannot be loaded"),
    (lambda: [nn.Flatten(0), nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)], r"'0' \(Flatten\)"),
    (lambda: [nn.Linear(3, 1)], "at least 2"),
    (lambda: [nn.ReLU()], "no nn.Linear"),
])
def test_unsupported_sequential_is_refused_naming_the_layer(layers, match):
    with pytest.raises(ValueError, match=match):
        Network.from_torch(nn.Sequential(*layers()))


def test_unsupported_state_dicts_are_refused():
    torch.manual_seed(2)
    bn = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 1))
    with pytest.raises(ValueError, match="running_mean|shape"):
        Network.from_torch(bn.state_dict(), activation="relu")
    conv = nn.Sequential(nn.Conv1d(1, 2, 3), nn.ReLU(), nn.Linear(2, 1))
    with pytest.raises(ValueError, match="not an nn.Linear weight"):
        Network.from_torch(conv.state_dict(), activation="relu")
    adjacent = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1))
    with pytest.raises(ValueError, match="adjacent"):
        Network.from_torch(adjacent.state_dict(), activation="relu")
    with pytest.raises(ValueError, match="contradicts"):
        Network.from_torch(adjacent, activation="relu")
    bad = {"0.weight": torch.ones(4, 3), "2.weight": torch.ones(1, 5)}
    with pytest.raises(ValueError, match="'2.weight' takes 5 inputs"):
        Network.from_torch(bad, activation="relu")
    with pytest.raises(ValueError, match="empty"):
        Network.from_torch({})
    with pytest.raises(TypeError, match="state_dict"):
        Network.from_torch([1, 2])
    with pytest.raises(ValueError, match="single nn.Linear"):
        Network.from_torch(nn.Linear(3, 1))


def test_loaded_network_does_not_share_memory_with_the_module():
    torch.manual_seed(3)
    seq = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)).double()
    net = Network.from_torch(seq)
    X = np.random.default_rng(7).standard_normal((5, 3))
    before = net.predict(X)
    with torch.no_grad():
        for p in seq.parameters():
            p.mul_(2.0)
    np.testing.assert_array_equal(net.predict(X), before)


# ----------------------------------------------------------------------------- command line
def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_certifies_a_sequential_state_dict(capsys, tmp_path):
    import json

    rng = np.random.default_rng(8)
    X, y = rng.standard_normal((20, 10)), rng.standard_normal(20)
    data = tmp_path / "d.npz"
    np.savez(data, X=X, y=y)
    torch.manual_seed(4)
    seq = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
    pt = tmp_path / "mlp.pt"
    torch.save(seq.state_dict(), pt)
    code, out, err = _run(capsys, "certify", pt, data, "--beta", "0.5")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--activation" in err, err
    code, out, err = _run(capsys, "certify", pt, data, "--beta", "0.5", "--activation", "relu", "--json")
    assert code == 0, err
    ref = deepdual.certify(Network.from_torch(seq), X, y, beta=0.5)
    assert json.loads(out)["objective"] == pytest.approx(ref.objective, rel=1e-12)
    # a linear MLP (adjacent Linear layers) needs no --activation; a contradiction is refused
    lin = nn.Sequential(nn.Linear(10, 4, bias=False), nn.Linear(4, 1, bias=False))
    torch.save(lin.state_dict(), pt)
    code, out, err = _run(capsys, "certify", pt, data, "--beta", "0.5", "--json")
    assert code == 0, err
    ref = deepdual.certify(Network.from_torch(lin), X, y, beta=0.5)
    assert json.loads(out)["objective"] == pytest.approx(ref.objective, rel=1e-12)
    code, out, err = _run(capsys, "certify", pt, data, "--beta", "0.5", "--activation", "relu")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "adjacent" in err, err


def test_cli_refuses_a_pickled_module_with_a_hint(capsys, tmp_path):
    rng = np.random.default_rng(9)
    data = tmp_path / "d.npz"
    np.savez(data, X=rng.standard_normal((6, 3)), y=rng.standard_normal(6))
    pt = tmp_path / "full.pt"
    torch.save(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)), pt)  # the module, not its state
    code, out, err = _run(capsys, "certify", pt, data, "--beta", "1")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "state_dict()" in err, err
