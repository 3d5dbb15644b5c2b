"""Which method ``solve``'s ``solver="auto"`` should take for sampled programs at
n = 10³–5·10³, d = 20–50 (issue 15; docs/performance.md §8, "Default method at n = 10³–5·10³").

For each problem, deepdual's ``solve(X, y, beta)`` with default options except ``solver``
(``"auto"``, ``"first_order"``, ``"gram"``, ``"al"``, and ``"ipm"`` where asked), each in a
fresh single-threaded subprocess (a wall-clock cap per run: a run past it is recorded as
``timeout``); per problem the methods run in a rotated order (interleaved, so that a change
of load does not favour one method).  Recorded per run: wall time, the network's objective,
the proven lower bound (``sol.lower_bound``), the sampled program's own objective, lower
bound and relative gap (``info["restricted_objective"]``, ``info["restricted_lower_bound"]``),
the method ``"auto"`` chose, and the objective before the local polish.

Problems: synthetic (``bench_large.make_data``: X standard normal, y a planted width-10 ReLU
network plus noise, β = 10⁻³ n) as ``syn:N:D``; real: ``digits`` (1797 x 64, y the digit
value), ``digits01`` (y = 1 for digit 0, else 0), ``cancer`` (569 x 30, standardized, y the
0/1 label), ``cancer_logistic`` (the same, y = ±1, logistic loss), all with β = 10⁻³ n.
``--adam`` also races full-batch Adam (bench_large's ``adam_race``, one torch thread; squared
loss only) for the wall time of each ``--adam`` method on that problem::

    python benchmarks/bench_default_method.py --problems syn:1000:50 syn:2000:20 digits \
        --methods auto first_order gram al --cap 300 --json out.json

``--estimator-cv`` instead runs ``DualNetClassifier``'s 5-fold CV on breast cancer (the
estimators' path through the same rule; ``estimator_cv``), ``--oracle-time 0`` for
deterministic spectral bounds::

    OMP_NUM_THREADS=1 python benchmarks/bench_default_method.py --estimator-cv --oracle-time 0 --json cv.json
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


def load(problem: str):
    """(X, y, beta) of a problem name (module docstring)."""
    if problem.startswith("syn:"):
        from bench_large import make_data

        _, n, d = problem.split(":")
        return make_data(int(n), int(d))
    from sklearn import datasets

    if problem in ("digits", "digits01"):
        X, t = datasets.load_digits(return_X_y=True)
        X = X.astype(float)
        y = t.astype(float) if problem == "digits" else (t == 0).astype(float)
    elif problem in ("cancer", "cancer_logistic"):
        X, t = datasets.load_breast_cancer(return_X_y=True)
        X = (X - X.mean(0)) / X.std(0)
        y = t.astype(float) if problem == "cancer" else 2.0 * t - 1.0
    else:
        raise ValueError(f"unknown problem {problem!r}")
    return X, y, 1e-3 * len(y)


#: problems of another loss than the squared one
LOSS = {"cancer_logistic": "logistic"}


def child(problem: str, method: str) -> dict:
    """One ``solve`` in this (fresh) process."""
    import deepdual

    X, y, beta = load(problem)
    t0 = time.perf_counter()
    sol = deepdual.solve(X, y, beta=beta, solver=method, progress=False, loss=LOSS.get(problem, "squared"))
    t = time.perf_counter() - t0
    info = sol.info
    ro, rl = info.get("restricted_objective"), info.get("restricted_lower_bound")
    gap = None if ro is None or rl is None or ro <= 0 else (ro - rl) / ro
    return {"time_s": t, "objective": float(sol.objective), "lower_bound": float(sol.lower_bound),
            "gap": float(sol.gap) if sol.gap is not None else None, "solver": info.get("solver"),
            "restricted_objective": ro, "restricted_lower_bound": rl, "restricted_gap_rel": gap,
            "restricted_gap_fo": info.get("restricted_gap"), "iterations": info.get("iterations"),
            "status": info.get("status"), "objective_before_polish": info.get("objective_before_polish"),
            "width": int(sol.network.widths[0][1]), "rank": info.get("rank"), "patterns": info.get("patterns"),
            "deepdual_file": deepdual.__file__}


def estimator_cv(oracle_time: float | None = None) -> dict:
    """``DualNetClassifier(alpha, random_state=0)`` on breast cancer (standardized per fold),
    5-fold stratified CV per alpha in {1e-3, 1e-2, 1e-1}: accuracy, mean fit time, the sum
    over folds of the certificate's objective and proven lower bound, the solver each fit
    took (``oracle_time``: the solver option, e.g. 0 for deterministic spectral bounds)."""
    import warnings

    from sklearn import datasets
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    import deepdual
    from deepdual import DualNetClassifier

    X, y = datasets.load_breast_cancer(return_X_y=True)
    X = X.astype(float)
    opts = {} if oracle_time is None else {"solver_options": {"oracle_time": oracle_time}}
    out = {"deepdual_file": deepdual.__file__, "oracle_time": oracle_time}
    for alpha in (1e-3, 1e-2, 1e-1):
        cv = StratifiedKFold(5, shuffle=True, random_state=0)
        sc, ts, objs, lows, solvers = [], [], [], [], []
        for tr, te in cv.split(X, y):
            sx = StandardScaler().fit(X[tr])
            est = DualNetClassifier(alpha=alpha, random_state=0, **opts)
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(sx.transform(X[tr]), y[tr])
            ts.append(time.perf_counter() - t0)
            sc.append(float(est.score(sx.transform(X[te]), y[te])))
            c = est.certificate_
            objs.append(float(c.objective))
            lows.append(float(c.lower_bound))
            solvers.append(c.info.get("solver"))
        out[str(alpha)] = {"accuracy": float(np.mean(sc)), "fit_s": float(np.mean(ts)),
                           "objective_sum": float(np.sum(objs)), "lower_bound_sum": float(np.sum(lows)),
                           "solvers": solvers, "scores": sc, "objectives": objs, "lower_bounds": lows}
        print(alpha, json.dumps({k: out[str(alpha)][k] for k in ("accuracy", "fit_s", "objective_sum",
                                                                 "lower_bound_sum", "solvers")}), flush=True)
    return out


def run_child(problem: str, method: str, cap: float) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, __file__, "--child", json.dumps([problem, method])],
                           capture_output=True, text=True, timeout=cap, env=env)
    except subprocess.TimeoutExpired:
        return {"timeout": cap, "time_s": time.perf_counter() - t0}
    if p.returncode != 0:
        return {"error": p.stderr[-2000:]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="+", default=["syn:1000:50"])
    ap.add_argument("--methods", nargs="+", default=["auto", "first_order", "gram", "al"])
    ap.add_argument("--cap", type=float, default=300.0, help="wall-clock cap of each run (s)")
    ap.add_argument("--adam", nargs="*", default=None, help="methods whose wall time Adam is given")
    ap.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 1e-2, 1e-1])
    ap.add_argument("--json", type=str, default=None)
    ap.add_argument("--estimator-cv", action="store_true",
                    help="only DualNetClassifier's 5-fold CV on breast cancer (estimator_cv), in this process")
    ap.add_argument("--oracle-time", type=float, default=None, help="--estimator-cv: the solver's oracle_time")
    ap.add_argument("--child", type=str, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.estimator_cv:
        out = estimator_cv(args.oracle_time)
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=1))
        return out
    if args.child:
        print(json.dumps(child(*json.loads(args.child))))
        return {}
    from bench_large import git_commit

    # PYTHONPATH may point at a snapshot of the tree (e.g. ``git archive`` of a commit)
    out = {"git": git_commit(), "pythonpath": os.environ.get("PYTHONPATH"), "cap_s": args.cap, "rows": []}
    for i, problem in enumerate(args.problems):
        k = i % len(args.methods)
        order = args.methods[k:] + args.methods[:k]  # rotated: interleaved across problems
        row = {"problem": problem, "order": order, "load_before": os.getloadavg()[0], "runs": {}}
        for m in order:
            r = run_child(problem, m, args.cap)
            row["runs"][m] = r
            print(problem, m, json.dumps({k2: r.get(k2) for k2 in ("time_s", "objective", "lower_bound", "solver",
                                                                   "restricted_gap_rel", "status", "timeout")}),
                  flush=True)
        if args.adam is not None and problem not in LOSS:  # adam_race minimizes the squared loss
            from bench_large import adam_race

            X, y, beta = load(problem)
            row["adam"] = {}
            for m in args.adam:
                r = row["runs"].get(m, {})
                if "objective" not in r:
                    continue
                a = adam_race(X, y, beta, r["width"], r["time_s"], args.lrs, r["objective"])
                row["adam"][m] = a
                print(problem, "adam at", m, round(r["time_s"], 1), "s:", a["objective"], a.get("lr"),
                      {k2: v["objective"] for k2, v in a["per_lr"].items()}, flush=True)
        row["load_after"] = os.getloadavg()[0]
        out["rows"].append(row)
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
