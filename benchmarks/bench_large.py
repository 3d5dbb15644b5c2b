"""Large sampled convex programs: the first-order solver against pyscnn, Adam and MLPRegressor
(issue 15; docs/performance.md "Large data", docs/convex_program.md §7).

For each synthetic problem (X standard normal n x d, y a planted two-layer ReLU network
plus noise, beta = alpha n with alpha = 1e-3, P sampled patterns with their directions):

* **deepdual** — ``deepdual.solve(X, y, beta=..., patterns=(pats, dirs), solver="first_order",
  time_limit=cap)`` in a *subprocess*: wall time, peak traced memory (tracemalloc: every
  numpy allocation of the solve, the data generated before tracing starts) and ru_maxrss,
  compared with the size of X plus the boolean masks;
* **pyscnn** (Mishkin, Sahiner & Pilanci 2022; optional) — its augmented Lagrangian on the
  same patterns (gate vectors reproducing them exactly; ``bench_convex.run_pyscnn``), its
  wall time and the objective of its network; then deepdual's time to a network of
  objective at most pyscnn's times (1 + 1e-4) (the first-order solver, progress callback);
* **Adam** — PyTorch, full batch, a network of the width deepdual returned, run for
  deepdual's wall time per learning rate (grid ``--lrs``, the best rate counts);
* **MLPRegressor** (scikit-learn) — ``hidden_layer_sizes=(width,)``, ``alpha = beta``
  (scikit-learn's objective times n is ours plus *unpenalized* biases); wall time and
  objective (same units; it has biases, so it is a slightly larger model class).

All objectives are ``deepdual.objective`` of the network (the library's one objective,
a sum over samples).  Ratios are measured in one run on the same machine.  BLAS runs
single-threaded.  Results go to ``benchmarks/results/bench_large-<stamp>.json`` and, with
matplotlib, a log-log plot of time vs n to ``docs/performance_large.png``.

Run::

    python benchmarks/bench_large.py --n 2000 5000 10000 --d 10 50 --cap 120

**Time vs n** (``--sweep``; issue 15's plot): per n (ascending; the largest last) deepdual's
``solve(X, y, beta=1e-3 n)`` with *default options* (its own 100 sampled patterns, the
default solver and step budget, the local polish; ``--options`` adds solve options, e.g.
``'{"refine": 2}'``) in a fresh subprocess (wall time of an untraced run, objective; traced
peak and ru_maxrss of a second, identical run); then, each given deepdual's wall time ``t``
(at least ``--min-cap`` seconds):

* pyscnn's augmented Lagrangian on the *same* patterns (``sample_patterns(X, 100, 0)``,
  checked equal to the solve's) with a time cap of ``t``: it stops at its own tolerance or at
  the cap (its outer stopping test is made to return at the cap, so the model of the last
  iterate is returned); the objective of its network is reported (a network is always
  feasible; it equals its convex objective only when its cone violation is zero);
* Adam (same width, full batch) for ``t`` per learning rate: its objective at ``t`` (the
  issue's "same wall time" comparison) and the first time its objective is at most
  deepdual's (``None``: not within ``t``);
* MLPRegressor (200 epochs).

``docs/performance_large.png``: one row of panels per d; left, seconds vs n (log-log;
hollow markers: stopped at the cap / did not reach deepdual's objective); right, each
method's objective divided by deepdual's.  Each row records the git commit (and uncommitted
changes under src/), the load average before and after, and the seconds deepdual spent in
each stage (``TIME_STAGES``: pattern sampling, the convex solver, the polish, the
certificate and oracle; inclusive wall times of the untraced run).  ``--no-traced`` skips
the second, traced run (no memory peak; a row then costs about 5x deepdual's time)::

    python benchmarks/bench_large.py --sweep --n 1000 3000 10000 30000 100000 --d 10
    python benchmarks/bench_large.py --rerun-deepdual RESULT.json --json RERUN.json  # deepdual rows again
    python benchmarks/bench_large.py --replot RERUN.json OTHER.json --note "..."     # the plot only

**Breakdown** (``--breakdown N D``): ``solve(X, y, beta=1e-3 N)`` and
``DualNetRegressor(alpha=1e-3).fit(X, y)`` with default options on the same data, each in a
fresh single-threaded process, with the seconds per stage::

    python benchmarks/bench_large.py --breakdown 100000 50 --kinds solve fit
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def make_problem(n: int, d: int, P: int, seed: int = 0):
    """Synthetic data, beta and sampled patterns (with directions), reproducible from the seed."""
    from deepdual.patterns import sample_patterns

    X, y, beta = make_data(n, d, seed)
    pats, dirs = sample_patterns(X, P, seed + 1, return_directions=True)
    return X, y, beta, pats, dirs


def child(n: int, d: int, P: int, cap: float, max_iter: int | None = None) -> dict:
    """deepdual's solve, measured in this (fresh) process."""
    import resource
    import tracemalloc

    import deepdual

    X, y, beta, pats, dirs = make_problem(n, d, P)
    tracemalloc.start()
    t0 = time.perf_counter()
    # a step budget (then the local polish runs) or a time limit (no polish when it expires)
    budget = {"max_iter": max_iter} if max_iter else {"time_limit": cap}
    sol = deepdual.solve(X, y, beta=beta, patterns=(pats, dirs), solver="first_order", progress=False, **budget)
    t = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    info = sol.info
    return {"time_s": t, "objective": sol.objective, "lower_bound": sol.lower_bound,
            "restricted_lower_bound": info["restricted_lower_bound"], "restricted_gap": info.get("restricted_gap"),
            "iterations": info["iterations"], "status": info.get("status"), "width": int(sol.network.widths[0][1]),
            "objective_before_polish": info.get("objective_before_polish"),
            "peak_traced_bytes": int(peak), "ru_maxrss_bytes": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024,
            "data_bytes": int(X.nbytes + pats.size), "multiplier_bytes": info.get("multiplier_bytes")}


def deepdual_time_to(X, y, beta, pats, target: float, cap: float) -> float | None:
    """Seconds until the first-order solver's network objective is at most ``target``."""
    from deepdual.losses import SquaredLoss
    from deepdual.patterns import row_space
    from deepdual.relu.convex_program.first_order import solve_first_order

    t0 = time.perf_counter()
    rs = row_space(X)
    hit: list[float] = []

    def cb(it, net, low, gap):
        if net <= target and not hit:
            hit.append(time.perf_counter() - t0)
        return bool(hit) or time.perf_counter() - t0 > cap

    res = solve_first_order(rs.Xr, y[:, None], pats, SquaredLoss(), beta, tol=1e-12, max_iter=10**6, callback=cb)
    if not hit and res.network_objective <= target:
        hit.append(time.perf_counter() - t0)
    return hit[0] if hit else None


def adam(X, y, beta, width: int, seconds: float, lrs) -> dict:
    """Best objective of full-batch Adam over the learning rates, each run for ``seconds``."""
    import torch

    import deepdual
    from deepdual.network import Network

    torch.set_num_threads(1)  # as in adam_race (torch's own pool is not limited by OPENBLAS_NUM_THREADS)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    best = {"objective": np.inf}
    for lr in lrs:
        g = torch.Generator().manual_seed(0)
        U = (torch.randn(X.shape[1], width, generator=g, dtype=torch.float64) / np.sqrt(X.shape[1])).requires_grad_()
        a = (torch.randn(width, generator=g, dtype=torch.float64) / np.sqrt(width)).requires_grad_()
        opt = torch.optim.Adam([U, a], lr=lr)
        t0 = time.perf_counter()
        steps = 0
        while time.perf_counter() - t0 < seconds:
            opt.zero_grad()
            f = torch.relu(Xt @ U) @ a
            # mean scale for the optimizer (same minimizers as the sum objective)
            loss = (0.5 * ((f - yt) ** 2).sum() + 0.5 * beta * ((U ** 2).sum() + (a ** 2).sum())) / len(y)
            loss.backward()
            opt.step()
            steps += 1
        net = Network([[U.detach().numpy(), a.detach().numpy()[:, None]]], "relu", scalar_output=True)
        val = deepdual.objective(net, X, y, beta=beta)
        if np.isfinite(val) and val < best["objective"]:
            best = {"objective": float(val), "lr": lr, "steps": steps}
    return best


def mlp(X, y, beta, width: int) -> dict:
    from sklearn.neural_network import MLPRegressor

    t0 = time.perf_counter()
    m = MLPRegressor(hidden_layer_sizes=(width,), alpha=beta, max_iter=200, random_state=0).fit(X, y)
    t = time.perf_counter() - t0
    H = np.maximum(X @ m.coefs_[0] + m.intercepts_[0], 0.0)
    F = H @ m.coefs_[1][:, 0] + m.intercepts_[1][0]
    obj = 0.5 * np.sum((F - y) ** 2) + 0.5 * beta * sum(float(np.sum(W ** 2)) for W in m.coefs_)
    return {"time_s": t, "objective_with_unpenalized_biases": float(obj)}


#: functions whose wall time (inclusive: a stage called inside another counts in both) the
#: sweep and ``--breakdown`` report: (module, name), wrapped in every deepdual module that
#: imported them (as ``bench_memory.STAGES``)
TIME_STAGES = [
    ("deepdual.estimators", "_DualNetBase._proven_zero"),
    ("deepdual.estimators", "_DualNetBase._choose_patterns"),
    ("deepdual.patterns", "row_space"),
    ("deepdual.patterns", "sample_patterns"),
    ("deepdual.relu.convex_program.first_order", "solve_first_order"),
    ("deepdual.relu.convex_program.gram_ipm", "solve_gram"),
    ("deepdual.relu.convex_program.rebuild", "prune_neurons"),
    ("deepdual.relu.convex_program.rebuild", "polish_network"),
    ("deepdual.relu.convex_program.certificate", "global_constraint"),
    ("deepdual.relu.convex_program.oracle", "dual_constraint_bb"),
]


def install_timers(record: dict) -> None:
    """Wrap the :data:`TIME_STAGES` functions: per stage the number of calls and the wall
    seconds spent inside them (outermost calls only, so recursion is not counted twice)."""
    import functools
    import importlib

    def wrap(name, fn):
        depth = [0]

        @functools.wraps(fn)
        def inner(*a, **k):
            depth[0] += 1
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                depth[0] -= 1
                r = record.setdefault(name, {"calls": 0, "seconds": 0.0})
                r["calls"] += 1
                if depth[0] == 0:
                    r["seconds"] += time.perf_counter() - t0
        inner.__timed_stage__ = True
        return inner

    for modname, name in TIME_STAGES:
        try:
            mod = importlib.import_module(modname)
        except ImportError:  # pragma: no cover - a module of another version of the tree
            continue
        if "." in name:
            cls_name, meth = name.split(".")
            cls = getattr(mod, cls_name, None)
            fn = None if cls is None else cls.__dict__.get(meth)
            if fn is not None and not getattr(fn, "__timed_stage__", False):
                setattr(cls, meth, wrap(name, fn))
            continue
        fn = getattr(mod, name, None)
        if fn is None or getattr(fn, "__timed_stage__", False):
            continue
        w = wrap(name, fn)
        for m in list(sys.modules.values()):
            if getattr(m, "__name__", "").startswith("deepdual") and getattr(m, name, None) is fn:
                setattr(m, name, w)


def git_commit() -> dict:
    """The commit of the working tree and whether deepdual's sources differ from it."""
    root = HERE.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "src"], capture_output=True,
                               text=True).stdout.split("\n")
        return {"commit": head, "src_changes_uncommitted": [ln for ln in dirty if ln.strip()]}
    except OSError:  # pragma: no cover
        return {"commit": None}


def sweep_child(n: int, d: int, options: dict | None = None, traced: bool = True) -> dict:
    """deepdual's ``solve`` with default options (plus ``options``, e.g. ``{"refine": 2}``),
    measured in this (fresh) process; ``traced=False`` skips the second, traced run."""
    import resource
    import tracemalloc

    import deepdual
    from deepdual.patterns import sample_patterns
    from deepdual.relu.convex_program.solver import DEFAULT_N_PATTERNS, DEFAULT_SEED

    X, y, beta = make_data(n, d)
    files = _solver_files_sha1()  # as imported (about: read at import, hashed here)
    # the wall time untraced (tracemalloc slows allocation-heavy code: at n = 1e3, d = 10 the
    # traced solve took ~1.5x longer, time that Adam was then given), then the same
    # (deterministic) solve again under tracemalloc for its peak
    stages: dict = {}
    install_timers(stages)
    t0 = time.perf_counter()
    sol = deepdual.solve(X, y, beta=beta, progress=False, **(options or {}))
    t = time.perf_counter() - t0
    stages = {k: dict(v) for k, v in stages.items()}  # the untraced run's (the traced run adds to the timers' dict)
    t_traced, peak, same_result = None, None, None
    if traced:
        tracemalloc.start()
        t1 = time.perf_counter()
        again = deepdual.solve(X, y, beta=beta, progress=False, **(options or {}))
        t_traced = time.perf_counter() - t1
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        same_result = bool(again.objective == sol.objective)
        del again
    info = sol.info
    P = int(info.get("patterns", 0))
    # the patterns pyscnn gets: the solve's own (sampled with the default seed; checked)
    used = (info.get("warm_start") or {}).get("patterns")
    mine = sample_patterns(X, DEFAULT_N_PATTERNS, DEFAULT_SEED)
    same = None if used is None else bool(np.array_equal(np.asarray(used), mine))
    return {"time_s": t, "objective": sol.objective, "lower_bound": sol.lower_bound, "solver": info.get("solver"),
            "restricted_lower_bound": info.get("restricted_lower_bound"), "restricted_gap": info.get("restricted_gap"),
            "iterations": info.get("iterations"), "status": info.get("status"),
            "width": int(sol.network.widths[0][1]), "objective_before_polish": info.get("objective_before_polish"),
            "patterns": P, "same_patterns_as_pyscnn": same, "solver_files_sha1": files,
            "options": options or {}, "refinement": info.get("refinement"), "time_traced_s": t_traced,
            "traced_run_same_objective": same_result, "stage_seconds": stages,
            "peak_traced_bytes": None if peak is None else int(peak),
            "ru_maxrss_bytes": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024,
            "data_bytes": int(X.nbytes + P * n)}


def breakdown_child(n: int, d: int, kind: str) -> dict:
    """``solve(X, y, beta=1e-3 n)`` or ``DualNetRegressor(alpha=1e-3).fit(X, y)`` with default
    options on the sweep's data, in this (fresh) process: wall time and the seconds of each
    :data:`TIME_STAGES` stage (the same beta: the estimator's beta is n alpha)."""
    import deepdual

    X, y, beta = make_data(n, d)
    stages: dict = {}
    install_timers(stages)
    t0 = time.perf_counter()
    if kind == "solve":
        sol = deepdual.solve(X, y, beta=beta, progress=False)
        info, obj = sol.info, sol.objective
    else:
        from deepdual.estimators import DualNetRegressor

        est = DualNetRegressor(alpha=beta / n).fit(X, y)
        sol = est.certificate_
        info, obj = sol.info, sol.objective
    t = time.perf_counter() - t0
    return {"kind": kind, "n": n, "d": d, "time_s": t, "objective": obj, "lower_bound": sol.lower_bound,
            "solver": info.get("solver"), "iterations": info.get("iterations"), "status": info.get("status"),
            "restricted_gap": info.get("restricted_gap"), "stage_seconds": stages,
            "solver_files_sha1": _solver_files_sha1()}


def breakdown(args) -> dict:
    """``--breakdown N D``: ``solve`` then ``fit``, each in a fresh single-threaded process."""
    n, d = args.breakdown
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    rows = []
    path = Path(args.json) if args.json else HERE / "results" / f"bench_large-breakdown-n{n}-d{d}.json"
    for kind in args.kinds:
        row: dict = {"load_avg_before": os.getloadavg(), **git_commit()}
        out = subprocess.run([sys.executable, __file__, "--breakdown-child", json.dumps([n, d, kind])],
                             capture_output=True, text=True, env=env)
        if out.returncode != 0:
            row["error"] = out.stderr.strip().splitlines()[-3:]
        else:
            row.update(json.loads(out.stdout.strip().splitlines()[-1]))
        row["load_avg_after"] = os.getloadavg()
        rows.append(row)
        print(json.dumps(row), flush=True)
        path.write_text(json.dumps({"argv": sys.argv[1:], "kind": "breakdown", "rows": rows}, indent=1))
    return {"rows": rows}


def _solver_files_sha1() -> dict:
    """sha1 (first 10 hex digits) of the convex-program solver files as this process read
    them: the working tree may change between rows while other work goes on."""
    import hashlib

    import deepdual.relu.convex_program as cp

    root = Path(cp.__file__).parent
    return {f.name: hashlib.sha1(f.read_bytes()).hexdigest()[:10]
            for f in sorted(root.glob("*.py")) if f.name in ("solver.py", "gram_ipm.py", "first_order.py",
                                                              "working_set.py")}


def make_data(n: int, d: int, seed: int = 0):
    """The synthetic data of :func:`make_problem` (same X, y, beta), without patterns."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    U = rng.standard_normal((d, 10))
    a = rng.standard_normal(10)
    y = np.maximum(X @ U, 0.0) @ a + 0.1 * rng.standard_normal(n)
    return X, y, 1e-3 * n


def pyscnn_capped(X, y, beta, pats, dirs, cap: float) -> dict:
    """pyscnn's augmented Lagrangian on the given patterns, stopped at its tolerance or after
    ``cap`` seconds (its outer termination test returns True once the cap is passed)."""
    from bench_convex import run_pyscnn
    import scnn.private.interface.solvers as iface

    import deepdual

    base = iface.ConstrainedHeuristic
    state = {"deadline": None, "capped": False}

    class Capped(base):  # type: ignore[misc, valid-type]
        def __call__(self, *a, **k):
            if state["deadline"] is None:
                state["deadline"] = time.perf_counter() + cap
            if time.perf_counter() > state["deadline"]:
                state["capped"] = True
                return True
            return super().__call__(*a, **k)

    iface.ConstrainedHeuristic = Capped
    try:
        net, tp, extra = run_pyscnn(X, y, beta, "squared", pats, dirs)
    finally:
        iface.ConstrainedHeuristic = base
    return {"time_s": tp, "cap_s": cap, "stopped_at_cap": state["capped"],
            "objective": float(deepdual.objective(net, X, y, beta=beta)), **extra}


def adam_race(X, y, beta, width: int, seconds: float, lrs, target: float) -> dict:
    """Full-batch Adam (PyTorch, float64) of ``width`` ReLU units for ``seconds`` per learning
    rate: the objective at the end (best rate) and the first time the objective of an iterate
    is at most ``target`` (best rate; ``None`` if none did)."""
    import torch

    # one thread, like every other method here: under load torch's default intra-op pool
    # (2 threads on 2 cores) made a step ~12x slower (84 vs 7 ms at n = 1000, width 200)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _adam_race(torch, X, y, beta, width, seconds, lrs, target)
    finally:
        torch.set_num_threads(threads)


def _adam_race(torch, X, y, beta, width, seconds, lrs, target) -> dict:
    import deepdual
    from deepdual.network import Network

    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    n = len(y)
    out = {"objective": np.inf, "time_to_target_s": None, "per_lr": {}, "torch_threads": torch.get_num_threads()}
    for lr in lrs:
        g = torch.Generator().manual_seed(0)
        U = (torch.randn(X.shape[1], width, generator=g, dtype=torch.float64) / np.sqrt(X.shape[1])).requires_grad_()
        a = (torch.randn(width, generator=g, dtype=torch.float64) / np.sqrt(width)).requires_grad_()
        opt = torch.optim.Adam([U, a], lr=lr)
        hit = None
        steps = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            opt.zero_grad()
            f = torch.relu(Xt @ U) @ a
            # the sum objective of the current iterate; the optimizer sees it divided by n
            value = 0.5 * ((f - yt) ** 2).sum() + 0.5 * beta * ((U ** 2).sum() + (a ** 2).sum())
            if hit is None and float(value.detach()) <= target:
                hit = time.perf_counter() - t0
            (value / n).backward()
            opt.step()
            steps += 1
        net = Network([[U.detach().numpy(), a.detach().numpy()[:, None]]], "relu", scalar_output=True)
        val = float(deepdual.objective(net, X, y, beta=beta))
        out["per_lr"][str(lr)] = {"objective": val, "steps": steps, "time_to_target_s": hit}
        if np.isfinite(val) and val < out["objective"]:
            out["objective"], out["lr"], out["steps"] = val, lr, steps
        if hit is not None and (out["time_to_target_s"] is None or hit < out["time_to_target_s"]):
            out["time_to_target_s"], out["lr_to_target"] = hit, lr
    return out


def sweep(args) -> dict:
    """Time vs n: deepdual's default solve, pyscnn (capped), Adam and MLPRegressor."""
    from deepdual._threads import SingleThreadedBLAS
    from deepdual.patterns import sample_patterns
    from deepdual.relu.convex_program.solver import DEFAULT_N_PATTERNS, DEFAULT_SEED

    rows = []
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = Path(args.json) if args.json else HERE / "results" / f"bench_large-sweep-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    for d in args.d:
        for n in sorted(args.n):
            row: dict = {"n": n, "d": d, "load_avg_before": os.getloadavg()}
            row.update(git_commit())
            out = subprocess.run([sys.executable, __file__, "--sweep-child",
                                  json.dumps([n, d, args.options, not args.no_traced])],
                                 capture_output=True, text=True, env=env)
            if out.returncode != 0:
                row["deepdual_error"] = out.stderr.strip().splitlines()[-3:]
                rows.append(row)
                print(json.dumps(row), flush=True)
                continue
            dd = row["deepdual"] = json.loads(out.stdout.strip().splitlines()[-1])
            if dd["peak_traced_bytes"] is not None:
                row["memory_ratio_traced"] = dd["peak_traced_bytes"] / max(dd["data_bytes"], 1)
            X, y, beta = make_data(n, d)
            budget = max(dd["time_s"], args.min_cap)
            with SingleThreadedBLAS():
                if not args.no_pyscnn:
                    try:
                        pats, dirs = sample_patterns(X, DEFAULT_N_PATTERNS, DEFAULT_SEED, return_directions=True)
                        row["pyscnn"] = pyscnn_capped(X, y, beta, pats, dirs, budget)
                        del pats, dirs
                    except ImportError as exc:
                        row["pyscnn"] = f"not installed ({exc})"
                try:
                    row["adam"] = adam_race(X, y, beta, max(dd["width"], 1), budget, args.lrs, dd["objective"])
                except ImportError:
                    row["adam"] = "torch not installed"
                try:
                    row["mlp"] = mlp(X, y, beta, max(dd["width"], 1))
                except ImportError:
                    row["mlp"] = "scikit-learn not installed"
            row["load_avg_after"] = os.getloadavg()
            rows.append(row)
            print(json.dumps(row), flush=True)
            # written after every row: a stopped run keeps what it measured
            path.write_text(json.dumps({"argv": sys.argv[1:], "kind": "sweep", "rows": rows}, indent=1))
            row["commit_after"] = git_commit()
    try:
        plot_sweep(rows, Path(args.png) if args.png else HERE.parent / "docs" / "performance_large.png")
    except ImportError:
        pass
    print(f"wrote {path}")
    return {"rows": rows}


#: where a method stopped by its cap (deepdual's time) is drawn, relative to the cap
LATE = 1.3
LATE_ADAM = 1.15


def args_min_cap(row: dict) -> float:
    """The budget pyscnn and Adam were given in ``row`` (deepdual's time, or the minimum cap)."""
    p = row.get("pyscnn")
    return float(p["cap_s"]) if isinstance(p, dict) else 0.0


def rerun_deepdual(args) -> dict:
    """deepdual's rows of a --sweep result again (pyscnn, Adam and MLPRegressor are kept: their
    budget was the first run's time)."""
    src = json.loads(Path(args.rerun_deepdual).read_text())
    rows = src["rows"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    path = Path(args.json) if args.json else Path(args.rerun_deepdual).with_suffix(".rerun.json")
    for row in sorted(rows, key=lambda r: (r["d"], r["n"])):
        out = subprocess.run([sys.executable, __file__, "--sweep-child", json.dumps([row["n"], row["d"]])],
                             capture_output=True, text=True, env=env)
        if out.returncode != 0:
            row["deepdual_rerun_error"] = out.stderr.strip().splitlines()[-3:]
        else:
            row.setdefault("deepdual_first_run", row.get("deepdual"))
            row["deepdual"] = json.loads(out.stdout.strip().splitlines()[-1])
            row["deepdual"]["load_avg"] = os.getloadavg()
        print(json.dumps({"n": row["n"], "d": row["d"], "deepdual": row.get("deepdual")}), flush=True)
        path.write_text(json.dumps({**src, "rerun_deepdual": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
                                    "rows": rows}, indent=1))
    print(f"wrote {path}")
    return {"rows": rows}


def plot_sweep(rows, path: Path, note: str = "") -> None:
    """One row of panels per d: left, seconds vs n (log-log) per method; right, each
    method's objective divided by deepdual's (the same n)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = sorted({r["d"] for r in rows if "deepdual" in r})
    fig, axes = plt.subplots(len(ds), 2, figsize=(13, 5.2 * len(ds)), squeeze=False)
    for (ax_t, ax_o), d in zip(axes, ds):
        rs = sorted((r for r in rows if r["d"] == d and "deepdual" in r), key=lambda r: r["n"])
        ns = np.array([r["n"] for r in rs])
        ax_t.loglog(ns, [r["deepdual"]["time_s"] for r in rs], "o-", color="C0", label="deepdual solve (defaults)")
        for r in rs:  # the solver "auto" took, next to each point
            ax_t.annotate(str(r["deepdual"].get("solver", "")), (r["n"], r["deepdual"]["time_s"]), fontsize=6,
                          color="C0", textcoords="offset points", xytext=(4, -9))
        ps = [r for r in rs if isinstance(r.get("pyscnn"), dict)]
        if ps:
            ax_t.loglog([r["n"] for r in ps], [r["pyscnn"]["time_s"] * (LATE if r["pyscnn"]["stopped_at_cap"] else 1)
                                               for r in ps], "-", color="C1", lw=0.8)
            for r in ps:
                capped = r["pyscnn"]["stopped_at_cap"]
                t = r["pyscnn"]["time_s"]
                if capped:  # not converged by the cap: drawn above it (its own time is longer)
                    ax_t.loglog([r["n"], r["n"]], [t, LATE * t], ":", color="C1", lw=1)
                ax_t.loglog(r["n"], LATE * t if capped else t, "s", color="C1", mfc="none" if capped else "C1")
            ax_t.plot([], [], "s-", color="C1", label="pyscnn AL, same patterns, capped at deepdual's time")
        ad = [r for r in rs if isinstance(r.get("adam"), dict)]
        for r in ad:
            hit = r["adam"]["time_to_target_s"]
            t = max(r["deepdual"]["time_s"], args_min_cap(r))
            if hit is None:
                ax_t.loglog([r["n"], r["n"]], [t, LATE_ADAM * t], ":", color="C2", lw=1)
            ax_t.loglog(r["n"], hit if hit is not None else LATE_ADAM * t, "^", color="C2",
                        mfc="C2" if hit is not None else "none")
        if ad:
            ax_t.plot([], [], "^", color="C2", label="Adam (best rate), time to deepdual's objective")
        ml = [r for r in rs if isinstance(r.get("mlp"), dict)]
        if ml:
            ax_t.loglog([r["n"] for r in ml], [r["mlp"]["time_s"] for r in ml], "D-", color="C3",
                        label="MLPRegressor, 200 epochs")
        ax_t.plot([], [], "o", color="grey", mfc="none",
                  label=f"hollow, drawn {LATE_ADAM:g}-{LATE:g}x above the cap: not done within deepdual's time")
        ax_t.set_xlabel("n (samples)")
        ax_t.set_ylabel("seconds (one BLAS / torch thread)")
        ax_t.set_title(f"d = {d}: time vs n")
        ax_t.legend(fontsize=7, loc="best")
        obj = {r["n"]: r["deepdual"]["objective"] for r in rs}
        ax_o.axhline(1.0, color="C0", lw=1, label="deepdual = 1")
        if ps:
            ax_o.semilogx([r["n"] for r in ps], [r["pyscnn"]["objective"] / obj[r["n"]] for r in ps], "s-",
                          color="C1", label="pyscnn at deepdual's time")
        if ad:
            ax_o.semilogx([r["n"] for r in ad], [r["adam"]["objective"] / obj[r["n"]] for r in ad], "^-",
                          color="C2", label="Adam at deepdual's time (best of its rates)")
        if ml:
            ax_o.semilogx([r["n"] for r in ml], [r["mlp"]["objective_with_unpenalized_biases"] / obj[r["n"]]
                                                 for r in ml], "D-", color="C3", label="MLPRegressor (with biases)")
        ax_o.set_yscale("log")
        ax_o.set_xlabel("n (samples)")
        ax_o.set_ylabel("objective / deepdual's objective")
        ax_o.set_title(f"d = {d}: objective (sum scale), relative to deepdual")
        ax_o.legend(fontsize=7, loc="best")
    if note:
        import textwrap

        fig.suptitle(textwrap.fill(note, 160), fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.97) if note else None)
    fig.savefig(path, dpi=90)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[2000, 5000, 10000])
    ap.add_argument("--d", type=int, nargs="+", default=[10, 50])
    ap.add_argument("--patterns", type=int, default=100)
    ap.add_argument("--cap", type=float, default=120.0, help="time limit of each solver run (s)")
    ap.add_argument("--max-iter", type=int, default=None,
                    help="first-order steps of deepdual's solve instead of the time limit (the polish then runs)")
    ap.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 1e-2, 1e-1])
    ap.add_argument("--no-pyscnn", action="store_true")
    ap.add_argument("--pyscnn-iters", type=int, default=2000,
                    help="pyscnn's max_primal_iters and max_dual_iters (its defaults: 10000)")
    ap.add_argument("--json", type=str, default=None)
    ap.add_argument("--child", type=str, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--sweep", action="store_true",
                    help="time vs n with deepdual's default solve (module docstring); pyscnn and Adam get its wall time")
    ap.add_argument("--min-cap", type=float, default=5.0, help="--sweep: least seconds given to pyscnn and Adam")
    ap.add_argument("--sweep-child", type=str, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--options", type=json.loads, default=None,
                    help='--sweep: extra options of deepdual\'s solve, as JSON (e.g. \'{"refine": 2}\')')
    ap.add_argument("--png", type=str, default=None, help="--sweep: plot file (default docs/performance_large.png)")
    ap.add_argument("--replot", type=str, nargs="+", default=None, help="plot these --sweep result files (no runs)")
    ap.add_argument("--note", type=str, default="", help="--replot: a line above the plot")
    ap.add_argument("--rerun-deepdual", type=str, default=None,
                    help="a --sweep result file: run only deepdual's rows again (e.g. after a solver change); "
                         "the first run is kept as 'deepdual_first_run'; written to --json")
    ap.add_argument("--no-traced", action="store_true",
                    help="--sweep: skip the second, traced run of each deepdual row (no traced peak)")
    ap.add_argument("--breakdown", type=int, nargs=2, default=None, metavar=("N", "D"),
                    help="solve and fit with default options at N x D: wall time per stage (TIME_STAGES)")
    ap.add_argument("--kinds", nargs="+", default=["solve", "fit"], choices=["solve", "fit"],
                    help="--breakdown: which calls")
    ap.add_argument("--breakdown-child", type=str, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.sweep_child:
        n, d, *opts = json.loads(args.sweep_child)
        print(json.dumps(sweep_child(n, d, *opts)))
        return {}
    if args.breakdown_child:
        print(json.dumps(breakdown_child(*json.loads(args.breakdown_child))))
        return {}
    if args.breakdown:
        return breakdown(args)
    if args.replot:
        rows = [r for f in args.replot for r in json.loads(Path(f).read_text())["rows"]]
        plot_sweep(rows, Path(args.png) if args.png else HERE.parent / "docs" / "performance_large.png", args.note)
        return {"rows": rows}
    if args.rerun_deepdual:
        return rerun_deepdual(args)
    if args.sweep:
        return sweep(args)
    if args.child:
        n, d, P, cap, max_iter = json.loads(args.child)
        print(json.dumps(child(n, d, P, cap, max_iter)))
        return {}
    from deepdual._threads import SingleThreadedBLAS

    rows = []
    for d in args.d:
        for n in args.n:
            row: dict = {"n": n, "d": d, "patterns": args.patterns}
            out = subprocess.run([sys.executable, __file__, "--child", json.dumps([n, d, args.patterns, args.cap, args.max_iter])],
                                 capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1",
                                                                       "OPENBLAS_NUM_THREADS": "1"})
            if out.returncode != 0:
                row["deepdual_error"] = out.stderr.strip().splitlines()[-1:]
                rows.append(row)
                print(row, flush=True)
                continue
            dd = json.loads(out.stdout.strip().splitlines()[-1])
            row["deepdual"] = dd
            row["memory_ratio"] = dd["peak_traced_bytes"] / dd["data_bytes"]
            X, y, beta, pats, dirs = make_problem(n, d, args.patterns)
            with SingleThreadedBLAS():
                if not args.no_pyscnn:
                    try:
                        from bench_convex import run_pyscnn
                        import deepdual

                        net, tp, extra = run_pyscnn(X, y, beta, "squared", pats, dirs,
                                                    max_primal_iters=args.pyscnn_iters,
                                                    max_dual_iters=args.pyscnn_iters)
                        obj_p = deepdual.objective(net, X, y, beta=beta)
                        row["pyscnn"] = {"time_s": tp, "objective": float(obj_p), **extra}
                        t_dd = deepdual_time_to(X, y, beta, pats, obj_p * (1 + 1e-4), cap=max(args.cap, 3 * tp))
                        row["deepdual_time_to_pyscnn_objective_s"] = t_dd
                        row["speedup_vs_pyscnn"] = None if t_dd is None else tp / t_dd
                    except ImportError as exc:
                        row["pyscnn"] = f"not installed ({exc})"
                try:
                    row["adam"] = adam(X, y, beta, max(dd["width"], 1), dd["time_s"], args.lrs)
                    row["adam_minus_deepdual"] = row["adam"]["objective"] - dd["objective"]
                except ImportError:
                    row["adam"] = "torch not installed"
                try:
                    row["mlp"] = mlp(X, y, beta, max(dd["width"], 1))
                except ImportError:
                    row["mlp"] = "scikit-learn not installed"
            rows.append(row)
            print(json.dumps(row), flush=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = Path(args.json) if args.json else HERE / "results" / f"bench_large-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"argv": sys.argv[1:], "rows": rows}, indent=1))
    try:
        plot(rows, HERE.parent / "docs" / "performance_large.png")
    except ImportError:
        pass
    return {"rows": rows}


def plot(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len({r["d"] for r in rows}), figsize=(10, 4), squeeze=False)
    for ax, d in zip(axes[0], sorted({r["d"] for r in rows})):
        rs = [r for r in rows if r["d"] == d and "deepdual" in r]
        ns = [r["n"] for r in rs]
        ax.loglog(ns, [r["deepdual"]["time_s"] for r in rs], "o-", label="deepdual (solve)")
        if any(isinstance(r.get("pyscnn"), dict) for r in rs):
            ax.loglog([r["n"] for r in rs if isinstance(r.get("pyscnn"), dict)],
                      [r["pyscnn"]["time_s"] for r in rs if isinstance(r.get("pyscnn"), dict)], "s-", label="pyscnn AL")
        ax.loglog(ns, [r["deepdual"]["time_s"] for r in rs], "k:", label="Adam (same wall time)")
        if any(isinstance(r.get("mlp"), dict) for r in rs):
            ax.loglog([r["n"] for r in rs if isinstance(r.get("mlp"), dict)],
                      [r["mlp"]["time_s"] for r in rs if isinstance(r.get("mlp"), dict)], "^-", label="MLPRegressor")
        ax.set_title(f"d = {d}")
        ax.set_xlabel("n")
        ax.set_ylabel("seconds")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
