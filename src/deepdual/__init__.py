"""deepdual: exact global optima of regularized neural networks via convex duality.

Implements Ergen & Pilanci, "Revealing the Structure of Deep Neural Networks via
Convex Duality" (ICML 2021).  Every function reports the objective

    P(theta) = loss(f(X), Y) + (beta / 2) * sum_j sum_l ||W_{l,j}||_F^2

(squared loss 0.5 * ||f(X) - Y||_F^2 by default, a sum over samples).
"""

from .api import certify, solve
from .losses import CrossEntropyLoss, HingeLoss, LogisticLoss, Loss, SquaredLoss, get_loss
from .network import Network
from .objective import objective
from .projection import project
from .solution import Certificate, Solution

__version__ = "0.1.0"

# Public names implemented in modules with heavier or optional dependencies are
# resolved lazily, so ``import deepdual`` stays numpy/scipy only.
_LAZY = {
    "whiten": "deepdual.whitening",
    "Whitener": "deepdual.whitening",
    "interpolate": "deepdual.relu.one_dimensional.solver",
    "solve_batchnorm": "deepdual.relu.batchnorm.solver",
    "train": "deepdual.training",
    "DualNetRegressor": "deepdual.estimators",
    "DualNetClassifier": "deepdual.estimators",
    "summarize": "deepdual.report",
    "datasets": "deepdual.datasets",
    "beta_max": "deepdual.path",
    "regularization_path": "deepdual.path",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        mod = importlib.import_module(_LAZY[name])
        return mod if name == mod.__name__.rsplit(".", 1)[-1] else getattr(mod, name)
    raise AttributeError(f"module 'deepdual' has no attribute {name!r}")

__all__ = [
    "solve",
    "certify",
    "objective",
    "project",
    "Network",
    "Solution",
    "Certificate",
    "Loss",
    "SquaredLoss",
    "LogisticLoss",
    "CrossEntropyLoss",
    "HingeLoss",
    "get_loss",
    *_LAZY,
]
