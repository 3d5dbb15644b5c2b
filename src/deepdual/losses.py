r"""Convex losses with value, gradient and Fenchel conjugate.

Every solver and certificate in deepdual works with a loss object.  A loss is a
convex function :math:`\ell(F; Y)` of the network output :math:`F \in \mathbb{R}^{n\times K}`
(labels :math:`Y` fixed).  Its Fenchel conjugate is

.. math::  \ell^*(Z; Y) = \sup_F \; \langle Z, F\rangle - \ell(F; Y).

Weak duality for every network :math:`f` with regularizer :math:`R`:
for any :math:`V` with :math:`\langle V, f(X)\rangle \le R(\theta)` for all networks
(the *dual constraint*), Fenchel--Young gives

.. math::  \ell(f(X)) + R(\theta) \;\ge\; -\ell^*(-V) =: D(V).

:meth:`Loss.dual_value` returns :math:`D(V)`, and :meth:`Loss.dual_point`
returns the natural candidate :math:`V = -\nabla \ell(F)` (the residual ``Y - F``
for the squared loss).  Scaling ``V`` by ``t`` in ``[0, 1]`` keeps it in the
conjugate's domain for all losses here, which is how certificates make a
candidate feasible.

A user-defined loss subclasses :class:`Loss` and implements ``value``,
``gradient``, ``conjugate`` and ``check_labels``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_expit, logsumexp, xlogy

__all__ = [
    "Loss",
    "SquaredLoss",
    "LogisticLoss",
    "CrossEntropyLoss",
    "HingeLoss",
    "get_loss",
    "LOSSES",
]


class Loss(ABC):
    """Base class of a convex loss :math:`\\ell(F; Y)` summed over samples."""

    #: short name used by ``solve(..., loss=name)`` and the CLI
    name: str = "loss"
    #: True when ``predict_proba`` makes sense
    probabilistic: bool = False
    #: True when ``-t V`` stays in dom(conjugate) for every t >= 0 (no upper limit on t)
    unbounded_dual_scale: bool = False

    @abstractmethod
    def check_labels(self, Y: np.ndarray) -> np.ndarray:
        """Validate labels of shape (n, K); return the canonical float64 copy (n, K')."""

    @abstractmethod
    def value(self, F: np.ndarray, Y: np.ndarray) -> float:
        """:math:`\\ell(F; Y)`."""

    @abstractmethod
    def gradient(self, F: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """:math:`\\nabla_F \\ell(F; Y)` (a subgradient for non-smooth losses)."""

    @abstractmethod
    def conjugate(self, Z: np.ndarray, Y: np.ndarray) -> float:
        """:math:`\\ell^*(Z; Y)`; ``inf`` outside its domain."""

    # ------------------------------------------------------------------ dual helpers
    def dual_value(self, V: np.ndarray, Y: np.ndarray) -> float:
        """:math:`D(V) = -\\ell^*(-V; Y)`, the dual objective (``-inf`` if infeasible)."""
        return -self.conjugate(-np.asarray(V, dtype=float), Y)

    def dual_point(self, F: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Natural dual candidate :math:`V = -\\nabla \\ell(F)`."""
        return -self.gradient(F, Y)

    def best_scale(self, V: np.ndarray, Y: np.ndarray, t_max: float) -> tuple[float, float]:
        """Maximize the concave function ``t -> D(t V)`` over ``0 <= t <= t_max``.

        Returns ``(t, D(t V))``.  ``D(0) = -ell*(0) = min_F ell(F)`` is always
        attainable, so the result is never below it.
        """
        t_max = float(t_max)
        if not self.unbounded_dual_scale:
            t_max = min(t_max, 1.0)
        d0 = self.dual_value(0.0 * V, Y)
        if t_max <= 0 or not np.any(V):
            return 0.0, d0
        res = minimize_scalar(
            lambda t: -self.dual_value(t * V, Y),
            bounds=(0.0, t_max),
            method="bounded",
            options={"xatol": 1e-12 * max(t_max, 1e-300)},
        )
        cands = [(0.0, d0), (t_max, self.dual_value(t_max * V, Y)), (float(res.x), -float(res.fun))]
        cands = [c for c in cands if np.isfinite(c[1])]
        return max(cands, key=lambda c: c[1])

    def minimum(self, Y: np.ndarray) -> float:
        """:math:`\\inf_F \\ell(F; Y) = -\\ell^*(0)` (0 for every loss here)."""
        return self.dual_value(np.zeros_like(Y), Y)

    def link(self, F: np.ndarray) -> np.ndarray:
        """Map network outputs to predictions in label space (identity by default)."""
        return F

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SquaredLoss(Loss):
    r"""Squared loss :math:`\ell(F;Y) = \tfrac12 \|F - Y\|_F^2`.

    Conjugate :math:`\ell^*(Z) = \tfrac12\|Z\|_F^2 + \langle Z, Y\rangle`, so the dual
    objective is :math:`D(V) = \langle V, Y\rangle - \tfrac12\|V\|_F^2`.
    """

    name = "squared"
    unbounded_dual_scale = True

    def check_labels(self, Y: np.ndarray) -> np.ndarray:
        return np.array(Y, dtype=np.float64, copy=True)

    def value(self, F, Y):
        R = np.asarray(F, dtype=float) - Y
        return 0.5 * float(np.vdot(R, R))

    def gradient(self, F, Y):
        return np.asarray(F, dtype=float) - Y

    def conjugate(self, Z, Y):
        Z = np.asarray(Z, dtype=float)
        return 0.5 * float(np.vdot(Z, Z)) + float(np.vdot(Z, Y))

    def best_scale(self, V, Y, t_max):
        # D(tV) = t <V,Y> - t^2/2 ||V||^2 is a concave parabola: clip its vertex.
        vv = float(np.vdot(V, V))
        if vv == 0.0 or t_max <= 0:
            return 0.0, 0.0
        t = min(max(float(np.vdot(V, Y)) / vv, 0.0), float(t_max))
        return t, self.dual_value(t * V, Y)


def _pm_one(Y: np.ndarray, name: str) -> np.ndarray:
    vals = np.unique(Y)
    if Y.shape[1] != 1:
        raise ValueError(f"`y` for the {name} loss must be 1-D binary labels, got shape {Y.shape}")
    if set(vals.tolist()) <= {-1.0, 1.0}:
        return Y.copy()
    if set(vals.tolist()) <= {0.0, 1.0}:
        return 2.0 * Y - 1.0
    raise ValueError(
        f"`y` for the {name} loss must take values in {{-1, +1}} or {{0, 1}}, got values {vals[:5].tolist()}"
    )


class LogisticLoss(Loss):
    r"""Logistic loss :math:`\ell(f;y) = \sum_i \log(1 + e^{-y_i f_i})`, labels in {-1,+1} (or {0,1}).

    Conjugate: with :math:`a_i = -z_i y_i`, :math:`\ell^*(z) = \sum_i a_i\log a_i + (1-a_i)\log(1-a_i)`
    when every :math:`a_i \in [0,1]`, else :math:`+\infty`.
    """

    name = "logistic"
    probabilistic = True

    def check_labels(self, Y):
        return _pm_one(np.asarray(Y, dtype=float), self.name)

    def value(self, F, Y):
        return float(-np.sum(log_expit(Y * np.asarray(F, dtype=float))))

    def gradient(self, F, Y):
        return -Y * expit(-Y * np.asarray(F, dtype=float))

    def conjugate(self, Z, Y):
        a = -np.asarray(Z, dtype=float) * Y
        # tolerate rounding at the boundary of the domain
        if np.any(a < -1e-12) or np.any(a > 1 + 1e-12):
            return np.inf
        a = np.clip(a, 0.0, 1.0)
        return float(np.sum(xlogy(a, a) + xlogy(1 - a, 1 - a)))

    def link(self, F):
        return expit(F)


class HingeLoss(Loss):
    r"""Hinge loss :math:`\ell(f;y) = \sum_i \max(0, 1 - y_i f_i)`, labels in {-1,+1} (or {0,1}).

    Conjugate: with :math:`a_i = -z_i y_i`, :math:`\ell^*(z) = -\sum_i a_i` when every
    :math:`a_i \in [0,1]`, else :math:`+\infty`.
    """

    name = "hinge"

    def check_labels(self, Y):
        return _pm_one(np.asarray(Y, dtype=float), self.name)

    def value(self, F, Y):
        return float(np.sum(np.maximum(0.0, 1.0 - Y * np.asarray(F, dtype=float))))

    def gradient(self, F, Y):
        return -Y * (Y * np.asarray(F, dtype=float) < 1.0)

    def conjugate(self, Z, Y):
        a = -np.asarray(Z, dtype=float) * Y
        if np.any(a < -1e-12) or np.any(a > 1 + 1e-12):
            return np.inf
        return float(-np.sum(np.clip(a, 0.0, 1.0)))


class CrossEntropyLoss(Loss):
    r"""Multiclass cross-entropy :math:`\ell(F;Y) = \sum_i \operatorname{logsumexp}(F_i) - \langle Y_i, F_i\rangle`.

    Labels: integer classes ``0..K-1`` (1-D) or one-hot rows (2-D).  Conjugate:
    with :math:`P = Z + Y`, :math:`\ell^*(Z) = \sum_{ik} P_{ik}\log P_{ik}` when every row of
    :math:`P` lies in the probability simplex, else :math:`+\infty`.
    """

    name = "cross_entropy"
    probabilistic = True

    def check_labels(self, Y):
        Y = np.asarray(Y, dtype=float)
        if Y.shape[1] == 1:
            lab = Y[:, 0]
            if np.any(lab != np.round(lab)) or np.any(lab < 0):
                raise ValueError("`y` for the cross_entropy loss must be integer class labels 0..K-1 or one-hot rows")
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
        return float(np.sum(logsumexp(F, axis=1)) - np.vdot(Y, F))

    def gradient(self, F, Y):
        F = np.asarray(F, dtype=float)
        P = np.exp(F - logsumexp(F, axis=1, keepdims=True))
        return P - Y

    def conjugate(self, Z, Y):
        P = np.asarray(Z, dtype=float) + Y
        if np.any(P < -1e-12) or np.any(np.abs(P.sum(axis=1) - 1.0) > 1e-9):
            return np.inf
        P = np.clip(P, 0.0, 1.0)
        return float(np.sum(xlogy(P, P)))

    def link(self, F):
        F = np.asarray(F, dtype=float)
        return np.exp(F - logsumexp(F, axis=1, keepdims=True))


LOSSES: dict[str, type[Loss]] = {
    "squared": SquaredLoss,
    "logistic": LogisticLoss,
    "cross_entropy": CrossEntropyLoss,
    "hinge": HingeLoss,
}


def get_loss(loss: Any) -> Loss:
    """Return a :class:`Loss` from a name in :data:`LOSSES` or a loss object."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"`loss` must be one of {', '.join(map(repr, LOSSES))} or a Loss object; got {loss!r}")
        return LOSSES[loss]()
    needed = ("value", "gradient", "conjugate", "check_labels")
    missing = [m for m in needed if not callable(getattr(loss, m, None))]
    if missing:
        raise TypeError(
            f"`loss` must be a name or an object with methods {', '.join(needed)}; "
            f"{type(loss).__name__} lacks {', '.join(missing)}"
        )
    return loss  # duck-typed user loss
