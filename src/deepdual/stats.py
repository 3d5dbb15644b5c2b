r"""Sufficient statistics of a data set for the squared loss, accumulated in chunks.

For the squared loss and any network whose output is linear in the data,
:math:`f(X) = XM` (every linear network, with :math:`M = \sum_j \prod_l W_{l,j}`), the loss is a
function of three small matrices:

.. math::

    \tfrac12\|XM - Y\|_F^2 = \tfrac12\operatorname{tr}(M^T G M) - \operatorname{tr}(M^T B)
    + \tfrac12\operatorname{tr}(Y^TY),\qquad G = X^TX,\ B = X^TY.

They are sums over rows, so they can be accumulated chunk by chunk in
:math:`O(d^2 + dK + K^2)` memory plus one chunk (:func:`accumulate`), or by a dask
reduction over row blocks (:func:`from_dask`).

**Equivalent small data set** (:meth:`SufficientStats.compress`).  With the
eigendecomposition :math:`G = V\Lambda V^T` restricted to the numerical rank
:math:`k`, set :math:`\tilde X = \Lambda^{1/2}V^T` (:math:`k\times d`) and
:math:`\tilde Y = \Lambda^{-1/2}V^T B` (:math:`k\times K`).  Then
:math:`\tilde X^T\tilde X = G` and :math:`\tilde X^T\tilde Y = B`, so for every :math:`M`

.. math::

    \tfrac12\|XM - Y\|_F^2 = \tfrac12\|\tilde XM - \tilde Y\|_F^2 + c_0,\qquad
    c_0 = \tfrac12\big(\operatorname{tr}(Y^TY) - \|\tilde Y\|_F^2\big) \ge 0

(:math:`c_0` is half the squared distance of :math:`Y` to the range of :math:`X`).  Every
linear network therefore has the same objective on :math:`(X, Y)` as on
:math:`(\tilde X, \tilde Y)` plus :math:`c_0`: the global optimum, any proven lower bound
and the optimal network carry over.  The dual objective of the full problem at the
residual :math:`u = Y - XM` is
:math:`\langle Y, u\rangle - \tfrac12\|u\|^2 = \tfrac12\operatorname{tr}(Y^TY) - \tfrac12\operatorname{tr}(M^TGM)`,
which is also computable from the statistics; it equals the compressed dual value plus
:math:`c_0`, and :math:`X^Tu = B - GM = \tilde X^T\tilde u` (same dual constraint).

**Rank-one data** (:meth:`SufficientStats.rank_one`).  If :math:`X = c\,a_0^T` with
:math:`c \ge 0`, then for every ReLU network without biases
:math:`f(X) = \hat c\, f(\tilde X)` with :math:`\hat c = c/\|c\|` and the one-row data set
:math:`\tilde X = \|c\|\,a_0^T` (positive homogeneity: :math:`\sigma(c_i z) = c_i\sigma(z)`), so
with :math:`\tilde Y = \hat c^TY`

.. math:: \tfrac12\|f(X) - Y\|_F^2 = \tfrac12\|f(\tilde X) - \tilde Y\|_F^2 + c_0,\qquad
   c_0 = \tfrac12\big(\|Y\|_F^2 - \|\tilde Y\|_F^2\big).

From the statistics: :math:`\tilde X = \sigma_1 v^T` with the top eigenpair of :math:`G`, and
:math:`\tilde Y = v^TB/\sigma_1`.  Whether :math:`X` is rank one with one-signed :math:`c` is
decided in the same single pass: every row is compared with a reference row
:math:`r` (the largest row of the first chunk), accumulating an upper bound on
:math:`\|X(I - \hat r\hat r^T)\|_F` (which bounds the second singular value) and the
extreme signed projections :math:`x_i^T\hat r` (which fix the orientation of :math:`v`).

Numerics: chunks are converted to float64 and scaled by powers of two (exact)
before the products, so data near the overflow range (1e+-150) is safe; the
Gram matrix squares the condition number of :math:`X`, so for ill-conditioned
data (cond(X) > 1e4) the in-memory path, which factors :math:`X` itself by an SVD
(:func:`deepdual.projection.factorize`), is more accurate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import scipy.linalg as sla

from ._validation import check_matrix, check_targets

__all__ = ["SufficientStats", "accumulate", "from_arrays", "from_dask", "Compressed"]

_EPS = np.finfo(float).eps


def _exp2(a: np.ndarray) -> int:
    """Exponent ``e`` with ``max|a| / 2^e`` in [0.5, 1) (0 for an all-zero array)."""
    amax = float(np.max(np.abs(a))) if a.size else 0.0
    return int(np.frexp(amax)[1]) if amax > 0 else 0


@dataclass
class Compressed:
    r"""Equivalent small data set: :math:`\tfrac12\|XM-Y\|^2 = \tfrac12\|\tilde XM - \tilde Y\|^2 + c_0`."""

    X: np.ndarray  # (k, d)
    Y: np.ndarray  # (k, K)
    c0: float


@dataclass
class SufficientStats:
    r"""Scaled sums :math:`X^TX`, :math:`X^TY`, :math:`Y^TY` and the rank-one test of a data set.

    The true statistics are ``G * 2**(2*ex)``, ``B * 2**(ex+ey)``, ``YY * 2**(2*ey)``
    (see :attr:`gram`, :attr:`cross`, :attr:`yy`); the power-of-two scaling keeps the
    accumulation clear of overflow and underflow.

    Create one with :func:`accumulate`, :func:`from_arrays` or :func:`from_dask`,
    or empty with ``SufficientStats.empty(d, K)`` and call :meth:`update`.
    """

    G: np.ndarray  # (d, d)
    B: np.ndarray  # (d, K)
    YY: np.ndarray  # (K, K)
    n: int = 0
    ex: int = 0
    ey: int = 0
    scalar: bool | None = None
    #: unit reference direction (first nonzero row) or None
    ref: np.ndarray | None = None
    #: upper bound on ||X (I - ref ref^T)||_F * 2**-ex
    perp: float = 0.0
    #: extreme signed projections x_i^T ref (scaled by 2**-ex)
    dot_min: float = 0.0
    dot_max: float = 0.0
    xsq: float = field(default=0.0)  # ||X||_F^2 * 2**(-2 ex)

    # ------------------------------------------------------------------ construction
    @classmethod
    def empty(cls, d: int, K: int, *, scalar: bool | None = None) -> "SufficientStats":
        return cls(np.zeros((d, d)), np.zeros((d, K)), np.zeros((K, K)), scalar=scalar)

    @property
    def d(self) -> int:
        return self.G.shape[0]

    @property
    def K(self) -> int:
        return self.B.shape[1]

    @property
    def gram(self) -> np.ndarray:
        """:math:`X^TX`."""
        return np.ldexp(self.G, 2 * self.ex)

    @property
    def cross(self) -> np.ndarray:
        """:math:`X^TY`."""
        return np.ldexp(self.B, self.ex + self.ey)

    @property
    def yy(self) -> np.ndarray:
        """:math:`Y^TY`."""
        return np.ldexp(self.YY, 2 * self.ey)

    def _rescale(self, ex: int, ey: int) -> None:
        """Express the stored sums in the (larger) exponents ``ex, ey`` (exact up to underflow)."""
        if ex != self.ex:
            dx = self.ex - ex
            self.G = np.ldexp(self.G, 2 * dx)
            self.perp = float(np.ldexp(self.perp, dx))
            self.dot_min = float(np.ldexp(self.dot_min, dx))
            self.dot_max = float(np.ldexp(self.dot_max, dx))
            self.xsq = float(np.ldexp(self.xsq, 2 * dx))
        if ex != self.ex or ey != self.ey:
            self.B = np.ldexp(self.B, (self.ex - ex) + (self.ey - ey))
        if ey != self.ey:
            self.YY = np.ldexp(self.YY, 2 * (self.ey - ey))
        self.ex, self.ey = ex, ey

    def update(self, X: Any, y: Any) -> "SufficientStats":
        """Add the rows of one chunk ``(X, y)`` (any float dtype; computed in float64)."""
        X = check_matrix(X, "X")
        Y, scalar = check_targets(y, X.shape[0], "y")
        if X.shape[1] != self.d:
            raise ValueError(f"`X` chunk has {X.shape[1]} columns, expected {self.d}")
        if Y.shape[1] != self.K:
            raise ValueError(f"`y` chunk has {Y.shape[1]} column(s), expected {self.K}")
        if self.scalar is None:
            self.scalar = scalar
        elif self.scalar != scalar:
            raise ValueError("`y` chunks must all be 1-D or all be 2-D")
        self.merge(_chunk_stats(X, Y, scalar))
        return self

    def merge(self, other: "SufficientStats") -> "SufficientStats":
        """Add another data set's statistics (rows concatenated); returns ``self``."""
        if other.d != self.d or other.K != self.K:
            raise ValueError(f"cannot merge statistics of shapes (d={other.d}, K={other.K}) and (d={self.d}, K={self.K})")
        if other.n == 0:
            return self
        if self.n == 0:
            self.__dict__.update(_copy(other).__dict__)
            return self
        o = _copy(other)
        ex, ey = max(self.ex, o.ex), max(self.ey, o.ey)
        self._rescale(ex, ey)
        o._rescale(ex, ey)
        self.G += o.G
        self.B += o.B
        self.YY += o.YY
        self.n += o.n
        if self.scalar is None:
            self.scalar = o.scalar
        # rank-one bookkeeping relative to self.ref
        if self.ref is None:
            self.ref, self.perp, self.dot_min, self.dot_max = o.ref, o.perp, o.dot_min, o.dot_max
        elif o.ref is not None:
            c = float(self.ref @ o.ref)
            sin = float(np.linalg.norm(o.ref - c * self.ref))  # sin of the angle between the lines
            # ||X_o P_self|| <= ||X_o P_o|| + ||X_o||_F ||P_self - P_o||_2, and ||P_self - P_o||_2 = sin
            perp_o = o.perp + np.sqrt(o.xsq) * sin
            self.perp = float(np.hypot(self.perp, perp_o))
            lo, hi = (o.dot_min, o.dot_max) if c >= 0 else (-o.dot_max, -o.dot_min)
            self.dot_min, self.dot_max = min(self.dot_min, lo), max(self.dot_max, hi)
        self.xsq += o.xsq
        return self

    # ------------------------------------------------------------------ derived
    def loss_linear(self, M: np.ndarray) -> float:
        r""":math:`\tfrac12\|XM - Y\|_F^2` from the statistics, for ``M`` of shape (d, K) or (d,)."""
        M = np.asarray(M, dtype=float).reshape(self.d, -1)
        G, B, YY = self.gram, self.cross, self.yy
        return float(0.5 * np.vdot(M, G @ M) - np.vdot(M, B) + 0.5 * np.trace(YY))

    def _eig(self) -> tuple[np.ndarray, np.ndarray]:
        """Eigenpairs of the scaled Gram matrix above the numerical-rank threshold, descending."""
        w, V = sla.eigh(self.G, driver="evd")
        w, V = w[::-1], V[:, ::-1]
        wmax = max(float(w[0]), 0.0) if w.size else 0.0
        # same threshold as projection.factorize's Gram path: eigenvalues below
        # max(n, d) * eps * 100 relative are rounding noise of the d x d eigensolver
        keep = w > max(self.n, self.d) * _EPS * wmax * 1e2 if wmax > 0 else np.zeros(w.shape, dtype=bool)
        return w[keep], V[:, keep]

    def compress(self) -> Compressed:
        r"""The equivalent data set :math:`(\tilde X, \tilde Y, c_0)` (module docstring).

        :math:`\tilde X = \Lambda^{1/2}V^T` has one row per nonzero eigenvalue of :math:`X^TX`.
        """
        if self.n == 0:
            raise ValueError("`X` has no rows: no statistics were accumulated")
        w, V = self._eig()
        s = np.sqrt(w)
        Xc = s[:, None] * V.T  # (k, d), scaled by 2**-ex
        Yc = (V.T @ self.B) / s[:, None] if s.size else np.zeros((0, self.K))  # scaled by 2**-ey
        c0 = 0.5 * (float(np.trace(self.YY)) - float(np.vdot(Yc, Yc)))
        # c0 >= 0 mathematically (distance to a subspace); clip rounding below zero
        c0 = max(c0, 0.0)
        return Compressed(np.ldexp(Xc, self.ex), np.ldexp(Yc, self.ey), float(np.ldexp(c0, 2 * self.ey)))

    def rank_one(self, *, rtol: float | None = None) -> Compressed | None:
        r"""If :math:`X = c\,a_0^T` with a one-signed :math:`c`, the one-row equivalent data set
        :math:`(\tilde X = \|c\|a_0^T,\ \tilde Y = c^TY/\|c\|,\ c_0)` with :math:`a_0` oriented so that
        :math:`c \ge 0` (module docstring); else ``None``.

        Rank one means :math:`\|X(I - \hat r\hat r^T)\|_F \le \text{rtol}\cdot\sigma_1(X)`, which
        implies :math:`\sigma_2 \le \text{rtol}\cdot\sigma_1` (the criterion of
        :func:`deepdual.structures.rank_one_factors`); the default ``rtol`` is the same,
        ``max(n, d) * eps * 100``.  One-signed means every projection
        :math:`x_i^T\hat r` is :math:`\ge -\text{rtol}\max_k|x_k^T\hat r|` (or every one is
        :math:`\le` the opposite), again as in ``rank_one_factors``.
        """
        if self.n == 0 or self.ref is None:
            return None
        tol = max(self.n, self.d) * _EPS * 100 if rtol is None else float(rtol)
        w, V = self._eig()
        if w.size == 0:
            return None
        s1 = float(np.sqrt(w[0]))
        if self.perp > tol * s1:
            return None
        big = max(abs(self.dot_min), abs(self.dot_max))
        if self.dot_min >= -tol * big:
            sign = 1.0
        elif self.dot_max <= tol * big:
            sign = -1.0
        else:
            return None
        v = V[:, 0] * (1.0 if float(V[:, 0] @ self.ref) >= 0 else -1.0) * sign
        a = s1 * v  # scaled by 2**-ex
        Yc = (v @ self.B)[None, :] / s1  # scaled by 2**-ey
        c0 = max(0.5 * (float(np.trace(self.YY)) - float(np.vdot(Yc, Yc))), 0.0)
        return Compressed(np.ldexp(a[None, :], self.ex), np.ldexp(Yc, self.ey), float(np.ldexp(c0, 2 * self.ey)))

    def __repr__(self) -> str:
        return f"SufficientStats(n={self.n}, d={self.d}, K={self.K})"


def _copy(s: SufficientStats) -> SufficientStats:
    return SufficientStats(
        s.G.copy(), s.B.copy(), s.YY.copy(), s.n, s.ex, s.ey, s.scalar,
        None if s.ref is None else s.ref.copy(), s.perp, s.dot_min, s.dot_max, s.xsq,
    )


def _chunk_stats(X: np.ndarray, Y: np.ndarray, scalar: bool | None) -> SufficientStats:
    """Statistics of one validated float64 chunk."""
    n, d = X.shape
    K = Y.shape[1]
    ex, ey = _exp2(X), _exp2(Y)
    Xs, Ys = np.ldexp(X, -ex), np.ldexp(Y, -ey)
    st = SufficientStats(Xs.T @ Xs, Xs.T @ Ys, Ys.T @ Ys, n, ex, ey, scalar)
    norms = np.linalg.norm(Xs, axis=1)
    st.xsq = float(norms @ norms)
    nz = np.flatnonzero(norms)
    if nz.size:
        i = int(nz[np.argmax(norms[nz])])  # the largest row: best-conditioned reference
        ref = Xs[i] / norms[i]
        dots = Xs @ ref
        st.ref = ref
        st.perp = float(np.linalg.norm(Xs - np.outer(dots, ref)))
        st.dot_min, st.dot_max = float(dots.min()), float(dots.max())
    return st


def from_arrays(X: Any, y: Any) -> SufficientStats:
    """Statistics of an in-memory data set (one chunk)."""
    X = check_matrix(X, "X")
    Y, scalar = check_targets(y, X.shape[0], "y")
    return _chunk_stats(X, Y, scalar)


def accumulate(chunks: Iterable[tuple[Any, Any]], *, progress: bool = False) -> SufficientStats:
    r"""Accumulate :math:`X^TX`, :math:`X^TY`, :math:`Y^TY` over an iterable of ``(X_chunk, y_chunk)`` pairs.

    Memory is :math:`O(d^2)` plus one chunk: chunks may come from a generator reading
    a file.  Each chunk is validated (finite numbers, matching shapes) and
    converted to float64 (float32 input is fine).

    Parameters
    ----------
    chunks : iterable of (array (n_i, d), array (n_i,) or (n_i, K))
    progress : bool
        Show a tqdm progress bar (if tqdm is installed).

    Returns
    -------
    SufficientStats

    Examples
    --------
    >>> import numpy as np
    >>> from deepdual.stats import accumulate
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((100, 3)), rng.standard_normal(100)
    >>> st = accumulate((X[i:i + 30], y[i:i + 30]) for i in range(0, 100, 30))
    >>> bool(np.allclose(st.gram, X.T @ X))
    True
    """
    it = iter(chunks)
    if progress:
        try:
            from tqdm.auto import tqdm

            it = iter(tqdm(it, desc="accumulating", unit="chunk"))
        except ImportError:  # progress bars are optional
            pass
    st: SufficientStats | None = None
    for k, item in enumerate(it):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(f"`chunks` must yield (X_chunk, y_chunk) pairs; item {k} is {type(item).__name__}")
        Xc, yc = item
        Xc = check_matrix(Xc, f"X chunk {k}")
        Yc, scalar = check_targets(yc, Xc.shape[0], f"y chunk {k}")
        if st is None:
            st = SufficientStats.empty(Xc.shape[1], Yc.shape[1], scalar=scalar)
        elif st.scalar != scalar:
            raise ValueError("`y` chunks must all be 1-D or all be 2-D")
        if Xc.shape[1] != st.d or Yc.shape[1] != st.K:
            raise ValueError(f"chunk {k} has shapes {Xc.shape}, {Yc.shape}; expected (*, {st.d}) and (*, {st.K})")
        st.merge(_chunk_stats(Xc, Yc, scalar))
    if st is None:
        raise ValueError("`chunks` is empty: no data")
    return st


def _is_dask(a: Any) -> bool:
    return hasattr(a, "chunks") and hasattr(a, "compute") and hasattr(a, "dask")


def _block_stats(Xb: np.ndarray, yb: np.ndarray, scalar: bool) -> SufficientStats:
    X = check_matrix(Xb, "X")
    Y, _ = check_targets(yb, X.shape[0], "y")
    return _chunk_stats(X, Y, scalar)


def _merge_all(parts: list[SufficientStats]) -> SufficientStats:
    out = _copy(parts[0])
    for p in parts[1:]:
        out.merge(p)
    return out


def from_dask(X: Any, y: Any, *, split_every: int = 8) -> SufficientStats:
    """Statistics of dask arrays by a tree reduction over row blocks.

    ``X`` (n, d) and ``y`` (n,) or (n, K) may be dask or numpy arrays (at least one
    dask).  ``X`` is rechunked to whole rows (one block per row range) and ``y`` to
    the same row chunks; each worker holds one block and a few ``d x d`` partial
    sums.  The computation runs on the current dask scheduler (a
    ``dask.distributed.Client`` if one is active).
    """
    try:
        import dask
        import dask.array as da
    except ImportError:  # pragma: no cover - exercised only without dask
        raise ImportError("dask input needs dask; install it with `pip install deepdual[dask]`") from None
    if not _is_dask(X):
        X = check_matrix(X, "X")
        X = da.from_array(X, chunks=(max(1, X.shape[0] // 8), X.shape[1]))
    if X.ndim != 2:
        raise ValueError(f"`X` must be 2-D with shape (n_samples, n_features), got shape {X.shape}")
    if not _is_dask(y):
        y = np.asarray(y)
    if y.ndim not in (1, 2):
        raise ValueError(f"`y` must be 1-D (n,) or 2-D (n, K), got shape {y.shape}")
    if any(np.isnan(s) for s in X.shape) or any(np.isnan(s) for s in y.shape):
        raise ValueError("`X` and `y` must have known shapes (call .compute_chunk_sizes() first)")
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"`y` must have {X.shape[0]} rows to match X, got {y.shape[0]}")
    scalar = y.ndim == 1
    X = X.rechunk({1: -1})
    rows = X.chunks[0]
    y = da.from_array(y, chunks=(rows,) + ((y.shape[1],) if y.ndim == 2 else ())) if not _is_dask(y) \
        else y.rechunk((rows,) + ((-1,) if y.ndim == 2 else ()))
    xb = X.to_delayed().ravel()
    yb = y.to_delayed().ravel()
    block = dask.delayed(_block_stats, pure=True)
    parts = [block(a, b, scalar) for a, b in zip(xb, yb)]
    merge = dask.delayed(_merge_all, pure=True)
    while len(parts) > 1:  # tree reduction: O(log(blocks)) depth, few d x d sums per task
        parts = [merge(parts[i:i + split_every]) for i in range(0, len(parts), split_every)]
    (st,) = dask.compute(parts[0])
    if st.n != X.shape[0]:  # pragma: no cover - defensive
        raise RuntimeError(f"accumulated {st.n} rows, expected {X.shape[0]}")
    return st
