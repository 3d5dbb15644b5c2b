"""The squared-loss sampled convex program at n = 1e4 - 1e5: deepdual's Gram-reduced
interior-point method against pyscnn on the same patterns, at equal *feasible*
sampled-program objective (issue 15; docs/performance.md §8 "Gram-reduced interior point",
docs/convex_program.md §10b).

Data as ``bench_large.make_problem`` (X standard normal n x d, y a planted two-layer ReLU
network plus noise, beta = 1e-3 n, P sampled patterns with their directions).

* **deepdual** — ``deepdual.solve(X, y, beta=..., patterns=(pats, dirs), solver="gram",
  tol=1e-4, polish=False, oracle_time=0)``: wall time of the whole call, the sampled
  program's objective at its (feasible) point and the program's own proven lower bound
  (``info["restricted_lower_bound"]``: the gap is the program's duality gap), peak traced
  memory (tracemalloc) against X + masks.
* **reference** — the same solver at ``--ref-tol`` (1e-7): the best known value of the
  program (the lowest feasible objective seen, deepdual's or pyscnn's) and its proven bound.
* **pyscnn** (Mishkin, Sahiner & Pilanci 2022) — its augmented Lagrangian on the same
  patterns (gate vectors reproducing them exactly, ``bench_convex.run_pyscnn``), from
  scratch with a growing budget of primal/dual iterations (``--pyscnn-iters``) until its
  point is within 1e-4 of the best known value or ``--pyscnn-cap`` seconds have been spent
  in all.  Its iterate is infeasible: each result is made feasible by deepdual's exact cone
  projection (``first_order.feasible_point``) and scored by the program's objective (the
  objective of its ReLU network, neurons free to leave their patterns, is recorded too).
  The time to the target is the wall time of the first run that reached it (a run from
  scratch with that budget); the previous run's time is a lower bound.

BLAS and torch run single-threaded; ratios are from one run on one machine.  Results go to
``benchmarks/results/bench_sampled_program-<stamp>.json``.

Run::

    python benchmarks/bench_sampled_program.py --configs 10000:10:50 10000:50:100 100000:50:100
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def program_objective(Xr, pats, y, beta, z) -> float:
    from deepdual.losses import SquaredLoss
    from deepdual.relu.convex_program.first_order import program_value

    return float(program_value(Xr, pats, y[:, None], SquaredLoss(), beta, z))


def run_deepdual(X, y, beta, pats, dirs, tol: float) -> dict:
    import deepdual

    tracemalloc.start()
    t0 = time.perf_counter()
    sol = deepdual.solve(X, y, beta=beta, patterns=(pats, dirs), solver="gram", tol=tol, polish=False,
                         oracle_time=0, progress=False)
    t = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    info = sol.info
    obj, low = info["restricted_objective"], info["restricted_lower_bound"]
    return {"time_s": t, "objective": obj, "lower_bound": low, "gap": (obj - low) / abs(obj),
            "network_objective": sol.objective, "status": info["status"], "iterations": info["iterations"],
            "rounds": info["working_set_rounds"], "max_violation": info["max_violation"],
            "peak_traced_bytes": int(peak)}


def run_pyscnn_feasible(X, y, beta, pats, dirs, rs, iters: int) -> dict:
    from bench_convex import run_pyscnn
    from deepdual.relu.convex_program.first_order import feasible_point
    import scnn.models  # noqa: F401

    captured = {}
    import bench_convex

    orig = bench_convex.network_from_groups

    def grab(V, W):
        captured["V"], captured["W"] = V, W
        return orig(V, W)

    bench_convex.network_from_groups = grab
    try:
        net, t, extra = run_pyscnn(X, y, beta, "squared", pats, dirs, max_primal_iters=iters, max_dual_iters=iters)
    finally:
        bench_convex.network_from_groups = orig
    import deepdual

    V, W = captured["V"], captured["W"]  # (d, P) each, original coordinates
    z = np.concatenate([(rs.V.T @ V).T, (rs.V.T @ W).T])  # (2P, r) row-space coordinates
    zf, changed = feasible_point(rs.Xr, pats, z)
    return {"iters": iters, "time_s": t, "convex_objective_infeasible": extra["convex_objective_times_n"],
            "max_cone_violation": extra["max_cone_violation"], "projected_groups": int(changed),
            "feasible_objective": program_objective(rs.Xr, pats, y, beta, zf),
            "relu_network_objective": float(deepdual.objective(net, X, y, beta=beta))}


def run_pyscnn_limited(X, y, beta, pats, dirs, rs, iters: int, seconds: float) -> dict:
    """:func:`run_pyscnn_feasible` in a forked child, stopped after ``seconds``."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    q = ctx.Queue()

    def child():
        try:
            q.put(run_pyscnn_feasible(X, y, beta, pats, dirs, rs, iters))
        except Exception as exc:  # pragma: no cover - reported in the results
            q.put({"iters": iters, "error": repr(exc)})

    t0 = time.perf_counter()
    proc = ctx.Process(target=child)
    proc.start()
    proc.join(seconds)
    if proc.is_alive():
        proc.terminate()
        proc.join()
        return {"iters": iters, "time_s": time.perf_counter() - t0, "killed": True,
                "note": f"did not finish {iters} iterations within {seconds:.0f} s"}
    return q.get(timeout=10)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=["10000:10:50", "10000:50:100", "100000:50:100"],
                    help="n:d:P, optionally n:d:P:BUDGETS[:CAP] (pyscnn iteration budgets, comma-separated, and "
                         "its seconds for this problem, or xF: F times deepdual's time; default --pyscnn-iters, "
                         "--pyscnn-cap)")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--ref-tol", type=float, default=1e-7)
    ap.add_argument("--no-ref", action="store_true", help="skip the reference solve (best known = deepdual's)")
    ap.add_argument("--pyscnn-cap", type=float, default=900.0, help="seconds of pyscnn per problem, all runs")
    ap.add_argument("--pyscnn-iters", type=int, nargs="+", default=[100, 400, 1600, 6400])
    ap.add_argument("--no-pyscnn", action="store_true")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--tag", default="")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    from bench_large import make_problem
    from deepdual.patterns import row_space

    rows = []
    stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime())
    out = Path(args.out) / f"bench_sampled_program-{args.tag or stamp}.json"
    from bench_large import git_commit

    for cfg in args.configs:
        # n:d:P, optionally :budgets (comma-separated pyscnn iterations) and :cap (seconds)
        parts = cfg.split(":")
        n, d, P = (int(v) for v in parts[:3])
        budgets = [int(v) for v in parts[3].split(",")] if len(parts) > 3 and parts[3] else args.pyscnn_iters
        # CAP: seconds, or xF: F times deepdual's time on this problem (set after its run)
        cap_spec = parts[4] if len(parts) > 4 else str(args.pyscnn_cap)
        cap = None if cap_spec.startswith("x") else float(cap_spec)
        X, y, beta, pats, dirs = make_problem(n, d, P)
        row = {"n": n, "d": d, "P": P, "beta": beta, "data_bytes": int(X.nbytes + pats.size),
               "load_start": os.getloadavg(), "pyscnn_budgets": budgets, "pyscnn_cap_s": cap, **git_commit()}
        print(f"== n={n} d={d} P={P}", flush=True)
        dd = run_deepdual(X, y, beta, pats, dirs, args.tol)
        dd["peak_over_data"] = dd["peak_traced_bytes"] / row["data_bytes"]
        row["deepdual"] = dd
        if cap is None:
            cap = float(cap_spec[1:]) * dd["time_s"]
            row["pyscnn_cap_s"] = cap
        print("deepdual", dd, flush=True)
        best, lower = dd["objective"], dd["lower_bound"]
        if not args.no_ref:
            ref = run_deepdual(X, y, beta, pats, dirs, args.ref_tol)
            row["reference"] = ref
            print("reference", ref, flush=True)
            best, lower = min(best, ref["objective"]), max(lower, ref["lower_bound"])
        if not args.no_pyscnn:
            rs = row_space(X)
            runs, spent, hit = [], 0.0, None
            for it in budgets:
                if runs:
                    # a run from scratch with `it` iterations, predicted from the last one's time
                    # per iteration: skipped when it would overrun the cap
                    pred = runs[-1]["time_s"] / runs[-1]["iters"] * it
                    if spent + pred > cap:
                        row["pyscnn_skipped"] = f"{it} iterations: predicted {pred:.0f} s > cap - spent"
                        break
                pr = run_pyscnn_limited(X, y, beta, pats, dirs, rs, it, cap - spent)
                spent += pr["time_s"]
                runs.append(pr)
                print("pyscnn", pr, flush=True)
                if pr.get("killed") or "error" in pr:
                    break
                best = min(best, pr["feasible_objective"])
                if pr["feasible_objective"] <= best * (1 + args.tol):
                    hit = pr
                    break
            row["pyscnn_runs"] = runs
            row["pyscnn_seconds_spent"] = spent
            row["pyscnn_time_to_target_s"] = None if hit is None else hit["time_s"]
            prev = [r["time_s"] for r in runs if r is not hit and not r.get("killed") and "error" not in r]
            row["pyscnn_time_lower_s"] = max(prev) if prev else 0.0
            row["speedup_vs_pyscnn"] = None if hit is None else hit["time_s"] / dd["time_s"]
            # a run from scratch that did not reach the target: pyscnn needs longer than that
            row["speedup_vs_pyscnn_at_least"] = row["pyscnn_time_lower_s"] / dd["time_s"]
            # a run killed at the cap returned nothing within that time (no point at all)
            killed = [r["time_s"] for r in runs if r.get("killed")]
            row["pyscnn_no_result_within_s"] = max(killed) if killed else None
            if killed and hit is None:
                row["speedup_vs_pyscnn_at_least_no_result"] = max(killed) / dd["time_s"]
        row["best_known"] = best
        row["best_lower_bound"] = lower
        row["deepdual_within_target_of_best"] = bool(dd["objective"] <= best * (1 + args.tol))
        row["deepdual_rel_above_best"] = (dd["objective"] - best) / abs(best)
        row["load_end"] = os.getloadavg()
        row["commit_end"] = git_commit()
        rows.append(row)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"rows": rows, "args": vars(args)}, indent=1, default=float))
    print(f"wrote {out}")
    return {"rows": rows}


if __name__ == "__main__":
    main()
