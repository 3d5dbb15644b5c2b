r"""scikit-learn estimators that train globally optimal ReLU (or linear) networks.

:class:`DualNetRegressor` and :class:`DualNetClassifier` fit the network that minimizes

.. math:: \ell(f_\theta(X), Y) + \frac\beta2\sum_j\sum_l\|W_{l,j}\|_F^2

with :func:`deepdual.solve`: a closed form when the data have one (rank-one, whitened,
one-dimensional data), the convex program of two-layer ReLU networks otherwise
(:mod:`deepdual.relu.convex_program.solver`).  The fitted network, and the
:class:`~deepdual.Solution` with its duality certificate, are the attributes
``network_`` and ``certificate_``.

Requires the ``[sklearn]`` extra (``pip install deepdual[sklearn]``).

Notes
-----
* The loss is a *sum* over samples (docs/theory.md §1): the same ``beta`` regularizes a
  large data set less than a small one.  scikit-learn's ``MLPClassifier(alpha=a)``
  uses a mean loss with penalty :math:`\frac{a}{2n}\|W\|^2`, i.e. ``beta = a`` here.
* ``bias=True`` (default) appends a column of ones: with the convex program the hidden
  biases are then penalized like the weights (see :func:`deepdual.solve`); on
  one-dimensional data with the squared loss the exact 1-D solver is used, whose
  biases are unpenalized.
* With the default ``method="auto"`` and data of more than a few dimensions, the
  convex program samples ``n_patterns`` activation patterns: the network is then
  optimal among networks with those patterns (``certificate_.info["note"]``).
* Both estimators pass scikit-learn's estimator checks (``tests/test_estimators.py``)
  with no check skipped by deepdual; the test uses a small sampled pattern set,
  ``max_iter=60`` and ``certify_max_patterns=0`` to stay fast.  scikit-learn itself
  skips its pandas and array-API checks when pandas or ``SCIPY_ARRAY_API`` are absent.
* Vector outputs (several targets, or cross-entropy with more than two classes) fit an
  upper-bound program polished by local descent; their certificate is proven but
  rarely closes the gap (``docs/convex_program.md``, section 5).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        "deepdual.DualNetRegressor / DualNetClassifier need scikit-learn (>= 1.6); "
        "install it with `pip install deepdual[sklearn]`"
    ) from exc

from .api import solve
from .solution import Solution
from .relu.convex_program.solver import CONVEX_OPTIONS
from .structures import is_whitened, rank_one_factors

__all__ = ["DualNetRegressor", "DualNetClassifier"]

#: options of the convex program: passed only when it is the solver used (the closed
#: forms reject unknown options)
_CONVEX_ONLY = CONVEX_OPTIONS


def _resolve_method(X: np.ndarray, *, activation: str, depth: int, bias: bool, method: str,
                    loss: str, K: int) -> str:
    """The solver :func:`deepdual.solve` would use (``method="auto"``), made explicit so
    that the convex program's options are passed only to it.  On 1-D data the exact 1-D
    solver handles the squared loss with scalar output; other losses use the convex
    program on ``[x, 1]``."""
    if method != "auto" or activation != "relu":
        return method
    d = X.shape[1]
    if bias and d == 1:
        return "one_dimensional" if (loss == "squared" and K == 1) else "convex"
    if bias:
        return "convex"
    if rank_one_factors(X) is not None:
        return "rank_one"
    if is_whitened(X):
        return "whitened"
    return "convex" if depth == 2 else "auto"


def _seed(random_state: Any) -> int | None:
    """``None`` (fresh entropy), or an int seed drawn from ``random_state``."""
    if random_state is None:
        return None
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


class _DualNetBase(BaseEstimator):
    """Shared parameters and fitting of the deepdual estimators."""

    _default_loss = "squared"

    def __init__(
        self,
        beta: float = 1.0,
        *,
        depth: int = 2,
        activation: str = "relu",
        loss: str = "auto",
        bias: bool = True,
        method: str = "auto",
        rtol: float = 1e-4,
        n_patterns: int = 50,
        random_state: Any = None,
        solver_options: dict | None = None,
    ) -> None:
        self.beta = beta
        self.depth = depth
        self.activation = activation
        self.loss = loss
        self.bias = bias
        self.method = method
        self.rtol = rtol
        self.n_patterns = n_patterns
        self.random_state = random_state
        self.solver_options = solver_options

    def _solve(self, X: np.ndarray, Y: np.ndarray, loss: str) -> Solution:
        if not isinstance(self.solver_options, (dict, type(None))):
            raise TypeError(f"`solver_options` must be a dict or None, got {type(self.solver_options).__name__}")
        opts = dict(self.solver_options or {})
        K = 1 if Y.ndim == 1 else Y.shape[1]
        method = _resolve_method(X, activation=self.activation, depth=self.depth, bias=bool(self.bias),
                                 method=self.method, loss=loss, K=K)
        if method == "convex":
            opts.setdefault("n_patterns", self.n_patterns)
            opts.setdefault("rng", _seed(self.random_state))
        else:
            for name in _CONVEX_ONLY:
                opts.pop(name, None)
        return solve(X, Y, beta=self.beta, depth=self.depth, activation=self.activation, bias=self.bias,
                     loss=loss, method=method, rtol=self.rtol, **opts)

    def _forward(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "network_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.network_.forward(X)


class DualNetRegressor(RegressorMixin, _DualNetBase):
    r"""Regressor: the globally optimal regularized ReLU network (docs/theory.md §2.8).

    Parameters
    ----------
    beta : float > 0, default 1.0
        Weight-decay strength :math:`\beta` (sum convention).
    depth : int >= 2, default 2
    activation : {"relu", "linear"}, default "relu"
    loss : {"auto", "squared"}, default "auto" (squared loss)
    bias : bool, default True
        Hidden biases (penalized with the convex program; see module notes).
    method : str, default "auto"
        Passed to :func:`deepdual.solve` (``"convex"``, ``"whitened"``, ...).
    rtol : float, default 1e-4
        Target relative duality gap of the solver.
    n_patterns : int, default 50
        Sampled activation patterns when the convex program cannot enumerate them all.
    random_state : None, int or RandomState
        Seed of the sampled patterns.
    solver_options : dict, optional
        Extra options of the solver, e.g. ``{"max_iter": 200, "max_patterns": 500}``;
        the convex program's options (:data:`deepdual.relu.convex_program.solver.CONVEX_OPTIONS`)
        are dropped when another solver (a closed form) is used.

    Attributes
    ----------
    network_ : deepdual.Network
    certificate_ : deepdual.Solution
        Objective, proven lower bound and gap of the fit.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from deepdual import DualNetRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((10, 2)); y = np.abs(X[:, 0])
    >>> reg = DualNetRegressor(beta=0.1, random_state=0).fit(X, y)
    >>> reg.predict(X).shape
    (10,)
    """

    def fit(self, X: Any, y: Any) -> "DualNetRegressor":
        """Fit the network to ``X`` (n, d) and ``y`` (n,) or (n, K)."""
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64)
        loss = "squared" if self.loss == "auto" else self.loss
        if loss != "squared":
            raise ValueError(f"`loss` must be 'auto' or 'squared' for DualNetRegressor, got {self.loss!r}")
        sol = self._solve(X, y, loss)
        self.certificate_ = sol
        self.network_ = sol.network
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Network output: shape (n,) for 1-D targets, else (n, K)."""
        F = self._forward(X)
        return F[:, 0] if self.network_.scalar_output else F

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


class DualNetClassifier(ClassifierMixin, _DualNetBase):
    r"""Classifier: the globally optimal regularized ReLU network (docs/theory.md §2.8).

    Labels are encoded as :math:`\pm1` for a binary problem with the logistic (or squared)
    loss and one-hot for the cross-entropy (or squared) loss with several classes.

    Parameters
    ----------
    beta : float > 0, default 1.0
    depth, activation, bias, method, rtol, n_patterns, random_state, solver_options
        As in :class:`DualNetRegressor`.
    loss : {"auto", "logistic", "cross_entropy", "squared", "hinge"}, default "auto"
        ``"auto"``: logistic for two classes, cross-entropy for more.  ``"hinge"``
        (two classes) needs a solver that supports it (not the convex program);
        ``predict_proba`` exists only for the logistic and cross-entropy losses.

    Attributes
    ----------
    classes_ : ndarray
    network_ : deepdual.Network
    certificate_ : deepdual.Solution
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from deepdual import DualNetClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((20, 2)); y = (X[:, 0] * X[:, 1] > 0).astype(int)
    >>> clf = DualNetClassifier(beta=0.1, random_state=0).fit(X, y)
    >>> clf.predict_proba(X).shape
    (20, 2)
    """

    def _loss_name(self) -> str:
        n_classes = len(self.classes_)
        loss = self.loss
        if loss == "auto":
            return "logistic" if n_classes == 2 else "cross_entropy"
        if loss not in ("logistic", "cross_entropy", "squared", "hinge"):
            raise ValueError(f"`loss` must be 'auto', 'logistic', 'cross_entropy', 'hinge' or 'squared', "
                             f"got {loss!r}")
        if loss in ("logistic", "hinge") and n_classes != 2:
            raise ValueError(f"`loss`={loss!r} needs two classes, got {n_classes}; use 'cross_entropy'")
        return loss

    def fit(self, X: Any, y: Any) -> "DualNetClassifier":
        """Fit the network to ``X`` (n, d) and class labels ``y`` (n,)."""
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_min_samples=1)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"the classifier needs at least 2 classes in `y`, got 1 class: {self.classes_[0]!r}")
        loss = self._loss_name()
        if loss == "cross_entropy" or (loss == "squared" and len(self.classes_) > 2):
            T = np.zeros((len(codes), len(self.classes_)))
            T[np.arange(len(codes)), codes] = 1.0
        else:
            T = 2.0 * codes - 1.0  # +-1: classes_[1] is the positive class
        self._fit_loss = loss
        sol = self._solve(X, T, loss)
        self.certificate_ = sol
        self.network_ = sol.network
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Network output: (n,) for two classes (positive favours ``classes_[1]``), else (n, K)."""
        F = self._forward(X)
        return F[:, 0] if F.shape[1] == 1 else F

    def predict(self, X: Any) -> np.ndarray:
        D = self.decision_function(X)
        if D.ndim == 1:
            return self.classes_[(D > 0).astype(int)]
        return self.classes_[np.argmax(D, axis=1)]

    def _probabilistic(self) -> bool:
        # before fit the parameter decides ("auto" picks logistic / cross-entropy)
        loss = getattr(self, "_fit_loss", self.loss)
        return loss in ("auto", "logistic", "cross_entropy")

    @available_if(lambda self: self._probabilistic())
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (logistic or softmax link), shape (n, n_classes)."""
        from scipy.special import expit, softmax

        D = self.decision_function(X)
        if D.ndim == 1:
            p = expit(D)
            return np.column_stack([1.0 - p, p])
        return softmax(D, axis=1)

    @available_if(lambda self: self._probabilistic())
    def predict_log_proba(self, X: Any) -> np.ndarray:
        from scipy.special import log_expit, log_softmax

        D = self.decision_function(X)
        if D.ndim == 1:
            return np.column_stack([log_expit(-D), log_expit(D)])
        return log_softmax(D, axis=1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        return tags
