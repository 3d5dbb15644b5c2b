r"""Parallel L-layer networks (docs/theory.md §1).

A network is a sum of ``m`` sub-networks ``j`` of depth ``L``:

.. math::

    A_{0,j} = X,\quad A_{l,j} = \sigma(A_{l-1,j} W_{l,j} + b_{l,j}),\ l = 1..L-1,\quad
    f(X) = \sum_j A_{L-1,j} W_{L,j} + b_{\text{out}}

with :math:`\sigma` the identity (``"linear"``) or ReLU (``"relu"``).  ``m = 1`` is an
ordinary fully connected network; for ``L = 2`` every parallel network is an
ordinary one with the concatenated hidden units.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from ._validation import check_choice, check_finite, check_matrix

__all__ = ["Network", "ACTIVATIONS"]

ACTIVATIONS = ("relu", "linear")


def _relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0)


class Network:
    """A parallel deep network with ReLU or linear activations.

    Parameters
    ----------
    weights : sequence of sequences of 2-D arrays
        ``weights[j][l]`` is layer ``l`` (0-based) of sub-network ``j`` with shape
        ``(m_{l-1}, m_l)``; the last layer has shape ``(m_{L-1}, K)``.  All
        sub-networks share the depth, the input dimension and ``K``.
    activation : {"relu", "linear"}
        Hidden-layer nonlinearity.
    biases : sequence of sequences of 1-D arrays, optional
        ``biases[j][l]`` has shape ``(m_l,)`` for the hidden layers ``l = 0..L-2``.
        Entries may be ``None`` for no bias.
    output_bias : 1-D array of shape (K,), optional
    scalar_output : bool, optional
        Whether :meth:`predict` returns shape ``(n,)``; defaults to ``K == 1``.

    Examples
    --------
    >>> import numpy as np, deepdual
    >>> net = deepdual.Network([[np.ones((2, 3)), np.ones((3, 1))]], activation="relu")
    >>> net.predict(np.array([[1.0, -2.0]])).shape
    (1,)
    """

    def __init__(
        self,
        weights: Sequence[Sequence[Any]],
        activation: str = "relu",
        biases: Sequence[Sequence[Any]] | None = None,
        output_bias: Any = None,
        *,
        scalar_output: bool | None = None,
    ) -> None:
        self.activation = check_choice(activation, "activation", ACTIVATIONS)
        if isinstance(weights, np.ndarray) or not isinstance(weights, (list, tuple)):
            raise TypeError("`weights` must be a list of sub-networks, each a list of 2-D arrays")
        if len(weights) == 0:
            raise ValueError("`weights` must contain at least one sub-network")
        ws: list[list[np.ndarray]] = []
        for j, sub in enumerate(weights):
            if isinstance(sub, np.ndarray) or not isinstance(sub, (list, tuple)):
                raise TypeError(f"`weights[{j}]` must be a list of 2-D arrays (one per layer)")
            layers = []
            for l, W in enumerate(sub):
                W = check_matrix(W, f"weights[{j}][{l}]")
                layers.append(W)
            ws.append(layers)
        depth = len(ws[0])
        if depth < 2:
            raise ValueError(f"`weights[0]` must have at least 2 layers, got {depth}")
        d, K = ws[0][0].shape[0], ws[0][-1].shape[1]
        for j, layers in enumerate(ws):
            if len(layers) != depth:
                raise ValueError(f"`weights[{j}]` has {len(layers)} layers, expected {depth} like weights[0]")
            if layers[0].shape[0] != d:
                raise ValueError(f"`weights[{j}][0]` has {layers[0].shape[0]} rows, expected input dimension {d}")
            if layers[-1].shape[1] != K:
                raise ValueError(f"`weights[{j}][-1]` has {layers[-1].shape[1]} columns, expected K = {K}")
            for l in range(1, depth):
                if layers[l].shape[0] != layers[l - 1].shape[1]:
                    raise ValueError(
                        f"`weights[{j}][{l}]` has {layers[l].shape[0]} rows but weights[{j}][{l-1}] "
                        f"has {layers[l-1].shape[1]} columns"
                    )
        self.weights = ws
        self.biases: list[list[np.ndarray | None]] | None = None
        if biases is not None:
            if not isinstance(biases, (list, tuple)) or len(biases) != len(ws):
                raise ValueError(f"`biases` must be a list with one entry per sub-network ({len(ws)})")
            bs = []
            for j, sub in enumerate(biases):
                if sub is None:
                    bs.append([None] * (depth - 1))
                    continue
                if not isinstance(sub, (list, tuple)) or len(sub) != depth - 1:
                    raise ValueError(f"`biases[{j}]` must be a list of {depth - 1} hidden-layer bias vectors")
                row = []
                for l, b in enumerate(sub):
                    if b is None:
                        row.append(None)
                        continue
                    b = np.array(b, dtype=np.float64, copy=True)
                    if b.shape != (ws[j][l].shape[1],):
                        raise ValueError(f"`biases[{j}][{l}]` must have shape ({ws[j][l].shape[1]},), got {b.shape}")
                    check_finite(b, f"biases[{j}][{l}]")
                    row.append(b)
                bs.append(row)
            self.biases = bs
        self.output_bias: np.ndarray | None = None
        if output_bias is not None:
            ob = np.array(output_bias, dtype=np.float64, copy=True).reshape(-1)
            if ob.shape != (K,):
                raise ValueError(f"`output_bias` must have shape ({K},), got {ob.shape}")
            check_finite(ob, "output_bias")
            self.output_bias = ob
        self.scalar_output = bool(K == 1) if scalar_output is None else bool(scalar_output)

    # ------------------------------------------------------------------ shape info
    @property
    def depth(self) -> int:
        """Number of layers ``L`` (hidden layers plus the output layer)."""
        return len(self.weights[0])

    @property
    def n_subnetworks(self) -> int:
        """Number ``m`` of parallel sub-networks."""
        return len(self.weights)

    @property
    def input_dim(self) -> int:
        return self.weights[0][0].shape[0]

    @property
    def n_outputs(self) -> int:
        return self.weights[0][-1].shape[1]

    @property
    def widths(self) -> list[list[int]]:
        """``widths[j]`` lists ``[m_0 = d, m_1, ..., m_{L-1}, K]`` for sub-network ``j``."""
        return [[layers[0].shape[0]] + [W.shape[1] for W in layers] for layers in self.weights]

    @property
    def has_biases(self) -> bool:
        hidden = self.biases is not None and any(b is not None for row in self.biases for b in row)
        return hidden or self.output_bias is not None

    # ------------------------------------------------------------------ evaluation
    def _sigma(self, Z: np.ndarray) -> np.ndarray:
        return _relu(Z) if self.activation == "relu" else Z

    def hidden(self, X: Any, j: int, layer: int | None = None) -> np.ndarray:
        """Activations ``A_{l,j}`` of sub-network ``j`` after hidden layer ``layer`` (default: last)."""
        A = self._check_input(X)
        L = self.depth
        last = L - 2 if layer is None else int(layer)
        for l in range(last + 1):
            Z = A @ self.weights[j][l]
            if self.biases is not None and self.biases[j][l] is not None:
                Z = Z + self.biases[j][l]
            A = self._sigma(Z)
        return A

    def forward(self, X: Any) -> np.ndarray:
        """Network output as a 2-D array of shape ``(n, K)``."""
        X = self._check_input(X)
        out = np.zeros((X.shape[0], self.n_outputs))
        for j, layers in enumerate(self.weights):
            A = X
            for l in range(self.depth - 1):
                Z = A @ layers[l]
                if self.biases is not None and self.biases[j][l] is not None:
                    Z = Z + self.biases[j][l]
                A = self._sigma(Z)
            out += A @ layers[-1]
        if self.output_bias is not None:
            out += self.output_bias
        return out

    def predict(self, X: Any) -> np.ndarray:
        """Network output, shape ``(n,)`` for scalar-output networks else ``(n, K)``."""
        out = self.forward(X)
        return out[:, 0] if self.scalar_output else out

    __call__ = predict

    def _check_input(self, X: Any) -> np.ndarray:
        X = check_matrix(X, "X")
        if X.shape[1] != self.input_dim:
            raise ValueError(f"`X` must have {self.input_dim} columns for this network, got {X.shape[1]}")
        return X

    # ------------------------------------------------------------------ norms
    def squared_norm(self, *, include_biases: bool = False) -> float:
        """:math:`\\sum_j\\sum_l \\|W_{l,j}\\|_F^2` (plus squared biases if requested)."""
        total = sum(float(np.vdot(W, W)) for layers in self.weights for W in layers)
        if include_biases:
            if self.biases is not None:
                total += sum(float(b @ b) for row in self.biases for b in row if b is not None)
            if self.output_bias is not None:
                total += float(self.output_bias @ self.output_bias)
        return total

    def copy(self) -> "Network":
        return Network(
            self.weights, self.activation, biases=self.biases, output_bias=self.output_bias,
            scalar_output=self.scalar_output,
        )

    def __repr__(self) -> str:
        w = self.widths[0]
        return (
            f"Network(activation={self.activation!r}, depth={self.depth}, "
            f"subnetworks={self.n_subnetworks}, widths={w}{', biases' if self.has_biases else ''})"
        )

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Save to a ``.npz`` file; refuses to replace an existing file unless ``overwrite``."""
        path = os.fspath(path)
        if not path.endswith(".npz"):
            path = path + ".npz"
        if os.path.exists(path) and not overwrite:
            raise FileExistsError(f"`path` {path!r} exists; pass overwrite=True to replace it")
        arrays: dict[str, np.ndarray] = {
            "activation": np.array(self.activation),
            "depth": np.array(self.depth),
            "m": np.array(self.n_subnetworks),
            "scalar_output": np.array(self.scalar_output),
        }
        for j, layers in enumerate(self.weights):
            for l, W in enumerate(layers):
                arrays[f"W_{j}_{l}"] = W
            if self.biases is not None:
                for l, b in enumerate(self.biases[j]):
                    if b is not None:
                        arrays[f"b_{j}_{l}"] = b
        if self.output_bias is not None:
            arrays["output_bias"] = self.output_bias
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Network":
        """Load a network written by :meth:`save`."""
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"`path` {path!r} does not exist")
        try:
            with np.load(path, allow_pickle=False) as data:
                files = set(data.files)
                if not {"activation", "depth", "m"} <= files:
                    raise ValueError(f"`path` {path!r} is not a deepdual network file (missing keys)")
                L, m = int(data["depth"]), int(data["m"])
                weights = [[data[f"W_{j}_{l}"] for l in range(L)] for j in range(m)]
                biases = None
                if any(k.startswith("b_") for k in files):
                    biases = [[data[f"b_{j}_{l}"] if f"b_{j}_{l}" in files else None for l in range(L - 1)]
                              for j in range(m)]
                ob = data["output_bias"] if "output_bias" in files else None
                scalar = bool(data["scalar_output"]) if "scalar_output" in files else None
                return cls(weights, str(data["activation"]), biases=biases, output_bias=ob, scalar_output=scalar)
        except (OSError, KeyError, EOFError, ValueError) as exc:
            if "deepdual network" in str(exc):
                raise
            raise ValueError(f"`path` {path!r} could not be read as a deepdual network: {exc}") from None

    # ------------------------------------------------------------------ torch
    def to_torch(self, dtype: Any = None):
        """Equivalent ``torch.nn.Module`` (requires the ``[torch]`` extra)."""
        from ._torch import network_to_module

        return network_to_module(self, dtype=dtype)

    @classmethod
    def from_torch(cls, module: Any, activation: str | None = None,
                   scalar_output: bool | None = None) -> "Network":
        """Read a module built by :meth:`to_torch` (or its ``state_dict``) back."""
        from ._torch import module_parameters

        return cls(**module_parameters(module, activation=activation, scalar_output=scalar_output))
