r"""A 4-layer linear network: every layer has the same rank and the same norms.

For a deep linear network with data of orthonormal columns (:math:`X^TX = I`), weight
decay is equivalent to :math:`\min_M \tfrac12\|XM - Y\|_F^2 + \tfrac{\beta L}{2}\sum_i\sigma_i(M)^{2/L}`:
each singular value :math:`s_k` of :math:`X^TY` maps to
:math:`\arg\min_{\sigma\ge0}\tfrac12(\sigma - s_k)^2 + \tfrac{\beta L}{2}\sigma^{2/L}` (a jump, not a soft
threshold), and the optimal layers are balanced: :math:`W_l` share one set of singular
values :math:`\sigma_i^{1/L}`, so **all layers have the same rank** (set by beta) and
**equal Frobenius and operator norms** (docs/theory.md §2.3; the paper's deep linear experiment).

For every beta of a grid, the experiment computes the closed form
(:func:`deepdual.solve`, certified) and trains 4-layer networks from several random
initializations (scales and seeds) with L-BFGS (:func:`deepdual.train`).  Every trained
network is balanced (all stationary points are), but for :math:`L \ge 3` zero is a local
minimum of each singular direction, so single runs can land in a *spurious local
minimum of the wrong rank*; the best of the restarts reaches the certified optimum.
Writes ``deep_linear_layers.png`` and ``deep_linear_layers.json`` (per-layer rank,
Frobenius and operator norms, trained and closed form).
"""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np

from . import _common
from .rank_vs_beta import layer_stats, orthonormal_data

DESCRIPTION = "4-layer linear network: equal ranks and equal Frobenius/operator norms across layers (trained vs closed form)"

#: objectives within this relative difference count as the same optimum (L-BFGS in float64
#: converges to ~1e-12 relative on these problems; 1e-7 leaves room for slow directions)
_SAME = 1e-7

#: layer norms below this fraction of the natural scale s_1^(1/L) count as zero (the zero
#: network's weights decay geometrically under weight decay; L-BFGS stops near 1e-10)
_ZERO = 1e-6


def _stats(net: Any, scale: float) -> list[dict[str, Any]]:
    # a linear network's end-to-end map is sum_j prod_l W_{l,j}; the solvers and train() here
    # use one sub-network, whose layers are the ones compared
    return [layer_stats(W, scale) for W in net.weights[0]]


def _spread(values: list[float], floor: float) -> float:
    """Relative spread (max - min) / max of per-layer values (0 when all equal).

    Layers whose values are all below ``floor`` form the zero network (a local minimum
    for L >= 3), whose leftover norms are rounding noise: its spread counts as 0.
    """
    top = max(values)
    return float((top - min(values)) / top) if top > floor else 0.0


def run(out: pathlib.Path, *, quick: bool = False, seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Run the experiment and write ``deep_linear_layers.png`` and ``.json`` into ``out``."""
    import deepdual
    from deepdual.bounds import power_prox
    from deepdual.plotting import label_axes, new_figure, plot_layer_values, save_figure

    out = _common.output_dir(out)
    rng = np.random.default_rng(seed)
    n, d, K, L, width = 100, 20, 5, 4, 20
    X, Y = orthonormal_data(n, d, K, rng)
    s = np.linalg.svd(X.T @ Y, compute_uv=False)
    # the optimal layer singular values are sigma_i^(1/L) <= s_1^(1/L)
    scale = float(s[0] ** (1.0 / L))
    betas = [2.0, 6.0, 14.0] if quick else [float(b) for b in np.geomspace(0.5, 40.0, 10)]
    inits = [(1.5, seed), (2.0, seed + 1)] if quick else [(sc, seed + k) for k in range(2) for sc in (1.0, 1.5, 2.0)]
    epochs = 25 if quick else 50

    rows = []
    for beta in _common.progress_iter(betas, "deep linear layers", progress):
        sol = deepdual.solve(X, Y, beta=beta, depth=L, activation="linear")
        cf = {"objective": float(sol.objective), "lower_bound": float(sol.lower_bound),
              "certified": bool(sol.certified), "method": sol.method, "layers": _stats(sol.network, scale)}
        runs = []
        for init_scale, sd in inits:
            res = deepdual.train(X, Y, beta=beta, depth=L, activation="linear", width=width, optimizer="lbfgs",
                                 epochs=epochs, init_scale=init_scale, seed=sd, progress=False)
            layers = _stats(res.network, scale)
            runs.append({
                "init_scale": init_scale, "seed": sd,
                "objective": float(res.final_objective),
                "excess": float(res.final_objective - sol.objective),
                "reaches_optimum": bool(res.final_objective - sol.objective <= _SAME * abs(sol.objective)),
                "layers": layers,
                "rank_per_layer": [x["rank"] for x in layers],
                "frobenius_spread": _spread([x["frobenius"] for x in layers], _ZERO * scale),
                "operator_spread": _spread([x["operator"] for x in layers], _ZERO * scale),
                "_network": res.network,
            })
            _common.check_not_below(res.final_objective, sol.lower_bound, "deep_linear_layers",
                                    f" at beta = {beta}")
        best = min(runs, key=lambda r: r["objective"])
        cert = deepdual.certify(best.pop("_network"), X, Y, beta=beta)
        for r in runs:
            r.pop("_network", None)
        rows.append({
            "beta": float(beta),
            "rank_theory": [int(np.sum([power_prox(sk, 0.5 * beta * L, 2.0 / L).sigma > 0
                                        for sk in s]))] * L,
            "closed_form": cf,
            "closed_form_rank_per_layer": [x["rank"] for x in cf["layers"]],
            "closed_form_frobenius_spread": _spread([x["frobenius"] for x in cf["layers"]], _ZERO * scale),
            "closed_form_operator_spread": _spread([x["operator"] for x in cf["layers"]], _ZERO * scale),
            "runs": runs,
            "best": {k: v for k, v in best.items()},
            "best_certificate": cert.as_dict(),
            "fraction_reaching_optimum": sum(r["reaches_optimum"] for r in runs) / len(runs),
        })

    # ------------------------------------------------------------------ figure
    b = [r["beta"] for r in rows]
    fig, axes = new_figure(1, 4, width=4.0, height=3.4)

    def per_layer(key: str, which: str) -> np.ndarray:
        src = (lambda r: r["closed_form"]["layers"]) if which == "cf" else (lambda r: r["best"]["layers"])
        return np.array([[x[key] for x in src(r)] for r in rows], dtype=float)

    for c, (key, lab) in enumerate((("rank", "rank"), ("frobenius", "Frobenius norm"), ("operator", "operator norm"))):
        ax = plot_layer_values(b, per_layer(key, "best"), per_layer(key, "cf"), ylabel=lab, ax=axes[0, c],
                               title=f"{lab} per layer (best of {len(inits)} runs)")
        ax.set_xscale("log")
        ax.minorticks_off()
    ax = axes[0, 3]
    for k in range(len(inits)):
        ex = [max(r["runs"][k]["excess"], 1e-12) for r in rows]
        ax.plot(b, ex, "o-", ms=4, lw=0.8, label=f"init scale {inits[k][0]:g}, seed {inits[k][1]}")
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_yscale("log")
    label_axes(ax, r"$\beta$", "trained - closed form objective (floor 1e-12)", "restarts: spurious local minima",
               fontsize="x-small")
    fig.suptitle(f"{L}-layer linear network, X^T X = I (n = {n}, d = {d}, K = {K}), width {width}")
    save_figure(fig, out / "deep_linear_layers.png")

    result = {
        "experiment": "deep-linear-layers",
        "description": DESCRIPTION,
        "n": n, "d": d, "K": K, "depth": L, "width": width, "seed": seed, "quick": quick,
        "singular_values_XtY": [float(v) for v in s],
        "rank_scale": scale,
        "rows": rows,
        "checks": {
            "trained_never_below_lower_bound": True,
            "closed_form_equal_ranks": all(len(set(r["closed_form_rank_per_layer"])) == 1 for r in rows),
            "best_trained_equal_ranks": all(len(set(r["best"]["rank_per_layer"])) == 1 for r in rows),
            "best_trained_rank_matches_closed_form": all(
                r["best"]["rank_per_layer"] == r["closed_form_rank_per_layer"] for r in rows),
            "max_closed_form_norm_spread": max(max(r["closed_form_frobenius_spread"], r["closed_form_operator_spread"])
                                               for r in rows),
            "max_trained_norm_spread": max(max(x["frobenius_spread"], x["operator_spread"])
                                           for r in rows for x in r["runs"]),
        },
        "files": ["deep_linear_layers.png", "deep_linear_layers.json"],
    }
    _common.write_json(out, "deep_linear_layers.json", result)
    return result
