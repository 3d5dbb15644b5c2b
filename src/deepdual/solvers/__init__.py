"""Solvers, one module per theorem.  :func:`deepdual.solve` dispatches here.

Every solver has the signature ``solve_xxx(X, Y, *, scalar, beta, depth, loss, rtol,
bias, method, **options) -> Solution`` with validated float64 ``X`` (n, d) and
``Y`` (n, K).
"""
