"""The public entry points :func:`solve` and :func:`certify`.

``solve`` validates its input, detects the data's structure and dispatches to a
solver in :mod:`deepdual.solvers`; ``certify`` dispatches on the network's
activation to :mod:`deepdual.certification`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import check_beta, check_choice, check_depth, check_positive, check_X_y
from .losses import get_loss
from .network import ACTIVATIONS, Network
from .problem import problem_of_solve, resolve_problem
from .progress import Monitor, check_time_limit, monitoring, show_progress
from .solution import DEFAULT_RTOL, Certificate, Solution, mark_zero_network

__all__ = ["solve", "certify"]


def _is_dask(a: Any) -> bool:
    return hasattr(a, "chunks") and hasattr(a, "compute") and hasattr(a, "dask")


def solve(
    X: Any,
    y: Any,
    *,
    beta: float,
    depth: int = 2,
    activation: str = "relu",
    bias: bool = False,
    loss: Any = "squared",
    method: str = "auto",
    rtol: float = DEFAULT_RTOL,
    **options: Any,
) -> Solution:
    r"""Globally optimal regularized network for ``(X, y)``, with a duality certificate.

    Solves

    .. math:: \min_\theta\ \ell(f_\theta(X), Y) + \frac{\beta}{2}\sum_j\sum_l \|W_{l,j}\|_F^2

    over parallel networks of depth ``depth`` and any width (docs/theory.md §1), using
    the closed form or convex program that the data's structure allows.

    Parameters
    ----------
    X : array of shape (n, d)
    y : array of shape (n,) or (n, K)
    beta : float > 0
        Weight-decay strength (sum convention; see :func:`deepdual.objective`).
    depth : int >= 2
    activation : {"relu", "linear"}
    bias : bool
        Unpenalized biases on 1-D data (ReLU, any depth, docs/theory.md §2.5) and for linear
        networks (an output bias); for ReLU depth 2 on d > 1 a constant column in the convex
        program, i.e. *penalized* hidden biases (``info["penalize_biases"]``) and no output bias.
    loss : str or Loss
        ``"squared"`` (default), ``"logistic"``, ``"cross_entropy"``, ``"hinge"`` or a
        :class:`~deepdual.losses.Loss`.
    method : str
        ``"auto"`` picks the theorem from the data; otherwise forces one
        (see the table in the README).
    rtol : float
        ``Solution.certified`` is true when the duality gap is below ``rtol`` relative.
    progress : bool or None, default None
        A tqdm bar (iterations, objective, bound, relative gap) for solves longer than a
        few seconds; ``None``: only when standard error is a terminal; ``False``: never
        (:mod:`deepdual.progress`; no bar without tqdm).
    time_limit : float, optional
        Seconds after which the iterative solvers stop with their best network so far;
        ``info["status"]`` is then ``"time_limit"`` and ``info["note"]`` says so.  The
        lower bound stays proven: ``certified`` only when it closes the gap.
    **options
        Solver-specific options; unknown names raise ``TypeError``.

    Returns
    -------
    Solution

    Examples
    --------
    >>> import numpy as np, deepdual
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((20, 5)), rng.standard_normal(20)
    >>> sol = deepdual.solve(X, y, beta=1.0, activation="linear")
    >>> sol.certified
    True
    """
    beta = check_beta(beta)
    depth = check_depth(depth)
    activation = check_choice(activation, "activation", ACTIVATIONS)
    rtol = check_positive(rtol, "rtol")
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"`bias` must be True or False, got {bias!r}")
    if not isinstance(method, str):
        raise TypeError(f"`method` must be a string, got {type(method).__name__}")
    lossf = get_loss(loss)
    # progress bar and time limit: seen by every solver through deepdual.progress.current()
    progress = show_progress(options.pop("progress", None))
    time_limit = check_time_limit(options.pop("time_limit", None))
    with monitoring(progress=progress, time_limit=time_limit, desc=f"solve ({activation}, L={depth})") as mon:
        sol, Y = _dispatch(X, y, beta=beta, depth=depth, activation=activation, bias=bool(bias), lossf=lossf,
                           method=method, rtol=rtol, options=options)
    mark_zero_network(sol, Y, lossf, beta)  # Y is None for dask input: exact zeros only
    sol.info.setdefault("zero_network", False)
    return _record_problem(_report_time_limit(sol, mon), lossf, beta, options)


def _dispatch(X: Any, y: Any, *, beta: float, depth: int, activation: str, bias: bool, lossf: Any,
              method: str, rtol: float, options: dict) -> tuple[Solution, np.ndarray | None]:
    """The solver for the data's structure (the body of :func:`solve`), and the validated
    labels (None for dask input)."""
    if _is_dask(X) or _is_dask(y):
        from .streaming import solve_streaming

        return solve_streaming(X, y, beta=beta, depth=depth, activation=activation, bias=bias,
                               loss=lossf, method=method, rtol=rtol, **options), None
    # X: a read-only view when it is already C-contiguous float64 (no copy of large data;
    # the solvers never write into X, and a write would raise instead of changing the input)
    X, Y, scalar = check_X_y(X, y, copy=False)
    Y = lossf.check_labels(Y)
    # integer class labels become one-hot columns for cross-entropy: the network then has K outputs
    scalar = scalar and Y.shape[1] == 1
    kw = dict(scalar=scalar, beta=beta, depth=depth, loss=lossf, rtol=rtol, bias=bias, method=method)
    if activation == "linear":
        reg = options.pop("regularization", "weight_decay")
        if reg != "weight_decay":  # regularization="path": ReLU networks only (docs/path_regularization.md)
            raise ValueError(f"`regularization` must be 'weight_decay' for linear networks, got {reg!r}")
        from .linear.solver import solve_linear

        return solve_linear(X, Y, **kw, **options), Y
    from .relu.dispatch import solve_relu

    return solve_relu(X, Y, **kw, **options), Y


def _report_time_limit(sol: Solution, mon: Monitor) -> Solution:
    """Say in ``info`` (``status``, ``note``) when a solver stopped at the time limit.

    ``certified`` is unchanged: it compares the objective with the proven lower bound,
    whichever way the solver stopped."""
    if mon.time_limit is None:
        return sol
    sol.info["time_limit_s"] = mon.time_limit
    if mon.stopped:
        sol.info["status"] = "time_limit"
        msg = (f"stopped at time_limit={mon.time_limit:g} s ({', '.join(mon.stopped_in)}): the network is "
               "the best found so far; lower_bound is still proven"
               + ("" if sol.certified else " and does not close the gap"))
        sol.info["note"] = f"{sol.info['note']}; {msg}" if sol.info.get("note") else msg
    elif mon.expired():
        # a solver without time checks ran past the limit (it finished normally)
        sol.info["time_limit_exceeded"] = True
    return sol


def _record_problem(sol: Solution, lossf: Any, beta: float, options: dict) -> Solution:
    """Record the solved problem on the solution's network (:mod:`deepdual.problem`): it travels
    with :meth:`Network.save` and is :func:`certify`'s default (docs/cli.md)."""
    if isinstance(getattr(sol, "network", None), Network):
        pb = sol.info.get("penalize_biases", options.get("penalize_biases", False))
        sol.network.problem = problem_of_solve(sol.network, loss=lossf, beta=beta, penalize_biases=bool(pb))
        if sol.info.get("regularization") == "l_L":  # deep narrow networks (docs/one_dimensional.md §10)
            sol.network.problem["regularization"] = "l_L"
        if sol.info.get("regularization") == "path":  # docs/path_regularization.md
            sol.network.problem["regularization"] = "path"
        if sol.info.get("architecture") == "parallel_three_layer":  # unit-norm first layers (docs/three_layer.md)
            sol.network.problem["formulation"] = "norm_constrained"
    return sol


def certify(
    network: Network,
    X: Any,
    y: Any,
    *,
    beta: float | None = None,
    loss: Any = None,
    rtol: float = DEFAULT_RTOL,
    **options: Any,
) -> Certificate:
    r"""Objective of ``network`` and a proven lower bound on the global optimum.

    The lower bound is the dual value :math:`-\ell^*(-v)` of a dual-feasible point
    :math:`v` built from the network's residual (docs/theory.md §1, weak duality), so
    ``certificate.gap`` bounds how far the network is from the best network of
    any width.

    Parameters
    ----------
    network : Network
    X : array of shape (n, d)
    y : array of shape (n,) or (n, K)
    beta : float > 0, optional
        Default: ``network.problem["beta"]`` (recorded by :func:`solve`, stored by
        :meth:`Network.save`); required when the network records none.
    loss : str or Loss, optional
        Default: ``network.problem["loss"]``, else ``"squared"``.
    rtol : float
        ``certified`` is true when the gap is below ``rtol`` relative.
    **options
        Certificate options, e.g. ``penalize_biases`` (ReLU; default
        ``network.problem["penalize_biases"]``, else False).

    A ``beta``, ``loss`` or ``penalize_biases`` that contradicts ``network.problem`` raises
    ``ValueError`` naming the argument (set ``network.problem = None`` to certify a network
    for another problem); see :mod:`deepdual.problem`.

    Returns
    -------
    Certificate
    """
    if not isinstance(network, Network):
        raise TypeError(f"`network` must be a deepdual.Network, got {type(network).__name__}")
    network.validate()  # its attributes may have been changed since construction
    beta, lossf, options = resolve_problem(network, beta, loss, options)
    rtol = check_positive(rtol, "rtol")
    X, Y, _ = check_X_y(X, y)
    Y = lossf.check_labels(Y)
    if X.shape[1] != network.input_dim:
        raise ValueError(f"`X` has {X.shape[1]} columns but the network expects {network.input_dim}")
    if Y.shape[1] != network.n_outputs:
        raise ValueError(f"`y` has {Y.shape[1]} output column(s) but the network has {network.n_outputs}")
    reg = options.pop("regularization", "weight_decay")
    if reg == "l_L":  # the l_L penalty of deep narrow networks (docs/one_dimensional.md §10)
        if options.pop("penalize_biases", False):
            raise ValueError("`penalize_biases` must be False for regularization='l_L' (biases are free)")
        options.pop("time_limit", None)  # the exact constraint is O(n): nothing to stop early
        options.pop("progress", None)
        if options:
            raise TypeError(f"unknown option(s) {sorted(options)} for regularization='l_L'")
        from .relu.one_dimensional.reflections import certify_deep_narrow

        return certify_deep_narrow(network, X, Y, beta=beta, loss=lossf, rtol=rtol)
    if reg == "path":  # path-regularized parallel networks (docs/path_regularization.md §4)
        from .relu.path_regularization.certificate import certify_path

        return certify_path(network, X, Y, beta=beta, loss=lossf, rtol=rtol, **options)
    if reg != "weight_decay":
        raise ValueError(f"`regularization` must be 'weight_decay', 'l_L' or 'path', got {reg!r}")
    form = options.pop("formulation", (network.problem or {}).get("formulation"))
    if form == "norm_constrained":  # parallel three-layer networks, unit-norm first layers (docs/three_layer.md §3)
        from .relu.three_layer.certificate import certify_three_layer

        return certify_three_layer(network, X, Y, beta=beta, loss=lossf, rtol=rtol, **options)
    if form is not None:
        raise ValueError(f"`formulation` must be 'norm_constrained' or None, got {form!r}")
    from .certification import certify_network

    return certify_network(network, X, Y, beta=beta, loss=lossf, rtol=rtol, **options)
