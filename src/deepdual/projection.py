r"""Euclidean projection onto the elliptic cylinder :math:`\{u : \|X^T u\|_2 \le r\}` (SPEC 2.1).

This is the talk's :math:`\mathcal{P}_{X,\beta}`.  With the thin SVD
:math:`X = U\,\mathrm{diag}(s)\,V^T` (rank :math:`k`) and :math:`z = U^T y`:

* if :math:`\|s\odot z\| \le r`, the projection is ``y`` itself;
* otherwise it is :math:`u = y - U\,\mathrm{diag}\!\big(s^2/(s^2+\mu)\big) z`
  where :math:`\mu > 0` is the unique root of the *secular equation*

  .. math:: \varphi(\mu) = \Big\| \frac{\mu\, s \odot z}{s^2 + \mu} \Big\|_2 = r .

:math:`\varphi` increases from 0 to :math:`\|s\odot z\|`, and bounding every
:math:`s_i` by :math:`s_{\min}, s_{\max}` brackets the root:
with :math:`\rho = r / \|s\odot z\|`,

.. math:: s_{\min}^2 \frac{\rho}{1-\rho} \le \mu \le s_{\max}^2 \frac{\rho}{1-\rho}.

We solve :math:`1/\varphi(\mu) - 1/r = 0` (nearly linear in :math:`\mu`, as in
Moré--Sorensen) with :func:`scipy.optimize.brentq` to machine precision.

The same :math:`\mu` gives :math:`M = (X^TX + \mu I)^{-1}X^Ty = V\,\mathrm{diag}(s/(s^2+\mu))\,z`,
the solution of :math:`\min_M \tfrac12\|XM - y\|^2 + r\|M\|_2` (the two-layer linear
network's end-to-end weight); the residual is exactly :math:`y - XM = u`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.linalg as sla
from scipy.optimize import brentq

from ._validation import check_matrix, check_positive, check_targets

__all__ = ["project", "Factorization", "factorize", "ProjectionResult"]

_EPS = np.finfo(float).eps


@dataclass
class Factorization:
    """Thin SVD ``X = U diag(s) Vt`` restricted to the numerical rank.

    ``s`` holds the singular values above ``max(n, d) * eps * s_max`` (the
    LAPACK convention for numerical rank, as in ``numpy.linalg.matrix_rank``).
    """

    U: np.ndarray  # (n, k)
    s: np.ndarray  # (k,)
    Vt: np.ndarray  # (k, d)
    shape: tuple[int, int]
    method: str

    @property
    def rank(self) -> int:
        return int(self.s.size)


def factorize(X: np.ndarray, method: Literal["auto", "svd", "gram"] = "auto") -> Factorization:
    """Thin SVD of ``X`` by LAPACK ``gesdd`` or, for tall well-conditioned ``X``, by
    the eigendecomposition of the Gram matrix ``X^T X`` (one ``syrk`` plus a d x d ``syevd``).

    The Gram path squares the condition number, so ``"auto"`` falls back to the SVD
    when the Gram eigenvalues say ``X`` is ill-conditioned (cond > 1e4, i.e. relative
    accuracy of the small singular values would drop below ~1e-8).
    """
    n, d = X.shape
    if method not in ("auto", "svd", "gram"):
        raise ValueError(f"`method` must be 'auto', 'svd' or 'gram'; got {method!r}")
    # Factor 2^-e X with its largest entry in [0.5, 1): scaling by a power of two is exact,
    # and it keeps X^T X (Gram path) clear of overflow/underflow for data at 1e+-150 scales.
    xmax = float(np.max(np.abs(X))) if X.size else 0.0
    e = int(np.frexp(xmax)[1]) if xmax > 0 else 0
    fac = _factorize_scaled(np.ldexp(X, -e), method)
    fac.s = np.ldexp(fac.s, e)
    return fac


def _factorize_scaled(X: np.ndarray, method: str) -> Factorization:
    n, d = X.shape
    if method == "gram" or (method == "auto" and n >= 4 * d):
        G = X.T @ X
        w, V = sla.eigh(G, driver="evd")
        w, V = w[::-1], V[:, ::-1]
        wmax = max(w[0], 0.0)
        keep = w > max(n, d) * _EPS * wmax * 1e2 if wmax > 0 else np.zeros_like(w, dtype=bool)
        s = np.sqrt(w[keep])
        cond_ok = s.size == 0 or (s[0] / s[-1] < 1e4 and s.size == d)
        if method == "gram" or cond_ok:
            Vk = V[:, keep]
            U = (X @ Vk) / s if s.size else np.zeros((n, 0))
            return Factorization(U, s, Vk.T, (n, d), "gram")
    try:
        U, s, Vt = sla.svd(X, full_matrices=False, lapack_driver="gesdd")
    except np.linalg.LinAlgError:  # pragma: no cover - gesdd rarely fails to converge
        U, s, Vt = sla.svd(X, full_matrices=False, lapack_driver="gesvd")
    tol = max(n, d) * _EPS * (s[0] if s.size else 0.0)
    k = int(np.sum(s > tol))
    return Factorization(U[:, :k], s[:k], Vt[:k], (n, d), "svd")


@dataclass
class ProjectionResult:
    """Projection ``u``, multiplier ``mu`` (0 when ``y`` is inside) and ``M``."""

    u: np.ndarray
    mu: float
    M: np.ndarray
    inside: bool


def _secular_mu(s: np.ndarray, z: np.ndarray, r: float) -> float:
    """Root ``mu > 0`` of ``||mu s z / (s^2 + mu)|| = r`` given ``r < ||s z||``."""
    sz = s * z
    nsz = np.linalg.norm(sz)
    if r <= 0.0:
        return 0.0
    rho = r / nsz
    ratio = rho / ((nsz - r) / nsz)  # rho / (1 - rho), computed without cancellation
    active = sz != 0
    smin2 = float(np.min(s[active]) ** 2)
    smax2 = float(np.max(s[active]) ** 2)
    lo, hi = smin2 * ratio, smax2 * ratio

    s2 = s * s

    def psi(mu: float) -> float:
        v = mu * sz / (s2 + mu)
        # sqrt(v @ v) is what np.linalg.norm computes for a real vector, without its
        # per-call overhead (this function runs ~10 times per projection)
        phi = float(np.sqrt(v @ v))
        return 1.0 / phi - 1.0 / r if phi > 0 else np.inf

    if lo == hi:
        return lo
    # widen by a few ulps so that rounding cannot put the root outside
    lo *= 1 - 8 * _EPS
    hi *= 1 + 8 * _EPS
    flo, fhi = psi(lo), psi(hi)
    if flo <= 0:
        return lo
    if fhi >= 0:
        return hi
    return brentq(psi, lo, hi, xtol=lo * 4 * _EPS + np.finfo(float).tiny, rtol=4 * _EPS, maxiter=500)


def _pow2(x: float) -> float:
    """The power of two ``2^e`` with ``x / 2^e`` in [0.5, 1) (exact rescaling)."""
    return float(np.ldexp(1.0, int(np.frexp(x)[1])))


def project_factored(fac: Factorization, y: np.ndarray, radius: float) -> ProjectionResult:
    r"""Projection of a vector ``y`` (n,) given a :class:`Factorization` of ``X``.

    The secular equation is solved for the rescaled problem
    :math:`P_{X,r}(y) = b\,P_{X/a,\,r/(ab)}(y/b)` with powers of two ``a ~ s_max`` and
    ``b ~ max|y|`` (exact), so that data at any floating-point scale (1e+-150)
    neither overflows nor underflows; then :math:`\mu = a^2\tilde\mu` and :math:`M = (b/a)\tilde M`.
    """
    U, s, Vt = fac.U, fac.s, fac.Vt
    d = fac.shape[1]
    y = np.asarray(y, dtype=float)
    ymax = float(np.max(np.abs(y))) if y.size else 0.0
    if s.size == 0 or ymax == 0.0:
        # X = 0 or y = 0: y is inside the set and M = 0 minimizes the penalized problem
        return ProjectionResult(y.copy(), 0.0, np.zeros(d), True)
    a, b = _pow2(float(s[0])), _pow2(ymax)
    sn = s / a
    yn = y / b
    rn = (float(radius) / a) / b
    z = U.T @ yn
    sz = sn * z
    if np.linalg.norm(sz) <= rn:
        # inside (||X^T y|| <= r): 0 is in the subdifferential of the penalized
        # problem at M = 0, so M = 0 is its minimizer
        return ProjectionResult(y.copy(), 0.0, np.zeros(d), True)
    mu = _secular_mu(sn, z, rn)
    if mu == 0.0:  # radius == 0 (or below the scale's underflow): projection onto null(X^T)
        u = b * (yn - U @ z)
        M = (b / a) * (Vt.T @ (z / sn))
        return ProjectionResult(u, 0.0, M, False)
    ss = sn * sn
    u = b * (yn - U @ ((ss / (ss + mu)) * z))
    M = (b / a) * (Vt.T @ ((sn / (ss + mu)) * z))
    return ProjectionResult(u, float(mu * a * a), M, False)


def project(
    X: Any,
    y: Any,
    radius: float,
    *,
    method: Literal["auto", "svd", "gram"] = "auto",
    return_info: bool = False,
) -> np.ndarray | ProjectionResult:
    r"""Euclidean projection of ``y`` onto :math:`\{u \in \mathbb{R}^n : \|X^T u\|_2 \le r\}`.

    Parameters
    ----------
    X : array of shape (n, d)
    y : array of shape (n,)
    radius : float >= 0
    method : {"auto", "svd", "gram"}
        Factorization: thin SVD, or the Gram eigendecomposition (tall, well-conditioned X).
    return_info : bool
        Return a :class:`ProjectionResult` with the multiplier ``mu`` and
        :math:`M = (X^TX+\mu I)^{-1}X^Ty`, the minimizer of
        :math:`\tfrac12\|XM-y\|^2 + r\|M\|_2` (``M = 0`` when ``y`` is inside the set).

    Returns
    -------
    u : ndarray of shape (n,)

    Examples
    --------
    >>> import numpy as np, deepdual
    >>> X = np.eye(2); y = np.array([3.0, 4.0])
    >>> deepdual.project(X, y, 1.0)
    array([0.6, 0.8])
    """
    X = check_matrix(X, "X")
    Y, scalar = check_targets(y, X.shape[0], "y")
    if not scalar and Y.shape[1] != 1:
        raise ValueError(f"`y` must be a vector of shape ({X.shape[0]},), got shape {Y.shape}")
    r = check_positive(radius, "radius", allow_zero=True)
    fac = factorize(X, method)
    res = project_factored(fac, Y[:, 0], r)
    return res if return_info else res.u
