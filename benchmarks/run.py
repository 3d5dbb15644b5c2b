"""Run every deepdual benchmark with one command and print a table of ratios.

    python benchmarks/run.py [--quick] [--threads N] [--skip-torch] [--skip-cvxpy] [--skip-external]

* closed forms vs one LAPACK QR of the same X (target: within 2x),
* closed forms vs cvxpy on the same convex program at equal objective (1e-7; target >= 100x),
* closed forms vs PyTorch training to within 1e-3 of the optimum (target >= 1000x): full-batch
  Adam, SGD and L-BFGS and minibatch Adam, on synthetic and realistic data (``bench_torch.py``),
* and, when present, the other benchmark scripts of this folder
  (``bench_1d.py``, ``bench_convex.py``), run as subprocesses with the same
  ``--quick`` flag and thread settings; their output is stored verbatim.

All ratios come from one run on one machine.  BLAS threads are pinned with
threadpoolctl (``--threads``, default 1; PyTorch gets the same number).  The
results, with the machine description, go to ``benchmarks/results/<time>.json``
(and ``latest.json`` / ``latest-quick.json``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

EXTERNAL = ("bench_1d.py", "bench_convex.py")


def machine_info(threads: int) -> dict:
    import numpy as np
    import scipy

    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "threads": threads,
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")},
    }
    try:
        with open("/proc/cpuinfo") as fh:
            models = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        info["cpu"] = models[0] if models else platform.processor()
    except OSError:
        info["cpu"] = platform.processor()
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [{k: d.get(k) for k in ("internal_api", "version", "num_threads", "threading_layer",
                                               "architecture")} for d in threadpool_info()]
    except ImportError:  # pragma: no cover
        pass
    for mod in ("cvxpy", "torch", "sklearn", "deepdual"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - optional packages
            info[mod] = None
    return info


def run_external(script: Path, *, quick: bool, threads: int, timeout: float) -> dict:
    env = dict(os.environ)
    for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(threads)
    cmd = [sys.executable, str(script)] + (["--quick"] if quick else [])
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=str(HERE.parent), env=env, capture_output=True, text=True, timeout=timeout)
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc, out, err = None, exc.stdout or "", f"timed out after {timeout:.0f}s"
    return {"script": script.name, "command": " ".join(cmd[1:]), "returncode": rc,
            "wall_s": time.perf_counter() - t0, "stdout": out if isinstance(out, str) else out.decode(),
            "stderr": (err if isinstance(err, str) else err.decode())[-4000:]}


def _fmt(x, spec=".3g"):
    return "-" if x is None else format(x, spec)


def _ratio(x) -> str:
    """Three significant digits, without exponent notation for large ratios."""
    if x is None:
        return "-"
    return format(x, ".0f") if abs(x) >= 100 else format(x, ".3g")


def table(results: dict) -> str:
    lines = ["", "deepdual benchmark ratios (one run, same machine)", ""]
    fl = results.get("floor", [])
    if fl:
        lines.append("1. closed form / one LAPACK QR of the same X   (target <= 2)")
        lines.append(f"   {'problem':<20} {'n x d':>11} {'closed [s]':>11} {'QR [s]':>9} {'ratio':>7} {'vs SVD':>7}  certified")
        for r in fl:
            lines.append(f"   {r['problem']:<20} {str(r['n']) + 'x' + str(r['d']):>11} {r['t_closed_s']:>11.4f} "
                         f"{r['t_qr_s']:>9.4f} {r['ratio_vs_qr']:>7.2f} {r['ratio_vs_svd']:>7.2f}  {r['certified']}")
        lines.append("")
    cv = results.get("cvxpy", [])
    if cv:
        lines.append("2. cvxpy (Clarabel) / closed form, same convex program, equal objective (1e-7)   (target >= 100)")
        lines.append("   (full/cf: cvxpy on the reduced whitened program / the full solve of the whitened X,"
                     " XX^T = I check included)")
        lines.append(f"   {'problem':<24} {'n x d':>11} {'closed [s]':>11} {'cvxpy [s]':>10} {'ratio':>9} "
                     f"{'solver-only':>11} {'full/cf':>8} {'rel.diff':>9}  equal")
        for r in cv:
            lines.append(f"   {r['problem']:<24} {str(r['n']) + 'x' + str(r['d']):>11} {r['t_closed_s']:>11.4f} "
                         f"{_fmt(r['t_cvxpy_s'], '.3f'):>10} {_ratio(r['ratio_cvxpy_over_closed']):>9} "
                         f"{_ratio(r['ratio_solver_only']):>11} {_ratio(r.get('ratio_full_solve')):>8} "
                         f"{_fmt(r['rel_diff'], '.1e'):>9}  {r['equal_objective']}")
        lines.append("")
    tt = results.get("torch", [])
    if tt:
        lines.append("3. PyTorch training to within 1e-3 of the optimum / closed form   (target >= 1000)")
        lines.append("   (full batch: Adam, best of lr in {1e-3, 1e-2, 1e-1}; SGD (momentum 0.9),"
                     " best of lr in {1e-3, 1e-2, 0.1, 1} / ||X||_2^2; L-BFGS;")
        lines.append("    mb-Adam: minibatch Adam, batch 128, best of lr in {1e-3, 3e-3, 1e-2},"
                     " full objective checked every epoch, checks not charged;")
        lines.append("    '>' = not reached within the cap (min(15 s, 1000 x closed)), ratio is a lower bound;"
                     " evals = L-BFGS evaluations to target;")
        lines.append("    kappa = condition number of X on its range; * = realistic data)")
        lines.append(f"   {'problem':<25} {'n x d':>10} {'kappa':>7} {'closed [s]':>10} {'Adam [s]':>9} {'SGD [s]':>9} "
                     f"{'mbAdam [s]':>10} {'L-BFGS [s]':>10} {'evals':>5} "
                     f"{'Adam/cf':>8} {'SGD/cf':>8} {'mbAdam/cf':>9} {'LBFGS/cf':>8} {'best/cf':>8}")
        for r in tt:
            cap = r["time_limit_s"]

            def t_or_cap(t):
                return format(t, ".3f") if t is not None else "> " + format(cap, ".3g")

            def rat(key):
                x = r.get(f"ratio_{key}_over_closed")
                return ("" if r.get(f"{key}_reached") else "> ") + _ratio(x)

            best = ("" if r["reached"] else "> ") + _ratio(r["ratio_torch_over_closed"])
            name = r["problem"] + ("*" if r.get("realistic") else "")
            kappa = r.get("cond_X")
            lines.append(f"   {name:<25} {str(r['n']) + 'x' + str(r['d']):>10} {_fmt(kappa, '.2g'):>7} "
                         f"{r['t_closed_s']:>10.4f} "
                         f"{t_or_cap(r.get('t_adam_s')):>9} {t_or_cap(r.get('t_sgd_s')):>9} "
                         f"{t_or_cap(r.get('t_minibatch_adam_s')):>10} {t_or_cap(r.get('t_lbfgs_s')):>10} "
                         f"{str(r.get('lbfgs_evaluations_to_target') or '-'):>5} "
                         f"{rat('adam'):>8} {rat('sgd'):>8} {rat('minibatch_adam'):>9} {rat('lbfgs'):>8} {best:>8}")
        lines.append("")
    for ext in results.get("external", []):
        lines.append(f"{ext['script']} (exit {ext['returncode']}, {ext['wall_s']:.1f}s):")
        lines += ["   " + s for s in ext["stdout"].strip().splitlines()[-30:]]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description="Run all deepdual benchmarks and print a table of ratios.")
    ap.add_argument("--quick", action="store_true", help="small sizes: about a minute in total")
    ap.add_argument("--threads", type=int, default=1, help="BLAS (and torch) threads; default 1")
    ap.add_argument("--skip-torch", action="store_true")
    ap.add_argument("--skip-cvxpy", action="store_true")
    ap.add_argument("--skip-external", action="store_true", help="do not run bench_1d.py / bench_convex.py")
    ap.add_argument("--out", type=Path, default=HERE / "results", help="folder for the JSON results")
    args = ap.parse_args(argv)
    if args.threads < 1:
        ap.error("--threads must be >= 1")

    from threadpoolctl import threadpool_limits

    import bench_closed_forms as bcf

    started = _dt.datetime.now(_dt.timezone.utc)
    results: dict = {"started_utc": started.isoformat(timespec="seconds"), "quick": args.quick}
    t0 = time.perf_counter()
    with threadpool_limits(limits=args.threads):
        results["machine"] = machine_info(args.threads)  # inside the limits: records the threads used
        print("closed forms vs LAPACK floor", flush=True)
        results["floor"] = bcf.bench_floor(quick=args.quick)
        if not args.skip_cvxpy:
            print("closed forms vs cvxpy", flush=True)
            results["cvxpy"] = bcf.bench_cvxpy(quick=args.quick)
        if not args.skip_torch:
            import bench_torch

            print("closed forms vs PyTorch training", flush=True)
            results["torch"] = bench_torch.bench_torch(quick=args.quick, threads=args.threads)
    results["external"] = []
    if not args.skip_external:
        for name in EXTERNAL:
            script = HERE / name
            if script.exists():
                print(f"running {name}", flush=True)
                results["external"].append(run_external(script, quick=args.quick, threads=args.threads,
                                                         timeout=600 if args.quick else 1800))
    results["wall_s"] = time.perf_counter() - t0
    print(table(results))
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ") + ("-quick" if args.quick else "")
    path = args.out / f"{stamp}.json"
    text = json.dumps(results, indent=1, default=str)
    path.write_text(text)
    (args.out / ("latest-quick.json" if args.quick else "latest.json")).write_text(text)
    print(f"results written to {path}")
    return results


if __name__ == "__main__":
    main()
