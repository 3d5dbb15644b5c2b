r"""Euclidean projection onto the elliptic cylinder :math:`\{u : \|X^T u\|_2 \le r\}` (docs/theory.md §2.1).

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
    r"""Thin SVD ``X = U diag(s) Vt`` restricted to the numerical rank.

    ``s`` holds the singular values above ``max(n, d) * eps * s_max`` (the
    LAPACK convention for numerical rank, as in ``numpy.linalg.matrix_rank``).

    The Gram paths do not form the other factor from ``X`` (an n x d x k product, as
    costly as the factorization itself), and keep ``X`` instead:

    * tall ``X`` (eigenvectors of :math:`X^TX`): ``U`` is ``None``;
      :math:`U^Ty = \mathrm{diag}(1/s)V^T(X^Ty)` and :math:`U w = X V (w/s)` cost O(nd)
      (:meth:`left_solve`, :meth:`left_apply`); :meth:`left` forms ``U`` when asked;
    * wide ``X`` (eigenvectors of :math:`XX^T`): ``Vt`` is ``None``;
      :math:`Vc = X^TU(c/s)` costs O(nd) (:meth:`right_apply`); :meth:`right` forms ``Vt``.
    """

    U: np.ndarray | None  # (n, k), or None (tall Gram path: use X)
    s: np.ndarray  # (k,)
    Vt: np.ndarray | None  # (k, d), or None (wide Gram path: use X)
    shape: tuple[int, int]
    method: str
    X: np.ndarray | None = None  # the factored matrix when U or Vt is None

    @property
    def rank(self) -> int:
        return int(self.s.size)

    def left(self) -> np.ndarray:
        """The left singular vectors ``U`` (n, k), formed from ``X`` if needed."""
        if self.U is None:
            self.U = (self.X @ self.Vt.T) / self.s if self.s.size else np.zeros((self.shape[0], 0))
        return self.U

    def right(self) -> np.ndarray:
        """The right singular vectors ``Vt`` (k, d), formed from ``X`` if needed."""
        if self.Vt is None:
            self.Vt = ((self.X.T @ self.U) / self.s).T if self.s.size else np.zeros((0, self.shape[1]))
        return self.Vt

    def right_apply(self, c: np.ndarray) -> np.ndarray:
        r""":math:`Vc` for ``c`` of shape (k,) or (k, m), in O(nd(m)): :math:`X^TU(c/s)` when ``Vt`` is not formed."""
        if self.Vt is not None:
            return self.Vt.T @ c
        scale = self.s if np.ndim(c) == 1 else self.s[:, None]
        return self.X.T @ (self.U @ (c / scale))

    def left_solve(self, y: np.ndarray) -> np.ndarray:
        r""":math:`U^Ty` (k,) in O(nd): :math:`\mathrm{diag}(1/s)V^T(X^Ty)` when ``U`` is not formed."""
        if self.U is not None:
            return self.U.T @ y
        return (self.Vt @ (self.X.T @ y)) / self.s

    def left_apply(self, w: np.ndarray) -> np.ndarray:
        r""":math:`Uw` (n,) in O(nd): :math:`XV(w/s)` when ``U`` is not formed."""
        if self.U is not None:
            return self.U @ w
        return self.X @ (self.Vt.T @ (w / self.s))


def factorize(X: np.ndarray, method: Literal["auto", "svd", "gram"] = "auto") -> Factorization:
    """Thin SVD of ``X`` by LAPACK ``gesdd`` or, for tall (n >= 4d) well-conditioned ``X``, by
    the eigendecomposition of the Gram matrix ``X^T X`` (one ``syrk`` plus a d x d ``syevd``);
    for wide (d >= 4n) well-conditioned ``X`` of full row rank, of ``X X^T`` (n x n).
    ``"gram"`` forces the Gram path with the smaller of the two Gram matrices.

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
    if fac.U is None or fac.Vt is None:
        fac.X = X  # U = X V diag(1/s), V = X^T U diag(1/s) with the unscaled X and s
    return fac


def _gram_spectrum(G: np.ndarray, n: int, d: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Eigenvectors and singular values ``s = sqrt(eig(G))`` of a Gram matrix ``G`` (``XᵀX`` or
    ``XXᵀ``), largest first, keeping eigenvalues above ``max(n, d) * eps * 100`` relative (the
    Gram matrix squares the condition number, so the SVD rank rule is widened by 100), and
    whether :func:`factorize` may use the Gram route under ``method="auto"``: full rank and
    ``s_max / s_min < 1e4`` (``cond(G) < 1e8``); otherwise it takes the SVD of ``X``."""
    w, Q = sla.eigh(G, driver="evd")
    w, Q = w[::-1], Q[:, ::-1]
    wmax = max(w[0], 0.0)
    keep = w > max(n, d) * _EPS * wmax * 1e2 if wmax > 0 else np.zeros_like(w, dtype=bool)
    s = np.sqrt(w[keep])
    cond_ok = s.size == 0 or (s[0] / s[-1] < 1e4 and s.size == G.shape[0])
    return Q[:, keep], s, bool(cond_ok)


def _factorize_scaled(X: np.ndarray, method: str) -> Factorization:
    n, d = X.shape
    if (method == "gram" and n >= d) or (method == "auto" and n >= 4 * d):
        V, s, cond_ok = _gram_spectrum(X.T @ X, n, d)
        if method == "gram" or cond_ok:
            # U = X V diag(1/s) is not formed (see Factorization); factorize() attaches X
            return Factorization(None if s.size else np.zeros((n, 0)), s, V.T, (n, d), "gram")
    if (method == "gram" and n < d) or (method == "auto" and d >= 4 * n):
        # wide X: the same with the n x n matrix X X^T = U diag(s^2) U^T
        U, s, cond_ok = _gram_spectrum(X @ X.T, n, d)
        if method == "gram" or cond_ok:
            # V = X^T U diag(1/s) is not formed (see Factorization); factorize() attaches X
            Vt = None if s.size else np.zeros((0, d))
            return Factorization(U, s, Vt, (n, d), "gram")
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


def secular_mu(s: np.ndarray, z: np.ndarray, r: float) -> float:
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


def pow2(x: float) -> float:
    """The power of two ``2^e`` with ``x / 2^e`` in [0.5, 1) (exact rescaling)."""
    return float(np.ldexp(1.0, int(np.frexp(x)[1])))


def project_factored(fac: Factorization, y: np.ndarray, radius: float) -> ProjectionResult:
    r"""Projection of a vector ``y`` (n,) given a :class:`Factorization` of ``X``.

    The secular equation is solved for the rescaled problem
    :math:`P_{X,r}(y) = b\,P_{X/a,\,r/(ab)}(y/b)` with powers of two ``a ~ s_max`` and
    ``b ~ max|y|`` (exact), so that data at any floating-point scale (1e+-150)
    neither overflows nor underflows; then :math:`\mu = a^2\tilde\mu` and :math:`M = (b/a)\tilde M`.
    """
    s = fac.s
    d = fac.shape[1]
    y = np.asarray(y, dtype=float)
    ymax = float(np.max(np.abs(y))) if y.size else 0.0
    if s.size == 0 or ymax == 0.0:
        # X = 0 or y = 0: y is inside the set and M = 0 minimizes the penalized problem
        return ProjectionResult(y.copy(), 0.0, np.zeros(d), True)
    a, b = pow2(float(s[0])), pow2(ymax)
    sn = s / a
    yn = y / b
    rn = (float(radius) / a) / b
    z = fac.left_solve(yn)
    sz = sn * z
    if np.linalg.norm(sz) <= rn:
        # inside (||X^T y|| <= r): 0 is in the subdifferential of the penalized
        # problem at M = 0, so M = 0 is its minimizer
        return ProjectionResult(y.copy(), 0.0, np.zeros(d), True)
    mu = secular_mu(sn, z, rn)
    if mu == 0.0:  # radius == 0 (or below the scale's underflow): projection onto null(X^T)
        u = b * (yn - fac.left_apply(z))
        M = (b / a) * fac.right_apply(z / sn)
        return ProjectionResult(u, 0.0, M, False)
    ss = sn * sn
    u = b * (yn - fac.left_apply((ss / (ss + mu)) * z))
    M = (b / a) * fac.right_apply((sn / (ss + mu)) * z)
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
