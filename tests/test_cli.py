"""The ``deepdual`` command line: success paths, one-line errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import numpy as np
import pytest

import deepdual
from deepdual import cli


@pytest.fixture
def csv_data(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((25, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.standard_normal(25)
    p = tmp_path / "data.csv"
    with open(p, "w") as f:
        f.write("a,b,label,c\n")
        for r, t in zip(X, y):
            f.write(f"{r[0]:.17g},{r[1]:.17g},{t:.17g},{r[2]:.17g}\n")
    return p, X, y


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, match=None):
    assert code == 2
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    assert lines[0].startswith("deepdual: error: ")
    assert "Traceback" not in err
    if match:
        assert match in lines[0], lines[0]


def test_solve_csv_text_and_json(capsys, csv_data):
    p, X, y = csv_data
    code, out, err = run(capsys, "solve", p, "--target", "label", "--beta", "2", "--activation", "linear",
                         "--depth", "3")
    assert code == 0, err
    for key in ("method:", "objective:", "lower bound:", "gap:", "certified:"):
        assert key in out
    sol = deepdual.solve(X, y, beta=2.0, depth=3, activation="linear")
    code, out, _ = run(capsys, "solve", p, "--target", "2", "--beta", "2", "--activation", "linear",
                       "--depth", "3", "--json")
    assert code == 0
    d = json.loads(out)  # exactly one JSON object on stdout
    assert d["objective"] == pytest.approx(sol.objective, rel=1e-12)
    assert d["lower_bound"] == pytest.approx(sol.lower_bound, rel=1e-12)
    assert d["certified"] is sol.certified is True
    assert d["gap"] == pytest.approx(d["objective"] - d["lower_bound"])
    assert d["n"] == 25 and d["d"] == 3


def test_solve_out_refuses_overwrite_and_certify_roundtrip(capsys, csv_data, tmp_path):
    p, X, y = csv_data
    net = tmp_path / "net.npz"
    code, out, err = run(capsys, "solve", p, "--target", "label", "--beta", "1", "--activation", "linear",
                         "--out", net, "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["saved"] == str(net) and net.exists()
    before = net.read_bytes()
    code, _, err = run(capsys, "solve", p, "--target", "label", "--beta", "3", "--activation", "linear",
                       "--out", net)
    assert_one_line_error(code, err, "exists")
    assert net.read_bytes() == before
    code, _, err = run(capsys, "solve", p, "--target", "label", "--beta", "3", "--activation", "linear",
                       "--out", net, "--force")
    assert code == 0, err
    assert net.read_bytes() != before
    # certify the saved optimum: objective recomputed, lower bound proven, certified
    code, out, err = run(capsys, "certify", net, p, "--target", "label", "--beta", "3", "--json")
    assert code == 0, err
    c = json.loads(out)
    loaded = deepdual.Network.load(net)
    assert c["objective"] == pytest.approx(deepdual.objective(loaded, X, y, beta=3.0), rel=1e-12)
    assert c["lower_bound"] <= c["objective"] and c["certified"] is True


def test_npz_data_and_torch_state_dict(capsys, tmp_path):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    X = rng.standard_normal((20, 4))
    y = np.maximum(X @ rng.standard_normal(4), 0)
    data = tmp_path / "d.npz"
    np.savez(data, X=X, y=y, other=2 * y)
    res = deepdual.train(X, y, beta=0.5, depth=2, width=6, optimizer="lbfgs", epochs=3, progress=False)
    pt = tmp_path / "net.pt"
    torch.save(res.module.state_dict(), pt)
    code, out, err = run(capsys, "certify", pt, data, "--beta", "0.5", "--json")
    assert code == 0, err
    c = json.loads(out)
    ref = deepdual.certify(res.network, X, y, beta=0.5)
    assert c["objective"] == pytest.approx(res.final_objective, rel=1e-12)
    assert c["lower_bound"] == pytest.approx(ref.lower_bound, rel=1e-12)
    code, out, err = run(capsys, "certify", pt, data, "--target", "other", "--beta", "0.5", "--json")
    assert code == 0 and json.loads(out)["objective"] > c["objective"]
    code, _, err = run(capsys, "certify", pt, data, "--target", "nope", "--beta", "0.5")
    assert_one_line_error(code, err, "nope")
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    code, _, err = run(capsys, "certify", bad, data, "--beta", "0.5")
    assert_one_line_error(code, err, "state dict")


def test_summary_flag(capsys, csv_data):
    pytest.importorskip("deepdual.report")
    p, _, _ = csv_data
    code, out, err = run(capsys, "solve", p, "--target", "label", "--beta", "1", "--activation", "linear",
                         "--summary")
    assert code == 0, err
    assert "Layers" in out or "layer" in out.lower()


@pytest.mark.parametrize("argv,match", [
    (["solve", "MISSING.csv", "--target", "y", "--beta", "1"], "does not exist"),
    (["solve", "{csv}", "--target", "nope", "--beta", "1"], "nope"),
    (["solve", "{csv}", "--target", "9", "--beta", "1"], "out of range"),
    (["solve", "{csv}", "--beta", "1"], "--target"),
    (["solve", "{csv}", "--target", "label", "--beta", "-1"], "--beta"),
    (["solve", "{csv}", "--target", "label", "--beta", "x"], "--beta"),
    (["solve", "{csv}", "--target", "label"], "--beta"),
    (["solve", "{csv}", "--target", "label", "--beta", "1", "--depth", "1"], "--depth"),
    (["solve", "{csv}", "--target", "label", "--beta", "1", "--loss", "l1"], "--loss"),
    (["solve", "{csv}", "--target", "label", "--beta", "1", "--frobnicate"], "unrecognized"),
    (["solve", "{csv}", "--target", "label", "--beta", "1", "--depth", "3"], "structure"),  # library ValueError
    (["solve", "{csv}", "--target", "label", "--beta", "1", "--method", "magic"], "method"),
    (["solve", "{bad}", "--target", "a", "--beta", "1"], "not a number"),
    (["solve", "{npz}", "--beta", "1"], "'y'"),
    (["certify", "MISSING.npz", "{csv}", "--target", "label", "--beta", "1"], "does not exist"),
    (["certify", "{csv}", "{csv}", "--target", "label", "--beta", "1"], "NETWORK"),
    (["certify", "{npz}", "{csv}", "--target", "label", "--beta", "1"], "not a deepdual network"),
    (["frobnicate"], "invalid choice"),
    (["reproduce", "figure99", "--out", "x"], "invalid choice"),
    (["reproduce", "rank-one-relu"], "--out"),
    (["reproduce", "rank-one-relu", "--out", "{csv}"], "not a directory"),
    (["reproduce", "rank-one-relu", "--out", "x", "--dataset", "mnist"], "--dataset"),
])
def test_errors_are_one_line(capsys, csv_data, tmp_path, argv, match):
    p, _, _ = csv_data
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,hello\n")
    npz = tmp_path / "noy.npz"
    np.savez(npz, X=np.ones((3, 2)))
    argv = [a.format(csv=p, bad=bad, npz=npz) for a in argv]
    code, out, err = run(capsys, *argv)
    assert_one_line_error(code, err, match)


@pytest.mark.parametrize("argv", [["--help"], ["solve", "--help"], ["certify", "--help"], ["reproduce", "--help"],
                                  ["demo", "--help"]])
def test_help(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 0 and "usage:" in out and err == ""


def test_version_and_module_entry_point():
    proc = subprocess.run([sys.executable, "-m", "deepdual", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == f"deepdual {deepdual.__version__}"
    proc = subprocess.run([sys.executable, "-m", "deepdual", "solve", "nowhere.csv", "--target", "y", "--beta", "1"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("deepdual: error: ")


def test_reproduce_list(capsys):
    code, out, _ = run(capsys, "reproduce", "list")
    assert code == 0
    for name in ("figure2", "rank-vs-beta", "deep-linear-layers", "rank-one-relu"):
        assert name in out


def test_reproduce_never_overwrites(capsys, tmp_path, monkeypatch):
    """A non-empty --out goes to a numbered sibling (announced on stderr); --force writes into it."""
    calls = []

    def fake_run(out, *, quick=False, seed=0, progress=True):
        calls.append((out, quick, seed))
        (out / "result.json").write_text(json.dumps({"seed": seed}))
        return {}

    fake = types.SimpleNamespace(run=fake_run, DESCRIPTION="fake")
    from deepdual import reproduce

    monkeypatch.setattr(reproduce, "load", lambda name: fake)
    out = tmp_path / "res"
    code, stdout, err = run(capsys, "reproduce", "rank-one-relu", "--out", out, "--quick", "--seed", "4")
    assert code == 0 and err == "" and calls[-1] == (out, True, 4)
    assert "result.json" in stdout
    code, _, err = run(capsys, "reproduce", "rank-one-relu", "--out", out)
    assert code == 0 and calls[-1][0] == tmp_path / "res-1"
    assert "res-1" in err and err.count("\n") == 1
    assert json.loads((out / "result.json").read_text()) == {"seed": 4}  # untouched
    code, _, err = run(capsys, "reproduce", "rank-one-relu", "--out", out)
    assert calls[-1][0] == tmp_path / "res-2"
    code, _, err = run(capsys, "reproduce", "rank-one-relu", "--out", out, "--force", "--seed", "7")
    assert code == 0 and calls[-1][0] == out and "--force" in err
    assert json.loads((out / "result.json").read_text()) == {"seed": 7}


def test_reproduce_library_error_is_one_line(capsys, tmp_path, monkeypatch):
    def failing(out, *, quick=False, seed=0, progress=True):
        raise ValueError("`beta` must be a finite number > 0,\n got nan")

    from deepdual import reproduce

    monkeypatch.setattr(reproduce, "load", lambda name: types.SimpleNamespace(run=failing))
    code, _, err = run(capsys, "reproduce", "figure2", "--out", tmp_path / "o")
    assert_one_line_error(code, err, "`beta` must be a finite number > 0, got nan")


def test_demo_quick(capsys, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    code, out, err = run(capsys, "demo", "--out", tmp_path / "demo", "--quick", "--no-progress")
    assert code == 0, err
    for part in ("(a) linear networks", "(b) deep ReLU closed form", "(c) a two-layer ReLU network"):
        assert part in out
    res = json.loads((tmp_path / "demo" / "demo.json").read_text())
    assert all(r["certified"] for r in res["linear"])
    wd2 = res["whitened_closed_form"][0]
    assert wd2["depth"] == 2 and wd2["certified"]
    t = res["trained"]
    assert wd2["lower_bound"] - 1e-9 <= t["lower_bound"] <= t["objective"]
    assert (tmp_path / "demo" / "demo.png").stat().st_size > 5000


# ---------------------------------------------------------------------------- saved problem (issue 14)
@pytest.mark.parametrize("loss, bias_data", [("squared", "general"), ("logistic", "1-D"), ("squared", "1-D")])
def test_solve_out_then_certify_round_trip(capsys, tmp_path, loss, bias_data):
    """``solve --bias --out`` then ``certify`` on the same data, without repeating --beta or
    --loss, reports the solve's objective and a finite proven bound (issue 14, items 6, 14)."""
    rng = np.random.default_rng(3)
    if bias_data == "general":
        X = rng.standard_normal((12, 3))
        y = X @ np.array([1.0, -1.0, 0.5]) + 0.1 * rng.standard_normal(12)
    else:
        X = np.sort(rng.uniform(-1, 1, 15))[:, None]
        y = np.sin(4 * X[:, 0])
    if loss == "logistic":
        y = (y > 0).astype(float)
    data = tmp_path / "d.npz"
    np.savez(data, X=X, y=y)
    net = tmp_path / "net.npz"
    code, out, err = run(capsys, "solve", data, "--beta", "0.3", "--bias", "--loss", loss, "--out", net, "--json")
    assert code == 0, err
    solved = json.loads(out)
    code, out, err = run(capsys, "certify", net, data, "--json")
    assert code == 0, err
    c = json.loads(out)
    assert c["objective"] == pytest.approx(solved["objective"], rel=1e-12)
    assert c["lower_bound"] is not None and c["lower_bound"] <= c["objective"] * (1 + 1e-12)
    assert c["beta"] == 0.3 and c["loss"] == loss
    if solved["certified"]:
        assert c["relative_gap"] < 1e-5
    # the same values, spelt out, are accepted; contradicting ones are refused on one line
    code, out2, err = run(capsys, "certify", net, data, "--beta", "0.3", "--loss", loss, "--json")
    assert code == 0, err
    assert json.loads(out2)["objective"] == c["objective"]
    other = "squared" if loss == "logistic" else "logistic"
    code, _, err = run(capsys, "certify", net, data, "--loss", other)
    assert_one_line_error(code, err, "--loss")
    code, _, err = run(capsys, "certify", net, data, "--beta", "0.31")
    assert_one_line_error(code, err, "--beta")


def test_certify_needs_beta_when_the_file_has_none(capsys, tmp_path):
    X = np.random.default_rng(0).standard_normal((6, 2))
    data = tmp_path / "d.npz"
    np.savez(data, X=X, y=X[:, 0])
    net = tmp_path / "net.npz"
    deepdual.Network([[np.ones((2, 2)), np.ones((2, 1))]]).save(net)
    code, _, err = run(capsys, "certify", net, data)
    assert_one_line_error(code, err, "--beta")
    code, out, err = run(capsys, "certify", net, data, "--beta", "1", "--json")
    assert code == 0, err
    assert json.loads(out)["loss"] == "squared"


def test_solve_architecture_deep_narrow_round_trip(capsys, tmp_path):
    """`--architecture deep_narrow` reaches the deep narrow Lasso solver, and `certify` of the
    saved network uses its recorded l_L penalty (docs/one_dimensional.md §10)."""
    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(-2, 2, 25))
    y = np.sin(2 * x) + 0.1 * rng.standard_normal(25)
    data = tmp_path / "d1.npz"
    np.savez(data, X=x[:, None], y=y)
    out = tmp_path / "net.npz"
    code, text, err = run(capsys, "solve", data, "--beta", "0.1", "--depth", "4", "--bias", "--architecture",
                          "deep_narrow", "--json", "--out", out)
    assert code == 0, err
    d = json.loads(text)
    sol = deepdual.solve(x[:, None], y, beta=0.1, depth=4, bias=True, architecture="deep_narrow")
    assert d["objective"] == pytest.approx(sol.objective, rel=1e-12)
    assert d["certified"] is True
    code, text, err = run(capsys, "certify", out, data, "--json")
    assert code == 0, err
    c = json.loads(text)
    assert c["objective"] == pytest.approx(sol.objective, rel=1e-9)
    assert c["lower_bound"] <= c["objective"] * (1 + 1e-12)
    assert c["lower_bound"] >= sol.lower_bound * (1 - 1e-6)
    code, _, err = run(capsys, "solve", data, "--beta", "0.1", "--depth", "2", "--bias", "--architecture",
                       "deep_narrow")
    assert_one_line_error(code, err, "depth")
