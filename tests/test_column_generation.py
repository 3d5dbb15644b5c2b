"""Column generation with branch-and-bound pricing (docs/convex_program.md §13) reaches the
all-pattern optimum of the convex program (cvxpy, tests/references.py) with a proven gap."""

from __future__ import annotations

import numpy as np
import pytest

import deepdual
from deepdual.patterns import enumerate_patterns

from references import convex_program_cvxpy


def cvxpy_optimum(X, y, beta, loss, bias=False):
    cp = pytest.importorskip("cvxpy")
    Xa = np.hstack([X, np.ones((len(X), 1))]) if bias else X
    prob, _, _ = convex_program_cvxpy(Xa, y, beta, loss, enumerate_patterns(Xa))
    prob.solve(solver=cp.CLARABEL)
    return float(prob.value)


def planted(seed, n, d, loss):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    f = np.maximum(X @ rng.standard_normal(d), 0) - np.maximum(X @ rng.standard_normal(d), 0)
    y = f + 0.1 * rng.standard_normal(n)
    if loss == "logistic":
        y = np.where(f + 0.3 * rng.standard_normal(n) >= np.median(f), 1.0, -1.0)
    return X, y


@pytest.mark.parametrize("seed,n,d,loss,bias", [
    (0, 12, 2, "squared", False),
    (1, 15, 3, "squared", False),
    (2, 10, 2, "logistic", False),
    (3, 12, 2, "squared", True),
    (4, 14, 4, "squared", False),      # d = 4: the direction-space oracle (docs/convex_program.md §11b)
    (5, 14, 3, "squared", True),       # augmented data [X, 1]: d = 4
])
def test_reaches_all_pattern_optimum(seed, n, d, loss, bias):
    X, y = planted(seed, n, d, loss)
    beta = 0.5
    ref = cvxpy_optimum(X, y, beta, loss, bias)
    sol = deepdual.solve(X, y, beta=beta, method="convex", loss=loss, bias=bias,
                         strategy="column_generation", rng=seed)
    assert sol.certified
    assert sol.lower_bound <= ref * (1 + 1e-6) + 1e-9        # proven bound below the optimum
    assert sol.objective == pytest.approx(ref, rel=2e-6)      # and the optimum is reached
    # the network is the one reported
    assert deepdual.objective(sol.network, X, y, beta=beta, loss=loss,
                              penalize_biases=bias) == pytest.approx(sol.objective, rel=1e-9)
    hist = sol.info["history"]
    assert hist and all(h[3] <= h[2] * (1 + 1e-9) for h in hist)      # lower <= upper every round
    lows = [h[3] for h in hist]
    assert all(b >= a for a, b in zip(lows, lows[1:]))


def test_time_limit_returns_valid_bounds():
    X, y = planted(5, 60, 4, "squared")
    sol = deepdual.solve(X, y, beta=1.0, method="convex", strategy="column_generation",
                         time_limit=2.0, rng=0)
    assert np.isfinite(sol.lower_bound)
    assert sol.lower_bound <= sol.objective
    assert sol.info["history"]


def test_bad_options():
    X, y = planted(0, 10, 2, "squared")
    with pytest.raises(ValueError, match="strategy"):
        deepdual.solve(X, y, beta=1.0, method="convex", strategy="nope")
    with pytest.raises(ValueError, match="time_limit"):
        deepdual.solve(X, y, beta=1.0, method="convex", strategy="column_generation", time_limit=-1)
    with pytest.raises(ValueError, match="oracle_time"):
        deepdual.solve(X, y, beta=1.0, method="convex", oracle_time=-1.0)
    with pytest.raises(ValueError, match="K = 1|one output"):
        deepdual.solve(X, np.c_[y, y], beta=1.0, method="convex", strategy="column_generation")


@pytest.mark.parametrize("seed", range(4))
def test_violated_cells_are_attained_cells(seed):
    """Screening + cell ascent (a search): every cell returned is violated, attained at its
    unit vector with its pattern, never above the exact c(v) of complete enumeration."""
    from deepdual.relu.convex_program.cells import violated_cells
    from test_oracle import c_enumerated

    rng = np.random.default_rng(seed)
    n, d = [(14, 2), (12, 3), (10, 4), (16, 3)][seed]
    X = rng.standard_normal((n, d))
    v = rng.standard_normal(n)
    exact = c_enumerated(X, v)
    above = 0.5 * exact
    found = violated_cells(X, v, above, np.random.default_rng(0), n_directions=500, max_cells=5,
                           seeds=np.vstack([np.zeros(d), rng.standard_normal((2, d))]))
    assert found                                           # the maximum cell is above 0.5 c(v)
    keys = set()
    for val, s, pat, u in found:
        assert val > above
        assert np.linalg.norm(u) == pytest.approx(1.0)
        assert s * float(v @ np.maximum(X @ u, 0.0)) == pytest.approx(val, rel=1e-12)
        assert np.array_equal(pat, X @ u >= 0)
        assert val <= exact * (1 + 1e-9)
        keys.add((s, pat.tobytes()))
    assert len(keys) == len(found)                          # distinct cells
    assert sum(s > 0 for _, s, _, _ in found) <= 5 and sum(s < 0 for _, s, _, _ in found) <= 5


@pytest.mark.parametrize("loss_name", ["squared", "logistic"])
def test_certifying_constraint_is_the_threshold(loss_name):
    """The largest c-bar whose weak-duality bound still reaches the target: at it the bound
    reaches the target, 1e-6 above it the bound falls short."""
    from deepdual.losses import get_loss
    from deepdual.relu.convex_program.column_generation import certifying_constraint

    rng = np.random.default_rng(1)
    loss = get_loss(loss_name)
    Y = np.sign(rng.standard_normal((30, 1)))
    V = loss.dual_point(0.3 * rng.standard_normal((30, 1)), Y)
    beta = 0.7

    def low(c):
        return loss.best_scale(V, Y, beta / c)[1]

    best = loss.best_scale(V, Y, np.inf)[1]
    for target in (0.5 * best, 0.9 * best, 0.999 * best):
        c = certifying_constraint(loss, V, Y, beta, target)
        assert np.isfinite(c) and c > 0
        assert low(c) >= target
        assert low(c * (1 + 1e-6)) < target
    assert certifying_constraint(loss, V, Y, beta, best * 1.01 + 1e-9) == 0.0   # out of reach


def test_precision_limit_of_the_gram_method_gives_way_to_the_primal_dual_method():
    """Diabetes projected to 3 principal components, beta = 1, the default rtol (1e-6): the
    Gram-reduced method used to stall near 1e-6 relative, which kept column generation from
    certifying (it stopped at a gap of 1.5e-4); rounds that hit that limit take the
    primal-dual method (with the row working sets kept between rounds the Gram method alone
    may now reach it).  The result is certified, and its proven bound lies below the
    objective of an independent run at rtol = 1e-4 (weak duality across runs)."""
    sk = pytest.importorskip("sklearn")
    from sklearn.datasets import load_diabetes
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    Xp = PCA(3, random_state=0).fit_transform(X)
    fine = deepdual.solve(Xp, y, beta=1.0, strategy="column_generation", time_limit=120, progress=False)
    coarse = deepdual.solve(Xp, y, beta=1.0, strategy="column_generation", rtol=1e-4, time_limit=120,
                            progress=False)
    assert fine.certified and fine.info["status"] == "certified"
    assert fine.objective - fine.lower_bound <= 1e-6 * abs(fine.objective)
    assert fine.lower_bound <= coarse.objective and coarse.lower_bound <= fine.objective
    assert fine.objective <= coarse.objective * (1 + 1e-4)


def test_interior_direction_rows_is_inside_and_centred():
    """The row-generation interior direction of column generation: strictly inside the cone
    on every row, at least half as well centred as the LP over all rows, None exactly when
    that LP finds no interior."""
    from deepdual.relu.convex_program.cells import violated_cells
    from deepdual.relu.convex_program.column_generation import interior_direction_rows
    from deepdual.relu.convex_program.groups import interior_direction

    rng = np.random.default_rng(3)
    X = rng.standard_normal((400, 4))
    X[200:210] = X[:10]                       # duplicate rows
    v = rng.standard_normal(400)
    xn = np.linalg.norm(X, axis=1)
    cells = violated_cells(X, v, 0.0, rng, n_directions=500, max_cells=15)
    assert cells
    for _, _, pat, u in cells:
        z = interior_direction_rows(X, pat, u)
        z0 = interior_direction(X, pat.astype(float))
        assert (z is None) == (z0 is None)
        if z is not None:
            sg = np.where(pat, 1.0, -1.0)
            m, m0 = (sg * (X @ z) / xn).min(), (sg * (X @ z0) / xn).min()
            assert m > 0 and m >= 0.5 * m0 and np.linalg.norm(z) == pytest.approx(1.0)
