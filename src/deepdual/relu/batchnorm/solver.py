r"""Deep ReLU networks with batch normalization before the last layer: exact optimum.

Architecture (depth :math:`L \ge 2`, data :math:`X \in \mathbb{R}^{n\times d}`, :math:`n \ge 2`)
-----------------------------------------------------------------------------------------------

.. math::

    A_0 = X,\qquad A_l = (A_{l-1} W_l)_+ \ (l = 1..L-2),\qquad Z = A_{L-2} W_{L-1} \in \mathbb{R}^{n\times m},

    H = \sigma\big(\mathrm{BN}_{\gamma,\alpha}(Z)\big),\qquad f(X) = H W_L + \mathbf 1 b^\top,

with :math:`\sigma` the ReLU (``relu_after_bn=True``, the usual Linear-BN-ReLU order) or the
identity, and batch normalization acting on each column (unit) :math:`z_j` of :math:`Z` with
the statistics of the batch :math:`X`:

.. math::

    \mathrm{BN}_{\gamma_j,\alpha_j}(z_j) = \gamma_j \frac{C z_j}{\|C z_j\|_2} + \alpha_j \mathbf 1,
    \qquad C = I_n - \tfrac1n \mathbf 1\mathbf 1^\top

(``C z_j / ||C z_j||`` is read as 0 when :math:`C z_j = 0`).  This is PyTorch's
``BatchNorm1d`` in training mode with ``eps=0`` and :math:`\gamma_{\text{torch}} = \gamma/\sqrt n`.

Objective (the deepdual convention, a *sum* over samples):

.. math::

    P(\theta) = \tfrac12\|f(X) - Y\|_F^2 + \tfrac{\beta}{2}\big(\|\gamma\|_2^2 + \|W_L\|_F^2\big).

The layers before the normalization (:math:`W_1, \dots, W_{L-1}`) are not penalized: BN makes
the network invariant to their positive scaling, so a penalty on them would not change the
infimum (it would only make it unattained).  The BN shift :math:`\alpha` and the output bias
:math:`b` are biases and, as everywhere in deepdual, not penalized.

Theorem (see ``docs/batchnorm.md`` for the proof)
--------------------------------------------------
Let :math:`CY = \sum_k \sigma_k u_k v_k^\top` (SVD of the centered labels).

1. *(Any data, any widths and depth.)*  For every :math:`\Lambda` with
   :math:`\mathbf 1^\top\Lambda = 0` and :math:`\|\Lambda\|_2 \le \beta`,
   :math:`P(\theta) \ge \langle \Lambda, Y\rangle - \tfrac12\|\Lambda\|_F^2`.  The best such bound
   is attained at :math:`\Lambda^\star = \sum_k \min(\sigma_k, \beta) u_k v_k^\top` and equals
   :math:`p^\star = \sum_k H_\beta(\sigma_k)` with :math:`H_\beta(t) = t^2/2` for :math:`t \le \beta`
   and :math:`\beta t - \beta^2/2` otherwise.
2. *(Attainment.)*  If the pre-BN layer can produce the directions
   :math:`u_k` with :math:`\sigma_k > \beta` (for ``depth = 2``: they lie in
   :math:`\operatorname{range}(CX)`, e.g. when :math:`n \le d` and :math:`X` has full row rank;
   for ``depth >= 3`` also whenever ReLU features of :math:`X` span :math:`\mathbb R^n`) and
   :math:`m \ge r = \#\{k : \sigma_k > \beta\}`, then :math:`p^\star` is the global minimum and
   :math:`f^\star(X) = \mathbf 1\bar y^\top + \sum_k (\sigma_k - \beta)_+ u_k v_k^\top`.
3. *(Neural collapse.)*  At every global minimizer the centered last hidden layer satisfies
   :math:`(CH)(CH)^\top = \sum_k (\sigma_k - \beta)_+ u_k u_k^\top`.  For one-hot labels all
   samples of a class share one feature vector, the classifier columns are proportional to
   the centered class means, and with balanced classes and :math:`\beta < \sqrt{n/K}` the
   centered class means form a simplex equiangular tight frame (equal norms, pairwise
   cosines :math:`-1/(K-1)`).

References
----------
.. [1] T. Ergen and M. Pilanci, "Revealing the Structure of Deep Neural Networks via Convex
   Duality", ICML 2021 (arXiv:2002.09773), section on batch normalization.
.. [2] T. Ergen, A. Sahiner, B. Ozturkler, J. Pauly, M. Mardani and M. Pilanci,
   "Demystifying Batch Normalization in ReLU Networks: Equivalent Convex Optimization Models
   and Implicit Regularization", ICLR 2022.
.. [3] V. Papyan, X. Y. Han and D. L. Donoho, "Prevalence of neural collapse during the terminal
   phase of deep learning training", PNAS 2020.
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..._validation import (
    as_rng,
    check_beta,
    check_depth,
    check_finite,
    check_matrix,
    check_options,
    check_targets,
    check_X_y,
)
from ...progress import check_time_limit, show_progress
from ...solution import DEFAULT_RTOL, Certificate, Solution

__all__ = [
    "BatchNormNetwork",
    "BatchNormSolution",
    "solve_batchnorm",
    "batchnorm_objective",
    "objective",
    "batchnorm_dual",
    "certify_batchnorm",
    "neural_collapse_metrics",
    "simplex_etf_gram",
    "train_batchnorm",
]

_EPS = np.finfo(float).eps


def _center(Z: np.ndarray) -> np.ndarray:
    """:math:`CZ`: subtract the column means."""
    return Z - Z.mean(axis=0, keepdims=True)


def _huber(t: np.ndarray, beta: float) -> np.ndarray:
    r""":math:`H_\beta(t) = t^2/2` for :math:`t \le \beta`, :math:`\beta t - \beta^2/2` otherwise."""
    t = np.asarray(t, dtype=float)
    return np.where(t <= beta, 0.5 * t**2, beta * t - 0.5 * beta**2)


# ---------------------------------------------------------------------------------- network
class BatchNormNetwork:
    r"""A deep ReLU network with batch normalization before the last layer.

    .. math::

        Z = A_{L-2}W_{L-1},\quad H = \sigma(\gamma \odot \widehat{Z} + \mathbf 1\alpha^\top),\quad
        f = HW_L + \mathbf 1 b^\top,

    where :math:`A_0 = X`, :math:`A_l = (A_{l-1}W_l)_+` and each column of :math:`\widehat Z` is
    :math:`(z_j - \mu_j\mathbf 1)/s_j` with the batch mean :math:`\mu_j` and the batch *norm*
    :math:`s_j = \|z_j - \mu_j \mathbf 1\|_2` (not the standard deviation; see the module
    docstring for the PyTorch conversion).

    Parameters
    ----------
    weights : sequence of 2-D arrays
        ``weights[l]`` is :math:`W_{l+1}` with shape ``(m_l, m_{l+1})``; ``weights[-2]`` feeds the
        BN layer (width ``m``) and ``weights[-1]`` has shape ``(m, K)``.  At least 2 layers.
    gamma, alpha : 1-D arrays of shape (m,)
        BN scale (penalized) and shift (not penalized).
    output_bias : 1-D array of shape (K,), optional
        Unpenalized output bias :math:`b` (zeros if omitted).
    relu_after_bn : bool, default True
        Apply a ReLU after the normalization (Linear-BN-ReLU) or not.
    scalar_output : bool, optional
        Whether :meth:`predict` returns shape ``(n,)``; defaults to ``K == 1``.

    Attributes
    ----------
    running_mean_, running_norm_ : ndarray of shape (m,) or None
        Batch statistics :math:`\mu_j, s_j` stored by :meth:`fit_statistics`; used by
        :meth:`predict` (like PyTorch's eval mode) so held-out points are normalized with
        the statistics of the training batch.
    """

    def __init__(
        self,
        weights: Sequence[Any],
        gamma: Any,
        alpha: Any,
        output_bias: Any = None,
        *,
        relu_after_bn: bool = True,
        scalar_output: bool | None = None,
    ) -> None:
        if isinstance(weights, np.ndarray) or not isinstance(weights, (list, tuple)):
            raise TypeError("`weights` must be a list of 2-D arrays, one per layer")
        if len(weights) < 2:
            raise ValueError(f"`weights` must have at least 2 layers, got {len(weights)}")
        ws = [check_matrix(W, f"weights[{l}]") for l, W in enumerate(weights)]
        for l in range(1, len(ws)):
            if ws[l].shape[0] != ws[l - 1].shape[1]:
                raise ValueError(
                    f"`weights[{l}]` has {ws[l].shape[0]} rows but weights[{l-1}] has {ws[l-1].shape[1]} columns"
                )
        m, K = ws[-1].shape
        self.weights = ws
        self.gamma = self._vector(gamma, "gamma", m)
        self.alpha = self._vector(alpha, "alpha", m)
        self.output_bias = np.zeros(K) if output_bias is None else self._vector(output_bias, "output_bias", K)
        if not isinstance(relu_after_bn, (bool, np.bool_)):
            raise TypeError(f"`relu_after_bn` must be a bool, got {type(relu_after_bn).__name__}")
        self.relu_after_bn = bool(relu_after_bn)
        self.scalar_output = bool(K == 1) if scalar_output is None else bool(scalar_output)
        self.running_mean_: np.ndarray | None = None
        self.running_norm_: np.ndarray | None = None

    @staticmethod
    def _vector(v: Any, name: str, size: int) -> np.ndarray:
        arr = np.array(v, dtype=np.float64, copy=True).reshape(-1) if v is not None else None
        if arr is None or arr.shape != (size,):
            raise ValueError(f"`{name}` must have shape ({size},), got {None if arr is None else arr.shape}")
        check_finite(arr, name)
        return arr

    # -------------------------------------------------------------- shape info
    @property
    def depth(self) -> int:
        """Number of weight layers ``L``."""
        return len(self.weights)

    @property
    def input_dim(self) -> int:
        return self.weights[0].shape[0]

    @property
    def bn_width(self) -> int:
        """Number ``m`` of batch-normalized units (width of the last hidden layer)."""
        return self.weights[-1].shape[0]

    @property
    def n_outputs(self) -> int:
        return self.weights[-1].shape[1]

    @property
    def widths(self) -> list[int]:
        """``[d, m_1, ..., m_{L-1}, K]``."""
        return [self.weights[0].shape[0]] + [W.shape[1] for W in self.weights]

    # -------------------------------------------------------------- evaluation
    def _check_input(self, X: Any) -> np.ndarray:
        X = check_matrix(X, "X")
        if X.shape[1] != self.input_dim:
            raise ValueError(f"`X` must have {self.input_dim} columns for this network, got {X.shape[1]}")
        return X

    def pre_bn(self, X: Any) -> np.ndarray:
        """Pre-normalization activations :math:`Z = A_{L-2}W_{L-1}`, shape ``(n, m)``."""
        A = self._check_input(X)
        for W in self.weights[:-2]:
            A = np.maximum(A @ W, 0.0)
        return A @ self.weights[-2]

    @staticmethod
    def _batch_stats(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu = Z.mean(axis=0)
        return mu, np.linalg.norm(Z - mu, axis=0)

    def _normalize(self, Z: np.ndarray, mu: np.ndarray, s: np.ndarray) -> np.ndarray:
        # A unit whose batch is constant (s = 0) outputs only its shift alpha (0/0 read as 0;
        # PyTorch with eps > 0 gives the same).
        safe = np.where(s > 0, s, 1.0)
        return np.where(s > 0, (Z - mu) / safe, 0.0)

    def hidden(self, X: Any, *, mode: str = "train") -> np.ndarray:
        r"""Last hidden layer :math:`H = \sigma(\mathrm{BN}(Z))`, shape ``(n, m)``.

        ``mode="train"`` normalizes with the statistics of the batch ``X`` itself (what the
        training objective uses); ``mode="eval"`` uses the stored training statistics.
        """
        Z = self.pre_bn(X)
        if mode == "train":
            if Z.shape[0] < 2:
                raise ValueError("`X` must have at least 2 rows for batch statistics (mode='train')")
            mu, s = self._batch_stats(Z)
        elif mode == "eval":
            if self.running_mean_ is None:
                raise ValueError("no stored batch statistics; call fit_statistics(X_train) or use mode='train'")
            mu, s = self.running_mean_, self.running_norm_
        else:
            raise ValueError(f"`mode` must be 'train' or 'eval'; got {mode!r}")
        V = self.gamma * self._normalize(Z, mu, s) + self.alpha
        return np.maximum(V, 0.0) if self.relu_after_bn else V

    def forward(self, X: Any, *, mode: str = "train") -> np.ndarray:
        """Network output of shape ``(n, K)`` (see :meth:`hidden` for ``mode``)."""
        return self.hidden(X, mode=mode) @ self.weights[-1] + self.output_bias

    def fit_statistics(self, X: Any) -> "BatchNormNetwork":
        """Store the batch statistics of the training batch ``X`` for :meth:`predict`; returns self."""
        Z = self.pre_bn(X)
        if Z.shape[0] < 2:
            raise ValueError("`X` must have at least 2 rows to compute batch statistics")
        self.running_mean_, self.running_norm_ = self._batch_stats(Z)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Eval-mode output (training-batch statistics), shape ``(n,)`` for scalar output."""
        out = self.forward(X, mode="eval")
        return out[:, 0] if self.scalar_output else out

    __call__ = predict

    def squared_norm(self) -> float:
        r"""Penalized squared norm :math:`\|\gamma\|^2 + \|W_L\|_F^2`."""
        return float(self.gamma @ self.gamma + np.vdot(self.weights[-1], self.weights[-1]))

    def objective(self, X: Any, y: Any, *, beta: float) -> float:
        """Shortcut for :func:`batchnorm_objective`."""
        return batchnorm_objective(self, X, y, beta=beta)

    def copy(self) -> "BatchNormNetwork":
        net = BatchNormNetwork(self.weights, self.gamma, self.alpha, self.output_bias,
                               relu_after_bn=self.relu_after_bn, scalar_output=self.scalar_output)
        if self.running_mean_ is not None:
            net.running_mean_ = self.running_mean_.copy()
            net.running_norm_ = self.running_norm_.copy()
        return net

    def __repr__(self) -> str:
        order = "BN-ReLU" if self.relu_after_bn else "BN"
        return f"BatchNormNetwork(depth={self.depth}, widths={self.widths}, {order})"


def batchnorm_objective(network: BatchNormNetwork, X: Any, y: Any, *, beta: float) -> float:
    r"""Training objective of a :class:`BatchNormNetwork` on the batch ``X``:

    .. math:: \tfrac12\|f(X) - Y\|_F^2 + \tfrac\beta2(\|\gamma\|_2^2 + \|W_L\|_F^2),

    with the batch statistics of ``X`` (training mode).  Squared loss, summed over samples.
    """
    if not isinstance(network, BatchNormNetwork):
        raise TypeError(f"`network` must be a BatchNormNetwork, got {type(network).__name__}")
    X = check_matrix(X, "X")
    Y, _ = check_targets(y, X.shape[0], "y")
    beta = check_beta(beta)
    F = network.forward(X, mode="train")
    if F.shape != Y.shape:
        raise ValueError(f"`y` has {Y.shape[1]} output column(s) but the network has {F.shape[1]}")
    return float(0.5 * np.sum((F - Y) ** 2) + 0.5 * beta * network.squared_norm())


#: the module-level name the issue asks for; same function as :func:`batchnorm_objective`
objective = batchnorm_objective


# ---------------------------------------------------------------------------------- dual
@dataclass
class BatchNormDual:
    r"""The optimal dual point and value of Theorem 1.

    Attributes
    ----------
    value : float
        :math:`p^\star = \sum_k H_\beta(\sigma_k)`: a lower bound on the objective of every
        BN network (any data, depth and width).
    Lambda : ndarray (n, K)
        :math:`\Lambda^\star = \sum_k \min(\sigma_k,\beta)u_kv_k^\top` (centered columns,
        spectral norm :math:`\le \beta`).
    U, sigma, V : ndarrays
        Thin SVD of the centered labels :math:`CY = U\,\mathrm{diag}(\sigma)V^\top`.
    """

    value: float
    Lambda: np.ndarray
    U: np.ndarray
    sigma: np.ndarray
    V: np.ndarray


def batchnorm_dual(X: Any, y: Any, *, beta: float) -> BatchNormDual:
    r"""Optimal dual point of the BN problem and its value :math:`p^\star`.

    For :math:`\Lambda` with :math:`\mathbf 1^\top\Lambda = 0` and :math:`\|\Lambda\|_2 \le \beta`,
    every BN network satisfies :math:`P(\theta) \ge \langle\Lambda, Y\rangle - \frac12\|\Lambda\|_F^2`
    (weak duality; proof in ``docs/batchnorm.md``).  The maximizer is the projection of
    :math:`CY` onto the spectral-norm ball, :math:`\Lambda^\star = U\min(\Sigma,\beta)V^\top`.

    The dual value is evaluated from :math:`\Lambda^\star` itself (not from the formula
    :math:`\sum_k H_\beta(\sigma_k)`), and :math:`\Lambda^\star` is rescaled by
    :math:`\min(1, \beta/\|\Lambda^\star\|_2)` and re-centered, so that it is feasible up to
    rounding of the computed spectral norm and column sums (both ~1e-16 relative).
    """
    X = check_matrix(X, "X")
    Y, _ = check_targets(y, X.shape[0], "y")
    beta = check_beta(beta)
    CY = _center(Y)
    U, sigma, Vt = np.linalg.svd(CY, full_matrices=False)
    Lam = (U * np.minimum(sigma, beta)) @ Vt
    Lam = _center(Lam)  # exactly centered columns up to rounding
    spec = np.linalg.norm(Lam, 2) if Lam.size else 0.0
    if spec > beta:
        Lam *= beta / spec
    value = float(np.vdot(Lam, Y) - 0.5 * np.vdot(Lam, Lam))
    return BatchNormDual(value=value, Lambda=Lam, U=U, sigma=sigma, V=Vt.T)


def certify_batchnorm(network: BatchNormNetwork, X: Any, y: Any, *, beta: float,
                      rtol: float = DEFAULT_RTOL) -> Certificate:
    """Weak-duality certificate for any :class:`BatchNormNetwork` on ``(X, y)``.

    The lower bound is the optimal dual value of :func:`batchnorm_dual`, which does not
    depend on the network; the gap says how far ``network`` is from the global optimum.
    """
    dual = batchnorm_dual(X, y, beta=beta)
    return Certificate(
        objective=batchnorm_objective(network, X, y, beta=beta),
        lower_bound=dual.value,
        method="exact: batchnorm (spectral norm of centered dual)",
        exact_constraint=True,
        dual=dual.Lambda,
        rtol=rtol,
    )


# ---------------------------------------------------------------------------------- solution
@dataclass(repr=False)
class BatchNormSolution(Solution):
    """:class:`~deepdual.Solution` whose ``network`` is a :class:`BatchNormNetwork`.

    Adds accessors for the last hidden layer and its neural-collapse metrics.
    """

    X_train: np.ndarray | None = field(default=None, repr=False)

    def hidden(self, X: Any = None) -> np.ndarray:
        """Last hidden layer :math:`H` on the training batch (default) or eval-mode on ``X``."""
        if X is None:
            return self.network.hidden(self.X_train, mode="train")
        return self.network.hidden(X, mode="eval")

    def neural_collapse(self, labels: Any) -> dict[str, Any]:
        """:func:`neural_collapse_metrics` of the training-batch hidden layer and classifier."""
        return neural_collapse_metrics(self.hidden(), labels, classifier=self.network.weights[-1])


def _range_residual(B: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares ``M`` with ``B M ~= T`` and the relative residual ``||BM - T|| / ||T||``."""
    if T.shape[1] == 0:
        return np.zeros((B.shape[1], 0)), 0.0
    M, *_ = np.linalg.lstsq(B, T, rcond=None)
    res = np.linalg.norm(B @ M - T) / max(np.linalg.norm(T), np.finfo(float).tiny)
    return M, float(res)


#: relative residual under which the pre-BN layer is taken to reproduce the optimal
#: directions: a residual delta perturbs the optimal output by O(delta * ||s||) and the
#: objective by O(delta * p*), far below the default certification rtol of 1e-6.  The
#: certificate itself is computed from the built network, so this only picks the route.
_RANGE_TOL = 1e-9


def _build_pre_bn(X: np.ndarray, T: np.ndarray, depth: int, rng: np.random.Generator,
                  n_features: int) -> tuple[list[np.ndarray], dict[str, Any]]:
    r"""Unpenalized layers :math:`W_1..W_{L-1}` whose pre-BN output :math:`Z` has :math:`CZ \approx T`.

    Route "data": :math:`T \subset \operatorname{range}(CX)`.  Then :math:`M = (CX)^+T` gives
    :math:`XM = T + \mathbf 1 c^\top`; for ``depth >= 3`` the ReLU pair
    :math:`(XM)_+ - (-XM)_+ = XM` carries it through (widths ``2r``, identity layers).
    Route "relu_features" (``depth >= 3`` only): first layer :math:`(XG)_+` with a random
    Gaussian ``G`` of width ``n_features``; then the same construction on those features.
    """
    r = T.shape[1]
    info: dict[str, Any] = {}
    if r == 0:  # degenerate (beta >= every sigma_k): one dead unit keeps the shapes valid
        dims = [X.shape[1]] + [1] * (depth - 1)
        info.update(route="zero", range_residual=0.0)
        return [np.zeros((dims[l], dims[l + 1])) for l in range(depth - 1)], info
    M, res = _range_residual(_center(X), T)
    route = "data"
    weights: list[np.ndarray] = []
    if res > _RANGE_TOL:
        if depth == 2:
            raise ValueError(
                "`X`: the optimal BN directions (left singular vectors of the centered labels) are "
                f"not in range(C X) (relative residual {res:.2e}); the closed form needs them there "
                "for depth=2, e.g. n <= d with X of full row rank (or rank(C X) = n - 1). "
                "Use depth >= 3 (ReLU features of X then span them for data with pairwise "
                "non-parallel rows) or whiten/augment the features"
            )
        G = rng.standard_normal((X.shape[1], n_features)) / np.sqrt(X.shape[1])
        weights.append(G)
        M, res = _range_residual(_center(np.maximum(X @ G, 0.0)), T)
        route = "relu_features"
        info["n_features"] = n_features
        if res > _RANGE_TOL:
            raise ValueError(
                f"`X`: ReLU features of width {n_features} do not span the optimal BN directions "
                f"(relative residual {res:.2e}); this happens when equal rows of X (or groups of rows "
                "that are positive multiples of each other) have different labels: a bias-free "
                "ReLU layer maps them to proportional features. Pass a larger `n_features` or "
                "add a constant feature to X"
            )
    info["route"] = route
    info["range_residual"] = res
    remaining = depth - 1 - len(weights)  # layers still to place before BN (>= 1)
    if remaining == 1:
        weights.append(M)
    else:
        # (A M)_+ - (-A M)_+ = A M carries the target through the ReLU layers
        weights.append(np.hstack([M, -M]))
        for _ in range(remaining - 2):
            weights.append(np.eye(2 * r))
        weights.append(np.vstack([np.eye(r), -np.eye(r)]))
    return weights, info


def solve_batchnorm(
    X: Any,
    y: Any,
    *,
    beta: float,
    depth: int = 2,
    rtol: float = DEFAULT_RTOL,
    relu_after_bn: bool = True,
    loss: Any = "squared",
    **options: Any,
) -> BatchNormSolution:
    r"""Globally optimal deep ReLU network with batch normalization before the last layer.

    Solves, over all widths and weights of the architecture of :class:`BatchNormNetwork`,

    .. math::

        \min_\theta\ \tfrac12\|f_\theta(X) - Y\|_F^2 + \tfrac\beta2\big(\|\gamma\|_2^2 + \|W_L\|_F^2\big)

    in closed form.  With the SVD :math:`CY = \sum_k\sigma_k u_kv_k^\top` of the centered labels
    and :math:`s_k = (\sigma_k - \beta)_+`, the optimum uses one BN unit per :math:`s_k > 0`:

    .. math::

        \gamma_k = \sqrt{s_k},\quad \widehat z_k = u_k,\quad W_L[k,:] = \sqrt{s_k}\,v_k^\top,\quad
        \alpha_k = \gamma_k\max(0, -\min_i u_{ik}),\quad b = \bar y - W_L^\top\alpha,

    so that :math:`f(X) = \mathbf 1\bar y^\top + \sum_k s_k u_k v_k^\top` and the objective is
    :math:`p^\star = \sum_k H_\beta(\sigma_k)`, which equals the weak-duality lower bound of
    :func:`batchnorm_dual` (hence global optimality over every width).

    Parameters
    ----------
    X : array (n, d), n >= 2
        Any data.  ``depth=2`` needs the optimal directions in ``range(C X)`` (e.g. ``n <= d``
        and full row rank); ``depth >= 3`` also works for any data with pairwise non-parallel
        rows (random ReLU features in the first layer).
    y : array (n,) or (n, K)
        Targets (one-hot labels for classification).
    beta : float > 0
        Regularization strength.
    depth : int >= 2
        Number of weight layers ``L``; BN sits on the output of layer ``L-1``.
    rtol : float
        Relative gap under which the result is reported as certified.
    relu_after_bn : bool, default True
        Linear-BN-ReLU (True) or Linear-BN (False) before the last layer; the optimum is
        the same (the ReLU is inactive at the optimum).
    loss : "squared"
        Only the squared loss has this closed form.
    **options
        ``rng`` (seed or Generator, for the random-feature route) and ``n_features``
        (first-layer width of that route, default ``2 n``); ``time_limit`` (seconds) and
        ``progress`` as in :func:`deepdual.solve`: a closed form is not cut, so the limit is
        only checked after it (``info["time_limit_exceeded"]`` when it ran longer).

    Returns
    -------
    BatchNormSolution
        ``objective`` is evaluated on the built network; ``lower_bound`` is the dual value of
        :math:`\Lambda^\star`; ``info`` holds ``sigma`` (singular values of ``CY``), ``s``,
        ``rank``, ``route`` and ``range_residual``.

    Examples
    --------
    >>> import numpy as np, deepdual
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((6, 8)); Y = np.eye(3)[[0, 0, 1, 1, 2, 2]]
    >>> sol = deepdual.solve_batchnorm(X, Y, beta=0.1, depth=3)
    >>> sol.certified
    True
    """
    check_options(options, ("rng", "n_features", "time_limit", "progress"), "solve_batchnorm")
    time_limit = check_time_limit(options.get("time_limit"))
    show_progress(options.get("progress"))  # validated; a closed form shows no bar
    t_start = time.perf_counter()
    if not (loss == "squared" or getattr(loss, "name", None) == "squared"):
        raise ValueError(f"`loss` must be 'squared' for the BatchNorm closed form; got {loss!r}")
    X, Y, scalar = check_X_y(X, y)
    beta = check_beta(beta)
    depth = check_depth(depth)
    if not isinstance(relu_after_bn, (bool, np.bool_)):
        raise TypeError(f"`relu_after_bn` must be a bool, got {type(relu_after_bn).__name__}")
    if isinstance(rtol, bool) or not isinstance(rtol, numbers.Real) or not (0 < float(rtol) < 1):
        raise ValueError(f"`rtol` must be a number in (0, 1), got {rtol!r}")
    n = X.shape[0]
    if n < 2:
        raise ValueError(f"`X` must have at least 2 rows (batch statistics need a batch), got {n}")
    n_features = options.get("n_features", 2 * n)
    if isinstance(n_features, bool) or not isinstance(n_features, (numbers.Integral, np.integer)) or n_features < 1:
        raise ValueError(f"`n_features` must be a positive integer, got {n_features!r}")
    rng = as_rng(options.get("rng"))

    dual = batchnorm_dual(X, Y, beta=beta)
    sigma = dual.sigma
    # singular values below this are zero up to rounding of the SVD of CY
    tiny = max(Y.shape) * _EPS * (sigma[0] if sigma.size else 0.0)
    s = np.maximum(sigma - beta, 0.0)
    keep = (s > 0) & (sigma > tiny)
    r = int(keep.sum())
    T = dual.U[:, keep]
    weights, info = _build_pre_bn(X, T, depth, rng, int(n_features))
    if r == 0:
        gamma = np.zeros(1)
        alpha = np.zeros(1)
        W_L = np.zeros((1, Y.shape[1]))
    else:
        gamma = np.sqrt(s[keep])
        W_L = np.sqrt(s[keep])[:, None] * dual.V[:, keep].T
        alpha = np.zeros(r)
    net = BatchNormNetwork(weights + [W_L], gamma, alpha, np.zeros(Y.shape[1]),
                           relu_after_bn=bool(relu_after_bn), scalar_output=scalar)
    if r > 0:
        # Shift each unit so the ReLU is inactive on the batch: alpha_k = gamma_k * max(0, -min u_k).
        Z = net.pre_bn(X)
        mu, sn = BatchNormNetwork._batch_stats(Z)
        Uhat = net._normalize(Z, mu, sn)
        net.alpha = gamma * np.maximum(0.0, -Uhat.min(axis=0))
    ybar = Y.mean(axis=0)
    net.output_bias = ybar - net.weights[-1].T @ net.alpha
    net.fit_statistics(X)

    value = batchnorm_objective(net, X, Y, beta=beta)
    info.update(
        sigma=sigma.copy(),
        s=s.copy(),
        rank=r,
        beta=beta,
        loss="squared",
        closed_form_value=float(np.sum(_huber(sigma, beta))),
        relu_after_bn=bool(relu_after_bn),
        penalized="gamma and W_L (pre-BN weights, BN shift alpha and output bias b unpenalized)",
        assumptions=(
            "optimal directions u_k (sigma_k > beta) realizable by the pre-BN layer; "
            "holds if rank(C X) = n - 1 (e.g. n <= d, X full row rank) or, for depth >= 3, "
            "if ReLU features of X span R^n"
        ),
    )
    if time_limit is not None:
        info["time_limit_s"] = time_limit
        if time.perf_counter() - t_start > time_limit:
            info["time_limit_exceeded"] = True  # (finished: the closed form is exact and certified)
    return BatchNormSolution(
        network=net,
        objective=value,
        lower_bound=dual.value,
        method="batchnorm closed form (centered-label SVD, Huber shrinkage)",
        rtol=float(rtol),
        dual=dual.Lambda,
        info=info,
        X_train=X,
    )


# ---------------------------------------------------------------------------------- neural collapse
def simplex_etf_gram(K: int) -> np.ndarray:
    r"""Cosine Gram matrix of a simplex ETF with ``K`` vertices: :math:`\frac{K}{K-1}(I - \frac1K\mathbf 1\mathbf 1^\top)`."""
    if isinstance(K, bool) or not isinstance(K, (numbers.Integral, np.integer)) or K < 2:
        raise ValueError(f"`K` must be an integer >= 2, got {K!r}")
    return (K / (K - 1.0)) * (np.eye(K) - 1.0 / K)


def _labels_to_int(labels: Any, n: int) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim == 2:
        if arr.shape[0] != n:
            raise ValueError(f"`labels` must have {n} rows, got {arr.shape[0]}")
        return np.argmax(arr, axis=1)
    if arr.ndim == 1 and arr.shape[0] == n:
        if arr.dtype.kind not in "iub" and not np.all(arr == np.round(arr)):
            raise ValueError("`labels` must be integer class labels or a one-hot matrix")
        return arr.astype(int)
    raise ValueError(f"`labels` must be (n,) integer labels or an (n, K) one-hot matrix with n={n}")


def neural_collapse_metrics(H: Any, labels: Any, *, classifier: Any = None) -> dict[str, Any]:
    r"""Neural-collapse statistics of features ``H`` (n, m) for class labels.

    With class means :math:`\mu_c`, the global mean :math:`\mu_G` (over samples) and centered
    means :math:`\tilde\mu_c = \mu_c - \mu_G`:

    * ``nc1``: :math:`\operatorname{tr}\Sigma_W / \operatorname{tr}\Sigma_B` (within- over
      between-class scatter; 0 when every class collapses to its mean);
    * ``norm_spread``: std/mean of :math:`\|\tilde\mu_c\|` (0 for equal norms);
    * ``cosines``: the matrix of :math:`\cos\angle(\tilde\mu_c, \tilde\mu_{c'})` and
      ``max_cos_error`` :math:`= \max_{c\ne c'}|\cos - (-1/(K-1))|` (0 for a simplex ETF);
    * ``nc3`` (if ``classifier`` (m, K) is given): :math:`\max_c (1 - \cos\angle(W_{:,c}, \tilde\mu_c))`.
    """
    H = check_matrix(H, "H")
    n = H.shape[0]
    lab = _labels_to_int(labels, n)
    classes = np.unique(lab)
    K = classes.size
    if K < 2:
        raise ValueError("`labels` must contain at least 2 classes")
    muG = H.mean(axis=0)
    means = np.stack([H[lab == c].mean(axis=0) for c in classes])
    Mc = means - muG
    within = sum(float(np.sum((H[lab == c] - means[i]) ** 2)) for i, c in enumerate(classes))
    counts = np.array([np.sum(lab == c) for c in classes])
    between = float(np.sum(counts[:, None] * Mc**2))
    norms = np.linalg.norm(Mc, axis=1)
    tiny = np.finfo(float).tiny
    cos = (Mc @ Mc.T) / np.maximum(np.outer(norms, norms), tiny)
    off = ~np.eye(K, dtype=bool)
    out: dict[str, Any] = {
        "K": int(K),
        "class_sizes": counts.tolist(),
        "nc1": within / max(between, tiny),
        "mean_norms": norms.tolist(),
        "norm_spread": float(norms.std() / max(norms.mean(), tiny)),
        "cosines": cos.tolist(),
        "target_cosine": -1.0 / (K - 1),
        "max_cos_error": float(np.max(np.abs(cos[off] + 1.0 / (K - 1)))),
    }
    if classifier is not None:
        W = check_matrix(classifier, "classifier")
        if W.shape != (H.shape[1], K):
            raise ValueError(f"`classifier` must have shape ({H.shape[1]}, {K}), got {W.shape}")
        wn = np.linalg.norm(W, axis=0)
        c3 = np.sum(W * Mc.T, axis=0) / np.maximum(wn * norms, tiny)
        out["nc3"] = float(np.max(1.0 - c3))
    return out


# ---------------------------------------------------------------------------------- training
def train_batchnorm(
    X: Any,
    y: Any,
    *,
    beta: float,
    depth: int = 2,
    width: int | None = None,
    hidden_width: int | None = None,
    relu_after_bn: bool = True,
    restarts: int = 10,
    iters: int = 500,
    optimizer: str = "lbfgs",
    lr: float = 1e-2,
    seed: int = 0,
    record: bool = False,
    keep_all: bool = False,
    progress: bool = False,
) -> tuple[BatchNormNetwork, dict[str, Any]]:
    r"""Direct (non-convex) training of the same BN network on the same objective.

    Full-batch PyTorch in float64, from ``restarts`` random initializations, minimizing
    :math:`\frac12\|f(X)-Y\|_F^2 + \frac\beta2(\|\gamma\|^2 + \|W_L\|_F^2)` with the batch
    statistics of ``X``.  ``optimizer="lbfgs"`` (strong-Wolfe line search, ``iters``
    function evaluations) or ``"adam"`` (``iters`` steps of size ``lr``).

    Returns the best network (by :func:`batchnorm_objective`, with stored statistics) and
    ``info`` with ``objectives`` (one per restart), if ``record`` ``curves`` (the
    objective after each evaluation/step of each restart) and if ``keep_all`` ``networks``
    (the trained network of every restart, statistics stored).
    """
    from ..._torch import require_torch

    torch = require_torch()
    X, Y, scalar = check_X_y(X, y)
    beta = check_beta(beta)
    depth = check_depth(depth)
    n, d = X.shape
    K = Y.shape[1]
    if n < 2:
        raise ValueError(f"`X` must have at least 2 rows, got {n}")
    width = int(width) if width is not None else min(n, K + 2)
    hidden_width = int(hidden_width) if hidden_width is not None else 2 * n
    if width < 1 or hidden_width < 1:
        raise ValueError("`width` and `hidden_width` must be positive integers")
    if optimizer not in ("lbfgs", "adam"):
        raise ValueError(f"`optimizer` must be 'lbfgs' or 'adam'; got {optimizer!r}")
    Xt = torch.as_tensor(X)
    Yt = torch.as_tensor(Y)
    dims = [d] + [hidden_width] * (depth - 2) + [width]
    iterator = range(int(restarts))
    if progress:
        try:
            from tqdm.auto import tqdm

            iterator = tqdm(iterator, desc="BN training restarts", leave=False)
        except ImportError:  # pragma: no cover - tqdm comes with the torch extra
            pass

    best, best_val = None, np.inf
    objectives, curves, nets = [], [], []
    for r in iterator:
        g = torch.Generator().manual_seed(int(seed) * 100003 + r)
        Ws = [(torch.randn(dims[l], dims[l + 1], generator=g, dtype=torch.float64) / np.sqrt(dims[l]))
              .requires_grad_() for l in range(depth - 1)]
        gamma = torch.randn(width, generator=g, dtype=torch.float64).requires_grad_()
        alpha = (0.5 * torch.randn(width, generator=g, dtype=torch.float64)).requires_grad_()
        WL = (torch.randn(width, K, generator=g, dtype=torch.float64) / np.sqrt(width)).requires_grad_()
        b = torch.as_tensor(Y.mean(axis=0)).clone().requires_grad_()
        params = Ws + [gamma, alpha, WL, b]

        def obj():
            A = Xt
            for W in Ws[:-1]:
                A = torch.relu(A @ W)
            Z = A @ Ws[-1]
            Zc = Z - Z.mean(dim=0, keepdim=True)
            V = gamma * Zc / Zc.norm(dim=0) + alpha
            Hh = torch.relu(V) if relu_after_bn else V
            F = Hh @ WL + b
            return 0.5 * ((F - Yt) ** 2).sum() + 0.5 * beta * ((gamma**2).sum() + (WL**2).sum())

        curve: list[float] = []
        if optimizer == "lbfgs":
            opt = torch.optim.LBFGS(params, lr=1.0, max_iter=int(iters), max_eval=int(1.25 * iters),
                                    history_size=50, tolerance_grad=1e-13, tolerance_change=1e-16,
                                    line_search_fn="strong_wolfe")

            def closure():
                opt.zero_grad()
                v = obj()
                v.backward()
                if record:
                    curve.append(float(v.detach()))
                return v

            try:
                opt.step(closure)
            except RuntimeError:  # pragma: no cover - a degenerate restart (e.g. NaN from 0/0)
                pass
        else:
            opt = torch.optim.Adam(params, lr=lr)
            for _ in range(int(iters)):
                opt.zero_grad()
                v = obj()
                v.backward()
                opt.step()
                if record:
                    curve.append(float(v.detach()))
        net = BatchNormNetwork(
            [W.detach().numpy().copy() for W in Ws] + [WL.detach().numpy().copy()],
            gamma.detach().numpy(), alpha.detach().numpy(), b.detach().numpy(),
            relu_after_bn=relu_after_bn, scalar_output=scalar,
        )
        try:
            val = batchnorm_objective(net, X, Y, beta=beta)
        except ValueError:  # pragma: no cover - NaN parameters from a diverged restart
            val = np.inf
        if not np.isfinite(val):
            val = np.inf
        objectives.append(val)
        curves.append(curve)
        if keep_all:
            nets.append(net.fit_statistics(X) if np.isfinite(val) else net)
        if val < best_val:
            best, best_val = net, val
    if best is None:
        raise RuntimeError("every training restart diverged")
    best.fit_statistics(X)
    info: dict[str, Any] = {"objectives": objectives, "best": best_val}
    if record:
        info["curves"] = curves
    if keep_all:
        info["networks"] = nets
    return best, info
