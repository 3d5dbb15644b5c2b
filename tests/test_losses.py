"""Losses: conjugates (Fenchel--Young, numerical sup), prox, dual scaling, user
losses, label checks; every loss against cvxpy on the two-layer linear and
rank-one ReLU problems; weak duality of certificates; the whitened closed forms
for logistic, hinge and cross-entropy derived in docs/losses.md."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog, minimize, minimize_scalar
from scipy.special import expit

import deepdual
from deepdual.losses import (
    LOSSES,
    CrossEntropyLoss,
    HingeLoss,
    LogisticLoss,
    Loss,
    SquaredLoss,
    get_loss,
)

# Tolerances: Fenchel--Young is checked to 1e-9 relative to the magnitudes involved
# (sums of O(10) terms of size O(20), each with rounding ~1e-15); numerical sups to
# 1e-6 (BFGS stops at gradient 1e-10, the sup's error is quadratic in that).
FY_RTOL = 1e-9


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


# --------------------------------------------------------------------- strategies
def _instance(loss: Loss, n: int, K: int, rng: np.random.Generator):
    """Labels, outputs F and a point Z in dom(loss*) for a loss."""
    F = 5 * rng.standard_normal((n, K))
    if isinstance(loss, (LogisticLoss, HingeLoss)):
        Y = loss.check_labels(rng.choice([-1.0, 1.0], size=(n, 1)))
        F = F[:, :1]
        Z = -rng.uniform(0, 1, size=(n, 1)) * Y
    elif isinstance(loss, CrossEntropyLoss):
        K = max(K, 2)
        F = 5 * rng.standard_normal((n, K))
        Y = np.eye(K)[rng.integers(0, K, size=n)]  # one-hot rows (a class may be absent)
        Y = loss.check_labels(Y)
        P = rng.dirichlet(np.ones(K), size=n)
        Z = P - Y
    else:
        Y = rng.standard_normal((n, K))
        Z = 3 * rng.standard_normal((n, K))
    return Y, F, Z


LOSS_NAMES = sorted(LOSSES)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(LOSS_NAMES), n=st.integers(1, 6), K=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_fenchel_young(name, n, K, seed):
    loss = get_loss(name)
    rng = np.random.default_rng(seed)
    Y, F, Z = _instance(loss, n, K, rng)
    lhs = loss.value(F, Y) + loss.conjugate(Z, Y)
    rhs = float(np.vdot(Z, F))
    scale = 1.0 + abs(loss.value(F, Y)) + abs(rhs)
    assert lhs >= rhs - FY_RTOL * scale
    G = loss.gradient(F, Y)
    eq = loss.value(F, Y) + loss.conjugate(G, Y)
    assert eq == pytest.approx(float(np.vdot(G, F)), rel=FY_RTOL, abs=FY_RTOL * scale)
    # the dual helpers: D(V) = -l*(-V); at V = -grad, D(V) = l(F) + <V, F>
    V = loss.dual_point(F, Y)
    assert loss.dual_value(V, Y) == pytest.approx(loss.value(F, Y) + float(np.vdot(V, F)),
                                                  rel=FY_RTOL, abs=FY_RTOL * scale)


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(["logistic", "hinge", "cross_entropy"]), seed=st.integers(0, 2**32 - 1))
def test_conjugate_is_infinite_outside_domain(name, seed):
    loss = get_loss(name)
    rng = np.random.default_rng(seed)
    Y, F, Z = _instance(loss, 4, 3, rng)
    Zbad = Z.copy()
    if name == "cross_entropy":
        Zbad[0] += 0.5  # row of P = Z + Y no longer sums to one
    else:
        Zbad[0] = -1.5 * Y[0]  # a = 1.5 > 1
    assert loss.conjugate(Zbad, Y) == np.inf
    assert loss.dual_value(-Zbad, Y) == -np.inf


def _numerical_sup(loss: Loss, Z: np.ndarray, Y: np.ndarray) -> float:
    """sup_F <Z, F> - loss(F) by an independent method."""
    if isinstance(loss, HingeLoss):
        # LP: max sum z_i f_i - sum t_i  s.t. t_i >= 0, t_i >= 1 - y_i f_i, |f_i| <= 100
        n = Y.shape[0]
        z, y = Z[:, 0], Y[:, 0]
        c = np.concatenate([-z, np.ones(n)])
        A = np.hstack([-np.diag(y), -np.eye(n)])
        res = linprog(c, A_ub=A, b_ub=-np.ones(n), bounds=[(-100, 100)] * n + [(0, None)] * n,
                      method="highs")
        assert res.status == 0
        return -float(res.fun)

    def fun(f):
        Fm = f.reshape(Z.shape)
        return -(float(np.vdot(Z, Fm)) - loss.value(Fm, Y)), -(Z - loss.gradient(Fm, Y)).ravel()

    res = minimize(fun, np.zeros(Z.size), jac=True, method="BFGS", options={"gtol": 1e-10, "maxiter": 5000})
    return -float(res.fun)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_conjugate_matches_numerical_sup(name):
    loss = get_loss(name)
    rng = np.random.default_rng(1)
    for _ in range(5):
        Y, _, Z = _instance(loss, 3, 2, rng)
        # keep Z inside the domain's interior so that the sup is attained at a finite F
        if name == "logistic":
            Z = -(0.05 + 0.9 * (-Z * Y)) * Y  # a = -z y in [0.05, 0.95]
        elif name == "cross_entropy":
            Z = 0.9 * (Z + Y) + 0.1 / Y.shape[1] - Y  # P = Z + Y mixed with the uniform row
        assert loss.conjugate(Z, Y) == pytest.approx(_numerical_sup(loss, Z, Y), rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_prox_optimality(name):
    """U = prox(F) minimizes s*loss(U) + ||U - F||^2/2: compare with the generic minimizer
    (smooth losses) and check the subgradient condition (hinge)."""
    loss = get_loss(name)
    rng = np.random.default_rng(2)
    for step in (0.1, 1.0, 7.0):
        Y, F, _ = _instance(loss, 5, 2, rng)
        U = loss.prox(F, Y, step)

        def obj(U_):
            return step * loss.value(U_, Y) + 0.5 * float(np.sum((U_ - F) ** 2))

        if name == "hinge":
            # (F - U)/step must be a subgradient: -a y with a in [0,1], a = 1 where yu < 1, 0 where yu > 1
            a = -((F - U) / step) * Y
            m = Y * U
            assert np.all(a >= -1e-12) and np.all(a <= 1 + 1e-12)
            assert np.all(np.abs(a[m < 1 - 1e-12] - 1) < 1e-12)
            assert np.all(np.abs(a[m > 1 + 1e-12]) < 1e-12)
        else:
            G = step * loss.gradient(U, Y) + U - F
            assert np.max(np.abs(G)) < 1e-9 * (1 + np.max(np.abs(F)))
        # and no random perturbation does better (strong convexity)
        for _ in range(10):
            P = U + 1e-3 * rng.standard_normal(U.shape)
            assert obj(P) >= obj(U) - 1e-12 * (1 + abs(obj(U)))


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_best_scale_is_the_maximum_over_the_domain(name):
    loss = get_loss(name)
    rng = np.random.default_rng(3)
    for _ in range(5):
        Y, F, _ = _instance(loss, 6, 2, rng)
        V = loss.dual_point(F, Y)
        lim = loss.dual_scale_limit(V, Y)
        assert lim >= 1.0 - 1e-12  # -V = grad is in the domain
        t_max = 5.0
        t, D = loss.best_scale(V, Y, t_max)
        assert 0 <= t <= min(t_max, lim) * (1 + 1e-12)
        assert D == pytest.approx(loss.dual_value(t * V, Y), rel=1e-12, abs=1e-12)
        grid = np.linspace(0, min(t_max, lim), 401)
        vals = np.array([loss.dual_value(s * V, Y) for s in grid])
        assert np.all(np.isfinite(vals))
        assert D >= vals.max() - 1e-9 * (1 + abs(D))
        if np.isfinite(lim) and lim < t_max:
            assert loss.dual_value(lim * (1 + 1e-6) * V, Y) == -np.inf
        assert loss.minimum(Y) == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------- user losses
class Huber:
    """A duck-typed user loss (no base class): Huber with threshold 1, summed."""

    name = "huber"

    def check_labels(self, Y):
        return np.asarray(Y, dtype=float)

    def value(self, F, Y):
        R = np.abs(np.asarray(F) - Y)
        return float(np.sum(np.where(R <= 1, 0.5 * R**2, R - 0.5)))

    def gradient(self, F, Y):
        return np.clip(np.asarray(F) - Y, -1, 1)

    def conjugate(self, Z, Y):
        Z = np.asarray(Z, dtype=float)
        if np.any(np.abs(Z) > 1 + 1e-12):
            return np.inf
        return float(0.5 * np.sum(Z**2) + np.sum(Z * Y))


def test_duck_typed_user_loss_gets_the_full_interface():
    loss = get_loss(Huber())
    assert isinstance(loss, Loss) and loss.name == "huber"
    rng = np.random.default_rng(4)
    Y = rng.standard_normal((8, 1))
    F = 3 * rng.standard_normal((8, 1))
    assert loss.minimum(Y) == 0.0
    V = loss.dual_point(F, Y)
    t, D = loss.best_scale(V, Y, 10.0)
    assert 0 <= t <= 1.0 + 1e-12  # default dual_scale_limit: 1 (|V| <= 1 is the domain)
    assert np.isfinite(D)
    assert D <= loss.value(F, Y) + t * float(np.vdot(V, F)) + 1e-12  # Fenchel--Young
    # the generic prox (L-BFGS) satisfies the optimality condition
    U = loss.prox(F, Y, 0.7)
    assert np.max(np.abs(0.7 * loss.gradient(U, Y) + U - F)) < 1e-8
    # usable by the objective
    net = deepdual.Network([[rng.standard_normal((3, 2)), rng.standard_normal((2, 1))]], "relu")
    X = rng.standard_normal((8, 3))
    val = deepdual.objective(net, X, Y[:, 0], beta=0.5, loss=Huber())
    ref = Huber().value(net.forward(X), Y) + 0.25 * net.squared_norm()
    assert val == pytest.approx(ref, rel=1e-14)


def test_user_loss_with_prox_only_and_missing_methods():
    class ProxOnly(Huber):
        gradient = None  # type: ignore[assignment]

        def prox(self, F, Y, step):
            return np.asarray(F, dtype=float)

    loss = get_loss(ProxOnly())
    assert isinstance(loss, Loss)
    with pytest.raises(NotImplementedError, match="gradient"):
        loss.gradient(np.zeros((2, 1)), np.zeros((2, 1)))

    class NoConjugate:
        def check_labels(self, Y):
            return Y

        def value(self, F, Y):
            return 0.0

        def gradient(self, F, Y):
            return 0 * F

    with pytest.raises(TypeError, match="conjugate"):
        get_loss(NoConjugate())
    with pytest.raises(ValueError, match="loss"):
        get_loss("squred")
    assert isinstance(get_loss(SquaredLoss), SquaredLoss)


# --------------------------------------------------------------------- labels
def test_bad_labels_raise_clear_value_errors():
    X = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"`y` for the logistic loss.*\{-1, \+1\}"):
        LogisticLoss().check_labels(np.array([[1.0], [3.0], [-1.0]]))
    with pytest.raises(ValueError, match=r"`y` for the hinge loss"):
        HingeLoss().check_labels(np.array([[0.5], [1.0], [0.0]]))
    with pytest.raises(ValueError, match=r"`y` for the cross_entropy loss.*integer"):
        CrossEntropyLoss().check_labels(np.array([[0.5], [1.0], [0.0]]))
    with pytest.raises(ValueError, match=r"one-hot"):
        CrossEntropyLoss().check_labels(np.array([[0.5, 0.5], [1.0, 0.0]]))
    # through the public entry points (labels are checked before any solver runs)
    with pytest.raises(ValueError, match="logistic"):
        deepdual.solve(X, np.array([1.0, 3.0, -1.0]), beta=1.0, loss="logistic")
    with pytest.raises(ValueError, match="cross_entropy"):
        deepdual.solve(X, np.array([0.5, 1.0, 0.0]), beta=1.0, loss="cross_entropy")
    net = deepdual.Network([[np.ones((2, 2)), np.ones((2, 1))]], "relu")
    with pytest.raises(ValueError, match="logistic"):
        deepdual.objective(net, X, np.array([1.0, 3.0, -1.0]), beta=1.0, loss="logistic")


def test_label_encodings_are_equivalent():
    F = np.array([[0.3], [-2.0], [1.5]])
    lo = LogisticLoss()
    assert lo.value(F, lo.check_labels(np.array([[1.0], [0.0], [1.0]]))) == \
        lo.value(F, lo.check_labels(np.array([[1.0], [-1.0], [1.0]])))
    ce = CrossEntropyLoss()
    Fk = np.arange(9.0).reshape(3, 3) / 7
    assert ce.value(Fk, ce.check_labels(np.array([[2.0], [0.0], [1.0]]))) == \
        ce.value(Fk, ce.check_labels(np.eye(3)[[2, 0, 1]]))


# --------------------------------------------------------------------- certificates
needs_certificates = pytest.mark.skipif(
    not (_has("deepdual.linear.certificate") and _has("deepdual.relu.certificate")),
    reason="deepdual.linear.certificate/relu not available yet",
)


def _labels(name: str, n: int, rng) -> np.ndarray:
    if name == "squared":
        return rng.standard_normal(n)
    if name == "cross_entropy":
        return np.arange(n) % 3
    return np.where(np.arange(n) % 2 == 0, 1.0, -1.0)


@needs_certificates
@pytest.mark.parametrize("name", LOSS_NAMES)
@pytest.mark.parametrize("activation", ["linear", "relu"])
def test_certificate_lower_bound_below_objective_for_random_networks(name, activation):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((12, 3))
    y = _labels(name, 12, rng)
    K = 3 if name == "cross_entropy" else 1
    for trial in range(4):
        depth = 2 + trial % 2
        widths = [3] + [4] * (depth - 1) + [K]
        net = deepdual.Network([[rng.standard_normal((widths[l], widths[l + 1])) / 2 for l in range(depth)]],
                               activation, scalar_output=K == 1)
        cert = deepdual.certify(net, X, y, beta=0.7, loss=name)
        P = deepdual.objective(net, X, y, beta=0.7, loss=name)
        assert cert.objective == pytest.approx(P, rel=1e-12)
        assert cert.lower_bound <= P + 1e-12 * abs(P)


# --------------------------------------------------------------------- vs cvxpy
cp = pytest.importorskip("cvxpy")


def _cvx_loss(name: str, F, Y: np.ndarray):
    """The loss as a cvxpy expression (Y canonical: +-1 column or one-hot)."""
    if name == "squared":
        return 0.5 * cp.sum_squares(F - Y)
    if name == "logistic":
        return cp.sum(cp.logistic(-cp.multiply(Y, F)))
    if name == "hinge":
        return cp.sum(cp.pos(1 - cp.multiply(Y, F)))
    return cp.sum(cp.log_sum_exp(F, axis=1)) - cp.sum(cp.multiply(Y, F))


def _cvx_solve(prob):
    try:
        prob.solve(solver=cp.CLARABEL, tol_gap_abs=1e-11, tol_gap_rel=1e-11, tol_feas=1e-11, max_iter=500)
    except cp.SolverError:  # pragma: no cover - fall back to the default solver
        prob.solve()
    assert prob.status in ("optimal", "optimal_inaccurate")


def _cases(rng):
    n, d = 14, 4
    X = rng.standard_normal((n, d))
    return X


# the solver's objective must match cvxpy's to this relative accuracy (issue 8)
CVX_RTOL = 1e-6


@pytest.mark.skipif(not _has("deepdual.linear.solver"), reason="deepdual.linear.solver not available yet")
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_two_layer_linear_matches_cvxpy(name):
    r"""min_theta loss(X W1 W2) + beta/2 (||W1||^2 + ||W2||^2) = min_M loss(XM) + beta ||M||_*
    (group norm for one output): a convex program solved by cvxpy."""
    rng = np.random.default_rng(6)
    X = _cases(rng)
    y = _labels(name, X.shape[0], rng)
    loss = get_loss(name)
    Y, _ = deepdual._validation.check_targets(y, X.shape[0])
    Y = loss.check_labels(Y)
    K = Y.shape[1]
    beta = 0.4 * np.linalg.norm(X.T @ loss.gradient(np.zeros_like(Y), Y), 2)  # below the zero threshold
    M = cp.Variable((X.shape[1], K))
    reg = cp.norm(M, "fro") if K == 1 else cp.normNuc(M)
    prob = cp.Problem(cp.Minimize(_cvx_loss(name, X @ M, Y) + beta * reg))
    _cvx_solve(prob)
    Mv = M.value
    ref = loss.value(X @ Mv, Y) + beta * (np.linalg.norm(Mv) if K == 1 else np.linalg.norm(Mv, "nuc"))
    sol = deepdual.solve(X, y, beta=beta, activation="linear", loss=name)
    P = deepdual.objective(sol.network, X, y, beta=beta, loss=name)
    assert P == pytest.approx(sol.objective, rel=1e-12)
    assert P == pytest.approx(ref, rel=CVX_RTOL)
    assert sol.lower_bound <= ref * (1 + CVX_RTOL)


def _rank_one_data(rng, n=10, d=4):
    c = np.abs(rng.standard_normal(n))
    c[0] = 0.0  # a zero row is allowed (c >= 0)
    a0 = rng.standard_normal(d)
    return np.outer(c, a0), c, a0


@pytest.mark.skipif(not _has("deepdual.relu.rank_one.solver"), reason="deepdual.relu.rank_one.solver not available yet")
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_rank_one_relu_two_layer_matches_cvxpy(name):
    r"""Two-layer ReLU on X = c a0^T, c >= 0: the convex program of docs/theory.md §2.8 with the
    only nonzero activation pattern D = diag(c > 0):
    min loss(X(v - w)) + beta(||v|| + ||w||) s.t. Xv >= 0, Xw >= 0 (vector output:
    f = c k^T with cost beta ||k|| / ||a0||, solved directly)."""
    rng = np.random.default_rng(7)
    X, c, a0 = _rank_one_data(rng)
    y = _labels(name, X.shape[0], rng)
    loss = get_loss(name)
    Y = loss.check_labels(np.asarray(y, float).reshape(len(y), -1))
    K = Y.shape[1]
    g0 = loss.gradient(np.zeros_like(Y), Y)
    beta = 0.4 * np.linalg.norm(a0) * np.linalg.norm(c @ g0)
    if K == 1:
        v, w = cp.Variable(X.shape[1]), cp.Variable(X.shape[1])
        F = cp.reshape(X @ (v - w), (X.shape[0], 1), order="F")
        prob = cp.Problem(cp.Minimize(_cvx_loss(name, F, Y) + beta * (cp.norm(v) + cp.norm(w))),
                          [X @ v >= 0, X @ w >= 0])
        _cvx_solve(prob)
        Fv = (X @ (v.value - w.value))[:, None]
        ref = loss.value(Fv, Y) + beta * (np.linalg.norm(v.value) + np.linalg.norm(w.value))
    else:
        k = cp.Variable((1, K))
        prob = cp.Problem(cp.Minimize(_cvx_loss(name, c[:, None] @ k, Y) + beta / np.linalg.norm(a0) * cp.norm(k)))
        _cvx_solve(prob)
        ref = loss.value(c[:, None] @ k.value, Y) + beta / np.linalg.norm(a0) * np.linalg.norm(k.value)
    sol = deepdual.solve(X, y, beta=beta, activation="relu", loss=name)
    assert sol.lower_bound <= ref * (1 + CVX_RTOL)  # a proven bound
    # docs/losses.md: the rank-one reduction holds for any loss and any number of outputs
    assert "rank-one" in sol.method and sol.certified
    P = deepdual.objective(sol.network, X, y, beta=beta, loss=name)
    assert P == pytest.approx(ref, rel=CVX_RTOL)


@pytest.mark.skipif(not _has("deepdual.relu.rank_one.solver"), reason="deepdual.relu.rank_one.solver not available yet")
@pytest.mark.parametrize("name", ["squared", "logistic", "hinge"])
def test_rank_one_relu_deep_matches_scalar_search(name):
    r"""L = 3 on rank-one data: min_kappa loss(kappa c) + (beta L/2)(|kappa|/||a0||)^(2/L)
    (docs/losses.md; non-convex in kappa): dense grid plus bounded refinement."""
    rng = np.random.default_rng(8)
    X, c, a0 = _rank_one_data(rng)
    y = _labels(name, X.shape[0], rng)
    loss = get_loss(name)
    Y = loss.check_labels(np.asarray(y, float).reshape(-1, 1))
    L = 3
    beta = 0.2 * np.linalg.norm(a0) * np.linalg.norm(c @ loss.gradient(np.zeros_like(Y), Y))

    def h(kappa):
        return loss.value(kappa * c[:, None], Y) + 0.5 * beta * L * (abs(kappa) / np.linalg.norm(a0)) ** (2 / L)

    grid = np.linspace(-50, 50, 20001)
    vals = np.array([h(k) for k in grid])
    i = int(np.argmin(vals))
    res = minimize_scalar(h, bounds=(grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]), method="bounded",
                          options={"xatol": 1e-12})
    ref = min(res.fun, h(0.0), vals[i])
    sol = deepdual.solve(X, y, beta=beta, depth=L, activation="relu", loss=name)
    P = deepdual.objective(sol.network, X, y, beta=beta, loss=name)
    assert P == pytest.approx(ref, rel=CVX_RTOL)


# --------------------------------------------------------------------- whitened closed forms (docs)
def _whitened(rng, n, d):
    Q, _ = np.linalg.qr(rng.standard_normal((d, n)))
    return Q.T  # X X^T = I_n


@pytest.mark.parametrize("name", ["logistic", "hinge"])
@pytest.mark.parametrize("beta_frac", [0.2, 0.45, 0.8])
def test_whitened_binary_closed_form_has_zero_gap(name, beta_frac):
    r"""docs/losses.md: on whitened data, two-layer ReLU, labels +-1: the network
    f = m_+ 1_+ - m_- 1_- (one neuron per sign) with m from a scalar equation, and the
    dual point V = -grad loss(f) (a valid subgradient for the hinge), whose exact
    constraint value is max(||V_+||, ||V_-||) <= beta: the gap is zero."""
    rng = np.random.default_rng(9)
    n, d = 11, 16
    X = _whitened(rng, n, d)
    y = np.where(rng.random(n) < 0.6, 1.0, -1.0)
    loss = get_loss(name)
    Y = y[:, None]
    beta = beta_frac * np.sqrt(min(np.sum(y > 0), np.sum(y < 0)) * 4)
    cols, outs, a = [], [], np.zeros(n)
    for s in (1.0, -1.0):
        idx = y == s
        ns = idx.sum()
        if name == "logistic":
            m = np.log(np.sqrt(ns) / beta - 1) if beta < np.sqrt(ns) / 2 else 0.0
            a[idx] = expit(-m)  # a_i = sigma(-m) = beta / sqrt(n_s) when active
        else:
            m = 1.0 if beta < np.sqrt(ns) else 0.0
            a[idx] = min(beta / np.sqrt(ns), 1.0)  # a subgradient of the hinge at y f = m <= 1
        z = idx / np.sqrt(ns)  # unit, non-negative
        alpha = m * np.sqrt(ns)  # f = alpha z on this class
        u = X.T @ z  # ||u|| = 1 and X u = z
        cols.append(np.sqrt(alpha) * u)
        outs.append(s * np.sqrt(alpha))
    net = deepdual.Network([[np.column_stack(cols), np.array(outs)[:, None]]], "relu")
    P = deepdual.objective(net, X, y, beta=beta, loss=name)
    V = (a * y)[:, None]
    c = max(np.linalg.norm(np.maximum(V, 0)), np.linalg.norm(np.maximum(-V, 0)))
    assert c <= beta * (1 + 1e-12)  # dual feasible (exact constraint for whitened X)
    D = loss.dual_value(V, Y)
    assert P == pytest.approx(D, rel=1e-10)


@pytest.mark.parametrize("beta_frac", [0.3, 0.7, 1.3])
def test_whitened_cross_entropy_closed_form_has_zero_gap(beta_frac):
    r"""docs/losses.md: whitened data, one-hot labels, cross-entropy, two-layer ReLU: one
    neuron per class with output direction (K e_j - 1)/sqrt(K(K-1)) and a scalar equation
    per class; the per-class dual vectors are pairwise non-positively correlated, so the
    constraint value is max_j sqrt(n_j) ||v_j|| <= beta exactly; the gap is zero."""
    rng = np.random.default_rng(10)
    K, d = 3, 20
    labels = np.array([0] * 4 + [1] * 6 + [2] * 5)
    n = labels.size
    X = _whitened(rng, n, d)
    Y = np.eye(K)[labels]
    beta = beta_frac * np.sqrt(4 * (K - 1) / K)
    net = _whitened_cross_entropy_network(X, labels, beta)
    P = deepdual.objective(net, X, labels, beta=beta, loss="cross_entropy")
    loss = CrossEntropyLoss()
    F = net.forward(X)
    V = loss.dual_point(F, Y)
    vj = np.array([V[labels == j][0] for j in range(K)])
    for j in range(K):
        assert np.allclose(V[labels == j], vj[j], atol=1e-14)  # identical rows per class
    G = vj @ vj.T
    assert np.all(G[~np.eye(K, dtype=bool)] <= 1e-15)  # non-positive correlations
    nj = np.bincount(labels)
    assert np.max(np.sqrt(nj) * np.linalg.norm(vj, axis=1)) <= beta * (1 + 1e-12)
    assert P == pytest.approx(loss.dual_value(V, Y), rel=1e-10)


def _whitened_cross_entropy_network(X, labels, beta):
    """The closed form of docs/losses.md (whitened data, one-hot labels, cross-entropy, L = 2)."""
    K = int(labels.max()) + 1
    gamma = np.sqrt(K / (K - 1))
    W1, W2 = [], []
    for j in range(K):
        idx = labels == j
        nj = idx.sum()
        if beta < gamma * np.sqrt(nj) * (K - 1) / K:
            q = beta / (gamma * np.sqrt(nj))
            x = np.log((K - 1) * (1 - q) / q)
        else:
            x = 0.0
        a = x * np.sqrt(nj) / gamma  # path norm of the class-j neuron
        z = idx / np.sqrt(nj)
        w = (K * np.eye(K)[j] - 1) / np.sqrt(K * (K - 1))
        W1.append(np.sqrt(a) * (X.T @ z))
        W2.append(np.sqrt(a) * w)
    return deepdual.Network([[np.column_stack(W1), np.array(W2)]], "relu")


# --------------------------------------------------- where a structure's solver stops (docs)
def test_unsupported_structure_and_loss_combinations_are_explicit():
    """docs/losses.md, "What `solve` does for each structure and loss": outside the
    combinations a structure's solver covers, `solve` raises a ValueError that names the
    loss (and what is covered), or falls back to a method whose lower bound stays proven."""
    rng = np.random.default_rng(12)
    x = np.sort(rng.standard_normal(7))[:, None]
    ypm = np.where(np.arange(7) % 3 == 0, 1.0, -1.0)
    for name in ("logistic", "hinge"):  # 1-D with biases, L >= 3: squared loss only
        with pytest.raises(ValueError, match="squared"):
            deepdual.solve(x, ypm, beta=0.1, bias=True, loss=name, depth=3)
    Xw = _whitened(rng, 6, 9)
    yw = np.where(np.arange(6) % 2 == 0, 1.0, -1.0)
    for name in ("logistic", "hinge"):  # whitened, weight decay, L >= 3: no closed form
        with pytest.raises(ValueError, match="depth 2"):
            deepdual.solve(Xw, yw, beta=0.3, depth=3, loss=name)
    with pytest.raises(ValueError, match="cross_entropy"):
        deepdual.solve(Xw, np.arange(6) % 3, beta=0.3, depth=3, loss="cross_entropy")
    with pytest.raises(ValueError, match="cross_entropy"):
        deepdual.solve(Xw, np.arange(6) % 3, beta=0.3, method="whitened", loss="cross_entropy",
                       formulation="norm_constrained")


def test_whitened_cross_entropy_solve_falls_back_with_a_proven_bound():
    """Whitened data, cross-entropy, L = 2, method='convex' (`solve` itself uses the closed
    form, tests/test_relu_whitened_losses.py): the general convex program's lower bound is
    below the closed-form optimum of docs/losses.md, which is below its objective (so the
    fallback is honest, and uncertified when not tight)."""
    rng = np.random.default_rng(13)
    labels = np.arange(6) % 3
    X = _whitened(rng, 6, 9)
    beta = 0.5
    sol = deepdual.solve(X, labels, beta=beta, loss="cross_entropy", method="convex")
    opt = deepdual.objective(_whitened_cross_entropy_network(X, labels, beta), X, labels, beta=beta,
                             loss="cross_entropy")
    assert sol.lower_bound <= opt * (1 + 1e-10)
    assert sol.objective >= opt * (1 - 1e-10)
    assert sol.certified == (sol.objective - sol.lower_bound <= sol.rtol * abs(sol.objective))


def test_integer_cross_entropy_labels_give_one_output_per_class():
    """Integer labels are one-hot encoded for cross-entropy, so the network has K outputs."""
    rng = np.random.default_rng(3)
    X = np.abs(rng.normal(size=(20, 1))) @ rng.normal(size=(1, 4))
    y = np.arange(20) % 3
    sol = deepdual.solve(X, y, beta=0.5, loss="cross_entropy")
    assert sol.predict(X).shape == (20, 3)
    onehot = np.eye(3)[y]
    assert sol.objective == pytest.approx(deepdual.objective(sol.network, X, onehot, beta=0.5, loss="cross_entropy"))


# --------------------------------------------------------------------- exact feasibility of CE duals
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 300), K=st.integers(1, 6), log_scale=st.floats(-250, 250), seed=st.integers(0, 2**31))
def test_double_centering_is_exact_and_close(n, K, log_scale, seed):
    """Rows and columns sum to exactly 0 (math.fsum is correctly rounded), and the result is
    within (K + 8n) eps max|V| of the floating-point double centering."""
    import math

    from deepdual.exact_centering import center_rows_and_columns_exactly

    rng = np.random.default_rng(seed)
    V = rng.standard_normal((n, K)) * 10.0 ** log_scale
    V0 = V.copy()
    C = center_rows_and_columns_exactly(V)
    assert np.array_equal(V, V0)  # input untouched
    assert all(math.fsum(r) == 0.0 for r in C)
    assert all(math.fsum(c) == 0.0 for c in C.T)
    D = V - V.mean(axis=1, keepdims=True)
    D -= D.mean(axis=0, keepdims=True)
    m = float(np.max(np.abs(V)))
    assert np.max(np.abs(C - D)) <= 4 * (K + 8 * n) * np.finfo(float).eps * m + np.finfo(float).tiny
    if K == 1:
        assert not np.any(C)


def test_cross_entropy_conjugate_rejects_rows_off_the_simplex_beyond_rounding():
    """A row sum off by 1e-12 is outside the conjugate's domain (the old 1e-9 tolerance
    accepted it); an exactly feasible point computed in floating point is accepted."""
    loss = CrossEntropyLoss()
    rng = np.random.default_rng(0)
    Y = np.eye(3)[rng.integers(0, 3, 20)]
    P = rng.dirichlet(np.ones(3), 20)
    Z = P - Y
    assert np.isfinite(loss.conjugate(Z, Y))
    Zbad = Z.copy()
    Zbad[:, 0] += 1e-12
    assert loss.conjugate(Zbad, Y) == np.inf
    assert loss.dual_scale_limit(-Zbad, Y) == 0.0


def test_cross_entropy_certificate_with_free_output_bias_uses_an_exactly_feasible_dual():
    """With a free output bias the cross-entropy dual point needs zero column sums (bias) and
    zero row sums (conjugate domain), both exactly."""
    import math

    rng = np.random.default_rng(3)
    n, d, K, m = 40, 3, 3, 5
    X = rng.standard_normal((n, d))
    y = rng.integers(0, K, n)
    net = deepdual.Network([[rng.standard_normal((d, m)), rng.standard_normal((m, K))]], activation="relu",
                           output_bias=rng.standard_normal(K))
    cert = deepdual.certify(net, X, y, beta=0.5, loss="cross_entropy", time_limit=0.5)
    assert cert.lower_bound <= cert.objective
    V = np.asarray(cert.dual)
    assert V.shape == (n, K)
    assert all(math.fsum(r) == 0.0 for r in V)
    assert all(math.fsum(c) == 0.0 for c in V.T)
