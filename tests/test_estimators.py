"""scikit-learn estimators: API conformance (estimator checks), certificates, real data."""

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import deepdual  # noqa: E402
from deepdual import DualNetClassifier, DualNetRegressor  # noqa: E402


# The estimator checks fit dozens of small problems.  They run on the linear networks
# (closed forms / FISTA, fast) and on the ReLU convex program with a small sampled
# pattern set, so the whole module stays fast; the API contract is identical.
@parametrize_with_checks(
    [
        DualNetRegressor(activation="linear"),
        DualNetClassifier(activation="linear"),
        DualNetRegressor(activation="relu", random_state=0, solver_options={"n_patterns": 8, "max_iter": 50}),
    ]
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_regressor_matches_solve_and_is_certified():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 4))
    y = X @ rng.standard_normal(4) + 0.1 * rng.standard_normal(30)
    est = DualNetRegressor(beta=0.5, depth=3, activation="linear").fit(X, y)
    sol = deepdual.solve(X, y, beta=0.5, depth=3, activation="linear")
    assert est.certificate_.certified
    assert est.certificate_.objective == pytest.approx(sol.objective, rel=1e-9)
    np.testing.assert_allclose(est.predict(X), sol.predict(X), rtol=1e-7, atol=1e-9)
    # the fitted network's objective is what the certificate reports
    assert deepdual.objective(est.network_, X, y, beta=0.5) == pytest.approx(est.certificate_.objective, rel=1e-10)


def test_regressor_uses_closed_form_on_rank_one_data():
    rng = np.random.default_rng(1)
    X = np.outer(rng.uniform(0, 1, 25), rng.standard_normal(5))
    y = rng.standard_normal(25)
    est = DualNetRegressor(beta=0.3, depth=4).fit(X, y)
    assert "rank-one" in est.certificate_.method
    assert est.certificate_.certified


def test_classifier_binary_proba_and_labels():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((40, 3))
    y = np.where(X[:, 0] + 0.2 * rng.standard_normal(40) > 0, "yes", "no")
    clf = DualNetClassifier(beta=0.1, activation="linear").fit(X, y)
    assert set(clf.classes_) == {"no", "yes"}
    P = clf.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    assert clf.score(X, y) > 0.85
    assert clf.certificate_.certified
    hinge = DualNetClassifier(beta=0.1, activation="linear", loss="hinge").fit(X, y)
    assert not hasattr(hinge, "predict_proba")


def test_classifier_on_digits_comparable_to_mlp():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    X, y = load_digits(return_X_y=True)
    keep = np.isin(y, (3, 8))
    X, y = X[keep] / 16.0, y[keep]
    Xtr, Xte, ytr, yte = train_test_split(X, y, train_size=120, random_state=0, stratify=y)
    clf = DualNetClassifier(beta=1.0, random_state=0, solver_options={"n_patterns": 40}).fit(Xtr, ytr)
    mlp = MLPClassifier(hidden_layer_sizes=(50,), max_iter=2000, random_state=0).fit(Xtr, ytr)
    acc, acc_mlp = clf.score(Xte, yte), mlp.score(Xte, yte)
    assert acc >= acc_mlp - 0.05, (acc, acc_mlp)
    # whatever the pattern set, the reported lower bound is a valid bound for this network
    cert = deepdual.certify(clf.network_, Xtr, 2.0 * (ytr == 8) - 1.0, beta=1.0, loss="logistic")
    assert cert.lower_bound <= cert.objective + 1e-9 * abs(cert.objective)


def test_bad_parameters():
    X = np.random.default_rng(0).standard_normal((10, 2))
    with pytest.raises(ValueError, match="beta"):
        DualNetRegressor(beta=-1.0).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="loss"):
        DualNetRegressor(loss="logistic").fit(X, X[:, 0])
    with pytest.raises(ValueError, match="loss"):
        DualNetClassifier(loss="cross_entropy").fit(X, X[:, 0] > 0)
