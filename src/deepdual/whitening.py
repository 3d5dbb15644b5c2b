r"""Sample whitening: make the rows of a data matrix orthonormal, :math:`X_wX_w^T = I_n`.

The whitened-data theorem (docs/theory.md §2.6) needs :math:`XX^T = I_n`, i.e. :math:`n \le d` samples
whose rows are orthonormal.  With the thin SVD :math:`X = U\,\mathrm{diag}(s)\,V^T` of a
training matrix of rank :math:`n` we use the linear map of *feature space*

.. math:: T = V\,\mathrm{diag}(s)^{-1}V^T \in \mathbb{R}^{d\times d}
          \qquad(\text{"zca"}; \;T = (X^TX)^{+1/2}),

so that :math:`X_w = XT = UV^T`.  A held-out sample (a row :math:`x`) is mapped the same
way, :math:`x \mapsto x\,T`: the map is fixed by the training data, applies to any number
of rows, and drops the part of :math:`x` outside the training row space.
:math:`UV^T` is the orthogonal polar factor of :math:`X`, the matrix with orthonormal rows
*closest* to :math:`X` in Frobenius norm, and :math:`UV^T = (XX^T)^{-1/2}X` -- the
"whitening" of the paper.  ``method="pca"`` uses :math:`T = V\,\mathrm{diag}(s)^{-1}`
(:math:`d\times n`), giving :math:`X_w = U` with :math:`n` features instead.

No centering is done: centering makes the rank at most :math:`n - 1`, and then no map
can give :math:`XX^T = I_n`.

Errors: :math:`n > d` (at most :math:`d` orthonormal vectors exist in :math:`\mathbb{R}^d`) and
rank-deficient :math:`X` (a singular value at or below ``rcond * s_max``; the default
``rcond`` is the LAPACK rank threshold ``max(n, d) * eps``).

References
----------
A. Kessy, A. Lewin and K. Strimmer, "Optimal whitening and decorrelation", The American
Statistician 72 (2018) (ZCA vs. PCA whitening).
T. Ergen and M. Pilanci, "Revealing the structure of deep neural networks via convex
duality", ICML 2021 (whitened data, Figure 2).
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import numpy as np

from ._validation import check_choice, check_matrix

__all__ = ["whiten", "Whitener", "WHITEN_METHODS"]

WHITEN_METHODS = ("zca", "pca")
_EPS = np.finfo(float).eps


def _fingerprint(X: np.ndarray) -> tuple[tuple[int, ...], str]:
    return X.shape, hashlib.blake2b(np.ascontiguousarray(X).tobytes(), digest_size=16).hexdigest()


class Whitener:
    r"""Fit a whitening map on training data and apply it to any data (scikit-learn style).

    Parameters
    ----------
    method : {"zca", "pca"}, default "zca"
        ``"zca"``: :math:`T = V\mathrm{diag}(s)^{-1}V^T` keeps the ``d`` features
        (:math:`X_w = UV^T`); ``"pca"``: :math:`T = V\mathrm{diag}(s)^{-1}` gives ``n`` features
        (:math:`X_w = U`).
    rcond : float, optional
        Relative singular-value threshold below which ``X`` counts as rank deficient
        (default ``max(n, d) * eps``, the LAPACK rank threshold).

    Attributes
    ----------
    transform_ : ndarray of shape (d, d) or (d, n)
        The linear map :math:`T`: ``transform(X) = X @ transform_``.
    singular_values_ : ndarray of shape (n,)
    components_ : ndarray of shape (n, d)
        :math:`V^T`, an orthonormal basis of the training row space.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np, deepdual
    >>> X = np.random.default_rng(0).standard_normal((3, 5))
    >>> w = deepdual.Whitener().fit(X)
    >>> Xw = w.transform(X)
    >>> np.allclose(Xw @ Xw.T, np.eye(3))
    True
    """

    def __init__(self, method: Literal["zca", "pca"] = "zca", rcond: float | None = None) -> None:
        self.method = method
        self.rcond = rcond

    # scikit-learn compatible parameter access (clone, Pipeline) without importing sklearn
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"method": self.method, "rcond": self.rcond}

    def set_params(self, **params: Any) -> "Whitener":
        for k, v in params.items():
            if k not in ("method", "rcond"):
                raise ValueError(f"Whitener has no parameter {k!r}; parameters: method, rcond")
            setattr(self, k, v)
        return self

    def fit(self, X: Any, y: Any = None) -> "Whitener":
        """Compute the whitening map of ``X`` (n, d); needs ``n <= d`` and rank ``n``."""
        method = check_choice(self.method, "method", WHITEN_METHODS)
        X = check_matrix(X, "X")
        n, d = X.shape
        if n > d:
            raise ValueError(
                f"`X` has n = {n} rows > d = {d} columns: X X^T = I_n needs at most as many samples as "
                "features (undersample, e.g. deepdual.datasets.undersample)"
            )
        U, s, Vt = np.linalg.svd(X, full_matrices=False)
        rcond = max(n, d) * _EPS if self.rcond is None else float(self.rcond)
        if not (rcond >= 0 and np.isfinite(rcond)):
            raise ValueError(f"`rcond` must be a finite number >= 0, got {self.rcond!r}")
        if s[0] == 0.0 or s[-1] <= rcond * s[0]:
            r = int(np.sum(s > rcond * s[0])) if s[0] > 0 else 0
            raise ValueError(
                f"`X` is rank deficient (rank {r} < n = {n}; smallest/largest singular value "
                f"{(s[-1] / s[0]) if s[0] > 0 else 0.0:.3g}): its rows cannot be made orthonormal by a "
                "linear map; remove linearly dependent samples"
            )
        self.singular_values_ = s
        self.components_ = Vt
        self.n_features_in_ = d
        if method == "zca":
            self.transform_ = (Vt.T / s) @ Vt
            self._train_whitened = U @ Vt
        else:
            self.transform_ = Vt.T / s
            self._train_whitened = U.copy()
        self._train_id = _fingerprint(X)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "transform_"):
            raise ValueError("this Whitener is not fitted yet; call fit(X) first")

    def transform(self, X: Any) -> np.ndarray:
        r"""Map rows ``x -> x @ transform_``.

        The training matrix itself is returned as the exactly computed :math:`UV^T`
        (resp. :math:`U`): the same value, with rows orthonormal to machine precision
        instead of to :math:`\mathrm{cond}(X)\cdot\varepsilon`.
        """
        self._check_fitted()
        X = check_matrix(X, "X")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"`X` must have {self.n_features_in_} columns like the training data, got {X.shape[1]}")
        if _fingerprint(X) == self._train_id:
            return self._train_whitened.copy()
        return X @ self.transform_

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """``fit(X)`` then ``transform(X)``: the whitened training matrix."""
        return self.fit(X).transform(X)

    def inverse_transform(self, Xw: Any) -> np.ndarray:
        r"""Map whitened rows back: :math:`x_w \mapsto x_w T^+` (exact for rows in the training row space)."""
        self._check_fitted()
        Xw = check_matrix(Xw, "Xw")
        s, Vt = self.singular_values_, self.components_
        if self.method == "zca":
            return (Xw @ Vt.T * s) @ Vt
        return (Xw * s) @ Vt

    def __repr__(self) -> str:
        return f"Whitener(method={self.method!r}, rcond={self.rcond!r})"


def whiten(X: Any, *, method: Literal["zca", "pca"] = "zca", rcond: float | None = None,
           return_transform: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    r"""Whitened copy of ``X``: rows orthonormal, :math:`X_wX_w^T = I_n` (see :class:`Whitener`).

    Parameters
    ----------
    X : array of shape (n, d), n <= d, rank n
    method : {"zca", "pca"}
        ``"zca"`` (default): :math:`X_w = UV^T = (XX^T)^{-1/2}X`, shape (n, d);
        ``"pca"``: :math:`X_w = U`, shape (n, n).
    rcond : float, optional
        Rank threshold relative to the largest singular value.
    return_transform : bool
        Also return the feature-space map :math:`T` with :math:`X_w = XT`; held-out rows
        are whitened consistently as ``X_test @ T``.

    Returns
    -------
    Xw : ndarray
    T : ndarray, only if ``return_transform``

    Raises
    ------
    ValueError
        ``n > d`` or ``X`` rank deficient.

    Examples
    --------
    >>> import numpy as np, deepdual
    >>> X = np.random.default_rng(0).standard_normal((4, 6))
    >>> Xw, T = deepdual.whiten(X, return_transform=True)
    >>> np.allclose(Xw @ Xw.T, np.eye(4)), np.allclose(X @ T, Xw)
    (True, True)
    """
    w = Whitener(method=method, rcond=rcond).fit(X)
    Xw = w._train_whitened.copy()
    return (Xw, w.transform_.copy()) if return_transform else Xw
