"""PyTorch interop (the ``[torch]`` extra).  Imported lazily.

Two kinds of modules are read back into deepdual's parameters (:func:`module_parameters`):

* the ``ParallelNetwork`` built by :meth:`deepdual.Network.to_torch` and
  :func:`deepdual.train`, or its ``state_dict()``.  The module records its activation
  (and whether predictions are 1-D) in two buffers, ``deepdual_activation`` and
  ``deepdual_scalar_output``, so that its state dict round-trips exactly;
* a standard ``torch.nn.Sequential`` multilayer perceptron: ``nn.Linear`` layers
  (with or without biases, any depth >= 2) separated by ``nn.ReLU`` (a ReLU network) or
  by nothing (a linear network).  ``nn.Identity`` and ``nn.Dropout`` are accepted anywhere
  and ignored: both are the identity at evaluation, which is the network deepdual
  certifies; so is ``nn.Flatten()`` on deepdual's 2-D input.  Nested ``nn.Sequential``
  blocks are flattened.  An output ``Sigmoid``/``Softmax`` is refused with a hint: in
  deepdual it is part of the loss (``loss="logistic"``/``"cross_entropy"``).  Every other module
  (convolutions, batch normalization, other activations, an activation on the input or
  on the output) raises a ``ValueError`` naming the layer: it is not a deepdual network.

A ``Sequential``'s state dict (keys ``"0.weight"``, ``"2.weight"``, ...) does not say
which parameter-free modules sat between its ``Linear`` layers.  Adjacent indices prove
that nothing did (a linear network); a gap may hide a ReLU, a Dropout or a Tanh, so the
activation must then be passed explicitly (``activation="relu"`` or ``"linear"``).
Nothing in a state dict records a module after the last ``Linear`` layer either.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

#: code stored in the ``deepdual_activation`` buffer of a ParallelNetwork
ACTIVATION_CODES = {"linear": 0, "relu": 1}
_ACTIVATION_NAMES = {v: k for k, v in ACTIVATION_CODES.items()}

_SEQUENTIAL_HINT = (
    "deepdual reads nn.Sequential MLPs (nn.Linear layers separated by nn.ReLU or by nothing; "
    "nn.Identity and nn.Dropout are ignored) and modules built by Network.to_torch or train"
)


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
        deepdual's ``weights[j][l]``.  The buffers ``deepdual_activation`` (0 linear,
        1 ReLU) and ``deepdual_scalar_output`` carry the activation and the output shape
        into the state dict.
        """

        def __init__(self, widths, activation="relu", hidden_bias=False, output_bias=False,
                     scalar_output=False, dtype=None):
            super().__init__()
            if activation not in ACTIVATION_CODES:
                raise ValueError(f"`activation` must be one of {', '.join(map(repr, ACTIVATION_CODES))}; "
                                 f"got {activation!r}")
            self.register_buffer("deepdual_activation",
                                 torch.tensor(ACTIVATION_CODES[activation], dtype=torch.uint8))
            self.register_buffer("deepdual_scalar_output", torch.tensor(bool(scalar_output)))
            self.activation = activation
            self._scalar_output = bool(scalar_output)
            L = len(widths[0]) - 1
            # hidden_bias: one flag for every hidden layer, or flags [j][l] (l < L - 1) per layer
            flags = ([[bool(hidden_bias)] * (L - 1) for _ in widths] if isinstance(hidden_bias, (bool, int))
                     else [[bool(f) for f in row] for row in hidden_bias])
            self.subnets = nn.ModuleList(
                nn.ModuleList(
                    nn.Linear(w[l], w[l + 1], bias=l < L - 1 and flags[j][l], dtype=dtype)
                    for l in range(L)
                )
                for j, w in enumerate(widths)
            )
            K = widths[0][-1]
            self.output_bias = nn.Parameter(torch.zeros(K, dtype=dtype)) if output_bias else None
            self.register_load_state_dict_post_hook(_sync_flags)

        @property
        def scalar_output(self) -> bool:
            return self._scalar_output

        @scalar_output.setter
        def scalar_output(self, value) -> None:
            self._scalar_output = bool(value)
            with torch.no_grad():
                self.deepdual_scalar_output.fill_(bool(value))

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


def _sync_flags(module: Any, incompatible_keys: Any) -> None:
    """After ``load_state_dict``: the Python-side flags follow the loaded buffers."""
    module.activation = _ACTIVATION_NAMES.get(int(module.deepdual_activation), module.activation)
    module._scalar_output = bool(module.deepdual_scalar_output)


_CLS = None


def parallel_network_class():
    global _CLS
    if _CLS is None:
        _CLS = _module_class()
    return _CLS


def network_to_module(net, dtype: Any = None):
    torch = require_torch()
    dtype = torch.float64 if dtype is None else dtype
    # the bias parameters present in the network, and only those: an absent bias and a zero
    # bias are different architectures (certify classes networks by the parameters present)
    hidden_bias = (False if net.biases is None
                   else [[b is not None for b in row] for row in net.biases])
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
                    lin.bias.copy_(torch.as_tensor(net.biases[j][l], dtype=dtype))
        if mod.output_bias is not None:
            mod.output_bias.copy_(torch.as_tensor(net.output_bias, dtype=dtype))
    return mod


# ---------------------------------------------------------------------------- reading back
_PARALLEL_KEY = re.compile(r"^subnets\.(\d+)\.(\d+)\.(weight|bias)$")
_SEQUENTIAL_KEY = re.compile(r"^(.*?)(\d+)\.(weight|bias)$")
_FLAGS = ("deepdual_activation", "deepdual_scalar_output")


def _numpy(val: Any, key: str) -> np.ndarray:
    if hasattr(val, "detach"):
        return np.array(val.detach().cpu().double().numpy(), dtype=np.float64)
    try:
        return np.array(val, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"`module` entry {key!r} must be a tensor or an array, got {type(val).__name__}") from None


def _check_activation(activation: str | None) -> str | None:
    if activation is not None and activation not in ACTIVATION_CODES:
        raise ValueError(f"`activation` must be one of {', '.join(map(repr, ACTIVATION_CODES))} or None; "
                         f"got {activation!r}")
    return activation


def _agree(recorded: str, activation: str | None, where: str) -> str:
    if activation is not None and activation != recorded:
        raise ValueError(f"`activation={activation!r}` contradicts {where}, whose activation is {recorded!r}")
    return recorded


def _parallel_parameters(state: dict, activation: str | None, scalar_output: bool | None) -> dict[str, Any]:
    W: dict[tuple[int, int], np.ndarray] = {}
    B: dict[tuple[int, int], np.ndarray] = {}
    for key, val in state.items():
        m = _PARALLEL_KEY.match(key)
        if m:
            j, l = int(m.group(1)), int(m.group(2))
            (W if m.group(3) == "weight" else B)[(j, l)] = _numpy(val, key)
        elif key not in ("output_bias", *_FLAGS):
            raise ValueError(f"`module` has an unexpected parameter {key!r}; expected subnets.J.L.weight/bias")
    if not W:
        raise ValueError("`module` has no parameters named subnets.J.L.weight")
    if "deepdual_activation" in state:
        code = int(_numpy(state["deepdual_activation"], "deepdual_activation").reshape(-1)[0])
        if code not in _ACTIVATION_NAMES:
            raise ValueError(f"`module` buffer 'deepdual_activation' holds {code}, expected 0 (linear) or 1 (relu)")
        activation = _agree(_ACTIVATION_NAMES[code], activation, "the module's state dict")
    elif activation is None:
        raise ValueError(
            "`module` is a state dict without the 'deepdual_activation' buffer (written by an older "
            "deepdual), so it does not record its activation: pass activation='relu' or activation='linear'"
        )
    if scalar_output is None and "deepdual_scalar_output" in state:
        scalar_output = bool(_numpy(state["deepdual_scalar_output"], "deepdual_scalar_output").reshape(-1)[0])
    m_ = 1 + max(j for j, _ in W)
    L = 1 + max(l for _, l in W)
    missing = [f"subnets.{j}.{l}.weight" for j in range(m_) for l in range(L) if (j, l) not in W]
    if missing:
        raise ValueError(f"`module` lacks the parameter(s) {', '.join(missing[:4])}")
    weights = [[W[(j, l)].T for l in range(L)] for j in range(m_)]
    biases = None
    if B:
        biases = [[B.get((j, l)) for l in range(L - 1)] for j in range(m_)]
    ob = state.get("output_bias")
    if ob is not None:
        ob = _numpy(ob, "output_bias")
    return {"weights": weights, "activation": activation, "biases": biases, "output_bias": ob,
            "scalar_output": scalar_output}


def _linear_layers(weights: list[np.ndarray], biases: list[np.ndarray | None], names: list[str],
                   activation: str, scalar_output: bool | None) -> dict[str, Any]:
    """deepdual parameters (one sub-network) of Linear layers ``y = x W^T + b`` in sequence."""
    if len(weights) < 2:
        raise ValueError(f"`module` has {len(weights)} Linear layer(s); a deepdual network has at least 2 "
                         "(one hidden layer and the output layer)")
    for l in range(1, len(weights)):
        if weights[l].shape[1] != weights[l - 1].shape[0]:
            raise ValueError(f"`module` layer {names[l]!r} takes {weights[l].shape[1]} inputs but layer "
                             f"{names[l - 1]!r} has {weights[l - 1].shape[0]} outputs")
    hidden_biases = biases[:-1]
    return {
        "weights": [[W.T for W in weights]],
        "activation": activation,
        "biases": [hidden_biases] if any(b is not None for b in hidden_biases) else None,
        "output_bias": biases[-1],
        "scalar_output": scalar_output,
    }


def _sequential_state(state: dict, activation: str | None, scalar_output: bool | None) -> dict[str, Any]:
    """Read the state dict of an ``nn.Sequential`` MLP (keys ``PREFIX<i>.weight/bias``)."""
    layers: dict[int, dict[str, Any]] = {}
    prefixes = set()
    for key, val in state.items():
        m = _SEQUENTIAL_KEY.match(key)
        if m is None:
            raise ValueError(f"`module` has an unexpected entry {key!r} (not a Linear weight or bias: "
                             f"batch normalization and other layers cannot be loaded); {_SEQUENTIAL_HINT}")
        prefixes.add(m.group(1))
        layers.setdefault(int(m.group(2)), {})[m.group(3)] = (key, val)
    if len(prefixes) > 1:
        raise ValueError(f"`module` keys have different prefixes ({', '.join(sorted(map(repr, prefixes)))}); "
                         f"expected the state dict of one nn.Sequential; {_SEQUENTIAL_HINT}")
    idx = sorted(layers)
    weights, biases, names = [], [], []
    for i in idx:
        if "weight" not in layers[i]:
            key = layers[i]["bias"][0]
            raise ValueError(f"`module` has {key!r} without a matching weight")
        key, val = layers[i]["weight"]
        W = _numpy(val, key)
        if W.ndim != 2:
            raise ValueError(f"`module` entry {key!r} has shape {W.shape}: not an nn.Linear weight "
                             f"(convolutions and normalization layers cannot be loaded); {_SEQUENTIAL_HINT}")
        b = None
        if "bias" in layers[i]:
            bkey, bval = layers[i]["bias"]
            b = _numpy(bval, bkey)
            if b.shape != (W.shape[0],):
                raise ValueError(f"`module` entry {bkey!r} has shape {b.shape}, expected ({W.shape[0]},)")
        weights.append(W)
        biases.append(b)
        names.append(key)
    adjacent = [idx[k + 1] - idx[k] == 1 for k in range(len(idx) - 1)]
    if activation is None:
        if adjacent and all(adjacent):
            activation = "linear"  # nothing can sit between adjacent indices
        else:
            gaps = [f"{names[k]!r} and {names[k + 1]!r}" for k in range(len(adjacent)) if not adjacent[k]]
            raise ValueError(
                "`module` is the state dict of an nn.Sequential, which does not record its activations: "
                f"a parameter-free module (a ReLU? a Dropout?) sits between {gaps[0]}. Pass "
                "activation='relu' or activation='linear' (deepdual certify: --activation), or pass the "
                "module itself"
            )
    elif activation == "relu" and any(adjacent):
        k = adjacent.index(True)
        raise ValueError(f"`activation='relu'` contradicts the state dict: layers {names[k]!r} and "
                         f"{names[k + 1]!r} are adjacent, so no ReLU sits between them")
    return _linear_layers(weights, biases, names, activation, scalar_output)


def _flatten(module: Any, nn: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for name, child in module.named_children():
        full = f"{prefix}{name}"
        if isinstance(child, nn.Sequential):
            out.extend(_flatten(child, nn, full + "."))
        else:
            out.append((full, child))
    return out


def _sequential_module(module: Any, nn: Any, activation: str | None,
                       scalar_output: bool | None) -> dict[str, Any]:
    """Read an ``nn.Sequential`` MLP from its modules (which do record the activations)."""
    weights, biases, names = [], [], []
    gaps: list[list[str]] = [[]]  # ReLU modules before the first, between and after the Linear layers
    children = _flatten(module, nn)
    last_linear = max((i for i, (_, c) in enumerate(children) if isinstance(c, nn.Linear)), default=-1)
    for i, (name, child) in enumerate(children):
        if isinstance(child, nn.Linear):
            weights.append(_numpy(child.weight, f"{name}.weight"))
            biases.append(None if child.bias is None else _numpy(child.bias, f"{name}.bias"))
            names.append(name)
            gaps.append([])
        elif isinstance(child, nn.ReLU):
            gaps[-1].append(name)
        elif isinstance(child, (nn.Identity, nn.Dropout)):
            continue  # the identity at evaluation
        elif isinstance(child, nn.Flatten) and child.start_dim in (1, -1) and child.end_dim == -1:
            continue  # the identity on deepdual's 2-D input (n, d)
        elif i > last_linear >= 0 and isinstance(child, (nn.Sigmoid, nn.Softmax, nn.LogSoftmax)):
            raise ValueError(
                f"`module` layer {name!r} ({type(child).__name__}) after the last Linear layer belongs to the "
                "loss in deepdual: load the Sequential without it (e.g. model[:-1]) and pass "
                f"loss={'logistic' if isinstance(child, nn.Sigmoid) else 'cross_entropy'!r}"
            )
        else:
            raise ValueError(f"`module` layer {name!r} ({type(child).__name__}) cannot be loaded: {_SEQUENTIAL_HINT}; "
                             "other activations, convolutions and normalization layers are not deepdual networks")
    if not weights:
        raise ValueError(f"`module` has no nn.Linear layer; {_SEQUENTIAL_HINT}")
    if gaps[0]:
        raise ValueError(f"`module` layer {gaps[0][0]!r} (ReLU) acts on the input before the first Linear layer; "
                         "a deepdual network starts with a Linear layer")
    if gaps[-1]:
        raise ValueError(f"`module` layer {gaps[-1][0]!r} (ReLU) acts on the output after the last Linear layer; "
                         "a deepdual network's output layer is linear")
    hidden = [bool(g) for g in gaps[1:-1]]
    if hidden and all(hidden):
        found = "relu"
    elif not any(hidden):
        found = "linear"
    else:
        k = hidden.index(False)
        raise ValueError(
            f"`module` applies ReLU after some hidden layers but not after layer {names[k]!r}; "
            "a deepdual network applies the same activation after every hidden layer"
        )
    activation = _agree(found, activation, "the module")
    return _linear_layers(weights, biases, names, activation, scalar_output)


def module_parameters(module: Any, activation: str | None = None,
                      scalar_output: bool | None = None) -> dict[str, Any]:
    """Read the arguments of :class:`~deepdual.Network` from a torch module or a state dict.

    Parameters
    ----------
    module : torch.nn.Module or dict
        A ``ParallelNetwork`` (from :meth:`deepdual.Network.to_torch` or
        :func:`deepdual.train`), an ``nn.Sequential`` MLP, or the ``state_dict()`` of either.
    activation : {"relu", "linear"} or None
        Required for a ``Sequential`` state dict whose Linear layers are not adjacent (the
        dict cannot tell a ReLU from a Dropout); otherwise read from the module and, when
        given, checked against it (a contradiction raises ``ValueError``).
    scalar_output : bool or None

    Returns
    -------
    dict
        ``weights``, ``activation``, ``biases``, ``output_bias`` and ``scalar_output``;
        :meth:`deepdual.Network.from_torch` builds the network from it (this module does
        not import :mod:`deepdual.network`, which imports it).
    """
    torch = require_torch()
    activation = _check_activation(activation)
    nn = torch.nn
    if isinstance(module, nn.Module):
        if isinstance(module, parallel_network_class()):
            activation = _agree(module.activation, activation, "the module")
            if scalar_output is None:
                scalar_output = module.scalar_output
            return _parallel_parameters(module.state_dict(), activation, scalar_output)
        if isinstance(module, nn.Sequential):
            return _sequential_module(module, nn, activation, scalar_output)
        if isinstance(module, nn.Linear):
            raise ValueError("`module` is a single nn.Linear layer; a deepdual network has at least 2 layers")
        raise TypeError(f"`module` of type {type(module).__name__} cannot be read: its forward pass is unknown; "
                        f"{_SEQUENTIAL_HINT}")
    if isinstance(module, dict):
        if not module:
            raise ValueError("`module` is an empty state dict")
        bad = [k for k in module if not isinstance(k, str)]
        if bad:
            raise TypeError(f"`module` state dict keys must be strings, got {bad[0]!r}")
        if any(k.startswith("subnets.") or k in _FLAGS for k in module):
            return _parallel_parameters(module, activation, scalar_output)
        return _sequential_state(module, activation, scalar_output)
    raise TypeError(f"`module` must be a torch.nn.Module or its state_dict, got {type(module).__name__}; "
                    f"{_SEQUENTIAL_HINT}")
