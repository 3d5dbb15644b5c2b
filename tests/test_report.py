"""deepdual.summarize / Solution.summary: the measured structure against networks
whose structure is known (built by hand and returned by the closed forms)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

import deepdual
from deepdual.report import Report, summarize


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _unit(v):
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def _optimal_shape_network(rng, depth, d=5, width=4, t=1.7, relu=False):
    """Layers W_1 = t v rho_1^T, W_l = t rho_{l-1} rho_l^T, W_L = t rho_{L-1} (docs/theory.md §2.3/2.4):
    rank one, aligned, balanced (every ||W_l||_F = t)."""
    v = _unit(rng.standard_normal(d))
    rhos = [_unit(np.abs(rng.standard_normal(width)) if relu else rng.standard_normal(width))
            for _ in range(depth - 1)]
    Ws = [t * np.outer(v, rhos[0])]
    for l in range(1, depth - 1):
        Ws.append(t * np.outer(rhos[l - 1], rhos[l]))
    Ws.append(t * rhos[-1][:, None])
    return deepdual.Network([Ws], "relu" if relu else "linear")


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("depth", [2, 3, 5])
def test_known_structure_is_reported(relu, depth):
    rng = np.random.default_rng(depth)
    net = _optimal_shape_network(rng, depth, relu=relu)
    rep = summarize(net)
    assert isinstance(rep, Report)
    assert rep.ranks == [[1] * depth]
    for l in range(1, depth):
        assert rep.layer(0, l).alignment == pytest.approx(1.0, abs=1e-12)
    assert rep.layer(0, depth).alignment is None  # last layer: no next layer
    for l in range(1, depth + 1):
        assert rep.layer(0, l).frobenius == pytest.approx(1.7, rel=1e-13)
        assert rep.layer(0, l).operator == pytest.approx(1.7, rel=1e-13)
    sub = rep.subnetworks[0]
    assert sub.active and sub.balance == pytest.approx(1.0, abs=1e-13)
    assert sub.balance_operator == pytest.approx(1.0, abs=1e-13)
    assert sub.path_norm == pytest.approx(1.7**depth, rel=1e-12)
    if not relu:
        assert rep.end_to_end["rank"] == 1
        assert rep.end_to_end["frobenius"] == pytest.approx(1.7**depth, rel=1e-12)


def test_unstructured_network_is_reported_as_such():
    """Misaligned, unbalanced, full-rank layers give alignment < 1, balance > 1, rank > 1."""
    rng = np.random.default_rng(0)
    W1 = rng.standard_normal((5, 4))
    W2 = 3 * rng.standard_normal((4, 1))
    rep = summarize(deepdual.Network([[W1, W2]], "relu"))
    U, s, Vt = np.linalg.svd(W1)
    expected = abs(Vt[0] @ (W2[:, 0] / np.linalg.norm(W2)))
    assert rep.layer(0, 1).alignment == pytest.approx(expected, rel=1e-12)
    assert rep.layer(0, 1).alignment < 0.999
    assert rep.ranks == [[4, 1]]
    assert rep.subnetworks[0].balance == pytest.approx(
        max(np.linalg.norm(W1), np.linalg.norm(W2)) / min(np.linalg.norm(W1), np.linalg.norm(W2)), rel=1e-13)
    assert rep.subnetworks[0].balance > 1.01


def test_misaligned_rank_one_layers():
    """Rank-one layers whose inner vectors differ: alignment = |cos| of the angle."""
    a, b = _unit([1.0, 0.0, 0.0]), _unit([1.0, 1.0, 0.0])
    W1 = np.outer(_unit([1.0, 2.0]), a)
    W2 = b[:, None]
    rep = summarize(deepdual.Network([[W1, W2]], "linear"))
    assert rep.layer(0, 1).alignment == pytest.approx(1 / np.sqrt(2), rel=1e-14)


def test_rank_tolerance_default_and_user():
    W1 = np.diag([1.0, 1e-9, 0.0])
    W2 = np.ones((3, 1))
    net = deepdual.Network([[W1, W2]], "linear")
    rep = summarize(net)
    assert rep.layer(0, 1).rank == 2  # 1e-9 is far above 3 * eps * 100
    assert rep.layer(0, 1).rank_threshold == pytest.approx(3 * np.finfo(float).eps * 100, rel=1e-14)
    rep = summarize(net, tol=1e-6)
    assert rep.layer(0, 1).rank == 1
    assert "1e-06 * sigma_max" in rep.rank_rule
    with pytest.raises(ValueError, match="tol"):
        summarize(net, tol=2.0)
    # the alignment is undefined when the top singular value is repeated
    rep = summarize(deepdual.Network([[np.eye(3), np.ones((3, 1))]], "linear"))
    assert rep.layer(0, 1).alignment is None


def test_activity_and_share():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((20, 3))
    subs = [[rng.standard_normal((3, 2)), rng.standard_normal((2, 1))] for _ in range(3)]
    subs[2][1] = np.zeros((2, 1))  # inactive: zero output layer
    net = deepdual.Network(subs, "relu")
    rep = summarize(net, X)
    assert [s.active for s in rep.subnetworks] == [True, True, False]
    assert rep.active == [0, 1]
    assert rep.subnetworks[2].balance == np.inf
    norms = [np.linalg.norm(np.maximum(X @ W1, 0) @ W2) for W1, W2 in subs]
    for s, nj in zip(rep.subnetworks, norms):
        assert s.share == pytest.approx(nj / sum(norms), rel=1e-13)
    assert sum(s.share for s in rep.subnetworks) == pytest.approx(1.0, rel=1e-14)
    # all-zero sub-network: balance undefined
    subs[2][0] = np.zeros((3, 2))
    rep = summarize(deepdual.Network(subs, "relu"), X)
    assert np.isnan(rep.subnetworks[2].balance)


def test_text_and_dict_forms():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((10, 5))
    net = _optimal_shape_network(rng, 3)
    rep = summarize(net, X)
    text = str(rep)
    for piece in ("Layers", "Sub-networks", "align(l,l+1)", "balance", "Theorem:", "Rank rule"):
        assert piece in text
    d = rep.as_dict()
    json.dumps(d, allow_nan=False)  # strict JSON
    assert d["layers"][0]["rank"] == 1 and d["subnetworks"][0]["share"] == 1.0
    assert d["structure"] == "general" and "deep linear" in d["theorem"]
    assert "certificate needs X, y and beta" in " ".join(rep.notes)


def test_structure_and_theorem_detection():
    rng = np.random.default_rng(3)
    c = np.abs(rng.standard_normal(8))
    X1 = np.outer(c, rng.standard_normal(5))
    net = _optimal_shape_network(rng, 3, relu=True)
    rep = summarize(net, X1)
    assert rep.structure == "rank_one" and "docs/theory.md §2.4" in rep.theorem
    Q, _ = np.linalg.qr(rng.standard_normal((5, 4)))
    rep = summarize(net, Q.T)  # X X^T = I
    assert rep.structure == "whitened" and "docs/theory.md §2.6" in rep.theorem
    net2 = deepdual.Network([[rng.standard_normal((4, 3)), rng.standard_normal((3, 2))]], "linear")
    rep = summarize(net2, Q)  # X^T X = I, vector output
    assert rep.structure == "orthonormal_columns" and "X^T X = I" in rep.theorem
    rep = summarize(net, rng.standard_normal((9, 5)))
    assert rep.structure == "general" and "no closed form" in rep.theorem


def test_bad_input():
    net = deepdual.Network([[np.ones((2, 2)), np.ones((2, 1))]], "relu")
    with pytest.raises(TypeError, match="network"):
        summarize(np.ones((2, 2)))
    with pytest.raises(ValueError, match="without `X`"):
        summarize(net, None, np.ones(3))
    with pytest.raises(ValueError, match="columns"):
        summarize(net, np.ones((3, 4)))


def test_summary_of_a_solution_without_data():
    net = _optimal_shape_network(np.random.default_rng(4), 3)
    sol = deepdual.Solution(network=net, objective=2.0, lower_bound=1.5, method="test")
    rep = sol.summary()
    assert rep.ranks == [[1, 1, 1]]
    assert rep.certificate["source"] == "solution"
    assert rep.certificate["gap"] == pytest.approx(0.5)
    assert "Certificate (solution)" in str(rep)


needs_certificates = pytest.mark.skipif(
    not (_has("deepdual.linear.certificate") and _has("deepdual.relu.certificate")),
    reason="deepdual.certification not available yet",
)


@needs_certificates
def test_certificate_in_report_matches_certify():
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((12, 4)), rng.standard_normal(12)
    net = deepdual.Network([[rng.standard_normal((4, 3)), rng.standard_normal((3, 1))]], "relu")
    rep = summarize(net, X, y, beta=0.5)
    cert = deepdual.certify(net, X, y, beta=0.5)
    assert rep.certificate["source"] == "deepdual.certify"
    assert rep.certificate["objective"] == pytest.approx(cert.objective, rel=1e-14)
    assert rep.certificate["lower_bound"] == pytest.approx(cert.lower_bound, rel=1e-12)


@pytest.mark.skipif(not _has("deepdual.linear.solver"), reason="deepdual.linear.solver not available yet")
def test_deep_linear_solution_structure():
    """docs/theory.md §2.3: the optimal deep linear network (scalar output) is one rank-one, aligned,
    balanced path."""
    rng = np.random.default_rng(6)
    X, y = rng.standard_normal((30, 6)), rng.standard_normal(30)
    sol = deepdual.solve(X, y, beta=2.0, depth=4, activation="linear")
    rep = sol.summary(X, y)
    act = [s for s in rep.subnetworks if s.active]
    assert len(act) == 1
    j = act[0].index
    assert act[0].ranks == [1, 1, 1, 1]
    for l in range(1, 4):
        assert rep.layer(j, l).alignment == pytest.approx(1.0, abs=1e-9)
    assert act[0].balance == pytest.approx(1.0, abs=1e-9)
    assert act[0].share == pytest.approx(1.0)
    assert rep.end_to_end["rank"] == 1


@pytest.mark.skipif(not _has("deepdual.relu.rank_one.solver"), reason="deepdual.relu.rank_one.solver not available yet")
def test_rank_one_relu_solution_structure():
    """docs/theory.md §2.4: on rank-one data X = c a0^T (c >= 0) every layer is rank one and aligned."""
    rng = np.random.default_rng(7)
    c = np.abs(rng.standard_normal(15))
    X = np.outer(c, rng.standard_normal(4))
    y = 2 * c + 0.1 * rng.standard_normal(15)
    sol = deepdual.solve(X, y, beta=0.3, depth=5, activation="relu")
    rep = sol.summary(X, y, beta=0.3)
    act = [s for s in rep.subnetworks if s.active]
    assert len(act) >= 1
    for s in act:
        assert s.ranks == [1] * 5
        assert s.balance == pytest.approx(1.0, abs=1e-9)
        for l in range(1, 5):
            assert rep.layer(s.index, l).alignment == pytest.approx(1.0, abs=1e-9)
    assert rep.structure == "rank_one"


def _rank_one_classes(seed=8, n=12, d=4):
    rng = np.random.default_rng(seed)
    c = np.abs(rng.standard_normal(n))
    X = np.outer(c, rng.standard_normal(d))
    labels = np.digitize(c, np.quantile(c, [0.33, 0.66]))
    labels[:2] = (labels[:2] + 1) % 3
    return X, labels


@pytest.mark.skipif(not _has("deepdual.relu.rank_one.solver"), reason="deepdual.relu.rank_one.solver not available yet")
def test_rank_one_relu_cross_entropy_vector_structure():
    """Any loss (docs/losses.md): with cross-entropy and K = 3 the optimum on rank-one data
    is still one rank-one, aligned, balanced path carrying the whole output; the report
    carries the fresh certificate and the solver's own (certified) one."""
    X, labels = _rank_one_classes()
    sol = deepdual.solve(X, labels, beta=0.4, depth=3, loss="cross_entropy", width=3)
    rep = sol.summary(X, labels)
    act = [s for s in rep.subnetworks if s.active]
    assert len(act) == 1 and act[0].share == pytest.approx(1.0)
    assert act[0].ranks == [1, 1, 1]
    assert act[0].balance == pytest.approx(1.0, abs=1e-12)
    assert act[0].balance_operator == pytest.approx(1.0, abs=1e-12)
    for l in (1, 2):
        assert rep.layer(act[0].index, l).alignment == pytest.approx(1.0, abs=1e-9)
    assert rep.structure == "rank_one" and "any convex loss" in rep.theorem
    cert = rep.certificate
    assert cert["source"] == "deepdual.certify"
    assert cert["objective"] == pytest.approx(sol.objective, rel=1e-12)
    assert cert["lower_bound"] <= cert["objective"] * (1 + 1e-12)
    assert cert["solver"]["certified"] and cert["solver"]["lower_bound"] == sol.lower_bound
    text = str(rep)
    assert "solver       lower bound" in text and "Theorem:" in text


def test_cli_solve_summary_prints_the_whole_report(capsys, tmp_path):
    """`deepdual solve --summary` prints every part of the report: the rank rule (tolerance),
    ranks, norms and alignment per layer, activity/balance/share per sub-network, the
    structure and theorem, and the certificate."""
    pytest.importorskip("deepdual.cli")
    from deepdual import cli

    X, labels = _rank_one_classes()
    p = tmp_path / "data.csv"
    with open(p, "w") as f:
        f.write(",".join([f"x{i}" for i in range(X.shape[1])] + ["label"]) + "\n")
        for r, t in zip(X, labels):
            f.write(",".join(f"{v:.17g}" for v in r) + f",{t}\n")
    code = cli.main(["solve", str(p), "--target", "label", "--beta", "0.4", "--loss", "cross_entropy",
                     "--summary"])
    out, err = capsys.readouterr()
    assert code == 0, err
    for piece in ("Rank rule: singular values >", "rank", "||W||_F", "||W||_2", "align(l,l+1)",
                  "Sub-networks", "active", "balance F", "balance op", "share", "Data structure: rank_one",
                  "Theorem:", "Certificate", "lower bound", "certified"):
        assert piece in out, piece
