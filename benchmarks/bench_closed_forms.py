"""Closed forms against (1) one LAPACK factorization of the same X and (2) cvxpy.

Ratios are measured in one run on one machine (see ``benchmarks/README.md``):

* ``floor``: time of ``deepdual.solve`` (validation, structure detection, closed form,
  objective and certificate included) divided by the time of one Householder QR of
  the same ``X`` (LAPACK ``geqrf`` via ``scipy.linalg.qr(mode="r")``), the cheapest
  factorization that reveals the range of ``X``.  Target: within 2x.
* ``cvxpy``: time of cvxpy (problem construction + Clarabel) on the *same convex
  program*, solved to the same objective (1e-7 relative), divided by the time of
  ``deepdual.solve``.  Target: >= 100x.  Whitened data (``XX^T = I``) appear twice: with
  cvxpy given the docs/theory.md §2.8 program in ``X`` restricted to the activation pattern ``D = I``
  (which holds the optimum, see ``_cvx_program``) against the full ``solve`` of the same
  ``X``; and with cvxpy given the *reduced* program in ``n`` variables, which does not
  involve ``X``, against ``deepdual.solve`` on the same reduced program (the data
  ``X = I_n``), with the full ``solve`` on the whitened ``X`` (including its ``XX^T = I``
  check, which the reduced program skips) as a second column.

Run alone: ``python benchmarks/bench_closed_forms.py [--quick] [--threads N]``
(``benchmarks/run.py`` runs everything).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import scipy.linalg as sla

import deepdual
from deepdual.streaming import solve_stats
from deepdual.stats import from_arrays

#: "equal objective" for the cvxpy comparison (issue 7)
EQUAL_RTOL = 1e-7


def best_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Smallest wall time of ``repeat`` calls (after one warm-up call) and the last result."""
    out = fn()
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


# --------------------------------------------------------------------- problems
@dataclass
class Problem:
    name: str
    description: str
    X: np.ndarray
    y: np.ndarray
    beta: float
    depth: int
    activation: str
    solve: Callable[[], Any] | None = None  # default: deepdual.solve

    def run(self):
        if self.solve is not None:
            return self.solve()
        return deepdual.solve(self.X, self.y, beta=self.beta, depth=self.depth, activation=self.activation)


def _gaussian(rng, n, d):
    X = rng.standard_normal((n, d))
    y = X @ rng.standard_normal(d) / np.sqrt(d) + 0.5 * rng.standard_normal(n)
    return X, y


def _rank_one(rng, n, d):
    c = np.abs(rng.standard_normal(n))
    a0 = rng.standard_normal(d)
    X = np.outer(c, a0)
    y = 2.0 * c + 0.5 * rng.standard_normal(n)
    return X, y, c, a0


def _whitened(rng, n, d):
    Q, _ = np.linalg.qr(rng.standard_normal((d, n)))
    X = Q.T  # X X^T = I_n
    y = np.where(rng.random(n) < 0.5, 1.0, -1.0) * (1 + rng.random(n))
    return X, y


def _orthonormal(rng, n, d, K=5):
    X, _ = np.linalg.qr(rng.standard_normal((n, d)))  # X^T X = I_d
    Y = X @ rng.standard_normal((d, K)) + 0.1 * rng.standard_normal((n, K)) / np.sqrt(n)
    return X, Y


def make_problems(n: int, d: int, seed: int = 0, which: tuple[str, ...] | None = None) -> list[Problem]:
    """The closed-form problems at size ``n x d`` (whitened data: ``d x 10 d``, since it needs n <= d)."""
    rng = np.random.default_rng(seed)
    probs: list[Problem] = []
    X, y = _gaussian(rng, n, d)
    bmax = float(np.linalg.norm(X.T @ y))  # beta >= this gives the zero network (two layers)
    probs.append(Problem("linear-L2", "two-layer linear, 1 output (projection P_{X,beta})", X, y, 0.3 * bmax, 2,
                         "linear"))
    probs.append(Problem("linear-L3", "deep linear L=3, 1 output (secular path search)", X, y, 0.1 * bmax, 3,
                         "linear"))
    probs.append(Problem(
        "linear-L2-stats", "two-layer linear via sufficient statistics (solve_stats)", X, y, 0.3 * bmax, 2, "linear",
        solve=lambda X=X, y=y, b=0.3 * bmax: solve_stats(from_arrays(X, y), beta=b, activation="linear")))
    probs.append(Problem(
        "linear-L3-stats", "deep linear L=3 via sufficient statistics (solve_stats)", X, y, 0.1 * bmax, 3, "linear",
        solve=lambda X=X, y=y, b=0.1 * bmax: solve_stats(from_arrays(X, y), beta=b, depth=3, activation="linear")))
    Xo, Yo = _orthonormal(rng, n, d)
    so = np.linalg.svd(Xo.T @ Yo, compute_uv=False)
    probs.append(Problem("linear-L2-K5-orth", "two-layer linear, K=5, X^T X = I (singular-value threshold)", Xo, Yo,
                         float(so[2]), 2, "linear"))
    probs.append(Problem("linear-L4-K5-orth", "deep linear L=4, K=5, X^T X = I (power prox per singular value)",
                         Xo, Yo, 0.3 * float(so[2]), 4, "linear"))
    X1, y1, c, a0 = _rank_one(rng, n, d)
    b1 = float(np.linalg.norm(a0) * abs(c @ y1) / np.linalg.norm(c))
    probs.append(Problem("relu-L2-rank1", "two-layer ReLU, rank-one data X = c a0^T", X1, y1, 0.3 * b1, 2, "relu"))
    probs.append(Problem("relu-L5-rank1", "five-layer ReLU, rank-one data", X1, y1, 0.1 * b1, 5, "relu"))
    Xg, yg = _gaussian(rng, d, max(10 * d, n))  # wide general data: d x 10d (Gram path on X X^T)
    bg = float(np.linalg.norm(Xg.T @ yg))
    probs.append(Problem("linear-L2-wide", "two-layer linear, 1 output, wide X (d = 10 n)", Xg, yg, 0.3 * bg, 2,
                         "linear"))
    probs.append(Problem("linear-L3-wide", "deep linear L=3, 1 output, wide X (d = 10 n)", Xg, yg, 0.1 * bg, 3,
                         "linear"))
    Xw, yw = _whitened(rng, d, max(10 * d, n))  # whitened needs rows <= columns: d x 10d
    bw = max(np.linalg.norm(np.maximum(yw, 0)), np.linalg.norm(np.maximum(-yw, 0)))
    probs.append(Problem("relu-L2-whitened", "two-layer ReLU, whitened data X X^T = I", Xw, yw, 0.3 * bw, 2,
                         "relu"))
    if which is not None:
        probs = [p for p in probs if p.name in which]
    return probs


# --------------------------------------------------------------------- floor
def bench_floor(*, quick: bool, repeat: int | None = None, progress: bool = True) -> list[dict]:
    """Each closed form vs one QR (and, for reference, one SVD) of the same X."""
    n, d = (1000, 100) if quick else (5000, 500)
    repeat = repeat or (2 if quick else 3)
    rows = []
    floors: dict[int, tuple[float, float]] = {}
    for p in make_problems(n, d):
        key = id(p.X)
        if key not in floors:
            t_qr, _ = best_time(lambda X=p.X: sla.qr(X, mode="r", overwrite_a=False), repeat)
            t_svd, _ = best_time(lambda X=p.X: sla.svd(X, full_matrices=False, compute_uv=False), repeat)
            floors[key] = (t_qr, t_svd)
        t_qr, t_svd = floors[key]
        t, sol = best_time(p.run, repeat)
        rows.append({
            "problem": p.name, "description": p.description, "n": p.X.shape[0], "d": p.X.shape[1],
            "depth": p.depth, "t_closed_s": t, "t_qr_s": t_qr, "t_svd_s": t_svd,
            "ratio_vs_qr": t / t_qr, "ratio_vs_svd": t / t_svd,
            "method": sol.method, "certified": bool(sol.certified), "relative_gap": float(sol.relative_gap),
        })
        if progress:
            print(f"  floor  {p.name:<20} closed {t:8.4f}s  qr {t_qr:8.4f}s  ratio {t / t_qr:6.2f}", flush=True)
    return rows


# --------------------------------------------------------------------- cvxpy
def _cvx_program(p: Problem):
    """The convex program that the closed form solves, as a cvxpy problem, and a function
    evaluating deepdual's objective at cvxpy's solution."""
    import cvxpy as cp

    X, y, beta = p.X, p.y, p.beta
    if p.name == "linear-L2":
        w = cp.Variable(X.shape[1])
        prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(X @ w - y) + beta * cp.norm(w, 2)))
        return prob, lambda: 0.5 * np.sum((X @ w.value - y) ** 2) + beta * np.linalg.norm(w.value)
    if p.name == "linear-L2-K5-orth":
        W = cp.Variable((X.shape[1], y.shape[1]))
        prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(X @ W - y) + beta * cp.normNuc(W)))
        return prob, lambda: (0.5 * np.sum((X @ W.value - y) ** 2)
                              + beta * np.sum(np.linalg.svd(W.value, compute_uv=False)))
    if p.name in ("relu-L2-rank1", "relu-L2-whitened"):
        # docs/theory.md §2.8 restricted to the activation pattern D = I.  Rank one, X = c a0^T with c >= 0:
        # the only nonzero pattern.  Whitened data: the optimal network's neurons have
        # X u_p = y_p >= 0 (module docstring of deepdual.relu.whitened.solver), so they are
        # feasible for D = I and this program's optimum is the two-layer optimum; the general
        # program would need all activation patterns of X (up to 2^n)
        v, w = cp.Variable(X.shape[1]), cp.Variable(X.shape[1])
        prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(X @ (v - w) - y) + beta * (cp.norm(v) + cp.norm(w))),
                          [X @ v >= 0, X @ w >= 0])
        return prob, lambda: (0.5 * np.sum((X @ (v.value - w.value) - y) ** 2)
                              + beta * (np.linalg.norm(v.value) + np.linalg.norm(w.value)))
    if p.name == "relu-L2-whitened-reduced":
        # whitened data: {X u : ||u|| <= 1} is the unit ball, so the two-layer ReLU problem is
        # min_{f = a - b, a, b >= 0} 1/2||f - y||^2 + beta (||a|| + ||b||) (docs/losses.md), which no
        # longer involves X; it is the two-layer problem on the data X = I_n (deepdual's side)
        a, b = cp.Variable(X.shape[0], nonneg=True), cp.Variable(X.shape[0], nonneg=True)
        prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(a - b - y) + beta * (cp.norm(a) + cp.norm(b))))
        return prob, lambda: (0.5 * np.sum((a.value - b.value - y) ** 2)
                              + beta * (np.linalg.norm(a.value) + np.linalg.norm(b.value)))
    return None


CVX_PROBLEMS = ("linear-L2", "linear-L2-K5-orth", "relu-L2-rank1", "relu-L2-whitened", "relu-L2-whitened-reduced")


def _reduced_whitened(p: Problem) -> Problem:
    """The whitened problem ``p`` on the data ``X = I_n``: the reduced program of ``docs/losses.md``
    (same labels, same beta, same optimum), solved by ``deepdual.solve`` like any other data."""
    n = p.X.shape[0]
    return Problem("relu-L2-whitened-reduced", "two-layer ReLU, whitened data, reduced program (X = I_n)",
                   np.eye(n), p.y, p.beta, 2, "relu")


def bench_cvxpy(*, quick: bool, repeat: int | None = None, progress: bool = True) -> list[dict]:
    """Each convex closed form vs cvxpy (Clarabel) on the same program, at equal objective."""
    try:
        import cvxpy as cp
    except ImportError:  # pragma: no cover
        print("  cvxpy not installed: install it with `pip install deepdual[bench]`")
        return []
    n, d = (300, 30) if quick else (2000, 200)
    repeat = repeat or (2 if quick else 3)
    rows = []
    # cvxpy writes vec(XW) = (I_K kron X) vec(W) and the nuclear norm as an SDP: at 2000 x 200
    # with K = 5 that program needs several GB and many minutes, so it runs at 500 x 50
    small = (300, 30) if quick else (500, 50)
    problems = make_problems(n, d, seed=1, which=tuple(c for c in CVX_PROBLEMS if c != "linear-L2-K5-orth"))
    problems += make_problems(*small, seed=1, which=("linear-L2-K5-orth",))
    # the reduced whitened program: deepdual on X = I_n against cvxpy on the same program, and,
    # as a second column, the full solve on the whitened n x d data (with its X X^T = I check)
    full_of: dict[str, Problem] = {}
    for p in list(problems):
        if p.name == "relu-L2-whitened":
            red = _reduced_whitened(p)
            full_of[red.name] = p
            problems.append(red)
    for p in problems:
        t, sol = best_time(p.run, repeat)
        full = None
        if p.name in full_of:
            t_full, sol_full = best_time(full_of[p.name].run, repeat)
            full = {"t_closed_full_s": t_full, "objective_full": float(sol_full.objective),
                    "full_vs_reduced_rel_diff": abs(float(sol_full.objective) - float(sol.objective))
                    / abs(float(sol.objective)), "n_full": full_of[p.name].X.shape[0],
                    "d_full": full_of[p.name].X.shape[1]}
        prob, value = _cvx_program(p)
        attempts = []
        for tol in (1e-8, 1e-10, 1e-12):
            t0 = time.perf_counter()
            try:
                prob.solve(solver=cp.CLARABEL, tol_gap_abs=tol, tol_gap_rel=tol, tol_feas=tol, max_iter=1000)
            except cp.SolverError as exc:  # pragma: no cover - report, do not hide
                attempts.append({"tol": tol, "error": str(exc)})
                continue
            t_cvx = time.perf_counter() - t0
            obj = float(value())
            rel = abs(obj - sol.objective) / abs(sol.objective)
            attempts.append({"tol": tol, "t_cvxpy_s": t_cvx, "t_solver_s": float(prob.solver_stats.solve_time or 0),
                             "objective": obj, "rel_diff": rel, "status": prob.status})
            if rel <= EQUAL_RTOL:
                break
        ok = [a for a in attempts if "rel_diff" in a]
        last = ok[-1] if ok else {}
        equal = bool(last) and last["rel_diff"] <= EQUAL_RTOL
        row = {
            "problem": p.name, "description": p.description, "n": p.X.shape[0], "d": p.X.shape[1],
            "t_closed_s": t, "objective_closed": float(sol.objective), "certified": bool(sol.certified),
            "t_cvxpy_s": last.get("t_cvxpy_s"), "t_cvxpy_solver_s": last.get("t_solver_s"),
            "objective_cvxpy": last.get("objective"), "rel_diff": last.get("rel_diff"),
            "equal_objective": equal, "clarabel_tol": last.get("tol"),
            "ratio_cvxpy_over_closed": (last["t_cvxpy_s"] / t) if last else None,
            "ratio_solver_only": (last["t_solver_s"] / t) if last else None,
            "attempts": attempts,
        }
        if full is not None:
            row.update(full)
            row["ratio_full_solve"] = (last["t_cvxpy_s"] / full["t_closed_full_s"]) if last else None
        rows.append(row)
        if progress:
            r = row["ratio_cvxpy_over_closed"]
            print(f"  cvxpy  {p.name:<20} closed {t:8.4f}s  cvxpy {last.get('t_cvxpy_s', float('nan')):8.3f}s  "
                  f"ratio {r if r is None else round(r, 1)}  rel.diff {last.get('rel_diff', float('nan')):.1e}",
                  flush=True)
    return rows


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (threadpoolctl)")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=args.threads):
        out = {"floor": bench_floor(quick=args.quick), "cvxpy": bench_cvxpy(quick=args.quick)}
    return out


if __name__ == "__main__":
    main()
