"""Benchmark: the two-layer ReLU convex program (docs/theory.md §2.8) in deepdual vs cvxpy and
pyscnn (the reference implementation of Mishkin, Sahiner & Pilanci, 2022), when they
can be imported.

Every solver gets the same data and the same activation patterns (all patterns when
they can be enumerated, else sampled sets; pyscnn receives gate vectors ``G`` with
``1[XG > 0]`` equal to our patterns, checked).  Each result is turned into a network
and scored by ``deepdual.objective`` -- the one objective of the library -- and
certified by ``deepdual.certify`` (the proven gap to the optimum over *all* networks).
Reported per problem: objectives, relative differences, wall times and the time ratio
``t_reference / t_deepdual`` measured in the same run, and whether each network is
certified.  Besides deepdual at full accuracy (``rtol=1e-6``), the comparison *at equal
objective*: deepdual's time to a network whose objective is at most pyscnn's (deepdual
stopped at pyscnn's achieved relative excess, tightened 10x until reached), and at most
cvxpy's plus 1e-7 relative (see :func:`time_to_target`).

On sampled pattern sets every solver solves the *sampled program* (deepdual's
primal-dual method is feasible, so its network's objective is that program's
objective); the table reports the program objective reached by each solver
(``*_program_objective``; pyscnn's is its convex objective times ``n``, with its small
cone violation).  deepdual gets the sampled patterns with their sampling directions
(``patterns=(pats, dirs)``), as pyscnn gets them as gate vectors.  ``--old`` also times
the previous default, the primal barrier method, on the complete sets (Newton steps).

Run::

    python benchmarks/bench_convex.py [--quick] [--old] [--out benchmarks/results]

pyscnn is not a deepdual dependency (no extra installs it): a plain
``pip install pyscnn`` replaces a CPU torch by a CUDA build, so install it with
``pip install --no-deps pyscnn linalg-backends opt_einsum``.

Results go to ``benchmarks/results/bench_convex.json`` (``bench_convex-quick.json``
with ``--quick``).  BLAS runs single-threaded
(threadpoolctl, when installed) so that timings are comparable.  Not a test: nothing
here asserts.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

import deepdual
from deepdual.patterns import enumerate_patterns, sample_patterns
from deepdual.relu.convex_program.solver import network_from_atoms

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tests/references.py

HERE = Path(__file__).resolve().parent
#: pyscnn's AL (float64, default settings) is run only up to this many patterns: it
#: needed 83-191 s on the 1562-pattern problem of this suite (three runs)
PYSCNN_MAX_PATTERNS = 2000


def problems(quick: bool):
    """(name, X, y, beta, loss, patterns option) tuples."""
    rng = np.random.default_rng(0)
    out = []
    sizes = [(10, 2, 0.1), (20, 3, 0.5), (40, 3, 0.2)] if quick else \
        [(10, 2, 0.1), (20, 3, 0.5), (40, 3, 0.2), (60, 3, 0.2), (30, 4, 0.5)]
    for n, d, beta in sizes:
        X = rng.standard_normal((n, d))
        y = np.abs(X[:, 0]) - X[:, 1] + 0.1 * rng.standard_normal(n)
        out.append((f"squared n={n} d={d} all patterns", X, y, beta, "squared", "exact"))
    X = rng.standard_normal((20, 3))
    y = np.where(X[:, 0] * X[:, 1] > 0, 1.0, -1.0)
    out.append(("logistic n=20 d=3 all patterns", X, y, 0.2, "logistic", "exact"))
    sampled = [(100, 10, 50)] if quick else [(200, 20, 50), (500, 10, 100), (1000, 20, 50)]
    for n, d, P in sampled:
        X = rng.standard_normal((n, d))
        y = np.maximum(X[:, 0], 0) - np.maximum(X[:, 1], 0) + 0.1 * rng.standard_normal(n)
        out.append((f"squared n={n} d={d} {P} sampled patterns", X, y, 1.0, "squared",
                    sample_patterns(X, P, np.random.default_rng(1), return_directions=True)))
    return out


def time_to_target(X, y, beta, loss, patterns, target: float, tols, done=()):
    """Fastest deepdual run whose network objective is at most ``target``.

    deepdual is run with each stopping tolerance ``tol`` of ``tols`` in turn (loosest
    first; the option ``tol`` is the relative duality gap over the pattern set at which
    the solver stops) until one reaches the target.  ``done`` holds (tol, time,
    objective) of runs already made (the full-accuracy run), which count too.  Returns a
    dict with the time of the fastest run that reached the target (``None`` if none
    did) and every run."""
    runs = [{"tol": float(t), "time_s": float(s), "objective": float(o)} for t, s, o in done]
    for tol in tols:
        if any(r["objective"] <= target for r in runs[len(done):]):
            break
        t0 = time.perf_counter()
        sol = deepdual.solve(X, y, beta=beta, loss=loss, method="convex", patterns=patterns, tol=float(tol),
                             polish=False)  # the program itself (no local descent)
        runs.append({"tol": float(tol), "time_s": time.perf_counter() - t0,
                     "objective": float(deepdual.objective(sol.network, X, y, beta=beta, loss=loss))})
    hit = [r["time_s"] for r in runs if r["objective"] <= target]
    return {"time_s": min(hit) if hit else None, "target": float(target), "runs": runs}


def network_from_groups(V: np.ndarray, W: np.ndarray, *, tol: float = 0.0) -> deepdual.Network:
    """Two-layer network of the program's solution (v_i, w_i): u = v/sqrt|v|, alpha = +-sqrt|v|."""
    cols, outs = [], []
    for M, sign in ((V, 1.0), (W, -1.0)):
        nrm = np.linalg.norm(M, axis=0)
        for i in np.flatnonzero(nrm > tol):
            cols.append(M[:, i] / np.sqrt(nrm[i]))
            outs.append(sign * np.sqrt(nrm[i]))
    U = np.stack(cols, axis=1) if cols else np.zeros((V.shape[0], 0))
    return network_from_atoms(U, np.array(outs).reshape(-1, 1), bias=False, scalar=True)


def run_cvxpy(X, y, beta, loss, pats):
    import cvxpy as cp
    from references import convex_program_cvxpy  # tests/references.py: the tests' oracle

    prob, V, W = convex_program_cvxpy(X, y, beta, loss, pats)
    t0 = time.perf_counter()
    prob.solve(solver=cp.CLARABEL)
    t = time.perf_counter() - t0
    return network_from_groups(V.value, W.value), t, {"status": prob.status, "solver_value": float(prob.value)}


def pyscnn_gates(X: np.ndarray, pats: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Gate vectors G (d, P) for pyscnn with ``1[X G > 0] == pats.T`` exactly.

    pyscnn forms its patterns as ``1[X g > 0]`` (strict) where deepdual writes
    ``1[X g >= 0]``; the directions returned with our patterns are strictly inside their
    cells (no data point on a gate's hyperplane), so both rules give the same set.
    Raises if that is not so (the comparison would be on different programs)."""
    G = np.asarray(dirs, dtype=float).T
    if not np.array_equal((X @ G > 0).T, np.asarray(pats, dtype=bool)):
        raise ValueError("pattern directions do not reproduce the patterns under pyscnn's rule")
    return G


def run_pyscnn(X, y, beta, loss, pats, dirs, **al_options):
    r"""pyscnn's augmented-Lagrangian solver (Mishkin, Sahiner & Pilanci 2022) on our patterns.

    pyscnn (``pip install pyscnn``; imported as ``scnn``) minimizes the *mean*
    objective :math:`\frac1{2n}\|\sum_iD_iX(v_i - w_i) - y\|^2 + \lambda\sum_i(\|v_i\| +
    \|w_i\|)` under the same cone constraints; multiplied by ``n`` it is our program with
    :math:`\beta = n\lambda`, so ``lam = beta / n``.  (The benchmark checks this by scoring
    pyscnn's result with ``deepdual.objective``.)  It is called with
    ``unitize_data=False`` (unitizing the columns of ``X`` would change the penalty, a
    different problem), ``dtype="float64"`` and its default AL settings (tolerance
    1e-6 on the squared KKT residual of the mean objective, unless ``al_options``).
    pyscnn's public API has the squared loss only.

    Installation note: pyscnn 0.0.10 was installed with
    ``pip install --no-deps pyscnn linalg-backends opt_einsum``; a plain
    ``pip install pyscnn`` pulls a CUDA build of torch that would replace the CPU one.
    """
    from scnn.metrics import Metrics
    from scnn.models import ConvexReLU
    from scnn.optimize import optimize_model
    from scnn.regularizers import NeuronGL1
    from scnn.solvers import AL

    if loss != "squared":
        raise NotImplementedError("pyscnn's public API has the squared loss only")
    n = X.shape[0]
    model = ConvexReLU(pyscnn_gates(X, pats, dirs), c=1)
    t0 = time.perf_counter()
    model, _ = optimize_model(model, AL(model, **al_options), Metrics(), X, y.reshape(-1, 1),
                              regularizer=NeuronGL1(beta / n), return_convex=True, unitize_data=False,
                              dtype="float64", verbose=False)
    t = time.perf_counter() - t0
    v, w = (np.asarray(a) for a in model.parameters)  # (1, P, d) each
    V, W = v[0].T, w[0].T
    # pyscnn's own (mean) objective of its convex solution, times n: our convex objective
    Dm = np.asarray(pats, dtype=float).T
    F = np.sum(Dm * (X @ (V - W)), axis=1)
    convex = 0.5 * float(np.sum((F - y) ** 2)) + beta * float(
        np.linalg.norm(V, axis=0).sum() + np.linalg.norm(W, axis=0).sum())
    S = 2 * Dm - 1
    viol = float(max(np.max(-S * (X @ V)), np.max(-S * (X @ W)), 0.0))
    return network_from_groups(V, W), t, {"convex_objective_times_n": convex, "max_cone_violation": viol}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller problems")
    parser.add_argument("--out", default=str(HERE / "results"), help="output folder")
    parser.add_argument("--old", action="store_true",
                        help="also time the previous default (primal barrier method) on complete sets")
    args = parser.parse_args(argv)
    try:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(1)
    except ImportError:  # pragma: no cover
        limiter = None

    pyscnn_status = "not tried"
    try:
        import scnn.optimize  # noqa: F401

        pyscnn_status = "importable"
    except Exception as exc:  # pyscnn pins torch/numpy APIs and needs linalg_backends
        pyscnn_status = f"skipped: import failed ({type(exc).__name__}: {exc})"

    import os

    load_start = os.getloadavg()
    rows = []
    for name, X, y, beta, loss, pat_opt in problems(args.quick):
        if isinstance(pat_opt, str):
            pats, dirs = enumerate_patterns(X, return_directions=True)
        else:
            pats, dirs = pat_opt
        row = {"problem": name, "n": int(X.shape[0]), "d": int(X.shape[1]), "beta": beta, "loss": loss,
               "patterns": int(len(pats))}
        # sampled sets: deepdual gets the patterns with their sampling directions (as
        # pyscnn gets them as gate vectors); it then skips one small LP per pattern
        pat_arg = pat_opt if isinstance(pat_opt, str) else (pats, dirs)
        t0 = time.perf_counter()
        sol = deepdual.solve(X, y, beta=beta, loss=loss, method="convex", patterns=pat_arg, polish=False)
        row["deepdual_time_s"] = time.perf_counter() - t0
        row["deepdual_objective"] = float(deepdual.objective(sol.network, X, y, beta=beta, loss=loss))
        row["deepdual_certified"] = bool(sol.certified)
        row["deepdual_relative_gap"] = float(sol.relative_gap)
        row["deepdual_solver"] = sol.info["solver"]
        row["deepdual_iterations"] = int(sol.info["iterations"])
        # the convex program over the given patterns at deepdual's solution (for sampled
        # sets: the sampled program's objective; equal to the network's objective)
        row["deepdual_program_objective"] = float(sol.info["convex_objective"])
        row["deepdual_program_gap"] = float((sol.info["restricted_objective"] - sol.info["restricted_lower_bound"])
                                            / abs(sol.info["restricted_objective"]))
        full_run = [(0.5 * 1e-6, row["deepdual_time_s"], row["deepdual_objective"])]  # default tol = rtol/2
        if args.old and isinstance(pat_opt, str):
            # the previous default: the primal barrier method (Newton steps, time)
            t0 = time.perf_counter()
            old = deepdual.solve(X, y, beta=beta, loss=loss, method="convex", patterns=pat_arg, solver="barrier",
                                 polish=False)
            row["barrier_time_s"] = time.perf_counter() - t0
            row["barrier_iterations"] = int(old.info["iterations"])
            row["barrier_objective"] = float(deepdual.objective(old.network, X, y, beta=beta, loss=loss))
        try:
            net, t, extra = run_cvxpy(X, y, beta, loss, pats)
            obj = float(deepdual.objective(net, X, y, beta=beta, loss=loss))
            cert = deepdual.certify(net, X, y, beta=beta, loss=loss)
            row.update(cvxpy_time_s=t, cvxpy_objective=obj, cvxpy_certified=bool(cert.certified),
                       cvxpy_program_objective=extra["solver_value"],
                       cvxpy_relative_gap=float(cert.relative_gap), cvxpy_status=extra["status"],
                       time_ratio_cvxpy_over_deepdual=t / row["deepdual_time_s"],
                       objective_rel_diff_deepdual_minus_cvxpy=(row["deepdual_objective"] - obj) / abs(obj))
            # equal objective: deepdual's time to a network within 1e-7 of cvxpy's objective
            # (tighter runs only when the full-accuracy run did not reach it: they cannot be faster)
            target = obj + 1e-7 * abs(obj)
            tt = time_to_target(X, y, beta, loss, pat_arg, target,
                                [] if row["deepdual_objective"] <= target else [1e-7, 1e-8], full_run)
            row["deepdual_time_to_cvxpy_s"] = tt["time_s"]
            row["deepdual_runs_to_cvxpy"] = tt["runs"]
            if tt["time_s"]:
                row["time_ratio_cvxpy_over_deepdual_equal_objective"] = t / tt["time_s"]
        except Exception as exc:  # cvxpy missing or failing: record it
            row["cvxpy_error"] = f"{type(exc).__name__}: {exc}"
        if pyscnn_status == "importable" and len(pats) > PYSCNN_MAX_PATTERNS:
            row["pyscnn"] = f"skipped: {len(pats)} patterns > {PYSCNN_MAX_PATTERNS} (pyscnn needs minutes at 1562)"
        elif pyscnn_status == "importable":
            try:
                net, t, extra = run_pyscnn(X, y, beta, loss, pats, dirs)
                obj = float(deepdual.objective(net, X, y, beta=beta, loss=loss))
                cert = deepdual.certify(net, X, y, beta=beta, loss=loss)
                row.update(pyscnn_time_s=t, pyscnn_objective=obj,
                           pyscnn_program_objective=extra["convex_objective_times_n"],
                           pyscnn_convex_objective=extra["convex_objective_times_n"],
                           pyscnn_max_cone_violation=extra["max_cone_violation"],
                           pyscnn_certified=bool(cert.certified), pyscnn_relative_gap=float(cert.relative_gap),
                           time_ratio_pyscnn_over_deepdual=t / row["deepdual_time_s"],
                           objective_rel_diff_pyscnn_minus_deepdual=(obj - row["deepdual_objective"])
                           / abs(row["deepdual_objective"]))
                # equal objective: deepdual stopped at pyscnn's achieved relative excess over
                # deepdual's full-accuracy objective (then 10x, 100x tighter if not reached)
                excess = max((obj - row["deepdual_objective"]) / abs(obj), 1e-9)
                tt = time_to_target(X, y, beta, loss, pat_arg, obj, [excess, 0.1 * excess, 0.01 * excess],
                                    full_run)
                row["deepdual_time_to_pyscnn_s"] = tt["time_s"]
                row["deepdual_runs_to_pyscnn"] = tt["runs"]
                if tt["time_s"]:
                    row["time_ratio_pyscnn_over_deepdual_equal_objective"] = t / tt["time_s"]
            except Exception as exc:
                row["pyscnn_error"] = f"{type(exc).__name__}: {exc}"
        else:
            row["pyscnn"] = pyscnn_status
        rows.append(row)

    result = {
        "benchmark": "two-layer ReLU convex program: deepdual vs cvxpy (Clarabel) vs pyscnn (AL)",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "blas_threads": 1 if limiter is not None else "default",
        "pyscnn": pyscnn_status,
        "load_average_start_end": [list(load_start), list(os.getloadavg())],
        "rows": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / ("bench_convex-quick.json" if args.quick else "bench_convex.json")
    path.write_text(json.dumps(result, indent=2))

    head = f"{'problem':42s} {'P':>5s} {'dd obj':>12s} {'cvx-dd':>9s} {'scnn-dd':>9s} " \
           f"{'t_dd':>7s} {'t_cvx':>7s} {'t_scnn':>7s} {'cvx/dd':>7s} {'scnn/dd':>7s} " \
           f"{'t_dd=cvx':>8s} {'t_dd=scnn':>9s} {'cvx/dd=':>7s} {'scnn/dd=':>8s} {'cert dd/cvx/scnn':>16s}"
    print(head)
    print("-" * len(head))
    nan = float("nan")
    for r in rows:
        cvx_diff = -r.get("objective_rel_diff_deepdual_minus_cvxpy", nan)
        print(f"{r['problem']:42s} {r['patterns']:5d} {r['deepdual_objective']:12.8g} "
              f"{cvx_diff:9.1e} {r.get('objective_rel_diff_pyscnn_minus_deepdual', nan):9.1e} "
              f"{r['deepdual_time_s']:7.2f} {r.get('cvxpy_time_s', nan):7.2f} {r.get('pyscnn_time_s', nan):7.2f} "
              f"{r.get('time_ratio_cvxpy_over_deepdual', nan):7.2f} "
              f"{r.get('time_ratio_pyscnn_over_deepdual', nan):7.2f} "
              f"{r.get('deepdual_time_to_cvxpy_s') or nan:8.2f} {r.get('deepdual_time_to_pyscnn_s') or nan:9.2f} "
              f"{r.get('time_ratio_cvxpy_over_deepdual_equal_objective', nan):7.2f} "
              f"{r.get('time_ratio_pyscnn_over_deepdual_equal_objective', nan):8.2f} "
              f"{str(r['deepdual_certified'])[0]}/{str(r.get('cvxpy_certified', '-'))[0]}/"
              f"{str(r.get('pyscnn_certified', '-'))[0]:>12s}")
    print()
    print(f"{'problem':42s} {'prog dd':>12s} {'prog cvx':>12s} {'prog scnn':>12s} {'dd steps':>8s} "
          f"{'old steps':>9s} {'t_old':>7s}")
    for r in rows:
        print(f"{r['problem']:42s} {r['deepdual_program_objective']:12.8g} "
              f"{r.get('cvxpy_program_objective', nan):12.8g} {r.get('pyscnn_program_objective', nan):12.8g} "
              f"{r['deepdual_iterations']:8d} {r.get('barrier_iterations', -1):9d} {r.get('barrier_time_s', nan):7.2f}")
    print(f"load average start / end: {load_start} / {os.getloadavg()}")
    print(f"pyscnn: {pyscnn_status}")
    print(f"written: {path}")
    return result


if __name__ == "__main__":
    main()
