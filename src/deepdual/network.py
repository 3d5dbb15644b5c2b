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
from typing import Any, Mapping, Sequence

import numpy as np

from .blocks import row_blocks
from ._validation import check_choice, check_finite, check_matrix, check_vector
from .problem import check_problem, problem_from_json, problem_to_json

__all__ = ["Network", "ACTIVATIONS", "check_parameters"]

ACTIVATIONS = ("relu", "linear")


def _relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0)


def _check_array(a: Any, name: str, ndim: int) -> None:
    """``a`` must be a real ndarray with ``ndim`` dimensions, none of them empty."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"`{name}` must be a numpy array, got {type(a).__name__}")
    if a.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must be a real numeric array, got dtype {a.dtype}")
    if a.ndim != ndim or 0 in a.shape:
        raise ValueError(f"`{name}` must be a non-empty {ndim}-D array, got shape {a.shape}")


def _ok(a: Any, ndim: int) -> bool:
    """Fast path of :func:`_check_array` (no message built)."""
    return type(a) is np.ndarray and a.ndim == ndim and a.dtype.kind in "biuf" and a.size > 0


def check_parameters(weights: Any, biases: Any, output_bias: Any, activation: Any, scalar_output: Any,
                     prefix: str = "") -> None:
    """Check the parameters of a :class:`Network` for consistency, without copying them.

    ``weights[j][l]`` must be finite 2-D arrays with ``weights[j][l].shape[0] ==
    weights[j][l-1].shape[1]`` (hidden layer ``l`` of sub-network ``j`` has that many units),
    all sub-networks must share the depth ``L >= 2``, the input dimension ``d`` and the
    number of outputs ``K``; ``biases[j][l]`` (``l < L - 1``) is ``None`` or a finite vector
    of shape ``(m_l,)``, ``output_bias`` is ``None`` or a finite vector of shape ``(K,)``.
    Messages name the offending entry as ``{prefix}weights[j][l]``.  The cost is one
    reduction per array: the sum of all entries is finite exactly when no entry is NaN or
    infinite (barring overflow, which falls back to the entrywise test).
    """
    p = prefix
    if activation not in ACTIVATIONS:
        raise ValueError(f"`{p}activation` must be one of {', '.join(map(repr, ACTIVATIONS))}; got {activation!r}")
    if not isinstance(scalar_output, (bool, np.bool_)):
        raise TypeError(f"`{p}scalar_output` must be True or False, got {scalar_output!r}")
    if not isinstance(weights, (list, tuple)):
        raise TypeError(f"`{p}weights` must be a list of sub-networks, each a list of 2-D arrays")
    if len(weights) == 0:
        raise ValueError(f"`{p}weights` must contain at least one sub-network")
    arrays: list[tuple[np.ndarray, int, int | None, int | None]] = []  # (array, kind, j, l); kind 0 W, 1 b, 2 out
    for j, sub in enumerate(weights):
        if not isinstance(sub, (list, tuple)):
            raise TypeError(f"`{p}weights[{j}]` must be a list of 2-D arrays (one per layer)")
        for l, W in enumerate(sub):
            if not _ok(W, 2):
                _check_array(W, f"{p}weights[{j}][{l}]", 2)
            arrays.append((W, 0, j, l))
    depth = len(weights[0])
    if depth < 2:
        raise ValueError(f"`{p}weights[0]` must have at least 2 layers, got {depth}")
    d, K = weights[0][0].shape[0], weights[0][-1].shape[1]
    for j, layers in enumerate(weights):
        if len(layers) != depth:
            raise ValueError(f"`{p}weights[{j}]` has {len(layers)} layers, expected {depth} like {p}weights[0]")
        if layers[0].shape[0] != d:
            raise ValueError(f"`{p}weights[{j}][0]` has {layers[0].shape[0]} rows, expected input dimension {d}")
        if layers[-1].shape[1] != K:
            raise ValueError(f"`{p}weights[{j}][-1]` has {layers[-1].shape[1]} columns, expected K = {K}")
        for l in range(1, depth):
            if layers[l].shape[0] != layers[l - 1].shape[1]:
                raise ValueError(
                    f"`{p}weights[{j}][{l}]` has shape {layers[l].shape} ({layers[l].shape[0]} rows) but "
                    f"{p}weights[{j}][{l-1}] has {layers[l-1].shape[1]} columns (layer {l} has "
                    f"{layers[l-1].shape[1]} units)"
                )
    if scalar_output and K != 1:
        raise ValueError(f"`{p}scalar_output` is True but the network has K = {K} outputs")
    if biases is not None:
        if not isinstance(biases, (list, tuple)) or len(biases) != len(weights):
            raise ValueError(f"`{p}biases` must be a list with one entry per sub-network ({len(weights)})")
        for j, sub in enumerate(biases):
            if sub is None:
                continue
            if not isinstance(sub, (list, tuple)) or len(sub) != depth - 1:
                raise ValueError(f"`{p}biases[{j}]` must be a list of {depth - 1} hidden-layer bias vectors")
            for l, b in enumerate(sub):
                if b is None:
                    continue
                if not _ok(b, 1):
                    _check_array(b, f"{p}biases[{j}][{l}]", 1)
                if b.shape[0] != weights[j][l].shape[1]:
                    raise ValueError(f"`{p}biases[{j}][{l}]` must have shape ({weights[j][l].shape[1]},), "
                                     f"got {b.shape}")
                arrays.append((b, 1, j, l))
    if output_bias is not None:
        if not _ok(output_bias, 1):
            _check_array(output_bias, f"{p}output_bias", 1)
        if output_bias.shape != (K,):
            raise ValueError(f"`{p}output_bias` must have shape ({K},), got {output_bias.shape}")
        arrays.append((output_bias, 2, None, None))
    # finiteness: one reduction per array, the entrywise test only when the total is not finite
    with np.errstate(over="ignore", invalid="ignore"):
        if len(arrays) > 8 and sum(a.size for a, *_ in arrays) <= 2**20:  # many small arrays: one reduction
            total = np.add.reduce(np.concatenate([a.ravel() for a, *_ in arrays]))
        else:
            total = sum(np.add.reduce(a, axis=None) for a, *_ in arrays)
    if not np.isfinite(total):
        names = ("weights[{}][{}]", "biases[{}][{}]", "output_bias")
        for a, kind, j, l in arrays:
            check_finite(a, p + names[kind].format(j, l))


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
    problem : dict, optional
        The training problem the network belongs to (:mod:`deepdual.problem`): any of
        ``"loss"`` (a loss name), ``"beta"`` (weight decay) and ``"penalize_biases"`` (bias
        convention).  :func:`deepdual.solve` fills it in, :meth:`save` stores it and
        :func:`deepdual.certify` uses it by default and refuses contradicting arguments.
        Kept in the attribute :attr:`problem` (``None``: unknown).

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
        problem: Mapping[str, Any] | None = None,
    ) -> None:
        self.activation = check_choice(activation, "activation", ACTIVATIONS)
        if isinstance(weights, np.ndarray) or not isinstance(weights, (list, tuple)):
            raise TypeError("`weights` must be a list of sub-networks, each a list of 2-D arrays")
        ws: list[list[np.ndarray]] = []
        for j, sub in enumerate(weights):
            if isinstance(sub, np.ndarray) or not isinstance(sub, (list, tuple)):
                raise TypeError(f"`weights[{j}]` must be a list of 2-D arrays (one per layer)")
            ws.append([check_matrix(W, f"weights[{j}][{l}]") for l, W in enumerate(sub)])
        check_parameters(ws, None, None, self.activation, False)
        depth = len(ws[0])
        bs: list[list[np.ndarray | None]] | None = None
        if biases is not None:
            if not isinstance(biases, (list, tuple)) or len(biases) != len(ws):
                raise ValueError(f"`biases` must be a list with one entry per sub-network ({len(ws)})")
            bs = []
            for j, sub in enumerate(biases):
                if sub is None:
                    bs.append([None] * (depth - 1))
                elif not isinstance(sub, (list, tuple)) or len(sub) != depth - 1:
                    raise ValueError(f"`biases[{j}]` must be a list of {depth - 1} hidden-layer bias vectors")
                else:
                    bs.append([None if b is None else check_vector(b, f"biases[{j}][{l}]")
                               for l, b in enumerate(sub)])
        ob = None if output_bias is None else check_vector(output_bias, "output_bias", flatten=True)
        K = ws[0][-1].shape[1]
        scalar = bool(K == 1) if scalar_output is None else bool(scalar_output)
        check_parameters(ws, bs, ob, self.activation, scalar)
        self.weights = ws
        self.biases = bs
        self.output_bias: np.ndarray | None = ob
        self.scalar_output = scalar
        self.problem: dict[str, Any] | None = check_problem(problem)

    # ------------------------------------------------------------------ validation
    def validate(self, name: str = "network") -> "Network":
        """Check that the network is still consistent, e.g. after its attributes were changed.

        The constructor checks its arguments, but ``weights``, ``biases``,
        ``output_bias``, ``activation`` and ``scalar_output`` are plain attributes that can be
        replaced or modified in place afterwards.  Every public function that takes a network
        calls this method first (one pass over the parameters; nothing is copied or changed).

        Returns
        -------
        Network
            ``self``.

        Raises
        ------
        ValueError or TypeError
            naming the offending entry, e.g. ``network.weights[0][1]``: shapes that do not
            chain (``weights[j][l].shape[0] == weights[j][l-1].shape[1]``), NaN or infinite
            entries, bias vectors of the wrong length, an unknown activation.
        """
        check_parameters(self.weights, self.biases, self.output_bias, self.activation, self.scalar_output,
                         prefix=f"{name}.")
        return self

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
        self.validate()
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
        self.validate()
        X = self._check_input(X, copy=False)  # a read-only view of float64 data: X is only read
        out = np.zeros((X.shape[0], self.n_outputs))
        # in row blocks (rows are independent): no (n, width) hidden array whole
        width = max((W.shape[1] for layers in self.weights for W in layers), default=1)
        for rows in row_blocks(X.shape[0], width):
            for j, layers in enumerate(self.weights):
                A = X[rows]
                for l in range(self.depth - 1):
                    Z = A @ layers[l]
                    if self.biases is not None and self.biases[j][l] is not None:
                        Z = Z + self.biases[j][l]
                    A = self._sigma(Z)
                out[rows] += A @ layers[-1]
        if self.output_bias is not None:
            out += self.output_bias
        return out

    def predict(self, X: Any) -> np.ndarray:
        """Network output, shape ``(n,)`` for scalar-output networks else ``(n, K)``."""
        out = self.forward(X)
        return out[:, 0] if self.scalar_output else out

    __call__ = predict

    def _check_input(self, X: Any, copy: bool = True) -> np.ndarray:
        X = check_matrix(X, "X", copy=copy)
        if X.shape[1] != self.input_dim:
            raise ValueError(f"`X` must have {self.input_dim} columns for this network, got {X.shape[1]}")
        return X

    # ------------------------------------------------------------------ norms
    def squared_norm(self, *, include_biases: bool = False) -> float:
        """:math:`\\sum_j\\sum_l \\|W_{l,j}\\|_F^2` (plus squared biases if requested)."""
        self.validate()
        total = sum(float(np.vdot(W, W)) for layers in self.weights for W in layers)
        if include_biases:
            if self.biases is not None:
                total += sum(float(b @ b) for row in self.biases for b in row if b is not None)
            if self.output_bias is not None:
                total += float(self.output_bias @ self.output_bias)
        return total

    def copy(self) -> "Network":
        """An independent copy (every array copied)."""
        self.validate()
        return Network(
            self.weights, self.activation, biases=self.biases, output_bias=self.output_bias,
            scalar_output=self.scalar_output, problem=self.problem,
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
        self.validate()
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
        if self.problem:
            arrays["problem"] = np.array(problem_to_json(self.problem))
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
                problem = (problem_from_json(str(data["problem"]), f"{path!r}: problem")
                           if "problem" in files else None)
                return cls(weights, str(data["activation"]), biases=biases, output_bias=ob, scalar_output=scalar,
                           problem=problem)
        except (OSError, KeyError, EOFError, ValueError) as exc:
            if "deepdual network" in str(exc):
                raise
            raise ValueError(f"`path` {path!r} could not be read as a deepdual network: {exc}") from None

    # ------------------------------------------------------------------ torch
    def to_torch(self, dtype: Any = None):
        """Equivalent ``torch.nn.Module`` (requires the ``[torch]`` extra).

        The module (a ``ParallelNetwork``) records the activation and the output shape in
        buffers, so its ``state_dict()`` reads back exactly with :meth:`from_torch`.
        """
        self.validate()
        from ._torch import network_to_module

        return network_to_module(self, dtype=dtype)

    @classmethod
    def from_torch(cls, module: Any, activation: str | None = None,
                   scalar_output: bool | None = None) -> "Network":
        """Read a torch module or state dict (requires the ``[torch]`` extra).

        Parameters
        ----------
        module : torch.nn.Module or dict
            A module built by :meth:`to_torch` or :func:`deepdual.train`, a standard
            ``torch.nn.Sequential`` MLP (``nn.Linear`` layers, with or without biases,
            separated by ``nn.ReLU`` or by nothing; ``nn.Identity`` and ``nn.Dropout``, the
            identity at evaluation, are ignored), or the ``state_dict()`` of either.  The
            bias of a ``Sequential``'s last ``Linear`` layer becomes ``output_bias``, the
            others ``biases[0][l]``.  Other layers (convolutions, normalization, other
            activations, an activation before the first or after the last ``Linear``) raise
            ``ValueError`` naming the layer.
        activation : {"relu", "linear"}, optional
            Needed only for the state dict of a ``Sequential`` whose ``Linear`` layers are
            not adjacent (a gap may hide a ReLU or a Dropout: the dict does not say which),
            or for a state dict written before deepdual recorded the activation.  When the
            module or dict records the activation, a different value raises ``ValueError``.
        scalar_output : bool, optional
            Whether :meth:`predict` returns 1-D output; default: as recorded, else ``K == 1``.

        Examples
        --------
        >>> import torch, deepdual
        >>> mlp = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
        >>> deepdual.Network.from_torch(mlp)
        Network(activation='relu', depth=2, subnetworks=1, widths=[3, 8, 1], biases)
        >>> deepdual.Network.from_torch(mlp.state_dict(), activation="relu").widths
        [[3, 8, 1]]
        """
        from ._torch import module_parameters

        return cls(**module_parameters(module, activation=activation, scalar_output=scalar_output))
