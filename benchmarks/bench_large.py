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

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    U = rng.standard_normal((d, 10))
    a = rng.standard_normal(10)
    y = np.maximum(X @ U, 0.0) @ a + 0.1 * rng.standard_normal(n)
    beta = 1e-3 * n
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
    args = ap.parse_args(argv)
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
