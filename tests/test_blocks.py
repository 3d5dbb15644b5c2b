"""Row blocking (deepdual.blocks): block-wise results equal the whole-array products."""
import numpy as np
from hypothesis import given, settings, strategies as st

import deepdual.blocks as blocks
from deepdual.blocks import relu_layer_output, row_blocks
from deepdual.relu.convex_program.rebuild import network_from_atoms
from deepdual.patterns import sample_patterns


@given(st.integers(0, 60), st.integers(0, 9), st.integers(1, 50))
def test_row_blocks_partition_rows(n, width, entries):
    sl = list(row_blocks(n, width, entries))
    covered = np.concatenate([np.arange(n)[s] for s in sl]) if sl else np.zeros(0, int)
    assert np.array_equal(covered, np.arange(n))
    assert all(s.stop - s.start >= 1 for s in sl)
    assert all((s.stop - s.start) * max(width, 1) <= max(entries, max(width, 1)) for s in sl)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 40), st.integers(1, 5), st.integers(1, 7), st.integers(0, 10**6))
def test_blocked_outputs_match_whole_products(n, d, m, seed):
    rng = np.random.default_rng(seed)
    X, U, A = rng.standard_normal((n, d)), rng.standard_normal((d, m)), rng.standard_normal((m, 2))
    dense = np.maximum(X @ U, 0.0) @ A
    old = blocks.BLOCK_ENTRIES
    try:
        blocks.BLOCK_ENTRIES = 3  # many blocks of one row or a few
        np.testing.assert_allclose(relu_layer_output(X, U, A), dense, rtol=1e-12, atol=1e-12)
        net = network_from_atoms(U, A, bias=False, scalar=False)
        np.testing.assert_allclose(net.forward(X), dense, rtol=1e-12, atol=1e-12)
        pats = sample_patterns(X, 4, seed)
    finally:
        blocks.BLOCK_ENTRIES = old
    assert np.array_equal(pats, sample_patterns(X, 4, seed))  # the same patterns as in one block


@settings(max_examples=60, deadline=None)
@given(P=st.integers(1, 12), n=st.integers(1, 40), dup=st.integers(0, 6), seed=st.integers(0, 2**31 - 1))
def test_unique_rows_matches_numpy_unique(P, n, dup, seed):
    """unique_rows (packed bits) returns np.unique(D, axis=0): same rows, same order, same
    first-occurrence indices, with duplicates and n not a multiple of 8."""
    from deepdual.patterns import unique_rows

    rng = np.random.default_rng(seed)
    D = rng.random((P, n)) < rng.uniform(0.1, 0.9)
    if dup:
        D = np.concatenate([D, D[rng.integers(0, P, dup)]], axis=0)[rng.permutation(P + dup)]
    ref, ref_idx = np.unique(D, axis=0, return_index=True)
    got, idx = unique_rows(D, return_index=True)
    assert np.array_equal(got, ref) and np.array_equal(idx, ref_idx)
    assert np.array_equal(unique_rows(D), ref)
