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

from ...losses import Loss
from ...patterns import row_space, sample_patterns
from ...progress import current as current_monitor
from ...solution import Solution
from .groups import interior_direction
from .oracle import cell_ascent, dual_constraint_bb

__all__ = ["column_generation"]

#: a neuron counts as active (its pattern stays) when its size |alpha_j| ||u_j|| exceeds this
#: fraction of the largest (interior-point iterates give every group a small positive size)
ACTIVE_RTOL = 1e-3


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
    n_ascent: int = 25,
    n_violators: int = 25,
    keep_rounds: int | None = 3,
    oracle_time: float = 0.5,
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
    n_ascent : int
        Random starts of cell ascent per round that found a violated cell (more violated
        patterns per round, fewer rounds).
    n_violators : int
        Most violated cells the oracle collects per round.
    keep_rounds : int or None, default 3
        Column deletion: a pattern that no neuron of the program's network has used (and
        that was not added) in the last ``keep_rounds`` rounds leaves the set; the
        network's own patterns always stay, so the restricted optimum never rises
        (docs/convex_program.md §13).  ``None`` keeps every pattern.
    oracle_time : float, default 0.5
        Least seconds of the oracle per round (it runs for a quarter of the program's
        solve time, or to an exact :math:`c(v)` if sooner, collecting violated cells; its
        bound gives every round a proven lower bound by scaling).
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
    while True:
        rounds += 1
        t_round = time.perf_counter()
        sol = solve_patterns(X, Y, scalar=scalar, beta=beta, depth=2, loss=loss, rtol=rtol, bias=bias,
                             patterns=(pats, dirs), polish=False, certify_max_patterns=0, oracle_time=0,
                             **options)
        if best_sol is None or sol.objective < best_sol.objective:
            best_sol = sol
        if keep_rounds is not None:
            # the network's neuron patterns (its pre-activations on the augmented data)
            act_p, act_u = _neuron_patterns(sol, X, bias)
            for p_, u_ in zip(act_p, act_u):
                k_ = p_.tobytes()
                if k_ not in last_used:
                    u_in = interior_direction(Xa, p_.astype(float))
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
        # the lower bound that would certify: c(v) <= beta * (1 + slack)
        # the oracle bounds c(v) for a quarter of the program's time (at least oracle_time
        # s; doubled while it neither proves the bound nor finds a violated cell)
        t_prog = time.perf_counter() - t_round
        budget = max(oracle_time, 0.25 * t_prog)
        while True:
            rem = remaining()
            res = dual_constraint_bb(Xa, v, time_limit=budget if rem is None else min(rem, budget), rtol=1e-7,
                                     stop_below=beta * (1 + 0.1 * rtol), collect_above=beta * (1 + 1e-9),
                                     max_collect=n_violators)
            if res.violators or res.exact or res.upper <= beta * (1 + 0.1 * rtol) or (
                    time_limit is not None and remaining() <= 0):
                break
            budget *= 2
        t_dual, low = loss.best_scale(V, Y, np.inf if res.upper <= 0 else beta / res.upper)
        if np.isfinite(low) and low > best_low:
            best_low, best_dual = float(low), t_dual * V
        oracle_info = {"upper": res.upper, "lower": res.lower, "nodes": res.nodes, "status": res.status,
                       "exact": res.exact}
        t = time.perf_counter() - t0
        history.append((t, int(len(pats)), float(up), float(best_low), float(res.upper), float(res.lower)))
        gap = (up - best_low) / abs(up) if up != 0 else up - best_low
        current_monitor().report(up, best_low, gap, patterns=len(pats))
        if log is not None:
            log(f"{t:8.1f}s  round {rounds:3d}  patterns {len(pats):5d}  objective {up:.10g}  "
                f"bound {best_low:.10g}  gap {gap:.2e}  c(v) in [{res.lower:.6g}, {res.upper:.6g}]")
        if up - best_low <= rtol * abs(up):
            status = "certified"
            break
        if time_limit is not None and remaining() <= 0:
            status = "time limit"
            current_monitor().stop("column generation")
            break
        new = [(p, u) for (_, _, k, p, u) in res.violators]
        if new and n_ascent > 0:
            # more violated cells at little cost: cell ascent from random directions
            for u0 in rng.standard_normal((n_ascent, Xa.shape[1])):
                for s in (1.0, -1.0):
                    val, u, pat = cell_ascent(Xa, s * v, u0)
                    if val > beta * (1 + 1e-9):
                        new.append((pat, u))
        if not new:
            # the oracle proved c(v) <= its bound without finding a violated cell: the gap
            # left is the program's own tolerance (or the oracle's time ran out)
            status = "no violated pattern found" if res.exact else "stalled: oracle stopped"
            break
        P_new = np.array([p for p, _ in new], dtype=bool)
        known = {p.tobytes() for p in pats}
        keep, D_keep = [], []
        for i, p in enumerate(P_new):
            if p.any() and p.tobytes() not in known:
                known.add(p.tobytes())
                # a strictly interior direction, computed once (the maximizers lie on the
                # cells' faces; the solver would otherwise solve this LP again every round)
                u_in = interior_direction(Xa, p.astype(float))
                if u_in is not None:
                    keep.append(i)
                    D_keep.append(u_in)
        if not keep:
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
