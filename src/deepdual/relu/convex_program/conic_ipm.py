r"""Primal–dual interior-point method (Mehrotra predictor–corrector, Nesterov–Todd
scaling) for the group-separable second-order-cone least-squares program

.. math::

    \min_{z_g, t_g}\ \tfrac12\Big\|\sum_g B_gz_g - y\Big\|^2 + \beta\sum_g t_g
    \quad\text{s.t.}\quad S_gX_Rz_g \ge 0,\quad (t_g, z_g)\in\mathcal{Q}^{r+1},

with :math:`B_g = s_g\,\bar B_{b_g}` (a sign times one of a few *base* blocks
:math:`\bar B_b \in \mathbb{R}^{N\times r}`), :math:`S_g` a diagonal sign matrix and
:math:`\mathcal{Q}^{r+1} = \{(t, z) : t \ge \|z\|\}`.  This is the squared-loss convex
program of two-layer ReLU networks (``docs/convex_program.md`` §2, §6): group
:math:`g` is one (pattern, sign, output), :math:`\bar B_b = D_pX` placed on output
:math:`k`, :math:`S_g = 2D_p - I` on the non-zero rows :math:`X_R` of :math:`X`.

Method (Vandenberghe 2010, §§3–4; Nocedal & Wright ch. 16, 19).  Write the
constraints as :math:`s = Cx \in \mathcal{K}` (linear cone × second-order cones) and
let :math:`\lambda \in \mathcal{K}` be their multipliers.  Each iteration solves the
Newton equations of :math:`Px + q = C^T\lambda`, :math:`s = Cx`, :math:`s\circ\lambda = \sigma\mu e`
in Nesterov–Todd scaled form: with the scaling :math:`W` (:math:`W^{-T}s = W\lambda = \ell`)
the reduced system is

.. math:: (P + C^TW^{-1}W^{-T}C)\,\Delta x = -r_x + C^TW^{-1}(\ell^{-1}\circ d_s),

whose matrix is block diagonal (one :math:`(r+1)\times(r+1)` block per group:
:math:`X_R^T\operatorname{diag}(\lambda/s)X_R` from the linear cone plus the SOC's
:math:`\eta^{-2}(2Jw w^TJ - J)`) plus :math:`P = B^TB` of rank at most :math:`N`.  It is
factored densely (Cholesky) or by the Woodbury identity with iterative refinement,
whichever is cheaper.  Predictor (:math:`d_s = -\ell\circ\ell`), centering
:math:`\sigma = (1 - \alpha_a)^3`, corrector with Mehrotra's second-order term, step
0.99 of the way to the boundary.  The start is primal *feasible* (:math:`s = Cx` at an
interior point) and every step keeps :math:`\Delta s = C\Delta x`, so every iterate is
strictly feasible; the dual residual falls with the steps.

References
----------
L. Vandenberghe, "The CVXOPT linear and quadratic cone program solvers", 2010.
Y. Nesterov and M. Todd, "Self-scaled barriers and interior-point methods for convex
programming", Math. Oper. Res. 22 (1997).
S. Mehrotra, "On the implementation of a primal-dual interior point method", SIAM J.
Optim. 2 (1992).
J. Nocedal and S. Wright, *Numerical Optimization*, 2nd ed., 2006, ch. 16 and 19.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve

from ...progress import current as current_monitor

__all__ = ["GroupSOCQP", "soc_nt_scaling", "soc_max_step", "soc_det", "soc_prod", "soc_div", "bmv", "lin_max_step",
           "mehrotra_step", "ipm_error"]

_TINY = np.finfo(float).tiny


# ============================================================================ second-order cone
def _jdot(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    r""":math:`u^TJv = u_0v_0 - u_1^Tv_1` row by row."""
    return u[:, 0] * v[:, 0] - np.einsum("gi,gi->g", u[:, 1:], v[:, 1:])


def soc_det(u: np.ndarray) -> np.ndarray:
    r""":math:`u^TJu = (u_0 - \|u_1\|)(u_0 + \|u_1\|)` (the factored form loses fewer digits)."""
    nu = np.linalg.norm(u[:, 1:], axis=1)
    return (u[:, 0] - nu) * (u[:, 0] + nu)


def soc_nt_scaling(s: np.ndarray, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Nesterov–Todd scaling of second-order-cone pairs, row by row.

    With :math:`\bar s = s/\sqrt{s^TJs}`, :math:`\bar\lambda = \lambda/\sqrt{\lambda^TJ\lambda}`,
    :math:`\gamma = \sqrt{(1 + \bar s^T\bar\lambda)/2}`, :math:`\bar w = (\bar s + J\bar\lambda)/(2\gamma)`
    and :math:`\eta = (s^TJs/\lambda^TJ\lambda)^{1/4}`, the symmetric scaling is
    :math:`W = \eta(2vv^T - J)`, :math:`v = (\bar w + e)/\sqrt{2(\bar w_0 + 1)}`, with
    :math:`W^2 = \eta^2(2\bar w\bar w^T - J)` and :math:`W^{-1}s = W\lambda`
    (Vandenberghe 2010, §4.2).  Returns ``(eta, wbar, v)``.
    """
    ds = np.sqrt(np.maximum(soc_det(s), _TINY))
    dl = np.sqrt(np.maximum(soc_det(lam), _TINY))
    sb, lb = s / ds[:, None], lam / dl[:, None]
    gamma = np.sqrt(np.maximum(0.5 * (1.0 + np.einsum("gi,gi->g", sb, lb)), _TINY))
    lbJ = lb.copy()
    lbJ[:, 1:] *= -1.0
    wbar = (sb + lbJ) / (2.0 * gamma[:, None])
    eta = np.sqrt(ds / dl)
    v = wbar.copy()
    v[:, 0] += 1.0
    v /= np.sqrt(2.0 * (wbar[:, 0] + 1.0))[:, None]
    return eta, wbar, v


def _soc_apply_W(eta: np.ndarray, v: np.ndarray, x: np.ndarray, inverse: bool = False) -> np.ndarray:
    r""":math:`Wx = \eta(2v(v^Tx) - Jx)` or :math:`W^{-1}x = \eta^{-1}(2Jv(v^TJx) - Jx)`."""
    Jx = x.copy()
    Jx[:, 1:] *= -1.0
    if not inverse:
        return eta[:, None] * (2.0 * v * np.einsum("gi,gi->g", v, x)[:, None] - Jx)
    Jv = v.copy()
    Jv[:, 1:] *= -1.0
    return (2.0 * Jv * np.einsum("gi,gi->g", v, Jx)[:, None] - Jx) / eta[:, None]


def _soc_hessian(eta: np.ndarray, wbar: np.ndarray) -> np.ndarray:
    r""":math:`W^{-2} = \eta^{-2}(2J\bar w\bar w^TJ - J)` (maps :math:`s` to :math:`\lambda`), (G, q, q)."""
    Jw = wbar.copy()
    Jw[:, 1:] *= -1.0
    q = wbar.shape[1]
    J = np.eye(q)
    J[1:, 1:] *= -1.0
    return (2.0 * Jw[:, :, None] * Jw[:, None, :] - J[None]) / (eta**2)[:, None, None]


def soc_prod(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    r"""Jordan product :math:`u\circ v = (u^Tv,\ u_0v_1 + v_0u_1)`."""
    out = np.empty_like(u)
    out[:, 0] = np.einsum("gi,gi->g", u, v)
    out[:, 1:] = u[:, :1] * v[:, 1:] + v[:, :1] * u[:, 1:]
    return out


def soc_div(l: np.ndarray, d: np.ndarray, det: np.ndarray) -> np.ndarray:
    r"""Solve :math:`\ell\circ u = d` (``det`` = :math:`\ell^TJ\ell`):
    :math:`u_0 = (\ell_0d_0 - \ell_1^Td_1)/\det`, :math:`u_1 = (d_1 - u_0\ell_1)/\ell_0`."""
    u = np.empty_like(d)
    u[:, 0] = (l[:, 0] * d[:, 0] - np.einsum("gi,gi->g", l[:, 1:], d[:, 1:])) / det
    u[:, 1:] = (d[:, 1:] - u[:, :1] * l[:, 1:]) / l[:, :1]
    return u


def soc_max_step(x: np.ndarray, dx: np.ndarray, det: np.ndarray | None = None) -> float:
    r"""Largest :math:`\alpha` with :math:`x + \alpha\,dx` in every second-order cone
    (``inf`` if unbounded): the smallest positive root of
    :math:`(x + \alpha dx)^TJ(x + \alpha dx) = 0` (the line leaves the cone through its
    boundary before it could reach :math:`-\mathcal{Q}`)."""
    c = soc_det(x) if det is None else det
    a = soc_det(dx)
    b = 2.0 * _jdot(x, dx)
    disc = b * b - 4.0 * a * c
    ok = disc >= 0
    sq = np.sqrt(np.where(ok, disc, 0.0))
    qv = -0.5 * (b + np.where(b >= 0, sq, -sq))  # stable roots: q / a and c / q
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = np.where(a != 0, qv / a, np.inf)
        r2 = np.where(qv != 0, c / qv, np.inf)
    roots = np.concatenate([r1[ok], r2[ok]])
    roots = roots[np.isfinite(roots) & (roots > 0)]
    return float(roots.min()) if roots.size else np.inf


def bmv(M: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Batched matrix-vector products ``M[g] @ x[g]``."""
    return (M @ x[:, :, None])[:, :, 0]


def lin_max_step(x: np.ndarray, dx: np.ndarray) -> float:
    r"""Largest :math:`\alpha` with :math:`x + \alpha\,dx \ge 0` (``inf`` if unbounded)."""
    neg = dx < 0
    return float(np.min(-x[neg] / dx[neg])) if np.any(neg) else np.inf


# ============================================================================ the program
def ipm_error(f: float, gap: float, res: float, beta: float) -> float:
    r"""The interior-point methods' progress measure :math:`\max(\text{gap}/|f|,\
    \text{res}/\beta)` (``inf`` when any of them is not finite): the best iterate by
    this measure is the one kept."""
    return max(gap / max(abs(f), _TINY), res / beta) if np.isfinite(f + gap + res) else np.inf


def mehrotra_step(direction: Callable[..., Any], ell_l: np.ndarray, ell_q: np.ndarray, mu: float,
                  max_step: Callable[..., float], step_fraction: float) -> tuple[float, Any]:
    r"""One Mehrotra predictor–corrector direction in the scaled variables.

    ``direction(r_l, r_q)`` solves the scaled Newton equations for the complementarity
    right-hand sides :math:`r_l` (linear cone) and :math:`r_q` (second-order cones) and
    returns ``(dx, ds_l, dl_l, ds_q, dl_q)``; ``max_step`` is the largest step that keeps
    the slacks and multipliers in their cones.  The predictor (affine scaling,
    :math:`r = -\ell\circ\ell`) gives :math:`\sigma = (1 - \alpha_{aff})^3`; the corrector
    adds :math:`\sigma\mu e` and Mehrotra's second-order term
    :math:`-\Delta\tilde s_a\circ\Delta\tilde\lambda_a` (Vandenberghe 2010, §5).
    Returns the step length ``min(1, step_fraction * max_step)`` and the corrected
    direction."""
    ll2 = soc_prod(ell_q, ell_q)
    dx, dsl_, dll, dst, dlt = direction(-ell_l**2, -ll2)
    a_aff = min(1.0, max_step(dsl_, dll, dst, dlt))
    sigma = (1.0 - a_aff) ** 3
    corr_l = dsl_ * dll
    corr_q = soc_prod(dst, dlt)
    e = np.zeros_like(ell_q)
    e[:, 0] = 1.0
    step = direction(-ell_l**2 + sigma * mu - corr_l, -ll2 + sigma * mu * e - corr_q)
    return min(1.0, step_fraction * max_step(*step[1:])), step


class GroupSOCQP:
    r"""Mehrotra predictor–corrector with Nesterov–Todd scaling for the program of the
    module docstring.

    Parameters
    ----------
    XR : (m, r)
        Rows of the linear constraints (non-zero rows of ``X``, row-space coordinates).
    SG : (G, m)
        Signs :math:`\pm1` of the linear constraints of each group.
    base : (N, Nb, r)
        Base blocks :math:`\bar B_b`.
    base_of, sign : (G,)
        :math:`B_g = s_g\bar B_{b_g}`.
    y : (N,)
    beta : float > 0
    interior : (G, r)
        Unit directions strictly inside each group's polyhedral cone (start).

    Variables are stored as ``x`` (G, r+1) with ``x[:, 0] = t`` and ``x[:, 1:] = z``.
    """

    #: fraction of the step to the boundary (Vandenberghe 2010 uses 0.99)
    step_fraction = 0.99
    #: iterative-refinement steps of the Woodbury solve (its Schur complement loses
    #: digits as the scaling becomes ill-conditioned near the optimum)
    refine = 2
    #: the Woodbury solve loses digits near the optimum (cancellation between
    #: :math:`D^{-1}` terms of size ~1/gap); when it stalls, the method continues with
    #: the dense Cholesky if the system has at most this many unknowns
    dense_max = 4000
    #: conjugate-gradient steps of the Woodbury-preconditioned solve
    cg_max = 20
    #: whether a stalled Woodbury solve switches to the dense one (the caller may first
    #: try :meth:`polish` at the stalled point, which is much cheaper)
    allow_dense_switch = True

    def __init__(self, XR: np.ndarray, SG: np.ndarray, base: np.ndarray, base_of: np.ndarray,
                 sign: np.ndarray, y: np.ndarray, beta: float, interior: np.ndarray) -> None:
        self.XR, self.SG, self.base, self.base_of, self.sign = XR, SG, base, base_of, sign
        self.y, self.beta = y, float(beta)
        G, m = SG.shape
        N, Nb, r = base.shape
        self.G, self.m, self.r, self.N, self.Nb = G, m, r, N, Nb
        self.q = r + 1
        self.Bflat = base.reshape(N, Nb * r)
        # group -> base incidence (sums over groups sharing a base block)
        self._inc = np.zeros((Nb, G))
        self._inc[base_of, np.arange(G)] = 1.0
        Q = G * self.q
        # dense Cholesky is the more accurate of the two near the optimum: preferred
        # unless it costs more than 4x the Woodbury solve (or needs > ~300 MB)
        self.dense = Q <= self.dense_max and self._dense_cost() <= self._woodbury_cost()
        self._gram = None
        self.iters = 0
        self.stalled = False
        self._start(interior)

    # ---------------------------------------------------------------- costs
    def _dense_cost(self) -> float:
        Q = self.G * self.q
        return Q**3 / 3.0 + 2.0 * Q * Q

    def _woodbury_cost(self) -> float:
        return float(self.N**2 * self.Nb * self.r + self.N**3 / 3.0
                     + (2 + self.refine) * 2.0 * self.N * self.Nb * self.r + self.G * self.q**3)

    @staticmethod
    def step_cost(G: int, r: int, N: int, Nb: int, m: int) -> float:
        """Flops of one iteration (the cheaper factorization plus the block assembly)."""
        q = r + 1
        Q = G * q
        dense = Q**3 / 3.0 if Q <= 6000 else np.inf
        wood = N**2 * Nb * r + N**3 / 3.0 + 8.0 * N * Nb * r + G * q**3
        return float(min(dense, wood) + 2.0 * G * m * r * r)

    # ---------------------------------------------------------------- operators
    def output(self, z: np.ndarray) -> np.ndarray:
        r""":math:`\sum_gB_gz_g` (N,)."""
        zb = self._inc @ (self.sign[:, None] * z)  # (Nb, r)
        return self.Bflat @ zb.ravel()

    def adjoint(self, v: np.ndarray) -> np.ndarray:
        r""":math:`B_g^Tv` for every group (G, r)."""
        return self.sign[:, None] * (self.Bflat.T @ v).reshape(self.Nb, self.r)[self.base_of]

    def constraint(self, z: np.ndarray) -> np.ndarray:
        """Linear slacks S_g X_R z_g (G, m)."""
        return self.SG * (z @ self.XR.T)

    def objective(self, x: np.ndarray) -> float:
        F = self.output(x[:, 1:])
        return 0.5 * float(np.sum((F - self.y) ** 2)) + self.beta * float(x[:, 0].sum())

    # ---------------------------------------------------------------- start
    def _start(self, interior: np.ndarray) -> None:
        r"""Primal feasible, perfectly centred start near the zero network:
        :math:`z_g = a u_g`, :math:`t_g = 2a` (so :math:`s = Cx` is interior), and
        :math:`\lambda = \mu s^{-1}` cone by cone with :math:`\mu = 3a\beta/2`, which makes
        the :math:`t`-part of the dual residual vanish (:math:`\lambda_{t} = \beta`).  The scale
        :math:`a` puts the initial gap :math:`\mu\cdot\deg` at 10x the zero network's
        objective."""
        G, m = self.G, self.m
        f0 = 0.5 * float(self.y @ self.y)
        deg = G * (m + 1)
        # 10x the zero network's objective: fewer iterations than 1x or 100x on the
        # benchmark problems (the dual residual of the start shrinks faster)
        a = 10.0 * max(f0, _TINY) / (1.5 * self.beta * deg)
        x = np.zeros((G, self.q))
        x[:, 1:] = a * interior
        x[:, 0] = 2.0 * a
        mu = 1.5 * a * self.beta
        self.x = x
        self.sl = self.constraint(x[:, 1:])
        # lambda = mu / s would be centred, but rows barely inside the cone (tiny s)
        # would get huge multipliers and a dual residual of that size (4e4 on n = 500,
        # d = 10): cap them at mu / (a typical slack) of the group
        # (the lower quartile: 57 -> 42 iterations on n = 500, d = 10, 100 patterns)
        self.ll = mu / np.maximum(self.sl, np.quantile(self.sl, 0.25, axis=1)[:, None])
        Js = x.copy()
        Js[:, 1:] *= -1.0
        self.lq = mu * Js / soc_det(x)[:, None]  # mu s^{-1}
        self._rescale(np.ones(G), x, self.lq, first=True)

    def _rescale(self, scale: np.ndarray, s: np.ndarray, lam: np.ndarray, first: bool = False) -> None:
        r"""Update the SOC scaling with the NT scaling :math:`\tilde W` of the pair
        ``(s, lam)`` given in the current scaled space: :math:`W \leftarrow \tilde WW`,
        :math:`\ell \leftarrow \tilde W\tilde\lambda` (Vandenberghe 2010, §4: the
        scaled point is never recomputed from :math:`s` and :math:`\lambda`, whose
        :math:`t - \|z\|` near the cone's boundary is below rounding long before
        the gap is small)."""
        q = self.q
        eta, wbar, v = soc_nt_scaling(s, lam)
        J = np.eye(q)
        J[1:, 1:] *= -1.0
        Jv = v.copy()
        Jv[:, 1:] *= -1.0
        Wt = eta[:, None, None] * (2.0 * v[:, :, None] * v[:, None, :] - J[None])
        Wti = (2.0 * Jv[:, :, None] * Jv[:, None, :] - J[None]) / eta[:, None, None]
        self.ell_q = _soc_apply_W(eta, v, lam)
        if first:
            self.W, self.Winv = Wt, Wti
        else:
            self.W, self.Winv = Wt @ self.W, self.Winv @ Wti

    # ---------------------------------------------------------------- linear algebra
    def _blocks(self, WinvT: np.ndarray, wl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r"""Block-diagonal part :math:`D_g = W_g^{-1}W_g^{-T} + X_R^TS_g\operatorname{diag}(w_g)S_gX_R`
        on :math:`(t, z)`, and its triangular factor :math:`R_g` (:math:`D_g = R_g^TR_g`).

        ``R`` is the batched Cholesky factor; where rounding makes a block numerically
        singular (near the optimum :math:`D_g` has eigenvalues from rounding level to
        ~1/gap) it comes from a QR factorization of the stacked square root
        :math:`[W_g^{-T};\ \operatorname{diag}(\sqrt{w_g})S_gX_R]` instead, which keeps
        the small eigenvalues."""
        G, q = self.G, self.q
        D = WinvT.transpose(0, 2, 1) @ WinvT
        D[:, 1:, 1:] += (self.XR.T[None] * wl[:, None, :]) @ self.XR
        try:
            # both terms are Gram matrices (PSD by construction): Cholesky succeeds
            # unless a block is singular to rounding; then the QR of the stacked root
            R = np.linalg.cholesky(D).transpose(0, 2, 1)
        except np.linalg.LinAlgError:
            Msq = np.zeros((G, q + self.m, q))
            Msq[:, :q] = WinvT
            Msq[:, q:, 1:] = (np.sqrt(wl) * self.SG)[:, :, None] * self.XR[None]
            R = np.linalg.qr(Msq, mode="r")
            D = R.transpose(0, 2, 1) @ R
        return D, R

    def _factor(self, D: np.ndarray, R: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        r"""Solver for :math:`(D + B^TB)\,d = b` with ``b`` (G, q)."""
        G, q, r = self.G, self.q, self.r
        Q = G * q
        if self.dense:
            if self._gram is None:
                # B^T B on the z coordinates: s_g s_h Bbar_{b_g}^T Bbar_{b_h}; constant
                Gb = (self.Bflat.T @ self.Bflat).reshape(self.Nb, r, self.Nb, r)
                Gg = Gb[self.base_of][:, :, self.base_of] * (self.sign[:, None, None, None]
                                                            * self.sign[None, None, :, None])
                H0 = np.zeros((G, q, G, q))
                H0[:, 1:, :, 1:] = Gg
                self._gram = H0.reshape(Q, Q)
            H = self._gram.copy()
            idx = np.arange(G)
            H4 = H.reshape(G, q, G, q)
            H4[idx, :, idx, :] += D
            Hs = H.copy()
            try:
                cf = cho_factor(H, check_finite=False, overwrite_a=True)
            except (LinAlgError, ValueError):
                # rounding made it numerically indefinite: shift by rounding level
                H = Hs.copy()
                H[np.diag_indices(Q)] += 1e-13 * np.max(np.abs(np.diag(H)))
                cf = cho_factor(H, check_finite=False, overwrite_a=True)

            def dsolve(b: np.ndarray) -> np.ndarray:
                b = b.reshape(Q)
                d = cho_solve(cf, b, check_finite=False)
                for _ in range(self.refine):  # iterative refinement with the same factor
                    d = d + cho_solve(cf, b - Hs @ d, check_finite=False)
                return d.reshape(G, q)

            return dsolve

        Ri = np.linalg.inv(R)  # small triangular blocks; D^{-1} = R^{-1} R^{-T}
        Dinv = Ri @ Ri.transpose(0, 2, 1)  # (G, q, q)
        M = self._inc @ Dinv[:, 1:, 1:].reshape(G, r * r)  # summed z-blocks per base (Nb, r*r)
        T = (self.base.transpose(1, 0, 2) @ M.reshape(self.Nb, r, r)).transpose(1, 0, 2).reshape(self.N, -1)
        Cap = T @ self.Bflat.T
        Cap[np.diag_indices(self.N)] += 1.0
        cf = cho_factor(Cap, check_finite=False)

        def once(b: np.ndarray) -> np.ndarray:
            y0 = bmv(Dinv, b)
            u = self.output(y0[:, 1:])
            w = cho_solve(cf, u, check_finite=False)
            c = np.zeros_like(b)
            c[:, 1:] = self.adjoint(w)
            return y0 - bmv(Dinv, c)

        def apply(d: np.ndarray) -> np.ndarray:
            out = bmv(D, d)
            out[:, 1:] += self.adjoint(self.output(d[:, 1:]))
            return out

        def solve(b: np.ndarray) -> np.ndarray:
            # preconditioned conjugate gradients on (D + B^T B) d = b with the Woodbury
            # inverse as preconditioner: exact up to the Woodbury formula's rounding,
            # which near the optimum is too large for plain iterative refinement
            d = once(b)
            res = b - apply(d)
            bn = float(np.linalg.norm(b))
            p_ = once(res)
            rz = float(np.vdot(res, p_))
            for _ in range(self.cg_max):
                # 1e-13: a few ulps times the size of the right-hand side
                if not float(np.linalg.norm(res)) > 1e-13 * bn or not rz > 0:
                    break
                Ap = apply(p_)
                alpha = rz / float(np.vdot(p_, Ap))
                d = d + alpha * p_
                res = res - alpha * Ap
                zr = once(res)
                rz_new = float(np.vdot(res, zr))
                p_ = zr + (rz_new / rz) * p_
                rz = rz_new
            return d

        return solve

    # ---------------------------------------------------------------- iteration
    def residual(self, x: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        r"""Dual residual :math:`r_x = Px + q - C^T\lambda` (G, q) and the output ``F``."""
        x = self.x if x is None else x
        F = self.output(x[:, 1:])
        rx = -self.lq.copy()
        rx[:, 0] += self.beta
        rx[:, 1:] += self.adjoint(F - self.y) - (self.SG * self.ll) @ self.XR
        return rx, F

    def gap(self) -> float:
        return float(np.vdot(self.sl, self.ll) + np.vdot(self.ell_q, self.ell_q))  # s^T lam = ell^T ell

    def _state(self) -> tuple:
        return tuple(a.copy() for a in (self.x, self.sl, self.ll, self.lq, self.ell_q, self.W, self.Winv))

    def _restore(self, st: tuple) -> None:
        self.x, self.sl, self.ll, self.lq, self.ell_q, self.W, self.Winv = st

    def _measure(self) -> tuple[float, float, float]:
        """(objective, gap, largest group dual residual)."""
        rx, F = self.residual()
        f = 0.5 * float(np.sum((F - self.y) ** 2)) + self.beta * float(self.x[:, 0].sum())
        res = float(np.max(np.abs(rx[:, 0]) + np.linalg.norm(rx[:, 1:], axis=1)))
        return f, self.gap(), res

    def solve(self, tol: float, budget: int) -> int:
        r"""Iterate until the relative gap :math:`s^T\lambda/|f|` is below ``tol / 2`` and every
        group's dual residual is below ``tol * beta / 4`` (so the residual
        :math:`y - F` scaled into the dual constraint loses at most ~tol), or the budget
        is spent, or the iterates stop improving at the precision limit
        (``self.stalled``; the best iterate seen, by the larger of the two relative
        errors, is kept)."""
        used = 0
        deg = self.G * (self.m + 1)
        self.stalled = False
        mon = current_monitor()
        best, best_state, since = np.inf, None, 0
        anchor = np.inf  # the error when the stall counter was last reset
        while True:
            f, gap, res = self._measure()
            err = ipm_error(f, gap, res, self.beta)
            if err < best:
                best, best_state = err, self._state()
            # an error 10 % below the one at the last reset resets the stall counter: the
            # progress is cumulative (a per-step 10 % test called steady 5-10 % steps a
            # stall: diabetes, 442 x 11, 100 groups, handed over at error 8.4 after 12
            # steps; docs/convex_program.md, "Stall detection")
            if err < 0.9 * anchor:
                since, anchor = 0, err
            else:
                since += 1
            if gap <= 0.5 * tol * max(abs(f), _TINY) and res <= 0.25 * tol * self.beta:
                break
            if since >= 4 or not np.isfinite(err):  # precision limit (or breakdown)
                if not self.dense and self.G * self.q <= self.dense_max and self.allow_dense_switch:
                    self.dense, since = True, 0  # go on with the accurate dense solve
                    self._restore(best_state)
                    continue
                self.stalled = True
                break
            if used >= budget or mon.tick():  # (tick: progress bar; True past the time limit)
                break
            used += 1
            if not self._step(gap / deg):
                if not self.dense and self.G * self.q <= self.dense_max and self.allow_dense_switch:
                    self.dense, since = True, 0
                    self._restore(best_state)
                    continue
                self.stalled = True
                break
        if best_state is not None and best < np.inf:
            f, gap, res = self._measure()
            err = ipm_error(f, gap, res, self.beta)
            if not err <= best:
                self._restore(best_state)
        self.iters += used
        return used

    def _step(self, mu: float) -> bool:
        """One predictor-corrector step; False when the step is zero or the system fails."""
        sl, ll = self.sl, self.ll
        rx, _ = self.residual()
        dl = np.sqrt(sl / ll)  # W on the linear cone
        ell_l = np.sqrt(sl * ll)
        ell_q, W, Winv = self.ell_q, self.W, self.Winv
        det_q = soc_det(ell_q)
        WinvT = Winv.transpose(0, 2, 1)
        D, R = self._blocks(WinvT, ll / sl)
        try:
            kkt = self._factor(D, R)
        except (LinAlgError, ValueError):
            return False

        def direction(dsl: np.ndarray, dsq: np.ndarray):
            # scaled Newton equations: ds~ + dl~ = q_s = ell^{-1} o d_s; dx from the
            # reduced system with right-hand side -r_x + C^T W^{-1} q_s
            wl = (dsl / ell_l) / dl
            qq = soc_div(ell_q, dsq, det_q)
            rhs = bmv(Winv, qq) - rx
            rhs[:, 1:] += (self.SG * wl) @ self.XR
            dx = kkt(rhs)
            dsl_ = self.constraint(dx[:, 1:])
            dst = bmv(WinvT, dx)  # W^{-T} ds (ds = dx on the SOC)
            return dx, dsl_, wl - (ll / sl) * dsl_, dst, qq - dst

        a, (dx, dsl_, dll, dst, dlt) = mehrotra_step(direction, ell_l, ell_q, mu, self._max_step,
                                                     self.step_fraction)
        if not a > 1e-12:
            return False
        self.x = self.x + a * dx
        self.sl = self.sl + a * dsl_
        self.ll = self.ll + a * dll
        self.lq = self.lq + a * bmv(Winv, dlt)
        self._rescale(None, ell_q + a * dst, ell_q + a * dlt)
        return True

    def _max_step(self, dsl: np.ndarray, dll: np.ndarray, dst: np.ndarray, dlt: np.ndarray) -> float:
        det = soc_det(self.ell_q)
        return min(lin_max_step(self.sl, dsl), lin_max_step(self.ll, dll),
                   soc_max_step(self.ell_q, dst, det), soc_max_step(self.ell_q, dlt, det))

    # ---------------------------------------------------------------- polish
    def polish(self, max_iter: int = 40, max_size: int = 4000) -> np.ndarray | None:
        r"""Active-set Newton refinement of the current iterate (a "crossover").

        The interior-point iterate identifies the groups that are non-zero (those with
        :math:`\|z_g\| \ge 10^{-3}\max_h\|z_h\|`) and, in each, the linear constraints
        that are active (:math:`s_j/(\|x_j\|\|z_g\|) < \lambda_j\|x_j\|/\beta`: the
        complementary pair with the smaller scaled member).  On that face the program
        is smooth:

        .. math:: \min_{z}\ \tfrac12\Big\|\sum_{g\in A}B_gz_g - y\Big\|^2 + \beta\sum_{g\in A}\|z_g\|
                  \quad\text{s.t. } x_j^Tz_g = 0 \text{ (active)},

        solved by Newton's method in null-space coordinates :math:`z_g = N_gw_g` with an
        Armijo line search and a ratio test on the other constraints (linear in
        :math:`w`): a constraint that blocks the step joins the active set.  Returns the
        refined ``z`` (G, r), all other groups exactly zero, or ``None`` when the face is
        too large or empty, or Newton fails; the caller keeps whichever point has the
        lower objective, and the certificate is always recomputed from the returned
        point, so a wrong face costs only time.
        """
        z0 = self.x[:, 1:]
        nz = np.linalg.norm(z0, axis=1)
        if not np.any(nz > 0):
            return None
        A = np.flatnonzero(nz >= 1e-3 * nz.max())
        xn = np.maximum(np.linalg.norm(self.XR, axis=1), _TINY)
        act = self.sl[A] / (xn[None] * nz[A, None]) < self.ll[A] * xn[None] / self.beta  # (|A|, m)
        Sx = self.SG[A][:, :, None] * self.XR[None]  # (|A|, m, r): constraint rows
        beta = self.beta
        z = z0[A].copy()
        Bg = self.sign[A, None, None] * self.base[:, self.base_of[A], :].transpose(1, 0, 2)  # (|A|, N, r)

        def phi(zz: np.ndarray) -> float:
            F = np.einsum("gnr,gr->n", Bg, zz)
            return 0.5 * float(np.sum((F - self.y) ** 2)) + beta * float(np.linalg.norm(zz, axis=1).sum())

        for _restart in range(10):
            bases = []
            for i in range(len(A)):
                if np.any(act[i]):
                    # (full V only; a full U would be |active| x |active|: thin when rows >= r)
                    M_ = Sx[i][act[i]]
                    _, sv, Vt = np.linalg.svd(M_, full_matrices=M_.shape[0] < M_.shape[1])
                    # singular values above rounding span the active normals
                    rank = int(np.sum(sv > 1e-10 * sv[0])) if sv.size else 0
                    bases.append(Vt[rank:].T)
                else:
                    bases.append(np.eye(self.r))
            dims = np.array([bb.shape[1] for bb in bases])
            total = int(dims.sum())
            if total == 0 or total > max_size:
                return None
            keep = dims > 0
            off = np.concatenate([[0], np.cumsum(dims)])
            cols = np.concatenate([Bg[i] @ bases[i] for i in range(len(A))], axis=1)  # (N, total)
            BtB, Bty = cols.T @ cols, cols.T @ self.y
            w = np.concatenate([bases[i].T @ z[i] for i in range(len(A))])
            # constraint values are linear in w: rows of Sx[i] @ N_i
            Cw = [Sx[i] @ bases[i] for i in range(len(A))]

            def zof(w: np.ndarray) -> np.ndarray:
                return np.stack([bases[i] @ w[off[i]:off[i + 1]] for i in range(len(A))])

            z = zof(w)
            f = phi(z)
            blocked = None
            for _ in range(max_iter):
                if current_monitor().expired():  # time_limit: keep the interior-point iterate
                    return None
                g_ = BtB @ w - Bty
                H = BtB.copy()
                for i in np.flatnonzero(keep):
                    sl_ = slice(off[i], off[i + 1])
                    nw = float(np.linalg.norm(w[sl_]))
                    if nw == 0.0:
                        return None  # a group left the face: not differentiable
                    u = w[sl_] / nw
                    g_[sl_] += beta * u
                    H[sl_, sl_] += (beta / nw) * (np.eye(len(u)) - np.outer(u, u))
                try:
                    step = -cho_solve(cho_factor(H, check_finite=False), g_, check_finite=False)
                except (LinAlgError, ValueError):
                    # singular (more face dimensions than data): minimum-norm step
                    step = -np.linalg.lstsq(H, g_, rcond=None)[0]
                dec = -float(g_ @ step)
                # Newton decrement at rounding level of the objective: converged
                if not dec > 1e-15 * max(abs(f), _TINY):
                    break
                # ratio test on the inactive constraints (linear in w)
                amax, which = 1.0, None
                for i in np.flatnonzero(keep):
                    ci = Cw[i] @ w[off[i]:off[i + 1]]
                    di = Cw[i] @ step[off[i]:off[i + 1]]
                    neg = (~act[i]) & (di < 0)
                    if np.any(neg):
                        ratios = np.where(neg, np.maximum(ci, 0.0) / np.where(neg, -di, 1.0), np.inf)
                        j = int(np.argmin(ratios))
                        if ratios[j] < amax:
                            amax, which = float(ratios[j]), (i, j)
                a = amax
                while a > 1e-12:
                    wn = w + a * step
                    fn = phi(zof(wn))
                    if fn <= f - 1e-4 * a * dec:
                        break
                    a *= 0.5
                else:
                    break
                w, f = wn, fn
                if which is not None and a == amax:
                    blocked = which
                    break
            z = zof(w)
            if blocked is not None:
                act[blocked] = True  # the blocking constraint joins the active set
                continue
            # face optimum: release the active constraint with the most negative
            # multiplier (KKT on the face: grad_g = sum_j mu_j S_j x_j, mu >= 0)
            F = np.einsum("gnr,gr->n", Bg, z)
            worst, which = 0.0, None
            for i in np.flatnonzero(act.any(axis=1)):
                nzi = float(np.linalg.norm(z[i]))
                if nzi == 0.0:
                    continue
                grad = Bg[i].T @ (F - self.y) + beta * z[i] / nzi
                rows = np.flatnonzero(act[i])
                mu = np.linalg.lstsq(Sx[i][rows].T, grad, rcond=None)[0] * xn[rows]
                j = int(np.argmin(mu))
                # negative beyond rounding of the multipliers (scale beta)
                if mu[j] < min(worst, -1e-9 * beta):
                    worst, which = float(mu[j]), (i, rows[j])
            if which is None:
                break
            act[which] = False
        out = np.zeros_like(z0)
        out[A] = z
        return out

    @property
    def z(self) -> np.ndarray:
        return self.x[:, 1:]

    @property
    def t(self) -> np.ndarray:
        return self.x[:, 0]
