"""Lifted (doubly non-negative) relaxation bound on c(v) vs the spectral bound, the branch-and-bound
oracle's bound and the best attained value (docs/lifted.md, docs/performance.md).

For each instance: the dual point v is the residual of ``deepdual.solve(..., patterns="sample",
n_patterns=50)`` (as in bench_oracle.py; that network is not optimal, so even the exact c(v) leaves a
gap).  Columns: the proven upper bounds on c(v) (spectral; lifted, with its time; oracle after the
same time), the attained value (a lower estimate of c(v): the oracle's incumbent and cell ascent
from random directions), and the relative certificate gaps (P - D) / P each bound gives.

    python benchmarks/bench_lifted.py [--quick] [--max-lifted 60] [--time 60]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import deepdual
from deepdual.losses import get_loss
from deepdual.patterns import enumerate_patterns
from deepdual.relu.convex_program.cells import cell_ascent
from deepdual.relu.convex_program.certificate import cone_value, support_spectral_bound
from deepdual.relu.convex_program.lifted import lifted_bound
from deepdual.relu.convex_program.oracle import dual_constraint_bb


def real_instances(names):
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    raw = {"diabetes": load_diabetes(return_X_y=True), "breast_cancer": load_breast_cancer(return_X_y=True),
           "wine": load_wine(return_X_y=True)}
    out = []
    for spec in names:
        name, _, d = spec.partition(":")
        X, y = raw[name]
        X = StandardScaler().fit_transform(X)
        y = 2.0 * y - 1.0 if name == "breast_cancer" else (y - y.mean()) / y.std()
        if d:
            X = PCA(int(d), random_state=0).fit_transform(X)
            label = f"{name} PCA d={d}"
        else:
            label = f"{name} {X.shape[0]}x{X.shape[1]}"
        out.append((label, X, y))
    return out


def sampled_value(X, v, n_dirs=2000, seed=0):
    """Best |v^T (Xu)_+| over random directions improved by cell ascent (a LOWER estimate of c)."""
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((X.shape[1], n_dirs))
    U /= np.linalg.norm(U, axis=0)
    H = np.maximum(X @ U, 0.0)
    best = 0.0
    for s in (1.0, -1.0):
        vals = s * (v @ H)
        for j in np.argsort(-vals)[:10]:
            val, _, _ = cell_ascent(X, s * v, U[:, j])
            best = max(best, float(val))
    return best


def run_random(time_limit):
    """The issue's instance type: random n = 40, d = 4; complete enumeration gives the exact c."""
    rows = []
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((40, 4))
        v = rng.standard_normal(40)
        pats = enumerate_patterns(X)
        exact = [max(cone_value(X, p.astype(float), s * v) for p in pats) for s in (1.0, -1.0)]
        for level in ("shor", "partial", "dnn"):
            t0 = time.perf_counter()
            res = lifted_bound(X, v, level=level, time_limit=time_limit)
            rows.append({"instance": f"random 40x4 seed {seed}", "level": level, "lifted": len(X),
                         "g_exact": exact, "g_lifted": [s.upper for s in res.sides],
                         "solver": [s.solver_value for s in res.sides], "status": [s.status for s in res.sides],
                         "spectral": res.spectral, "time_s": time.perf_counter() - t0})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def run_real(args, rows, save=None):
    loss = get_loss("squared")
    for name, X, y in real_instances(args.instances):
        beta = 1.0
        sol = deepdual.solve(X, y, beta=beta, method="convex", patterns="sample", n_patterns=50, rng=0,
                             progress=False)
        Y = y[:, None]
        V = loss.dual_point(sol.network.forward(X), Y)
        v = V[:, 0]
        obj = float(sol.objective)

        def gap(c):
            return (obj - float(loss.best_scale(V, Y, np.inf if c <= 0 else beta / c)[1])) / obj

        spec = support_spectral_bound(X, v)
        t0 = time.perf_counter()
        lb = lifted_bound(X, v, level=args.level, max_lifted=None if args.max_lifted < 0 else args.max_lifted,
                          time_limit=args.time)
        t_lift = time.perf_counter() - t0
        orc = dual_constraint_bb(X, v, time_limit=t_lift, rtol=1e-9)
        att = max(orc.lower, sampled_value(X, v))
        row = {"instance": name, "n": X.shape[0], "d": X.shape[1], "objective": obj, "level": args.level,
               "max_lifted": args.max_lifted, "c_spectral": spec, "c_lifted": lb.upper,
               "lifted_sides": [s.upper for s in lb.sides], "lifted_solver": [s.solver_value for s in lb.sides],
               "lifted_status": [s.status for s in lb.sides], "lifted_s": t_lift,
               "c_oracle_same_time": orc.upper, "c_attained": att,
               "gap_spectral": gap(spec), "gap_lifted": gap(lb.upper), "gap_oracle": gap(orc.upper),
               "gap_attained_c": gap(att), "load": os.getloadavg()[0]}
        rows.append(row)
        print(json.dumps(row), flush=True)
        if save is not None:
            save()
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--instances", nargs="*", default=["diabetes", "diabetes:4", "wine:4", "wine",
                                                          "breast_cancer:4"])
    ap.add_argument("--level", default="dnn")
    ap.add_argument("--max-lifted", type=int, default=-1, help="rows lifted per sign (-1: all)")
    ap.add_argument("--time", type=float, default=60.0, help="SCS time limit per sign (s)")
    ap.add_argument("--no-random", action="store_true")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "bench_lifted.json"))
    args = ap.parse_args()
    out = {"load_start": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)

    def save():
        out["load_end"] = os.getloadavg()[0]
        with open(args.out, "w") as fh:
            json.dump(out, fh, indent=1)

    out["random"] = [] if args.no_random else run_random(args.time)
    out["real"] = []
    save()
    run_real(args, out["real"], save)
    save()


if __name__ == "__main__":
    main()
