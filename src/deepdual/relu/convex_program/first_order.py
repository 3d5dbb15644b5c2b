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
operators are applied in blocks of rows from ``X`` (n, r) and the boolean masks (n, P);
at full column rank ``X`` is the implicit :class:`deepdual.blocks.ScaledDesign` over the
caller's data, whose row blocks are formed on the fly (no copy of the data at all).
The multipliers (:math:`n \times 2P`, mostly zero: a multiplier is positive only on rows
where the cone constraint was pushed against) are kept block by block as their non-zeros
in single precision with 16-bit flat indices (dense float32 when that is smaller; 6 bytes
per non-zero instead of 12 in CSR), replaced block by block at each update; the row blocks'
temporaries are reused in place (docs/performance.md §8).

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
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...blocks import ScaledDesign, block_entries, row_norms
from ...losses import Loss
from .groups import loss_curvature

__all__ = [
    "FirstOrderResult", "solve_first_order", "first_order_memory", "available_memory", "check_memory",
    "resolve_device", "FO_BLOCK_ENTRIES", "cell_value", "program_memory", "FO_MIN_WORK",
    "project_cone", "cone_projection", "feasible_point", "program_value", "solve_projected",
]

#: ``solve(..., solver="auto")`` takes the first-order method for scalar outputs on sampled
#: pattern sets when n * P * r is at least this (docs/performance.md: the crossover with
#: the interior-point methods)
FO_MIN_WORK = 2e7
#: row blocks hold about this many entries per (rows x 2P) temporary (1 MB in float64; 2**19
#: left a constant 40-60 MB of temporaries, docs/performance.md §8)
FO_BLOCK_ENTRIES = 2**17
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
#: the exact cell values (NNLS) and the feasible point of a check are skipped while they
#: have taken more than this share of the solver's time (the cheap bounds are still valid)
FO_EXPENSIVE_SHARE = 0.25
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
    the multipliers (dense worst case 16nP) and the row-block temporaries.  (At full column
    rank on numpy ``solve`` passes the implicit :class:`deepdual.blocks.ScaledDesign` and
    no (n, r) array is formed: the estimate is then high by 8nr, a safe side for the
    memory guard.)"""
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
        """Compressed storage of a non-negative block of multipliers, in single precision:
        ``(shape, flat indices mod 2^16 (uint16), start of each 2^16-chunk, values)``,
        6 bytes per non-zero, or the dense float32 block when that is smaller (4 bytes per
        entry).  The rounding only perturbs the multiplier estimate of the augmented
        Lagrangian (relative 6e-8); every bound computed from it stays proven, since any
        multiplier vector >= 0 gives one (docs/convex_program.md §10; memory:
        docs/performance.md §8)."""
        flat = np.ascontiguousarray(a).reshape(-1)
        idx = np.flatnonzero(flat)
        if len(idx) == 0:
            return None
        if 6 * len(idx) >= 4 * flat.size:
            return a.astype(np.float32)
        # the flat indices mod 2^16, and where each 2^16-chunk of the block starts among them
        starts = np.searchsorted(idx, np.arange(0, flat.size, 2**16))
        return (a.shape, idx.astype(np.uint16), starts, flat[idx].astype(np.float32))

    def unpack(self, stored: Any, shape: tuple[int, int]) -> np.ndarray | None:
        if stored is None:
            return None
        if isinstance(stored, np.ndarray):
            return stored.astype(float)
        shp, low, starts, vals = stored
        idx = low.astype(np.intp)
        for c in range(1, len(starts)):
            idx[starts[c]:] += 2**16
        out = np.zeros(int(shp[0]) * int(shp[1]))
        out[idx] = vals
        return out.reshape(shp)

    def stored_bytes(self, stored: Any) -> int:
        if stored is None:
            return 0
        if isinstance(stored, np.ndarray):
            return int(stored.nbytes)
        return int(stored[1].nbytes + stored[2].nbytes + stored[3].nbytes)


class _Torch(_Numpy):
    """The same operations on torch tensors (float64) on ``device``."""

    def __init__(self, device: Any) -> None:
        import torch

        self.torch = torch
        self.device = device

    def put(self, a: np.ndarray) -> Any:
        return self.torch.as_tensor(np.ascontiguousarray(a, dtype=float), device=self.device)

    def put_bool(self, a: np.ndarray) -> Any:
        # (a copy: the masks may be a read-only view, which torch would share on the CPU)
        return self.torch.as_tensor(np.array(a, dtype=bool, order="C"), device=self.device)

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
        # an implicit design (blocks.ScaledDesign: X_a over the caller's X) stays implicit on
        # numpy, its row blocks formed on the fly; torch gets the materialized array
        self.X = Xr if isinstance(Xr, ScaledDesign) and ops.device is None else ops.put(Xr)
        self.Mt = ops.put_bool(pats.T)  # (n, P) masks, row blocks contiguous
        # blocks scale with the data (at most FO_BLOCK_ENTRIES entries per temporary)
        size = max(1, block_entries(n, r, self.P, FO_BLOCK_ENTRIES) // max(1, 2 * self.P))
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
        Gm = self.X.gram() if isinstance(self.X, ScaledDesign) else self.ops.get(self.X.T @ self.X)
        return float(np.linalg.eigvalsh(0.5 * (Gm + Gm.T))[-1]) if Gm.size else 0.0


@dataclass
class _Multipliers:
    """Multipliers (n, 2P) stored per row block (compressed: ``_Numpy.pack``)."""

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
    #: per check: (steps, gap, seconds, network objective, best feasible objective, lower bound)
    history: list = field(default_factory=list)
    status: str = "optimal"  # "optimal" (gap below tol), "iteration_limit" or "stopped" (callback)
    program_upper: float = np.inf  # objective of the best feasible point found (sampled program)

    @property
    def gap(self) -> float:
        """Relative gap of the returned network's objective to the proven lower bound."""
        return (self.network_objective - self.lower) / max(abs(self.network_objective), np.finfo(float).tiny)

    @property
    def program_gap(self) -> float:
        """The sampled program's own relative duality gap: feasible point vs proven bound."""
        return (self.program_upper - self.lower) / max(abs(self.program_upper), np.finfo(float).tiny)


# ============================================================================ cell values
def cell_value(Xr: np.ndarray, mask: np.ndarray, sv: np.ndarray, *, rounds: int = 30,
               xn: np.ndarray | None = None, direction: bool = False) -> Any:
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

    ``xn``: the row norms of ``Xr`` when the caller has them (one pass over the data less).
    With ``direction`` returns ``(value, e)``: ``e`` the unit residual
    :math:`u/\|u\|` when the last round found no violated row (then :math:`e \in K` up to
    the test's 1e-12 relative slack, so :math:`a'^Te` is at most the cell value for any
    other :math:`a'`: a lower bound), else ``None``.
    """
    from scipy.optimize import nnls

    a = Xr.T @ np.where(mask, sv, 0.0)  # no copy of the masked rows
    best = float(np.linalg.norm(a))
    if best == 0.0:
        return (0.0, None) if direction else 0.0
    r = Xr.shape[1]
    sg = np.where(mask, 1.0, -1.0)
    xn = row_norms(Xr) if xn is None else xn
    rows = np.zeros(0, dtype=np.intp)
    u = a
    inside = None
    for _ in range(rounds):
        m = sg * (Xr @ u)
        nu = np.linalg.norm(u)
        viol = np.flatnonzero(m < -1e-12 * xn * nu)
        if len(viol) == 0:
            inside = u / nu if nu > 0 else None
            break
        kk = max(r, 4)  # the kk most violated rows (a partial sort: the set is what matters)
        sc = m[viol] / np.maximum(xn[viol], 1e-300)
        worst = viol[np.argpartition(sc, kk)[:kk]] if len(viol) > kk else viol
        rows = np.union1d(rows, worst)
        B = Xr[rows].T * sg[rows][None, :]
        try:
            mu, _ = nnls(B, -a, maxiter=50 * max(1, len(rows)))
        except RuntimeError:  # pragma: no cover - iteration limit: keep the last bound
            break
        u = a + B @ np.maximum(mu, 0.0)
        best = min(best, float(np.linalg.norm(u)))
        rows = rows[mu > 0] if np.any(mu > 0) else rows
    return (best, inside) if direction else best


def project_cone(Xr: np.ndarray, mask: np.ndarray, z: np.ndarray, *, rounds: int = 50,
                 xn: np.ndarray | None = None) -> np.ndarray | None:
    r"""Euclidean projection of ``z`` onto the cone :math:`K = \{u : SXu \ge 0\}`,
    :math:`S = 2D - I` (``mask`` the diagonal of :math:`D`), or ``None`` when constraint
    generation did not finish in ``rounds`` rounds (the caller then uses :math:`u = 0 \in K`).

    The projection is :math:`u = z + X^TS\mu` with :math:`\mu = \arg\min_{\mu\ge0}
    \|z + X^TS\mu\|` (the dual of :math:`\min_{SXu\ge0}\frac12\|u - z\|^2`).  The NNLS
    over all ``n`` rows is solved by constraint generation over rows (as in
    :func:`cell_value`); it is returned only when :math:`SXu \ge -10^{-12}\|x_j\|\|u\|`
    holds on every row, i.e. ``u`` is feasible up to rounding.  ``xn``: the row norms of
    ``Xr`` when the caller has them (one pass over the data less per projection).
    """
    sg = np.where(mask, 1.0, -1.0)
    xn = row_norms(Xr) if xn is None else xn
    u, _, _ = cone_projection(Xr, sg, xn, np.asarray(z, dtype=float), rounds=rounds)
    return u


def cone_projection(Xr: np.ndarray, sg: np.ndarray, xn: np.ndarray, z: np.ndarray, *,
                    rows0: np.ndarray | None = None, m0: np.ndarray | None = None,
                    rounds: int = 50) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    r"""The projection of :func:`project_cone` with its multipliers: returns ``(u, rows,
    mu)``, :math:`u = z + X_R^TS_R\mu` (``None`` if not finished), warm-started from the
    rows ``rows0`` (e.g. those of the previous projection of the same cone); ``sg`` is the
    diagonal of :math:`S`, ``xn`` the row norms of ``Xr``, ``m0`` optionally :math:`SXz`."""
    from scipy.optimize import nnls

    r = Xr.shape[1]
    rows = np.zeros(0, dtype=np.intp) if rows0 is None else np.asarray(rows0, dtype=np.intp)
    mu = np.zeros(len(rows))
    u = z
    for k in range(rounds):
        m = (m0 if (k == 0 and m0 is not None) else sg * (Xr @ u))
        viol = np.flatnonzero(m < -1e-12 * xn * np.linalg.norm(u))
        if len(viol) == 0:
            keep = mu > 0  # the rows that carry the projection (the next warm start)
            return (u, rows[keep], mu[keep]) if k > 0 else (u, rows[:0], mu[:0])
        kk = max(2 * r, 8)
        sc = m[viol] / np.maximum(xn[viol], 1e-300)
        worst = viol[np.argpartition(sc, kk)[:kk]] if len(viol) > kk else viol
        rows = np.union1d(rows, worst)
        B = Xr[rows].T * sg[rows][None, :]
        try:
            mu, _ = nnls(B, -z, maxiter=50 * max(1, len(rows)))
        except RuntimeError:  # pragma: no cover - iteration limit
            return None, rows, np.zeros(len(rows))
        u = z + B @ mu  # (rows only grow within a call: no cycling)
        if np.linalg.norm(u) <= 1e-12 * np.linalg.norm(z):  # z in the polar cone: the projection is 0
            return np.zeros_like(z), rows, mu
    return None, rows, mu


def feasible_point(Xr: np.ndarray, pats: np.ndarray, z: np.ndarray, *,
                   block: int | None = None, xn: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    r"""A feasible point of the sampled program near ``z`` (2P, r): every group outside its
    cone :math:`K_{p_g}` replaced by its projection (:func:`project_cone`), or by 0 when the
    projection did not finish.  Returns the point and the number of groups changed.

    Its convex objective :math:`\ell(\sum_gs_gD_{p_g}Xu_g) + \beta\sum_g\|u_g\|` is then
    the objective of a network whose neurons keep their patterns: an upper bound on the
    sampled program's optimum (docs/convex_program.md §10).  ``xn``: the row norms of
    ``Xr`` when the caller has them.
    """
    P = len(pats)
    n = Xr.shape[0]
    block = block or max(1, block_entries(n, Xr.shape[1], P, FO_BLOCK_ENTRIES) // max(1, 2 * P))
    u = np.array(z, dtype=float, copy=True)
    act = np.flatnonzero(np.linalg.norm(u, axis=1) > 0)
    if len(act) == 0:
        return u, 0
    xn = row_norms(Xr) if xn is None else xn
    bad = np.zeros(len(act), dtype=bool)
    pa = act % P
    un = np.linalg.norm(u[act], axis=1)[None, :]
    for a in range(0, n, block):
        M = Xr[a:a + block] @ u[act].T  # (rows, active groups)
        tolb = 1e-12 * xn[a:a + block, None] * un
        # S M < -tol with S = 2D - 1 = +-1, without the float S and S M: M < -tol where the
        # mask is on, M > tol where it is off (exact: the products by +-1 are exact)
        on = pats[pa, a:a + block].T
        bad |= np.any(np.where(on, M < -tolb, M > tolb), axis=0)
        del M, tolb, on
    for g in act[bad]:
        pu = project_cone(Xr, pats[g % P], u[g], xn=xn)
        u[g] = 0.0 if pu is None else pu
    return u, int(bad.sum())


def program_value(Xr: np.ndarray, pats: np.ndarray, Y: np.ndarray, loss: Loss, beta: float, z: np.ndarray, *,
                  block: int | None = None) -> float:
    r"""The sampled program's objective :math:`\ell(\sum_gs_gD_{p_g}Xz_g) + \beta\sum_g\|z_g\|`
    (groups ``0..P-1`` sign +1, ``P..2P-1`` sign -1), in row blocks."""
    P = len(pats)
    n = Xr.shape[0]
    block = block or max(1, block_entries(n, Xr.shape[1], P, FO_BLOCK_ENTRIES) // max(1, 2 * P))
    F = np.empty((n, 1))
    for a in range(0, n, block):
        XZ = Xr[a:a + block] @ z.T
        F[a:a + block, 0] = np.einsum("ij,ji->i", XZ[:, :P] - XZ[:, P:], pats[:, a:a + block])
    return float(loss.value(F, Y)) + beta * float(np.linalg.norm(z, axis=1).sum())


# ============================================================================ solver
def solve_first_order(Xr: np.ndarray, Y: np.ndarray, pats: np.ndarray, loss: Loss, beta: float, *,
                      tol: float, max_iter: int = 20000, z0: np.ndarray | None = None,
                      multipliers: Any = None, rho: float | None = None, device: Any = None,
                      rng: Any = 0, callback: Any = None, stop_check: Any = None) -> FirstOrderResult:
    r"""Solve the sampled program by the augmented Lagrangian with FISTA subproblems.

    Parameters
    ----------
    Xr : ndarray (n, r) or blocks.ScaledDesign
        Data in row-space coordinates, or (full column rank, where the program is invariant
        under the rotation :math:`V`) the scaled data :math:`X_a` itself as an implicit
        operator over the caller's ``X`` (:class:`deepdual.blocks.ScaledDesign`: no (n, r)
        copy; docs/performance.md §8).
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
    # the caller's warm start is never modified: a new list of its (immutable) stored blocks
    lam = _Multipliers(ops, prog.blocks, list(lam.data))
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
            # mu = (lam - rho S X z)_+ for the + and - groups, formed in place of XZ (spent):
            # the same bits as (-rho) * (S * XZ) + lam, and no further (rows, 2P) temporaries
            # (memory: docs/performance.md §8)
            XZp *= Sb
            XZm *= Sb
            XZ *= -rho
            if lb is not None:
                XZ += lb
            del lb, XZp, XZm
            mu = ops.relu(XZ)
            del XZ
            mup, mum = mu[:, :P], mu[:, P:]
            val += 0.5 / rho * (ops.sumsq(mup) + ops.sumsq(mum))
            if want_grad:
                MG = Mb * ops.put(loss.gradient(F, Y[a:b]))
                mup *= Sb
                mum *= Sb
                mup -= MG
                mum += MG
                mu *= -1.0  # [MG - S mu_+, -MG - S mu_-], exactly
                g = g + mu.T @ Xb
        return val, g

    def certify(zz: Any, update: bool, expensive: bool = True, project: bool = False) -> dict:
        """The objectives at zz, the proven bound and (``update``) the multiplier update;
        ``expensive``: also the exact cell values; ``project``: the feasible point (its
        projections cost up to 2P NNLS: done at the end of each round and at the end)."""
        t_in = time.perf_counter()
        F = np.empty(n)
        Fr = np.empty(n)
        Ab = ops.zeros(2 * P, r)  # rows g: s_g X^T D_p v
        Q = ops.zeros(2 * P, r)  # X^T S_p mu_g, mu = updated multipliers
        Q0 = ops.zeros(2 * P, r)  # the same with mu = current multipliers
        viol2 = 0.0
        viol_max = 0.0
        for i, (a, b) in enumerate(prog.blocks):
            # (memory: the (rows, 2P) temporaries are reused in place or freed as soon as
            # they are spent, and the multipliers are replaced block by block: never two
            # copies of them; docs/performance.md §8)
            Xb, Mb, Sb = prog.block(a, b)
            XZ = Xb @ zz.T
            Fb = ops.rowsum(Mb * (XZ[:, :P] - XZ[:, P:]))
            Frb = ops.rowsum(ops.relu(XZ[:, :P]) - ops.relu(XZ[:, P:]))
            F[a:b], Fr[a:b] = ops.get(Fb), ops.get(Frb)
            vb = ops.put(loss.dual_point(F[a:b, None], Y[a:b]))
            Mv = Mb * vb
            Ab = Ab + ops.cat(Mv, -Mv).T @ Xb
            del Mv, Mb, Fb, Frb
            S2 = ops.cat(Sb, Sb)
            C = XZ
            C *= S2  # S X z, in place (XZ is spent)
            neg = ops.relu(-C)
            viol2 += ops.sumsq(neg)
            viol_max = max(viol_max, ops.amax(neg))
            del neg
            lb = lam.get(i)
            C *= -rho  # mu = (lam - rho S X z)_+, the same bits as relu(lam - rho * C)
            if lb is not None:
                C += lb
                Q0 = Q0 + (S2 * lb).T @ Xb
            del lb
            mu = ops.relu(C)
            del C, XZ
            Q = Q + (S2 * mu).T @ Xb
            if update:
                lam.data[i] = ops.pack(mu)
            del mu, S2
        free = ops.get(ops.rownorm(Ab))
        cheap = np.minimum(free, np.minimum(ops.get(ops.rownorm(Ab + Q)), ops.get(ops.rownorm(Ab + Q0))))
        V = loss.dual_point(F[:, None], Y)
        pen = beta * float(np.sum(ops.get(ops.rownorm(zz))))
        conv = float(loss.value(F[:, None], Y)) + pen
        net = float(loss.value(Fr[:, None], Y)) + pen
        lazy = expensive == "auto"
        if expensive == "auto":
            # the exact values only when they could close the gap.  c(v) is at least
            # a_g^T e_g for a unit direction e_g inside cell g (a_g = row g of Ab): those of
            # the cells computed at earlier checks (cell_value's last residual); so the bound
            # the exact values could give is at most best_scale(v, beta / c_low) (beta / 0:
            # the best scale of v).  When that leaves the gap above tol the cheap bounds,
            # which are valid, serve (the iterates never depend on the bound)
            Abn = ops.get(Ab)
            c_low = max((float(Abn[g] @ e) for g, e in inner_dirs.items()), default=0.0)
            top = min(net, best["upper"])

            def hopeless(c_lo: float) -> bool:
                """Whether c(v) >= c_lo proves that no bound at this iterate closes the gap."""
                reach = max(float(loss.best_scale(V, Y, np.inf if c_lo <= 0 else beta / c_lo)[1]), best["lower"])
                return bool(top - reach > tol * max(abs(top), tiny))

            expensive = not hopeless(c_low)
        # exact cell values (constraint-generation NNLS) in decreasing order of the cheap
        # bounds, while a cell could still raise the maximum; kept for the next check of the
        # same iterate (a round's closing check and the final one share the last iterate)
        if exact["z"] is not zz:
            exact["z"], exact["values"] = zz, {}
        c = 0.0
        order = np.argsort(-cheap)
        for k, g in enumerate(order):
            if cheap[g] <= c:
                break
            if not expensive:  # the cheap bounds are valid bounds on the cell values
                c = max(c, float(cheap[g]))
                break
            if g not in exact["values"]:
                p, sgn = (g, 1.0) if g < P else (g - P, -1.0)
                exact["values"][g], e = cell_value(Xr, pats[p], sgn * V[:, 0], xn=xn_rows, direction=True)
                if e is not None:
                    inner_dirs[g] = e
                    if lazy and hopeless(max(c_low, float(Abn[g] @ e))):
                        # (a check that only tests convergence, "auto") this cell's interior
                        # direction already proves the gap stays open: the remaining cells
                        # keep their cheap bounds (the largest is the next one's)
                        expensive = False
            c = max(c, min(float(cheap[g]), exact["values"][g]))
        lower = float(loss.best_scale(V, Y, np.inf if c <= 0 else beta / c)[1])
        # every bound is valid for the same program: keep the best one found
        if lower > best["lower"]:
            best["lower"], best["c"] = lower, c
        lower, c = best["lower"], best["c"]
        out = dict(conv=conv, net=net, lower=lower, c=c, viol=float(np.sqrt(viol2)), viol_max=viol_max)
        if net < best["net"]:  # the best network seen (the iterates' networks are not monotone)
            best["net"], best["z"], best["cert"] = net, ops.get(zz).copy(), out
        if project:
            # a feasible point near zz: its objective bounds the sampled program's optimum
            # from above (the program's own duality gap, against `lower`)
            zf_, _ = feasible_point(Xr, pats, ops.get(zz), xn=xn_rows)
            up = program_value(Xr, pats, Y, loss, beta, zf_)
            if up < best["upper"]:
                best["upper"], best["zf"] = up, zf_
        out["upper"] = best["upper"]
        timing["expensive"] += time.perf_counter() - t_in if expensive else 0.0
        return out

    def gap(cert: dict) -> float:
        """Relative gap between the better of the rebuilt network's objective and the
        feasible point's objective, and the proven lower bound of the program (negative
        when the network beats the program's optimum: its neurons need not keep their
        patterns)."""
        top = min(cert["net"], cert.get("upper", np.inf))
        return (top - cert["lower"]) / max(abs(top), tiny)

    best: dict = {"lower": -np.inf, "c": np.inf, "net": np.inf, "z": None, "cert": None, "upper": np.inf,
                  "zf": None}
    timing = {"start": time.perf_counter(), "expensive": 0.0}
    projected = {"at": -1}  # the step count of the last check that computed the feasible point
    exact: dict = {"z": None, "values": {}}  # the exact cell values of the iterate last checked
    inner_dirs: dict = {}  # group -> a unit direction inside its cell (cell_value's last residual)
    xn_rows = row_norms(Xr)  # (n,) row norms, shared by the cell values

    inner_tol = FO_INNER_TOL0 * beta
    viol_prev = np.inf
    used = rounds = 0
    converged = stopped = False
    history: list = []
    cert = certify(z, update=False, expensive="auto")  # (the zero iterate: only its convergence matters)
    history.append((0, gap(cert), 0.0, cert["net"], cert["upper"], cert["lower"]))
    if gap(cert) <= tol:
        converged = True
    def check(update: bool) -> tuple[dict, bool, bool]:
        """Proven bound at the current iterate: (certificate, converged, stopped by the callback)."""
        # (deterministic: the exact values at every closing check, and at the checks within
        # a round whenever they could close the gap, so backends agree step by step)
        cert = certify(z, update=update, expensive=True if update else "auto", project=update)
        if update:
            projected["at"] = used
        history.append((used, gap(cert), time.perf_counter() - timing["start"], cert["net"], cert["upper"],
                        cert["lower"]))
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
            if it % FO_CHECK_EVERY == 0 and used < max_iter:
                # (at the last step the round's closing check below evaluates the same
                # iterate: the same bound and objectives, plus the multiplier update)
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
    # the feasible point of this iterate is already known when the last check projected it
    final = certify(z, update=False, project=projected["at"] != used)
    zf = ops.get(z)
    if best["cert"] is not None and best["net"] < final["net"]:
        # return the best network seen, with the best (valid) bound
        zf, final = best["z"], {**best["cert"], "lower": best["lower"], "c": best["c"]}
    if best["zf"] is not None and best["upper"] < final["net"]:
        # the feasible point is better: its network keeps its patterns (objective = its
        # convex objective, no violation)
        zf, final = best["zf"], {**final, "net": best["upper"], "conv": best["upper"], "viol_max": 0.0}
    final["upper"] = best["upper"]
    if gap(final) <= tol:
        converged = True
    return FirstOrderResult(z=zf, multipliers=lam, rho=float(rho), convex_objective=final["conv"],
                            network_objective=final["net"], lower=final["lower"], c=final["c"],
                            max_violation=final["viol_max"], iterations=used, rounds=rounds,
                            converged=converged, multiplier_bytes=lam.nbytes(), history=history,
                            status="optimal" if converged else ("stopped" if stopped else "iteration_limit"),
                            program_upper=float(best["upper"]))


# ============================================================================ projected FISTA
def solve_projected(Xr: np.ndarray, Y: np.ndarray, pats: np.ndarray, loss: Loss, beta: float, *,
                    tol: float, max_iter: int = 20000, z0: np.ndarray | None = None, rng: Any = 0,
                    callback: Any = None, stop_check: Any = None,
                    check_every: int = 10) -> FirstOrderResult:
    r"""Solve the sampled program by accelerated proximal gradient with the cone constraints
    in the proximal step (docs/convex_program.md §10).

    For a closed convex cone :math:`K` the proximal map of :math:`\beta\|\cdot\| + \iota_K`
    is the group soft-threshold of the projection,
    :math:`\operatorname{prox}(w) = (1 - \beta/\|\Pi_K w\|)_+\,\Pi_K w` (write
    :math:`u = te`, :math:`\|e\| = 1`: the best :math:`e \in K` is
    :math:`\Pi_Kw/\|\Pi_Kw\|` by Moreau's decomposition, then :math:`t` solves a scalar
    soft-threshold).  So FISTA (Beck & Teboulle 2009; backtracking on :math:`L`,
    function-value restart) on :math:`\ell(Az) + \beta\sum_g\|z_g\| + \sum_g\iota_{K_{p_g}}(z_g)`
    needs only :math:`\Pi_{K_p}` (:func:`cone_projection`: constraint generation over rows,
    warm-started from the rows of the previous step) and keeps every iterate **feasible**:
    its objective is an upper bound on the sampled program's optimum, and its network
    (:math:`u_g = z_g/\sqrt{\|z_g\|}`) keeps its patterns.  Groups whose gradient step has
    :math:`\|w_g\| \le \beta/L` are zero without a projection (:math:`\|\Pi_Kw\| \le \|w\|`).

    The projection's multipliers give the proven bound: with :math:`\Pi_Kw_g = w_g +
    X^TS\mu_g`, :math:`\|s_gX^TD_pv + X^TS(L\mu_g)\|` bounds the cell value (§4) and is
    :math:`\beta` at a fixed point; the cells that could set the maximum get their exact
    value (:func:`cell_value`).  Stops when the objective is within ``tol`` of the bound.
    Arguments and result as :func:`solve_first_order` (``multipliers`` is ``None``).
    """
    n, r = Xr.shape
    P = len(pats)
    if Y.shape != (n, 1):
        raise ValueError(f"the first-order solver takes scalar outputs, Y of shape ({n}, 1); got {Y.shape}")
    ops = _Numpy()
    prog = _Program(ops, Xr, pats, Y, loss)
    Mt = prog.Mt
    rng = np.random.default_rng(rng)
    curv = loss_curvature(loss)
    L = curv * 2.0 * prog.op_norm2(rng) * FO_LIPSCHITZ_SAFETY
    L = max(L, np.finfo(float).tiny)
    xn = row_norms(Xr) if isinstance(Xr, ScaledDesign) else np.linalg.norm(Xr, axis=1)
    tiny = np.finfo(float).tiny
    t_start = time.perf_counter()
    timing = {"expensive": 0.0}
    warm: dict = {}  # group -> (rows, mu) of its last projection

    def forward(zz: np.ndarray) -> np.ndarray:
        """F = sum_g s_g D_p X z_g over the nonzero groups (row blocks)."""
        act = np.flatnonzero(np.any(zz != 0, axis=1))
        F = np.zeros((n, 1))
        if len(act) == 0:
            return F
        sgn = np.where(act < P, 1.0, -1.0)
        pa = act % P
        Z = zz[act].T * sgn[None, :]
        for a, b in prog.blocks:
            F[a:b, 0] = np.einsum("ij,ij->i", Xr[a:b] @ Z, Mt[a:b][:, pa])
        return F

    def grad(F: np.ndarray) -> np.ndarray:
        """Gradient in z: rows g < P are X^T D_p l'(F), rows P.. their negatives."""
        G = np.empty((P, r))
        G[:] = 0.0
        for a, b in prog.blocks:
            gl = loss.gradient(F[a:b], Y[a:b])[:, 0]
            G += (Mt[a:b] * gl[:, None]).T @ Xr[a:b]
        return np.concatenate([G, -G])

    def penalty(zz: np.ndarray) -> float:
        return beta * float(np.linalg.norm(zz, axis=1).sum())

    def prox(w: np.ndarray, Lc: float) -> np.ndarray:
        """Group soft-threshold of the cone projection, group by group (warm rows)."""
        out = np.zeros_like(w)
        nw = np.linalg.norm(w, axis=1)
        cand = np.flatnonzero(nw > beta / Lc)
        if len(cand) == 0:
            return out
        # which candidates are already in their cone: one product over the rows
        bad = np.zeros(len(cand), dtype=bool)
        pc = cand % P
        for a, b in prog.blocks:
            S = 2.0 * Mt[a:b][:, pc] - 1.0
            M = S * (Xr[a:b] @ w[cand].T)
            bad |= np.any(M < -1e-12 * xn[a:b, None] * nw[cand][None, :], axis=0)
        for j, g in enumerate(cand):
            if bad[j]:
                sg = np.where(pats[g % P], 1.0, -1.0)
                rows0 = warm.get(g, (None, None))[0]
                u, rows, mu = cone_projection(Xr, sg, xn, w[g], rows0=rows0)
                if u is None:
                    warm.pop(g, None)
                    continue  # 0 is in the cone
                warm[g] = (rows, mu * Lc)
            else:
                u = w[g]
                warm[g] = (np.zeros(0, dtype=np.intp), np.zeros(0))
            nu = float(np.linalg.norm(u))
            if nu > beta / Lc:
                out[g] = (1.0 - beta / (Lc * nu)) * u
        for g in set(warm) - set(cand.tolist()):
            warm.pop(g)
        return out

    best = {"lower": -np.inf, "c": np.inf}

    def certify(zz: np.ndarray, F: np.ndarray, expensive: bool) -> dict:
        t_in = time.perf_counter()
        V = loss.dual_point(F, Y)
        Ab = np.zeros((P, r))
        for a, b in prog.blocks:
            Ab += (Mt[a:b] * V[a:b]).T @ Xr[a:b]
        Ab = np.concatenate([Ab, -Ab])  # s_g X^T D_p v
        cheap = np.linalg.norm(Ab, axis=1)
        for g, (rows, mu) in warm.items():
            if len(rows):
                sg = np.where(pats[g % P][rows], 1.0, -1.0)
                cheap[g] = min(cheap[g], float(np.linalg.norm(Ab[g] + (Xr[rows].T * sg) @ mu)))
        c = 0.0
        for g in np.argsort(-cheap):
            if cheap[g] <= c:
                break
            if not expensive:
                c = float(cheap[g])
                break
            sgn = 1.0 if g < P else -1.0
            c = max(c, min(float(cheap[g]), cell_value(Xr, pats[g % P], sgn * V[:, 0])))
        lower = float(loss.best_scale(V, Y, np.inf if c <= 0 else beta / c)[1])
        if lower > best["lower"]:
            best["lower"], best["c"] = lower, c
        if expensive:
            timing["expensive"] += time.perf_counter() - t_in
        return {"lower": best["lower"], "c": best["c"]}

    def expensive_due() -> bool:
        return timing["expensive"] <= FO_EXPENSIVE_SHARE * (time.perf_counter() - t_start)

    z = np.zeros((2 * P, r)) if z0 is None else np.array(z0, dtype=float)
    if z0 is not None:  # a warm start from another program: make it feasible first
        z, _ = feasible_point(Xr, pats, z)
    Fz = forward(z)
    obj = float(loss.value(Fz, Y)) + penalty(z)
    history: list = []
    cert = certify(z, Fz, True)

    def gap_of(o: float) -> float:
        return (o - best["lower"]) / max(abs(o), tiny)

    history.append((0, gap_of(obj), 0.0, obj, obj, best["lower"]))
    converged = gap_of(obj) <= tol
    stopped = False
    used = 0
    yv, Fy, t = z, Fz, 1.0
    while not converged and used < max_iter:
        used += 1
        fy = float(loss.value(Fy, Y))
        g = grad(Fy)
        for _ in range(60):
            zn = prox(yv - g / L, L)
            step = zn - yv
            Fn = forward(zn)
            fn = float(loss.value(Fn, Y))
            if fn <= fy + float(np.vdot(g, step)) + 0.5 * L * float(np.vdot(step, step)) + 1e-12 * abs(fy):
                break
            L *= 2.0
        obj_n = fn + penalty(zn)
        if obj_n > obj:  # adaptive restart (O'Donoghue & Candes 2015): from the last point
            t, yv, Fy = 1.0, z, Fz
        else:
            t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
            mom = (t - 1.0) / t_new
            yv = zn + mom * (zn - z)
            Fy = Fn + mom * (Fn - Fz)  # A is linear: no pass over the data
            t = t_new
            z, Fz, obj = zn, Fn, obj_n
            L *= 0.95
        if stop_check is not None and stop_check():
            stopped = True
            break
        if used % check_every == 0:
            cert = certify(z, Fz, expensive_due())
            gp = gap_of(obj)
            history.append((used, gp, time.perf_counter() - t_start, obj, obj, best["lower"]))
            if gp <= tol:
                converged = True
                break
            if callback is not None and callback(used, obj, best["lower"], gp):
                stopped = True
                break
    cert = certify(z, Fz, True)
    if gap_of(obj) <= tol:
        converged = True
    # the iterate is feasible up to the projection's rounding: its network's objective
    # (neurons keep their patterns) is its convex objective; recomputed for the report
    Fr = np.zeros((n, 1))
    for a, b in prog.blocks:
        XZ = Xr[a:b] @ z.T
        Fr[a:b, 0] = (np.maximum(XZ[:, :P], 0.0) - np.maximum(XZ[:, P:], 0.0)).sum(axis=1)
    net = float(loss.value(Fr, Y)) + penalty(z)
    viol = 0.0
    for a, b in prog.blocks:
        XZ = Xr[a:b] @ z.T
        S2 = np.tile(2.0 * Mt[a:b] - 1.0, 2)
        viol = max(viol, float(np.max(np.maximum(-S2 * XZ, 0.0), initial=0.0)))
    return FirstOrderResult(z=z, multipliers=None, rho=0.0, convex_objective=obj, network_objective=net,
                            lower=best["lower"], c=best["c"], max_violation=viol, iterations=used, rounds=1,
                            converged=converged, multiplier_bytes=0, history=history,
                            status="optimal" if converged else ("stopped" if stopped else "iteration_limit"),
                            program_upper=obj)
