r"""Deep ReLU networks on whitened data :math:`XX^T = I_n` (docs/theory.md §2.6; Ergen & Pilanci 2021).

On whitened data :math:`\{Xu : \|u\| \le 1\}` is the unit ball of :math:`\mathbb{R}^n`, so a
neuron can produce any non-negative unit vector :math:`z = (Xu)_+` (take
:math:`u = X^Tz`).  The labels split into *parts*: for each output column :math:`k` and
sign :math:`\pm`, :math:`y_p = (\pm y_k)_+ \ge 0` with norm :math:`a_p = \|y_p\|`
(scalar :math:`y`: :math:`y_\pm`; one-hot :math:`Y`: the classes, :math:`a_k = \sqrt{n_k}`).
The closed forms below need every row of :math:`Y` to have at most one non-zero entry, so
that the parts have disjoint supports.  The optimal network has one sub-network per
part, a rank-one aligned path with first-layer direction :math:`u_p = X^Ty_p/a_p` and
output :math:`s_p\,y_p/a_p` in column :math:`k` with sign :math:`\pm`.

Weight decay, :math:`L = 2` [derived, certified]
    :math:`s_p = (a_p - \beta)_+` and :math:`P^\star = \sum_p H_\beta(a_p)` with the Huber function
    :math:`H_\beta(t) = t^2/2` (:math:`t \le \beta`), :math:`\beta t - \beta^2/2` (:math:`t > \beta`).
    Certificate: :math:`V^\star` with columns :math:`\sum_{p\in k}\pm\min(a_p,\beta)\,y_p/a_p`, whose
    dual constraint is exactly :math:`\max_p\min(a_p,\beta) \le \beta` (disjoint supports), and
    :math:`D(V^\star) = \sum_p H_\beta(a_p)`.

Weight decay, :math:`L \ge 3` [proven for at most two label parts; refuted for three]
    each part contributes :math:`\min_{s\ge0}\tfrac12(s - a_p)^2 + \tfrac{\beta L}{2}s^{2/L}`
    (:func:`deepdual.bounds.power_prox`: a jump, not a soft threshold).  The returned
    network attains this value.  With at most two label parts (scalar :math:`y` of both
    signs, two classes, any depth) the matching lower bound is :func:`two_part_bound`
    (docs/relu.md §2.3): certified.  Otherwise the proven lower bound is the *relaxed reduced
    problem* :math:`\min_T W(T) + \frac{\beta L}{2}T^{2/L}` (:func:`deepdual.dual_constraint.relaxed_squared_bound`),
    which lets all parts share one path budget: it equals the claimed optimum when one
    part is active and the others' norms lie below the optimal residual, and is strictly
    smaller otherwise.  With three or more parts the per-part value is not always optimal
    (width-2 trunks beat it for the parts :math:`(1,+), (1,-), (2,+)` from depth 3 and for three
    one-hot classes from depth 5, docs/relu.md §2.3).
    ``certified`` reports which case holds;
    ``info["note"]`` explains.

Norm-constrained form (``formulation="norm_constrained"``) [paper's form, certified]
    The paper's problem regularizes only the last two layers and bounds the others:

    .. math:: \min_\theta\ \ell(f_\theta(X), Y) + \frac\beta2\sum_j\big(\|W_{L-1,j}\|_F^2 + \|W_{L,j}\|_F^2\big)
              \quad\text{s.t.}\quad \|W_{l,j}\|_F \le t\ \ (l \le L-2,\ \text{every } j).

    Every sub-network's last-but-one activations satisfy :math:`\|A_{L-2,j}\|_2 \le t^{L-2}`, so
    the problem is the two-layer problem with :math:`\beta' = \beta/t^{L-2}`:
    :math:`s_p = (a_p - \beta')_+` (the paper's last layer :math:`(\|\varphi_{0,j}\| - \beta)_+` for
    :math:`t = 1`), optimum :math:`\sum_p H_{\beta'}(a_p)`, certified by the same dual point
    (weak duality holds when :math:`t^{L-2}c(V) \le \beta`).  ``Solution.objective`` is then this
    objective (``info["objective_weight_decay"]`` holds the weight-decay one).

Margin losses (logistic, hinge; scalar :math:`y \in \{\pm1\}`), :math:`L = 2` or norm-constrained
    On whitened data the two-layer problem is :math:`\min_f \ell(f) + \beta(\|f_+\|+\|f_-\|)`;
    by symmetry :math:`f = \pm q_\pm` on the :math:`n_\pm` samples of each label, with
    :math:`q = \log(\sqrt{n}/\beta - 1)` if :math:`\beta < \sqrt n/2` else 0 (logistic) and
    :math:`q = 1[\beta < \sqrt n]` (hinge); certified by :math:`v_i = y_i\theta_\pm`
    (:math:`\theta = \sigma(-q)`, resp. :math:`\min(1, \beta/\sqrt n)`).

General vector :math:`Y` (rows with several non-zeros) raises ``ValueError``: the dual
constraint :math:`\max_{z\ge0,\|z\|\le1}\|V^Tz\|` is then a copositive program with no closed
form; the nuclear-norm relaxation :math:`\sum_k H_\beta(\sigma_k(Y))` is still a lower bound
(used by :func:`deepdual.certify`).

References
----------
T. Ergen and M. Pilanci, "Revealing the structure of deep neural networks via convex
duality", ICML 2021 (whitened-data theorem, vector outputs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._validation import check_choice, check_depth, check_options, check_positive
from ...bounds import power_prox
from ...dual_constraint import disjoint_columns, relaxed_squared_bound, sign_part_norm
from ...losses import HingeLoss, LogisticLoss, Loss, SquaredLoss
from ...network import Network
from ...objective import objective, regularizer
from ...solution import Solution
from ..rank_one.solver import check_width, zero_path, aligned_path, path_output

__all__ = ["solve_whitened", "two_part_bound", "sign_split_bound", "norm_constrained_objective", "block_diagonal", "supports", "THEOREM", "FORMULATIONS"]

THEOREM = "Theorem (whitened data, Ergen & Pilanci 2021)"
FORMULATIONS = ("weight_decay", "norm_constrained")
OPTIONS = ("formulation", "trunk_norm", "width", "parallel")


@dataclass
class _Part:
    column: int
    sign: float
    y: np.ndarray  # (n,), non-negative
    norm: float


def _parts(Y: np.ndarray) -> list[_Part]:
    out = []
    for k in range(Y.shape[1]):
        for sign in (1.0, -1.0):
            yp = np.maximum(sign * Y[:, k], 0.0)
            a = float(np.linalg.norm(yp))
            if a > 0:
                out.append(_Part(k, sign, yp, a))
    return out


def supports(Y: np.ndarray, loss: Loss, depth: int, formulation: Any = "weight_decay") -> bool:
    """Whether the whitened closed form covers these labels, loss and depth: the squared loss with
    at most one non-zero per row of ``Y``, or logistic/hinge with one output at depth 2 (any depth
    in the norm-constrained form), or cross-entropy at depth 2 (delegated to
    :mod:`deepdual.relu.whitened.losses`)."""
    if isinstance(loss, SquaredLoss):
        return disjoint_columns(Y)
    if isinstance(loss, (LogisticLoss, HingeLoss)) and Y.shape[1] == 1:
        return depth == 2 or formulation == "norm_constrained"
    from .losses import supports as cross_entropy_supports

    return cross_entropy_supports(Y, loss, depth, formulation)


def norm_constrained_objective(network: Network, X: Any, y: Any, *, beta: float, loss: Any = "squared",
                               trunk_norm: float = 1.0) -> float:
    r"""Objective of the paper's norm-constrained problem (see the module docstring):
    :math:`\ell(f(X), Y) + \frac\beta2\sum_j(\|W_{L-1,j}\|_F^2 + \|W_{L,j}\|_F^2)`.

    Raises ``ValueError`` when a layer :math:`l \le L-2` violates :math:`\|W_{l,j}\|_F \le t`
    (beyond a relative rounding allowance of 1e-12).
    """
    t = check_positive(trunk_norm, "trunk_norm")
    wd = objective(network, X, y, beta=beta, loss=loss)
    return _norm_constrained_from(network, wd, beta=beta, trunk_norm=t)


def _norm_constrained_from(network: Network, wd: float, *, beta: float, trunk_norm: float) -> float:
    """:func:`norm_constrained_objective` from the weight-decay objective ``wd`` of ``network``."""
    t = trunk_norm
    L = network.depth
    for j, layers in enumerate(network.weights):
        for l in range(L - 2):
            nrm = float(np.linalg.norm(layers[l]))
            if nrm > t * (1 + 1e-12):  # rounding of a norm computed from t-scaled factors
                raise ValueError(f"layer {l} of sub-network {j} has norm {nrm:.6g} > trunk_norm = {t}")
    trunk = sum(float(np.sum(layers[l] ** 2)) for layers in network.weights for l in range(L - 2))
    return wd - 0.5 * beta * trunk


def block_diagonal(network: Network) -> Network:
    """Merge a parallel network into one ordinary network with block-diagonal hidden layers.

    The output and :math:`\\sum_{j,l}\\|W_{l,j}\\|_F^2` are unchanged (ReLU acts entrywise).
    """
    from scipy.linalg import block_diag

    W = network.weights
    L = network.depth
    layers = [np.hstack([w[0] for w in W])]
    for l in range(1, L - 1):
        layers.append(block_diag(*[w[l] for w in W]))
    layers.append(np.vstack([w[-1] for w in W]))
    return Network([layers], network.activation, scalar_output=network.scalar_output)


def _white_tol(X: np.ndarray) -> float:
    """Entrywise tolerance of :func:`deepdual.structures.is_whitened` (the same test, done here once)."""
    return 100 * X.shape[1] * np.finfo(float).eps


def is_whitened_rows(X: np.ndarray) -> bool:
    """The O(nd) part of :func:`deepdual.structures.is_whitened`: every row has unit norm (diag XX^T = 1)."""
    return bool(np.max(np.abs(np.einsum("ij,ij->i", X, X) - 1.0)) <= _white_tol(X))


def two_part_bound(part_norms: np.ndarray, *, beta: float, depth: int, x_norm: float) -> float:
    r"""Proven lower bound on the weight-decay objective of every depth-``depth`` ReLU network
    (no biases, squared loss) when the labels have at most two parts.

    Let every row of :math:`Y` have at most one non-zero entry and let at most two label parts
    :math:`y_p = (\pm y_k)_+` be non-zero (scalar :math:`y` of both signs, two classes, ...), with
    norms :math:`a_p`.  For *any* data with :math:`\|X\|_2 \le` ``x_norm`` and every parallel
    ReLU network of depth :math:`L \ge 2` (any number of sub-networks, any widths),
    (docs/relu.md §2.3, "Theorem (two label parts, any depth)")

    .. math:: P(\theta) \ \ge\ \sum_p\min_{s\ge0}\ \tfrac12(s - a_p)^2
              + \tfrac{\beta L}{2}\,\|X\|_2^{-2/L}\,s^{2/L}.

    The proof reduces the samples of each part to one representative (homogeneity of the
    network in its first-layer activations), and then bounds the two-sample network through
    the :math:`2\times2` Gram matrices of its hidden layers, which have non-negative entries.
    On whitened data this equals the per-part closed form.  Each minimum is
    :func:`deepdual.bounds.power_prox`'s proven lower bound.

    Parameters
    ----------
    part_norms : array
        The norms :math:`a_p` of the label parts (zero entries contribute 0; at most two
        may be positive).
    beta : float
        Weight decay.
    depth : int
        The depth :math:`L \ge 2`.
    x_norm : float
        An upper bound on :math:`\|X\|_2`.

    Raises
    ------
    ValueError
        If more than two part norms are positive (the theorem is not proven there), a norm is
        negative or not finite, ``depth < 2``, or ``beta`` / ``x_norm`` is not positive.
    """
    norms = np.ravel(np.asarray(part_norms, dtype=float))
    if not np.all(np.isfinite(norms)) or np.any(norms < 0):
        raise ValueError(f"`part_norms` must be finite and non-negative, got {norms}")
    a = [float(t) for t in norms if t > 0]
    if len(a) > 2:
        raise ValueError(f"`part_norms`: the two-part bound needs at most two non-zero label parts, got {len(a)} "
                         "(with three or more the per-part value is not a lower bound, docs/relu.md §2.3)")
    L = check_depth(depth)
    beta = check_positive(beta, "beta")
    lam = 0.5 * beta * L * check_positive(x_norm, "x_norm") ** (-2.0 / L)
    return float(sum(power_prox(t, lam, 2.0 / L).lower for t in a))


def sign_split_bound(part_norms: np.ndarray, *, beta: float, x_norm: float, depth: int = 3) -> float:
    r""":func:`two_part_bound` for scalar labels, norms :math:`a_\pm = \|y_\pm\|` (kept for
    callers of the depth-3 sign-split bound; valid at every depth, docs/relu.md §2.3)."""
    return two_part_bound(part_norms, beta=beta, depth=depth, x_norm=x_norm)


def _feasible_dual_value(loss: Loss, V: np.ndarray, Y: np.ndarray, c: float, limit: float) -> tuple[float, np.ndarray]:
    """``D(sV)`` with ``s = min(1, limit / c)``: scaling makes the dual point feasible."""
    s = 1.0 if c <= limit else limit / c
    return float(loss.dual_value(s * V, Y)), s * V


def solve_whitened(X: np.ndarray, Y: np.ndarray, *, scalar: bool, beta: float, depth: int, loss: Loss,
                   rtol: float, bias: bool, gram: np.ndarray | None = None, **options: Any) -> Solution:
    r"""Optimal depth-``depth`` ReLU network on whitened data :math:`XX^T = I` (see the module docstring).

    Parameters
    ----------
    X, Y : validated arrays (n, d), (n, K); ``X`` must satisfy :math:`XX^T = I_n`
    scalar, beta, depth, loss, rtol, bias : see :func:`deepdual.solve`
    gram : array (n, n), optional
        :math:`XX^T` of this very ``X`` as returned by
        :func:`deepdual.structures.whitened_gram` (the dispatcher passes it, so the O(n^2 d)
        product is formed once); computed here otherwise.  The whitening test is repeated
        on it (O(n^2)).
    formulation : {"weight_decay", "norm_constrained"}, default "weight_decay"
        Which objective is minimized and reported (module docstring).
    trunk_norm : float > 0, default 1.0
        The bound :math:`t` on :math:`\|W_{l,j}\|_F`, :math:`l \le L-2` (norm-constrained only).
    width : int, default 1
        Hidden width of each sub-network (uniform non-negative :math:`\varphi`'s).
    parallel : bool, default True
        One sub-network per part; ``False`` merges them into one ordinary network with
        block-diagonal layers (same objective; weight decay only).

    Returns
    -------
    Solution
        ``info`` holds ``parts`` (column, sign, norm, coefficient :math:`s_p`) and
        ``formulation``; ``info["note"]`` explains an uncertified result.
    """
    from .losses import solve_whitened_losses, supports as cross_entropy_supports

    if cross_entropy_supports(Y, loss, depth, options.get("formulation")):
        return solve_whitened_losses(X, Y, scalar=scalar, beta=beta, depth=depth, loss=loss, rtol=rtol,
                                     bias=bias, gram=gram, **options)
    check_options(options, OPTIONS, "solve(method='whitened')")
    formulation = check_choice(options.get("formulation", "weight_decay"), "formulation", FORMULATIONS)
    t = check_positive(options.get("trunk_norm", 1.0), "trunk_norm")
    width = check_width(options.get("width", 1))
    parallel = options.get("parallel", True)
    if not isinstance(parallel, (bool, np.bool_)):
        raise TypeError(f"`parallel` must be True or False, got {parallel!r}")
    if formulation == "norm_constrained" and not parallel:
        raise ValueError("`parallel=False` is only available for formulation='weight_decay' "
                         "(the norm constraint is per sub-network)")
    if bias:
        raise ValueError("`bias=True` is not covered by the whitened-data theorem (it assumes no biases)")
    n, d = X.shape
    # one n x n Gram matrix serves both the whitening check and the bound on ||X||_2 below
    # (is_whitened's row-norm test first rules out most non-whitened data in O(nd))
    if gram is not None and gram.shape == (n, n):
        G = gram
    else:
        G = X @ X.T if n <= d and is_whitened_rows(X) else None
    dev = float(np.max(np.abs(G - np.eye(n)))) if G is not None else float("nan")
    if G is None or not dev <= _white_tol(X):
        if n <= d and G is None:
            dev = float(np.max(np.abs(X @ X.T - np.eye(n))))
        why = f"n = {n} > d = {d}" if n > d else f"max |X X^T - I| = {dev:.3g}"
        raise ValueError(f"`X` is not whitened (X X^T = I_n needed; {why}); whiten it with deepdual.whiten(X) "
                         "(needs n <= d and rank n)")
    L = int(depth)
    K = Y.shape[1]
    # Proven upper bound on ||X||_2 (1 up to rounding): ||X||_2^2 = rho(XX^T) <= max row sum of |XX^T|
    # (an induced infinity-norm bound).  Only an upper bound is needed below (it enlarges c(V)
    # and shrinks the penalty, both of which keep the lower bound valid) and it avoids a full SVD.
    x_norm = float(np.sqrt(np.max(np.abs(G).sum(axis=1))))
    closed_two_layer = formulation == "norm_constrained" or L == 2
    beta_eff = beta / t ** (L - 2) if formulation == "norm_constrained" else beta
    info: dict[str, Any] = {"beta": beta, "depth": L, "loss": getattr(loss, "name", type(loss).__name__),
                            "formulation": formulation, "width": width}
    if formulation == "norm_constrained":
        info["trunk_norm"] = t
        info["beta_effective"] = beta_eff

    def norms_for(s: float) -> list[float]:
        if formulation == "norm_constrained":
            last = np.sqrt(s / t ** (L - 2))
            return [t] * (L - 2) + [last, last]
        return [s ** (1.0 / L)] * L

    subnets: list[list[np.ndarray]] = []
    paths: list[tuple[np.ndarray, np.ndarray, list[float]]] = []  # (u, out, norms) of each subnet
    part_info = []
    note = None
    if isinstance(loss, SquaredLoss):
        if not disjoint_columns(Y):
            raise ValueError(
                "the whitened closed form needs every row of `y` to have at most one non-zero entry "
                "(scalar or one-hot labels); for general vector labels the dual constraint "
                "max_{z>=0,||z||<=1} ||V^T z|| has no closed form. deepdual.certify still gives the "
                "nuclear-norm lower bound sum_k H_beta(sigma_k(Y))"
            )
        parts = _parts(Y)
        V = np.zeros_like(Y)
        for part in parts:
            if closed_two_layer:
                s = max(part.norm - beta_eff, 0.0)
            else:
                s = power_prox(part.norm, 0.5 * beta * L, 2.0 / L).sigma
            part_info.append({"column": part.column, "sign": part.sign, "norm": part.norm, "coefficient": s})
            V[:, part.column] += part.sign * min(part.norm, beta_eff) * part.y / part.norm
            if s > 0:
                out = np.zeros(K)
                out[part.column] = part.sign
                u = X.T @ part.y / part.norm
                subnets.append(aligned_path(u, out, norms_for(s), width))
                paths.append((u, out, norms_for(s)))
        if closed_two_layer:
            # V has disjoint column supports: its dual constraint is exactly
            # ||X||_2 max_k c0(v_k) (docs/relu.md), and weak duality needs it <= beta_eff
            cval = x_norm * max((sign_part_norm(V[:, k]) for k in range(K)), default=0.0)
            lower, dual = _feasible_dual_value(loss, V, Y, cval, beta_eff)
        else:
            lam = 0.5 * beta * L * x_norm ** (-2.0 / L)
            red = relaxed_squared_bound(np.array([p.norm for p in parts]), lam, 2.0 / L)
            lower, dual = red.lower, None
            info["relaxed_budget"] = red.x
            if len(parts) <= 2:  # proven optimal (docs/relu.md §2.3, two-part theorem)
                split = two_part_bound(np.array([p.norm for p in parts]), beta=beta, depth=L, x_norm=x_norm)
                info["two_part_bound"] = split
                lower = max(lower, split)
    elif isinstance(loss, (LogisticLoss, HingeLoss)) and K == 1:
        if not closed_two_layer:
            raise ValueError(
                f"the whitened closed form for the {loss.name} loss covers depth 2 or "
                "formulation='norm_constrained'; for weight decay at depth >= 3 use the squared loss"
            )
        y = Y[:, 0]
        v = np.zeros(n)
        for sign in (1.0, -1.0):
            idx = y == sign
            m = int(np.sum(idx))
            if m == 0:
                continue
            rn = np.sqrt(m)
            if isinstance(loss, LogisticLoss):
                q = float(np.log(rn / beta_eff - 1.0)) if beta_eff < rn / 2 else 0.0
                theta = 1.0 / (1.0 + np.exp(q))  # sigma(-q)
            else:
                q = 1.0 if beta_eff < rn else 0.0
                theta = min(1.0, beta_eff / rn)
            v[idx] = sign * theta
            s = q * rn  # coefficient on the unit atom 1_idx / sqrt(m)
            part_info.append({"column": 0, "sign": sign, "norm": rn, "coefficient": s, "margin": q})
            if s > 0:
                yp = idx.astype(float)
                u = X.T @ yp / rn
                subnets.append(aligned_path(u, np.array([sign]), norms_for(s), width))
                paths.append((u, np.array([sign]), norms_for(s)))
        cval = x_norm * sign_part_norm(v)
        lower, dual = _feasible_dual_value(loss, v[:, None], Y, cval, beta_eff)
    else:
        raise ValueError(
            "the whitened closed form supports the squared loss (scalar or one-hot labels) and the "
            f"logistic/hinge losses with scalar labels; got loss {getattr(loss, 'name', type(loss).__name__)!r} "
            f"with {K} output(s)"
        )
    if not subnets:
        subnets = [zero_path(d, K, L, width)]
    net = Network(subnets, "relu", scalar_output=scalar)
    if not parallel and len(subnets) > 1:
        net = block_diagonal(net)
    # = deepdual.objective(net, X, Y): the output of the parallel aligned paths is the sum of
    # their path_output's (one product X u per path; block_diagonal does not change it)
    F = np.zeros((n, K))
    for u, out, norms in paths:
        F += path_output(X, u, out, norms)
    wd = float(loss.value(F, Y)) + regularizer(net, beta)
    if formulation == "norm_constrained":
        obj = _norm_constrained_from(net, wd, beta=beta, trunk_norm=t)
        info["objective_weight_decay"] = wd
    else:
        obj = wd
    info["parts"] = part_info
    method = THEOREM + (" (norm-constrained form)" if formulation == "norm_constrained" else "")
    sol = Solution(network=net, objective=obj, lower_bound=float(lower), method=method, rtol=rtol,
                   dual=dual, info=info)
    if not sol.certified and not closed_two_layer:
        active = sum(1 for p in part_info if p["coefficient"] > 0)
        note = (
            f"weight decay at depth {L}: the network attains the derived value sum_p min_s (s - a_p)^2/2 "
            f"+ (beta L/2) s^(2/L) over {len(part_info)} label part(s) ({active} active), but the proven "
            "lower bound (all parts sharing one path budget) is smaller: optimality is not certified "
            "(proven for at most two label parts; with three or more the per-part value can be beaten, "
            "e.g. parts (1,+), (1,-), (2,+) from depth 3 and three one-hot classes from depth 5, "
            "docs/relu.md §2.3). "
            "formulation='norm_constrained' gives the paper's certified form"
        )
        sol.info["note"] = note
    return sol
