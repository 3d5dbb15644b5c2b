r"""Exact dual constraint at one-dimensional data, and certificates of 1-D ReLU networks.

Weak duality: for :math:`v` with :math:`\sum_i v_i = 0` and

.. math:: c(v) = \sup_{s=\pm1,\ t}\Big|\sum_i v_i\,(s(x_i - t))_+\Big| \le \beta,

every network of every width has :math:`P \ge -\ell^*(-v)` (for the squared loss
:math:`v^T y - \tfrac12\|v\|^2`).  The supremum is attained at a data point, so
:math:`c(v) = \max_k \max(|h_k|, |h_k - h_1|)` with the ramp correlations
:math:`h_k = \sum_i v_i (x_i - u_k)_+`, computed exactly in extended precision with a
proven rounding slack (:func:`c_two_layer`); the same holds for a free linear term, the
Lipschitz bound of deep networks (:func:`c_lipschitz_bound`), K outputs (:func:`c_columns`) and
penalized biases, where the maximum runs over the 2p activation arcs of the unit circle
(:func:`_c_penalized`).  :func:`residual_certificate_1d` scales the residual of any network into this
set and reports the best such bound.  Derivation: ``docs/one_dimensional.md`` §4 (and §6
for the variants).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..._threads import SingleThreadedBLAS
from ..._validation import check_beta
from ...exact_centering import center_exactly
from ...losses import Loss, SquaredLoss, get_loss
from ...network import Network
from ...objective import objective as _objective
from ...solution import DEFAULT_RTOL, Certificate
from .splines import EPS, LONG_DOUBLE, LONG_DOUBLE_EPS


# =============================================================================================
# Dual constraint at the data (exact), in extended precision
# =============================================================================================


def compensated_cumsum(a: np.ndarray) -> np.ndarray:
    r"""Cumulative sums with Kahan compensation, vectorized over blocks of about
    :math:`\sqrt n` entries (the loop runs over positions within a block), then block offsets
    by the same routine.  Every partial sum errs by at most about :math:`4\epsilon\sum|a|`
    (Kahan's bound :math:`2\epsilon + O(n\epsilon^2)` per level, plus one addition of the
    offset), independently of n to first order."""
    n = a.size
    if n <= 64:
        out = np.empty_like(a)
        acc = a.dtype.type(0)
        comp = a.dtype.type(0)
        for i in range(n):
            yv = a[i] - comp
            t = acc + yv
            comp = (t - acc) - yv
            acc = t
            out[i] = acc
        return out
    bs = max(1, math.isqrt(n))
    nblk = -(-n // bs)
    pad = np.zeros(nblk * bs, dtype=a.dtype)
    pad[:n] = a
    blocks = pad.reshape(nblk, bs)
    within = np.empty_like(blocks)
    acc = np.zeros(nblk, dtype=a.dtype)
    comp = np.zeros(nblk, dtype=a.dtype)
    for j in range(bs):
        yv = blocks[:, j] - comp
        t = acc + yv
        comp = (t - acc) - yv
        acc = t
        within[:, j] = acc
    offsets = np.concatenate([np.zeros(1, dtype=a.dtype), compensated_cumsum(within[:, -1])[:-1]])
    return (within + offsets[:, None]).reshape(-1)[:n]


def ramp_correlations(u: np.ndarray, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""``h[j] = sum_k V_k (u_k - u_j)_+`` for j = 0..p-1 and the suffix sums
    ``S[j] = sum_{k >= j} V_k``, from :math:`h_j = h_{j+1} + (u_{j+1}-u_j) S_{j+1}` in
    extended precision with compensated summation (:func:`rounding_slack` bounds the
    error)."""
    Vl = np.asarray(V, dtype=LONG_DOUBLE)
    S = compensated_cumsum(Vl[::-1])[::-1]
    d = np.diff(np.asarray(u, dtype=LONG_DOUBLE))
    inc = d * S[1:]
    h = np.concatenate([compensated_cumsum(inc[::-1])[::-1], np.zeros(1, dtype=LONG_DOUBLE)])
    return h, S


def rounding_slack(u: np.ndarray, V: np.ndarray) -> float:
    r"""A bound on the rounding error of :func:`ramp_correlations`: the suffix sums err by at
    most :math:`6\epsilon\sum|V|` (two compensated levels), the products
    :math:`\Delta_k S_{k+1}` by one more rounding, and the second sum by at most
    :math:`6\epsilon\sum_k\Delta_k|S_{k+1}| \le 6\epsilon(u_p - u_1)\sum|V|`;
    :math:`\epsilon` is the extended-precision unit roundoff.  Doubled for safety."""
    if u.size <= 1:
        return 0.0
    return 2.0 * 16.0 * LONG_DOUBLE_EPS * float(np.sum(np.abs(V))) * float(u[-1] - u[0])


def c_two_layer(u: np.ndarray, V: np.ndarray, *, skip: bool = False) -> float:
    r"""Exact dual-constraint value :math:`\sup_{s=\pm1,\,t}|\sum_k V_k (s(u_k - t))_+|` for
    group sums ``V`` with :math:`\sum_k V_k = 0` (and :math:`\sum_k V_k u_k = 0` if ``skip``).

    The correlation with a ramp is piecewise linear in its kink ``t`` with breakpoints at
    the data, so the supremum is attained at a data point: right ramps give
    :math:`h_j`, left ramps :math:`h_j - h_1` (doc §2).  Returns a value rounded *up* by
    :func:`rounding_slack`.
    """
    if u.size <= 1:
        return 0.0
    h, _ = ramp_correlations(u, V)
    if skip:
        c = np.max(np.abs(h))
    else:
        c = max(np.max(np.abs(h)), np.max(np.abs(h - h[0])))
    return math.nextafter(float(c), math.inf) + rounding_slack(u, V)  # rounded up to double


def c_lipschitz_bound(u: np.ndarray, V: np.ndarray) -> float:
    r"""Proven bound :math:`c(V) = \int |G(t)|\,dt = \sum_k |S_{k+1}|\,(u_{k+1}-u_k)` on
    :math:`\langle V, f\rangle / \mathrm{Lip}(f)` for *every* function f when
    :math:`\sum_k V_k = 0` (summation by parts: :math:`\sum_k V_k f(u_k) = \int f'(t)G(t)dt`
    with :math:`G(t) = \sum_{u_k > t} V_k`).  A deep ReLU network's Lipschitz constant is at
    most the product of its layers' operator norms."""
    if u.size <= 1:
        return 0.0
    _, S = ramp_correlations(u, V)
    val = np.sum(np.abs(S[1:]) * np.diff(np.asarray(u, dtype=LONG_DOUBLE)))
    return math.nextafter(float(val), math.inf) + rounding_slack(u, V)  # rounded up to double


def _arc_max(a: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    r"""``max |<a_i, q>|`` over unit vectors q at angles in ``[lo_i, hi_i]`` (arcs shorter than
    pi): the maximum of a linear function on an arc is at an endpoint or at the direction
    of ``±a_i`` when that lies on the arc."""
    def val(th):
        return np.abs(a[:, 0] * np.cos(th) + a[:, 1] * np.sin(th))

    best = np.maximum(val(lo), val(hi))
    phi = np.arctan2(a[:, 1], a[:, 0])
    for shift in (0.0, np.pi, -np.pi, 2 * np.pi, -2 * np.pi):
        th = phi + shift
        inside = (th >= lo) & (th <= hi)
        best = np.where(inside, np.maximum(best, np.hypot(a[:, 0], a[:, 1])), best)
    return best


def penalized_sectors(u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""The activation cells of :math:`(w, b) \mapsto ((w u_k + b)_+)_k` on the unit circle.

    Returns ``lo, hi`` (angles of each arc), and for each arc the active set as an
    index range ``[first, last)`` in sorted order.  Neuron :math:`(w, b)` is active at
    :math:`u_k` iff :math:`w u_k + b > 0`; the boundaries are the directions orthogonal to
    :math:`(u_k, 1)`, i.e. angles :math:`\theta_k = \operatorname{atan2}(-u_k, 1) \pm \pi/2`.
    """
    p = u.size
    # boundary angles where w u_k + b = 0 with (w, b) = (cos th, sin th): th = atan2(-u_k, 1) + m*pi
    base = np.arctan2(-u, np.ones(p))  # in (-pi/2, pi/2), decreasing in u
    bd = np.sort(np.concatenate([base, base + np.pi]))  # 2p angles in (-pi/2, 3pi/2)
    lo = bd
    hi = np.concatenate([bd[1:], [bd[0] + 2 * np.pi]])
    mid = 0.5 * (lo + hi)
    w, b = np.cos(mid), np.sin(mid)
    # w > 0: active iff u_k > -b/w (a suffix); w < 0: active iff u_k < -b/w (a prefix)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -b / w
    first = np.zeros(mid.size, dtype=int)
    last = np.zeros(mid.size, dtype=int)
    pos, neg = w > 0, w < 0
    first[pos] = np.searchsorted(u, t[pos], side="right")
    last[pos] = p
    first[neg] = 0
    last[neg] = np.searchsorted(u, t[neg], side="left")
    zero = ~(pos | neg)
    last[zero & (b > 0)] = p
    return lo, hi, first, last


def _c_penalized(u: np.ndarray, V: np.ndarray) -> float:
    r"""Exact :math:`\max_{w^2+b^2 \le 1}|\sum_k V_k (w u_k + b)_+|` (penalized biases, no
    output bias).  On each of the 2p activation arcs the correlation is linear in
    :math:`(w, b)`, namely :math:`\langle a, (w,b)\rangle` with
    :math:`a = \sum_{k\ \mathrm{active}} V_k (u_k, 1)`; :func:`_arc_max` maximizes it exactly."""
    lo, hi, first, last = penalized_sectors(u)
    Vl = np.asarray(V, dtype=LONG_DOUBLE)
    c0 = np.concatenate([[0], np.cumsum(Vl)])
    c1 = np.concatenate([[0], np.cumsum(Vl * np.asarray(u, dtype=LONG_DOUBLE))])
    A = np.stack([c1[last] - c1[first], c0[last] - c0[first]], axis=1).astype(float)
    m = _arc_max(A, lo, hi)
    slack = 4.0 * u.size * LONG_DOUBLE_EPS * float(np.sum(np.abs(V)) * (1.0 + np.max(np.abs(u))))
    # the arc ends and the value on them are double-precision: each value errs by at most a few
    # units in the last place of ||a|| (the function is ||a||-Lipschitz in the angle), also when
    # boundary angles of huge |u| round to the same double
    slack += 8.0 * EPS * float(np.max(np.hypot(A[:, 0], A[:, 1])))
    return float(np.max(m)) + slack


# =============================================================================================
# Networks, objectives and certificates
# =============================================================================================


def network_objective(net: Network, X: np.ndarray, Y: np.ndarray, beta: float, loss: Loss, *,
                       penalize_biases: bool = False) -> float:
    """:func:`deepdual.objective`, evaluated in row chunks when ``n x width`` is large (same
    formula; only the memory of the forward pass differs)."""
    width = sum(W.shape[1] for layers in net.weights for W in layers[:-1])
    if X.shape[0] * max(width, 1) <= 4_000_000:
        return _objective(net, X, Y, beta=beta, loss=loss, penalize_biases=penalize_biases)
    step = max(1, 4_000_000 // max(width, 1))
    F = np.concatenate([net.forward(X[i:i + step]) for i in range(0, X.shape[0], step)])
    return float(loss.value(F, Y)) + 0.5 * beta * net.squared_norm(include_biases=penalize_biases)


def forward_pass(net: Network, X: np.ndarray) -> np.ndarray:
    width = sum(W.shape[1] for layers in net.weights for W in layers[:-1])
    step = max(1, 4_000_000 // max(width, 1))
    return np.concatenate([net.forward(X[i:i + step]) for i in range(0, X.shape[0], step)])


def equalize_dual(v: np.ndarray, x: np.ndarray, loss: Loss, *, skip: bool) -> np.ndarray | None:
    r"""Make the dual point orthogonal to the free output bias (:math:`\sum_i v_i = 0`, per output
    column) and, with ``skip``, to the free linear term (:math:`x^Tv = 0`).

    Squared loss: orthogonal projection (its conjugate is finite everywhere).  Losses
    whose conjugate domain is a box containing 0 per entry (logistic, hinge): shrink the
    entries of the larger-sum sign toward 0, which stays in the domain.  Returns None
    when no such correction is available (skip with such a loss)."""
    v = np.array(v, dtype=float, copy=True)
    if isinstance(loss, SquaredLoss):
        v -= v.mean(axis=0, keepdims=True)
        if skip:
            xc = x - x.mean()
            den = float(xc @ xc)
            if den > 0:
                v -= np.outer(xc, xc @ v) / den
        # column sums exactly 0: the squared loss's dual scale is unbounded, and a rounding
        # residue of the sum times a scale of 1e16 (a constant residual has c(v) ~ 1e-16) was
        # an O(1) invalid bound (deepdual.exact_centering)
        return center_exactly(v)
    if skip:
        return None
    for k in range(v.shape[1]):
        col = v[:, k]
        s = col.sum()
        pos, neg = col[col > 0].sum(), -col[col < 0].sum()
        if s > 0 and pos > 0:
            col[col > 0] *= 1.0 - s / pos
        elif s < 0 and neg > 0:
            col[col < 0] *= 1.0 - (-s) / neg
    return v


def column_norms(H: np.ndarray) -> np.ndarray:
    r"""Euclidean norms of the columns of ``H`` without under- or overflow: each column is divided
    by its largest entry before squaring (``np.linalg.norm`` squares directly, so entries of
    size :math:`10^{-157}` fall into subnormal numbers and lose their digits, which made
    :math:`c(V)` too *small*, an invalid bound, and entries of size :math:`10^{155}` overflow).
    Accurate to a few units in the last place, covered by the callers' relative slack."""
    H = np.asarray(H, dtype=float)
    m = np.max(np.abs(H), axis=0)
    safe = np.where(m > 0, m, 1.0)
    return m * np.sqrt(np.sum(np.square(H / safe), axis=0))


def c_columns(u: np.ndarray, inv: np.ndarray, v: np.ndarray, kind: str) -> float:
    """Dual-constraint value of a per-sample dual point with K columns (group sums first)."""
    p = u.size
    Vs = [np.bincount(inv, v[:, k], minlength=p) for k in range(v.shape[1])]
    if kind == "lipschitz":
        if len(Vs) == 1:
            return c_lipschitz_bound(u, Vs[0])
        # int ||G(t)|| dt with G the vector of suffix sums
        Ss = [(ramp_correlations(u, V)[1][1:]).astype(float) for V in Vs]
        G = column_norms(np.array(Ss))
        # relative slack: rounding of the suffix sums to double and of the norms (a few ulps each)
        return float(np.sum(G * np.diff(u))) * (1 + 8 * (len(Vs) + 2) * EPS) + sum(rounding_slack(u, V) for V in Vs)
    if kind == "penalized":
        if len(Vs) != 1:
            raise ValueError("penalized-bias certificates support one output column")
        return _c_penalized(u, Vs[0])
    if len(Vs) == 1:
        return c_two_layer(u, Vs[0], skip=(kind == "skip"))
    H = np.array([ramp_correlations(u, V)[0].astype(float) for V in Vs])  # (K, p)
    slack = sum(rounding_slack(u, V) for V in Vs)
    c = np.max(column_norms(H))
    if kind != "skip":
        c = max(c, np.max(column_norms(H - H[:, :1])))
    # relative slack: rounding of the correlations to double and of the norms (a few ulps each)
    return float(c) * (1 + 8 * (len(Vs) + 2) * EPS) + slack


def _best_dual(v: np.ndarray, Y: np.ndarray, loss: Loss, tmax: float, *, out_bias_penalty: float = 0.0):
    r"""``max_{0 <= t <= tmax} D(t v) - t^2 pen`` with ``pen = out_bias_penalty`` (the
    penalized output bias term :math:`(\sum v)^2/(2\beta)`)."""
    if out_bias_penalty == 0.0:
        return loss.best_scale(v, Y, tmax)
    from scipy.optimize import minimize_scalar

    tmax = float(min(tmax, 1e300))
    if not getattr(loss, "unbounded_dual_scale", False):
        tmax = min(tmax, 1.0)

    def f(t):
        return loss.dual_value(t * v, Y) - t * t * out_bias_penalty

    if isinstance(loss, SquaredLoss):
        A = float(np.vdot(v, Y))
        Bq = float(np.vdot(v, v)) + 2.0 * out_bias_penalty
        t = min(max(A / Bq, 0.0), tmax) if Bq > 0 else 0.0
        return t, f(t)
    res = minimize_scalar(lambda t: -f(t), bounds=(0.0, tmax), method="bounded",
                          options={"xatol": 1e-12 * max(tmax, 1e-300)})
    cands = [(0.0, f(0.0)), (tmax, f(tmax)), (float(res.x), f(float(res.x)))]
    cands = [c for c in cands if np.isfinite(c[1])]
    return max(cands, key=lambda c: c[1])


def dual_bound_two_layer(x: np.ndarray, Y: np.ndarray, F: np.ndarray, beta: float, loss: Loss, *,
                          kind: str = "base") -> tuple[float, np.ndarray | None, float]:
    r"""Proven lower bound on the two-layer optimum from the residual direction of ``F``:
    the dual point :math:`v = -\nabla\ell(F)` made orthogonal to the free terms, scaled
    into the exactly computed dual constraint, best scale by :meth:`Loss.best_scale`.
    ``kind`` is ``"base"`` (free biases), ``"skip"`` (free linear term too) or
    ``"penalized"`` (penalized biases incl. the output bias).  Returns ``(bound, point, c)``."""
    v = loss.dual_point(F, Y)
    if kind != "penalized":
        v = equalize_dual(v, x, loss, skip=(kind == "skip"))
        if v is None:
            return -np.inf, None, np.inf
    u, inv = np.unique(x, return_inverse=True)
    c = c_columns(u, inv, v, kind)
    tmax = np.inf if c == 0 else beta / c
    pen = float(np.sum(v.sum(axis=0) ** 2)) / (2 * beta) if kind == "penalized" else 0.0
    t, D = _best_dual(v, Y, loss, tmax, out_bias_penalty=pen)
    return float(D), t * v, c


@SingleThreadedBLAS()  # small dense Newton/working-set systems (deepdual._threads)
def residual_certificate_1d(network: Network, X: np.ndarray, Y: np.ndarray, *, beta: float, loss: Any = "squared",
               rtol: float = DEFAULT_RTOL, penalize_biases: bool = False, constraint: str = "auto",
               n_scales: int = 60, max_patterns: Any = None) -> Certificate:
    r"""Weak-duality certificate of a ReLU network (with or without biases) on 1-D data.

    Two layers: the dual constraint :math:`\sup_{w,b}|v^T(wx+b)_+|/|w|` is attained by a
    ramp with its kink at a data point (both orientations), so it is computed *exactly*
    from cumulative sums (``docs/one_dimensional.md`` §2); the bound is valid for every
    two-layer network with free biases of any width.  With ``penalize_biases`` the
    constraint :math:`\sup_{w^2+b^2\le1}|v^T(wx+b)_+|` is computed exactly on the 2p
    activation arcs and the output bias is taken as penalized too.

    Depth :math:`L \ge 3`: a deep network's output is Lipschitz with constant at most
    :math:`\prod_l\|W_{l}\|_F` per sub-network, and summation by parts gives
    :math:`|v^Tf(x)| \le \mathrm{Lip}(f)\int|G|`, :math:`G(t) = \sum_{x_i>t}v_i`; with the
    AM--GM power penalty this yields a *proven but usually loose* bound
    (:func:`deepdual.bounds.power_penalty_lower_bound`), never an exact one.

    This is the bound from the network's own dual point;
    :func:`~deepdual.relu.one_dimensional.solver.certify_1d` (the public entry point) also
    uses the solver's proven bound for the same class when that is larger
    (``docs/one_dimensional.md`` §8).

    Parameters
    ----------
    network : Network
        ReLU network with input dimension 1.
    X : array of shape (n, 1)
    Y : array of shape (n, K)
        Canonical labels (see :meth:`Loss.check_labels`).
    beta : float
    loss : str or Loss
    rtol : float
    penalize_biases : bool, default False
    constraint : {"auto", "exact", "bound"}
        Accepted for compatibility with :func:`deepdual.certify`: the two-layer constraint
        is always exact here (cheap); ``"exact"`` raises for depth >= 3, where only the
        Lipschitz bound is available.
    n_scales : int, default 60
        Number of dual scalings in the depth >= 3 bound.
    max_patterns : ignored (no activation cells to enumerate in 1-D).

    Returns
    -------
    Certificate
    """
    from ..._validation import check_choice

    check_choice(constraint, "constraint", ("auto", "exact", "bound"))
    if isinstance(n_scales, bool) or not isinstance(n_scales, (int, np.integer)) or n_scales < 2:
        raise ValueError(f"`n_scales` must be an integer >= 2, got {n_scales!r}")
    lossf = get_loss(loss)
    beta = check_beta(beta)
    if not isinstance(network, Network):
        raise TypeError(f"`network` must be a deepdual.Network, got {type(network).__name__}")
    network.validate()
    if network.activation != "relu":
        raise ValueError(f"`network` must be a ReLU network, got activation={network.activation!r}")
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != 1:
        raise ValueError(f"`X` must have shape (n, 1) for one-dimensional certificates, got {X.shape}")
    Y = np.asarray(Y, dtype=float).reshape(X.shape[0], -1)
    x = X[:, 0]
    F = forward_pass(network, X)
    obj = network_objective(network, X, Y, beta, lossf, penalize_biases=penalize_biases)
    L = network.depth
    if L == 2:
        kind = "penalized" if penalize_biases else "base"
        D, vv, c = dual_bound_two_layer(x, Y, F, beta, lossf, kind=kind)
        method = ("exact: 1-D penalized biases (activation arcs)" if penalize_biases
                  else "exact: 1-D ramps with kinks at the data")
        details: dict[str, Any] = {"c": c, "depth": 2, "bounds": {"residual": D}}
        return Certificate(obj, D, method, exact_constraint=True, dual=vv, rtol=rtol, details=details)
    if constraint == "exact":
        raise ValueError(f"`constraint='exact'` is not available for depth-{L} networks on 1-D data "
                         "(only the proven Lipschitz bound is); use constraint='auto'")
    from ...bounds import max_budget, power_penalty_lower_bound

    v = equalize_dual(lossf.dual_point(F, Y), x, lossf, skip=False)
    if v is None:
        return Certificate(obj, -np.inf, "none", exact_constraint=False, rtol=rtol,
                           details={"note": "no dual point orthogonal to the output bias"})
    u, inv = np.unique(x, return_inverse=True)
    c = c_columns(u, inv, v, "lipschitz")
    upper = obj - lossf.minimum(Y)
    T_max = max_budget(upper, beta, L)
    # a family of scalings t v: each gives a valid (D, c) pair; the bound takes the best
    # per budget interval.  Scales above 1 only for losses whose conjugate allows them.
    tmax = 1.0 if not getattr(lossf, "unbounded_dual_scale", False) else np.inf
    t_hi = min(tmax, max(1.0, 4.0 * beta / max(c, EPS)))
    ts = np.concatenate([[0.0], np.geomspace(1e-6, 1.0, int(n_scales))]) * t_hi
    ts = np.unique(np.concatenate([ts, [min(t_hi, beta / max(c, EPS))]]))
    Ds = np.array([lossf.dual_value(t * v, Y) for t in ts])
    lb = power_penalty_lower_bound(Ds, ts * c, beta=beta, depth=L, T_max=T_max)
    method = f"upper bound: Lipschitz constant (depth {L})"
    details = {"c_lipschitz": c, "depth": L, "T_max": T_max, "bounds": {"residual": lb}}
    return Certificate(obj, lb, method, exact_constraint=False, dual=v, rtol=rtol, details=details)
