"""Benchmark of the branch-and-bound dual-constraint oracle (docs/convex_program.md §11-22).

For real data sets (scikit-learn's diabetes, breast cancer, wine, digits; standardized) and
their PCA projections, and planted synthetic instances: the network of ``deepdual.solve``
(sampled patterns) gives the dual point ``v`` (its residual).  Its proven lower bound on the
global optimum is computed with

* today's bound: the spectral bound on c(v) (docs/convex_program.md §4);
* the oracle: its anytime bound on c(v) after 1, 5 and ``--time`` seconds (and whether c(v)
  was computed exactly, with the time it took);
* SCIP (pyscipopt, if installed) on the generic big-M model of c(v), ``--time`` seconds split
  over the two signs: its proven bound.

Column generation (``strategy="column_generation"``) is run on the small-rank instances with
``--cg-time`` seconds.  Results: ``benchmarks/results/bench_oracle.json`` and a markdown table.

Usage: ``python benchmarks/bench_oracle.py [--time 20] [--cg-time 120] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import deepdual
from deepdual.losses import get_loss
from deepdual.relu.convex_program.certificate import support_spectral_bound
from deepdual.relu.convex_program.oracle import dual_constraint_bb


def datasets(quick: bool):
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    out = []
    raw = [("diabetes", *load_diabetes(return_X_y=True), "regression"),
           ("breast_cancer", *load_breast_cancer(return_X_y=True), "binary"),
           ("wine", *load_wine(return_X_y=True), "regression"),
           ("digits", *load_digits(return_X_y=True), "digits")]
    dims = (2, 4, 10) if quick else (2, 3, 4, 6, 8, 10, 16)
    for name, X, y, kind in raw:
        X = StandardScaler().fit_transform(X)
        X = X[:, X.std(axis=0) > 0]
        if kind == "binary":
            y = 2.0 * y - 1.0
        elif kind == "digits":
            y = np.where(y >= 5, 1.0, -1.0)
        else:
            y = (y - y.mean()) / y.std()
        out.append((f"{name} {X.shape[0]}x{X.shape[1]}", X, y))
        for d in dims:
            if d < X.shape[1]:
                out.append((f"{name} PCA d={d}", PCA(d, random_state=0).fit_transform(X), y))
    rng = np.random.default_rng(0)
    for n, d in ((200, 3), (1000, 4)):
        X = rng.standard_normal((n, d))
        f = np.maximum(X @ rng.standard_normal(d), 0) - np.maximum(X @ rng.standard_normal(d), 0)
        out.append((f"planted {n}x{d}", X, f + 0.1 * rng.standard_normal(n)))
    return out


def bigm_model(X, v):
    """SCIP's big-M model of max_{||u||<=1} v^T (Xu)_+ (pyscipopt ``Model``, not solved).

    Binaries for the rows with v_i > 0, z_i >= x_i^T u, 0 <= z_i <= M_i = ||x_i|| (with
    z_i <= x_i^T u + M_i (1 - b_i), z_i <= M_i b_i), ||u||^2 <= 1.
    """
    from pyscipopt import Model, quicksum

    m = Model()
    m.hideOutput()
    d = X.shape[1]
    u = [m.addVar(lb=-1, ub=1, name=f"u{j}") for j in range(d)]
    obj = []
    for i in range(X.shape[0]):
        if v[i] == 0:
            continue
        t = quicksum(float(X[i, j]) * u[j] for j in range(d))
        Mi = float(np.linalg.norm(X[i]))
        zi = m.addVar(lb=0, ub=Mi)
        m.addCons(zi >= t)
        if v[i] > 0:
            b = m.addVar(vtype="B")
            m.addCons(zi <= t + Mi * (1 - b))
            m.addCons(zi <= Mi * b)
        obj.append(float(v[i]) * zi)
    m.addCons(quicksum(uj * uj for uj in u) <= 1)
    m.setObjective(quicksum(obj), "maximize")
    return m


def scip_bound(X, v, time_limit):
    """SCIP on the big-M model of max_{||u||<=1} s v^T (Xu)_+ for s = +-1: max of its proven bounds."""
    try:
        import pyscipopt  # noqa: F401
    except ImportError:
        return None
    best_dual, best_primal = 0.0, 0.0
    for s in (1.0, -1.0):
        m = bigm_model(X, s * v)
        m.setParam("limits/time", time_limit / 2)
        m.optimize()
        best_dual = max(best_dual, float(m.getDualbound()))
        if m.getNSols() > 0:
            best_primal = max(best_primal, float(m.getObjVal()))
    return best_dual, best_primal


def run(args):
    loss = get_loss("squared")
    rows = []
    for name, X, y in datasets(args.quick):
        if args.oracle_only is not None and not any(s in name for s in args.oracle_only.split(",")):
            continue
        beta = 1.0
        t0 = time.perf_counter()
        sol = deepdual.solve(X, y, beta=beta, method="convex", patterns="sample", n_patterns=50, rng=0,
                             progress=False)
        t_solve = time.perf_counter() - t0
        Y = y[:, None]
        V = loss.dual_point(sol.network.forward(X), Y)
        v = V[:, 0]
        obj = float(sol.objective)

        def low(c):
            return float(loss.best_scale(V, Y, np.inf if c <= 0 else beta / c)[1])

        spec = support_spectral_bound(X, v)
        r = dual_constraint_bb(X, v, time_limit=args.time, rtol=1e-9)
        r_rows = dual_constraint_bb(X, v, time_limit=args.time, rtol=1e-9, method="rows") \
            if X.shape[1] <= 4 and args.rows else None

        def at(t):
            ups = [h[2] for h in r.history if h[0] <= t]
            return min(ups) if ups else spec

        row = {"instance": name, "n": X.shape[0], "d": X.shape[1], "objective": obj, "solve_s": t_solve,
               "c_spectral": spec, "gap_today": (obj - low(spec)) / obj,
               "c_oracle_1s": at(1.0), "c_oracle_5s": at(5.0), "c_oracle_end": r.upper, "c_attained": r.lower,
               "oracle_exact": r.exact, "oracle_s": r.time_s, "nodes": r.nodes,
               "gap_1s": (obj - low(at(1.0))) / obj, "gap_5s": (obj - low(at(5.0))) / obj,
               "gap_end": (obj - low(r.upper)) / obj,
               "gap_exact_c": (obj - low(r.lower)) / obj if r.exact else None,
               "load_average": os.getloadavg()}
        if r_rows is not None:  # the row-sign search on the same v (the previous default for d <= 4)
            row.update({"rows_c_end": r_rows.upper, "rows_exact": r_rows.exact, "rows_s": r_rows.time_s,
                        "rows_gap_end": (obj - low(r_rows.upper)) / obj})
        if args.scip and ("PCA" not in name or X.shape[1] == 4):
            sb = scip_bound(X, v, args.time)
            if sb is not None:
                row["c_scip"], row["c_scip_attained"] = sb
                row["gap_scip"] = (obj - low(sb[0])) / obj
        rows.append(row)
        print(json.dumps(row), flush=True)
    cg = []
    if args.cg_time > 0:
        for name, X, y in datasets(False):
            # the target: d <= 4, n <= 2000 (PCA projections and planted instances)
            if X.shape[1] > 4 or X.shape[0] > 2000 or not (args.cg_only is None or any(
                    s in name for s in args.cg_only.split(","))):
                continue
            t0 = time.perf_counter()
            sol = deepdual.solve(X, y, beta=1.0, method="convex", strategy="column_generation",
                                 time_limit=args.cg_time, rng=0, progress=False, rtol=1e-4)
            res = {"instance": name, "n": X.shape[0], "d": X.shape[1], "objective": sol.objective,
                   "lower_bound": sol.lower_bound, "rel_gap": (sol.objective - sol.lower_bound) / abs(sol.objective),
                   "certified_1e-4": bool(sol.objective - sol.lower_bound <= 1e-4 * abs(sol.objective)),
                   "time_s": time.perf_counter() - t0, "rounds": sol.info.get("rounds"),
                   "patterns": sol.info.get("patterns"), "status": sol.info.get("status"),
                   "history": sol.info.get("history"), "load_average": os.getloadavg()}
            det = sol.info.get("rounds_detail") or []
            # where the time went (docs/performance.md §16): program solves, screening, oracle,
            # interior directions of new patterns
            res["time_split_s"] = {k: float(sum(r_.get(k, 0.0) for r_ in det))
                                   for k in ("program_s", "screen_s", "oracle_s", "interior_s")}
            res["rounds_detail"] = det
            cg.append(res)
            print(json.dumps(res), flush=True)
    return rows, cg


def table(rows, cg):
    out = ["| instance | n x d | objective | gap today (spectral) | gap oracle 1 s | 5 s | end | c(v) exact (time) "
           "| gap SCIP | row-sign search (end) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ex = f"yes ({r['oracle_s']:.1f} s, {r['nodes']} boxes/nodes)" if r["oracle_exact"] else \
            f"no ({r['nodes']} nodes; c in [{r['c_attained']:.4g}, {r['c_oracle_end']:.4g}])"
        sc = f"{r['gap_scip']:.3f}" if "gap_scip" in r else "–"
        rw = (f"{r['rows_gap_end']:.3f}" + (f" (exact, {r['rows_s']:.1f} s)" if r["rows_exact"] else "")
              if "rows_gap_end" in r else "–")
        out.append(f"| {r['instance']} | {r['n']}x{r['d']} | {r['objective']:.5g} | {r['gap_today']:.3f} | "
                   f"{r['gap_1s']:.3f} | {r['gap_5s']:.3f} | {r['gap_end']:.3f} | {ex} | {sc} | {rw} |")
    if cg:
        out += ["", "| column generation | n x d | objective | lower bound | rel. gap | time | rounds | patterns |"
                " status |", "|---|---|---|---|---|---|---|---|---|"]
        for r in cg:
            out.append(f"| {r['instance']} | {r['n']}x{r['d']} | {r['objective']:.8g} | {r['lower_bound']:.8g} | "
                       f"{r['rel_gap']:.1e} | {r['time_s']:.1f} s | {r['rounds']} | {r['patterns']} | "
                       f"{r['status']} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time", type=float, default=20.0, help="oracle and SCIP seconds per instance")
    ap.add_argument("--cg-time", type=float, default=120.0, help="column generation seconds per instance")
    ap.add_argument("--quick", action="store_true", help="PCA d = 2, 4, 10 only")
    ap.add_argument("--no-scip", dest="scip", action="store_false")
    ap.add_argument("--no-rows", dest="rows", action="store_false",
                    help="skip the row-sign search on d <= 4 (compared with the direction-space one)")
    ap.add_argument("--oracle-only", default=None, help="comma-separated name parts: oracle rows to run")
    ap.add_argument("--cg-only", default=None, help="comma-separated name parts: column generation rows to run")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "bench_oracle.json"))
    args = ap.parse_args()
    rows, cg = run(args)
    with open(args.out, "w") as f:
        json.dump({"args": vars(args), "oracle": rows, "column_generation": cg,
                   "load_average": os.getloadavg()}, f, indent=1)
    print(table(rows, cg))


if __name__ == "__main__":
    main()
