"""PyTorch interop (the ``[torch]`` extra).  Imported lazily."""

from __future__ import annotations

import re
from typing import Any

import numpy as np


def require_torch():
    """Import torch or raise an ImportError that names the extra."""
    try:
        import torch
    except ImportError:  # pragma: no cover - exercised only without torch
        raise ImportError(
            "this feature needs PyTorch; install it with `pip install deepdual[torch]`"
        ) from None
    return torch


def _module_class():
    torch = require_torch()
    nn = torch.nn

    class ParallelNetwork(nn.Module):
        """Sum of ``m`` fully connected sub-networks (deepdual's parallel architecture).

        ``subnets[j][l]`` is a ``torch.nn.Linear`` whose ``weight`` is the transpose of
        deepdual's ``weights[j][l]``.
        """

        def __init__(self, widths, activation="relu", hidden_bias=False, output_bias=False,
                     scalar_output=False, dtype=None):
            super().__init__()
            self.activation = activation
            self.scalar_output = bool(scalar_output)
            L = len(widths[0]) - 1
            self.subnets = nn.ModuleList(
                nn.ModuleList(
                    nn.Linear(w[l], w[l + 1], bias=bool(hidden_bias) and l < L - 1, dtype=dtype)
                    for l in range(L)
                )
                for w in widths
            )
            K = widths[0][-1]
            self.output_bias = nn.Parameter(torch.zeros(K, dtype=dtype)) if output_bias else None

        def forward(self, x):
            out = 0
            for layers in self.subnets:
                a = x
                for l, lin in enumerate(layers):
                    a = lin(a)
                    if l < len(layers) - 1 and self.activation == "relu":
                        a = torch.relu(a)
                out = out + a
            if self.output_bias is not None:
                out = out + self.output_bias
            return out

    return ParallelNetwork


_CLS = None


def parallel_network_class():
    global _CLS
    if _CLS is None:
        _CLS = _module_class()
    return _CLS


def network_to_module(net, dtype: Any = None):
    torch = require_torch()
    dtype = torch.float64 if dtype is None else dtype
    hidden_bias = net.biases is not None and any(b is not None for row in net.biases for b in row)
    mod = parallel_network_class()(
        net.widths, net.activation, hidden_bias=hidden_bias, output_bias=net.output_bias is not None,
        scalar_output=net.scalar_output, dtype=dtype,
    )
    with torch.no_grad():
        for j, layers in enumerate(net.weights):
            for l, W in enumerate(layers):
                lin = mod.subnets[j][l]
                lin.weight.copy_(torch.as_tensor(W.T, dtype=dtype))
                if lin.bias is not None:
                    b = net.biases[j][l] if net.biases is not None else None
                    lin.bias.copy_(torch.as_tensor(np.zeros(W.shape[1]) if b is None else b, dtype=dtype))
        if mod.output_bias is not None:
            mod.output_bias.copy_(torch.as_tensor(net.output_bias, dtype=dtype))
    return mod


_KEY = re.compile(r"^subnets\.(\d+)\.(\d+)\.(weight|bias)$")


def module_parameters(module: Any, activation: str | None = None,
                      scalar_output: bool | None = None) -> dict[str, Any]:
    """Read the arguments of :class:`~deepdual.Network` from a ParallelNetwork or its state dict.

    Returns a dict with ``weights``, ``activation``, ``biases``, ``output_bias`` and
    ``scalar_output``; :meth:`deepdual.Network.from_torch` builds the network from it
    (this module does not import :mod:`deepdual.network`, which imports it).
    """
    torch = require_torch()
    if isinstance(module, torch.nn.Module):
        state = module.state_dict()
        activation = activation or getattr(module, "activation", "relu")
        if scalar_output is None:
            scalar_output = getattr(module, "scalar_output", None)
    elif isinstance(module, dict):
        state = module
        activation = activation or "relu"
    else:
        raise TypeError("`module` must be a torch.nn.Module built by Network.to_torch/train or its state_dict")
    W: dict[tuple[int, int], np.ndarray] = {}
    B: dict[tuple[int, int], np.ndarray] = {}
    for key, val in state.items():
        m = _KEY.match(key)
        arr = val.detach().cpu().double().numpy() if hasattr(val, "detach") else np.asarray(val, dtype=float)
        if m:
            j, l = int(m.group(1)), int(m.group(2))
            (W if m.group(3) == "weight" else B)[(j, l)] = arr
        elif key != "output_bias":
            raise ValueError(f"`module` has an unexpected parameter {key!r}; expected subnets.J.L.weight/bias")
    if not W:
        raise ValueError("`module` has no parameters named subnets.J.L.weight")
    m_ = 1 + max(j for j, _ in W)
    L = 1 + max(l for _, l in W)
    weights = [[W[(j, l)].T for l in range(L)] for j in range(m_)]
    biases = None
    if B:
        biases = [[B.get((j, l)) for l in range(L - 1)] for j in range(m_)]
    ob = state.get("output_bias")
    if ob is not None:
        ob = ob.detach().cpu().double().numpy() if hasattr(ob, "detach") else np.asarray(ob, dtype=float)
    return {"weights": weights, "activation": activation, "biases": biases, "output_bias": ob,
            "scalar_output": scalar_output}
