r"""The dual constraint of ReLU networks and the reduced problems it yields.

Dual constraint
---------------
For a dual point :math:`V \in \mathbb{R}^{n\times K}` the *dual constraint value* of
depth-``L`` ReLU networks (no biases) is the smallest :math:`c(V)` with

.. math:: \langle V, f_\theta(X)\rangle \;\le\; c(V) \sum_j t_j,\qquad
          t_j = \prod_{l=1}^{L} \|W_{l,j}\|_F ,

for every parallel network :math:`\theta` of any width.  Together with
:math:`\frac\beta2\sum_{j,l}\|W_{l,j}\|_F^2 \ge \frac{\beta L}{2}(\sum_j t_j)^{2/L}` (AM--GM and
subadditivity, :mod:`deepdual.bounds`) and Fenchel--Young it gives the weak-duality
bound :math:`P(\theta) \ge D(V) - c(V)T + \frac{\beta L}{2}T^{2/L}` with :math:`T = \sum_j t_j`;
for :math:`L = 2` and :math:`c(V) \le \beta` simply :math:`P(\theta) \ge D(V)`.

For :math:`L = 2` and :math:`K = 1`, :math:`c(v) = \max_{\|u\|\le1}|v^T(Xu)_+|`.  What is
computed (:func:`relu_constraint`; every value is exact or a *proven upper bound*, never a
sampled estimate; the derivations are in ``docs/relu.md``):

==========================  =====================================================  =========
case                        value                                                  exact?
==========================  =====================================================  =========
whitened :math:`XX^T=I`      :math:`\max(\|v_+\|,\|v_-\|)` (any depth)                yes
whitened, :math:`K > 1`       :math:`\sqrt{\lambda_{\max}((VV^T)_+)}` (any depth)          if :math:`VV^T\ge0` on top block
rank one :math:`X=ab^T`       :math:`\|b\|\max(|v^Ta_+|,|v^Ta_-|)` (L = 2)           yes
rank one, :math:`a \ge 0`     :math:`\|b\|\,|v^Ta|` (any depth, any K: :math:`\|V^Ta\|`)  yes
small rank (L = 2)          max over activation cells of an NNLS value             yes
any data                    :math:`\|X\|_2\max(\|v_+\|,\|v_-\|)` (any depth)         bound
==========================  =====================================================  =========

For vector outputs (:math:`K > 1`), :math:`c(V) = \max_{\|u\|\le 1}\|V^T(Xu)_+\|` at
:math:`L = 2`; exact on rank-one data and on whitened data when the columns of
:math:`V` have disjoint supports (:math:`\max_k c(v_k)`); otherwise the minimum of the
proven bounds :math:`\|X\|_2\|V\|_2` and :math:`\sqrt{\sum_k c(v_k)^2}`, and on whitened
data also the non-negative-orthant Perron bound :math:`\|X\|_2\sqrt{\lambda_{\max}((VV^T)_+)}`
(:func:`c_nonneg_orthant`), exact when :math:`VV^T \ge 0` on the block of the maximizing
Perron vector (e.g. class-constant dual rows with negatively correlated classes: the
cross-entropy optimum of :mod:`deepdual.relu.whitened.losses`).

Reduced problems
----------------
A gauge bound :math:`\gamma(f) \le \|X\|_2 \sum_j t_j` (ReLU outputs are non-negative,
so the last hidden layer satisfies :math:`\|A_{L-1,j}\|_F \le \|X\|_2\prod_{l<L}\|W_{l,j}\|_F`)
turns the training problem into the *relaxed reduced problem*

.. math:: P^\star \;\ge\; \min_{T \ge 0}\; G(T) + \lambda T^{2/L},\qquad
          G(T) = \min\{\ell(f) : \gamma(f) \le T\},\quad \lambda = \tfrac{\beta L}{2}\|X\|_2^{-2/L},

with :math:`G` convex and non-increasing.  For the squared loss :math:`G` is a
*water-filling* function of a few norms of :math:`Y` (:func:`water_filling`), and
:func:`minimize_convex_plus_power` finds the global minimum of
:math:`G(T) + \lambda T^p` with a proven lower bound (branch and bound with convex
minorants).  :func:`relaxed_squared_bound` combines both.

Networks with biases on one-dimensional data are certified by
:func:`deepdual.relu.one_dimensional.solver.certify_1d` (see :func:`deepdual.relu.certificate.certify_relu`);
that module may call :func:`relu_constraint` (e.g. on ``[x, 1]``) for its own bounds.

References
----------
T. Ergen and M. Pilanci, "Revealing the structure of deep neural networks via convex
duality", ICML 2021.
M. Pilanci and T. Ergen, "Neural networks are convex regularizers", ICML 2020 (cells).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np

from .bounds import power_prox
from .structures import is_whitened, rank_one_factors

__all__ = [
    "ConstraintValue",
    "sign_part_norm",
    "c_whitened",
    "c_rank_one",
    "c_spectral_bound",
    "spectral_norm_bound",
    "c_nonneg_orthant",
    "c_enumerate",
    "relu_constraint",
    "disjoint_columns",
    "water_filling",
    "ReducedResult",
    "minimize_convex_plus_power",
    "relaxed_squared_bound",
    "label_parts",
    "CONSTRAINT_MODES",
]

_EPS = np.finfo(float).eps
CONSTRAINT_MODES = ("auto", "exact", "bound")

#: default cap on the region-count bound for exact cell enumeration; beyond it the
#: spectral-norm bound is used ("auto") or a ValueError is raised ("exact").
DEFAULT_MAX_PATTERNS = 20_000


@dataclass
class ConstraintValue:
    """A dual constraint value: ``value`` is exact (``exact=True``) or a proven upper bound."""

    value: float
    exact: bool
    method: str
    n_patterns: int | None = None
    details: dict = field(default_factory=dict)


# ------------------------------------------------------------------------ closed forms
def sign_part_norm(v: np.ndarray) -> float:
    r""":math:`c_0(v) = \max(\|v_+\|, \|v_-\|)`, the support function of
    :math:`\{z_+ : \|z\|\le 1\}\cup\{-z_+\}`: :math:`\max_{\|z\|\le1}|v^T z_+|`."""
    v = np.asarray(v, dtype=float).ravel()
    return float(max(np.linalg.norm(np.maximum(v, 0.0)), np.linalg.norm(np.minimum(v, 0.0))))


def c_whitened(V: np.ndarray, X: np.ndarray | None = None) -> float:
    r"""Exact :math:`c(V)` on whitened data, scalar output (any depth):
    :math:`\max(\|v_+\|,\|v_-\|)`, times :math:`\|X\|_2` when ``X`` is given.

    Multiplying by the computed :math:`\|X\|_2` (1 up to rounding when :math:`XX^T = I`)
    makes the value a rigorous upper bound even when ``X`` is whitened only to the
    detection tolerance.
    """
    val = sign_part_norm(V)
    if X is not None:
        val *= max(_spectral_norm(X), 0.0)
    return val


def c_rank_one(V: np.ndarray, a: np.ndarray, b_norm: float, *, depth: int = 2) -> tuple[float, bool]:
    r"""Dual constraint on rank-one data :math:`X = a b^T` (``b_norm`` = :math:`\|b\|`).

    With :math:`a_+ = \max(a, 0)` and :math:`a_- = \max(-a, 0)`,
    :math:`(Xu)_+ = a_+ (b^Tu)_+ + a_-(-b^Tu)_+`.

    * :math:`L = 2`: exact :math:`\|b\|\max(\|V^Ta_+\|, \|V^Ta_-\|)`.
    * :math:`L \ge 3`, one-signed :math:`a`: exact :math:`\|b\|\,\|V^Ta\|` (every network's
      output is :math:`a\kappa^T` with :math:`\|\kappa\| \le \|b\|\sum_j t_j`).
    * :math:`L \ge 3`, mixed signs: the proven bound
      :math:`\|b\|\,\|(V^Ta_+, V^Ta_-)\|_F` (output :math:`a_+\kappa_+^T + a_-\kappa_-^T` with
      :math:`\|(\kappa_+,\kappa_-)\|_F \le \|b\|\sum_j t_j`).

    Returns ``(value, exact)``.
    """
    V = np.asarray(V, dtype=float).reshape(len(a), -1)
    ap, am = np.maximum(a, 0.0), np.maximum(-a, 0.0)
    gp, gm = np.linalg.norm(V.T @ ap), np.linalg.norm(V.T @ am)
    if depth == 2:
        return float(b_norm * max(gp, gm)), True
    if not np.any(ap) or not np.any(am):
        return float(b_norm * max(gp, gm)), True
    return float(b_norm * np.hypot(gp, gm)), False


def _spectral_norm(A: np.ndarray) -> float:
    return spectral_norm_bound(A)


#: row selections of at least this many entries (and at least :data:`GRAM_NORM_MIN_ROWS_PER_COL`
#: rows per column) take the Gram route of :func:`spectral_norm_bound`; smaller ones the SVD
GRAM_NORM_MIN_ENTRIES = 2**17
#: ... and at least this many rows per column (tall data, where the Gram matrix is small)
GRAM_NORM_MIN_ROWS_PER_COL = 4
#: generous constant of the symmetric eigensolver's backward error, ``c d u ||G||_F``
_EIGH_BACKWARD = 64.0


def spectral_norm_bound(A: np.ndarray, rows: np.ndarray | None = None) -> float:
    r"""Upper bound on :math:`\|A_S\|_2`, :math:`A_S` the rows of ``A`` selected by the
    boolean mask ``rows`` (all rows when ``None``), without copying them.

    Few rows: the largest singular value :math:`\hat\sigma` of the copy :math:`A_S` (LAPACK),
    times :math:`1 + 8\max(n, d)\epsilon` (LAPACK's singular values are those of
    :math:`A_S + E`, :math:`\|E\|_2 \le p(n, d)\,\epsilon\|A_S\|_2`, :math:`p` modest).
    Many rows (at least :data:`GRAM_NORM_MIN_ENTRIES` entries and
    :data:`GRAM_NORM_MIN_ROWS_PER_COL` rows per column): the :math:`d\times d` Gram matrix
    :math:`G = \sum_{\text{blocks}} A_b^TA_b` is accumulated over row blocks
    (:func:`deepdual.blocks.row_blocks`, each block scaled by a power of two so that
    :math:`\max|a_{ij}| \in [1/2, 1)`), and

    .. math:: \|A_S\|_2 \le 2^{-k}\Big(\sqrt{\hat\lambda_{\max} + 2\gamma_m\operatorname{tr}\hat G
              + c\,d\,u\|\hat G\|_F + 4dn\eta} + \sqrt{nd}\,\eta\Big)(1 + 8u)

    with :math:`\hat G` the computed Gram matrix, :math:`\hat\lambda_{\max}` its largest
    computed eigenvalue (``scipy.linalg.eigvalsh``), :math:`m` = block rows + blocks,
    :math:`\gamma_m = mu/(1-mu)`, :math:`c` = 64, :math:`\eta` the smallest subnormal:
    a proven bound (derivation: docs/convex_program.md §4, "The spectral bound without a
    copy").  Its relative excess over :math:`\|A_S\|_2` is about :math:`m d u`.
    Non-finite data give the SVD's value.  ``A`` may be a :class:`deepdual.blocks.ScaledDesign`
    (an implicit :math:`[X\ \mathbf 1]2^{-k}`): it takes the Gram route whenever it has
    :data:`GRAM_NORM_MIN_ROWS_PER_COL` rows per column, whatever its size, so that its rows
    are never copied (docs/performance.md §8).
    """
    from .blocks import ScaledDesign

    A = A if isinstance(A, ScaledDesign) else np.asarray(A, dtype=float)
    n_all, d = A.shape
    sel = None if rows is None else np.asarray(rows, dtype=bool).reshape(-1)
    n = n_all if sel is None else int(np.count_nonzero(sel))
    if n == 0 or d == 0:
        return 0.0
    if (n * d < GRAM_NORM_MIN_ENTRIES and not isinstance(A, ScaledDesign)) or n < GRAM_NORM_MIN_ROWS_PER_COL * d:
        # LAPACK's largest singular value is that of A + E, ||E||_2 <= p(n, d) eps ||A||_2 with p
        # modest (LAPACK Users' Guide, error bounds for the SVD: p = 1 in practice); the margin
        # 8 max(n, d) eps (as in the two-part bound, relu/certificate.py) covers it
        sv = float(np.linalg.norm(A if sel is None else A[sel], 2))
        return sv * (1.0 + 8.0 * max(n, d) * _EPS) if np.isfinite(sv) else sv
    from scipy.linalg import eigvalsh

    from .blocks import row_blocks

    top = float(max(np.max(A), -np.min(A)))  # no |A| copy
    if not np.isfinite(top):
        return float(np.linalg.norm(A if sel is None else A[sel], 2))
    if top == 0.0:
        return 0.0
    # 2^k top in [1/2, 1) (k clipped: 2^k finite): exact scaling but for underflow
    k = min(1000, max(-1000, -int(np.frexp(top)[1])))
    scale = np.ldexp(1.0, k)
    G = np.zeros((d, d))
    blocks = 0
    block_rows = 0
    for b in row_blocks(n_all, d):
        if sel is None:
            Ab = A[b] * scale  # one block-sized temporary
        else:
            Ab = A[b][sel[b]]
            if Ab.shape[0] == 0:
                continue
            Ab *= scale
        G += Ab.T @ Ab
        blocks += 1
        block_rows = max(block_rows, Ab.shape[0])
    u = _EPS / 2
    m = block_rows + blocks
    if m * u >= 1e-3:  # pragma: no cover - beyond 10^12 rows per chain
        return float(np.linalg.norm(A if sel is None else A[sel], 2))
    gamma = m * u / (1.0 - m * u)
    eta = float(np.finfo(float).smallest_subnormal)
    lam = float(eigvalsh(G, check_finite=False)[-1])
    margin = (2.0 * gamma * float(np.trace(G)) + _EIGH_BACKWARD * d * u * float(np.linalg.norm(G))
              + 4.0 * d * n * eta)
    bound = (np.sqrt(max(lam, 0.0) + margin) + np.sqrt(float(n) * d) * eta) * (1.0 + 8.0 * u)
    return float(bound / scale)


def c_spectral_bound(V: np.ndarray, X: np.ndarray, *, X_norm: float | None = None) -> float:
    r"""Proven upper bound valid for every depth and every data set.

    Scalar output: :math:`\|X\|_2\max(\|v_+\|,\|v_-\|)`, since the last hidden layer
    :math:`A \ge 0` gives :math:`v^TAw \le \max(\|v_+\|,\|v_-\|)\|A\|_F\|w\|` and
    :math:`\|A\|_F \le \|X\|_2\prod_{l<L}\|W_l\|_F` (ReLU is 1-Lipschitz and
    :math:`(0)_+ = 0`).  Vector output: :math:`\|X\|_2\min(\|V\|_2, \sqrt{\sum_k c_0(v_k)^2})`
    (:math:`\langle V, Aw\rangle \le \|V\|_2\|Aw\|_* \le \|V\|_2\|A\|_F\|w\|_F`, and
    :math:`\|A^TV\|_F^2 = \sum_k\|A^Tv_k\|^2 \le \sum_k c_0(v_k)^2\|A\|_F^2`).
    """
    V = np.asarray(V, dtype=float).reshape(X.shape[0], -1)
    xn = _spectral_norm(X) if X_norm is None else float(X_norm)
    if V.shape[1] == 1:
        return xn * sign_part_norm(V[:, 0])
    per = np.sqrt(sum(sign_part_norm(V[:, k]) ** 2 for k in range(V.shape[1])))
    bound = min(_spectral_norm(V), per)
    if disjoint_columns(V):
        bound = min(bound, max(sign_part_norm(V[:, k]) for k in range(V.shape[1])))
    return xn * bound


#: relative size (to max_i ||v_i||^2) of positive correlations treated as rounding noise
#: (their removal is paid for in the bound): a few thousand ulps of the largest entry
_DROP_REL = 1e-12
#: relative agreement of the proven upper bound and an attained value that counts as exact
#: (far above rounding ~1e-15, far below any certificate tolerance)
_EXACT_REL = 1e-10

#: blocks larger than this use Lanczos (scipy eigsh) instead of a dense eigendecomposition
_EIGH_MAX = 100


def _collatz_wielandt(B: np.ndarray, x: np.ndarray) -> float:
    r""":math:`\max_i (Bx)_i/x_i` for a non-negative ``B`` and ``x > 0``: an upper bound on
    :math:`\rho(B)`, inflated by the relative rounding of the non-negative sums and the division."""
    m = B.shape[0]
    r = float(np.max((B @ x) / x))
    return r * (1.0 + 2.0 * (m + 2) * _EPS)  # sums of m non-negative terms: relative error <= gamma_m


def _perron_vector(B: np.ndarray) -> np.ndarray:
    """A numerical Perron vector (entrywise absolute value) of a symmetric non-negative ``B``;
    only its quality, never the validity of the Collatz--Wielandt bound, depends on it."""
    m = B.shape[0]
    if m <= _EIGH_MAX:
        return np.abs(np.linalg.eigh(B)[1][:, -1])
    from scipy.sparse.linalg import ArpackError, eigsh

    try:
        # Lanczos; 1e-12 relative: the ratio's slack is of the order of the eigenvector error
        return np.abs(eigsh(B, k=1, which="LA", tol=1e-12)[1][:, 0])
    except ArpackError:  # pragma: no cover - no convergence: power iterations (always positive)
        y = np.ones(m)
        for _ in range(200):
            y = B @ y
            y /= np.max(y)
        return y


def c_nonneg_orthant(V: np.ndarray) -> ConstraintValue:
    r"""Proven upper bound on :math:`c_+(V) = \max_{z\ge0,\ \|z\|\le1}\|V^Tz\|`, exact in a
    checkable case.

    On whitened data (:math:`XX^T = I_n`) :math:`c(V) = c_+(V)` at every depth (times
    :math:`\|X\|_2` in general, see below); computing it maximizes a convex quadratic over the
    non-negative part of the unit ball, NP-hard in general (copositivity).

    **Bound.** Let :math:`M = VV^T` and :math:`M_+ = \max(M, 0)` entrywise.  For
    :math:`z \ge 0` every product :math:`z_iz_k \ge 0`, so

    .. math:: \|V^Tz\|^2 = z^TMz \;\le\; z^TM_+z \;\le\; \lambda_{\max}(M_+)\,\|z\|^2 .

    :math:`M_+` is block diagonal over the connected components :math:`C` of the graph
    :math:`\{(i,k) : M_{ik} > 0\}`, so :math:`\lambda_{\max}(M_+) = \max_C \rho(M_{+,CC})`
    (symmetric non-negative: spectral radius = largest eigenvalue).  Each
    :math:`\rho(B)` is bounded by the *Collatz--Wielandt* ratio
    :math:`\rho(B) \le \max_i (Bx)_i/x_i` for any :math:`x > 0` -- proof: Perron--Frobenius
    gives :math:`y \ge 0`, :math:`y \ne 0` with :math:`B y = \rho y`; with
    :math:`\mu = \max_i (Bx)_i/x_i`, :math:`Bx \le \mu x`, so
    :math:`\rho\,y^Tx = y^TBx \le \mu\,y^Tx` and :math:`y^Tx > 0`.  The value is the
    minimum of this ratio over a few positive :math:`x` (all ones -- Gershgorin's row sums --,
    the numerical Perron vector clipped away from zero, and one power step from it), so
    eigen-solver inaccuracy can only loosen it, never invalidate it.

    **Exactness.** If :math:`M_{ik} \ge 0` for all :math:`i, k` in the maximizing block
    :math:`C`, its Perron vector :math:`y \ge 0` (supported on :math:`C`) has
    :math:`y^TMy = y^TM_+y = \lambda_{\max}(M_+)\|y\|^2`: the bound is attained.  Example:
    rows of :math:`V` constant on label classes, with :math:`\langle r_j, r_k\rangle \le 0`
    across classes (the cross-entropy optimum on whitened data): the blocks are the classes
    and :math:`c_+(V) = \max_j\sqrt{n_j}\|r_j\|`.  What is checked numerically:
    ``details["attained"]`` is :math:`\|V^T\hat y\|` for the normalized clipped Perron
    vector :math:`\hat y` of the maximizing block, a feasible value, hence a lower bound on
    :math:`c_+(V)`; ``exact`` is True when it agrees with the returned upper bound to a
    relative :math:`10^{-10}` (then :math:`c_+(V)` is pinned to that accuracy).

    **Any data, any depth.** For the last hidden layer :math:`A \ge 0` (columns
    :math:`a_i`) and last layer :math:`W` (rows :math:`w_i`),
    :math:`\langle V, AW\rangle = \sum_i (V^Ta_i)^Tw_i \le c_+(V)\sum_i\|a_i\|\|w_i\|
    \le c_+(V)\|A\|_F\|W\|_F` and :math:`\|A\|_F \le \|X\|_2\prod_{l<L}\|W_l\|_F`, so
    :math:`c_L(V) \le \|X\|_2\,c_+(V)`; on whitened data equality holds at every depth
    (first layer :math:`X^Tz`, scalar chain after it, as for scalar outputs).

    **Rounding.** The computed :math:`\hat M` has :math:`|\hat M - M| \le \gamma_K|V||V|^T`
    entrywise, so :math:`z^TMz \le z^T\hat M_+z + \gamma_K\|V\|_F^2` for
    :math:`\|z\|\le1`; that term is added.  Positive off-diagonal entries below
    :math:`10^{-12}\max_i\|v_i\|^2` (rounding noise of zero correlations, which would merge
    blocks) are dropped from :math:`\hat M_+`; for :math:`\|z\| \le 1` the dropped matrix
    :math:`E \ge 0` adds at most :math:`\|E\|_2 \le \|E\|_F`, which is added too.

    Cost: :math:`O(n^2K)` for :math:`M` plus an eigendecomposition per block (Lanczos for
    blocks above 100 rows).

    References
    ----------
    R. A. Horn and C. R. Johnson, *Matrix Analysis*, 2nd ed., Thm. 8.1.26 (Collatz--Wielandt)
    and Thm. 8.3.1 (Perron--Frobenius for non-negative matrices).
    """
    from scipy.sparse.csgraph import connected_components

    V = np.asarray(V, dtype=float)
    V = V.reshape(V.shape[0], -1)
    K = V.shape[1]
    if not np.all(np.isfinite(V)):
        return ConstraintValue(np.inf, False, "upper bound: non-finite dual point")
    Vr = V[np.any(V != 0.0, axis=1)]  # zero rows contribute nothing
    if Vr.shape[0] == 0:
        return ConstraintValue(0.0, True, "exact: zero", details={"attained": 0.0, "n_blocks": 0})
    M = Vr @ Vr.T
    Mp = np.maximum(M, 0.0)
    # off-diagonal entries below tau are rounding noise of structurally zero correlations
    # (e.g. orthogonal class rows); dropping them (matrix E, 0 <= E <= tau) splits the
    # blocks and costs z^T E z <= ||E||_F, which is added to the bound
    tau = _DROP_REL * float(np.max(np.diag(M)))
    small = (Mp <= tau) & (Mp > 0.0)
    np.fill_diagonal(small, False)
    drop = float(np.linalg.norm(Mp[small]))
    Mp[small] = 0.0
    n_blocks, labels = connected_components(Mp > 0.0, directed=False)
    best, best_block = -np.inf, None
    for c in range(n_blocks):
        idx = np.flatnonzero(labels == c)
        B = Mp[np.ix_(idx, idx)]
        m = idx.size
        if m == 1:
            rho, y = float(B[0, 0]) * (1.0 + 2.0 * _EPS), np.ones(1)
        else:
            y = _perron_vector(B)
            # clip away from zero (the ratio needs x > 0); 1e-12 relative keeps the ratios finite
            y = np.maximum(y / np.max(y), 1e-12)
            cands = [np.ones(m), y, B @ y]
            rho = min(_collatz_wielandt(B, x) for x in cands if np.all(x > 0))
        if rho > best:
            best, best_block = rho, (idx, y)
    idx, y = best_block
    z = y / np.linalg.norm(y)
    attained = float(np.linalg.norm(Vr[idx].T @ z))
    gamma_k = K * _EPS / (1.0 - K * _EPS)  # rounding of the K-term inner products in M
    value = np.sqrt(max(best, 0.0) + drop + gamma_k * float(np.sum(Vr * Vr))) * (1.0 + 2.0 * _EPS)
    # exact: the proven upper bound and a feasible point's value agree to _EXACT_REL (so c_+ is
    # known to that accuracy); this holds when M >= 0 on the top block (docstring)
    exact = bool(attained >= (1.0 - _EXACT_REL) * value)
    how = ("exact: non-negative-orthant Perron bound" if exact
           else "upper bound: non-negative-orthant Perron bound")
    return ConstraintValue(float(value), exact, how, details={"attained": attained, "n_blocks": int(n_blocks)})


def disjoint_columns(V: np.ndarray) -> bool:
    """True when no row of ``V`` has two non-zero entries (the columns have disjoint supports)."""
    V = np.asarray(V)
    return bool(V.ndim == 1 or np.all(np.count_nonzero(V, axis=1) <= 1))


# ------------------------------------------------------------------------ enumeration
def c_enumerate(v: np.ndarray, X: np.ndarray, *, max_patterns: int = DEFAULT_MAX_PATTERNS
                ) -> tuple[float, int]:
    r"""Exact :math:`c(v) = \max_{\|u\|\le 1}|v^T(Xu)_+|` (two layers, scalar) by enumerating
    the activation cells of ``X``.

    Every :math:`u` lies in the closure of a region (cell) :math:`K_i = \{u : (2D_i - I)Xu \ge 0\}`
    of the hyperplane arrangement of the rows of ``X``, on which :math:`(Xu)_+ = D_iXu`.  Hence

    .. math:: c(v) = \max_{i,\ s=\pm1}\ \max_{u\in K_i,\|u\|\le1} s\,v^TD_iXu
              = \max_{i,s}\ \min_{\mu\ge 0}\|X^T(sD_iv + (2D_i - I)\mu)\|

    (Moreau decomposition; the right side is a non-negative least-squares problem in the
    row-space coordinates).  Any :math:`\mu \ge 0` gives a value *above* the cell's
    maximum (weak duality), so solver inaccuracy can only raise the result, and a
    superset of patterns cannot raise it above :math:`c(v)`.  Patterns come from
    :func:`deepdual.patterns.enumerate_patterns` (all regions, exactly).  The
    singular values dropped as numerically zero add :math:`\|v\|\,s_{r+1}` (ReLU is
    1-Lipschitz), keeping the value a rigorous upper bound.

    Returns ``(value, number_of_patterns)``.  Raises ``ValueError`` when the region-count
    bound exceeds ``max_patterns``.
    """
    from scipy.optimize import nnls

    from .patterns import count_upper_bound, enumerate_patterns, format_count

    v = np.asarray(v, dtype=float).ravel()
    n = X.shape[0]
    _, s, Vt = np.linalg.svd(X, full_matrices=False)
    if s.size == 0 or s[0] == 0.0 or not np.any(v):
        return 0.0, 0
    tol = max(X.shape) * _EPS * s[0]  # LAPACK rank threshold, as patterns.row_space
    r = int(np.sum(s > tol))
    dropped = float(s[r]) if r < s.size else 0.0
    if count_upper_bound(n, r) > max_patterns:
        raise ValueError(
            f"`X` ({n} rows, rank {r}) may have up to {format_count(count_upper_bound(n, r))} activation cells, more than "
            f"max_patterns={max_patterns}; use constraint='bound' or raise max_patterns"
        )
    Xr = X @ Vt[:r].T  # (n, r): only the row-space coordinates matter
    try:
        D = enumerate_patterns(X, max_patterns=max_patterns).astype(float)  # (P, n)
    except RecursionError:  # numerically degenerate arrangement (nearly parallel rows)
        raise ValueError(
            "`X` has a numerically degenerate hyperplane arrangement (nearly parallel rows): exact cell "
            "enumeration failed; use constraint='bound'"
        ) from None
    P = len(D)
    if P == 0:
        return dropped * float(np.linalg.norm(v)), 0
    sgn = 2.0 * D - 1.0
    # mu = 0 is feasible: ||X_r^T D v|| bounds each cell's value from above; evaluate the
    # NNLS only while a cell could still beat the running maximum (largest first).
    G = (D * v[None, :]) @ Xr  # (P, r), rows X_r^T D_i v
    cheap = np.linalg.norm(G, axis=1)
    best = 0.0
    for i in np.argsort(cheap)[::-1]:
        if cheap[i] <= best:
            break
        A = Xr.T * sgn[i][None, :]  # (r, n): columns (2D-I)_jj x_j
        for sign in (1.0, -1.0):
            g = sign * G[i]
            try:
                mu, _ = nnls(A, -g, maxiter=50 * n)
            except RuntimeError:  # pragma: no cover - iteration limit: mu = 0 is feasible
                mu = np.zeros(n)
            # residual recomputed from the feasible mu (>= 0): never below the cell maximum
            val = float(np.linalg.norm(g + A @ np.maximum(mu, 0.0)))
            best = max(best, min(val, cheap[i]))
    return best + dropped * float(np.linalg.norm(v)), P


# ------------------------------------------------------------------------ dispatcher
def relu_constraint(
    V: np.ndarray,
    X: np.ndarray,
    *,
    depth: int = 2,
    constraint: Literal["auto", "exact", "bound"] = "auto",
    max_patterns: int = DEFAULT_MAX_PATTERNS,
) -> ConstraintValue:
    r"""Dual constraint value :math:`c(V)` of depth-``depth`` ReLU networks without biases.

    Parameters
    ----------
    V : array of shape (n,) or (n, K)
    X : array of shape (n, d)
    depth : int >= 2
    constraint : {"auto", "exact", "bound"}
        ``"auto"`` uses the exact value where one is known (whitened, rank-one, small
        rank at depth 2) and otherwise the smallest proven bound (spectral norm; on whitened
        data with :math:`K > 1` also :func:`c_nonneg_orthant`); ``"exact"`` raises
        ``ValueError`` when no exact method applies; ``"bound"`` always uses the
        spectral-norm bound.
    max_patterns : int
        Largest region-count bound for which cells are enumerated.

    Returns
    -------
    ConstraintValue
        ``value`` is :math:`c(V)` (``exact``) or a proven upper bound on it; ``method``
        names the case, e.g. ``"exact: whitened"``, ``"exact: cell enumeration (37 patterns)"``,
        ``"upper bound: spectral norm"``.
    """
    if constraint not in CONSTRAINT_MODES:
        raise ValueError(f"`constraint` must be one of {', '.join(map(repr, CONSTRAINT_MODES))}; got {constraint!r}")
    n = X.shape[0]
    V = np.asarray(V, dtype=float).reshape(n, -1)
    K = V.shape[1]
    spec = c_spectral_bound(V, X)
    bound = ConstraintValue(spec, False, "upper bound: spectral norm")
    if constraint == "bound":
        return bound
    if not np.any(V) or not np.any(X):
        return ConstraintValue(0.0, True, "exact: zero")
    # rank one (any signs of the left factor)
    r1 = rank_one_factors(X, require_sign=False)
    if r1 is not None:
        s = np.linalg.svd(X, compute_uv=False)
        a, b_norm = r1.c, float(np.linalg.norm(r1.a0))
        val, exact = c_rank_one(V, a, b_norm, depth=depth)
        # singular values below the rank-one tolerance: ReLU is 1-Lipschitz, so they
        # change <V, f(X)> by at most ||V||_F s_2 per unit path budget (any depth)
        val += (float(s[1]) if s.size > 1 else 0.0) * float(np.linalg.norm(V))
        if exact or constraint == "auto":
            how = "exact: rank one" if exact else "upper bound: rank one (mixed signs, deep)"
            if not exact and spec < val:
                return bound
            return ConstraintValue(val, exact, how)
    if is_whitened(X):
        if K == 1:
            return ConstraintValue(c_whitened(V[:, 0], X), True, "exact: whitened")
        if disjoint_columns(V):
            # columns with disjoint supports: blocks of z = (Xu)_+ are independent on
            # whitened data, so max ||V^T z|| = max_k c0(v_k) (any depth)
            val = _spectral_norm(X) * max(sign_part_norm(V[:, k]) for k in range(K))
            return ConstraintValue(val, True, "exact: whitened, disjoint output supports")
        # c(V) = ||X||_2 max_{z >= 0, ||z|| <= 1} ||V^T z|| (any depth): Perron bound on (V V^T)_+
        orth = c_nonneg_orthant(V)
        val = _spectral_norm(X) * orth.value
        if orth.exact:
            return ConstraintValue(val, True, "exact: whitened, " + orth.method[len("exact: "):],
                                   details=orth.details)
        if val < spec:
            spec = val
            bound = ConstraintValue(val, False, "upper bound: whitened, " + orth.method[len("upper bound: "):],
                                    details=orth.details)
        if constraint == "auto":
            # per-output cell enumeration would only reproduce sqrt(sum_k c0(v_k)^2), already in spec
            return bound
    if depth == 2:
        try:
            if K == 1:
                val, P = c_enumerate(V[:, 0], X, max_patterns=max_patterns)
                # the minimum of two upper bounds is one (enumeration never exceeds the
                # spectral bound except by rounding)
                return ConstraintValue(min(val, spec), True,
                                       f"exact: cell enumeration ({P} patterns)", n_patterns=P)
            if constraint == "exact":
                # per-output enumeration only bounds c(V) from above when K > 1
                raise ValueError("constraint='exact': no exact dual constraint is known for vector "
                                 f"outputs (K={K}) on this data at depth 2; exact values exist for "
                                 "rank-one data and for whitened data with disjoint or class-constant "
                                 "dual rows; use constraint='auto' or 'bound'")
            per, P = [], 0
            for k in range(K):
                val, P = c_enumerate(V[:, k], X, max_patterns=max_patterns)
                per.append(val)
            val = float(np.linalg.norm(per))
            if val < spec:
                return ConstraintValue(val, False, f"upper bound: per-output cell enumeration ({P} patterns)",
                                       n_patterns=P)
            return bound
        except ValueError:
            if constraint == "exact":
                raise
    if constraint == "exact":
        raise ValueError(
            "constraint='exact': no exact dual constraint is known for this case (depth "
            f"{depth}, K={K}); exact values exist for whitened or rank-one data, and at depth 2 "
            "for scalar outputs on data of small rank; use constraint='auto' or 'bound'"
        )
    return bound


# ------------------------------------------------------------------------ reduced problems
def label_parts(Y: np.ndarray) -> np.ndarray | None:
    r"""Norms :math:`\|(\pm y_k)_+\|` of the sign parts of the columns of ``Y`` when every
    row of ``Y`` has at most one non-zero entry (scalar outputs, one-hot labels);
    ``None`` otherwise."""
    Y = np.asarray(Y, dtype=float).reshape(Y.shape[0], -1)
    if not disjoint_columns(Y):
        return None
    parts = np.concatenate([np.linalg.norm(np.maximum(Y, 0.0), axis=0),
                            np.linalg.norm(np.maximum(-Y, 0.0), axis=0)])
    return parts[parts > 0]


def water_filling(parts: np.ndarray, T: float) -> tuple[float, float]:
    r"""``(G(T), r)`` for :math:`G(T) = \min\{\tfrac12\sum_k(\sigma_k - \tau_k)^2 : \tau\ge0, \sum_k\tau_k\le T\}`.

    The minimizer is :math:`\tau_k = (\sigma_k - r)_+` with the *water level*
    :math:`r \ge 0` solving :math:`\sum_k(\sigma_k - r)_+ = T` (``r = 0`` once
    :math:`T \ge \sum_k\sigma_k`), so :math:`G(T) = \tfrac12\sum_k\min(\sigma_k, r)^2`.  :math:`G`
    is convex with :math:`G'(T) = -r`.
    """
    s = np.sort(np.asarray(parts, dtype=float).ravel())[::-1]
    s = s[s > 0]
    if s.size == 0 or T >= s.sum():
        return 0.0, 0.0
    T = max(float(T), 0.0)
    cs = np.cumsum(s)
    nxt = np.append(s[1:], 0.0)
    for k in range(s.size):
        r = (cs[k] - T) / (k + 1)
        if r >= nxt[k]:
            break
    r = max(r, 0.0)
    return 0.5 * float(np.sum(np.minimum(s, r) ** 2)), float(r)


@dataclass
class ReducedResult:
    """Global minimizer ``x`` of a reduced problem, its ``value`` and a proven ``lower`` bound."""

    x: float
    value: float
    lower: float
    iterations: int = 0


def _interval_lower(a: float, b: float, ga: float, da: float, gb: float, db: float, lam: float, p: float) -> float:
    r"""Lower bound of :math:`g(x) + \lambda x^p` on :math:`[a, b]`: the tangents of the convex
    :math:`g` at ``a`` and ``b`` bound it from below and the chord bounds the concave
    :math:`\lambda x^p` from below; the minimum of that convex piecewise-linear minorant is
    at ``a``, ``b`` or the crossing of the two tangents."""
    pa, pb = lam * a**p, lam * b**p
    w = b - a
    slope = (pb - pa) / w if w > 0 else 0.0

    def minorant(x: float) -> float:
        return max(ga + da * (x - a), gb + db * (x - b)) + pa + slope * (x - a)

    cands = [a, b]
    if db != da:
        x = (gb - db * b - ga + da * a) / (da - db)
        if a < x < b:
            cands.append(x)
    lo = min(minorant(x) for x in cands)
    # floating-point slack: each term above is computed to a few ulps of its magnitude
    scale = abs(ga) + abs(gb) + (abs(da) + abs(db)) * w + pa + pb
    return lo - 16 * _EPS * scale


def minimize_convex_plus_power(
    g: Callable[[float], tuple[float, float]],
    lam: float,
    p: float,
    T_max: float,
    *,
    hints: tuple[float, ...] = (),
    rtol: float = 1e-13,
    max_iter: int = 20_000,
) -> ReducedResult:
    r"""Global minimum of :math:`h(x) = g(x) + \lambda x^p` on :math:`[0, T_{\max}]` with a proven lower bound.

    ``g`` is convex and returns ``(value, subgradient)``; :math:`0 < p \le 1`, so the
    penalty is concave and :math:`h` may have several local minima.  Branch and bound:
    on each interval the tangents of :math:`g` at its ends and the chord of the penalty
    give a convex piecewise-linear minorant whose minimum is a lower bound
    (:func:`_interval_lower`); the interval with the smallest bound is split until the
    best value found is within ``rtol`` (relative to :math:`\max(|h^\star|, h(0))`) of the
    smallest bound.  The returned ``lower`` is that smallest bound (valid even if
    ``max_iter`` stops the search early).
    """
    T_max = float(T_max)
    g0, d0 = g(0.0)
    best_x, best_v = 0.0, g0
    if not T_max > 0:
        return ReducedResult(0.0, g0, g0)
    pts = np.unique(np.concatenate([
        [0.0, T_max], T_max * np.linspace(0, 1, 17), T_max * np.logspace(-8, 0, 17),
        np.clip(np.asarray(hints, dtype=float), 0.0, T_max),
    ]))
    vals = [g(float(x)) for x in pts]
    for x, (gv, _) in zip(pts, vals):
        hv = gv + lam * x**p
        if hv < best_v:
            best_x, best_v = float(x), hv
    heap: list[tuple[float, float, float, float, float, float, float]] = []
    for i in range(len(pts) - 1):
        a, b = float(pts[i]), float(pts[i + 1])
        (ga, da), (gb, db) = vals[i], vals[i + 1]
        heapq.heappush(heap, (_interval_lower(a, b, ga, da, gb, db, lam, p), a, b, ga, da, gb, db))
    scale = max(abs(g0), np.finfo(float).tiny)
    it = 0
    lower = heap[0][0]
    while heap and it < max_iter:
        lb, a, b, ga, da, gb, db = heapq.heappop(heap)
        lower = lb
        if best_v - lb <= rtol * max(abs(best_v), scale) or b - a <= 4 * _EPS * max(b, 1e-300):
            break
        it += 1
        m = 0.5 * (a + b)
        gm, dm = g(m)
        hm = gm + lam * m**p
        if hm < best_v:
            best_x, best_v = m, hm
        heapq.heappush(heap, (_interval_lower(a, m, ga, da, gm, dm, lam, p), a, m, ga, da, gm, dm))
        heapq.heappush(heap, (_interval_lower(m, b, gm, dm, gb, db, lam, p), m, b, gm, dm, gb, db))
    else:
        if heap:
            lower = heap[0][0]
    if heap:
        lower = min(lower, heap[0][0])
    return ReducedResult(best_x, float(best_v), float(min(lower, best_v)), it)


def relaxed_squared_bound(parts: np.ndarray, lam: float, p: float, *, const: float = 0.0) -> ReducedResult:
    r"""Global minimum of :math:`W(T) + \lambda T^p` over :math:`T \ge 0` (plus ``const``) with
    :math:`W` the water-filling function of ``parts`` (:func:`water_filling`).

    For :math:`p = 1` this is :math:`\sum_k H_\lambda(\sigma_k)` in closed form, with the Huber
    function :math:`H_\lambda(t) = t^2/2` for :math:`t\le\lambda`, :math:`\lambda t - \lambda^2/2`
    otherwise; for one part it is :func:`deepdual.bounds.power_prox`; otherwise branch
    and bound (:func:`minimize_convex_plus_power`).  ``x`` is the optimal total
    :math:`T`.
    """
    parts = np.asarray(parts, dtype=float).ravel()
    parts = parts[parts > 0]
    if parts.size == 0:
        return ReducedResult(0.0, const, const)
    if p == 1.0:
        h = np.where(parts <= lam, 0.5 * parts**2, lam * parts - 0.5 * lam**2)
        v = const + float(np.sum(h))
        return ReducedResult(float(np.sum(np.maximum(parts - lam, 0.0))), v, v)
    if parts.size == 1:
        pp = power_prox(float(parts[0]), lam, p)
        return ReducedResult(pp.sigma, const + pp.value, const + pp.lower)

    def g(T: float) -> tuple[float, float]:
        val, r = water_filling(parts, T)
        return val, -r

    # hints: each part's own optimum, and the sum of all of them
    hints = tuple(power_prox(float(s), lam, p).sigma for s in parts)
    res = minimize_convex_plus_power(g, lam, p, float(parts.sum()), hints=hints + (sum(hints),))
    return ReducedResult(res.x, const + res.value, const + res.lower, res.iterations)
