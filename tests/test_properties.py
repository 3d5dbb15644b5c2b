r"""Scale equivariance and permutation/rotation invariance of the global optima (issue 14, "Also").

Every solver here returns an objective and a proven lower bound, i.e. an interval
``[lower_bound, objective]`` that contains the global optimum :math:`P^\star`.  If a
transformation maps the problem to one with optimum :math:`s\,P^\star` exactly, the two
intervals (the first scaled by ``s``) must overlap -- whatever the solvers' accuracy -- and
when both are certified their objectives agree to the tolerance.  That is what
:func:`assert_same_optimum` checks.

The exact transformations (derivations; :math:`P = \ell(f(X), Y) + \frac\beta2\sum\|W\|_F^2`):

* **Homogeneous networks** (linear, or ReLU without biases) of depth ``L``:
  :math:`f_\theta(aX) = a f_\theta(X)` for ``a > 0``.  Multiplying every layer by
  :math:`c = (b/a)^{1/L}` maps a network :math:`\theta` for ``X`` to one for ``aX`` with
  :math:`f_{\theta'}(aX) = b f_\theta(X)` and penalty multiplied by :math:`c^2 = (b/a)^{2/L}`.
  A bijection of parameter spaces, so for the **squared loss**

  .. math:: P^\star(aX,\ bY,\ \beta b^{2-2/L}a^{2/L}) = b^2\,P^\star(X, Y, \beta).

  For **labels that cannot scale** (logistic, cross-entropy), take ``b = 1``:
  :math:`P^\star(aX, y, \beta a^{2/L}) = P^\star(X, y, \beta)`.
* **BatchNorm networks** (``relu/batchnorm``): the batch-normalized layer is invariant to
  the scale of its input, and the output is bilinear in the penalized :math:`(\gamma, W_L)`
  plus an unpenalized bias, so :math:`P^\star(aX, bY, b\beta) = b^2P^\star(X, Y, \beta)` (scale
  :math:`\gamma` and :math:`W_L` by :math:`\sqrt b`); equivalently the optimum
  :math:`\sum_k H_\beta(\sigma_k(CY))` has :math:`H_{b\beta}(b\sigma) = b^2H_\beta(\sigma)`.
* **Row permutations** :math:`(\Pi X, \Pi Y)`: the loss is a sum over samples, so every network
  has the same objective.
* **Rotations of the columns** :math:`XQ` (``Q`` orthogonal): :math:`W_1 \mapsto Q^TW_1` keeps
  :math:`XW_1` and :math:`\|W_1\|_F`, for linear and ReLU networks alike; rank-one data stay rank
  one (:math:`c\,(Q^Ta_0)^T`) and whitened data stay whitened (:math:`XQQ^TX^T = XX^T`).

Whitened data are not whitened after ``X -> aX``, so the whitened solver is tested with ``a = 1``.
The 1-D and convex-program solvers are tested in their own files.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deepdual

SETTINGS = dict(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_same_optimum(sol, sol_t, s, *, what=""):
    """``sol_t`` solves a problem whose optimum is exactly ``s`` times that of ``sol``."""
    lo, hi = s * sol.lower_bound, s * sol.objective
    lo_t, hi_t = sol_t.lower_bound, sol_t.objective
    slack = 1e-9 * max(abs(hi), abs(hi_t), 1e-300)
    assert np.isfinite(hi) and np.isfinite(hi_t), what
    # both intervals contain the same optimum
    assert lo_t <= hi + slack, (what, lo_t, hi)
    assert lo <= hi_t + slack, (what, lo, hi_t)
    if sol.certified and sol_t.certified:
        tol = (sol.rtol + sol_t.rtol) * max(abs(hi), abs(hi_t)) + slack
        assert abs(hi_t - hi) <= tol, (what, hi, hi_t)


def _orthogonal(rng, d):
    Q, R = np.linalg.qr(rng.standard_normal((d, d)))
    return Q * np.sign(np.diag(R))


def _scales(draw_a, draw_b):
    return 10.0 ** draw_a, 10.0 ** draw_b


scale_exp = st.floats(-1.5, 1.5)


# ---------------------------------------------------------------------------- linear networks
def _linear_data(rng, loss, n=14, d=4):
    X = rng.standard_normal((n, d)) * rng.uniform(0.3, 3.0, d)
    z = X @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n)
    if loss == "squared":
        return X, z
    y = np.where(z > 0, 1.0, -1.0)
    y[:2] = [1.0, -1.0]  # both classes present
    return X, y


@settings(**SETTINGS)
@given(seed=st.integers(0, 10_000), depth=st.sampled_from([2, 3]), loss=st.sampled_from(["squared", "logistic"]),
       ea=scale_exp, eb=scale_exp, log_beta=st.floats(-1.0, 0.5))
def test_linear_scale_equivariance(seed, depth, loss, ea, eb, log_beta):
    rng = np.random.default_rng(seed)
    X, y = _linear_data(rng, loss)
    a, b = _scales(ea, eb)
    if loss != "squared":
        b = 1.0
    beta = 10.0 ** log_beta
    L = depth
    beta_t = beta * b ** (2.0 - 2.0 / L) * a ** (2.0 / L)
    kw = dict(depth=L, activation="linear", loss=loss)
    sol = deepdual.solve(X, y, beta=beta, **kw)
    sol_t = deepdual.solve(a * X, b * y, beta=beta_t, **kw)
    assert_same_optimum(sol, sol_t, b * b, what=f"a={a}, b={b}")


@settings(**SETTINGS)
@given(seed=st.integers(0, 10_000), depth=st.sampled_from([2, 3]), loss=st.sampled_from(["squared", "logistic"]),
       log_beta=st.floats(-1.0, 0.5))
def test_linear_row_permutation_and_column_rotation_invariance(seed, depth, loss, log_beta):
    rng = np.random.default_rng(seed)
    X, y = _linear_data(rng, loss)
    beta = 10.0 ** log_beta
    kw = dict(beta=beta, depth=depth, activation="linear", loss=loss)
    sol = deepdual.solve(X, y, **kw)
    perm = rng.permutation(X.shape[0])
    assert_same_optimum(sol, deepdual.solve(X[perm], y[perm], **kw), 1.0, what="rows")
    Q = _orthogonal(rng, X.shape[1])
    sol_q = deepdual.solve(X @ Q, y, **kw)
    assert_same_optimum(sol, sol_q, 1.0, what="rotation")
    # the rotated network is optimal for the rotated data: certify agrees
    cert = deepdual.certify(sol_q.network, X @ Q, y, beta=beta, loss=loss)
    assert cert.objective == pytest.approx(sol_q.objective, rel=1e-12)
    if sol_q.certified:
        assert cert.certified


@settings(**SETTINGS)
@given(seed=st.integers(0, 10_000), K=st.integers(2, 3), ea=scale_exp, eb=scale_exp)
def test_linear_vector_output_scale_equivariance(seed, K, ea, eb):
    # several outputs, two layers (nuclear norm): squared loss on general data
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((12, 4))
    Y = X @ rng.standard_normal((4, K)) + 0.3 * rng.standard_normal((12, K))
    a, b = _scales(ea, eb)
    sol = deepdual.solve(X, Y, beta=0.5, activation="linear")
    sol_t = deepdual.solve(a * X, b * Y, beta=0.5 * a * b, activation="linear")
    assert_same_optimum(sol, sol_t, b * b)


# ---------------------------------------------------------------------------- rank-one ReLU
def _rank_one(rng, n=10, d=3):
    c = np.abs(rng.standard_normal(n)) + 0.1
    return np.outer(c, rng.standard_normal(d))


@settings(**SETTINGS)
@given(seed=st.integers(0, 10_000), depth=st.sampled_from([2, 3]), loss=st.sampled_from(["squared", "logistic"]),
       ea=scale_exp, eb=scale_exp, log_beta=st.floats(-1.5, 0.5))
def test_rank_one_relu_scale_equivariance(seed, depth, loss, ea, eb, log_beta):
    rng = np.random.default_rng(seed)
    X = _rank_one(rng)
    y = rng.standard_normal(X.shape[0])
    if loss == "logistic":
        y = np.where(y > 0, 1.0, -1.0)
    a, b = _scales(ea, eb)
    if loss != "squared":
        b = 1.0
    beta = 10.0 ** log_beta
    L = depth
    beta_t = beta * b ** (2.0 - 2.0 / L) * a ** (2.0 / L)
    sol = deepdual.solve(X, y, beta=beta, depth=L, activation="relu", loss=loss)
    sol_t = deepdual.solve(a * X, b * y, beta=beta_t, depth=L, activation="relu", loss=loss)
    assert sol.method == sol_t.method
    assert_same_optimum(sol, sol_t, b * b, what=f"a={a}, b={b}")


@settings(**SETTINGS)
@given(seed=st.integers(0, 10_000), depth=st.sampled_from([2, 3]), loss=st.sampled_from(["squared", "logistic"]))
def test_rank_one_relu_permutation_and_rotation_invariance(seed, depth, loss):
    rng = np.random.default_rng(seed)
    X = _rank_one(rng)
    y = rng.standard_normal(X.shape[0])
    if loss == "logistic":
        y = np.where(y > 0, 1.0, -1.0)
    kw = dict(beta=0.3, depth=depth, activation="relu", loss=loss)
    sol = deepdual.solve(X, y, **kw)
    perm = rng.permutation(X.shape[0])
    assert_same_optimum(sol, deepdual.solve(X[perm], y[perm], **kw), 1.0, what="rows")
    Q = _orthogonal(rng, X.shape[1])
    assert_same_optimum(sol, deepdual.solve(X @ Q, y, **kw), 1.0, what="rotation")


# ---------------------------------------------------------------------------- whitened ReLU
def _whitened(rng, n=6, d=9):
    return deepdual.whiten(rng.standard_normal((n, d)))


@settings(**SETTINGS)
@given(seed=st.integers(0, 10_000), depth=st.sampled_from([2, 3]), eb=scale_exp, log_beta=st.floats(-1.5, 0.0))
def test_whitened_relu_label_scale_equivariance(seed, depth, eb, log_beta):
    # X -> aX breaks X X^T = I, so a = 1: P*(X, bY, beta b^(2 - 2/L)) = b^2 P*(X, Y, beta)
    rng = np.random.default_rng(seed)
    X = _whitened(rng)
    y = rng.standard_normal(X.shape[0])
    b = 10.0 ** eb
    beta = 10.0 ** log_beta
    L = depth
    sol = deepdual.solve(X, y, beta=beta, depth=L, activation="relu")
    sol_t = deepdual.solve(X, b * y, beta=beta * b ** (2.0 - 2.0 / L), depth=L, activation="relu")
    assert sol.method == sol_t.method
    assert_same_optimum(sol, sol_t, b * b, what=f"b={b}")


@settings(**SETTINGS)
@given(seed=st.integers(0, 10_000), depth=st.sampled_from([2, 3]))
def test_whitened_relu_permutation_and_rotation_invariance(seed, depth):
    rng = np.random.default_rng(seed)
    X = _whitened(rng)
    y = rng.standard_normal(X.shape[0])
    kw = dict(beta=0.2, depth=depth, activation="relu")
    sol = deepdual.solve(X, y, **kw)
    perm = rng.permutation(X.shape[0])
    sol_p = deepdual.solve(X[perm], y[perm], **kw)
    assert sol_p.method == sol.method
    assert_same_optimum(sol, sol_p, 1.0, what="rows")
    Q = _orthogonal(rng, X.shape[1])
    sol_q = deepdual.solve(X @ Q, y, **kw)
    assert sol_q.method == sol.method
    assert_same_optimum(sol, sol_q, 1.0, what="rotation")


# ---------------------------------------------------------------------------- BatchNorm
@settings(**SETTINGS)
@given(seed=st.integers(0, 10_000), K=st.integers(1, 3), ea=scale_exp, eb=scale_exp, log_beta=st.floats(-1.5, 0.0))
def test_batchnorm_scale_equivariance_and_permutation_invariance(seed, K, ea, eb, log_beta):
    rng = np.random.default_rng(seed)
    n, d = 6, 8  # n <= d, full row rank: the depth-2 closed form applies
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((n, K))
    a, b = _scales(ea, eb)
    beta = 10.0 ** log_beta
    sol = deepdual.solve_batchnorm(X, Y, beta=beta)
    sol_t = deepdual.solve_batchnorm(a * X, b * Y, beta=b * beta)
    assert_same_optimum(sol, sol_t, b * b, what=f"a={a}, b={b}")
    perm = rng.permutation(n)
    assert_same_optimum(sol, deepdual.solve_batchnorm(X[perm], Y[perm], beta=beta), 1.0, what="rows")
    Q = _orthogonal(rng, d)
    assert_same_optimum(sol, deepdual.solve_batchnorm(X @ Q, Y, beta=beta), 1.0, what="rotation")


# ---------------------------------------------------------------------------- streaming (sufficient statistics)
@settings(**SETTINGS)
@given(seed=st.integers(0, 10_000), depth=st.sampled_from([2, 3]), ea=scale_exp, eb=scale_exp,
       log_beta=st.floats(-1.0, 0.5))
def test_streaming_scale_equivariance_and_invariances(seed, depth, ea, eb, log_beta):
    from deepdual.stats import accumulate
    from deepdual.streaming import solve_stats

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((30, 4)) * rng.uniform(0.3, 3.0, 4)
    y = X @ rng.standard_normal(4) + 0.5 * rng.standard_normal(30)
    a, b = _scales(ea, eb)
    beta = 10.0 ** log_beta
    L = depth

    def stats(A, v, chunks=3):
        return accumulate(zip(np.array_split(A, chunks), np.array_split(v, chunks)))

    sol = solve_stats(stats(X, y), beta=beta, depth=L)
    sol_t = solve_stats(stats(a * X, b * y), beta=beta * b ** (2.0 - 2.0 / L) * a ** (2.0 / L), depth=L)
    assert_same_optimum(sol, sol_t, b * b, what=f"a={a}, b={b}")
    perm = rng.permutation(X.shape[0])
    assert_same_optimum(sol, solve_stats(stats(X[perm], y[perm], chunks=4), beta=beta, depth=L), 1.0, what="rows")
    Q = _orthogonal(rng, X.shape[1])
    assert_same_optimum(sol, solve_stats(stats(X @ Q, y), beta=beta, depth=L), 1.0, what="rotation")
    # the statistics solver and the in-memory solver agree
    assert_same_optimum(sol, deepdual.solve(X, y, beta=beta, depth=L, activation="linear"), 1.0, what="memory")


@pytest.mark.parametrize("depth", [2, 3])
@pytest.mark.parametrize("a,b", [(1e100, 1e100), (1e-100, 1e-100), (1e150, 1e-150), (1e200, 1.0)])
def test_linear_squared_extreme_units(depth, a, b):
    # the exact scaling of the module doc at units where products of X and y over/underflow
    rng = np.random.default_rng(11)
    X = rng.standard_normal((30, 4))
    y = X @ rng.standard_normal(4) + rng.standard_normal(30)
    L = depth
    beta = 0.5
    beta_t = beta * b ** (2.0 - 2.0 / L) * a ** (2.0 / L)
    sol = deepdual.solve(X, y, beta=beta, depth=L, activation="linear")
    sol_t = deepdual.solve(a * X, b * y, beta=beta_t, depth=L, activation="linear")
    assert sol.certified and sol_t.certified
    assert_same_optimum(sol, sol_t, b * b)
    cert = deepdual.certify(sol_t.network, a * X, b * y, beta=beta_t)
    assert cert.certified
    assert cert.objective == pytest.approx(sol_t.objective, rel=1e-12)
