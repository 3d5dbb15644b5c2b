"""Closed forms against PyTorch training of the same network to within 1e-3 of the optimum.

For each problem, the closed form gives the certified optimum ``P*``.  PyTorch
(float64, full batch, CPU) then trains the same architecture -- same depth and
activation, hidden width ``--width`` (default 16, wider than the optimum needs) --
on the same objective ``loss + beta/2 sum ||W||_F^2`` until the objective is at
most ``P* (1 + 1e-3)``.  Two optimizers are tried, Adam (lr 1e-2) and L-BFGS with
a strong-Wolfe line search; the faster one to reach the target counts (the
comparison is therefore favourable to PyTorch).  A run that does not reach the
target within the time limit is reported as ``> limit`` and its ratio as a lower
bound.  Target ratio: >= 1000x.

Run alone: ``python benchmarks/bench_torch.py [--quick] [--threads N]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench_closed_forms import best_time, make_problems

#: relative distance to the optimum that counts as "trained" (issue 7)
TARGET_RTOL = 1e-3

TORCH_PROBLEMS = ("linear-L2", "linear-L3", "relu-L2-rank1", "relu-L5-rank1", "relu-L2-whitened")


def _train(torch, p, target: float, *, optimizer: str, width: int, time_limit: float, seed: int) -> dict:
    """Train until the objective is <= target; returns time-to-target (or None)."""
    g = torch.Generator().manual_seed(seed)
    X = torch.as_tensor(p.X)
    Y = torch.as_tensor(np.asarray(p.y, float).reshape(p.X.shape[0], -1))
    n, d = X.shape
    K = Y.shape[1]
    dims = [d] + [width] * (p.depth - 1) + [K]
    relu = p.activation == "relu"
    t0 = time.perf_counter()
    Ws = []
    for l in range(p.depth):
        gain = np.sqrt(2.0) if relu and l < p.depth - 1 else 1.0
        Ws.append((torch.randn(dims[l], dims[l + 1], generator=g, dtype=torch.float64)
                   * gain / np.sqrt(dims[l])).requires_grad_())
    beta = p.beta

    def objective():
        A = X
        for l, W in enumerate(Ws):
            A = A @ W
            if relu and l < len(Ws) - 1:
                A = torch.relu(A)
        return 0.5 * ((A - Y) ** 2).sum() + 0.5 * beta * sum((W**2).sum() for W in Ws)

    state = {"best": np.inf, "hit": None, "evals": 0}

    def record(v: float):
        state["evals"] += 1
        state["best"] = min(state["best"], v)
        if state["hit"] is None and v <= target:
            state["hit"] = time.perf_counter() - t0

    if optimizer == "adam":
        opt = torch.optim.Adam(Ws, lr=1e-2)
        while time.perf_counter() - t0 < time_limit:
            opt.zero_grad()
            v = objective()
            record(float(v.detach()))
            if state["hit"] is not None:
                break
            v.backward()
            opt.step()
    else:
        opt = torch.optim.LBFGS(Ws, lr=1.0, max_iter=20, history_size=20, line_search_fn="strong_wolfe",
                                tolerance_grad=0.0, tolerance_change=0.0)

        def closure():
            opt.zero_grad()
            v = objective()
            record(float(v.detach()))
            v.backward()
            return v

        while time.perf_counter() - t0 < time_limit and state["hit"] is None:
            opt.step(closure)
            if not np.isfinite(state["best"]):
                break
    return {"optimizer": optimizer, "t_to_target_s": state["hit"], "best_objective": state["best"],
            "evaluations": state["evals"], "elapsed_s": time.perf_counter() - t0}


def bench_torch(*, quick: bool, threads: int = 1, width: int = 16, time_limit: float | None = None,
                progress: bool = True) -> list[dict]:
    try:
        import torch
    except ImportError:  # pragma: no cover
        print("  torch not installed: install it with `pip install deepdual[torch]`")
        return []
    torch.set_num_threads(threads)
    # warm-up: the first autograd call pays one-time initialization, which is not training
    w = torch.ones(3, 3, dtype=torch.float64, requires_grad=True)
    (torch.relu(w @ w) ** 2).sum().backward()
    torch.optim.Adam([w], lr=1e-2).step()
    n, d = (300, 30) if quick else (2000, 200)
    time_limit = time_limit or (10.0 if quick else 60.0)
    rows = []
    for p in make_problems(n, d, seed=2, which=TORCH_PROBLEMS):
        t, sol = best_time(p.run, 2 if quick else 3)
        target = sol.objective * (1 + TARGET_RTOL)
        runs = [_train(torch, p, target, optimizer=o, width=width, time_limit=time_limit, seed=0)
                for o in ("adam", "lbfgs")]
        hits = [r for r in runs if r["t_to_target_s"] is not None]
        best = min(hits, key=lambda r: r["t_to_target_s"]) if hits else None
        t_torch = best["t_to_target_s"] if best else time_limit
        row = {
            "problem": p.name, "description": p.description, "n": p.X.shape[0], "d": p.X.shape[1],
            "depth": p.depth, "width": width, "t_closed_s": t, "objective_closed": float(sol.objective),
            "certified": bool(sol.certified), "target_rtol": TARGET_RTOL, "time_limit_s": time_limit,
            "reached": best is not None, "best_optimizer": best["optimizer"] if best else None,
            "t_torch_s": t_torch, "ratio_torch_over_closed": t_torch / t,
            "ratio_is_lower_bound": best is None,
            "t_adam_s": runs[0]["t_to_target_s"], "ratio_adam_over_closed":
                (runs[0]["t_to_target_s"] or time_limit) / t, "adam_reached": runs[0]["t_to_target_s"] is not None,
            "runs": runs,
        }
        rows.append(row)
        if progress:
            flag = "" if best else f" (not reached in {time_limit:.0f}s: ratio is a lower bound)"
            print(f"  torch  {p.name:<20} closed {t:8.4f}s  torch {t_torch:8.3f}s "
                  f"[{row['best_optimizer']}]  ratio {t_torch / t:9.0f}{flag}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--width", type=int, default=16)
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=args.threads):
        return bench_torch(quick=args.quick, threads=args.threads, width=args.width)


if __name__ == "__main__":
    main()
