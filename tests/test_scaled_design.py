"""blocks.ScaledDesign: the implicit X_a = [X 1] 2^-k over the caller's X (docs/performance.md §8).

Every operation equals that of the materialized array (``solver.scaled_data``): bitwise for
row blocks, the array itself, max/min and the network's output; up to the order of the sums
for products, row norms and the Gram matrix.  The spectral bound read through it is still a
proven upper bound, and the first-order solver gives the same program on it as on the array.
"""
import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from deepdual.blocks import ScaledDesign, relu_layer_output, row_norms
from deepdual.dual_constraint import spectral_norm_bound
from deepdual.losses import SquaredLoss
from deepdual.patterns import LEAN_SVD_ENTRIES, row_space, sample_patterns, triangular_factor
from deepdual.relu.convex_program.first_order import cell_value, feasible_point, program_value, solve_first_order
from deepdual.relu.convex_program.solver import scaled_data

EPS = np.finfo(float).eps


@st.composite
def designs(draw):
    n = draw(st.integers(1, 60))
    d = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 10**6))
    k = draw(st.sampled_from([-40, -3, 0, 2, 7, 300]))
    ones = draw(st.booleans())
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * 10.0 ** draw(st.integers(-3, 3))
    if draw(st.booleans()):
        X = np.asfortranarray(X)
    return X, k, ones, rng


@settings(max_examples=60, deadline=None)
@given(designs())
def test_scaled_design_equals_the_materialized_array(case):
    X, k, ones, rng = case
    X0 = X.copy()
    D = ScaledDesign(X, k, ones)
    M = scaled_data(X, ones, k)
    n, da = M.shape
    assert D.shape == M.shape and D.nbytes == M.nbytes and len(D) == n
    # the array itself, row blocks, selected rows: bitwise
    assert np.array_equal(np.asarray(D), M)
    a, b = sorted(rng.integers(0, n + 1, size=2))
    assert np.array_equal(D[a:b], M[a:b])
    idx = rng.integers(0, n, size=rng.integers(0, 2 * n + 1))
    assert np.array_equal(D[idx], M[idx])
    mask = rng.random(n) < 0.5
    assert np.array_equal(D[mask], M[mask])
    assert D.max() == M.max() and D.min() == M.min()
    assert np.max(D) == M.max() and np.min(D) == M.min()
    # products: the same values up to the order of the sums (relative to |M| |u|)
    for u in (rng.standard_normal(da), rng.standard_normal((da, 3))):
        ref = M @ u
        tol = 4 * (da + 1) * EPS * (np.abs(M) @ np.abs(u)) + 1e-300
        assert np.all(np.abs(D @ u - ref) <= tol)
    for w in (rng.standard_normal(n), rng.standard_normal((n, 2))):
        ref = M.T @ w
        tol = 4 * (n + 1) * EPS * (np.abs(M).T @ np.abs(w)) + 1e-300
        assert np.all(np.abs(D.T @ w - ref) <= tol)
    assert np.allclose(row_norms(D), row_norms(M), rtol=8 * EPS * da, atol=0)
    G = M.T @ M
    assert np.all(np.abs(D.gram() - G) <= 4 * (n + 1) * EPS * (np.abs(M).T @ np.abs(M)) + 1e-300)
    # the network's output (row blocks): bitwise
    U, A = rng.standard_normal((da, 4)), rng.standard_normal((4, 2))
    assert np.array_equal(relu_layer_output(D, U, A), relu_layer_output(M, U, A))
    assert np.array_equal(X, X0)  # the caller's data are only read


@settings(max_examples=40, deadline=None)
@given(designs())
def test_spectral_bound_through_the_design_is_a_proven_bound(case):
    X, k, ones, rng = case
    D = ScaledDesign(X, k, ones)
    M = scaled_data(X, ones, k)
    rows = rng.random(M.shape[0]) < 0.6
    for sel in (None, rows):
        true = np.linalg.norm(M if sel is None else M[sel], 2) if (sel is None or sel.any()) else 0.0
        got = spectral_norm_bound(D, sel)
        assert got >= true * (1 - 4 * EPS)  # the SVD's own rounding: the bound is at least the norm
        assert got <= true * (1 + 1e-9) + 1e-300


def test_scaled_design_rejects_what_it_cannot_represent():
    with pytest.raises(TypeError, match="float64"):
        ScaledDesign(np.ones((3, 2), dtype=np.float32), 0)
    D = ScaledDesign(np.ones((3, 2)), 1)
    with pytest.raises(TypeError, match="rows only"):
        D[0:2, 0]
    with pytest.raises(ValueError, match="shape"):
        D @ np.ones(2)
    with pytest.raises(ValueError, match="shape"):
        D.T @ np.ones(4)


@pytest.mark.parametrize("ones", [True, False])
def test_first_order_program_on_the_design_is_the_program_on_the_array(ones):
    # at full column rank the first-order solver works on X_a itself (V = I): the same
    # program as on X_r = X_a V (rotation-invariant), the same values as on the array
    rng = np.random.default_rng(3)
    n, d, k = 400, 4, 2
    X = rng.standard_normal((n, d)) * 3.0
    y = np.maximum(X @ rng.standard_normal((d, 3)), 0.0) @ rng.standard_normal(3)
    Y = np.ldexp(y, -3)[:, None]
    D, M = ScaledDesign(X, k, ones), scaled_data(X, ones, k)
    pats = sample_patterns(M, 12, 0)
    loss, beta = SquaredLoss(), 0.05
    # the helpers agree with the array (up to rounding)
    z = rng.standard_normal((2 * len(pats), M.shape[1]))
    assert np.isclose(program_value(D, pats, Y, loss, beta, z), program_value(M, pats, Y, loss, beta, z),
                      rtol=1e-12)
    v = rng.standard_normal(n)
    assert np.isclose(cell_value(D, pats[0], v), cell_value(M, pats[0], v), rtol=1e-9)
    fD, cD = feasible_point(D, pats, z)
    fM, cM = feasible_point(M, pats, z)
    assert cD == cM and np.allclose(fD, fM, rtol=1e-8, atol=1e-10)
    # the solver: the same iterates as on the array (up to rounding), and the same program as
    # on the rotated data X_a V: each run's proven lower bound is below the others' feasible
    # objectives (and their networks' objectives are those of the same program)
    rD = solve_first_order(D, Y, pats, loss, beta, tol=1e-7, max_iter=400)
    rM = solve_first_order(M, Y, pats, loss, beta, tol=1e-7, max_iter=400)
    rR = solve_first_order(row_space(M).Xr, Y, pats, loss, beta, tol=1e-7, max_iter=400)
    for f in ("convex_objective", "network_objective", "program_upper", "lower"):
        assert np.isclose(getattr(rD, f), getattr(rM, f), rtol=1e-9), f
    for a, b in ((rD, rR), (rR, rD), (rD, rM)):
        assert a.lower <= b.program_upper * (1 + 1e-12) and a.lower <= b.convex_objective * (1 + 1e-9)
    # the weights of the implicit solve are in X_a's own coordinates
    assert np.isclose(rD.convex_objective, program_value(M, pats, Y, loss, beta, rD.z), rtol=1e-9)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 3000), d=st.integers(1, 12), ones=st.booleans(), k=st.sampled_from([-5, 0, 3]),
       seed=st.integers(0, 10**6))
# (the blocked QR route of row_space: n >= 2 d_a and n d_a >= patterns.LEAN_SVD_ENTRIES)
@example(n=7000, d=10, ones=True, k=3, seed=1)
@example(n=6000, d=12, ones=False, k=-5, seed=2)
def test_row_space_and_sampled_patterns_of_the_design_are_those_of_the_array(n, d, ones, k, seed):
    # solve() reads X_a through the design before its solver is chosen: the row space (blocked
    # QR of the same row blocks) and the sampled patterns are bitwise those of the scaled copy
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    D, M = ScaledDesign(X, k, ones), scaled_data(X, ones, k)
    a, b = row_space(D, with_Xr=False), row_space(M, with_Xr=False)
    if n * M.shape[1] >= LEAN_SVD_ENTRIES and n >= 2 * M.shape[1]:  # the blocked QR reads the design's blocks
        assert np.array_equal(triangular_factor(D), triangular_factor(M))
    assert a.Xr is None and np.array_equal(a.V, b.V)
    if a.rank:
        pa, ga = sample_patterns(D, 7, seed, return_directions=True, rs=a)
        pb, gb = sample_patterns(M, 7, seed, return_directions=True, rs=b)
        assert np.array_equal(pa, pb) and np.array_equal(ga, gb)
