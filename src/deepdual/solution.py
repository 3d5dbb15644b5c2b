"""Result objects: :class:`Solution` (from :func:`deepdual.solve`) and
:class:`Certificate` (from :func:`deepdual.certify`).

Both carry an objective, a lower bound and their gap.  The lower bound is always
the value of a *dual-feasible* point, hence a proven lower bound on the global
optimum over networks of every width (weak duality); ``-inf`` means no bound is
known.  ``certified`` is true only when that gap is within ``rtol`` relative:

    certified  <=>  objective - lower_bound <= rtol * max(|objective|, tiny)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .network import Network

__all__ = ["Solution", "Certificate", "DEFAULT_RTOL", "is_certified", "mark_zero_network"]

#: default relative gap under which a result is reported as certified
DEFAULT_RTOL = 1e-6


def is_certified(objective: float, lower_bound: float, rtol: float = DEFAULT_RTOL) -> bool:
    """True when ``lower_bound`` is finite and closes the gap to ``rtol`` relative."""
    if lower_bound is None or not np.isfinite(lower_bound) or not np.isfinite(objective):
        return False
    return bool(objective - lower_bound <= rtol * max(abs(objective), np.finfo(float).tiny))


def _fmt(x: float) -> str:
    return f"{x:.10g}" if np.isfinite(x) else str(x)


class _GapMixin:
    """``gap``, ``relative_gap`` and ``certified`` of anything with ``objective``,
    ``lower_bound`` and ``rtol`` (shared by :class:`Certificate` and :class:`Solution`)."""

    objective: float
    lower_bound: float
    rtol: float

    @property
    def gap(self) -> float:
        return float(self.objective - self.lower_bound)

    @property
    def relative_gap(self) -> float:
        return self.gap / max(abs(self.objective), np.finfo(float).tiny)

    @property
    def certified(self) -> bool:
        return is_certified(self.objective, self.lower_bound, self.rtol)


@dataclass
class Certificate(_GapMixin):
    """A weak-duality certificate for one network on one data set.

    Attributes
    ----------
    objective : float
        The network's objective (see :func:`deepdual.objective`).
    lower_bound : float
        Dual value of a dual-feasible point: no network of any width does better.
    method : str
        How the dual constraint was evaluated (e.g. ``"exact: whitened"``,
        ``"upper bound: spectral norm"``).
    exact_constraint : bool
        True when the dual constraint was computed exactly rather than bounded.
    dual : ndarray or None
        The dual-feasible point.
    """

    objective: float
    lower_bound: float
    method: str
    exact_constraint: bool = True
    dual: np.ndarray | None = None
    rtol: float = DEFAULT_RTOL
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "objective": float(self.objective),
            "lower_bound": float(self.lower_bound),
            "gap": self.gap,
            "relative_gap": self.relative_gap,
            "certified": self.certified,
            "method": self.method,
            "exact_constraint": self.exact_constraint,
        }

    def __repr__(self) -> str:
        return (
            f"Certificate(objective={_fmt(self.objective)}, lower_bound={_fmt(self.lower_bound)}, "
            f"gap={self.gap:.3g}, certified={self.certified}, method={self.method!r})"
        )


@dataclass
class Solution(_GapMixin):
    """Result of :func:`deepdual.solve`.

    Attributes
    ----------
    network : Network
        The optimal (or best found) network, in deepdual's weight layout.
    objective : float
        Its objective, evaluated in the library's single convention.
    lower_bound : float
        Dual value of a dual-feasible point (``-inf`` if none is proven).
    method : str
        The theorem or algorithm used.
    rtol : float
        Relative gap under which ``certified`` is true.
    dual : ndarray or None
        The dual-feasible point behind ``lower_bound``.
    info : dict
        Solver details (iterations, multipliers, assumptions).  ``info["zero_network"]`` is
        true when the optimum is the zero network (see :func:`mark_zero_network`); the
        note then says so.
    """

    network: Network
    objective: float
    lower_bound: float
    method: str
    rtol: float = DEFAULT_RTOL
    dual: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def zero_network(self) -> bool:
        """True when the optimum is reported to be the zero network (``info["zero_network"]``)."""
        return bool(self.info.get("zero_network", False))

    def predict(self, X: Any) -> np.ndarray:
        """Predictions of :attr:`network` (shape ``(n,)`` for 1-D labels)."""
        return self.network.predict(X)

    def summary(self, X: Any = None, y: Any = None, *, beta: float | None = None, loss: Any = None,
                tol: float | None = None):
        """Structure report of :attr:`network` (see :func:`deepdual.summarize`).

        Without data the certificate part is this solution's own objective, lower
        bound and method; with ``X`` and ``y`` it adds each sub-network's share of the
        output, the detected structure and, when ``beta`` is known (argument or
        ``info["beta"]``), a fresh :func:`deepdual.certify`.
        """
        from .report import summarize

        beta = self.info.get("beta") if beta is None else beta
        loss = self.info.get("loss") if loss is None else loss  # None: the network's recorded problem
        return summarize(self, X, y, beta=beta, loss=loss, tol=tol)

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "objective": float(self.objective),
            "lower_bound": float(self.lower_bound),
            "gap": self.gap,
            "relative_gap": self.relative_gap,
            "certified": self.certified,
            "rtol": self.rtol,
            "zero_network": self.zero_network,
        }

    def __repr__(self) -> str:
        status = "certified" if self.certified else "NOT certified"
        return (
            f"Solution(method={self.method!r}, objective={_fmt(self.objective)}, "
            f"lower_bound={_fmt(self.lower_bound)}, gap={self.gap:.3g}, {status}"
            f"{', zero network' if self.zero_network else ''})"
        )


def mark_zero_network(sol: Solution, Y: np.ndarray | None = None, loss: Any = None,
                      beta: float = 0.0) -> Solution:
    r"""Say in ``sol.info`` (``zero_network``, ``note``) when the optimum is the zero network.

    * Every weight and hidden bias exactly zero: ``info["zero_network"]`` is true, and the
      note says whether that is certified optimal (beta at least beta_max).
    * Negligible, not zero, weights (an interior-point method returns such): the zero
      network :math:`Z` keeps the solution's output bias :math:`b`, so it predicts the
      constant :math:`b` (or 0); its objective is :math:`\ell(\mathbf 1 b^T, Y)` (plus
      :math:`\frac\beta2\|b\|^2` when biases are penalized).  When :math:`Z` is itself
      certified against the solution's proven lower bound, it is a global optimum to
      ``rtol``: ``info["zero_network"]`` is set true and the note says so, with the largest
      returned weight.  This needs the labels ``Y`` (n, K) and the ``loss``.

    A solution whose ``info`` already has ``zero_network`` is left as it is.
    """
    net = sol.network
    weights = getattr(net, "weights", None)
    if not weights or "zero_network" in sol.info:
        return sol
    largest = max(float(np.max(np.abs(W))) for layers in weights for W in layers)
    if largest == 0.0:
        biases = getattr(net, "biases", None)
        zero = not (biases is not None and any(b is not None and np.any(b) for row in biases for b in row))
        sol.info["zero_network"] = zero
        if zero:
            msg = ("the returned network is the zero network" + (
                " (certified optimal: beta is at least beta_max, see deepdual.beta_max)" if sol.certified else ""))
            sol.info["note"] = f"{sol.info['note']}; {msg}" if sol.info.get("note") else msg
        return sol
    ob = getattr(net, "output_bias", None)
    if Y is None or loss is None or Y.shape[1] != net.n_outputs:
        return sol
    F0 = np.zeros(Y.shape) + (0.0 if ob is None else ob)
    value = float(loss.value(F0, Y))
    if ob is not None and sol.info.get("penalize_biases", False):
        value += 0.5 * beta * float(ob @ ob)
    if not is_certified(value, sol.lower_bound, sol.rtol):
        return sol
    sol.info["zero_network"] = True
    const = "0" if ob is None or not np.any(ob) else "the constant output bias"
    msg = (f"the optimum is the zero network: every weight 0, predicting {const}, objective {value:.10g}, is "
           "certified against the lower bound (beta is at least about beta_max, see deepdual.beta_max); the "
           f"returned network's weights are negligible (largest |w| = {largest:.2g})")
    note = sol.info.get("note")
    sol.info["note"] = f"{msg}; {note}" if note else msg
    return sol
