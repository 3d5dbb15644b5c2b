"""Benchmark: exact two-layer ReLU optimum on 1-D data (docs/theory.md §2.5).

Compares the structured solver (``deepdual.solve(x, y, beta=..., bias=True)``: banded
dual interior-point warm start + exact active-set method, certified by the exact dual
constraint) with cvxpy (CLARABEL) on the *same* problem written as a dense Lasso over
all ramps at the data points plus a free constant, and measures how the solver's time
grows from 10^3 to 10^5 points.

Usage::

    python benchmarks/bench_1d.py            # full run (a few minutes, cvxpy up to n = 2000)
    python benchmarks/bench_1d.py --quick    # small sizes only
    python benchmarks/bench_1d.py --paper-architecture   # the experiment of docs §7.6 (torch)
    python benchmarks/bench_1d.py --variants             # hinge/logistic growth, penalized biases
    python benchmarks/bench_1d.py --variants --hinge-max 100000   # include hinge at 10^5 (~4 min)
    python benchmarks/bench_1d.py --deep-narrow          # deep narrow L = 4, l_L penalty (docs §10)

Prints two tables (time ratios measured in the same run) and writes
``benchmarks/results/bench_1d.json``.  Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import platform
import statistics
import sys
import time

import numpy as np

import deepdual


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2.0, 2.0, n)
    y = np.sin(3.0 * x) + 0.3 * rng.standard_normal(n)
    return x, y


def _time_ours(x: np.ndarray, y: np.ndarray, beta: float, repeats: int) -> tuple[float, deepdual.Solution]:
    times, sol = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        sol = deepdual.solve(x.reshape(-1, 1), y, beta=beta, bias=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), sol


def _time_cvxpy(x: np.ndarray, y: np.ndarray, beta: float) -> tuple[float, float]:
    import cvxpy as cp

    t0 = time.perf_counter()
    u = np.unique(x)
    Ap = np.maximum(x[:, None] - u[None, :], 0.0)
    Am = np.maximum(u[None, :] - x[:, None], 0.0)
    zp, zm, c = cp.Variable(u.size), cp.Variable(u.size), cp.Variable()
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(Ap @ zp + Am @ zm + c - y)
                                  + beta * (cp.norm1(zp) + cp.norm1(zm))))
    prob.solve(solver="CLARABEL")
    return time.perf_counter() - t0, float(prob.value)


def paper_architecture(seed: int = 0, n: int = 15, betas=(0.03, 0.3), restarts: int = 6,
                       steps: int = 4000, m: int = 8, k: int = 8) -> list[dict]:
    r"""Direct training of the norm-constrained parallel architecture (docs §7.6), L = 3.

    Sub-network j: :math:`h = (a_j x + c_j)_+\in\mathbb R^k` with :math:`\|a_j\|_2\le1`
    (projected after every Adam step), free biases :math:`c_j, d_j`, output
    :math:`\sum_j v_j(w_j^Th + d_j)_+ + b_o`; objective
    :math:`\tfrac12\|f(x)-y\|^2+\tfrac\beta2\sum_j(\|w_j\|^2+v_j^2)`.  Every two-layer network with
    free biases embeds into it at equal cost, so its optimum is at most the certified
    two-layer optimum; the best of ``restarts`` runs is compared with that optimum, and
    the kinks of the best trained function inside the data hull are located on a fine grid.
    """
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-2, 2, n))
    y = np.sin(2 * x) + 0.2 * rng.standard_normal(n)
    X, Y = torch.tensor(x, dtype=torch.float64)[:, None], torch.tensor(y, dtype=torch.float64)
    rows = []
    for beta in betas:
        two = deepdual.solve(x[:, None], y, beta=beta, bias=True)
        best = None
        for r in range(restarts):
            g = torch.Generator().manual_seed(r)
            a = torch.randn(m, k, generator=g, dtype=torch.float64)
            a = a / a.norm(dim=1, keepdim=True)
            c = torch.randn(m, k, generator=g, dtype=torch.float64)
            w = 0.5 * torch.randn(m, k, generator=g, dtype=torch.float64)
            d = 0.5 * torch.randn(m, generator=g, dtype=torch.float64)
            v = 0.5 * torch.randn(m, generator=g, dtype=torch.float64)
            bo = torch.zeros(1, dtype=torch.float64)
            ps = [a, c, w, d, v, bo]
            for q in ps:
                q.requires_grad_(True)
            opt = torch.optim.Adam(ps, lr=1e-2)

            def f(xe, a=a, c=c, w=w, d=d, v=v, bo=bo):
                h = torch.relu(xe[:, None, :] * a[None] + c[None])
                return torch.relu((h * w[None]).sum(-1) + d[None]) @ v + bo

            def obj(f=f, w=w, v=v):
                return 0.5 * ((f(X) - Y) ** 2).sum() + 0.5 * beta * ((w ** 2).sum() + (v ** 2).sum())

            for it in range(steps):
                opt.zero_grad()
                obj().backward()
                opt.step()
                if it == steps // 2:
                    for group in opt.param_groups:
                        group["lr"] = 2e-3
                with torch.no_grad():
                    a /= a.norm(dim=1, keepdim=True).clamp(min=1.0)
            with torch.no_grad():
                val = float(obj())
            if best is None or val < best[0]:
                best = (val, f)
        t = torch.linspace(float(x[0]), float(x[-1]), 40001, dtype=torch.float64)[:, None]
        with torch.no_grad():
            F = best[1](t).numpy()
        tt = t[:, 0].numpy()
        s = np.diff(F) / np.diff(tt)
        jump = np.abs(np.diff(s))
        # a slope change above 1e-3 of the largest slope is a kink (grid noise is ~1e-12)
        idx = np.nonzero(jump > 1e-3 * max(1.0, float(np.abs(s).max())))[0]
        kinks: list[float] = []
        for kk in tt[idx + 1]:
            if not kinks or kk - kinks[-1] > 2e-3:  # adjacent grid cells: one kink
                kinks.append(float(kk))
        dist = [float(np.min(np.abs(kk - x))) for kk in kinks]
        rows.append(dict(beta=beta, two_layer_optimum=two.objective, two_layer_gap=two.relative_gap,
                         best_training=best[0], kinks_in_hull=len(kinks),
                         kinks_off_data=int(sum(dd > 1e-2 for dd in dist)), max_distance=max(dist, default=0.0)))
        print(rows[-1], flush=True)
    return rows


def _binary_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2.0, 2.0, n)
    y = np.sign(np.sin(3.0 * x) + 0.5 * rng.standard_normal(n))
    y[y == 0] = 1.0
    return x, y


def _fit_exponent(rows: list[dict]) -> float | None:
    pts = [(math.log(r["n"]), math.log(r["seconds"])) for r in rows if r["seconds"] > 0]
    if len(pts) < 2:
        return None
    xs, ys = np.array(pts).T
    return float(np.polyfit(xs, ys, 1)[0])


def variants(*, quick: bool, hinge_max: int) -> dict:
    r"""Growth of the logistic (proximal Newton) and hinge (HiGHS LP) solvers from 10^3
    points up, and the penalized-bias barrier solver at small beta (docs §6).  One run
    per case (BLAS limited to one thread by the caller); every row records the certified
    gap."""
    out: dict = {"binary": [], "penalized": [], "exponents": {}}
    sizes = (1000, 3000, 10000) if quick else (1000, 3000, 10000, 30000, 100000)
    print("\nlogistic / hinge growth (x ~ U(-2, 2), y = sign(sin 3x + 0.5 N(0, 1)))")
    print(f"{'loss':>9} {'n':>7} {'beta':>6} {'time [s]':>9} {'neurons':>8} {'gap':>9}")
    for loss in ("logistic", "hinge"):
        for beta in (0.01, 1.0):
            rows = []
            for n in sizes:
                if loss == "hinge" and n > hinge_max:
                    continue
                x, y = _binary_data(n)
                t0 = time.perf_counter()
                sol = deepdual.solve(x.reshape(-1, 1), y, beta=beta, bias=True, loss=loss)
                t = time.perf_counter() - t0
                rows.append(dict(loss=loss, n=n, beta=beta, seconds=t, neurons=int(sol.info.get("neurons", 0)),
                                 objective=sol.objective, relative_gap=sol.relative_gap, certified=sol.certified))
                print(f"{loss:>9} {n:>7} {beta:>6g} {t:>9.3f} {rows[-1]['neurons']:>8} {sol.relative_gap:>9.1e}",
                      flush=True)
            out["binary"] += rows
            out["exponents"][f"{loss}, beta={beta:g}"] = _fit_exponent(rows)
    print("fitted growth exponents (time ~ n^k):",
          {k: (None if v is None else round(v, 2)) for k, v in out["exponents"].items()})
    cases = ((100, 1e-3), (100, 0.01), (300, 1e-3)) if quick else ((100, 1e-3), (300, 1e-3), (1000, 3e-3), (2000, 0.01))
    print("\npenalized biases (x ~ U(-2, 2), y = sin 3x + 0.3 N(0, 1))")
    print(f"{'n':>7} {'beta':>6} {'time [s]':>9} {'neurons':>8} {'working set':>12} {'gap':>9}")
    for n, beta in cases:
        x, y = _data(n)
        t0 = time.perf_counter()
        sol = deepdual.solve(x.reshape(-1, 1), y, beta=beta, bias=True, penalize_biases=True)
        t = time.perf_counter() - t0
        out["penalized"].append(dict(n=n, beta=beta, seconds=t, neurons=int(sol.info["neurons"]),
                                     working_set=int(sol.info["working_set"]), objective=sol.objective,
                                     relative_gap=sol.relative_gap, certified=sol.certified))
        print(f"{n:>7} {beta:>6g} {t:>9.3f} {sol.info['neurons']:>8} {sol.info['working_set']:>12} "
              f"{sol.relative_gap:>9.1e}", flush=True)
    return out


def _cvxpy_padded_trend_filter(x: np.ndarray, y: np.ndarray, beta: float) -> tuple[float, float]:
    """cvxpy/CLARABEL on the deep narrow program written as the padded trend filter
    min 1/2||g[inv] - y||^2 + beta/2 ||E S g||_1 (docs/one_dimensional.md §10)."""
    import cvxpy as cp
    import scipy.sparse as sps

    t0 = time.perf_counter()
    u, inv = np.unique(x, return_inverse=True)
    p = u.size
    inv_d = 1.0 / np.diff(u)
    S = sps.diags([-inv_d, inv_d], [0, 1], shape=(p - 1, p))
    E = sps.vstack([sps.eye(p - 1, format="csr"), sps.csr_matrix((1, p - 1))]) - \
        sps.vstack([sps.csr_matrix((1, p - 1)), sps.eye(p - 1, format="csr")])
    g = cp.Variable(p)
    M = sps.csr_matrix((np.ones(x.size), (np.arange(x.size), inv)), shape=(x.size, p))
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(M @ g - y) + 0.5 * beta * cp.norm1((E @ S) @ g)))
    prob.solve(solver=cp.CLARABEL)
    return time.perf_counter() - t0, float(prob.value)


def deep_narrow(*, quick: bool, depth: int = 4) -> dict:
    """Deep narrow networks (arXiv 2403.01046, l_L penalty): deepdual's solver against cvxpy on the
    same convex program and against the two-layer solver on the same data (peers measured in the
    same run), and growth to 10^4 points."""
    betas = (0.01, 1.0)
    sizes = (300, 1000) if quick else (300, 1000, 3000, 10000)
    cvx_max = 1000 if quick else 3000
    rows = []
    print(f"deep narrow ReLU, L = {depth}, l_L penalty: deepdual vs cvxpy (padded trend filter) and the "
          "two-layer solver")
    print(f"{'n':>6} {'beta':>6} {'ours [s]':>9} {'2-layer [s]':>11} {'cvxpy [s]':>10} {'cvx/ours':>9} "
          f"{'rel. obj. diff':>15} {'gap':>9} {'atoms':>6}")
    deepdual.solve(np.arange(5.0).reshape(-1, 1), np.sin(np.arange(5.0)), beta=0.1, depth=3, bias=True,
                   architecture="deep_narrow")  # warm up imports
    for n in sizes:
        x, y = _data(n, seed=2)
        for beta in betas:
            t0 = time.perf_counter()
            sol = deepdual.solve(x.reshape(-1, 1), y, beta=beta, depth=depth, bias=True, architecture="deep_narrow")
            t_ours = time.perf_counter() - t0
            t_two, _ = _time_ours(x, y, beta, 1)
            row = dict(n=n, beta=beta, depth=depth, ours_s=t_ours, two_layer_s=t_two, objective=sol.objective,
                       relative_gap=sol.relative_gap, certified=sol.certified, atoms=sol.info["neurons"],
                       refits=sol.info["refits"])
            if n <= cvx_max:
                t_cvx, v_cvx = _cvxpy_padded_trend_filter(x, y, beta)
                row.update(cvxpy_s=t_cvx, cvxpy_objective=v_cvx, ratio_cvxpy=t_cvx / t_ours,
                           relative_difference=(sol.objective - v_cvx) / abs(v_cvx))
            rows.append(row)
            cvx = (f"{row['cvxpy_s']:>10.3f} {row['ratio_cvxpy']:>9.1f} {row['relative_difference']:>15.2e}"
                   if "cvxpy_s" in row else f"{'-':>10} {'-':>9} {'-':>15}")
            print(f"{n:>6} {beta:>6g} {t_ours:>9.3f} {t_two:>11.3f} {cvx} {sol.relative_gap:>9.1e} "
                  f"{row['atoms']:>6}", flush=True)
    return {"benchmark": "bench_1d --deep-narrow", "depth": depth,
            "problem": "min 1/2||f(x) - y||^2 + beta/L sum |w|^L over sums of width-one ReLU chains (free biases)",
            "data": "x ~ U(-2, 2), y = sin(3x) + 0.3 N(0, 1), seed 2", "rows": rows,
            "machine": {"platform": platform.platform(), "python": sys.version.split()[0],
                        "cpu_count": os.cpu_count(), "load_1min": os.getloadavg()[0]}}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes only")
    ap.add_argument("--out", default=str(pathlib.Path(__file__).parent / "results" / "bench_1d.json"))
    ap.add_argument("--paper-architecture", action="store_true",
                    help="only the norm-constrained deep architecture experiment (docs §7.6)")
    ap.add_argument("--variants", action="store_true",
                    help="only the logistic/hinge growth and the penalized-bias cases (docs §6)")
    ap.add_argument("--hinge-max", type=int, default=30000,
                    help="largest n for the hinge LP (its dual simplex grows about quadratically)")
    ap.add_argument("--deep-narrow", action="store_true",
                    help="only the deep narrow networks of arXiv 2403.01046 (docs §10)")
    args = ap.parse_args(argv)
    if args.paper_architecture:
        return {"paper_architecture": paper_architecture()}
    try:  # one BLAS thread for both sides: a fair single-core comparison
        from threadpoolctl import threadpool_limits

        # keep the reference: the limit lasts as long as this object (the dense Newton
        # systems of the penalized-bias solver are ~100-1000 wide, where a multi-threaded
        # OpenBLAS on a loaded 2-core machine was measured 1000x slower per Cholesky)
        limiter = threadpool_limits(1)
    except ImportError:  # pragma: no cover - bench extra missing
        limiter = None
    if args.deep_narrow:
        res = deep_narrow(quick=args.quick)
        out = pathlib.Path(args.out).with_name("bench_1d_deep_narrow.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=2))
        print(f"\nwrote {out}")
        return res
    if args.variants:
        res = variants(quick=args.quick, hinge_max=args.hinge_max)
        out = pathlib.Path(args.out).with_name("bench_1d_variants.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=2))
        print(f"\nwrote {out}")
        return res

    betas = (0.01, 1.0)
    cvx_sizes = (100, 300) if args.quick else (100, 300, 1000, 2000)
    growth_sizes = (1000, 3000, 10000) if args.quick else (1000, 3000, 10000, 30000, 100000)
    repeats = 1 if args.quick else 3
    deepdual.solve(np.arange(5.0).reshape(-1, 1), np.sin(np.arange(5.0)), beta=0.1, bias=True)  # warm up imports

    rows_cvx = []
    print("deepdual (structured) vs cvxpy/CLARABEL (dense Lasso over all data ramps), same instance")
    print(f"{'n':>7} {'beta':>6} {'ours [s]':>9} {'cvxpy [s]':>10} {'ratio':>8} {'rel. obj. diff':>15} {'our gap':>9}")
    for n in cvx_sizes:
        x, y = _data(n)
        for beta in betas:
            t_ours, sol = _time_ours(x, y, beta, repeats)
            t_cvx, v_cvx = _time_cvxpy(x, y, beta)
            diff = (sol.objective - v_cvx) / abs(v_cvx)
            rows_cvx.append(dict(n=n, beta=beta, ours_s=t_ours, cvxpy_s=t_cvx, ratio=t_cvx / t_ours,
                                 objective=sol.objective, cvxpy_objective=v_cvx, relative_difference=diff,
                                 relative_gap=sol.relative_gap, certified=sol.certified))
            print(f"{n:>7} {beta:>6g} {t_ours:>9.3f} {t_cvx:>10.3f} {t_cvx / t_ours:>8.1f} {diff:>15.2e} "
                  f"{sol.relative_gap:>9.1e}", flush=True)

    rows_growth = []
    print("\ngrowth of the structured solver")
    print(f"{'n':>7} {'beta':>6} {'time [s]':>9} {'per 1e5 pts':>12} {'kinks':>6} {'gap':>9}")
    for beta in betas:
        for n in growth_sizes:
            x, y = _data(n, seed=1)
            t, sol = _time_ours(x, y, beta, repeats)
            rows_growth.append(dict(n=n, beta=beta, seconds=t, kinks=int(sol.info.get("neurons", 0)),
                                    relative_gap=sol.relative_gap, certified=sol.certified,
                                    ipm_iterations=sol.info.get("ipm_iterations"),
                                    active_set_iterations=sol.info.get("active_set_iterations")))
            print(f"{n:>7} {beta:>6g} {t:>9.3f} {t * 1e5 / n:>12.3f} {rows_growth[-1]['kinks']:>6} "
                  f"{sol.relative_gap:>9.1e}", flush=True)
    exponents = {}
    for beta in betas:
        pts = [(math.log(r["n"]), math.log(r["seconds"])) for r in rows_growth if r["beta"] == beta]
        if len(pts) >= 2:
            xs, ys = np.array(pts).T
            exponents[str(beta)] = float(np.polyfit(xs, ys, 1)[0])
    print("\nfitted growth exponent (time ~ n^k):", {b: round(k, 2) for b, k in exponents.items()})

    result = {
        "benchmark": "bench_1d",
        "problem": "min 1/2||f(x) - y||^2 + beta/2 sum(w^2 + v^2), two-layer ReLU, free biases, 1-D data",
        "data": "x ~ U(-2, 2), y = sin(3x) + 0.3 N(0, 1)",
        "quick": bool(args.quick),
        "repeats": repeats,
        "machine": {"platform": platform.platform(), "python": sys.version.split()[0],
                    "cpu_count": os.cpu_count(), "numpy": np.__version__, "blas_threads": 1 if limiter else None},
        "vs_cvxpy": rows_cvx,
        "growth": rows_growth,
        "growth_exponent": exponents,
    }
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out}")
    return result


if __name__ == "__main__":
    main()
