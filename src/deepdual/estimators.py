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
* **Scale of the regularization.**  ``alpha`` is on scikit-learn's mean-loss scale: the
  estimators minimize :math:`\frac1n\ell(f(X), Y) + \frac\alpha2\sum\|W\|_F^2`, which is
  :math:`\frac1n` times deepdual's sum objective with :math:`\beta = n\alpha` (``beta_``
  after fitting).  On standardized data the interesting range of ``alpha`` then does not
  depend on ``n``: the zero network is optimal exactly for
  :math:`\alpha \ge \beta_{\max}/n` (:func:`deepdual.beta_max`), and
  :math:`\beta_{\max} = c(y)` grows like :math:`n` (like the Lasso's
  :math:`\alpha_{\max} = \|X^Ty\|_\infty/n`).  ``beta`` (deepdual's sum scale), when given,
  is used instead of ``alpha``.
* **Relation to MLPRegressor / MLPClassifier.**  scikit-learn's MLPs minimize
  :math:`\frac{1}{2nK}\sum(f - y)^2 + \frac{\alpha_{\rm mlp}}{2n}\sum\|W\|^2`
  (``squared_loss`` is a mean over all :math:`nK` entries; the penalty is divided by the
  number of samples, ``_multilayer_perceptron.py``) and
  :math:`\frac1n\sum\text{log-loss} + \frac{\alpha_{\rm mlp}}{2n}\sum\|W\|^2`; the
  same objectives are deepdual's with :math:`\beta = K\alpha_{\rm mlp}` (regression) and
  :math:`\beta = \alpha_{\rm mlp}` (classification), i.e. ``alpha = K * alpha_mlp / n``
  here, apart from the biases (MLPs do not penalize theirs).  In practice Adam stops far
  from the optimum of that objective, and the MLPs' useful ``alpha`` range is much
  larger than this mapping suggests; measured side by side over one grid
  (docs/performance.md, "Estimators vs scikit-learn's MLPs";
  ``benchmarks/bench_estimators.py``) the same grid serves both estimators.
* ``DualNetRegressor`` fits the centered targets and predicts ``intercept_`` (their
  mean) plus the network: an unpenalized output bias fixed at the mean.
* ``bias=True`` (default) appends a column of ones: with the convex program the hidden
  biases are then penalized like the weights (see :func:`deepdual.solve`); on
  one-dimensional data with the squared loss the exact 1-D solver is used, whose
  biases are unpenalized.
* With the default ``method="auto"`` and data of more than a few dimensions, the
  convex program samples ``n_patterns`` activation patterns (here, so that
  ``warm_start`` can reuse their directions): the network is then optimal among
  networks with those patterns before the local descent improves it
  (``certificate_.info["note"]``), and the program gets ``max_iter=300`` iterations
  unless ``max_iter`` says otherwise (its optimum is only an upper bound); above 5000
  samples (or when the solve takes its first-order method by size) the solver's own
  default of 100 first-order steps applies, which is faster and polishes as well.
* When ``alpha`` is at or above :math:`\beta_{\max}/n` the fit is the zero network:
  ``zero_network_`` is true and a ``UserWarning`` says so.
* Both estimators pass scikit-learn's estimator checks (``tests/test_estimators.py``)
  with no check skipped by deepdual; the test uses a small sampled pattern set,
  ``max_iter=60`` and ``certify_max_patterns=0`` to stay fast.  scikit-learn itself
  skips its pandas and array-API checks when pandas or ``SCIPY_ARRAY_API`` are absent.
* ``certify="lazy"`` (default): the certificate's branch-and-bound tightening, which does
  not change the network, runs on the first access of ``certificate_`` instead of in every
  fit; a grid search no longer pays ~2 s per fit for bounds nobody reads (diabetes and
  breast cancer: most of each fit; docs/performance.md, "Estimators vs scikit-learn's MLPs").
* Vector outputs (several targets, or cross-entropy with more than two classes) fit an
  upper-bound program polished by local descent; their certificate is proven but
  rarely closes the gap (``docs/convex_program.md``, section 5).
"""

from __future__ import annotations

import numbers
import warnings
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
from .blocks import relu_layer_output
from .losses import get_loss
from .path import resolved_method
from .solution import Solution, mark_zero_network
from .relu.convex_program.solver import CONVEX_OPTIONS, DEFAULT_MAX_PATTERNS as CONVEX_MAX_PATTERNS
from .relu.convex_program.solver import first_order_by_size
from .relu.convex_program.solver import ORACLE_TIME, oracle_fits, oracle_skipped, oracle_tightened

__all__ = ["DualNetRegressor", "DualNetClassifier", "DEFAULT_ALPHA"]

#: options of the convex program: passed only when it is the solver used (the closed
#: forms reject unknown options)
_CONVEX_ONLY = CONVEX_OPTIONS

#: default ``alpha`` (mean-loss scale, beta = n * alpha): chosen from cross-validation on
#: standardized diabetes, breast cancer, wine and digits (docs/performance.md,
#: "Estimators vs scikit-learn's MLPs")
DEFAULT_ALPHA = 1e-2

#: iteration budget of the convex program when ``max_iter`` is None and its program is
#: only an upper bound: sampled pattern sets, and vector outputs (several targets, or
#: cross-entropy with more than two classes; docs/convex_program.md §5).  The local
#: descent that follows does the rest, so solving that program precisely is wasted:
#: breast cancer (logistic, 50 patterns): 20000 AL iterations, 48 s per fit, CV accuracy
#: 0.9719 at alpha = 1e-4; 300 iterations, 4 s, the same 0.9719 (and 0.9754 vs 0.9736 at
#: 1e-3); wine (K = 3): 1808 iterations, 9 s, for the same training accuracy
UPPER_BOUND_MAX_ITER = 300

#: fewest sampled patterns for vector outputs (see ``_DualNetBase._solve``)
VECTOR_MIN_PATTERNS = 10


def _seed(random_state: Any) -> int | None:
    """``None`` (fresh entropy), or an int seed drawn from ``random_state``."""
    if random_state is None:
        return None
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _check_positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (np.isfinite(value) and value > 0):
        raise ValueError(f"`{name}` must be a positive finite number, got {value!r}")
    return float(value)


def _augmented(X: np.ndarray, bias: bool) -> np.ndarray:
    return np.hstack([X, np.ones((X.shape[0], 1))]) if bias else X


def neuron_directions(network: Any, bias: bool) -> np.ndarray:
    """First-layer weight vectors of a two-layer network's neurons (rows; with ``bias`` the
    hidden bias appended), non-zero ones only: the directions whose activation patterns
    warm-start the next fit."""
    rows = []
    for j, layers in enumerate(network.weights):
        W = layers[0]
        if bias:
            b = network.biases[j][0] if network.biases is not None and network.biases[j][0] is not None \
                else np.zeros(W.shape[1])
            W = np.vstack([W, b[None, :]])
        rows.append(W.T)
    U = np.vstack(rows) if rows else np.zeros((0, network.input_dim + int(bias)))
    return U[np.linalg.norm(U, axis=1) > 0]


#: the phrase the convex program's note ends with while its dual-constraint value is only an
#: upper bound (dropped when the oracle proves it exactly: see :func:`tightened_certificate`)
_INEXACT_NOTE = "; lower_bound uses a proven upper bound on the dual constraint"
#: the phrase :func:`deepdual.solution.mark_zero_network` starts its note with
_ZERO_NOTE = "the returned network is the zero network"


def tightened_certificate(sol: Solution, X: np.ndarray, Y: np.ndarray, *, loss: str, beta: float, bias: bool,
                          oracle_time: float = ORACLE_TIME) -> Solution:
    r"""``sol`` (a convex-program solve of ``(X, Y)`` run with ``oracle_time=0``, one output) with
    the branch-and-bound oracle's bound on the dual constraint, as the solve itself applies it
    (:func:`deepdual.relu.convex_program.oracle.dual_constraint_bb`, docs/convex_program.md §11).

    The network's dual point :math:`v = -\nabla\ell(f(X))` is rebuilt in the solve's units
    (``info["scaling"]``: powers of two, so the same bits as in the solve) and the oracle
    bounds :math:`c(v) = \max_{\|u\|\le1}|v^T(X_au)_+|` from above; when that is below the solve's
    value (``info["dual_constraint"]``, a proven upper bound for the same :math:`v`), the lower
    bound becomes :math:`\max_{0\le t\le\beta/c} D(tv)` (:meth:`Loss.best_scale`), still a proven
    weak-duality bound (docs/theory.md §1).  Otherwise ``sol`` is returned unchanged.  With
    ``oracle_time`` the solve's own, the result is what the solve with the oracle returns (up to
    the nodes the time-limited search reaches).
    """
    info = sol.info
    lossf = get_loss(loss)
    n = X.shape[0]
    ka = int(np.frexp(info["scaling"]["X"])[1]) - 1  # the scales are exact powers of two
    kb = int(np.frexp(info["scaling"]["y"])[1]) - 1
    h = (kb - ka) // 2
    Xa = np.ldexp(_augmented(X, bias), -ka)
    Ys = np.ldexp(lossf.check_labels(Y.reshape(n, -1)), -kb)
    beta_s = float(np.ldexp(beta, -(ka + kb)))
    W, A = sol.network.weights[0]
    U = np.vstack([W, sol.network.biases[0][0][None, :]]) if bias else W
    V = lossf.dual_point(relu_layer_output(Xa, np.ldexp(U, -h), np.ldexp(A, -h)), Ys)
    c = float(np.ldexp(info["dual_constraint"], -(ka + kb)))
    tight = oracle_tightened(Xa, V[:, 0], c, float(oracle_time))
    if tight is None:
        return sol
    c, exact, how = tight
    t_dual, lower = lossf.best_scale(V, Ys, np.inf if c <= 0 else beta_s / c)
    lower = float(np.ldexp(lower, 2 * kb)) if np.isfinite(lower) else -np.inf
    dual = np.ldexp(t_dual * V, kb)
    # the solve's other proven bounds (its relaxed reduced problem) stay: the max is reported
    bounds = dict(info.get("lower_bounds", {}), **{"network residual": lower})
    best = max(bounds, key=bounds.get)
    if best != "network residual":
        lower, dual = bounds[best], sol.dual
    new = dict(info, dual_constraint=float(np.ldexp(c, ka + kb)), dual_constraint_exact=exact,
               dual_constraint_how=how, dual_scale=float(t_dual), lower_bounds=bounds, dual_point=best)
    note = new.get("note", "")
    if exact:
        note = note.replace(_INEXACT_NOTE, "", 1)
    zero = new.get("zero_network") and _ZERO_NOTE in note
    if zero:  # mark_zero_network says again whether the zero network is certified
        note = note[:note.index(_ZERO_NOTE)].rstrip("; ")
        del new["zero_network"]
    if note:
        new["note"] = note
    else:
        new.pop("note", None)
    out = Solution(network=sol.network, objective=sol.objective, lower_bound=lower, method=sol.method,
                   rtol=sol.rtol, dual=dual, info=new)
    return mark_zero_network(out) if zero else out


class _DualNetBase(BaseEstimator):
    """Shared parameters and fitting of the deepdual estimators."""

    _default_loss = "squared"

    def __init__(
        self,
        alpha: float = DEFAULT_ALPHA,
        *,
        beta: float | None = None,
        depth: int = 2,
        activation: str = "relu",
        loss: str = "auto",
        bias: bool = True,
        method: str = "auto",
        tol: float = 1e-4,
        max_iter: int | None = None,
        n_patterns: int = 50,
        random_state: Any = None,
        device: Any = None,
        warm_start: bool = False,
        solver_options: dict | None = None,
        certify: bool | str = "lazy",
    ) -> None:
        self.alpha = alpha
        self.beta = beta
        self.depth = depth
        self.activation = activation
        self.loss = loss
        self.bias = bias
        self.method = method
        self.tol = tol
        self.max_iter = max_iter
        self.n_patterns = n_patterns
        self.random_state = random_state
        self.device = device
        self.warm_start = warm_start
        self.solver_options = solver_options
        self.certify = certify

    def _beta(self, n: int) -> float:
        r""":math:`\beta` of the fit on ``n`` samples: ``beta`` when given, else ``n * alpha``."""
        if self.beta is not None:
            return _check_positive(self.beta, "beta")
        return n * _check_positive(self.alpha, "alpha")

    def _solve(self, X: np.ndarray, Y: np.ndarray, loss: str) -> Solution:
        if not isinstance(self.solver_options, (dict, type(None))):
            raise TypeError(f"`solver_options` must be a dict or None, got {type(self.solver_options).__name__}")
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise TypeError(f"`warm_start` must be True or False, got {self.warm_start!r}")
        if self.max_iter is not None and (isinstance(self.max_iter, bool)
                                          or not isinstance(self.max_iter, numbers.Integral) or self.max_iter < 1):
            raise ValueError(f"`max_iter` must be None or an integer >= 1, got {self.max_iter!r}")
        if isinstance(self.n_patterns, bool) or not isinstance(self.n_patterns, numbers.Integral) \
                or self.n_patterns < 1:
            raise ValueError(f"`n_patterns` must be an integer >= 1, got {self.n_patterns!r}")
        certify = self.certify
        if not (isinstance(certify, (bool, np.bool_)) or (isinstance(certify, str) and certify == "lazy")):
            raise ValueError(f"`certify` must be 'lazy', True or False, got {certify!r}")
        certify = certify if isinstance(certify, str) else bool(certify)
        defer = False
        tol = _check_positive(self.tol, "tol")
        beta = self._beta_used = self._beta(X.shape[0])
        opts = dict(self.solver_options or {})
        self._pending = None
        K = 1 if Y.ndim == 1 else Y.shape[1]
        bias = bool(self.bias)
        method = resolved_method(X, activation=self.activation, depth=self.depth, bias=bias,
                                 method=self.method, loss_name=loss, K=K)
        self._directions = None
        if method == "convex":
            # the zero-network test reads X_a = [X, 1] as an implicit operator (blocks.ScaledDesign,
            # scale 1; its spectral bound a block of rows at a time), as the sampling below: no
            # (n, d + 1) copy (docs/performance.md §8, memory)
            from .blocks import ScaledDesign

            zero = self._proven_zero(ScaledDesign(X, 0, bias), Y, loss, beta, tol)
            if zero is not None:
                # beta >= the proven upper end of beta_max: no solve needed (at alpha = 1
                # on the benchmark sets a solve took 1-8 s per fit to find the same)
                return zero
            # vector outputs: 2K groups per pattern, so n_patterns / K patterns (at least
            # VECTOR_MIN_PATTERNS) keep the program's size that of one output (digits, K = 10:
            # 10 patterns instead of 50 fitted in 63 s instead of 157 s, the same held-out
            # accuracy 0.981)
            opts.setdefault("n_patterns", int(self.n_patterns) if K == 1
                            else max(VECTOR_MIN_PATTERNS, -(-int(self.n_patterns) // K)))
            opts.setdefault("rng", _seed(self.random_state))
            if self.max_iter is not None:
                opts.setdefault("max_iter", int(self.max_iter))
            if self.device is not None:
                opts.setdefault("device", self.device)
            sampled = self._choose_patterns(X, bias, K, opts)
            # the program's budget: UPPER_BOUND_MAX_ITER, except where solve takes its
            # first-order method by size, whose own default (100 steps) is faster and polishes
            # as well (bench_memory's data, alpha = 1e-3: n = 1e4, d = 10: 10.8 s -> 6.0 s,
            # objective 283.81 -> 283.68; n = 3e4, d = 50: 56.4 -> 37.2 s, 2 366.29 -> 2 361.35;
            # docs/performance.md §8)
            chosen = opts.get("patterns")
            P = np.shape(chosen[0] if isinstance(chosen, tuple) else chosen)[0] if sampled else 0
            if K > 1 or (sampled and not first_order_by_size(X.shape[0], X.shape[1], X.shape[1] + bool(bias), P, K,
                                                              get_loss(loss))):
                opts.setdefault("max_iter", UPPER_BOUND_MAX_ITER)
            # certify="lazy" / False: the solve runs without the branch-and-bound oracle, whose
            # only product is a tighter proven bound (the network does not depend on it);
            # "lazy" runs it on first access of certificate_ (tightened_certificate)
            oracle_time = opts.get("oracle_time", ORACLE_TIME)
            if isinstance(oracle_time, bool) or not isinstance(oracle_time, numbers.Real) or not oracle_time >= 0:
                raise ValueError(f"`oracle_time` must be a number of seconds >= 0, got {oracle_time!r}")
            defer = certify is not True and K == 1 and opts.get("strategy", "patterns") == "patterns" \
                and oracle_time > 0
            if defer:
                opts["oracle_time"] = 0
        else:
            for name in _CONVEX_ONLY:
                opts.pop(name, None)
        sol = solve(X, Y, beta=beta, depth=self.depth, activation=self.activation, bias=bias,
                    loss=loss, method=method, rtol=tol, **opts)
        if method == "convex" and self._directions is not None and sol.info.get("patterns_how") == "user-supplied":
            # the patterns were sampled here (for warm starts), not given by the user: say so
            P = int(sol.info["patterns"])
            sol.info["patterns_how"] = f"{P} sampled by the estimator"
            sol.method = sol.method.replace("user-supplied patterns", f"{P} patterns sampled by the estimator")
        if method == "convex" and defer:
            sol = self._defer_oracle(sol, X, Y, loss, beta, bias, float(oracle_time), certify == "lazy")
        if method == "convex" and self._directions is not None:
            # warm start: the next fit samples the same directions plus these neurons'
            self._directions = np.vstack([self._directions, neuron_directions(sol.network, bias)])
        return sol

    def _defer_oracle(self, sol: Solution, X: np.ndarray, Y: np.ndarray, loss: str, beta: float, bias: bool,
                      oracle_time: float, lazy: bool) -> Solution:
        """After a solve run without the oracle (``certify`` "lazy" or False): keep what
        :func:`tightened_certificate` needs ("lazy"; copies: the caller may change its
        arrays), or say in ``info`` that the bound was not tightened (False).  Where the
        solver itself would not have run the oracle (complete pattern sets, the memory
        budget), ``sol`` is already what an eager fit returns."""
        info = sol.info
        if "scaling" not in info or info.get("dual_constraint_exact", True) or info.get("status") == "time_limit":
            return sol
        n, da = X.shape[0], X.shape[1] + int(bias)
        if not oracle_fits(n, da, int(info["patterns"]), int(info["rank"])):
            # as the solver says it (it skips the search there whatever oracle_time is)
            info["dual_constraint_how"] += oracle_skipped(n)
            return sol
        if lazy:
            self._pending = (np.array(X, dtype=np.float64), np.array(Y, dtype=np.float64), loss, float(beta),
                             bool(bias), float(oracle_time))
        else:
            info["dual_constraint_how"] += "; branch and bound not run (certify=False)"
        return sol

    def _proven_zero(self, Xa: np.ndarray, Y: np.ndarray, loss: str, beta: float, tol: float
                     ) -> Solution | None:
        r"""The zero network with its certificate when :math:`\beta \ge
        \|X_a\|_2\max(\|v_+\|, \|v_-\|)` (vector outputs:
        :func:`deepdual.dual_constraint.c_spectral_bound`) for :math:`v = -\nabla\ell(0)`, the
        proven upper end of :func:`deepdual.beta_max`: then :math:`v` is dual feasible and its
        dual value :math:`-\ell^*(-v) = \ell(0)` proves the zero network optimal
        (docs/regularization_path.md §1); ``Xa`` is the data with the bias column when
        ``bias``.  ``None`` otherwise."""
        from .dual_constraint import c_spectral_bound
        from .relu.convex_program.solver import network_from_atoms

        lossf = get_loss(loss)
        T = lossf.check_labels(Y.reshape(len(Y), -1))
        V0 = lossf.dual_point(np.zeros_like(T), T)
        c = c_spectral_bound(V0, Xa)
        if not beta >= c:
            return None
        value = float(lossf.value(np.zeros_like(T), T))
        lower = float(lossf.dual_value(V0, T))
        net = network_from_atoms(np.zeros((Xa.shape[1], 0)), np.zeros((0, T.shape[1])), bias=bool(self.bias),
                                 scalar=Y.ndim == 1 or T.shape[1] == 1)
        return Solution(network=net, objective=value, lower_bound=lower, rtol=tol, dual=V0,
                        method="zero network: beta >= the proven upper end of beta_max (spectral bound)",
                        info={"zero_network": True, "dual_constraint": float(c), "iterations": 0,
                              "penalize_biases": bool(self.bias),
                              "note": "the optimum is the zero network: beta is at least beta_max "
                                      "(see deepdual.beta_max)"})

    def _choose_patterns(self, X: np.ndarray, bias: bool, K: int, opts: dict) -> bool:
        """Sample the activation patterns here (rather than in the solver) when the convex
        program would sample them, so that ``warm_start`` can reuse their directions.
        The patterns are those of ``X_a = [X, 1]`` when ``bias``, else of ``X``.
        Returns whether the pattern set is sampled (or user-supplied).

        Memory: no copy of ``X`` or ``X_a``: the row space's blocked QR and the products
        :math:`X_a g` read ``X`` a block of rows at a time with the ones column added
        (:func:`deepdual.blocks.rows_with_ones`; the same values as the augmented copy), and
        :math:`X_r = X_aV` is never formed whole (``row_space(..., with_Xr=False)``); the
        duplicates are found on the packed masks (:func:`deepdual.patterns.first_unique_nonzero`);
        the masks the solver receives are Fortran-ordered (:func:`deepdual.patterns.mask_rows`),
        so the first-order solver's (n, P) view of them is not a copy."""
        from .blocks import row_blocks, rows_with_ones
        from .patterns import count_upper_bound, first_unique_nonzero, mask_rows, row_space, sample_patterns

        if "patterns" in opts and not isinstance(opts["patterns"], str):
            return True
        n, da = X.shape[0], X.shape[1] + int(bias)
        how = opts.get("patterns", "auto")
        limit = opts.get("max_patterns", CONVEX_MAX_PATTERNS)
        if how == "exact" or (how == "auto" and count_upper_bound(n, min(n, da)) * K <= limit):
            return False  # all patterns: exact, nothing to warm-start (the rank is at most min(n, d))
        rs = row_space(X, ones_column=bias, with_Xr=False)
        if how == "auto" and count_upper_bound(n, rs.rank) * K <= limit:
            return False
        prev = getattr(self, "directions_", None) if self.warm_start else None
        if prev is not None and prev.shape[1] == da:
            dirs = prev
        else:
            _, dirs = sample_patterns(X, int(opts["n_patterns"]), opts.get("rng"), return_directions=True, rs=rs,
                                      ones_column=bias)
        del rs
        # patterns 1[X_a g > 0], a block of rows at a time (Fortran order: each block of
        # rows is a contiguous (rows, P) slab, and the first-order solver views the (n, P)
        # transpose instead of copying it)
        pats = np.empty((len(dirs), n), dtype=bool, order="F")
        for rows in row_blocks(n, len(dirs)):
            Z = rows_with_ones(X, rows, bias) @ dirs.T
            pats[:, rows] = (Z > 0).T
            del Z
        # keep directions with a non-zero pattern; one on a cell boundary (a polished neuron at a
        # kink) still names its pattern, and the solver replaces its direction by an interior
        # point from an LP (it checks every supplied direction)
        first = np.sort(first_unique_nonzero(pats))  # no copy of the masks
        opts["patterns"] = (mask_rows(pats, first), dirs[first])
        del pats
        dirs = dirs[first]
        opts.pop("n_patterns", None)
        self._directions = dirs
        return True

    @property
    def certificate_(self) -> Solution:
        """The fit's :class:`~deepdual.Solution`: objective, proven lower bound and gap.  With
        ``certify="lazy"`` the branch-and-bound oracle tightens its bound here, on first
        access (once; the copy of the training data it needs is then dropped)."""
        if "_certificate" not in self.__dict__:
            check_is_fitted(self, "network_")
        pending = self.__dict__.get("_pending")
        if pending is not None:
            X, Y, loss, beta, bias, oracle_time = pending
            self._certificate = tightened_certificate(self._certificate, X, Y, loss=loss, beta=beta, bias=bias,
                                                      oracle_time=oracle_time)
            self._pending = None
        return self._certificate

    def _finish(self, sol: Solution) -> None:
        self._certificate = sol
        self.network_ = sol.network
        self.beta_ = self._beta_used
        self.zero_network_ = bool(sol.zero_network)
        # iterations of the iterative solver (a closed form counts as one)
        self.n_iter_ = max(int(sol.info.get("iterations", 1) or 1), 1)
        if self._directions is not None:
            self.directions_ = self._directions
        elif hasattr(self, "directions_") and not self.warm_start:
            del self.directions_
        if self.zero_network_:
            warnings.warn(
                f"the fitted network is the zero network (constant predictions): beta = {self._beta_used:.4g} "
                "is at or above beta_max, where no neuron lowers the objective; decrease `alpha` "
                "(see deepdual.beta_max)", UserWarning, stacklevel=3)

    def _forward(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "network_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.network_.forward(X)


class DualNetRegressor(RegressorMixin, _DualNetBase):
    r"""Regressor: the globally optimal regularized ReLU network (docs/theory.md §2.8).

    Minimizes, over two-layer networks of any width (deeper ones where a theorem applies),

    .. math:: \frac{1}{2n}\|f(X) - (y - \bar y)\|^2 + \frac{\alpha}{2}\sum_j\sum_l\|W_{l,j}\|_F^2,

    i.e. :func:`deepdual.solve` with :math:`\beta = n\alpha` (module notes).

    Parameters
    ----------
    alpha : float > 0, default 1e-2
        Weight decay on the mean-loss scale: ``beta = n_samples * alpha``.
    beta : float > 0, optional
        Weight decay on deepdual's sum scale; when given it is used and ``alpha`` is ignored.
    depth : int >= 2, default 2
    activation : {"relu", "linear"}, default "relu"
    loss : {"auto", "squared"}, default "auto" (squared loss)
    bias : bool, default True
        Hidden biases (penalized with the convex program; see module notes).
    method : str, default "auto"
        Passed to :func:`deepdual.solve` (``"convex"``, ``"whitened"``, ...).
    tol : float, default 1e-4
        Target relative duality gap (``rtol`` of :func:`deepdual.solve`).
    max_iter : int, optional
        Iteration budget of the convex program (default: the solver's own; 300 for
        vector outputs, whose program is only an upper bound).
    n_patterns : int, default 50
        Sampled activation patterns when the convex program cannot enumerate them all;
        with ``K`` outputs ``ceil(n_patterns / K)`` (at least 10), which keeps the number
        of groups of the program (2K per pattern) that of one output.
    random_state : None, int or RandomState
        Seed of the sampled patterns.
    device : None, "cpu", "cuda" or torch.device
        Passed to :func:`deepdual.solve` for the convex program (its first-order solver's
        torch backend); ``None`` runs on numpy.
    warm_start : bool, default False
        Refit from the previous fit's pattern set: the sampled directions plus those of
        the fitted neurons (e.g. along an ``alpha`` grid with ``set_params``).
    solver_options : dict, optional
        Extra options of the solver, e.g. ``{"max_patterns": 500}``; the convex program's
        options (:data:`deepdual.relu.convex_program.solver.CONVEX_OPTIONS`) are dropped
        when another solver (a closed form) is used.
    certify : {"lazy", True, False}, default "lazy"
        When the branch-and-bound oracle tightens the certificate's proven lower bound
        (one output on a sampled pattern set: up to ``oracle_time`` = 2 s, usually most of
        a fit at scikit-learn's data sizes; docs/convex_program.md §11).  ``"lazy"``: on the
        first access of ``certificate_`` (once, cached), so that fits whose certificate is
        never read (a grid search's) do not pay for it; the estimator keeps a copy of the
        training data until then.  ``True``: during ``fit``.  ``False``: never; the
        certificate keeps the proven but looser spectral bound computed in the fit
        (``info["dual_constraint_how"]`` says so).  The network, and so ``predict``, is
        the same in all three; every reported bound is proven (``certified`` only when it
        closes the gap).

    Attributes
    ----------
    network_ : deepdual.Network
        Fitted to the centered targets; ``predict`` adds ``intercept_``.
    intercept_ : ndarray (K,) or float
        Mean of the training targets.
    certificate_ : deepdual.Solution
        Objective (sum scale, centered targets), proven lower bound and gap of the fit
        (with ``certify="lazy"`` the oracle's bound is computed on first access).
    beta_ : float
        The weight decay used (``n_samples * alpha`` or ``beta``).
    zero_network_ : bool
        Whether the fit is the zero network (``alpha`` at or above ``beta_max / n``; a
        ``UserWarning`` says so).
    directions_ : ndarray
        Pattern directions kept for ``warm_start`` (sampled pattern sets only).
    n_iter_ : int
        Iterations of the solver (1 for a closed form).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from deepdual import DualNetRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((10, 2)); y = np.abs(X[:, 0])
    >>> reg = DualNetRegressor(alpha=0.01, random_state=0).fit(X, y)
    >>> reg.predict(X).shape
    (10,)
    """

    def fit(self, X: Any, y: Any) -> "DualNetRegressor":
        """Fit the network to ``X`` (n, d) and ``y`` (n,) or (n, K)."""
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64)
        loss = "squared" if self.loss == "auto" else self.loss
        if loss != "squared":
            raise ValueError(f"`loss` must be 'auto' or 'squared' for DualNetRegressor, got {self.loss!r}")
        self.intercept_ = y.mean(axis=0)
        sol = self._solve(X, y - self.intercept_, loss)
        self._finish(sol)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Network output plus ``intercept_``: shape (n,) for 1-D targets, else (n, K)."""
        F = self._forward(X)
        return (F[:, 0] if self.network_.scalar_output else F) + self.intercept_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


class DualNetClassifier(ClassifierMixin, _DualNetBase):
    r"""Classifier: the globally optimal regularized ReLU network (docs/theory.md §2.8).

    Labels are encoded as :math:`\pm1` for a binary problem with the logistic (or squared)
    loss and one-hot for the cross-entropy (or squared) loss with several classes; the
    objective is :math:`\frac1n\ell(f(X), T) + \frac\alpha2\sum\|W\|^2`, i.e.
    :math:`\beta = n\alpha` (module notes).

    Parameters
    ----------
    alpha : float > 0, default 1e-2
    beta, depth, activation, bias, method, tol, max_iter, n_patterns, random_state, device, warm_start, solver_options, certify
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
    beta_ : float
    zero_network_ : bool
    n_iter_ : int
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from deepdual import DualNetClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((20, 2)); y = (X[:, 0] * X[:, 1] > 0).astype(int)
    >>> clf = DualNetClassifier(alpha=0.005, random_state=0).fit(X, y)
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
        self._finish(sol)
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
