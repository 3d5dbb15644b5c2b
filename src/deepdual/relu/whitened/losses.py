r"""Two-layer ReLU networks on whitened data :math:`XX^T = I_n` under the multiclass cross-entropy loss.

The derivation is in ``docs/losses.md`` ("ReLU networks on whitened data: where the
argument holds for other losses"); this module turns it into a solver.

Reduction to outputs
    On whitened data :math:`\{Xu : \|u\|\le1\}` is the unit ball of :math:`\mathbb R^n`, so a
    neuron :math:`(u, w)` can produce any :math:`z\,w^T` with :math:`z \ge 0`, :math:`\|z\| \le \|u\|`
    (take :math:`u = X^Tz`).  The dual constraint of two-layer networks is therefore

    .. math:: c(V) = \max_{z\ge0,\ \|z\|\le1}\|V^Tz\| \quad(\text{times } \|X\|_2 \text{ if } XX^T \approx I).

Closed form (one-hot labels, :math:`K \ge 2` classes, class :math:`j` with :math:`n_j` samples)
    One sub-network per non-empty class :math:`j`: first-layer direction
    :math:`u_j = X^T\mathbb 1_j/\sqrt{n_j}`, output direction
    :math:`w_j = (Ke_j - \mathbb 1)/\sqrt{K(K-1)}`, path norm :math:`\alpha_j = x_j\sqrt{n_j}/\gamma`
    with :math:`\gamma = \sqrt{K/(K-1)}` and

    .. math:: q_j = \min\Big(\frac{\beta}{\gamma\sqrt{n_j}}, \frac{K-1}{K}\Big),\qquad
              x_j = \log\frac{(K-1)(1-q_j)}{q_j}

    (:math:`x_j` is the logit margin of every class-:math:`j` sample and :math:`q_j` the
    softmax mass off its class; :math:`x_j = 0` exactly when :math:`\beta \ge \sqrt{n_j(K-1)/K}`).

Certificate
    :math:`V = Y - \operatorname{softmax}(F^\star)`, built from the formula: on class :math:`j`
    every row equals :math:`r_j = \frac{q_j}{K-1}(Ke_j - \mathbb 1)`.  For class-constant rows,
    with :math:`t_j = \sum_{i\in j} z_i/\sqrt{n_j}` (so :math:`t \ge 0`, :math:`\|t\| \le \|z\|` by
    Cauchy--Schwarz),

    .. math:: \|V^Tz\|^2 = t^TMt,\qquad M_{jk} = \sqrt{n_jn_k}\,\langle r_j, r_k\rangle .

    For :math:`t \ge 0` replacing the off-diagonal entries of :math:`M` by their positive
    parts (:math:`M'`) can only increase :math:`t^TMt`, and Gershgorin bounds
    :math:`\lambda_{\max}(M')`, so :math:`c(V)^2 \le \max_j \sum_k M'_{jk}` -- a proven bound.
    Here :math:`\langle r_j, r_k\rangle = -Kq_jq_k/(K-1)^2 < 0` for :math:`j \ne k`, so the bound is
    :math:`\max_j n_j\|r_j\|^2 = \max_j(\gamma\sqrt{n_j}q_j)^2 \le \beta^2`, attained by
    :math:`z = \mathbb 1_j/\sqrt{n_j}`: the constraint is exact.  Fenchel--Young holds with
    equality at :math:`V = -\nabla\ell(F^\star)` and
    :math:`\langle V, F^\star\rangle = \sum_j\gamma\sqrt{n_j}q_j\alpha_j = \beta\sum_j\alpha_j`, so
    :math:`D(V) = P(\theta^\star)`: the gap is zero up to rounding.  To stay a proven bound
    when :math:`X` is whitened only up to rounding, :math:`c(V)` is multiplied by an upper
    bound on :math:`\|X\|_2` (square root of the largest absolute row sum of :math:`XX^T`) and
    :math:`V` is scaled by :math:`\min(1, \beta/c(V))` before :math:`D` is evaluated.

Cost: one :math:`n\times n` Gram matrix :math:`XX^T` (the whitening check) and :math:`X^TY`.

Not covered (``supports`` is False, :mod:`deepdual.relu.dispatch` uses other methods):
depth :math:`\ge 3` (the lower bound is open, as for the squared loss, docs/theory.md §2.6), the
norm-constrained formulation, and losses other than the built-in cross-entropy.

References
----------
T. Ergen and M. Pilanci, "Revealing the structure of deep neural networks via convex
duality", ICML 2021 (whitened data).
M. Pilanci and T. Ergen, "Neural networks are convex regularizers", ICML 2020 (the dual
constraint of two-layer ReLU networks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._validation import check_choice, check_options
from ...losses import CrossEntropyLoss, Loss
from ...network import Network
from ...objective import objective
from ...solution import Solution
from ...structures import whitened_gram
from ..rank_one.solver import check_width, zero_path, aligned_path

__all__ = ["solve_whitened_losses", "supports", "cross_entropy_closed_form", "class_constant_constraint",
           "THEOREM"]

THEOREM = "Theorem (whitened data, two layers, cross-entropy; docs/losses.md)"
OPTIONS = ("formulation", "width", "parallel")


def supports(Y: np.ndarray, loss: Loss, depth: int, formulation: Any = None) -> bool:
    """Whether this module's closed form covers the problem: the built-in cross-entropy loss
    (one-hot ``Y``, which its ``check_labels`` guarantees), depth 2, weight decay."""
    return (type(loss) is CrossEntropyLoss and int(depth) == 2 and Y.ndim == 2 and Y.shape[1] >= 2
            and (formulation is None or (isinstance(formulation, str) and formulation == "weight_decay")))


@dataclass
class CrossEntropyClosedForm:
    """Per-class quantities of the closed form (arrays of length K; empty classes have count 0)."""

    counts: np.ndarray  # n_j
    off_mass: np.ndarray  # q_j (softmax mass off the true class at the optimum)
    margin: np.ndarray  # x_j (logit margin)
    path_norm: np.ndarray  # alpha_j
    rows: np.ndarray  # (K, K): row j is r_j = q_j/(K-1) (K e_j - 1), the dual row on class j


def cross_entropy_closed_form(counts: np.ndarray, beta: float) -> CrossEntropyClosedForm:
    r"""The closed form of the module docstring from the class counts :math:`n_j` and :math:`\beta`."""
    counts = np.asarray(counts, dtype=float)
    K = counts.size
    gamma = np.sqrt(K / (K - 1.0))
    q = np.full(K, (K - 1.0) / K)
    margin = np.zeros(K)
    present = counts > 0
    active = present & (beta < np.sqrt(counts * (K - 1.0) / K))
    q[active] = beta / (gamma * np.sqrt(counts[active]))
    qa = q[active]
    margin[active] = np.log(K - 1.0) + np.log1p(-qa) - np.log(qa)
    path = margin * np.sqrt(counts) / gamma
    rows = (q / (K - 1.0))[:, None] * (K * np.eye(K) - 1.0)
    return CrossEntropyClosedForm(counts, q, margin, path, rows)


def class_constant_constraint(rows: np.ndarray, counts: np.ndarray) -> tuple[float, bool]:
    r"""Proven upper bound on :math:`\max_{z\ge0,\|z\|\le1}\|V^Tz\|` for a dual point whose rows
    equal ``rows[j]`` on the ``counts[j]`` samples of class :math:`j`.

    :math:`\sqrt{\max_j\sum_kM'_{jk}}` with :math:`M_{jk} = \sqrt{n_jn_k}\langle r_j, r_k\rangle` and
    :math:`M'` its off-diagonal positive parts (module docstring).  Returns ``(value, exact)``;
    ``exact`` is True when no off-diagonal entry is positive (then the value is attained at
    :math:`z = \mathbb 1_j/\sqrt{n_j}`).
    """
    s = np.sqrt(np.asarray(counts, dtype=float))
    R = np.asarray(rows, dtype=float)
    M = (s[:, None] * s[None, :]) * (R @ R.T)
    off = M - np.diag(np.diag(M))
    Mp = np.diag(np.diag(M)) + np.maximum(off, 0.0)
    return float(np.sqrt(max(float(np.max(Mp.sum(axis=1))), 0.0))), bool(np.all(off <= 0.0))


def _gram_checked(X: np.ndarray, gram: np.ndarray | None) -> np.ndarray:
    """``X X^T`` (``gram`` when the dispatcher already formed it), after the whitening test
    of :func:`deepdual.structures.whitened_gram`; ``ValueError`` otherwise."""
    n, d = X.shape
    G = gram if gram is not None and gram.shape == (n, n) else whitened_gram(X)
    if G is None:
        why = f"n = {n} > d = {d}" if n > d else f"max |X X^T - I| = {float(np.max(np.abs(X @ X.T - np.eye(n)))):.3g}"
        raise ValueError(f"`X` is not whitened (X X^T = I_n needed; {why}); whiten it with "
                         "deepdual.whiten(X) (needs n <= d and rank n)")
    return G


def solve_whitened_losses(X: np.ndarray, Y: np.ndarray, *, scalar: bool, beta: float, depth: int, loss: Loss,
                          rtol: float, bias: bool, gram: np.ndarray | None = None, **options: Any) -> Solution:
    r"""Optimal two-layer ReLU network on whitened data under the cross-entropy loss (module docstring).

    Parameters
    ----------
    X, Y : validated arrays (n, d), (n, K); ``X X^T = I_n``; ``Y`` one-hot
    scalar, beta, depth, loss, rtol, bias : see :func:`deepdual.solve` (depth 2, no biases)
    gram : array (n, n), optional
        :math:`XX^T` from :func:`deepdual.structures.whitened_gram` (passed by the
        dispatcher so the O(n^2 d) product is formed once); computed and tested here otherwise.
    formulation : {"weight_decay"}, default "weight_decay"
    width : int, default 1
        Hidden width of each class's sub-network (uniform non-negative splitting).
    parallel : bool, default True
        One sub-network per class; ``False`` merges them into one ordinary network
        (same output and norms).

    Returns
    -------
    Solution
        ``objective`` is :func:`deepdual.objective` of the returned network; ``lower_bound`` is
        :math:`D(sV)` for the dual point of the module docstring; ``info["classes"]`` lists
        :math:`n_j, q_j, x_j, \alpha_j` per class and ``info["dual_constraint"]`` the proven
        :math:`c(V)` (before scaling).
    """
    check_options(options, OPTIONS, "solve (whitened data, cross-entropy)")
    check_choice(options.get("formulation", "weight_decay"), "formulation", ("weight_decay",))
    width = check_width(options.get("width", 1))
    parallel = options.get("parallel", True)
    if not isinstance(parallel, (bool, np.bool_)):
        raise TypeError(f"`parallel` must be True or False, got {parallel!r}")
    if bias:
        raise ValueError("`bias=True` is not covered by the whitened-data theorem (it assumes no biases)")
    if not supports(Y, loss, depth, options.get("formulation")):
        raise ValueError(
            "the whitened closed form of deepdual.relu.whitened.losses covers the built-in "
            f"cross_entropy loss at depth 2; got loss {getattr(loss, 'name', type(loss).__name__)!r}, depth {depth}"
        )
    G = _gram_checked(X, gram)
    n, d = X.shape
    K = Y.shape[1]
    counts = Y.sum(axis=0)
    cf = cross_entropy_closed_form(counts, beta)
    gamma = np.sqrt(K / (K - 1.0))

    # ---- primal: one aligned path per active class
    U = X.T @ (Y / np.sqrt(np.maximum(counts, 1.0)))  # columns X^T 1_j / sqrt(n_j)
    subnets = []
    for j in range(K):
        if cf.path_norm[j] > 0:
            w = (K * np.eye(K)[j] - 1.0) / np.sqrt(K * (K - 1.0))
            r = np.sqrt(cf.path_norm[j])
            subnets.append(aligned_path(U[:, j], w, [r, r], width))
    if not subnets:
        subnets = [zero_path(d, K, 2, width)]
    if not parallel and len(subnets) > 1:
        subnets = [[np.hstack([s[0] for s in subnets]), np.vstack([s[1] for s in subnets])]]
    net = Network(subnets, "relu", scalar_output=bool(scalar and K == 1))
    obj = objective(net, X, Y, beta=beta, loss=loss)

    # ---- dual: class-constant rows, exact constraint (times a proven bound on ||X||_2)
    present = counts > 0
    c0, exact = class_constant_constraint(cf.rows[present], counts[present])
    # ||X||_2^2 = rho(X X^T) <= largest absolute row sum (induced infinity norm); 1 up to rounding
    x_norm = float(np.sqrt(np.max(np.abs(G).sum(axis=1))))
    cval = x_norm * c0
    scale = 1.0 if cval <= beta else beta / cval
    V = scale * cf.rows[np.argmax(Y, axis=1)]
    lower = float(loss.dual_value(V, Y))

    classes = [{"class": j, "count": int(counts[j]), "off_class_mass": float(cf.off_mass[j]),
                "margin": float(cf.margin[j]), "path_norm": float(cf.path_norm[j]),
                "constraint_term": float(gamma * np.sqrt(counts[j]) * cf.off_mass[j])}
               for j in range(K)]
    info: dict[str, Any] = {
        "beta": beta, "depth": 2, "loss": loss.name, "formulation": "weight_decay", "width": width,
        "classes": classes, "dual_constraint": cval, "dual_scale": scale, "X_norm_bound": x_norm,
        "dual_constraint_method": ("exact: whitened, class-constant dual rows with non-positive correlations"
                                   if exact else "upper bound: Gershgorin on class-constant dual rows"),
    }
    sol = Solution(network=net, objective=obj, lower_bound=lower, method=THEOREM, rtol=rtol, dual=V, info=info)
    if not sol.certified:
        sol.info["note"] = (f"the closed form's gap {sol.objective - sol.lower_bound:.3g} exceeds rtol = {rtol:g} "
                            "(rounding in X X^T = I)")
    return sol
