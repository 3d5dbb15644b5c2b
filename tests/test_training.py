"""deepdual.train: the PyTorch baseline trains exactly deepdual's objective."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import deepdual

torch = pytest.importorskip("torch")

from deepdual.training import norm_constrained_objective, train  # noqa: E402


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((24, 5))
    y = X @ rng.standard_normal(5) + 0.3 * rng.standard_normal(24)
    return X, y


def test_history_is_deepdual_objective_and_decreases(data):
    X, y = data
    res = train(X, y, beta=0.5, depth=3, width=8, optimizer="sgd", lr=2e-3, epochs=150, progress=False)
    h = np.asarray(res.history)
    assert h.size == 151 and res.epochs == 150 and not res.diverged
    assert h[-1] < 0.5 * h[0]
    # "decreasing-ish": small full-batch steps never increase the objective by much
    assert np.all(np.diff(h) <= 1e-6 * h[:-1])
    direct = deepdual.objective(res.network, X, y, beta=0.5)
    assert res.final_objective == pytest.approx(direct, rel=1e-12)
    assert h[-1] == pytest.approx(direct, rel=1e-10)
    assert res.network.depth == 3 and res.network.widths[0] == [5, 8, 8, 1] and res.network.scalar_output
    cert = deepdual.certify(res.network, X, y, beta=0.5)
    assert cert.lower_bound <= res.final_objective + 1e-9 * abs(res.final_objective)


def test_linear_lbfgs_reaches_certified_optimum(data):
    X, y = data
    sol = deepdual.solve(X, y, beta=1.0, depth=2, activation="linear")
    res = train(X, y, beta=1.0, depth=2, activation="linear", width=6, optimizer="lbfgs", epochs=10, progress=False)
    assert res.final_objective == pytest.approx(sol.objective, rel=1e-8)
    cert = deepdual.certify(res.network, X, y, beta=1.0)
    # at the optimum the bound and the objective agree to rounding (seen: 1 ulp above on a GPU)
    assert cert.certified and cert.lower_bound <= res.final_objective * (1 + 1e-12)
    assert cert.lower_bound == pytest.approx(sol.lower_bound, rel=1e-8)


def test_weight_decay_mapping_matches_pytorch(data):
    """One SGD epoch of train() equals torch SGD with weight_decay = beta on the summed loss,
    and weight_decay = beta / n (with the step scaled by n) on the mean loss."""
    X, y = data
    n = X.shape[0]
    beta, lr = 0.7, 1e-3
    init = train(X, y, beta=beta, depth=2, width=4, epochs=0, seed=3, progress=False).network
    ours = train(X, y, beta=beta, init=init, depth=2, optimizer="sgd", lr=lr, epochs=1, progress=False).network
    Xt, Yt = torch.as_tensor(X), torch.as_tensor(y[:, None])
    for mean in (False, True):
        mod = init.to_torch()
        wd = beta / n if mean else beta
        opt = torch.optim.SGD(mod.parameters(), lr=lr * n if mean else lr, weight_decay=wd)
        opt.zero_grad()
        err = (mod(Xt) - Yt) ** 2
        (0.5 * (err.mean() if mean else err.sum())).backward()
        opt.step()
        theirs = deepdual.Network.from_torch(mod)
        for a, b in zip(ours.weights[0], theirs.weights[0]):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_mse_loss_mapping_matches_pytorch(data):
    """torch.nn.MSELoss() (mean over all n K entries, no 1/2) with weight_decay = lam is
    deepdual's objective with beta = n K lam / 2 (README, docs/conventions.md): one SGD step
    with the step scaled by n K / 2 equals one step of train() at that beta."""
    X, y = data
    Y = np.c_[y, -0.5 * y + 1.0]  # K = 2 outputs
    n, K = Y.shape
    lam, lr = 0.05, 1e-3
    beta = n * K * lam / 2
    init = train(X, Y, beta=beta, depth=2, width=4, epochs=0, seed=4, progress=False).network
    ours = train(X, Y, beta=beta, init=init, depth=2, optimizer="sgd", lr=lr, epochs=1, progress=False).network
    mod = init.to_torch()
    opt = torch.optim.SGD(mod.parameters(), lr=lr * n * K / 2, weight_decay=lam)
    opt.zero_grad()
    torch.nn.MSELoss()(mod(torch.as_tensor(X)), torch.as_tensor(Y)).backward()
    opt.step()
    theirs = deepdual.Network.from_torch(mod)
    for a, b in zip(ours.weights[0], theirs.weights[0]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_training_from_the_optimum_stays_there():
    """The closed-form optimum is a stationary point of the torch objective (same convention)."""
    rng = np.random.default_rng(1)
    X = np.linalg.qr(rng.standard_normal((12, 6)).T)[0].T[:5]  # 5 whitened rows
    Y = np.eye(3)[[0, 1, 2, 0, 1]]
    sol = deepdual.solve(X, Y, beta=0.3, depth=2)
    assert sol.certified
    res = train(X, Y, beta=0.3, init=sol.network, optimizer="sgd", lr=0.05, epochs=50, progress=False)
    assert res.final_objective == pytest.approx(sol.objective, rel=1e-10)
    assert res.history[0] == pytest.approx(sol.objective, rel=1e-12)


def test_minibatch_history_is_full_objective(data):
    X, y = data
    res = train(X, y, beta=0.5, depth=2, width=8, optimizer="sgd", lr=5e-4, epochs=40, batch_size=5,
                seed=2, progress=False)
    assert res.history[-1] == pytest.approx(deepdual.objective(res.network, X, y, beta=0.5), rel=1e-10)
    assert res.history[-1] < res.history[0]
    # the batch order is seeded: same seed, same result
    again = train(X, y, beta=0.5, depth=2, width=8, optimizer="sgd", lr=5e-4, epochs=40, batch_size=5,
                  seed=2, progress=False)
    assert again.history == res.history


@pytest.mark.parametrize("loss,labels", [("logistic", "pm"), ("cross_entropy", "int"), ("hinge", "pm")])
def test_other_losses(data, loss, labels):
    X, y = data
    lab = np.sign(y) if labels == "pm" else (np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))).astype(int)
    res = train(X, lab, beta=0.2, depth=2, width=6, loss=loss, optimizer="adam", lr=0.01, epochs=60,
                progress=False)
    assert res.final_objective == pytest.approx(deepdual.objective(res.network, X, lab, beta=0.2, loss=loss),
                                                rel=1e-12)
    assert res.history[-1] < res.history[0]
    if loss == "cross_entropy":
        assert res.network.n_outputs == 3


def test_custom_loss_object_matches_builtin(data):
    X, y = data

    class MySquared(deepdual.SquaredLoss):
        name = "my_squared"

    a = train(X, y, beta=0.5, depth=2, width=5, optimizer="sgd", lr=1e-3, epochs=20, progress=False)
    b = train(X, y, beta=0.5, depth=2, width=5, optimizer="sgd", lr=1e-3, epochs=20, progress=False,
              loss=MySquared())
    np.testing.assert_allclose(a.history, b.history, rtol=1e-12)


def test_norm_constrained_formulation(data):
    X, y = data
    res = train(X, y, beta=0.5, depth=4, width=6, n_subnetworks=3, optimizer="sgd", lr=1e-3, epochs=60,
                formulation="norm_constrained", trunk_norm=0.8, progress=False)
    for layers in res.network.weights:
        for W in layers[:2]:  # layers l <= L - 2 are norm-bounded
            assert np.linalg.norm(W) <= 0.8 * (1 + 1e-12)
    assert res.final_objective == pytest.approx(
        norm_constrained_objective(res.network, X, y, beta=0.5, trunk_norm=0.8), rel=1e-12)
    # only the last two layers are penalized
    pen = 0.25 * sum(np.sum(W**2) for layers in res.network.weights for W in layers[2:])
    loss = 0.5 * np.sum((res.network.predict(X) - y) ** 2)
    assert res.final_objective == pytest.approx(loss + pen, rel=1e-12)
    assert res.history[-1] < res.history[0]
    with pytest.raises(ValueError, match="lbfgs"):
        train(X, y, beta=0.5, depth=3, optimizer="lbfgs", formulation="norm_constrained", progress=False)


def test_parallel_batched_forward_matches_module(data):
    X, y = data
    res = train(X, y, beta=0.5, depth=3, width=3, n_subnetworks=4, bias=True, optimizer="adam", lr=0.01,
                epochs=30, progress=False)
    assert res.network.n_subnetworks == 4 and res.network.has_biases
    # history (batched forward) and deepdual.objective (numpy forward) agree
    assert res.history[-1] == pytest.approx(deepdual.objective(res.network, X, y, beta=0.5), rel=1e-10)


def test_float32_cpu_device_and_threads_restored(data):
    X, y = data
    before = torch.get_num_threads()
    res = train(X, y, beta=0.5, depth=2, width=4, dtype="float32", device="cpu", epochs=20, progress=False)
    assert torch.get_num_threads() == before
    assert res.config["dtype"] == "float32" and res.config["device"] == "cpu"
    assert res.network.weights[0][0].dtype == np.float64
    assert res.history[-1] == pytest.approx(res.final_objective, rel=1e-4)  # float32 rounding


def test_divergence_is_reported(data):
    X, y = data
    with pytest.warns(RuntimeWarning, match="diverged"):
        res = train(X, 1e3 * y, beta=0.5, depth=3, width=8, optimizer="sgd", lr=10.0, epochs=200, progress=False)
    assert res.diverged and res.epochs < 200
    assert all(np.all(np.isfinite(W)) for W in res.network.weights[0])


def test_callback_sees_every_epoch(data):
    X, y = data
    seen = []
    train(X, y, beta=0.5, epochs=5, progress=False, callback=lambda e, m: seen.append((e, type(m).__name__)))
    assert [e for e, _ in seen] == list(range(6)) and seen[0][1] == "ParallelNetwork"


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(optimizer="rmsprop"), ValueError, "optimizer"),
    (dict(optimizer="lbfgs", batch_size=4), ValueError, "batch_size"),
    (dict(beta=-1.0), ValueError, "beta"),
    (dict(width=0), ValueError, "width"),
    (dict(width=[3, 3]), ValueError, "width"),
    (dict(epochs=-1), ValueError, "epochs"),
    (dict(dtype="float16"), ValueError, "dtype"),
    (dict(device="tpu"), ValueError, "device"),
    (dict(init="net"), TypeError, "init"),
    (dict(formulation="both"), ValueError, "formulation"),
])
def test_bad_arguments(data, kwargs, exc, match):
    X, y = data
    args = dict(beta=0.5, epochs=1, progress=False)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        train(X, y, **args)


def test_cuda_unavailable_is_an_error(data):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    X, y = data
    with pytest.raises(ValueError, match="cuda"):
        train(X, y, beta=0.5, device="cuda", epochs=1, progress=False)


def test_init_must_match(data):
    X, y = data
    net = deepdual.Network([[np.ones((5, 2)), np.ones((2, 1))]], activation="linear")
    with pytest.raises(ValueError, match="activation"):
        train(X, y, beta=0.5, init=net, epochs=1, progress=False)
    with pytest.raises(ValueError, match="depth"):
        train(X, y, beta=0.5, init=net, activation="linear", depth=3, epochs=1, progress=False)
    res = train(X, y, beta=0.5, init=net, activation="linear", epochs=0, progress=False)
    assert res.final_objective == pytest.approx(deepdual.objective(net, X, y, beta=0.5))


def test_missing_torch_names_the_extra(monkeypatch):
    from deepdual import _torch

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"deepdual\[torch\]"):
        _torch.require_torch()
