r"""Certified global optima of two-layer ReLU networks on general data by column
generation over activation patterns (``docs/convex_program.md`` §13).

The convex program (C) is solved over a pattern set :math:`W`; its network's dual point
:math:`v = -\nabla\ell(F)` is priced by the branch-and-bound oracle
(:func:`~.oracle.dual_constraint_bb`), which returns a proven upper bound
:math:`\bar c \ge c(v)` and the cells with value above :math:`\beta` (the most violated
patterns).  Every round gives both bounds on the global optimum :math:`P^\star`:

.. math:: \max_{0\le t\le\beta/\bar c} -\ell^*(-tv)\ \le\ P^\star\ \le\ P(\theta_W),

the left by weak duality (docs/convex_program.md §4), the right because the program's
network is a network.  Violated patterns join :math:`W` and the program is solved again;
when no cell is violated the bounds meet (up to the program's tolerance).
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from ...losses import Loss, SquaredLoss
from ...patterns import row_space, sample_patterns
from ...progress import current as current_monitor
from ...solution import Solution
from .groups import INTERIOR_MARGIN, interior_direction
from .cells import violated_cells
from .gram_ipm import GramState
from .oracle import dual_constraint_bb

__all__ = ["column_generation", "certifying_constraint"]

#: a neuron counts as active (its pattern stays) when its size |alpha_j| ||u_j|| exceeds this
#: fraction of the largest (interior-point iterates give every group a small positive size)
ACTIVE_RTOL = 1e-3
#: the program's tolerance is tightened (x0.1 per round) down to this when no violated
#: pattern is found but the program's own gap keeps the bound from certifying
MIN_PROGRAM_TOL = 1e-9
#: the oracle's long run stops once it has found a cell above the certifying bound (this v
#: cannot certify) and this many violated cells
ORACLE_MIN_COLLECT = 10
#: rows of the first LP of a new pattern's interior direction (the smallest margins at the
#: cell's maximizer; rows violated by its solution join, docs/convex_program.md §13)
INTERIOR_ROWS = 32


def certifying_constraint(loss: Loss, V: np.ndarray, Y: np.ndarray, beta: float, target: float) -> float:
    r"""The largest :math:`\bar c` whose weak-duality bound
    :math:`\max_{0\le t\le\beta/\bar c} -\ell^*(-tV)` still reaches ``target``
    (0 when none does; ``inf`` when :math:`-\ell^*(0)` does).

    The bound is non-increasing in :math:`\bar c`, so this is a bisection (60 halvings of
    the bracket, on a log scale).  Only a stopping threshold for the oracle: every
    reported bound is recomputed from the oracle's proven :math:`\bar c`.
    """
    def low(c: float) -> float:
        lo = loss.best_scale(V, Y, beta / c)[1]
        return float(lo) if np.isfinite(lo) else -np.inf

    t_free, d_free = loss.best_scale(V, Y, np.inf)
    if not d_free >= target:
        return 0.0
    if not t_free > 0:
        return np.inf
    c_lo = beta / t_free
    c_hi = 2 * c_lo
    while low(c_hi) >= target:
        if c_hi > 1e300:
            return np.inf
        c_lo, c_hi = c_hi, 2 * c_hi
    for _ in range(60):
        mid = np.sqrt(c_lo * c_hi)
        if low(mid) >= target:
            c_lo = mid
        else:
            c_hi = mid
        if c_hi <= c_lo * (1 + 1e-15):
            break
    return float(c_lo)


def column_generation(
    solve_patterns: Callable[..., Solution],
    X: np.ndarray,
    Y: np.ndarray,
    *,
    scalar: bool,
    beta: float,
    loss: Loss,
    rtol: float,
    bias: bool,
    time_limit: float | None = None,
    n_initial: int = 20,
    n_directions: int = 10000,
    n_violators: int = 10,
    n_oracle_violators: int = 100,
    keep_rounds: int | None = 3,
    oracle_time: float = 0.2,
    rng: Any = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    **options: Any,
) -> Solution:
    r"""Solve the two-layer ReLU problem (scalar output) to a certified global optimum.

    Parameters
    ----------
    solve_patterns : callable
        The convex-program solver over a given pattern set (``patterns=(P, dirs)``); it
        must return a :class:`~deepdual.solution.Solution` whose network is the program's.
    X, Y, scalar, beta, loss, rtol, bias
        As in :func:`~.solver.solve_convex` (``Y`` of shape (n, 1)).
    time_limit : float, optional
        Seconds for the whole run; the best network and the best proven bound so far are
        returned.
    n_initial : int
        Sampled patterns in the first program.
    n_directions : int, default 10000
        Random directions screened per round for violated cells (:func:`~.cells.violated_cells`:
        :math:`\pm v^T(Xu)_+` at each, cell ascent from the best; a search for patterns to
        add, never a bound); 0 leaves pricing to the oracle alone.
    n_violators : int, default 10
        Most violated cells per sign the screening keeps per round.
    n_oracle_violators : int, default 100
        Most violated cells the oracle's long run collects (it runs only when the
        screening found none above the certifying bound; each of its runs costs seconds,
        so it hands the program many columns at once).
    keep_rounds : int or None, default 3
        Column deletion: a pattern that no neuron of the program's network has used (and
        that was not added) in the last ``keep_rounds`` rounds leaves the set; the
        network's own patterns always stay, so the restricted optimum never rises
        (docs/convex_program.md §13).  A deleted pattern stays in the pool of interior
        directions and re-enters without its LP when it is priced again.  1 was measured:
        digits PCA-4 objective 283.42 after 300 s (3: 283.85), but planted 1000 x 4 cycled
        (about 20 patterns leaving and re-entering; gap 6e-4 after 300 s, 351 rounds; 3:
        certified in 50 s), and with the keep time doubled at each re-entry it took 202 s.
        ``None`` keeps every pattern.
    oracle_time : float, default 0.2
        First budget of the oracle's anytime-bound runs in rounds that cannot certify (the
        screening found a cell above the certifying value): a run of ``b`` seconds once
        ``3b`` seconds have passed since the last oracle run, ``b`` doubling each time.  In
        the other rounds the oracle runs until it proves :math:`c(v)\le\bar c_{\rm cert}`
        (:func:`certifying_constraint`) or computes :math:`c(v)`, collecting violated cells.
    log : callable, optional
        Receives one line per round (time, patterns, objective, bound, gap).

    Returns
    -------
    Solution
        ``lower_bound`` is the best proven bound of all rounds; ``info["history"]`` lists
        ``(time_s, patterns, objective, lower_bound, c_upper, c_lower)`` per round.
    """
    t0 = time.perf_counter()
    n = X.shape[0]
    if Y.shape[1] != 1:
        raise ValueError("column generation (strategy='column_generation') needs one output (K = 1); "
                         f"got K = {Y.shape[1]}")
    Xa = np.hstack([X, np.ones((n, 1))]) if bias else X
    rs = row_space(Xa)
    rng = np.random.default_rng(rng)
    if rs.rank == 0:
        return solve_patterns(X, Y, scalar=scalar, beta=beta, depth=2, loss=loss, rtol=rtol, bias=bias,
                              **options)
    pats, dirs = sample_patterns(Xa, n_initial, rng, return_directions=True)
    history: list[tuple] = []
    best_sol: Solution | None = None
    best_low, best_dual = -np.inf, None
    oracle_info: dict[str, Any] = {}
    rounds = 0

    def remaining() -> float | None:
        return None if time_limit is None else max(0.0, time_limit - (time.perf_counter() - t0))

    last_used: dict[bytes, int] = {p.tobytes(): 0 for p in pats}
    detail: list[dict[str, Any]] = []
    seeds = np.zeros((0, Xa.shape[1]))
    prog_tol = options.pop("tol", 0.5 * rtol)
    # whether the Gram method was chosen here (not by the caller): it may then give way to the
    # primal-dual method when its precision limit keeps the bound from certifying
    gram_chosen = isinstance(loss, SquaredLoss) and "solver" not in options
    if isinstance(loss, SquaredLoss):
        # the Gram-reduced interior-point method (docs/convex_program.md §10b): at n = 442,
        # d = 4, 109 patterns 0.54 s where the default (the primal-dual method stalling
        # into the barrier method) took 4.2 s
        options.setdefault("solver", "gram")

    def precision_limited() -> bool:
        """The Gram method did not reach the tolerance it was given (its precision limit,
        ~1e-6 relative on some programs): later rounds use the primal-dual method (with its
        barrier fallback and crossover), which is slower but reaches MIN_PROGRAM_TOL.
        Diabetes PCA-3, rtol 1e-6: stalled at a gap of 1.5e-4 before, certified after."""
        nonlocal gram_chosen
        if gram_chosen and options.get("solver") == "gram" and sol.info.get("restricted_converged") is False:
            options["solver"] = "ipm"
            gram_chosen = False
            return True
        return False
    # the oracle's exactness: finer than rtol (the bound's effect on the gap is ~ its error)
    oracle_rtol = min(1e-6, 0.01 * rtol)
    bound_budget, last_oracle = max(oracle_time, 1e-3), t0
    status = "time limit"
    # the Gram method's state between rounds: Q = F^T F updated for the added and removed
    # patterns only, and the surviving patterns' row working sets (docs/convex_program.md §13)
    gstate = GramState()
    # interior directions of every pattern that was ever in the set (the pool: a pattern that
    # was deleted and is found again re-enters without its LP)
    pool: dict[bytes, np.ndarray] = {p.tobytes(): u for p, u in zip(pats, dirs)}
    while True:
        rounds += 1
        t_round = time.perf_counter()
        extra = {"init": gstate} if options.get("solver") == "gram" and "init" not in options else {}
        sol = solve_patterns(X, Y, scalar=scalar, beta=beta, depth=2, loss=loss, rtol=rtol, bias=bias,
                             patterns=(pats, dirs), polish=False, certify_max_patterns=0, oracle_time=0,
                             tol=prog_tol, **options, **extra)
        if best_sol is None or sol.objective < best_sol.objective:
            best_sol = sol
        if keep_rounds is not None:
            # the network's neuron patterns (its pre-activations on the augmented data)
            act_p, act_u = _neuron_patterns(sol, X, bias)
            for p_, u_ in zip(act_p, act_u):
                k_ = p_.tobytes()
                if k_ not in last_used:
                    u_in = _interior(Xa, p_, u_, pool)
                    if u_in is None:
                        continue
                    pats = np.vstack([pats, p_[None, :]])
                    dirs = np.vstack([dirs, u_in[None, :]])
                last_used[k_] = rounds
        if sol.lower_bound > best_low:
            best_low, best_dual = sol.lower_bound, sol.dual
        V = loss.dual_point(sol.network.forward(X), Y)
        v = V[:, 0]
        up = best_sol.objective
        t_prog = time.perf_counter() - t_round
        # the largest bound on c(v) that would certify this round (the oracle may stop there)
        c_cert = certifying_constraint(loss, V, Y, beta, up - 0.99 * rtol * abs(up))
        # pricing by search (never a bound): many violated cells at once, from screened
        # directions and the last round's violators
        t_scr = time.perf_counter()
        found = violated_cells(Xa, v, beta * (1 + 1e-9), rng, n_directions=n_directions, max_cells=n_violators,
                               seeds=seeds) if n_directions > 0 else []
        if n_directions > 0 and c_cert >= beta and not (found and found[0][0] > c_cert):
            # before the oracle's long run: ten times the directions (about a second; on
            # diabetes PCA-4 1e5 directions found c(v) >= 1.0119 where the oracle took 25 s)
            found = violated_cells(Xa, v, beta * (1 + 1e-9), rng, n_directions=10 * n_directions,
                                   max_cells=n_violators, seeds=seeds)
        t_scr = time.perf_counter() - t_scr
        best_found = found[0][0] if found else 0.0
        # the proven bound.  If the search already found c(v) >= best_found > c_cert, this v
        # cannot certify: the oracle only keeps the anytime bound moving, on a doubling
        # schedule (a run of b seconds once 3b seconds have passed since the last one: about
        # a quarter of the time; short runs every round never get past the first boxes).
        # Otherwise it runs until it proves c(v) <= c_cert, computes c(v) (to oracle_rtol), or
        # has found a cell above c_cert and ORACLE_MIN_COLLECT violated cells, collecting violated
        # cells on the way (it finds those the screening missed).
        t_orc = time.perf_counter()
        rem = remaining()
        # (c_cert < beta: the program's own gap is above rtol, and c(v) >= beta on its neurons)
        hopeless = best_found > c_cert or c_cert < beta
        res = None
        if not hopeless:
            # (it stops once it has found a cell above c_cert, so that this v cannot certify,
            # and collected ORACLE_MIN_COLLECT violated cells: computing c(v) exactly then only
            # refines the anytime bound; breast cancer PCA-4: three such runs took 13-16 s)
            res = dual_constraint_bb(Xa, v, time_limit=rem, rtol=oracle_rtol, stop_below=c_cert,
                                     stop_above=c_cert, min_collect=ORACLE_MIN_COLLECT,
                                     collect_above=beta * (1 + 1e-9), max_collect=n_oracle_violators)
            last_oracle = time.perf_counter()
        elif time.perf_counter() - last_oracle >= 3 * bound_budget:
            res = dual_constraint_bb(Xa, v, time_limit=bound_budget if rem is None else min(rem, bound_budget),
                                     rtol=oracle_rtol, stop_below=c_cert)
            last_oracle = time.perf_counter()
            bound_budget *= 2
        t_orc = time.perf_counter() - t_orc
        if res is not None:
            t_dual, low = loss.best_scale(V, Y, np.inf if res.upper <= 0 else beta / res.upper)
            if np.isfinite(low) and low > best_low:
                best_low, best_dual = float(low), t_dual * V
            oracle_info = {"upper": res.upper, "lower": res.lower, "nodes": res.nodes, "status": res.status,
                           "exact": res.exact}
        c_up = res.upper if res is not None else np.inf
        c_low = max(res.lower if res is not None else 0.0, best_found)
        t = time.perf_counter() - t0
        history.append((t, int(len(pats)), float(up), float(best_low), float(c_up), float(c_low)))
        gap = (up - best_low) / abs(up) if up != 0 else up - best_low
        current_monitor().report(up, best_low, gap, patterns=len(pats))
        if log is not None:
            log(f"{t:8.1f}s  round {rounds:3d}  patterns {len(pats):5d}  objective {up:.10g}  "
                f"bound {best_low:.10g}  gap {gap:.2e}  c(v) in [{c_low:.6g}, {c_up:.6g}]")
        new = [(p, u) for (_, _, p, u) in found]
        if res is not None:
            new += [(p, u) for (_, _, k, p, u) in res.violators]
        detail.append({"program_s": t_prog, "solver": sol.info.get("solver"), "iterations": sol.info.get("iterations"),
                       "screen_s": t_scr, "oracle_s": t_orc, "oracle_nodes": res.nodes if res else 0,
                       "oracle_status": res.status if res else "skipped", "c_cert": c_cert, "screened": len(found),
                       "screened_max": best_found, "violators": len(res.violators) if res else 0})
        if up - best_low <= rtol * abs(up):
            status = "certified"
            break
        if time_limit is not None and remaining() <= 0:
            status = "time limit"
            current_monitor().stop("column generation")
            break
        if not new:
            if c_cert < beta and (prog_tol > MIN_PROGRAM_TOL or precision_limited()):
                # no violated cell, but the program's own gap keeps the bound below rtol: solve
                # it more accurately (the certifying bound c_cert is then above beta)
                prog_tol = max(prog_tol * 0.1, MIN_PROGRAM_TOL)
                precision_limited()
                continue
            # the oracle proved c(v) <= its bound without finding a violated cell: the gap
            # left is the program's own tolerance (or the oracle's time ran out)
            status = "no violated pattern found" if res is not None and res.exact else "stalled: oracle stopped"
            break
        seeds = np.array([u for _, u in new]).reshape(-1, Xa.shape[1])
        P_new = np.array([p for p, _ in new], dtype=bool)
        known = {p.tobytes() for p in pats}
        keep, D_keep = [], []
        t_int = time.perf_counter()
        for i, p in enumerate(P_new):
            if p.any() and p.tobytes() not in known:
                known.add(p.tobytes())
                # a strictly interior direction, computed once per pattern (the maximizers lie
                # on the cells' faces; the solver would otherwise solve this LP every round)
                u_in = _interior(Xa, p, new[i][1], pool)
                if u_in is not None:
                    keep.append(i)
                    D_keep.append(u_in)
        detail[-1]["interior_s"] = time.perf_counter() - t_int
        if not keep:
            if prog_tol > MIN_PROGRAM_TOL or precision_limited():
                # the violated patterns are in the set already: the program's tolerance
                prog_tol = max(prog_tol * 0.1, MIN_PROGRAM_TOL)
                precision_limited()
                continue
            status = "stalled: violated patterns already in the set"
            break
        pats = np.vstack([pats, P_new[keep]])
        dirs = np.vstack([dirs, np.array(D_keep)])
        if keep_rounds is not None:
            for i in keep:
                last_used[P_new[i].tobytes()] = rounds
            stay = np.array([rounds - last_used.get(p.tobytes(), -10**9) < keep_rounds for p in pats])
            pats, dirs = pats[stay], dirs[stay]
    info = dict(best_sol.info)
    info.update({
        "strategy": "column_generation",
        "history": history,
        "rounds_detail": detail,
        "rounds": rounds,
        "status": status,
        "oracle": oracle_info,
        "patterns": int(len(pats)),
        "time_s": time.perf_counter() - t0,
    })
    info.pop("note", None)
    if status != "certified":
        info["note"] = (f"column generation stopped ({status}) before the gap reached rtol={rtol:g}; "
                        "lower_bound is proven (branch-and-bound bound on the dual constraint)")
    method = "convex program (Pilanci & Ergen 2020), column generation with branch-and-bound pricing"
    return Solution(network=best_sol.network, objective=float(best_sol.objective), lower_bound=float(best_low),
                    method=method, rtol=rtol, dual=best_dual, info=info)


def _neuron_patterns(sol: Solution, X: np.ndarray, bias: bool) -> tuple[np.ndarray, np.ndarray]:
    r"""Activation patterns :math:`1[Xu_j + b_j \ge 0]` of the network's active neurons
    (:math:`\|u_j\||\alpha_j|` above :math:`10^{-8}` of the largest; a two-layer network)."""
    net = sol.network
    W1 = np.asarray(net.weights[0][0], dtype=float)
    H = X @ W1
    U = W1.T
    if bias and net.biases is not None and net.biases[0][0] is not None:
        b = np.asarray(net.biases[0][0], dtype=float)
        H = H + b[None, :]
        U = np.hstack([U, b[:, None]])
    size = np.linalg.norm(U, axis=1) * np.linalg.norm(np.asarray(net.weights[0][1], dtype=float), axis=1)
    on = size > ACTIVE_RTOL * max(float(size.max(initial=0.0)), np.finfo(float).tiny)
    return (H[:, on] >= 0).T, U[on]


def interior_direction_rows(Xa: np.ndarray, pattern: np.ndarray, u0: np.ndarray | None = None,
                            k: int = INTERIOR_ROWS, max_rounds: int = 6) -> np.ndarray | None:
    r"""A unit vector strictly inside the cone :math:`\{u : (2D - I)X_au \ge 0\}` of ``pattern``
    (:func:`~.groups.interior_direction`) by row generation: the direction for the ``k`` rows
    of smallest margin :math:`|x_j^Tu_0|/\|x_j\|` at a point ``u0`` of the (closed) cell;
    the rows whose margin is below half the smallest margin on those rows join, until none
    is (so the result is as well centred as the full LP's to a factor 2); else the LP over
    all rows.  The result is checked on every row; only the LP's size changes (n = 1797:
    ~14 ms per LP over all rows)."""
    n = Xa.shape[0]
    if u0 is None or n <= 4 * k:
        return interior_direction(Xa, pattern.astype(float))
    xn = np.linalg.norm(Xa, axis=1)
    nz = xn > 0
    sg = np.where(pattern, 1.0, -1.0)
    marg0 = np.abs(Xa @ u0) / np.where(nz, xn, 1.0)
    marg0[~nz] = np.inf
    rows = np.argpartition(marg0, min(k, n - 1))[:k]
    for _ in range(max_rounds):
        z = interior_direction(Xa[rows], pattern[rows].astype(float))
        if z is None:
            return interior_direction(Xa, pattern.astype(float))
        m = sg * (Xa @ z) / np.where(nz, xn, 1.0)
        s_sub = float(np.min(m[rows][nz[rows]], initial=np.inf))
        bad = np.flatnonzero(nz & (m <= max(INTERIOR_MARGIN, 0.5 * s_sub)))
        if len(bad) == 0:
            return z
        rows = np.union1d(rows, bad[np.argsort(m[bad])[:k]])
    return interior_direction(Xa, pattern.astype(float))


def _interior(Xa: np.ndarray, pattern: np.ndarray, u0: np.ndarray | None, pool: dict) -> np.ndarray | None:
    """A pattern's interior direction from the pool, else by :func:`interior_direction_rows`
    (kept in the pool)."""
    key = pattern.tobytes()
    if key not in pool:
        pool[key] = interior_direction_rows(Xa, pattern, u0)
    return pool[key]
