"""Neural collapse in a BatchNorm ReLU network: closed form vs direct training.

A deep ReLU network with batch normalization before the last layer is trained on
*arbitrary* (non-whitened, n > d) data with balanced one-hot labels.  The closed form of
:func:`deepdual.solve_batchnorm` gives the global optimum; its last hidden layer has
exactly collapsed classes whose centered means form a simplex equiangular tight frame
(cosines -1/(K-1), equal norms).  Full-batch L-BFGS training of the same network from
random initializations reaches the same objective and the same geometry when it finds
the global minimum; restarts stuck in spurious local minima (typically one class
direction missing from the last hidden layer) are visibly off the certified value.

Writes ``neural_collapse.png`` (training curves; cosine Gram matrices of the centered class
means for the closed form, the best and the worst restart, and the ideal ETF) and
``neural_collapse.json`` (objectives, gaps, ETF metrics: pairwise cosines vs -1/(K-1),
norm spread, within-class collapse NC1, classifier alignment NC3).
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import numpy as np

from ._common import output_dir

DESCRIPTION = "BatchNorm ReLU network on arbitrary data: class means form a simplex ETF (closed form vs training)"


def _data(K: int, per_class: int, d: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Balanced Gaussian mixture: K class centers in R^d plus isotropic noise."""
    labels = np.repeat(np.arange(K), per_class)
    centers = rng.standard_normal((K, d))
    X = centers[labels] + 0.8 * rng.standard_normal((labels.size, d))
    return X, np.eye(K)[labels]


def run(out: pathlib.Path, *, quick: bool = False, seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Run the experiment and write ``neural_collapse.png`` and ``neural_collapse.json`` into ``out``."""
    from ..relu.batchnorm.solver import (
        neural_collapse_metrics,
        simplex_etf_gram,
        solve_batchnorm,
        train_batchnorm,
    )

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - plot extra missing
        raise ImportError("the neural-collapse experiment needs matplotlib; install it with "
                          "`pip install deepdual[plot]`") from None

    out = output_dir(out)
    rng = np.random.default_rng(seed)
    K, per_class, d, depth = (4, 5, 5, 3) if quick else (6, 10, 8, 3)
    restarts, iters = (3, 200) if quick else (8, 1000)
    X, Y = _data(K, per_class, d, rng)
    n = X.shape[0]
    # beta well below sqrt(n/K) (the singular values of the centered one-hot labels),
    # so every class direction survives the shrinkage
    beta = 0.2 * np.sqrt(n / K)

    sol = solve_batchnorm(X, Y, beta=beta, depth=depth, rng=seed)
    nc_opt = sol.neural_collapse(Y)
    net, info = train_batchnorm(X, Y, beta=beta, depth=depth, width=K + 2, hidden_width=2 * n,
                                restarts=restarts, iters=iters, seed=seed, record=True, keep_all=True,
                                progress=progress)
    H = net.hidden(X, mode="train")
    nc_train = neural_collapse_metrics(H, Y, classifier=net.weights[-1])
    p_star = sol.lower_bound
    excess = (np.asarray(info["objectives"]) - p_star) / p_star
    # a restart "reaches" the optimum when within 1e-6 relative (the certification rtol)
    at_opt = int(np.sum(excess <= 1e-6))
    worst = int(np.argmax(excess))
    wnet = info["networks"][worst]
    nc_worst = neural_collapse_metrics(wnet.hidden(X, mode="train"), Y, classifier=wnet.weights[-1])

    fig, axes = plt.subplots(1, 5, figsize=(21, 4.2))
    ax = axes[0]
    for r, curve in enumerate(info["curves"]):
        c = np.asarray(curve)
        c = np.minimum.accumulate(c)  # best so far (line-search trial points go up and down)
        ax.semilogy(np.maximum(c - p_star, 1e-16) / p_star, lw=1, label=f"restart {r}")
    ax.set_xlabel("L-BFGS function evaluations")
    ax.set_ylabel(r"$(P - p^\star)/p^\star$")
    ax.set_title(f"direct training, depth {depth}, n={n} > d={d}")
    ax.legend(fontsize=7, ncol=2)
    grams = [
        (np.asarray(nc_opt["cosines"]),
         f"closed form: cos(class means)\nmax |cos + 1/(K-1)| = {nc_opt['max_cos_error']:.1e}"),
        (np.asarray(nc_train["cosines"]),
         f"best trained: cos(class means)\nmax |cos + 1/(K-1)| = {nc_train['max_cos_error']:.1e}"),
        (np.asarray(nc_worst["cosines"]),
         f"worst restart (P/p* - 1 = {excess[worst]:.1e})\nmax |cos + 1/(K-1)| = {nc_worst['max_cos_error']:.1e}"),
        (simplex_etf_gram(K), f"simplex ETF (off-diagonal {-1 / (K - 1):.3f})"),
    ]
    for ax, (G, title) in zip(axes[1:], grams):
        im = ax.imshow(G, vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(K))
        ax.set_yticks(range(K))
    fig.colorbar(im, ax=axes[1:].tolist(), shrink=0.8)
    png = out / "neural_collapse.png"
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)

    def _summ(m: dict[str, Any]) -> dict[str, Any]:
        return {k: m[k] for k in ("nc1", "norm_spread", "max_cos_error", "nc3", "mean_norms", "target_cosine")}

    results: dict[str, Any] = {
        "description": DESCRIPTION,
        "quick": bool(quick),
        "seed": int(seed),
        "n": int(n), "d": int(d), "K": int(K), "depth": int(depth), "beta": float(beta),
        "closed_form": {
            "objective": sol.objective,
            "lower_bound": sol.lower_bound,
            "relative_gap": sol.relative_gap,
            "certified": sol.certified,
            "route": sol.info["route"],
            "singular_values_centered_labels": sol.info["sigma"].tolist(),
            "predicted_mean_norm": float(np.sqrt(max(np.sqrt(n / K) - beta, 0.0) * (K - 1) / n)),
            "etf": _summ(nc_opt),
        },
        "training": {
            "restarts": int(restarts),
            "iters": int(iters),
            "objectives": [float(v) for v in info["objectives"]],
            "best": float(info["best"]),
            "relative_excess_over_closed_form": float((info["best"] - p_star) / p_star),
            "restarts_within_1e-6_of_optimum": at_opt,
            "etf": _summ(nc_train),
            "worst_restart": {"relative_excess": float(excess[worst]), "etf": _summ(nc_worst)},
        },
        "files": [png.name, "neural_collapse.json"],
    }
    with open(out / "neural_collapse.json", "w") as fh:
        json.dump(results, fh, indent=2)
    return results
