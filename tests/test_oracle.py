"""Branch-and-bound dual-constraint oracle (docs/convex_program.md §11-19) against complete
enumeration of the hyperplane arrangement, on random, tied, duplicated, rank-deficient and
zero-row data; anytime validity; hidden-bias pieces."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepdual.patterns import enumerate_patterns
from deepdual.relu.convex_program.certificate import cone_value, support_spectral_bound
from deepdual.relu.convex_program.oracle import cell_ascent, dual_constraint_bb, recentred_pieces


def c_enumerated(X: np.ndarray, v: np.ndarray) -> float:
    """max over all cells and both signs of the exact NNLS cell value."""
    pats = enumerate_patterns(X)
    best = 0.0
    for p in pats:
        d = p.astype(float)
        best = max(best, cone_value(X, d, v), cone_value(X, d, -v))
    return best


METHODS = ("rows", "sphere")


def check_against_enumeration(X: np.ndarray, v: np.ndarray, method: str = "auto") -> None:
    ref = c_enumerated(X, v)
    res = dual_constraint_bb(X, v, method=method)
    tol = 1e-7 * max(1.0, ref)
    assert res.exact
    assert res.upper >= ref - 1e-9 * max(1.0, ref)        # a proven upper bound
    assert res.lower <= ref + 1e-9 * max(1.0, ref)        # an attained value
    assert res.upper - ref <= tol and ref - res.lower <= tol
    # the maximizer attains the value and its pattern is the one returned
    if res.lower > 0:
        assert np.linalg.norm(res.u) <= 1 + 1e-12
        val = res.sign * float(v @ np.maximum(X @ res.u, 0.0))
        assert val == pytest.approx(res.lower, rel=1e-12, abs=1e-12)
        assert np.array_equal(res.pattern, X @ res.u >= 0)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seed", range(12))
def test_matches_enumeration_random(seed, method):
    rng = np.random.default_rng(seed)
    n, d = [(8, 1), (15, 2), (20, 3), (12, 4)][seed % 4]
    X = rng.standard_normal((n, d))
    v = rng.standard_normal(n)
    check_against_enumeration(X, v, method)


@pytest.mark.parametrize("method", METHODS)
def test_ties_duplicates_rank_deficient_zero_rows(method):
    rng = np.random.default_rng(5)
    # integer data: many ties of x_i^T u = 0 on the same lines, parallel and anti-parallel rows
    X = rng.integers(-2, 3, size=(14, 3)).astype(float)
    v = rng.integers(-3, 4, size=14).astype(float)
    check_against_enumeration(X, v, method)
    # duplicated rows and exact zero rows
    B = rng.standard_normal((6, 3))
    X2 = np.vstack([B, B[:3], np.zeros((2, 3)), -B[:2], 2.0 * B[3:5]])
    v2 = rng.standard_normal(len(X2))
    check_against_enumeration(X2, v2, method)
    # rank-deficient: rank 2 in R^4
    X3 = rng.standard_normal((15, 2)) @ rng.standard_normal((2, 4))
    check_against_enumeration(X3, rng.standard_normal(15), method)
    # one-signed v: c(v) is attained with one side only
    check_against_enumeration(X3, np.abs(rng.standard_normal(15)), method)
    # integer data in R^4 (ties on the cube charts' edges and corners: rows along e_k and e_j +- e_k)
    X4 = rng.integers(-1, 2, size=(13, 4)).astype(float)
    check_against_enumeration(X4, rng.integers(-2, 3, size=13).astype(float), method)
    # rank one in R^3 and one row in R^2
    check_against_enumeration(np.outer(rng.standard_normal(9), [1.0, -2.0, 0.5]), rng.standard_normal(9), method)
    check_against_enumeration(np.array([[0.3, -1.2]]), np.array([-0.7]), method)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), n=st.integers(2, 14), d=st.integers(1, 3))
def test_matches_enumeration_property(seed, n, d):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    v = rng.standard_normal(n)
    check_against_enumeration(X, v, "rows")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), n=st.integers(1, 14), d=st.integers(1, 4), dup=st.booleans(),
       integer=st.booleans())
def test_sphere_matches_enumeration_property(seed, n, d, dup, integer):
    """The direction-space search (docs/convex_program.md §11b) equals complete enumeration
    on random, integer (tied) and duplicated-row data, d = 1..4."""
    rng = np.random.default_rng(seed)
    X = rng.integers(-2, 3, size=(n, d)).astype(float) if integer else rng.standard_normal((n, d))
    if dup:
        X = np.vstack([X, X[: max(1, n // 2)]])
    v = rng.standard_normal(len(X))
    check_against_enumeration(X, v, "sphere")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seed", range(4))
def test_anytime_bound_is_valid(seed, method):
    """Stopped early (node limit, tiny time limit), the bound still lies above c(v) and below
    the spectral bound."""
    rng = np.random.default_rng(100 + seed)
    n = 25 if seed % 2 == 0 else 14
    X = rng.standard_normal((n, 3 + seed % 2))
    v = rng.standard_normal(n)
    ref = c_enumerated(X, v)
    spec = support_spectral_bound(X, v)
    for nodes in (1, 3, 10, 100, 1000):
        res = dual_constraint_bb(X, v, max_nodes=nodes, method=method)
        assert res.upper >= ref * (1 - 1e-12)
        assert res.lower <= ref * (1 + 1e-12)
        assert res.upper <= spec * (1 + 1e-9)
    for t in (0.0, 1e-4, 1e-3):
        res = dual_constraint_bb(X, v, time_limit=t, method=method)
        assert ref * (1 - 1e-12) <= res.upper <= spec * (1 + 1e-9)
    # the history is monotone: lower never falls, upper never rises
    res = dual_constraint_bb(X, v, method=method)
    lows = [h[1] for h in res.history]
    ups = [h[2] for h in res.history]
    assert all(b >= a for a, b in zip(lows, lows[1:]))
    assert all(b <= a * (1 + 1e-12) for a, b in zip(ups, ups[1:]))


@pytest.mark.parametrize("method", METHODS)
def test_thresholds_and_violators(method):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((20, 3))
    v = rng.standard_normal(20)
    ref = c_enumerated(X, v)
    res = dual_constraint_bb(X, v, stop_below=2 * ref, method=method)
    assert res.upper <= 2 * ref and res.upper >= ref * (1 - 1e-12)
    res = dual_constraint_bb(X, v, stop_above=0.5 * ref, method=method)
    assert res.lower > 0.5 * ref and res.upper >= ref * (1 - 1e-12)
    res = dual_constraint_bb(X, v, collect_above=0.5 * ref, method=method)
    assert res.violators
    for val, s, k, pat, u in res.violators:
        assert val > 0.5 * ref
        assert s * float(v @ np.maximum(X @ u, 0.0)) == pytest.approx(val, rel=1e-12)
        assert np.array_equal(pat, X @ u >= 0)
    # stop_above with min_collect: it stops only with that many violators (or exact), and
    # its upper bound is still a proof
    few = dual_constraint_bb(X, v, stop_above=0.5 * ref, collect_above=0.1 * ref, max_collect=50,
                             method=method)
    k = 4
    res = dual_constraint_bb(X, v, stop_above=0.5 * ref, collect_above=0.1 * ref, min_collect=k,
                             max_collect=50, method=method)
    assert res.upper >= ref * (1 - 1e-12) and res.lower > 0.5 * ref
    assert len(res.violators) >= k or res.exact
    assert len(res.violators) >= len(few.violators)


def test_cap_bounds_are_bounds():
    """Every cap bound lies above f at the cap's centre and at points of the cap (a
    necessary property checked on random caps of every size; the proof is in the docs)."""
    from deepdual.relu.convex_program.spherical import cap_bounds

    rng = np.random.default_rng(9)
    for d in (2, 3, 4):
        X = rng.standard_normal((40, d))
        v = rng.standard_normal(40)
        U0 = rng.standard_normal((30, d))
        U0 /= np.linalg.norm(U0, axis=1, keepdims=True)
        delta = np.concatenate([np.full(10, 1e-3), np.full(10, 0.1), np.full(10, 1.0)])
        bounds, vals = cap_bounds(X, v, np.linalg.norm(X, axis=1), U0, delta)
        assert np.allclose(vals, np.maximum(U0 @ X.T, 0.0) @ v)
        assert np.all(bounds >= vals - 1e-12)
        for j in range(30):
            # points of the cap: u0 cos(a) + e sin(a), e orthogonal to u0, a <= delta
            E = rng.standard_normal((2000, d))
            E -= (E @ U0[j])[:, None] * U0[j][None, :]
            E /= np.linalg.norm(E, axis=1, keepdims=True)
            a = delta[j] * rng.uniform(0, 1, 2000) ** (1 / max(d - 1, 1))
            P = np.cos(a)[:, None] * U0[j][None, :] + np.sin(a)[:, None] * E
            assert (np.maximum(P @ X.T, 0.0) @ v).max() <= bounds[j] + 1e-12


def test_inherited_row_bounds_are_bounds_on_the_box():
    """cap_bounds_rows (children inherit their parent's decided rows): on a parent cap with
    all rows and then on child caps with only the parent's undecided rows, every bound lies
    above f at points of its box; the sums carried equal the rows decided positive."""
    from deepdual.relu.convex_program.spherical import cap_bounds, cap_bounds_rows

    rng = np.random.default_rng(11)
    for d in (2, 3, 4):
        X = rng.standard_normal((60, d))
        v = rng.standard_normal(60)
        norms = np.linalg.norm(X, axis=1)
        for _ in range(6):
            # a box of the chart u ~ e_0 + sum_j s_j e_j (s in [c - r, c + r]^(d-1))
            c, r = rng.uniform(-0.8, 0.8, d - 1), 10.0 ** rng.uniform(-3, -0.7)

            def points(cc, rr, k):
                P = np.hstack([np.ones((k, 1)), cc + rr * rng.uniform(-1, 1, (k, d - 1))])
                return P / np.linalg.norm(P, axis=1, keepdims=True)

            def cap_of(cc, rr):
                u0 = points(cc, 0.0, 1)[0]
                corners = np.array(list(itertools.product((-1.0, 1.0), repeat=d - 1)))
                Pc = np.hstack([np.ones((len(corners), 1)), cc + rr * corners])
                Pc /= np.linalg.norm(Pc, axis=1, keepdims=True)
                return u0, float(np.arccos(np.clip(Pc @ u0, -1, 1)).max()) * (1 + 1e-9) + 1e-12

            u0, delta = cap_of(c, r)
            rows = np.arange(60)
            bp, vp, bdec, und = cap_bounds_rows(X, v, norms, u0[None], np.array([delta]), np.zeros((1, d)),
                                                np.zeros(60, dtype=np.int64), rows)
            # with every row and nothing inherited it is the plain cap bound
            assert bp[0] == pytest.approx(cap_bounds(X, v, norms, u0[None], np.array([delta]))[0][0], rel=1e-12)
            tt = X @ u0
            assert np.allclose(bdec[0], (v[~und & (tt > 0)])[None] @ X[~und & (tt > 0)])
            kids = [c + 0.5 * r * np.array(o) for o in itertools.product((-1.0, 1.0), repeat=d - 1)]
            caps = [cap_of(kc, r / 2) for kc in kids]
            U0 = np.array([cp[0] for cp in caps])
            dl = np.array([cp[1] for cp in caps])
            ur = rows[und]
            box = np.repeat(np.arange(len(kids)), len(ur))
            bk, _, _, _ = cap_bounds_rows(X, v, norms, U0, dl, np.repeat(bdec, len(kids), axis=0), box,
                                          np.tile(ur, len(kids)))
            for j, kc in enumerate(kids):
                P = points(kc, r / 2, 2000)
                assert (np.maximum(P @ X.T, 0.0) @ v).max() <= bk[j] + 1e-12
            P = points(c, r, 2000)
            assert (np.maximum(P @ X.T, 0.0) @ v).max() <= bp[0] + 1e-12


def test_bad_method():
    with pytest.raises(ValueError, match="method"):
        dual_constraint_bb(np.ones((3, 2)), np.ones(3), method="simplex")


def test_cell_ascent_is_feasible():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 3))
    v = rng.standard_normal(30)
    ref = c_enumerated(X, v)
    for _ in range(5):
        val, u, pat = cell_ascent(X, v, rng.standard_normal(3))
        assert np.linalg.norm(u) <= 1 + 1e-12
        assert val == pytest.approx(float(v @ np.maximum(X @ u, 0.0)), rel=1e-12)
        assert val <= ref * (1 + 1e-12)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seed", range(3))
def test_bias_pieces_valid_and_attained(seed, method):
    r"""c_b(v) = max_j c_{X - 1 x_j^T}(v) for 1^T v = 0: never below sup over sampled (u, b)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((12, 2))
    v = rng.standard_normal(12)
    v -= v.mean()
    res = dual_constraint_bb(X, v, pieces=recentred_pieces(X), method=method)
    assert res.exact
    # every (u, b) with ||u|| <= 1: |v^T (Xu + b)_+| <= c_b(v)
    U = rng.standard_normal((20000, 2))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    b = rng.uniform(-4, 4, size=20000)
    vals = np.abs(np.maximum(U @ X.T + b[:, None], 0.0) @ v)
    assert vals.max() <= res.upper * (1 + 1e-12)
    # attained by the returned direction with the bias that puts the breakpoint at x_piece
    xj = np.unique(X, axis=0)[res.piece]
    val = res.sign * float(v @ np.maximum(X @ res.u - xj @ res.u, 0.0))
    assert val == pytest.approx(res.lower, rel=1e-10)
    assert res.lower >= vals.max() * (1 - 1e-9)  # the sampled maximum is not above the attained one


# ----------------------------------------------------------------------------- certify
def _data(seed, n=24, d=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.maximum(X @ rng.standard_normal(d) + 0.5, 0) + 0.1 * rng.standard_normal(n)
    return X, y


@pytest.mark.parametrize("bias,d", [(False, 5), (True, 5), (True, 3)])
def test_certify_trained_network_never_above_restarts(bias, d):
    """The oracle's certificate (with unpenalized hidden and output biases when ``bias``)
    stays below the best objective of many restarts of wide networks (d = 5: row-sign
    search, 21 806 possible cells, beyond enumeration; d = 3: direction-space search)."""
    pytest.importorskip("torch")
    import deepdual
    from restarts import train_once

    X, y = _data(11, n=24, d=d)
    beta = 0.5
    nets = [train_once(X, y, beta=beta, depth=2, width=16, seed=s, bias=bias, iters=150) for s in range(3)]
    best = min(deepdual.objective(net, X, y, beta=beta) for net in nets)
    cert = deepdual.certify(nets[0], X, y, beta=beta, time_limit=5.0)
    assert np.isfinite(cert.lower_bound)
    assert cert.lower_bound <= best * (1 + 1e-9)
    assert "branch and bound" in cert.details["constraint_method"]
    if bias:
        assert "unpenalized hidden biases" in cert.method
    else:  # at least as good as the spectral bound of docs/convex_program.md §4
        spec = deepdual.certify(nets[0], X, y, beta=beta, constraint="bound")
        assert cert.lower_bound >= spec.lower_bound


def test_certify_progress_log_and_bad_time_limit(capsys):
    import deepdual

    X, y = _data(2, n=30, d=5)
    rng = np.random.default_rng(0)
    net = deepdual.Network([[rng.standard_normal((5, 6)), rng.standard_normal((6, 1))]],
                           biases=[[rng.standard_normal(6)]], output_bias=[0.3])
    cert = deepdual.certify(net, X, y, beta=1.0, time_limit=1.0, progress=True)
    err = capsys.readouterr().err
    assert "objective" in err and "bound" in err and "gap" in err
    assert np.isfinite(cert.lower_bound) and cert.lower_bound <= cert.objective
    with pytest.raises(ValueError, match="time_limit"):
        deepdual.certify(net, X, y, beta=1.0, time_limit=-1.0)


@pytest.mark.parametrize("seed", range(3))
def test_vector_output_bound_beats_spectral(seed):
    """K > 1: sqrt(sum_k c(v_k)^2) with the oracle's c(v_k) is below today's spectral bounds
    (hence a higher proven lower bound) and stays a valid bound."""
    import deepdual
    from deepdual.dual_constraint import c_spectral_bound

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((30, 5))          # 55 682 possible cells: not enumerated
    Y = rng.standard_normal((30, 2))
    net = deepdual.Network([[0.5 * rng.standard_normal((5, 8)), 0.5 * rng.standard_normal((8, 2))]])
    cert = deepdual.certify(net, X, Y, beta=1.0, time_limit=4.0)
    V = Y - net.forward(X)
    assert cert.details["constraint"] < c_spectral_bound(V, X)
    assert "branch and bound" in cert.details["constraint_method"]
    # validity: c(V) >= ||V^T (Xu)_+|| for every sampled unit u
    U = rng.standard_normal((20000, 5))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    sampled = np.linalg.norm(np.maximum(U @ X.T, 0.0) @ V, axis=1).max()
    assert sampled <= cert.details["constraint"] * (1 + 1e-12)
    assert cert.lower_bound <= cert.objective
