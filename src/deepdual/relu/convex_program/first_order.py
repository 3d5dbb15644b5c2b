r"""First-order solver of the convex program over a (large) sampled pattern set, in memory
linear in :math:`n` (``docs/convex_program.md`` §10; Mishkin, Sahiner & Pilanci, ICML 2022).

The program over patterns :math:`D_1, \dots, D_P` (scalar output) is

.. math::

    \min_{z}\ \ell\Big(\sum_{g} s_gD_{p_g}Xz_g\Big) + \beta\sum_g\|z_g\|
    \quad\text{s.t.}\quad S_{p_g}Xz_g \ge 0,\qquad S_p = 2D_p - I,

with two groups per pattern (:math:`s_g = \pm1`; groups :math:`0..P-1` are the
:math:`v_i`, :math:`P..2P-1` the :math:`w_i`).  It is solved by the augmented Lagrangian
(method of multipliers) on the cone constraints,

.. math::

    \mathcal{L}_\rho(z, \lambda) = \ell(Az) + \beta\sum_g\|z_g\|
      + \frac1{2\rho}\sum_g\big(\|(\lambda_g - \rho S_{p_g}Xz_g)_+\|^2 - \|\lambda_g\|^2\big),

each subproblem by FISTA with a group soft-threshold prox, a constant step :math:`1/L`
(:math:`L = \kappa_\ell\|A\|_2^2 + \rho\|X\|_2^2`, :math:`\|A\|_2` by power iteration) and
gradient-based adaptive restart (O'Donoghue & Candès, 2015), followed by the multiplier
update :math:`\lambda_g \leftarrow (\lambda_g - \rho S_{p_g}Xz_g)_+`.

**Memory.**  Nothing of size :math:`n\times n` or :math:`n\cdot P\cdot d` is formed: the
operators are applied in blocks of rows from ``X`` (n, r) and the boolean masks (n, P).
The multipliers (:math:`n \times 2P`, mostly zero: a multiplier is positive only on rows
where the cone constraint was pushed against) are kept block by block in compressed
sparse rows (dense when that is smaller).

**The proven bound of the sampled program.**  For any :math:`\mu \ge 0` (conic duality,
Moreau; ``docs/convex_program.md`` §4)

.. math::

    c_{p,s}(v) = \max_{u\in K_p,\|u\|\le1} s\,v^TD_pXu \le \|X^T(sD_pv + S_p\mu)\|,

and :math:`\mu = 0` gives :math:`\|X^TD_pv\|`.  With :math:`v = -\nabla\ell(Az)` and the
updated multipliers :math:`\mu = (\lambda_g - \rho S_{p_g}Xz_g)_+` (which make the bound
tight at a stationary point of :math:`\mathcal{L}_\rho`: then
:math:`sX^TD_pv + X^TS_p\mu \in \beta\,\partial\|z_g\|`),
:math:`c = \max_g\min(\|X^TD_{p_g}v\|, \|X^T(s_gD_{p_g}v + S_{p_g}\mu_g)\|)` bounds the
dual constraint of the sampled program, and :math:`\max_{t\le\beta/c} -\ell^*(-tv)`
(:meth:`deepdual.losses.Loss.best_scale`) is a **proven lower bound** on its optimum.
The solver stops when the objective of the rebuilt network
(:math:`u_g = z_g/\sqrt{\|z_g\|}`, :math:`\alpha_g = s_g\sqrt{\|z_g\|}`, objective
:math:`\ell(\sum_gs_g(Xz_g)_+) + \beta\sum_g\|z_g\|`) is within ``tol`` of that bound.

**Backends.**  ``device=None`` runs on numpy; ``device="cpu"``, ``"cuda"`` or a
``torch.device`` runs the same iteration on torch tensors (float64) with the loss
evaluated on the host (one vector of length :math:`n` per pass).  Only the ``[torch]``
extra is needed; no GPU is required.

References
----------
A. Mishkin, A. Sahiner and M. Pilanci, "Fast convex optimization for two-layer ReLU
networks: equivalent model classes and cone decompositions", ICML 2022.
A. Beck and M. Teboulle, "A fast iterative shrinkage-thresholding algorithm", SIAM J.
Imaging Sci. 2 (2009).
B. O'Donoghue and E. Candès, "Adaptive restart for accelerated gradient schemes",
Found. Comput. Math. 15 (2015).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from ...losses import Loss
from .groups import loss_curvature

__all__ = [
    "FirstOrderResult", "solve_first_order", "first_order_memory", "available_memory", "check_memory",
    "resolve_device", "FO_BLOCK_ENTRIES", "cell_value", "program_memory", "FO_MIN_WORK",
]

#: ``solve(..., solver="auto")`` takes the first-order method for scalar outputs on sampled
#: pattern sets when n * P * r is at least this (docs/performance.md: the crossover with
#: the interior-point methods)
FO_MIN_WORK = 2e7
#: row blocks hold about this many entries per (rows x 2P) temporary (4 MB in float64)
FO_BLOCK_ENTRIES = 2**19
#: multiplier rounds: penalty growth when the violation fell by less than 4x (1: a fixed
#: penalty, the fastest on the benchmark problems), factor tightening the subproblem
#: tolerance, first subproblem tolerance (times beta), penalty relative to the balance of
#: the two curvatures, and FISTA steps per round (docs/convex_program.md §10)
FO_RHO_GROWTH = 1.0
FO_INNER_TOL_FACTOR = 0.5
FO_INNER_TOL0 = 1e-2
FO_RHO0 = 10.0
FO_ROUND_ITERS = 200
#: the proven bound (one pass over the data) is evaluated every this many FISTA steps
FO_CHECK_EVERY = 25
#: safety factor on the power-iteration estimate of ||A||^2
FO_LIPSCHITZ_SAFETY = 1.1


# ============================================================================ memory
def available_memory() -> int | None:
    """Bytes of memory available to this process (``psutil`` if installed, else
    ``os.sysconf`` on POSIX: available, else physical pages), or ``None`` if unknown."""
    try:
        import psutil  # optional

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - optional
        pass
    for name in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):
        try:
            return int(os.sysconf(name)) * int(os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
            continue
    return None  # pragma: no cover


def first_order_memory(n: int, r: int, P: int) -> int:
    """Estimated peak bytes of :func:`solve_first_order` beyond its inputs: ``X`` in
    row-space coordinates (8nr), the masks (nP), the residual/dual vectors (a few 8n),
    the multipliers (dense worst case 16nP) and the row-block temporaries."""
    block = 8 * 8 * FO_BLOCK_ENTRIES
    return int(8 * n * r + n * P + 6 * 8 * n + 16 * n * P + block)


def program_memory(solver: str, n: int, d: int, r: int, P: int, K: int) -> int:
    """Estimated peak bytes of ``solve(..., method="convex")`` with inner ``solver``
    (``"first_order"``, ``"pd"`` the primal-dual method, ``"barrier"`` or ``"al"``) beyond
    the data: three copies of ``X`` (augmented, row-space, SVD factor) plus the solver's
    arrays (the primal-dual method's (nK, PK, r) blocks; the dense group arrays of the
    barrier method and the augmented Lagrangian, 2KP x n, about eight of them)."""
    common = 3 * 8 * n * (d + 1) + n * P
    if solver == "first_order":
        return common + first_order_memory(n, r, P)
    if solver == "pd":
        return common + 3 * 8 * n * K * P * K * r
    return common + 8 * 8 * 2 * K * P * n


def check_memory(need: int, what: str) -> None:
    """Raise a ``MemoryError`` naming the sizes when ``need`` bytes exceed the available memory."""
    avail = available_memory()
    if avail is not None and need > avail:
        raise MemoryError(
            f"{what} needs about {need / 2**30:.2f} GiB but only {avail / 2**30:.2f} GiB of memory is "
            "available; use fewer samples or fewer patterns (`n_patterns`)")


# ============================================================================ backends
def resolve_device(device: Any) -> Any:
    """``None`` (numpy) or a ``torch.device``; raises a clear error for a bad ``device``."""
    if device is None:
        return None
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("`device=` needs PyTorch: install the extra with `pip install deepdual[torch]`") from exc
    try:
        dev = torch.device(device)
    except (TypeError, RuntimeError) as exc:
        raise ValueError(f"`device` must be None, 'cpu', 'cuda' or a torch.device; got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"`device`={device!r}: CUDA is not available (use device='cpu' or None)")
    return dev


class _Numpy:
    """Array operations of the solver on numpy."""

    def __init__(self) -> None:
        self.device = None

    def put(self, a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=float)

    def put_bool(self, a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=bool)

    def get(self, a: Any) -> np.ndarray:
        return np.asarray(a, dtype=float)

    def zeros(self, *shape: int) -> np.ndarray:
        return np.zeros(shape)

    def relu(self, a: np.ndarray) -> np.ndarray:
        return np.maximum(a, 0.0)

    def as_float(self, a: np.ndarray) -> np.ndarray:
        return a.astype(float)

    def cat(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.concatenate([a, b], axis=1)

    def rownorm(self, a: np.ndarray) -> np.ndarray:
        return np.sqrt(np.einsum("ij,ij->i", a, a))

    def vdot(self, a: np.ndarray, b: np.ndarray) -> float:
        return float(np.vdot(a, b))

    def sumsq(self, a: np.ndarray) -> float:
        return float(np.einsum("ij,ij->", a, a))

    def rowsum(self, a: np.ndarray) -> np.ndarray:
        return a.sum(axis=1)

    def amax(self, a: np.ndarray) -> float:
        return float(a.max()) if a.size else 0.0

    def randn(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal(shape)

    def pack(self, a: np.ndarray) -> Any:
        """Compressed storage of a non-negative block (CSR when smaller, else dense)."""
        nnz = int(np.count_nonzero(a))
        if nnz == 0:
            return None
        if 12 * nnz < 8 * a.size:
            return sp.csr_matrix(a)
        return a

    def unpack(self, stored: Any, shape: tuple[int, int]) -> np.ndarray | None:
        if stored is None:
            return None
        return stored.toarray() if sp.issparse(stored) else stored

    def stored_bytes(self, stored: Any) -> int:
        if stored is None:
            return 0
        if sp.issparse(stored):
            return int(stored.data.nbytes + stored.indices.nbytes + stored.indptr.nbytes)
        return int(stored.nbytes)


class _Torch(_Numpy):
    """The same operations on torch tensors (float64) on ``device``."""

    def __init__(self, device: Any) -> None:
        import torch

        self.torch = torch
        self.device = device

    def put(self, a: np.ndarray) -> Any:
        return self.torch.as_tensor(np.ascontiguousarray(a, dtype=float), device=self.device)

    def put_bool(self, a: np.ndarray) -> Any:
        return self.torch.as_tensor(np.ascontiguousarray(a, dtype=bool), device=self.device)

    def get(self, a: Any) -> np.ndarray:
        return a.detach().cpu().numpy().astype(float) if hasattr(a, "detach") else np.asarray(a, dtype=float)

    def zeros(self, *shape: int) -> Any:
        return self.torch.zeros(shape, dtype=self.torch.float64, device=self.device)

    def relu(self, a: Any) -> Any:
        return self.torch.clamp_min(a, 0.0)

    def as_float(self, a: Any) -> Any:
        return a.to(self.torch.float64)

    def cat(self, a: Any, b: Any) -> Any:
        return self.torch.cat([a, b], dim=1)

    def rownorm(self, a: Any) -> Any:
        return self.torch.linalg.vector_norm(a, dim=1)

    def vdot(self, a: Any, b: Any) -> float:
        return float((a * b).sum())

    def sumsq(self, a: Any) -> float:
        return float((a * a).sum())

    def rowsum(self, a: Any) -> Any:
        return a.sum(dim=1)

    def amax(self, a: Any) -> float:
        return float(a.max()) if a.numel() else 0.0

    def randn(self, shape: tuple[int, int], rng: np.random.Generator) -> Any:
        return self.put(rng.standard_normal(shape))

    def pack(self, a: Any) -> Any:
        nnz = int(self.torch.count_nonzero(a))
        if nnz == 0:
            return None
        if 16 * nnz < 8 * a.numel():
            return a.to_sparse()
        return a

    def unpack(self, stored: Any, shape: tuple[int, int]) -> Any:
        if stored is None:
            return None
        return stored.to_dense() if stored.is_sparse else stored

    def stored_bytes(self, stored: Any) -> int:
        if stored is None:
            return 0
        if stored.is_sparse:
            return int(stored._values().numel() * 8 + stored._indices().numel() * 8)
        return int(stored.numel() * 8)


# ============================================================================ the operator
class _Program:
    r"""The sampled program's operators, applied in row blocks.

    ``A z = \sum_g s_gD_{p_g}Xz_g`` (n,), its adjoint, the cone constraints
    :math:`S_{p_g}Xz_g` and the rebuilt network's output :math:`\sum_gs_g(Xz_g)_+`.
    """

    def __init__(self, ops: _Numpy, Xr: np.ndarray, pats: np.ndarray, y: np.ndarray, loss: Loss) -> None:
        n, r = Xr.shape
        self.ops, self.loss = ops, loss
        self.n, self.r, self.P = n, r, len(pats)
        self.y = y  # (n, 1) numpy, host
        self.X = ops.put(Xr)
        self.Mt = ops.put_bool(pats.T)  # (n, P) masks, row blocks contiguous
        size = max(1, FO_BLOCK_ENTRIES // max(1, 2 * self.P))
        self.blocks = [(a, min(a + size, n)) for a in range(0, n, size)]

    def block(self, a: int, b: int) -> tuple[Any, Any, Any]:
        ops = self.ops
        Mb = ops.as_float(self.Mt[a:b])
        return self.X[a:b], Mb, 2.0 * Mb - 1.0

    def op_norm2(self, rng: np.random.Generator, iters: int = 20) -> float:
        r""":math:`\|B\|_2^2` for :math:`B: (z_p)_{p\le P} \mapsto \sum_pD_pXz_p` by power iteration
        (a lower estimate; ``||A||^2 = 2||B||^2`` for the two signs)."""
        ops = self.ops
        z = ops.randn((self.P, self.r), rng)
        lam = 0.0
        for _ in range(iters):
            nz = float(np.sqrt(ops.sumsq(z)))
            if nz == 0:
                return 0.0
            z = z / nz
            out = ops.zeros(self.P, self.r)
            for a, b in self.blocks:
                Xb, Mb, _ = self.block(a, b)
                F = ops.rowsum(Mb * (Xb @ z.T))
                out = out + (Mb * F[:, None]).T @ Xb
            lam = ops.vdot(z, out)
            z = out
        return float(lam)

    def spectral_norm2(self) -> float:
        r""":math:`\|X\|_2^2` from the r x r Gram matrix (exact; no n x n product)."""
        Gm = self.ops.get(self.X.T @ self.X)
        return float(np.linalg.eigvalsh(0.5 * (Gm + Gm.T))[-1]) if Gm.size else 0.0


@dataclass
class _Multipliers:
    """Multipliers (n, 2P) stored per row block (sparse when smaller)."""

    ops: _Numpy
    blocks: list
    data: list = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.data:
            self.data = [None] * len(self.blocks)

    def get(self, i: int) -> Any:
        return self.ops.unpack(self.data[i], (0, 0))

    def nbytes(self) -> int:
        return sum(self.ops.stored_bytes(d) for d in self.data)


@dataclass
class FirstOrderResult:
    """Result of :func:`solve_first_order` (row-space coordinates)."""

    z: np.ndarray  # (2P, r): rows 0..P-1 sign +1, P..2P-1 sign -1 (the best network seen)
    multipliers: Any  # _Multipliers (opaque; pass back as `multipliers=` to warm-start)
    rho: float
    convex_objective: float  # l(Az) + beta sum ||z_g||
    network_objective: float  # l(sum s (Xz)_+) + beta sum ||z_g|| (the rebuilt network)
    lower: float  # proven lower bound on the sampled program's optimum
    c: float  # proven upper bound on the sampled program's dual constraint at v
    max_violation: float
    iterations: int
    rounds: int
    converged: bool
    multiplier_bytes: int
    history: list = field(default_factory=list)
    status: str = "optimal"  # "optimal" (gap below tol), "iteration_limit" or "stopped" (callback)

    @property
    def gap(self) -> float:
        return (self.network_objective - self.lower) / max(abs(self.network_objective), np.finfo(float).tiny)


# ============================================================================ cell values
def cell_value(Xr: np.ndarray, mask: np.ndarray, sv: np.ndarray, *, rounds: int = 30) -> float:
    r"""Upper bound, exact at convergence, on :math:`\max_{u\in K,\|u\|\le1} s\,v^TDXu`
    (:math:`K = \{u : (2D - I)Xu \ge 0\}`, ``sv`` = :math:`s\,v`) in O(nr) work per round.

    Conic duality (``docs/convex_program.md`` §4): for every :math:`\mu \ge 0`,
    :math:`\max_{u\in K,\|u\|\le1}a^Tu \le \|a + X^TS\mu\|` with :math:`a = X^TDsv`,
    :math:`S = 2D - I` (:math:`a^Tu = (a + X^TS\mu)^Tu - \mu^TSXu`), with equality at
    the NNLS minimizer.  The NNLS over all ``n`` rows is solved by constraint generation:
    NNLS (``scipy.optimize.nnls``) over a small set of rows, then the residual
    :math:`u = a + X^TS\mu` is checked against every row (:math:`SXu \ge 0` is the
    optimality condition of the full NNLS) and the most violated rows join.  The value
    returned is :math:`\|a + X^TS\mu\|` of the last (clipped) :math:`\mu`, never below the
    maximum, whatever the number of rounds.
    """
    from scipy.optimize import nnls

    a = Xr[mask].T @ sv[mask]
    best = float(np.linalg.norm(a))
    if best == 0.0:
        return 0.0
    r = Xr.shape[1]
    sg = np.where(mask, 1.0, -1.0)
    xn = np.linalg.norm(Xr, axis=1)
    rows = np.zeros(0, dtype=np.intp)
    u = a
    for _ in range(rounds):
        m = sg * (Xr @ u)
        viol = np.flatnonzero(m < -1e-12 * xn * np.linalg.norm(u))
        if len(viol) == 0:
            break
        worst = viol[np.argsort(m[viol] / np.maximum(xn[viol], 1e-300))[:max(r, 4)]]
        rows = np.union1d(rows, worst)
        B = Xr[rows].T * sg[rows][None, :]
        try:
            mu, _ = nnls(B, -a, maxiter=50 * max(1, len(rows)))
        except RuntimeError:  # pragma: no cover - iteration limit: keep the last bound
            break
        u = a + B @ np.maximum(mu, 0.0)
        best = min(best, float(np.linalg.norm(u)))
        rows = rows[mu > 0] if np.any(mu > 0) else rows
    return best


# ============================================================================ solver
def solve_first_order(Xr: np.ndarray, Y: np.ndarray, pats: np.ndarray, loss: Loss, beta: float, *,
                      tol: float, max_iter: int = 20000, z0: np.ndarray | None = None,
                      multipliers: Any = None, rho: float | None = None, device: Any = None,
                      rng: Any = 0, callback: Any = None, stop_check: Any = None) -> FirstOrderResult:
    r"""Solve the sampled program by the augmented Lagrangian with FISTA subproblems.

    Parameters
    ----------
    Xr : ndarray (n, r)
        Data in row-space coordinates.
    Y : ndarray (n, 1)
        Labels (scalar output).
    pats : bool ndarray (P, n)
        The pattern set.
    loss : Loss
        A smooth loss (gradient used; the curvature bound of
        :func:`~deepdual.relu.convex_program.groups.loss_curvature`).
    beta : float > 0
    tol : float
        Stop when the rebuilt network's objective is within ``tol`` (relative) of the
        proven lower bound of the sampled program.
    max_iter : int
        FISTA iterations in all (each is one pass over the data: two products with ``X``).
    z0 : ndarray (2P, r), optional
        Warm start (e.g. the solution at a nearby :math:`\beta`).
    multipliers, rho : optional
        Warm start of the multipliers and penalty (``FirstOrderResult.multipliers`` and
        ``.rho`` of a previous run on the same data and patterns).
    device : None, str or torch.device
        ``None``: numpy; otherwise torch tensors on that device.
    callback : callable, optional
        Called as ``callback(iterations, network_objective, lower_bound, gap)`` after each
        bound evaluation (every ``FO_CHECK_EVERY`` steps); a true return value stops the
        solver (status ``"stopped"``: a time limit).
    stop_check : callable, optional
        Called with no argument after every FISTA step (cheap, e.g. a clock test); a true
        return value stops the solver the same way, so a time limit is not overrun by up to
        ``FO_CHECK_EVERY`` steps.

    Returns
    -------
    FirstOrderResult
    """
    n, r = Xr.shape
    P = len(pats)
    if Y.shape != (n, 1):
        raise ValueError(f"the first-order solver takes scalar outputs, Y of shape ({n}, 1); got {Y.shape}")
    dev = resolve_device(device)
    ops: _Numpy = _Numpy() if dev is None else _Torch(dev)
    prog = _Program(ops, Xr, pats, Y, loss)
    rng = np.random.default_rng(rng)
    curv = loss_curvature(loss)
    xn2 = max(prog.spectral_norm2(), np.finfo(float).tiny)
    a2 = 2.0 * prog.op_norm2(rng) * FO_LIPSCHITZ_SAFETY
    if rho is None:
        # balance the penalty's curvature rho ||X||^2 against the loss's
        rho = FO_RHO0 * max(curv * a2 / xn2, curv)
    L = curv * a2 + rho * xn2
    z = ops.zeros(2 * P, r) if z0 is None else ops.put(z0)
    lam = multipliers if isinstance(multipliers, _Multipliers) and len(multipliers.blocks) == len(prog.blocks) \
        else _Multipliers(ops, prog.blocks)
    if lam.ops is not ops:
        lam = _Multipliers(ops, prog.blocks)
    tiny = np.finfo(float).tiny

    def smooth(zz: Any, want_grad: bool) -> tuple[float, Any]:
        """Value (and gradient) of the smooth part of L_rho at zz: one pass over the data
        (one product with X, and one with X^T for the gradient)."""
        g = ops.zeros(2 * P, r) if want_grad else None
        val = 0.0
        for i, (a, b) in enumerate(prog.blocks):
            Xb, Mb, Sb = prog.block(a, b)
            XZ = Xb @ zz.T
            XZp, XZm = XZ[:, :P], XZ[:, P:]
            F = ops.get(ops.rowsum(Mb * (XZp - XZm)))[:, None]
            val += float(loss.value(F, Y[a:b]))
            lb = lam.get(i)
            # mu = (lam - rho S X z)_+ for the + and - groups (no (rows, 2P) concatenation)
            mup = (-rho) * (Sb * XZp)
            mum = (-rho) * (Sb * XZm)
            if lb is not None:
                mup += lb[:, :P]
                mum += lb[:, P:]
            mup, mum = ops.relu(mup), ops.relu(mum)
            val += 0.5 / rho * (ops.sumsq(mup) + ops.sumsq(mum))
            if want_grad:
                MG = Mb * ops.put(loss.gradient(F, Y[a:b]))
                mup *= Sb
                mum *= Sb
                g = g + ops.cat(MG - mup, -MG - mum).T @ Xb
        return val, g

    def certify(zz: Any, update: bool) -> dict:
        """The objectives at zz, the proven bound and (``update``) the multiplier update."""
        F = np.empty(n)
        Fr = np.empty(n)
        Ab = ops.zeros(2 * P, r)  # rows g: s_g X^T D_p v
        Q = ops.zeros(2 * P, r)  # X^T S_p mu_g, mu = updated multipliers
        Q0 = ops.zeros(2 * P, r)  # the same with mu = current multipliers
        viol2 = 0.0
        viol_max = 0.0
        new = []
        for i, (a, b) in enumerate(prog.blocks):
            Xb, Mb, Sb = prog.block(a, b)
            XZ = Xb @ zz.T
            Fb = ops.rowsum(Mb * (XZ[:, :P] - XZ[:, P:]))
            Frb = ops.rowsum(ops.relu(XZ[:, :P]) - ops.relu(XZ[:, P:]))
            F[a:b], Fr[a:b] = ops.get(Fb), ops.get(Frb)
            vb = ops.put(loss.dual_point(F[a:b, None], Y[a:b]))
            S2 = ops.cat(Sb, Sb)
            C = S2 * XZ
            lb = lam.get(i)
            mu = ops.relu((lb if lb is not None else 0.0) - rho * C)
            neg = ops.relu(-C)
            viol2 += ops.sumsq(neg)
            viol_max = max(viol_max, ops.amax(neg))
            Mv = Mb * vb
            Ab = Ab + ops.cat(Mv, -Mv).T @ Xb
            Q = Q + (S2 * mu).T @ Xb
            if lb is not None:
                Q0 = Q0 + (S2 * lb).T @ Xb
            if update:
                new.append(ops.pack(mu))
        if update:
            lam.data = new
        free = ops.get(ops.rownorm(Ab))
        cheap = np.minimum(free, np.minimum(ops.get(ops.rownorm(Ab + Q)), ops.get(ops.rownorm(Ab + Q0))))
        V = loss.dual_point(F[:, None], Y)
        # exact cell values (constraint-generation NNLS) in decreasing order of the cheap
        # bounds, while a cell could still raise the maximum
        c = 0.0
        for g in np.argsort(-cheap):
            if cheap[g] <= c:
                break
            p, sgn = (g, 1.0) if g < P else (g - P, -1.0)
            c = max(c, min(float(cheap[g]), cell_value(Xr, pats[p], sgn * V[:, 0])))
        lower = float(loss.best_scale(V, Y, np.inf if c <= 0 else beta / c)[1])
        # every bound is valid for the same program: keep the best one found
        if lower > best["lower"]:
            best["lower"], best["c"] = lower, c
        lower, c = best["lower"], best["c"]
        pen = beta * float(np.sum(ops.get(ops.rownorm(zz))))
        conv = float(loss.value(F[:, None], Y)) + pen
        net = float(loss.value(Fr[:, None], Y)) + pen
        out = dict(conv=conv, net=net, lower=lower, c=c, viol=float(np.sqrt(viol2)), viol_max=viol_max)
        if net < best["net"]:  # the best network seen (the iterates' networks are not monotone)
            best["net"], best["z"], best["cert"] = net, ops.get(zz).copy(), out
        return out

    def gap(cert: dict) -> float:
        """Relative gap between the rebuilt network's objective and the proven lower bound
        of the program (negative when the network beats the program's optimum: its
        neurons need not keep their patterns)."""
        return (cert["net"] - cert["lower"]) / max(abs(cert["net"]), tiny)

    best: dict = {"lower": -np.inf, "c": np.inf, "net": np.inf, "z": None, "cert": None}
    inner_tol = FO_INNER_TOL0 * beta
    viol_prev = np.inf
    used = rounds = 0
    converged = stopped = False
    history: list = []
    cert = certify(z, update=False)
    history.append((0, gap(cert)))
    if gap(cert) <= tol:
        converged = True
    def check(update: bool) -> tuple[dict, bool, bool]:
        """Proven bound at the current iterate: (certificate, converged, stopped by the callback)."""
        cert = certify(z, update=update)
        history.append((used, gap(cert)))
        if gap(cert) <= tol:
            return cert, True, False
        return cert, False, bool(callback is not None and callback(used, cert["net"], cert["lower"], gap(cert)))

    while not converged and used < max_iter:
        rounds += 1
        # FISTA on L_rho(., lam) from z, backtracking on L, adaptive restart
        fz, _ = smooth(z, False)
        obj = fz + beta * float(np.sum(ops.get(ops.rownorm(z))))
        y, t = z, 1.0
        it = 0
        while used < max_iter:
            it += 1
            used += 1
            fy, g = smooth(y, True)
            while True:
                w = y - g / L
                nrm = ops.rownorm(w)
                shrink = ops.relu(1.0 - (beta / L) / (nrm + tiny))
                zn = w * shrink[:, None]
                step = zn - y
                dd = ops.sumsq(step)
                fn, _ = smooth(zn, False)
                # sufficient decrease of the quadratic model (1e-12 relative slack for rounding)
                if fn <= fy + ops.vdot(g, step) + 0.5 * L * dd + 1e-12 * abs(fy):
                    break
                L *= 2.0
            obj_n = fn + beta * float(np.sum(ops.get(nrm * shrink)))
            gm = L * float(np.sqrt(dd))
            if obj_n > obj:  # adaptive restart (O'Donoghue & Candes 2015)
                t, y = 1.0, z
            else:
                t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
                y = zn + ((t - 1.0) / t_new) * (zn - z)
                t = t_new
                z, obj = zn, obj_n
                L *= 0.95  # let the step grow again where the curvature is smaller
            if gm <= inner_tol or it >= FO_ROUND_ITERS:
                break
            if stop_check is not None and stop_check():
                stopped = True
                break
            if it % FO_CHECK_EVERY == 0:
                cert, converged, stopped = check(update=False)
                if converged or stopped:
                    break
        if converged or stopped:
            break
        cert, converged, stopped = check(update=True)
        if converged or stopped:
            break
        inner_tol = max(inner_tol * FO_INNER_TOL_FACTOR, 1e-13 * beta)
        if cert["viol"] > 0.25 * viol_prev and cert["viol"] > 1e-12 * np.sqrt(n) * beta:
            L += (FO_RHO_GROWTH - 1.0) * rho * xn2
            rho *= FO_RHO_GROWTH
        viol_prev = cert["viol"]
    final = certify(z, update=False)
    zf = ops.get(z)
    if best["cert"] is not None and best["net"] < final["net"]:
        # return the best network seen, with the best (valid) bound
        zf, final = best["z"], {**best["cert"], "lower": best["lower"], "c": best["c"]}
    if gap(final) <= tol:
        converged = True
    return FirstOrderResult(z=zf, multipliers=lam, rho=float(rho), convex_objective=final["conv"],
                            network_objective=final["net"], lower=final["lower"], c=final["c"],
                            max_violation=final["viol_max"], iterations=used, rounds=rounds,
                            converged=converged, multiplier_bytes=lam.nbytes(), history=history,
                            status="optimal" if converged else ("stopped" if stopped else "iteration_limit"))
