r"""The one objective every deepdual function reports (docs/theory.md §1).

.. math::

    P(\theta) = \ell(f_\theta(X), Y) + \frac{\beta}{2} \sum_j \sum_l \|W_{l,j}\|_F^2,

with the squared loss :math:`\ell = \tfrac12\|F - Y\|_F^2` by default (a *sum* over
samples, not a mean).  Biases are not penalized unless ``penalize_biases=True``.

Conversions
-----------
* The talk's two-layer slide writes :math:`\beta'(\|W_1\|_F^2 + \|w_2\|_2^2)`; that is this
  objective with :math:`\beta = 2\beta'`.
* PyTorch's ``weight_decay=lam`` adds ``lam * W`` to the gradient, i.e. the penalty
  :math:`(\lambda/2)\|W\|^2`.  On the summed loss ``0.5 * ((f - y)**2).sum()`` that is
  :math:`\beta = \lambda`; on a *mean* loss ``mean((f-y)**2)/2`` it is :math:`\beta = n\lambda`
  (equivalently use ``weight_decay = beta / n``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._validation import check_beta, check_targets
from .losses import get_loss
from .network import Network

__all__ = ["objective", "regularizer", "REGULARIZATIONS", "path_norm", "path_regularizer"]


#: penalties :func:`objective` can evaluate: plain weight decay, and the entrywise
#: :math:`\frac\beta L\sum|w|^L` of the deep narrow networks of arXiv 2403.01046
#: (docs/one_dimensional.md §10)
REGULARIZATIONS = ("weight_decay", "l_L", "path")


def path_norm(layers: Any) -> float:
    r""":math:`\ell_2` path norm of one sub-network,
    :math:`(\mathbb 1^T(W_1\circ W_1)(W_2\circ W_2)\cdots(W_L\circ W_L)\mathbb 1)^{1/2}`: the square root of
    the sum over all input-to-output paths of the product of the squared weights."""
    acc = np.sum(np.asarray(layers[0], float) ** 2, axis=0)
    for W in layers[1:]:
        acc = acc @ (np.asarray(W, float) ** 2)
    return float(np.sqrt(np.sum(acc)))


def path_regularizer(network: Network) -> float:
    r"""Path regularizer :math:`R(\theta) = \sum_j \text{path\_norm}(\text{sub-network } j)` of
    docs/path_regularization.md §1 (Ergen & Pilanci, arXiv 2110.09548); the objective adds :math:`\beta R`."""
    return math.fsum(path_norm(sub) for sub in network.weights)


def regularizer(network: Network, beta: float, *, penalize_biases: bool = False,
                regularization: str = "weight_decay") -> float:
    r""":math:`\frac{\beta}{2}\sum_{j,l}\|W_{l,j}\|_F^2` (plus biases if ``penalize_biases``);
    with ``regularization="l_L"``: :math:`\frac{\beta}{L}\sum_{j,l}\sum|W_{l,j}|^L` (``L`` the
    network's depth, biases free)."""
    if regularization == "l_L":
        if penalize_biases:
            raise ValueError("`penalize_biases` is not defined for regularization='l_L' (biases are free)")
        L = network.depth
        return beta / L * math.fsum(float(np.sum(np.abs(W) ** L)) for layers in network.weights for W in layers)
    if regularization == "path":
        if penalize_biases:
            raise ValueError("`penalize_biases` is not defined for regularization='path'")
        return beta * path_regularizer(network)
    if regularization != "weight_decay":
        raise ValueError(f"`regularization` must be one of {REGULARIZATIONS}, got {regularization!r}")
    return 0.5 * beta * network.squared_norm(include_biases=penalize_biases)


def objective(
    network: Network,
    X: Any,
    y: Any,
    *,
    beta: float,
    loss: Any = "squared",
    penalize_biases: bool = False,
    regularization: str | None = None,
) -> float:
    r"""Training objective :math:`\ell(f(X), Y) + \frac{\beta}{2}\sum_{j,l}\|W_{l,j}\|_F^2`.

    Parameters
    ----------
    network : Network
    X : array of shape (n, d)
    y : array of shape (n,) or (n, K)
    beta : float > 0
        Weight-decay strength.
    loss : str or Loss, default "squared"
    penalize_biases : bool, default False
        Add :math:`\frac{\beta}{2}\|b\|^2` for every bias.
    regularization : {"weight_decay", "l_L"}, default "weight_decay"
        ``"l_L"``: the penalty :math:`\frac{\beta}{L}\sum_{j,l}\sum|W_{l,j}|^L` of the deep
        narrow networks of arXiv 2403.01046 instead of weight decay (docs/one_dimensional.md §10).
        ``"path"``: :math:`\beta R(\theta)`, the path regularizer (:func:`path_regularizer`,
        docs/path_regularization.md).  ``None`` (default): the one recorded in ``network.problem``
        by :func:`deepdual.solve`, else weight decay.  A network recorded with
        ``formulation="norm_constrained"`` (depth 3, docs/three_layer.md) gets
        :math:`\frac\beta2\sum_k(\|W_{2k}\|_F^2 + \|W_{3k}\|_F^2)` and must have :math:`\|W_{1k}\|_F \le 1`.

    Returns
    -------
    float
    """
    if not isinstance(network, Network):
        raise TypeError(f"`network` must be a deepdual.Network, got {type(network).__name__}")
    # forward() re-validates the network (its attributes may have changed since construction)
    # and validates X against it: one copy of X, one validation
    F = network.forward(X)
    Y, _ = check_targets(y, F.shape[0], "y")
    beta = check_beta(beta)
    lossf = get_loss(loss)
    Y = lossf.check_labels(Y)
    if F.shape != Y.shape:
        raise ValueError(f"`y` has {Y.shape[1]} output column(s) but the network has {F.shape[1]}")
    stored = network.problem or {}
    if regularization is None:
        regularization = stored.get("regularization", "weight_decay")
    if stored.get("formulation") == "norm_constrained" and network.depth == 3 and regularization == "weight_decay":
        for j, layers in enumerate(network.weights):  # docs/three_layer.md §1
            nrm = float(np.linalg.norm(layers[0]))
            if nrm > 1 + 1e-12:  # rounding of a norm computed from unit-norm factors
                raise ValueError(f"layer 0 of sub-network {j} has norm {nrm:.6g} > 1 (formulation='norm_constrained')")
        decayed = math.fsum(float(np.sum(W ** 2)) for layers in network.weights for W in layers[1:])
        return float(lossf.value(F, Y)) + 0.5 * beta * decayed
    return float(lossf.value(F, Y)) + regularizer(network, beta, penalize_biases=penalize_biases,
                                                  regularization=regularization)
