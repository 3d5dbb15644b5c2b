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
of x and y, and data of size :math:`10^{\pm 300}` do not overflow.  Biases being free, a
translation :math:`x \to x - t` (first-layer biases :math:`b_1 - t W_1`) changes nothing either;
it is applied when it is exact (:func:`exact_shift`), i.e. for data far from 0 relative to
their spread.  Penalized biases break the
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

__all__ = ["UnitScales", "exact_shift", "unit_scales", "rescale_network", "rescale_solution"]


@dataclasses.dataclass(frozen=True)
class UnitScales:
    r"""Exact changes of units ``x = a x_s + t``, ``y = b y_s``, ``beta = beta_s a^{2/L} b^{2-2/L}``.

    ``a = 2^{L k_a}`` and ``b = 2^{L k_b}`` so that :math:`a^{1/L}` and :math:`b^{1/L}` are
    powers of two too; the shift ``t`` is the data point nearest to 0 when all points lie
    within a factor 2 of it, so that every ``x - t`` is exact (Sterbenz's lemma), else 0."""

    a: float
    b: float
    depth: int
    shift: float = 0.0

    @property
    def identity(self) -> bool:
        return self.a == 1.0 and self.b == 1.0 and self.shift == 0.0

    def to_units(self, x: np.ndarray) -> np.ndarray:
        """``(x - t) / a``, exact."""
        return (x - self.shift) / self.a

    @property
    def objective(self) -> float:
        """Factor of objectives and lower bounds: :math:`P = b^2 P_s`."""
        return self.b * self.b

    def beta_scaled(self, beta: float) -> float:
        r""":math:`\beta_s = \beta\, a^{-2/L} b^{2/L - 2}` (exact: powers of two)."""
        L = self.depth
        ea, eb = _exp2(self.a) // L, _exp2(self.b) // L  # a = 2^(L ea), b = 2^(L eb)
        try:
            return math.ldexp(beta, -2 * ea + 2 * eb - 2 * L * eb)
        except OverflowError:
            return math.inf


def _exp2(v: float) -> int:
    m, e = math.frexp(v)  # v = m 2^e with m = 1/2 for powers of two
    return e - 1


def _power(v: float, depth: int) -> float:
    """The power of ``2^depth`` nearest to ``v`` (``1`` for 0 or non-finite ``v``)."""
    if not (v > 0 and math.isfinite(v)):
        return 1.0
    k = round(math.log2(v) / depth)
    return math.ldexp(1.0, depth * k)


def exact_shift(x: np.ndarray) -> float:
    r"""A shift ``t`` with every ``x - t`` exact in floating point and small: the point nearest
    to 0 when all points have its sign and lie within a factor 2 of it (Sterbenz: for
    :math:`t/2 \le x \le 2t`, :math:`x - t` is a double), else 0 (the data then straddle 0
    or spread over more than their size, and a shift gains nothing)."""
    if x.size == 0:
        return 0.0
    lo, hi = float(np.min(x)), float(np.max(x))
    if lo > 0 and hi <= 2 * lo:
        return lo
    if hi < 0 and lo >= 2 * hi:
        return hi
    return 0.0


def unit_scales(x: np.ndarray, Y: np.ndarray, *, depth: int, scale_labels: bool) -> UnitScales:
    r"""Shift and scales that bring the data to ``[-2^{L/2}, 2^{L/2}]`` or so: ``t`` by
    :func:`exact_shift`, ``a`` from ``max|x - t|``, ``b`` from ``max|Y|`` (with
    ``scale_labels``)."""
    t = exact_shift(x)
    a = _power(float(np.max(np.abs(x - t))) if x.size else 0.0, depth)
    b = _power(float(np.max(np.abs(Y))) if (scale_labels and Y.size) else 0.0, depth)
    return UnitScales(a, b, int(depth), t)


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
    if s.shift != 0.0:  # g(x) = b f((x - t)/a): first-layer biases b_1 - t W_1 (rounded once)
        biases = biases if biases is not None else [[None] * (net.depth - 1) for _ in weights]
        for j, layers in enumerate(weights):
            b1 = biases[j][0] if biases[j][0] is not None else np.zeros(layers[0].shape[1])
            biases[j][0] = b1 - s.shift * layers[0][0]
    return Network(weights, net.activation, biases=biases, output_bias=ob, scalar_output=net.scalar_output,
                   problem=net.problem)


#: scale of each (scale-dependent) info entry of the 1-D solvers: (power of a, power of b)
_INFO_UNITS = {
    "knots": (1, 0),
    "spline_objective": (0, 2),
    "dual_constraint": (1, 1),
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
    if s.shift != 0.0 and info.get("knots") is not None:
        info["knots"] = np.asarray(info["knots"], dtype=float) + s.shift
    info.update(input_scale=s.a, label_scale=s.b, input_shift=s.shift)
    fields: dict[str, Any] = {f.name: getattr(sol, f.name) for f in dataclasses.fields(sol)}
    fields.update(network=rescale_network(sol.network, s), objective=float(objective),
                  lower_bound=float(sol.lower_bound) * s.b * s.b,
                  dual=None if sol.dual is None else np.asarray(sol.dual) * s.b, info=info)
    if "slope" in fields:  # free linear term c x: c (x - t)/a b = (c b/a) x - (c b/a) t
        fields["slope"] = float(fields["slope"]) * s.b / s.a
        if s.shift != 0.0 and fields["network"].output_bias is not None:
            fields["network"].output_bias = fields["network"].output_bias - fields["slope"] * s.shift
    return type(sol)(**fields)
