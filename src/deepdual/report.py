r"""A structure report for a network: ranks, alignment, norms, balance, certificate.

The paper's theorems predict the *structure* of optimal networks:

* every layer of an optimal deep linear network (scalar output) and of an optimal
  ReLU network on rank-one data is **rank one**;
* consecutive layers are **aligned**: the top right singular vector of
  :math:`W_l` equals the top left singular vector of :math:`W_{l+1}`
  (:math:`W_l = t\rho_{l-1}\rho_l^T`);
* the layers of each path are **balanced**: equal Frobenius (and operator) norms,
  since :math:`\frac{\beta}{2}\sum_l\|W_l\|_F^2 \ge \frac{\beta L}{2}(\prod_l\|W_l\|_F)^{2/L}`
  with equality iff the norms are equal;
* few sub-networks are **active** (nonzero product of layer norms).

:func:`summarize` measures these quantities for any :class:`~deepdual.Network`,
and, given data, the share of the output carried by each sub-network, the
dual certificate (:func:`deepdual.certify`) and the theorem that applies to the
data's structure (:mod:`deepdual.structures`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._validation import check_positive
from .network import Network

__all__ = ["summarize", "Report", "LayerReport", "SubnetworkReport"]

_EPS = np.finfo(float).eps
#: the top singular value counts as simple (its singular vectors unique up to sign)
#: when sigma_2 < (1 - _SIMPLE_GAP) sigma_1; sqrt(eps) is the accuracy to which a
#: singular vector is determined by a gap of that size after rounding
_SIMPLE_GAP = np.sqrt(_EPS)


@dataclass
class LayerReport:
    """Measurements of one layer ``W_{l,j}`` (``layer`` is 1-based as in the paper)."""

    subnetwork: int
    layer: int
    shape: tuple[int, int]
    rank: int
    rank_threshold: float  # absolute: singular values above it count
    frobenius: float
    operator: float
    #: |cos| between the top right singular vector of this layer and the top left
    #: singular vector of the next one; None for the last layer or when a top singular
    #: value is zero or not simple (the singular vectors are then not unique)
    alignment: float | None = None
    singular_values: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "subnetwork": self.subnetwork,
            "layer": self.layer,
            "shape": list(self.shape),
            "rank": self.rank,
            "rank_threshold": self.rank_threshold,
            "frobenius": self.frobenius,
            "operator": self.operator,
            "alignment": self.alignment,
            "singular_values": list(self.singular_values),
        }


@dataclass
class SubnetworkReport:
    """Measurements of one sub-network (path) ``j``."""

    index: int
    active: bool  # product of layer Frobenius norms is nonzero
    path_norm: float  # prod_l ||W_{l,j}||_F
    balance: float  # max_l ||W_l||_F / min_l ||W_l||_F (1 = balanced; nan if inactive)
    balance_operator: float  # the same for operator norms
    ranks: list[int]
    share: float | None = None  # ||f_j(X)||_F / sum_k ||f_k(X)||_F (needs X)

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "active": self.active,
            "path_norm": self.path_norm,
            "balance": _json_float(self.balance),
            "balance_operator": _json_float(self.balance_operator),
            "ranks": list(self.ranks),
            "share": _json_float(self.share),
        }


def _json_float(x: float | None) -> float | str | None:
    if x is None:
        return None
    x = float(x)
    # strict JSON has no NaN/Infinity: NaN (undefined) -> None, inf -> the string "inf"
    return x if np.isfinite(x) else (None if np.isnan(x) else ("inf" if x > 0 else "-inf"))


@dataclass
class Report:
    """Result of :func:`summarize`: ``str(report)`` is a text table, :meth:`as_dict` a JSON-able dict."""

    activation: str
    depth: int
    n_subnetworks: int
    widths: list[list[int]]
    layers: list[LayerReport]
    subnetworks: list[SubnetworkReport]
    rank_rule: str
    structure: str | None = None
    theorem: str | None = None
    certificate: dict[str, Any] | None = None
    end_to_end: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    # convenience views -------------------------------------------------------
    @property
    def ranks(self) -> list[list[int]]:
        """``ranks[j][l]`` for every sub-network ``j`` and layer ``l`` (0-based lists)."""
        return [s.ranks for s in self.subnetworks]

    @property
    def active(self) -> list[int]:
        """Indices of the active sub-networks."""
        return [s.index for s in self.subnetworks if s.active]

    def layer(self, j: int, l: int) -> LayerReport:
        """The report of layer ``l`` (1-based) of sub-network ``j``."""
        for rep in self.layers:
            if rep.subnetwork == j and rep.layer == l:
                return rep
        raise KeyError(f"no layer {l} in sub-network {j}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "activation": self.activation,
            "depth": self.depth,
            "n_subnetworks": self.n_subnetworks,
            "widths": [list(w) for w in self.widths],
            "rank_rule": self.rank_rule,
            "layers": [r.as_dict() for r in self.layers],
            "subnetworks": [s.as_dict() for s in self.subnetworks],
            "end_to_end": self.end_to_end,
            "structure": self.structure,
            "theorem": self.theorem,
            "certificate": self.certificate,
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        out = [
            f"Network: {self.activation}, depth {self.depth}, {self.n_subnetworks} sub-network(s), "
            f"widths {self.widths[0]}" + (" (first sub-network)" if self.n_subnetworks > 1 else ""),
            f"Rank rule: {self.rank_rule}",
            "",
            "Layers",
            f"  {'j':>3} {'l':>2} {'shape':>11} {'rank':>5} {'||W||_F':>11} {'||W||_2':>11} {'align(l,l+1)':>13}",
        ]
        for r in self.layers:
            shape = f"{r.shape[0]}x{r.shape[1]}"
            al = "-" if r.layer == self.depth else ("n/a" if r.alignment is None else f"{r.alignment:.6f}")
            out.append(f"  {r.subnetwork:>3} {r.layer:>2} {shape:>11} {r.rank:>5} {r.frobenius:>11.4g} "
                       f"{r.operator:>11.4g} {al:>13}")
        out += ["", "Sub-networks",
                f"  {'j':>3} {'active':>6} {'path norm':>11} {'balance F':>10} {'balance op':>10} {'share':>8}"]
        for s in self.subnetworks:
            share = "-" if s.share is None else (f"{s.share:.4f}" if np.isfinite(s.share) else "n/a")
            out.append(f"  {s.index:>3} {'yes' if s.active else 'no':>6} {s.path_norm:>11.4g} "
                       f"{_fmt_ratio(s.balance):>10} {_fmt_ratio(s.balance_operator):>10} {share:>8}")
        if self.end_to_end is not None:
            e = self.end_to_end
            out += ["", f"End-to-end map M = sum_j prod_l W_l,j: rank {e['rank']}, "
                        f"||M||_F = {e['frobenius']:.6g}, ||M||_2 = {e['operator']:.6g}"]
        if self.structure is not None or self.theorem is not None:
            out += ["", f"Data structure: {self.structure}", f"Theorem: {self.theorem}"]
        if self.certificate is not None:
            c = self.certificate
            out += ["", "Certificate" + (f" ({c['source']})" if "source" in c else ""),
                    f"  objective    {c['objective']:.10g}",
                    f"  lower bound  {c['lower_bound']:.10g}",
                    f"  gap          {c['gap']:.3g} (relative {c['relative_gap']:.3g})",
                    f"  certified    {c['certified']}",
                    f"  method       {c.get('method')}"]
            if "solver" in c:
                sc = c["solver"]
                out += [f"  solver       lower bound {sc['lower_bound']:.10g}, relative gap "
                        f"{sc['relative_gap']:.3g}, certified {sc['certified']} ({sc['method']})"]
        if self.notes:
            out += [""] + [f"Note: {n}" for n in self.notes]
        return "\n".join(out)

    def __repr__(self) -> str:
        return (f"Report(activation={self.activation!r}, depth={self.depth}, "
                f"subnetworks={self.n_subnetworks}, active={len(self.active)})")


def _fmt_ratio(x: float) -> str:
    if np.isnan(x):
        return "n/a"
    return "inf" if np.isinf(x) else f"{x:.6f}"


def _svd(W: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    return U, s, Vt


def _rank(s: np.ndarray, shape: tuple[int, int], tol: float | None) -> tuple[int, float]:
    smax = float(s[0]) if s.size else 0.0
    # default: the LAPACK numerical-rank threshold with the safety factor 100 used
    # throughout deepdual (deepdual.structures); a user tol is relative to sigma_max
    thr = max(shape) * _EPS * smax * 100 if tol is None else tol * smax
    return int(np.sum(s > thr)) if smax > 0 else 0, float(thr)


def _simple_top(s: np.ndarray) -> bool:
    if s.size == 0 or s[0] == 0:
        return False
    return s.size == 1 or s[1] < (1 - _SIMPLE_GAP) * s[0]


THEOREMS = {
    ("linear", 2, "scalar"): (
        "two-layer linear network (docs/theory.md §2.2): min_w loss(Xw) + beta*||w||_2; squared loss: "
        "u* = P_{X,beta}(y), hidden neuron X^T u*/||X^T u*||"
    ),
    ("linear", 2, "vector"): (
        "two-layer linear network, vector output (docs/theory.md §2.2): min_W loss(XW) + beta*||W||_* "
        "(nuclear norm); dual constraint ||X^T Lambda||_2 <= beta"
    ),
    ("linear", 2, "vector-orthonormal"): (
        "two-layer linear network, X^T X = I (docs/theory.md §2.2): W* = U (Sigma - beta I)_+ V^T from the SVD of X^T Y"
    ),
    ("linear", "deep", "scalar"): (
        "deep linear network, scalar output (docs/theory.md §2.3): one rank-one aligned balanced path; "
        "min_M loss(XM) + (beta L/2) ||M||^(2/L), a 1-D global search over ||M||"
    ),
    ("linear", "deep", "vector-orthonormal"): (
        "deep linear network, X^T X = I (docs/theory.md §2.3): each singular value s_k of X^T Y maps to "
        "argmin_sigma (sigma - s_k)^2/2 + (beta L/2) sigma^(2/L) (hard threshold); layers share rank and norms"
    ),
    ("linear", "deep", "vector"): (
        "deep linear network, vector output: min_M loss(XM) + (beta L/2) sum_k sigma_k(M)^(2/L) "
        "(non-convex; closed form only for X^T X = I)"
    ),
    ("relu", "any", "rank_one"): (
        "deep ReLU network on rank-one data X = c a0^T, c >= 0 (docs/theory.md §2.4; any convex loss, any K): "
        "f = c kappa^T, the reduced problem min_kappa loss(c kappa^T) + (beta L/2)(||kappa||/||a0||)^(2/L), "
        "one-dimensional in ||kappa||; one rank-one, aligned, balanced path (docs/losses.md)"
    ),
    ("relu", "any", "whitened"): (
        "deep ReLU network on whitened data X X^T = I (docs/theory.md §2.6): one sub-network per class/sign; "
        "two-layer optimum sum_j H_beta(sqrt(n_j))"
    ),
    ("relu", "any", "one_dimensional"): (
        "ReLU network on 1-D data with biases (docs/theory.md §2.5): a Lasso over ReLU atoms with kinks at the "
        "data points; beta -> 0 gives the linear spline"
    ),
    ("relu", 2, "general"): (
        "two-layer ReLU network, arbitrary data (docs/theory.md §2.8): the convex program over activation "
        "patterns D_i (exact when all patterns are enumerated)"
    ),
    ("relu", "deep", "general"): (
        "deep ReLU network on data that is not rank one, whitened or 1-D: no closed form; "
        "only the weak-duality certificate applies"
    ),
}


def _theorem(activation: str, depth: int, K: int, X: np.ndarray) -> tuple[str, str]:
    from .structures import detect_structure, has_orthonormal_columns

    structure = detect_structure(X)
    if activation == "linear":
        orth = has_orthonormal_columns(X)
        if orth:
            structure = "orthonormal_columns"
        kind = "scalar" if K == 1 else ("vector-orthonormal" if orth else "vector")
        key = ("linear", 2 if depth == 2 else "deep", kind)
        if key not in THEOREMS:  # two-layer scalar with orthonormal columns
            key = ("linear", 2 if depth == 2 else "deep", "scalar")
        return structure, THEOREMS[key]
    if structure in ("rank_one", "whitened", "one_dimensional"):
        return structure, THEOREMS[("relu", "any", structure)]
    return structure, THEOREMS[("relu", 2 if depth == 2 else "deep", "general")]


def summarize(
    network: Any,
    X: Any = None,
    y: Any = None,
    *,
    beta: float | None = None,
    loss: Any = None,
    tol: float | None = None,
) -> Report:
    r"""Structure report of a network: per-layer rank, alignment, norms; per-path balance,
    activity and share; and, given data, the certificate and the theorem that applies.

    Parameters
    ----------
    network : Network or Solution
        A :class:`~deepdual.Solution` contributes its own objective, lower bound and
        method as the certificate when no data is given.
    X : array of shape (n, d), optional
        Data: enables the per-sub-network share of the output, the structure
        detection and (with ``y`` and ``beta``) the certificate.
    y : array of shape (n,) or (n, K), optional
    beta : float > 0, optional
        Weight decay, for the certificate.
    loss : str or Loss, optional
        Loss for the certificate (default: the network's recorded problem,
        :attr:`Network.problem`, else squared; ``beta`` likewise defaults to the recorded one).
    tol : float, optional
        Relative rank threshold: a singular value counts when it exceeds
        ``tol * sigma_max``.  Default: ``max(shape) * eps * sigma_max * 100`` (the
        LAPACK numerical-rank rule with the safety factor used throughout deepdual).

    Returns
    -------
    Report

    Notes
    -----
    * **rank** of :math:`W_{l,j}`: number of singular values above the threshold;
    * **alignment** of layers :math:`l, l+1`: :math:`|\langle v_1(W_l), u_1(W_{l+1})\rangle|`,
      the top right singular vector of :math:`W_l` against the top left singular vector of
      :math:`W_{l+1}` (1 for the optimal rank-one layers :math:`t\rho_{l-1}\rho_l^T`);
      undefined (None) when a top singular value is zero or not simple;
    * **balance** of path :math:`j`: :math:`\max_l\|W_{l,j}\|_F / \min_l\|W_{l,j}\|_F` (1 at any
      optimum, by the AM--GM rescaling argument), and the same for operator norms;
    * **active**: :math:`\prod_l \|W_{l,j}\|_F > 0`;
    * **share**: :math:`\|f_j(X)\|_F / \sum_k\|f_k(X)\|_F` with :math:`f_j(X) = A_{L-1,j}W_{L,j}`.

    Examples
    --------
    >>> import numpy as np, deepdual
    >>> W1 = np.outer([1.0, 0.0], [0.6, 0.8]); W2 = np.array([[0.6], [0.8]])
    >>> rep = deepdual.summarize(deepdual.Network([[W1, W2]], activation="linear"))
    >>> rep.ranks, round(rep.layer(0, 1).alignment, 12), round(rep.subnetworks[0].balance, 12)
    ([[1, 1]], 1.0, 1.0)
    """
    from .solution import Solution

    solution = None
    if isinstance(network, Solution):
        solution, network = network, network.network
    if not isinstance(network, Network):
        raise TypeError(f"`network` must be a deepdual.Network or Solution, got {type(network).__name__}")
    network.validate()
    if tol is not None:
        tol = check_positive(tol, "tol")
        if tol >= 1:
            raise ValueError(f"`tol` is relative to the largest singular value and must be < 1, got {tol}")
    if (y is not None) and X is None:
        raise ValueError("`y` was given without `X`")

    layers: list[LayerReport] = []
    subs: list[SubnetworkReport] = []
    L = network.depth
    for j, Ws in enumerate(network.weights):
        svds = [_svd(W) for W in Ws]
        ranks, fros, ops = [], [], []
        for l, (W, (U, s, Vt)) in enumerate(zip(Ws, svds)):
            rank, thr = _rank(s, W.shape, tol)
            fro = float(np.linalg.norm(W))
            op = float(s[0]) if s.size else 0.0
            align = None
            if l + 1 < L:
                U2, s2, _ = svds[l + 1]
                if _simple_top(s) and _simple_top(s2):
                    align = float(min(abs(Vt[0] @ U2[:, 0]), 1.0))
            layers.append(LayerReport(j, l + 1, tuple(W.shape), rank, thr, fro, op, align,
                                      [float(v) for v in s[: min(s.size, 5)]]))
            ranks.append(rank)
            fros.append(fro)
            ops.append(op)
        path = float(np.prod(fros))
        active = path > 0
        subs.append(SubnetworkReport(j, bool(active), path, _ratio(fros), _ratio(ops), ranks))

    end_to_end = None
    if network.activation == "linear":
        M = sum(np.linalg.multi_dot(Ws) if len(Ws) > 2 else Ws[0] @ Ws[1] for Ws in network.weights)
        s = np.linalg.svd(M, compute_uv=False)
        r, thr = _rank(s, M.shape, tol)
        end_to_end = {"rank": r, "rank_threshold": thr, "frobenius": float(np.linalg.norm(M)),
                      "operator": float(s[0]) if s.size else 0.0}

    rule = ("singular values > max(shape) * eps * sigma_max * 100 (LAPACK rule x 100)" if tol is None
            else f"singular values > {tol:g} * sigma_max")
    rep = Report(network.activation, L, network.n_subnetworks, network.widths, layers, subs, rule,
                 end_to_end=end_to_end)

    if X is not None:
        from ._validation import check_matrix

        Xa = check_matrix(X, "X")
        if Xa.shape[1] != network.input_dim:
            raise ValueError(f"`X` has {Xa.shape[1]} columns but the network expects {network.input_dim}")
        norms = np.array([np.linalg.norm(network.hidden(Xa, j) @ Ws[-1]) for j, Ws in enumerate(network.weights)])
        total = float(norms.sum())
        for s, nj in zip(subs, norms):
            s.share = float(nj / total) if total > 0 else float("nan")
        rep.structure, rep.theorem = _theorem(network.activation, L, network.n_outputs, Xa)
        if network.activation == "relu" and rep.structure == "one_dimensional" and not network.has_biases:
            rep.notes.append("the 1-D theorem concerns networks with biases; this network has none")
        if beta is None:  # the problem recorded by solve (deepdual.problem)
            beta = (getattr(network, "problem", None) or {}).get("beta")
        if y is not None and beta is not None:
            rep.certificate = _certificate(network, Xa, y, beta, loss, rep)
    if solution is not None:
        c = solution.as_dict()
        if rep.certificate is None:
            c["source"] = "solution"
            rep.certificate = c
        else:
            # the solver's own bound (proven for the problem it solved) next to the fresh
            # certify() of the network on the data given here; not merged, since only the
            # latter is about these data
            rep.certificate["solver"] = c
    if X is not None and (y is None or beta is None):
        rep.notes.append("certificate needs X, y and beta")
    return rep


def _ratio(vals: list[float]) -> float:
    hi, lo = max(vals), min(vals)
    if hi == 0:
        return float("nan")
    return float("inf") if lo == 0 else hi / lo


def _certificate(network: Network, X: np.ndarray, y: Any, beta: float, loss: Any, rep: Report) -> dict | None:
    from .api import certify

    try:
        cert = certify(network, X, y, beta=beta, loss=loss)
    except (ImportError, NotImplementedError) as exc:  # a certificate module is not available
        rep.notes.append(f"certificate unavailable: {exc}")
        return None
    out = cert.as_dict()
    out["source"] = "deepdual.certify"
    return out
