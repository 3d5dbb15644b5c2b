"""scikit-learn estimators: API conformance (estimator checks), agreement with
deepdual.solve, certificates, and a real data set (digits) against MLPClassifier."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sklearn = pytest.importorskip("sklearn")
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import deepdual  # noqa: E402
from deepdual import DualNetClassifier, DualNetRegressor  # noqa: E402

# The estimator checks fit dozens of small problems.  The ReLU estimators use the
# convex program with a small sampled pattern set and a short iteration budget so the
# module stays fast (the API contract does not depend on the solver's accuracy), and
# ``certify_max_patterns=0`` skips the separate exact enumeration behind the lower bound
# (the proven spectral bound is used instead: the bound stays valid, only looser); the
# linear ones use the closed forms.  No check is skipped by deepdual; the few that
# scikit-learn itself skips here need pandas or SCIPY_ARRAY_API, absent from this
# environment.
_FAST = {"n_patterns": 8, "max_iter": 60, "max_patterns": 200, "certify_max_patterns": 0}


@parametrize_with_checks(
    [
        DualNetRegressor(random_state=0, solver_options=_FAST),
        DualNetClassifier(random_state=0, solver_options=_FAST),
        DualNetRegressor(activation="linear"),
        DualNetClassifier(activation="linear", loss="squared"),
    ]
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_regressor_equals_solve_and_is_certified_on_small_data():
    # 12 points in 2-D with a bias column: all patterns are enumerated, so the fit is
    # the global optimum over all two-layer networks, with a closed gap
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 2))
    y = np.abs(X[:, 0]) - X[:, 1] + 0.1 * rng.standard_normal(12)
    est = DualNetRegressor(beta=0.2, tol=1e-6).fit(X, y)
    yc = y - y.mean()  # the regressor fits the centered targets (intercept_ = mean)
    sol = deepdual.solve(X, yc, beta=0.2, bias=True, rtol=1e-6)
    assert est.certificate_.info["patterns_complete"]
    assert est.certificate_.certified
    assert est.certificate_.objective == pytest.approx(sol.objective, rel=1e-9)
    np.testing.assert_allclose(est.predict(X), sol.predict(X) + y.mean(), rtol=1e-7, atol=1e-9)
    # the certificate's objective is the network's, with penalized hidden biases
    obj = deepdual.objective(est.network_, X, yc, beta=0.2, penalize_biases=True)
    assert obj == pytest.approx(est.certificate_.objective, rel=1e-12)
    # and deepdual.certify of the fitted network proves the same gap
    cert = deepdual.certify(est.network_, X, yc, beta=0.2, penalize_biases=True)
    assert cert.certified, cert


def test_regressor_vector_output():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((15, 2))
    Y = np.column_stack([np.abs(X[:, 0]), X[:, 1]])
    est = DualNetRegressor(beta=0.1, random_state=0).fit(X, Y)
    assert est.predict(X).shape == (15, 2)
    # the fit is a real network: its objective is what the certificate reports
    obj = deepdual.objective(est.network_, X, Y - Y.mean(axis=0), beta=0.1, penalize_biases=True)
    assert obj == pytest.approx(est.certificate_.objective, rel=1e-12)
    assert est.certificate_.lower_bound <= obj


def test_classifier_labels_proba_and_decision():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((30, 2))
    y = np.where(X[:, 0] * X[:, 1] > 0, "same", "diff")  # XOR-like: needs the ReLU layer
    fast = {"max_patterns": 300}  # sampled patterns keep the test quick
    clf = DualNetClassifier(beta=0.05, random_state=0, solver_options=fast).fit(X, y)
    assert list(clf.classes_) == ["diff", "same"]
    P = clf.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    assert np.array_equal(clf.classes_[np.argmax(P, axis=1)], clf.predict(X))
    assert clf.score(X, y) >= 0.9
    lin = DualNetClassifier(beta=0.05, activation="linear").fit(X, y)
    assert clf.score(X, y) > lin.score(X, y)
    sq = DualNetClassifier(beta=0.05, loss="squared", random_state=0, solver_options=fast).fit(X, y)
    assert not hasattr(sq, "predict_proba")


def test_classifier_multiclass_cross_entropy():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((24, 2))
    y = np.digitize(X[:, 0], [-0.5, 0.5])  # three classes
    clf = DualNetClassifier(beta=0.1, random_state=0, n_patterns=20, solver_options={"max_patterns": 300}).fit(X, y)
    assert clf.decision_function(X).shape == (24, 3)
    assert clf.predict_proba(X).shape == (24, 3)
    assert clf.score(X, y) >= 0.9


def test_random_state_reproducible_when_sampling():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((40, 6))
    y = np.maximum(X[:, 0], 0) - X[:, 1]
    a = DualNetRegressor(beta=0.5, random_state=3, n_patterns=12).fit(X, y)
    b = DualNetRegressor(beta=0.5, random_state=3, n_patterns=12).fit(X, y)
    assert not a.certificate_.info["patterns_complete"]
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_classifier_on_digits_comparable_to_mlp():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    X, y = load_digits(return_X_y=True)
    keep = np.isin(y, (3, 8))
    X, y = X[keep] / 16.0, y[keep]
    Xtr, Xte, ytr, yte = train_test_split(X, y, train_size=150, random_state=0, stratify=y)
    clf = DualNetClassifier(beta=1.0, random_state=0, n_patterns=30, tol=1e-3).fit(Xtr, ytr)
    mlp = MLPClassifier(hidden_layer_sizes=(50,), max_iter=2000, random_state=0).fit(Xtr, ytr)
    acc, acc_mlp = clf.score(Xte, yte), mlp.score(Xte, yte)
    assert acc >= acc_mlp - 0.04, (acc, acc_mlp)
    # whatever the pattern set, the reported lower bound is a proven bound for this network
    t = np.where(ytr == clf.classes_[1], 1.0, -1.0)
    obj = deepdual.objective(clf.network_, Xtr, t, beta=1.0, loss="logistic", penalize_biases=True)
    assert obj == pytest.approx(clf.certificate_.objective, rel=1e-12)
    assert clf.certificate_.lower_bound <= obj


def test_relu_convex_regressor_certificate_is_valid():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((12, 2))
    y = np.abs(X[:, 0]) - X[:, 1]
    est = DualNetRegressor(beta=0.5, random_state=0).fit(X, y)
    sol = est.certificate_
    assert sol.lower_bound <= sol.objective + 1e-9 * abs(sol.objective)
    # bias=True (default): the hidden biases are penalized in the convex program
    obj = deepdual.objective(est.network_, X, y - y.mean(), beta=0.5, penalize_biases=True)
    assert obj == pytest.approx(sol.objective, rel=1e-8)
    assert est.predict(X).shape == (12,)


def test_bad_parameters():
    X = np.random.default_rng(0).standard_normal((10, 2))
    with pytest.raises(ValueError, match="beta"):
        DualNetRegressor(beta=-1.0).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="loss"):
        DualNetRegressor(loss="logistic").fit(X, X[:, 0])
    with pytest.raises(ValueError, match="loss"):
        DualNetClassifier(loss="logistic").fit(X, np.arange(10) % 3)
    with pytest.raises(ValueError, match="class"):
        DualNetClassifier().fit(X, np.ones(10))
    with pytest.raises(TypeError, match="solver_options"):
        DualNetRegressor(solver_options=[1]).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="alpha"):
        DualNetRegressor(alpha=0.0).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="tol"):
        DualNetRegressor(tol=-1.0).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="max_iter"):
        DualNetRegressor(max_iter=0).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="n_patterns"):
        DualNetRegressor(n_patterns=0).fit(X, X[:, 0])
    with pytest.raises(TypeError, match="warm_start"):
        DualNetRegressor(warm_start="yes").fit(X, X[:, 0])


# ------------------------------------------------------------------ alpha, beta and the scale
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(4, 30), alpha=st.floats(1e-3, 1.0))
def test_alpha_maps_to_beta_n_alpha_exactly(seed, n, alpha):
    # linear networks: closed forms, so the fit is the exact optimum and the objectives
    # can be compared: (1/n) * deepdual's objective at beta = n * alpha
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    y = X @ rng.standard_normal(3) + rng.standard_normal(n)
    est = DualNetRegressor(alpha=alpha, activation="linear", bias=False).fit(X, y)
    assert est.beta_ == n * alpha  # exactly
    yc = y - y.mean()
    sol = deepdual.solve(X, yc, beta=n * alpha, activation="linear")
    assert est.certificate_.objective == pytest.approx(sol.objective, rel=1e-9)
    mean_obj = 0.5 * np.mean((est.predict(X) - y) ** 2) + 0.5 * alpha * sum(
        float(np.sum(W**2)) for layers in est.network_.weights for W in layers)
    assert mean_obj == pytest.approx(sol.objective / n, rel=1e-9)
    # `beta`, when given, wins over alpha
    est_b = DualNetRegressor(alpha=alpha, beta=2.0, activation="linear", bias=False).fit(X, y)
    assert est_b.beta_ == 2.0


def test_alpha_scale_is_independent_of_n():
    # the same alpha on 2x the (i.i.d.) data gives about the same fitted function, since
    # beta = n * alpha grows with the loss: beta_max / n is an O(1) threshold
    rng = np.random.default_rng(11)
    X = rng.standard_normal((400, 3))
    y = np.maximum(X[:, 0], 0) - X[:, 1] + 0.3 * rng.standard_normal(400)
    a = [deepdual.beta_max(X[:m], y[:m] - y[:m].mean(), activation="linear").value / m for m in (200, 400)]
    assert a[0] == pytest.approx(a[1], rel=0.2)
    fits = [DualNetRegressor(alpha=0.05, activation="linear").fit(X[:m], y[:m]) for m in (200, 400)]
    Xt = rng.standard_normal((100, 3))
    np.testing.assert_allclose(fits[0].predict(Xt), fits[1].predict(Xt), atol=0.15)


def test_zero_network_above_alpha_max_is_said():
    rng = np.random.default_rng(12)
    X = rng.standard_normal((30, 2))
    y = np.abs(X[:, 0]) + 0.1 * rng.standard_normal(30)
    yc = y - y.mean()
    bm = deepdual.beta_max(X, yc, bias=True)
    assert bm.exact
    with pytest.warns(UserWarning, match="zero network"):
        est = DualNetRegressor(alpha=bm.value / 30 * (1 + 1e-6), tol=1e-6).fit(X, y)
    assert est.zero_network_ and est.certificate_.certified
    np.testing.assert_allclose(est.predict(X), y.mean())
    est = DualNetRegressor(alpha=bm.value / 30 * 0.5).fit(X, y)
    assert not est.zero_network_


def test_warm_start_reuses_directions_along_an_alpha_grid():
    rng = np.random.default_rng(13)
    X = rng.standard_normal((60, 6))
    y = np.maximum(X[:, 0], 0) - X[:, 1] + 0.1 * rng.standard_normal(60)
    est = DualNetRegressor(alpha=0.05, n_patterns=20, random_state=0, warm_start=True,
                           solver_options={"certify_max_patterns": 0})
    est.fit(X, y)
    d1 = est.directions_.copy()
    assert d1.shape[1] == 7  # d + 1 (the bias column)
    objs = []
    for a in (0.02, 0.01):
        est.set_params(alpha=a).fit(X, y)
        objs.append(est.certificate_.objective / est.beta_)
        # warm start: every pattern of the earlier fit is used again (the set only grows)
        Xa = np.hstack([X, np.ones((60, 1))])
        before = {tuple(p) for p in (Xa @ d1.T > 0).T}
        now = {tuple(p) for p in (Xa @ est.directions_.T > 0).T}
        assert before <= now
        d1 = est.directions_.copy()
    cold = DualNetRegressor(alpha=0.01, n_patterns=20, random_state=0,
                            solver_options={"certify_max_patterns": 0}).fit(X, y)
    # more patterns (a superset) can only help the program: the warm fit is at least as good
    assert est.certificate_.info["restricted_objective"] <= cold.certificate_.info["restricted_objective"] * (1 + 1e-3)


def test_multiclass_budget_on_wine():
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = DualNetClassifier(alpha=0.01, random_state=0).fit(X, y)
    info = clf.certificate_.info
    # the vector-output program (an upper bound) gets the estimator's budget, then descent
    assert info["iterations"] <= 300
    assert clf.score(X, y) >= 0.97
    obj = deepdual.objective(clf.network_, X, y, beta=clf.beta_, loss="cross_entropy", penalize_biases=True)
    assert obj == pytest.approx(clf.certificate_.objective, rel=1e-10)
    assert clf.certificate_.lower_bound <= obj


def test_large_sampled_fit_uses_the_first_order_default_budget():
    # above IPM_FLOOR_MAX_SAMPLES the estimator leaves the iteration budget to the solver's
    # first-order default (an early iterate polishes as well, docs/performance.md §8); an
    # explicit max_iter still rules, and the proven bound stays below the objective
    from deepdual.relu.convex_program.solver import FO_DEFAULT_MAX_ITER, IPM_FLOOR_MAX_SAMPLES

    rng = np.random.default_rng(3)
    n = IPM_FLOOR_MAX_SAMPLES + 1000
    X = rng.standard_normal((n, 4))
    y = np.maximum(X @ rng.standard_normal(4), 0) - np.maximum(X @ rng.standard_normal(4), 0)
    y = y + 0.1 * rng.standard_normal(n)
    m = DualNetRegressor(alpha=1e-4, n_patterns=20, random_state=0).fit(X, y)
    info = m.certificate_.info
    assert info["solver"] == "first_order"
    assert info["iterations"] <= FO_DEFAULT_MAX_ITER
    assert m.certificate_.lower_bound <= m.certificate_.objective
    m2 = DualNetRegressor(alpha=1e-4, n_patterns=20, random_state=0, max_iter=FO_DEFAULT_MAX_ITER + 50).fit(X, y)
    assert m2.certificate_.info["iterations"] <= FO_DEFAULT_MAX_ITER + 50
    assert m2.certificate_.lower_bound <= m2.certificate_.objective


# --- certify="lazy" | True | False: the oracle's tightening of the bound, deferred ------------

def _small_sets():
    """The four benchmark sets (docs/performance.md, "Estimators vs scikit-learn's MLPs") at
    small size, standardized: name, estimator class, X, y."""
    from sklearn import datasets

    out = []
    for name, n in (("diabetes", 120), ("breast_cancer", 120), ("wine", 90), ("digits", 150)):
        X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
        keep = np.sort(np.random.default_rng(0).choice(len(y), n, replace=False))
        X, y = X[keep].astype(float), y[keep]
        sd = X.std(axis=0)
        X = (X - X.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
        if name == "diabetes":
            out.append((name, DualNetRegressor, X, (y - y.mean()) / y.std()))
        else:
            out.append((name, DualNetClassifier, X, y))
    return out


@pytest.mark.parametrize("name, Est, X, y", _small_sets(), ids=[s[0] for s in _small_sets()])
def test_certify_modes_give_bit_identical_predictions_and_proven_bounds(name, Est, X, y):
    # the oracle only tightens the bound: the network, hence predict, is the same bits in all
    # three modes (default parameters otherwise); the bounds are proven, and the oracle's
    # (eager, lazy) is never below the spectral one (certify=False) for the same dual point
    fits = {c: Est(random_state=0, certify=c).fit(X, y) for c in ("lazy", True, False)}
    lazy_pending = fits["lazy"]._pending is not None
    P = {c: f.predict(X) for c, f in fits.items()}
    assert np.array_equal(P["lazy"], P[True]) and np.array_equal(P[False], P[True])
    if Est is DualNetClassifier:
        D = {c: f.decision_function(X) for c, f in fits.items()}
        assert np.array_equal(D["lazy"], D[True]) and np.array_equal(D[False], D[True])
    certs = {c: f.certificate_ for c, f in fits.items()}
    assert len({ct.objective for ct in certs.values()}) == 1
    for c, ct in certs.items():
        T = y - y.mean() if Est is DualNetRegressor else _targets(fits[c], y)
        net_obj = deepdual.objective(fits[c].network_, X, T, beta=fits[c].beta_, loss=_loss(fits[c]),
                                     penalize_biases=True)
        assert net_obj == pytest.approx(ct.objective, rel=1e-10)
        assert ct.lower_bound <= ct.objective
    one_output = certs[True].network.weights[0][-1].shape[1] == 1
    # the oracle runs (and is deferred) exactly for one output on a sampled pattern set
    assert lazy_pending == (one_output and not certs[True].info["patterns_complete"])
    if lazy_pending:
        assert "branch and bound" in certs[True].info["dual_constraint_how"]
        assert "not run (certify=False)" in certs[False].info["dual_constraint_how"]
        assert certs["lazy"].lower_bound >= certs[False].lower_bound
        assert certs[True].lower_bound >= certs[False].lower_bound
        assert fits["lazy"]._pending is None  # computed once, data dropped
        assert fits["lazy"].certificate_ is certs["lazy"]
    else:
        assert certs["lazy"].lower_bound == certs[True].lower_bound == certs[False].lower_bound


def _loss(est):
    return getattr(est, "_fit_loss", "squared")


def _targets(est, y):
    codes = np.searchsorted(est.classes_, y)
    if _loss(est) == "cross_entropy":
        return np.eye(len(est.classes_))[codes]
    return 2.0 * codes - 1.0


def _oracle_instance(seed, n=40):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    y = np.maximum(X @ [1.0, -0.5] + 0.3, 0) - np.maximum(X @ [-0.4, 1.0], 0) + 0.2 * rng.standard_normal(n)
    return X, y


# sampled patterns (max_patterns below the arrangement's size) and no exact enumeration, so
# the bound comes from the oracle; at n = 40, d = 2 its search ends (exact) within its time
_SAMPLED = {"max_patterns": 10, "certify_max_patterns": 0}


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), alpha=st.sampled_from([1e-3, 1e-2, 3e-2]))
def test_lazy_certificate_equals_eager_one(seed, alpha):
    X, y = _oracle_instance(seed)
    eager = DualNetRegressor(alpha=alpha, random_state=seed, solver_options=_SAMPLED, certify=True).fit(X, y)
    X_user = X.copy()
    lazy = DualNetRegressor(alpha=alpha, random_state=seed, solver_options=_SAMPLED).fit(X_user, y)
    X_user[:] = 0.0  # the caller reuses its array: the deferred bound uses the fit's data
    e, c = eager.certificate_, lazy.certificate_
    assert "branch and bound" in e.info["dual_constraint_how"]
    if not e.info["dual_constraint_exact"]:  # a time-limited search: the nodes reached differ
        assert c.lower_bound <= c.objective
        return
    assert c.lower_bound == e.lower_bound and c.objective == e.objective
    assert np.array_equal(c.dual, e.dual)
    strip = lambda info: {k: v for k, v in info.items() if k != "time_s"}  # noqa: E731
    assert repr(strip(c.info)) == repr(strip(e.info))
    assert c.certified == e.certified and c.method == e.method


def test_lazy_certificate_survives_pickling_and_refits():
    import pickle

    X, y = _oracle_instance(1)
    est = DualNetRegressor(alpha=1e-2, random_state=0, solver_options=_SAMPLED).fit(X, y)
    copy = pickle.loads(pickle.dumps(est))
    assert copy.certificate_.lower_bound == est.certificate_.lower_bound <= est.certificate_.objective
    # a refit replaces the pending computation: the certificate is the new fit's
    X2, y2 = _oracle_instance(2)
    est.fit(X2, y2)
    assert est.certificate_.objective == pytest.approx(
        deepdual.objective(est.network_, X2, y2 - y2.mean(), beta=est.beta_, penalize_biases=True), rel=1e-10)


def test_certify_validation():
    X, y = _oracle_instance(0)
    for bad in ("yes", None, 2):
        with pytest.raises(ValueError, match="`certify`"):
            DualNetRegressor(certify=bad).fit(X, y)
    with pytest.raises(ValueError, match="`oracle_time`"):
        DualNetRegressor(solver_options={"oracle_time": -1.0}).fit(X, y)
    with pytest.raises(AttributeError):
        DualNetRegressor().certificate_  # not fitted


def test_certificate_says_who_sampled_the_patterns():
    # the estimator samples the patterns itself (to warm-start later fits) and passes them to
    # solve: its certificate says so, while patterns given through solver_options stay
    # "user-supplied"; the bound is a proven one either way
    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 6))
    y = np.maximum(X @ rng.standard_normal((6, 3)), 0.0).sum(axis=1)
    own = DualNetRegressor(alpha=1e-3, n_patterns=20, random_state=0).fit(X, y).certificate_
    assert own.info["patterns_how"] == f"{own.info['patterns']} sampled by the estimator"
    assert own.method.endswith("patterns sampled by the estimator") and "user-supplied" not in own.method
    assert own.lower_bound <= own.objective
    pats = rng.standard_normal((6, 20)).T @ X.T > 0  # (20, n) masks given by the user
    given = DualNetRegressor(alpha=1e-3, bias=False, solver_options={"patterns": pats}).fit(X, y).certificate_
    assert given.info["patterns_how"] == "user-supplied" and given.method.endswith("user-supplied patterns")
    assert given.lower_bound <= given.objective
