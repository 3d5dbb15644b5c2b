r"""Working-set (column generation) solution of the convex program with the duality-gap
stopping rule, and the choice between its inner solvers (``docs/convex_program.md`` §6).

The program is solved over a set :math:`W` of patterns by the primal–dual interior-point
method (:class:`PrimalDual`, around :class:`deepdual.relu.convex_program.conic_ipm.GroupSOCQP`; squared
loss), the barrier method (:mod:`~deepdual.relu.convex_program.barrier`) or the augmented
Lagrangian (:mod:`~deepdual.relu.convex_program.augmented_lagrangian`); the dual point
:math:`v = -\nabla\ell(F)` is priced against every pattern with the exact NNLS values
(:func:`~deepdual.relu.convex_program.certificate.pattern_values`) and patterns with
:math:`c_{i,s}(v) > \beta` join :math:`W` (:func:`solve_working_set`).

Part of :mod:`deepdual.relu.convex_program.solver` (the entry point, which re-exports the names).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...losses import Loss
from .groups import Groups, INTERIOR_MARGIN, interior_direction
from .certificate import pattern_values
from .barrier import GroupBarrier
from .augmented_lagrangian import AugmentedLagrangian, network_close
from ...progress import current


class PrimalDual:
    r"""Primal–dual interior-point method (:class:`~deepdual.relu.convex_program.conic_ipm.GroupSOCQP`:
    Mehrotra predictor–corrector, Nesterov–Todd scaling) for the squared-loss program
    over a working set; the same interface as :class:`GroupBarrier`.

    Group :math:`g = (s, p, k)` has base block :math:`\bar B_{pK+k} = e_k\otimes D_pX`
    (the sign is applied separately), linear constraints :math:`(2D_p - I)X_Rz_g \ge 0`
    on the non-zero rows.  A grown working set restarts the method (interior-point
    methods do not warm-start well); each run takes ~20-30 iterations.
    """

    def __init__(self, Xr: np.ndarray, Y: np.ndarray, loss: Loss, beta: float, pats: np.ndarray,
                 interior: np.ndarray) -> None:
        from .conic_ipm import GroupSOCQP

        self._cls = GroupSOCQP
        self.Xr, self.Y, self.loss, self.beta = Xr, Y, loss, beta
        self.R = np.linalg.norm(Xr, axis=1) > 0
        self.iters = 0
        self.stalled = False
        self.polished = False
        self._build(pats, interior)

    def _build(self, pats: np.ndarray, interior: np.ndarray) -> None:
        Xr, Y = self.Xr, self.Y
        n, K = Y.shape
        r = Xr.shape[1]
        self.grp = grp = Groups(Xr, pats, K)
        self.interior = interior
        P = len(pats)
        base = np.zeros((n, K, P, K, r))
        blk = pats.T.astype(float)[:, :, None] * Xr[:, None, :]  # (n, P, r): D_p X
        for k in range(K):
            base[:, k, :, k, :] = blk
        self.ipm = self._cls(Xr[self.R], grp.SG[:, self.R], base.reshape(n * K, P * K, r), grp.p * K + grp.k,
                             grp.s, Y.reshape(-1), self.beta, interior[grp.p])
        self.z = self.ipm.z.copy()
        self._calls = 0

    def grow(self, pats: np.ndarray, interior: np.ndarray) -> None:
        self._build(np.vstack([self.grp.pats, pats]), np.vstack([self.interior, interior]))

    def solve(self, tol: float, budget: int) -> int:
        r"""Interior-point iterations to the relative gap ``max(tol, 1e-6)`` (the
        normal-equation solves lose digits below that when there are many
        constraints), then the active-set polish
        (:meth:`~deepdual.relu.convex_program.conic_ipm.GroupSOCQP.polish`), kept when it lowers
        the objective; the caller's exact certificate decides whether ``tol`` is met,
        and calls again (tighter) if not."""
        # 1e-6: where the normal equations still keep the dual residual small on the
        # benchmark problems; each further call (the polished point did not close the
        # caller's gap) asks the interior-point method for 100x more
        # the first call stops where the Woodbury solve stalls (polish is much cheaper
        # than dense Newton systems); later calls may switch to dense systems
        self.ipm.allow_dense_switch = self._calls > 0
        used = self.ipm.solve(max(tol, 1e-6 * 0.01**self._calls), budget)
        self._calls += 1
        self.iters += used
        self.stalled = self.ipm.stalled
        self.z = self.ipm.z.copy()
        zp = self.ipm.polish()
        self.polished = False
        if zp is not None and self._net(zp) <= self._net(self.z):
            self.z, self.polished = zp, True
        return used

    def _net(self, z: np.ndarray) -> float:
        F = self.grp.relu_output(z)
        return self.loss.value(F, self.Y) + self.beta * float(np.linalg.norm(z, axis=1).sum())

    @property
    def Z(self) -> np.ndarray:
        return self.z


def pd_all(P: int, r: int, n: int, K: int) -> bool:
    """Whether the primal-dual method takes all ``P`` patterns at once: its Newton
    system is dense-affordable, or a Woodbury step costs at most ``PD_MAX_COST``."""
    from .conic_ipm import GroupSOCQP

    # (taking all patterns with the Woodbury solve beyond the dense size was tried:
    # on n = 40, d = 3, 1562 patterns, the Woodbury steps broke down after 4
    # iterations; a working set that outgrows the dense size hands over to the
    # barrier method, so "auto" picks the barrier method there from the start)
    return pd_size(2 * K * P, r) <= PD_DENSE_MAX and GroupSOCQP.step_cost(
        2 * K * P, r, n * K, P * K, n) <= PD_MAX_COST


def pd_size(G: int, r: int) -> int:
    """Unknowns of the primal-dual method's Newton system with ``G`` groups."""
    return G * (r + 1)


#: the primal-dual method solves its Newton systems densely (Cholesky, accurate to
#: the end) up to this many unknowns (a 4000 x 4000 Cholesky is ~0.5 s on one core);
#: beyond it the Woodbury form is used, which loses digits near the optimum, so the
#: working set is kept below it when possible
PD_DENSE_MAX = 4000
#: largest Newton-step cost (flops) for which the primal-dual method is used (~0.1-0.2 s
#: per step on one core; it needs ~20-40 steps)
PD_MAX_COST = 6e9
#: a stalled primal-dual run hands over to the barrier method (primal feasible; it
#: reaches ~1e-9) when its relative gap over the pattern set is above ``tol`` on a
#: complete set (the result must be certified: nearly rank-one data, X = c a^T + 1e-11 E,
#: stalled at relative gaps 0.5-0.9 after 27 iterations; a general 10 x 3 instance,
#: beta = 1.24, at 1.1e-6 > tol = 5e-7), and above this on sampled sets, whose program
#: is only an upper bound (n = 500, d = 10, 100 sampled patterns: the barrier method
#: doubled the time, 15 s -> 32 s, for the same network)
PD_STALL_GAP = 1e-4
#: FISTA iterations of the augmented Lagrangian when it takes over from a failed
#: interior-point run (tiny beta; ~1-5 s on 10 x 3 data)
AL_RESCUE_BUDGET = 5000


# ============================================================================ working set
@dataclass
class WorkingSetResult:
    grp: Groups
    z: np.ndarray
    primal: float
    lower: float  # lower bound for the program over all patterns in `pats`
    c: float
    solver: str
    iterations: int
    rounds: int
    working_set: int
    converged: bool
    dropped_patterns: int = 0
    #: why the loop ended: "optimal" (gap below tol), "iteration_limit", "time_limit",
    #: "precision_limit" (the inner method cannot lower the gap further), "breakdown"
    #: (non-finite iterate) or, for the augmented Lagrangian, "network_bound_reached" (it
    #: stopped because its rebuilt network reached the program's lower bound, while the
    #: gap of its feasible point, ``primal``, is above tol: :func:`al_feasible_value`)
    status: str = "optimal"


def ipm_cost(G: int, r: int, n: int, K: int) -> float:
    """Flops of one Newton step of :class:`GroupBarrier` with ``G`` groups (dense or Woodbury)."""
    Q = G * (r + 1)
    nk = n * K
    return float(min(Q**3 / 3.0 + Q * Q * nk, Q * nk * nk + nk**3 / 3.0 + G * (r + 1) ** 2 * nk))


#: largest Newton-step cost (flops) for which the interior-point method is used on a
#: complete pattern set (~0.3 s on one core); beyond it the augmented Lagrangian takes over
IPM_MAX_COST = 1e9
#: the same for sampled pattern sets, where the global bound is loose anyway and the
#: first-order method reaches a useful accuracy faster
IPM_SMALL_COST = 5e7
#: largest barrier parameter m (groups x (rows + 2)) for which the interior-point method
#: takes all patterns at once; beyond it the central path gets long and a working set
#: is used
IPM_MAX_BARRIER = 1e5
#: ... and only when there are at most this many times n + 1 patterns (the size of the
#: first working set): on n = 20, d = 3 (382 patterns) the working set was 2-3.7x faster
#: than all patterns at once (squared and logistic loss), on n = 10, d = 2 (20
#: patterns) 1.4-2.5x slower
IPM_ALL_PATTERNS_FACTOR = 4


def solve_working_set(Xr: np.ndarray, Y: np.ndarray, pats: np.ndarray, dirs: np.ndarray | None, loss: Loss,
           beta: float, *, tol: float, solver: str, max_iter: int | None, progress: bool,
           allow_al: bool = True, requested: str = "auto", complete: bool = False) -> WorkingSetResult:
    r"""Working-set solution of the program over ``pats`` with the duality-gap stopping rule.

    The working set is all patterns for the augmented Lagrangian, and for the
    interior-point method when it can afford them; otherwise it starts as the ``n + 1``
    patterns most violated by the dual point of the zero network, and each round adds
    the patterns most violated by the current dual point.
    """
    n, K = Y.shape
    r = Xr.shape[1]
    P = len(pats)
    V0 = loss.dual_point(np.zeros_like(Y), Y)
    if solver == "al" or (solver == "pd" and pd_all(P, r, n, K)) or (
            solver == "barrier" and ipm_cost(2 * K * P, r, n, K) <= IPM_MAX_COST
            and 2 * K * P * (n + 2) <= IPM_MAX_BARRIER and P <= IPM_ALL_PATTERNS_FACTOR * (n + 1)):
        # the first-order method handles all patterns at once (matrix products); the
        # interior-point method does when its Newton systems stay small
        W = list(range(P))
    else:
        _, W = pattern_values(Xr, V0, pats, beta, max_new=min(P, max(10, n + 1)))
        if len(W) == 0:  # the zero network is optimal: keep one pattern to report on
            W = np.argsort(-np.linalg.norm(pats.astype(float) @ (V0[:, [0]] * Xr), axis=1))[:1]
        W = list(W)
    dropped = 0
    interior: dict[int, np.ndarray] = {}
    no_interior: set[int] = set()  # patterns whose cell has no interior (never join W)
    xn = np.linalg.norm(Xr, axis=1)
    nzr = xn > 0

    def interiors(idx: list[int]) -> tuple[list[int], np.ndarray]:
        nonlocal dropped
        keep, out = [], []
        for p in idx:
            if p not in interior:
                u = None
                if dirs is not None:
                    u = dirs[p]
                    m = (2.0 * pats[p] - 1.0) * (Xr @ u)
                    # inside by the margin the LP requires (INTERIOR_MARGIN of |x_j| |u|
                    # on every non-zero row), else fall back to the LP: the enumeration's
                    # directions in thin cells of nearly rank-one data were inside by only
                    # 1e-13-1e-11 and broke the primal-dual method (a 76 % wrong objective)
                    if not np.all(m[nzr] > INTERIOR_MARGIN * xn[nzr] * np.linalg.norm(u)):
                        u = None
                    else:
                        u = u / np.linalg.norm(u)
                if u is None:
                    u = interior_direction(Xr, pats[p].astype(float))
                interior[p] = u if u is not None else np.full(r, np.nan)
            if np.all(np.isfinite(interior[p])):
                keep.append(p)
                out.append(interior[p])
            else:
                dropped += 1
                no_interior.add(p)
        return keep, np.array(out).reshape(-1, r)

    user_budget = max_iter is not None  # an explicit max_iter is never extended
    if max_iter is None:
        max_iter = 20000 if solver == "al" else 4000
    if solver in ("pd", "barrier"):
        W, w_dirs = interiors(W)
        if not W:
            # every cone of the first working set lacks an interior: look for any pattern
            # whose cone has one; if there is none, the interior-point methods cannot start
            # (docs/convex_program.md §6): the augmented Lagrangian handles such cones
            W, w_dirs = interiors([p for p in range(P) if p not in no_interior])
            W, w_dirs = W[:max(1, min(len(W), n + 1))], w_dirs[:max(1, min(len(W), n + 1))]
            if not W:
                if not allow_al:
                    raise ValueError(
                        f"`patterns`: none of the {P} patterns has a cone {{u : (2D - I)Xu >= 0}} with an "
                        f"interior, so solver={requested!r} (an interior-point method) cannot start; pass "
                        "patterns of regions (e.g. patterns='exact' or deepdual.patterns.sample_patterns) or "
                        "solver='al'")
                solver = "al"
                W = list(range(P))
                dropped = 0  # the augmented Lagrangian takes every cone
                no_interior.clear()
    if solver == "pd":
        inner: Any = PrimalDual(Xr, Y, loss, beta, pats[W], w_dirs)
    elif solver == "barrier":
        inner = GroupBarrier(Xr, Y, loss, beta, pats[W], w_dirs)
    else:
        inner = AugmentedLagrangian(Xr, Y, loss, beta, pats[W])
    # progress bar and time limit (deepdual.progress): the inner solvers tick it per
    # iteration and stop early when the time is up; each round reports the gap
    mon = current()
    mon.stage(f"convex program ({solver})")
    timed_out = False
    # growth rounds need only a rough solution; with every pattern in the working set
    # there is no growth and the first round aims at tol
    round_tol = tol if len(W) == P else max(tol, 1e-3)
    used = rounds = 0
    converged = False
    status = "precision_limit"
    al_rescue = False
    try:
        while True:
            rounds += 1
            step = inner.solve(round_tol, max_iter - used)
            used += step
            z = inner.Z
            if not np.all(np.isfinite(z)):
                # the interior-point method broke down: its start scales like 1/beta and
                # overflows when beta is far below max|X| max|y| (1e-101 of it for labels
                # ~1e100 with beta = 0.1): the augmented Lagrangian (starts at z = 0, no
                # 1/beta) takes over; if it breaks down too the caller reports the zero
                # network, uncertified
                if solver != "al":
                    solver = "al"
                    inner = AugmentedLagrangian(Xr, Y, loss, beta, inner.grp.pats)
                    max_iter = max_iter if user_budget else used + AL_RESCUE_BUDGET
                    continue
                primal, lower, c, status = loss.value(np.zeros_like(Y), Y), -np.inf, np.inf, "breakdown"
                break
            # the IPM's iterates are feasible (network output = convex output); the AL's
            # are not, and its network can even beat the program: judge the program
            F = inner.grp.output(z) if solver == "al" else inner.grp.relu_output(z)
            V = loss.dual_point(F, Y)
            primal = loss.value(F, Y) + beta * float(np.linalg.norm(z, axis=1).sum())
            others = np.setdiff1d(np.arange(P), W + sorted(no_interior))
            if solver == "al" and inner.checked[0] is z:
                # the AL's own exact test of this iterate, over the same patterns in the
                # same order (the same bits): not repeated
                c_in = inner.checked[1]
            elif solver == "al":
                # the same maximum, fewer NNLS: ordered by the multipliers' tighter bounds
                # (the decision this value feeds was already taken by the AL's own test, or
                # the budget is spent: the iterates do not depend on it)
                c_in = inner.exact_max(V)
            else:
                c_in, _ = pattern_values(Xr, V, pats[W], beta)
            c_out, new = pattern_values(Xr, V, pats[others], beta, max_new=max(5, len(W)))
            new = [int(others[i]) for i in new]
            # cells without interior cannot join (no interior start), but they still
            # count in the program's dual constraint: the lower bound stays valid
            c_no = pattern_values(Xr, V, pats[sorted(no_interior)], beta)[0] if no_interior else 0.0
            c = max(c_in, c_out, c_no)
            lower = float(loss.best_scale(V, Y, np.inf if c <= 0 else beta / c)[1])
            rel = (primal - lower) / max(abs(primal), np.finfo(float).tiny)
            timed_out = mon.report(primal, lower, rel, patterns=len(W))
            if rel <= tol and (solver != "al" or inner.feasible):
                converged, status = True, "optimal"
                break
            if solver == "al":
                Fr = inner.grp.relu_output(z)
                if network_close(loss.value(Fr, Y) + beta * float(np.linalg.norm(z, axis=1).sum()), lower, tol):
                    converged, status = True, "optimal"
                    break
            if used >= max_iter:
                status = "iteration_limit"
                break
            if timed_out:
                mon.stop(f"convex program ({solver})")
                status = "time_limit"
                break
            if solver == "pd" and not new and inner.stalled and ipm_cost(2 * K * len(W), r, n, K) <= IPM_MAX_COST \
                    and (rel > (tol if complete else PD_STALL_GAP)
                         or (not inner.polished and inner.ipm.G * inner.ipm.q > inner.ipm.dense_max)):
                # the primal-dual method stalled far from the optimum (thin cones of nearly
                # degenerate data: its multipliers mu / s start huge and the dual residual
                # never falls, docs/convex_program.md §6), or its Woodbury solve stalled,
                # the system is too large for dense steps and the polish found no better
                # point: the barrier method (primal feasible, its dual point comes from the
                # gradient, and its refined Woodbury steps reach ~1e-9) takes over
                solver = "barrier"
                inner = GroupBarrier(Xr, Y, loss, beta, inner.grp.pats, inner.interior)
                continue
            if new:
                new_dirs = None
                if solver == "pd":
                    new, new_dirs = interiors(new)
                    if pd_size(2 * K * (len(W) + len(new)), r) > PD_DENSE_MAX:
                        # beyond dense Newton systems: the barrier method (Woodbury with
                        # refinement copes with its conditioning), else the AL
                        if ipm_cost(2 * K * (len(W) + len(new)), r, n, K) <= IPM_MAX_COST:
                            solver = "barrier"
                            inner = GroupBarrier(Xr, Y, loss, beta, inner.grp.pats, inner.interior)
                        else:
                            solver = "al"
                            old = inner
                            inner = AugmentedLagrangian(Xr, Y, loss, beta, old.grp.pats, z=old.Z.copy())
                elif solver == "barrier":
                    new, new_dirs = interiors(new)
                    if ipm_cost(2 * K * (len(W) + len(new)), r, n, K) > IPM_MAX_COST:
                        # the working set outgrew dense Newton: continue with the AL
                        solver = "al"
                        old = inner
                        inner = AugmentedLagrangian(Xr, Y, loss, beta, old.grp.pats, z=old.Z.copy())
                if new:
                    inner.grow(pats[new]) if solver == "al" else inner.grow(pats[new], new_dirs)
                    W.extend(new)
                continue
            if round_tol <= 1e-13 or round_tol <= 0.01 * tol * 1e-3:
                if solver == "barrier" and rel > PD_STALL_GAP and not al_rescue:
                    # the barrier method ended far from the optimum: beta ~1e-9 of
                    # max|X| max|y| (its start scales like 1/beta; its own gap m/tau
                    # says converged while the exact one is ~1; 10 x 3 data, beta = 1e-12:
                    # network 8.9, above the zero network's 6.96, where the augmented
                    # Lagrangian reaches 3.7e-11): the augmented Lagrangian takes over
                    # (AL_RESCUE_BUDGET more iterations), from the barrier's point when
                    # that beats the zero network, else from zero
                    al_rescue = True
                    start = inner.Z.copy() if primal < loss.value(np.zeros_like(Y), Y) else None
                    solver = "al"
                    inner = AugmentedLagrangian(Xr, Y, loss, beta, inner.grp.pats, z=start)
                    max_iter = max_iter if user_budget else used + AL_RESCUE_BUDGET
                    round_tol = tol
                    continue
                break  # at the solver's precision limit without closing the gap
            round_tol = max(round_tol * 0.01, 0.1 * tol, 1e-13) if round_tol > tol else round_tol * 0.01
        if solver == "al" and status != "breakdown":
            primal, converged, status = al_feasible_value(inner, Y, loss, beta, lower, tol, status,
                                                          complete=complete, project=not timed_out)
    finally:
        mon.stage("certificate")  # the bar itself is closed by the monitor's owner (deepdual.solve)
    return WorkingSetResult(inner.grp, inner.Z, primal, lower, c, solver, used, rounds, len(W), converged, dropped,
                            status)


def al_feasible_value(inner: AugmentedLagrangian, Y: np.ndarray, loss: Loss, beta: float, lower: float, tol: float,
                      status: str, *, complete: bool, project: bool = True) -> tuple[float, bool, str]:
    r"""The augmented Lagrangian's honest result: ``(upper, converged, status)``.

    Its iterate is not feasible, so its convex value can lie below the program's optimum
    and its rebuilt network too (neurons that leave their patterns).  ``upper`` is the
    program's objective at a feasible point: the smallest of the iterate's groups projected
    onto their cones (:meth:`AugmentedLagrangian.feasible_point`; with ``project`` false,
    the infeasible groups set to 0), the zero point, and, on a complete pattern set (where
    every network of one-output neurons is a feasible point of the program after merging,
    so its objective bounds the optimum from above), the rebuilt network's objective.  So
    ``lower <= optimum <= upper`` and the program's gap ``upper - lower`` is never negative;
    ``converged`` only when it is within ``tol`` (relative).  A loop that stopped
    "optimal" on the AL's own test but whose feasible gap is above ``tol`` gets status
    ``"network_bound_reached"`` (its rebuilt network is within ``tol`` of, or below, the
    program's lower bound; docs/convex_program.md §6).
    """
    z = inner.Z
    zf, _ = inner.feasible_point(project=project)
    grp = inner.grp
    upper = float(loss.value(grp.output(zf), Y) + beta * float(np.linalg.norm(zf, axis=1).sum()))
    upper = min(upper, float(loss.value(np.zeros_like(Y), Y)))
    if complete:
        upper = min(upper, float(loss.value(grp.relu_output(z), Y) + beta * float(np.linalg.norm(z, axis=1).sum())))
    converged = upper - lower <= tol * max(abs(upper), np.finfo(float).tiny)
    if converged:
        status = "optimal"
    elif status == "optimal":
        status = "network_bound_reached"
    return upper, converged, status
