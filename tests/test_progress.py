"""Progress bars and time limits (deepdual.progress): progress=False and a non-terminal
stderr print nothing, time_limit stops the solvers and is reported, and a stopped
solve is never certified falsely (its lower bound stays below the true optimum)."""

import io

import numpy as np
import pytest

import deepdual
from deepdual import progress as prog
from deepdual.cli import main


def _data(n=40, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.maximum(X[:, 0], 0.0) - X[:, 1] + 0.1 * rng.standard_normal(n)
    return X, y


def test_progress_false_prints_nothing(capfd, monkeypatch):
    pytest.importorskip("tqdm")
    monkeypatch.setattr(prog, "BAR_DELAY", 0.0)  # the bar would appear at once
    X, y = _data()
    deepdual.solve(X, y, beta=0.5, bias=True, patterns="sample", n_patterns=30, rng=0, progress=False)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    # ... while progress=True on the same solve does draw a bar (iterations and gap)
    deepdual.solve(X, y, beta=0.5, bias=True, patterns="sample", n_patterns=30, rng=0, progress=True)
    out, err = capfd.readouterr()
    assert out == ""
    assert "solve (relu, L=2)" in err and "it" in err  # the bar (its postfix shows the gap)


def test_default_is_silent_when_stderr_is_not_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())  # not a TTY
    assert prog.show_progress(None) is False
    assert prog.show_progress(True) is True and prog.show_progress(False) is False
    X, y = _data()
    deepdual.solve(X, y, beta=0.5, bias=True, patterns="sample", n_patterns=30, rng=0)
    import sys

    assert sys.stderr.getvalue() == ""


def test_monitor_without_tqdm_draws_nothing(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name.startswith("tqdm"):
            raise ImportError("no tqdm")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    mon = prog.Monitor(progress=True)
    assert mon(5, 1.0, 0.5, 0.5) is False  # no bar, no error, no limit
    assert mon.iterations == 5 and mon._bar is None


def test_monitor_counts_and_deadline():
    mon = prog.Monitor(progress=False, time_limit=1e-9)
    assert mon(3) is True and mon.expired()
    mon(7)
    mon(2)  # a new stage: added
    assert mon.iterations == 9
    mon.tick(4)
    assert mon.iterations == 13
    assert prog.current() is not mon  # installed only by monitoring()
    with prog.monitoring(time_limit=100.0) as outer:
        with prog.monitoring() as inner:  # inherits the outer deadline
            assert prog.current() is inner
            assert inner.time_limit is not None and inner.time_limit <= 100.0
            inner.stop("inner solver")
        assert outer.stopped_in == ["inner solver"]
    assert not prog.current().expired()


@pytest.mark.parametrize("bad, exc", [(-1.0, ValueError), (0.0, ValueError), (float("nan"), ValueError),
                                      (float("inf"), ValueError), ("1", TypeError), (True, TypeError)])
def test_bad_time_limit(bad, exc):
    X, y = _data()
    with pytest.raises(exc, match="time_limit"):
        deepdual.solve(X, y, beta=1.0, time_limit=bad)


def test_bad_progress():
    X, y = _data()
    with pytest.raises(TypeError, match="progress"):
        deepdual.solve(X, y, beta=1.0, progress="yes")


@pytest.mark.parametrize("solver", ["ipm", "barrier", "al"])
def test_time_limit_stops_and_never_certifies_falsely(solver):
    # all patterns of 25 points in 2-D plus a bias column: the optimum is known exactly
    X, y = _data(n=25, d=2, seed=1)
    ref = deepdual.solve(X, y, beta=0.3, bias=True, rtol=1e-8)
    assert ref.certified and ref.info["patterns_complete"]
    sol = deepdual.solve(X, y, beta=0.3, bias=True, rtol=1e-8, solver=solver, time_limit=1e-6)
    assert sol.info["status"] == "time_limit"
    assert "time_limit" in sol.info["note"]
    # the stopped solver did (almost) no iterations
    assert sol.info["iterations"] <= 1
    # the bound is still proven: below the exact optimum; certified only if it closes the gap
    assert sol.lower_bound <= ref.objective * (1 + 1e-9)
    assert sol.objective >= ref.lower_bound * (1 - 1e-9)
    assert sol.certified == (sol.objective - sol.lower_bound <= sol.rtol * abs(sol.objective))


def test_time_limit_not_reached_reports_nothing_special():
    X, y = _data()
    sol = deepdual.solve(X, y, beta=1.0, activation="linear", time_limit=60.0)
    assert "status" not in sol.info and sol.info["time_limit_s"] == 60.0
    assert sol.certified


def test_cli_time_limit_and_progress(tmp_path, capsys):
    X, y = _data(n=25, d=2, seed=1)
    path = tmp_path / "d.npz"
    np.savez(path, X=X, y=y)
    rc = main(["solve", str(path), "--beta", "0.3", "--bias", "--time-limit", "1e-6", "--no-progress", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0 and err == ""
    import json

    d = json.loads(out)
    assert d["status"] == "time_limit"
    rc = main(["solve", str(path), "--beta", "0.3", "--bias", "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 0 and "status:" not in out and err == ""
    rc = main(["solve", str(path), "--beta", "0.3", "--time-limit", "0"])
    out, err = capsys.readouterr()
    assert rc == 2 and "--time-limit" in err and err.count("\n") == 1


def test_time_limit_deep_linear_path_search():
    # the deep linear path search (here cross-entropy, depth 3) stops adding path points
    rng = np.random.default_rng(5)
    X = rng.standard_normal((12, 3))
    y = np.argmax(X, axis=1)
    ref = deepdual.solve(X, y, beta=1.0, depth=3, activation="linear", loss="cross_entropy")
    sol = deepdual.solve(X, y, beta=1.0, depth=3, activation="linear", loss="cross_entropy", time_limit=1e-6)
    assert sol.info["status"] == "time_limit"
    # the interval bound over the points evaluated stays below every network's objective
    assert sol.lower_bound <= ref.objective * (1 + 1e-9)
    assert sol.certified == (sol.objective - sol.lower_bound <= sol.rtol * abs(sol.objective))


def _data_1d(n=60, seed=3, kind="squared"):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-2, 2, n))
    f = np.abs(x) - 0.5 * np.maximum(x - 0.7, 0.0)
    if kind == "squared":
        return x[:, None], f + 0.2 * rng.standard_normal(n)
    if kind in ("logistic", "hinge"):
        return x[:, None], np.where(f + 0.3 * rng.standard_normal(n) > 0.8, 1.0, -1.0)
    return x[:, None], (np.digitize(f + 0.2 * rng.standard_normal(n), [0.5, 1.0])).astype(int)


def _assert_stopped_and_proven(sol, ref):
    assert sol.info["status"] == "time_limit"
    assert "time_limit" in sol.info["note"]
    # the bound is proven whatever the iterate: below the optimum (ref is certified or its
    # lower bound is itself proven), and certified only when it closes the gap
    assert np.isfinite(sol.objective)
    assert sol.lower_bound <= ref.objective + 1e-9 * abs(ref.objective)
    assert sol.lower_bound <= sol.objective + 1e-9 * abs(sol.objective)
    assert sol.certified == (sol.objective - sol.lower_bound <= sol.rtol * abs(sol.objective))


@pytest.mark.parametrize("loss, options", [
    ("squared", {}),
    ("squared", {"skip": True}),
    ("squared", {"penalize_biases": True}),
    ("logistic", {}),
    ("hinge", {}),
    ("cross_entropy", {}),
])
def test_time_limit_one_dimensional(loss, options):
    # every 1-D two-layer variant stops at a tiny limit with a proven bound
    X, y = _data_1d(kind=loss)
    ref = deepdual.solve(X, y, beta=0.5, bias=True, loss=loss, **options)
    sol = deepdual.solve(X, y, beta=0.5, bias=True, loss=loss, time_limit=1e-9, **options)
    if loss == "squared" and not options:
        assert ref.certified
    _assert_stopped_and_proven(sol, ref)


def test_time_limit_one_dimensional_depth_search():
    # depth >= 3 on 1-D data: the class search over two-layer solves stops too
    X, y = _data_1d()
    ref = deepdual.solve(X, y, beta=0.5, bias=True, depth=3)
    sol = deepdual.solve(X, y, beta=0.5, bias=True, depth=3, time_limit=1e-9)
    assert sol.info["status"] == "time_limit"
    assert np.isfinite(sol.objective)
    # the class bound (info) is proven for the class the search optimizes over
    lb = sol.info.get("class_lower_bound", sol.lower_bound)
    ref_lb_obj = ref.objective
    assert lb <= ref_lb_obj * (1 + 1e-9)


def test_time_limit_one_dimensional_interrupts_the_active_set(monkeypatch):
    # a limit that passes *during* the active-set method (not before it): the monitor
    # expires after a few checks, the solve stops there and its bound stays proven
    X, y = _data_1d(n=400, seed=7)
    ref = deepdual.solve(X, y, beta=0.05, bias=True)
    calls = {"n": 0}

    def expired(self):
        calls["n"] += 1
        return self.time_limit is not None and calls["n"] > 3

    monkeypatch.setattr(prog.Monitor, "expired", expired)
    sol = deepdual.solve(X, y, beta=0.05, bias=True, time_limit=100.0)
    _assert_stopped_and_proven(sol, ref)


def test_time_limit_deep_linear_cut_inside_fista(monkeypatch):
    # the limit passes inside a path point's FISTA run (cross-entropy): the run stops at its
    # next gap evaluation instead of finishing its budget, and the interval bound stays proven
    rng = np.random.default_rng(5)
    X = rng.standard_normal((30, 4))
    y = np.argmax(X[:, :3], axis=1)
    ref = deepdual.solve(X, y, beta=1.0, depth=3, activation="linear", loss="cross_entropy")
    calls = {"n": 0}

    def expired(self):
        calls["n"] += 1
        return self.time_limit is not None and calls["n"] > 5

    monkeypatch.setattr(prog.Monitor, "expired", expired)
    sol = deepdual.solve(X, y, beta=1.0, depth=3, activation="linear", loss="cross_entropy", time_limit=100.0)
    assert sol.info["status"] == "time_limit"
    assert sol.lower_bound <= ref.objective * (1 + 1e-9)
    assert sol.certified == (sol.objective - sol.lower_bound <= sol.rtol * abs(sol.objective))


def test_time_limit_batchnorm_closed_form():
    # a closed form is not cut: it finishes, exact and certified, and records the limit
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 8))
    Y = np.eye(3)[[0, 0, 1, 1, 2, 2]]
    sol = deepdual.solve_batchnorm(X, Y, beta=0.1, depth=3, time_limit=1e-9)
    assert sol.certified and sol.info["time_limit_s"] == 1e-9
    assert sol.info.get("time_limit_exceeded") is True
    with pytest.raises(ValueError, match="time_limit"):
        deepdual.solve_batchnorm(X, Y, beta=0.1, time_limit=-1.0)
