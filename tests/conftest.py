"""Shared pytest configuration.

The test machines have few cores and many tests solve tiny linear-algebra
problems, for which multi-threaded BLAS only adds synchronisation overhead
(a 464x464 Cholesky took 0.4 s with OpenBLAS threads oversubscribed and
10 ms single-threaded).  BLAS is therefore limited to one thread for the whole
session with threadpoolctl when it is installed (it is part of the ``test``
extra); results do not depend on the thread count beyond round-off.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _single_threaded_blas():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is in the test extra
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
