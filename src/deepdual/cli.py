"""The ``deepdual`` command line (also ``python -m deepdual``).

Commands::

    deepdual solve DATA --target COLUMN --beta B [--depth L] [--activation relu|linear]
                   [--loss LOSS] [--bias] [--method M] [--out FILE [--force]] [--json] [--summary]
                   [--progress | --no-progress] [--time-limit SECONDS]
    deepdual certify NETWORK DATA --target COLUMN [--beta B] [--loss LOSS] [--json] [--summary]
                     [--time-limit SECONDS] [--progress]
    deepdual reproduce NAME --out DIR [--quick] [--seed S] [--force]   (NAME "list" lists them)
    deepdual demo [--out DIR] [--quick] [--force]
    deepdual --version

``DATA`` is a CSV file with a header row (the target column by name or 0-based index,
every other column a feature) or an ``.npz`` file with arrays ``X`` and ``y`` (or
``--target`` naming the label array).  ``NETWORK`` is a network saved by ``solve --out``
or :meth:`deepdual.Network.save` (``.npz``), or a PyTorch state dict (``.pt``/``.pth``)
of a module built by :meth:`deepdual.Network.to_torch` or :func:`deepdual.train`, or of a
standard ``nn.Sequential`` MLP (``--activation`` tells a ReLU MLP's state dict apart from a
linear one; see :meth:`deepdual.Network.from_torch`).

Every error -- a missing file, an unknown column, a bad option, invalid data -- is
reported as one line ``deepdual: error: ...`` on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import csv
import inspect
import json
import math
import os
import pathlib
import sys
import time
from typing import Any, Sequence

import numpy as np

__all__ = ["main", "load_data", "output_directory"]

PROG = "deepdual"


class CLIError(Exception):
    """An error reported to the user as one line on stderr (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse parser whose usage errors become :class:`CLIError` (one line, no usage dump)."""

    def error(self, message: str):  # type: ignore[override]
        raise CLIError(message)


# ---------------------------------------------------------------------------- data
def _parse_target(target: str | None) -> list[str] | None:
    if target is None:
        return None
    cols = [t.strip() for t in target.split(",")]
    if any(not c for c in cols):
        raise CLIError(f"--target {target!r}: empty column name")
    return cols


def _load_csv(path: str, target: list[str] | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if target is None:
        raise CLIError(f"--target is required for the CSV file {path!r} (a column name or 0-based index)")
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError:
        raise CLIError(f"DATA {path!r} is not a text CSV file") from None
    rows = [r for r in rows if r and any(c.strip() for c in r)]
    if len(rows) < 2:
        raise CLIError(f"DATA {path!r} needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    idx = []
    for t in target:
        if t in header:
            idx.append(header.index(t))
            continue
        try:
            i = int(t)
        except ValueError:
            raise CLIError(f"--target {t!r} is not a column of {path!r}; columns: {', '.join(header)}") from None
        if not -len(header) <= i < len(header):
            raise CLIError(f"--target index {i} is out of range for {len(header)} columns in {path!r}")
        idx.append(i % len(header))
    if len(set(idx)) != len(idx):
        raise CLIError("--target names the same column twice")
    data = np.empty((len(rows) - 1, len(header)))
    for r, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise CLIError(f"DATA {path!r} line {r} has {len(row)} fields, expected {len(header)}")
        for c, cell in enumerate(row):
            try:
                data[r - 2, c] = float(cell)
            except ValueError:
                raise CLIError(f"DATA {path!r} line {r}, column {header[c]!r}: {cell!r} is not a number") from None
    feats = [c for c in range(len(header)) if c not in idx]
    if not feats:
        raise CLIError(f"DATA {path!r} has no feature columns besides the target")
    y = data[:, idx[0]] if len(idx) == 1 else data[:, idx]
    return data[:, feats], y, [header[c] for c in feats]


def _load_npz(path: str, target: list[str] | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError) as exc:
        raise CLIError(f"DATA {path!r} could not be read as .npz: {exc}") from None
    if "X" not in arrays:
        raise CLIError(f"DATA {path!r} has no array 'X' (arrays: {', '.join(arrays) or 'none'})")
    names = target or ["y"]
    if len(names) != 1:
        raise CLIError("--target for an .npz file names one array")
    if names[0] not in arrays:
        raise CLIError(f"DATA {path!r} has no label array {names[0]!r} (arrays: {', '.join(arrays)}); "
                       "name it with --target")
    X = arrays["X"]
    return X, arrays[names[0]], [f"x{i}" for i in range(X.shape[1] if X.ndim == 2 else 0)]


def load_data(path: str, target: str | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read ``(X, y, feature_names)`` from a CSV (header row) or ``.npz`` file."""
    if not os.path.exists(path):
        raise CLIError(f"DATA file {path!r} does not exist")
    if os.path.isdir(path):
        raise CLIError(f"DATA {path!r} is a directory, expected a .csv or .npz file")
    cols = _parse_target(target)
    if path.endswith(".npz"):
        return _load_npz(path, cols)
    return _load_csv(path, cols)


def _load_network(path: str, activation: str | None):
    import deepdual

    if not os.path.exists(path):
        raise CLIError(f"NETWORK file {path!r} does not exist")
    if path.endswith((".pt", ".pth")):
        from ._torch import require_torch
        from .network import Network

        torch = require_torch()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a bad file
            if "weights only load failed" in str(exc).lower():  # a pickled module: code is never unpickled
                raise CLIError(f"NETWORK {path!r} holds a pickled object, not a state dict; deepdual loads "
                               "only tensors: save it with torch.save(module.state_dict(), path)") from None
            raise CLIError(f"NETWORK {path!r} is not a PyTorch state dict: {str(exc).splitlines()[0]}") from None
        if not isinstance(state, dict):
            raise CLIError(f"NETWORK {path!r} must hold a state dict (save module.state_dict()), "
                           f"got {type(state).__name__}")
        try:  # an nn.Sequential state dict may need --activation; a deepdual module records it
            return Network.from_torch(state, activation=activation)
        except (TypeError, ValueError) as exc:
            raise CLIError(f"NETWORK {path!r}: {exc}") from None
    if not path.endswith(".npz"):
        raise CLIError(f"NETWORK {path!r} must be a .npz file written by Network.save (or solve --out) "
                       "or a PyTorch state dict .pt/.pth")
    try:
        net = deepdual.Network.load(path)
    except ValueError as exc:
        raise CLIError(f"NETWORK {path!r} is not a deepdual network file: {exc}") from None
    if activation is not None and activation != net.activation:
        raise CLIError(f"--activation {activation!r} does not match the saved network's {net.activation!r}")
    return net


# ---------------------------------------------------------------------------- output
def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


def _fmt(x: float) -> str:
    return f"{x:.10g}" if math.isfinite(x) else str(x)


def _print_result(d: dict[str, Any], extra: dict[str, Any]) -> None:
    print(f"method:       {d['method']}")
    print(f"objective:    {_fmt(d['objective'])}")
    print(f"lower bound:  {_fmt(d['lower_bound'])}")
    rel = d.get("relative_gap", float("nan"))
    print(f"gap:          {d['gap']:.3g} (relative {rel:.3g})")
    print(f"certified:    {'yes' if d['certified'] else 'no'}")
    for k, v in extra.items():
        if v is not None:
            print(f"{k + ':':<13} {v}")


def _describe(net: Any) -> str:
    widths = net.widths[0]
    return (f"{net.activation}, depth {net.depth}, {net.n_subnetworks} sub-network(s), "
            f"widths {widths}")


def _summary(obj: Any, X: np.ndarray, y: np.ndarray, beta: float, loss: str) -> str | None:
    try:
        from .report import summarize
    except ImportError:
        return None
    return str(summarize(obj, X, y, beta=beta, loss=loss))


# ---------------------------------------------------------------------------- commands
def _cmd_solve(args: argparse.Namespace) -> int:
    import deepdual

    X, y, _ = load_data(args.data, args.target)
    t0 = time.perf_counter()
    # seed of sampled activation patterns (ReLU solvers; the deterministic ones ignore it)
    seeded = {"random_state": args.seed} if args.activation == "relu" else {}
    if args.regularization == "path":  # docs/path_regularization.md
        seeded["regularization"] = "path"
    if args.architecture is not None:  # 1-D deep networks (docs/one_dimensional.md §7, §10)
        seeded["architecture"] = args.architecture
    sol = deepdual.solve(X, y, beta=args.beta, depth=args.depth, activation=args.activation, loss=args.loss,
                         bias=args.bias, method=args.method, rtol=args.rtol, progress=args.progress,
                         time_limit=args.time_limit, **seeded)
    seconds = time.perf_counter() - t0
    saved = None
    if args.out:
        out = args.out if args.out.endswith(".npz") else args.out + ".npz"
        if os.path.exists(out) and not args.force:
            raise CLIError(f"--out {out!r} exists; pass --force to overwrite it")
        sol.network.save(out, overwrite=args.force)
        saved = out
    d = sol.as_dict()
    note = sol.info.get("note")
    if args.json:
        d.update(network=_describe(sol.network), n=int(X.shape[0]), d=int(X.shape[1]), beta=args.beta,
                 depth=args.depth, activation=args.activation, loss=args.loss, seconds=seconds, saved=saved,
                 note=note, status=sol.info.get("status", "finished"), seed=sol.info.get("rng_seed", args.seed))
        if args.summary:
            d["summary"] = _summary(sol, X, y, args.beta, args.loss)
        print(json.dumps(_jsonable(d)))
        return 0
    _print_result(d, {"network": _describe(sol.network), "data": f"n = {X.shape[0]}, d = {X.shape[1]}",
                      "time": f"{seconds:.3g} s", "saved": saved,
                      "status": "stopped at the time limit" if sol.info.get("status") == "time_limit" else None,
                      "note": note})
    if args.summary:
        s = _summary(sol, X, y, args.beta, args.loss)
        print(s if s is not None else "(no summary available: deepdual.report is missing)")
    return 0


def _cmd_certify(args: argparse.Namespace) -> int:
    import deepdual

    from .problem import resolve_problem

    net = _load_network(args.network, args.activation)
    # the problem saved with the network (solve --out) is the default; a contradicting
    # --beta/--loss is refused (docs/cli.md)
    beta, lossf, opts = resolve_problem(net, args.beta, args.loss, {}, prefix="--")
    args.beta, args.loss = beta, lossf.name
    X, y, _ = load_data(args.data, args.target)
    if net.activation == "relu":  # the branch-and-bound dual-constraint oracle (docs/convex_program.md §11)
        if args.time_limit is not None:
            opts["time_limit"] = args.time_limit
        if args.progress:
            opts["progress"] = True
    cert = deepdual.certify(net, X, y, beta=beta, loss=lossf, rtol=args.rtol, **opts)
    d = cert.as_dict()
    if args.json:
        d.update(network=_describe(net), n=int(X.shape[0]), d=int(X.shape[1]), beta=args.beta, loss=args.loss)
        if args.summary:
            d["summary"] = _summary(net, X, y, args.beta, args.loss)
        print(json.dumps(_jsonable(d)))
        return 0
    _print_result(d, {"network": _describe(net), "data": f"n = {X.shape[0]}, d = {X.shape[1]}"})
    if args.summary:
        s = _summary(net, X, y, args.beta, args.loss)
        print(s if s is not None else "(no summary available: deepdual.report is missing)")
    return 0


def output_directory(out: str | os.PathLike, force: bool) -> pathlib.Path:
    """Directory to write into: ``out`` if it is new or empty (or ``force``), else the
    first free numbered sibling ``out-1``, ``out-2``, ... (announced on stderr)."""
    p = pathlib.Path(out)
    if p.exists() and not p.is_dir():
        raise CLIError(f"--out {str(p)!r} exists and is not a directory")
    if p.is_dir() and any(p.iterdir()):
        if force:
            print(f"{PROG}: writing into the non-empty directory {str(p)!r} (--force); files may be replaced",
                  file=sys.stderr)
        else:
            k = 1
            while True:
                q = p.with_name(f"{p.name}-{k}")
                if not q.exists() or (q.is_dir() and not any(q.iterdir())):
                    break
                k += 1
            print(f"{PROG}: {str(p)!r} is not empty; writing to {str(q)!r} instead "
                  "(pass --force to write into it)", file=sys.stderr)
            p = q
    p.mkdir(parents=True, exist_ok=True)
    return p


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from . import reproduce

    if args.name == "list":
        for name in reproduce.EXPERIMENTS:
            try:
                desc = reproduce.load(name).DESCRIPTION
            except ImportError as exc:
                desc = f"(not available: {exc})"
            print(f"{name:<20} {desc}")
        return 0
    if args.out is None:
        raise CLIError("the following arguments are required: --out")
    try:
        module = reproduce.load(args.name)
    except ModuleNotFoundError as exc:
        raise CLIError(f"experiment {args.name!r} is not available in this installation ({exc})") from None
    kwargs: dict[str, Any] = {}
    params = inspect.signature(module.run).parameters
    if args.dataset is not None or args.data:
        if "dataset" not in params:
            raise CLIError(f"experiment {args.name!r} takes no --dataset/--data")
        if args.dataset is not None:
            kwargs["dataset"] = args.dataset
        if args.data:
            kwargs["data_paths"] = list(args.data)
    out = output_directory(args.out, args.force)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    t0 = time.perf_counter()
    module.run(out, quick=args.quick, seed=args.seed, progress=progress, **kwargs)
    seconds = time.perf_counter() - t0
    files = sorted(str(f.relative_to(out)) for f in out.rglob("*") if f.is_file())
    print(f"{args.name}: finished in {seconds:.1f} s; wrote {len(files)} file(s) to {out}:")
    for f in files:
        print(f"  {f}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    out = output_directory(args.out, args.force)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    run_demo(out, quick=args.quick, progress=progress, stream=sys.stdout)
    return 0


# ---------------------------------------------------------------------------- parser
def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return v


def _nonnegative_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer: {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return v


def _depth(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer: {text!r}") from None
    if v < 2:
        raise argparse.ArgumentTypeError(f"must be an integer >= 2, got {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .losses import LOSSES
    from .reproduce import EXPERIMENTS

    p = _Parser(prog=PROG, description="Exact global optima and duality certificates for regularized "
                                       "neural networks (Ergen & Pilanci, ICML 2021).")
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def data_args(sp: argparse.ArgumentParser, stored: bool = False) -> None:
        # stored=True (certify): --beta and --loss default to the values the network file records
        sp.add_argument("--target", metavar="COLUMN",
                        help="label column of a CSV (name or 0-based index; several separated by commas "
                             "for vector labels) or label array of an .npz (default 'y')")
        sp.add_argument("--beta", type=_positive_float, required=not stored,
                        help="weight decay: objective = loss + (beta/2) * sum of squared weights"
                             + (" (default: the value saved with the network)" if stored else ""))
        sp.add_argument("--loss", default=None if stored else "squared", choices=sorted(LOSSES),
                        help="loss (default: " + ("the one saved with the network, else " if stored else "")
                             + "squared)")
        sp.add_argument("--rtol", type=_positive_float, default=1e-6,
                        help="relative gap under which the result is certified (default 1e-6)")
        sp.add_argument("--json", action="store_true", help="print one JSON object")
        sp.add_argument("--summary", action="store_true",
                        help="also print the structure report (deepdual.summarize)")

    s = sub.add_parser("solve", help="globally optimal network for a data set, with its certificate",
                       description="Solve for the globally optimal regularized network of any width.")
    s.add_argument("data", metavar="DATA", help="CSV file with a header row, or .npz with arrays X and y")
    data_args(s)
    s.add_argument("--depth", type=_depth, default=2, help="number of layers L >= 2 (default 2)")
    s.add_argument("--activation", default="relu", choices=["relu", "linear"], help="default relu")
    s.add_argument("--bias", action="store_true",
                   help="biases: unpenalized on 1-D data (ReLU, any depth) and for linear networks (output "
                        "bias); penalized hidden biases for ReLU depth 2 on d > 1 (see the note)")
    s.add_argument("--method", default="auto", help="force a theorem/solver (default auto)")
    s.add_argument("--regularization", default="weight_decay", choices=["weight_decay", "path"],
                   help="weight_decay (default) or path: path-regularized parallel networks, depth 2 or 3, "
                        "small data (docs/path_regularization.md)")
    s.add_argument("--architecture", default=None, choices=["linear_on_data", "deep_narrow"],
                   help="1-D data, depth >= 3, with --bias: linear_on_data (default; weight decay) or "
                        "deep_narrow (sums of width-one ReLU chains with the l_L penalty of Zeger et al. 2024; "
                        "docs/one_dimensional.md §10)")
    s.add_argument("--out", metavar="FILE", help="save the optimal network (.npz)")
    s.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    s.add_argument("--seed", type=_nonnegative_int, default=0,
                   help="seed of sampled activation patterns (ReLU; default 0: identical runs agree)")
    s.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    s.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    s.add_argument("--time-limit", type=_positive_float, metavar="SECONDS",
                   help="stop the solver after SECONDS with its best network (reported as stopped; "
                        "certified only if the proven gap closed)")
    s.set_defaults(func=_cmd_solve)

    c = sub.add_parser("certify", help="certify a saved network: objective, proven lower bound, gap",
                       description="Certify a saved network on a data set by weak duality.")
    c.add_argument("network", metavar="NETWORK",
                   help="network .npz (Network.save), or a torch state dict .pt of an nn.Sequential MLP "
                        "(Linear/ReLU) or of a module from Network.to_torch or train")
    c.add_argument("data", metavar="DATA", help="CSV file with a header row, or .npz with arrays X and y")
    data_args(c, stored=True)
    c.add_argument("--activation", choices=["relu", "linear"],
                   help="activation of a .pt state dict that does not record it (an nn.Sequential "
                        "state dict with modules between its Linear layers); checked against it otherwise")
    c.add_argument("--time-limit", type=_positive_float, metavar="SECONDS",
                   help="seconds for the branch-and-bound bound on the dual constraint (ReLU, depth 2; "
                        "default 2); the bound reported is proven whenever it stops")
    c.add_argument("--progress", action="store_true",
                   help="log the bound's progress on stderr (time, nodes, objective, bound, gap)")
    c.set_defaults(func=_cmd_certify)

    r = sub.add_parser("reproduce", help="run one of the paper's experiments",
                       description="Run an experiment of the paper and write its plots and JSON.")
    r.add_argument("name", metavar="NAME", choices=[*EXPERIMENTS, "list"],
                   help=f"one of: {', '.join(EXPERIMENTS)}; 'list' describes them")
    r.add_argument("--out", metavar="DIR", help="output directory (a numbered sibling is used if it is not empty)")
    r.add_argument("--quick", action="store_true", help="small, fast version")
    r.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    r.add_argument("--force", action="store_true", help="write into DIR even if it is not empty")
    r.add_argument("--dataset", choices=["digits", "synthetic", "mnist", "cifar10"],
                   help="data set (figure2 only; default digits)")
    r.add_argument("--data", nargs="+", metavar="PATH",
                   help="data files: MNIST images and labels IDX files, or CIFAR-10 batch file(s)")
    r.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="show progress bars (default: when stderr is a terminal)")
    r.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    r.set_defaults(func=_cmd_reproduce)

    dm = sub.add_parser("demo", help="the main job on bundled data (digits): optima, certificates, plots",
                        description="Closed-form optima and certificates on scikit-learn's digits, "
                                    "a trained network certified, and plots.")
    dm.add_argument("--out", metavar="DIR", default="deepdual-output",
                    help="output directory for the plots (default deepdual-output; numbered sibling if not empty)")
    dm.add_argument("--quick", action="store_true", help="fewer training epochs")
    dm.add_argument("--force", action="store_true", help="write into DIR even if it is not empty")
    dm.add_argument("--progress", dest="progress", action="store_true", default=None,
                    help="show progress bars (default: when stderr is a terminal)")
    dm.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    dm.set_defaults(func=_cmd_demo)
    return p


def _one_line(exc: BaseException) -> str:
    msg = str(exc).strip() or type(exc).__name__
    if isinstance(exc, KeyError):
        msg = f"missing key {msg}"
    return " ".join(msg.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 2 error)."""
    try:
        parser = build_parser()
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        if args.command is None:
            parser.print_help()
            return 0
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"{PROG}: error: interrupted", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early: not an error
        # point stdout at devnull so the interpreter's final flush does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except SystemExit as exc:  # --help and --version exit 0 through argparse
        return int(exc.code or 0) if isinstance(exc.code, int) or exc.code is None else 2
    except Exception as exc:  # every error: one line, no traceback
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
