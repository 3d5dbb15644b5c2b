"""Deprecated module paths kept for one release.

The solvers moved from the flat ``deepdual.solvers`` / ``deepdual.certificates``
folders into one package per theorem family (``deepdual.linear``,
``deepdual.relu.rank_one``, ``deepdual.relu.whitened``, ``deepdual.relu.one_dimensional``,
``deepdual.relu.convex_program``, ``deepdual.relu.batchnorm``).  Each old module is a
small shim that warns once on import and forwards attribute access to the new modules.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any, Callable


def forward(old: str, new: tuple[str, ...]) -> Callable[[str], Any]:
    """Warn that module ``old`` is deprecated and return a module ``__getattr__``.

    Parameters
    ----------
    old : str
        The deprecated dotted module path.
    new : tuple of str
        The modules that now hold its names, searched in order (the first is the one
        named in the warning).
    """
    where = " or ".join(f"`{m}`" for m in new[:2]) if old.count(".") == 1 else f"`{new[0]}`"
    warnings.warn(f"`{old}` is deprecated and will be removed in the next release; "
                  f"import from {where} instead", DeprecationWarning, stacklevel=3)

    def __getattr__(name: str) -> Any:
        for target in new:
            module = importlib.import_module(target)
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(f"module {old!r} has no attribute {name!r} (it moved to {new[0]!r})")

    return __getattr__
