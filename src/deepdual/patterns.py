r"""ReLU activation patterns of a data matrix: exact enumeration and sampling.

A two-layer ReLU network with hidden weight :math:`u` acts on the data through
:math:`(Xu)_+ = D X u` with the diagonal *activation pattern*
:math:`D = \operatorname{diag}(1[Xu \ge 0])`.  The patterns are the sign vectors of the
regions (open cells) of the central hyperplane arrangement
:math:`\{u : x_j^T u = 0\}_{j=1..n}`; every :math:`u` lies in the closure of a region, so
for the cone :math:`K_D = \{u : (2D - I) X u \ge 0\}` of its pattern
:math:`(Xu)_+ = DXu` on :math:`K_D` (Pilanci & Ergen, 2020).

Exact enumeration (:func:`enumerate_patterns`)
----------------------------------------------
Write :math:`X = X_r V^T` with :math:`X_r \in \mathbb{R}^{n\times r}` of full column rank
:math:`r` (only :math:`X_r` matters).  Since the normals :math:`x_j` span
:math:`\mathbb{R}^r` the arrangement is *essential*: every region is a pointed
polyhedral cone, so its closure contains an extreme ray :math:`g`, and an extreme ray
is the intersection of hyperplanes whose normals have rank :math:`r-1`.  Hence every
region touches the line :math:`\mathbb{R} g_S` spanned by the null vector of some
linearly independent :math:`(r-1)`-subset :math:`S` of rows.  Let
:math:`Z = \{j : x_j^T g_S = 0\} \supseteq S`.  The regions whose closure contains
:math:`\pm g_S` are exactly

.. math:: \operatorname{sign}(x_j^T u) = \pm\operatorname{sign}(x_j^T g_S)\ (j \notin Z),\qquad
          (\operatorname{sign}(x_j^T u))_{j\in Z} \in \text{regions of the sub-arrangement } X_Z,

because :math:`g_S` lies in the lineality space of the sub-arrangement of :math:`Z`.
In general position :math:`Z = S` is linearly independent and its regions are all
:math:`2^{r-1}` sign vectors; otherwise the sub-arrangement (rank :math:`\le r-1`) is
enumerated recursively.  Rows that are numerically on a hyperplane are treated as
*on* it, which can only add patterns: the result is a *superset* of the region
patterns, which is harmless for the convex program (every pattern ``D`` yields valid
atoms :math:`DXu = (Xu)_+` on :math:`K_D`).

The number of regions is at most :math:`2\sum_{k=0}^{r-1}\binom{n-1}{k}`
(:func:`count_upper_bound`, attained in general position), which is what makes
exact enumeration practical only for small rank.

Sampling (:func:`sample_patterns`)
----------------------------------
:math:`D = 1[X g \ge 0]` for Gaussian :math:`g` in the row space of :math:`X`; a
sampled set is in general *not* complete.

References
----------
M. Pilanci and T. Ergen, "Neural networks are convex regularizers: exact
polynomial-time convex optimization formulations for two-layer networks", ICML 2020.
T. Zaslavsky, "Facing up to arrangements", Mem. AMS 154 (1975) (region counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from math import comb
from typing import Any

import numpy as np

from .blocks import ScaledDesign, block_entries, row_blocks, rows_with_ones
from ._validation import as_rng, check_matrix

__all__ = [
    "RowSpace",
    "row_space",
    "triangular_factor",
    "count_upper_bound",
    "format_count",
    "enumerate_patterns",
    "sample_patterns",
    "unique_patterns",
    "first_unique_nonzero",
    "mask_rows",
    "packed_rows",
]

_EPS = np.finfo(float).eps


@dataclass
class RowSpace:
    r"""Factorization :math:`X = X_r V^T` with orthonormal :math:`V` (d, r) and
    :math:`X_r = XV` (n, r) of full column rank ``r``."""

    Xr: np.ndarray
    V: np.ndarray

    @property
    def rank(self) -> int:
        return self.V.shape[1]


def row_space(X: np.ndarray, *, rtol: float | None = None, ones_column: bool = False,
              with_Xr: bool = True) -> RowSpace:
    r"""Reduce ``X`` to its row space.

    A singular value counts as zero below ``max(n, d) * eps * s_max`` (the LAPACK
    rank threshold; the smallest singular value a rounding error can create), or
    ``rtol * s_max`` when given.

    With ``ones_column`` the row space of :math:`[X\ \mathbf 1]` (the data with a bias
    column, ``V`` of shape (d + 1, r)), computed a block of rows at a time without its
    (n, d + 1) copy: the same values as ``row_space(np.hstack([X, ones]))``.  With
    ``with_Xr=False`` the factor :math:`X_r` (n, r) is not formed (``RowSpace.Xr`` is
    ``None``; :func:`sample_patterns` then forms its rows block by block).  ``X`` may be a
    :class:`deepdual.blocks.ScaledDesign` (its rows are formed a block at a time: the same
    values, hence the same factor, as for the materialized array).
    """
    X = X if isinstance(X, ScaledDesign) else np.asarray(X, dtype=float)
    n, d = X.shape
    da = d + int(bool(ones_column))
    s, Vt = _right_singular(X, bool(ones_column))
    if s.size == 0 or s[0] == 0.0:
        return RowSpace(np.zeros((n, 0)) if with_Xr else None, np.zeros((da, 0)))
    tol = (max(n, da) * _EPS if rtol is None else rtol) * s[0]
    r = int(np.sum(s > tol))
    V = Vt[:r].T.copy()
    if not with_Xr:
        return RowSpace(None, V)
    if not ones_column:
        return RowSpace(X @ V, V)
    Xr = np.empty((n, r))
    for rows in row_blocks(n, da, block_entries(n, da)):
        Xr[rows] = rows_with_ones(X, rows) @ V
    return RowSpace(Xr, V)


#: tall matrices of at least this many entries take :func:`_right_singular`'s lean path
LEAN_SVD_ENTRIES = 2**16


def triangular_factor(X: np.ndarray, rows: int | None = None, ones_column: bool = False) -> np.ndarray:
    r"""The triangular factor :math:`R` (d, d) of a QR factorization :math:`X = QR` of a tall
    ``X`` (n >= d), computed a block of rows at a time without copying ``X``.

    Sequential TSQR (Demmel, Grigori, Hoemmen & Langou, SIAM J. Sci. Comput. 34, 2012):
    :math:`R_1 = \operatorname{qr}(X_1)`, :math:`R_k = \operatorname{qr}([R_{k-1}; X_k])`.
    Each step is a Householder QR (LAPACK ``geqrf``) of a :math:`(d + b) \times d` buffer, so
    :math:`X^TX = R_k^TR_k` holds exactly for the rows seen (in exact arithmetic) and the
    result is backward stable as a QR of ``X`` itself: the singular values and right
    singular vectors of :math:`R` are those of :math:`X` up to rounding of the size of
    ``X``'s own SVD (no Gram matrix is formed: the condition number is not squared).
    Memory: one buffer of ``rows + d`` rows (``rows`` defaults to
    :func:`deepdual.blocks.block_entries` / d, at least 4d) instead of an (n, d) copy.
    With ``ones_column`` the factor of :math:`[X\ \mathbf 1]` (d + 1, d + 1), the ones
    written into each block's buffer (the same buffers, hence the same result, as for the
    augmented copy).
    """
    from scipy.linalg import qr

    X = X if isinstance(X, ScaledDesign) else np.asarray(X, dtype=float)
    n, d = X.shape
    d0, d = d, d + int(bool(ones_column))
    if n < d:
        raise ValueError(f"`X` must have at least as many rows as columns, got shape {X.shape}")
    if rows is None:
        rows = block_entries(n, d) // max(d, 1)
    rows = max(int(rows), 4 * d, 1)
    buf = np.empty((d + rows, d), order="F")
    R = None
    for a in range(0, n, rows):
        blk = X[a:a + rows]
        k = 0 if R is None else d
        m = k + len(blk)
        # the last block: a buffer of its own size (a row slice of `buf` is not Fortran-contiguous)
        W = buf if m == buf.shape[0] else np.empty((m, d), order="F")
        if k:
            W[:d] = R
        W[k:m, :d0] = blk
        if d > d0:
            W[k:m, d0] = 1.0
        _, R = qr(W, mode="raw", overwrite_a=True, check_finite=False)
        R = R[:d]
    return np.zeros((d, d)) if R is None else np.ascontiguousarray(R)


def _right_singular(X: np.ndarray, ones_column: bool = False) -> tuple[np.ndarray, np.ndarray]:
    r"""Singular values and right singular vectors ``(s, Vt)`` of the thin SVD of ``X``.

    Memory: for tall ``X`` (n >= 2d, at least :data:`LEAN_SVD_ENTRIES` entries) the SVD of
    the d x d triangular factor of :func:`triangular_factor` (blocked QR, no (n, d) copy;
    :math:`X = QR = (QU)\Sigma V^T`), so besides ``X`` only one row block is alive (numpy's
    ``svd`` held three (n, d) buffers, LAPACK ``gesdd`` on one Fortran copy two;
    docs/performance.md §8).  Otherwise ``numpy.linalg.svd``.
    """
    n, d = X.shape
    d += int(ones_column)
    if n >= 2 * d and n * d >= LEAN_SVD_ENTRIES:
        _, s, Vt = np.linalg.svd(triangular_factor(X, ones_column=ones_column))
        return s, Vt
    _, s, Vt = np.linalg.svd(np.hstack([X, np.ones((n, 1))]) if ones_column else np.asarray(X), full_matrices=False)
    return s, Vt


def count_upper_bound(n: int, r: int) -> int:
    r"""Upper bound :math:`2\sum_{k=0}^{r-1}\binom{n-1}{k}` on the number of regions of a
    central arrangement of ``n`` hyperplanes in :math:`\mathbb{R}^r` (Zaslavsky)."""
    if n <= 0 or r <= 0:
        return 0
    return 2 * sum(comb(n - 1, k) for k in range(min(r, n)))


def format_count(count: int) -> str:
    """A count for a message: exact below a million, else ``"about 1.3e+100"``.

    Works for integers of any size (region counts overflow floats), without converting
    them to a decimal string.
    """
    count = int(count)
    if count < 10**6:
        return str(count)
    from math import log10

    e = int(log10(count))
    while 10**e > count:  # log10 of a huge integer may be off by one
        e -= 1
    while 10 ** (e + 1) <= count:
        e += 1
    lead = count // 10 ** (e - 1)  # the two leading digits, 10..99
    return f"about {lead // 10}.{lead % 10}e+{e:02d}"


def packed_rows(D: np.ndarray) -> np.ndarray:
    """``np.packbits(D, axis=1)`` (C-contiguous) for boolean masks ``D`` (P, n).  Fortran-ordered
    masks (:func:`mask_rows`) are packed a block of samples at a time from a small contiguous
    copy (``packbits`` across strided rows is ~30x slower); the bytes are the same."""
    D = np.asarray(D, dtype=bool)
    P, n = D.shape
    if D.flags.c_contiguous or not D.flags.f_contiguous:
        return np.ascontiguousarray(np.packbits(D, axis=1))
    out = np.empty((P, (n + 7) // 8), dtype=np.uint8)
    step = max(8, (2**15 // max(P, 1)) // 8 * 8)  # a multiple of 8 samples: whole bytes per block
    for a in range(0, n, step):
        b = min(a + step, n)
        out[:, a // 8:(b + 7) // 8] = np.packbits(np.ascontiguousarray(D[:, a:b]), axis=1)
    return out


def first_unique_nonzero(D: np.ndarray) -> np.ndarray:
    """Indices ``idx`` with ``D[idx]`` equal to ``unique_rows(D)`` without its all-False row
    (the first occurrence of each distinct non-zero row, in sorted order); ``D`` (P, n) bool,
    n >= 1.  Works on the packed bits: no copy of ``D``."""
    if len(D) == 0:
        return np.zeros(0, dtype=np.intp)
    packed = packed_rows(D)
    keys = packed.view(np.dtype((np.void, packed.shape[1])))[:, 0]
    _, idx = np.unique(keys, return_index=True)
    return idx[packed[idx].any(axis=1)]


def unique_rows(D: np.ndarray, *, return_index: bool = False) -> Any:
    """Sorted unique rows of a boolean matrix: ``np.unique(D, axis=0)`` (and the index of each
    row's first occurrence with ``return_index``), computed on the packed bits.

    ``np.unique(..., axis=0)`` views every row as a record with one field per column, about
    five times the size of the masks at large ``n``; the packed rows are 8x smaller than the
    masks.  ``np.packbits`` is big-endian, so the byte strings of two rows compare like their
    bit sequences and the order (lexicographic, False < True) is the same.
    """
    D = np.asarray(D, dtype=bool)
    if D.ndim != 2 or D.shape[0] == 0 or D.shape[1] == 0:
        return np.unique(D, axis=0, return_index=return_index)
    packed = packed_rows(D)
    keys = packed.view(np.dtype((np.void, packed.shape[1])))[:, 0]
    _, idx = np.unique(keys, return_index=True)  # stable: the first occurrence of each row
    return (D[idx], idx) if return_index else D[idx]


def unique_patterns(D: np.ndarray, *, drop_zero: bool = True) -> np.ndarray:
    """Unique rows of a boolean pattern matrix (sorted), optionally without the all-zero row."""
    D = np.asarray(D, dtype=bool)
    if D.size == 0:
        return D.reshape(0, D.shape[-1] if D.ndim == 2 else 0)
    U = unique_rows(D)
    if drop_zero:
        U = U[U.any(axis=1)]
    return U


def _all_signs(k: int) -> np.ndarray:
    """All ``2**k`` boolean vectors of length ``k`` (rows)."""
    if k == 0:
        return np.zeros((1, 0), dtype=bool)
    idx = np.arange(2**k)[:, None]
    return ((idx >> np.arange(k)[None, :]) & 1).astype(bool)


def _perturb(z: np.ndarray, base: np.ndarray, W: np.ndarray, A: np.ndarray, on: np.ndarray) -> np.ndarray:
    r"""Directions :math:`u = g + \varepsilon w` inside the region next to the ray ``g``.

    ``z`` (c, m) are :math:`x_j^Tg` (sign already applied), ``base`` (c, r) the rays,
    ``W`` (c, q, r) the in-face directions :math:`w` with the wanted signs on the rows
    ``on`` (c, m) at zero.  :math:`\varepsilon` is half the largest value keeping the sign
    of every row off the face.  Returns (c, q, r).
    """
    xw = np.einsum("cqr,mr->cqm", W, A)  # (c, q, m)
    off = ~on[:, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(off & (np.abs(xw) > 0), np.abs(z)[:, None, :] / np.abs(xw), np.inf)
    eps = 0.5 * np.min(ratio, axis=2)  # (c, q)
    eps = np.where(np.isfinite(eps), np.minimum(eps, 1.0), 1.0)
    return base[:, None, :] + eps[:, :, None] * W


def _regions(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sign patterns (``True`` = positive side) of all regions of the central arrangement
    with normals = rows of ``A`` (m, r), full column rank ``r``, no zero rows.

    Returns ``(P, U)``: a boolean array (P, m) containing every region's pattern and,
    for each, a direction ``U[i]`` (r,) inside that region (up to rounding; callers
    verify it)."""
    m, r = A.shape
    if r == 1:
        pos = A[:, 0] > 0
        return np.stack([pos, ~pos]), np.array([[1.0], [-1.0]])
    norms = np.linalg.norm(A, axis=1)
    subsets = np.array(list(combinations(range(m), r - 1)), dtype=np.intp)  # (C, r-1)
    out: list[np.ndarray] = []
    dirs: list[np.ndarray] = []
    signs = _all_signs(r - 1)  # (2^{r-1}, r-1)
    sig = 2.0 * signs - 1.0
    chunk = max(1, 200_000 // max(1, r * r * len(signs)))
    done_Z: set[bytes] = set()
    for start in range(0, len(subsets), chunk):
        S = subsets[start:start + chunk]
        AS = A[S]  # (c, r-1, r)
        _, sv, Vt = np.linalg.svd(AS, full_matrices=True)
        g = Vt[:, -1, :]  # (c, r) unit null vectors
        smax = sv[:, 0]
        smin = sv[:, -1]
        # S must be linearly independent (rank r-1): relative singular-value test as in row_space
        indep = smin > max(m, r) * _EPS * 100 * smax
        if not np.any(indep):
            continue
        S, g, smax, smin, AS = S[indep], g[indep], smax[indep], smin[indep], AS[indep]
        z = g @ A.T  # (c, m)
        # A row counts as on the hyperplane when |x_j^T g| is below the error of g:
        # the null vector of S is accurate to ~eps * cond(S); 1e3 is a safety factor.
        # Too large a tolerance only adds patterns (a harmless superset).
        tol = (1e3 * _EPS * smax / smin)[:, None] * norms[None, :]
        onZ = np.abs(z) <= tol  # (c, m)
        nZ = onZ.sum(axis=1)
        general = nZ == r - 1
        if np.any(general):
            Sg, zg, gg, ASg = S[general], z[general], g[general], AS[general]
            # in-face directions with the wanted signs on S: w = pinv(A_S) sigma
            Wf = np.einsum("crk,qk->cqr", np.linalg.pinv(ASg), sig)  # (c', 2^{r-1}, r)
            for sgn in (1.0, -1.0):
                base = (sgn * zg) > 0  # (c', m)
                pats = np.repeat(base[:, None, :], len(signs), axis=1)  # (c', 2^{r-1}, m)
                rows = np.arange(len(Sg))[:, None, None]
                pats[rows, np.arange(len(signs))[None, :, None], Sg[:, None, :]] = signs[None, :, :]
                out.append(pats.reshape(-1, m))
                U = _perturb(sgn * zg, sgn * gg, Wf, A, onZ[general])
                dirs.append(U.reshape(-1, r))
        for c in np.flatnonzero(~general):
            Zmask = onZ[c]
            key = Zmask.tobytes()
            if key in done_Z:
                continue
            done_Z.add(key)
            sub, subdirs = _sub_regions(A[Zmask], r, g[c])
            for sgn in (1.0, -1.0):
                base = (sgn * z[c]) > 0
                pats = np.repeat(base[None, :], len(sub), axis=0)
                pats[:, Zmask] = sub
                out.append(pats)
                U = _perturb((sgn * z[c])[None], (sgn * g[c])[None], subdirs[None], A, Zmask[None])[0]
                dirs.append(U)
    if not out:  # pragma: no cover - r >= 2 with full column rank always has an independent subset
        raise RuntimeError("no independent (r-1)-subset found; X_r is not of full column rank")
    P = np.concatenate(out, axis=0)
    U = np.concatenate(dirs, axis=0)
    P, idx = unique_rows(P, return_index=True)
    return P, U[idx]


def _sub_regions(A: np.ndarray, r: int, g: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    r"""Regions of the arrangement of rows of ``A`` (q, r) of any rank; zero rows get both
    signs.  Returns patterns (P, q) and directions (P, r) in ``A``'s column space.

    With ``g`` (r,), the rows are those found (numerically) on the hyperplanes through
    the ray ``g``: they are projected onto :math:`g^\perp` first, so the sub-arrangement
    has rank at most ``r - 1`` even when rounding (or nearly parallel rows, e.g. data
    within 1e-11 of rank one) leaves them of numerical rank ``r``; the recursion then
    always ends.  Rows whose projection is below rounding of their norm count as zero."""
    m = A.shape[0]
    B = None
    if g is not None:
        B = np.linalg.svd(g[None, :] / np.linalg.norm(g))[2][1:].T  # (r, r-1) basis of g^perp
        An = np.linalg.norm(A, axis=1)
        A = A @ B
        zero = np.linalg.norm(A, axis=1) <= 1e3 * _EPS * An
    else:
        zero = np.linalg.norm(A, axis=1) == 0.0
    rs = row_space(A[~zero]) if np.any(~zero) else None
    if rs is None or rs.rank == 0:
        inner = np.zeros((1, int(np.sum(~zero))), dtype=bool)
        inner_dirs = np.zeros((1, A.shape[1]))
    else:
        inner, d_r = _regions(rs.Xr)
        inner_dirs = d_r @ rs.V.T
    if B is not None:
        inner_dirs = inner_dirs @ B.T
    nz = int(np.sum(zero))
    if nz == 0:
        return inner, inner_dirs
    # zero rows: x_j^T u = 0 for all u, either side is consistent; keep both
    zs = _all_signs(nz) if nz <= 4 else np.stack([np.zeros(nz, bool), np.ones(nz, bool)])
    pats = np.zeros((len(inner) * len(zs), m), dtype=bool)
    pats[:, ~zero] = np.repeat(inner, len(zs), axis=0)
    pats[:, zero] = np.tile(zs, (len(inner), 1))
    return pats, np.repeat(inner_dirs, len(zs), axis=0)


def enumerate_patterns(X: Any, *, max_patterns: int | None = None, return_directions: bool = False):
    r"""All activation patterns :math:`1[Xg \ge 0]` of the regions of ``X``'s arrangement.

    Parameters
    ----------
    X : array of shape (n, d)
    max_patterns : int, optional
        Refuse (``ValueError``) when the region-count bound
        :func:`count_upper_bound` exceeds it.
    return_directions : bool, default False
        Also return, for each pattern, a direction :math:`g` (d,) with
        :math:`1[Xg > 0]` equal to the pattern on the non-zero rows (strictly inside the
        region, up to rounding for nearly degenerate data: verify before relying on it).

    Returns
    -------
    ndarray of bool, shape (P, n)
        Unique patterns, without the all-zero pattern (it contributes nothing).  Rows of
        ``X`` equal to zero get ``False``.  The set contains the pattern of every region
        (a superset when the data are degenerate up to rounding); see the module notes.
    ndarray of shape (P, d)
        The directions, when ``return_directions``.

    Examples
    --------
    >>> import numpy as np
    >>> from deepdual.patterns import enumerate_patterns
    >>> enumerate_patterns(np.array([[1.0, 0.0], [0.0, 1.0]])).astype(int)
    array([[0, 1],
           [1, 0],
           [1, 1]])
    """
    X = check_matrix(X, "X")
    n, d = X.shape
    rs = row_space(X)
    r = rs.rank
    empty = (np.zeros((0, n), dtype=bool), np.zeros((0, d)))
    if r == 0:
        return empty if return_directions else empty[0]
    if max_patterns is not None and count_upper_bound(n, r) > max_patterns:
        raise ValueError(
            f"`X` ({n} rows, rank {r}) may have up to {format_count(count_upper_bound(n, r))} activation patterns, "
            f"more than max_patterns={max_patterns}; sample patterns instead"
        )
    zero = np.linalg.norm(rs.Xr, axis=1) == 0.0
    pats, dirs = empty
    if np.any(~zero):
        inner, U = _regions(rs.Xr[~zero])
        pats = np.zeros((len(inner), n), dtype=bool)
        pats[:, ~zero] = inner
        dirs = U @ rs.V.T
    keep = pats.any(axis=1)
    pats, dirs = pats[keep], dirs[keep]
    pats, idx = unique_rows(pats, return_index=True)
    return (pats, dirs[idx]) if return_directions else pats


def sample_patterns(X: Any, n_patterns: int, rng: Any = None, *, max_tries: int = 20,
                    return_directions: bool = False, rs: RowSpace | None = None,
                    ones_column: bool = False):
    r"""Distinct patterns :math:`1[Xg \ge 0]` for Gaussian :math:`g` in the row space of ``X``.

    Draws batches of ``n_patterns`` directions until ``n_patterns`` distinct non-zero
    patterns are found or ``max_tries`` batches were drawn (small data sets have
    fewer patterns than requested).

    Parameters
    ----------
    X : array of shape (n, d)
    n_patterns : int >= 1
    rng : None, int or numpy.random.Generator
        Source of the directions; ``None`` means the seed 0 (identical calls give
        identical patterns; pass another seed or a Generator for other draws).
    return_directions : bool, default False
        Also return the direction :math:`g` (d,) that produced each pattern.
    rs : RowSpace, optional
        ``row_space(X)`` when the caller already has it (it is not computed again); its
        ``Xr`` may be ``None`` (``row_space(..., with_Xr=False)``): its rows are then formed
        a block at a time.
    ones_column : bool, default False
        Patterns of :math:`[X\ \mathbf 1]` (the data with a bias column, not copied); the
        directions then have d + 1 entries.

    Returns
    -------
    ndarray of bool, shape (P, n) with ``P <= n_patterns`` (and the directions (P, d))

    Notes
    -----
    Memory: ``X`` is only read (no copy), the products :math:`X_rG^T` are formed in row
    blocks, and the masks are held at most twice (the previous set and the new batch).
    """
    # (a ScaledDesign, e.g. the solver's scaled data, is read a block of rows at a time)
    X = X if isinstance(X, ScaledDesign) else check_matrix(X, "X", copy=False)
    if isinstance(n_patterns, bool) or not isinstance(n_patterns, (int, np.integer)) or n_patterns < 1:
        raise ValueError(f"`n_patterns` must be an integer >= 1, got {n_patterns!r}")
    gen = as_rng(0 if rng is None else rng)
    n, d = X.shape
    d += int(bool(ones_column))
    if rs is None:
        rs = row_space(X, ones_column=ones_column)
    elif (rs.Xr is not None and rs.Xr.shape[0] != n) or rs.V.shape[0] != d:
        raise ValueError(f"`rs` is the row space of a matrix with {rs.V.shape[0]} columns"
                         + (f" and {rs.Xr.shape[0]} rows" if rs.Xr is not None else "")
                         + f", not of `X` ({n}x{d}{' with the ones column' if ones_column else ''})")
    if rs.rank == 0:
        empty = (np.zeros((0, n), dtype=bool), np.zeros((0, d)))
        return empty if return_directions else empty[0]
    pats = np.zeros((0, n), dtype=bool)
    dirs = np.zeros((0, rs.rank))
    idx = np.zeros(0, dtype=np.intp)
    for k in range(max_tries):
        if k:  # the rows kept of the previous batches (one copy of the masks)
            pats, dirs = pats[idx], dirs[idx]
        G = gen.standard_normal((int(n_patterns), rs.rank))
        new = np.empty((len(G), n), dtype=bool, order="F")  # (see mask_rows)
        for rows in row_blocks(n, len(G)):  # no (n, n_patterns) float array whole
            Xr = rs.Xr[rows] if rs.Xr is not None else rows_with_ones(X, rows, bool(ones_column)) @ rs.V
            new[:, rows] = (Xr @ G.T >= 0).T
            del Xr
        if len(pats):
            pats = np.concatenate([pats, new], axis=0)
        else:  # the first batch: no copy
            pats = new
        del new
        dirs = np.concatenate([dirs, G], axis=0)
        # the first occurrence of each distinct non-zero pattern, in unique_rows' order;
        # never a sorted copy and a filtered copy
        idx = first_unique_nonzero(pats)
        if len(idx) >= n_patterns:
            break
    if len(idx) > n_patterns:
        idx = idx[np.sort(gen.permutation(len(idx))[:n_patterns])]
    pats = mask_rows(pats, idx)
    return (pats, dirs[idx] @ rs.V.T) if return_directions else pats


def mask_rows(D: np.ndarray, idx: np.ndarray) -> np.ndarray:
    r"""``D[idx]`` for boolean masks ``D`` (P, n), in Fortran order: the (n, P) transpose the
    first-order solver works on (its row blocks of all patterns) is then a view, not a copy
    of the masks (docs/performance.md §8).  Rows read as before (``D[idx][p]`` is a strided
    view); the values are those of ``D[idx]``.  Copied a block of samples at a time (small
    blocks stay in cache: as fast as one transposing copy, without its (P, n) temporary).
    Fortran-ordered ``D`` with ``idx`` all its rows in order is returned itself."""
    idx = np.asarray(idx, dtype=np.intp)
    n = D.shape[1]
    if D.flags.f_contiguous and np.array_equal(idx, np.arange(D.shape[0])):
        return D  # all rows, in order: already the result (no copy)
    out = np.empty((len(idx), n), dtype=bool, order="F")
    for cols in row_blocks(n, max(1, len(idx))):
        out[:, cols] = D[idx, cols]
    return out
