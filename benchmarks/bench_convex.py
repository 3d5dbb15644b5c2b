"""Benchmark: the two-layer ReLU convex program (SPEC 2.8) in deepdual vs cvxpy (and
pyscnn when it can be imported).

Every solver gets the same data and the same activation patterns (all patterns when
they can be enumerated, else one sampled set).  Each result is turned into a network
and scored by ``deepdual.objective`` -- the one objective of the library -- and
certified by ``deepdual.certify`` (the proven gap to the optimum over *all* networks).
Reported per problem: objectives, relative differences, wall times and the time ratio
``t_reference / t_deepdual`` measured in the same run, and whether each network is
certified.

Run::

    python benchmarks/bench_convex.py [--quick] [--out benchmarks/results]

Results go to ``benchmarks/results/bench_convex.json`` (``bench_convex-quick.json``
with ``--quick``).  BLAS runs single-threaded
(threadpoolctl, when installed) so that timings are comparable.  Not a test: nothing
here asserts.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

import deepdual
from deepdual.patterns import enumerate_patterns, sample_patterns
from deepdual.solvers.relu_convex import network_from_atoms

HERE = Path(__file__).resolve().parent


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
    n, d = (100, 10) if quick else (200, 20)
    X = rng.standard_normal((n, d))
    y = np.maximum(X[:, 0], 0) - np.maximum(X[:, 1], 0) + 0.1 * rng.standard_normal(n)
    out.append((f"squared n={n} d={d} 50 sampled patterns", X, y, 1.0, "squared",
                sample_patterns(X, 50, np.random.default_rng(1), return_directions=True)))
    return out


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

    Dm = pats.astype(float).T
    n, d = X.shape
    P = Dm.shape[1]
    V, W = cp.Variable((d, P)), cp.Variable((d, P))
    XV, XW = X @ V, X @ W
    F = cp.sum(cp.multiply(Dm, XV - XW), axis=1)
    S = 2 * Dm - 1
    cons = [cp.multiply(S, XV) >= 0, cp.multiply(S, XW) >= 0]
    reg = beta * (cp.sum(cp.norm(V, 2, axis=0)) + cp.sum(cp.norm(W, 2, axis=0)))
    data = 0.5 * cp.sum_squares(F - y) if loss == "squared" else cp.sum(cp.logistic(-cp.multiply(y, F)))
    prob = cp.Problem(cp.Minimize(data + reg), cons)
    t0 = time.perf_counter()
    prob.solve(solver=cp.CLARABEL)
    t = time.perf_counter() - t0
    return network_from_groups(V.value, W.value), t, {"status": prob.status, "solver_value": float(prob.value)}


def run_pyscnn(X, y, beta, loss, dirs):
    """pyscnn's augmented-Lagrangian solver (Mishkin et al. 2022) on the same patterns.

    pyscnn takes gate vectors (our pattern directions) and a *mean* squared loss
    :math:`\frac1{2n}\|F - y\|^2 + \lambda\sum(\|v\|+\|w\|)`, i.e. ``lam = beta / n`` here.
    Written against pyscnn's documented object-oriented API; it could not be run in
    the environment where this benchmark was written (pyscnn's dependencies
    ``linalg_backends``/``opt_einsum`` were not installable there), so its output is
    only recorded when the import works.
    """
    from scnn.metrics import Metrics
    from scnn.models import ConvexReLU
    from scnn.optimize import optimize_model
    from scnn.regularizers import NeuronGL1
    from scnn.solvers import AL

    if loss != "squared":
        raise NotImplementedError("pyscnn comparison set up for the squared loss only")
    n = X.shape[0]
    model = ConvexReLU(np.asarray(dirs).T, c=1)
    t0 = time.perf_counter()
    model, _ = optimize_model(model, AL(model), Metrics(), X, y.reshape(-1, 1),
                              regularizer=NeuronGL1(beta / n), verbose=False)
    t = time.perf_counter() - t0
    v, w = model.parameters
    V, W = np.asarray(v)[0].T, np.asarray(w)[0].T
    return network_from_groups(V, W), t


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller problems")
    parser.add_argument("--out", default=str(HERE / "results"), help="output folder")
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

    rows = []
    for name, X, y, beta, loss, pat_opt in problems(args.quick):
        if isinstance(pat_opt, str):
            pats, dirs = enumerate_patterns(X, return_directions=True)
        else:
            pats, dirs = pat_opt
        row = {"problem": name, "n": int(X.shape[0]), "d": int(X.shape[1]), "beta": beta, "loss": loss,
               "patterns": int(len(pats))}
        t0 = time.perf_counter()
        sol = deepdual.solve(X, y, beta=beta, loss=loss, method="convex",
                             patterns=pat_opt if isinstance(pat_opt, str) else pats)
        row["deepdual_time_s"] = time.perf_counter() - t0
        row["deepdual_objective"] = float(deepdual.objective(sol.network, X, y, beta=beta, loss=loss))
        row["deepdual_certified"] = bool(sol.certified)
        row["deepdual_relative_gap"] = float(sol.relative_gap)
        row["deepdual_solver"] = sol.info["solver"]
        try:
            net, t, extra = run_cvxpy(X, y, beta, loss, pats)
            obj = float(deepdual.objective(net, X, y, beta=beta, loss=loss))
            cert = deepdual.certify(net, X, y, beta=beta, loss=loss)
            row.update(cvxpy_time_s=t, cvxpy_objective=obj, cvxpy_certified=bool(cert.certified),
                       cvxpy_relative_gap=float(cert.relative_gap), cvxpy_status=extra["status"],
                       time_ratio_cvxpy_over_deepdual=t / row["deepdual_time_s"],
                       objective_rel_diff_deepdual_minus_cvxpy=(row["deepdual_objective"] - obj) / abs(obj))
        except Exception as exc:  # cvxpy missing or failing: record it
            row["cvxpy_error"] = f"{type(exc).__name__}: {exc}"
        if pyscnn_status == "importable":
            try:
                net, t = run_pyscnn(X, y, beta, loss, dirs)
                obj = float(deepdual.objective(net, X, y, beta=beta, loss=loss))
                row.update(pyscnn_time_s=t, pyscnn_objective=obj,
                           time_ratio_pyscnn_over_deepdual=t / row["deepdual_time_s"],
                           pyscnn_certified=bool(deepdual.certify(net, X, y, beta=beta, loss=loss).certified))
            except Exception as exc:
                row["pyscnn_error"] = f"{type(exc).__name__}: {exc}"
        else:
            row["pyscnn"] = pyscnn_status
        rows.append(row)

    result = {
        "benchmark": "two-layer ReLU convex program: deepdual vs cvxpy (Clarabel)",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "blas_threads": 1 if limiter is not None else "default",
        "pyscnn": pyscnn_status,
        "rows": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / ("bench_convex-quick.json" if args.quick else "bench_convex.json")
    path.write_text(json.dumps(result, indent=2))

    head = f"{'problem':42s} {'P':>5s} {'dd obj':>12s} {'cvx obj':>12s} {'rel diff':>9s} " \
           f"{'t_dd':>7s} {'t_cvx':>7s} {'t_cvx/t_dd':>10s} {'cert dd/cvx':>11s}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['problem']:42s} {r['patterns']:5d} {r['deepdual_objective']:12.8g} "
              f"{r.get('cvxpy_objective', float('nan')):12.8g} "
              f"{r.get('objective_rel_diff_deepdual_minus_cvxpy', float('nan')):9.1e} "
              f"{r['deepdual_time_s']:7.2f} {r.get('cvxpy_time_s', float('nan')):7.2f} "
              f"{r.get('time_ratio_cvxpy_over_deepdual', float('nan')):10.2f} "
              f"{str(r['deepdual_certified'])[0]}/{str(r.get('cvxpy_certified', '-'))[0]:>9s}")
    print(f"pyscnn: {pyscnn_status}")
    print(f"written: {path}")
    return result


if __name__ == "__main__":
    main()
