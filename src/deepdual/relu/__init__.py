r"""ReLU networks, one sub-package per theorem family.

* :mod:`.rank_one`: rank-one data :math:`X = ca_0^T`, any depth (``docs/relu.md`` §1);
* :mod:`.whitened`: whitened data :math:`XX^T = I` (``docs/relu.md`` §2);
* :mod:`.one_dimensional`: 1-D data with biases (``docs/one_dimensional.md``);
* :mod:`.convex_program`: two layers on arbitrary data (``docs/convex_program.md``);
* :mod:`.batchnorm`: BatchNorm before the last layer (``docs/batchnorm.md``).

:func:`solve_relu` (:mod:`.dispatch`) picks the family from the structure of the data;
:func:`certify_relu` (:mod:`.certificate`) certifies any ReLU network.
"""

from .certificate import certify_relu
from .dispatch import RELU_METHODS, solve_relu

__all__ = ["solve_relu", "certify_relu", "RELU_METHODS"]
