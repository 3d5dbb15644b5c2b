r"""Primal log-barrier interior-point method for the convex program over a working set
(``docs/convex_program.md`` §6; Boyd & Vandenberghe, *Convex Optimization*, ch. 11).

Minimizes :math:`\tau(\ell(F) + \beta\sum_gt_g) - \sum_{g,j}\log((2D_g - I)Xz_g)_j
- \sum_g\log(t_g^2 - \|z_g\|^2)` by Newton's method (dense Cholesky or Woodbury with
refinement) with a feasible line search, then :math:`\tau \leftarrow \mu\tau`; the gap over
the working set is at most :math:`m/\tau` at central points.

Part of :mod:`deepdual.relu.convex_program.solver` (the entry point, which re-exports the names).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve

from ...losses import Loss
from .groups import Groups, loss_hessian_factor, loss_hessian_times
from ...progress import current as current_monitor


def soc_slack(t: np.ndarray, z: np.ndarray) -> np.ndarray:
    r""":math:`t^2 - \|z\|^2` as :math:`(t - \|z\|)(t + \|z\|)` (accurate near the boundary)."""
    nz = np.linalg.norm(z, axis=1)
    return (t - nz) * (t + nz)


def block_cholesky(D: np.ndarray) -> np.ndarray:
    """Batched Cholesky factors of SPD blocks (G, q, q).

    Blocks that rounding made numerically indefinite (barrier Hessians near the cone
    boundary have condition numbers ~1/slack^2) get a diagonal shift of 1e-14 of their
    trace, the size of that rounding; this perturbs only the Newton direction, which
    the line search and the duality gap check anyway.
    """
    try:
        return np.linalg.cholesky(D)
    except np.linalg.LinAlgError:
        pass
    q = D.shape[1]
    ev = np.linalg.eigvalsh(D)  # (G, q) ascending
    tr = np.trace(D, axis1=1, axis2=2)
    # shift only the blocks whose smallest eigenvalue is at rounding level of the largest
    bad = ev[:, 0] <= 1e-14 * ev[:, -1]
    base = np.where(bad, np.maximum(-ev[:, 0], 0.0) + 1e-14 * tr, 0.0)
    for factor in (1.0, 10.0, 100.0, 1e4, 1e6):
        try:
            return np.linalg.cholesky(D + (factor * base)[:, None, None] * np.eye(q)[None])
        except np.linalg.LinAlgError:
            continue
    raise LinAlgError("barrier Hessian blocks are not positive definite beyond rounding")  # pragma: no cover



# ============================================================================ inner solvers
class GroupBarrier:
    r"""Primal log-barrier (interior-point) method for the program over a working set.

    Variables :math:`(z_g, t_g)`; minimizes
    :math:`\psi_\tau = \tau(\ell(F) + \beta\sum_gt_g) - \sum_{g,j}\log c_{gj} - \sum_g\log(t_g^2 - \|z_g\|^2)`
    with :math:`c_g = (2D_g - I)Xz_g` on the non-zero rows of ``X``, by Newton's method
    (dense Cholesky) with a feasible backtracking line search, then
    :math:`\tau \leftarrow \mu\tau`.  After centering, the gap of the program over the working
    set is at most :math:`m/\tau` with :math:`m` the barrier parameter (Boyd &
    Vandenberghe, 11.2).
    """

    warm = False
    mu = 4.0  # path step: small steps keep each centering short (~10-30 Newton steps)
    refine = 2  # iterative-refinement steps of the Woodbury solve
    restart_path = True  # on growth, restart tau (else keep it, with warm values)
    # stop centering when lambda^2/2 (a bound on psi - min psi) is below this: 1e-3 keeps
    # the iterate well inside the quadratic region (the next path step starts there) and
    # saved 10-20 % of the Newton steps against 1e-9 on the benchmark problems; the
    # duality gap, not centrality, decides convergence
    center_tol = 1e-3

    def __init__(self, Xr: np.ndarray, Y: np.ndarray, loss: Loss, beta: float, pats: np.ndarray,
                 interior: np.ndarray) -> None:
        self.Xr, self.Y, self.loss, self.beta = Xr, Y, loss, beta
        self.R = np.linalg.norm(Xr, axis=1) > 0
        self.grp = Groups(Xr, pats, Y.shape[1])
        self.interior = interior  # (P, r) unit interior directions
        self.tau: float | None = None
        self.z, self.t = self._start(np.arange(self.grp.size))
        self.tau = self._tau0()
        self.iters = 0
        self.stalled = False

    @property
    def m(self) -> float:
        return float(self.grp.size * (int(self.R.sum()) + 2))

    def _start(self, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r"""Approximately central values for groups at zero: an inactive group balances
        :math:`\tau\beta t` against its :math:`|R| + 2` barrier terms, so
        :math:`t \approx (|R| + 2)/(\tau\beta)` with :math:`z` half-way inside the cone."""
        tau = self.tau if self.tau is not None else self._tau0()
        scale = (int(self.R.sum()) + 2) / (tau * self.beta)
        z = self.interior[self.grp.p[groups]] * (0.5 * scale)
        return z, scale * np.ones(len(groups))

    def _tau0(self) -> float:
        # gap m / tau comparable to the objective of the zero network
        f = self.loss.value(np.zeros_like(self.Y), self.Y)
        return self.m / max(abs(f), np.finfo(float).tiny)

    def grow(self, pats: np.ndarray, interior: np.ndarray) -> None:
        """Append patterns; old groups keep their (feasible) values, new ones start small."""
        old = self.grp
        oz, ot = self.z, self.t
        Pold = len(old.pats)
        self.grp = Groups(self.Xr, np.vstack([old.pats, pats]), self.Y.shape[1])
        self.interior = np.vstack([self.interior, interior])
        # restart the path: at a large tau the damped Newton phase would have to remove a
        # barrier gap of order tau * (f - f*) at O(1) per step
        if self.restart_path:
            self.tau = self._tau0()
        z, t = self._start(np.arange(self.grp.size))
        keep = self.grp.p < Pold
        # groups are ordered (s, p, k): map the old ones by their labels
        old_index = {(s, p, k): g for g, (s, p, k) in enumerate(zip(old.s, old.p, old.k))}
        if self.warm:
            for g in np.flatnonzero(keep):
                j = old_index[(self.grp.s[g], self.grp.p[g], self.grp.k[g])]
                z[g], t[g] = oz[j], ot[j]
        self.z, self.t = z, t

    def f0(self, z: np.ndarray, t: np.ndarray) -> float:
        return self.loss.value(self.grp.output(z), self.Y) + self.beta * float(t.sum())

    def _psi(self, z: np.ndarray, t: np.ndarray, tau: float) -> float:
        c = self.grp.constraint(z)[:, self.R]
        w = soc_slack(t, z)
        if np.any(c <= 0) or np.any(w <= 0) or np.any(t <= 0):
            return np.inf
        return tau * self.f0(z, t) - float(np.sum(np.log(c))) - float(np.sum(np.log(w)))

    def _newton(self, tau: float) -> tuple[np.ndarray, np.ndarray, float]:
        r"""Newton direction of :math:`\psi_\tau` and the squared decrement.

        The Hessian is block diagonal (barrier, one :math:`(r+1)\times(r+1)` block per
        group) plus :math:`\tau B^T\nabla^2\ell B` of rank at most :math:`nK`; it is solved
        densely when that is smaller, else by the Woodbury identity
        :math:`(D + UU^T)^{-1} = D^{-1} - D^{-1}U(I + U^TD^{-1}U)^{-1}U^TD^{-1}`.
        """
        grp, z, t = self.grp, self.z, self.t
        G, r = z.shape
        n, K = self.Y.shape
        F = grp.output(z)
        c = grp.constraint(z)[:, self.R]
        XR = self.Xr[self.R]
        sgR = grp.SG[:, self.R]
        zz = np.sum(z * z, axis=1)
        w = soc_slack(t, z)
        gz = tau * grp.adjoint(self.loss.gradient(F, self.Y)) - (sgR / c) @ XR + 2.0 * z / w[:, None]
        gt = tau * self.beta - 2.0 * t / w
        g = np.concatenate([gz, gt[:, None]], axis=1)  # (G, r + 1)
        # barrier blocks
        Dblk = np.zeros((G, r + 1, r + 1))
        Dblk[:, :r, :r] = ((1.0 / c**2)[:, :, None] * XR[None]).transpose(0, 2, 1) @ XR  # sum_j x_j x_j^T / c_j^2
        Dblk[:, :r, :r] += (2.0 / w)[:, None, None] * np.eye(r)[None] \
            + 4.0 * z[:, :, None] * z[:, None, :] / (w**2)[:, None, None]
        Dblk[:, :r, r] = Dblk[:, r, :r] = -4.0 * t[:, None] * z / (w**2)[:, None]
        # d^2/dt^2 of -log(t^2 - |z|^2) is 2(t^2 + |z|^2)/w^2: written without the
        # cancellation of -2/w + 4t^2/w^2 near the cone's boundary
        Dblk[:, r, r] = 2.0 * (t**2 + zz) / w**2
        Q = G * (r + 1)
        if Q <= n * K:
            H = np.zeros((G, r + 1, G, r + 1))
            H[np.arange(G), :, np.arange(G), :] = Dblk
            H = H.reshape(Q, Q)
            B = grp.design()
            HB = loss_hessian_times(self.loss, F, self.Y, B)
            zi = (np.arange(G)[:, None] * (r + 1) + np.arange(r)[None, :]).ravel()
            H[np.ix_(zi, zi)] += tau * (B.T @ HB)
            try:
                d = -cho_solve(cho_factor(H, check_finite=False), g.ravel(), check_finite=False)
            except (LinAlgError, ValueError):
                d = -np.linalg.lstsq(H, g.ravel(), rcond=None)[0]
            d = d.reshape(G, r + 1)
        else:
            Lf = loss_hessian_factor(self.loss, F, self.Y)  # (n, K, K): L_i L_i^T = Hessian of sample i
            A = grp.SD[:, :, None] * self.Xr[None]  # (G, n, r)
            Lsel = Lf[:, grp.k, :].transpose(1, 0, 2)  # (G, n, K): L_i[k_g, :]
            U = np.zeros((G, r + 1, n, K))
            U[:, :r] = np.sqrt(tau) * A.transpose(0, 2, 1)[:, :, :, None] * Lsel[:, None, :, :]
            U = U.reshape(G, r + 1, n * K)
            Lb = block_cholesky(Dblk)
            Li = np.linalg.inv(Lb)  # (G, r+1, r+1): small triangular blocks
            Dinv = Li.transpose(0, 2, 1) @ Li

            def dinv(M: np.ndarray) -> np.ndarray:  # (G, r+1, k) -> D^{-1} M blockwise
                return Dinv @ M

            Uf = U.reshape(Q, n * K)
            Yw = dinv(U).reshape(Q, n * K)
            Cap = np.eye(n * K) + Uf.T @ Yw
            try:
                cf = cho_factor(Cap, check_finite=False)
                csolve = lambda b: cho_solve(cf, b, check_finite=False)  # noqa: E731
            except (LinAlgError, ValueError):
                csolve = lambda b: np.linalg.lstsq(Cap, b, rcond=None)[0]  # noqa: E731

            def solve(b: np.ndarray) -> np.ndarray:  # (D + U U^T)^{-1} b by Woodbury
                y0 = dinv(b.reshape(G, r + 1, 1)).reshape(Q)
                return y0 - Yw @ csolve(Uf.T @ y0)

            rhs = -g.reshape(Q)
            d = solve(rhs)
            # iterative refinement: the Schur complement loses digits when tau is large
            # (Cap ~ tau); two corrections with the same factors restore them
            for _ in range(self.refine):
                Dd = np.einsum("gab,gb->ga", Dblk, d.reshape(G, r + 1)).reshape(Q)
                res = rhs - Dd - Uf @ (Uf.T @ d)
                d = d + solve(res)
            d = d.reshape(G, r + 1)
        lam2 = -float(np.vdot(g, d))
        return d[:, :r], d[:, r], lam2

    def _max_step(self, dz: np.ndarray, dt: np.ndarray) -> float:
        """Largest step in (0, 1] keeping every barrier argument positive (times 0.99)."""
        c = self.grp.constraint(self.z)[:, self.R]
        dc = self.grp.constraint(dz)[:, self.R]
        a = 1.0
        neg = dc < 0
        if np.any(neg):
            a = min(a, float(np.min(-c[neg] / dc[neg])))
        # t^2 - ||z||^2 along the step: w + b a + q a^2 > 0
        w = soc_slack(self.t, self.z)
        b = 2.0 * (self.t * dt - np.sum(self.z * dz, axis=1))
        q = dt**2 - np.sum(dz**2, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            disc = b * b - 4.0 * q * w
            sq = np.sqrt(np.maximum(disc, 0.0))
            r1 = np.where(q != 0, (-b - sq) / (2.0 * q), np.where(b < 0, -w / b, np.inf))
            r2 = np.where(q != 0, (-b + sq) / (2.0 * q), np.inf)
        roots = np.concatenate([r1[(disc >= 0) | (q == 0)], r2[(disc >= 0) & (q != 0)]])
        roots = roots[np.isfinite(roots) & (roots > 0)]
        if roots.size:
            a = min(a, float(roots.min()))
        t_neg = dt < 0
        if np.any(t_neg):
            a = min(a, float(np.min(-self.t[t_neg] / dt[t_neg])))
        return min(1.0, 0.99 * a)

    def center(self, tau: float, budget: int) -> int:
        """Newton's method on psi_tau until the decrement is at rounding level.

        Sets ``self.stalled`` when the decrement stops falling below 1 (rounding in the
        Newton direction at large tau): the point is then as central as this precision
        allows and a larger tau would not help.
        """
        used = 0
        best, since = np.inf, 0
        self.stalled = False
        mon = current_monitor()
        while used < budget and not mon.tick():  # (tick: progress bar; True past the time limit)
            dz, dt, lam2 = self._newton(tau)
            used += 1
            # lambda^2/2 bounds psi - min psi (self-concordance): see center_tol
            if lam2 / 2.0 <= self.center_tol:
                break
            if lam2 < 0.5 * best:
                best, since = lam2, 0
            else:
                since += 1
                if since >= 8 and best < 1.0:
                    self.stalled = True
                    break
            a = self._max_step(dz, dt)
            if lam2 > 0.0625:  # outside the quadratic region (lambda > 1/4): backtrack
                p0 = self._psi(self.z, self.t, tau)
                while a > 1e-14 and not (self._psi(self.z + a * dz, self.t + a * dt, tau)
                                         <= p0 - 0.01 * a * lam2):
                    a *= 0.5
                if a <= 1e-14:
                    self.stalled = True
                    break
            self.z, self.t = self.z + a * dz, self.t + a * dt
        self.iters += used
        return used

    def solve(self, tol: float, budget: int) -> int:
        """Follow the central path until ``m / tau <= tol * |f|`` (or the budget is spent,
        or centering stalls at the precision limit)."""
        used = 0
        stalls = 0
        # the barrier gap cannot usefully go below ~1e-13 relative (rounding of psi)
        tol = max(tol, 1e-13)
        while used < budget and not current_monitor().expired():
            used += self.center(self.tau, budget - used)
            stalls = stalls + 1 if self.stalled else 0
            f = self.f0(self.z, self.t)
            # a stalled centering is still near the path (lambda < 1): go on, unless two
            # in a row show that the precision limit is reached
            if self.m / self.tau <= tol * abs(f) or stalls >= 2:
                break
            self.tau *= self.mu
        self.stalled = stalls >= 2
        return used

    @property
    def Z(self) -> np.ndarray:
        return self.z
