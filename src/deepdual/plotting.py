"""Plots for the experiments (the ``[plot]`` extra: matplotlib).

Every function draws on ``ax`` (a new figure's axes when ``None``) and returns the
Axes; none calls ``plt.show()`` or touches pyplot's global state or rcParams.
Figures are created with :class:`matplotlib.figure.Figure`, which renders through
the non-interactive Agg canvas when saved, so this works without a display.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = [
    "require_matplotlib",
    "new_figure",
    "save_figure",
    "label_axes",
    "plot_objective_history",
    "plot_objective_gap",
    "plot_accuracy_history",
    "plot_rank_vs_beta",
    "plot_layer_values",
    "plot_effective_rank_history",
]


def require_matplotlib():
    """Import matplotlib or raise an ImportError that names the extra."""
    try:
        import matplotlib
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError:  # pragma: no cover - exercised only without matplotlib
        raise ImportError("plotting needs matplotlib; install it with `pip install deepdual[plot]`") from None
    return matplotlib


def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = 4.2, height: float = 3.2, **kw: Any):
    """A new :class:`~matplotlib.figure.Figure` (not registered with pyplot) and its axes."""
    require_matplotlib()
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _ax(ax: Any):
    if ax is None:
        _, axes = new_figure()
        return axes[0, 0]
    return ax


def _plot_histories(ax: Any, histories: Mapping[str, Sequence[float]], *, epochs: Sequence[int] | None = None,
                    transform: Any = None) -> None:
    """One line per run: ``histories[label]`` (through ``transform``) against the epoch."""
    for label, h in histories.items():
        h = np.asarray(h, dtype=float)
        if transform is not None:
            h = transform(h)
        x = np.arange(h.size) if epochs is None else np.asarray(epochs)[: h.size]
        ax.plot(x, h, lw=1.2, label=label)


def label_axes(ax: Any, xlabel: str, ylabel: str, title: str | None = None, fontsize: str = "small") -> Any:
    """Axis labels, optional title and legend; returns ``ax``."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=fontsize)
    return ax


def save_figure(fig: Any, path: str | os.PathLike, *, dpi: int = 120) -> str:
    """Save ``fig`` as PNG (Agg) and return the path."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if fig.canvas is None or type(fig.canvas).__name__ == "FigureCanvasBase":
        FigureCanvasAgg(fig)
    path = os.fspath(path)
    fig.savefig(path, dpi=dpi)
    return path


def plot_objective_history(
    histories: Mapping[str, Sequence[float]],
    *,
    optimum: float | None = None,
    lower_bound: float | None = None,
    optimum_label: str = "closed form",
    ax: Any = None,
    logy: bool = False,
    title: str | None = None,
) -> Any:
    """Training objective per epoch for several runs, with the closed-form optimum as a line.

    Parameters
    ----------
    histories : mapping label -> sequence of objective values (``history[0]`` at init)
    optimum : float, optional
        Drawn as a dashed horizontal line labelled ``optimum_label``.
    lower_bound : float, optional
        A proven lower bound, drawn as a dotted line (skipped when not finite).
    """
    ax = _ax(ax)
    _plot_histories(ax, histories)
    if optimum is not None and np.isfinite(optimum):
        ax.axhline(optimum, color="k", ls="--", lw=1.5, label=optimum_label)
    if lower_bound is not None and np.isfinite(lower_bound) and (optimum is None or lower_bound != optimum):
        ax.axhline(lower_bound, color="gray", ls=":", lw=1.5, label=f"certified lower bound ({lower_bound:.5g})")
    if logy:
        ax.set_yscale("log")
    return label_axes(ax, "epoch", r"objective $P(\theta)$", title)


def plot_objective_gap(
    histories: Mapping[str, Sequence[float]],
    reference: float,
    *,
    reference_label: str = "lower bound",
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """``history - reference`` per epoch on a log scale (the reference is a proven lower bound,
    so the gap is non-negative; non-positive values are not drawn)."""
    ax = _ax(ax)
    ref = float(reference)
    _plot_histories(ax, histories, transform=lambda h: np.where(h - ref > 0, h - ref, np.nan))
    ax.set_yscale("log")
    return label_axes(ax, "epoch", f"objective $-$ {reference_label}", title)


def plot_accuracy_history(
    histories: Mapping[str, Sequence[float]],
    *,
    reference: float | None = None,
    reference_label: str = "closed form",
    epochs: Sequence[int] | None = None,
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """Test accuracy per epoch of several runs, with the closed form's as a horizontal line."""
    ax = _ax(ax)
    _plot_histories(ax, histories, epochs=epochs)
    if reference is not None:
        ax.axhline(reference, color="k", ls="--", lw=1.5, label=reference_label)
    return label_axes(ax, "epoch", "test accuracy", title)


def plot_rank_vs_beta(
    betas: Sequence[float],
    rank_closed_form: Sequence[int],
    rank_trained: Sequence[int] | None = None,
    *,
    singular_values: Sequence[float] = (),
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """Rank of the first layer vs beta: the closed form as a step line, trained networks as
    markers, and the singular values of :math:`Y^TX` (where the rank jumps) as dotted lines."""
    ax = _ax(ax)
    b = np.asarray(betas, dtype=float)
    ax.step(b, rank_closed_form, where="mid", color="k", lw=1.5, label="closed form")
    if rank_trained is not None:
        ax.plot(b, rank_trained, "o", mfc="none", color="C1", label="trained")
    for i, s in enumerate(singular_values):
        ax.axvline(s, color="C2", ls=":", lw=1, label=r"singular values of $Y^TX$" if i == 0 else None)
    return label_axes(ax, r"$\beta$", r"rank$(W_1)$", title)


def plot_layer_values(
    x: Sequence[float],
    trained: np.ndarray,
    closed_form: np.ndarray | None = None,
    *,
    xlabel: str = r"$\beta$",
    ylabel: str = "",
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """One curve per layer: ``trained[i, l]`` at ``x[i]`` (markers) and ``closed_form[i, l]`` (lines)."""
    ax = _ax(ax)
    trained = np.asarray(trained, dtype=float)
    x = np.asarray(x, dtype=float)
    for l in range(trained.shape[1]):
        ax.plot(x, trained[:, l], "o", mfc="none", color=f"C{l}", ms=5 + 2 * (trained.shape[1] - l),
                label=f"layer {l + 1} (trained)")
    if closed_form is not None:
        cf = np.asarray(closed_form, dtype=float)
        for l in range(cf.shape[1]):
            ax.plot(x, cf[:, l], "-", color=f"C{l}", lw=1, alpha=0.8, label="closed form" if l == 0 else None)
    return label_axes(ax, xlabel, ylabel, title, fontsize="x-small")


def plot_effective_rank_history(
    epochs: Sequence[int],
    ranks: np.ndarray,
    *,
    ax: Any = None,
    ylabel: str = r"stable rank $\|W_l\|_F^2 / \|W_l\|_2^2$",
    title: str | None = None,
    logx: bool = False,
) -> Any:
    """Effective rank of every layer (``ranks[t, l]``) against the epoch."""
    ax = _ax(ax)
    ranks = np.asarray(ranks, dtype=float)
    e = np.asarray(epochs)
    for l in range(ranks.shape[1]):
        ax.plot(e, ranks[:, l], lw=1.2, label=f"layer {l + 1}")
    ax.axhline(1.0, color="k", ls="--", lw=1, label="rank one")
    if logx:
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(left=0)
    return label_axes(ax, "epoch", ylabel, title)
