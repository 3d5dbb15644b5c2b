"""Experiments of the paper, one module each, run by ``deepdual reproduce NAME``.

Each module defines ``DESCRIPTION`` (one line) and
``run(out: pathlib.Path, *, quick: bool = False, seed: int = 0, progress: bool = True) -> dict``,
which writes its files (PNG, JSON, ...) into the existing directory ``out`` and
returns the JSON-able results it wrote.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: experiment name -> module (relative to this package)
EXPERIMENTS: dict[str, str] = {
    "figure1": ".figure1",            # 1-D data: linear splines (talk Figure 1)
    "figure2": ".figure2",            # whitened/sampled data: SGD vs closed form (talk Figure 2)
    "rank-vs-beta": ".rank_vs_beta",  # two-layer linear: rank(W1) jumps at singular values of Y^T X
    "deep-linear-layers": ".deep_linear_layers",  # equal ranks and norms across layers
    "rank-one-relu": ".rank_one_relu",  # 5-layer ReLU on rank-one data: every layer rank one
    "neural-collapse": ".neural_collapse",  # BatchNorm: class means form a simplex ETF
}


def load(name: str) -> ModuleType:
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}")
    return importlib.import_module(EXPERIMENTS[name], __name__)
