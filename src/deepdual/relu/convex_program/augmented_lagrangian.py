r"""Augmented Lagrangian on the cone constraints of the convex program, with FISTA
subproblems (``docs/convex_program.md`` §6; Mishkin, Sahiner & Pilanci, ICML 2022;
Beck & Teboulle, 2009).

:math:`\mathcal{L}_\rho = \ell(F(z)) + \beta\sum_g\|z_g\| + \frac1{2\rho}\sum_g(\|(\lambda_g -
\rho G_gz_g)_+\|^2 - \|\lambda_g\|^2)`, minimized by FISTA with a group soft-threshold prox,
then the multiplier update :math:`\lambda_g \leftarrow (\lambda_g - \rho G_gz_g)_+`.  First
order: used for large problems and losses without a Hessian.

Part of :mod:`deepdual.relu.convex_program.solver` (the entry point, which re-exports the names).
"""

from __future__ import annotations

import numpy as np

from ...losses import Loss
from .groups import Groups, loss_curvature
from .certificate import cone_value, spectral_norm_upper
from ...progress import current as current_monitor


def network_close(net: float, low: float, tol: float) -> bool:
    """Whether a network's objective ``net`` is within ``tol`` (relative) of the lower bound ``low``."""
    return net - low <= tol * max(abs(net), np.finfo(float).tiny)


#: augmented Lagrangian schedule: penalty growth when the violation fell by less than
#: 4x in a round, per-round FISTA budget, and the factor tightening the subproblem
#: tolerance each round
AL_RHO_GROWTH = 2.0
AL_INNER_BUDGET = 5000
AL_INNER_TOL_FACTOR = 0.3
#: FISTA's backtracking gives up (rounding floor) when the step constant grows beyond
#: this factor within one iteration (the loss's curvature bound is never that far off)
BACKTRACK_MAX = 1e12


class AugmentedLagrangian:
    r"""Augmented Lagrangian on the cone constraints with FISTA subproblems.

    :math:`\mathcal{L}_\rho = \ell(F(z)) + \beta\sum_g\|z_g\|
    + \frac1{2\rho}\sum_g(\|(\lambda_g - \rho G_gz_g)_+\|^2 - \|\lambda_g\|^2)`; each
    subproblem by FISTA with backtracking and adaptive restart (group soft-threshold
    prox), then :math:`\lambda_g \leftarrow (\lambda_g - \rho G_gz_g)_+`, and
    :math:`\rho \leftarrow 2\rho` (``AL_RHO_GROWTH``) when the violation fell by less
    than 4x.  The subproblem tolerance starts at :math:`10^{-2}\beta` and shrinks by
    ``AL_INNER_TOL_FACTOR`` per round; each FISTA run gets at most ``AL_INNER_BUDGET``
    iterations.
    """

    def __init__(self, Xr: np.ndarray, Y: np.ndarray, loss: Loss, beta: float, pats: np.ndarray,
                 z: np.ndarray | None = None) -> None:
        self.Xr, self.Y, self.loss, self.beta = Xr, Y, loss, beta
        self.grp = Groups(Xr, pats, Y.shape[1])
        G, r = self.grp.size, Xr.shape[1]
        self.z = np.zeros((G, r)) if z is None else z
        self.lam = np.zeros((G, Xr.shape[0]))
        self.rho = self._default_rho()
        self.L = self._lipschitz()
        self.inner_tol = 1e-2 * beta
        self.viol_prev = np.inf
        self.iters = 0
        self.feasible = False
        self.stalled = False
        #: why the last :meth:`solve` returned: "gap" (the convex iterate nearly feasible and
        #: within tol of the bound), "network_bound" (the rebuilt network within tol of, or
        #: below, the bound: the program is not solved) or "budget" (iterations or time)
        self.stop = "budget"
        #: (iterate, exact max cone value) of the last exact test (reused by the caller)
        self.checked: tuple[np.ndarray | None, float] = (None, np.inf)

    def _op_norm2(self) -> float:
        r""":math:`\|z \mapsto F\|^2 = \lambda_{\max}(\sum_g D_gXX^TD_g)` (per output)."""
        Xr = self.Xr
        Dm = self.grp.Dm
        n = Xr.shape[0]
        if n <= 2000:
            M = (Xr @ Xr.T) * (Dm.T @ Dm)
            return 2.0 * float(np.linalg.eigvalsh(M)[-1])
        return 2.0 * len(Dm) * spectral_norm_upper(Xr) ** 2

    def _default_rho(self) -> float:
        # balance the penalty's curvature rho ||X||^2 against the loss's
        xn2 = max(spectral_norm_upper(self.Xr) ** 2, np.finfo(float).tiny)
        return max(loss_curvature(self.loss) * self._op_norm2() / xn2, loss_curvature(self.loss))

    def _lipschitz(self) -> float:
        return loss_curvature(self.loss) * self._op_norm2() + self.rho * spectral_norm_upper(self.Xr) ** 2

    def grow(self, pats: np.ndarray) -> None:
        old = self.grp
        oz, ol = self.z, self.lam
        Pold = len(old.pats)
        self.grp = Groups(self.Xr, np.vstack([old.pats, pats]), self.Y.shape[1])
        G = self.grp.size
        z = np.zeros((G, self.Xr.shape[1]))
        lam = np.zeros((G, self.Xr.shape[0]))
        old_index = {(s, p, k): g for g, (s, p, k) in enumerate(zip(old.s, old.p, old.k))}
        for g in np.flatnonzero(self.grp.p < Pold):
            j = old_index[(self.grp.s[g], self.grp.p[g], self.grp.k[g])]
            z[g], lam[g] = oz[j], ol[j]
        self.z, self.lam = z, lam
        self.L = max(self.L, self._lipschitz())

    def _fista(self, tol: float, budget: int) -> int:
        r"""FISTA on :math:`\mathcal{L}_\rho` from ``self.z`` until the gradient mapping is at most ``tol``.

        The products :math:`Xz_g` and the output are linear in ``z``, so the
        extrapolated point's are combined from the two last iterates' (one product
        with :math:`X` per accepted step instead of two), and the two adjoint products
        are fused into one.
        """
        grp, loss, Y, beta, rho, lam = self.grp, self.loss, self.Y, self.beta, self.rho, self.lam
        SD, SG, E, Xr = grp.SD, grp.SG, grp.E, self.Xr
        k = grp.k
        scalar = E.shape[1] == 1

        def out(XZ: np.ndarray) -> np.ndarray:
            return (SD * XZ).sum(axis=0)[:, None] if scalar else (SD * XZ).T @ E

        def smooth_at(XZ: np.ndarray, F: np.ndarray) -> tuple[float, np.ndarray]:
            Pi = np.maximum(lam - rho * (SG * XZ), 0.0)
            return loss.value(F, Y) + 0.5 / rho * float(np.vdot(Pi, Pi)), Pi

        def grad(F: np.ndarray, Pi: np.ndarray) -> np.ndarray:
            Gl = loss.gradient(F, Y)
            return (SD * (Gl.T if scalar else Gl.T[k]) - SG * Pi) @ Xr

        def prox(W: np.ndarray, tau: float) -> tuple[np.ndarray, float]:
            nrm = np.sqrt(np.einsum("ij,ij->i", W, W))
            shrink = np.maximum(1.0 - tau / np.where(nrm > 0, nrm, 1.0), 0.0)
            return W * shrink[:, None], float(np.dot(shrink, nrm))  # and sum of the new norms

        z = self.z
        XZ = z @ Xr.T
        F = out(XZ)
        fz, Pi = smooth_at(XZ, F)
        obj = fz + beta * float(np.linalg.norm(z, axis=1).sum())
        y, XZy, Fy, fy, Piy = z, XZ, F, fz, Pi
        t = 1.0
        L = self.L
        f_round = 10.0 * np.finfo(float).eps * np.sqrt(abs(loss.value(np.zeros_like(Y), Y)))
        it = 0
        mon = current_monitor()
        while it < budget and not mon.tick():  # (tick: progress bar; True past the time limit)
            it += 1
            g = grad(Fy, Piy)
            L_entry, refreshed, floor = L, False, False
            while True:
                zn, reg = prox(y - g / L, beta / L)
                XZn = zn @ Xr.T
                Fn = out(XZn)
                fn, Pin = smooth_at(XZn, Fn)
                D = zn - y
                dd = float(np.vdot(D, D))
                # sufficient decrease of the quadratic model; the slack absorbs rounding
                # of f when the step is tiny: 1e-12 relative, and the rounding of the
                # residuals, ~eps |y| |F - y| ~ eps sqrt(f0 f) (near interpolation, tiny
                # beta, f is ~1e-28 of f0 and every step backtracked ~40 times)
                if fn <= fy + float(np.vdot(g, D)) + 0.5 * L * dd + 1e-12 * abs(fy) + f_round * np.sqrt(abs(fy)):
                    break
                L *= 2.0
                if not L <= BACKTRACK_MAX * L_entry:
                    # the test cannot hold at any step: fy was computed from the fused
                    # products of the extrapolated point (a few ulps off y @ X^T), and
                    # near the optimum that rounding exceeds the slack (a 119-row wine
                    # fold: fn - fy = 7e-13 > 1e-12 |fy| at every L, so L doubled to inf
                    # and the loop never ended).  Recompute them exactly once; if the
                    # test still fails the iterate is at the rounding floor: stop.
                    if refreshed:
                        floor = True
                        break
                    refreshed, L = True, L_entry
                    XZy = y @ Xr.T
                    Fy = out(XZy)
                    fy, Piy = smooth_at(XZy, Fy)
                    g = grad(Fy, Piy)
            if floor:
                L = L_entry
                self.stalled = True
                break
            obj_n = fn + beta * reg
            gm = L * float(np.sqrt(dd))
            if obj_n > obj:  # adaptive restart (O'Donoghue & Candes 2015)
                t = 1.0
                y, XZy, Fy, fy, Piy = z, XZ, F, fz, Pi
                if gm <= tol:
                    break
                continue
            t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
            mom = (t - 1.0) / t_new
            y = zn + mom * (zn - z)
            XZy = XZn + mom * (XZn - XZ)
            Fy = Fn + mom * (Fn - F)
            fy, Piy = smooth_at(XZy, Fy)
            z, XZ, F, fz, Pi, obj = zn, XZn, Fn, fn, Pin, obj_n
            t = t_new
            L *= 0.95  # let the step grow again where the curvature is smaller
            if gm <= tol:
                break
        self.z, self.L = z, L
        self.iters += it
        return it

    def solve(self, tol: float, budget: int) -> int:
        """AL rounds until the gap over the working set is at most ``tol`` (or budget)."""
        used = 0
        n = self.Xr.shape[0]
        self.stop = "budget"
        while used < budget and not current_monitor().expired():
            used += self._fista(self.inner_tol, min(budget - used, AL_INNER_BUDGET))
            C = self.grp.constraint(self.z)
            viol = float(np.sqrt(np.sum(np.minimum(C, 0.0) ** 2)))
            self.lam = np.maximum(self.lam - self.rho * C, 0.0)
            # gap of the program over the working set at the convex iterate (its
            # infeasibility must be small too: relative to ||X|| max ||z_g||)
            F = self.grp.output(self.z)
            V = self.loss.dual_point(F, self.Y)
            nz = np.linalg.norm(self.z, axis=1)
            primal = self.loss.value(F, self.Y) + self.beta * float(nz.sum())
            Fr = self.grp.relu_output(self.z)
            net = self.loss.value(Fr, self.Y) + self.beta * float(nz.sum())
            # the exact cone values (an NNLS per pattern and output; 57-60 % of a digits
            # fit) only when needed: best_scale is non-decreasing in beta / c, so the bound
            # from the multipliers' upper bound on c is at most the exact one, and when it
            # already brings the network within tol the exact test stops too (the same
            # decision, the same iterates: docs/convex_program.md §6)
            c_up = self.multiplier_bound(V)
            low_up = self.loss.best_scale(V, self.Y, np.inf if c_up <= 0 else self.beta / c_up)[1]
            if network_close(net, low_up, tol):
                self.feasible, self.stop = False, "network_bound"
                break
            # the exact maximum, NNLS only where the multipliers' bound exceeds the running
            # maximum (the same value as certificate.pattern_values up to the NNLS rounding)
            c = self.exact_max(V)
            self.checked = (self.z, c)  # the caller's final test of this iterate reuses it
            low = self.loss.best_scale(V, self.Y, np.inf if c <= 0 else self.beta / c)[1]
            # feasible enough: the rebuilt network (true ReLUs) has the convex objective to
            # a tenth of tol, and the convex value is not below the lower bound
            size = max(abs(primal), np.finfo(float).tiny)
            self.feasible = abs(net - primal) <= 0.1 * tol * size and primal - low >= -0.1 * tol * size
            if primal - low <= tol * size and self.feasible:
                self.stop = "gap"
                break
            # or the rebuilt network itself is within tol of the program's lower bound:
            # its objective is then at most the program's optimum plus tol (relative); it
            # may be below it (its neurons need not keep the patterns): the program is not
            # solved then (the caller reports a feasible point's value, docs/convex_program.md §6)
            if network_close(net, low, tol):
                self.stop = "network_bound"
                break
            # inexact AL: tighten the subproblem tolerance geometrically (floor: 1e-13 of
            # the dual scale beta, the size rounding allows for a gradient mapping)
            self.inner_tol = max(self.inner_tol * AL_INNER_TOL_FACTOR, 1e-13 * self.beta)
            if viol > 0.25 * self.viol_prev and viol > 1e-12 * np.sqrt(n) * self.beta:
                self.L += (AL_RHO_GROWTH - 1.0) * self.rho * spectral_norm_upper(self.Xr) ** 2
                self.rho *= AL_RHO_GROWTH
            self.viol_prev = viol
        return used

    def multiplier_bound(self, V: np.ndarray) -> float:
        r"""Proven upper bound on :math:`\max_g c_g(v)` over the working set, from the multipliers.

        For every :math:`\mu \ge 0`, :math:`c_g(v) = \max_{u\in K_g,\|u\|\le1}a_g^Tu \le
        \|a_g + X^TS_g\mu\|` (:math:`a_g = s_gX^TD_gv_{k_g}`, :math:`S_g = 2D_g - I`; conic
        duality, ``docs/convex_program.md`` §4); with :math:`\mu = 0` and with the AL's
        multipliers :math:`\mu = \lambda_g` (which tend to the NNLS minimizer's scale at the
        optimum, where :math:`\|a_g + X^TS_g\lambda_g\| \le \beta` is stationarity), the
        smaller of the two.  Two products with :math:`X`; no NNLS.
        """
        return float(self.group_bounds(V).max(initial=0.0))

    def group_bounds(self, V: np.ndarray) -> np.ndarray:
        r"""Per group (G,): :math:`\min(\|a_g\|, \|a_g + X^TS_g\lambda_g\|) \ge c_g(v)`
        (the two bounds of :meth:`multiplier_bound`)."""
        A = self.grp.adjoint(V)  # (G, r): a_g
        B = A + (self.grp.SG * self.lam) @ self.Xr
        return np.minimum(np.linalg.norm(A, axis=1), np.linalg.norm(B, axis=1))

    def exact_max(self, V: np.ndarray) -> float:
        r"""Proven upper bound, exact to NNLS accuracy, on :math:`\max_g c_g(v)` over the working set.

        The exact cone values (:func:`~deepdual.relu.convex_program.certificate.cone_value`,
        one NNLS per group) in decreasing order of the multipliers' bounds
        (:meth:`multiplier_bound`), while a group's bound exceeds the running maximum:
        the skipped groups' values are at most their bounds, so at most the maximum.  Each
        term is the smaller of two upper bounds on :math:`c_g(v)`, so the result is never
        below the maximum.  The same maximum as ``certificate.pattern_values`` (which
        orders by the looser :math:`\|a_g\|`), with fewer NNLS where the multipliers are
        tight (digits, alpha = 1e-3: 9 of 200 groups).
        """
        grp = self.grp
        bound = self.group_bounds(V)
        best = 0.0
        for g in np.argsort(-bound, kind="stable"):
            if bound[g] <= best:
                break
            val = cone_value(self.Xr, grp.Dm[grp.p[g]], grp.s[g] * V[:, grp.k[g]])
            best = max(best, min(val, float(bound[g])))
        return best

    def feasible_point(self, project: bool = True) -> tuple[np.ndarray, int]:
        r"""A feasible point of the program over the working set near the iterate: every
        group outside its cone :math:`K_g = \{u : (2D_g - I)Xu \ge 0\}` replaced by its
        Euclidean projection (:func:`~deepdual.relu.convex_program.first_order.project_cone`,
        feasible up to its :math:`10^{-12}` relative rounding test), or by 0 when
        ``project`` is false or the projection did not finish (0 is in every cone).
        Returns the point and the number of groups changed.  Its convex objective bounds the
        program's optimum from above (``docs/convex_program.md`` §6)."""
        from .first_order import project_cone
        from ...blocks import row_norms

        u = np.array(self.z, dtype=float, copy=True)
        nz = np.linalg.norm(u, axis=1)
        act = np.flatnonzero(nz > 0)
        if len(act) == 0:
            return u, 0
        xn = row_norms(self.Xr)
        C = self.grp.SG[act] * (u[act] @ self.Xr.T)
        bad = act[np.any(C < -1e-12 * xn[None, :] * nz[act, None], axis=1)]
        for g in bad:
            pu = project_cone(self.Xr, self.grp.pats[self.grp.p[g]], u[g], xn=xn) if project else None
            u[g] = 0.0 if pu is None else pu
        return u, len(bad)

    @property
    def Z(self) -> np.ndarray:
        return self.z
