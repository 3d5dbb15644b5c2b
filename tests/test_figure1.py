"""Figure 1 (talk): the quick run writes a non-empty PNG and a JSON whose numbers are
mutually consistent with the proven bounds."""

from __future__ import annotations

import json

import numpy as np
import pytest

import deepdual

pytest.importorskip("torch")
pytest.importorskip("matplotlib")


def test_figure1_quick(tmp_path):
    from deepdual.reproduce import figure1, load

    assert load("figure1") is figure1
    assert isinstance(figure1.DESCRIPTION, str) and figure1.DESCRIPTION
    res = figure1.run(tmp_path, quick=True, seed=1, progress=False)
    png, js = tmp_path / "figure1.png", tmp_path / "figure1.json"
    assert png.stat().st_size > 1000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(js.read_text())
    assert data == json.loads(json.dumps(res))

    x, y, beta = np.array(data["data"]["x"]), np.array(data["data"]["y"]), data["beta"]
    opt = data["optimum"]
    assert opt["certified"] and opt["lower_bound"] <= opt["objective"]
    # the reported optimum is reproducible and its knots are data points
    again = deepdual.solve(x.reshape(-1, 1), y, beta=beta, bias=True)
    assert again.objective == pytest.approx(opt["objective"], rel=1e-12)
    assert all(np.min(np.abs(x - k)) == 0 for k in opt["knots"])

    depths = [t["depth"] for t in data["trained"]]
    assert depths == [2, 3, 4]
    for t in data["trained"]:
        cert = t["certificate"]
        assert cert["lower_bound"] <= t["objective"] == pytest.approx(cert["objective"], rel=1e-12)
        if t["depth"] == 2:
            # no two-layer network beats the certified optimum; its certificate is exact
            assert t["objective"] >= opt["lower_bound"] * (1 - 1e-9)
            assert cert["exact_constraint"] and cert["lower_bound"] <= opt["objective"] * (1 + 1e-9)
        else:
            # the proven all-network bound of the deep solver is below every trained net
            assert data["deep_class_optimum"][str(t["depth"])]["proven_lower_bound_all_networks"] <= t["objective"]
    assert data["interpolant_cost"] > 0
    # deep narrow panels (arXiv 2403.01046, l_L penalty): certified, same optimum at L = 3 and 4,
    # kinks at data points; tight reflection kinks are reflections 2 a_k - a_j off the data
    dn = data["deep_narrow"]
    assert set(dn) == {"3", "4"}
    for L in ("3", "4"):
        assert dn[L]["certified"] and dn[L]["lower_bound"] <= dn[L]["objective"]
        assert all(np.min(np.abs(x - k)) <= 1e-9 for k in dn[L]["kinks"])
    assert dn["3"]["objective"] == pytest.approx(dn["4"]["objective"], rel=1e-9)
    again = deepdual.solve(x.reshape(-1, 1), y, beta=beta, depth=4, bias=True, architecture="deep_narrow")
    assert again.objective == pytest.approx(dn["4"]["objective"], rel=1e-12)
    refl = 2 * x[None, :] - x[:, None]
    for k in dn["4"]["tight_reflection_kinks"]:
        assert np.min(np.abs(x - k)) > 1e-12 and np.min(np.abs(refl - k)) <= 1e-9
