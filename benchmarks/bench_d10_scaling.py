"""How the cost of a certificate grows with d, measured to decide the issue-16 d = 10 target
(diabetes 442 × 10, β = 1, relative gap <= 1 % in 10 minutes; docs/performance.md §16,
"The d = 10 target").

Parts (each writes ``benchmarks/results/bench_d10_scaling.json``, merged by part):

* ``cg``: column generation (``solve(..., strategy="column_generation", rtol=1e-4,
  time_limit=--cg-time)``) on diabetes PCA-d, d = 2..8 (and ``--d 10``): time to certify or
  the gap at the cap; the final network's dual point is kept (``.npz``) for the next part.
* ``oracle``: the proven bound on c(v) = max_{||u||<=1} |v^T(Xu)_+| over time, for the dual
  point of the column-generation network (near-optimal where it certified) and for the dual
  point of the sampled solve of ``bench_oracle_grid.py``, with the direction-space search
  (``method="sphere"``, at every d) and the row-sign search (``method="rows"``) for
  ``--oracle-time`` s each: boxes/nodes and seconds until the bound is within 100 %, 10 %,
  3 %, 1 % and 1e-6 of the best attained value (read off the search's log, every batch).
* ``split``: the subspace-splitting bound c(v) <= sqrt(c_k(v)^2 + r_k(v)^2) (docs/convex_program.md
  §15.3) on diabetes 442 × 10: a lower estimate of its residual term r_k (cell ascent from
  random directions: the split bound can never be below it) against β, k = 1..9.
* ``net``: the network side at d = 10: the sampled convex program with many patterns
  (``solver="gram"``) and the objective it reaches, against column generation's;
* ``train``: direct training at d = 10 (PyTorch L-BFGS, wide networks, ``--train
  width:seed:iters,...``), its objective and the attained c(v) of its dual point.

One thread; run on the shared 2-core machine with the load recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import deepdual
from deepdual.losses import get_loss
from deepdual.relu.convex_program.cells import cell_ascent
from deepdual.relu.convex_program.certificate import support_spectral_bound
from deepdual.relu.convex_program.oracle import dual_constraint_bb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_oracle import datasets  # noqa: E402  (the shared instance list)

RESULTS = Path(__file__).resolve().parent / "results" / "bench_d10_scaling.json"
VDIR = Path(__file__).resolve().parent / "results" / "d10_scaling_v"
RATIOS = (2.0, 1.1, 1.03, 1.01, 1.0 + 1e-6)


def diabetes(d: int) -> tuple[np.ndarray, np.ndarray]:
    """Diabetes standardized as in ``bench_oracle.datasets``, PCA-d (d < 10) or the full data."""
    from sklearn.datasets import load_diabetes
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    if d < X.shape[1]:
        X = PCA(d, random_state=0).fit_transform(X)
    return X, y


def load_instance(name: str, d: int) -> tuple[np.ndarray, np.ndarray]:
    if name == "diabetes":
        return diabetes(d)
    for nm, X, y in datasets(False):
        if nm.startswith(name) and (f"PCA d={d}" in nm):
            return X, y
    raise ValueError(f"no instance {name} PCA d={d}")


def save(part: str, key: str, row: dict) -> None:
    RESULTS.parent.mkdir(exist_ok=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data.setdefault(part, {})[key] = row
    RESULTS.write_text(json.dumps(data, indent=1))


def part_cg(name: str, d: int, cap: float, suffix: str = "") -> dict:
    X, y = load_instance(name, d)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    sol = deepdual.solve(X, y, beta=1.0, method="convex", strategy="column_generation", time_limit=cap,
                         rng=0, progress=False, rtol=1e-4)
    t = time.perf_counter() - t0
    loss = get_loss("squared")
    v = loss.dual_point(sol.network.forward(X), y.reshape(-1, 1))[:, 0]
    VDIR.mkdir(parents=True, exist_ok=True)
    np.save(VDIR / f"{name}_{d}_cg{suffix.replace(' ', '_').replace('<=', 'le')}.npy", v)
    P, L = float(sol.objective), float(sol.lower_bound)
    hist = [list(map(float, h)) for h in sol.info.get("history", [])]
    row = {"n": int(X.shape[0]), "d": d, "time_s": t, "objective": P, "lower_bound": L,
           "rel_gap": (P - L) / P, "status": sol.info.get("status"), "rounds": sol.info.get("rounds"),
           "patterns": sol.info.get("patterns"), "history": hist,
           "load": [load0, os.getloadavg()[0]]}
    print(f"cg {name} d={d}{suffix}: {t:.1f} s gap {row['rel_gap']:.3g} status {row['status']} "
          f"obj {P:.6g} rounds {row['rounds']} load {row['load']}", flush=True)
    return row


def sampled_v(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    sol = deepdual.solve(X, y, beta=1.0, method="convex", patterns="sample", n_patterns=50, rng=0, progress=False)
    return get_loss("squared").dual_point(sol.network.forward(X), y.reshape(-1, 1))[:, 0]


def attained(X: np.ndarray, v: np.ndarray, n_starts: int = 300, seed: int = 0) -> float:
    """Best |v^T(Xu)_+| found by cell ascent from random directions (a lower estimate of c(v))."""
    rng = np.random.default_rng(seed)
    best = 0.0
    for u0 in rng.standard_normal((n_starts, X.shape[1])):
        for s in (1.0, -1.0):
            best = max(best, cell_ascent(X, s * v, u0)[0])
    return best


def part_oracle(name: str, d: int, kind: str, method: str, cap: float) -> dict:
    X, y = load_instance(name, d)
    if kind.startswith("cg"):  # "cg", or "cg_spherele8" for a run with --sphere-max-d 8
        f = VDIR / f"{name}_{d}_{kind}.npy"
        if not f.exists():
            raise SystemExit(f"run --part cg for {name} d={d} first")
        v = np.load(f)
    else:
        v = sampled_v(X, y)
    log: list = []
    load0 = os.getloadavg()[0]
    r = dual_constraint_bb(X, v, time_limit=cap, rtol=1e-6, method=method,
                           log=lambda t, nodes, opn, lo, up: log.append((t, nodes, opn, lo, up)), log_every=0.0)
    c_att = max(float(r.lower), attained(X, v))
    reach = {}
    for q in RATIOS:
        hit = next((e for e in log if e[4] <= q * c_att), None)
        reach[f"{q:.6g}"] = None if hit is None else {"time_s": hit[0], "nodes": hit[1]}
    row = {"n": int(X.shape[0]), "d": d, "kind": kind, "method": method, "cap_s": cap,
           "c_attained": c_att, "c_upper": float(r.upper), "exact": bool(r.exact), "nodes": int(r.nodes),
           "time_s": float(r.time_s), "status": r.status, "spectral": float(support_spectral_bound(X, v)),
           "reach": reach, "load": [load0, os.getloadavg()[0]],
           "log": [list(map(float, e)) for e in log[:: max(1, len(log) // 200)]]}
    print(f"oracle {name} d={d} {kind} {method}: c in [{c_att:.5g}, {r.upper:.5g}] exact {r.exact} "
          f"nodes {r.nodes} {r.time_s:.1f} s reach "
          + " ".join(f"{k}:{'-' if v_ is None else (v_['nodes'], round(v_['time_s'], 2))}" for k, v_ in reach.items())
          + f" load {row['load']}", flush=True)
    return row


def part_split(v_file: str | None, n_starts: int = 400) -> dict:
    """Subspace splitting on diabetes 442 × 10: X = X_k + X_perp (k leading principal directions).

    c(v) <= sqrt(c_k^2 + r_k^2) with c_k = c(v) of X_k restricted to its k-dim row space and
    r_k = max_{||u||<=1} sum_i |v_i| (sigma_i x_perp_i^T u)_+, sigma_i = sign v_i
    (docs/convex_program.md §15.3).  The split bound is >= r_k >= any value of r_k's
    objective, so a lower estimate of r_k (cell ascent, weights |v| on the rows sigma_i x_perp_i)
    above beta shows that the split bound cannot certify.
    """
    X, y = diabetes(10)
    v = np.load(v_file) if v_file else sampled_v(X, y)
    Xc = X - X.mean(axis=0)
    _, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    out = {"singular_values": s.tolist(), "v_norm": float(np.linalg.norm(v)),
           "c_attained_full": attained(X, v, n_starts), "rows": []}
    sig = np.where(v >= 0, 1.0, -1.0)
    for k in range(1, 10):
        Xp = X @ Vt[k:].T                    # coordinates of X_perp in its (10 - k)-dim basis
        r_att = attained(sig[:, None] * Xp, np.abs(v), n_starts)
        spec = float(np.linalg.norm(v) * np.linalg.norm(Xp, 2))
        out["rows"].append({"k": k, "r_attained": r_att, "r_spectral": spec})
        print(f"split k={k}: residual r_k >= {r_att:.4g} (spectral {spec:.4g}); beta = 1", flush=True)
    return out


def part_net(cap: float, n_patterns: int) -> dict:
    X, y = diabetes(10)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    sol = deepdual.solve(X, y, beta=1.0, method="convex", patterns="sample", n_patterns=n_patterns, rng=0,
                         progress=False, time_limit=cap)
    t = time.perf_counter() - t0
    v = get_loss("squared").dual_point(sol.network.forward(X), y.reshape(-1, 1))[:, 0]
    VDIR.mkdir(parents=True, exist_ok=True)
    np.save(VDIR / f"diabetes_10_sampled{n_patterns}.npy", v)
    row = {"n_patterns": n_patterns, "time_s": t, "objective": float(sol.objective),
           "lower_bound": float(sol.lower_bound), "load": [load0, os.getloadavg()[0]],
           "solver": str(sol.info.get("solver")), "neurons": int(sol.info.get("neurons", -1))}
    print(f"net sampled {n_patterns}: obj {row['objective']:.6g} in {t:.1f} s load {row['load']}", flush=True)
    return row


def part_train(width: int, seed: int, iters: int) -> dict:
    """Direct training at d = 10: PyTorch float64 L-BFGS (``tests/restarts.train_once``), one run;
    its objective, the attained c(v) of its dual point and the c_cert for a 1 % gap."""
    from deepdual.relu.convex_program.column_generation import certifying_constraint

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import torch
    from restarts import train_once

    torch.set_num_threads(1)
    X, y = diabetes(10)
    Y = y.reshape(-1, 1)
    loss = get_loss("squared")
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    net = train_once(X, y, beta=1.0, depth=2, width=width, seed=seed, iters=iters)
    P = float(deepdual.objective(net, X, y, beta=1.0))
    t = time.perf_counter() - t0
    V = loss.dual_point(np.asarray(net.forward(X)).reshape(-1, 1), Y)
    VDIR.mkdir(parents=True, exist_ok=True)
    np.save(VDIR / f"diabetes_10_lbfgs{width}_{seed}.npy", V[:, 0])
    ca = attained(X, V[:, 0], 400)
    row = {"width": width, "seed": seed, "iters": iters, "objective": P, "time_s": t, "c_attained": ca,
           "c_cert_1pct": certifying_constraint(loss, V, Y, 1.0, 0.99 * P),
           "D1": float(loss.best_scale(V, Y, 1.0)[1]),
           "gap_at_c_attained": (P - float(loss.best_scale(V, Y, 1.0 / ca)[1])) / P,
           "load": [load0, os.getloadavg()[0]]}
    print("train", row, flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", required=True, choices=("cg", "oracle", "split", "net", "train"))
    ap.add_argument("--name", default="diabetes")
    ap.add_argument("--d", default="2,3,4,5,6,7,8")
    ap.add_argument("--cg-time", type=float, default=120.0)
    ap.add_argument("--oracle-time", type=float, default=60.0)
    ap.add_argument("--kind", default="cg,sampled")
    ap.add_argument("--method", default="sphere,rows")
    ap.add_argument("--v-file", default=None)
    ap.add_argument("--n-patterns", default="1000")
    ap.add_argument("--train", default="1000:0:6000", help="width:seed:iters,... for --part train")
    ap.add_argument("--sphere-max-d", type=int, default=None,
                    help="column generation's oracle uses the direction-space search up to this d (default: "
                         "oracle.SPHERE_MAX_D = 4); the results are keyed with a 'sphere<=D' suffix")
    args = ap.parse_args()
    suffix = ""
    if args.sphere_max_d is not None:
        from deepdual.relu.convex_program import oracle as _oracle_module
        _oracle_module.SPHERE_MAX_D = args.sphere_max_d
        suffix = f" sphere<={args.sphere_max_d}"
    dims = [int(s) for s in args.d.split(",")]
    if args.part == "cg":
        for d in dims:
            save("cg", f"{args.name} d={d}{suffix}", part_cg(args.name, d, args.cg_time, suffix))
    elif args.part == "oracle":
        for d in dims:
            for kind in args.kind.split(","):
                for m in args.method.split(","):
                    row = part_oracle(args.name, d, kind, m, args.oracle_time)
                    save("oracle", f"{args.name} d={d} {kind} {m}", row)
    elif args.part == "split":
        save("split", "diabetes 442x10 " + (Path(args.v_file).stem if args.v_file else "sampled"),
             part_split(args.v_file))
    elif args.part == "train":
        for spec in args.train.split(","):
            w, sd, it = (int(a) for a in spec.split(":"))
            save("train", f"lbfgs width {w} seed {sd} iters {it}", part_train(w, sd, it))
    else:
        for m in args.n_patterns.split(","):
            save("net", f"sampled {m}", part_net(args.cg_time, int(m)))


if __name__ == "__main__":
    main()
