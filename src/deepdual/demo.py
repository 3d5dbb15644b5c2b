r"""``deepdual demo``: the main job on bundled data (scikit-learn's handwritten digits).

Three real runs, printed as they finish, with plots written to the output directory:

(a) **Linear networks** on all 1797 digits (label: digit >= 5): the globally optimal
    two- and three-layer linear networks (:func:`deepdual.solve`, docs/theory.md §2.2--2.3) with
    their duality certificates.
(b) **Deep ReLU networks on whitened digits**: 40 training images (4 per class),
    whitened (:math:`XX^T = I`), one-hot labels -- the closed form of the whitened-data
    theorem (docs/theory.md §2.6) for depths 2 and 3, with the certificate, train and test
    accuracy (the 1757 held-out images mapped by the training whitening).
(c) **A trained network certified**: a two-layer ReLU network of width 50 trained with
    SGD (:func:`deepdual.train`) on the same data, certified every few epochs by
    :func:`deepdual.certify`; the gap to the proven lower bound shrinks to zero.

Writes ``demo.png`` and ``demo.json``.
"""

from __future__ import annotations

import json
import pathlib
import sys
import time
from typing import Any, TextIO

import numpy as np

__all__ = ["run_demo"]


def _yes(b: bool) -> str:
    return "yes" if b else "no"


def run_demo(out: str | pathlib.Path, *, quick: bool = False, progress: bool = True,
             stream: TextIO | None = None) -> dict[str, Any]:
    """Run the demo, print its results to ``stream`` and write ``demo.png``/``demo.json`` into ``out``.

    Returns
    -------
    dict
        The contents of ``demo.json``.
    """
    import deepdual
    from deepdual.datasets import load_digits_data, prepare_whitened
    from deepdual.plotting import new_figure, plot_objective_history, save_figure

    stream = sys.stdout if stream is None else stream
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)

    def say(line: str = "") -> None:
        print(line, file=stream, flush=True)

    t_start = time.perf_counter()
    X, y = load_digits_data()
    n, d = X.shape
    say(f"deepdual demo on scikit-learn's handwritten digits: {n} images of {d} pixels, 10 classes")
    say("objective P = 1/2 ||f(X) - Y||^2 + (beta/2) * sum of squared weights; 'lower bound' is a proven")
    say("lower bound on P over networks of every width (weak duality), 'gap' = objective - lower bound")
    say()

    # ------------------------------------------------------------------ (a)
    beta_a = 10.0
    target = (y >= 5).astype(float)
    say(f"(a) linear networks, all {n} images, label 'digit >= 5' (0/1), beta = {beta_a:g}")
    say(f"    {'L':>2}  {'objective':>14}  {'lower bound':>14}  {'gap':>9}  certified  method")
    part_a = []
    for L in (2, 3):
        t0 = time.perf_counter()
        sol = deepdual.solve(X, target, beta=beta_a, depth=L, activation="linear")
        dt = time.perf_counter() - t0
        say(f"    {L:>2}  {sol.objective:>14.8f}  {sol.lower_bound:>14.8f}  {sol.gap:>9.2g}  {_yes(sol.certified):>9}  "
            f"{sol.method} ({dt:.2g} s)")
        part_a.append({"depth": L, **sol.as_dict(), "seconds": dt})
    say()

    # ------------------------------------------------------------------ (b)
    beta = 0.5
    split = prepare_whitened(X, y, n_per_class=4, rng=0, name="digits")
    Xw, Yw, Xte, yte = split.X_train, split.Y_train, split.X_test, split.y_test

    def acc(net: Any, A: np.ndarray, labels: np.ndarray) -> float:
        return float(np.mean(np.argmax(net.forward(A), axis=1) == labels))

    say(f"(b) deep ReLU closed form on whitened digits: {Xw.shape[0]} training images (4 per class), "
        f"X X^T = I, one-hot labels, beta = {beta:g}; {yte.size} held-out test images")
    say(f"    {'L':>2}  {'objective':<20}  {'value':>10}  {'lower bound':>11}  certified  train acc  test acc")
    part_b = []
    for L, form in ((2, "weight_decay"), (3, "weight_decay"), (3, "norm_constrained")):
        opts = {} if form == "weight_decay" else {"formulation": form}
        sol = deepdual.solve(Xw, Yw, beta=beta, depth=L, activation="relu", **opts)
        name = "weight decay" if form == "weight_decay" else "norm-constrained"
        row = {"depth": L, "formulation": form, **sol.as_dict(), "train_accuracy": acc(sol.network, Xw, split.y_train),
               "test_accuracy": acc(sol.network, Xte, yte), "note": sol.info.get("note")}
        part_b.append(row)
        say(f"    {L:>2}  {name:<20}  {sol.objective:>10.6f}  {sol.lower_bound:>11.6f}  {_yes(sol.certified):>9}  "
            f"{row['train_accuracy']:>9.3f}  {row['test_accuracy']:>8.3f}")
    say("    depth 3, weight decay: the per-class closed-form value is not certified (its proven lower bound is")
    say("    smaller; with three or more classes it need not be optimal, docs/relu.md §2.3); in the paper's")
    say("    norm-constrained form (||W_1|| <= 1, last two layers penalized) it is certified.")
    say()

    # ------------------------------------------------------------------ (c)
    epochs = 150 if quick else 1000
    every = max(1, epochs // 40)
    opt_b2 = part_b[0]["objective"]
    lr, momentum = 0.05, 0.9
    say(f"(c) a two-layer ReLU network of width 50 trained by SGD (lr {lr:g}, momentum {momentum:g}, "
        f"{epochs} epochs, full batch) on the same data, certified by deepdual.certify")
    checkpoints: dict[str, list[float]] = {"epoch": [], "objective": [], "lower_bound": []}

    def certify_checkpoint(epoch: int, module: Any) -> None:
        if epoch % every == 0 or epoch == epochs:
            net = deepdual.Network.from_torch(module, activation="relu", scalar_output=False)
            cert = deepdual.certify(net, Xw, Yw, beta=beta)
            checkpoints["epoch"].append(epoch)
            checkpoints["objective"].append(cert.objective)
            checkpoints["lower_bound"].append(cert.lower_bound)

    res = deepdual.train(Xw, Yw, beta=beta, depth=2, activation="relu", width=50, optimizer="sgd", lr=lr,
                         momentum=momentum, epochs=epochs, seed=0, progress=progress, callback=certify_checkpoint)
    cert = deepdual.certify(res.network, Xw, Yw, beta=beta)
    say(f"    trained objective   {cert.objective:.8f}   ({res.seconds:.2g} s)")
    say(f"    proven lower bound  {cert.lower_bound:.8f}   ({cert.method})")
    say(f"    gap                 {cert.gap:.3g}  (relative {cert.relative_gap:.2g}): no network of any width "
        f"does better than the lower bound; certified at rtol 1e-6: {_yes(cert.certified)}")
    say(f"    closed form (b)     {opt_b2:.8f};  test accuracy trained {acc(res.network, Xte, yte):.3f}, "
        f"closed form {part_b[0]['test_accuracy']:.3f}")
    say()

    # ------------------------------------------------------------------ plots
    fig, axes = new_figure(1, 2, width=5.0, height=3.6)
    plot_objective_history({"SGD, width 50": res.history}, optimum=opt_b2, lower_bound=cert.lower_bound,
                           optimum_label="closed form (certified optimum)", ax=axes[0, 0],
                           title="(c) training objective, L = 2")
    axes[0, 0].set_ylim(opt_b2 - 0.5, opt_b2 + 6.0)
    gap = np.asarray(checkpoints["objective"]) - np.asarray(checkpoints["lower_bound"])
    ax = axes[0, 1]
    ax.semilogy(checkpoints["epoch"], np.where(gap > 0, gap, np.nan), "o-", ms=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel("objective - proven lower bound")
    ax.set_title("(c) certified gap of the trained network")
    fig.suptitle(f"whitened digits, n = {Xw.shape[0]}, d = {d}, K = 10, beta = {beta:g}")
    png = save_figure(fig, out / "demo.png")
    result = {
        "linear": part_a,
        "whitened_closed_form": part_b,
        "trained": {"objective": cert.objective, "lower_bound": cert.lower_bound, "gap": cert.gap,
                    "relative_gap": cert.relative_gap, "certified": cert.certified, "method": cert.method,
                    "epochs": res.epochs, "seconds": res.seconds, "history": res.history,
                    "checkpoints": checkpoints},
        "files": ["demo.png", "demo.json"],
    }
    (out / "demo.json").write_text(json.dumps(result, indent=1))
    say(f"wrote {png} and {out / 'demo.json'}  (total {time.perf_counter() - t_start:.1f} s)")
    say("more: deepdual reproduce list")
    return result
