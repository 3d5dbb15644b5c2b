r"""Deep ReLU networks on rank-one data :math:`X = ca_0^T`, :math:`c \ge 0` (``docs/relu.md`` §1)."""

from .solver import solve_rank_one, solve_reduced, supports

__all__ = ["solve_rank_one", "solve_reduced", "supports"]
