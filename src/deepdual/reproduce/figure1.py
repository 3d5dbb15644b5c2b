r"""Talk Figure 1: one-dimensional data, exact optimal ReLU networks are linear splines.

The same 1-D points are fitted with a small weight decay ``beta`` by

* the exact, certified two-layer optimum (:func:`deepdual.solve` with ``bias=True``,
  method ``one_dimensional``): a linear spline with kinks at data points;
* ReLU networks of depth 2, 3 and 4 (one hidden width, unpenalized biases) trained
  directly with PyTorch in float64 on the *same* objective
  ``1/2 sum (f(x_i) - y_i)^2 + beta/2 sum ||W_l||_F^2`` (Adam, then L-BFGS; the best of a few
  random initializations).

The trained networks approach the spline between the data points.  The two-layer nets are
certified against the exact optimum (:func:`deepdual.relu.one_dimensional.solver.certify_1d`); the
deeper ones receive the proven (loose) Lipschitz lower bound, and the JSON also records
the best depth-L network whose deeper layers act linearly on the data (the structure of
the paper's solutions), which direct training can beat: see ``docs/one_dimensional.md``.

Two more panels show the deep narrow networks of Zeger et al. (arXiv 2403.01046,
``architecture="deep_narrow"``, penalty :math:`\frac\beta L\sum|w|^L`) at L = 3 and L = 4:
the certified optimum (kinks at data points) and, for L = 4, the *reflection* points
:math:`2a_k - a_j` at which a feature of the paper's dictionary is dual-tight, i.e. where an
equally optimal network may put a kink (``docs/one_dimensional.md`` §10).

Writes ``figure1.png`` and ``figure1.json``.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import numpy as np

DESCRIPTION = "1-D data: the exact optimal ReLU network is a linear spline; trained depth-2/3/4 nets approach it"


def _data(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Unsorted points in [-2, 2] on a smooth curve with a little noise."""
    x = rng.uniform(-2.0, 2.0, n)
    y = np.sin(2.0 * x) + 0.3 * x + 0.1 * rng.standard_normal(n)
    return x, y


def _train(x: np.ndarray, y: np.ndarray, *, beta: float, depth: int, width: int, adam_steps: int,
           lbfgs_iters: int, seed: int, bar: Any = None):
    """One full-batch run (Adam, then L-BFGS) of a depth-``depth`` ReLU network with biases on
    deepdual's objective; returns a :class:`deepdual.Network`."""
    import torch

    from ..network import Network

    g = torch.Generator().manual_seed(int(seed))
    dt = torch.float64
    X = torch.as_tensor(x.reshape(-1, 1), dtype=dt)
    Y = torch.as_tensor(y.reshape(-1, 1), dtype=dt)
    dims = [1] + [width] * (depth - 1) + [1]
    Ws, bs = [], []
    lo, hi = float(x.min()), float(x.max())
    for l in range(depth):
        W = torch.randn(dims[l], dims[l + 1], generator=g, dtype=dt) / np.sqrt(dims[l])
        Ws.append(W.requires_grad_())
        if l < depth - 1:
            if l == 0:
                # first-layer kinks spread over the data range
                t = lo + (hi - lo) * torch.rand(dims[1], generator=g, dtype=dt)
                b = -(W.detach()[0] * t)
            else:
                b = 0.1 * torch.randn(dims[l + 1], generator=g, dtype=dt)
            bs.append(b.clone().requires_grad_())
    ob = torch.zeros(1, dtype=dt, requires_grad=True)
    params = Ws + bs + [ob]

    def objective():
        a = X
        for l, W in enumerate(Ws):
            a = a @ W
            if l < depth - 1:
                a = torch.relu(a + bs[l])
        return 0.5 * ((a + ob - Y) ** 2).sum() + 0.5 * beta * sum((W ** 2).sum() for W in Ws)

    adam = torch.optim.Adam(params, lr=1e-2)
    for _ in range(adam_steps):
        adam.zero_grad()
        v = objective()
        v.backward()
        adam.step()
        if bar is not None:
            bar.update(1)
    lbfgs = torch.optim.LBFGS(params, lr=1.0, max_iter=lbfgs_iters, history_size=50, tolerance_grad=1e-12,
                              tolerance_change=1e-16, line_search_fn="strong_wolfe")

    def closure():
        lbfgs.zero_grad()
        v = objective()
        v.backward()
        return v

    lbfgs.step(closure)
    if bar is not None:
        bar.update(1)
    return Network([[W.detach().numpy().copy() for W in Ws]], "relu",
                   biases=[[b.detach().numpy().copy() for b in bs]], output_bias=ob.detach().numpy().copy(),
                   scalar_output=True)


def _deep_narrow_panels(x: np.ndarray, y: np.ndarray, beta: float) -> dict[int, dict[str, Any]]:
    """Certified deep narrow optima (L = 3, 4) and, for L = 4, the reflection kinks of the paper's
    dictionary features that are dual-tight (|v^T a| = beta at the optimum's dual point)."""
    import deepdual
    from ..relu.one_dimensional.reflections import paper_dictionary, unit_chain

    X = x.reshape(-1, 1)
    out: dict[int, dict[str, Any]] = {}
    for L in (3, 4):
        sol = deepdual.solve(X, y, beta=beta, depth=L, bias=True, architecture="deep_narrow")
        rec: dict[str, Any] = {"solution": sol, "kinks": [float(k) for k in sol.info["kinks"]]}
        if L == 4 and sol.dual is not None:
            A, labels = paper_dictionary(x, 4)
            corr = np.abs(np.asarray(sol.dual).reshape(-1) @ A)
            refl = []
            for j in np.flatnonzero(corr >= beta * (1 - 1e-7)):
                signs, t, pts, reflected = labels[j]
                if not reflected or np.min(np.abs(x - t)) <= 1e-12:
                    continue
                e = 1e-6 * max(float(np.ptp(x)), 1.0)
                v = unit_chain(np.array([t - e, t, t + e]), signs, (t,) + pts)
                if abs((v[2] - v[1]) - (v[1] - v[0])) > 1e-3 * e:  # the feature has a kink at t
                    refl.append(float(t))
            rec["tight_reflection_kinks"] = sorted(set(np.round(refl, 12).tolist()))
        out[L] = rec
    return out


def run(out: pathlib.Path, *, quick: bool = False, seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Run the experiment and write ``figure1.png`` and ``figure1.json`` into ``out``.

    ``quick=True`` uses fewer points, narrower networks and shorter training (well under
    a minute).  Returns the JSON-able results.
    """
    import deepdual
    from .._torch import require_torch
    from ..relu.one_dimensional.solver import certify_1d, interpolate

    torch = require_torch()
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - plot extra missing
        raise ImportError("figure1 needs matplotlib; install it with `pip install deepdual[plot]`") from None
    out = pathlib.Path(out)
    if not out.is_dir():
        raise ValueError(f"`out` must be an existing directory, got {str(out)!r}")
    rng = np.random.default_rng(seed)
    n = 8 if quick else 14
    width = 16 if quick else 64
    adam_steps = 400 if quick else 4000
    lbfgs_iters = 200 if quick else 1500
    restarts = 1 if quick else 3
    beta = 1e-2  # small (near interpolation) yet large enough for training to reach the optimum
    depths = (2, 3, 4)
    x, y = _data(n, rng)
    X = x.reshape(-1, 1)

    sol = deepdual.solve(X, y, beta=beta, bias=True)
    interp = interpolate(x, y)
    class_opt = {L: deepdual.solve(X, y, beta=beta, depth=L, bias=True) for L in (3, 4)}

    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(depths) * restarts * (adam_steps + 1), desc="figure1: training", leave=False)
        except ImportError:  # pragma: no cover - tqdm comes with the torch extra
            bar = None
    torch.set_num_threads(1)
    trained: dict[int, Any] = {}
    results_nets = []
    try:
        for L in depths:
            best = None
            for r in range(restarts):
                net = _train(x, y, beta=beta, depth=L, width=width, adam_steps=adam_steps,
                             lbfgs_iters=lbfgs_iters, seed=seed * 1000 + 10 * L + r, bar=bar)
                val = deepdual.objective(net, X, y, beta=beta)
                if best is None or val < best[0]:
                    best = (val, net)
            val, net = best
            trained[L] = net
            cert = certify_1d(net, X, y.reshape(-1, 1), beta=beta, loss="squared")
            grid = np.linspace(x.min(), x.max(), 2001).reshape(-1, 1)
            dev = float(np.max(np.abs(net.predict(grid) - sol.predict(grid))))
            results_nets.append({
                "depth": L,
                "width": width,
                "objective": float(val),
                "relative_excess_over_two_layer_optimum": float((val - sol.objective) / sol.objective),
                "max_deviation_from_optimal_spline_on_hull": dev,
                "certificate": cert.as_dict(),
            })
    finally:
        if bar is not None:
            bar.close()

    narrow = _deep_narrow_panels(x, y, beta)

    # figure
    t = np.linspace(x.min() - 0.5, x.max() + 0.5, 2001).reshape(-1, 1)
    fig = plt.figure(figsize=(11.0, 8.0))
    grid = fig.add_gridspec(2, 2, height_ratios=(1.1, 1.0))
    ax = fig.add_subplot(grid[0, :])
    ax.plot(t[:, 0], sol.predict(t), color="black", lw=2.2, label=f"exact optimum (2 layers), P = {sol.objective:.5f}")
    styles = {2: ("tab:blue", "--"), 3: ("tab:orange", "-."), 4: ("tab:green", ":")}
    for rec in results_nets:
        L = rec["depth"]
        c, ls = styles[L]
        ax.plot(t[:, 0], trained[L].predict(t), color=c, ls=ls, lw=1.8,
                label=f"trained, depth {L}, P = {rec['objective']:.5f}")
    ax.scatter(x, y, color="crimson", zorder=5, s=30, label="data")
    for k in sol.info.get("knots", []):
        ax.axvline(k, color="0.85", lw=0.8, zorder=0)
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    ax.set_title(rf"1-D data, $\beta$ = {beta:g}: optimal ReLU networks are linear splines")
    ax.legend(fontsize=8, loc="best")
    for col, L in enumerate((3, 4)):
        axl = fig.add_subplot(grid[1, col])
        rec = narrow[L]
        dn = rec["solution"]
        axl.plot(t[:, 0], dn.predict(t), color="black", lw=2.0,
                 label=f"certified optimum, P = {dn.objective:.5f}")
        axl.scatter(x, y, color="crimson", zorder=5, s=24, label="data")
        for i, k in enumerate(rec["kinks"]):
            axl.axvline(k, color="tab:blue", lw=0.9, ls="--", zorder=0, label="kinks (data points)" if i == 0 else None)
        for i, k in enumerate(rec.get("tight_reflection_kinks", [])):
            axl.axvline(k, color="tab:purple", lw=1.1, ls=":", zorder=0,
                        label="tight reflection kinks 2a_k - a_j" if i == 0 else None)
        axl.set_xlim(t[0, 0], t[-1, 0])
        axl.set_xlabel("x")
        axl.set_title(f"deep narrow, L = {L}, l_L penalty (arXiv 2403.01046)", fontsize=9)
        axl.legend(fontsize=7, loc="best")
    png = out / "figure1.png"
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)

    results = {
        "experiment": "figure1",
        "description": DESCRIPTION,
        "quick": bool(quick),
        "seed": int(seed),
        "beta": beta,
        "objective_convention": "1/2 sum (f(x_i) - y_i)^2 + beta/2 sum_l ||W_l||_F^2, biases unpenalized",
        "data": {"x": x.tolist(), "y": y.tolist()},
        "optimum": {
            **sol.as_dict(),
            "knots": [float(k) for k in sol.info.get("knots", [])],
            "neurons": int(sol.info.get("neurons", 0)),
        },
        "interpolant_cost": float(interp.cost),
        "deep_class_optimum": {
            str(L): {"objective": float(s.objective), "proven_lower_bound_all_networks": float(s.lower_bound),
                     "class_lower_bound": float(s.info["class_lower_bound"])}
            for L, s in class_opt.items()
        },
        "trained": results_nets,
        "deep_narrow": {
            str(L): {**rec["solution"].as_dict(), "kinks": rec["kinks"],
                     "regularization": "beta/L sum |w|^L (l_L), biases free",
                     **({"tight_reflection_kinks": rec["tight_reflection_kinks"]}
                        if "tight_reflection_kinks" in rec else {})}
            for L, rec in narrow.items()
        },
        "files": ["figure1.png", "figure1.json"],
    }
    with open(out / "figure1.json", "w") as fh:
        json.dump(results, fh, indent=2)
    return results
