"""BLAS thread control for solvers made of many small dense products.

Interior-point and Newton solvers here factor many small matrices (blocks of size
r + 1, working-set systems of order ~10²).  For those, BLAS threads cost more in
synchronization than they gain, and on a loaded machine they oversubscribe the cores:
measured on the 2-core development machine, L-BFGS-B on ~100 variables was 35x slower
with two threads, and one Cholesky of order 141 took 0.18 s instead of 1e-4 s
(docs/performance.md, docs/one_dimensional.md).  :class:`SingleThreadedBLAS` limits
BLAS to one thread for the duration of a solve when threadpoolctl is installed (it
comes with scikit-learn and the ``test`` extra) and does nothing otherwise; results do
not depend on the thread count beyond round-off.
"""

from __future__ import annotations

from contextlib import ContextDecorator
from typing import Any

__all__ = ["SingleThreadedBLAS"]


class SingleThreadedBLAS(ContextDecorator):
    """Context manager / decorator: BLAS limited to one thread (threadpoolctl, if installed).

    The limit object is kept on the instance and restored on exit: threadpoolctl undoes
    a limit whose returned object is discarded, so ``threadpool_limits(1)`` as a bare
    statement does not last.
    """

    def __enter__(self) -> "SingleThreadedBLAS":
        try:
            from threadpoolctl import threadpool_limits

            self._limits: Any = threadpool_limits(1, user_api="blas")
        except ImportError:  # pragma: no cover - optional; comes with scikit-learn
            self._limits = None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._limits is not None:
            self._limits.restore_original_limits()
            self._limits = None
