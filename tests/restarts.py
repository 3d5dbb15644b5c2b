"""Independent reference for tests: best of many random restarts of direct,
non-convex training of the same parallel network on the same objective.

Uses PyTorch in float64 with full-batch L-BFGS.  This is deliberately independent
of every deepdual solver: it only shares :class:`deepdual.Network` (to evaluate
the result with :func:`deepdual.objective`).
"""

from __future__ import annotations

import numpy as np
import pytest

import deepdual


def lbfgs_minimize(obj, params, iters, *, history_size=50):
    """One float64 L-BFGS run (strong Wolfe line search, tight tolerances) of the scalar
    torch function ``obj()`` over the tensors ``params``, updated in place."""
    import torch

    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=iters, history_size=history_size,
                            tolerance_grad=1e-12, tolerance_change=1e-15, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        v = obj()
        v.backward()
        return v

    opt.step(closure)


def train_once(X, Y, *, beta, depth, activation="relu", width=8, m=1, seed=0, bias=False,
               loss="squared", iters=400, init_scale=1.0):
    """One L-BFGS run from a random init; returns a deepdual.Network."""
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(int(seed))
    Xt = torch.as_tensor(np.asarray(X, float))
    Yt = torch.as_tensor(np.asarray(Y, float).reshape(len(X), -1))
    n, d = Xt.shape
    K = Yt.shape[1]
    params, biases = [], []
    for _ in range(m):
        dims = [d] + [width] * (depth - 1) + [K]
        layer = [(torch.randn(dims[l], dims[l + 1], generator=g, dtype=torch.float64)
                  * init_scale / np.sqrt(dims[l])).requires_grad_() for l in range(depth)]
        params.append(layer)
        if bias:
            biases.append([(0.1 * torch.randn(dims[l + 1], generator=g, dtype=torch.float64)).requires_grad_()
                           for l in range(depth - 1)])
    ob = torch.zeros(K, dtype=torch.float64, requires_grad=True) if bias else None
    flat = [p for layer in params for p in layer] + [b for bl in biases for b in bl] + ([ob] if bias else [])

    def forward():
        out = 0
        for j, layer in enumerate(params):
            a = Xt
            for l, W in enumerate(layer):
                a = a @ W
                if l < depth - 1:
                    if bias:
                        a = a + biases[j][l]
                    if activation == "relu":
                        a = torch.relu(a)
            out = out + a
        return out + ob if bias else out

    def obj():
        F = forward()
        if loss == "squared":
            data = 0.5 * ((F - Yt) ** 2).sum()
        elif loss == "logistic":
            data = torch.nn.functional.softplus(-Yt * F).sum()
        elif loss == "cross_entropy":  # Y one-hot
            data = (torch.logsumexp(F, dim=1) - (Yt * F).sum(dim=1)).sum()
        else:
            raise ValueError(loss)
        reg = sum((W ** 2).sum() for layer in params for W in layer)
        return data + 0.5 * beta * reg

    lbfgs_minimize(obj, flat, iters)
    weights = [[W.detach().numpy().copy() for W in layer] for layer in params]
    bs = [[b.detach().numpy().copy() for b in bl] for bl in biases] if bias else None
    return deepdual.Network(weights, activation, biases=bs,
                            output_bias=None if ob is None else ob.detach().numpy().copy(),
                            scalar_output=np.ndim(Y) == 1)


def best_of_restarts(X, y, *, beta, depth, activation="relu", width=8, m=1, restarts=10, seed=0,
                     bias=False, loss="squared", iters=400):
    """Smallest deepdual.objective over ``restarts`` independent L-BFGS runs."""
    best = np.inf
    for r in range(restarts):
        for scale in (1.0,):
            net = train_once(X, y, beta=beta, depth=depth, activation=activation, width=width, m=m,
                             seed=seed * 1000 + r, bias=bias, loss=loss, iters=iters, init_scale=scale)
            val = deepdual.objective(net, X, y, beta=beta, loss=loss)
            best = min(best, val)
    return best
