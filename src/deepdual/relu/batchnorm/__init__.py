"""Deep ReLU networks with BatchNorm before the last layer; neural collapse (``docs/batchnorm.md``)."""

from .solver import (
    BatchNormNetwork,
    BatchNormSolution,
    batchnorm_objective,
    certify_batchnorm,
    neural_collapse_metrics,
    solve_batchnorm,
    train_batchnorm,
)

__all__ = ["BatchNormNetwork", "BatchNormSolution", "batchnorm_objective", "certify_batchnorm",
           "neural_collapse_metrics", "solve_batchnorm", "train_batchnorm"]
