"""Gap vs time of the certificate on every instance listed in issue 16 (docs/performance.md §16).

For each data set of ``bench_oracle.datasets`` (scikit-learn's diabetes, breast cancer, wine,
digits, standardized; their PCA projections to d = 2, 3, 4, 6, 8, 10, 16 below the data's d;
the planted instances) the dual point ``v`` is the residual of the same sampled
``deepdual.solve`` as ``bench_oracle.py`` (``patterns="sample", n_patterns=50, rng=0``,
β = 1, squared loss).  Its proven relative gap :math:`(P - D(c))/P`, with
:math:`D(c)` the dual value of the best scaling of ``v`` under a bound ``c`` on
:math:`c(v) = \\max_{\\|u\\|\\le1}|v^T(Xu)_+|` (docs/convex_program.md §4), is recorded as a
function of time for

* today's bound: the spectral bound on c(v) (one number, milliseconds);
* the oracle (``dual_constraint_bb``, ``method="auto"``: direction-space search for
  d <= 4, row-sign search above), run ONCE with ``--time`` seconds; the anytime trace is
  read off its ``history`` (every change of its proven bound, with the time), i.e. the
  bound it held at each checkpoint of ``--checkpoints`` — not repeated calls;
* SCIP on the generic big-M model of ``bench_oracle.scip_bound`` (same model), one run per
  sign with ``--time``/2 seconds each; an event handler records SCIP's proven dual bound
  after every LP and node, and the bound for a budget t is the larger of the two signs'
  bounds at t/2 (the budget split over the signs as in ``bench_oracle.py``).  Model
  building time counts.

Instances run sequentially, smallest n·d first.  Results:
``benchmarks/results/bench_oracle_grid.json`` (written after each instance), a markdown
table, and with ``--figure`` the gap-vs-time figure ``docs/oracle_gap_time.png``.

Usage: ``python benchmarks/bench_oracle_grid.py [--time 30] [--only NAME,...] [--no-scip]``;
``--figure-only`` redraws the figure from the JSON.  ``--target-d10 600`` runs the issue's
d = 10 target instead (diabetes 442 × 10 by column generation for 600 s, its per-round gap and the
decomposition of the final gap; ``benchmarks/results/bench_oracle_grid_diabetes_cg.json``).
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
from deepdual.relu.convex_program.certificate import support_spectral_bound
from deepdual.relu.convex_program.oracle import dual_constraint_bb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_oracle import bigm_model, datasets  # noqa: E402  (engineer C's instance list, shared)

SCIP_START = "fork"  # "spawn" (a fresh interpreter) crashed on the same digits rows: SCIP's own fault
CHECKPOINTS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
RESULTS = Path(__file__).resolve().parent / "results" / "bench_oracle_grid.json"
FIGURE = Path(__file__).resolve().parents[1] / "docs" / "oracle_gap_time.png"


def bound_at(trace: list[tuple[float, float]], t: float) -> float | None:
    """The proven bound held at time ``t``: the last ``(time, bound)`` entry with time <= t."""
    held = [b for (s, b) in trace if s <= t]
    return held[-1] if held else None


def scip_trace(X: np.ndarray, v: np.ndarray, time_limit: float) -> dict | None:
    """SCIP's proven bound on ``max_{||u||<=1} s v^T(Xu)_+`` over time, for s = +1 and -1.

    One forked child process per sign runs :func:`scip_trace_sign` with ``time_limit / 2``
    seconds and streams every change of (dual bound, best value) to this process as it
    happens: pyscipopt died with a heap error (``free(): invalid size``) on several of the
    instances when run here with the event handler, and a crash then costs only the rest
    of that sign's trace (flagged ``crashed``; the bounds recorded before it are SCIP's
    proofs; a child that hangs is killed 30 s after its time limit).  A crashed sign is run
    again without the event handler and its final bound (at ``time_limit / 2``) appended
    (``rerun_without_trace``).  Returns per sign the list of ``(seconds since the model build started, proven bound
    (running minimum of SCIP's dual bound; inf before the first LP), best value found)``;
    None if pyscipopt is not installed.
    """
    import importlib.util
    import multiprocessing as mp

    if importlib.util.find_spec("pyscipopt") is None:
        return None
    ctx = mp.get_context(SCIP_START)

    def one_run(sign: float, trace: bool) -> tuple[list, bool]:
        recv, send = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_scip_child, args=(X, sign * v, time_limit / 2, send, trace))
        p.start()
        send.close()
        rows: list = []
        ended = False
        deadline = time.perf_counter() + time_limit / 2 + 30.0  # a child that hangs is killed
        while time.perf_counter() < deadline:
            if not recv.poll(1.0):
                if not p.is_alive():
                    break
                continue
            try:
                e = recv.recv()
            except EOFError:
                break
            if e == "end":
                ended = True
                break
            rows.append(e)
        if p.is_alive() and not ended:
            p.kill()
        p.join()
        return rows, ended

    out: dict = {"crashed": [], "rerun_without_trace": []}
    for s in (1.0, -1.0):
        key = "plus" if s > 0 else "minus"
        got, ended = one_run(s, True)
        rows: list = [(0.0, np.inf, 0.0), *got]
        if not ended:
            out["crashed"].append(key)
            # the same run without the event handler: only its final bound (at time_limit / 2)
            fin, ok = one_run(s, False)
            if ok and fin:
                out["rerun_without_trace"].append(key)
                rows.append(fin[-1])
        best, mono = np.inf, []
        for (tt, db, pv) in rows:
            best = min(best, db)
            mono.append((tt, best, pv))
        out[key] = mono
    return out


def _scip_child(X: np.ndarray, v: np.ndarray, time_limit: float, conn, trace: bool) -> None:
    scip_trace_sign(X, v, time_limit, conn.send, trace=trace)
    conn.send("end")
    conn.close()


def scip_trace_sign(X: np.ndarray, v: np.ndarray, time_limit: float, emit, trace: bool = True) -> None:
    """SCIP on the big-M model of ``bench_oracle.scip_bound`` for ``max_{||u||<=1} v^T(Xu)_+``.

    Binaries for the rows with v_i > 0, z_i >= x_i^T u, 0 <= z_i <= ||x_i|| (with
    z_i <= x_i^T u + M_i (1 - b_i), z_i <= M_i b_i), ||u||^2 <= 1; ``time_limit`` seconds
    including the model build.  ``emit((time, dual bound, best value))`` at every change
    (after every LP, node and new solution; ``trace=False``: no event handler) and at the end.
    """
    from pyscipopt import SCIP_EVENTTYPE, Eventhdlr

    events = (SCIP_EVENTTYPE.LPSOLVED, SCIP_EVENTTYPE.NODESOLVED, SCIP_EVENTTYPE.BESTSOLFOUND)
    t0 = time.perf_counter()
    last: list = [None]

    class Trace(Eventhdlr):
        def eventinit(self):
            for e in events:
                self.model.catchEvent(e, self)

        def eventexit(self):
            for e in events:
                self.model.dropEvent(e, self)

        def eventexec(self, event):
            entry = (time.perf_counter() - t0, _finite(self.model.getDualbound()),
                     max(0.0, float(self.model.getPrimalbound())))
            if entry[1:] != last[0]:  # only changes
                last[0] = entry[1:]
                emit(entry)

    m = bigm_model(X, v)
    handler = Trace()  # kept referenced until the model is freed
    if trace:
        m.includeEventhdlr(handler, "trace", "proven bound over time")
    m.setParam("limits/time", max(0.1, time_limit - (time.perf_counter() - t0)))
    m.optimize()
    emit((time.perf_counter() - t0, _finite(m.getDualbound()),
          max(0.0, float(m.getObjVal())) if m.getNSols() > 0 else 0.0))


def _finite(x: float) -> float:
    x = float(x)
    return np.inf if not np.isfinite(x) or abs(x) >= 1e19 else x


def run_instance(name: str, X: np.ndarray, y: np.ndarray, *, budget: float = 30.0,
                 checkpoints: tuple = CHECKPOINTS, scip: bool = True, oracle: bool = True,
                 beta: float = 1.0) -> dict:
    """One instance: solve (sampled), then the three bounds on c(v) of its dual point over time."""
    loss = get_loss("squared")
    t0 = time.perf_counter()
    sol = deepdual.solve(X, y, beta=beta, method="convex", patterns="sample", n_patterns=50, rng=0,
                         progress=False)
    t_solve = time.perf_counter() - t0
    Y = np.asarray(y, dtype=float).reshape(-1, 1)
    V = loss.dual_point(sol.network.forward(X), Y)
    v = V[:, 0]
    obj = float(sol.objective)

    def low(c: float | None) -> float:
        """Proven lower bound on the optimum from c(v) <= c (0 = the trivial bound if none yet)."""
        if c is None or not np.isfinite(c):
            return 0.0
        return float(loss.best_scale(V, Y, np.inf if c <= 0 else beta / c)[1])

    ts = time.perf_counter()
    spec = float(support_spectral_bound(X, v))
    t_spec = time.perf_counter() - ts
    r = dual_constraint_bb(X, v, time_limit=budget if oracle else 1e-9, rtol=1e-9)
    checks = [t for t in checkpoints if t <= budget * (1 + 1e-9)]
    o_c = [bound_at([(h[0], h[2]) for h in r.history], t) for t in checks]
    # the bound it ends with (the last history entry may be just after the last checkpoint)
    row = {"instance": name, "n": int(X.shape[0]), "d": int(X.shape[1]), "beta": beta, "objective": obj,
           "solve_s": t_solve, "checkpoints": checks,
           "spectral": {"c": spec, "time_s": t_spec, "lower_bound": low(spec), "gap": (obj - low(spec)) / obj},
           "oracle": {"search": getattr(r, "search", "rows"), "c": o_c,
                      "lower_bound": [low(c) for c in o_c], "gap": [(obj - low(c)) / obj for c in o_c],
                      "c_end": r.upper, "c_attained": r.lower, "exact": bool(r.exact), "time_s": r.time_s,
                      "nodes": r.nodes, "status": r.status,
                      "trace": [[float(h[0]), float(h[1]), float(h[2])] for h in r.history]},
           }
    if scip:
        tr = scip_trace(X, v, budget)
        if tr is not None:
            s_c, s_att = [], []
            for t in checks:
                ups = [bound_at([(a, b) for (a, b, _) in tr[k]], t / 2) for k in ("plus", "minus")]
                s_c.append(max(np.inf if u is None else u for u in ups))
                s_att.append(max(max([p for (a, _, p) in tr[k] if a <= t / 2], default=0.0)
                                 for k in ("plus", "minus")))
            row["scip"] = {"c": [None if not np.isfinite(c) else c for c in s_c],
                           "c_attained": s_att,
                           "lower_bound": [low(c) for c in s_c], "gap": [(obj - low(c)) / obj for c in s_c],
                           "trace": {k: [[float(a), float(b) if np.isfinite(b) else None, float(p)]
                                         for (a, b, p) in tr[k]] for k in ("plus", "minus")}}
            row["scip"]["crashed"] = tr["crashed"]
            row["scip"]["rerun_without_trace"] = tr["rerun_without_trace"]
    row["load_average"] = os.getloadavg()
    return row


def table(rows: list[dict]) -> str:
    """Markdown table: relative gaps (today's, the oracle's and SCIP's at the checkpoints)."""
    if not rows:
        return ""
    sets = ["wine", "diabetes", "breast_cancer", "digits", "planted"]
    rows = sorted(rows, key=lambda r: (sets.index(r["instance"].split()[0]) if r["instance"].split()[0] in sets
                                       else len(sets), r["d"], r["n"]))
    cks = rows[0]["checkpoints"]
    sc = [t for t in cks if t in (1.0, 5.0, 30.0)] or cks[-1:]
    head = ("| instance | n × d | objective | today | " + " | ".join(f"oracle {t:g} s" for t in cks)
            + " | c(v) | " + " | ".join(f"SCIP {t:g} s" for t in sc) + " | load |")
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        o = r["oracle"]
        cv = (f"exact {o['c_end']:.4g} ({o['time_s']:.1f} s)" if o["exact"]
              else f"in [{o['c_attained']:.4g}, {o['c_end']:.4g}]")
        s = r.get("scip")
        sg = [f"{s['gap'][cks.index(t)]:.3f}" + ("†" if s.get("crashed") else "") if s else "–" for t in sc]
        out.append(f"| {r['instance']} | {r['n']} × {r['d']} | {r['objective']:.5g} | {r['spectral']['gap']:.3f} | "
                   + " | ".join(f"{g:.3f}" for g in o["gap"]) + f" | {cv} | " + " | ".join(sg)
                   + f" | {r['load_average'][0]:.1f} |")
    return "\n".join(out)


def figure(rows: list[dict], path: Path = FIGURE) -> None:
    """One panel per data set, log time axis; the proven lower bound as a fraction of the
    objective, D/P = 1 - relative gap (log axis: 1 is certified), per method and d."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["instance"].split()[0], []).append(r)
    fig, axes = plt.subplots(2, 3, figsize=(13, 8.5))
    axes = axes.ravel()
    cmap = plt.get_cmap("viridis")
    floor = 1e-3
    for ax, (g, rs) in zip(axes, groups.items()):
        rs = sorted(rs, key=lambda r: (r["d"], r["n"]))
        for i, r in enumerate(rs):
            col = cmap(i / max(len(rs) - 1, 1))
            lab = f"{r['n']}×{r['d']}" if g == "planted" else f"d={r['d']}" + (
                " (all)" if "PCA" not in r["instance"] else "")
            cks = r["checkpoints"]
            ratio = lambda gaps: np.maximum(1.0 - np.asarray(gaps, dtype=float), floor)  # noqa: E731
            ax.plot(cks, ratio(r["oracle"]["gap"]), "-o", color=col, ms=3, label=lab)
            if "scip" in r:
                ax.plot(cks, ratio(r["scip"]["gap"]), "--x", color=col, ms=3, alpha=0.8)
            ax.plot(cks, ratio([r["spectral"]["gap"]] * len(cks)), ":", color=col, alpha=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(floor * 0.9, 1.1)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("proven lower bound / objective")
        ax.set_title(g)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right", ncol=2)
    for ax in axes[len(groups):]:
        ax.axis("off")
    axes[-1].legend([Line2D([], [], ls="-", marker="o", color="k"), Line2D([], [], ls="--", marker="x", color="k"),
                     Line2D([], [], ls=":", color="k")],
                    ["oracle (dual_constraint_bb), anytime", "SCIP big-M, budget split over the two signs",
                     "today: spectral bound"], loc="center", fontsize=9)
    fig.suptitle("Proven lower bound of the sampled network's certificate as a fraction of its objective "
                 "(1 - relative gap) vs time; issue 16, shared 2-core machine", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def target_d10(time_limit: float = 600.0, decomp_time: float = 60.0, n_starts: int = 2000,
               out: Path = RESULTS.with_name("bench_oracle_grid_diabetes_cg.json")) -> dict:
    """The issue's d = 10 target: diabetes 442 × 10, β = 1, relative gap <= 1 % within 10 minutes.

    ``solve(..., strategy="column_generation", time_limit=time_limit, rtol=1e-2)`` once; its
    per-round history (time, patterns, objective, proven bound, c(v) interval).  Then the
    decomposition of the final gap for the returned network's dual point v: the oracle for
    ``decomp_time`` s gives a proven ``c_up >= c(v)``, its incumbent and cell ascent from
    ``n_starts`` random directions an attained ``c_att <= c(v)``.  With D(c) the dual value of
    the best scaling of v under ``c(v) <= c``:  P - D(c_up) = [P - D(c_att)] + [D(c_att) - D(c_up)];
    the first part no bound on c(v) can remove (it is the network's / dual point's
    suboptimality: D(c(v)) <= D(c_att)), the second is at most what an exact c(v) would gain.
    """
    from deepdual.relu.convex_program.cells import cell_ascent

    name, X, y = next(t for t in datasets(False) if t[0].startswith("diabetes") and t[1].shape[1] == 10
                      and "PCA" not in t[0])
    beta, loss = 1.0, get_loss("squared")
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    sol = deepdual.solve(X, y, beta=beta, method="convex", strategy="column_generation", time_limit=time_limit,
                         rng=0, progress=False, rtol=1e-2)
    t_cg = time.perf_counter() - t0
    load1 = os.getloadavg()
    Y = y.reshape(-1, 1)
    V = loss.dual_point(sol.network.forward(X), Y)
    v = V[:, 0]
    P = float(sol.objective)

    def low(c: float) -> float:
        return float(loss.best_scale(V, Y, np.inf if c <= 0 else beta / c)[1])

    r = dual_constraint_bb(X, v, time_limit=decomp_time, rtol=1e-9)
    rng = np.random.default_rng(0)
    c_att = float(r.lower)
    for u0 in rng.standard_normal((n_starts, X.shape[1])):
        for s in (1.0, -1.0):
            c_att = max(c_att, cell_ascent(X, s * v, u0)[0])
    spec = float(support_spectral_bound(X, v))
    res = {"instance": name, "n": int(X.shape[0]), "d": int(X.shape[1]), "beta": beta, "rtol": 1e-2,
           "time_limit": time_limit, "time_s": t_cg, "objective": P, "lower_bound": float(sol.lower_bound),
           "rel_gap": (P - float(sol.lower_bound)) / P, "status": sol.info.get("status"),
           "rounds": sol.info.get("rounds"), "patterns": sol.info.get("patterns"),
           "history": [list(map(float, h)) for h in sol.info.get("history", [])],
           "load_average_start": load0, "load_average_end": load1,
           "final_dual_point": {"c_spectral": spec, "c_up": float(r.upper), "c_att": c_att,
                                "oracle_s": r.time_s, "oracle_nodes": r.nodes, "oracle_exact": bool(r.exact),
                                "D_spectral": low(spec), "D_up": low(r.upper), "D_att": low(c_att),
                                "gap_network_part": (P - low(c_att)) / P,
                                "gap_bound_part": (low(c_att) - low(r.upper)) / P,
                                "gap_total": (P - low(r.upper)) / P},
           "load_average_decomposition_end": os.getloadavg()}
    Path(out).write_text(json.dumps(res, indent=1))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time", type=float, default=30.0, help="seconds per method per instance")
    ap.add_argument("--only", default=None, help="comma-separated name parts: instances to run")
    ap.add_argument("--no-scip", dest="scip", action="store_false")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--redo-scip", default=None, metavar="NAME",
                    help="with --resume: rerun SCIP on the rows whose name contains NAME ('missing': rows without)")
    ap.add_argument("--resume", action="store_true", help="keep the instances already in --out, run the rest")
    ap.add_argument("--figure", action="store_true", help=f"also draw {FIGURE.relative_to(FIGURE.parents[1])}")
    ap.add_argument("--figure-only", action="store_true", help="redraw the figure from --out and print the table")
    ap.add_argument("--target-d10", type=float, default=None, metavar="SECONDS",
                    help="run only the diabetes 442 x 10 column-generation target with this time limit")
    args = ap.parse_args()
    if args.target_d10 is not None:
        res = target_d10(args.target_d10)
        print(json.dumps({k: v for k, v in res.items() if k != "history"}, indent=1))
        for h in res["history"]:
            print("t %7.1f s  patterns %4d  objective %.6g  bound %.6g  gap %.4f  c(v) in [%.4g, %.4g]"
                  % (h[0], h[1], h[2], h[3], (h[2] - h[3]) / h[2], h[5], h[4]))
        return
    if args.figure_only:
        rows = json.loads(Path(args.out).read_text())["rows"]
        figure(rows)
        print(table(rows))
        return
    inst = [(nm, X, y) for nm, X, y in datasets(False)
            if args.only is None or any(s in nm for s in args.only.split(","))]
    inst.sort(key=lambda t: t[1].shape[0] * t[1].shape[1])
    rows: list[dict] = []
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if args.resume and Path(args.out).exists():
        old = json.loads(Path(args.out).read_text())
        rows, started = old["rows"], old["started_utc"] + " (resumed " + started + ")"
    done = {r["instance"] for r in rows}
    if args.redo_scip:  # SCIP again on the same dual points (the rows already in --out)
        for nm, X, y in inst:
            for i, r in enumerate(rows):
                if r["instance"] == nm and (args.redo_scip == "missing" and "scip" not in r
                                            or args.redo_scip != "missing" and args.redo_scip in nm):
                    new = run_instance(nm, X, y, budget=args.time, scip=True, oracle=False)
                    assert abs(new["objective"] - r["objective"]) <= 1e-9 * r["objective"], "not the same v"
                    r["scip"], r["scip_load_average"] = new["scip"], new["load_average"]
                    print(nm, "scip", [round(g, 3) for g in r["scip"]["gap"]], r["scip"]["crashed"], flush=True)
                    Path(args.out).write_text(json.dumps({"args": vars(args), "started_utc": started,
                                                          "rows": rows}, indent=1))
        done = set(rows_done["instance"] for rows_done in rows)
    for nm, X, y in inst:
        if nm in done:
            continue
        rows.append(run_instance(nm, X, y, budget=args.time, scip=args.scip))
        r = rows[-1]
        print(f"{nm}: today {r['spectral']['gap']:.3f} oracle {[round(g, 3) for g in r['oracle']['gap']]} "
              f"scip {[round(g, 3) for g in r['scip']['gap']] if 'scip' in r else '-'} "
              f"load {r['load_average'][0]:.1f}", flush=True)
        Path(args.out).write_text(json.dumps({"args": vars(args), "started_utc": started, "rows": rows}, indent=1))
    if args.figure:
        figure(rows)
    print(table(rows))


if __name__ == "__main__":
    main()
