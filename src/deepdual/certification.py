"""Weak-duality certificates for networks with arbitrary weights.

:func:`certify_network` dispatches on the activation: :mod:`deepdual.linear` for linear
networks, :mod:`deepdual.relu` for ReLU networks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .losses import Loss
from .network import Network
from .solution import Certificate


def certify_network(network: Network, X: np.ndarray, Y: np.ndarray, *, beta: float, loss: Loss,
                    rtol: float, **options: Any) -> Certificate:
    if network.activation == "linear":
        from .linear.certificate import certify_linear

        return certify_linear(network, X, Y, beta=beta, loss=loss, rtol=rtol, **options)
    from .relu.certificate import certify_relu

    return certify_relu(network, X, Y, beta=beta, loss=loss, rtol=rtol, **options)
