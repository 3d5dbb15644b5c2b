r"""Convex losses with value, gradient, proximal operator and Fenchel conjugate.

Every solver and certificate in deepdual works with a loss object.  A loss is a
convex function :math:`\ell(F; Y)` of the network output :math:`F \in \mathbb{R}^{n\times K}`
(labels :math:`Y` fixed), a *sum* over samples.  Its Fenchel conjugate is

.. math::  \ell^*(Z; Y) = \sup_F \; \langle Z, F\rangle - \ell(F; Y).

Weak duality for every network :math:`f` with regularizer :math:`R`:
for any :math:`V` with :math:`\langle V, f(X)\rangle \le R(\theta)` for all networks
(the *dual constraint*, which depends on the architecture and the data but not on
the loss), the Fenchel--Young inequality
:math:`\ell(F) + \ell^*(Z) \ge \langle Z, F\rangle` with :math:`Z = -V` gives

.. math::  \ell(f(X)) + R(\theta) \;\ge\; \ell(f(X)) + \langle V, f(X)\rangle \;\ge\; -\ell^*(-V) =: D(V).

:meth:`Loss.dual_value` returns :math:`D(V)`, and :meth:`Loss.dual_point`
returns the natural candidate :math:`V = -\nabla \ell(F)` (the residual ``Y - F``
for the squared loss), for which Fenchel--Young holds with equality.
:meth:`Loss.best_scale` maximizes the concave :math:`t \mapsto D(tV)` over the
scales that keep :math:`-tV` in the conjugate's domain (:meth:`Loss.dual_scale_limit`),
which is how certificates make a candidate feasible.  See ``docs/losses.md``.

User-defined losses
-------------------
Subclass :class:`Loss` and implement ``check_labels``, ``value``, ``gradient``
and ``conjugate`` -- or pass any object with those methods (``gradient`` may be
replaced by ``prox``) to :func:`get_loss`, which wraps it so that the dual helpers
(``dual_value``, ``best_scale``, ``minimum``, ...) are available everywhere.

References
----------
.. [1] R. T. Rockafellar, *Convex Analysis*, Princeton, 1970, section 12 (conjugates).
.. [2] H. H. Bauschke and P. L. Combettes, *Convex Analysis and Monotone Operator
   Theory in Hilbert Spaces*, Springer, 2011 (proximal operators, Moreau identity).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit, log_expit, xlogy

__all__ = [
    "Loss",
    "SquaredLoss",
    "LogisticLoss",
    "CrossEntropyLoss",
    "HingeLoss",
    "get_loss",
    "LOSSES",
]

#: Points within this distance of the conjugate's domain count as inside it: dual
#: points are built by floating-point arithmetic (scaling a gradient), which leaves
#: rounding errors of a few ulps of values that are O(1) by construction.
_DOMAIN_ATOL = 1e-12


class Loss(ABC):
    r"""Base class of a convex loss :math:`\ell(F; Y)` summed over samples.

    Subclasses implement :meth:`check_labels`, :meth:`value`, :meth:`gradient` and
    :meth:`conjugate`; they may override :meth:`prox` (default: a numerical
    minimization), :meth:`dual_scale_limit` (default: 1, or infinity when
    ``unbounded_dual_scale``) and :meth:`link`.
    """

    #: short name used by ``solve(..., loss=name)`` and the CLI
    name: str = "loss"
    #: True when ``predict_proba`` makes sense
    probabilistic: bool = False
    #: True when ``-t V`` stays in dom(conjugate) for every t >= 0 (no upper limit on t)
    unbounded_dual_scale: bool = False
    #: Lipschitz constant of ``F -> gradient(F)`` in the Frobenius norm (None: not smooth)
    lipschitz: float | None = None

    @abstractmethod
    def check_labels(self, Y: np.ndarray) -> np.ndarray:
        """Validate labels of shape (n, K); return the canonical float64 copy (n, K').

        Raises ``ValueError`` naming ``y`` and the expected values.
        """

    @abstractmethod
    def value(self, F: np.ndarray, Y: np.ndarray) -> float:
        """:math:`\\ell(F; Y)`."""

    @abstractmethod
    def gradient(self, F: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """:math:`\\nabla_F \\ell(F; Y)` (a subgradient for non-smooth losses)."""

    @abstractmethod
    def conjugate(self, Z: np.ndarray, Y: np.ndarray) -> float:
        """:math:`\\ell^*(Z; Y)`; ``inf`` outside its domain."""

    # ------------------------------------------------------------------ prox
    def prox(self, F: np.ndarray, Y: np.ndarray, step: float) -> np.ndarray:
        r"""Proximal operator :math:`\operatorname{argmin}_U\ \text{step}\,\ell(U; Y) + \tfrac12\|U - F\|_F^2`.

        The default minimizes the strongly convex objective numerically with
        L-BFGS using :meth:`value` and :meth:`gradient` (exact for smooth losses up
        to the solver's tolerance); the built-in losses override it in closed form
        or by a safeguarded Newton iteration.
        """
        F = np.asarray(F, dtype=float)
        step = float(step)
        if step <= 0:
            return F.copy()
        shape = F.shape

        def fun(u: np.ndarray) -> tuple[float, np.ndarray]:
            U = u.reshape(shape)
            D = U - F
            val = step * float(self.value(U, Y)) + 0.5 * float(np.vdot(D, D))
            grad = step * np.asarray(self.gradient(U, Y), dtype=float) + D
            return val, grad.ravel()

        # gtol: the objective is 1-strongly convex, so a gradient norm g means the
        # iterate is within g of the prox; 1e-12 relative to the data's scale is
        # below what any caller (first-order solvers) can resolve.
        scale = max(1.0, float(np.max(np.abs(F), initial=0.0)))
        res = minimize(fun, F.ravel(), jac=True, method="L-BFGS-B",
                       options={"gtol": 1e-12 * scale, "ftol": 0.0, "maxiter": 10_000})
        return res.x.reshape(shape)

    # ------------------------------------------------------------------ dual helpers
    def dual_value(self, V: np.ndarray, Y: np.ndarray) -> float:
        """:math:`D(V) = -\\ell^*(-V; Y)`, the dual objective (``-inf`` if infeasible)."""
        return -self.conjugate(-np.asarray(V, dtype=float), Y)

    def dual_point(self, F: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Natural dual candidate :math:`V = -\\nabla \\ell(F)` (Fenchel--Young is tight there)."""
        return -np.asarray(self.gradient(F, Y), dtype=float)

    def dual_scale_limit(self, V: np.ndarray, Y: np.ndarray) -> float:
        r"""Largest :math:`t \ge 0` with :math:`-tV \in \operatorname{dom}\ell^*` (``inf`` if none).

        The default is ``inf`` for losses flagged ``unbounded_dual_scale`` and 1
        otherwise (``-V`` itself is assumed feasible, as it is for ``V = -gradient``).
        """
        return np.inf if self.unbounded_dual_scale else 1.0

    def best_scale(self, V: np.ndarray, Y: np.ndarray, t_max: float) -> tuple[float, float]:
        """Maximize the concave function ``t -> D(t V)`` over ``0 <= t <= t_max``.

        ``t_max`` is further limited by :meth:`dual_scale_limit` (the conjugate's
        domain).  Returns ``(t, D(t V))``.  ``D(0) = -ell*(0) = min_F ell(F)`` is
        always attainable, so the result is never below it.
        """
        V = np.asarray(V, dtype=float)
        t_max = min(float(t_max), float(self.dual_scale_limit(V, Y)))
        d0 = self.dual_value(np.zeros_like(V), Y)
        if not t_max > 0 or not np.any(V):
            return 0.0, d0
        if not np.isfinite(t_max):
            # D(tV) is concave and finite on [0, inf): bracket its maximizer by doubling
            t_max = 1.0
            while t_max < 1e300 and self.dual_value(2 * t_max * V, Y) > self.dual_value(t_max * V, Y):
                t_max *= 2
            t_max *= 2
        res = minimize_scalar(
            lambda t: -self.dual_value(t * V, Y),
            bounds=(0.0, t_max),
            method="bounded",
            # locate the maximizer to ~1e-12 of the interval: D is smooth near an
            # interior maximum, so the value is then exact to ~1e-24 relative
            options={"xatol": 1e-12 * max(t_max, 1e-300)},
        )
        cands = [(0.0, d0), (t_max, self.dual_value(t_max * V, Y)), (float(res.x), -float(res.fun))]
        cands = [c for c in cands if np.isfinite(c[1])]
        return max(cands, key=lambda c: c[1])

    def minimum(self, Y: np.ndarray) -> float:
        """:math:`\\inf_F \\ell(F; Y) = -\\ell^*(0)` (0 for every built-in loss)."""
        return self.dual_value(np.zeros_like(np.asarray(Y, dtype=float)), Y)

    def link(self, F: np.ndarray) -> np.ndarray:
        """Map network outputs to predictions in label space (identity by default)."""
        return F

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SquaredLoss(Loss):
    r"""Squared loss :math:`\ell(F;Y) = \tfrac12 \|F - Y\|_F^2`.

    * labels: any real array;
    * gradient :math:`F - Y` (1-Lipschitz);
    * prox :math:`(F + sY)/(1 + s)`;
    * conjugate :math:`\ell^*(Z) = \tfrac12\|Z\|_F^2 + \langle Z, Y\rangle`, finite everywhere,
      so the dual objective is :math:`D(V) = \langle V, Y\rangle - \tfrac12\|V\|_F^2 =
      \tfrac12\|Y\|^2 - \tfrac12\|V - Y\|^2`.
    """

    name = "squared"
    unbounded_dual_scale = True
    lipschitz = 1.0

    def check_labels(self, Y: np.ndarray) -> np.ndarray:
        return np.array(Y, dtype=np.float64, copy=True)

    def value(self, F, Y):
        R = np.asarray(F, dtype=float) - Y
        return 0.5 * float(np.vdot(R, R))

    def gradient(self, F, Y):
        return np.asarray(F, dtype=float) - Y

    def prox(self, F, Y, step):
        return (np.asarray(F, dtype=float) + step * np.asarray(Y, dtype=float)) / (1.0 + step)

    def conjugate(self, Z, Y):
        Z = np.asarray(Z, dtype=float)
        return 0.5 * float(np.vdot(Z, Z)) + float(np.vdot(Z, Y))

    def best_scale(self, V, Y, t_max):
        # D(tV) = t <V,Y> - t^2/2 ||V||^2 is a concave parabola: clip its vertex.
        V = np.asarray(V, dtype=float)
        vv = float(np.vdot(V, V))
        if vv == 0.0 or not t_max > 0:
            return 0.0, 0.0
        t = min(max(float(np.vdot(V, Y)) / vv, 0.0), float(t_max))
        return t, self.dual_value(t * V, Y)


def _pm_one(Y: np.ndarray, name: str) -> np.ndarray:
    Y = np.asarray(Y, dtype=float)
    if Y.ndim != 2 or Y.shape[1] != 1:
        raise ValueError(f"`y` for the {name} loss must be 1-D binary labels, got shape {Y.shape}")
    vals = np.unique(Y)
    if set(vals.tolist()) <= {-1.0, 1.0}:
        return Y.copy()
    if set(vals.tolist()) <= {0.0, 1.0}:
        return 2.0 * Y - 1.0
    bad = [v for v in vals.tolist() if v not in (-1.0, 0.0, 1.0)][:5]
    raise ValueError(
        f"`y` for the {name} loss must take values in {{-1, +1}} or {{0, 1}}; "
        f"got values {vals[:5].tolist()} (e.g. {bad[0] if bad else vals[0]!r} is not allowed)"
    )


def _binary_scale_limit(V: np.ndarray, Y: np.ndarray) -> float:
    # -tV in dom  <=>  a = t V y in [0, 1]^n
    a = np.asarray(V, dtype=float) * Y
    if np.any(a < -_DOMAIN_ATOL):
        return 0.0
    amax = float(np.max(a, initial=0.0))
    return np.inf if amax <= 0 else 1.0 / amax


class LogisticLoss(Loss):
    r"""Logistic loss :math:`\ell(f;y) = \sum_i \log(1 + e^{-y_i f_i})`, labels in {-1,+1} (or {0,1}).

    * labels: one column with values in :math:`\{-1, +1\}` or :math:`\{0, 1\}` (mapped to
      :math:`\pm1`); anything else raises ``ValueError``;
    * gradient :math:`-y_i\,\sigma(-y_i f_i)` with the sigmoid :math:`\sigma`; it is
      :math:`\tfrac14`-Lipschitz;
    * conjugate: with :math:`a_i = -z_i y_i`,
      :math:`\ell^*(z) = \sum_i a_i\log a_i + (1-a_i)\log(1-a_i)` when every
      :math:`a_i \in [0,1]` (domain), else :math:`+\infty`; :math:`\inf\ell = -\ell^*(0) = 0`.
    """

    name = "logistic"
    probabilistic = True
    lipschitz = 0.25

    def check_labels(self, Y):
        return _pm_one(Y, self.name)

    def value(self, F, Y):
        return float(-np.sum(log_expit(Y * np.asarray(F, dtype=float))))

    def gradient(self, F, Y):
        return -Y * expit(-Y * np.asarray(F, dtype=float))

    def prox(self, F, Y, step):
        r"""Entrywise root of :math:`u - f - s\,y\,\sigma(-y u) = 0` (safeguarded Newton).

        With :math:`m = yu` and :math:`g = yf` the equation is
        :math:`h(m) = m - g - s\,\sigma(-m) = 0`, increasing in :math:`m`, with the root
        in :math:`[g, g + s]`.
        """
        F = np.asarray(F, dtype=float)
        Y = np.asarray(Y, dtype=float)
        s = float(step)
        if s <= 0:
            return F.copy()
        g = Y * F
        lo, hi = g.copy(), g + s
        m = g + s * expit(-g)  # one fixed-point step: inside [lo, hi]
        for _ in range(100):
            sig = expit(-m)
            h = m - g - s * sig
            lo = np.where(h < 0, m, lo)
            hi = np.where(h > 0, m, hi)
            m_new = m - h / (1.0 + s * sig * (1.0 - sig))
            bad = (m_new <= lo) | (m_new >= hi)
            m_new = np.where(bad, 0.5 * (lo + hi), m_new)
            # stop at rounding level of the iterate (h is 1-Lipschitz-below in m)
            if np.all(np.abs(m_new - m) <= 4 * np.finfo(float).eps * (1.0 + np.abs(m))):
                m = m_new
                break
            m = m_new
        return Y * m

    def conjugate(self, Z, Y):
        a = -np.asarray(Z, dtype=float) * Y
        if np.any(a < -_DOMAIN_ATOL) or np.any(a > 1 + _DOMAIN_ATOL):
            return np.inf
        a = np.clip(a, 0.0, 1.0)
        return float(np.sum(xlogy(a, a) + xlogy(1 - a, 1 - a)))

    def dual_scale_limit(self, V, Y):
        """``1 / max_i V_i y_i`` (so that every ``a_i = t V_i y_i`` lies in [0, 1]); 0 if some ``V_i y_i < 0``."""
        return _binary_scale_limit(V, Y)

    def link(self, F):
        return expit(F)


class HingeLoss(Loss):
    r"""Hinge loss :math:`\ell(f;y) = \sum_i \max(0, 1 - y_i f_i)`, labels in {-1,+1} (or {0,1}).

    * labels as for :class:`LogisticLoss`;
    * subgradient :math:`-y_i\,\mathbb{1}[y_i f_i < 1]` (not smooth: ``lipschitz = None``;
      use :meth:`prox`);
    * prox: with :math:`g = y f`, :math:`u = f` if :math:`g \ge 1`, :math:`u = f + s y` if
      :math:`g \le 1 - s`, else :math:`u = y` (the kink);
    * conjugate: with :math:`a_i = -z_i y_i`, :math:`\ell^*(z) = -\sum_i a_i` when every
      :math:`a_i \in [0,1]` (domain), else :math:`+\infty`.
    """

    name = "hinge"

    def check_labels(self, Y):
        return _pm_one(Y, self.name)

    def value(self, F, Y):
        return float(np.sum(np.maximum(0.0, 1.0 - Y * np.asarray(F, dtype=float))))

    def gradient(self, F, Y):
        return -Y * (Y * np.asarray(F, dtype=float) < 1.0)

    def prox(self, F, Y, step):
        F = np.asarray(F, dtype=float)
        Y = np.asarray(Y, dtype=float)
        g = Y * F
        m = np.where(g >= 1.0, g, np.where(g <= 1.0 - step, g + step, 1.0))
        return Y * m

    def conjugate(self, Z, Y):
        a = -np.asarray(Z, dtype=float) * Y
        if np.any(a < -_DOMAIN_ATOL) or np.any(a > 1 + _DOMAIN_ATOL):
            return np.inf
        return float(-np.sum(np.clip(a, 0.0, 1.0)))

    def dual_scale_limit(self, V, Y):
        """``1 / max_i V_i y_i``; 0 if some ``V_i y_i < 0``."""
        return _binary_scale_limit(V, Y)


def row_logsumexp(F: np.ndarray) -> np.ndarray:
    r""":math:`\log\sum_k e^{F_{ik}}` per row of a finite 2-D array, shifted by the row maximum
    (the same value as ``scipy.special.logsumexp(F, axis=1)``, ~5x faster on the small
    arrays of the iterative solvers, where scipy's argument handling dominates)."""
    m = F.max(axis=1)
    return m + np.log(np.exp(F - m[:, None]).sum(axis=1))


def _row_sum_tolerance(Z: np.ndarray) -> np.ndarray:
    r"""Rounding bound on the computed row sums of ``Y + Z`` for rows of ``Z`` summing to 0
    exactly: :math:`4(K + 2)\epsilon\,(1 + \sum_k |Z_{ik}|)` per row (K additions of
    terms each rounded once)."""
    K = Z.shape[1] if Z.ndim == 2 else 1
    return 4.0 * (K + 2) * np.finfo(float).eps * (1.0 + np.abs(Z).sum(axis=-1))


class CrossEntropyLoss(Loss):
    r"""Multiclass cross-entropy :math:`\ell(F;Y) = \sum_i \operatorname{logsumexp}(F_i) - \langle Y_i, F_i\rangle`.

    * labels: integer classes ``0..K-1`` (1-D, mapped to one-hot) or one-hot rows (2-D);
      fractional or negative labels raise ``ValueError``;
    * gradient :math:`\operatorname{softmax}(F_i) - Y_i` per row; it is
      :math:`\tfrac12`-Lipschitz (the Hessian :math:`\operatorname{diag}(p) - pp^T` has norm
      at most 1/2);
    * conjugate: with :math:`P = Z + Y`, :math:`\ell^*(Z) = \sum_{ik} P_{ik}\log P_{ik}` when
      every row of :math:`P` lies in the probability simplex (domain), else :math:`+\infty`.
      The loss is invariant to adding a constant to a row of :math:`F`, which is why
      dual points must have rows summing to zero.
    """

    name = "cross_entropy"
    probabilistic = True
    lipschitz = 0.5

    def check_labels(self, Y):
        Y = np.asarray(Y, dtype=float)
        if Y.ndim != 2:
            raise ValueError(f"`y` for the cross_entropy loss must be 1-D or 2-D, got shape {Y.shape}")
        if Y.shape[1] == 1:
            lab = Y[:, 0]
            bad = (lab != np.round(lab)) | (lab < 0)
            if np.any(bad):
                raise ValueError(
                    "`y` for the cross_entropy loss must be integer class labels 0..K-1 or one-hot rows; "
                    f"got {lab[bad][0]!r}"
                )
            k = int(lab.max()) + 1
            if k < 2:
                raise ValueError("`y` for the cross_entropy loss must contain at least two classes")
            out = np.zeros((Y.shape[0], k))
            out[np.arange(Y.shape[0]), lab.astype(int)] = 1.0
            return out
        if not (np.all((Y == 0) | (Y == 1)) and np.all(Y.sum(axis=1) == 1)):
            raise ValueError("`y` for the cross_entropy loss must be one-hot rows (each row one 1, rest 0)")
        return Y.copy()

    def value(self, F, Y):
        F = np.asarray(F, dtype=float)
        return float(np.sum(row_logsumexp(F)) - np.vdot(Y, F))

    def gradient(self, F, Y):
        F = np.asarray(F, dtype=float)
        P = np.exp(F - row_logsumexp(F)[:, None])
        return P - Y

    def conjugate(self, Z, Y):
        Z = np.asarray(Z, dtype=float)
        P = Z + Y
        # row sums: an exactly feasible point (rows of Z summing to 0) computed in floating
        # point is off by at most the rounding of its K + 1 terms; nothing coarser is accepted
        # (a 1e-9 tolerance let a bound exceed the optimum by ~1e-13 relative)
        if np.any(P < -_DOMAIN_ATOL) or np.any(np.abs(P.sum(axis=1) - 1.0) > _row_sum_tolerance(Z)):
            return np.inf
        P = np.clip(P, 0.0, 1.0)
        return float(np.sum(xlogy(P, P)))

    def dual_scale_limit(self, V, Y):
        """Largest ``t`` with ``Y - tV >= 0`` (rows of ``V`` must sum to 0, else 0)."""
        V = np.asarray(V, dtype=float)
        if np.any(np.abs(V.sum(axis=1)) > _row_sum_tolerance(V)):
            return 0.0
        pos = V > _DOMAIN_ATOL
        if not np.any(pos):
            return np.inf
        if np.any(Y[pos] <= 0):
            return 0.0
        return float(np.min(Y[pos] / V[pos]))

    def link(self, F):
        F = np.asarray(F, dtype=float)
        return np.exp(F - row_logsumexp(F)[:, None])


class _UserLoss(Loss):
    """Adapter giving a duck-typed user loss the full :class:`Loss` interface.

    The wrapped object supplies ``check_labels``, ``value``, ``conjugate`` and
    ``gradient`` (or ``prox``); the optional ``prox``, ``dual_scale_limit``,
    ``link``, ``name``, ``probabilistic``, ``unbounded_dual_scale`` and ``lipschitz``
    are used when present, and the base-class defaults otherwise.
    """

    def __init__(self, obj: Any) -> None:
        self.wrapped = obj
        self.name = str(getattr(obj, "name", type(obj).__name__))
        self.probabilistic = bool(getattr(obj, "probabilistic", False))
        self.unbounded_dual_scale = bool(getattr(obj, "unbounded_dual_scale", False))
        lip = getattr(obj, "lipschitz", None)
        self.lipschitz = None if lip is None else float(lip)

    def check_labels(self, Y):
        return np.asarray(self.wrapped.check_labels(Y), dtype=float)

    def value(self, F, Y):
        return float(self.wrapped.value(F, Y))

    def gradient(self, F, Y):
        if not callable(getattr(self.wrapped, "gradient", None)):
            raise NotImplementedError(
                f"the loss {self.name!r} has no `gradient` method; this operation needs one"
            )
        return np.asarray(self.wrapped.gradient(F, Y), dtype=float)

    def conjugate(self, Z, Y):
        return float(self.wrapped.conjugate(Z, Y))

    def prox(self, F, Y, step):
        if callable(getattr(self.wrapped, "prox", None)):
            return np.asarray(self.wrapped.prox(F, Y, step), dtype=float)
        return super().prox(F, Y, step)

    def dual_scale_limit(self, V, Y):
        if callable(getattr(self.wrapped, "dual_scale_limit", None)):
            return float(self.wrapped.dual_scale_limit(V, Y))
        return super().dual_scale_limit(V, Y)

    def link(self, F):
        if callable(getattr(self.wrapped, "link", None)):
            return self.wrapped.link(F)
        return F

    def __getattr__(self, attr: str) -> Any:
        # only called for attributes not found normally: forward to the user's object
        if attr == "wrapped":
            raise AttributeError(attr)
        return getattr(self.wrapped, attr)

    def __repr__(self) -> str:
        return f"UserLoss({self.wrapped!r})"


LOSSES: dict[str, type[Loss]] = {
    "squared": SquaredLoss,
    "logistic": LogisticLoss,
    "cross_entropy": CrossEntropyLoss,
    "hinge": HingeLoss,
}


def get_loss(loss: Any) -> Loss:
    """Return a :class:`Loss` from a name in :data:`LOSSES`, a :class:`Loss` (instance or
    subclass) or any object with ``check_labels``, ``value``, ``conjugate`` and
    ``gradient`` (or ``prox``) methods, which is wrapped so that the dual helpers work."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, type) and issubclass(loss, Loss):
        return loss()
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"`loss` must be one of {', '.join(map(repr, LOSSES))} or a Loss object; got {loss!r}")
        return LOSSES[loss]()
    needed = ("check_labels", "value", "conjugate")
    missing = [m for m in needed if not callable(getattr(loss, m, None))]
    if not (callable(getattr(loss, "gradient", None)) or callable(getattr(loss, "prox", None))):
        missing.append("gradient (or prox)")
    if missing:
        raise TypeError(
            "`loss` must be a name or an object with methods check_labels, value, conjugate and "
            f"gradient (or prox); {type(loss).__name__} lacks {', '.join(missing)}"
        )
    return _UserLoss(loss)
