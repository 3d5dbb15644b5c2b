r"""Units of the convex program: exact rescaling by powers of two
(``docs/convex_program.md`` §9).

For the two-layer ReLU problem with the squared loss,

.. math::

    P(aX, bY, \beta) = b^2\,P\!\left(X, Y, \frac{\beta}{ab}\right),

because the atom :math:`D(aX)v` with penalty :math:`\beta\|v\|` equals
:math:`b\,DX v'` with :math:`v' = av/b` and penalty :math:`b^2\frac{\beta}{ab}\|v'\|`; for any
other loss (labels are classes, :math:`b = 1`) :math:`P(aX, Y, \beta) = P(X, Y, \beta/a)`.
With a hidden bias the constant column is scaled with the data (the bias is one more
input weight).  A network :math:`(u_j, \alpha_j)` of the scaled problem becomes
:math:`(2^hu_j, 2^h\alpha_j)`, :math:`h = (k_b - k_a)/2`, in the caller's units; with
:math:`a = 2^{k_a}`, :math:`b = 2^{k_b}` and :math:`k_b - k_a` even every step is exact
in floating point (multiplication by a power of two only changes exponents), so the
result does not depend on the units the data came in.

Part of :mod:`deepdual.relu.convex_program.solver` (the entry point).
"""

from __future__ import annotations

import numpy as np

from ...losses import Loss, SquaredLoss

__all__ = ["scale_exponents", "check_scaled_problem"]


def _exponent(M: np.ndarray) -> int:
    r"""``e`` with ``max|M| = f 2^e``, ``f`` in [0.5, 1) (0 for an all-zero array).
    (:math:`\max|M| = \max(\max M, -\min M)`: no ``|M|`` copy of the data.)"""
    hi, lo = float(np.max(M, initial=0.0)), float(np.min(M, initial=0.0))
    m = max(hi, -lo) if np.isfinite(hi) and np.isfinite(lo) else np.inf
    return int(np.frexp(m)[1]) if m > 0 and np.isfinite(m) else 0


def scale_exponents(Xa: np.ndarray, Y: np.ndarray, loss: Loss) -> tuple[int, int]:
    r"""Exponents :math:`(k_a, k_b)`: the program is solved on :math:`X_a2^{-k_a}`,
    :math:`Y2^{-k_b}`, :math:`\beta 2^{-(k_a + k_b)}`, whose largest entries are in
    :math:`[1/4, 1)` (the labels only for the squared loss, the only one homogeneous in
    the labels; otherwise :math:`k_b = 0`).  :math:`k_b - k_a` is even, so that the
    balanced network maps back by the power of two :math:`2^{(k_b - k_a)/2}`."""
    ka = _exponent(Xa)
    if type(loss) is SquaredLoss:
        kb = _exponent(Y)
        if (kb - ka) % 2:
            kb += 1
    else:
        kb = 0
        if ka % 2:
            ka += 1
    return ka, kb


def check_scaled_problem(Ys: np.ndarray, beta_s: float, kb: int, loss: Loss) -> None:
    r"""Refuse problems whose objective or scaled ``beta`` is not a float64 number.

    ``Ys`` and ``beta_s`` are in the program's units; the zero network's objective in the
    caller's units is :math:`2^{2k_b}\ell(0, Y_s)`.  Raises ``ValueError`` naming ``y`` (labels
    whose objective overflows, e.g. ~1e154 on 10 rows) or ``beta`` (0 or inf after
    rescaling: beta too far from the data's scale to be represented)."""
    with np.errstate(over="ignore"):
        f0 = float(np.ldexp(loss.value(np.zeros_like(Ys), Ys), 2 * kb))
        big = float(np.ldexp(np.max(np.abs(Ys), initial=0.0), kb))
    if not np.isfinite(f0):
        raise ValueError(
            f"`y`: labels of size up to {big:.3g} give an objective (1/2)||y||^2 beyond the float64 range "
            "(about 1.8e308); divide y by a constant (and beta by the same constant: the optimum scales by its "
            "square)")
    if not (np.isfinite(beta_s) and beta_s > 0):
        raise ValueError(
            "`beta` is out of the float64 range relative to the data's scale (beta / (max|X| max|y|) "
            f"{'overflows' if not np.isfinite(beta_s) else 'underflows'}); rescale X or y")
