r"""Rank of the first layer of a two-layer linear network against beta.

For a two-layer linear network with vector output and data with orthonormal columns
(:math:`X^TX = I_d`), training with weight decay is equivalent to

.. math:: \min_M \tfrac12\|XM - Y\|_F^2 + \beta\|M\|_*,

solved by the singular-value soft threshold :math:`M^\star = U(\Sigma - \beta I)_+V^T` of
:math:`X^TY = U\Sigma V^T` (docs/theory.md §2.2).  The optimal first layer is
:math:`W_1 = U(\Sigma-\beta I)_+^{1/2}` (balanced factors), so

.. math:: \operatorname{rank}(W_1) = \#\{k : \sigma_k(Y^TX) > \beta\},

a step function of beta that drops by one *exactly* at each singular value of
:math:`Y^TX` -- the paper's rank-vs-beta experiment (d = 20, width 50, K = 5).

The experiment computes the rank from the closed form (:func:`deepdual.solve`) on a fine
beta grid and at :math:`\sigma_k(1 \pm 10^{-6})` on each side of every singular value,
and from networks of width 50 trained with L-BFGS (:func:`deepdual.train`) on a coarser
grid, each certified with :func:`deepdual.certify`.  Writes ``rank_vs_beta.png`` and
``rank_vs_beta.json``.
"""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np

from . import _common

DESCRIPTION = "Two-layer linear network: rank(W1) vs beta jumps at the singular values of Y^T X (trained and closed form)"

#: a singular value of a layer counts toward its rank above this fraction of the layer's
#: natural scale; the optimal nonzero singular values are sqrt(s_k - beta), so this
#: misreads the rank only for beta within 1e-8 s_1 of a singular value s_k
RANK_RTOL = 1e-4


def orthonormal_data(n: int, d: int, K: int, rng: np.random.Generator,
                     scales: tuple[float, ...] = (8.0, 6.0, 4.0, 2.0, 1.0),
                     noise: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    r"""``X`` (n, d) with orthonormal columns and ``Y = X A + noise`` with well-separated
    singular values of :math:`Y^TX` (``A`` has column scales ``scales``)."""
    X, _ = np.linalg.qr(rng.standard_normal((n, d)))
    sc = np.resize(np.asarray(scales, dtype=float), K)
    A = rng.standard_normal((d, K)) * sc
    Y = X @ A + noise * rng.standard_normal((n, K))
    return X, Y


def layer_stats(W: np.ndarray, scale: float) -> dict[str, Any]:
    """Rank (singular values above ``RANK_RTOL * scale``), Frobenius norm, operator norm and
    stable rank of a layer."""
    return _common.layer_stats(W, RANK_RTOL * scale)


def numerical_rank(W: np.ndarray, scale: float) -> int:
    """Number of singular values of ``W`` above ``RANK_RTOL * scale``."""
    return layer_stats(W, scale)["rank"] if W.size else 0


def run(out: pathlib.Path, *, quick: bool = False, seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Run the experiment and write ``rank_vs_beta.png`` and ``rank_vs_beta.json`` into ``out``."""
    import deepdual
    from deepdual.plotting import label_axes, new_figure, plot_rank_vs_beta, save_figure

    out = _common.output_dir(out)
    rng = np.random.default_rng(seed)
    n, d, K, width = 100, 20, 5, 50
    X, Y = orthonormal_data(n, d, K, rng)
    s = np.linalg.svd(Y.T @ X, compute_uv=False)
    scale = float(np.sqrt(s[0]))  # scale of W1's singular values sqrt(s_k - beta)

    def closed_rank(beta: float) -> tuple[int, Any]:
        sol = deepdual.solve(X, Y, beta=beta, depth=2, activation="linear")
        return numerical_rank(sol.network.weights[0][0], scale), sol

    # closed form on a fine grid (cheap) and right at every singular value
    fine = np.linspace(0.02 * s[-1], 1.15 * s[0], 120 if quick else 400)
    fine_rank = [closed_rank(b)[0] for b in fine]
    jumps = []
    for k, sk in enumerate(s):
        below, above = closed_rank(sk * (1 - 1e-6))[0], closed_rank(sk * (1 + 1e-6))[0]
        jumps.append({"singular_value": float(sk), "rank_below": below, "rank_above": above,
                      "theory_below": k + 1, "theory_above": k,
                      "jump_here": below == k + 1 and above == k})

    # trained networks on a coarser grid
    coarse = np.linspace(0.1 * s[-1], 1.1 * s[0], 8 if quick else 30)
    epochs = 10 if quick else 30
    rows = []
    for i, beta in enumerate(_common.progress_iter(coarse, "rank vs beta", progress)):
        beta = float(beta)
        rc, sol = closed_rank(beta)
        res = deepdual.train(X, Y, beta=beta, depth=2, activation="linear", width=width, optimizer="lbfgs",
                             epochs=epochs, seed=seed + i, progress=False)
        cert = deepdual.certify(res.network, X, Y, beta=beta)
        rows.append({
            "beta": beta,
            "rank_theory": int(np.sum(s > beta)),
            "rank_closed_form": rc,
            "rank_trained": numerical_rank(res.network.weights[0][0], scale),
            "singular_values_trained_W1": [float(v) for v in np.linalg.svd(res.network.weights[0][0],
                                                                             compute_uv=False)[:K + 1]],
            "objective_closed_form": float(sol.objective),
            "lower_bound_closed_form": float(sol.lower_bound),
            "certified_closed_form": bool(sol.certified),
            "objective_trained": float(res.final_objective),
            "certificate_trained": cert.as_dict(),
            "history": res.history,
        })
    agree = sum(r["rank_trained"] == r["rank_closed_form"] == r["rank_theory"] for r in rows)
    below_bound = [r["beta"] for r in rows
                   if r["objective_trained"] < r["lower_bound_closed_form"] - 1e-9 * abs(r["lower_bound_closed_form"])]
    if below_bound:
        raise RuntimeError(f"rank_vs_beta: a trained objective fell below the certified lower bound at beta = {below_bound}")

    fig, axes = new_figure(1, 2, width=5.2, height=3.8)
    ax = plot_rank_vs_beta(fine, fine_rank, singular_values=s, ax=axes[0, 0],
                           title=f"two-layer linear, d = {d}, width {width}, K = {K}")
    ax.plot([r["beta"] for r in rows], [r["rank_trained"] for r in rows], "o", mfc="none", ms=8, color="C1",
            label="trained (L-BFGS)")
    ax.legend(fontsize="small")
    ax = axes[0, 1]
    bb = np.linspace(0.0, fine[-1], 400)
    for k, sk in enumerate(s):
        ax.plot(bb, np.sqrt(np.maximum(sk - bb, 0.0)), color=f"C{k}", lw=1,
                label=r"closed form $\sqrt{(\sigma_k - \beta)_+}$" if k == 0 else None)
        ax.plot([r["beta"] for r in rows], [r["singular_values_trained_W1"][k] for r in rows], "o", mfc="none",
                color=f"C{k}", label="trained" if k == 0 else None)
    label_axes(ax, r"$\beta$", r"singular values of $W_1$", "first-layer singular values")
    save_figure(fig, out / "rank_vs_beta.png")

    result = {
        "experiment": "rank-vs-beta",
        "description": DESCRIPTION,
        "n": n, "d": d, "K": K, "width": width, "seed": seed, "quick": quick,
        "singular_values_YtX": [float(v) for v in s],
        "rank_rtol": RANK_RTOL,
        "closed_form_grid": {"beta": [float(b) for b in fine], "rank": fine_rank},
        "jumps": jumps,
        "all_jumps_at_singular_values": all(j["jump_here"] for j in jumps),
        "trained": rows,
        "trained_rank_agrees": f"{agree}/{len(rows)}",
        "checks": {"trained_never_below_lower_bound": True},
        "files": ["rank_vs_beta.png", "rank_vs_beta.json"],
    }
    _common.write_json(out, "rank_vs_beta.json", result)
    return result
