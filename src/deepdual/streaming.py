r"""Tall data: solve from sufficient statistics accumulated in chunks (dask or generators).

For the squared loss, every *linear* network (two-layer or deep, scalar or vector
output) and every ReLU network on *rank-one* data :math:`X = c\,a_0^T` (:math:`c \ge 0`)
has an objective that depends on the data only through :math:`G = X^TX`,
:math:`B = X^TY` and :math:`Y^TY` (see :mod:`deepdual.stats`).  From those we build a
small data set :math:`(\tilde X, \tilde Y)` with at most :math:`d` rows (one row for
rank-one data) and a constant :math:`c_0 \ge 0` such that

.. math:: P_{X,Y}(\theta) = P_{\tilde X, \tilde Y}(\theta) + c_0 \quad\text{for every network } \theta

of the class considered.  The global optimum, the optimal network and any proven
lower bound therefore transfer: we call the same in-memory solver on
:math:`(\tilde X, \tilde Y)` and add :math:`c_0` to its objective and lower bound.  The
lower bound stays a proven weak-duality bound for the full problem: with
:math:`u = Y - XM` the full dual value is
:math:`\langle Y,u\rangle - \tfrac12\|u\|^2 = \tfrac12\operatorname{tr}(Y^TY) - \tfrac12\operatorname{tr}(M^TGM)`,
the compressed one plus :math:`c_0`, and the dual constraint
:math:`X^Tu = B - GM = \tilde X^T\tilde u` is the same.

Memory is :math:`O(d^2)` plus one chunk per worker; time is one pass over the data
(:math:`O(nd^2)` flops, the cost of forming :math:`X^TX`) plus a :math:`d \times d`
eigendecomposition.  The Gram matrix squares the condition number of :math:`X`:
for ill-conditioned data (cond > 1e4) the in-memory path, which factors ``X``
itself by an SVD (:func:`deepdual.projection.factorize`), is more accurate.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import check_beta, check_choice, check_depth, check_positive
from .losses import Loss, SquaredLoss, get_loss
from .network import ACTIVATIONS, Network
from .solution import DEFAULT_RTOL, Solution
from .stats import Compressed, SufficientStats, from_dask

__all__ = ["solve_streaming", "solve_stats", "StreamingNetwork"]


def _is_dask(a: Any) -> bool:
    return hasattr(a, "chunks") and hasattr(a, "compute") and hasattr(a, "dask")


class StreamingNetwork(Network):
    """A :class:`~deepdual.Network` whose :meth:`predict` and :meth:`forward` also accept
    dask arrays (returning a lazy dask array computed block by block)."""

    @classmethod
    def from_network(cls, net: Network) -> "StreamingNetwork":
        return cls(net.weights, net.activation, biases=net.biases, output_bias=net.output_bias,
                   scalar_output=net.scalar_output)

    def forward(self, X: Any) -> Any:
        if _is_dask(X):
            return self._dask_apply(X, Network.forward, scalar=False)
        return super().forward(X)

    def predict(self, X: Any) -> Any:
        if _is_dask(X):
            return self._dask_apply(X, Network.predict, scalar=self.scalar_output)
        return super().predict(X)

    __call__ = predict

    def _dask_apply(self, X: Any, fn: Any, *, scalar: bool) -> Any:
        if X.ndim != 2 or X.shape[1] != self.input_dim:
            raise ValueError(f"`X` must have shape (n, {self.input_dim}), got {X.shape}")
        X = X.rechunk({1: -1})
        plain = Network.copy(self)

        def block(b: np.ndarray) -> np.ndarray:
            return fn(plain, b)

        if scalar:
            return X.map_blocks(block, drop_axis=1, dtype=np.float64)
        return X.map_blocks(block, chunks=(X.chunks[0], (self.n_outputs,)), dtype=np.float64)


def solve_stats(
    stats: SufficientStats,
    *,
    beta: float,
    depth: int = 2,
    activation: str = "linear",
    bias: bool = False,
    loss: Any = "squared",
    method: str = "auto",
    rtol: float = DEFAULT_RTOL,
    **options: Any,
) -> Solution:
    r"""Globally optimal network from sufficient statistics (squared loss).

    Solves the same problem as :func:`deepdual.solve` for a data set known only
    through :class:`~deepdual.stats.SufficientStats` (see the module docstring):

    * ``activation="linear"``: any depth, scalar or vector output -- the same
      theorems as in memory (docs/theory.md §2.2, 2.3);
    * ``activation="relu"``: rank-one data :math:`X = c\,a_0^T` with :math:`c \ge 0`
      (docs/theory.md §2.4), any depth.

    Parameters
    ----------
    stats : SufficientStats
        From :func:`deepdual.stats.accumulate`, :func:`~deepdual.stats.from_dask` or
        :func:`~deepdual.stats.from_arrays`.
    beta, depth, activation, method, rtol, **options
        As in :func:`deepdual.solve` (options go to the in-memory solver).
    bias : bool
        Must be False (biases need the data, not only its Gram matrix).
    loss : "squared"
        Only the squared loss is a function of the sufficient statistics.

    Returns
    -------
    Solution
        Its network is a :class:`StreamingNetwork` (predicts numpy or dask input);
        ``dual`` is None (the full dual point :math:`Y - XM` has ``n`` rows) and
        ``info["compressed_dual"]`` holds the compressed one.

    Examples
    --------
    >>> import numpy as np
    >>> from deepdual.stats import accumulate
    >>> from deepdual.streaming import solve_stats
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((1000, 4)), rng.standard_normal(1000)
    >>> st = accumulate((X[i:i + 250], y[i:i + 250]) for i in range(0, 1000, 250))
    >>> sol = solve_stats(st, beta=1.0, activation="linear")  # doctest: +SKIP
    """
    if not isinstance(stats, SufficientStats):
        raise TypeError(f"`stats` must be a deepdual.stats.SufficientStats, got {type(stats).__name__}")
    beta = check_beta(beta)
    depth = check_depth(depth)
    activation = check_choice(activation, "activation", ACTIVATIONS)
    rtol = check_positive(rtol, "rtol")
    lossf = get_loss(loss)
    _check_streamable(lossf, bias)
    if not isinstance(method, str):
        raise TypeError(f"`method` must be a string, got {type(method).__name__}")
    if stats.n == 0:
        raise ValueError("`X` has no rows: no statistics were accumulated")
    scalar = bool(stats.scalar) if stats.scalar is not None else stats.K == 1
    kw = dict(scalar=scalar, beta=beta, depth=depth, loss=lossf, rtol=rtol, bias=False)
    if activation == "linear":
        comp = stats.compress()
        if comp.X.shape[0] == 0:
            # X = 0: every linear network predicts 0; one zero row is an equivalent data set
            comp = Compressed(np.zeros((1, stats.d)), np.zeros((1, stats.K)), comp.c0)
        from .linear.solver import solve_linear

        if "factorization" not in options:
            options = {**options, "factorization": _row_factorization(comp.X)}
        sol = solve_linear(comp.X, comp.Y, method=method, **kw, **options)
        note = "linear network: objective depends on X^T X, X^T Y, Y^T Y only"
    else:
        if method not in ("auto", "rank_one"):
            raise ValueError(
                f"`method` for streaming ReLU problems must be 'auto' or 'rank_one' (the only ReLU "
                f"structure determined by X^T X), got {method!r}"
            )
        comp = stats.rank_one()
        if comp is None:
            raise ValueError(
                f"streaming (dask/chunked) ReLU problems need rank-one data X = c a0^T with c >= 0 "
                f"(docs/theory.md §2.4); this X ({stats.n}x{stats.d}) is not. Use activation='linear', or pass an "
                "in-memory array to deepdual.solve"
            )
        from .relu.dispatch import solve_relu

        sol = solve_relu(comp.X, comp.Y, method="rank_one", **kw, **options)
        note = "ReLU network on rank-one data X = c a0^T, c >= 0: f(X) = (c/|c|) f(|c| a0^T)"
    c0 = comp.c0
    info = dict(sol.info)
    info.update(
        streaming=True,
        n_samples=stats.n,
        compressed_rows=int(comp.X.shape[0]),
        c0=c0,
        compressed_dual=sol.dual,
        reduction=note,
    )
    lower = sol.lower_bound + c0 if np.isfinite(sol.lower_bound) else sol.lower_bound
    return Solution(
        network=StreamingNetwork.from_network(sol.network),
        objective=float(sol.objective + c0),
        lower_bound=float(lower),
        method=sol.method,
        rtol=rtol,
        dual=None,
        info=info,
    )


def _row_factorization(Xc: np.ndarray):
    r"""The thin SVD of the compressed data :math:`\tilde X = \Lambda^{1/2}V^T` without computing it:
    its rows are orthogonal, so :math:`U = I`, :math:`s` = the row norms (descending, as the
    eigenvalues) and :math:`V^T` = the normalized rows.  Saves a k x d SVD per solve; any
    inaccuracy cannot invalidate a certificate (the solvers evaluate dual points against
    :math:`\tilde X` itself)."""
    from .projection import Factorization

    k, d = Xc.shape
    s = np.sqrt(np.einsum("ij,ij->i", Xc, Xc))
    if not np.all(s > 0):
        from .projection import factorize

        return factorize(Xc)  # not the expected form (compress() keeps nonzero rows only): factor it
    # descending order (rounding may swap nearly equal eigenvalues): X = I[:, o] diag(s[o]) (X[o] / s[o])
    o = np.argsort(-s, kind="stable")
    return Factorization(np.eye(k)[:, o], s[o], Xc[o] / s[o, None], (k, d), "gram")


def _check_streamable(lossf: Loss, bias: bool) -> None:
    if type(lossf) is not SquaredLoss:
        raise ValueError(
            "streaming (dask/chunked) input supports only loss='squared': other losses are not "
            f"functions of X^T X, X^T y, y^T y; got loss={lossf.name!r}. Call .compute() on the "
            "arrays to use the in-memory solvers"
        )
    if bias:
        raise ValueError("streaming (dask/chunked) input supports only bias=False")


def solve_streaming(
    X: Any,
    y: Any,
    *,
    beta: float,
    depth: int = 2,
    activation: str = "linear",
    bias: bool = False,
    loss: Any = "squared",
    method: str = "auto",
    rtol: float = DEFAULT_RTOL,
    **options: Any,
) -> Solution:
    """:func:`deepdual.solve` for dask arrays: one distributed pass accumulates
    :math:`X^TX, X^TY, Y^TY` (:func:`deepdual.stats.from_dask`), then :func:`solve_stats`.

    Supported: squared loss, no biases, linear networks of any depth, and ReLU
    networks on rank-one data (``X = c a0^T`` with ``c >= 0``); anything else
    raises ``ValueError`` before touching the data.
    """
    lossf = get_loss(loss)
    _check_streamable(lossf, bias)
    activation = check_choice(activation, "activation", ACTIVATIONS)
    if activation == "relu" and method not in ("auto", "rank_one"):
        raise ValueError(
            f"`method` for streaming ReLU problems must be 'auto' or 'rank_one', got {method!r}"
        )
    stats = from_dask(X, y)
    return solve_stats(stats, beta=beta, depth=depth, activation=activation, bias=bias, loss=lossf,
                       method=method, rtol=rtol, **options)
