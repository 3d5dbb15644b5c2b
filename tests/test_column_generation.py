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
