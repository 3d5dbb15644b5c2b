r"""Global training of two-layer ReLU networks on arbitrary data by a convex program
(docs/theory.md §2.8; Pilanci & Ergen, ICML 2020).  The derivations are in
``docs/convex_program.md``.

The problem
-----------
For a two-layer ReLU network :math:`f(X) = \sum_j (Xu_j)_+\alpha_j^T` the objective
:math:`\ell(f(X), Y) + \frac\beta2\sum_j(\|u_j\|^2 + \|\alpha_j\|^2)` equals, after the
rescaling :math:`u_j \to u_j/\gamma_j,\ \alpha_j \to \gamma_j\alpha_j` that balances each
neuron, :math:`\ell(f(X)) + \beta\sum_j\|u_j\|\,\|\alpha_j\|`.  With the activation
patterns :math:`D_i = \operatorname{diag}(1[Xg_i \ge 0])` (:mod:`deepdual.patterns`) and
scalar output it equals the convex program

.. math::

    \min_{v_i, w_i}\ \ell\Big(\sum_i D_i X(v_i - w_i)\Big) + \beta\sum_i(\|v_i\| + \|w_i\|)
    \quad\text{s.t.}\quad (2D_i - I)Xv_i \ge 0,\ (2D_i - I)Xw_i \ge 0,

when the patterns are *all* patterns of :math:`X` (a superset is harmless).  With a
sampled subset it is the same problem restricted to networks whose neurons have those
patterns: its optimum is then only an upper bound on the global one.

Vector output (:math:`K > 1`): one group per pattern, sign *and output*,
:math:`\beta\sum_{i,k}(\|v_{ik}\| + \|w_{ik}\|)`.  That is the exact convex form of the
problem with the penalty :math:`\beta\sum_j\|u_j\|\,\|\alpha_j\|_1` (each neuron feeds
one output).  Its networks are feasible for weight decay with a smaller or equal
objective (:math:`\|\alpha_j\|_2 \le \|\alpha_j\|_1`, and neurons sharing a direction are
merged): an upper bound.  The exact weight-decay program for :math:`K > 1` involves a
cone-constrained nuclear norm (Sahiner et al., 2021) with no tractable form.  The
network is then polished by L-BFGS on the weight-decay objective (kept only if better).
The lower bound stays proven: over a complete pattern set, the dual constraint
:math:`\max_{\|u\|\le1}\|\Lambda^T(Xu)_+\|` is bounded cell by cell
(:func:`vector_cell_bound`), for the network's residual and for the residual of the
gated relaxation :math:`\min\ell(\sum_iD_iXW_i) + \beta\sum_i\|W_i\|_*`
(:func:`gated_relaxation_dual`), whichever bound is higher; so ``certified`` stays
honest (and is rarely True for vector outputs).

Algorithm
---------
*Working set* (column generation).  The program is solved over a small set of
patterns; the dual point :math:`v = -\nabla\ell(F)` of that solution is then checked
against every pattern with the exact value (conic duality, Moreau)

.. math::

    c_{i,s}(v) = \max_{u\in K_i,\|u\|\le1} s\,v^TD_iXu
               = \min_{\mu\ge0}\|X^T(s D_iv + (2D_i - I)\mu)\|

(an NNLS, ``scipy.optimize.nnls``; any :math:`\mu\ge0` gives an upper bound).  Patterns
with :math:`c_{i,s}(v) > \beta` violate the optimality conditions of their zero groups
and join the set.

*Inner solver.*  For the squared loss, when all patterns fit a dense Newton system, a
primal–dual interior-point method (Mehrotra predictor–corrector with Nesterov–Todd
scaling, :mod:`deepdual.relu.convex_program.conic_ipm`; 20–60 iterations) with an active-set
polish of its last iterate; its iterates are strictly feasible.  Otherwise, for
moderate sizes, a primal log-barrier (interior-point) method on

.. math::

    \min\ \tau\Big(\ell(F) + \beta\sum_g t_g\Big) - \sum_g\sum_j\log\big((2D_g - I)Xz_g\big)_j
         - \sum_g\log(t_g^2 - \|z_g\|^2),

Newton's method with a feasible line search and :math:`\tau \leftarrow 4\tau`.  Its
iterates are strictly feasible, so the rebuilt network has exactly the convex
objective, and at central points :math:`v = -\nabla\ell(F)` satisfies the constraints of
the working set (barrier stationarity), so the duality gap goes to zero with
:math:`m/\tau`.  For large problems (or losses without a Hessian) an augmented
Lagrangian on the cone constraints with FISTA subproblems (Mishkin et al., 2022)
is used instead; it is accurate to a moderate gap.  It also stops as soon as the
rebuilt network's own objective is within ``tol`` of the program's lower bound (hence
at most the program's optimum plus ``tol``): on sampled pattern sets its infeasible
iterates often give networks below the sampled program's optimum.

*Stopping rule*: the duality gap.  With :math:`c(v) = \max_{i,s}c_{i,s}(v)` the scaled
point :math:`tv,\ t \le \beta/c(v)` is dual feasible and :math:`D(tv) = -\ell^*(-tv)` is
a lower bound (:meth:`Loss.best_scale`); the solver stops when
:math:`P - D \le \text{tol}\cdot|P|` for the pattern set in use.

The reported ``lower_bound`` is for the problem over *all* networks: it uses the exact
:math:`c(v)` when the pattern set is complete (exact enumeration), otherwise the exact
value from a separate enumeration when that is affordable, otherwise the proven bound
:math:`c(v) \le \max(\|X_{S_+}\|_2\|v_+\|, \|X_{S_-}\|_2\|v_-\|)` (:math:`S_\pm` the
supports of :math:`v_\pm`) — never a sampled estimate.

Modules
-------
This module is the entry point (:func:`solve_convex`: options, pattern choice, the
rebuilt network, its certificate and ``info``) and re-exports the names below; the
mathematics lives in sibling modules:

* :mod:`~deepdual.relu.convex_program.groups`: the program's variables over a working
  set (:class:`Groups`) and the loss-Hessian helpers (``docs/convex_program.md`` §2, §6);
* :mod:`~deepdual.relu.convex_program.certificate`: the dual constraint (NNLS cell values,
  spectral and vector-output cell bounds, gated relaxation) and the proven lower bound
  (§4-5);
* :mod:`~deepdual.relu.convex_program.barrier`: the primal log-barrier method (§6);
* :mod:`~deepdual.relu.convex_program.augmented_lagrangian`: the augmented Lagrangian with FISTA (§6);
* :mod:`~deepdual.relu.convex_program.working_set`: the primal–dual interior-point wrapper
  and the working-set driver with the duality-gap stopping rule (§6);
* :mod:`~deepdual.relu.convex_program.rebuild`: network from the solution, neuron pruning
  (Carathéodory) and the L-BFGS polish (§2, §5-6).
* :mod:`~deepdual.relu.convex_program.scaling`: the exact power-of-two rescaling that
  makes the result independent of the data's units (§9).

References
----------
M. Pilanci and T. Ergen, "Neural networks are convex regularizers: exact
polynomial-time convex optimization formulations for two-layer networks", ICML 2020.
A. Mishkin, A. Sahiner and M. Pilanci, "Fast convex optimization for two-layer ReLU
networks: equivalent model classes and cone decompositions", ICML 2022.
A. Sahiner, T. Ergen, J. Pauly and M. Pilanci, "Vector-output ReLU neural network
problems are copositive programs", ICLR 2021.
S. Boyd and L. Vandenberghe, *Convex Optimization*, 2004, ch. 11 (barrier method).
L. Vandenberghe, "The CVXOPT linear and quadratic cone program solvers", 2010.
A. Beck and M. Teboulle, "A fast iterative shrinkage-thresholding algorithm", SIAM J.
Imaging Sci. 2 (2009).
"""

from __future__ import annotations

import numbers
import time
from contextlib import nullcontext
from typing import Any

import numpy as np

from ..._threads import SingleThreadedBLAS as _SingleThreadedBLAS
from ..._validation import check_options, check_positive
from ...blocks import ScaledDesign, memory_budget, relu_layer_output
from ...dual_constraint import label_parts, relaxed_squared_bound, spectral_norm_bound
from ...losses import HingeLoss, Loss, SquaredLoss
from ...objective import objective
from ...patterns import (RowSpace, count_upper_bound, enumerate_patterns, first_unique_nonzero, format_count,
                         row_space, sample_patterns, unique_patterns)
from ...progress import current as current_monitor, monitoring
from ...solution import Solution
from .groups import Groups, has_hessian
from .certificate import complete_set, global_constraint, gated_relaxation_dual, spectral_norm_upper
from .first_order import FO_MIN_WORK, check_memory, program_memory, solve_first_order, solve_projected
from .gram_ipm import GRAM_MAX_UNKNOWNS, GramState, gram_memory, solve_gram
from .working_set import IPM_MAX_COST, IPM_SMALL_COST, WorkingSetResult, ipm_cost, pd_all, solve_working_set
from .rebuild import network_from_atoms, polish_network, prune_neurons, refine_network
from .scaling import check_scaled_problem, scale_exponents
from .column_generation import column_generation
from .oracle import dual_constraint_bb

#: seconds of the branch-and-bound oracle for the global lower bound on sampled pattern sets
ORACLE_TIME = 2.0
#: bytes per sample the oracle holds at its peak (merged rows, per-row intervals and dual
#: values, L-BFGS-B history, NNLS matrices): 1.4-1.6 kB measured at n = 1e4-1e5, d = 10-50
#: (docs/performance.md §8); it runs only when that fits ``blocks.memory_budget``
ORACLE_BYTES_PER_ROW = 1700
#: ... but at rank <= ORACLE_LOW_RANK it may hold ORACLE_LOW_RANK_SLACK more than the budget:
#: there its 2 s change the bound materially (n = 3000 planted data, beta = 1: rank 3
#: 0.58 -> 108.3 against objective 135.2, rank 4 0.59 -> 2.29; rank 6, 8, 10: 0.54 -> 0.66,
#: 0.533 -> 0.547, none), and such data are small (docs/performance.md §8)
ORACLE_LOW_RANK = 5
ORACLE_LOW_RANK_SLACK = 32 * 2**20
#: ``solver="auto"`` keeps the interior-point methods (accurate sampled programs) while their
#: estimated memory is below this, even above ``blocks.memory_budget``, on small data sets
#: (at most ``IPM_FLOOR_MAX_SAMPLES`` samples; see :func:`ipm_allowance`)
IPM_MEMORY_FLOOR = 2**27
#: ... "small": at most this many samples.  There the absolute memory is small and the
#: interior-point methods' exact sampled optimum is worth it; above it (issue 15's sizes,
#: n >= 1e4) ``solver="auto"`` keeps the 3x target of ``blocks.memory_budget`` strictly
#: (docs/performance.md §8)
IPM_FLOOR_MAX_SAMPLES = 5000


def ipm_allowance(n: int, d: int, n_patterns: int) -> int:
    r"""Bytes the interior-point methods (primal-dual, barrier, Gram-reduced) may hold when
    ``solver="auto"`` chooses them: ``blocks.memory_budget(n, d, P)`` (3x X plus the masks),
    raised to :data:`IPM_MEMORY_FLOOR` (128 MiB) only when :math:`n \le`
    :data:`IPM_FLOOR_MAX_SAMPLES`.  An explicit ``solver=`` is not limited by it."""
    budget = memory_budget(n, d, n_patterns)
    return max(budget, IPM_MEMORY_FLOOR) if n <= IPM_FLOOR_MAX_SAMPLES else budget


def gram_path_memory(n: int, d: int, r: int, n_patterns: int, implicit: bool = False) -> int:
    r"""Estimated peak bytes of a ``solve`` that takes the Gram method, above the caller's
    data: the masks (:math:`nP`) and the method's own working memory
    (:func:`~deepdual.relu.convex_program.gram_ipm.gram_memory`: two :math:`(Pr)^2`
    matrices, update blocks, vectors of length n), and, unless ``implicit``, the scaled copy
    of X with the bias column (:math:`8n(d+1)`) and X in row-space coordinates
    (:math:`8nr`).  ``implicit``: at full column rank the method reads the implicit design
    :class:`~deepdual.blocks.ScaledDesign` (:math:`V = I`) and neither copy is formed
    (docs/convex_program.md §10b; n = 5·10⁴, d = 10, 100 patterns: the method's traced
    peak 21.3 MB above its entry against ``gram_memory``'s 36.6 MB; the whole call 27.1 MB
    against this estimate's 41.6 MB)."""
    copies = 0 if implicit else 8 * n * (d + 1) + 8 * n * r
    return int(copies + n * n_patterns + gram_memory(n, r, n_patterns))


def first_order_by_size(n: int, d: int, r: int, n_patterns: int, K: int, loss: Loss,
                        polish: bool = True) -> bool:
    r"""Whether ``solver="auto"`` takes the first-order method for a sampled program of this
    size (before the Gram method's own check): :math:`nPr \ge` ``FO_MIN_WORK``, or the
    interior-point methods' estimated memory above :func:`ipm_allowance` (their (n, P, r)
    arrays; docs/performance.md §8: n = 1e4, d = 10, 100 patterns: 773 MB resident with the
    IPM), or (:func:`first_order_for_polish`) the local polish follows and the
    interior-point methods would hand the program to the augmented Lagrangian.  Also used
    by the estimators to leave the iteration budget to this method's default."""
    ipm_bytes = program_memory("pd" if isinstance(loss, SquaredLoss) else "barrier", n, d, r, n_patterns, K)
    return (n * n_patterns * r >= FO_MIN_WORK or ipm_bytes > ipm_allowance(n, d, n_patterns)
            or (polish and first_order_for_polish(n, r, n_patterns, K, loss)))


def first_order_for_polish(n: int, r: int, n_patterns: int, K: int, loss: Loss) -> bool:
    r"""Whether a sampled program that the local polish follows goes to the first-order
    method (100 steps) rather than to the working-set augmented Lagrangian: scalar output,
    rank :math:`r >` :data:`GRAM_AUTO_MAX_RANK`, and neither interior-point method takes
    it (the primal-dual method's dense Newton system, ``working_set.pd_all``, for the squared
    loss; the barrier method while a Newton step costs at most ``IPM_SMALL_COST``) — the
    programs where ``"auto"`` took the augmented Lagrangian before.

    Measured (docs/performance.md §8, "Default method at n = 10³–5·10³"): there the
    network after the polish is set by the polish, not by the program's accuracy, and an
    early first-order iterate polishes as well as the (near-)exact optimum or better
    (docs/convex_program.md §10c); n = 10³, d = 50, 100 sampled patterns: 10.0 s,
    objective 57.999, against 84.9 s, 58.066 by the augmented Lagrangian."""
    if K != 1 or r <= GRAM_AUTO_MAX_RANK:
        return False
    if isinstance(loss, SquaredLoss) and pd_all(n_patterns, r, n, K):
        return False
    return not (has_hessian(loss) and ipm_cost(2 * K * min(n_patterns, n + 1), r, n, K) <= IPM_SMALL_COST)


def oracle_fits(n: int, da: int, n_patterns: int, rank: int) -> bool:
    r"""Whether the branch-and-bound oracle (:func:`~deepdual.relu.convex_program.oracle.dual_constraint_bb`)
    may run after a solve on ``n`` samples of ``da`` columns with ``n_patterns`` masks: its
    ~``ORACLE_BYTES_PER_ROW`` bytes per sample, beside the data and the masks, within
    ``blocks.memory_budget`` (plus ``ORACLE_LOW_RANK_SLACK`` at rank <= ``ORACLE_LOW_RANK``;
    docs/performance.md §8)."""
    allowed = memory_budget(n, da, n_patterns) + (ORACLE_LOW_RANK_SLACK if rank <= ORACLE_LOW_RANK else 0)
    return ORACLE_BYTES_PER_ROW * n + 8 * n * da + n * n_patterns <= allowed


def oracle_skipped(n: int) -> str:
    """The phrase ``info["dual_constraint_how"]`` gets when :func:`oracle_fits` is false."""
    return (f"; branch and bound skipped (it needs ~{ORACLE_BYTES_PER_ROW * n / 2**20:.0f} MiB, "
            "above the memory budget)")


def oracle_tightened(Xa: Any, v: np.ndarray, c: float, time_limit: float) -> tuple[float, bool, str] | None:
    r"""The branch-and-bound oracle's proven upper bound on :math:`c(v) = \max_{\|u\|\le1}|v^T(X_au)_+|`
    when it is below ``c`` (a proven bound already in hand): ``(bound, exact, how)``, else
    ``None`` (docs/convex_program.md §11).  Used after the solve and by the estimators' lazy
    certificate (``deepdual.estimators.tightened_certificate``), so both read the same."""
    ob = dual_constraint_bb(np.asarray(Xa), v, time_limit=float(time_limit), rtol=1e-9)
    if not ob.upper < c:
        return None
    how = ("exact" if ob.exact else "upper bound") + \
        f": branch and bound over row signs ({ob.nodes} nodes{'' if ob.exact else ', time limit'})"
    return float(ob.upper), bool(ob.exact), how


def relaxed_label_dual(Xa: Any, Y: np.ndarray, beta: float) -> tuple[float, np.ndarray, float, str]:
    r"""``certify``'s relaxed reduced problem at depth 2, squared loss: ``(lower, V, c, how)``,
    ``c`` a proven upper bound on :math:`c(V)`.

    With :math:`\hat x \ge \|X_a\|_2` (:func:`spectral_norm_upper`, proven) and
    :math:`\lambda = \beta/\hat x`, the dual point built from the labels alone,
    :math:`V = \sum_k \min(1, \lambda/\sigma_k)\,Y_k` over the label parts
    :math:`Y_k = (\pm y_j)_+` (disjoint rows, :func:`deepdual.dual_constraint.label_parts`), or
    :math:`V = U\min(\Sigma, \lambda)W^T` from the SVD :math:`Y = U\Sigma W^T` otherwise, has
    :math:`c(V) \le \hat x\max_k\min(\sigma_k, \lambda) \le \beta` and dual value
    :math:`\sum_kH_\lambda(\sigma_k)` (Huber; :func:`deepdual.dual_constraint.relaxed_squared_bound`
    with :math:`p = 1`): a proven weak-duality lower bound over all two-layer networks, the
    one :func:`deepdual.certify` reports as "relaxed reduced problem"
    (docs/convex_program.md §4).  Scalar output: each of the (at most two) parts is scaled
    against its own rows, :math:`\lambda_k = \beta/\|X_{S_k}\|_2` (proven bounds), since
    :math:`|v^T(Xu)_+| \le \max_k\|v_k\|\,\|X_{S_k}\|_2`: never below the common :math:`\lambda`.  It needs only one Gram matrix of :math:`X_a`, and beats the
    network residual's bound when the spectral bound on :math:`c` of the residual is loose.
    """
    if Y.shape[1] == 1 and label_parts(Y) is not None:
        # scalar output: each sign part k scaled against the norm of its own rows,
        # lambda_k = beta / ||X_{S_k}||_2, since |v^T(Xu)_+| <= max_k ||v_k|| ||X_{S_k}||_2
        # (the two terms have opposite signs; docs/theory.md §2.8): never below the common lambda
        V = np.zeros_like(Y)
        lower, c = 0.0, 0.0
        for sign in (1.0, -1.0):
            P = np.maximum(sign * Y[:, 0], 0.0)
            if not np.any(P > 0):
                continue
            x_k = float(spectral_norm_bound(Xa, P > 0))
            if not (np.isfinite(x_k) and x_k > 0):
                return -np.inf, np.zeros_like(Y), 0.0, "none"
            sig, lam_k = float(np.linalg.norm(P)), beta / x_k
            V[:, 0] += sign * P * min(1.0, lam_k / sig)
            lower += relaxed_squared_bound(np.array([sig]), lam_k, 1.0).lower
            c = max(c, x_k * min(sig, lam_k))
        return float(lower), V, c, ("upper bound: max_k ||X_{S_k}||_2 ||V_k|| over the label parts "
                                    "(relaxed reduced problem, sign supports)")
    x_up = float(spectral_norm_upper(Xa))
    if not (np.isfinite(x_up) and x_up > 0):
        return -np.inf, np.zeros_like(Y), 0.0, "none"
    lam = beta / x_up
    parts = label_parts(Y)
    if parts is not None:
        V = np.zeros_like(Y)
        for sign in (1.0, -1.0):
            P = np.maximum(sign * Y, 0.0)
            norms = np.linalg.norm(P, axis=0)
            scale = np.minimum(1.0, lam / np.where(norms > 0, norms, 1.0))
            V += sign * P * scale
        kind = "label parts"
    else:
        U, parts, Wt = np.linalg.svd(Y, full_matrices=False)
        V = (U * np.minimum(parts, lam)) @ Wt
        kind = "singular values of Y"
    c = x_up * float(np.max(np.minimum(parts, lam), initial=0.0))
    lower = relaxed_squared_bound(parts, lam, 1.0).lower
    return float(lower), V, c, f"upper bound: ||X||_2 max_k ||V_k|| over {kind} (relaxed reduced problem)"


def gram_fits(n: int, d: int, r: int, n_patterns: int, implicit: bool = False) -> bool:
    """Whether a solve by the Gram method on ``n_patterns`` patterns of rank ``r``
    (:func:`gram_path_memory`, ``implicit`` at full column rank) fits :func:`ipm_allowance`:
    the 3x memory budget of issue 15 above :data:`IPM_FLOOR_MAX_SAMPLES` samples, at least
    :data:`IPM_MEMORY_FLOOR` below."""
    return gram_path_memory(n, d, r, n_patterns, implicit) <= ipm_allowance(n, d, n_patterns)

# names defined in the sibling modules, importable from here (the public API, the helpers
# tests/test_relu_convex.py and benchmarks/bench_convex.py import, and the inner solvers)
from .groups import (  # noqa: F401
    EPS, interior_direction, loss_curvature, loss_hessian_factor, loss_hessian_times,
)
from .certificate import (  # noqa: F401
    spectral_norm_upper, cell_spectral_values, cone_value, pattern_values, support_spectral_bound,
    vector_cell_bound,
)
from .barrier import GroupBarrier, block_cholesky, soc_slack  # noqa: F401
from .augmented_lagrangian import (  # noqa: F401
    AL_INNER_BUDGET, AL_INNER_TOL_FACTOR, AL_RHO_GROWTH, AugmentedLagrangian, network_close,
)
from .working_set import (  # noqa: F401
    IPM_ALL_PATTERNS_FACTOR, IPM_MAX_BARRIER, PD_DENSE_MAX, PD_MAX_COST, PrimalDual, pd_size,
)

__all__ = [
    "solve_convex",
    "cone_value",
    "pattern_values",
    "support_spectral_bound",
    "vector_cell_bound",
    "cell_spectral_values",
    "gated_relaxation_dual",
    "polish_network",
    "network_from_atoms",
    "prune_neurons",
    "CONVEX_OPTIONS",
]

CONVEX_OPTIONS = (
    "patterns", "n_patterns", "max_patterns", "certify_max_patterns", "rng", "random_state", "solver", "max_iter",
    "tol", "progress", "polish", "strategy", "time_limit", "oracle_time", "device", "init", "refine",
)
STRATEGIES = ("patterns", "column_generation")
#: ``solver="auto"`` takes the Gram-reduced method for sampled programs only up to this
#: rank: its exact sampled-program optimum is a slow start for the local polish at higher
#: rank (its neurons are large and partly cancel; n = 10^4, d = 20, 100 patterns: 12 341
#: after 500 polish iterations, 412.9 after 3 000, against 413.1 after 500 from the
#: first-order method's 100th iterate; docs/convex_program.md §10c, docs/performance.md §8),
#: so the first-order path stays the default there
GRAM_AUTO_MAX_RANK = 10
SOLVERS = ("auto", "ipm", "barrier", "al", "first_order", "gram")

#: number of sampled patterns when exact enumeration is too large
DEFAULT_N_PATTERNS = 100
#: exact enumeration is used when the region-count bound is at most this
DEFAULT_MAX_PATTERNS = 2000
#: sampled runs still get an exact dual constraint when the region-count bound is at most this
DEFAULT_CERTIFY_MAX_PATTERNS = 20000


# ============================================================================ public
def _choose_patterns(Xa: np.ndarray, rs: Any, option: Any, n_patterns: int, max_patterns: int,
                     rng: Any, K: int = 1) -> tuple[np.ndarray, np.ndarray | None, bool, str]:
    """``(patterns, interior directions in row-space coordinates or None, complete, how)``.

    ``"auto"`` enumerates when ``K`` times the region-count bound is at most
    ``max_patterns`` (the program has one group per pattern, sign and output)."""
    n = Xa.shape[0]
    bound = count_upper_bound(n, rs.rank) * K
    if isinstance(option, str):
        if option not in ("auto", "exact", "sample"):
            raise ValueError(f"`patterns` must be 'auto', 'exact', 'sample' or a boolean array (P, {n}); "
                             f"got {option!r}")
        if option == "exact" or (option == "auto" and bound <= max_patterns):
            pats, dirs = enumerate_patterns(np.asarray(Xa), return_directions=True)
            return pats, dirs @ rs.V, True, "exact enumeration"
        pats, dirs = sample_patterns(Xa, n_patterns, rng, return_directions=True, rs=rs)
        return pats, dirs @ rs.V, False, f"{n_patterns} sampled"
    dirs_in = None
    if isinstance(option, tuple):
        if len(option) != 2:
            raise ValueError("`patterns` as a tuple must be (patterns (P, n), directions (P, d))")
        option, dirs_in = option
        dirs_in = np.asarray(dirs_in, dtype=float)
        if dirs_in.ndim != 2 or dirs_in.shape[1] != Xa.shape[1] or not np.all(np.isfinite(dirs_in)):
            raise ValueError(f"`patterns` directions must be a finite array of shape (P, {Xa.shape[1]}), "
                             f"got shape {dirs_in.shape}")
    arr = np.asarray(option)
    if dirs_in is not None and len(dirs_in) != len(arr):
        raise ValueError(f"`patterns`: {len(arr)} patterns but {len(dirs_in)} directions")
    if arr.ndim != 2 or arr.shape[1] != n:
        raise ValueError(f"`patterns` must be a boolean array of shape (P, {n}), got shape {arr.shape}")
    if arr.dtype != bool:
        if not np.all((arr == 0) | (arr == 1)):
            raise ValueError("`patterns` must contain only booleans or 0/1")
        arr = arr.astype(bool)
    if dirs_in is not None:
        # unique non-zero patterns, each with its direction (checked to lie strictly
        # inside its cell by the solver, which falls back to an LP otherwise)
        # (indices on the packed bits: no copy of the masks; none at all when they are
        # already unique and non-zero, as the estimators pass them: a read-only view)
        first = np.sort(first_unique_nonzero(arr))
        if len(first) == len(arr):
            view = arr.view()
            view.flags.writeable = False
            return view, dirs_in @ rs.V, False, "user-supplied"
        return arr[first], dirs_in[first] @ rs.V, False, "user-supplied"
    return unique_patterns(arr), None, False, "user-supplied"


#: seed of sampled patterns when none is given: runs are reproducible by default
DEFAULT_SEED = 0


def pattern_seed(options: dict) -> tuple[Any, int | None]:
    """``(rng, seed)`` from the options ``rng`` or its alias ``random_state`` (None, an int
    seed or a ``numpy.random.Generator``); ``None`` means :data:`DEFAULT_SEED`, so two
    identical calls sample the same patterns.  ``seed`` is ``None`` for a Generator."""
    if options.get("rng") is not None and options.get("random_state") is not None:
        raise ValueError("give the seed of sampled patterns as `rng` or `random_state`, not both")
    rng = options.get("rng", options.get("random_state"))
    if rng is None:
        rng = options.get("random_state")
    if rng is None:
        return np.random.default_rng(DEFAULT_SEED), DEFAULT_SEED
    if isinstance(rng, (numbers.Integral, np.integer)) and not isinstance(rng, (bool, np.bool_)):
        if rng < 0:
            raise ValueError(f"`rng` (seed of sampled patterns) must be >= 0, got {rng}")
        return np.random.default_rng(int(rng)), int(rng)
    if isinstance(rng, np.random.Generator):
        return rng, None
    raise TypeError(f"`rng` (seed of sampled patterns) must be None, an int >= 0 or a numpy Generator, "
                    f"got {type(rng).__name__}")


def _pop_seed(options: dict) -> Any:
    """The pattern source of :func:`pattern_seed`, removing ``rng``/``random_state`` from ``options``."""
    rng = pattern_seed(options)[0]
    options.pop("rng", None)
    options.pop("random_state", None)
    return rng


#: default relative gap and iteration budget of the first-order solver (when ``tol`` /
#: ``max_iter`` are not given): on sampled pattern sets the program is an upper bound
#: anyway and the global bound is the spectral one (docs/convex_program.md §10).  100 steps:
#: the local polish does most of the work on large sampled sets, and an early iterate (small
#: neurons) is a *better* start for it than a later one or the exact sampled optimum, whose
#: neurons are large and partly cancel (docs/performance.md §8, n = 10^4, planted data:
#: d = 50: 100 steps + polish 447.5 in 43 s against 500 steps + polish 507.6 in 263 s;
#: d = 20: 413.1 in 30 s against 413.6 in 63 s)
FO_DEFAULT_TOL = 1e-4
FO_DEFAULT_MAX_ITER = 100
#: the numpy first-order method: "projected" (FISTA with the cone projections in the prox;
#: feasible iterates; fewer steps at n = 2000, but its early projections were not yet timed
#: at n >= 1e4, docs/performance.md §8) or "al" (the augmented Lagrangian, the default; the
#: torch backend always uses it)
FO_METHOD = "al"


def _run_first_order(rs: Any, Y: np.ndarray, pats: np.ndarray, loss: Loss, beta: float, tol: float,
                     max_iter: int | None, init: Any, device: Any) -> Any:
    """The first-order solver (:mod:`~deepdual.relu.convex_program.first_order`) on the
    row-space data, warm-started from ``init`` (a previous :class:`Solution` or its
    ``info["warm_start"]``), reporting to the progress monitor (bar, time limit)."""
    z0 = lam0 = rho0 = None
    if init is not None:
        state = init.info.get("warm_start") if isinstance(init, Solution) else init
        if not isinstance(state, dict) or "weights" not in state:
            raise ValueError("`init` must be a Solution of the first-order solver or its info['warm_start'] dict")
        W0 = np.asarray(state["weights"], dtype=float)
        if W0.shape != (2 * len(pats), rs.V.shape[0]) or not np.array_equal(state["patterns"], pats):
            raise ValueError(f"`init` was computed for other data or patterns: weights of shape {W0.shape}, "
                             f"expected ({2 * len(pats)}, {rs.V.shape[0]}) on the same patterns")
        z0, lam0, rho0 = W0 @ rs.V, state.get("multipliers"), state.get("rho")
        if isinstance(lam0, dict):  # a solve of the Gram method (its row sets): weights only
            lam0, rho0 = None, None
    mon = current_monitor()
    mon.stage("convex program (first_order)")
    # the monitor advances the bar to iteration `it`, shows the gap and returns True past
    # the time limit (the solver then stops with status "stopped")
    budget = FO_DEFAULT_MAX_ITER if max_iter is None else max_iter
    if device is None and FO_METHOD == "projected":
        # numpy: accelerated proximal gradient with the cone projections in the prox
        # (feasible iterates; docs/convex_program.md §10 measures it against the AL)
        res = solve_projected(rs.Xr, Y, pats, loss, beta, tol=tol, max_iter=budget, z0=z0, callback=mon,
                              stop_check=mon.expired)
    else:
        res = solve_first_order(rs.Xr, Y, pats, loss, beta, tol=tol, max_iter=budget, z0=z0,
                                multipliers=lam0, rho=rho0, device=device, callback=mon,
                                stop_check=mon.expired)
    if res.status == "stopped":
        mon.stop("convex program (first_order)")  # solve() reports info["status"] = "time_limit"
    return res


def _run_gram(rs: Any, Y: np.ndarray, pats: np.ndarray, dirs: np.ndarray | None, beta: float, tol: float,
              max_iter: int | None, init: Any) -> Any:
    """The Gram-reduced interior-point method (:mod:`~deepdual.relu.convex_program.gram_ipm`;
    squared loss, scalar output), warm-started from the row working sets of ``init`` (a
    previous :class:`Solution` of it on the same patterns, or its ``info["warm_start"]``), or
    with the incremental :class:`GramState` of column generation (docs/convex_program.md §13)."""
    rows0, gstate = None, None
    if isinstance(init, GramState):
        gstate, init = init, None
    if init is not None:
        state = init.info.get("warm_start") if isinstance(init, Solution) else init
        if not isinstance(state, dict) or "patterns" not in state:
            raise ValueError("`init` must be a Solution of the Gram-reduced solver or its info['warm_start'] dict")
        if not np.array_equal(state["patterns"], pats):
            raise ValueError("`init` was computed for other data or patterns")
        mult = state.get("multipliers")
        rows0 = mult.get("rows") if isinstance(mult, dict) else None
    mon = current_monitor()
    mon.stage("convex program (gram)")
    res = solve_gram(rs.Xr, Y, pats, beta, tol=tol, interior=dirs, max_iter=max_iter, rows0=rows0, state=gstate)
    if res.status == "stopped":
        mon.stop("convex program (gram)")
    return res


def _int_option(options: dict, name: str, default: int | None, minimum: int) -> int | None:
    val = options.get(name, default)
    if val is None:
        return None
    if isinstance(val, bool) or not isinstance(val, numbers.Integral) or val < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {val!r}")
    return int(val)


def scaled_data(X: np.ndarray, bias: bool, ka: int) -> np.ndarray:
    r""":math:`[X, 1]\,2^{-k_a}` (or :math:`X2^{-k_a}` without ``bias``) built in one new
    array: the same bits as ``np.ldexp(np.hstack([X, 1]), -ka)`` (``ldexp`` by a power of
    two is exact elementwise) without the intermediate (n, d + 1) copy."""
    n, d = X.shape
    out = np.empty((n, d + int(bias)))
    np.ldexp(X, -ka, out=out[:, :d])
    if bias:
        out[:, d] = np.ldexp(1.0, -ka)
    return out


def solve_convex(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    scalar: bool,
    beta: float,
    depth: int,
    loss: Loss,
    rtol: float,
    bias: bool,
    **options: Any,
) -> Solution:
    r"""Two-layer ReLU network of minimal weight-decay objective via the convex program.

    Solves :math:`\min_\theta \ell(f_\theta(X), Y) + \frac\beta2(\|W_1\|_F^2 + \|W_2\|_F^2)`
    over two-layer ReLU networks of any width through the convex program of the module
    docstring, rebuilds the network (:math:`u = v/\sqrt{\|v\|},\ \alpha = \pm\sqrt{\|v\|}`),
    prunes it to at most :math:`nK + 1` neurons (:func:`prune_neurons`) and certifies it.

    Parameters
    ----------
    X : ndarray (n, d), Y : ndarray (n, K)
        Validated data; labels already canonical for ``loss``.
    scalar : bool
        Whether the network predicts 1-D output.
    beta : float > 0
    depth : int
        Must be 2.
    loss : Loss
        A smooth loss (squared, logistic, cross_entropy or a user loss with a gradient);
        the hinge loss is not supported.
    rtol : float
        ``Solution.certified`` when the relative gap is below ``rtol``.
    bias : bool
        Append a column of ones to ``X``: the hidden biases are the last entry of each
        hidden weight vector and are **penalized** like the weights (evaluate with
        ``deepdual.objective(..., penalize_biases=True)`` and certify with
        ``deepdual.certify(..., penalize_biases=True)``).  No output bias.
    **options
        patterns : {"auto", "exact", "sample"}, bool array (P, n) or tuple, default "auto"
            ``"auto"`` enumerates all patterns when the region-count bound
            :math:`2\sum_{k<r}\binom{n-1}{k}` (times ``K``) is at most ``max_patterns``,
            else samples.  A tuple ``(patterns, directions)`` also gives, for each
            pattern, a direction ``g`` (P, d; with ``bias`` P, d + 1) strictly inside its
            cell (e.g. the sampled directions of :func:`deepdual.patterns.sample_patterns`),
            which saves one small LP per pattern.  Patterns whose cone
            :math:`\{u : (2D - I)Xu \ge 0\}` has no interior are left out of the
            interior-point methods (exact when the set holds every region's pattern,
            ``docs/convex_program.md`` §6); when no pattern has one, ``solver="auto"``
            uses the augmented Lagrangian and ``"ipm"``/``"barrier"`` raise ``ValueError``.
        n_patterns : int, default 100
            Number of sampled patterns.
        max_patterns : int, default 2000
        certify_max_patterns : int, default 20000
            With sampled patterns, the global lower bound still uses the exact dual
            constraint (a separate enumeration) when the region-count bound is at most this.
        rng, random_state : None, int or numpy.random.Generator
            Source of sampled patterns (either name).  ``None`` means the seed 0, so
            identical calls give identical results; the seed is stored in
            ``info["rng_seed"]``.
        solver : {"auto", "ipm", "barrier", "al", "first_order", "gram"}, default "auto"
            ``"ipm"``: primal–dual interior-point method for the squared loss (the
            barrier method for other losses); ``"barrier"``: primal log-barrier method
            (any loss with a Hessian); ``"al"``: augmented Lagrangian (first order,
            large problems); ``"first_order"``: the first-order solver of large sampled
            programs (memory linear in n); ``"gram"``: the Gram-reduced primal–dual
            method with a row working set (squared loss, scalar output; per iteration
            :math:`O((Pr)^3)` independent of n, memory :math:`O((Pr)^2)`,
            docs/convex_program.md §10b).  ``"auto"`` takes the primal–dual method for
            the squared loss when all patterns fit its dense Newton system, the Gram
            method for large sampled squared-loss programs of rank :math:`r \le 10`
            (``GRAM_AUTO_MAX_RANK``) whose path (its :math:`(Pr)^2` matrices, the copies
            of X and the masks: ``gram_path_memory``) fits ``ipm_allowance`` — 3x (X plus
            the masks), ``blocks.memory_budget``, and never less than 128 MiB
            (``IPM_MEMORY_FLOOR``) on at most 5 000 samples (``IPM_FLOOR_MAX_SAMPLES``) —
            the first-order solver for other large sampled programs and for sampled
            scalar programs of rank above 10 that the local polish follows and that
            neither interior-point method takes (``first_order_for_polish``;
            docs/performance.md §8, "Default method at n = 10³–5·10³"),
            else the barrier method when the loss has a Hessian and the working set is
            small, else the augmented Lagrangian.
        max_iter : int, optional
            Newton steps (``"ipm"``, ``"barrier"``, default 4000) or FISTA iterations (``"al"``, default
            20000) over all rounds.  ``info["status"]`` says why the solver stopped
            (``"optimal"``, ``"iteration_limit"``, ``"time_limit"``, ``"precision_limit"``,
            ``"breakdown"``).
        tol : float, default ``rtol / 2``
            Stop when the relative duality gap of the program over the pattern set is
            below ``tol`` (half of ``rtol`` leaves room for rounding in the rebuild).
        progress : bool or None, default None
            ``True``: show a tqdm bar even on a direct call; :func:`deepdual.solve`
            handles its own ``progress`` and ``time_limit`` (:mod:`deepdual.progress`),
            which this solver honours through the installed monitor.
        strategy : {"patterns", "column_generation"}, default "patterns"
            ``"column_generation"``: scalar output only; the program is solved over a
            growing pattern set, each round priced by the branch-and-bound oracle
            (:func:`deepdual.relu.convex_program.oracle.dual_constraint_bb`), until the
            proven relative gap is below ``rtol`` or ``time_limit`` runs out; both
            bounds of every round are in ``info["history"]`` (docs/convex_program.md §13).
        time_limit : float, optional
            Seconds for ``strategy="column_generation"``.
        oracle_time : float, default 2
            Seconds of the branch-and-bound oracle for the global lower bound when the
            pattern set is not complete (scalar output; 0 keeps the spectral bound).
        polish : {"auto", True, False}, default "auto"
            Local descent (L-BFGS on the network's weights, :func:`polish_network`) from
            the program's network, kept only if it lowers the objective.  ``"auto"``
            polishes when the program is only an upper bound: sampled pattern sets and
            vector outputs.  On sampled sets the program's optimum is often far above
            what networks of the same width reach (e.g. n = 200, d = 20, 50 patterns:
            21.96 before, 7.58 after); the polished network is at most the program's
            optimum, so ``info["restricted_lower_bound"]`` still bounds it from below up
            to the program's gap.  On complete pattern sets the program is exact and
            nothing is gained.  The polish runs until its objective falls by less than
            1e-4 (relative) over 100 L-BFGS iterations, within an iteration budget
            (:func:`~deepdual.relu.convex_program.rebuild.polish_budget`) and the time limit.
        refine : int >= 0, default 0
            Rounds of pattern refinement after the polish (scalar output;
            :func:`~deepdual.relu.convex_program.rebuild.refine_network`): the polished
            network's own patterns form a new program, warm-started at that network (a
            feasible point), a few first-order steps, then the polish again; a round is
            kept only if it lowers the objective (``info["refinement"]``: the objective at
            the start and after each kept round).

    Returns
    -------
    Solution
        ``lower_bound`` is proven for all networks; ``info["restricted_lower_bound"]``
        is the lower bound for the program over the pattern set.  The problem is solved
        in units where :math:`\max|X_a|` and :math:`\max|Y|` are in [1/4, 1) (powers of two,
        ``info["scaling"]``), so the result does not depend on the data's units
        (``docs/convex_program.md`` §9).

    References
    ----------
    Pilanci & Ergen (ICML 2020); Mishkin, Sahiner & Pilanci (ICML 2022).
    """
    # progress=True on a direct call (deepdual.solve installs its own monitor)
    own_bar = options.get("progress") is True and not current_monitor().show
    with _SingleThreadedBLAS(), (monitoring(progress=True, desc="convex program") if own_bar else nullcontext()):
        return _solve_convex(X, Y, scalar=scalar, beta=beta, depth=depth, loss=loss, rtol=rtol, bias=bias,
                             **options)


def _solve_convex(X: np.ndarray, Y: np.ndarray, *, scalar: bool, beta: float, depth: int, loss: Loss,
                  rtol: float, bias: bool, **options: Any) -> Solution:
    """:func:`solve_convex` (with BLAS limited to one thread)."""
    check_options(options, CONVEX_OPTIONS, "solve(..., method='convex')")
    strategy = options.pop("strategy", "patterns")
    time_limit = options.pop("time_limit", None)
    if strategy not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {', '.join(map(repr, STRATEGIES))}; got {strategy!r}")
    if time_limit is not None:
        time_limit = check_positive(time_limit, "time_limit")
    if strategy == "column_generation":
        # certified global optimum: patterns priced by branch and bound (docs/convex_program.md §13)
        if "patterns" in options:
            raise ValueError("`patterns` cannot be given with strategy='column_generation' (it builds its own)")
        if depth != 2:
            raise ValueError(f"`depth` must be 2 for the convex program (two-layer networks), got {depth}")
        if isinstance(loss, HingeLoss):
            raise ValueError("`loss`='hinge' is not supported by the convex program (non-smooth); "
                             "use 'squared', 'logistic' or 'cross_entropy'")
        progress = options.pop("progress", False)
        if time_limit is None:  # deepdual.solve(..., time_limit=) is seen through the monitor
            left = current_monitor().remaining()
            time_limit = left if np.isfinite(left) else None
        return column_generation(_solve_convex, X, Y, scalar=scalar, beta=beta, loss=loss, rtol=rtol, bias=bias,
                                 time_limit=time_limit, rng=_pop_seed(options),
                                 log=print if progress else None, **options)
    if depth != 2:
        raise ValueError(f"`depth` must be 2 for the convex program (two-layer networks), got {depth}")
    if isinstance(loss, HingeLoss):
        raise ValueError("`loss`='hinge' is not supported by the convex program (non-smooth); "
                         "use 'squared', 'logistic' or 'cross_entropy'")
    n_patterns = _int_option(options, "n_patterns", DEFAULT_N_PATTERNS, 1)
    max_patterns = _int_option(options, "max_patterns", DEFAULT_MAX_PATTERNS, 0)
    enum_limit = _int_option(options, "certify_max_patterns", DEFAULT_CERTIFY_MAX_PATTERNS, 0)
    max_iter = _int_option(options, "max_iter", None, 1)
    tol = check_positive(options.get("tol", 0.5 * rtol), "tol")
    oracle_time = options.get("oracle_time", ORACLE_TIME)
    if isinstance(oracle_time, bool) or not isinstance(oracle_time, numbers.Real) or not oracle_time >= 0:
        raise ValueError(f"`oracle_time` must be a number of seconds >= 0, got {oracle_time!r}")
    solver = options.get("solver", "auto")
    if solver not in SOLVERS:
        raise ValueError(f"`solver` must be one of {', '.join(map(repr, SOLVERS))}; got {solver!r}")
    if solver in ("ipm", "barrier") and not has_hessian(loss):
        raise ValueError(f"`solver`='ipm' needs the loss's Hessian (squared, logistic, cross_entropy); "
                         f"got {loss!r}")
    progress = options.get("progress", None)
    if progress is not None and not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"`progress` must be True, False or None, got {progress!r}")
    polish = options.get("polish", "auto")
    if not (isinstance(polish, (bool, np.bool_)) or polish == "auto"):
        raise ValueError(f"`polish` must be 'auto', True or False, got {polish!r}")
    refine = _int_option(options, "refine", 0, 0)
    rng, rng_seed = pattern_seed(options)

    t0 = time.perf_counter()
    n, d = X.shape
    K = Y.shape[1]
    # units: solve (X_a 2^-ka, Y 2^-kb, beta 2^-(ka+kb)), whose optimum is exactly 2^-2kb
    # times this one (docs/convex_program.md §9); the network is mapped back exactly.
    # X_a = [X 1] 2^-ka is an implicit operator over the caller's X (blocks.ScaledDesign): the
    # scale, the row space and the sampled patterns read it a block of rows at a time (the same
    # values as the scaled copy, which is formed below only for the solvers that read the
    # array; docs/performance.md §8, memory)
    ka, kb = scale_exponents(ScaledDesign(X, 0, bias), Y, loss)
    X_orig, Y_orig, beta_orig = X, Y, beta
    Xa = ScaledDesign(X, ka, bias)
    Y, beta = np.ldexp(Y, -kb), float(np.ldexp(beta, -(ka + kb)))
    check_scaled_problem(Y, beta, kb, loss)

    def to_net(U: np.ndarray, A: np.ndarray):
        """The network in the caller's units: u -> u 2^h, alpha -> alpha 2^h, h = (kb - ka)/2."""
        h = (kb - ka) // 2
        return network_from_atoms(np.ldexp(U, h), np.ldexp(A, h), bias=bias, scalar=scalar)

    # data that cannot fit even the leanest solver (first-order, n_patterns sampled patterns):
    # a clear error before any work (the SVD, the patterns); the exact check follows below
    check_memory(program_memory("first_order", n, Xa.shape[1], min(n, Xa.shape[1]), n_patterns, K),
                 f"the convex program (n={n}, d={d}, {n_patterns} patterns)")
    # X_r = X_a V is formed after the patterns: not alive while they are sampled (the sampling
    # forms its rows a block at a time; docs/performance.md §8, memory)
    rs = row_space(Xa, with_Xr=False)
    r = rs.rank
    pat_option = options.get("patterns", "auto")
    if options.get("init") is not None and "patterns" not in options:  # warm start: the same patterns
        state = options["init"].info.get("warm_start") if isinstance(options["init"], Solution) else options["init"]
        pat_option = state["patterns"] if isinstance(state, dict) and "patterns" in state else pat_option
    pats, dirs, complete, how = _choose_patterns(Xa, rs, pat_option, n_patterns,
                                                 max_patterns, rng, K)
    # (X_r = X_a V is formed below, once the solver is known: the first-order method at full
    # column rank does without it)
    requested = solver
    device = options.get("device")
    # the interior-point methods hold (n, P, r)-sized arrays: above ipm_allowance (the 3x
    # budget; IPM_MEMORY_FLOOR on small data) the first-order method, linear in n, is taken;
    # also where the local polish follows and the augmented Lagrangian would be taken
    # (first_order_for_polish; docs/performance.md §8, "Default method at n = 10³–5·10³")
    large = solver == "auto" and K == 1 and not complete and first_order_by_size(
        n, d, r, len(pats), K, loss, polish=polish == "auto" or bool(polish))
    # programs on patterns sampled here, of rank <= GRAM_AUTO_MAX_RANK: the Gram method at every
    # n when it fits (the primal-dual method's exact optimum, faster: n = 1e3, d = 10, 100
    # patterns: 4.2 s against 15.0 s; docs/performance.md §8)
    large = large or (solver == "auto" and K == 1 and not complete and device is None and how.endswith(" sampled")
                      and isinstance(loss, SquaredLoss) and r <= GRAM_AUTO_MAX_RANK
                      and len(pats) * r <= GRAM_MAX_UNKNOWNS
                      and gram_fits(n, d, r, len(pats), implicit=r == Xa.shape[1]))
    if solver in ("auto", "ipm") and isinstance(loss, SquaredLoss) and not large and device is None:
        # the primal-dual method when all patterns fit its dense Newton system (an
        # explicit "ipm" always; it then works on a growing working set)
        if solver == "ipm" or pd_all(len(pats), r, n, K):
            solver = "pd"
    if solver == "gram" or (solver == "auto" and device is None and K == 1 and not complete):
        # the Gram-reduced interior-point method (squared loss): its memory is (P r)^2, not
        # n P r; "auto" takes it for large sampled programs when that fits the same budget
        # as the interior-point methods (docs/convex_program.md §10b)
        gram_ok = isinstance(loss, SquaredLoss) and len(pats) * r <= GRAM_MAX_UNKNOWNS
        if solver == "gram" and not gram_ok:
            raise ValueError(f"`solver`='gram' needs the squared loss and patterns x rank <= {GRAM_MAX_UNKNOWNS}; "
                             f"got {loss!r}, {len(pats)} x {r}")
        if solver == "gram" or (large and gram_ok and r <= GRAM_AUTO_MAX_RANK
                                and gram_fits(n, d, r, len(pats), implicit=r == Xa.shape[1])):
            solver, large = "gram", False
    if solver == "gram" and (device is not None or K != 1):
        raise ValueError("`solver`='gram' takes scalar outputs on numpy (device=None)")
    if device is not None or large:
        # large sampled programs (and device=): the first-order method, memory linear in n
        # (docs/convex_program.md §10)
        if K != 1:
            raise ValueError(f"`device` is supported for scalar outputs (the first-order solver); got {K} outputs")
        solver = "first_order"
    if solver == "first_order" and K != 1:
        raise ValueError(f"`solver`='first_order' takes scalar outputs; got {K} outputs")
    if solver == "auto":
        cost = ipm_cost(2 * K * min(len(pats), n + 1), r, n, K)
        small = cost <= (IPM_MAX_COST if complete else IPM_SMALL_COST)
        solver = "barrier" if has_hessian(loss) and small else "al"
    elif solver == "ipm":
        solver = "barrier"

    if solver == "first_order" and "tol" not in options:
        tol = max(tol, FO_DEFAULT_TOL)
    if solver != "first_order" and not pats.flags.c_contiguous:
        # sampled masks come Fortran-ordered (the first-order solver views their (n, P)
        # transpose; patterns.mask_rows); the other methods read pattern rows: C order, as
        # before (same sums, same results; their own arrays dwarf this copy)
        pats = np.ascontiguousarray(pats)
    # a data set that does not fit: a clear error before the solve
    need = ((0 if r == Xa.shape[1] and K == 1 and device is None else 3 * 8 * n * (d + 1))
            + n * len(pats) + gram_memory(n, r, len(pats))) if solver == "gram" else \
        program_memory(solver, n, d, r, len(pats), K)
    check_memory(need, f"the convex program ({solver}, n={n}, d={d}, {len(pats)} patterns)")
    # the first-order method (numpy, the augmented Lagrangian) at full column rank: V is
    # orthogonal and the program invariant under it (norms of z_g; the masks fixed), so it
    # works on X_a itself (V = I), an implicit operator over the caller's X whose products
    # by 2^-ka are exact (blocks.ScaledDesign): neither X_a nor X_r is materialized during
    # the solve (docs/performance.md §8, memory)
    # The Gram method too (numpy, K = 1): its program is as invariant under V, and it reads
    # X_r by row blocks and rows only; its interior directions are mapped to X_a's
    # coordinates (V orthogonal; re-checked inside, docs/convex_program.md §10b)
    implicit = (device is None and K == 1 and r == Xa.shape[1] and r > 0 and len(pats) > 0
                and (solver == "gram" or (solver == "first_order" and FO_METHOD == "al")))
    if implicit and solver == "gram" and dirs is not None:
        dirs = dirs @ rs.V.T
    if implicit:
        rs = RowSpace(Xa, np.eye(r))
    else:
        Xa = np.asarray(Xa)  # the scaled copy (the same bits as np.ldexp([X, 1], -ka))
        rs = RowSpace(Xa @ rs.V, rs.V)  # as row_space(Xa) computed it
    fo = None
    if solver == "gram" and r > 0 and len(pats) > 0:
        fo = _run_gram(rs, Y, pats, dirs, beta, tol, max_iter, options.get("init"))
        if implicit:  # as after the first-order method below (rs.Xr rebuilt if needed)
            rs = RowSpace(None, rs.V)
        res = WorkingSetResult(None, fo.z, fo.network_objective, fo.lower, fo.c, "gram", fo.iterations,
                               fo.rounds, len(pats), fo.converged,
                               status={"stopped": "time_limit"}.get(fo.status, fo.status))
    elif solver == "first_order" and r > 0 and len(pats) > 0:
        # memory: the solver reads only rs.Xr (at full column rank the implicit X_a above);
        # afterwards X_a is the implicit operator over the caller's X (exact: products by a
        # power of two), whose row blocks the polish, the network's output and the spectral
        # bounds form on the fly; the rare stages that need the array (an enumeration, the
        # oracle, refinement) materialize it (docs/performance.md §8)
        Xa = None
        fo = _run_first_order(rs, Y, pats, loss, beta, tol, max_iter, options.get("init"), device)
        if K == 1:  # below, only a complete pattern set needs rs.Xr: rebuilt then
            rs = RowSpace(None, rs.V)
        Xa = ScaledDesign(X_orig, ka, bias)
        res = WorkingSetResult(None, fo.z, fo.network_objective, fo.lower, fo.c, "first_order", fo.iterations,
                               fo.rounds, len(pats), fo.converged,
                               status={"stopped": "time_limit"}.get(fo.status, fo.status))
    elif r == 0 or len(pats) == 0:
        grp = Groups(rs.Xr, pats[:0] if len(pats) else np.zeros((0, n), bool), K)
        res = WorkingSetResult(grp, np.zeros((0, r)), loss.value(np.zeros_like(Y), Y), -np.inf, 0.0, solver,
                      0, 0, 0, True)
    else:
        # (overflow inside an inner method is detected and handled there: no warnings)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            res = solve_working_set(rs.Xr, Y, pats, dirs, loss, beta, tol=tol, solver=solver, max_iter=max_iter,
                                    progress=bool(progress), allow_al=requested == "auto", requested=requested,
                                    complete=complete)
    t_solve = time.perf_counter() - t0

    grp, z = res.grp, res.z
    breakdown = bool(len(z)) and not bool(np.all(np.isfinite(z)))
    if breakdown:
        # the inner method broke down (non-finite iterate: e.g. beta below the rounding
        # of the loss, ~1e-81 of max|X| max|y|): report the zero network, uncertified
        z = np.zeros_like(z)
        res.converged = False
    if fo is not None:  # first-order solver: computed block by block, no (groups, n) arrays
        convex_value, viol = fo.convex_objective, fo.max_violation
        g_k, g_s = np.zeros(len(z), dtype=int), np.repeat([1.0, -1.0], len(z) // 2)
    else:
        convex_value = loss.value(grp.output(z), Y) + beta * float(np.linalg.norm(z, axis=1).sum()) if len(z) \
            else loss.value(np.zeros_like(Y), Y)
        viol = float(np.max(np.maximum(-grp.constraint(z), 0.0), initial=0.0)) if len(z) else 0.0
        g_k, g_s = grp.k, grp.s
    # rebuild: group z (row-space coords) -> u = V z / sqrt|z|, alpha = s sqrt|z| e_k
    nrm = np.linalg.norm(z, axis=1) if len(z) else np.zeros(0)
    act = np.flatnonzero(nrm > 0)
    U = (rs.V @ z[act].T) / np.sqrt(nrm[act])[None, :] if len(act) else np.zeros((Xa.shape[1], 0))
    A = np.zeros((len(act), K))
    A[np.arange(len(act)), g_k[act]] = g_s[act] * np.sqrt(nrm[act])
    U, A, prune_info = prune_neurons(Xa, U, A)
    net = to_net(U, A)
    value = objective(net, X_orig, Y_orig, beta=beta_orig, loss=loss, penalize_biases=bias)

    polished = refine_history = None
    if polish == "auto":
        polish = K > 1 or not complete
    out_of_time = current_monitor().expired()  # time_limit: no polish, no exact enumeration
    if polish and U.shape[1] > 0 and not out_of_time:
        # the program is an upper bound (vector outputs, sampled patterns): local descent
        # from its network, kept only if better
        U2, A2 = polish_network(Xa, Y, loss, beta, U, A, stop_check=current_monitor().expired)
        net2 = to_net(U2, A2)
        value2 = objective(net2, X_orig, Y_orig, beta=beta_orig, loss=loss, penalize_biases=bias)
        if value2 < value:
            polished = float(value)
            net, value, U, A = net2, value2, U2, A2
        if refine and K == 1 and not current_monitor().expired():
            # pattern refinement: the polished network's own patterns, the program warm-started
            # at it (or, squared loss at rank <= GRAM_AUTO_MAX_RANK, solved exactly by the Gram
            # method), polished again; each kept round lowers the objective (docs/convex_program.md §10c)
            # (exact rounds while their (P r)^2 matrices fit the interior-point budget)
            exact_max = 0
            if isinstance(loss, SquaredLoss) and r <= GRAM_AUTO_MAX_RANK:
                exact_max = min(2 * U.shape[1], GRAM_MAX_UNKNOWNS // max(r, 1))
                while exact_max > 0 and not gram_fits(n, d, r, exact_max):
                    exact_max = int(exact_max * 0.9)
            U3, A3, refine_history = refine_network(Xa, rs.V, Y, loss, beta, U, A, rounds=refine,
                                                    exact_max_patterns=exact_max,
                                                    stop_check=current_monitor().expired)
            net3 = to_net(U3, A3)
            value3 = objective(net3, X_orig, Y_orig, beta=beta_orig, loss=loss, penalize_biases=bias)
            if value3 < value:
                if polished is None:
                    polished = float(value)
                net, value, U, A = net3, value3, U3, A3
    zero_value = loss.value(np.zeros_like(Y_orig), Y_orig)
    if value >= zero_value:
        # the zero network is at least as good (beta near or above beta_max, where the
        # program's iterate keeps tiny neurons): return it; its dual point -grad l(0)
        # certifies it exactly when beta >= c(-grad l(0)) (deepdual.path)
        U, A = np.zeros((Xa.shape[1], 0)), np.zeros((0, K))
        net = to_net(U, A)
        value = objective(net, X_orig, Y_orig, beta=beta_orig, loss=loss, penalize_biases=bias)

    # certificate over all networks: the network's own dual point
    # (past the time limit the proven spectral bound replaces a separate enumeration)
    full = complete_set(Xa, rs, pats, complete, 0 if out_of_time else enum_limit)
    if full is not None and rs.Xr is None:
        rs = RowSpace(Xa @ rs.V, rs.V)  # as row_space(Xa) computed it
    V = loss.dual_point(relu_layer_output(Xa, U, A), Y)  # (scaled units, as below; in row blocks)
    c, exact, c_how = global_constraint(Xa, rs, V, full, beta)
    if not exact and K == 1 and not out_of_time and oracle_time > 0:
        # no complete pattern set: the branch-and-bound oracle's proven bound on c(v) (never
        # above the spectral bound; docs/convex_program.md §11), a few seconds at most
        left = current_monitor().remaining()
        if not oracle_fits(n, Xa.shape[1], len(pats), r):
            # large data: the search would hold ~1.7 kB per sample (and its first node alone
            # takes longer than oracle_time there, without improving on the spectral bound:
            # docs/performance.md §8); the proven spectral bound stays
            c_how += oracle_skipped(n)
        else:
            tight = oracle_tightened(Xa, V[:, 0], c, min(float(oracle_time), left))
            if tight is not None:
                c, exact, c_how = tight
    t_dual, lower = loss.best_scale(V, Y, np.inf if c <= 0 else beta / c)
    lower = float(lower) if np.isfinite(lower) else -np.inf
    dual = t_dual * V
    dual_from = "network residual"
    if K > 1 and full is not None and len(full) and not out_of_time:
        # and the residual of the gated relaxation, whose dual constraint is the cell bound
        # iteration budget: ~1e9 flops (two products with the n x (P r) operator and P
        # small SVDs per iteration), at least 50 iterations, at most 1000
        per_iter = len(full) * r * K * (4 * n + 30 * K)
        Lam = gated_relaxation_dual(rs.Xr, Y, loss, beta, full,
                                    max_iter=int(np.clip(1e9 / max(per_iter, 1), 50, 1000)))
        c2, _, how2 = global_constraint(Xa, rs, Lam, full, beta)
        t2, low2 = loss.best_scale(Lam, Y, np.inf if c2 <= 0 else beta / c2)
        if np.isfinite(low2) and low2 > lower:
            lower, dual, c, t_dual, c_how = float(low2), t2 * Lam, c2, t2, how2
            V = Lam
            dual_from = "gated relaxation residual"
    lower_bounds = {dual_from: float(np.ldexp(lower, 2 * kb))}
    if isinstance(loss, SquaredLoss) and np.isfinite(beta):
        # certify's relaxed reduced problem over the label parts: one Gram matrix of X_a, and
        # far above the residual's bound when the spectral bound on c(v) is loose (large n)
        low3, V3, c3, how3 = relaxed_label_dual(Xa, Y, beta)
        lower_bounds["relaxed reduced problem"] = float(np.ldexp(low3, 2 * kb))
        if low3 > lower:
            # (info["dual_constraint"...] keep describing the network residual's v: the
            # estimators' lazy certificate re-bounds c(v) of that v from them)
            lower, dual, dual_from = float(low3), V3, "relaxed reduced problem"

    # back to the caller's units (exact: powers of two)
    lower = float(np.ldexp(lower, 2 * kb))
    dual = np.ldexp(dual, kb)
    info: dict[str, Any] = {
        "solver": "ipm" if res.solver == "pd" else res.solver,
        "patterns": int(len(pats)),
        "patterns_complete": bool(complete),
        "patterns_how": how,
        "pattern_count_bound": int(count_upper_bound(n, r)),
        "rank": int(r),
        "iterations": int(res.iterations),
        "working_set_rounds": int(res.rounds),
        "working_set": int(res.working_set),
        "patterns_without_interior": int(res.dropped_patterns),
        "convex_objective": float(np.ldexp(convex_value, 2 * kb)),
        "max_violation": float(np.ldexp(viol, kb)),
        "restricted_objective": float(np.ldexp(res.primal, 2 * kb)),
        "restricted_lower_bound": float(np.ldexp(res.lower, 2 * kb)),
        "restricted_converged": bool(res.converged),
        "status": res.status,
        # the augmented Lagrangian's restricted_objective is a feasible point's value
        # (working_set.al_feasible_value): its program gap, never negative
        **({"restricted_gap": float((res.primal - res.lower) / max(abs(res.primal), np.finfo(float).tiny))}
           if fo is None and res.solver == "al" and np.isfinite(res.lower) else {}),
        "dual_constraint": float(np.ldexp(c, ka + kb)),
        "dual_constraint_exact": bool(exact),
        "dual_constraint_how": c_how,
        "dual_scale": float(t_dual),
        "dual_point": dual_from,
        "lower_bounds": lower_bounds,
        "penalize_biases": bool(bias),
        "scaling": {"X": float(np.ldexp(1.0, ka)), "y": float(np.ldexp(1.0, kb))},
        "time_s": float(t_solve),
        **prune_info,
    }
    if polished is not None:
        info["objective_before_polish"] = polished
    if refine_history is not None:
        # weight-decay objective (caller's units) at the start and after each kept round
        info["refinement"] = [float(np.ldexp(v, 2 * kb)) for v in refine_history]
    if rng_seed is not None:
        info["rng_seed"] = rng_seed
    if fo is not None:
        # the sampled program's proven gap (network objective vs the program's lower bound),
        # and the state that warm-starts the next solve (solve(..., init=solution))
        info["restricted_gap"] = float(fo.gap)
        info["multiplier_bytes"] = int(fo.multiplier_bytes)
        info["device"] = "numpy" if device is None else str(device)
        info["warm_start"] = {"patterns": pats, "weights": fo.z @ rs.V.T, "multipliers": fo.multipliers,
                              "rho": fo.rho}
    notes = []
    if not complete:
        notes.append(
            f"patterns {how} (not all of up to {format_count(info['pattern_count_bound'])}): the program's optimum is "
            "optimal only among networks whose neurons have these patterns, an upper bound on the global "
            "optimum" + (" (the returned network was then improved by local descent)" if polished is not None
                         else "")
            + ("" if exact else "; lower_bound uses a proven upper bound on the dual constraint"))
    if K > 1:
        notes.append("vector output: solved with one output per neuron (penalty ||u|| ||alpha||_1), an upper "
                     "bound for weight decay; see docs/convex_program.md")
    if bias:
        notes.append("hidden biases are penalized: use objective(..., penalize_biases=True)")
    if res.dropped_patterns:
        notes.append(f"{res.dropped_patterns} pattern(s) whose cone has no usable interior (margin below 1e-9: "
                     "empty, or a thin cell of nearly degenerate data) were left out of the interior-point method; "
                     "the lower bound still counts them (docs/convex_program.md §6)")
    if not res.converged:
        why = {"iteration_limit": f"its iteration budget (max_iter={res.iterations})",
               "time_limit": "the time limit", "breakdown": "a numerical breakdown (non-finite iterate)",
               "network_bound_reached": "its network reaching the program's lower bound (its neurons need not "
                                        "keep their patterns; restricted_objective is a feasible point's value)",
               }.get(res.status, "the precision limit")
        notes.append(f"{res.solver} stopped at {why} before the relative gap over the pattern set reached "
                     f"tol={tol:g}")
    if notes:
        info["note"] = "; ".join(notes)
    method = "convex program (Pilanci & Ergen 2020), " + ("all patterns" if complete else how + " patterns")
    return Solution(network=net, objective=float(value), lower_bound=lower, method=method, rtol=rtol,
                    dual=dual, info=info)
