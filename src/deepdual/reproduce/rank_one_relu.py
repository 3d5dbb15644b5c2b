r"""A 5-layer ReLU network trained on rank-one data: every layer converges to rank one.

For rank-one data :math:`X = c\,a_0^T` with :math:`c \ge 0` every hidden activation is
:math:`A_l = c\,h_l^T` (ReLU commutes with the non-negative factor), so the network output
is :math:`\kappa c` and the optimal layers are rank one and aligned,
:math:`W_l = \varphi_{l-1}\varphi_l^T/\|\varphi_{l-1}\|` (docs/theory.md §2.4, the paper's rank-one theorem).

Training sees the same structure: the gradient of the first layer,
:math:`X^TG = a_0(c^TG)`, is rank one, and weight decay shrinks every other direction
geometrically.  The experiment trains 5-layer ReLU networks of width 20 from random
(full-rank) initializations and records, every few epochs, the *stable rank*
:math:`\|W_l\|_F^2/\|W_l\|_2^2` (a continuous effective rank, 1 exactly for rank-one
matrices) and the numerical rank of every layer, next to the objective compared with
the closed form (:func:`deepdual.solve`, certified).  The final networks are certified
with :func:`deepdual.certify` (exact for rank-one data).  Writes ``rank_one_relu.png``
and ``rank_one_relu.json``.
"""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np

from . import _common

DESCRIPTION = "5-layer ReLU network on rank-one data X = c a0^T: every layer converges to rank one (trained vs closed form)"

#: singular values below this fraction of a layer's largest count as zero for the numerical rank
RANK_RTOL = 1e-3


def rank_one_data(n: int, d: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    r"""``X = c a0^T`` with ``c >= 0`` and a label ``y = 2c + noise`` correlated with ``c``."""
    c = np.abs(rng.standard_normal(n))
    a0 = rng.standard_normal(d)
    return np.outer(c, a0), 2.0 * c + 0.5 * rng.standard_normal(n)


def _layer_ranks(weights: list[np.ndarray]) -> tuple[list[float], list[int]]:
    """Stable rank and numerical rank (relative to each layer's largest singular value) per layer."""
    stats = [_common.layer_stats(W, RANK_RTOL * float(np.linalg.norm(W, 2))) for W in weights]
    return [st["stable_rank"] for st in stats], [st["rank"] for st in stats]


def run(out: pathlib.Path, *, quick: bool = False, seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Run the experiment and write ``rank_one_relu.png`` and ``rank_one_relu.json`` into ``out``."""
    import deepdual
    from deepdual.plotting import (
        label_axes,
        new_figure,
        plot_effective_rank_history,
        plot_objective_history,
        save_figure,
    )

    out = _common.output_dir(out)
    rng = np.random.default_rng(seed)
    n, d, L, width, beta = 20, 10, 5, 20, 1.0
    X, y = rank_one_data(n, d, rng)
    sol = deepdual.solve(X, y, beta=beta, depth=L, activation="relu")
    epochs = 600 if quick else 3000
    every = max(1, epochs // 100)
    settings = [dict(optimizer="sgd", lr=0.002, momentum=0.9, seed=seed),
                dict(optimizer="adam", lr=0.01, momentum=0.0, seed=seed + 1)]
    if not quick:
        settings.append(dict(optimizer="sgd", lr=0.001, momentum=0.9, seed=seed + 2))

    runs = []
    for st in settings:
        track: dict[str, list] = {"epoch": [], "stable": [], "numerical": []}

        def cb(epoch: int, module: Any, _t: dict[str, list] = track) -> None:
            if epoch % every == 0:
                Ws = [lin.weight.detach().cpu().double().numpy() for lin in module.subnets[0]]
                sr, nr = _layer_ranks(Ws)
                _t["epoch"].append(epoch)
                _t["stable"].append(sr)
                _t["numerical"].append(nr)

        res = deepdual.train(X, y, beta=beta, depth=L, activation="relu", width=width, epochs=epochs,
                             progress=progress, callback=cb, **st)
        cert = deepdual.certify(res.network, X, y, beta=beta)
        _common.check_not_below(res.final_objective, sol.lower_bound, "rank_one_relu")
        sr, nr = _layer_ranks(res.network.weights[0])
        label = f"{st['optimizer'].upper()} lr={st['lr']:g}, seed {st['seed']}"
        runs.append({
            "label": label, **st, "epochs": res.epochs, "diverged": res.diverged,
            "final_objective": res.final_objective,
            "excess_over_closed_form": res.final_objective - sol.objective,
            "certificate": cert.as_dict(),
            "final_stable_rank": sr,
            "final_numerical_rank": nr,
            "rank_history": track,
            "history": res.history,
        })
    best = min(runs, key=lambda r: r["final_objective"])

    fig, axes = new_figure(1, 3, width=4.4, height=3.5)
    plot_objective_history({r["label"]: r["history"] for r in runs}, optimum=sol.objective,
                           optimum_label="closed form (certified)", ax=axes[0, 0], logy=True,
                           title=f"{L}-layer ReLU, rank-one data")
    plot_effective_rank_history(best["rank_history"]["epoch"], np.array(best["rank_history"]["stable"]),
                                ax=axes[0, 1], title=f"stable rank per layer ({best['label']})", logx=True)
    ax = axes[0, 2]
    nr = np.array(best["rank_history"]["numerical"])
    for l in range(nr.shape[1]):
        ax.step(best["rank_history"]["epoch"], nr[:, l], where="post", lw=1.2, label=f"layer {l + 1}")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(left=0)
    label_axes(ax, "epoch", f"numerical rank (rtol {RANK_RTOL:g})", "numerical rank per layer")
    save_figure(fig, out / "rank_one_relu.png")

    result = {
        "experiment": "rank-one-relu",
        "description": DESCRIPTION,
        "n": n, "d": d, "depth": L, "width": width, "beta": beta, "epochs": epochs, "seed": seed, "quick": quick,
        "closed_form": {"objective": float(sol.objective), "lower_bound": float(sol.lower_bound),
                        "certified": bool(sol.certified), "method": sol.method,
                        "stable_rank": _layer_ranks(sol.network.weights[0])[0]},
        "runs": runs,
        "best": {"label": best["label"], "final_objective": best["final_objective"],
                 "excess_over_closed_form": best["excess_over_closed_form"],
                 "final_stable_rank": best["final_stable_rank"],
                 "final_numerical_rank": best["final_numerical_rank"]},
        "checks": {"trained_never_below_lower_bound": True,
                   "best_all_layers_rank_one": all(v == 1 for v in best["final_numerical_rank"])},
        "files": ["rank_one_relu.png", "rank_one_relu.json"],
    }
    _common.write_json(out, "rank_one_relu.json", result)
    return result
