r"""Deep ReLU networks on whitened data :math:`XX^T = I_n` (``docs/relu.md`` §2, ``docs/losses.md`` §3)."""

from .losses import solve_whitened_losses
from .solver import norm_constrained_objective, solve_whitened

__all__ = ["solve_whitened", "solve_whitened_losses", "norm_constrained_objective"]
