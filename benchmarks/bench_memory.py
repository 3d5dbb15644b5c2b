"""Peak memory of the default large path, as a ratio to the size of X plus the pattern masks.

Issue 15's target: the peak memory of ``deepdual.solve`` (default options: the convex program
with sampled patterns and the first-order solver) and of ``DualNetRegressor.fit`` is at most
3x the size of X plus the activation masks (docs/performance.md §8).

Every measurement runs in a fresh subprocess (``--child``), which

1. imports deepdual and warms it up on a tiny problem (lazy imports are not charged);
2. allocates X (standard normal, n x d) and y (a planted width-10 ReLU network plus noise);
3. measures, in one of two modes,

   * ``rss``: the resident high-water mark after the call minus the resident size after
     allocating X (the process's resident peak above the data; includes LAPACK workspaces,
     allocator slack).  On Linux the allocator's free memory is first returned to the OS
     (glibc ``malloc_trim(0)``; ``--no-trim`` skips it) and the high-water mark (``VmHWM``)
     reset to the current resident size (``/proc/self/clear_refs``), so memory the warm-up
     and the data generation touched and freed does not hide the call's peak; elsewhere ``ru_maxrss``
     after the call minus ``ru_maxrss`` before it (a rise above an earlier, higher mark
     then reads as 0);
   * ``traced``: the tracemalloc peak of the call above its start (numpy buffers, Python
     objects), optionally with a per-stage breakdown (``--stages``: peak above entry of the
     named functions, the traced memory live at their entry).

X is ``8 n d`` bytes; the masks are ``P n`` bytes (one boolean per pattern and sample, P the
number of patterns the solve used).  Objectives are printed so runs before and after a memory
change can be compared.

Usage::

    python benchmarks/bench_memory.py --quick                 # n = 1e4, d = 10 and 50
    python benchmarks/bench_memory.py --n 10000 50000 --d 10 50 --max-iter 30
    python benchmarks/bench_memory.py --n 50000 --d 20 --stages --modes traced
    python benchmarks/bench_memory.py --n 100000 --d 50       # the largest: run once, late

Results: ``benchmarks/results/bench_memory-<UTC time>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# functions whose peak (above entry) --stages reports: (module, name); each is wrapped in
# every module namespace that imported it
STAGES = [
    ("deepdual._validation", "check_X_y"),
    ("deepdual.estimators", "_DualNetBase._proven_zero"),
    ("deepdual.estimators", "_DualNetBase._choose_patterns"),
    ("deepdual.estimators", "solve"),
    ("deepdual.structures", "rank_one_factors"),
    ("deepdual.structures", "whitened_gram"),
    ("deepdual.patterns", "row_space"),
    ("deepdual.patterns", "sample_patterns"),
    ("deepdual.relu.convex_program.first_order", "solve_first_order"),
    ("deepdual.relu.convex_program.gram_ipm", "solve_gram"),
    ("deepdual.relu.convex_program.rebuild", "prune_neurons"),
    ("deepdual.relu.convex_program.rebuild", "polish_network"),
    ("deepdual.objective", "objective"),
    ("deepdual.blocks", "relu_layer_output"),
    ("deepdual.relu.convex_program.certificate", "global_constraint"),
    ("deepdual.relu.convex_program.oracle", "dual_constraint_bb"),
]


def _problem(n: int, d: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    U = rng.standard_normal((d, 10))
    y = np.maximum(X @ U, 0.0) @ rng.standard_normal(10) + 0.1 * rng.standard_normal(n)
    return X, y


def _status_kb(field: str) -> int | None:
    """A ``/proc/self/status`` field in kB (Linux), or None."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_high_water() -> bool:
    """Reset the resident high-water mark to the current resident size (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return _status_kb("VmHWM") is not None
    except OSError:
        return False


def _release_free_memory() -> bool:
    """Return the allocator's free memory to the OS (glibc ``malloc_trim(0)``: the top of
    the heap and, since glibc 2.8, free pages inside it), so that memory the warm-up and the
    data generation freed is not resident at the baseline: the call's allocations then touch
    new pages and raise the high-water mark instead of silently reusing resident free pages
    (without it a 5-8 MB first-order solve at n = 1e4 read 0.4 MB)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
        return True
    except (OSError, AttributeError):
        return False


def _high_water() -> int:
    """The resident high-water mark in bytes (``VmHWM``, else ``ru_maxrss``)."""
    import resource

    kb = _status_kb("VmHWM")
    return 1024 * (kb if kb is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _install_stages(record: dict, mode: str = "traced") -> None:
    """Wrap the STAGES functions.  ``traced``: per stage the largest tracemalloc peak above
    entry (and the traced memory live at entry).  ``rss``: per stage the largest rise of the
    process's resident high-water mark (``ru_maxrss``) during the stage, with its value at
    entry (above the baseline after allocating X is the caller's subtraction): a stage whose
    rise is zero stayed below an earlier peak."""
    import functools
    import importlib
    import resource
    import tracemalloc

    state = {"peak": 0}

    def maxrss() -> int:
        return _high_water()

    def wrap(name, fn):
        @functools.wraps(fn)
        def inner(*a, **k):
            if mode == "rss":
                hw0 = maxrss()
                try:
                    return fn(*a, **k)
                finally:
                    hw1 = maxrss()
                    r = record.setdefault(name, {"calls": 0, "rss_rise_MB": 0.0, "rss_hw_at_entry_MB": 0.0})
                    r["calls"] += 1
                    if (hw1 - hw0) / 1e6 >= r["rss_rise_MB"]:
                        r["rss_rise_MB"] = round((hw1 - hw0) / 1e6, 2)
                        r["rss_hw_at_entry_MB"] = round(hw0 / 1e6, 2)
            cur0, pk = tracemalloc.get_traced_memory()
            state["peak"] = max(state["peak"], pk)
            tracemalloc.reset_peak()
            try:
                return fn(*a, **k)
            finally:
                _, pk1 = tracemalloc.get_traced_memory()
                state["peak"] = max(state["peak"], pk1)
                r = record.setdefault(name, {"calls": 0, "peak_above_entry_MB": 0.0, "live_at_entry_MB": 0.0})
                r["calls"] += 1
                if (pk1 - cur0) / 1e6 > r["peak_above_entry_MB"]:
                    r["peak_above_entry_MB"] = round((pk1 - cur0) / 1e6, 2)
                    r["live_at_entry_MB"] = round(cur0 / 1e6, 2)
        inner.__wrapped_stage__ = True
        return inner

    for modname, name in STAGES:
        mod = importlib.import_module(modname)
        if "." in name:  # a method: wrapped on its class
            cls_name, meth = name.split(".")
            cls = getattr(mod, cls_name)
            fn = cls.__dict__[meth]
            if not getattr(fn, "__wrapped_stage__", False):
                setattr(cls, meth, wrap(name, fn))
            continue
        fn = getattr(mod, name)
        if getattr(fn, "__wrapped_stage__", False):
            continue
        w = wrap(name, fn)
        for m in list(sys.modules.values()):
            if getattr(m, "__name__", "").startswith("deepdual") and getattr(m, name, None) is fn:
                setattr(m, name, w)
    record["_state"] = state


def child(args: argparse.Namespace) -> dict:
    import resource
    import tracemalloc

    import numpy as np

    import deepdual
    from deepdual import DualNetRegressor

    def call(X, y):
        n = X.shape[0]
        steps = {"max_iter": args.max_iter} if args.max_iter > 0 else {}  # 0: the default budget
        chosen = {"solver": args.solver} if args.solver != "auto" else {}
        if args.kind == "solve":
            return deepdual.solve(X, y, beta=0.01 * n, progress=False, **steps, **chosen)
        reg = DualNetRegressor(alpha=0.01, random_state=0, solver_options=chosen or None, **steps)
        reg.fit(X, y)
        return reg.certificate_

    if args.fo_block_entries:  # what-if: the first-order solver's row-block budget
        from deepdual.relu.convex_program import first_order

        first_order.FO_BLOCK_ENTRIES = int(args.fo_block_entries)
    Xw, yw = _problem(300, args.d, seed=1)  # warm-up: lazy imports, BLAS init
    call(Xw, yw)
    del Xw, yw
    # the modules deepdual imports lazily on paths a 300-sample warm-up does not take (the
    # blocked QR of row_space, the Gram route of the spectral bound, sparse eigensolvers):
    # module code is a fixed cost, not memory that scales with the data
    import scipy.linalg  # noqa: F401
    import scipy.optimize  # noqa: F401
    import scipy.sparse.csgraph  # noqa: F401
    import scipy.sparse.linalg  # noqa: F401
    import scipy.special  # noqa: F401
    X, y = _problem(args.n, args.d)
    stages: dict = {}
    if args.mode == "traced":
        if args.stages:
            _install_stages(stages)
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        t0 = time.perf_counter()
        sol = call(X, y)
        wall = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        if args.stages:
            peak = max(peak, stages.pop("_state")["peak"])
        tracemalloc.stop()
        peak_bytes = peak - base
    else:
        if args.stages:
            _install_stages(stages, "rss")
        import gc

        gc.collect()
        trimmed = _release_free_memory() if args.trim else False
        reset = _reset_high_water()
        base = 1024 * _status_kb("VmRSS") if reset else _high_water()
        t0 = time.perf_counter()
        sol = call(X, y)
        wall = time.perf_counter() - t0
        peak_bytes = _high_water() - base
        if args.stages:  # the high-water mark at entry, above the baseline
            stages.pop("_state", None)
            for s in stages.values():
                s["rss_hw_at_entry_MB"] = round(s["rss_hw_at_entry_MB"] - base / 1e6, 2)
    baseline = ("tracemalloc" if args.mode == "traced" else
                ("VmRSS after resetting VmHWM" if reset else "ru_maxrss before the call")
                + (" (free memory returned by malloc_trim first)" if args.mode == "rss" and trimmed else ""))
    P = int(sol.info.get("patterns", 0))
    data = X.nbytes + P * args.n
    return {"kind": args.kind, "n": args.n, "d": args.d, "mode": args.mode, "patterns": P,
            "X_MB": round(X.nbytes / 1e6, 3), "masks_MB": round(P * args.n / 1e6, 3),
            "peak_MB": round(peak_bytes / 1e6, 2), "ratio": round(peak_bytes / data, 2),
            "objective": float(sol.objective), "lower_bound": float(sol.lower_bound),
            "solver": sol.info.get("solver"), "wall_s": round(wall, 2),
            "restricted_gap": sol.info.get("restricted_gap"), "dual_constraint_how": sol.info.get("dual_constraint_how"),
            "baseline": baseline, "stages": stages}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--kind", default="solve", choices=["solve", "fit"])
    ap.add_argument("--mode", default="rss", choices=["rss", "traced"])
    ap.add_argument("--n", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    ap.add_argument("--d", type=int, nargs="+", default=[10, 50])
    ap.add_argument("--kinds", nargs="+", default=["solve", "fit"], choices=["solve", "fit"])
    ap.add_argument("--modes", nargs="+", default=["rss", "traced"], choices=["rss", "traced"])
    ap.add_argument("--max-iter", type=int, default=30, help="iteration budget of the solver (default 30; 0: its default)")
    ap.add_argument("--stages", action="store_true", help="per-stage peaks: traced above entry, or the rise of ru_maxrss (rss mode)")
    ap.add_argument("--solver", default="auto", choices=["auto", "first_order", "gram"],
                    help="the convex program's solver (default: what solver='auto' picks)")
    ap.add_argument("--fo-block-entries", type=int, default=None,
                    help="what-if: set first_order.FO_BLOCK_ENTRIES (entries per row-block temporary)")
    ap.add_argument("--no-trim", dest="trim", action="store_false",
                    help="rss mode: do not return free memory to the OS before the baseline (the protocol "
                         "before 2026-12-06 14:00 UTC; freed pages of the warm-up then hide part of the peak)")
    ap.add_argument("--quick", action="store_true", help="n = 1e4 only")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="result file (default benchmarks/results/bench_memory-<time>.json)")
    args = ap.parse_args(argv)
    if args.child:
        args.n, args.d = args.n[0], args.d[0]
        print(json.dumps(child(args)))
        return 0
    if args.quick:
        args.n = [10_000]
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(args.threads)
    rows = []
    for n in args.n:
        for d in args.d:
            for kind in args.kinds:
                for mode in args.modes:
                    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--kind", kind, "--mode", mode,
                           "--n", str(n), "--d", str(d), "--max-iter", str(args.max_iter), "--solver", args.solver]
                    if args.stages:
                        cmd.append("--stages")
                    if not args.trim:
                        cmd.append("--no-trim")
                    if args.fo_block_entries:
                        cmd += ["--fo-block-entries", str(args.fo_block_entries)]
                    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
                    if out.returncode != 0:
                        row = {"kind": kind, "n": n, "d": d, "mode": mode, "error": out.stderr.strip()[-2000:]}
                    else:
                        row = json.loads(out.stdout.strip().splitlines()[-1])
                    rows.append(row)
                    print(json.dumps({k: v for k, v in row.items() if k != "stages"}), flush=True)
                    if row.get("stages"):
                        for name, s in row["stages"].items():
                            print(f"    {name:22s} {s}", flush=True)
    import numpy as np

    result = {"fo_block_entries": args.fo_block_entries, "solver": args.solver, "trim": args.trim, "machine": {"python": platform.python_version(), "numpy": np.__version__,
                          "cpu_count": os.cpu_count(), "load_avg": os.getloadavg(), "threads": args.threads},
              "max_iter": args.max_iter, "rows": rows}
    stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime())
    path = Path(args.out) if args.out else HERE / "results" / f"bench_memory-{stamp}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
