"""The reproduce experiments at --quick size: files written, JSON consistent with deepdual."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import deepdual
from deepdual import reproduce

pytest.importorskip("torch")
pytest.importorskip("matplotlib")


def _png_ok(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_figure2_quick(tmp_path):
    res = reproduce.load("figure2").run(tmp_path, quick=True, seed=0, progress=False)
    for f in ("figure2.png", "figure2.json", "figure2.md", "data.npz"):
        assert (tmp_path / f).stat().st_size > 0
    _png_ok(tmp_path / "figure2.png")
    saved = json.loads((tmp_path / "figure2.json").read_text())
    assert saved["checks"]["trained_never_below_lower_bound"] is True
    assert saved["n_train"] == 40 and saved["d"] == 64 and saved["K"] == 10
    assert set(saved["results"]) == {"weight_decay", "norm_constrained"}
    assert res["results"]["weight_decay"]["2"]["closed_form"]["objective"] == pytest.approx(
        saved["results"]["weight_decay"]["2"]["closed_form"]["objective"])

    data = np.load(tmp_path / "data.npz")
    X, Y = data["X"], data["y"]
    np.testing.assert_allclose(X @ X.T, np.eye(X.shape[0]), atol=1e-12)
    beta = saved["beta"]
    for L in (2, 3, 4):
        wd = saved["results"]["weight_decay"][str(L)]
        cf = wd["closed_form"]
        # the JSON's closed form is what deepdual.solve gives on the saved data
        sol = deepdual.solve(X, Y, beta=beta, depth=L)
        assert cf["objective"] == pytest.approx(sol.objective, rel=1e-12)
        assert cf["lower_bound"] == pytest.approx(sol.lower_bound, rel=1e-12)
        assert cf["certified"] == sol.certified == (L == 2)
        # the saved networks: closed form and the best trained one
        net = deepdual.Network.load(tmp_path / cf["network_file"])
        assert deepdual.objective(net, X, Y, beta=beta) == pytest.approx(cf["objective"], rel=1e-12)
        best = min(wd["trained"], key=lambda t: t["final_objective"])
        tnet = deepdual.Network.load(tmp_path / best["network_file"])
        obj = deepdual.objective(tnet, X, Y, beta=beta)
        assert obj == pytest.approx(best["final_objective"], rel=1e-12)
        cert = deepdual.certify(tnet, X, Y, beta=beta)
        assert cert.lower_bound == pytest.approx(best["certificate"]["lower_bound"], rel=1e-9)
        assert cert.lower_bound <= obj
        acc = np.mean(tnet.forward(data["X_test"]).argmax(1) == data["y_test"])
        assert acc == pytest.approx(best["test_accuracy"])
        for t in wd["trained"]:
            h = np.array([v for v in t["history"] if v is not None])
            assert h.min() >= cf["lower_bound"] * (1 - 1e-9)
            assert t["history"][-1] == pytest.approx(t["final_objective"], rel=1e-10)
            assert len(t["accuracy_history"]) == len(t["accuracy_epochs"]) > 1
    for L in (3, 4):
        nc = saved["results"]["norm_constrained"][str(L)]
        assert nc["closed_form"]["certified"] is True
        for t in nc["trained"]:
            assert min(v for v in t["history"] if v is not None) >= nc["closed_form"]["lower_bound"] * (1 - 1e-9)
    md = (tmp_path / "figure2.md").read_text()
    assert "| weight_decay | 3 |" in md and "norm_constrained" in md


def test_figure2_refuses_results_below_the_lower_bound(tmp_path, monkeypatch):
    """A lower bound above a trained objective contradicts weak duality: an error, not a plot."""
    real = deepdual.solve

    def inflated(*a, **k):
        sol = real(*a, **k)
        return dataclasses.replace(sol, lower_bound=sol.objective + 1e6)

    monkeypatch.setattr(deepdual, "solve", inflated)
    with pytest.raises(RuntimeError, match="weak duality"):
        reproduce.load("figure2").run(tmp_path, quick=True, progress=False, depths=(2,), epochs=3)
    assert not (tmp_path / "figure2.png").exists()


def test_rank_vs_beta_quick(tmp_path):
    from deepdual.reproduce.rank_vs_beta import orthonormal_data

    res = reproduce.load("rank-vs-beta").run(tmp_path, quick=True, seed=0, progress=False)
    _png_ok(tmp_path / "rank_vs_beta.png")
    saved = json.loads((tmp_path / "rank_vs_beta.json").read_text())
    assert saved == json.loads(json.dumps(res))
    X, Y = orthonormal_data(100, 20, 5, np.random.default_rng(0))
    s = np.linalg.svd(Y.T @ X, compute_uv=False)
    np.testing.assert_allclose(saved["singular_values_YtX"], s, rtol=1e-12)
    assert saved["all_jumps_at_singular_values"] is True
    for j, sk in zip(saved["jumps"], s):
        assert j["rank_below"] == j["rank_above"] + 1
    for row in saved["trained"]:
        assert row["rank_closed_form"] == row["rank_theory"] == int(np.sum(s > row["beta"]))
        assert row["rank_trained"] == row["rank_theory"]
        assert row["certified_closed_form"]
        c = row["certificate_trained"]
        assert c["lower_bound"] <= c["objective"] and c["objective"] == pytest.approx(row["objective_trained"])
        assert row["objective_trained"] == pytest.approx(row["objective_closed_form"], rel=1e-7)


def test_deep_linear_layers_quick(tmp_path):
    reproduce.load("deep-linear-layers").run(tmp_path, quick=True, seed=0, progress=False)
    _png_ok(tmp_path / "deep_linear_layers.png")
    saved = json.loads((tmp_path / "deep_linear_layers.json").read_text())
    checks = saved["checks"]
    assert checks["closed_form_equal_ranks"] and checks["best_trained_equal_ranks"]
    assert checks["best_trained_rank_matches_closed_form"]
    assert checks["max_closed_form_norm_spread"] < 1e-10
    assert checks["max_trained_norm_spread"] < 1e-5  # every trained network is balanced
    for row in saved["rows"]:
        assert row["closed_form"]["certified"]
        assert row["closed_form_rank_per_layer"] == row["rank_theory"]
        for r in row["runs"]:
            assert r["objective"] >= row["closed_form"]["lower_bound"] * (1 - 1e-9)
        c = row["best_certificate"]
        assert c["lower_bound"] <= c["objective"] == pytest.approx(row["best"]["objective"])


def test_rank_one_relu_quick(tmp_path):
    reproduce.load("rank-one-relu").run(tmp_path, quick=True, seed=0, progress=False)
    _png_ok(tmp_path / "rank_one_relu.png")
    saved = json.loads((tmp_path / "rank_one_relu.json").read_text())
    cf = saved["closed_form"]
    assert cf["certified"] and cf["stable_rank"] == pytest.approx([1.0] * 5)
    best = saved["best"]
    assert best["excess_over_closed_form"] <= 1e-6 * cf["objective"]
    assert best["final_numerical_rank"] == [1] * 5
    assert best["final_stable_rank"] == pytest.approx([1.0] * 5, abs=1e-6)
    assert saved["checks"]["best_all_layers_rank_one"]
    for r in saved["runs"]:
        assert r["certificate"]["lower_bound"] <= r["final_objective"]
        assert r["final_objective"] >= cf["lower_bound"] * (1 - 1e-9)
        hist = r["rank_history"]
        assert len(hist["epoch"]) == len(hist["stable"]) > 10
        # the stable rank of layers 1-4 starts well above one (random init) and ends near one
        assert min(hist["stable"][0][:4]) > 2.0
