r"""Units: the 1-D problems with free biases are equivariant under scaling of x and y.

For networks with *unpenalized* biases and weight decay on the weights of all ``L`` layers,

.. math:: P^\star(a x,\ b y,\ \beta\, a^{2/L} b^{2 - 2/L}) = b^2\, P^\star(x, y, \beta)
          \qquad (a, b > 0)

for the squared loss; for the logistic, hinge and cross-entropy losses (labels, not values)
:math:`b = 1`.  Proof (``docs/one_dimensional.md`` §8): the map that divides the first-layer
weights (not biases) by :math:`a`, then multiplies layer :math:`l`'s weights by
:math:`s_l` and its biases by :math:`s_1\cdots s_l` with :math:`s_1 = b^{1/L}a^{(L-1)/L}`,
:math:`s_l = (b/a)^{1/L}` for :math:`l \ge 2`, is a bijection between networks with
:math:`f_{\text{new}}(a x) = b\, f(x)` (ReLU is positively homogeneous) which multiplies every
layer's weight norm by :math:`(b/a)^{1/L}`, so the penalty by :math:`(b/a)^{2/L}` and, with the
loss multiplied by :math:`b^2`, the objective by :math:`b^2`.

:func:`solve_1d <deepdual.relu.one_dimensional.solver.solve_1d>` therefore solves the problem
on :math:`x/a`, :math:`y/b` with ``a``, ``b`` powers of :math:`2^L` (so that every scaling,
including :math:`a^{1/L}`, is exact in floating point) chosen to bring the data to unit size,
and maps the network back (:func:`rescale_network`): the result does not depend on the units
of x and y, and data of size :math:`10^{\pm 200}` do not overflow.  Penalized biases break the
equivariance (the bias penalty does not scale like the weights'), so that variant is solved
in the given units.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from ...network import Network
from ...solution import Solution

__all__ = ["UnitScales", "unit_scales", "rescale_network", "rescale_solution"]


@dataclasses.dataclass(frozen=True)
class UnitScales:
    r"""Exact scalings ``x = a x_s``, ``y = b y_s``, ``beta = beta_s a^{2/L} b^{2-2/L}``.

    ``a = 2^{L k_a}`` and ``b = 2^{L k_b}`` so that :math:`a^{1/L}` and :math:`b^{1/L}` are
    powers of two too."""

    a: float
    b: float
    depth: int

    @property
    def identity(self) -> bool:
        return self.a == 1.0 and self.b == 1.0

    @property
    def objective(self) -> float:
        """Factor of objectives and lower bounds: :math:`P = b^2 P_s`."""
        return self.b * self.b

    def beta_scaled(self, beta: float) -> float:
        r""":math:`\beta_s = \beta\, a^{-2/L} b^{2/L - 2}` (exact: powers of two)."""
        L = self.depth
        ea, eb = _exp2(self.a) // L, _exp2(self.b) // L  # a = 2^(L ea), b = 2^(L eb)
        return math.ldexp(beta, -2 * ea + 2 * eb - 2 * L * eb)


def _exp2(v: float) -> int:
    m, e = math.frexp(v)  # v = m 2^e with m = 1/2 for powers of two
    return e - 1


def _power(v: float, depth: int) -> float:
    """The power of ``2^depth`` nearest to ``v`` (``1`` for 0 or non-finite ``v``)."""
    if not (v > 0 and math.isfinite(v)):
        return 1.0
    k = round(math.log2(v) / depth)
    return math.ldexp(1.0, depth * k)


def unit_scales(x: np.ndarray, Y: np.ndarray, *, depth: int, scale_labels: bool) -> UnitScales:
    r"""Scales that bring ``max|x|`` (and, with ``scale_labels``, ``max|Y|``) to within a
    factor :math:`2^{L/2}` of 1."""
    a = _power(float(np.max(np.abs(x))) if x.size else 0.0, depth)
    b = _power(float(np.max(np.abs(Y))) if (scale_labels and Y.size) else 0.0, depth)
    return UnitScales(a, b, int(depth))


def rescale_network(net: Network, s: UnitScales) -> Network:
    r"""The network ``g`` with :math:`g(a x) = b\, f(x)` whose every layer's weight norm is
    :math:`(b/a)^{1/L}` times ``f``'s (module docstring); exact in floating point."""
    L = s.depth
    ra = math.ldexp(1.0, _exp2(s.a) // L)  # a^{1/L}
    rb = math.ldexp(1.0, _exp2(s.b) // L)  # b^{1/L}
    r = rb / ra  # (b/a)^{1/L}, layers >= 2
    s1 = rb * (s.a / ra)  # b^{1/L} a^{(L-1)/L}, first layer (biases)
    weights, biases = [], None if net.biases is None else []
    for j, layers in enumerate(net.weights):
        new = [layers[0] * (rb / ra)] + [W * r for W in layers[1:]]  # W_1 / a * s_1 = W_1 (b/a)^{1/L}
        weights.append(new)
        if biases is not None:
            row, fac = [], s1
            for l, bvec in enumerate(net.biases[j]):
                row.append(None if bvec is None else bvec * fac)
                fac *= r
            biases.append(row)
    ob = None if net.output_bias is None else net.output_bias * s.b
    return Network(weights, net.activation, biases=biases, output_bias=ob, scalar_output=net.scalar_output,
                   problem=net.problem)


#: scale of each (scale-dependent) info entry of the 1-D solvers: (power of a, power of b)
_INFO_UNITS = {
    "knots": (1, 0),
    "spline_objective": (0, 2),
    "dual_constraint": (1, 1),
    "tau": (1, 1),
    "class_lower_bound": (0, 2),
    "class_gap": (0, 2),
    "two_layer_beta": (1, 1),
    "path_budget": (-1, 1),
}


def rescale_solution(sol: Solution, s: UnitScales, *, objective: float) -> Solution:
    r"""Map a solution of the scaled problem back: network by :func:`rescale_network`, lower
    bound times :math:`b^2` (exact: the problems are equivalent), dual point times ``b``
    (``v = b v_s`` gives :math:`D(v) = b^2 D_s(v_s)`), ``objective`` recomputed by the caller
    on the original data, ``slope`` of a free linear term times ``b/a``."""
    info = dict(sol.info)
    for key, (pa, pb) in _INFO_UNITS.items():
        if key in info and info[key] is not None:
            v = np.array(info[key], dtype=float)
            with np.errstate(over="ignore"):  # (an overflowing entry is reported as inf)
                for f, k in ((s.a, pa), (s.b, pb)):
                    for _ in range(abs(k)):
                        v = v * f if k > 0 else v / f
            info[key] = float(v) if v.ndim == 0 else v
    info.update(input_scale=s.a, label_scale=s.b)
    fields: dict[str, Any] = {f.name: getattr(sol, f.name) for f in dataclasses.fields(sol)}
    fields.update(network=rescale_network(sol.network, s), objective=float(objective),
                  lower_bound=float(sol.lower_bound) * s.b * s.b,
                  dual=None if sol.dual is None else np.asarray(sol.dual) * s.b, info=info)
    if "slope" in fields:
        fields["slope"] = float(fields["slope"]) * s.b / s.a
    return type(sol)(**fields)
