r"""scikit-learn estimators around :func:`deepdual.solve` (the ``[sklearn]`` extra).

:class:`DualNetRegressor` and :class:`DualNetClassifier` fit the globally optimal
weight-decay network

.. math:: \min_\theta\ \ell(f_\theta(X), Y) + \frac{\beta}{2}\sum_{j,l}\|W_{l,j}\|_F^2

with the closed form that the data's structure allows (rank-one, whitened, 1-D,
linear) and the two-layer convex program otherwise, exactly as :func:`deepdual.solve`
dispatches.  After ``fit``:

* ``network_`` is the fitted :class:`~deepdual.Network`;
* ``certificate_`` is the :class:`~deepdual.Solution` (objective, lower bound, gap,
  ``certified``, method).

Known exception to scikit-learn's estimator checks: none for the API checks; the
estimators are deterministic given ``random_state`` (patterns of the convex program
are sampled with it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.preprocessing import LabelEncoder
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        "deepdual's estimators need scikit-learn; install it with `pip install deepdual[sklearn]`"
    ) from None

from .api import solve
from .solution import DEFAULT_RTOL

__all__ = ["DualNetRegressor", "DualNetClassifier"]


class _DualNetBase(BaseEstimator):
    def __init__(
        self,
        beta: float = 1.0,
        depth: int = 2,
        activation: str = "relu",
        loss: str | None = None,
        bias: bool = False,
        method: str = "auto",
        rtol: float = DEFAULT_RTOL,
        random_state: Any = None,
        solver_options: dict[str, Any] | None = None,
    ) -> None:
        self.beta = beta
        self.depth = depth
        self.activation = activation
        self.loss = loss
        self.bias = bias
        self.method = method
        self.rtol = rtol
        self.random_state = random_state
        self.solver_options = solver_options

    def _solve(self, X: np.ndarray, Y: np.ndarray, loss: str):
        opts = dict(self.solver_options or {})
        kw: dict[str, Any] = {}
        if self.activation == "relu" and "rng" not in opts and self.random_state is not None:
            # the convex program samples activation patterns; only it takes `rng`
            kw["rng"] = self.random_state
        try:
            return solve(X, Y, beta=self.beta, depth=self.depth, activation=self.activation, bias=self.bias,
                         loss=loss, method=self.method, rtol=self.rtol, **kw, **opts)
        except TypeError as exc:
            if kw and "rng" in str(exc):
                # the dispatched solver is a closed form: no sampling, no `rng`
                return solve(X, Y, beta=self.beta, depth=self.depth, activation=self.activation,
                             bias=self.bias, loss=loss, method=self.method, rtol=self.rtol, **opts)
            raise

    def _decision(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "network_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.network_.forward(X)


class DualNetRegressor(RegressorMixin, _DualNetBase):
    """Globally optimal weight-decay network for regression (squared loss).

    Parameters
    ----------
    beta : float, default 1.0
        Weight decay in deepdual's convention (sum loss, penalty (beta/2) sum ||W||^2).
    depth : int, default 2
    activation : {"relu", "linear"}, default "relu"
    loss : None or "squared"
        Only the squared loss is a regression loss.
    bias : bool, default False
    method : str, default "auto"
        Passed to :func:`deepdual.solve`.
    rtol : float
        Relative gap under which ``certificate_.certified`` is true.
    random_state : int, Generator or None
        Seed for sampled activation patterns (convex program).
    solver_options : dict, optional
        Extra keyword options for the solver.

    Attributes
    ----------
    network_ : deepdual.Network
    certificate_ : deepdual.Solution
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from deepdual import DualNetRegressor
    >>> X = np.random.default_rng(0).standard_normal((20, 3)); y = X[:, 0]
    >>> est = DualNetRegressor(beta=0.1, activation="linear").fit(X, y)
    >>> est.certificate_.certified
    True
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # vector outputs (K > 1) are supported
        return tags

    def fit(self, X: Any, y: Any) -> "DualNetRegressor":
        X, y = validate_data(self, X, y, y_numeric=True, multi_output=True, dtype=np.float64)
        if self.loss not in (None, "squared"):
            raise ValueError(f"`loss` must be None or 'squared' for DualNetRegressor, got {self.loss!r}")
        self._y_1d = np.ndim(y) == 1
        sol = self._solve(X, y, "squared")
        self.network_ = sol.network
        self.certificate_ = sol
        return self

    def predict(self, X: Any) -> np.ndarray:
        F = self._decision(X)
        return F[:, 0] if self._y_1d else F


class DualNetClassifier(ClassifierMixin, _DualNetBase):
    """Globally optimal weight-decay network for classification.

    Binary problems use labels +-1 with ``loss`` in {"logistic" (default), "hinge",
    "squared"}; multiclass problems use one-hot targets with ``loss`` in
    {"cross_entropy" (default), "squared"}.  Parameters are those of
    :class:`DualNetRegressor`.

    Attributes
    ----------
    classes_ : ndarray
    network_ : deepdual.Network
    certificate_ : deepdual.Solution
    n_features_in_ : int
    """

    def fit(self, X: Any, y: Any) -> "DualNetClassifier":
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self._le = LabelEncoder().fit(y)
        self.classes_ = self._le.classes_
        codes = self._le.transform(y)
        K = len(self.classes_)
        if K < 2:
            raise ValueError(f"`y` must contain at least two classes, got {K} class (one class cannot be classified)")
        if K == 2:
            loss = self.loss or "logistic"
            if loss not in ("logistic", "hinge", "squared"):
                raise ValueError(f"`loss` must be 'logistic', 'hinge' or 'squared' for two classes, got {loss!r}")
            Y = 2.0 * codes - 1.0
        else:
            loss = self.loss or "cross_entropy"
            if loss not in ("cross_entropy", "squared"):
                raise ValueError(f"`loss` must be 'cross_entropy' or 'squared' for {K} classes, got {loss!r}")
            Y = np.eye(K)[codes]
        self._loss_name = loss
        sol = self._solve(X, Y, loss)
        self.network_ = sol.network
        self.certificate_ = sol
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        F = self._decision(X)
        return F[:, 0] if F.shape[1] == 1 else F

    def predict(self, X: Any) -> np.ndarray:
        F = self._decision(X)
        idx = (F[:, 0] > 0).astype(int) if F.shape[1] == 1 else np.argmax(F, axis=1)
        return self.classes_[idx]

    def _probabilistic(self) -> bool:
        # before fit, the default losses (logistic / cross_entropy) are probabilistic
        return getattr(self, "_loss_name", self.loss or "logistic") in ("logistic", "cross_entropy")

    @available_if(_probabilistic)
    def predict_proba(self, X: Any) -> np.ndarray:
        r"""Class probabilities :math:`\sigma(f)` (logistic) or softmax (cross-entropy)."""
        F = self._decision(X)
        if F.shape[1] == 1:
            p = 1.0 / (1.0 + np.exp(-F[:, 0]))
            return np.column_stack([1.0 - p, p])
        F = F - F.max(axis=1, keepdims=True)
        E = np.exp(F)
        return E / E.sum(axis=1, keepdims=True)
